/*
 * test_alloc.c - the kernel allocators' answers and refusals (SPEC 1.3,
 * 1.6): GFP names, kmalloc/kfree, vmalloc/vfree, alloc_pages/free_pages.
 *
 * Every refused operation must leave the machine exactly as it was (same
 * digest, same version: SPEC 1.9) and say what went wrong in a non-empty
 * detail, with the code that names the mistake (error.h).
 */
#include <check.h>
#include <string.h>

#include "core/arch.h"
#include "core/error.h"
#include "core/gfp.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/process.h"
#include "core/slab.h"
#include "core/translate.h"
#include "core/vmalloc.h"
#include "tests/core/testutil.h"

#define PAGE VM_PAGE_SIZE

/* ---- GFP flags (include/linux/gfp_types.h, Linux 5.x-6.8 values) ---- */

/*
 * Every name the parser accepts, with the value Linux gives it. The values
 * are written out here from gfp_types.h, not copied from core, so a wrong
 * value in core's table fails.
 */
static const struct {
	const char *name;
	uint32_t value;
} gfp_names[] = {
	{ "GFP_HIGHUSER_MOVABLE", 0x100ccau },
	{ "GFP_HIGHUSER", 0x100cc2u },
	{ "GFP_USER", 0x100cc0u },
	{ "GFP_KERNEL_ACCOUNT", 0x400cc0u },
	{ "GFP_KERNEL", 0xcc0u },
	{ "GFP_NOFS", 0xc40u },
	{ "GFP_ATOMIC", 0x820u },     /* __GFP_HIGH|__GFP_KSWAPD_RECLAIM (6.3+) */
	{ "GFP_NOIO", 0xc00u },
	{ "GFP_NOWAIT", 0x800u },
	{ "GFP_DMA", 0x01u },
	{ "GFP_DMA32", 0x04u },
	{ "__GFP_DMA", 0x01u },
	{ "__GFP_HIGHMEM", 0x02u },
	{ "__GFP_DMA32", 0x04u },
	{ "__GFP_MOVABLE", 0x08u },
	{ "__GFP_RECLAIMABLE", 0x10u },
	{ "__GFP_HIGH", 0x20u },
	{ "__GFP_IO", 0x40u },
	{ "__GFP_FS", 0x80u },
	{ "__GFP_ZERO", 0x100u },
	{ "__GFP_RECLAIM", 0xc00u },
	{ "__GFP_DIRECT_RECLAIM", 0x400u },
	{ "__GFP_KSWAPD_RECLAIM", 0x800u },
	{ "__GFP_WRITE", 0x1000u },
	{ "__GFP_NOWARN", 0x2000u },
	{ "__GFP_RETRY_MAYFAIL", 0x4000u },
	{ "__GFP_NOFAIL", 0x8000u },
	{ "__GFP_NORETRY", 0x10000u },
	{ "__GFP_MEMALLOC", 0x20000u },
	{ "__GFP_COMP", 0x40000u },
	{ "__GFP_NOMEMALLOC", 0x80000u },
	{ "__GFP_HARDWALL", 0x100000u },
	{ "__GFP_THISNODE", 0x200000u },
	{ "__GFP_ACCOUNT", 0x400000u },
	{ "__GFP_ZEROTAGS", 0x800000u },
};

#define NGFP (sizeof(gfp_names) / sizeof(gfp_names[0]))

START_TEST(gfp_parse_every_name)
{
	for (unsigned i = 0; i < NGFP; i++) {
		uint32_t f = 0xdeadbeefu;
		struct vm_error e = { 0 };
		int rc = vm_gfp_parse(gfp_names[i].name, &f, &e);

		ck_assert_msg(rc == 0, "%s: %s", gfp_names[i].name, e.detail);
		ck_assert_msg(f == gfp_names[i].value, "%s: %#x, Linux %#x",
			      gfp_names[i].name, f, gfp_names[i].value);
	}
	/* The constants of gfp.h agree with the names. */
	ck_assert_uint_eq(VM_GFP_KERNEL, 0xcc0u);
	ck_assert_uint_eq(VM_GFP_HIGHUSER, 0x100cc2u);
}
END_TEST

START_TEST(gfp_parse_combinations)
{
	static const struct {
		const char *text;
		uint32_t value;
	} ok[] = {
		{ "GFP_KERNEL|__GFP_ZERO", 0xdc0u },
		{ "GFP_KERNEL | __GFP_ZERO", 0xdc0u },
		{ "  GFP_KERNEL|  __GFP_ZERO  ", 0xdc0u },
		{ "GFP_ATOMIC|__GFP_NOWARN", 0x2820u },
		{ "GFP_KERNEL|GFP_DMA", 0xcc1u },
		{ "__GFP_HIGHMEM|__GFP_MOVABLE|GFP_USER", 0x100ccau },
		{ "GFP_KERNEL|GFP_KERNEL", 0xcc0u },
	};
	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint32_t f = 0;
		struct vm_error e = { 0 };
		int rc = vm_gfp_parse(ok[i].text, &f, &e);

		ck_assert_msg(rc == 0, "'%s': %s", ok[i].text, e.detail);
		ck_assert_msg(f == ok[i].value, "'%s': %#x, expected %#x",
			      ok[i].text, f, ok[i].value);
	}
}
END_TEST

