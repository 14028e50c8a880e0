/*
 * test_policy.c - the allocation policy every student-visible address
 * depends on (SPEC 1.3, 1.6): buddy order, splitting and merging, zone
 * fallback, the boot churn, kmalloc's cache choice and SLUB geometry.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/buddy.h"
#include "core/error.h"
#include "core/gfp.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/slab.h"
#include "core/vmalloc.h"
#include "tests/core/testutil.h"

/* GFP_ATOMIC: __GFP_HIGH | __GFP_KSWAPD_RECLAIM (gfp.h, 5.x-6.8 values). */
#define GFP_ATOMIC 0x820u

static struct vm_machine *boot(enum vm_arch_id arch, uint64_t memory,
			       uint64_t churn)
{
	struct vm_config c;

	vm_config_default(&c);
	c.arch = arch;
	c.memory = memory;
	c.churn = churn;
	return tu_boot_config(&c);
}

static int try_alloc_pages(struct vm_machine *m, unsigned order, uint32_t gfp,
			   struct vm_op_result *r)
{
	struct vm_op op = tu_op_alloc_pages(order, gfp);
	struct vm_error e = { 0 };

	return vm_machine_apply(m, &op, r, &e);
}

static int try_kmalloc(struct vm_machine *m, uint64_t size, uint32_t gfp,
		       struct vm_op_result *r, struct vm_error *e)
{
	struct vm_op op = tu_op_kmalloc(size, gfp);

	return vm_machine_apply(m, &op, r, e);
}

static int try_kfree(struct vm_machine *m, uint64_t va)
{
	struct vm_op op = tu_op_kfree(va);
	struct vm_error e = { 0 };

	return vm_machine_apply(m, &op, NULL, &e);
}

static const char *cache_name(const struct vm_machine *m,
			      const struct vm_op_result *r)
{
	struct vm_cache_info ci;

	if (r->u.kmalloc.zero)
		return "none";
	if (r->u.kmalloc.large)
		return "large";
	vm_slab_cache_info(m, r->u.kmalloc.cache, &ci);
	return ci.name;
}

/* The cache listed under name, or fails. */
static unsigned cache_by_name(const struct vm_machine *m, const char *name)
{
	for (unsigned i = 0; i < vm_slab_cache_count(); i++) {
		struct vm_cache_info ci;

		vm_slab_cache_info(m, i, &ci);
		if (strcmp(ci.name, name) == 0)
			return i;
	}
	ck_abort_msg("no cache named %s", name);
	return 0;
}

static void zones_snapshot(const struct vm_machine *m,
			   struct vm_zone_info z[VM_ZONE_COUNT])
{
	for (int i = 0; i < VM_ZONE_COUNT; i++)
		vm_machine_zone_info(m, (enum vm_zone_id)i, &z[i]);
}

static void assert_zones_eq(const struct vm_zone_info a[VM_ZONE_COUNT],
			    const struct vm_zone_info b[VM_ZONE_COUNT])
{
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		ck_assert_msg(a[z].free_pages == b[z].free_pages,
			      "zone %s: %llu free pages, expected %llu",
			      vm_zone_name((enum vm_zone_id)z),
			      (unsigned long long)b[z].free_pages,
			      (unsigned long long)a[z].free_pages);
		for (int o = 0; o < VM_NR_ORDERS; o++)
			ck_assert_msg(a[z].free_blocks[o] == b[z].free_blocks[o],
				      "zone %s order %d: %llu free blocks, "
				      "expected %llu",
				      vm_zone_name((enum vm_zone_id)z), o,
				      (unsigned long long)b[z].free_blocks[o],
				      (unsigned long long)a[z].free_blocks[o]);
	}
}

static enum vm_zone_id zone_of_pa(const struct vm_machine *m, uint64_t pa)
{
	return vm_layout_zone_of(vm_machine_layout(m), pa >> VM_PAGE_SHIFT);
}

/* ---- the buddy allocator ---- */

/*
 * SPEC 1.3: at boot the lowest address heads each list and a split keeps
 * the lower half, so on a pristine machine consecutive allocations ascend.
 */
START_TEST(pristine_order0_allocations_ascend)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, 0);
	uint64_t prev = 0;

	for (int i = 0; i < 64; i++) {
		struct vm_op_result r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);

		ck_assert_uint_eq(r.u.alloc_pages.order, 0);
		if (i > 0)
			ck_assert_msg(r.u.alloc_pages.pa == prev + VM_PAGE_SIZE,
				      "allocation %d: pa %#llx after %#llx", i,
				      (unsigned long long)r.u.alloc_pages.pa,
				      (unsigned long long)prev);
		prev = r.u.alloc_pages.pa;
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/*
 * SPEC 1.3, required consequence of the boot churn: a vmalloc of 8 pages
 * on a default machine is backed by frames that are not all contiguous,
 * also when they come from highmem (i386 with 2 GiB). Loop: 0 x86_64
 * 1 GiB, 1 i386 2 GiB.
 */
