/*
 * test_dma.c - may a device DMA to this buffer? (SPEC 1.8)
 *
 * The rules of Documentation/core-api/dma-api-howto.rst: dma_map_single
 * takes kmalloc or page-allocator memory (direct-mapped, one physically
 * contiguous range, below the device mask); vmalloc, kmap, kernel-image,
 * stack and user buffers go through a scatter-gather list of the pages
 * behind them. Segments are checked against a reference built from
 * page-by-page translations, merged where physically adjacent.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/arch.h"
#include "core/dma.h"
#include "core/gfp.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/process.h"
#include "core/translate.h"
#include "tests/core/testutil.h"

static const char *const arches32[] = { "i386", "i386-pae" };

/* A guarded vmalloc area; returns its address. */
static uint64_t do_vmalloc(struct vm_machine *m, uint64_t size)
{
	struct vm_op_result r = tu_vmalloc(m, size, true);

	ck_assert(r.u.vmalloc.guard);
	return r.u.vmalloc.va;
}

/* The segments a check hands to its callback. */
#define MAX_SEGS 4096

struct segs {
	unsigned n;
	uint64_t pa[MAX_SEGS], len[MAX_SEGS];
	uint64_t total;
};

static void collect(void *ctx, uint64_t pa, uint64_t length)
{
	struct segs *s = ctx;

	ck_assert_uint_lt(s->n, MAX_SEGS);
	s->pa[s->n] = pa;
	s->len[s->n] = length;
	s->n++;
	s->total += length;
}

struct check {
	int rc;
	struct vm_dma_result r;
	struct segs s;
	struct vm_error e;
};

static struct check *dma(const struct vm_machine *m, uint64_t va,
			 uint64_t length, unsigned mask, bool has_pid,
			 uint32_t pid)
{
	static struct check c;
	struct vm_dma_req q = { .va = va, .length = length, .mask_bits = mask,
				.has_pid = has_pid, .pid = pid };

	memset(&c, 0, sizeof(c));
	c.rc = vm_dma_check(m, &q, &c.r, collect, &c.s, &c.e);
	if (c.rc == 0)
		ck_assert_uint_eq(c.r.nsegments, c.s.n);
	return &c;
}

static struct check *dma_ok(const struct vm_machine *m, uint64_t va,
			    uint64_t length, unsigned mask)
{
	struct check *c = dma(m, va, length, mask, false, 0);

	ck_assert_msg(c->rc == 0, "dma-check %#llx: %s",
		      (unsigned long long)va, c->e.detail);
	return c;
}

static const char *reasons_text(uint32_t reasons)
{
	static char buf[256];

	buf[0] = '\0';
	for (unsigned b = 0; b < VM_DMA_NREASONS; b++)
		if (reasons & (1u << b)) {
			strcat(buf, vm_dma_reason_name(b));
			strcat(buf, " ");
		}
	return buf;
}

#define assert_reasons(c, want)                                              \
	ck_assert_msg((c)->r.reasons == (want), "reasons [%s], want [%s]",   \
		      reasons_text((c)->r.reasons), reasons_text(want))

#define assert_has(c, bits)                                                  \
	ck_assert_msg(((c)->r.reasons & (bits)) == (bits),                   \
		      "reasons [%s] lack [%s]", reasons_text((c)->r.reasons), \
		      reasons_text(bits))

/*
 * The reference scatter-gather list: translate each page of [va, va+len)
 * (kernel mode, through pid or the reference table), skip unmapped pages,
 * merge a page into the previous segment when it continues it physically.
 */
static void reference_segments(const struct vm_machine *m, uint64_t va,
			       uint64_t len, bool has_pid, uint32_t pid,
			       struct segs *out)
{
	uint64_t done = 0;

	memset(out, 0, sizeof(*out));
	while (done < len) {
		uint64_t cur = va + done;
		uint64_t chunk = VM_PAGE_SIZE - (cur & (VM_PAGE_SIZE - 1));
		struct vm_translate_req q = { .va = cur, .has_pid = true,
					      .pid = has_pid ? pid : 0,
					      .mode = VM_MODE_KERNEL,
					      .access = VM_ACCESS_READ };
		struct vm_translation t;

		if (chunk > len - done)
			chunk = len - done;
		ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
		if (t.ok) {
			if (out->n && out->pa[out->n - 1] + out->len[out->n - 1] ==
					      t.pa) {
				out->len[out->n - 1] += chunk;
			} else {
				ck_assert_uint_lt(out->n, MAX_SEGS);
				out->pa[out->n] = t.pa;
				out->len[out->n] = chunk;
				out->n++;
			}
			out->total += chunk;
		}
		done += chunk;
	}
}