START_TEST(gfp_parse_refusals)
{
	static const struct {
		const char *text, *named;  /* named: must appear in the detail */
	} bad[] = {
		{ "__GFP_BOGUS", "__GFP_BOGUS" },
		{ "GFP_KERNEL|__GFP_BOGUS", "__GFP_BOGUS" },
		{ "GFP_KERNEL | GFP_WHATEVER", "GFP_WHATEVER" },
		{ "gfp_kernel", "gfp_kernel" },      /* names are case-sensitive */
		{ "GFP_KERNEL,__GFP_ZERO", NULL },   /* '|' is the separator */
		{ "", NULL },
		{ "   ", NULL },
		{ "GFP_KERNEL|", NULL },
		{ "|GFP_KERNEL", NULL },
		{ "GFP_KERNEL||__GFP_ZERO", NULL },
		{ "GFP_KERNEL __GFP_ZERO", NULL },
		{ "__GFP_A_VERY_LONG_NAME_THAT_IS_NOT_A_FLAG_AT_ALL", NULL },
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t f = 0;
		struct vm_error e;
		int rc;

		memset(&e, 0, sizeof(e));
		rc = vm_gfp_parse(bad[i].text, &f, &e);
		ck_assert_msg(rc == VM_EINVAL, "'%s': %s, expected invalid_value",
			      bad[i].text, vm_errname(rc));
		ck_assert_int_eq(e.code, VM_EINVAL);
		ck_assert_msg(e.detail[0] != '\0', "'%s': empty detail",
			      bad[i].text);
		if (bad[i].named)
			ck_assert_msg(strstr(e.detail, bad[i].named) != NULL,
				      "'%s': detail does not name the flag: %s",
				      bad[i].text, e.detail);
	}
}
END_TEST

/*
 * gfp.h: "NAME|NAME|...", spaces around '|' allowed. Any other character
 * between two names is a mistake to report, not a separator to guess: a
 * student who writes '+' or '&' must hear that it is not C.
 */
START_TEST(gfp_parse_only_bar_separates)
{
	static const char *const bad[] = {
		"GFP_KERNEL + __GFP_ZERO",
		"GFP_KERNEL & __GFP_ZERO",
		"GFP_KERNEL x__GFP_ZERO",
		"GFP_KERNEL ,GFP_DMA",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t f = 0;
		struct vm_error e = { 0 };
		int rc = vm_gfp_parse(bad[i], &f, &e);

		ck_assert_msg(rc == VM_EINVAL,
			      "'%s': %s with flags %#x, expected invalid_value",
			      bad[i], vm_errname(rc), f);
	}
}
END_TEST

/* error.h: the error-detail out-parameter is untouched on success. */
START_TEST(gfp_parse_leaves_err_alone)
{
	struct vm_error e;
	uint32_t f = 0;

	e.code = 12345;
	strcpy(e.detail, "sentinel");
	ck_assert_int_eq(vm_gfp_parse("GFP_KERNEL", &f, &e), 0);
	ck_assert_int_eq(e.code, 12345);
	ck_assert_str_eq(e.detail, "sentinel");
	/* And the parser works without one. */
	ck_assert_int_eq(vm_gfp_parse("__GFP_NOPE", &f, NULL), VM_EINVAL);
}
END_TEST

START_TEST(gfp_format)
{
	char buf[1024]; /* room for every name at once */

	/* The kernel prints "gfp: 0xcc0 (GFP_KERNEL)" (%pGg). */
	ck_assert_str_eq(vm_gfp_format(0xcc0u, buf, sizeof(buf)), "GFP_KERNEL");
	ck_assert_str_eq(vm_gfp_format(0x820u, buf, sizeof(buf)), "GFP_ATOMIC");
	ck_assert_str_eq(vm_gfp_format(0xdc0u, buf, sizeof(buf)),
			 "GFP_KERNEL|__GFP_ZERO");
	ck_assert_str_eq(vm_gfp_format(0x100cc2u, buf, sizeof(buf)),
			 "GFP_HIGHUSER");
	ck_assert_str_eq(vm_gfp_format(0x01u, buf, sizeof(buf)), "GFP_DMA");
	/* Each composite name formats to itself (largest composite first). */
	for (unsigned i = 0; i < NGFP; i++) {
		uint32_t back = 0;

		if (strncmp(gfp_names[i].name, "GFP_", 4) != 0)
			continue;
		vm_gfp_format(gfp_names[i].value, buf, sizeof(buf));
		ck_assert_msg(strcmp(buf, gfp_names[i].name) == 0,
			      "%#x formats as %s, expected %s",
			      gfp_names[i].value, buf, gfp_names[i].name);
		ck_assert_int_eq(vm_gfp_parse(buf, &back, NULL), 0);
		ck_assert_uint_eq(back, gfp_names[i].value);
	}
	/* Any combination of known bits survives a round trip. */
	for (uint32_t v = 0; v < 0x1000000u; v = v * 3 + 0x101u) {
		uint32_t back = 0;
		uint32_t known = v & 0xfffdffu; /* 0x200 has no name in 6.8 */

		vm_gfp_format(known, buf, sizeof(buf));
		ck_assert_msg(vm_gfp_parse(buf, &back, NULL) == 0 ||
				      known == 0,
			      "%#x formats as '%s', which does not parse",
			      known, buf);
		if (known)
			ck_assert_msg(back == known, "%#x -> '%s' -> %#x",
				      known, buf, back);
	}
	/* A short buffer is filled and terminated, never overrun. */
	{
		char small[8];

		memset(small, 'x', sizeof(small));
		vm_gfp_format(0x100ccau | 0x2000u, small, sizeof(small));
		ck_assert_uint_lt(strlen(small), sizeof(small));
	}
	/* Zero is not an empty string. */
	vm_gfp_format(0, buf, sizeof(buf));
	ck_assert_uint_gt(strlen(buf), 0);
}
END_TEST

/*
 * GFP_ZONE_BAD (include/linux/gfp.h): more than one of __GFP_DMA,
 * __GFP_DMA32, __GFP_HIGHMEM, with or without __GFP_MOVABLE.
 */