START_TEST(churn_scatters_vmalloc_frames)
{
	bool i386 = _i == 1;
	struct vm_machine *m = boot(i386 ? VM_ARCH_I386 : VM_ARCH_X86_64,
				    i386 ? 2 * VM_GiB : VM_GiB,
				    VM_DEFAULT_CHURN);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_op_result r;
	bool contiguous = true;
	int i;

	r = tu_vmalloc(m, 8 * VM_PAGE_SIZE, true);
	ck_assert_uint_eq(r.u.vmalloc.pages, 8);
	i = vm_vmalloc_at(m, r.u.vmalloc.va);
	ck_assert_int_ge(i, 0);
	for (uint64_t p = 0; p < 8; p++) {
		uint64_t pfn = vm_vmalloc_pfn(m, (uint32_t)i, p);
		struct vm_owner o = vm_machine_owner(m, pfn);

		ck_assert_int_eq(o.kind, VM_OWNER_VMALLOC);
		ck_assert_uint_eq(o.addr, r.u.vmalloc.va);
		if (i386) {
			/* GFP_KERNEL|__GFP_HIGHMEM: HighMem comes first. */
			ck_assert_int_eq(vm_layout_zone_of(l, pfn),
					 VM_ZONE_HIGHMEM);
			ck_assert_uint_ge(pfn << VM_PAGE_SHIFT, l->lowmem_bytes);
		}
		if (p > 0 && pfn != vm_vmalloc_pfn(m, (uint32_t)i, p - 1) + 1)
			contiguous = false;
	}
	ck_assert_msg(!contiguous, "the 8 frames of a vmalloc on a churned "
		      "machine are contiguous");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* The same machine with churn 0 gives contiguous frames: the churn is
 * what scatters them, not the vmalloc path. */
START_TEST(pristine_vmalloc_frames_are_contiguous)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, 0);
	struct vm_op_result r;
	int i;

	r = tu_vmalloc(m, 8 * VM_PAGE_SIZE, true);
	i = vm_vmalloc_at(m, r.u.vmalloc.va);
	ck_assert_int_ge(i, 0);
	for (uint64_t p = 1; p < 8; p++)
		ck_assert_uint_eq(vm_vmalloc_pfn(m, (uint32_t)i, p),
				  vm_vmalloc_pfn(m, (uint32_t)i, p - 1) + 1);
	vm_machine_free(m);
}
END_TEST

START_TEST(order0_alloc_free_restores_free_lists)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, 0);
	struct vm_zone_info before[VM_ZONE_COUNT], mid[VM_ZONE_COUNT];
	struct vm_zone_info after[VM_ZONE_COUNT];
	struct vm_op_result r;

	zones_snapshot(m, before);
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	zones_snapshot(m, mid);
	ck_assert_uint_eq(mid[VM_ZONE_DMA32].free_pages,
			  before[VM_ZONE_DMA32].free_pages - 1);
	tu_free_pages(m, r.u.alloc_pages.pa, 0);
	zones_snapshot(m, after);
	assert_zones_eq(before, after);
	vm_machine_free(m);
}
END_TEST

/*
 * An order-3 request on a zone whose smallest free block of order >= 3 is
 * an order-10 block splits it: the upper halves of orders 9, 8, ..., 3 go
 * on their lists (one block each gained), order 10 loses one. Freeing the
 * block merges all the way back.
 */
static void assert_split_from_order10(struct vm_machine *m, uint32_t gfp,
				      enum vm_zone_id zone)
{
	struct vm_zone_info before[VM_ZONE_COUNT], mid[VM_ZONE_COUNT];
	struct vm_zone_info after[VM_ZONE_COUNT];
	struct vm_op_result r;

	zones_snapshot(m, before);
	for (int o = 3; o < VM_MAX_ORDER; o++)
		ck_assert_uint_eq(before[zone].free_blocks[o], 0);
	ck_assert_uint_gt(before[zone].free_blocks[VM_MAX_ORDER], 0);
	r = tu_alloc_pages(m, 3, gfp);
	ck_assert_int_eq(r.u.alloc_pages.zone, zone);
	zones_snapshot(m, mid);
	for (int o = 0; o < 3; o++)
		ck_assert_uint_eq(mid[zone].free_blocks[o],
				  before[zone].free_blocks[o]);
	for (int o = 3; o < VM_MAX_ORDER; o++)
		ck_assert_msg(mid[zone].free_blocks[o] ==
				      before[zone].free_blocks[o] + 1,
			      "order %d: %llu free blocks after the split, "
			      "expected %llu", o,
			      (unsigned long long)mid[zone].free_blocks[o],
			      (unsigned long long)before[zone].free_blocks[o] + 1);
	ck_assert_uint_eq(mid[zone].free_blocks[VM_MAX_ORDER],
			  before[zone].free_blocks[VM_MAX_ORDER] - 1);
	ck_assert_uint_eq(mid[zone].free_pages, before[zone].free_pages - 8);
	/* The kept block is the lowest of the split order-10 block. */
	ck_assert_uint_eq(r.u.alloc_pages.pa % (VM_PAGE_SIZE << VM_MAX_ORDER),
			  0);
	tu_free_pages(m, r.u.alloc_pages.pa, 3);
	zones_snapshot(m, after);
	assert_zones_eq(before, after);
}

