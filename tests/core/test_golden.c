/*
 * test_golden.c - golden scenarios per architecture (SPEC 1.9).
 *
 * For each architecture a fixed scenario of 50 operations (every operation
 * type) and a dozen queries runs on a machine with a fixed seed and the
 * default churn. Every answer, and the digest after every operation, goes
 * into a canonical text transcript that is compared line by line with the
 * committed tests/core/golden/<arch>.txt: any change of behaviour, intended
 * or not, shows up as the first line that differs. An intended change
 * bumps VM_MODEL_VERSION (core/machine.h) and regenerates the files with
 * VMLAB_GOLDEN_WRITE=1 (see tests/core/golden/README.md); the test checks
 * that a file's model_version line is this build's.
 *
 * The golden directory is found through $srcdir, which the automake test
 * harness exports (the source tree, also in an out-of-tree build and in
 * `make distcheck`, where it is read-only); "." without it.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buddy.h"
#include "core/dma.h"
#include "core/error.h"
#include "core/gfp.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/process.h"
#include "core/slab.h"
#include "core/translate.h"
#include "core/vmalloc.h"
#include "tests/core/testutil.h"

/*
 * RAM per arch: 2 GiB on the 32-bit arches so that ZONE_HIGHMEM exists
 * (lowmem ends near 888 MiB with 3G/1G, SPEC 1.2), 1 GiB on 64-bit.
 */
static const uint64_t memories[] = { 2 * VM_GiB, 2 * VM_GiB, 1 * VM_GiB,
				     1 * VM_GiB };

#define SEED 42
#define NOPS 50

/* ---- the transcript ---- */

struct tx {
	char *buf;
	size_t len, cap;
};

static void tx_printf(struct tx *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void tx_printf(struct tx *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		ck_assert_int_ge(n, 0);
		if ((size_t)n < t->cap - t->len)
			break;
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		ck_assert_ptr_nonnull(t->buf);
	}
	t->len += (size_t)n;
}

static unsigned long long ull(uint64_t v)
{
	return (unsigned long long)v;
}

/* ---- the scenario's state ---- */

struct scen {
	struct vm_machine *m;
	const struct vm_layout *l;
	const struct vm_arch *a;
	struct tx t;
	unsigned nop;                /* operations applied so far */
};

static void put_regions(struct scen *s, uint32_t pid)
{
	struct vm_process_info pi;

	ck_assert_int_eq(vm_process_get(s->m, pid, &pi), 0);
	tx_printf(&s->t, " brk=0x%llx regions=[", ull(pi.brk));
	for (uint32_t i = 0; i < pi.nregions; i++) {
		struct vm_region_info r;
		char p[4];

		ck_assert_int_eq(vm_process_region(s->m, pid, i, &r), 0);
		tx_printf(&s->t, "%s0x%llx-0x%llx %s %s", i ? ", " : "",
			  ull(r.start), ull(r.end), vm_prot_format(r.prot, p),
			  vm_vma_kind_name(r.kind));
	}
	tx_printf(&s->t, "]");
}

static void put_args(struct scen *s, const struct vm_op *op)
{
	char b[160], p[4];

	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		tx_printf(&s->t, " name=%s populate=%d", op->u.create.name,
			  op->u.create.populate);
		break;
	case VM_OP_PROCESS_EXIT:
		tx_printf(&s->t, " pid=%u", op->u.exit.pid);
		break;
	case VM_OP_MMAP:
		tx_printf(&s->t, " pid=%u", op->u.mmap.pid);
		if (op->u.mmap.has_addr)
			tx_printf(&s->t, " addr=0x%llx", ull(op->u.mmap.addr));
		tx_printf(&s->t, " length=%llu prot=%s fixed=%d populate=%d",
			  ull(op->u.mmap.length),
			  vm_prot_format(op->u.mmap.prot, p), op->u.mmap.fixed,
			  op->u.mmap.populate);
		break;
	case VM_OP_MUNMAP:
		tx_printf(&s->t, " pid=%u addr=0x%llx length=%llu",
			  op->u.munmap.pid, ull(op->u.munmap.addr),
			  ull(op->u.munmap.length));
		break;
	case VM_OP_BRK:
		if (op->u.brk.absolute)
			tx_printf(&s->t, " pid=%u addr=0x%llx", op->u.brk.pid,
				  ull(op->u.brk.addr));
		else
			tx_printf(&s->t, " pid=%u increment=%lld",
				  op->u.brk.pid, (long long)op->u.brk.increment);
		break;
	case VM_OP_KMALLOC:
		tx_printf(&s->t, " size=%llu gfp=%s", ull(op->u.kmalloc.size),
			  vm_gfp_format(op->u.kmalloc.gfp, b, sizeof(b)));
		break;
	case VM_OP_KFREE:
		tx_printf(&s->t, " va=0x%llx", ull(op->u.kfree.va));
		break;
	case VM_OP_VMALLOC:
		tx_printf(&s->t, " size=%llu guard=%d", ull(op->u.vmalloc.size),
			  op->u.vmalloc.guard);
		break;
	case VM_OP_VFREE:
		tx_printf(&s->t, " va=0x%llx", ull(op->u.vfree.va));
		break;
	case VM_OP_ALLOC_PAGES:
		tx_printf(&s->t, " order=%u gfp=%s", op->u.alloc_pages.order,
			  vm_gfp_format(op->u.alloc_pages.gfp, b, sizeof(b)));
		break;
	case VM_OP_FREE_PAGES:
		tx_printf(&s->t, " pa=0x%llx order=%u",
			  ull(op->u.free_pages.pa), op->u.free_pages.order);
		break;
	case VM_OP_SWITCH:
		tx_printf(&s->t, " cpu=%u pid=%u", op->u.sw.cpu, op->u.sw.pid);
		break;
	default:
		ck_abort_msg("unknown op type %d", (int)op->type);
	}
}

