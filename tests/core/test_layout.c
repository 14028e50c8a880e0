/*
 * test_layout.c - the architecture tables, the virtual layout and the zones
 * (SPEC 1.1, 1.2, 1.3), checked against literal values: the worked index
 * splits and quick-reference table of linux_facts.md section 0, the region
 * tables of Documentation/arch/x86/x86_64/mm.rst, and the 32-bit "virtual
 * kernel memory layout" boot lines (pgtable_32_areas.h).
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/arch.h"
#include "core/buddy.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/process.h"
#include "core/rng.h"
#include "core/translate.h"
#include "tests/core/testutil.h"

static void translate_pid(const struct vm_machine *m, uint32_t pid,
			  uint64_t va, enum vm_mode mode,
			  struct vm_translation *t)
{
	struct vm_translate_req q = { .va = va, .has_pid = true, .pid = pid,
				      .mode = mode, .access = VM_ACCESS_READ };
	struct vm_error e = { 0 };
	int rc = vm_translate(m, &q, t, &e);

	ck_assert_msg(rc == 0, "translate %#llx: %s", (unsigned long long)va,
		      e.detail);
}

/*
 * The regions tile the address space: the first starts at 0, each starts
 * one past the previous one's last, and the last ends at the top (SPEC 2.3).
 */
static void assert_tiles(const struct vm_layout *l)
{
	uint64_t top = l->arch->is64 ? UINT64_MAX : 0xffffffffULL;

	ck_assert_uint_ge(l->nregions, 2);
	ck_assert_uint_le(l->nregions, VM_MAX_REGIONS);
	ck_assert_uint_eq(l->regions[0].start, 0);
	for (unsigned i = 0; i < l->nregions; i++) {
		const struct vm_region *r = &l->regions[i];

		ck_assert_msg(r->start <= r->last, "region %u (%s) is empty", i,
			      vm_region_name(r->kind));
		if (i > 0)
			ck_assert_msg(r->start == l->regions[i - 1].last + 1,
				      "gap or overlap before region %u (%s): "
				      "start %#llx, previous last %#llx", i,
				      vm_region_name(r->kind),
				      (unsigned long long)r->start,
				      (unsigned long long)l->regions[i - 1].last);
		ck_assert_ptr_nonnull(r->description);
	}
	ck_assert_uint_eq(l->regions[l->nregions - 1].last, top);
}

/* vm_layout_region at both ends of every region, and one before each. */
static void assert_lookup(const struct vm_layout *l)
{
	for (unsigned i = 0; i < l->nregions; i++) {
		const struct vm_region *r = &l->regions[i];

		ck_assert_ptr_eq(vm_layout_region(l, r->start), r);
		ck_assert_ptr_eq(vm_layout_region(l, r->last), r);
		if (r->last - r->start >= 2)
			ck_assert_ptr_eq(vm_layout_region(l, r->start + 1), r);
		if (i > 0)
			ck_assert_ptr_eq(vm_layout_region(l, r->start - 1),
					 &l->regions[i - 1]);
	}
}

struct want_region {
	enum vm_region_kind kind;
	uint64_t start, last;
};

static void assert_regions(const struct vm_layout *l,
			   const struct want_region *w, unsigned n)
{
	ck_assert_uint_eq(l->nregions, n);
	for (unsigned i = 0; i < n; i++) {
		const struct vm_region *r = &l->regions[i];

		ck_assert_msg(r->kind == w[i].kind && r->start == w[i].start &&
				      r->last == w[i].last,
			      "region %u: got %s [%#llx, %#llx], want %s "
			      "[%#llx, %#llx]", i, vm_region_name(r->kind),
			      (unsigned long long)r->start,
			      (unsigned long long)r->last,
			      vm_region_name(w[i].kind),
			      (unsigned long long)w[i].start,
			      (unsigned long long)w[i].last);
	}
}

/* ---- 1. worked index splits (linux_facts.md section 0) ---------------- */

struct split {
	const char *arch;
	uint64_t va;
	unsigned idx[VM_MAX_LEVELS];
	uint64_t offset;
};

/*
 * The x86_64-la57 lines are computed from the same shifts (PGDIR_SHIFT 48,
 * P4D_SHIFT 39): the 4-level indices shifted down one level, the new top
 * index being bits 56..48.
 */
static const struct split splits[] = {
	{ "x86_64", 0xffff888000001234ULL, { 273, 0, 0, 1 }, 0x234 },
	{ "x86_64", 0xffffc90000000000ULL, { 402, 0, 0, 0 }, 0 },
	{ "x86_64", 0x00007ffffffff000ULL, { 255, 511, 511, 511 }, 0 },
	{ "x86_64", 0xffffffff81000000ULL, { 511, 510, 8, 0 }, 0 },
	{ "i386", 0xc0001234ULL, { 768, 1 }, 0x234 },
	{ "i386", 0x08048000ULL, { 32, 72 }, 0 },
	{ "i386-pae", 0xc0001234ULL, { 3, 0, 1 }, 0x234 },
	{ "i386-pae", 0x08048000ULL, { 0, 64, 72 }, 0 },
	{ "x86_64-la57", 0xff11000000001234ULL, { 273, 0, 0, 0, 1 }, 0x234 },
	{ "x86_64-la57", 0xffffffff81000000ULL, { 511, 511, 510, 8, 0 }, 0 },
	{ "x86_64-la57", 0x00007ffffffff000ULL, { 0, 255, 511, 511, 511 }, 0 },
};
#define NSPLITS (sizeof(splits) / sizeof(splits[0]))

START_TEST(worked_index_splits)
{
	const struct split *s = &splits[_i];
	const struct vm_arch *a = vm_arch_by_name(s->arch);

	ck_assert_ptr_nonnull(a);
	for (unsigned i = 0; i < a->levels; i++)
		ck_assert_msg(vm_level_index(a, i, s->va) == s->idx[i],
			      "%s %#llx level %s: index %u, want %u", s->arch,
			      (unsigned long long)s->va, a->level[i].name,
			      vm_level_index(a, i, s->va), s->idx[i]);
	ck_assert_uint_eq(s->va & (VM_PAGE_SIZE - 1), s->offset);
	/* The levels cover every bit below the canonical width. */
	ck_assert_uint_eq(a->level[a->levels - 1].shift, VM_PAGE_SHIFT);
}
END_TEST