/* i386 2 GiB, churn 0: HighMem starts at pfn 0x377fe, so it holds one
 * order-1 block and then only order-10 blocks: a pristine zone. */
START_TEST(order3_splits_order10_on_pristine_highmem)
{
	struct vm_machine *m = boot(VM_ARCH_I386, 2 * VM_GiB, 0);

	assert_split_from_order10(m, VM_GFP_KERNEL | VM_GFP_HIGHMEM,
				  VM_ZONE_HIGHMEM);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* x86_64 1 GiB, churn 0: the boot tables left small blocks in DMA32;
 * taking every block of orders 9 down to 3 (each from its own list, no
 * split) leaves order 10 as the smallest that serves order 3. */
START_TEST(order3_splits_order10_after_draining)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, 0);
	struct vm_zone_info z;

	for (int o = VM_MAX_ORDER - 1; o >= 3; o--) {
		vm_machine_zone_info(m, VM_ZONE_DMA32, &z);
		for (uint64_t n = z.free_blocks[o]; n > 0; n--) {
			struct vm_op_result r =
				tu_alloc_pages(m, (unsigned)o, VM_GFP_KERNEL);

			ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_DMA32);
		}
		vm_machine_zone_info(m, VM_ZONE_DMA32, &z);
		ck_assert_uint_eq(z.free_blocks[o], 0);
	}
	assert_split_from_order10(m, VM_GFP_KERNEL, VM_ZONE_DMA32);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* Two buddies freed in turn: the first waits on the order-0 list, the
 * second merges with it and on up, restoring the lists. */
START_TEST(freeing_both_buddies_merges)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, 0);
	struct vm_zone_info before[VM_ZONE_COUNT], one[VM_ZONE_COUNT];
	struct vm_zone_info after[VM_ZONE_COUNT];
	struct vm_op_result a, b;
	uint64_t lo, hi;

	/* Allocations ascend (pristine): stop after an odd frame, so that
	 * the next two are an even frame and its buddy. */
	do
		a = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	while (!((a.u.alloc_pages.pa >> VM_PAGE_SHIFT) & 1));
	zones_snapshot(m, before);
	a = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	b = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	lo = a.u.alloc_pages.pa;
	hi = b.u.alloc_pages.pa;
	ck_assert_uint_eq((lo >> VM_PAGE_SHIFT) & 1, 0);
	ck_assert_uint_eq(hi, lo + VM_PAGE_SIZE);
	tu_free_pages(m, hi, 0);
	zones_snapshot(m, one);
	ck_assert_uint_eq(one[VM_ZONE_DMA32].free_blocks[0],
			  before[VM_ZONE_DMA32].free_blocks[0] + 1);
	tu_free_pages(m, lo, 0);
	zones_snapshot(m, after);
	assert_zones_eq(before, after);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* A freed block goes to the head of its list: the next request of that
 * order gets it back (LIFO), on a churned machine too. */
START_TEST(free_then_alloc_returns_the_same_block)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	struct vm_op_result a, b;

	a = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	tu_free_pages(m, a.u.alloc_pages.pa, 0);
	b = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	ck_assert_uint_eq(b.u.alloc_pages.pa, a.u.alloc_pages.pa);
	vm_machine_free(m);
}
END_TEST

/* ---- zone fallback ---- */

/* GFP_DMA: ZONE_DMA only, on every arch. */
START_TEST(gfp_dma_comes_from_zone_dma)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);

	for (unsigned order = 0; order <= 4; order++) {
		struct vm_op_result r = tu_alloc_pages(m, order, VM_GFP_DMA);

		ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_DMA);
		ck_assert_uint_lt(r.u.alloc_pages.pa +
					  (VM_PAGE_SIZE << order) - 1,
				  16 * VM_MiB);
		ck_assert(r.u.alloc_pages.has_va);
	}
	vm_machine_free(m);
}
END_TEST

/* The highest free order in a zone, or -1 when it is empty. */
static int top_order(const struct vm_machine *m, enum vm_zone_id zone)
{
	struct vm_zone_info z;

	vm_machine_zone_info(m, zone, &z);
	for (int o = VM_MAX_ORDER; o >= 0; o--)
		if (z.free_blocks[o])
			return o;
	return -1;
}

/*
 * i386 2 GiB: GFP_KERNEL takes Normal until it is empty, then DMA, and
 * never HighMem: with both lowmem zones empty it fails while HighMem is
 * still full.
 */
