/*
 * test_process.c - processes, their address spaces and the CPUs that run
 * them (SPEC 1.5): default segments, populate, pids, mmap placement and
 * MAP_FIXED, munmap, brk, exit, context switches, and what a process's
 * page table holds (SPEC 1.4).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/arch.h"
#include "core/buddy.h"
#include "core/error.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/process.h"
#include "core/testing.h"
#include "core/translate.h"
#include "core/vmalloc.h"
#include "tests/core/testutil.h"

#define PAGE VM_PAGE_SIZE
#define KiB 1024ULL

/* Segment defaults of SPEC 1.5. */
#define TEXT_SIZE (64 * KiB)
#define DATA_SIZE (16 * KiB)
#define STACK_SIZE (128 * KiB)
/* Linux keeps x86_64 user mappings under the 47-bit window, la57 too. */
#define STACK_TOP_64 0x7ffffffff000ULL
/* mmap_min_addr (CONFIG_DEFAULT_MMAP_MIN_ADDR on x86). */
#define MMAP_MIN 0x10000ULL

static struct vm_machine *boot_full(const char *arch, uint64_t memory,
				    uint32_t cpus, uint64_t churn,
				    enum vm_vmsplit split)
{
	struct vm_config c;

	tu_config(&c, arch, memory);
	c.cpus = cpus;
	c.churn = churn;
	c.vmsplit = split;
	return tu_boot_config(&c);
}

static uint64_t stack_top(const struct vm_machine *m)
{
	return tu_arch_of(m)->is64 ? STACK_TOP_64
				   : vm_machine_layout(m)->task_size;
}

#define RW (VM_PROT_READ | VM_PROT_WRITE)
#define RO VM_PROT_READ
#define RX (VM_PROT_READ | VM_PROT_EXEC)

/* mmap that must succeed; returns the start of the new mapping. */
static uint64_t mmap_ok(struct vm_machine *m, uint32_t pid, uint64_t len,
			unsigned prot, bool has_addr, uint64_t addr,
			bool fixed, bool populate)
{
	struct vm_op op = tu_op_mmap(pid, len, prot, has_addr, addr, fixed,
				     populate);
	struct vm_op_result r = tu_apply_ok(m, &op, "mmap");

	ck_assert_uint_eq(r.u.mmap.end - r.u.mmap.start,
			  (len + PAGE - 1) & ~(PAGE - 1));
	ck_assert_uint_eq(r.u.mmap.prot, prot);
	return r.u.mmap.start;
}

static void munmap_ok(struct vm_machine *m, uint32_t pid, uint64_t addr,
		      uint64_t len)
{
	struct vm_op op = tu_op_munmap(pid, addr, len);

	tu_apply_ok(m, &op, "munmap");
}

static struct vm_process_info info(const struct vm_machine *m, uint32_t pid)
{
	struct vm_process_info pi;

	ck_assert_int_eq(vm_process_get(m, pid, &pi), 0);
	return pi;
}

/* Asserts that region i of pid is [start, end) with prot and kind. */
static void assert_region(const struct vm_machine *m, uint32_t pid,
			  uint32_t i, uint64_t start, uint64_t end,
			  unsigned prot, enum vm_vma_kind kind)
{
	struct vm_region_info r;
	char want[4], got[4];

	ck_assert_msg(vm_process_region(m, pid, i, &r) == 0,
		      "pid %u has no region %u", pid, i);
	ck_assert_msg(r.start == start && r.end == end && r.prot == prot &&
			      r.kind == kind,
		      "region %u: [%#llx, %#llx) %s %s, expected [%#llx, %#llx) "
		      "%s %s", i, (unsigned long long)r.start,
		      (unsigned long long)r.end, vm_prot_format(r.prot, got),
		      vm_vma_kind_name(r.kind), (unsigned long long)start,
		      (unsigned long long)end, vm_prot_format(prot, want),
		      vm_vma_kind_name(kind));
}

static uint32_t nregions(const struct vm_machine *m, uint32_t pid)
{
	return info(m, pid).nregions;
}

static struct vm_translation translate(const struct vm_machine *m,
				       uint32_t pid, uint64_t va,
				       enum vm_mode mode, enum vm_access acc)
{
	struct vm_translate_req q;
	struct vm_translation t;
	struct vm_error e = { 0 };
	int rc;

	memset(&q, 0, sizeof(q));
	q.va = va;
	q.has_pid = true;
	q.pid = pid;
	q.mode = mode;
	q.access = acc;
	rc = vm_translate(m, &q, &t, &e);
	ck_assert_msg(rc == 0, "translate %#llx: %s", (unsigned long long)va,
		      e.detail);
	return t;
}

static struct vm_translation uread(const struct vm_machine *m, uint32_t pid,
				   uint64_t va)
{
	return translate(m, pid, va, VM_MODE_USER, VM_ACCESS_READ);
}

/* The frame mapping a page, which must be mapped. */
static uint64_t frame_of(const struct vm_machine *m, uint32_t pid,
			 uint64_t va)
{
	struct vm_translation t = uread(m, pid, va);

	ck_assert_msg(t.ok, "%#llx is not mapped", (unsigned long long)va);
	return t.pa >> VM_PAGE_SHIFT;
}

static void assert_unmapped_maperr(const struct vm_machine *m, uint32_t pid,
				   uint64_t va)
{
	struct vm_translation t = uread(m, pid, va);

	ck_assert_msg(!t.ok && t.fault.kind == VM_FAULT_NOT_PRESENT &&
			      t.fault.outcome == VM_OUTCOME_SIGSEGV &&
			      t.fault.si_code == VM_SEGV_MAPERR,
		      "%#llx: ok %d kind %s outcome %s: expected an unmapped "
		      "address (SEGV_MAPERR)", (unsigned long long)va, t.ok,
		      vm_fault_kind_name(t.fault.kind),
		      vm_outcome_name(t.fault.outcome));
}

/* Frames owned by pid, of one owner kind, by scanning all of RAM. */
struct owned {
	uint32_t pid;
	int kind;          /* -1: user pages, tables and kernel stack */
	uint64_t n;
};

static int owned_cb(void *ctx, uint64_t s, uint64_t e,
		    const struct vm_owner *o)
{
	struct owned *w = ctx;
	bool kind_ok = w->kind >= 0 ? o->kind == w->kind
				    : (o->kind == VM_OWNER_USER ||
				       o->kind == VM_OWNER_PAGE_TABLE ||
				       o->kind == VM_OWNER_KERNEL_STACK);

	if (kind_ok && o->id == w->pid)
		w->n += e - s;
	return 0;
}

static uint64_t owned_by(const struct vm_machine *m, uint32_t pid, int kind)
{
	struct owned w = { pid, kind, 0 };

	vm_machine_frames(m, 0, vm_machine_layout(m)->max_pfn, owned_cb, &w);
	return w.n;
}

/* A process's page-table frames, as pfns. */
struct pfns {
	uint64_t v[64];
	unsigned n;
};

static int pfns_cb(void *ctx, uint64_t pfn)
{
	struct pfns *p = ctx;

	ck_assert_uint_lt(p->n, 64);
	p->v[p->n++] = pfn;
	return 0;
}

static struct pfns table_frames(const struct vm_machine *m, uint32_t pid)
{
	struct pfns p;

	p.n = 0;
	ck_assert_int_eq(vm_pagetable_frames(m, pid, pfns_cb, &p), 0);
	return p;
}

static bool has_pfn(const struct pfns *p, uint64_t pfn)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->v[i] == pfn)
			return true;
	return false;
}

/* ---- segments (SPEC 1.5) ---- */

