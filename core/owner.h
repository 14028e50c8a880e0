/*
 * owner.h - who owns a physical frame.
 *
 * Every frame of RAM has exactly one owner at any time: free, a boot
 * reservation, or the allocation that holds it (SPEC 1.3). An owner is a
 * small value, compared field by field; allocated blocks carry one owner
 * for all their frames, except that a user page's owner names the page's
 * address, so it is kept per frame.
 */
#ifndef VM_OWNER_H
#define VM_OWNER_H

#include <stdbool.h>
#include <stdint.h>

enum vm_owner_kind {
	VM_OWNER_FREE,
	VM_OWNER_RESERVED,      /* firmware, [0, 1 MiB) */
	VM_OWNER_KERNEL_IMAGE,  /* sub: VM_KSECT_* */
	VM_OWNER_MEM_MAP,       /* the struct page array */
	VM_OWNER_PAGE_TABLE,    /* id: pid, 0 for the kernel; sub: level */
	VM_OWNER_SLAB,          /* id: cache index (slab.h) */
	VM_OWNER_KMALLOC_LARGE, /* a kmalloc above 8 KiB */
	VM_OWNER_VMALLOC,       /* addr: the area's start */
	VM_OWNER_PAGE_ALLOC,    /* alloc_pages */
	VM_OWNER_USER,          /* id: pid; addr: the page's va; mapcount */
	VM_OWNER_KERNEL_STACK,  /* id: pid; addr: the vmalloc area or 0 */
	VM_OWNER_BOOT,          /* left allocated by the boot churn */
	VM_OWNER_KIND_COUNT
};

enum vm_kernel_section { VM_KSECT_TEXT, VM_KSECT_RODATA, VM_KSECT_DATA };

struct vm_owner {
	uint8_t kind;      /* enum vm_owner_kind */
	uint8_t sub;       /* kernel-image section or page-table level */
	uint16_t mapcount; /* user pages: how many PTEs map the frame */
	uint32_t id;       /* pid or cache index */
	uint64_t addr;     /* user page va or vmalloc area start */
};

/* The API name of an owner kind ("page_table", "user", ...). */
const char *vm_owner_kind_name(enum vm_owner_kind kind);

/* The API name of a kernel-image section ("text", "rodata", "data"). */
const char *vm_kernel_section_name(enum vm_kernel_section s);

static inline bool vm_owner_eq(const struct vm_owner *a,
			       const struct vm_owner *b)
{
	return a->kind == b->kind && a->sub == b->sub &&
	       a->mapcount == b->mapcount && a->id == b->id &&
	       a->addr == b->addr;
}

static inline struct vm_owner vm_owner_make(enum vm_owner_kind kind,
					    uint32_t id, uint64_t addr)
{
	struct vm_owner o = { .kind = (uint8_t)kind, .id = id, .addr = addr };

	return o;
}

#endif
