/*
 * arch.h - the architectures, as data.
 *
 * One description per architecture drives the one page-table walker, the
 * one table builder and the one layout: levels with their shifts and
 * widths, the entry format, which levels may hold large pages, and the
 * constants of the virtual layout (SPEC 1.1, 1.2; Linux
 * arch/x86/include/asm/pgtable_{32,64}_types.h, pgtable-{2,3}level_types.h).
 *
 * Entry bits are those of arch/x86/include/asm/pgtable_types.h and are the
 * same at every level and on every format.
 */
#ifndef VM_ARCH_H
#define VM_ARCH_H

#include <stdbool.h>
#include <stdint.h>

enum vm_arch_id {
	VM_ARCH_I386,
	VM_ARCH_I386_PAE,
	VM_ARCH_X86_64,
	VM_ARCH_X86_64_LA57,
	VM_ARCH_COUNT
};

#define VM_MAX_LEVELS 5

/* Entry bits (pgtable_types.h: _PAGE_BIT_*). */
#define VM_PTE_P (1ULL << 0)
#define VM_PTE_RW (1ULL << 1)
#define VM_PTE_US (1ULL << 2)
#define VM_PTE_PWT (1ULL << 3)
#define VM_PTE_PCD (1ULL << 4)
#define VM_PTE_A (1ULL << 5)
#define VM_PTE_D (1ULL << 6)
#define VM_PTE_PS (1ULL << 7)   /* PAT in a 4 KiB PTE */
#define VM_PTE_G (1ULL << 8)
#define VM_PTE_PAT_LARGE (1ULL << 12)
#define VM_PTE_NX (1ULL << 63)

/* Composite values (pgtable_types.h). */
#define VM_PAGE_TABLE 0x067ULL   /* _PAGE_TABLE: P|RW|US|A|D */
#define VM_KERNPG_TABLE 0x063ULL /* _KERNPG_TABLE: P|RW|A|D */
#define VM_PAGE_KERNEL_EXEC 0x163ULL /* __PAGE_KERNEL_EXEC: P|RW|A|D|G */
#define VM_PAGE_KERNEL_RX 0x121ULL   /* __PAGE_KERNEL_RX: P|A|G */
#define VM_PDPT_PRESENT 0x001ULL     /* a PAE PDPT entry: only P */

struct vm_level {
	const char *name;   /* "PGD", "P4D", "PUD", "PMD", "PTE" */
	uint8_t shift;      /* VA bit where this level's index starts */
	uint16_t entries;   /* entries in one table of this level */
	bool large;         /* may hold a PS leaf (4 MiB, 2 MiB, 1 GiB) */
	bool perm_bits;     /* RW, US, NX mean something here (not PAE's PDPT) */
};

struct vm_arch {
	enum vm_arch_id id;
	const char *name;        /* "i386", "i386-pae", "x86_64", "x86_64-la57" */
	uint8_t levels;          /* 2..5 */
	struct vm_level level[VM_MAX_LEVELS]; /* top (PGD) first */
	uint8_t entry_size;      /* 4 or 8 bytes */
	bool nx;                 /* NX exists (bit 63) */
	bool is64;               /* 64-bit address space */
	uint8_t va_bits;         /* 32, 48 or 57: canonical width */
	uint64_t addr_mask;      /* frame-address bits of an entry */
	uint64_t page_offset;    /* default PAGE_OFFSET */
	uint64_t task_size;      /* TASK_SIZE(_MAX) for the default split */
	uint64_t struct_page;    /* sizeof(struct page): mem_map bytes per frame */
	uint64_t max_memory;     /* largest RAM modelled: 4 GiB i386, 64 GiB
				    PAE (HIGHMEM64G), 16 TiB on 64-bit (frame
				    numbers are 32 bits in the model) */
};

/* The description of an architecture; id must be valid. */
const struct vm_arch *vm_arch_get(enum vm_arch_id id);

/* Looks an architecture up by name; NULL when unknown. */
const struct vm_arch *vm_arch_by_name(const char *name);

/* Bytes covered by one entry at level i (1 << shift). */
static inline uint64_t vm_level_span(const struct vm_arch *a, unsigned i)
{
	return 1ULL << a->level[i].shift;
}

/* The index of va in a table of level i. */
static inline unsigned vm_level_index(const struct vm_arch *a, unsigned i,
				      uint64_t va)
{
	return (unsigned)((va >> a->level[i].shift) &
			  (uint64_t)(a->level[i].entries - 1));
}

/* Whether va is canonical (always true on 32-bit). */
bool vm_arch_canonical(const struct vm_arch *a, uint64_t va);

/* Sign-extends va from the canonical width (64-bit); 32-bit unchanged. */
static inline uint64_t vm_arch_canon(const struct vm_arch *a, uint64_t va)
{
	if (!a->is64 || !((va >> (a->va_bits - 1)) & 1))
		return va;
	return va | ~((1ULL << a->va_bits) - 1);
}

/* The largest address plus one: 2^32, or 0 meaning 2^64. */
uint64_t vm_arch_va_limit(const struct vm_arch *a);

#endif