static void assert_segments_match(const struct vm_machine *m,
				   const struct check *c, uint64_t va,
				   uint64_t len, bool has_pid, uint32_t pid)
{
	static struct segs ref;

	reference_segments(m, va, len, has_pid, pid, &ref);
	ck_assert_msg(c->s.n == ref.n, "%u segments, reference %u", c->s.n,
		      ref.n);
	for (unsigned i = 0; i < ref.n; i++) {
		ck_assert_msg(c->s.pa[i] == ref.pa[i] &&
				      c->s.len[i] == ref.len[i],
			      "segment %u: pa %#llx len %llu, reference "
			      "%#llx %llu", i, (unsigned long long)c->s.pa[i],
			      (unsigned long long)c->s.len[i],
			      (unsigned long long)ref.pa[i],
			      (unsigned long long)ref.len[i]);
		/* Merged: no segment continues the previous one. */
		if (i > 0)
			ck_assert_uint_ne(c->s.pa[i - 1] + c->s.len[i - 1],
					  c->s.pa[i]);
		ck_assert_uint_gt(c->s.len[i], 0);
	}
	ck_assert_uint_eq(c->s.total, ref.total);
}

/* ---- kmalloc and alloc_pages: dma_map_single works ---------------------- */

START_TEST(kmalloc_buffer_is_single_ok)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_kmalloc(m, 100, VM_GFP_KERNEL);
	struct check *c = dma_ok(m, r.u.kmalloc.va, 100, 32);

	ck_assert(c->r.single_ok);
	ck_assert(c->r.sg_ok);
	assert_reasons(c, 0);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], r.u.kmalloc.pa);
	ck_assert_uint_eq(c->s.len[0], 100);
	/* Any part of the object, down to one byte. */
	c = dma_ok(m, r.u.kmalloc.va + 50, 78, 32);
	ck_assert(c->r.single_ok);
	ck_assert_uint_eq(c->s.pa[0], r.u.kmalloc.pa + 50);
	c = dma_ok(m, r.u.kmalloc.va, 1, 64);
	ck_assert(c->r.single_ok);
	vm_machine_free(m);
}
END_TEST

/* An object of kmalloc-8k spans two pages: one merged segment. */
START_TEST(kmalloc_8k_is_one_segment)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_kmalloc(m, 8192, VM_GFP_KERNEL);
	struct check *c = dma_ok(m, r.u.kmalloc.va, 8192, 32);

	ck_assert(c->r.single_ok);
	assert_reasons(c, 0);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], r.u.kmalloc.pa);
	ck_assert_uint_eq(c->s.len[0], 8192);
	assert_segments_match(m, c, r.u.kmalloc.va, 8192, false, 0);
	vm_machine_free(m);
}
END_TEST

/* A buffer running past its kmalloc object crosses allocations. */
START_TEST(past_the_object_crosses_allocations)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_kmalloc(m, 64, VM_GFP_KERNEL);
	struct check *c = dma_ok(m, r.u.kmalloc.va, 128, 32);

	ck_assert(!c->r.single_ok);
	/* Every page is mapped and below the mask. */
	ck_assert(c->r.sg_ok);
	assert_has(c, VM_DMA_CROSSES_ALLOCATIONS);
	ck_assert_str_eq(vm_dma_reason_name(7), "crosses_allocations");
	/* Exactly the object is fine. */
	c = dma_ok(m, r.u.kmalloc.va, 64, 32);
	ck_assert(c->r.single_ok);
	/* One byte too far is not. */
	c = dma_ok(m, r.u.kmalloc.va + 1, 64, 32);
	ck_assert(!c->r.single_ok);
	assert_has(c, VM_DMA_CROSSES_ALLOCATIONS);
	vm_machine_free(m);
}
END_TEST