/*
 * The same indices in an explain walk. The machine holds a vmalloc area
 * made first (so it starts at VMALLOC_START) and a process (for the user
 * addresses); every walked step must carry the index of its level.
 */
START_TEST(walk_shows_the_split_indices)
{
	const struct split *s = &splits[_i];
	struct vm_machine *m = tu_boot(s->arch, VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_translation t;
	uint64_t vm = tu_vmalloc(m, 4 * VM_PAGE_SIZE, true).u.vmalloc.va;
	uint32_t pid = tu_create(m, "init", true);
	enum vm_mode mode = s->va >= l->task_size ? VM_MODE_KERNEL
						 : VM_MODE_USER;

	ck_assert_uint_eq(vm, l->vmalloc_start);
	translate_pid(m, pid, s->va, mode, &t);
	ck_assert_uint_ge(t.nwalk, 1);
	for (unsigned i = 0; i < t.nwalk; i++) {
		ck_assert_uint_eq(t.walk[i].level, i);
		ck_assert_msg(t.walk[i].index == s->idx[i],
			      "%s %#llx: walk step %u index %u, want %u",
			      s->arch, (unsigned long long)s->va, i,
			      t.walk[i].index, s->idx[i]);
	}
	if (s->va == 0x00007ffffffff000ULL) {
		/* The last user page is left unmapped, under a mapped stack:
		 * the walk reaches the PTE and finds it empty. */
		ck_assert(!t.ok);
		ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
		ck_assert_uint_eq(t.nwalk, l->arch->levels);
	} else {
		ck_assert_msg(t.ok, "%s %#llx: %s", s->arch,
			      (unsigned long long)s->va, t.fault.reason);
		ck_assert_uint_eq(t.pa & (VM_PAGE_SIZE - 1), s->offset);
	}
	/* Direct map and kernel text: __pa of the split's address. */
	if (s->va == 0xc0001234ULL || s->va == 0xffff888000001234ULL ||
	    s->va == 0xff11000000001234ULL)
		ck_assert_uint_eq(t.pa, 0x1234);
	if (s->va == 0xffffffff81000000ULL)
		ck_assert_uint_eq(t.pa, 0x1000000);
	vm_machine_free(m);
}
END_TEST

/* ---- 2. arch tables and per-arch constants (SPEC 1.1) ------------------ */

struct arch_want {
	const char *name;
	unsigned levels;
	const char *names[VM_MAX_LEVELS];
	unsigned shift[VM_MAX_LEVELS];
	unsigned entries[VM_MAX_LEVELS];
	bool large[VM_MAX_LEVELS];
	unsigned entry_size;
	bool nx, is64;
	unsigned va_bits;
	uint64_t page_offset, task_size;
	unsigned boundary;
	uint64_t mmap_base;
	uint64_t vmalloc_start, vmalloc_end;
};

static const struct arch_want arch_wants[] = {
	{ "i386", 2, { "PGD", "PTE" }, { 22, 12 }, { 1024, 1024 },
	  { true, false }, 4, false, false, 32, 0xc0000000ULL, 0xc0000000ULL,
	  768, 0xb8000000ULL, 0xf7ffe000ULL, 0xff7fe000ULL },
	{ "i386-pae", 3, { "PGD", "PMD", "PTE" }, { 30, 21, 12 },
	  { 4, 512, 512 }, { false, true, false }, 8, true, false, 32,
	  0xc0000000ULL, 0xc0000000ULL, 3, 0xb8000000ULL, 0xf81fe000ULL,
	  0xff9fe000ULL },
	{ "x86_64", 4, { "PGD", "PUD", "PMD", "PTE" }, { 39, 30, 21, 12 },
	  { 512, 512, 512, 512 }, { false, true, true, false }, 8, true, true,
	  48, 0xffff888000000000ULL, 0x00007ffffffff000ULL, 273,
	  0x7ffff7fff000ULL, 0xffffc90000000000ULL, 0xffffe90000000000ULL },
	{ "x86_64-la57", 5, { "PGD", "P4D", "PUD", "PMD", "PTE" },
	  { 48, 39, 30, 21, 12 }, { 512, 512, 512, 512, 512 },
	  { false, false, true, true, false }, 8, true, true, 57,
	  0xff11000000000000ULL, 0x00fffffffffff000ULL, 273,
	  0x7ffff7fff000ULL, 0xffa0000000000000ULL, 0xffd2000000000000ULL },
};

START_TEST(arch_constants)
{
	const struct arch_want *w = &arch_wants[_i];
	const struct vm_arch *a = vm_arch_by_name(w->name);
	struct vm_machine *m;
	const struct vm_layout *l;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_eq(vm_arch_get(a->id), a);
	ck_assert_str_eq(a->name, w->name);
	ck_assert_uint_eq(a->levels, w->levels);
	for (unsigned i = 0; i < w->levels; i++) {
		ck_assert_str_eq(a->level[i].name, w->names[i]);
		ck_assert_uint_eq(a->level[i].shift, w->shift[i]);
		ck_assert_uint_eq(a->level[i].entries, w->entries[i]);
		ck_assert_msg(a->level[i].large == w->large[i],
			      "%s level %s: large pages %d", w->name,
			      w->names[i], a->level[i].large);
	}
	ck_assert_uint_eq(a->entry_size, w->entry_size);
	ck_assert(a->nx == w->nx);
	ck_assert(a->is64 == w->is64);
	ck_assert_uint_eq(a->va_bits, w->va_bits);
	ck_assert_uint_eq(a->page_offset, w->page_offset);
	ck_assert_uint_eq(a->task_size, w->task_size);

	/* The layout of a 2 GiB machine (for 32-bit: highmem present). */
	m = tu_boot(w->name, 2 * VM_GiB);
	l = vm_machine_layout(m);
	ck_assert_ptr_eq(l->arch, a);
	ck_assert_uint_eq(l->memory, 2 * VM_GiB);
	ck_assert_uint_eq(l->page_offset, w->page_offset);
	ck_assert_uint_eq(l->task_size, w->task_size);
	ck_assert_uint_eq(l->kernel_pgd_boundary, w->boundary);
	ck_assert_uint_eq(l->kernel_pgd_boundary,
			  vm_level_index(a, 0, l->page_offset));
	ck_assert_uint_eq(l->mmap_base, w->mmap_base);
	ck_assert_uint_eq(l->vmalloc_start, w->vmalloc_start);
	ck_assert_uint_eq(l->vmalloc_end, w->vmalloc_end);
	ck_assert_uint_eq(l->max_pfn, 2 * VM_GiB >> VM_PAGE_SHIFT);
	if (a->is64) {
		/* x86_64 high_memory is page_offset + RAM; no highmem. */
		ck_assert_uint_eq(l->high_memory, l->page_offset + 2 * VM_GiB);
		ck_assert_uint_eq(l->lowmem_bytes, 2 * VM_GiB);
		ck_assert_uint_eq(l->highmem_bytes, 0);
		ck_assert_uint_eq(l->kernel_map, VM_START_KERNEL_MAP);
		/* User mappings stay under the 47-bit DEFAULT_MAP_WINDOW. */
		ck_assert_uint_eq(l->stack_top, 0x00007ffffffff000ULL);
	} else {
		ck_assert_uint_eq(l->stack_top, l->task_size);
	}
	ck_assert_uint_eq(l->mmap_base, l->stack_top - 128 * VM_MiB);
	assert_tiles(l);
	assert_lookup(l);
	vm_machine_free(m);
}
END_TEST

/* Canonical addresses: bits 63..47 (63..56 with la57) all equal. */
START_TEST(canonical_addresses)
{
	const struct vm_arch *a4 = vm_arch_by_name("x86_64");
	const struct vm_arch *a5 = vm_arch_by_name("x86_64-la57");
	const struct vm_arch *a32 = vm_arch_by_name("i386");

	ck_assert(vm_arch_canonical(a4, 0x00007fffffffffffULL));
	ck_assert(!vm_arch_canonical(a4, 0x0000800000000000ULL));
	ck_assert(!vm_arch_canonical(a4, 0xffff7fffffffffffULL));
	ck_assert(vm_arch_canonical(a4, 0xffff800000000000ULL));
	ck_assert(vm_arch_canonical(a4, UINT64_MAX));
	ck_assert(vm_arch_canonical(a5, 0x0000800000000000ULL));
	ck_assert(vm_arch_canonical(a5, 0x00ffffffffffffffULL));
	ck_assert(!vm_arch_canonical(a5, 0x0100000000000000ULL));
	ck_assert(!vm_arch_canonical(a5, 0xfeffffffffffffffULL));
	ck_assert(vm_arch_canonical(a5, 0xff00000000000000ULL));
	ck_assert(vm_arch_canonical(a32, 0xffffffffULL));
	ck_assert_uint_eq(vm_arch_canon(a4, 0x0000800000000000ULL),
			  0xffff800000000000ULL);
	ck_assert_uint_eq(vm_arch_va_limit(a32), 1ULL << 32);
	ck_assert_uint_eq(vm_arch_va_limit(a4), 0);
	ck_assert_ptr_null(vm_arch_by_name("arm64"));
}
END_TEST

/* ---- 3. the 32-bit layout per vmsplit (SPEC 1.1, 1.2) ------------------ */

struct split32 {
	const char *arch;
	enum vm_vmsplit split;
	uint64_t memory;
	uint64_t page_offset;
	unsigned boundary;
	uint64_t mmap_base;
	uint64_t lowmem;       /* bytes */
	uint64_t high_memory;
	uint64_t vmalloc_start;
};

/*
 * MAXMEM = VMALLOC_END - PAGE_OFFSET - 128 MiB; high_memory = PAGE_OFFSET
 * + min(RAM, MAXMEM); VMALLOC_START = high_memory + 8 MiB. VMALLOC_END is
 * 0xff7fe000 (non-PAE) or 0xff9fe000 (PAE) whatever the split.
 */
static const struct split32 splits32[] = {
	{ "i386", VM_VMSPLIT_3G_1G, 2 * VM_GiB, 0xc0000000ULL, 768,
	  0xb8000000ULL, 0x377fe000ULL, 0xf77fe000ULL, 0xf7ffe000ULL },
	{ "i386", VM_VMSPLIT_2G_2G, 2 * VM_GiB, 0x80000000ULL, 512,
	  0x78000000ULL, 0x777fe000ULL, 0xf77fe000ULL, 0xf7ffe000ULL },
	{ "i386", VM_VMSPLIT_1G_3G, 2 * VM_GiB, 0x40000000ULL, 256,
	  0x38000000ULL, 0x80000000ULL, 0xc0000000ULL, 0xc0800000ULL },
	{ "i386-pae", VM_VMSPLIT_3G_1G, 2 * VM_GiB, 0xc0000000ULL, 3,
	  0xb8000000ULL, 0x379fe000ULL, 0xf79fe000ULL, 0xf81fe000ULL },
	{ "i386-pae", VM_VMSPLIT_2G_2G, 2 * VM_GiB, 0x80000000ULL, 2,
	  0x78000000ULL, 0x779fe000ULL, 0xf79fe000ULL, 0xf81fe000ULL },
	{ "i386-pae", VM_VMSPLIT_1G_3G, 2 * VM_GiB, 0x40000000ULL, 1,
	  0x38000000ULL, 0x80000000ULL, 0xc0000000ULL, 0xc0800000ULL },
	/* RAM sizes around MAXMEM with the default split. */
	{ "i386", VM_VMSPLIT_3G_1G, 512 * VM_MiB, 0xc0000000ULL, 768,
	  0xb8000000ULL, 0x20000000ULL, 0xe0000000ULL, 0xe0800000ULL },
	{ "i386", VM_VMSPLIT_3G_1G, VM_GiB, 0xc0000000ULL, 768,
	  0xb8000000ULL, 0x377fe000ULL, 0xf77fe000ULL, 0xf7ffe000ULL },
	{ "i386", VM_VMSPLIT_3G_1G, 4 * VM_GiB, 0xc0000000ULL, 768,
	  0xb8000000ULL, 0x377fe000ULL, 0xf77fe000ULL, 0xf7ffe000ULL },
	{ "i386-pae", VM_VMSPLIT_3G_1G, 512 * VM_MiB, 0xc0000000ULL, 3,
	  0xb8000000ULL, 0x20000000ULL, 0xe0000000ULL, 0xe0800000ULL },
	{ "i386-pae", VM_VMSPLIT_3G_1G, VM_GiB, 0xc0000000ULL, 3,
	  0xb8000000ULL, 0x379fe000ULL, 0xf79fe000ULL, 0xf81fe000ULL },
	{ "i386-pae", VM_VMSPLIT_3G_1G, 8 * VM_GiB, 0xc0000000ULL, 3,
	  0xb8000000ULL, 0x379fe000ULL, 0xf79fe000ULL, 0xf81fe000ULL },
};
#define NSPLITS32 (sizeof(splits32) / sizeof(splits32[0]))

START_TEST(layout_32bit)
{
	const struct split32 *s = &splits32[_i];
	bool pae = strcmp(s->arch, "i386-pae") == 0;
	uint64_t pkmap = pae ? 0xffa00000ULL : 0xff800000ULL;
	uint64_t npkmap = pae ? 512 : 1024;    /* LAST_PKMAP */
	uint64_t vend = pae ? 0xff9fe000ULL : 0xff7fe000ULL;
	struct vm_config c;
	struct vm_machine *m;
	const struct vm_layout *l;

	tu_config(&c, s->arch, s->memory);
	c.vmsplit = s->split;
	m = tu_boot_config(&c);
	l = vm_machine_layout(m);
	ck_assert_uint_eq(l->vmsplit, s->split);
	ck_assert_uint_eq(l->page_offset, s->page_offset);
	ck_assert_uint_eq(l->task_size, s->page_offset);
	ck_assert_uint_eq(l->kernel_pgd_boundary, s->boundary);
	ck_assert_uint_eq(l->mmap_base, s->mmap_base);
	ck_assert_uint_eq(l->lowmem_bytes, s->lowmem);
	ck_assert_uint_eq(l->highmem_bytes, s->memory - s->lowmem);
	ck_assert_uint_eq(l->high_memory, s->high_memory);
	ck_assert_uint_eq(l->vmalloc_start, s->vmalloc_start);
	ck_assert_uint_eq(l->vmalloc_end, vend);
	/* The formulas behind the literals. */
	ck_assert_uint_eq(vend, pkmap - 2 * VM_PAGE_SIZE);
	ck_assert_uint_eq(l->vmalloc_start, l->high_memory + 8 * VM_MiB);
	ck_assert_uint_eq(l->lowmem_bytes,
			  s->memory < vend - s->page_offset - 128 * VM_MiB
				  ? s->memory
				  : vend - s->page_offset - 128 * VM_MiB);
	{
		const struct want_region w[] = {
			{ VM_REGION_USER, 0, s->page_offset - 1 },
			{ VM_REGION_DIRECT_MAP, s->page_offset,
			  s->high_memory - 1 },
			{ VM_REGION_HOLE, s->high_memory,
			  s->vmalloc_start - 1 },
			{ VM_REGION_VMALLOC, s->vmalloc_start, vend - 1 },
			{ VM_REGION_HOLE, vend, pkmap - 1 },
			{ VM_REGION_PKMAP, pkmap,
			  pkmap + npkmap * VM_PAGE_SIZE - 1 },
			{ VM_REGION_HOLE, pkmap + npkmap * VM_PAGE_SIZE,
			  0xfff1cfffULL },
			{ VM_REGION_FIXMAP, 0xfff1d000ULL, 0xffffefffULL },
			{ VM_REGION_HOLE, 0xfffff000ULL, 0xffffffffULL },
		};

		assert_regions(l, w, sizeof(w) / sizeof(w[0]));
	}
	/* The pkmap window ends at 0xffc00000 on both formats. */
	ck_assert_uint_eq(pkmap + npkmap * VM_PAGE_SIZE, 0xffc00000ULL);
	assert_tiles(l);
	assert_lookup(l);
	ck_assert_int_eq(vm_layout_region(l, s->page_offset + 0x1234)->kind,
			 VM_REGION_DIRECT_MAP);
	ck_assert_int_eq(vm_layout_region(l, s->page_offset - 1)->kind,
			 VM_REGION_USER);
	ck_assert_int_eq(vm_layout_region(l, s->high_memory)->kind,
			 VM_REGION_HOLE);
	ck_assert_int_eq(vm_layout_region(l, 0xffbfffffULL)->kind,
			 VM_REGION_PKMAP);
	ck_assert_int_eq(vm_layout_region(l, 0xfff1d000ULL)->kind,
			 VM_REGION_FIXMAP);
	ck_assert_int_eq(vm_layout_region(l, 0xffffffffULL)->kind,
			 VM_REGION_HOLE);
	vm_machine_free(m);
}
END_TEST

/* ---- 4. the 64-bit region tables (mm.rst) ------------------------------ */

START_TEST(regions_x86_64)
{
	static const struct want_region w[] = {
		{ VM_REGION_USER, 0, 0x00007fffffffffffULL },
		{ VM_REGION_HOLE, 0x0000800000000000ULL, 0xffff887fffffffffULL },
		{ VM_REGION_DIRECT_MAP, 0xffff888000000000ULL,
		  0xffffc87fffffffffULL },
		{ VM_REGION_HOLE, 0xffffc88000000000ULL, 0xffffc8ffffffffffULL },
		{ VM_REGION_VMALLOC, 0xffffc90000000000ULL,
		  0xffffe8ffffffffffULL },
		{ VM_REGION_HOLE, 0xffffe90000000000ULL, 0xffffe9ffffffffffULL },
		{ VM_REGION_VMEMMAP, 0xffffea0000000000ULL,
		  0xffffeaffffffffffULL },
		{ VM_REGION_HOLE, 0xffffeb0000000000ULL, 0xffffffff7fffffffULL },
		{ VM_REGION_KERNEL_TEXT, 0xffffffff80000000ULL,
		  0xffffffff9fffffffULL },
		{ VM_REGION_MODULES, 0xffffffffa0000000ULL,
		  0xfffffffffeffffffULL },
		{ VM_REGION_HOLE, 0xffffffffff000000ULL, 0xffffffffff57ffffULL },
		{ VM_REGION_FIXMAP, 0xffffffffff580000ULL,
		  0xffffffffff7fffffULL },
		{ VM_REGION_HOLE, 0xffffffffff800000ULL, UINT64_MAX },
	};
	struct vm_machine *m = tu_boot("x86_64", VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);

	assert_regions(l, w, sizeof(w) / sizeof(w[0]));
	assert_tiles(l);
	assert_lookup(l);
	ck_assert_uint_eq(l->vmemmap_base, 0xffffea0000000000ULL);
	ck_assert_uint_eq(l->high_memory, 0xffff888040000000ULL);
	/* The vsyscall page is inside the fixmap; cpu_entry_area a hole. */
	ck_assert_int_eq(vm_layout_region(l, 0xffffffffff600000ULL)->kind,
			 VM_REGION_FIXMAP);
	ck_assert_int_eq(vm_layout_region(l, 0xfffffe0000000000ULL)->kind,
			 VM_REGION_HOLE);
	ck_assert_int_eq(vm_layout_region(l, 0xffffffff81000000ULL)->kind,
			 VM_REGION_KERNEL_TEXT);
	/* The LDT remap slot below the direct map is a hole. */
	ck_assert_int_eq(vm_layout_region(l, 0xffff880000000000ULL)->kind,
			 VM_REGION_HOLE);
	vm_machine_free(m);
}
END_TEST

START_TEST(regions_x86_64_la57)
{
	static const struct want_region w[] = {
		{ VM_REGION_USER, 0, 0x00ffffffffffffffULL },
		{ VM_REGION_HOLE, 0x0100000000000000ULL, 0xff10ffffffffffffULL },
		{ VM_REGION_DIRECT_MAP, 0xff11000000000000ULL,
		  0xff90ffffffffffffULL },
		{ VM_REGION_HOLE, 0xff91000000000000ULL, 0xff9fffffffffffffULL },
		{ VM_REGION_VMALLOC, 0xffa0000000000000ULL,
		  0xffd1ffffffffffffULL },
		{ VM_REGION_HOLE, 0xffd2000000000000ULL, 0xffd3ffffffffffffULL },
		{ VM_REGION_VMEMMAP, 0xffd4000000000000ULL,
		  0xffd5ffffffffffffULL },
		{ VM_REGION_HOLE, 0xffd6000000000000ULL, 0xffffffff7fffffffULL },
		{ VM_REGION_KERNEL_TEXT, 0xffffffff80000000ULL,
		  0xffffffff9fffffffULL },
		{ VM_REGION_MODULES, 0xffffffffa0000000ULL,
		  0xfffffffffeffffffULL },
		{ VM_REGION_HOLE, 0xffffffffff000000ULL, 0xffffffffff57ffffULL },
		{ VM_REGION_FIXMAP, 0xffffffffff580000ULL,
		  0xffffffffff7fffffULL },
		{ VM_REGION_HOLE, 0xffffffffff800000ULL, UINT64_MAX },
	};
	struct vm_machine *m = tu_boot("x86_64-la57", VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);

	assert_regions(l, w, sizeof(w) / sizeof(w[0]));
	assert_tiles(l);
	assert_lookup(l);
	ck_assert_uint_eq(l->vmemmap_base, 0xffd4000000000000ULL);
	ck_assert_uint_eq(l->high_memory, 0xff11000040000000ULL);
	/* 47-bit user addresses are user space on la57 too. */
	ck_assert_int_eq(vm_layout_region(l, 0x0000800000000000ULL)->kind,
			 VM_REGION_USER);
	vm_machine_free(m);
}
END_TEST

/* ---- 5. KASLR (SPEC 1.2, arch/x86/mm/kaslr.c) -------------------------- */

#define KASLR_START 0xffff888000000000ULL
#define KASLR_VADDR_END 0xfffffe0000000000ULL

static struct vm_machine *boot_kaslr(uint64_t seed, uint64_t memory)
{
	struct vm_config c;

	tu_config(&c, "x86_64", memory);
	c.kaslr = true;
	c.seed = seed;
	return tu_boot_config(&c);
}

static const struct vm_region *region_of_kind(const struct vm_layout *l,
					      enum vm_region_kind kind)
{
	for (unsigned i = 0; i < l->nregions; i++)
		if (l->regions[i].kind == kind)
			return &l->regions[i];
	return NULL;
}

START_TEST(kaslr_bases)
{
	unsigned n = 8 * tu_scale();
	uint64_t prev[3] = { 0, 0, 0 };
	unsigned moved = 0;

	for (unsigned s = 1; s <= n; s++) {
		struct vm_machine *m = boot_kaslr(s, VM_GiB);
		struct vm_machine *again = boot_kaslr(s, VM_GiB);
		const struct vm_layout *l = vm_machine_layout(m);
		const struct vm_layout *l2 = vm_machine_layout(again);
		const struct vm_region *d, *v, *e;
		uint64_t base[3] = { l->page_offset, l->vmalloc_start,
				     l->vmemmap_base };

		ck_assert(l->kaslr);
		for (unsigned i = 0; i < 3; i++)
			ck_assert_msg((base[i] & (VM_GiB - 1)) == 0,
				      "seed %u: base %u %#llx not 1 GiB aligned",
				      s, i, (unsigned long long)base[i]);
		d = region_of_kind(l, VM_REGION_DIRECT_MAP);
		v = region_of_kind(l, VM_REGION_VMALLOC);
		e = region_of_kind(l, VM_REGION_VMEMMAP);
		ck_assert_ptr_nonnull(d);
		ck_assert_ptr_nonnull(v);
		ck_assert_ptr_nonnull(e);
		ck_assert_uint_eq(d->start, l->page_offset);
		ck_assert_uint_eq(v->start, l->vmalloc_start);
		ck_assert_uint_eq(v->last + 1, l->vmalloc_end);
		ck_assert_uint_eq(e->start, l->vmemmap_base);
		/* Sizes: direct map ceil(RAM / 1 TB) + 10 TB, vmalloc 32 TB,
		 * vmemmap 1 TB. */
		ck_assert_uint_eq(d->last - d->start + 1, 11 * VM_TiB);
		ck_assert_uint_eq(v->last - v->start + 1, 32 * VM_TiB);
		ck_assert_uint_eq(e->last - e->start + 1, VM_TiB);
		/* In order, apart, within [default base, vaddr_end). */
		ck_assert_uint_ge(d->start, KASLR_START);
		ck_assert_uint_lt(d->last, v->start);
		ck_assert_uint_lt(v->last, e->start);
		ck_assert_uint_lt(e->last, KASLR_VADDR_END);
		ck_assert_uint_eq(l->high_memory, l->page_offset + VM_GiB);
		ck_assert_uint_eq(l->kernel_pgd_boundary,
				  vm_level_index(l->arch, 0, l->page_offset));
		assert_tiles(l);
		assert_lookup(l);
		/* Deterministic per seed. */
		ck_assert_uint_eq(l2->page_offset, l->page_offset);
		ck_assert_uint_eq(l2->vmalloc_start, l->vmalloc_start);
		ck_assert_uint_eq(l2->vmemmap_base, l->vmemmap_base);
		/* Different seeds, different bases. */
		if (s > 1)
			ck_assert_msg(base[0] != prev[0] || base[1] != prev[1] ||
					      base[2] != prev[2],
				      "seeds %u and %u give the same bases",
				      s - 1, s);
		if (l->page_offset != KASLR_START)
			moved++;
		memcpy(prev, base, sizeof(prev));
		vm_machine_free(again);
		vm_machine_free(m);
	}
	ck_assert_uint_gt(moved, 0);
}
END_TEST

/*
 * SPEC 1.2's formula, restated from arch/x86/mm/kaslr.c: regions in order
 * (direct map, vmalloc, vmemmap), each drawing (rand % (remaining /
 * regions_left)) & ~(1 GiB - 1) from the PRNG seeded with `seed`, the next
 * starting at round_up(base + size + 1, 1 GiB); `remaining` loses what
 * each region drew, as remain_entropy does in Linux.
 */
static void kaslr_expected(uint64_t seed, uint64_t memory, uint64_t out[3])
{
	uint64_t ram_tb = (memory + VM_TiB - 1) / VM_TiB;
	uint64_t size[3] = { (ram_tb + 10 < 64 ? ram_tb + 10 : 64) * VM_TiB,
			     32 * VM_TiB, VM_TiB };
	uint64_t vaddr = KASLR_START, remain;
	struct vm_rng r;

	remain = KASLR_VADDR_END - vaddr - size[0] - size[1] - size[2];
	vm_rng_init(&r, seed);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t ent = vm_rng_next(&r) % (remain / (3 - i));

		ent &= ~(VM_GiB - 1);
		vaddr += ent;
		out[i] = vaddr;
		vaddr = (vaddr + size[i] + 1 + VM_GiB - 1) & ~(VM_GiB - 1);
		remain -= ent;
	}
}