START_TEST(gfp_kernel_never_takes_highmem)
{
	struct vm_machine *m = boot(VM_ARCH_I386, 2 * VM_GiB, 0);
	struct vm_zone_info high0, high1;
	struct vm_op_result r;
	int o;

	vm_machine_zone_info(m, VM_ZONE_HIGHMEM, &high0);
	ck_assert_uint_gt(high0.free_pages, 0);
	while ((o = top_order(m, VM_ZONE_NORMAL)) >= 0) {
		r = tu_alloc_pages(m, (unsigned)o, VM_GFP_KERNEL);
		ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_NORMAL);
	}
	while ((o = top_order(m, VM_ZONE_DMA)) >= 0) {
		r = tu_alloc_pages(m, (unsigned)o, VM_GFP_KERNEL);
		ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_DMA);
	}
	ck_assert_int_eq(try_alloc_pages(m, 0, VM_GFP_KERNEL, &r), VM_ENOMEM);
	vm_machine_zone_info(m, VM_ZONE_HIGHMEM, &high1);
	ck_assert_uint_eq(high1.free_pages, high0.free_pages);
	/* Highmem is still there for whoever may use it. */
	r = tu_alloc_pages(m, 0, VM_GFP_HIGHUSER);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* __GFP_HIGHMEM|GFP_KERNEL tries HighMem first; GFP_KERNEL alone gets a
 * logical address. */
START_TEST(gfp_highmem_prefers_highmem)
{
	struct vm_machine *m = boot(VM_ARCH_I386, 2 * VM_GiB,
				    VM_DEFAULT_CHURN);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_op_result r;

	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
	ck_assert_uint_ge(r.u.alloc_pages.pa, l->lowmem_bytes);
	ck_assert(!r.u.alloc_pages.has_va);
	r = tu_alloc_pages(m, 2, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_NORMAL);
	ck_assert(r.u.alloc_pages.has_va);
	ck_assert_uint_eq(r.u.alloc_pages.va,
			  l->page_offset + r.u.alloc_pages.pa);
	vm_machine_free(m);
}
END_TEST

/* x86_64 with 8 GiB: GFP_DMA32 from DMA32 (below 4 GiB), GFP_KERNEL from
 * Normal; i386 has no DMA32, so GFP_DMA32 means Normal there (gfp.h's
 * OPT_ZONE_DMA32). */
START_TEST(gfp_dma32_comes_from_dma32)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, 8 * VM_GiB,
				    VM_DEFAULT_CHURN);
	struct vm_op_result r;

	ck_assert(vm_machine_zone_populated(m, VM_ZONE_NORMAL));
	for (unsigned order = 0; order <= 10; order += 5) {
		r = tu_alloc_pages(m, order, VM_GFP_DMA32);
		ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_DMA32);
		ck_assert_uint_ge(r.u.alloc_pages.pa, 16 * VM_MiB);
		ck_assert_uint_lt(r.u.alloc_pages.pa, 4 * VM_GiB);
	}
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_NORMAL);
	ck_assert_uint_ge(r.u.alloc_pages.pa, 4 * VM_GiB);
	vm_machine_free(m);

	m = boot(VM_ARCH_I386, 2 * VM_GiB, VM_DEFAULT_CHURN);
	r = tu_alloc_pages(m, 0, VM_GFP_DMA32);
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_NORMAL);
	vm_machine_free(m);
}
END_TEST

/* ---- kmalloc ---- */

static const struct {
	uint64_t size;
	const char *cache;   /* "large": kmalloc_large */
	unsigned order;      /* for large */
} size_table[] = {
	{ 1, "kmalloc-8", 0 },        { 8, "kmalloc-8", 0 },
	{ 9, "kmalloc-16", 0 },       { 16, "kmalloc-16", 0 },
	{ 17, "kmalloc-32", 0 },      { 32, "kmalloc-32", 0 },
	{ 33, "kmalloc-64", 0 },      { 64, "kmalloc-64", 0 },
	{ 65, "kmalloc-96", 0 },      { 96, "kmalloc-96", 0 },
	{ 97, "kmalloc-128", 0 },     { 128, "kmalloc-128", 0 },
	{ 129, "kmalloc-192", 0 },    { 192, "kmalloc-192", 0 },
	{ 193, "kmalloc-256", 0 },    { 256, "kmalloc-256", 0 },
	{ 257, "kmalloc-512", 0 },    { 512, "kmalloc-512", 0 },
	{ 513, "kmalloc-1k", 0 },     { 1024, "kmalloc-1k", 0 },
	{ 1025, "kmalloc-2k", 0 },    { 2048, "kmalloc-2k", 0 },
	{ 2049, "kmalloc-4k", 0 },    { 4096, "kmalloc-4k", 0 },
	{ 4097, "kmalloc-8k", 0 },    { 8192, "kmalloc-8k", 0 },
	{ 8193, "large", 2 },         { 16384, "large", 2 },
	{ 16385, "large", 3 },        { 2 * 1024 * 1024, "large", 9 },
	{ 2 * 1024 * 1024 + 1, "large", 10 },
	{ 4 * 1024 * 1024, "large", 10 },
};

/* include/linux/slab.h __kmalloc_index(): the smallest class that holds
 * the size, 96 and 192 included; above 8 KiB the page allocator. */
