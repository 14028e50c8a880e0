/*
 * layout.h - a machine's virtual and physical layout.
 *
 * Everything here follows from the creation parameters (arch, memory,
 * vmsplit, and with kaslr the machine's PRNG) and never changes afterwards:
 * the user/kernel split, the kernel regions that tile the whole address
 * space, high_memory and the lowmem/highmem boundary, the zone boundaries,
 * and the boot reservations (SPEC 1.2, 1.3; Linux
 * Documentation/arch/x86/x86_64/mm.rst, arch/x86/include/asm/
 * pgtable_32_areas.h, arch/x86/mm/kaslr.c).
 *
 * Regions are kept as [start, last] (inclusive last) so that a region
 * ending at 2^64 needs no wider type.
 */
#ifndef VM_LAYOUT_H
#define VM_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "error.h"
#include "rng.h"

#define VM_PAGE_SHIFT 12
#define VM_PAGE_SIZE (1ULL << VM_PAGE_SHIFT)
#define VM_MiB (1ULL << 20)
#define VM_GiB (1ULL << 30)
#define VM_TiB (1ULL << 40)

enum vm_region_kind {
	VM_REGION_USER,
	VM_REGION_HOLE,
	VM_REGION_DIRECT_MAP,
	VM_REGION_VMALLOC,
	VM_REGION_VMEMMAP,
	VM_REGION_KERNEL_TEXT,
	VM_REGION_MODULES,
	VM_REGION_PKMAP,
	VM_REGION_FIXMAP,
};

/* The API name of a region kind ("direct_map"). */
const char *vm_region_name(enum vm_region_kind kind);

struct vm_region {
	enum vm_region_kind kind;
	uint64_t start;
	uint64_t last;             /* inclusive */
	const char *description;   /* as dmesg would say it */
};

enum vm_vmsplit {
	VM_VMSPLIT_3G_1G,          /* PAGE_OFFSET 0xC0000000 (default) */
	VM_VMSPLIT_2G_2G,          /* 0x80000000 */
	VM_VMSPLIT_1G_3G,          /* 0x40000000 */
};

/* "3G/1G", ...; and back (returns -1 when unknown). */
const char *vm_vmsplit_name(enum vm_vmsplit s);
int vm_vmsplit_parse(const char *s);

/* Zones (include/linux/mmzone.h). */
enum vm_zone_id {
	VM_ZONE_DMA,
	VM_ZONE_DMA32,
	VM_ZONE_NORMAL,
	VM_ZONE_HIGHMEM,
	VM_ZONE_COUNT
};

/* "DMA", "DMA32", "Normal", "HighMem" (as /proc/buddyinfo). */
const char *vm_zone_name(enum vm_zone_id z);

#define VM_MAX_REGIONS 16

struct vm_layout {
	const struct vm_arch *arch;
	uint64_t memory;           /* RAM bytes */
	enum vm_vmsplit vmsplit;   /* 32-bit only */
	bool kaslr;

	uint64_t page_offset;      /* start of the direct map */
	uint64_t task_size;        /* TASK_SIZE_MAX: first non-user address */
	uint64_t stack_top;        /* where the user stack ends */
	uint64_t mmap_base;        /* stack_top - 128 MiB (min stack gap) */
	uint64_t high_memory;      /* page_offset + lowmem_bytes */
	uint64_t lowmem_bytes;     /* RAM with a kernel logical address */
	uint64_t highmem_bytes;    /* RAM above it (32-bit only) */
	uint64_t vmalloc_start;
	uint64_t vmalloc_end;      /* exclusive */
	uint64_t vmemmap_base;     /* 64-bit only */
	uint64_t kernel_map;       /* __START_KERNEL_map, 64-bit only */
	unsigned kernel_pgd_boundary; /* pgd_index(PAGE_OFFSET) */

	uint64_t zone_start_pfn[VM_ZONE_COUNT];
	uint64_t zone_end_pfn[VM_ZONE_COUNT];  /* start == end: unpopulated */
	uint64_t max_pfn;                      /* frames of RAM */

	uint64_t mem_map_pfn;      /* first frame of the struct page array */
	uint64_t mem_map_pages;

	unsigned nregions;
	struct vm_region regions[VM_MAX_REGIONS]; /* tile the address space */
};

/* The kernel image (CONFIG_PHYSICAL_START 16 MiB): text, rodata, data+bss. */
#define VM_KIMAGE_START (16 * VM_MiB)
#define VM_KIMAGE_TEXT_END (20 * VM_MiB)
#define VM_KIMAGE_RODATA_END (22 * VM_MiB)
#define VM_KIMAGE_END (24 * VM_MiB)
#define VM_FIRMWARE_END (1 * VM_MiB)

/* x86_64 __START_KERNEL_map and the kernel-text region size (512 MiB). */
#define VM_START_KERNEL_MAP 0xffffffff80000000ULL
#define VM_KERNEL_TEXT_SIZE (512 * VM_MiB)

/*
 * Computes the layout. memory must already be validated (vm_config_check);
 * with kaslr the bases are drawn from rng as arch/x86/mm/kaslr.c does.
 */
void vm_layout_init(struct vm_layout *l, const struct vm_arch *arch,
		    uint64_t memory, enum vm_vmsplit vmsplit, bool kaslr,
		    struct vm_rng *rng);

/* The region that contains va (never NULL for a valid va). */
const struct vm_region *vm_layout_region(const struct vm_layout *l,
					 uint64_t va);

/* The zone a frame of RAM belongs to. */
enum vm_zone_id vm_layout_zone_of(const struct vm_layout *l, uint64_t pfn);

/* Whether a zone has frames on this machine. */
bool vm_layout_zone_populated(const struct vm_layout *l, enum vm_zone_id z);

#endif
