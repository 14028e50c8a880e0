/*
 * test_random.c - random operation sequences against an independent
 * reference of frame ownership (SPEC 1.3-1.6, 1.9).
 *
 * The reference is a flat array with one entry per frame, sharing no code
 * with core/: it starts from the ownership listing right after boot (boot
 * happens before anyone can watch) and from then on changes only through
 * the frame observer of core/testing.h, which reports each allocation and
 * free with its pfn, order and owner. On an allocation every frame of the
 * block must be free in the reference; on a free every frame must be owned,
 * by the owner the free names. After every operation the reference must
 * equal vm_machine_frames frame by frame, vm_machine_check must pass, and
 * the version must count the operations that succeeded. A refused
 * operation must leave the machine unchanged (SPEC 1.9): the reference
 * changes it saw on the way are undone, and digest and version must be
 * those from before.
 *
 * The operations come from the tests' own PRNG (splitmix64), not core's,
 * and pick their targets among the values core handed out: pids, kmalloc
 * and vmalloc addresses, page blocks, regions. Every successful operation
 * is kept as its encoded record; at the end the records, decoded, are
 * replayed on a fresh machine of the same configuration, which must reach
 * the same digest, version and canonical bytes.
 */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buddy.h"
#include "core/error.h"
#include "core/gfp.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/process.h"
#include "core/slab.h"
#include "core/state.h"
#include "core/testing.h"
#include "core/vmalloc.h"
#include "tests/core/testutil.h"

/* ---- the tests' own PRNG (splitmix64, tu_splitmix) ---- */

struct prng {
	uint64_t s;
};

static uint64_t rnd(struct prng *p)
{
	return tu_splitmix(&p->s);
}

static uint64_t below(struct prng *p, uint64_t n)
{
	return n ? rnd(p) % n : 0;
}

/* True with probability pct percent. */
static int chance(struct prng *p, unsigned pct)
{
	return below(p, 100) < pct;
}

/* ---- the reference: one owner per frame ---- */

struct ref_frame {
	uint8_t kind, sub;
	uint32_t id;
	uint64_t addr;
};

struct undo {
	uint64_t pfn;
	struct ref_frame old;
};

struct ref {
	uint64_t nframes;
	struct ref_frame *f;
	/* What the operation in progress changed, to put back on refusal:
	 * a snapshot of exactly the entries it touched. */
	struct undo *undo;
	size_t nundo, capundo;
	int failed;
	char why[256];
	uint64_t events;
};

