/* layout.c - the virtual and physical layout; see layout.h. */
#include <string.h>

#include "layout.h"

static const char *const region_names[] = {
	[VM_REGION_USER] = "user",
	[VM_REGION_HOLE] = "hole",
	[VM_REGION_DIRECT_MAP] = "direct_map",
	[VM_REGION_VMALLOC] = "vmalloc",
	[VM_REGION_VMEMMAP] = "vmemmap",
	[VM_REGION_KERNEL_TEXT] = "kernel_text",
	[VM_REGION_MODULES] = "modules",
	[VM_REGION_PKMAP] = "pkmap",
	[VM_REGION_FIXMAP] = "fixmap",
};

const char *vm_region_name(enum vm_region_kind kind)
{
	return region_names[kind];
}

static const char *const split_names[] = { "3G/1G", "2G/2G", "1G/3G" };
static const uint64_t split_offsets[] = {
	0xc0000000ULL, 0x80000000ULL, 0x40000000ULL
};

const char *vm_vmsplit_name(enum vm_vmsplit s)
{
	return split_names[s];
}

int vm_vmsplit_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, split_names[i]) == 0)
			return i;
	return -1;
}

const char *vm_zone_name(enum vm_zone_id z)
{
	static const char *const names[] = { "DMA", "DMA32", "Normal",
					     "HighMem" };
	return names[z];
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Appends [start, next start) as a region; the caller adds regions in
 * address order and closes the list with the last one ending at the top.
 */
static void add_region(struct vm_layout *l, enum vm_region_kind kind,
		       uint64_t start, const char *description)
{
	struct vm_region *r = &l->regions[l->nregions++];

	if (l->nregions > 1)
		l->regions[l->nregions - 2].last = start - 1;
	r->kind = kind;
	r->start = start;
	r->last = UINT64_MAX;
	r->description = description;
}

/* Adds [start, end) and a hole after it, if end is not the next start. */
static void add_span(struct vm_layout *l, enum vm_region_kind kind,
		     uint64_t start, uint64_t end, const char *description)
{
	add_region(l, kind, start, description);
	add_region(l, VM_REGION_HOLE, end, "unused hole");
}

/* 32-bit constants (SPEC 1.2: pgtable_32_areas.h values of real kernels). */
#define I386_FIXADDR_START 0xfff1d000ULL
#define I386_FIXADDR_TOP 0xfffff000ULL
#define VMALLOC_OFFSET (8 * VM_MiB)
#define VMALLOC_RESERVE (128 * VM_MiB)

static void layout_32(struct vm_layout *l)
{
	bool pae = l->arch->id == VM_ARCH_I386_PAE;
	uint64_t pkmap_base = pae ? 0xffa00000ULL : 0xff800000ULL;
	uint64_t last_pkmap = pae ? 512 : 1024;
	uint64_t maxmem;

	l->page_offset = split_offsets[l->vmsplit];
	l->task_size = l->page_offset;
	l->stack_top = l->task_size;
	l->vmalloc_end = pkmap_base - 2 * VM_PAGE_SIZE;
	maxmem = l->vmalloc_end - l->page_offset - VMALLOC_RESERVE;
	l->lowmem_bytes = min_u64(l->memory, maxmem);
	l->highmem_bytes = l->memory - l->lowmem_bytes;
	l->high_memory = l->page_offset + l->lowmem_bytes;
	l->vmalloc_start = l->high_memory + VMALLOC_OFFSET;

	add_region(l, VM_REGION_USER, 0, "user space");
	add_region(l, VM_REGION_DIRECT_MAP, l->page_offset,
		   "lowmem: the direct map of physical memory");
	add_region(l, VM_REGION_HOLE, l->high_memory,
		   "VMALLOC_OFFSET gap (8 MiB)");
	add_span(l, VM_REGION_VMALLOC, l->vmalloc_start, l->vmalloc_end,
		 "vmalloc: virtually contiguous kernel memory");
	add_span(l, VM_REGION_PKMAP, pkmap_base,
		 pkmap_base + last_pkmap * VM_PAGE_SIZE,
		 "pkmap: kmap window for highmem pages");
	add_span(l, VM_REGION_FIXMAP, I386_FIXADDR_START, I386_FIXADDR_TOP,
		 "fixmap: compile-time fixed addresses");
	l->regions[l->nregions - 1].last = 0xffffffffULL;
}

/* 64-bit constants (mm.rst; the fixmap start is a simulator constant). */
#define X64_USER_END 0x0000800000000000ULL
#define X64_DIRECT_SIZE (64 * VM_TiB)
#define X64_VMALLOC_BASE 0xffffc90000000000ULL
#define X64_VMALLOC_SIZE (32 * VM_TiB)
#define X64_VMEMMAP_BASE 0xffffea0000000000ULL
#define X64_VMEMMAP_SIZE (1 * VM_TiB)
#define X64_MODULES_START 0xffffffffa0000000ULL
#define X64_MODULES_END 0xffffffffff000000ULL
#define X64_FIXMAP_START 0xffffffffff580000ULL
#define X64_FIXMAP_END 0xffffffffff800000ULL
#define KASLR_VADDR_END 0xfffffe0000000000ULL /* CPU_ENTRY_AREA_BASE */
#define LA57_USER_END 0x0100000000000000ULL
#define LA57_DIRECT_SIZE (32ULL << 50)
#define LA57_VMALLOC_BASE 0xffa0000000000000ULL
#define LA57_VMALLOC_END 0xffd2000000000000ULL
#define LA57_VMEMMAP_BASE 0xffd4000000000000ULL
#define LA57_VMEMMAP_SIZE (1ULL << 49)

/*
 * arch/x86/mm/kaslr.c kernel_randomize_memory(): the direct map, vmalloc
 * and vmemmap regions, in that order, each take a random 1 GiB-aligned
 * share of the entropy left, per SPEC 1.2:
 * (rand % (remaining / regions_left)) & ~(1 GiB - 1). Linux draws
 * rand % (entropy + 1); the simulator follows the SPEC's formula.
 */
static void kaslr_bases(struct vm_layout *l, struct vm_rng *rng,
			uint64_t *direct_size)
{
	uint64_t size[3], *base[3] = { &l->page_offset, &l->vmalloc_start,
				       &l->vmemmap_base };
	uint64_t vaddr = l->arch->page_offset, remain;
	uint64_t ram_tb = (l->memory + VM_TiB - 1) / VM_TiB;

	size[0] = min_u64(64, ram_tb + 10) * VM_TiB;
	size[1] = X64_VMALLOC_SIZE;
	size[2] = X64_VMEMMAP_SIZE;
	remain = KASLR_VADDR_END - vaddr - size[0] - size[1] - size[2];
	for (int i = 0; i < 3; i++) {
		uint64_t entropy = vm_rng_next(rng) % (remain / (3 - i));

		entropy &= ~(VM_GiB - 1);
		vaddr += entropy;
		*base[i] = vaddr;
		vaddr += size[i];
		vaddr = (vaddr + 1 + VM_GiB - 1) & ~(VM_GiB - 1);
		remain -= entropy;
	}
	*direct_size = size[0];
}

static void layout_64(struct vm_layout *l, struct vm_rng *rng)
{
	bool la57 = l->arch->id == VM_ARCH_X86_64_LA57;
	uint64_t direct_size = la57 ? LA57_DIRECT_SIZE : X64_DIRECT_SIZE;
	uint64_t vmalloc_size, vmemmap_size;

	l->task_size = l->arch->task_size;
	/* User mappings stay under the 47-bit DEFAULT_MAP_WINDOW. */
	l->stack_top = 0x00007ffffffff000ULL;
	l->kernel_map = VM_START_KERNEL_MAP;
	l->lowmem_bytes = l->memory;
	l->highmem_bytes = 0;
	if (la57) {
		l->page_offset = l->arch->page_offset;
		l->vmalloc_start = LA57_VMALLOC_BASE;
		vmalloc_size = LA57_VMALLOC_END - LA57_VMALLOC_BASE;
		l->vmemmap_base = LA57_VMEMMAP_BASE;
		vmemmap_size = LA57_VMEMMAP_SIZE;
	} else {
		l->page_offset = l->arch->page_offset;
		l->vmalloc_start = X64_VMALLOC_BASE;
		vmalloc_size = X64_VMALLOC_SIZE;
		l->vmemmap_base = X64_VMEMMAP_BASE;
		vmemmap_size = X64_VMEMMAP_SIZE;
		if (l->kaslr)
			kaslr_bases(l, rng, &direct_size);
	}
	l->vmalloc_end = l->vmalloc_start + vmalloc_size;
	l->high_memory = l->page_offset + l->memory;

	add_span(l, VM_REGION_USER, 0, la57 ? LA57_USER_END : X64_USER_END,
		 "user space");
	l->regions[l->nregions - 1].description =
		"non-canonical gap and guard hole";
	add_span(l, VM_REGION_DIRECT_MAP, l->page_offset,
		 l->page_offset + direct_size,
		 "direct map of all physical memory (page_offset_base)");
	add_span(l, VM_REGION_VMALLOC, l->vmalloc_start, l->vmalloc_end,
		 "vmalloc/ioremap space (vmalloc_base)");
	add_span(l, VM_REGION_VMEMMAP, l->vmemmap_base,
		 l->vmemmap_base + vmemmap_size,
		 "virtual memory map: the struct page array (vmemmap_base)");
	l->regions[l->nregions - 1].description =
		"unused holes, cpu_entry_area, %esp fixup stacks, EFI";
	add_region(l, VM_REGION_KERNEL_TEXT, VM_START_KERNEL_MAP,
		   "kernel text mapping (__START_KERNEL_map)");
	add_span(l, VM_REGION_MODULES, X64_MODULES_START, X64_MODULES_END,
		 "module mapping space");
	add_span(l, VM_REGION_FIXMAP, X64_FIXMAP_START, X64_FIXMAP_END,
		 "fixmap, with the legacy vsyscall page at 0xffffffffff600000");
}

void vm_layout_init(struct vm_layout *l, const struct vm_arch *arch,
		    uint64_t memory, enum vm_vmsplit vmsplit, bool kaslr,
		    struct vm_rng *rng)
{
	uint64_t lowmem_pfn;

	memset(l, 0, sizeof(*l));
	l->arch = arch;
	l->memory = memory;
	l->vmsplit = arch->is64 ? VM_VMSPLIT_3G_1G : vmsplit;
	l->kaslr = kaslr;
	if (arch->is64)
		layout_64(l, rng);
	else
		layout_32(l);
	l->mmap_base = l->stack_top - 128 * VM_MiB;
	l->kernel_pgd_boundary = vm_level_index(arch, 0, l->page_offset);

	/* Zones: arch/x86/mm/init.c zone_sizes_init(). */
	l->max_pfn = memory >> VM_PAGE_SHIFT;
	lowmem_pfn = l->lowmem_bytes >> VM_PAGE_SHIFT;
	l->zone_start_pfn[VM_ZONE_DMA] = 0;
	l->zone_end_pfn[VM_ZONE_DMA] = min_u64(16 * VM_MiB >> VM_PAGE_SHIFT,
					       lowmem_pfn);
	if (arch->is64) {
		uint64_t dma32 = min_u64(4 * VM_GiB >> VM_PAGE_SHIFT,
					 l->max_pfn);

		l->zone_start_pfn[VM_ZONE_DMA32] = l->zone_end_pfn[VM_ZONE_DMA];
		l->zone_end_pfn[VM_ZONE_DMA32] = dma32;
		l->zone_start_pfn[VM_ZONE_NORMAL] = dma32;
		l->zone_end_pfn[VM_ZONE_NORMAL] = l->max_pfn;
		l->zone_start_pfn[VM_ZONE_HIGHMEM] = l->max_pfn;
		l->zone_end_pfn[VM_ZONE_HIGHMEM] = l->max_pfn;
	} else {
		l->zone_start_pfn[VM_ZONE_DMA32] = l->zone_end_pfn[VM_ZONE_DMA];
		l->zone_end_pfn[VM_ZONE_DMA32] = l->zone_end_pfn[VM_ZONE_DMA];
		l->zone_start_pfn[VM_ZONE_NORMAL] = l->zone_end_pfn[VM_ZONE_DMA];
		l->zone_end_pfn[VM_ZONE_NORMAL] = lowmem_pfn;
		l->zone_start_pfn[VM_ZONE_HIGHMEM] = lowmem_pfn;
		l->zone_end_pfn[VM_ZONE_HIGHMEM] = l->max_pfn;
	}

	/*
	 * mem_map, one struct page per frame, at the top of lowmem. On 64-bit
	 * vmemmap maps it with 2 MiB pages, so it is 2 MiB aligned there.
	 */
	{
		uint64_t bytes = l->max_pfn * arch->struct_page;
		uint64_t align = arch->is64 ? 2 * VM_MiB : VM_PAGE_SIZE;
		uint64_t size = (bytes + align - 1) & ~(align - 1);
		uint64_t top = l->lowmem_bytes & ~(align - 1);

		l->mem_map_pages = size >> VM_PAGE_SHIFT;
		l->mem_map_pfn = (top - size) >> VM_PAGE_SHIFT;
	}
}

const struct vm_region *vm_layout_region(const struct vm_layout *l,
					 uint64_t va)
{
	unsigned lo = 0, hi = l->nregions - 1;

	/* Most translations are of user addresses: the first region. */
	if (hi > 0 && va < l->regions[1].start)
		return &l->regions[0];
	while (lo < hi) {
		unsigned mid = (lo + hi + 1) / 2;

		if (l->regions[mid].start <= va)
			lo = mid;
		else
			hi = mid - 1;
	}
	return &l->regions[lo];
}

enum vm_zone_id vm_layout_zone_of(const struct vm_layout *l, uint64_t pfn)
{
	for (int z = 0; z < VM_ZONE_COUNT; z++)
		if (pfn >= l->zone_start_pfn[z] && pfn < l->zone_end_pfn[z])
			return (enum vm_zone_id)z;
	return VM_ZONE_NORMAL;
}

bool vm_layout_zone_populated(const struct vm_layout *l, enum vm_zone_id z)
{
	return l->zone_end_pfn[z] > l->zone_start_pfn[z];
}