/*
 * The bases follow the formula, with the machine's PRNG seeded from
 * `seed`: KASLR is the first thing boot draws (kernel_randomize_memory
 * runs in setup_arch, before any allocator exists).
 */
START_TEST(kaslr_follows_the_formula)
{
	static const uint64_t mems[] = { VM_GiB, 3 * VM_GiB };

	for (unsigned s = 0; s < 4 * tu_scale(); s++) {
		for (unsigned k = 0; k < 2; k++) {
			uint64_t seed = 0x9e3779b97f4a7c15ULL * (s + 1);
			struct vm_machine *m = boot_kaslr(seed, mems[k]);
			const struct vm_layout *l = vm_machine_layout(m);
			uint64_t got[3] = { l->page_offset, l->vmalloc_start,
					    l->vmemmap_base };
			uint64_t want[3];

			kaslr_expected(seed, mems[k], want);
			for (unsigned i = 0; i < 3; i++)
				ck_assert_msg(got[i] == want[i],
					      "seed %#llx region %u: %#llx, "
					      "formula %#llx",
					      (unsigned long long)seed, i,
					      (unsigned long long)got[i],
					      (unsigned long long)want[i]);
			vm_machine_free(m);
		}
	}
}
END_TEST

/* With KASLR the direct map still works: __pa and the walk agree. */
START_TEST(kaslr_direct_map_translates)
{
	struct vm_machine *m = boot_kaslr(12345, VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "init", true);
	struct vm_translation t;
	uint64_t pa = 0;
	struct vm_error e = { 0 };
	uint64_t vm = tu_vmalloc(m, VM_PAGE_SIZE, true).u.vmalloc.va;

	translate_pid(m, pid, l->page_offset + 0x5678, VM_MODE_KERNEL, &t);
	ck_assert_msg(t.ok, "%s", t.fault.reason);
	ck_assert_uint_eq(t.pa, 0x5678);
	ck_assert_int_eq(t.region, VM_REGION_DIRECT_MAP);
	ck_assert_int_eq(vm_virt_to_phys(m, l->page_offset + 0x5678, &pa, &e),
			 0);
	ck_assert_uint_eq(pa, 0x5678);
	ck_assert_uint_ge(vm, l->vmalloc_start);
	ck_assert_uint_lt(vm, l->vmalloc_end);
	translate_pid(m, pid, vm, VM_MODE_KERNEL, &t);
	ck_assert_msg(t.ok, "%s", t.fault.reason);
	ck_assert_int_eq(t.region, VM_REGION_VMALLOC);
	/* The default direct-map base is no longer the direct map. */
	if (l->page_offset > KASLR_START)
		ck_assert_int_eq(vm_layout_region(l, KASLR_START)->kind,
				 VM_REGION_HOLE);
	vm_machine_free(m);
}
END_TEST