/* The pa a process's page maps, or "none" (a kernel-mode read). */
static void put_user_pa(struct scen *s, uint32_t pid, uint64_t va)
{
	struct vm_translate_req q = { .va = va, .has_pid = true, .pid = pid,
				      .mode = VM_MODE_KERNEL };
	struct vm_translation tr;
	struct vm_error e = { 0 };

	ck_assert_msg(vm_translate(s->m, &q, &tr, &e) == 0, "%s", e.detail);
	if (tr.ok)
		tx_printf(&s->t, " first_pa=0x%llx", ull(tr.pa));
	else
		tx_printf(&s->t, " first_pa=none");
}

static void put_answer(struct scen *s, const struct vm_op *op,
		       const struct vm_op_result *r)
{
	struct vm_process_info pi;
	struct vm_cache_info ci;

	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		ck_assert_int_eq(vm_process_get(s->m, r->u.create.pid, &pi), 0);
		tx_printf(&s->t, " pid=%u pgd_pa=0x%llx kstack=0x%llx",
			  r->u.create.pid, ull(pi.pgd_pa), ull(pi.kstack));
		put_regions(s, r->u.create.pid);
		break;
	case VM_OP_PROCESS_EXIT:
		tx_printf(&s->t, " processes=%u", vm_machine_nprocesses(s->m));
		break;
	case VM_OP_MMAP: {
		char p[4];

		tx_printf(&s->t, " start=0x%llx end=0x%llx prot=%s",
			  ull(r->u.mmap.start), ull(r->u.mmap.end),
			  vm_prot_format(r->u.mmap.prot, p));
		put_user_pa(s, op->u.mmap.pid, r->u.mmap.start);
		put_regions(s, op->u.mmap.pid);
		break;
	}
	case VM_OP_MUNMAP:
		put_regions(s, op->u.munmap.pid);
		break;
	case VM_OP_BRK:
		put_regions(s, op->u.brk.pid);
		break;
	case VM_OP_KMALLOC:
		tx_printf(&s->t, " va=0x%llx", ull(r->u.kmalloc.va));
		if (r->u.kmalloc.zero) {
			tx_printf(&s->t, " pa=none cache=none");
		} else {
			tx_printf(&s->t, " pa=0x%llx", ull(r->u.kmalloc.pa));
			if (r->u.kmalloc.large) {
				tx_printf(&s->t, " cache=large order=%u",
					  r->u.kmalloc.order);
			} else {
				vm_slab_cache_info(s->m, r->u.kmalloc.cache,
						   &ci);
				tx_printf(&s->t, " cache=%s", ci.name);
			}
			tx_printf(&s->t, " zone=%s",
				  vm_zone_name(r->u.kmalloc.zone));
		}
		tx_printf(&s->t, " warnings=%s%s%s",
			  r->u.kmalloc.warnings ? "" : "none",
			  (r->u.kmalloc.warnings & VM_WARN_STRIPPED_DMA32)
				  ? "stripped_dma32" : "",
			  (r->u.kmalloc.warnings & VM_WARN_STRIPPED_HIGHMEM)
				  ? "stripped_highmem" : "");
		break;
	case VM_OP_VMALLOC: {
		int i = vm_vmalloc_at(s->m, r->u.vmalloc.va);

		ck_assert_int_ge(i, 0);
		tx_printf(&s->t, " va=0x%llx size=%llu pages=%llu guard=%d "
			  "frames=[", ull(r->u.vmalloc.va),
			  ull(r->u.vmalloc.size), ull(r->u.vmalloc.pages),
			  r->u.vmalloc.guard);
		for (uint64_t p = 0; p < r->u.vmalloc.pages; p++)
			tx_printf(&s->t, "%s0x%llx", p ? "," : "",
				  ull(vm_vmalloc_pfn(s->m, (uint32_t)i, p)
				      << VM_PAGE_SHIFT));
		tx_printf(&s->t, "]");
		break;
	}
	case VM_OP_ALLOC_PAGES:
		tx_printf(&s->t, " pa=0x%llx order=%u zone=%s",
			  ull(r->u.alloc_pages.pa), r->u.alloc_pages.order,
			  vm_zone_name(r->u.alloc_pages.zone));
		if (r->u.alloc_pages.has_va)
			tx_printf(&s->t, " va=0x%llx", ull(r->u.alloc_pages.va));
		else
			tx_printf(&s->t, " va=null");
		break;
	case VM_OP_SWITCH:
		tx_printf(&s->t, " cpu=%u prev_pid=%u next_pid=%u "
			  "cr3_before=0x%llx cr3_after=0x%llx", r->u.sw.cpu,
			  r->u.sw.prev_pid, r->u.sw.next_pid,
			  ull(r->u.sw.cr3_before), ull(r->u.sw.cr3_after));
		break;
	default:
		break; /* kfree, vfree, free_pages answer nothing but status */
	}
}