START_TEST(kmalloc_cache_by_size)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	const struct vm_layout *l = vm_machine_layout(m);

	for (size_t i = 0; i < sizeof(size_table) / sizeof(size_table[0]);
	     i++) {
		struct vm_op_result r = tu_kmalloc(m, size_table[i].size,
						   VM_GFP_KERNEL);
		const char *got = cache_name(m, &r);

		ck_assert_msg(strcmp(got, size_table[i].cache) == 0,
			      "kmalloc(%llu): cache %s, expected %s",
			      (unsigned long long)size_table[i].size, got,
			      size_table[i].cache);
		if (r.u.kmalloc.large) {
			ck_assert_msg(r.u.kmalloc.order == size_table[i].order,
				      "kmalloc(%llu): order %u, expected %u",
				      (unsigned long long)size_table[i].size,
				      r.u.kmalloc.order, size_table[i].order);
			ck_assert_uint_eq(r.u.kmalloc.pa %
						  (VM_PAGE_SIZE << r.u.kmalloc.order),
					  0);
			ck_assert_int_eq(vm_machine_owner(m, r.u.kmalloc.pa >>
							     VM_PAGE_SHIFT).kind,
					 VM_OWNER_KMALLOC_LARGE);
		} else {
			struct vm_cache_info ci;
			struct vm_owner o = vm_machine_owner(
				m, r.u.kmalloc.pa >> VM_PAGE_SHIFT);

			vm_slab_cache_info(m, r.u.kmalloc.cache, &ci);
			/* Objects sit at multiples of their size in the slab,
			 * so a power-of-two size is also its alignment
			 * (slab.h: "for @size of power of two bytes, the
			 * alignment is also guaranteed to be at least to the
			 * size"). */
			ck_assert_uint_eq((r.u.kmalloc.pa & (VM_PAGE_SIZE *
							       ci.pages_per_slab - 1)) %
						  ci.object_size,
					  0);
			if (!(ci.object_size & (ci.object_size - 1)))
				ck_assert_uint_eq(r.u.kmalloc.pa %
							  ci.object_size, 0);
			ck_assert_int_eq(o.kind, VM_OWNER_SLAB);
			ck_assert_uint_eq(o.id, r.u.kmalloc.cache);
		}
		ck_assert(!r.u.kmalloc.zero);
		ck_assert_uint_eq(r.u.kmalloc.warnings, 0);
		/* A kernel logical address: PAGE_OFFSET + pa (SPEC 1.6). */
		ck_assert_uint_eq(r.u.kmalloc.va, l->page_offset + r.u.kmalloc.pa);
		ck_assert_int_eq(r.u.kmalloc.zone, zone_of_pa(m, r.u.kmalloc.pa));
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* Above KMALLOC_MAX_SIZE (4 MiB) kmalloc fails, changing nothing. */
START_TEST(kmalloc_above_max_size_is_invalid)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	uint64_t d = vm_machine_digest(m), v = vm_machine_version(m);
	struct vm_op_result r;
	struct vm_error e = { 0 };

	ck_assert_int_eq(try_kmalloc(m, 4 * VM_MiB + 1, VM_GFP_KERNEL, &r, &e),
			 VM_EINVAL);
	ck_assert_int_eq(e.code, VM_EINVAL);
	ck_assert_int_eq(try_kmalloc(m, UINT64_MAX, VM_GFP_KERNEL, &r, &e),
			 VM_EINVAL);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_version(m), v);
	vm_machine_free(m);
}
END_TEST

/* kmalloc(0) is ZERO_SIZE_PTR: 0x10, no pa, no cache; only the version
 * moves (a successful operation). */
START_TEST(kmalloc_zero_is_zero_size_ptr)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);
	uint64_t d = vm_machine_digest(m), v = vm_machine_version(m);
	uint64_t used = vm_machine_frames_in_use(m);
	struct vm_op_result r = tu_kmalloc(m, 0, VM_GFP_KERNEL);

	ck_assert(r.u.kmalloc.zero);
	ck_assert_uint_eq(r.u.kmalloc.va, VM_ZERO_SIZE_PTR);
	ck_assert_uint_eq(r.u.kmalloc.va, 0x10);
	ck_assert_uint_eq(r.u.kmalloc.pa, 0);
	ck_assert(!r.u.kmalloc.large);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_version(m), v + 1);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	for (unsigned i = 0; i < vm_slab_cache_count(); i++) {
		struct vm_cache_info ci;

		vm_slab_cache_info(m, i, &ci);
		ck_assert_uint_eq(ci.active_objects, 0);
		ck_assert_uint_eq(ci.slabs, 0);
	}
	vm_machine_free(m);
}
END_TEST

/* kfree(NULL) and kfree(ZERO_SIZE_PTR) succeed and change nothing. */
START_TEST(kfree_of_null_and_zero_size_ptr_is_a_noop)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);
	uint64_t d, used;

	tu_kmalloc(m, 64, VM_GFP_KERNEL);
	d = vm_machine_digest(m);
	used = vm_machine_frames_in_use(m);
	ck_assert_int_eq(try_kfree(m, 0), 0);
	ck_assert_int_eq(try_kfree(m, VM_ZERO_SIZE_PTR), 0);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	/* Unlike those two, a stray small value is not a kmalloc pointer. */
	ck_assert_int_ne(try_kfree(m, 0x20), 0);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	vm_machine_free(m);
}
END_TEST