START_TEST(alloc_pages_block_is_single_ok)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_alloc_pages(m, 3, VM_GFP_KERNEL);
	struct check *c;

	ck_assert(r.u.alloc_pages.has_va);
	c = dma_ok(m, r.u.alloc_pages.va, 8 * VM_PAGE_SIZE, 32);
	ck_assert(c->r.single_ok);
	ck_assert(c->r.sg_ok);
	assert_reasons(c, 0);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], r.u.alloc_pages.pa);
	ck_assert_uint_eq(c->s.len[0], 8 * VM_PAGE_SIZE);
	/* kmalloc_large: a block from the page allocator too. */
	r = tu_kmalloc(m, 20000, VM_GFP_KERNEL);
	ck_assert(r.u.kmalloc.large);
	c = dma_ok(m, r.u.kmalloc.va, 20000, 32);
	ck_assert(c->r.single_ok);
	ck_assert_uint_eq(c->r.nsegments, 1);
	vm_machine_free(m);
}
END_TEST

/* ---- vmalloc: not for dma_map_single, fine for a scatter-gather list ---- */

START_TEST(vmalloc_buffer_needs_sg)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint64_t len = 8 * VM_PAGE_SIZE;
	uint64_t va = do_vmalloc(m, len);
	struct check *c = dma_ok(m, va, len, 32);

	ck_assert_uint_eq(vm_machine_config(m)->churn, 1024);
	ck_assert(!c->r.single_ok);
	ck_assert(c->r.sg_ok);
	assert_has(c, VM_DMA_VMALLOC_ADDRESS | VM_DMA_NOT_CONTIGUOUS);
	ck_assert(!(c->r.reasons & (VM_DMA_UNMAPPED | VM_DMA_ABOVE_DMA_MASK)));
	/* The boot churn leaves the frames scattered (SPEC 1.3). */
	ck_assert_uint_gt(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.total, len);
	assert_segments_match(m, c, va, len, false, 0);
	/* Unaligned, inside the area. */
	c = dma_ok(m, va + 100, len - 300, 32);
	ck_assert_uint_eq(c->s.total, len - 300);
	assert_segments_match(m, c, va + 100, len - 300, false, 0);
	/* One page of it: contiguous, still a vmalloc address. */
	c = dma_ok(m, va + VM_PAGE_SIZE, VM_PAGE_SIZE, 32);
	ck_assert(!c->r.single_ok);
	assert_reasons(c, VM_DMA_VMALLOC_ADDRESS);
	ck_assert_uint_eq(c->r.nsegments, 1);
	vm_machine_free(m);
}
END_TEST

/* The guard page after a vmalloc area is not mapped. */
START_TEST(vmalloc_guard_page_is_unmapped)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint64_t va = do_vmalloc(m, 8 * VM_PAGE_SIZE);
	uint64_t guard = va + 8 * VM_PAGE_SIZE;
	struct check *c = dma_ok(m, guard, VM_PAGE_SIZE, 32);

	ck_assert(!c->r.single_ok);
	ck_assert(!c->r.sg_ok);
	assert_has(c, VM_DMA_UNMAPPED);
	ck_assert_uint_eq(c->r.nsegments, 0);
	ck_assert_uint_eq(c->s.total, 0);
	/* The last page and the guard: one mapped segment, then nothing. */
	c = dma_ok(m, guard - VM_PAGE_SIZE, 2 * VM_PAGE_SIZE, 32);
	ck_assert(!c->r.sg_ok);
	assert_has(c, VM_DMA_UNMAPPED | VM_DMA_VMALLOC_ADDRESS);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.total, VM_PAGE_SIZE);
	assert_segments_match(m, c, guard - VM_PAGE_SIZE, 2 * VM_PAGE_SIZE,
			      false, 0);
	vm_machine_free(m);
}
END_TEST

/* ---- the device's DMA mask ------------------------------------------------ */