/* Applies one operation of the scenario (it must succeed) and logs it. */
static struct vm_op_result apply(struct scen *s, const struct vm_op *op)
{
	struct vm_op_result r;
	struct vm_error e = { 0 };
	int rc = vm_machine_apply(s->m, op, &r, &e);

	s->nop++;
	ck_assert_msg(rc == 0, "%s: op %u (%s) failed: %s (%s)",
		      s->a->name, s->nop, vm_op_name(op->type),
		      vm_errname(rc), e.detail);
	tx_printf(&s->t, "op %u %s", s->nop, vm_op_name(op->type));
	put_args(s, op);
	tx_printf(&s->t, " ->");
	put_answer(s, op, &r);
	tx_printf(&s->t, " version=%llu frames_in_use=%llu digest=0x%016llx\n",
		  ull(vm_machine_version(s->m)),
		  ull(vm_machine_frames_in_use(s->m)),
		  ull(vm_machine_digest(s->m)));
	return r;
}

/* ---- operation builders ---- */

static uint32_t op_create(struct scen *s, const char *name, bool populate)
{
	struct vm_op op = tu_op_create(name, VM_SEG_DEFAULT, VM_SEG_DEFAULT,
				       VM_SEG_DEFAULT, VM_SEG_DEFAULT,
				       populate);

	return apply(s, &op).u.create.pid;
}

static void op_exit(struct scen *s, uint32_t pid)
{
	struct vm_op op = tu_op_exit(pid);

	apply(s, &op);
}

static uint64_t op_mmap(struct scen *s, uint32_t pid, bool has_addr,
			uint64_t addr, uint64_t length, unsigned prot,
			bool fixed, bool populate)
{
	struct vm_op op = tu_op_mmap(pid, length, prot, has_addr, addr, fixed,
				     populate);

	return apply(s, &op).u.mmap.start;
}

static void op_munmap(struct scen *s, uint32_t pid, uint64_t addr,
		      uint64_t length)
{
	struct vm_op op = tu_op_munmap(pid, addr, length);

	apply(s, &op);
}

static void op_brk(struct scen *s, uint32_t pid, int64_t increment)
{
	struct vm_op op = tu_op_brk(pid, false, increment, 0);

	apply(s, &op);
}

static uint64_t op_kmalloc(struct scen *s, uint64_t size, uint32_t gfp)
{
	struct vm_op op = tu_op_kmalloc(size, gfp);

	return apply(s, &op).u.kmalloc.va;
}

static void op_kfree(struct scen *s, uint64_t va)
{
	struct vm_op op = tu_op_kfree(va);

	apply(s, &op);
}

static uint64_t op_vmalloc(struct scen *s, uint64_t size, bool guard)
{
	struct vm_op op = tu_op_vmalloc(size, guard);

	return apply(s, &op).u.vmalloc.va;
}

static void op_vfree(struct scen *s, uint64_t va)
{
	struct vm_op op = tu_op_vfree(va);

	apply(s, &op);
}

static uint64_t op_alloc_pages(struct scen *s, uint32_t order, uint32_t gfp)
{
	struct vm_op op = tu_op_alloc_pages(order, gfp);

	return apply(s, &op).u.alloc_pages.pa;
}