START_TEST(default_segments)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint64_t t = tu_text_start(m), s = stack_top(m);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_process_info pi = info(m, pid);
	char buf[4];

	/* The stack ends at TASK_SIZE (0xc0000000), or 0x7ffffffff000. */
	if (tu_arch_of(m)->is64)
		ck_assert_uint_eq(s, 0x7ffffffff000ULL);
	else
		ck_assert_uint_eq(s, 0xc0000000ULL);
	ck_assert_uint_le(s, l->task_size);
	ck_assert_uint_eq(pi.nregions, 3);  /* no heap until brk grows */
	assert_region(m, pid, 0, t, t + TEXT_SIZE, RX, VM_VMA_TEXT);
	assert_region(m, pid, 1, t + TEXT_SIZE, t + TEXT_SIZE + DATA_SIZE, RW,
		      VM_VMA_DATA);
	assert_region(m, pid, 2, s - STACK_SIZE, s, RW, VM_VMA_STACK);
	ck_assert_uint_eq(pi.brk_start, t + TEXT_SIZE + DATA_SIZE);
	ck_assert_uint_eq(pi.brk, pi.brk_start);
	ck_assert_str_eq(vm_prot_format(RX, buf), "r-x");
	ck_assert_str_eq(vm_prot_format(RW, buf), "rw-");
	ck_assert_str_eq(pi.name, "proc");
	ck_assert_uint_eq(vm_machine_nprocesses(m), 1);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(segment_overrides)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint64_t t = tu_text_start(m), s = stack_top(m);
	struct vm_op op;
	struct vm_op_result r;
	struct vm_process_info pi;

	/* Sizes round up to pages; 0 omits a segment; a heap size makes the
	 * break start above brk_start. */
	op = tu_op_create("proc", 5000, 0, 3 * PAGE, 0, true);
	r = tu_apply_ok(m, &op, "create with overrides");
	pi = info(m, r.u.create.pid);
	ck_assert_uint_eq(pi.nregions, 2);
	assert_region(m, pi.pid, 0, t, t + 2 * PAGE, RX, VM_VMA_TEXT);
	assert_region(m, pi.pid, 1, t + 2 * PAGE, t + 5 * PAGE, RW,
		      VM_VMA_HEAP);
	ck_assert_uint_eq(pi.brk_start, t + 2 * PAGE);
	ck_assert_uint_eq(pi.brk, t + 5 * PAGE);
	ck_assert(uread(m, pi.pid, t + 4 * PAGE).ok);

	/* Only a stack, of 8 KiB. */
	op = tu_op_create("proc", 0, 0, 0, 8 * KiB, true);
	r = tu_apply_ok(m, &op, "create with a stack only");
	pi = info(m, r.u.create.pid);
	ck_assert_uint_eq(pi.nregions, 1);
	assert_region(m, pi.pid, 0, s - 8 * KiB, s, RW, VM_VMA_STACK);
	ck_assert_uint_eq(pi.brk_start, t);

	/* Nothing at all: a process with no user space. */
	op = tu_op_create("proc", 0, 0, 0, 0, true);
	r = tu_apply_ok(m, &op, "create with no segments");
	ck_assert_uint_eq(nregions(m, r.u.create.pid), 0);
	ck_assert_uint_eq(owned_by(m, r.u.create.pid, VM_OWNER_USER), 0);

	/* Larger than the user address space: refused. */
	op = tu_op_create("proc", VM_SEG_DEFAULT, VM_SEG_DEFAULT,
			  VM_SEG_DEFAULT,
			  vm_machine_layout(m)->task_size + PAGE, true);
	tu_expect_fail(m, &op, VM_ERANGE, "a stack larger than user space");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(populate_backs_segments)
{
	/* 2 GiB: on i386 user frames (GFP_HIGHUSER) come from highmem. */
	struct vm_machine *m = tu_boot(tu_arches[_i], 2 * VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t nx = a->nx ? VM_PTE_NX : 0;
	struct vm_process_info pi = info(m, pid);

	for (uint32_t i = 0; i < pi.nregions; i++) {
		struct vm_region_info r;
		bool text;
		/* _PAGE_TABLE-style user leaves: P|US|A, RW|D when writable,
		 * NX unless executable (where NX exists). */
		uint64_t want;

		ck_assert_int_eq(vm_process_region(m, pid, i, &r), 0);
		text = r.kind == VM_VMA_TEXT;
		want = text ? (VM_PTE_P | VM_PTE_US | VM_PTE_A)
			    : (VM_PTE_P | VM_PTE_RW | VM_PTE_US | VM_PTE_A |
			       VM_PTE_D | nx);
		for (uint64_t va = r.start; va < r.end; va += PAGE) {
			struct vm_translation t = uread(m, pid, va + 0x10);
			uint64_t leaf;
			struct vm_owner o;

			ck_assert_msg(t.ok, "%s page %#llx not populated",
				      vm_vma_kind_name(r.kind),
				      (unsigned long long)va);
			ck_assert_uint_eq(t.page_size, PAGE);
			ck_assert_uint_eq(t.pa & (PAGE - 1), 0x10);
			leaf = t.walk[t.nwalk - 1].entry;
			ck_assert_msg((leaf & (0xfffULL | VM_PTE_NX)) == want,
				      "%s PTE %#llx, expected flags %#llx",
				      vm_vma_kind_name(r.kind),
				      (unsigned long long)leaf,
				      (unsigned long long)want);
			/* The frame is a user page of this process at va. */
			o = vm_machine_owner(m, t.pa >> VM_PAGE_SHIFT);
			ck_assert_int_eq(o.kind, VM_OWNER_USER);
			ck_assert_uint_eq(o.id, pid);
			ck_assert_uint_eq(o.addr, va);
			ck_assert_uint_eq(o.mapcount, 1);
			/* GFP_HIGHUSER: highmem where there is some. */
			ck_assert_int_eq(vm_layout_zone_of(l, t.pa >> 12),
					 a->is64 ? VM_ZONE_DMA32
						 : VM_ZONE_HIGHMEM);
			/* Tables are GFP_KERNEL: lowmem (SPEC 1.4). */
			for (unsigned k = 0; k + 1 < t.nwalk; k++)
				ck_assert_uint_lt(t.walk[k].entry_pa,
						  l->lowmem_bytes);

			t = translate(m, pid, va, VM_MODE_USER,
				      VM_ACCESS_WRITE);
			if (text)
				ck_assert(!t.ok &&
					  t.fault.kind == VM_FAULT_PROTECTION &&
					  t.fault.si_code == VM_SEGV_ACCERR);
			else
				ck_assert(t.ok);
			t = translate(m, pid, va, VM_MODE_USER,
				      VM_ACCESS_EXEC);
			/* Without NX (i386), exec is checked as read. */
			if (text || !a->nx)
				ck_assert(t.ok);
			else
				ck_assert(!t.ok &&
					  t.fault.kind == VM_FAULT_PROTECTION &&
					  t.fault.si_code == VM_SEGV_ACCERR);
		}
	}
	ck_assert_uint_eq(owned_by(m, pid, VM_OWNER_USER),
			  (TEXT_SIZE + DATA_SIZE + STACK_SIZE) / PAGE);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(populate_false_leaves_demand_paging)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint64_t before = vm_machine_frames_in_use(m);
	uint32_t pid = tu_create(m, "proc", false);
	struct vm_process_info pi = info(m, pid);
	const struct vm_arch *a = tu_arch_of(m);

	ck_assert_uint_eq(pi.nregions, 3);
	for (uint32_t i = 0; i < pi.nregions; i++) {
		struct vm_region_info r;

		ck_assert_int_eq(vm_process_region(m, pid, i, &r), 0);
		for (uint64_t va = r.start; va < r.end; va += PAGE) {
			struct vm_translation t = uread(m, pid, va);

			ck_assert(!t.ok);
			ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
			ck_assert_int_eq(t.fault.outcome,
					 VM_OUTCOME_DEMAND_PAGING);
			ck_assert_int_eq(t.fault.si_code, VM_SI_NONE);
			t = translate(m, pid, va, VM_MODE_USER,
				      VM_ACCESS_WRITE);
			if (r.kind == VM_VMA_TEXT)
				ck_assert(t.fault.outcome == VM_OUTCOME_SIGSEGV &&
					  t.fault.si_code == VM_SEGV_ACCERR);
			else
				ck_assert_int_eq(t.fault.outcome,
						 VM_OUTCOME_DEMAND_PAGING);
		}
	}
	ck_assert_uint_eq(owned_by(m, pid, VM_OWNER_USER), 0);
	/* Only the top-level table (PAE: and its user PMDs) and the kernel
	 * stack were allocated: 4 vmalloc'd pages, or an order-1 block. */
	{
		uint64_t tables = 1 + (a->id == VM_ARCH_I386_PAE ? 3 : 0);
		uint64_t kstack = a->is64 ? 4 : 2;
		uint64_t used = vm_machine_frames_in_use(m) - before;

		ck_assert_uint_eq(owned_by(m, pid, VM_OWNER_PAGE_TABLE), tables);
		ck_assert_uint_eq(owned_by(m, pid, VM_OWNER_KERNEL_STACK),
				  kstack);
		/* x86_64: the first vmalloc may add kernel tables too. */
		ck_assert_uint_ge(used, tables + kstack);
		ck_assert_uint_le(used, tables + kstack +
						(a->is64 ? a->levels - 2u : 0));
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(pids_never_reused)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t a = tu_create(m, "proc", false);
	uint32_t b = tu_create(m, "proc", false), c, last;

	ck_assert_uint_eq(a, 1);
	ck_assert_uint_eq(b, 2);
	tu_exit(m, b);
	c = tu_create(m, "proc", false);
	ck_assert_uint_eq(c, 3);
	tu_exit(m, c);
	tu_exit(m, a);
	ck_assert_uint_eq(vm_machine_nprocesses(m), 0);
	last = c;
	for (unsigned i = 0; i < 8 * tu_scale(); i++) {
		uint32_t p = tu_create(m, "proc", false);

		ck_assert_uint_eq(p, last + 1);
		if (i % 2)
			tu_exit(m, p);
		last = p;
	}
	/* The listing is in pid order. */
	for (uint32_t i = 1; i < vm_process_count(m); i++)
		ck_assert_uint_lt(vm_process_pid_at(m, i - 1),
				  vm_process_pid_at(m, i));
	{
		struct vm_op op = tu_op_exit(b);

		tu_expect_fail(m, &op, VM_ENOENT, "exit of an exited pid");
		op = tu_op_exit(0);
		tu_expect_fail(m, &op, VM_ENOENT, "exit of the idle task");
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- mmap ---- */

static const struct {
	const char *arch;
	enum vm_vmsplit split;
	uint64_t mmap_base;  /* stack top - 128 MiB (SPEC 1.5) */
} bases[] = {
	{ "i386", VM_VMSPLIT_3G_1G, 0xb8000000ULL },
	{ "i386", VM_VMSPLIT_2G_2G, 0x78000000ULL },
	{ "i386", VM_VMSPLIT_1G_3G, 0x38000000ULL },
	{ "i386-pae", VM_VMSPLIT_3G_1G, 0xb8000000ULL },
	{ "i386-pae", VM_VMSPLIT_2G_2G, 0x78000000ULL },
	{ "i386-pae", VM_VMSPLIT_1G_3G, 0x38000000ULL },
	{ "x86_64", VM_VMSPLIT_3G_1G, 0x7ffff7fff000ULL },
	{ "x86_64-la57", VM_VMSPLIT_3G_1G, 0x7ffff7fff000ULL },
};

#define NBASES (sizeof(bases) / sizeof(bases[0]))

START_TEST(mmap_top_down_from_mmap_base)
{
	struct vm_machine *m = boot_full(bases[_i].arch, 512 * VM_MiB, 1,
					 VM_DEFAULT_CHURN, bases[_i].split);
	uint64_t base = bases[_i].mmap_base, a, b, c, d;
	uint32_t pid = tu_create(m, "proc", true);

	ck_assert_uint_eq(vm_machine_layout(m)->mmap_base, base);
	/* Length L, not page aligned: the mapping is L rounded up. */
	a = mmap_ok(m, pid, 3 * PAGE + 100, RW, false, 0, false, true);
	ck_assert_uint_eq(a, base - 4 * PAGE);
	/* The next one goes right below it, and merges (same prot). */
	b = mmap_ok(m, pid, 2 * PAGE, RW, false, 0, false, true);
	ck_assert_uint_eq(b, base - 6 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), 4);
	assert_region(m, pid, 2, base - 6 * PAGE, base, RW, VM_VMA_MMAP);
	/* Another protection: a region of its own. */
	c = mmap_ok(m, pid, PAGE, RO, false, 0, false, true);
	ck_assert_uint_eq(c, base - 7 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), 5);
	assert_region(m, pid, 2, c, c + PAGE, RO, VM_VMA_MMAP);
	assert_region(m, pid, 3, base - 6 * PAGE, base, RW, VM_VMA_MMAP);
	/* Unpopulated: left to demand paging. */
	d = mmap_ok(m, pid, 2 * PAGE, RX, false, 0, false, false);
	ck_assert_uint_eq(d, c - 2 * PAGE);
	{
		struct vm_translation t = uread(m, pid, d);

		ck_assert(!t.ok);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
		t = uread(m, pid, a);
		ck_assert(t.ok);
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(mmap_merges_neighbours)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t x = 0x10000000ULL;
	uint32_t n0 = nregions(m, pid);

	ck_assert_uint_eq(mmap_ok(m, pid, 4 * PAGE, RW, true, x, false, true),
			  x);
	ck_assert_uint_eq(mmap_ok(m, pid, 4 * PAGE, RW, true, x + 8 * PAGE,
				  false, true), x + 8 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), n0 + 2);
	/* Filling the gap joins all three. */
	ck_assert_uint_eq(mmap_ok(m, pid, 4 * PAGE, RW, true, x + 4 * PAGE,
				  false, true), x + 4 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), n0 + 1);
	assert_region(m, pid, 2, x, x + 12 * PAGE, RW, VM_VMA_MMAP);
	/* A neighbour of another protection stays apart. */
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RO, true, x + 12 * PAGE, false,
				  true), x + 12 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), n0 + 2);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(mmap_hint)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t x = 0x10000000ULL, y = 0x20000000ULL;

	/* A free hint is used as is. */
	ck_assert_uint_eq(mmap_ok(m, pid, 2 * PAGE, RW, true, x, false, true),
			  x);
	/*
	 * A hint inside a page is rounded down to its page (addr &=
	 * PAGE_MASK in x86's arch_get_unmapped_area_topdown).
	 */
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RW, true, y + 0x123, false,
				  true), y);
	/* A hint that overlaps a mapping falls back to top-down. */
	ck_assert_uint_eq(mmap_ok(m, pid, 2 * PAGE, RW, true, tu_text_start(m),
				  false, true), l->mmap_base - 2 * PAGE);
	ck_assert_uint_eq(mmap_ok(m, pid, 4 * PAGE, RO, true, x + PAGE, false,
				  true), l->mmap_base - 6 * PAGE);
	/* So does one below mmap_min_addr or past TASK_SIZE. */
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RX, true, 0x1000, false, true),
			  l->mmap_base - 7 * PAGE);
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RO, true, l->task_size, false,
				  true), l->mmap_base - 8 * PAGE);
	/* The text is untouched. */
	assert_region(m, pid, 0, tu_text_start(m), tu_text_start(m) + TEXT_SIZE,
		      RX, VM_VMA_TEXT);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(mmap_fixed_replaces)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t x = 0x10000000ULL, t = tu_text_start(m), used;
	uint64_t f[4], tf;

	mmap_ok(m, pid, 4 * PAGE, RW, true, x, false, true);
	for (int i = 0; i < 4; i++)
		f[i] = frame_of(m, pid, x + (uint64_t)i * PAGE);
	used = vm_machine_frames_in_use(m);
	/* MAP_FIXED over the middle two pages, unpopulated. */
	ck_assert_uint_eq(mmap_ok(m, pid, 2 * PAGE, RO, true, x + PAGE, true,
				  false), x + PAGE);
	assert_region(m, pid, 2, x, x + PAGE, RW, VM_VMA_MMAP);
	assert_region(m, pid, 3, x + PAGE, x + 3 * PAGE, RO, VM_VMA_MMAP);
	assert_region(m, pid, 4, x + 3 * PAGE, x + 4 * PAGE, RW, VM_VMA_MMAP);
	/* The replaced pages' frames went back; the others stay. */
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used - 2);
	ck_assert_int_eq(vm_machine_owner(m, f[1]).kind, VM_OWNER_FREE);
	ck_assert_int_eq(vm_machine_owner(m, f[2]).kind, VM_OWNER_FREE);
	ck_assert_uint_eq(frame_of(m, pid, x), f[0]);
	ck_assert_uint_eq(frame_of(m, pid, x + 3 * PAGE), f[3]);
	{
		struct vm_translation tr = uread(m, pid, x + PAGE);

		ck_assert(!tr.ok);
		ck_assert_int_eq(tr.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
		tr = translate(m, pid, x + PAGE, VM_MODE_USER, VM_ACCESS_WRITE);
		ck_assert_int_eq(tr.fault.si_code, VM_SEGV_ACCERR);
	}
	/* MAP_FIXED with the neighbours' protection: one region again, as
	 * mmap_region's vma_merge leaves it. */
	ck_assert_uint_eq(mmap_ok(m, pid, 2 * PAGE, RW, true, x + PAGE, true,
				  true), x + PAGE);
	assert_region(m, pid, 2, x, x + 4 * PAGE, RW, VM_VMA_MMAP);
	ck_assert_uint_eq(nregions(m, pid), 4);
	/* MAP_FIXED over the first text page, populated. */
	tf = frame_of(m, pid, t);
	used = vm_machine_frames_in_use(m);
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RW, true, t, true, true), t);
	assert_region(m, pid, 0, t, t + PAGE, RW, VM_VMA_MMAP);
	assert_region(m, pid, 1, t + PAGE, t + TEXT_SIZE, RX, VM_VMA_TEXT);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	ck_assert(translate(m, pid, t, VM_MODE_USER, VM_ACCESS_WRITE).ok);
	{
		struct vm_owner o = vm_machine_owner(m, tf);

		/* The old text frame is free, or reused for the new page. */
		ck_assert(o.kind == VM_OWNER_FREE ||
			  (o.kind == VM_OWNER_USER && frame_of(m, pid, t) == tf));
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(mmap_refusals)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t x = 0x10000000ULL;
	struct vm_op op;

	op = tu_op_mmap(pid, PAGE, RW, true, x + 1, true, true);
	tu_expect_fail(m, &op, VM_EINVAL, "fixed mmap at an unaligned address");
	op = tu_op_mmap(pid, PAGE, RW, true, 0x1000, true, true);
	tu_expect_fail(m, &op, VM_ERANGE, "fixed mmap below mmap_min_addr");
	op = tu_op_mmap(pid, PAGE, RW, true, 0, true, true);
	tu_expect_fail(m, &op, VM_ERANGE, "fixed mmap at 0");
	op = tu_op_mmap(pid, PAGE, RW, true, MMAP_MIN - PAGE, true, true);
	tu_expect_fail(m, &op, VM_ERANGE, "fixed mmap just below 0x10000");
	op = tu_op_mmap(pid, PAGE, RW, true, l->task_size, true, true);
	tu_expect_fail(m, &op, VM_ERANGE, "fixed mmap at TASK_SIZE");
	op = tu_op_mmap(pid, 2 * PAGE, RW, true, l->task_size - PAGE, true,
			true);
	tu_expect_fail(m, &op, VM_ERANGE, "fixed mmap across TASK_SIZE");
	op = tu_op_mmap(pid, 0, RW, false, 0, false, true);
	tu_expect_fail(m, &op, VM_EINVAL, "mmap of length 0");
	op = tu_op_mmap(pid, 0, RW, true, x, true, true);
	tu_expect_fail(m, &op, VM_EINVAL, "fixed mmap of length 0");
	op = tu_op_mmap(pid, PAGE, 8, false, 0, false, true);
	tu_expect_fail(m, &op, VM_EINVAL, "mmap with unknown prot bits");
	op = tu_op_mmap(pid + 1, PAGE, RW, false, 0, false, true);
	tu_expect_fail(m, &op, VM_ENOENT, "mmap in a missing process");
	op = tu_op_mmap(0, PAGE, RW, false, 0, false, true);
	tu_expect_fail(m, &op, VM_ENOENT, "mmap in the idle task");
	op = tu_op_mmap(pid, l->task_size + PAGE, RW, false, 0, false, false);
	tu_expect_fail(m, &op, VM_ERANGE, "mmap longer than user space");
	/* Valid, but no gap below mmap_base is that long. */
	op = tu_op_mmap(pid, l->task_size - PAGE, RW, false, 0, false, false);
	tu_expect_fail(m, &op, VM_ENOSPACE, "mmap with no room left");
	/* The lowest allowed fixed address works. */
	ck_assert_uint_eq(mmap_ok(m, pid, PAGE, RW, true, MMAP_MIN, true, true),
			  MMAP_MIN);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- munmap ---- */

START_TEST(munmap_splits_and_trims)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t x = 0x10000000ULL, y = 0x11000000ULL, used, mid;
	uint32_t n0 = nregions(m, pid);

	mmap_ok(m, pid, 3 * PAGE, RW, true, x, false, true);
	mid = frame_of(m, pid, x + PAGE);
	used = vm_machine_frames_in_use(m);
	/* The middle page: one region becomes two. */
	munmap_ok(m, pid, x + PAGE, PAGE);
	ck_assert_uint_eq(nregions(m, pid), n0 + 2);
	assert_region(m, pid, 2, x, x + PAGE, RW, VM_VMA_MMAP);
	assert_region(m, pid, 3, x + 2 * PAGE, x + 3 * PAGE, RW, VM_VMA_MMAP);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used - 1);
	ck_assert_int_eq(vm_machine_owner(m, mid).kind, VM_OWNER_FREE);
	assert_unmapped_maperr(m, pid, x + PAGE);
	ck_assert(uread(m, pid, x).ok && uread(m, pid, x + 2 * PAGE).ok);

	/* The edges of a region: it shrinks. A length rounds up to pages. */
	mmap_ok(m, pid, 4 * PAGE, RW, true, y, false, true);
	munmap_ok(m, pid, y, PAGE);
	assert_region(m, pid, 4, y + PAGE, y + 4 * PAGE, RW, VM_VMA_MMAP);
	munmap_ok(m, pid, y + 3 * PAGE, 1);
	assert_region(m, pid, 4, y + PAGE, y + 3 * PAGE, RW, VM_VMA_MMAP);
	assert_unmapped_maperr(m, pid, y);
	assert_unmapped_maperr(m, pid, y + 3 * PAGE);

	/* One range over two regions and the hole between them. */
	munmap_ok(m, pid, x, 3 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), n0 + 1);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(munmap_text_and_stack)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t t = tu_text_start(m), s = stack_top(m), used;

	used = vm_machine_frames_in_use(m);
	munmap_ok(m, pid, t, TEXT_SIZE);
	ck_assert_uint_eq(nregions(m, pid), 2);
	assert_region(m, pid, 0, t + TEXT_SIZE, t + TEXT_SIZE + DATA_SIZE, RW,
		      VM_VMA_DATA);
	ck_assert_uint_eq(used - vm_machine_frames_in_use(m), TEXT_SIZE / PAGE);
	assert_unmapped_maperr(m, pid, t);

	used = vm_machine_frames_in_use(m);
	munmap_ok(m, pid, s - STACK_SIZE, STACK_SIZE);
	ck_assert_uint_eq(nregions(m, pid), 1);
	/* The stack's pages, and the tables that only it used. */
	ck_assert_uint_ge(used - vm_machine_frames_in_use(m),
			  STACK_SIZE / PAGE);
	assert_unmapped_maperr(m, pid, s - PAGE);
	ck_assert_uint_eq(owned_by(m, pid, VM_OWNER_USER), DATA_SIZE / PAGE);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(munmap_refusals_and_empty_ranges)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_op op;
	uint64_t d, v;

	op = tu_op_munmap(pid, tu_text_start(m) + 1, PAGE);
	tu_expect_fail(m, &op, VM_EINVAL, "munmap at an unaligned address");
	op = tu_op_munmap(pid, tu_text_start(m), 0);
	tu_expect_fail(m, &op, VM_EINVAL, "munmap of length 0");
	op = tu_op_munmap(pid, l->task_size, PAGE);
	tu_expect_fail(m, &op, VM_ERANGE, "munmap at TASK_SIZE");
	op = tu_op_munmap(pid, l->task_size - PAGE, 2 * PAGE);
	tu_expect_fail(m, &op, VM_ERANGE, "munmap across TASK_SIZE");
	op = tu_op_munmap(pid + 7, tu_text_start(m), PAGE);
	tu_expect_fail(m, &op, VM_ENOENT, "munmap in a missing process");
	/* A range with nothing mapped: success, and nothing changes. */
	d = vm_machine_digest(m);
	v = vm_machine_version(m);
	munmap_ok(m, pid, 0x30000000ULL, 16 * PAGE);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_version(m), v + 1);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* free_pgtables: tables left empty by munmap go back to the allocator. */