START_TEST(kaslr_refused_off_x86_64)
{
	static const char *const other[] = { "i386", "i386-pae",
					     "x86_64-la57" };
	struct vm_config c;
	struct vm_error e = { 0 };
	struct vm_machine *m = NULL;

	tu_config(&c, other[_i], VM_GiB);
	c.kaslr = true;
	ck_assert_int_eq(vm_config_check(&c, &e), VM_EINVAL);
	ck_assert_msg(strstr(e.detail, "kaslr") != NULL, "%s", e.detail);
	ck_assert_int_eq(vm_machine_create(&c, &m, &e), VM_EINVAL);
	ck_assert_ptr_null(m);
}
END_TEST

/* ---- 6. zones (SPEC 1.3, arch/x86/mm/init.c zone_sizes_init) ----------- */

struct zone_want {
	const char *arch;
	uint64_t memory;
	enum vm_vmsplit split;
	uint64_t start[VM_ZONE_COUNT], end[VM_ZONE_COUNT]; /* pfns; equal: none */
};

#define PFN(bytes) ((uint64_t)(bytes) >> VM_PAGE_SHIFT)
#define DMA_END PFN(16 * VM_MiB)
#define DMA32_END PFN(4 * VM_GiB)

static const struct zone_want zone_wants[] = {
	{ "x86_64", VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, DMA_END, 0, 0 }, { DMA_END, PFN(VM_GiB), 0, 0 } },
	{ "x86_64", 32 * VM_MiB, VM_VMSPLIT_3G_1G,
	  { 0, DMA_END, 0, 0 }, { DMA_END, PFN(32 * VM_MiB), 0, 0 } },
	{ "x86_64", 4 * VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, DMA_END, 0, 0 }, { DMA_END, DMA32_END, 0, 0 } },
	{ "x86_64", 6 * VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, DMA_END, DMA32_END, 0 },
	  { DMA_END, DMA32_END, PFN(6 * VM_GiB), 0 } },
	{ "x86_64-la57", 6 * VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, DMA_END, DMA32_END, 0 },
	  { DMA_END, DMA32_END, PFN(6 * VM_GiB), 0 } },
	{ "i386", 2 * VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, 0, DMA_END, PFN(0x377fe000) },
	  { DMA_END, 0, PFN(0x377fe000), PFN(2 * VM_GiB) } },
	{ "i386", 512 * VM_MiB, VM_VMSPLIT_3G_1G,
	  { 0, 0, DMA_END, 0 }, { DMA_END, 0, PFN(512 * VM_MiB), 0 } },
	{ "i386", 2 * VM_GiB, VM_VMSPLIT_1G_3G,
	  { 0, 0, DMA_END, 0 }, { DMA_END, 0, PFN(2 * VM_GiB), 0 } },
	{ "i386-pae", 8 * VM_GiB, VM_VMSPLIT_3G_1G,
	  { 0, 0, DMA_END, PFN(0x379fe000) },
	  { DMA_END, 0, PFN(0x379fe000), PFN(8 * VM_GiB) } },
	{ "i386-pae", VM_GiB, VM_VMSPLIT_2G_2G,
	  { 0, 0, DMA_END, 0 }, { DMA_END, 0, PFN(VM_GiB), 0 } },
};
#define NZONE_WANTS (sizeof(zone_wants) / sizeof(zone_wants[0]))