static void op_free_pages(struct scen *s, uint64_t pa, uint32_t order)
{
	struct vm_op op = tu_op_free_pages(pa, order);

	apply(s, &op);
}

static void op_switch(struct scen *s, uint32_t cpu, uint32_t pid)
{
	struct vm_op op = tu_op_switch(cpu, pid);

	apply(s, &op);
}

/* ---- queries ---- */

/* Translates va in pid's tables, or (has_pid false) in those of the task
 * current on CPU `id`. */
static void q_translate(struct scen *s, const char *what, uint64_t va,
			bool has_pid, uint32_t id, enum vm_mode mode,
			enum vm_access acc)
{
	struct vm_translate_req q = { .va = va, .has_pid = has_pid,
				      .pid = has_pid ? id : 0,
				      .has_cpu = !has_pid,
				      .cpu = has_pid ? 0 : id, .mode = mode,
				      .access = acc };
	struct vm_translation tr;
	struct vm_error e = { 0 };
	int rc = vm_translate(s->m, &q, &tr, &e);

	tx_printf(&s->t, "q translate %s va=0x%llx %s%u mode=%s access=%s ->",
		  what, ull(va), has_pid ? "pid=" : "cpu=", id,
		  vm_mode_name(mode), vm_access_name(acc));
	if (rc) {
		tx_printf(&s->t, " error=%s detail=\"%s\"\n", vm_errname(rc),
			  e.detail);
		return;
	}
	tx_printf(&s->t, " task=%u ok=%d", tr.pid, tr.ok);
	if (tr.ok)
		tx_printf(&s->t, " pa=0x%llx", ull(tr.pa));
	else
		tx_printf(&s->t, " pa=null");
	tx_printf(&s->t, " region=%s page_size=%llu",
		  vm_region_name(tr.region), ull(tr.page_size));
	if (tr.fault.kind != VM_FAULT_NONE)
		tx_printf(&s->t, " fault=%s error_code=0x%x "
			  "linux_error_code=0x%x outcome=%s si_code=%s "
			  "level=%s reason=\"%s\"",
			  vm_fault_kind_name(tr.fault.kind),
			  tr.fault.error_code, tr.fault.linux_error_code,
			  vm_outcome_name(tr.fault.outcome),
			  tr.fault.si_code == VM_SI_NONE
				  ? "none" : vm_si_code_name(tr.fault.si_code),
			  tr.fault.level >= 0
				  ? s->a->level[tr.fault.level].name : "none",
			  tr.fault.reason);
	else
		tx_printf(&s->t, " fault=none");
	tx_printf(&s->t, " walk=[");
	for (unsigned i = 0; i < tr.nwalk; i++) {
		const char *names[12];
		unsigned n = vm_entry_flags(s->m, tr.walk[i].level,
					    tr.walk[i].entry, names);

		tx_printf(&s->t, "%s%s %u 0x%llx 0x%0*llx", i ? "; " : "",
			  s->a->level[tr.walk[i].level].name,
			  tr.walk[i].index, ull(tr.walk[i].entry_pa),
			  s->a->entry_size * 2, ull(tr.walk[i].entry));
		for (unsigned f = 0; f < n; f++)
			tx_printf(&s->t, "%s%s", f ? "|" : " ", names[f]);
	}
	tx_printf(&s->t, "]\n");
}

static void dma_seg(void *ctx, uint64_t pa, uint64_t length)
{
	struct tx *t = ctx;

	tx_printf(t, " 0x%llx+%llu", ull(pa), ull(length));
}

static void q_dma(struct scen *s, const char *what, uint64_t va,
		  uint64_t length, unsigned mask_bits)
{
	struct vm_dma_req q = { .va = va, .length = length,
				.mask_bits = mask_bits };
	struct vm_dma_result r;
	struct vm_error e = { 0 };
	int rc;

	tx_printf(&s->t, "q dma_check %s va=0x%llx length=%llu "
		  "dma_mask_bits=%u -> segments=[", what, ull(va), ull(length),
		  mask_bits);
	rc = vm_dma_check(s->m, &q, &r, dma_seg, &s->t, &e);
	ck_assert_msg(rc == 0, "dma check failed: %s", e.detail);
	tx_printf(&s->t, " ] single_ok=%d sg_ok=%d reasons=", r.single_ok,
		  r.sg_ok);
	if (!r.reasons)
		tx_printf(&s->t, "none");
	for (unsigned b = 0, n = 0; b < VM_DMA_NREASONS; b++)
		if (r.reasons & (1u << b))
			tx_printf(&s->t, "%s%s", n++ ? "," : "",
				  vm_dma_reason_name(b));
	tx_printf(&s->t, "\n");
}