START_TEST(gfp_zone_bad)
{
	for (uint32_t z = 0; z < 16; z++) {
		uint32_t three = z & (VM_GFP_DMA | VM_GFP_DMA32 | VM_GFP_HIGHMEM);
		int bad = three == (VM_GFP_DMA | VM_GFP_HIGHMEM) ||
			  three == (VM_GFP_DMA | VM_GFP_DMA32) ||
			  three == (VM_GFP_DMA32 | VM_GFP_HIGHMEM) ||
			  three == (VM_GFP_DMA | VM_GFP_DMA32 | VM_GFP_HIGHMEM);

		ck_assert_msg((vm_gfp_zone_bad(z) != 0) == bad,
			      "zone modifiers %#x: zone_bad %d, Linux %d", z,
			      vm_gfp_zone_bad(z), bad);
		ck_assert_msg((vm_gfp_zone_bad(z | VM_GFP_KERNEL) != 0) == bad,
			      "GFP_KERNEL|%#x", z);
	}
	ck_assert_int_eq(vm_gfp_zone_bad(VM_GFP_HIGHUSER), 0);
}
END_TEST

/* SPEC 1.6: an impossible flag combination is refused (422). */
START_TEST(zone_bad_refused_by_allocators)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	struct vm_op op;

	op = tu_op_kmalloc(64, VM_GFP_KERNEL | VM_GFP_DMA | VM_GFP_HIGHMEM);
	tu_expect_fail(m, &op, VM_EINVAL, "kmalloc __GFP_DMA|__GFP_HIGHMEM");
	op = tu_op_kmalloc(64, VM_GFP_KERNEL | VM_GFP_DMA | VM_GFP_DMA32);
	tu_expect_fail(m, &op, VM_EINVAL, "kmalloc __GFP_DMA|__GFP_DMA32");
	op = tu_op_alloc_pages(0,
			       VM_GFP_KERNEL | VM_GFP_DMA32 | VM_GFP_HIGHMEM);
	tu_expect_fail(m, &op, VM_EINVAL,
		       "alloc_pages __GFP_DMA32|__GFP_HIGHMEM");
	vm_machine_free(m);
}
END_TEST

/* ---- kmalloc answers (SPEC 1.6) ---- */