START_TEST(zones)
{
	const struct zone_want *w = &zone_wants[_i];
	struct vm_config c;
	struct vm_machine *m;
	const struct vm_layout *l;
	uint64_t total = 0;

	tu_config(&c, w->arch, w->memory);
	c.vmsplit = w->split;
	m = tu_boot_config(&c);
	l = vm_machine_layout(m);
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		bool pop = w->end[z] > w->start[z];
		struct vm_zone_info zi;

		memset(&zi, 0xff, sizeof(zi));
		vm_machine_zone_info(m, (enum vm_zone_id)z, &zi);
		ck_assert_msg(vm_machine_zone_populated(m, (enum vm_zone_id)z) ==
				      pop,
			      "%s %llu MiB zone %s: populated %d, want %d",
			      w->arch, (unsigned long long)(w->memory / VM_MiB),
			      vm_zone_name((enum vm_zone_id)z),
			      vm_machine_zone_populated(m, (enum vm_zone_id)z),
			      pop);
		ck_assert(vm_layout_zone_populated(l, (enum vm_zone_id)z) == pop);
		if (!pop) {
			/* Unpopulated: no frames, nothing free. */
			ck_assert_uint_eq(l->zone_start_pfn[z],
					  l->zone_end_pfn[z]);
			ck_assert_uint_eq(zi.free_pages, 0);
			for (int o = 0; o < VM_NR_ORDERS; o++)
				ck_assert_uint_eq(zi.free_blocks[o], 0);
			continue;
		}
		ck_assert_msg(l->zone_start_pfn[z] == w->start[z] &&
				      l->zone_end_pfn[z] == w->end[z],
			      "%s %llu MiB zone %s: [%#llx, %#llx), want "
			      "[%#llx, %#llx)", w->arch,
			      (unsigned long long)(w->memory / VM_MiB),
			      vm_zone_name((enum vm_zone_id)z),
			      (unsigned long long)l->zone_start_pfn[z],
			      (unsigned long long)l->zone_end_pfn[z],
			      (unsigned long long)w->start[z],
			      (unsigned long long)w->end[z]);
		ck_assert_int_eq(vm_layout_zone_of(l, w->start[z]), z);
		ck_assert_int_eq(vm_layout_zone_of(l, w->end[z] - 1), z);
		ck_assert_uint_gt(zi.free_pages, 0);
		ck_assert_uint_le(zi.free_pages, w->end[z] - w->start[z]);
		total += w->end[z] - w->start[z];
	}
	/* The populated zones hold every frame of RAM. */
	ck_assert_uint_eq(total, PFN(w->memory));
	ck_assert_uint_eq(l->max_pfn, PFN(w->memory));
	/* No DMA32 on 32-bit, no HighMem on 64-bit. */
	if (l->arch->is64)
		ck_assert(!vm_machine_zone_populated(m, VM_ZONE_HIGHMEM));
	else
		ck_assert(!vm_machine_zone_populated(m, VM_ZONE_DMA32));
	ck_assert_str_eq(vm_zone_name(VM_ZONE_DMA), "DMA");
	ck_assert_str_eq(vm_zone_name(VM_ZONE_DMA32), "DMA32");
	ck_assert_str_eq(vm_zone_name(VM_ZONE_NORMAL), "Normal");
	ck_assert_str_eq(vm_zone_name(VM_ZONE_HIGHMEM), "HighMem");
	vm_machine_free(m);
}
END_TEST