START_TEST(dma_mask_24)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result d = tu_kmalloc(m, 512, VM_GFP_KERNEL | VM_GFP_DMA);
	struct vm_op_result n = tu_kmalloc(m, 512, VM_GFP_KERNEL);
	struct check *c;

	/* GFP_DMA: ZONE_DMA, below 16 MiB: an ISA device reaches it. */
	ck_assert_int_eq(d.u.kmalloc.zone, VM_ZONE_DMA);
	ck_assert_uint_lt(d.u.kmalloc.pa + 511, 16 * VM_MiB);
	c = dma_ok(m, d.u.kmalloc.va, 512, 24);
	ck_assert(c->r.single_ok);
	ck_assert(c->r.sg_ok);
	assert_reasons(c, 0);

	/* GFP_KERNEL: above 16 MiB (DMA32 or Normal), beyond a 24-bit mask. */
	ck_assert_int_ne(n.u.kmalloc.zone, VM_ZONE_DMA);
	ck_assert_uint_ge(n.u.kmalloc.pa, 16 * VM_MiB);
	c = dma_ok(m, n.u.kmalloc.va, 512, 24);
	ck_assert(!c->r.single_ok);
	ck_assert(!c->r.sg_ok);
	assert_reasons(c, VM_DMA_ABOVE_DMA_MASK);
	ck_assert_uint_eq(c->r.nsegments, 1);
	/* The same buffer with the default 32-bit mask, and with 64. */
	c = dma_ok(m, n.u.kmalloc.va, 512, 32);
	ck_assert(c->r.single_ok);
	c = dma_ok(m, n.u.kmalloc.va, 512, 64);
	ck_assert(c->r.single_ok);
	vm_machine_free(m);
}
END_TEST

/* pa + length - 1 <= mask, exactly at the edge. */
START_TEST(dma_mask_edge)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_alloc_pages(m, 0, VM_GFP_KERNEL);
	uint64_t pa = r.u.alloc_pages.pa;
	unsigned bits = 1;
	struct check *c;

	/* The smallest mask that holds the whole page. */
	while (((1ULL << bits) - 1) < pa + VM_PAGE_SIZE - 1)
		bits++;
	c = dma_ok(m, r.u.alloc_pages.va, VM_PAGE_SIZE, bits);
	ck_assert(c->r.single_ok);
	c = dma_ok(m, r.u.alloc_pages.va, VM_PAGE_SIZE, bits - 1);
	ck_assert(!c->r.single_ok);
	assert_has(c, VM_DMA_ABOVE_DMA_MASK);
	/* A buffer whose last byte is the mask itself (pa 0xffffff, ISA)
	 * is reachable; one byte more is not. */
	c = dma_ok(m, vm_machine_layout(m)->page_offset + 16 * VM_MiB - 64, 64,
		   24);
	ck_assert(!(c->r.reasons & VM_DMA_ABOVE_DMA_MASK));
	ck_assert(c->r.sg_ok);
	c = dma_ok(m, vm_machine_layout(m)->page_offset + 16 * VM_MiB - 64, 65,
		   24);
	assert_has(c, VM_DMA_ABOVE_DMA_MASK);
	ck_assert(!c->r.sg_ok);
	vm_machine_free(m);
}
END_TEST

/* ---- user buffers --------------------------------------------------------- */

START_TEST(user_buffer_needs_pid)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "dev", true);
	uint32_t lazy = tu_create(m, "dev", false);
	uint64_t va = tu_text_start(m), len = 64 * 1024;
	struct check *c;

	c = dma(m, va, len, 32, false, 0);
	ck_assert_int_eq(c->rc, VM_EINVAL);
	ck_assert_int_eq(c->e.code, VM_EINVAL);
	ck_assert_msg(strstr(c->e.detail, "pid") != NULL, "%s", c->e.detail);

	c = dma(m, va, len, 32, true, pid);
	ck_assert_int_eq(c->rc, 0);
	ck_assert(!c->r.single_ok);
	ck_assert(c->r.sg_ok);
	assert_has(c, VM_DMA_USER_ADDRESS);
	ck_assert(!(c->r.reasons & (VM_DMA_UNMAPPED | VM_DMA_ABOVE_DMA_MASK)));
	ck_assert_uint_eq(c->s.total, len);
	assert_segments_match(m, c, va, len, true, pid);

	/* Not populated: nothing behind it yet. */
	c = dma(m, va, len, 32, true, lazy);
	ck_assert_int_eq(c->rc, 0);
	ck_assert(!c->r.sg_ok);
	assert_has(c, VM_DMA_USER_ADDRESS | VM_DMA_UNMAPPED);
	ck_assert_uint_eq(c->r.nsegments, 0);

	/* An unknown pid names nothing. */
	c = dma(m, va, len, 32, true, 99);
	ck_assert_int_eq(c->rc, VM_ENOENT);
	vm_machine_free(m);
}
END_TEST