static void q_v2p(struct scen *s, const char *what, uint64_t va)
{
	uint64_t pa = 0;
	struct vm_error e = { 0 };
	int rc = vm_virt_to_phys(s->m, va, &pa, &e);

	tx_printf(&s->t, "q virt_to_phys %s va=0x%llx ->", what, ull(va));
	if (rc)
		tx_printf(&s->t, " error=%s detail=\"%s\"\n", vm_errname(rc),
			  e.detail);
	else
		tx_printf(&s->t, " pa=0x%llx\n", ull(pa));
}

static void q_p2v(struct scen *s, const char *what, uint64_t pa)
{
	uint64_t va = 0;
	struct vm_error e = { 0 };
	int rc = vm_phys_to_virt(s->m, pa, &va, &e);

	tx_printf(&s->t, "q phys_to_virt %s pa=0x%llx ->", what, ull(pa));
	if (rc)
		tx_printf(&s->t, " error=%s detail=\"%s\"\n", vm_errname(rc),
			  e.detail);
	else
		tx_printf(&s->t, " va=0x%llx\n", ull(va));
}

/* A refused operation: its error, and proof that nothing changed. */
static void q_refused(struct scen *s, const char *what, const struct vm_op *op)
{
	uint64_t d = vm_machine_digest(s->m), v = vm_machine_version(s->m);
	struct vm_error e = { 0 };
	int rc = vm_machine_apply(s->m, op, NULL, &e);

	ck_assert_msg(rc != 0, "%s: the refused %s succeeded", s->a->name,
		      what);
	ck_assert_uint_eq(vm_machine_digest(s->m), d);
	ck_assert_uint_eq(vm_machine_version(s->m), v);
	tx_printf(&s->t, "q refused %s %s", what, vm_op_name(op->type));
	put_args(s, op);
	tx_printf(&s->t, " -> error=%s detail=\"%s\" version=%llu\n",
		  vm_errname(rc), e.detail, ull(v));
}

static void put_zones(struct scen *s)
{
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct vm_zone_info zi;

		if (!vm_machine_zone_populated(s->m, (enum vm_zone_id)z))
			continue;
		vm_machine_zone_info(s->m, (enum vm_zone_id)z, &zi);
		tx_printf(&s->t, "zone %s free_pages=%llu free_blocks=",
			  vm_zone_name((enum vm_zone_id)z), ull(zi.free_pages));
		for (int o = 0; o < VM_NR_ORDERS; o++)
			tx_printf(&s->t, "%s%llu", o ? "," : "",
				  ull(zi.free_blocks[o]));
		tx_printf(&s->t, "\n");
	}
}

static void put_slabs(struct scen *s)
{
	for (unsigned i = 0; i < vm_slab_cache_count(); i++) {
		struct vm_cache_info ci;

		vm_slab_cache_info(s->m, i, &ci);
		if (ci.slabs == 0)
			continue;
		tx_printf(&s->t, "slab %s active_objects=%llu "
			  "total_objects=%llu slabs=%llu\n", ci.name,
			  ull(ci.active_objects), ull(ci.total_objects),
			  ull(ci.slabs));
	}
}

/* ---- the scenario ---- */

/* GFP_ATOMIC: __GFP_HIGH | __GFP_KSWAPD_RECLAIM (gfp.h, 5.x-6.8 values). */
#define GFP_ATOMIC 0x820u

#define RW (VM_PROT_READ | VM_PROT_WRITE)
#define RO VM_PROT_READ

/* A user address free on every arch (i386 text starts at 0x08048000). */
#define HINT_ADDR 0x10000000ULL
#define FIXED_ADDR 0x20000000ULL