/* ---- 7. vm_config_check (SPEC 1.3, 1.5, 2.2) --------------------------- */

struct cfg_case {
	const char *arch;
	uint64_t memory;
	uint32_t cpus;
	enum vm_vmsplit split;
	bool kaslr;
	uint64_t max_memory;
	const char *field;   /* NULL: accepted */
};

static const struct cfg_case cfg_cases[] = {
	{ "x86_64", VM_GiB + VM_PAGE_SIZE, 1, 0, false, 0, "memory" },
	{ "i386", 512 * VM_MiB + 512 * 1024, 1, 0, false, 0, "memory" },
	{ "x86_64", 31 * VM_MiB, 1, 0, false, 0, "memory" },
	{ "i386", 31 * VM_MiB, 1, 0, false, 0, "memory" },
	{ "x86_64", 0, 1, 0, false, 0, "memory" },
	{ "i386", 4 * VM_GiB + VM_MiB, 1, 0, false, 0, "memory" },
	{ "i386-pae", 64 * VM_GiB + VM_MiB, 1, 0, false, 0, "memory" },
	{ "x86_64", 64 * VM_GiB + VM_MiB, 1, 0, false, 0, "memory" },
	{ "x86_64-la57", 64 * VM_GiB + VM_MiB, 1, 0, false, 0, "memory" },
	{ "x86_64", 2 * VM_GiB, 1, 0, false, VM_GiB, "memory" },
	{ "x86_64", VM_GiB, 0, 0, false, 0, "cpus" },
	{ "x86_64", VM_GiB, 65, 0, false, 0, "cpus" },
	{ "i386", VM_GiB, 0, 0, false, 0, "cpus" },
	{ "x86_64", VM_GiB, 1, VM_VMSPLIT_2G_2G, false, 0, "vmsplit" },
	{ "x86_64-la57", VM_GiB, 1, VM_VMSPLIT_1G_3G, false, 0, "vmsplit" },
	{ "i386", VM_GiB, 1, 0, true, 0, "kaslr" },
	/* Accepted: the limits themselves. */
	{ "x86_64", 32 * VM_MiB, 1, 0, false, 0, NULL },
	{ "i386", 32 * VM_MiB, 1, 0, false, 0, NULL },
	{ "i386", 4 * VM_GiB, 1, 0, false, 0, NULL },
	{ "i386-pae", 64 * VM_GiB, 1, 0, false, 0, NULL },
	{ "x86_64", 64 * VM_GiB, 1, 0, false, 0, NULL },
	{ "x86_64-la57", 64 * VM_GiB, 1, 0, false, 0, NULL },
	{ "x86_64", 65 * VM_GiB, 1, 0, false, 128 * VM_GiB, NULL },
	{ "x86_64", VM_GiB, 64, 0, false, 0, NULL },
	{ "i386", VM_GiB, 1, VM_VMSPLIT_1G_3G, false, 0, NULL },
	{ "i386-pae", VM_GiB, 1, VM_VMSPLIT_2G_2G, false, 0, NULL },
	{ "x86_64", VM_GiB, 1, 0, true, 0, NULL },
};
#define NCFG (sizeof(cfg_cases) / sizeof(cfg_cases[0]))