/* ---- kernel image, kmap window, stacks, free memory ---------------------- */

/* The direct-map alias of the image, [PAGE_OFFSET + 16, + 24) MiB. */
START_TEST(kernel_image_direct_alias)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint64_t alias = l->page_offset + 16 * VM_MiB;
	struct check *c = dma_ok(m, alias, VM_PAGE_SIZE, 32);

	ck_assert(!c->r.single_ok);
	assert_has(c, VM_DMA_KERNEL_IMAGE);
	ck_assert(c->r.sg_ok);
	ck_assert_uint_eq(c->s.pa[0], 16 * VM_MiB);
	/* Its last byte, and a buffer reaching into it from below. */
	c = dma_ok(m, l->page_offset + 24 * VM_MiB - 1, 1, 32);
	assert_has(c, VM_DMA_KERNEL_IMAGE);
	c = dma_ok(m, alias - 100, 200, 32);
	assert_has(c, VM_DMA_KERNEL_IMAGE);
	/* Just after it is no longer the image. */
	c = dma_ok(m, l->page_offset + 24 * VM_MiB, VM_PAGE_SIZE, 32);
	ck_assert(!(c->r.reasons & VM_DMA_KERNEL_IMAGE));
	vm_machine_free(m);
}
END_TEST

/* x86_64: [0xffffffff81000000, 0xffffffff81800000) too. */
START_TEST(kernel_image_text_mapping)
{
	struct vm_machine *m = tu_boot(tu_arches64[_i], VM_GiB);
	struct check *c = dma_ok(m, 0xffffffff81000000ULL, VM_PAGE_SIZE, 32);

	ck_assert(!c->r.single_ok);
	assert_has(c, VM_DMA_KERNEL_IMAGE);
	ck_assert(c->r.sg_ok);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], 16 * VM_MiB);
	c = dma_ok(m, 0xffffffff817ff000ULL, VM_PAGE_SIZE, 32);
	assert_has(c, VM_DMA_KERNEL_IMAGE);
	ck_assert_uint_eq(c->s.pa[0], 24 * VM_MiB - VM_PAGE_SIZE);
	/* A 1 MiB buffer in the text mapping: 2 MiB pages, one segment. */
	c = dma_ok(m, 0xffffffff81100000ULL, VM_MiB, 32);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], 17 * VM_MiB);
	vm_machine_free(m);
}
END_TEST

/* i386: the pkmap window is a kmap address (and nothing is kmapped). */
START_TEST(pkmap_is_kmap_address)
{
	struct vm_machine *m = tu_boot(arches32[_i], 2 * VM_GiB);
	uint64_t pkmap = _i ? 0xffa00000ULL : 0xff800000ULL;
	struct check *c = dma_ok(m, pkmap + 3 * VM_PAGE_SIZE, VM_PAGE_SIZE, 32);

	ck_assert(!c->r.single_ok);
	assert_has(c, VM_DMA_KMAP_ADDRESS);
	ck_assert_str_eq(vm_dma_reason_name(6), "kmap_address");
	vm_machine_free(m);
}
END_TEST

/* Kernel stacks are not DMA-able (dma-api-howto: no stack addresses). */
START_TEST(kernel_stack_is_not_single_ok)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "dev", true);
	struct vm_process_info pi;
	uint64_t va;
	struct check *c;

	ck_assert_int_eq(vm_process_get(m, pid, &pi), 0);
	/* x86_64: a vmalloc'd stack (CONFIG_VMAP_STACK); i386: an order-1
	 * lowmem block, at its kernel logical address. */
	va = l->arch->is64 ? pi.kstack : l->page_offset + pi.kstack;
	c = dma_ok(m, va, 256, 32);
	ck_assert(!c->r.single_ok);
	if (l->arch->is64)
		assert_has(c, VM_DMA_VMALLOC_ADDRESS);
	vm_machine_free(m);
}
END_TEST