START_TEST(kmalloc_answers)
{
	static const struct {
		uint64_t size;
		const char *cache;
	} classes[] = {
		{ 1, "kmalloc-8" },     { 8, "kmalloc-8" },
		{ 9, "kmalloc-16" },    { 33, "kmalloc-64" },
		{ 65, "kmalloc-96" },   { 96, "kmalloc-96" },
		{ 97, "kmalloc-128" },  { 129, "kmalloc-192" },
		{ 193, "kmalloc-256" }, { 257, "kmalloc-512" },
		{ 513, "kmalloc-1k" },  { 1025, "kmalloc-2k" },
		{ 2049, "kmalloc-4k" }, { 4097, "kmalloc-8k" },
		{ 8192, "kmalloc-8k" },
	};
	struct vm_machine *m = tu_boot(tu_arches[_i], 2 * VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_op_result r;
	struct vm_op op;

	for (unsigned i = 0; i < sizeof(classes) / sizeof(classes[0]); i++) {
		struct vm_cache_info ci;

		r = tu_kmalloc(m, classes[i].size, VM_GFP_KERNEL);
		ck_assert(!r.u.kmalloc.large && !r.u.kmalloc.zero);
		vm_slab_cache_info(m, r.u.kmalloc.cache, &ci);
		ck_assert_msg(strcmp(ci.name, classes[i].cache) == 0,
			      "size %llu went to %s, expected %s",
			      (unsigned long long)classes[i].size, ci.name,
			      classes[i].cache);
		/* A kernel logical address: PAGE_OFFSET + pa, never highmem. */
		ck_assert_uint_eq(r.u.kmalloc.va, l->page_offset + r.u.kmalloc.pa);
		ck_assert_uint_lt(r.u.kmalloc.pa, l->lowmem_bytes);
		/* Objects sit at multiples of their size inside the slab,
		 * whose block is aligned to its own size (buddy). */
		ck_assert_uint_eq((r.u.kmalloc.pa % (ci.pages_per_slab * PAGE)) %
					  ci.object_size, 0);
		ck_assert_int_ne(r.u.kmalloc.zone, VM_ZONE_HIGHMEM);
	}
	/* Above 8 KiB: one page-allocator block of the smallest order. */
	r = tu_kmalloc(m, 8193, VM_GFP_KERNEL);
	ck_assert(r.u.kmalloc.large);
	ck_assert_uint_eq(r.u.kmalloc.order, 2);
	ck_assert_uint_eq(r.u.kmalloc.pa % (4 * PAGE), 0);
	ck_assert_int_eq(vm_machine_owner(m, r.u.kmalloc.pa >> 12).kind,
			 VM_OWNER_KMALLOC_LARGE);
	r = tu_kmalloc(m, VM_KMALLOC_MAX_SIZE, VM_GFP_KERNEL);
	ck_assert(r.u.kmalloc.large);
	ck_assert_uint_eq(r.u.kmalloc.order, 10);
	op = tu_op_kmalloc(VM_KMALLOC_MAX_SIZE + 1, VM_GFP_KERNEL);
	tu_expect_fail(m, &op, VM_EINVAL, "kmalloc above KMALLOC_MAX_SIZE");
	/* Size 0: ZERO_SIZE_PTR, no pa; kfree of it and of NULL do nothing. */
	r = tu_kmalloc(m, 0, VM_GFP_KERNEL);
	ck_assert(r.u.kmalloc.zero);
	ck_assert_uint_eq(r.u.kmalloc.va, VM_ZERO_SIZE_PTR);
	{
		uint64_t d = vm_machine_digest(m), used = vm_machine_frames_in_use(m);

		tu_kfree(m, VM_ZERO_SIZE_PTR);
		tu_kfree(m, 0);
		ck_assert_uint_eq(vm_machine_digest(m), d);
		ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	}
	/* GFP_DMA: the dma-kmalloc caches, in ZONE_DMA. */
	r = tu_kmalloc(m, 100, VM_GFP_KERNEL | VM_GFP_DMA);
	{
		struct vm_cache_info ci;

		vm_slab_cache_info(m, r.u.kmalloc.cache, &ci);
		ck_assert_str_eq(ci.name, "dma-kmalloc-128");
	}
	ck_assert_int_eq(r.u.kmalloc.zone, VM_ZONE_DMA);
	ck_assert_uint_lt(r.u.kmalloc.pa, 16 * VM_MiB);
	r = tu_kmalloc(m, 20000, VM_GFP_KERNEL | VM_GFP_DMA);
	ck_assert(r.u.kmalloc.large);
	ck_assert_int_eq(r.u.kmalloc.zone, VM_ZONE_DMA);
	ck_assert_uint_lt(r.u.kmalloc.pa, 16 * VM_MiB);
	/* __GFP_HIGHMEM and __GFP_DMA32 are stripped, with a warning. */
	r = tu_kmalloc(m, 64, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert(r.u.kmalloc.warnings & VM_WARN_STRIPPED_HIGHMEM);
	ck_assert_int_ne(r.u.kmalloc.zone, VM_ZONE_HIGHMEM);
	ck_assert_uint_lt(r.u.kmalloc.pa, l->lowmem_bytes);
	r = tu_kmalloc(m, 20000, VM_GFP_KERNEL | VM_GFP_HIGHMEM);
	ck_assert(r.u.kmalloc.warnings & VM_WARN_STRIPPED_HIGHMEM);
	ck_assert_uint_lt(r.u.kmalloc.pa, l->lowmem_bytes);
	r = tu_kmalloc(m, 64, VM_GFP_KERNEL | VM_GFP_DMA32);
	ck_assert(r.u.kmalloc.warnings & VM_WARN_STRIPPED_DMA32);
	r = tu_kmalloc(m, 64, VM_GFP_KERNEL);
	ck_assert_uint_eq(r.u.kmalloc.warnings, 0);
	/* GFP_ATOMIC behaves as GFP_KERNEL. */
	r = tu_kmalloc(m, 64, 0x820u);
	ck_assert_uint_lt(r.u.kmalloc.pa, l->lowmem_bytes);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- kfree refusals (SPEC 1.6: "refused with a clear error") ---- */

START_TEST(kfree_double_free)
{
	/* 512 MiB: all of RAM is lowmem on every arch. */
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	struct vm_op op;
	uint64_t a, b, big;

	/* An object whose slab stays (a neighbour is live). */
	a = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	b = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	ck_assert_uint_eq(b, a + 64);
	tu_kfree(m, a);
	op = tu_op_kfree(a);
	tu_expect_fail(m, &op, VM_EDOUBLEFREE, "kfree twice (slab kept)");
	/* An object whose slab went back to the buddy allocator. */
	tu_kfree(m, b);
	op = tu_op_kfree(b);
	tu_expect_fail(m, &op, VM_EDOUBLEFREE, "kfree twice (slab freed)");
	op = tu_op_kfree(a);
	tu_expect_fail(m, &op, VM_EDOUBLEFREE, "kfree twice (slab freed)");
	/* kmalloc_large. */
	big = tu_kmalloc(m, 16384, VM_GFP_KERNEL).u.kmalloc.va;
	tu_kfree(m, big);
	op = tu_op_kfree(big);
	tu_expect_fail(m, &op, VM_EDOUBLEFREE, "kfree twice (kmalloc_large)");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(kfree_interior_pointer)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	struct vm_op op;
	uint64_t a, big;

	a = tu_kmalloc(m, 96, VM_GFP_KERNEL).u.kmalloc.va;
	op = tu_op_kfree(a + 8);
	tu_expect_fail(m, &op, VM_EINTERIOR,
		       "kfree inside a kmalloc-96 object");
	op = tu_op_kfree(a + 95);
	tu_expect_fail(m, &op, VM_EINTERIOR, "kfree at the last byte");
	big = tu_kmalloc(m, 3 * PAGE, VM_GFP_KERNEL).u.kmalloc.va;
	op = tu_op_kfree(big + PAGE);
	tu_expect_fail(m, &op, VM_EINTERIOR, "kfree a page into kmalloc_large");
	op = tu_op_kfree(big + 100);
	tu_expect_fail(m, &op, VM_EINTERIOR,
		       "kfree 100 bytes into kmalloc_large");
	/* The starts are still good. */
	tu_kfree(m, a);
	tu_kfree(m, big);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(kfree_wrong_allocator)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	struct vm_process_info pi;
	struct vm_op_result r;
	struct vm_op op;
	uint64_t va, pa;
	uint32_t pid;
	int idx;

	/* A vmalloc address, and the direct-map alias of its page. */
	va = tu_vmalloc(m, 2 * PAGE, true).u.vmalloc.va;
	op = tu_op_kfree(va);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "kfree of a vmalloc address");
	idx = vm_vmalloc_at(m, va);
	ck_assert_int_ge(idx, 0);
	pa = vm_vmalloc_pfn(m, (uint32_t)idx, 0) << VM_PAGE_SHIFT;
	ck_assert_uint_lt(pa, l->lowmem_bytes);
	op = tu_op_kfree(l->page_offset + pa);
	tu_expect_fail(m, &op, VM_EWRONGFREE,
		       "kfree of a vmalloc page's alias");
	/* An alloc_pages block. */
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	ck_assert(r.u.alloc_pages.has_va);
	op = tu_op_kfree(r.u.alloc_pages.va);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "kfree of an alloc_pages block");
	/* A page-table frame, through its kernel logical address. */
	pid = tu_create(m, "proc", true);
	ck_assert_int_eq(vm_process_get(m, pid, &pi), 0);
	ck_assert_uint_lt(pi.pgd_pa, l->lowmem_bytes);
	op = tu_op_kfree(l->page_offset + pi.pgd_pa);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "kfree of a page table");
	/* The process's kernel stack (vmalloc'd on x86_64, lowmem on i386). */
	op = tu_op_kfree(a->is64 ? pi.kstack : l->page_offset + pi.kstack);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "kfree of a kernel stack");
	/* The kernel image (a boot reservation). */
	op = tu_op_kfree(l->page_offset + VM_KIMAGE_START);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "kfree of the kernel image");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(kfree_not_a_kernel_logical_address)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	struct vm_op op;

	/* User space: where text starts (SPEC 1.5). */
	op = tu_op_kfree(a->is64 ? 0x400000ULL : 0x08048000ULL);
	tu_expect_fail(m, &op, VM_ERANGE, "kfree of a user address");
	op = tu_op_kfree(0x1000);
	tu_expect_fail(m, &op, VM_ERANGE, "kfree of a low user address");
	/* Past high_memory, before vmalloc (the VMALLOC_OFFSET hole). */
	op = tu_op_kfree(l->high_memory);
	tu_expect_fail(m, &op, VM_ERANGE, "kfree at high_memory");
	vm_machine_free(m);
}
END_TEST