START_TEST(munmap_frees_empty_tables)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", true);
	/* 4 MiB aligned: an area with a PTE table of its own everywhere
	 * (one PTE table spans 2 MiB, or 4 MiB on i386). */
	uint64_t x = 0x20000000ULL;
	struct pfns before = table_frames(m, pid), with, after;
	uint64_t used = vm_machine_frames_in_use(m);

	mmap_ok(m, pid, 2 * PAGE, RW, true, x, true, true);
	with = table_frames(m, pid);
	ck_assert_uint_eq(with.n, before.n + 1);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 3);
	munmap_ok(m, pid, x, 2 * PAGE);
	after = table_frames(m, pid);
	ck_assert_uint_eq(after.n, before.n);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	for (unsigned i = 0; i < with.n; i++)
		if (!has_pfn(&before, with.v[i]))
			ck_assert_int_eq(vm_machine_owner(m, with.v[i]).kind,
					 VM_OWNER_FREE);

	/* Part of a table: it stays while a page in it is mapped. */
	mmap_ok(m, pid, 2 * PAGE, RW, true, x, true, true);
	munmap_ok(m, pid, x, PAGE);
	ck_assert_uint_eq(table_frames(m, pid).n, before.n + 1);
	munmap_ok(m, pid, x + PAGE, PAGE);
	ck_assert_uint_eq(table_frames(m, pid).n, before.n);

	/* 64-bit: a mapping under a fresh top-level entry needs a table at
	 * each level below it, and all of them go. */
	if (a->is64) {
		uint64_t far = 0x100000000000ULL;

		mmap_ok(m, pid, PAGE, RW, true, far, true, true);
		ck_assert_uint_eq(table_frames(m, pid).n, before.n + 3);
		munmap_ok(m, pid, far, PAGE);
		ck_assert_uint_eq(table_frames(m, pid).n, before.n);
	}
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- brk ---- */