/* Free memory in the direct map is not an allocated buffer. */
static int first_free_lowmem(void *ctx, uint64_t start_pfn, uint64_t end_pfn,
			     const struct vm_owner *owner)
{
	uint64_t *want = ctx;

	if (owner->kind == VM_OWNER_FREE && start_pfn >= want[1] &&
	    end_pfn <= want[2]) {
		want[0] = start_pfn;
		return 1;
	}
	return 0;
}

START_TEST(free_memory_is_not_single_ok)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint64_t ctx[3] = { UINT64_MAX, 32 * VM_MiB >> VM_PAGE_SHIFT,
			    l->lowmem_bytes >> VM_PAGE_SHIFT };
	struct check *c;

	vm_machine_frames(m, ctx[1], ctx[2], first_free_lowmem, ctx);
	ck_assert_uint_ne(ctx[0], UINT64_MAX);
	c = dma_ok(m, l->page_offset + (ctx[0] << VM_PAGE_SHIFT), 64, 32);
	ck_assert(!c->r.single_ok);
	ck_assert(c->r.sg_ok);
	ck_assert_uint_eq(c->s.pa[0], ctx[0] << VM_PAGE_SHIFT);
	vm_machine_free(m);
}
END_TEST

/*
 * Pages mapped one by one but physically adjacent form one segment: the
 * 4 KiB tail of the direct map (RAM of 1025 MiB leaves a tail below the
 * large pages on every arch), and, on a pristine machine (churn 0) where
 * consecutive allocations ascend (SPEC 1.3), a vmalloc area and a
 * process's text, whose frames then mostly follow each other (a zone's
 * unaligned edge can still break the run, so the count is compared with
 * the page-by-page reference, not fixed).
 */
START_TEST(adjacent_pages_merge)
{
	struct vm_config cfg;
	struct vm_machine *m;
	const struct vm_layout *l;
	uint64_t va, len = 16 * VM_PAGE_SIZE;
	uint32_t pid;
	struct check *c;
	struct vm_translation t;
	struct vm_translate_req q = { .has_pid = true, .mode = VM_MODE_KERNEL };

	tu_config(&cfg, tu_arches[_i], 1025 * VM_MiB);
	cfg.churn = 0;
	m = tu_boot_config(&cfg);
	l = vm_machine_layout(m);

	/* The direct map's last 16 pages are 4 KiB pages. */
	q.va = l->high_memory - len;
	ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
	ck_assert(t.ok);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	c = dma_ok(m, l->high_memory - len, len, 64);
	ck_assert_uint_eq(c->r.nsegments, 1);
	ck_assert_uint_eq(c->s.pa[0], l->lowmem_bytes - len);
	ck_assert_uint_eq(c->s.len[0], len);
	ck_assert(!(c->r.reasons & VM_DMA_NOT_CONTIGUOUS));
	assert_segments_match(m, c, l->high_memory - len, len, false, 0);

	/* A pristine vmalloc: separate 4 KiB mappings, ascending frames. */
	va = do_vmalloc(m, len);
	q.va = va;
	ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	c = dma_ok(m, va, len, 64);
	ck_assert_uint_lt(c->r.nsegments, 16);
	ck_assert_uint_eq(c->s.total, len);
	ck_assert(c->r.sg_ok);
	ck_assert(!c->r.single_ok);
	assert_reasons(c, VM_DMA_VMALLOC_ADDRESS |
				  (c->r.nsegments > 1 ? VM_DMA_NOT_CONTIGUOUS
						      : 0));
	assert_segments_match(m, c, va, len, false, 0);

	/* A pristine process's text (16 pages). */
	pid = tu_create(m, "dev", true);
	c = dma(m, tu_text_start(m), len, 64, true, pid);
	ck_assert_int_eq(c->rc, 0);
	ck_assert_uint_lt(c->r.nsegments, 16);
	ck_assert_uint_eq(c->s.total, len);
	assert_reasons(c, VM_DMA_USER_ADDRESS |
				  (c->r.nsegments > 1 ? VM_DMA_NOT_CONTIGUOUS
						      : 0));
	assert_segments_match(m, c, tu_text_start(m), len, true, pid);
	vm_machine_free(m);
}
END_TEST