/* SPEC 1.6 (slabinfo of a 2-CPU Linux 6.18): objects / pages per slab. */
static const struct {
	const char *suffix;
	uint32_t size, objs, pages;
} geometry[] = {
	{ "8", 8, 512, 1 },     { "16", 16, 256, 1 },   { "32", 32, 128, 1 },
	{ "64", 64, 64, 1 },    { "96", 96, 42, 1 },    { "128", 128, 32, 1 },
	{ "192", 192, 21, 1 },  { "256", 256, 16, 1 },  { "512", 512, 16, 2 },
	{ "1k", 1024, 16, 4 },  { "2k", 2048, 16, 8 },  { "4k", 4096, 8, 8 },
	{ "8k", 8192, 4, 8 },
};

START_TEST(slab_geometry_of_every_cache)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	bool seen[26] = { false };

	ck_assert_uint_eq(vm_slab_cache_count(), 26);
	for (unsigned i = 0; i < vm_slab_cache_count(); i++) {
		struct vm_cache_info ci;
		bool found = false;

		vm_slab_cache_info(m, i, &ci);
		for (unsigned g = 0; g < 13; g++)
			for (unsigned dma = 0; dma < 2; dma++) {
				char name[32];

				snprintf(name, sizeof(name), "%skmalloc-%s",
					 dma ? "dma-" : "", geometry[g].suffix);
				if (strcmp(ci.name, name) != 0)
					continue;
				ck_assert_msg(!seen[g * 2 + dma],
					      "%s listed twice", name);
				seen[g * 2 + dma] = true;
				found = true;
				ck_assert_uint_eq(ci.object_size,
						  geometry[g].size);
				ck_assert_msg(ci.objects_per_slab ==
						      geometry[g].objs,
					      "%s: %u objects per slab, "
					      "expected %u", name,
					      ci.objects_per_slab,
					      geometry[g].objs);
				ck_assert_msg(ci.pages_per_slab ==
						      geometry[g].pages,
					      "%s: %u pages per slab, "
					      "expected %u", name,
					      ci.pages_per_slab,
					      geometry[g].pages);
				/* A slab's objects fit in its pages. */
				ck_assert_uint_le((uint64_t)ci.objects_per_slab *
							  ci.object_size,
						  (uint64_t)ci.pages_per_slab *
							  VM_PAGE_SIZE);
			}
		ck_assert_msg(found, "unexpected cache %s", ci.name);
		ck_assert_uint_eq(ci.active_objects, 0);
		ck_assert_uint_eq(ci.total_objects, 0);
		ck_assert_uint_eq(ci.slabs, 0);
	}
	for (unsigned k = 0; k < 26; k++)
		ck_assert_msg(seen[k], "cache %s%s missing",
			      k % 2 ? "dma-kmalloc-" : "kmalloc-",
			      geometry[k / 2].suffix);
	vm_machine_free(m);
}
END_TEST

/* A new slab's total_objects and slabs follow the geometry. */
START_TEST(slab_counts_follow_geometry)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	unsigned c = cache_by_name(m, "kmalloc-96");
	struct vm_cache_info ci;
	uint64_t used = vm_machine_frames_in_use(m);

	/* 43 objects of 96 bytes: one full slab of 42 and one more. */
	for (int i = 0; i < 43; i++)
		tu_kmalloc(m, 96, VM_GFP_KERNEL);
	vm_slab_cache_info(m, c, &ci);
	ck_assert_uint_eq(ci.slabs, 2);
	ck_assert_uint_eq(ci.active_objects, 43);
	ck_assert_uint_eq(ci.total_objects, 84);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 2);
	vm_machine_free(m);
}
END_TEST

/* Three objects, the middle freed: the next allocation takes it again. */
START_TEST(slab_reuses_lowest_free_object)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);
	uint64_t a, b, c;

	a = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	b = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	c = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	/* A fresh slab hands out its objects in address order. */
	ck_assert_uint_eq(b, a + 64);
	ck_assert_uint_eq(c, b + 64);
	tu_kfree(m, b);
	ck_assert_uint_eq(tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va, b);
	/* Lowest free, not last freed (SLUB's freelist would be LIFO). */
	tu_kfree(m, c);
	tu_kfree(m, a);
	ck_assert_uint_eq(tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va, a);
	ck_assert_uint_eq(tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va, c);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* The partial list is most recently used first: a free moves its slab to
 * the front, and the next allocation comes from there. */