static void run_scenario(struct scen *s)
{
	const struct vm_layout *l = s->l;
	uint32_t init, shell, worker;
	uint64_t anon, hinted, k1, k100, k500, k3000, k8k, k10000, kdma;
	uint64_t kstrip, k4m, v20k, v8k, v4k, v64k;
	uint64_t p0, p3, pdma, phigh, pdma32;
	struct vm_op op;

	tx_printf(&s->t, "model_version %d\n", VM_MODEL_VERSION);
	tx_printf(&s->t, "machine arch=%s memory=%llu cpus=2 seed=%d churn=%d "
		  "vmsplit=%s\n", s->a->name, ull(l->memory), SEED,
		  VM_DEFAULT_CHURN,
		  s->a->is64 ? "none" : vm_vmsplit_name(l->vmsplit));
	tx_printf(&s->t, "layout page_offset=0x%llx task_size=0x%llx "
		  "high_memory=0x%llx lowmem_bytes=%llu highmem_bytes=%llu "
		  "vmalloc_start=0x%llx vmalloc_end=0x%llx mmap_base=0x%llx\n",
		  ull(l->page_offset), ull(l->task_size), ull(l->high_memory),
		  ull(l->lowmem_bytes), ull(l->highmem_bytes),
		  ull(l->vmalloc_start), ull(l->vmalloc_end),
		  ull(l->mmap_base));
	tx_printf(&s->t, "boot version=%llu frames_in_use=%llu "
		  "digest=0x%016llx\n", ull(vm_machine_version(s->m)),
		  ull(vm_machine_frames_in_use(s->m)),
		  ull(vm_machine_digest(s->m)));
	put_zones(s);

	/* Processes and CPUs. */
	init = op_create(s, "init", true);                       /* 1 */
	shell = op_create(s, "shell", true);                     /* 2 */
	op_switch(s, 0, init);                                   /* 3 */
	op_switch(s, 1, shell);                                  /* 4 */

	/* User mappings: top-down, hint, fixed, a split, brk both ways. */
	anon = op_mmap(s, init, false, 0, 64 * 1024, RW, false, true); /* 5 */
	hinted = op_mmap(s, init, true, HINT_ADDR, 32 * 1024, RO, false,
			 true);                                  /* 6 */
	op_mmap(s, init, true, FIXED_ADDR, 16 * 1024, RW, true, true); /* 7 */
	op_munmap(s, init, anon + 16 * 1024, 16 * 1024);         /* 8 */
	op_brk(s, init, 40 * 1024);                              /* 9 */
	op_brk(s, init, -16 * 1024);                             /* 10 */

	/* kmalloc: every kind of size, DMA, stripped flags. */
	op_kmalloc(s, 0, VM_GFP_KERNEL);                         /* 11 */
	k1 = op_kmalloc(s, 1, VM_GFP_KERNEL);                    /* 12 */
	k100 = op_kmalloc(s, 100, VM_GFP_KERNEL);                /* 13 */
	k500 = op_kmalloc(s, 500, VM_GFP_KERNEL);                /* 14 */
	k3000 = op_kmalloc(s, 3000, VM_GFP_KERNEL);              /* 15 */
	k8k = op_kmalloc(s, 8192, VM_GFP_KERNEL);                /* 16 */
	k10000 = op_kmalloc(s, 10000, VM_GFP_KERNEL);            /* 17 */
	kdma = op_kmalloc(s, 64, VM_GFP_DMA);                    /* 18 */
	kstrip = op_kmalloc(s, 200, VM_GFP_KERNEL | VM_GFP_HIGHMEM); /* 19 */
	op_kfree(s, k100);                                       /* 20 */
	op_kfree(s, k10000);                                     /* 21 */

	/* vmalloc, with and without the guard page. */
	v20k = op_vmalloc(s, 20000, true);                       /* 22 */
	v8k = op_vmalloc(s, 8192, false);                        /* 23 */
	v4k = op_vmalloc(s, 4096, true);                         /* 24 */
	op_vfree(s, v8k);                                        /* 25 */

	/* The page allocator in every zone the flags reach. */
	p0 = op_alloc_pages(s, 0, VM_GFP_KERNEL);                /* 26 */
	p3 = op_alloc_pages(s, 3, VM_GFP_KERNEL);                /* 27 */
	pdma = op_alloc_pages(s, 0, VM_GFP_DMA);                 /* 28 */
	phigh = op_alloc_pages(s, 1, VM_GFP_HIGHUSER);           /* 29 */
	op_free_pages(s, p3, 3);                                 /* 30 */

	/* A third process, demand-paged, and more switches. */
	worker = op_create(s, "worker", false);                  /* 31 */
	op_switch(s, 0, worker);                                 /* 32 */
	op_switch(s, 1, init);                                   /* 33 */
	op_mmap(s, worker, false, 0, 8 * 1024, RW, false, false); /* 34 */
	op_kmalloc(s, 96, GFP_ATOMIC);                           /* 35 */
	op_kmalloc(s, 8193, VM_GFP_KERNEL);                      /* 36 */
	op_kfree(s, k1);                                         /* 37 */
	v64k = op_vmalloc(s, 64 * 1024, true);                   /* 38 */
	op_exit(s, shell);                                       /* 39 */
	op_switch(s, 1, 0);                                      /* 40 */
	op_brk(s, worker, 8 * 1024);                             /* 41 */
	op_munmap(s, init, FIXED_ADDR, 16 * 1024);               /* 42 */
	pdma32 = op_alloc_pages(s, 2, VM_GFP_DMA32);             /* 43 */
	op_free_pages(s, p0, 0);                                 /* 44 */
	op_kfree(s, k500);                                       /* 45 */
	op_vfree(s, v20k);                                       /* 46 */
	/* MAP_FIXED over the upper half of the hinted region replaces it. */
	op_mmap(s, init, true, hinted + 16 * 1024, 16 * 1024, RW, true,
		true);                                           /* 47 */
	/* worker is current on CPU 0, which goes back to pid 0. */
	op_exit(s, worker);                                      /* 48 */
	/* init has run nowhere since op 40. */
	op_switch(s, 0, init);                                   /* 49 */
	k4m = op_kmalloc(s, 4 * VM_MiB, VM_GFP_KERNEL);          /* 50 */
	ck_assert_uint_eq(s->nop, NOPS);

	/* Queries. */
	q_translate(s, "anon_first_page", anon, true, init, VM_MODE_USER,
		    VM_ACCESS_READ);
	q_translate(s, "anon_split_hole", anon + 16 * 1024, true, init,
		    VM_MODE_USER, VM_ACCESS_READ);
	q_translate(s, "text_write", s->a->is64 ? 0x400000 : 0x08048000, false,
		    0, VM_MODE_USER, VM_ACCESS_WRITE);
	q_translate(s, "data_exec", s->a->is64 ? 0x410000 : 0x08058000, true,
		    init, VM_MODE_USER, VM_ACCESS_EXEC);
	q_translate(s, "kmalloc_8k_kernel", k8k, true, init, VM_MODE_KERNEL,
		    VM_ACCESS_WRITE);
	q_translate(s, "kmalloc_8k_user", k8k, true, init, VM_MODE_USER,
		    VM_ACCESS_READ);
	q_translate(s, "vmalloc_64k_last_page", v64k + 15 * 4096, true, 0,
		    VM_MODE_KERNEL, VM_ACCESS_WRITE);
	q_translate(s, "vmalloc_64k_guard", v64k + 16 * 4096, true, init,
		    VM_MODE_KERNEL, VM_ACCESS_READ);
	/* A user access there: #PF with P clear, reported with P set. */
	q_translate(s, "vmalloc_64k_guard_user", v64k + 16 * 4096, true, init,
		    VM_MODE_USER, VM_ACCESS_READ);
	q_translate(s, "vmalloc_offset_gap", l->vmalloc_start - 4096, true, 0,
		    VM_MODE_KERNEL, VM_ACCESS_READ);
	if (s->a->is64)
		q_translate(s, "non_canonical", 1ULL << (s->a->va_bits - 1),
			    true, init, VM_MODE_USER, VM_ACCESS_READ);
	else
		q_translate(s, "kernel_half_user", l->page_offset + 0x1234,
			    true, init, VM_MODE_USER, VM_ACCESS_READ);
	q_translate(s, "exited_pid", anon, true, worker, VM_MODE_USER,
		    VM_ACCESS_READ);
	q_dma(s, "kmalloc_dma_64", kdma, 64, 24);
	q_dma(s, "vmalloc_64k", v64k, 64 * 1024, 32);
	q_dma(s, "kmalloc_4m", k4m, 4 * VM_MiB, 32);
	q_v2p(s, "kmalloc_8k", k8k);
	q_v2p(s, "vmalloc_4k", v4k);
	q_p2v(s, "alloc_pages_highuser", phigh);
	q_p2v(s, "alloc_pages_dma", pdma);
	/* The kernel image runs from its own mapping: text executable, the
	 * rest NX (SPEC 1.4); on i386-pae from its direct-map alias. */
	q_translate(s, "kernel_image_alias_exec",
		    l->page_offset + 16 * VM_MiB + 0x1000, true, init,
		    VM_MODE_KERNEL, VM_ACCESS_EXEC);
	if (s->a->is64) {
		q_translate(s, "kernel_text_exec", 0xffffffff81000000ULL, true,
			    init, VM_MODE_KERNEL, VM_ACCESS_EXEC);
		q_translate(s, "kernel_rodata_write", 0xffffffff81400000ULL,
			    true, init, VM_MODE_KERNEL, VM_ACCESS_WRITE);
	}
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KFREE;
	op.u.kfree.va = kstrip + 16;
	q_refused(s, "interior_kfree", &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KFREE;
	op.u.kfree.va = k3000 + 4096;  /* object 1 of a live kmalloc-4k slab */
	q_refused(s, "kfree_free_object", &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VFREE;
	op.u.vfree.va = v20k;
	q_refused(s, "double_vfree", &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_FREE_PAGES;
	op.u.free_pages.pa = pdma32;
	op.u.free_pages.order = 1;
	q_refused(s, "wrong_order", &op);

	put_zones(s);
	put_slabs(s);
	tx_printf(&s->t, "end version=%llu digest=0x%016llx\n",
		  ull(vm_machine_version(s->m)), ull(vm_machine_digest(s->m)));
}

/* ---- the golden files ---- */

static char *golden_path(const char *arch)
{
	const char *srcdir = getenv("srcdir");
	size_t n;
	char *p;

	if (!srcdir || !*srcdir)
		srcdir = ".";
	n = strlen(srcdir) + strlen(arch) + 32;
	p = malloc(n);
	ck_assert_ptr_nonnull(p);
	snprintf(p, n, "%s/tests/core/golden/%s.txt", srcdir, arch);
	return p;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	ck_assert_msg(f != NULL, "cannot open the golden file %s: %s (run with "
		      "VMLAB_GOLDEN_WRITE=1 to create it)", path,
		      strerror(errno));
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	ck_assert_msg(!ferror(f), "reading %s failed", path);
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Returns the next line of text (without '\n') and advances *pos. */
static const char *next_line(const char *text, size_t len, size_t *pos,
			     size_t *linelen)
{
	const char *start = text + *pos, *nl;

	if (*pos >= len)
		return NULL;
	nl = memchr(start, '\n', len - *pos);
	*linelen = nl ? (size_t)(nl - start) : len - *pos;
	*pos += *linelen + (nl ? 1 : 0);
	return start;
}

static void compare(const char *path, const char *want, size_t wlen,
		    const char *got, size_t glen)
{
	size_t wp = 0, gp = 0, wl = 0, gl = 0;
	unsigned lineno = 0;
	int version = -1;

	/* The file must come from this model_version (SPEC 1.9). */
	ck_assert_msg(sscanf(want, "model_version %d", &version) == 1,
		      "%s: the first line is not 'model_version N'", path);
	ck_assert_msg(version == VM_MODEL_VERSION,
		      "%s was made with model_version %d, this build is %d: a "
		      "model change bumps VM_MODEL_VERSION and regenerates the "
		      "golden files together (tests/core/golden/README.md)",
		      path, version, VM_MODEL_VERSION);
	for (;;) {
		const char *w = next_line(want, wlen, &wp, &wl);
		const char *g = next_line(got, glen, &gp, &gl);

		lineno++;
		if (!w && !g)
			break;
		ck_assert_msg(w && g && wl == gl && memcmp(w, g, wl) == 0,
			      "%s:%u differs\nexpected: %.*s\nactual:   %.*s",
			      path, lineno, w ? (int)wl : 9,
			      w ? w : "<no line>", g ? (int)gl : 9,
			      g ? g : "<no line>");
	}
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(golden_scenario)
{
	struct vm_config c;
	struct scen s;
	const char *w = getenv("VMLAB_GOLDEN_WRITE");
	char *path = golden_path(tu_arches[_i]);

	memset(&s, 0, sizeof(s));
	tu_config(&c, tu_arches[_i], memories[_i]);
	c.cpus = 2;
	c.seed = SEED;
	c.churn = VM_DEFAULT_CHURN;
	c.vmsplit = VM_VMSPLIT_3G_1G;
	s.m = tu_boot_config(&c);
	s.l = vm_machine_layout(s.m);
	s.a = s.l->arch;
	run_scenario(&s);
	tu_assert_checks(s.m);

	if (w && strcmp(w, "1") == 0) {
		write_file(path, s.t.buf, s.t.len);
	} else {
		size_t wlen;
		char *want = read_file(path, &wlen);

		compare(path, want, wlen, s.t.buf, s.t.len);
		free(want);
	}
	free(path);
	free(s.t.buf);
	vm_machine_free(s.m);
}
END_TEST

/* The scenario is a function of its inputs: two runs, one transcript. */
START_TEST(scenario_is_deterministic)
{
	struct tx t[2];

	for (int k = 0; k < 2; k++) {
		struct vm_config c;
		struct scen s;

		memset(&s, 0, sizeof(s));
		tu_config(&c, tu_arches[_i], memories[_i]);
		c.cpus = 2;
		c.seed = SEED;
		s.m = tu_boot_config(&c);
		s.l = vm_machine_layout(s.m);
		s.a = s.l->arch;
		run_scenario(&s);
		t[k] = s.t;
		vm_machine_free(s.m);
	}
	ck_assert_uint_eq(t[0].len, t[1].len);
	ck_assert_int_eq(memcmp(t[0].buf, t[1].buf, t[0].len), 0);
	free(t[0].buf);
	free(t[1].buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("golden");
	TCase *tc = tcase_create("golden");

	tcase_add_loop_test(tc, golden_scenario, 0, 4);
	tcase_add_loop_test(tc, scenario_is_deterministic, 0, 4);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