START_TEST(config_check)
{
	const struct cfg_case *k = &cfg_cases[_i];
	struct vm_config c;
	struct vm_error e = { 0 };
	int rc;

	tu_config(&c, k->arch, k->memory);
	c.cpus = k->cpus;
	c.vmsplit = k->split;
	c.kaslr = k->kaslr;
	c.max_memory = k->max_memory;
	rc = vm_config_check(&c, &e);
	if (!k->field) {
		ck_assert_msg(rc == 0, "%s %llu MiB cpus %u: refused: %s",
			      k->arch, (unsigned long long)(k->memory / VM_MiB),
			      k->cpus, e.detail);
		return;
	}
	/* A count outside its bounds is out of range; the rest invalid. */
	ck_assert_msg(rc == (strcmp(k->field, "cpus") == 0 ? VM_ERANGE
							   : VM_EINVAL),
		      "%s %llu bytes cpus %u split %d kaslr %d: rc %d, want "
		      "VM_EINVAL (VM_ERANGE for cpus)", k->arch,
		      (unsigned long long)k->memory, k->cpus, k->split,
		      k->kaslr, rc);
	ck_assert_int_eq(e.code, rc);
	ck_assert_msg(strstr(e.detail, k->field) != NULL,
		      "detail \"%s\" does not name %s", e.detail, k->field);
}
END_TEST