START_TEST(slab_takes_most_recently_used_partial)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	uint64_t s1[8], s2[2], v;

	/* kmalloc-4k: 8 objects per slab. Fill slab 1, start slab 2. */
	for (int i = 0; i < 8; i++)
		s1[i] = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	for (int i = 1; i < 8; i++)
		ck_assert_uint_eq(s1[i], s1[0] + (uint64_t)i * 4096);
	s2[0] = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	s2[1] = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	ck_assert(s2[0] < s1[0] || s2[0] >= s1[0] + 8 * 4096);
	ck_assert_uint_eq(s2[1], s2[0] + 4096);
	/* Slab 1 gets two holes and becomes the most recently used. */
	tu_kfree(m, s1[6]);
	tu_kfree(m, s1[3]);
	v = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	ck_assert_uint_eq(v, s1[3]);
	/* Now slab 2 is used last: it serves, though slab 1 has a hole. */
	tu_kfree(m, s2[1]);
	v = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	ck_assert_uint_eq(v, s2[1]);
	/* An allocation does not reorder: slab 2 stays first while it has
	 * room (its objects 2..7 come before slab 1's hole at 6). */
	v = tu_kmalloc(m, 4096, VM_GFP_KERNEL).u.kmalloc.va;
	ck_assert_uint_eq(v, s2[0] + 2 * 4096);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* A slab that becomes empty goes back to the buddy allocator at once. */
START_TEST(empty_slab_returns_its_frames)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);
	static const struct {
		uint64_t size;
		uint64_t pages;
	} cases[] = { { 64, 1 }, { 512, 2 }, { 1024, 4 }, { 8192, 8 } };

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint64_t used = vm_machine_frames_in_use(m);
		struct vm_op_result r1 =
			tu_kmalloc(m, cases[k].size, VM_GFP_KERNEL);
		struct vm_op_result r2 =
			tu_kmalloc(m, cases[k].size, VM_GFP_KERNEL);
		struct vm_cache_info ci;

		ck_assert_uint_eq(vm_machine_frames_in_use(m),
				  used + cases[k].pages);
		vm_slab_cache_info(m, r1.u.kmalloc.cache, &ci);
		ck_assert_uint_eq(ci.slabs, 1);
		tu_kfree(m, r1.u.kmalloc.va);
		/* Still one object: the slab stays. */
		ck_assert_uint_eq(vm_machine_frames_in_use(m),
				  used + cases[k].pages);
		tu_kfree(m, r2.u.kmalloc.va);
		ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
		vm_slab_cache_info(m, r1.u.kmalloc.cache, &ci);
		ck_assert_uint_eq(ci.slabs, 0);
		ck_assert_uint_eq(ci.active_objects, 0);
		ck_assert_int_eq(vm_machine_owner(m, r1.u.kmalloc.pa >>
						     VM_PAGE_SHIFT).kind,
				 VM_OWNER_FREE);
	}
	/* kmalloc_large gives its block back too. */
	{
		uint64_t used = vm_machine_frames_in_use(m);
		struct vm_op_result r = tu_kmalloc(m, 20000, VM_GFP_KERNEL);

		ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 8);
		tu_kfree(m, r.u.kmalloc.va);
		ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* GFP_DMA: the dma-kmalloc caches, slabs in ZONE_DMA (every arch). */
START_TEST(kmalloc_dma_uses_dma_caches)
{
	struct vm_machine *m = boot((enum vm_arch_id)_i, VM_GiB,
				    VM_DEFAULT_CHURN);
	static const struct {
		uint64_t size;
		const char *cache;
	} cases[] = { { 8, "dma-kmalloc-8" }, { 100, "dma-kmalloc-128" },
		      { 1000, "dma-kmalloc-1k" }, { 8192, "dma-kmalloc-8k" },
		      { 10000, "large" } };

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct vm_op_result r =
			tu_kmalloc(m, cases[k].size, VM_GFP_DMA);
		const char *got = cache_name(m, &r);

		ck_assert_msg(strcmp(got, cases[k].cache) == 0,
			      "kmalloc(%llu, GFP_DMA): cache %s, expected %s",
			      (unsigned long long)cases[k].size, got,
			      cases[k].cache);
		ck_assert_int_eq(r.u.kmalloc.zone, VM_ZONE_DMA);
		ck_assert_uint_lt(r.u.kmalloc.pa, 16 * VM_MiB);
		ck_assert_uint_eq(r.u.kmalloc.warnings, 0);
	}
	/* Without GFP_DMA the same size uses the normal cache, outside
	 * ZONE_DMA (GFP_KERNEL tries Normal or DMA32 first). */
	{
		struct vm_op_result r = tu_kmalloc(m, 100, VM_GFP_KERNEL);

		ck_assert_str_eq(cache_name(m, &r), "kmalloc-128");
		ck_assert_int_ne(r.u.kmalloc.zone, VM_ZONE_DMA);
	}
	vm_machine_free(m);
}
END_TEST

/*
 * kmalloc_fix_flags(): __GFP_HIGHMEM and __GFP_DMA32 are stripped with a
 * warning (GFP_SLAB_BUG_MASK), so kmalloc never returns highmem and
 * GFP_DMA32 does not give DMA32 memory (gfp_types.h).
 */