/* ---- requests that are never valid ---------------------------------------- */

START_TEST(invalid_requests)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_op_result r = tu_kmalloc(m, 64, VM_GFP_KERNEL);
	uint64_t va = r.u.kmalloc.va;
	struct check *c;

	c = dma(m, va, 0, 32, false, 0);
	ck_assert_int_eq(c->rc, VM_ERANGE);
	ck_assert_msg(strstr(c->e.detail, "length") != NULL, "%s", c->e.detail);
	c = dma(m, va, VM_DMA_MAX_LENGTH + 1, 32, false, 0);
	ck_assert_int_eq(c->rc, VM_ERANGE);
	c = dma(m, va, 64, 0, false, 0);
	ck_assert_int_eq(c->rc, VM_ERANGE);
	ck_assert_msg(strstr(c->e.detail, "mask") != NULL, "%s", c->e.detail);
	c = dma(m, va, 64, 65, false, 0);
	ck_assert_int_eq(c->rc, VM_ERANGE);
	/* The limits themselves are valid. */
	c = dma(m, va, 64, 1, false, 0);
	ck_assert_int_eq(c->rc, 0);
	ck_assert(!c->r.single_ok);
	c = dma(m, va, 64, 64, false, 0);
	ck_assert_int_eq(c->rc, 0);
	ck_assert(c->r.single_ok);
	c = dma(m, vm_machine_layout(m)->page_offset, VM_DMA_MAX_LENGTH, 32,
		false, 0);
	ck_assert_int_eq(c->rc, 0);
	ck_assert_uint_ge(c->r.nsegments, 1);
	vm_machine_free(m);
}
END_TEST

/* A check is a pure query: nothing allocated, nothing changed. */
START_TEST(check_is_pure)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint64_t va = do_vmalloc(m, 16 * VM_PAGE_SIZE);
	uint64_t allocs = vm_machine_host_allocs(m);
	uint64_t digest = vm_machine_digest(m);
	uint64_t version = vm_machine_version(m);
	struct vm_dma_req q = { .va = va, .length = 17 * VM_PAGE_SIZE,
				.mask_bits = 32 };
	struct vm_dma_result res;

	for (unsigned i = 0; i < 1000; i++) {
		q.va = va + (i % 16) * 100;
		ck_assert_int_eq(vm_dma_check(m, &q, &res, NULL, NULL, NULL), 0);
	}
	ck_assert_uint_eq(vm_machine_host_allocs(m), allocs);
	ck_assert_uint_eq(vm_machine_digest(m), digest);
	ck_assert_uint_eq(vm_machine_version(m), version);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dma");
	TCase *tc = tcase_create("dma");

	tcase_add_loop_test(tc, kmalloc_buffer_is_single_ok, 0, 4);
	tcase_add_loop_test(tc, kmalloc_8k_is_one_segment, 0, 4);
	tcase_add_loop_test(tc, past_the_object_crosses_allocations, 0, 4);
	tcase_add_loop_test(tc, alloc_pages_block_is_single_ok, 0, 4);
	tcase_add_loop_test(tc, vmalloc_buffer_needs_sg, 0, 4);
	tcase_add_loop_test(tc, vmalloc_guard_page_is_unmapped, 0, 4);
	tcase_add_loop_test(tc, dma_mask_24, 0, 4);
	tcase_add_loop_test(tc, dma_mask_edge, 0, 4);
	tcase_add_loop_test(tc, user_buffer_needs_pid, 0, 4);
	tcase_add_loop_test(tc, kernel_image_direct_alias, 0, 4);
	tcase_add_loop_test(tc, kernel_image_text_mapping, 0, 2);
	tcase_add_loop_test(tc, pkmap_is_kmap_address, 0, 2);
	tcase_add_loop_test(tc, kernel_stack_is_not_single_ok, 0, 4);
	tcase_add_loop_test(tc, free_memory_is_not_single_ok, 0, 4);
	tcase_add_loop_test(tc, adjacent_pages_merge, 0, 4);
	tcase_add_loop_test(tc, invalid_requests, 0, 4);
	tcase_add_loop_test(tc, check_is_pure, 0, 4);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