/* ---- vfree refusals ---- */

START_TEST(vfree_refusals)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	struct vm_process_info pi;
	struct vm_op op;
	uint64_t va, k;
	uint32_t pid;

	va = tu_vmalloc(m, 3 * PAGE, true).u.vmalloc.va;
	op = tu_op_vfree(va + PAGE);
	tu_expect_fail(m, &op, VM_EINTERIOR, "vfree a page into an area");
	op = tu_op_vfree(va + 10);
	tu_expect_fail(m, &op, VM_EINTERIOR, "vfree 10 bytes into an area");
	/*
	 * A kmalloc address is the wrong kind of free (as kfree of a vmalloc
	 * address); a user address is outside the region vfree needs.
	 */
	k = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	op = tu_op_vfree(k);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "vfree of a kmalloc address");
	op = tu_op_vfree(a->is64 ? 0x400000ULL : 0x08048000ULL);
	tu_expect_fail(m, &op, VM_ERANGE, "vfree of a user address");
	op = tu_op_vfree(l->vmalloc_end);
	tu_expect_fail(m, &op, VM_ERANGE, "vfree at vmalloc_end");
	op = tu_op_vfree(l->vmalloc_start - PAGE);
	tu_expect_fail(m, &op, VM_ERANGE, "vfree below vmalloc_start");
	/* Double free, and an address where nothing was ever allocated. */
	tu_vfree(m, va);
	op = tu_op_vfree(va);
	tu_expect_fail(m, &op, VM_ENOTALLOC, "vfree twice");
	op = tu_op_vfree(l->vmalloc_end - 16 * PAGE);
	tu_expect_fail(m, &op, VM_ENOTALLOC, "vfree of an unused address");
	/* A process's kernel stack goes when the process exits. */
	pid = tu_create(m, "proc", true);
	ck_assert_int_eq(vm_process_get(m, pid, &pi), 0);
	if (a->is64) {
		ck_assert_int_ge(vm_vmalloc_at(m, pi.kstack), 0);
		op = tu_op_vfree(pi.kstack);
		tu_expect_fail(m, &op, VM_EWRONGFREE,
			       "vfree of a kernel stack");
	} else {
		/* i386: an order-1 block of lowmem, not a vmalloc area. */
		op = tu_op_vfree(l->page_offset + pi.kstack);
		tu_expect_fail(m, &op, VM_EWRONGFREE,
			       "vfree of a kernel stack");
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- free_pages refusals ---- */

START_TEST(free_pages_refusals)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_op op;
	uint64_t pa, k, big;

	pa = tu_alloc_pages(m, 2, VM_GFP_KERNEL).u.alloc_pages.pa;
	op = tu_op_free_pages(pa, 1);
	tu_expect_fail(m, &op, VM_EORDER,
		       "free_pages order 1 of an order-2 block");
	op = tu_op_free_pages(pa, 3);
	tu_expect_fail(m, &op, VM_EORDER,
		       "free_pages order 3 of an order-2 block");
	op = tu_op_free_pages(pa, 0);
	tu_expect_fail(m, &op, VM_EORDER,
		       "free_pages order 0 of an order-2 block");
	op = tu_op_free_pages(pa + 0x10, 2);
	tu_expect_fail(m, &op, VM_EINVAL, "free_pages of an unaligned pa");
	op = tu_op_free_pages(pa + PAGE, 2);
	tu_expect_fail(m, &op, VM_EINTERIOR, "free_pages inside a block");
	op = tu_op_free_pages(pa, 11);
	tu_expect_fail(m, &op, VM_EINVAL, "free_pages order 11");
	op = tu_op_free_pages(l->memory, 0);
	tu_expect_fail(m, &op, VM_ERANGE, "free_pages at the end of RAM");
	op = tu_op_free_pages(l->memory + 64 * VM_MiB, 0);
	tu_expect_fail(m, &op, VM_ERANGE, "free_pages beyond RAM");
	/* Memory of another allocator. */
	k = tu_kmalloc(m, 64, VM_GFP_KERNEL).u.kmalloc.va;
	op = tu_op_free_pages((k - l->page_offset) & ~(PAGE - 1), 0);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "free_pages of a slab page");
	big = tu_kmalloc(m, 16384, VM_GFP_KERNEL).u.kmalloc.va;
	op = tu_op_free_pages(big - l->page_offset, 2);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "free_pages of kmalloc_large");
	op = tu_op_free_pages(VM_KIMAGE_START, 0);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "free_pages of the kernel image");
	op = tu_op_free_pages(0, 0);
	tu_expect_fail(m, &op, VM_EWRONGFREE, "free_pages of firmware memory");
	/* The right call works once, then is a double free. */
	op = tu_op_free_pages(pa, 2);
	tu_apply_ok(m, &op, "free_pages");
	tu_expect_fail(m, &op, VM_EDOUBLEFREE, "free_pages twice");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- alloc_pages answers ---- */