START_TEST(brk_grows_and_shrinks)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t start = info(m, pid).brk_start, used, f0, f1;
	struct vm_op op;

	used = vm_machine_frames_in_use(m);
	op = tu_op_brk(pid, false, 2 * (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk +2 pages");
	ck_assert_uint_eq(info(m, pid).brk, start + 2 * PAGE);
	ck_assert_uint_eq(nregions(m, pid), 4);
	assert_region(m, pid, 2, start, start + 2 * PAGE, RW, VM_VMA_HEAP);
	/* Populated like the process: the same PTE table as data. */
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 2);
	ck_assert(translate(m, pid, start, VM_MODE_USER, VM_ACCESS_WRITE).ok);
	f0 = frame_of(m, pid, start);
	f1 = frame_of(m, pid, start + PAGE);
	ck_assert_int_eq(vm_machine_owner(m, f0).kind, VM_OWNER_USER);

	/* A break inside a page maps that whole page. */
	op = tu_op_brk(pid, false, 100, 0);
	tu_apply_ok(m, &op, "brk +100");
	ck_assert_uint_eq(info(m, pid).brk, start + 2 * PAGE + 100);
	assert_region(m, pid, 2, start, start + 3 * PAGE, RW, VM_VMA_HEAP);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 3);

	/* The addr form. */
	op = tu_op_brk(pid, true, 0, start + 5 * PAGE);
	tu_apply_ok(m, &op, "brk to an address");
	ck_assert_uint_eq(info(m, pid).brk, start + 5 * PAGE);
	assert_region(m, pid, 2, start, start + 5 * PAGE, RW, VM_VMA_HEAP);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 5);
	ck_assert_uint_eq(nregions(m, pid), 4);

	/* Shrinking frees the frames past the new end. */
	op = tu_op_brk(pid, false, -3 * (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk -3 pages");
	assert_region(m, pid, 2, start, start + 2 * PAGE, RW, VM_VMA_HEAP);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used + 2);
	assert_unmapped_maperr(m, pid, start + 2 * PAGE);
	op = tu_op_brk(pid, false, -2 * (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk back to its start");
	ck_assert_uint_eq(info(m, pid).brk, start);
	ck_assert_uint_eq(nregions(m, pid), 3);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	ck_assert_int_eq(vm_machine_owner(m, f0).kind, VM_OWNER_FREE);
	ck_assert_int_eq(vm_machine_owner(m, f1).kind, VM_OWNER_FREE);
	assert_unmapped_maperr(m, pid, start);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(brk_refusals)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t start = info(m, pid).brk_start;
	struct vm_op op;

	op = tu_op_brk(pid, true, 0, start - 1);
	tu_expect_fail(m, &op, VM_EINVAL, "brk below brk_start");
	op = tu_op_brk(pid, true, 0, 0);
	tu_expect_fail(m, &op, VM_EINVAL, "brk to 0");
	op = tu_op_brk(pid, false, -1, 0);
	tu_expect_fail(m, &op, VM_EINVAL, "brk -1 at brk_start");
	op = tu_op_brk(pid, false, INT64_MIN, 0);
	tu_expect_fail(m, &op, VM_EINVAL, "brk by INT64_MIN");
	op = tu_op_brk(pid + 1, false, PAGE, 0);
	tu_expect_fail(m, &op, VM_ENOENT, "brk of a missing process");
	op = tu_op_brk(pid, false, INT64_MAX, 0);
	tu_expect_fail(m, &op, VM_ERANGE, "brk by INT64_MAX");
	op = tu_op_brk(pid, true, 0, vm_machine_layout(m)->task_size + PAGE);
	tu_expect_fail(m, &op, VM_ERANGE, "brk past TASK_SIZE");
	/* Growing into the stack is growing into a mapping. */
	op = tu_op_brk(pid, true, 0, stack_top(m) - PAGE);
	tu_expect_fail(m, &op, VM_ENOSPACE, "brk into the stack");

	/* A mapping three pages above the break: the heap may not cross
	 * into it. */
	mmap_ok(m, pid, PAGE, RW, true, start + 3 * PAGE, true, true);
	op = tu_op_brk(pid, false, 4 * (int64_t)PAGE, 0);
	tu_expect_fail(m, &op, VM_ENOSPACE, "brk into an mmap");
	op = tu_op_brk(pid, true, 0, start + 3 * PAGE + 1);
	tu_expect_fail(m, &op, VM_ENOSPACE, "brk one byte into an mmap");
	op = tu_op_brk(pid, true, 0, start + 8 * PAGE);
	tu_expect_fail(m, &op, VM_ENOSPACE, "brk over an mmap");
	op = tu_op_brk(pid, false, 2 * (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk below the mmap");
	assert_region(m, pid, 2, start, start + 2 * PAGE, RW, VM_VMA_HEAP);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/*
 * Linux's brk (mm/mmap.c) grows only while one unmapped page stays below
 * the next mapping: `if (next && newbrk + PAGE_SIZE > vm_start_gap(next))
 * goto out;`. A heap that would end right at a mapping is refused.
 */
START_TEST(brk_keeps_a_page_below_the_next_mapping)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t start = info(m, pid).brk_start;
	struct vm_op op;

	mmap_ok(m, pid, PAGE, RW, true, start + 2 * PAGE, true, true);
	op = tu_op_brk(pid, false, 2 * (int64_t)PAGE, 0);
	tu_expect_fail(m, &op, VM_ENOSPACE,
		       "brk up to an mmap, no page between");
	op = tu_op_brk(pid, false, (int64_t)PAGE + 1, 0);
	tu_expect_fail(m, &op, VM_ENOSPACE,
		       "brk to within the last page below");
	op = tu_op_brk(pid, false, (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk leaving one page below the mmap");
	assert_region(m, pid, 2, start, start + PAGE, RW, VM_VMA_HEAP);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(brk_follows_populate)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", false);
	uint64_t start = info(m, pid).brk_start;
	uint64_t used = vm_machine_frames_in_use(m);
	struct vm_op op = tu_op_brk(pid, false, 4 * (int64_t)PAGE, 0);
	struct vm_translation t;

	tu_apply_ok(m, &op, "brk +4 pages");
	assert_region(m, pid, 2, start, start + 4 * PAGE, RW, VM_VMA_HEAP);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	t = translate(m, pid, start + PAGE, VM_MODE_USER, VM_ACCESS_WRITE);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/*
 * The smallest machine (32 MiB) runs out half way through an operation
 * that allocates many frames: the operation is refused whole, pids
 * included (SPEC 1.9: a refused request changes nothing).
 */
START_TEST(out_of_memory_changes_nothing)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 32 * VM_MiB);
	uint32_t pid = tu_create(m, "proc", true), next;
	struct vm_op op;

	op = tu_op_create("proc", VM_SEG_DEFAULT, VM_SEG_DEFAULT,
			  VM_SEG_DEFAULT, 48 * VM_MiB, true);
	tu_expect_fail(m, &op, VM_ENOMEM, "create with a 48 MiB stack");
	op = tu_op_mmap(pid, 40 * VM_MiB, RW, false, 0, false, true);
	tu_expect_fail(m, &op, VM_ENOMEM, "mmap of 40 MiB, populated");
	op = tu_op_brk(pid, false, 40 * (int64_t)VM_MiB, 0);
	tu_expect_fail(m, &op, VM_ENOMEM, "brk by 40 MiB, populated");
	/* Unpopulated, the same sizes need no frames. */
	mmap_ok(m, pid, 40 * VM_MiB, RW, false, 0, false, false);
	next = tu_create(m, "proc", false);
	ck_assert_uint_eq(next, pid + 1);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- exit ---- */

static void zones_snapshot(const struct vm_machine *m,
			   struct vm_zone_info z[VM_ZONE_COUNT])
{
	memset(z, 0, sizeof(struct vm_zone_info) * VM_ZONE_COUNT);
	for (int i = 0; i < VM_ZONE_COUNT; i++)
		if (vm_machine_zone_populated(m, (enum vm_zone_id)i))
			vm_machine_zone_info(m, (enum vm_zone_id)i, &z[i]);
}

/*
 * Unmapping a huge region that was never populated walks its tables, not
 * its pages: 64 TiB with three pages populated far apart unmaps, and its
 * process exits, in well under a second (one page at a time it took
 * minutes, holding the machine), and gives back every frame.
 */
static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

START_TEST(huge_sparse_regions_unmap_fast)
{
	static const char *const arches[] = { "x86_64", "x86_64-la57" };
	struct vm_machine *m = tu_boot(arches[_i], 64 * VM_MiB);
	const uint64_t huge = 64ULL << 40;
	uint64_t before, with_proc, base;
	uint32_t pid;
	double t0;

	/* After one process has come and gone, an exit leaves nothing. */
	tu_exit(m, tu_create(m, "first", false));
	before = vm_machine_frames_in_use(m);
	pid = tu_create(m, "big", false);
	with_proc = vm_machine_frames_in_use(m);

	for (int round = 0; round < 2; round++) {
		base = mmap_ok(m, pid, huge, RW, false, 0, false, false);
		mmap_ok(m, pid, PAGE, RW, true, base, true, true);
		mmap_ok(m, pid, PAGE, RW, true, base + huge / 2, true, true);
		mmap_ok(m, pid, PAGE, RW, true, base + huge - PAGE, true, true);
		ck_assert_uint_gt(vm_machine_frames_in_use(m), with_proc + 3);
		t0 = seconds_now();
		if (round == 0) {
			munmap_ok(m, pid, base, huge);
			ck_assert_uint_eq(vm_machine_frames_in_use(m),
					  with_proc);
		} else {
			tu_exit(m, pid);
			ck_assert_uint_eq(vm_machine_frames_in_use(m), before);
		}
		ck_assert_msg(seconds_now() - t0 < 5.0, "%s: %s took %.1f s",
			      arches[_i], round ? "exit" : "munmap",
			      seconds_now() - t0);
		tu_assert_checks(m);
	}
	vm_machine_free(m);
}
END_TEST

START_TEST(exit_frees_every_frame)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_zone_info z0[VM_ZONE_COUNT], z1[VM_ZONE_COUNT];
	uint64_t used;
	uint32_t pid;
	struct vm_op op;

	/* The first kernel stack may add kernel tables that stay (SPEC
	 * 1.5); after one process has come and gone, nothing stays. */
	tu_exit(m, tu_create(m, "proc", true));
	zones_snapshot(m, z0);
	used = vm_machine_frames_in_use(m);

	pid = tu_create(m, "proc", true);
	mmap_ok(m, pid, 8 * PAGE, RW, false, 0, false, true);
	mmap_ok(m, pid, PAGE, RW, true, 0x40000000ULL, true, true);
	op = tu_op_brk(pid, false, 3 * (int64_t)PAGE, 0);
	tu_apply_ok(m, &op, "brk");
	ck_assert_uint_gt(owned_by(m, pid, VM_OWNER_USER), 0);
	ck_assert_uint_gt(owned_by(m, pid, VM_OWNER_PAGE_TABLE), 0);
	ck_assert_uint_gt(owned_by(m, pid, VM_OWNER_KERNEL_STACK), 0);

	tu_exit(m, pid);
	ck_assert_uint_eq(owned_by(m, pid, -1), 0);
	ck_assert_uint_eq(vm_machine_frames_in_use(m), used);
	zones_snapshot(m, z1);
	ck_assert_msg(memcmp(z0, z1, sizeof(z0)) == 0,
		      "free blocks differ from before the process");
	for (uint32_t i = 0; i < vm_vmalloc_count(m); i++) {
		struct vm_vmalloc_info vi;

		vm_vmalloc_get(m, i, &vi);
		ck_assert(!(vi.kernel_stack && vi.pid == pid));
	}
	{
		struct vm_process_info pi;

		ck_assert_int_eq(vm_process_get(m, pid, &pi), VM_ENOENT);
	}
	ck_assert_int_eq(vm_pagetable_frames(m, pid, pfns_cb, NULL),
			 VM_ENOENT);
	ck_assert_uint_eq(vm_machine_nprocesses(m), 0);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

START_TEST(exit_while_current)
{
	struct vm_machine *m = boot_full(tu_arches[_i], VM_GiB, 2,
					 VM_DEFAULT_CHURN, VM_VMSPLIT_3G_1G);
	uint32_t pid = tu_create(m, "proc", true), cpid;
	uint64_t ref, cr3;
	struct vm_op op = tu_op_switch(1, pid);

	ck_assert_int_eq(vm_cpu_get(m, 0, &cpid, &ref), 0);
	ck_assert_uint_eq(cpid, 0);
	tu_apply_ok(m, &op, "switch");
	ck_assert_int_eq(vm_cpu_get(m, 1, &cpid, &cr3), 0);
	ck_assert_uint_eq(cpid, pid);
	ck_assert_uint_eq(cr3, info(m, pid).pgd_pa);
	tu_exit(m, pid);
	ck_assert_int_eq(vm_cpu_get(m, 1, &cpid, &cr3), 0);
	ck_assert_uint_eq(cpid, 0);
	ck_assert_uint_eq(cr3, ref);
	ck_assert_int_eq(vm_cpu_get(m, 0, &cpid, &cr3), 0);
	ck_assert_uint_eq(cpid, 0);
	ck_assert_uint_eq(cr3, ref);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- context switches ---- */

START_TEST(switch_rules)
{
	struct vm_machine *m = boot_full(tu_arches[_i], VM_GiB, 3,
					 VM_DEFAULT_CHURN, VM_VMSPLIT_3G_1G);
	uint32_t p1 = tu_create(m, "proc", true);
	uint32_t p2 = tu_create(m, "proc", true), cpid;
	uint64_t ref, cr3, d, v;
	struct vm_op_result r;
	struct vm_op op;

	ck_assert_int_eq(vm_cpu_get(m, 0, &cpid, &ref), 0);
	/* Every CPU starts on the idle task with the reference table. */
	for (uint32_t c = 0; c < 3; c++) {
		ck_assert_int_eq(vm_cpu_get(m, c, &cpid, &cr3), 0);
		ck_assert_uint_eq(cpid, 0);
		ck_assert_uint_eq(cr3, ref);
	}
	ck_assert_int_eq(vm_cpu_get(m, 3, &cpid, &cr3), VM_ENOENT);

	op = tu_op_switch(0, p1);
	r = tu_apply_ok(m, &op, "switch CPU 0 to p1");
	ck_assert_uint_eq(r.u.sw.cpu, 0);
	ck_assert_uint_eq(r.u.sw.prev_pid, 0);
	ck_assert_uint_eq(r.u.sw.next_pid, p1);
	ck_assert_uint_eq(r.u.sw.cr3_before, ref);
	ck_assert_uint_eq(r.u.sw.cr3_after, info(m, p1).pgd_pa);
	ck_assert_int_eq(vm_cpu_get(m, 0, &cpid, &cr3), 0);
	ck_assert_uint_eq(cpid, p1);
	ck_assert_uint_eq(cr3, info(m, p1).pgd_pa);
	/* CPU 0 now walks p1's tables. */
	{
		struct vm_translate_req q = { .va = tu_text_start(m),
					      .has_cpu = true, .cpu = 0 };
		struct vm_translation t;

		ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
		ck_assert(t.ok && t.pid == p1);
		q.cpu = 1;
		ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
		ck_assert(!t.ok && t.pid == 0);
	}

	/* p1 runs on CPU 0: CPU 1 may not take it (409). */
	op = tu_op_switch(1, p1);
	tu_expect_fail(m, &op, VM_EBUSY, "switch to a task on another CPU");

	/* To the current task: no CR3 write, no change but the version. */
	d = vm_machine_digest(m);
	v = vm_machine_version(m);
	op = tu_op_switch(0, p1);
	r = tu_apply_ok(m, &op, "switch to the current task");
	ck_assert_uint_eq(r.u.sw.prev_pid, p1);
	ck_assert_uint_eq(r.u.sw.next_pid, p1);
	ck_assert_uint_eq(r.u.sw.cr3_before, r.u.sw.cr3_after);
	ck_assert_uint_eq(r.u.sw.cr3_after, info(m, p1).pgd_pa);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_uint_eq(vm_machine_version(m), v + 1);

	/* Once p1 leaves CPU 0, CPU 1 may run it. */
	op = tu_op_switch(0, p2);
	r = tu_apply_ok(m, &op, "switch CPU 0 to p2");
	ck_assert_uint_eq(r.u.sw.cr3_before, info(m, p1).pgd_pa);
	ck_assert_uint_eq(r.u.sw.cr3_after, info(m, p2).pgd_pa);
	op = tu_op_switch(1, p1);
	r = tu_apply_ok(m, &op, "switch CPU 1 to p1");
	ck_assert_uint_eq(r.u.sw.cr3_after, info(m, p1).pgd_pa);

	/* The idle task runs anywhere, on the reference table. */
	for (uint32_t c = 0; c < 3; c++) {
		op = tu_op_switch(c, 0);
		r = tu_apply_ok(m, &op, "switch to pid 0");
		ck_assert_uint_eq(r.u.sw.cr3_after, ref);
		ck_assert_int_eq(vm_cpu_get(m, c, &cpid, &cr3), 0);
		ck_assert_uint_eq(cpid, 0);
		ck_assert_uint_eq(cr3, ref);
	}
	op = tu_op_switch(2, 0);
	r = tu_apply_ok(m, &op, "switch idle to idle");
	ck_assert_uint_eq(r.u.sw.cr3_before, r.u.sw.cr3_after);

	op = tu_op_switch(0, p2 + 5);
	tu_expect_fail(m, &op, VM_ENOENT, "switch to a missing pid");
	op = tu_op_switch(3, p1);
	tu_expect_fail(m, &op, VM_ENOENT, "switch on CPU 3 of 3");
	op = tu_op_switch(UINT32_MAX, 0);
	tu_expect_fail(m, &op, VM_ENOENT, "switch on CPU 2^32-1");
	/* A pid that exited is missing too. */
	tu_exit(m, p2);
	op = tu_op_switch(0, p2);
	tu_expect_fail(m, &op, VM_ENOENT, "switch to an exited pid");
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- what a process's page table holds (SPEC 1.4, 2.3) ---- */

struct run {
	uint64_t va_start, va_end, pa_start, page_size, flags;
};

struct runs {
	struct run *v;
	size_t n, cap;
};

static int runs_cb(void *ctx, uint64_t va_start, uint64_t va_end,
		   uint64_t pa_start, uint64_t page_size, uint64_t flags)
{
	struct runs *r = ctx;

	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		ck_assert_ptr_nonnull(r->v);
	}
	r->v[r->n++] = (struct run){ va_start, va_end, pa_start, page_size,
				     flags };
	return 0;
}

static struct runs mappings(const struct vm_machine *m, uint32_t pid)
{
	struct runs r = { NULL, 0, 0 };

	ck_assert_int_eq(vm_pagetable_mappings(m, pid, runs_cb, &r), 0);
	return r;
}

static const struct run *run_at(const struct runs *r, uint64_t va)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].va_start == va)
			return &r->v[i];
	return NULL;
}

START_TEST(pagetable_mappings_runs)
{
	/* churn 0: a pristine machine hands out ascending frames, so each
	 * populated segment is physically contiguous (SPEC 1.3). */
	struct vm_machine *m = boot_full(tu_arches[_i], VM_GiB, 1, 0,
					 VM_VMSPLIT_3G_1G);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = tu_arch_of(m);
	uint64_t t = tu_text_start(m), s = stack_top(m);
	uint64_t nx = a->nx ? VM_PTE_NX : 0;
	uint32_t pid = tu_create(m, "proc", true);
	struct runs p = mappings(m, pid), k = mappings(m, 0);
	const struct run *text, *data, *stack;
	size_t nuser = 0, pk = 0, kk = 0;

	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].va_start < l->task_size)
			nuser++;
	ck_assert_uint_eq(nuser, 3);
	text = run_at(&p, t);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(text->va_end, t + TEXT_SIZE);   /* 16 pages */
	ck_assert_uint_eq(text->page_size, PAGE);
	ck_assert_uint_eq(text->flags & (0xfffULL | VM_PTE_NX),
			  VM_PTE_P | VM_PTE_US | VM_PTE_A);
	ck_assert_uint_eq(text->pa_start, frame_of(m, pid, t) << 12);
	data = run_at(&p, t + TEXT_SIZE);
	ck_assert_ptr_nonnull(data);
	ck_assert_uint_eq(data->va_end, t + TEXT_SIZE + DATA_SIZE);
	ck_assert_uint_eq(data->flags & (0xfffULL | VM_PTE_NX),
			  VM_PTE_P | VM_PTE_RW | VM_PTE_US | VM_PTE_A |
				  VM_PTE_D | nx);
	stack = run_at(&p, s - STACK_SIZE);
	ck_assert_ptr_nonnull(stack);
	ck_assert_uint_eq(stack->va_end, s);

	/* The kernel half: the same runs as the reference table's, the
	 * direct map of lowmem from PAGE_OFFSET first. */
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].va_start >= l->page_offset)
			pk++;
	for (size_t i = 0; i < k.n; i++)
		if (k.v[i].va_start >= l->page_offset)
			kk++;
	ck_assert_uint_gt(kk, 0);
	ck_assert_uint_eq(pk, kk);
	ck_assert_uint_eq(k.n, kk);  /* pid 0 has no user half */
	for (size_t i = 0, j = 0; i < p.n; i++) {
		if (p.v[i].va_start < l->page_offset)
			continue;
		ck_assert_msg(memcmp(&p.v[i], &k.v[j], sizeof(struct run)) == 0,
			      "kernel run %zu differs: %#llx vs %#llx", j,
			      (unsigned long long)p.v[i].va_start,
			      (unsigned long long)k.v[j].va_start);
		j++;
	}
	{
		const struct run *dm = run_at(&k, l->page_offset);

		ck_assert_ptr_nonnull(dm);
		ck_assert_uint_eq(dm->pa_start, 0);
		ck_assert(dm->flags & VM_PTE_G);
		ck_assert(!(dm->flags & VM_PTE_US));
		dm = run_at(&p, l->page_offset);
		ck_assert_ptr_nonnull(dm);
		ck_assert_uint_eq(dm->pa_start, 0);
	}
	ck_assert_int_eq(vm_pagetable_mappings(m, pid + 1, runs_cb, &p),
			 VM_ENOENT);
	free(p.v);
	free(k.v);
	vm_machine_free(m);
}
END_TEST