/* The defaults of SPEC 2.2, and that a refused config boots nothing. */
START_TEST(config_defaults)
{
	struct vm_config c;
	struct vm_machine *m = NULL;
	struct vm_error e = { 0 };

	vm_config_default(&c);
	ck_assert_int_eq(c.arch, VM_ARCH_X86_64);
	ck_assert_uint_eq(c.memory, VM_GiB);
	ck_assert_uint_eq(c.cpus, 1);
	ck_assert_uint_eq(c.seed, 0);
	ck_assert_uint_eq(c.churn, 1024);
	ck_assert_int_eq(c.vmsplit, VM_VMSPLIT_3G_1G);
	ck_assert(!c.kaslr);
	ck_assert_int_eq(vm_config_check(&c, &e), 0);
	c.cpus = 0;
	ck_assert_int_eq(vm_machine_create(&c, &m, &e), VM_ERANGE);
	ck_assert_ptr_null(m);
	ck_assert_str_eq(vm_vmsplit_name(VM_VMSPLIT_3G_1G), "3G/1G");
	ck_assert_str_eq(vm_vmsplit_name(VM_VMSPLIT_2G_2G), "2G/2G");
	ck_assert_str_eq(vm_vmsplit_name(VM_VMSPLIT_1G_3G), "1G/3G");
	ck_assert_int_eq(vm_vmsplit_parse("2G/2G"), VM_VMSPLIT_2G_2G);
	ck_assert_int_eq(vm_vmsplit_parse("3G/3G"), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("layout");
	TCase *tc = tcase_create("layout");

	tcase_add_loop_test(tc, worked_index_splits, 0, NSPLITS);
	tcase_add_loop_test(tc, walk_shows_the_split_indices, 0, NSPLITS);
	tcase_add_loop_test(tc, arch_constants, 0, 4);
	tcase_add_test(tc, canonical_addresses);
	tcase_add_loop_test(tc, layout_32bit, 0, NSPLITS32);
	tcase_add_test(tc, regions_x86_64);
	tcase_add_test(tc, regions_x86_64_la57);
	tcase_add_test(tc, kaslr_bases);
	tcase_add_test(tc, kaslr_follows_the_formula);
	tcase_add_test(tc, kaslr_direct_map_translates);
	tcase_add_loop_test(tc, kaslr_refused_off_x86_64, 0, 3);
	tcase_add_loop_test(tc, zones, 0, NZONE_WANTS);
	tcase_add_loop_test(tc, config_check, 0, NCFG);
	tcase_add_test(tc, config_defaults);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