START_TEST(alloc_pages_answers)
{
	/* 2 GiB: i386 and i386-pae have ZONE_HIGHMEM above ~888 MiB. */
	struct vm_machine *m = tu_boot(tu_arches[_i], 2 * VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	struct vm_op_result r;
	struct vm_op op;
	uint64_t pa;

	op = tu_op_alloc_pages(11, VM_GFP_KERNEL);
	tu_expect_fail(m, &op, VM_EINVAL, "alloc_pages order 11");
	op = tu_op_alloc_pages(UINT32_MAX, VM_GFP_KERNEL);
	tu_expect_fail(m, &op, VM_EINVAL, "alloc_pages order 2^32-1");

	/* Lowmem: a kernel logical address. */
	r = tu_alloc_pages(m, 3, VM_GFP_KERNEL);
	pa = r.u.alloc_pages.pa;
	ck_assert_uint_eq(pa % (8 * PAGE), 0);
	ck_assert_uint_eq(r.u.alloc_pages.order, 3);
	ck_assert(r.u.alloc_pages.has_va);
	ck_assert_uint_eq(r.u.alloc_pages.va, l->page_offset + pa);
	ck_assert_uint_lt(pa, l->lowmem_bytes);
	ck_assert_int_eq(r.u.alloc_pages.zone, vm_layout_zone_of(l, pa >> 12));
	ck_assert_int_ne(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
	ck_assert_int_eq(vm_machine_owner(m, pa >> 12).kind,
			 VM_OWNER_PAGE_ALLOC);

	/* The largest order. */
	r = tu_alloc_pages(m, 10, VM_GFP_KERNEL);
	pa = r.u.alloc_pages.pa;
	ck_assert_uint_eq(pa % (4 * VM_MiB), 0);

	/* GFP_DMA: ZONE_DMA, below 16 MiB. */
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL | VM_GFP_DMA);
	pa = r.u.alloc_pages.pa;
	ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_DMA);
	ck_assert_uint_lt(pa, 16 * VM_MiB);
	ck_assert(r.u.alloc_pages.has_va);

	/* GFP_DMA32: ZONE_DMA32 on x86_64; 32-bit has none, so ZONE_NORMAL
	 * (GFP_ZONE_TABLE's OPT_ZONE_DMA32). */
	r = tu_alloc_pages(m, 0, VM_GFP_KERNEL | VM_GFP_DMA32);
	pa = r.u.alloc_pages.pa;
	ck_assert_int_eq(r.u.alloc_pages.zone,
			 a->is64 ? VM_ZONE_DMA32 : VM_ZONE_NORMAL);
	ck_assert_uint_lt(pa, 4 * VM_GiB);

	/* __GFP_HIGHMEM: highmem where it exists, and then no va. */
	r = tu_alloc_pages(m, 0, VM_GFP_HIGHUSER);
	pa = r.u.alloc_pages.pa;
	ck_assert_int_eq(r.u.alloc_pages.zone, vm_layout_zone_of(l, pa >> 12));
	if (a->is64) {
		ck_assert(r.u.alloc_pages.has_va);
		ck_assert_uint_eq(r.u.alloc_pages.va, l->page_offset + pa);
		ck_assert_int_ne(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
	} else {
		ck_assert_uint_gt(l->highmem_bytes, 0);
		ck_assert_int_eq(r.u.alloc_pages.zone, VM_ZONE_HIGHMEM);
		ck_assert_uint_ge(pa, l->lowmem_bytes);
		ck_assert_msg(!r.u.alloc_pages.has_va,
			      "a highmem block has no kernel logical address");
		/* And it frees like any other block. */
		op = tu_op_free_pages(pa, 0);
		tu_apply_ok(m, &op, "free_pages of highmem");
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- vmalloc answers ---- */

START_TEST(vmalloc_sizes)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	static const uint64_t sizes[] = { 1, 4095, 4096, 4097, 5000, 8192,
					  40000 };
	struct vm_op op;

	op = tu_op_vmalloc(0, true);
	tu_expect_fail(m, &op, VM_EINVAL, "vmalloc of 0 bytes");
	op = tu_op_vmalloc(l->vmalloc_end - l->vmalloc_start + 1, true);
	tu_expect_fail(m, &op, VM_EINVAL, "vmalloc larger than the region");
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct vm_op_result r;
		struct vm_vmalloc_info vi;
		uint64_t pages = (sizes[i] + PAGE - 1) / PAGE;
		int idx;

		r = tu_vmalloc(m, sizes[i], true);
		ck_assert_uint_eq(r.u.vmalloc.pages, pages);
		ck_assert_uint_eq(r.u.vmalloc.size, pages * PAGE);
		ck_assert(r.u.vmalloc.guard);
		ck_assert_uint_eq(r.u.vmalloc.va % PAGE, 0);
		ck_assert_uint_ge(r.u.vmalloc.va, l->vmalloc_start);
		ck_assert_uint_le(r.u.vmalloc.va + pages * PAGE, l->vmalloc_end);
		idx = vm_vmalloc_at(m, r.u.vmalloc.va);
		ck_assert_int_ge(idx, 0);
		vm_vmalloc_get(m, (uint32_t)idx, &vi);
		ck_assert_uint_eq(vi.pages, pages);
		ck_assert(vi.guard && !vi.kernel_stack);
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

static struct vm_translation kernel_translate(const struct vm_machine *m,
					     uint64_t va)
{
	struct vm_translate_req q;
	struct vm_translation t;
	struct vm_error e = { 0 };
	int rc;

	memset(&q, 0, sizeof(q));
	q.va = va;
	q.has_pid = true;
	q.pid = 0;
	q.mode = VM_MODE_KERNEL;
	q.access = VM_ACCESS_READ;
	rc = vm_translate(m, &q, &t, &e);
	ck_assert_msg(rc == 0, "translate %#llx: %s", (unsigned long long)va,
		      e.detail);
	return t;
}

START_TEST(vmalloc_guard_page)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	const struct vm_layout *l = vm_machine_layout(m);
	struct vm_translation t;
	uint64_t a, b, c, d;
	int idx;

	/* Areas come first-fit from the bottom of the region. */
	a = tu_vmalloc(m, 3 * PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(a, l->vmalloc_start);
	idx = vm_vmalloc_at(m, a);
	for (uint64_t p = 0; p < 3; p++) {
		t = kernel_translate(m, a + p * PAGE + 0x123);
		ck_assert_msg(t.ok, "vmalloc page %llu not mapped",
			      (unsigned long long)p);
		ck_assert_uint_eq(t.pa, (vm_vmalloc_pfn(m, (uint32_t)idx, p)
					 << VM_PAGE_SHIFT) + 0x123);
		ck_assert_int_eq(t.region, VM_REGION_VMALLOC);
		ck_assert_uint_eq(t.page_size, PAGE);
	}
	/* The guard page after the last page is not mapped. */
	t = kernel_translate(m, a + 3 * PAGE);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	/* The next area starts after the guard page. */
	b = tu_vmalloc(m, PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(b, a + 4 * PAGE);
	/* Without a guard (VM_NO_GUARD) the next area follows at once. */
	c = tu_vmalloc(m, 2 * PAGE, false).u.vmalloc.va;
	ck_assert_uint_eq(c, b + 2 * PAGE);
	d = tu_vmalloc(m, PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(d, c + 2 * PAGE);
	{
		struct vm_vmalloc_info vi;

		vm_vmalloc_get(m, (uint32_t)vm_vmalloc_at(m, c), &vi);
		ck_assert(!vi.guard);
	}
	/* So the page after c's last is d's first, and mapped. */
	t = kernel_translate(m, c + 2 * PAGE);
	ck_assert(t.ok);
	ck_assert_uint_eq(t.pa, vm_vmalloc_pfn(m, (uint32_t)vm_vmalloc_at(m, d),
					       0) << VM_PAGE_SHIFT);
	/* After a vfree its pages are unmapped at once. */
	tu_vfree(m, a);
	t = kernel_translate(m, a);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(vmalloc_first_fit_reuses_hole)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 512 * VM_MiB);
	uint64_t a, b, a2, c, small;
	int n = (int)tu_scale();

	a = tu_vmalloc(m, 5 * PAGE, true).u.vmalloc.va;
	b = tu_vmalloc(m, 2 * PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(b, a + 6 * PAGE);
	tu_vfree(m, a);
	a2 = tu_vmalloc(m, 5 * PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(a2, a);
	/* Too big for the hole: goes after b. */
	tu_vfree(m, a2);
	c = tu_vmalloc(m, 6 * PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(c, b + 3 * PAGE);
	/* A smaller one takes the bottom of the hole. */
	small = tu_vmalloc(m, 2 * PAGE, true).u.vmalloc.va;
	ck_assert_uint_eq(small, a);
	/* Repeated free and reuse keeps landing at the same place. */
	for (int i = 0; i < 16 * n; i++) {
		uint64_t size = (uint64_t)(1 + i % 5) * PAGE, v;

		tu_vfree(m, small);
		v = tu_vmalloc(m, size, true).u.vmalloc.va;
		ck_assert_uint_eq(v, a);
		small = v;
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- running out (SPEC 1.3: the smallest machine is 32 MiB) ---- */

START_TEST(kmalloc_until_out_of_memory)
{
	static const uint64_t sizes[] = { VM_KMALLOC_MAX_SIZE, VM_MiB,
					   64 * 1024, 8192 };
	struct vm_machine *m = tu_boot(tu_arches[_i], 32 * VM_MiB);

	for (unsigned s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct vm_op op = tu_op_kmalloc(sizes[s], VM_GFP_KERNEL);
		unsigned n;
		int rc = 0;

		/* 32 MiB hold at most 4096 objects of 8 KiB. */
		for (n = 0; n < 8192; n++) {
			struct vm_error e = { 0 };
			uint64_t d = vm_machine_digest(m);
			uint64_t v = vm_machine_version(m);

			rc = vm_machine_apply(m, &op, NULL, &e);
			if (rc == 0)
				continue;
			ck_assert_msg(rc == VM_ENOMEM, "kmalloc %llu: %s (%s)",
				      (unsigned long long)sizes[s],
				      vm_errname(rc), e.detail);
			ck_assert(e.detail[0] != '\0');
			ck_assert_uint_eq(vm_machine_digest(m), d);
			ck_assert_uint_eq(vm_machine_version(m), v);
			break;
		}
		ck_assert_msg(rc == VM_ENOMEM, "kmalloc %llu never ran out",
			      (unsigned long long)sizes[s]);
		/* Refused again, still changing nothing. */
		tu_expect_fail(m, &op, VM_ENOMEM, "kmalloc on a full machine");
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* An operation that fails half way through its allocations is undone. */
START_TEST(vmalloc_out_of_memory_changes_nothing)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 32 * VM_MiB);
	struct vm_op op = tu_op_vmalloc(30 * VM_MiB, true);

	tu_expect_fail(m, &op, VM_ENOMEM, "vmalloc of 30 MiB on 32 MiB");
	tu_assert_checks(m);
	/* The machine still works, from where it was. */
	ck_assert_uint_eq(tu_vmalloc(m, PAGE, true).u.vmalloc.va,
			  vm_machine_layout(m)->vmalloc_start);
	vm_machine_free(m);
}
END_TEST

/* ---- error names ---- */

START_TEST(error_names_distinct)
{
	static const int codes[] = {
		VM_OK,        VM_EINVAL,      VM_ERANGE,    VM_ENOMEM,
		VM_ENOENT,    VM_EBUSY,       VM_EDOUBLEFREE,
		VM_EINTERIOR, VM_EWRONGFREE,  VM_EORDER,    VM_ENOTALLOC,
		VM_ENOSPACE,  VM_EEXIST,      VM_ECORRUPT,  VM_EVERSION,
	};
	const unsigned n = sizeof(codes) / sizeof(codes[0]);
	const char *unknown_name = vm_errname(-9999);
	const char *unknown_text = vm_strerror(-9999);

	for (unsigned i = 0; i < n; i++) {
		const char *name = vm_errname(codes[i]);
		const char *text = vm_strerror(codes[i]);

		ck_assert_ptr_nonnull(name);
		ck_assert_ptr_nonnull(text);
		ck_assert_uint_gt(strlen(name), 0);
		ck_assert_uint_gt(strlen(text), 0);
		ck_assert_msg(strcmp(name, unknown_name) != 0,
			      "code %d has no name", codes[i]);
		ck_assert_msg(strcmp(text, unknown_text) != 0,
			      "code %d has no description", codes[i]);
		/* A stable identifier: lowercase letters and '_'. */
		for (const char *c = name; *c; c++)
			ck_assert_msg((*c >= 'a' && *c <= 'z') || *c == '_',
				      "name '%s' of code %d", name, codes[i]);
		for (unsigned j = 0; j < i; j++) {
			ck_assert_msg(strcmp(name, vm_errname(codes[j])) != 0,
				      "codes %d and %d share the name %s",
				      codes[i], codes[j], name);
			ck_assert_msg(strcmp(text, vm_strerror(codes[j])) != 0,
				      "codes %d and %d share the text '%s'",
				      codes[i], codes[j], text);
		}
	}
	/* vm_fail fills err and returns the code; NULL err is allowed. */
	{
		struct vm_error e = { 0 };

		ck_assert_int_eq(vm_fail(&e, VM_EBUSY, "cpu %d", 3), VM_EBUSY);
		ck_assert_int_eq(e.code, VM_EBUSY);
		ck_assert_str_eq(e.detail, "cpu 3");
		ck_assert_int_eq(vm_fail(NULL, VM_ENOENT, "x"), VM_ENOENT);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc");
	TCase *gfp = tcase_create("gfp");
	TCase *tc = tcase_create("alloc");

	tcase_add_test(gfp, gfp_parse_every_name);
	tcase_add_test(gfp, gfp_parse_combinations);
	tcase_add_test(gfp, gfp_parse_refusals);
	tcase_add_test(gfp, gfp_parse_only_bar_separates);
	tcase_add_test(gfp, gfp_parse_leaves_err_alone);
	tcase_add_test(gfp, gfp_format);
	tcase_add_test(gfp, gfp_zone_bad);
	tcase_add_test(gfp, error_names_distinct);
	suite_add_tcase(s, gfp);

	tcase_add_loop_test(tc, zone_bad_refused_by_allocators, 0, 4);
	tcase_add_loop_test(tc, kmalloc_answers, 0, 4);
	tcase_add_loop_test(tc, kfree_double_free, 0, 4);
	tcase_add_loop_test(tc, kfree_interior_pointer, 0, 4);
	tcase_add_loop_test(tc, kfree_wrong_allocator, 0, 4);
	tcase_add_loop_test(tc, kfree_not_a_kernel_logical_address, 0, 4);
	tcase_add_loop_test(tc, vfree_refusals, 0, 4);
	tcase_add_loop_test(tc, free_pages_refusals, 0, 4);
	tcase_add_loop_test(tc, alloc_pages_answers, 0, 4);
	tcase_add_loop_test(tc, vmalloc_sizes, 0, 4);
	tcase_add_loop_test(tc, vmalloc_guard_page, 0, 4);
	tcase_add_loop_test(tc, vmalloc_first_fit_reuses_hole, 0, 4);
	tcase_add_loop_test(tc, kmalloc_until_out_of_memory, 0, 4);
	tcase_add_loop_test(tc, vmalloc_out_of_memory_changes_nothing, 0, 4);
	suite_add_tcase(s, tc);

	return tu_run(s);
}