static void ref_fail(struct ref *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ref_fail(struct ref *r, const char *fmt, ...)
{
	va_list ap;

	if (r->failed)
		return;
	r->failed = 1;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

static void ref_touch(struct ref *r, uint64_t pfn)
{
	if (r->nundo == r->capundo) {
		r->capundo = r->capundo ? 2 * r->capundo : 1024;
		r->undo = realloc(r->undo, r->capundo * sizeof(*r->undo));
		ck_assert_ptr_nonnull(r->undo);
	}
	r->undo[r->nundo].pfn = pfn;
	r->undo[r->nundo].old = r->f[pfn];
	r->nundo++;
}

static void observe(void *ctx, int alloc, uint64_t pfn, unsigned order,
		    const struct vm_owner *o)
{
	struct ref *r = ctx;
	uint64_t n = 1ULL << order;

	r->events++;
	if (order > VM_MAX_ORDER || pfn + n > r->nframes || pfn % n) {
		ref_fail(r, "%s of order %u at pfn %#" PRIx64
			 " is not an aligned block of RAM",
			 alloc ? "alloc" : "free", order, pfn);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		struct ref_frame *f = &r->f[pfn + i];

		if (alloc && f->kind != VM_OWNER_FREE)
			ref_fail(r, "alloc of pfn %#" PRIx64 " (order %u, for "
				 "%s) but the reference has it owned by %s",
				 pfn + i, order, vm_owner_kind_name(o->kind),
				 vm_owner_kind_name(f->kind));
		if (!alloc && (f->kind == VM_OWNER_FREE ||
			       f->kind == VM_OWNER_RESERVED ||
			       f->kind == VM_OWNER_KERNEL_IMAGE ||
			       f->kind == VM_OWNER_MEM_MAP))
			ref_fail(r, "free of pfn %#" PRIx64 " (order %u) that "
				 "the reference has as %s", pfn + i, order,
				 vm_owner_kind_name(f->kind));
		if (!alloc && f->kind != o->kind)
			ref_fail(r, "free of pfn %#" PRIx64 " names owner %s, "
				 "the reference has %s", pfn + i,
				 vm_owner_kind_name(o->kind),
				 vm_owner_kind_name(f->kind));
		ref_touch(r, pfn + i);
		memset(f, 0, sizeof(*f));
		if (alloc) {
			f->kind = o->kind;
			f->sub = o->sub;
			f->id = o->id;
			/* Blocks share one owner; a user page is order 0. */
			f->addr = o->addr;
		}
	}
}

static void ref_begin(struct ref *r)
{
	r->nundo = 0;
}

static void ref_rollback(struct ref *r)
{
	while (r->nundo > 0) {
		r->nundo--;
		r->f[r->undo[r->nundo].pfn] = r->undo[r->nundo].old;
	}
}

static int init_cb(void *ctx, uint64_t s, uint64_t e,
		   const struct vm_owner *o)
{
	struct ref *r = ctx;

	for (uint64_t p = s; p < e && p < r->nframes; p++) {
		struct ref_frame *f = &r->f[p];

		f->kind = o->kind;
		f->sub = o->sub;
		f->id = o->id;
		f->addr = o->kind == VM_OWNER_USER
				  ? o->addr + (p - s) * VM_PAGE_SIZE
				  : o->addr;
	}
	return 0;
}

static void ref_init(struct ref *r, struct vm_machine *m)
{
	memset(r, 0, sizeof(*r));
	r->nframes = vm_machine_layout(m)->max_pfn;
	r->f = calloc(r->nframes, sizeof(*r->f));
	ck_assert_ptr_nonnull(r->f);
	ck_assert_int_eq(vm_machine_frames(m, 0, r->nframes, init_cb, r), 0);
	vm_machine_set_observer(m, observe, r);
}

static void ref_release(struct ref *r)
{
	free(r->f);
	free(r->undo);
}

struct cmp {
	const struct ref *r;
	uint64_t next;
	int bad;
	char why[256];
};

static int cmp_cb(void *ctx, uint64_t s, uint64_t e, const struct vm_owner *o)
{
	struct cmp *c = ctx;

	if (s != c->next || e <= s || e > c->r->nframes) {
		c->bad = 1;
		snprintf(c->why, sizeof(c->why), "listing range [%#" PRIx64
			 ", %#" PRIx64 ") does not follow %#" PRIx64, s, e,
			 c->next);
		return 1;
	}
	for (uint64_t p = s; p < e; p++) {
		const struct ref_frame *f = &c->r->f[p];
		uint64_t addr = o->kind == VM_OWNER_USER
					? o->addr + (p - s) * VM_PAGE_SIZE
					: o->addr;

		if (f->kind != o->kind ||
		    (o->kind == VM_OWNER_USER && f->id != o->id) ||
		    (o->kind != VM_OWNER_FREE &&
		     (f->id != o->id || f->sub != o->sub || f->addr != addr))) {
			c->bad = 1;
			snprintf(c->why, sizeof(c->why),
				 "pfn %#" PRIx64 ": core says %s id %u addr %#"
				 PRIx64 ", the reference %s id %u addr %#"
				 PRIx64, p, vm_owner_kind_name(o->kind), o->id,
				 addr, vm_owner_kind_name(f->kind), f->id,
				 f->addr);
			return 1;
		}
	}
	c->next = e;
	return 0;
}

static void ref_compare(const struct ref *r, const struct vm_machine *m,
			uint64_t step)
{
	struct cmp c = { .r = r };

	vm_machine_frames(m, 0, r->nframes, cmp_cb, &c);
	ck_assert_msg(!c.bad, "step %" PRIu64 ": %s", step, c.why);
	ck_assert_msg(c.next == r->nframes, "step %" PRIu64 ": the listing "
		      "ends at pfn %#" PRIx64 " of %#" PRIx64, step, c.next,
		      r->nframes);
}

/* ---- the live objects, from core's answers ---- */

struct kobj {
	uint64_t va, size;
};
struct varea {
	uint64_t va, pages;
	bool guard;
};
struct pblock {
	uint64_t pa;
	unsigned order;
	bool has_va;
	uint64_t va;
};

#define MAX_LIVE 512
#define MAX_FREED 64
#define MAX_PROCS 10

struct world {
	struct prng rng;
	struct vm_machine *m;
	const struct vm_layout *l;
	uint32_t cpus;
	uint32_t pids[MAX_PROCS];
	unsigned npids;
	uint32_t last_pid, exited_pid;
	struct kobj k[MAX_LIVE];
	unsigned nk;
	uint64_t kfreed[MAX_FREED];
	unsigned nkfreed;
	struct varea v[MAX_LIVE];
	unsigned nv;
	uint64_t vfreed[MAX_FREED];
	unsigned nvfreed;
	struct pblock p[MAX_LIVE];
	unsigned np;
	struct pblock pfreed[MAX_FREED];
	unsigned npfreed;
	/* Statistics, to show that the mix reached what it should. */
	unsigned ok[VM_OP_TYPE_END];
	unsigned enomem;
};

static void remember_u64(uint64_t *a, unsigned *n, uint64_t v)
{
	if (*n == MAX_FREED) {
		memmove(a, a + 1, (MAX_FREED - 1) * sizeof(*a));
		(*n)--;
	}
	a[(*n)++] = v;
}

static bool kobj_live(const struct world *w, uint64_t va)
{
	for (unsigned i = 0; i < w->nk; i++)
		if (w->k[i].va == va)
			return true;
	return false;
}

static bool varea_live(const struct world *w, uint64_t va)
{
	for (unsigned i = 0; i < w->nv; i++)
		if (w->v[i].va == va)
			return true;
	return false;
}

static bool pblock_live(const struct world *w, uint64_t pa, unsigned order)
{
	for (unsigned i = 0; i < w->np; i++)
		if (w->p[i].pa == pa && w->p[i].order == order)
			return true;
	return false;
}

static uint32_t cpu_pid(const struct world *w, uint32_t cpu)
{
	uint32_t pid;
	uint64_t cr3;

	ck_assert_int_eq(vm_cpu_get(w->m, cpu, &pid, &cr3), 0);
	return pid;
}

static uint32_t running_elsewhere(const struct world *w, uint32_t cpu,
				  uint32_t pid)
{
	for (uint32_t c = 0; c < w->cpus; c++)
		if (c != cpu && pid != 0 && cpu_pid(w, c) == pid)
			return 1;
	return 0;
}

/* gfp masks a request may carry; the last is GFP_ZONE_BAD. */
static uint32_t pick_gfp(struct prng *r, bool *bad)
{
	/* GFP_ATOMIC: __GFP_HIGH | __GFP_KSWAPD_RECLAIM */
	static const uint32_t atomic = 0x820u;
	const uint32_t choice[] = {
		VM_GFP_KERNEL, atomic, VM_GFP_KERNEL | VM_GFP_DMA,
		VM_GFP_KERNEL | VM_GFP_HIGHMEM, VM_GFP_HIGHUSER,
		VM_GFP_KERNEL | VM_GFP_DMA32, atomic | VM_GFP_DMA,
	};
	unsigned n = sizeof(choice) / sizeof(choice[0]);

	*bad = false;
	if (chance(r, 3)) {
		*bad = true;
		return VM_GFP_KERNEL | VM_GFP_DMA | VM_GFP_HIGHMEM;
	}
	return choice[below(r, n)];
}

/* What the test knows about an operation's outcome before applying it. */
enum expect { EXPECT_ANY, EXPECT_OK, EXPECT_FAIL };

struct plan {
	struct vm_op op;
	enum expect expect;
	int code;        /* with EXPECT_FAIL: the code, or 0 for any */
	const char *what;
};

static void plan_fail(struct plan *p, int code, const char *what)
{
	p->expect = EXPECT_FAIL;
	p->code = code;
	p->what = what;
}

static uint64_t page_down(uint64_t v)
{
	return v & ~(VM_PAGE_SIZE - 1);
}

static bool gen_create(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	struct vm_op *op = &pl->op;
	uint64_t *seg = &op->u.create.text;

	if (w->npids >= MAX_PROCS)
		return false;
	op->type = VM_OP_PROCESS_CREATE;
	snprintf(op->u.create.name, sizeof(op->u.create.name), "proc%u",
		 (unsigned)below(r, 1000));
	for (int i = 0; i < 4; i++) {
		unsigned c = (unsigned)below(r, 4);

		seg[i] = c == 0 ? 0
			 : c == 1 ? VM_SEG_DEFAULT
				  : below(r, 64 * 1024) + 1; /* not aligned */
	}
	/* Now and then a stack too large for a small machine's RAM. */
	if (chance(r, 4))
		op->u.create.stack = 512 * VM_MiB;
	/* A segment larger than the user address space: never valid. */
	if (chance(r, 2)) {
		op->u.create.data = w->l->task_size + VM_PAGE_SIZE;
		plan_fail(pl, VM_ERANGE, "segment beyond user space");
	}
	op->u.create.populate = chance(r, 70);
	return true;
}

static bool gen_exit(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;

	pl->op.type = VM_OP_PROCESS_EXIT;
	if (w->npids == 0 || chance(r, 10)) {
		pl->op.u.exit.pid = w->exited_pid
					    ? w->exited_pid
					    : 100000 + (uint32_t)below(r, 10);
		plan_fail(pl, VM_ENOENT, "exit of a missing pid");
		return true;
	}
	pl->op.u.exit.pid = w->pids[below(r, w->npids)];
	pl->expect = EXPECT_OK;
	return true;
}

static bool gen_kmalloc(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	unsigned c = (unsigned)below(r, 100);
	bool bad;

	if (w->nk >= MAX_LIVE)
		return false;
	pl->op.type = VM_OP_KMALLOC;
	pl->op.u.kmalloc.gfp = pick_gfp(r, &bad);
	if (c < 5)
		pl->op.u.kmalloc.size = 0;
	else if (c < 65)
		pl->op.u.kmalloc.size = 1 + below(r, VM_KMALLOC_MAX_CACHE);
	else if (c < 92)
		pl->op.u.kmalloc.size = VM_KMALLOC_MAX_CACHE + 1 +
					below(r, VM_KMALLOC_MAX_SIZE -
						     VM_KMALLOC_MAX_CACHE);
	else
		pl->op.u.kmalloc.size = VM_KMALLOC_MAX_SIZE + 1 +
					below(r, VM_MiB);
	if (bad)
		plan_fail(pl, VM_EINVAL, "kmalloc with GFP_ZONE_BAD flags");
	else if (pl->op.u.kmalloc.size > VM_KMALLOC_MAX_SIZE)
		plan_fail(pl, VM_EINVAL, "kmalloc above KMALLOC_MAX_SIZE");
	else if (pl->op.u.kmalloc.size == 0)
		pl->expect = EXPECT_OK; /* ZERO_SIZE_PTR, no frame */
	return true;
}

static bool gen_kfree(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	unsigned c = (unsigned)below(r, 100);
	uint64_t *va = &pl->op.u.kfree.va;

	pl->op.type = VM_OP_KFREE;
	if (c < 55 && w->nk) {
		*va = w->k[below(r, w->nk)].va;
		pl->expect = EXPECT_OK;
	} else if (c < 60) {
		*va = chance(r, 50) ? 0 : VM_ZERO_SIZE_PTR;
		pl->expect = EXPECT_OK; /* kfree(NULL), kfree(ZERO_SIZE_PTR) */
	} else if (c < 72 && w->nkfreed) {
		/* Freed before: live only if kmalloc handed it out again. */
		*va = w->kfreed[below(r, w->nkfreed)];
		if (kobj_live(w, *va))
			pl->expect = EXPECT_OK;
		else
			plan_fail(pl, 0, "kfree of a freed object");
	} else if (c < 84 && w->nk) {
		const struct kobj *k = &w->k[below(r, w->nk)];

		if (k->size < 2)
			return false;
		*va = k->va + 1 + below(r, k->size - 1);
		plan_fail(pl, VM_EINTERIOR, "kfree of an interior pointer");
	} else if (c < 94) {
		if (w->nv)
			*va = w->v[below(r, w->nv)].va;
		else
			*va = w->l->vmalloc_start + VM_PAGE_SIZE * below(r, 64);
		plan_fail(pl, VM_EWRONGFREE, "kfree of a vmalloc address");
	} else {
		for (unsigned i = 0; i < w->np; i++)
			if (w->p[i].has_va) {
				*va = w->p[i].va;
				plan_fail(pl, VM_EWRONGFREE,
					  "kfree of an alloc_pages block");
				return true;
			}
		return false;
	}
	return true;
}

static bool gen_vmalloc(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;

	if (w->nv >= MAX_LIVE)
		return false;
	pl->op.type = VM_OP_VMALLOC;
	pl->op.u.vmalloc.guard = chance(r, 70);
	if (chance(r, 3)) {
		pl->op.u.vmalloc.size = 0;
		plan_fail(pl, VM_EINVAL, "vmalloc of 0 bytes");
		return true;
	}
	/* 1 .. 64 pages, the size not always a multiple of a page. */
	pl->op.u.vmalloc.size = below(r, 64) * VM_PAGE_SIZE + 1 +
				below(r, VM_PAGE_SIZE);
	return true;
}

static bool gen_vfree(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	unsigned c = (unsigned)below(r, 100);
	uint64_t *va = &pl->op.u.vfree.va;

	pl->op.type = VM_OP_VFREE;
	if (c < 60 && w->nv) {
		*va = w->v[below(r, w->nv)].va;
		pl->expect = EXPECT_OK;
	} else if (c < 75 && w->nvfreed) {
		*va = w->vfreed[below(r, w->nvfreed)];
		if (varea_live(w, *va))
			pl->expect = EXPECT_OK;
		else
			plan_fail(pl, 0, "vfree of a freed area");
	} else if (c < 87 && w->nv) {
		const struct varea *a = &w->v[below(r, w->nv)];
		uint64_t span = (a->pages + a->guard) * VM_PAGE_SIZE;

		*va = a->va + 1 + below(r, span - 1);
		plan_fail(pl, VM_EINTERIOR, "vfree inside an area");
	} else if (c < 94 && w->nk) {
		*va = w->k[below(r, w->nk)].va;
		plan_fail(pl, VM_EWRONGFREE, "vfree of a kmalloc address");
	} else if (w->l->arch->is64 && w->npids) {
		struct vm_process_info pi;

		ck_assert_int_eq(
			vm_process_get(w->m, w->pids[below(r, w->npids)], &pi),
			0);
		*va = pi.kstack;
		plan_fail(pl, VM_EWRONGFREE, "vfree of a kernel stack");
	} else {
		return false;
	}
	return true;
}

static uint32_t pick_pid(struct world *w, struct plan *pl)
{
	if (w->npids == 0 || chance(&w->rng, 4)) {
		plan_fail(pl, VM_ENOENT, "a missing pid");
		return w->exited_pid ? w->exited_pid : 99999;
	}
	return w->pids[below(&w->rng, w->npids)];
}

/* A random region of pid, from core's listing; false when it has none. */
static bool pick_region(struct world *w, uint32_t pid,
			struct vm_region_info *ri)
{
	struct vm_process_info pi;

	if (vm_process_get(w->m, pid, &pi) || pi.nregions == 0)
		return false;
	ck_assert_int_eq(
		vm_process_region(w->m, pid,
				  (uint32_t)below(&w->rng, pi.nregions), ri),
		0);
	return true;
}

static bool gen_mmap(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	struct vm_op *op = &pl->op;
	struct vm_region_info ri;
	unsigned c = (unsigned)below(r, 100);

	op->type = VM_OP_MMAP;
	op->u.mmap.pid = pick_pid(w, pl);
	op->u.mmap.prot = (uint8_t)below(r, 8);
	op->u.mmap.populate = chance(r, 50);
	op->u.mmap.length = below(r, 32) * VM_PAGE_SIZE + 1 +
			    below(r, VM_PAGE_SIZE);
	/* Now and then 4-20 MiB: populated, more than a small machine has. */
	if (chance(r, 4))
		op->u.mmap.length = (1024 + below(r, 4096)) * VM_PAGE_SIZE;
	if (pl->expect == EXPECT_FAIL)
		return true;
	if (chance(r, 3)) {
		op->u.mmap.length = 0;
		plan_fail(pl, VM_EINVAL, "mmap of length 0");
		return true;
	}
	if (c < 40)
		return true; /* top-down from mmap_base */
	op->u.mmap.has_addr = true;
	if (c < 65) {
		/* A hint: free, or on an existing region (then top-down). */
		if (chance(r, 50) && pick_region(w, op->u.mmap.pid, &ri))
			op->u.mmap.addr = ri.start;
		else
			op->u.mmap.addr = 0x10000 + below(r, w->l->mmap_base);
		return true;
	}
	op->u.mmap.fixed = true;
	if (chance(r, 70) && pick_region(w, op->u.mmap.pid, &ri)) {
		/* Over an existing region: it is replaced where they meet. */
		uint64_t pages = (ri.end - ri.start) / VM_PAGE_SIZE;

		op->u.mmap.addr = ri.start + below(r, pages) * VM_PAGE_SIZE;
		if (chance(r, 30) && op->u.mmap.addr >= ri.start + VM_PAGE_SIZE)
			op->u.mmap.addr -= VM_PAGE_SIZE; /* from before it */
	} else {
		op->u.mmap.addr =
			page_down(0x10000 + below(r, w->l->mmap_base));
	}
	if (chance(r, 4)) {
		op->u.mmap.addr |= 1 + below(r, VM_PAGE_SIZE - 1);
		plan_fail(pl, VM_EINVAL, "fixed mmap at an unaligned address");
	}
	return true;
}

static bool gen_munmap(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	struct vm_op *op = &pl->op;
	struct vm_region_info ri;
	uint64_t pages, off, len;

	op->type = VM_OP_MUNMAP;
	op->u.munmap.pid = pick_pid(w, pl);
	op->u.munmap.addr = 0x10000;
	op->u.munmap.length = VM_PAGE_SIZE;
	if (pl->expect == EXPECT_FAIL)
		return true;
	if (!pick_region(w, op->u.munmap.pid, &ri)) {
		/* Nothing mapped there: a valid no-op. */
		op->u.munmap.addr =
			page_down(0x10000 + below(r, w->l->mmap_base));
		pl->expect = EXPECT_OK;
		return true;
	}
	pages = (ri.end - ri.start) / VM_PAGE_SIZE;
	switch (below(r, 4)) {
	case 0: /* the whole region */
		off = 0;
		len = pages;
		break;
	case 1: /* from the middle to past its end (maybe into the next) */
		off = below(r, pages);
		len = pages - off + below(r, 8);
		break;
	case 2: /* a hole in the middle: splits the region */
		if (pages < 3)
			return false;
		off = 1 + below(r, pages - 2);
		len = 1 + below(r, pages - 1 - off);
		break;
	default: /* the head */
		off = 0;
		len = 1 + below(r, pages);
		break;
	}
	op->u.munmap.addr = ri.start + off * VM_PAGE_SIZE;
	/* The length need not be a multiple of a page: it rounds up. */
	op->u.munmap.length = len * VM_PAGE_SIZE - below(r, VM_PAGE_SIZE);
	if (op->u.munmap.addr + len * VM_PAGE_SIZE <= w->l->task_size)
		pl->expect = EXPECT_OK;
	if (chance(r, 5)) {
		op->u.munmap.addr += 1 + below(r, VM_PAGE_SIZE - 1);
		plan_fail(pl, VM_EINVAL, "munmap at an unaligned address");
	}
	return true;
}

static bool gen_brk(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	struct vm_op *op = &pl->op;
	struct vm_process_info pi;

	op->type = VM_OP_BRK;
	op->u.brk.pid = pick_pid(w, pl);
	if (pl->expect == EXPECT_FAIL)
		return true;
	ck_assert_int_eq(vm_process_get(w->m, op->u.brk.pid, &pi), 0);
	if (chance(r, 50)) {
		op->u.brk.absolute = true;
		op->u.brk.addr = pi.brk_start + below(r, pi.brk - pi.brk_start +
							     16 * VM_PAGE_SIZE);
		if (chance(r, 5)) {
			op->u.brk.addr = pi.brk_start - 1;
			plan_fail(pl, VM_EINVAL, "brk below the heap start");
		}
	} else {
		int64_t span = (int64_t)(pi.brk - pi.brk_start);

		if (chance(r, 40) && span > 0)
			op->u.brk.increment =
				-(int64_t)below(r, (uint64_t)span + 1);
		else
			op->u.brk.increment =
				(int64_t)below(r, 16 * VM_PAGE_SIZE);
		if (chance(r, 5)) {
			op->u.brk.increment = -span - 1;
			plan_fail(pl, VM_EINVAL,
				  "brk shrinking past the start");
		}
	}
	return true;
}

static bool gen_alloc_pages(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	bool bad;

	if (w->np >= MAX_LIVE)
		return false;
	pl->op.type = VM_OP_ALLOC_PAGES;
	pl->op.u.alloc_pages.gfp = pick_gfp(r, &bad);
	pl->op.u.alloc_pages.order = chance(r, 70) ? (uint32_t)below(r, 4)
						   : (uint32_t)below(r, 11);
	if (chance(r, 2)) {
		pl->op.u.alloc_pages.order = VM_MAX_ORDER + 1;
		plan_fail(pl, VM_EINVAL, "alloc_pages above MAX_PAGE_ORDER");
	} else if (bad) {
		plan_fail(pl, VM_EINVAL, "alloc_pages with GFP_ZONE_BAD flags");
	}
	return true;
}

static bool gen_free_pages(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	unsigned c = (unsigned)below(r, 100);
	struct vm_op *op = &pl->op;

	op->type = VM_OP_FREE_PAGES;
	if (c < 65 && w->np) {
		const struct pblock *b = &w->p[below(r, w->np)];

		op->u.free_pages.pa = b->pa;
		op->u.free_pages.order = b->order;
		pl->expect = EXPECT_OK;
	} else if (c < 80 && w->np) {
		const struct pblock *b = &w->p[below(r, w->np)];

		op->u.free_pages.pa = b->pa;
		op->u.free_pages.order =
			(b->order + 1 + (unsigned)below(r, 10)) %
			(VM_MAX_ORDER + 1);
		plan_fail(pl, VM_EORDER, "free_pages with the wrong order");
	} else if (c < 90 && w->npfreed) {
		const struct pblock *b = &w->pfreed[below(r, w->npfreed)];

		op->u.free_pages.pa = b->pa;
		op->u.free_pages.order = b->order;
		if (pblock_live(w, b->pa, b->order))
			pl->expect = EXPECT_OK;
		else
			plan_fail(pl, 0, "free_pages of a freed block");
	} else if (w->np) {
		const struct pblock *b = &w->p[below(r, w->np)];

		if (b->order == 0)
			return false;
		op->u.free_pages.pa =
			b->pa +
			VM_PAGE_SIZE * (1 + below(r, (1ULL << b->order) - 1));
		op->u.free_pages.order = b->order;
		plan_fail(pl, VM_EINTERIOR, "free_pages inside a block");
	} else {
		return false;
	}
	return true;
}

static bool gen_switch(struct world *w, struct plan *pl)
{
	struct prng *r = &w->rng;
	struct vm_op *op = &pl->op;
	uint32_t cpu = (uint32_t)below(r, w->cpus), other;
	unsigned c = (unsigned)below(r, 100);

	op->type = VM_OP_SWITCH;
	op->u.sw.cpu = cpu;
	other = cpu_pid(w, (cpu + 1) % w->cpus);
	if (c < 4) {
		op->u.sw.cpu = w->cpus + (uint32_t)below(r, 3);
		op->u.sw.pid = 0;
		plan_fail(pl, VM_ENOENT, "switch on a missing CPU");
	} else if (c < 12) {
		op->u.sw.pid = w->exited_pid ? w->exited_pid : 77777;
		plan_fail(pl, VM_ENOENT, "switch to a missing pid");
	} else if (c < 25) {
		/* Itself: a no-op that still counts as an operation. */
		op->u.sw.pid = cpu_pid(w, cpu);
		pl->expect = EXPECT_OK;
	} else if (c < 40 && other != 0) {
		op->u.sw.pid = other;
		plan_fail(pl, VM_EBUSY, "switch to a task on another CPU");
	} else if (c < 50 || w->npids == 0) {
		op->u.sw.pid = 0;
		pl->expect = EXPECT_OK;
	} else {
		op->u.sw.pid = w->pids[below(r, w->npids)];
		if (running_elsewhere(w, cpu, op->u.sw.pid))
			plan_fail(pl, VM_EBUSY,
				  "switch to a task on another CPU");
		else
			pl->expect = EXPECT_OK;
	}
	return true;
}

static void gen(struct world *w, struct plan *pl)
{
	static bool (*const gens[])(struct world *, struct plan *) = {
		gen_create, gen_exit, gen_kmalloc, gen_kfree, gen_vmalloc,
		gen_vfree, gen_mmap, gen_munmap, gen_brk, gen_alloc_pages,
		gen_free_pages, gen_switch,
	};
	static const unsigned weight[] = {
		6, 3, 12, 9, 5, 4, 9, 6, 5, 9, 6, 6,
	};
	unsigned total = 0;

	for (unsigned i = 0; i < sizeof(weight) / sizeof(weight[0]); i++)
		total += weight[i];
	for (;;) {
		unsigned x = (unsigned)below(&w->rng, total), i = 0;

		while (x >= weight[i])
			x -= weight[i++];
		memset(pl, 0, sizeof(*pl));
		pl->expect = EXPECT_ANY;
		if (gens[i](w, pl))
			return;
	}
}

/* Updates the live objects after a successful operation. */
static void record(struct world *w, const struct vm_op *op,
		   const struct vm_op_result *res)
{
	const struct vm_layout *l = w->l;

	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		/* Pids 1, 2, ... never reused (SPEC 1.5). */
		ck_assert_uint_eq(res->u.create.pid, w->last_pid + 1);
		w->last_pid = res->u.create.pid;
		w->pids[w->npids++] = res->u.create.pid;
		break;
	case VM_OP_PROCESS_EXIT:
		for (unsigned i = 0; i < w->npids; i++)
			if (w->pids[i] == op->u.exit.pid) {
				w->pids[i] = w->pids[--w->npids];
				break;
			}
		w->exited_pid = op->u.exit.pid;
		break;
	case VM_OP_KMALLOC:
		if (op->u.kmalloc.size == 0) {
			ck_assert(res->u.kmalloc.zero);
			ck_assert_uint_eq(res->u.kmalloc.va, VM_ZERO_SIZE_PTR);
			break;
		}
		/* A kernel logical address, never highmem (SPEC 1.6). */
		ck_assert_uint_eq(res->u.kmalloc.va,
				  l->page_offset + res->u.kmalloc.pa);
		ck_assert_uint_lt(res->u.kmalloc.pa, l->lowmem_bytes);
		if (op->u.kmalloc.gfp & VM_GFP_DMA)
			ck_assert_int_eq(res->u.kmalloc.zone, VM_ZONE_DMA);
		w->k[w->nk].va = res->u.kmalloc.va;
		w->k[w->nk].size = op->u.kmalloc.size;
		w->nk++;
		break;
	case VM_OP_KFREE:
		for (unsigned i = 0; i < w->nk; i++)
			if (w->k[i].va == op->u.kfree.va) {
				w->k[i] = w->k[--w->nk];
				remember_u64(w->kfreed, &w->nkfreed,
					     op->u.kfree.va);
				break;
			}
		break;
	case VM_OP_VMALLOC:
		ck_assert_uint_ge(res->u.vmalloc.va, l->vmalloc_start);
		ck_assert_uint_le(res->u.vmalloc.va + res->u.vmalloc.size,
				  l->vmalloc_end);
		ck_assert_int_ge(vm_vmalloc_at(w->m, res->u.vmalloc.va), 0);
		w->v[w->nv].va = res->u.vmalloc.va;
		w->v[w->nv].pages = res->u.vmalloc.pages;
		w->v[w->nv].guard = res->u.vmalloc.guard;
		w->nv++;
		break;
	case VM_OP_VFREE:
		for (unsigned i = 0; i < w->nv; i++)
			if (w->v[i].va == op->u.vfree.va) {
				w->v[i] = w->v[--w->nv];
				remember_u64(w->vfreed, &w->nvfreed,
					     op->u.vfree.va);
				break;
			}
		break;
	case VM_OP_ALLOC_PAGES:
		ck_assert_uint_eq(res->u.alloc_pages.order,
				  op->u.alloc_pages.order);
		ck_assert_uint_eq(
			res->u.alloc_pages.pa %
				(VM_PAGE_SIZE << op->u.alloc_pages.order),
			0);
		w->p[w->np].pa = res->u.alloc_pages.pa;
		w->p[w->np].order = res->u.alloc_pages.order;
		w->p[w->np].has_va = res->u.alloc_pages.has_va;
		w->p[w->np].va = res->u.alloc_pages.va;
		w->np++;
		break;
	case VM_OP_FREE_PAGES:
		for (unsigned i = 0; i < w->np; i++)
			if (w->p[i].pa == op->u.free_pages.pa &&
			    w->p[i].order == op->u.free_pages.order) {
				if (w->npfreed == MAX_FREED) {
					memmove(w->pfreed, w->pfreed + 1,
						(MAX_FREED - 1) *
							sizeof(*w->pfreed));
					w->npfreed--;
				}
				w->pfreed[w->npfreed++] = w->p[i];
				w->p[i] = w->p[--w->np];
				break;
			}
		break;
	default:
		break;
	}
}

/* ---- the run ---- */

struct variant {
	const char *arch;
	uint64_t memory;
	uint64_t seed;
};

/*
 * i386 with 2 GiB has highmem; i386-pae with 32 MiB (the least a machine
 * may have) runs out of memory often; x86_64 with 5 GiB has all of DMA,
 * DMA32 and Normal.
 */
static const struct variant variants[] = {
	{ "i386", 2 * VM_GiB, 11 },
	{ "i386-pae", 32 * VM_MiB, 22 },
	{ "x86_64", 5 * VM_GiB, 33 },
	{ "x86_64-la57", 256 * VM_MiB, 44 },
};

static struct vm_machine *boot(const struct variant *v)
{
	struct vm_config c;

	tu_config(&c, v->arch, v->memory);
	c.cpus = 2;
	c.seed = v->seed;
	return tu_boot_config(&c);
}

static void assert_checks(const struct vm_machine *m, uint64_t step)
{
	struct vm_error e = { 0 };

	ck_assert_msg(vm_machine_check(m, &e) == 0,
		      "step %" PRIu64 ": invariant broken: %s", step, e.detail);
}

/* Encodes op, decodes it, and checks that the decoded op encodes the same. */
static void keep_record(const struct vm_op *op, struct vm_op **log,
			size_t *nlog, size_t *caplog)
{
	uint8_t *a, *b;
	size_t alen, blen;
	struct vm_op d;

	ck_assert_int_eq(vm_op_serialize(op, &a, &alen), 0);
	ck_assert_int_eq(vm_op_decode(a, alen, &d), 0);
	ck_assert_int_eq(d.type, op->type);
	ck_assert_int_eq(vm_op_serialize(&d, &b, &blen), 0);
	ck_assert_uint_eq(alen, blen);
	ck_assert_msg(memcmp(a, b, alen) == 0, "%s record re-encodes "
		      "differently", vm_op_name(op->type));
	free(a);
	free(b);
	if (*nlog == *caplog) {
		*caplog = *caplog ? 2 * *caplog : 256;
		*log = realloc(*log, *caplog * sizeof(**log));
		ck_assert_ptr_nonnull(*log);
	}
	(*log)[(*nlog)++] = d;
}

START_TEST(random_against_reference)
{
	const struct variant *v = &variants[_i];
	struct world *w = calloc(1, sizeof(*w));
	struct ref ref;
	struct vm_op *log = NULL;
	size_t nlog = 0, caplog = 0;
	uint64_t steps = 300ULL * tu_scale(), nok = 0;
	unsigned nfail = 0;

	ck_assert_ptr_nonnull(w);
	w->rng.s = 0x5eed0000ULL + v->seed;
	w->m = boot(v);
	w->l = vm_machine_layout(w->m);
	w->cpus = vm_machine_config(w->m)->cpus;
	ref_init(&ref, w->m);
	ref_compare(&ref, w->m, 0);
	assert_checks(w->m, 0);

	for (uint64_t step = 1; step <= steps; step++) {
		struct plan pl;
		struct vm_op_result res;
		struct vm_error e = { 0 };
		uint64_t digest = vm_machine_digest(w->m);
		uint64_t version = vm_machine_version(w->m);
		uint64_t inuse = vm_machine_frames_in_use(w->m);
		int rc;

		gen(w, &pl);
		ref_begin(&ref);
		rc = vm_machine_apply(w->m, &pl.op, &res, &e);
		ck_assert_msg(!ref.failed, "step %" PRIu64 " (%s): %s", step,
			      vm_op_name(pl.op.type), ref.why);
		if (pl.expect == EXPECT_OK)
			ck_assert_msg(rc == 0,
				      "step %" PRIu64 ": %s refused: %s (%s)",
				      step, vm_op_name(pl.op.type),
				      vm_errname(rc), e.detail);
		if (pl.expect == EXPECT_FAIL) {
			bool as_planned = rc != 0 && (pl.code == 0 ||
						      rc == pl.code);
			const char *want = pl.code ? vm_errname(pl.code)
						   : "an error";

			ck_assert_msg(as_planned, "step %" PRIu64 ": %s: "
				      "expected %s, got %s (%s)", step, pl.what,
				      want, rc ? vm_errname(rc) : "success",
				      e.detail);
		}
		if (rc) {
			/* Refused: the machine is exactly as before. */
			ck_assert_msg(e.detail[0] != '\0', "step %" PRIu64
				      ": %s refused without a detail", step,
				      vm_op_name(pl.op.type));
			ref_rollback(&ref);
			ck_assert_msg(vm_machine_digest(w->m) == digest,
				      "step %" PRIu64 ": refused %s (%s) "
				      "changed the digest", step,
				      vm_op_name(pl.op.type), e.detail);
			ck_assert_uint_eq(vm_machine_version(w->m), version);
			ck_assert_uint_eq(vm_machine_frames_in_use(w->m),
					  inuse);
			w->enomem += rc == VM_ENOMEM;
			nfail++;
		} else {
			nok++;
			w->ok[pl.op.type]++;
			record(w, &pl.op, &res);
			keep_record(&pl.op, &log, &nlog, &caplog);
		}
		ref_compare(&ref, w->m, step);
		assert_checks(w->m, step);
		ck_assert_uint_eq(vm_machine_version(w->m), nok);
	}
	/* The mix reached every kind of operation and some refusals. */
	for (int t = VM_OP_PROCESS_CREATE; t < VM_OP_TYPE_END; t++)
		ck_assert_msg(w->ok[t] > 0, "%s: no %s succeeded", v->arch,
			      vm_op_name((enum vm_op_type)t));
	ck_assert_uint_gt(nfail, 0);
	ck_assert_uint_gt(ref.events, 0);
	if (v->memory <= 64 * VM_MiB)
		ck_assert_msg(w->enomem > 0,
			      "%s %" PRIu64 " MiB never ran out of memory",
			      v->arch, (uint64_t)(v->memory / VM_MiB));

	/* Replay the decoded records on a fresh machine (SPEC 1.9). */
	{
		struct vm_machine *r = boot(v);
		uint8_t *a, *b;
		size_t alen, blen;

		for (size_t i = 0; i < nlog; i++) {
			struct vm_error e = { 0 };
			int rc = vm_machine_apply(r, &log[i], NULL, &e);

			ck_assert_msg(rc == 0, "replay of record %zu (%s) "
				      "refused: %s", i, vm_op_name(log[i].type),
				      e.detail);
		}
		ck_assert_uint_eq(vm_machine_version(r),
				  vm_machine_version(w->m));
		ck_assert_uint_eq(vm_machine_digest(r),
				  vm_machine_digest(w->m));
		vm_state_serialize(w->m, &a, &alen);
		vm_state_serialize(r, &b, &blen);
		ck_assert_uint_eq(alen, blen);
		ck_assert_msg(memcmp(a, b, alen) == 0,
			      "replayed state differs in its canonical bytes");
		free(a);
		free(b);
		vm_machine_free(r);
	}
	vm_machine_set_observer(w->m, NULL, NULL);
	vm_machine_free(w->m);
	ref_release(&ref);
	free(log);
	free(w);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("random");
	TCase *tc = tcase_create("random");

	/* Scaled runs take longer than Check's default 4 s. */
	tcase_set_timeout(tc, 300.0 * tu_scale());
	tcase_add_loop_test(tc, random_against_reference, 0,
			    (int)(sizeof(variants) / sizeof(variants[0])));
	suite_add_tcase(s, tc);
	return tu_run(s);
}