/* Looks for two pfns in a listing too long to keep. */
struct find_pfns {
	uint64_t a, b;
	bool seen_a, seen_b;
	uint64_t n;
};

static int find_cb(void *ctx, uint64_t pfn)
{
	struct find_pfns *f = ctx;

	f->seen_a |= pfn == f->a;
	f->seen_b |= pfn == f->b;
	f->n++;
	return 0;
}

START_TEST(pagetable_frames_of_a_process)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", false);
	uint64_t pgd = info(m, pid).pgd_pa;
	struct pfns f = table_frames(m, pid);
	uint32_t cpid;
	uint64_t ref;

	ck_assert(has_pfn(&f, pgd >> VM_PAGE_SHIFT));
	/* Ascending, each a page table of this process. */
	for (unsigned i = 0; i < f.n; i++) {
		struct vm_owner o = vm_machine_owner(m, f.v[i]);

		ck_assert_int_eq(o.kind, VM_OWNER_PAGE_TABLE);
		ck_assert_uint_eq(o.id, pid);
		if (i)
			ck_assert_uint_lt(f.v[i - 1], f.v[i]);
	}
	if (a->id == VM_ARCH_I386_PAE) {
		/* The PDPT and its 3 user PMDs, allocated with it. */
		ck_assert_uint_eq(f.n, 4);
		for (unsigned i = 0; i < 3; i++) {
			uint64_t e = vm_test_phys_read(m, pgd + 8 * i, 8);

			ck_assert_uint_eq(e & 0xfff, VM_PDPT_PRESENT);
			ck_assert(has_pfn(&f, (e & 0x000ffffffffff000ULL) >> 12));
		}
	} else {
		/* Nothing populated: the top-level table alone. */
		ck_assert_uint_eq(f.n, 1);
	}
	/* pid 0: the kernel's tables, the reference table among them, and
	 * no table of the process. */
	ck_assert_int_eq(vm_cpu_get(m, 0, &cpid, &ref), 0);
	{
		struct find_pfns c = { ref >> 12, pgd >> 12, false, false, 0 };

		ck_assert_int_eq(vm_pagetable_frames(m, 0, find_cb, &c), 0);
		ck_assert(c.seen_a);
		ck_assert(!c.seen_b);
		ck_assert_uint_gt(c.n, 1);
	}
	ck_assert(vm_machine_owner(m, ref >> 12).kind == VM_OWNER_PAGE_TABLE);
	ck_assert_uint_eq(vm_machine_owner(m, ref >> 12).id, 0);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* PAE: one user PMD per GiB of user space (pgd_prepopulate_pmd). */