START_TEST(kmalloc_strips_highmem_and_dma32)
{
	struct vm_machine *m = boot(VM_ARCH_I386, 2 * VM_GiB, VM_DEFAULT_CHURN);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_op_result r;

	r = tu_kmalloc(m, 100, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert_uint_eq(r.u.kmalloc.warnings, VM_WARN_STRIPPED_HIGHMEM);
	ck_assert_str_eq(cache_name(m, &r), "kmalloc-128");
	ck_assert_int_eq(r.u.kmalloc.zone, VM_ZONE_NORMAL);
	ck_assert_uint_lt(r.u.kmalloc.pa, l->lowmem_bytes);
	r = tu_kmalloc(m, 20000, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert_uint_eq(r.u.kmalloc.warnings, VM_WARN_STRIPPED_HIGHMEM);
	ck_assert(r.u.kmalloc.large);
	ck_assert_int_ne(r.u.kmalloc.zone, VM_ZONE_HIGHMEM);
	ck_assert_uint_eq(r.u.kmalloc.va, l->page_offset + r.u.kmalloc.pa);
	vm_machine_free(m);

	m = boot(VM_ARCH_X86_64, 8 * VM_GiB, VM_DEFAULT_CHURN);
	r = tu_kmalloc(m, 100, VM_GFP_DMA32);
	ck_assert_uint_eq(r.u.kmalloc.warnings, VM_WARN_STRIPPED_DMA32);
	ck_assert_str_eq(cache_name(m, &r), "kmalloc-128");
	ck_assert_int_eq(r.u.kmalloc.zone, VM_ZONE_NORMAL);
	r = tu_kmalloc(m, 100, VM_GFP_KERNEL | VM_GFP_DMA32);
	ck_assert_uint_eq(r.u.kmalloc.warnings, VM_WARN_STRIPPED_DMA32);
	r = tu_kmalloc(m, 100, GFP_ATOMIC);
	ck_assert_uint_eq(r.u.kmalloc.warnings, 0);
	ck_assert_str_eq(cache_name(m, &r), "kmalloc-128");
	vm_machine_free(m);
}
END_TEST

/* GFP_ZONE_BAD: two zone modifiers at once is never valid. */
START_TEST(kmalloc_zone_bad_is_invalid)
{
	struct vm_machine *m = boot(VM_ARCH_X86_64, VM_GiB, VM_DEFAULT_CHURN);
	uint64_t d = vm_machine_digest(m), v = vm_machine_version(m);
	static const uint32_t bad[] = {
		VM_GFP_DMA | VM_GFP_HIGHMEM,
		VM_GFP_KERNEL | VM_GFP_DMA | VM_GFP_HIGHMEM,
		VM_GFP_DMA | VM_GFP_DMA32,
	};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		struct vm_op_result r;
		struct vm_error e = { 0 };

		ck_assert_int_eq(try_kmalloc(m, 64, bad[k], &r, &e), VM_EINVAL);
		ck_assert_int_eq(try_alloc_pages(m, 0, bad[k], &r), VM_EINVAL);
	}
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_version(m), v);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *buddy = tcase_create("buddy");
	TCase *zones = tcase_create("zones");
	TCase *slab = tcase_create("kmalloc");

	tcase_add_test(buddy, pristine_order0_allocations_ascend);
	tcase_add_loop_test(buddy, churn_scatters_vmalloc_frames, 0, 2);
	tcase_add_test(buddy, pristine_vmalloc_frames_are_contiguous);
	tcase_add_test(buddy, order0_alloc_free_restores_free_lists);
	tcase_add_test(buddy, order3_splits_order10_on_pristine_highmem);
	tcase_add_test(buddy, order3_splits_order10_after_draining);
	tcase_add_test(buddy, freeing_both_buddies_merges);
	tcase_add_test(buddy, free_then_alloc_returns_the_same_block);
	suite_add_tcase(s, buddy);

	tcase_add_loop_test(zones, gfp_dma_comes_from_zone_dma, 0, 4);
	tcase_add_test(zones, gfp_kernel_never_takes_highmem);
	tcase_add_test(zones, gfp_highmem_prefers_highmem);
	tcase_add_test(zones, gfp_dma32_comes_from_dma32);
	suite_add_tcase(s, zones);

	tcase_add_test(slab, kmalloc_cache_by_size);
	tcase_add_test(slab, kmalloc_above_max_size_is_invalid);
	tcase_add_loop_test(slab, kmalloc_zero_is_zero_size_ptr, 0, 4);
	tcase_add_loop_test(slab, kfree_of_null_and_zero_size_ptr_is_a_noop, 0,
			    4);
	tcase_add_test(slab, slab_geometry_of_every_cache);
	tcase_add_test(slab, slab_counts_follow_geometry);
	tcase_add_loop_test(slab, slab_reuses_lowest_free_object, 0, 4);
	tcase_add_test(slab, slab_takes_most_recently_used_partial);
	tcase_add_loop_test(slab, empty_slab_returns_its_frames, 0, 4);
	tcase_add_loop_test(slab, kmalloc_dma_uses_dma_caches, 0, 4);
	tcase_add_test(slab, kmalloc_strips_highmem_and_dma32);
	tcase_add_test(slab, kmalloc_zone_bad_is_invalid);
	suite_add_tcase(s, slab);

	return tu_run(s);
}