START_TEST(pae_user_pmds_per_split)
{
	static const enum vm_vmsplit splits[] = { VM_VMSPLIT_3G_1G,
						  VM_VMSPLIT_2G_2G,
						  VM_VMSPLIT_1G_3G };
	struct vm_machine *m = boot_full("i386-pae", VM_GiB, 1,
					 VM_DEFAULT_CHURN, splits[_i]);
	uint32_t pid = tu_create(m, "proc", false);
	uint64_t pgd = info(m, pid).pgd_pa;
	struct pfns f = table_frames(m, pid);
	unsigned user = 3 - (unsigned)_i;

	ck_assert_uint_eq(f.n, 1 + user);
	for (unsigned i = 0; i < 4; i++) {
		uint64_t e = vm_test_phys_read(m, pgd + 8 * i, 8);
		uint64_t pfn = (e & 0x000ffffffffff000ULL) >> 12;

		ck_assert(e & VM_PTE_P);
		/* User entries point at this process's PMDs, kernel ones at
		 * the shared kernel PMDs. */
		ck_assert_msg(has_pfn(&f, pfn) == (i < user),
			      "PDPT entry %u: pfn %#llx", i,
			      (unsigned long long)pfn);
	}
	tu_exit(m, pid);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("process");
	TCase *seg = tcase_create("segments");
	TCase *map = tcase_create("mmap");
	TCase *cpu = tcase_create("exit_and_switch");
	TCase *pt = tcase_create("pagetable");

	tcase_add_loop_test(seg, default_segments, 0, 4);
	tcase_add_loop_test(seg, segment_overrides, 0, 4);
	tcase_add_loop_test(seg, populate_backs_segments, 0, 4);
	tcase_add_loop_test(seg, populate_false_leaves_demand_paging, 0, 4);
	tcase_add_loop_test(seg, pids_never_reused, 0, 4);
	suite_add_tcase(s, seg);

	tcase_add_loop_test(map, mmap_top_down_from_mmap_base, 0, NBASES);
	tcase_add_loop_test(map, mmap_merges_neighbours, 0, 4);
	tcase_add_loop_test(map, mmap_hint, 0, 4);
	tcase_add_loop_test(map, mmap_fixed_replaces, 0, 4);
	tcase_add_loop_test(map, mmap_refusals, 0, 4);
	tcase_add_loop_test(map, munmap_splits_and_trims, 0, 4);
	tcase_add_loop_test(map, munmap_text_and_stack, 0, 4);
	tcase_add_loop_test(map, munmap_refusals_and_empty_ranges, 0, 4);
	tcase_add_loop_test(map, munmap_frees_empty_tables, 0, 4);
	tcase_add_loop_test(map, brk_grows_and_shrinks, 0, 4);
	tcase_add_loop_test(map, brk_refusals, 0, 4);
	tcase_add_loop_test(map, brk_keeps_a_page_below_the_next_mapping, 0, 4);
	tcase_add_loop_test(map, brk_follows_populate, 0, 4);
	tcase_add_loop_test(map, out_of_memory_changes_nothing, 0, 4);
	tcase_add_loop_test(map, huge_sparse_regions_unmap_fast, 0, 2);
	suite_add_tcase(s, map);

	tcase_add_loop_test(cpu, exit_frees_every_frame, 0, 4);
	tcase_add_loop_test(cpu, exit_while_current, 0, 4);
	tcase_add_loop_test(cpu, switch_rules, 0, 4);
	suite_add_tcase(s, cpu);

	tcase_add_loop_test(pt, pagetable_mappings_runs, 0, 4);
	tcase_add_loop_test(pt, pagetable_frames_of_a_process, 0, 4);
	tcase_add_loop_test(pt, pae_user_pmds_per_split, 0, 3);
	suite_add_tcase(s, pt);

	return tu_run(s);
}
