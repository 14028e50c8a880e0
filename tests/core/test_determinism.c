/*
 * test_determinism.c - a machine is a function of its creation parameters
 * and its operations, and its digest tells states apart (SPEC 1.9).
 *
 * - the same scenario gives the same digest in separate processes whose
 *   host allocation histories differ;
 * - the digest changes when any single piece of state differs: a frame's
 *   owner, one PTE bit, the order of a free list, a CPU's CR3, the PRNG;
 *   it does not change with the version alone;
 * - serialise -> load -> serialise is byte-identical, and a clone keeps
 *   digest and version;
 * - a refused operation changes nothing, also when it runs out of memory
 *   half way;
 * - host memory follows use, not simulated RAM (SPEC 1.3).
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/buddy.h"
#include "core/error.h"
#include "core/gfp.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/owner.h"
#include "core/process.h"
#include "core/state.h"
#include "core/testing.h"
#include "core/translate.h"
#include "tests/core/testutil.h"

static int make_machine(const char *arch, uint64_t memory, uint32_t cpus,
			uint64_t seed, uint64_t churn, struct vm_machine **m,
			struct vm_error *e)
{
	struct vm_config c;

	tu_config(&c, arch, memory);
	c.cpus = cpus;
	c.seed = seed;
	c.churn = churn;
	return vm_machine_create(&c, m, e);
}

static struct vm_machine *boot(const char *arch, uint64_t memory,
			       uint32_t cpus, uint64_t seed, uint64_t churn)
{
	struct vm_machine *m = NULL;
	struct vm_error e = { 0 };
	int rc = make_machine(arch, memory, cpus, seed, churn, &m, &e);

	ck_assert_msg(rc == 0, "%s", e.detail);
	return m;
}

/*
 * A sequence of operations that stops at the first refusal and remembers
 * why: usable in a child process, where a Check assertion cannot report.
 */
struct run {
	struct vm_machine *m;
	int failed;
	char why[256];
};

static int run_apply(struct run *r, const struct vm_op *op,
		     struct vm_op_result *res)
{
	struct vm_error e = { 0 };
	struct vm_op_result scratch;
	int rc;

	if (r->failed)
		return -1;
	rc = vm_machine_apply(r->m, op, res ? res : &scratch, &e);
	if (rc) {
		r->failed = 1;
		snprintf(r->why, sizeof(r->why), "%s refused: %s (%s)",
			 vm_op_name(op->type), vm_errname(rc), e.detail);
		return -1;
	}
	return 0;
}

static uint32_t op_create(struct run *r, uint64_t text, uint64_t data,
			  uint64_t heap, uint64_t stack, bool populate)
{
	struct vm_op op = tu_op_create("task", text, data, heap, stack,
				       populate);
	struct vm_op_result res;

	return run_apply(r, &op, &res) ? 0 : res.u.create.pid;
}

static uint32_t op_create_default(struct run *r)
{
	return op_create(r, VM_SEG_DEFAULT, VM_SEG_DEFAULT, VM_SEG_DEFAULT,
			 VM_SEG_DEFAULT, true);
}

static void op_exit(struct run *r, uint32_t pid)
{
	struct vm_op op = tu_op_exit(pid);

	run_apply(r, &op, NULL);
}

static uint64_t op_kmalloc(struct run *r, uint64_t size, uint32_t gfp)
{
	struct vm_op op = tu_op_kmalloc(size, gfp);
	struct vm_op_result res;

	return run_apply(r, &op, &res) ? 0 : res.u.kmalloc.va;
}

static void op_kfree(struct run *r, uint64_t va)
{
	struct vm_op op = tu_op_kfree(va);

	run_apply(r, &op, NULL);
}

static uint64_t op_vmalloc(struct run *r, uint64_t size, bool guard)
{
	struct vm_op op = tu_op_vmalloc(size, guard);
	struct vm_op_result res;

	return run_apply(r, &op, &res) ? 0 : res.u.vmalloc.va;
}

static void op_vfree(struct run *r, uint64_t va)
{
	struct vm_op op = tu_op_vfree(va);

	run_apply(r, &op, NULL);
}

static uint64_t op_pages(struct run *r, uint32_t order, uint32_t gfp)
{
	struct vm_op op = tu_op_alloc_pages(order, gfp);
	struct vm_op_result res;

	return run_apply(r, &op, &res) ? 0 : res.u.alloc_pages.pa;
}

static void op_free_pages(struct run *r, uint64_t pa, uint32_t order)
{
	struct vm_op op = tu_op_free_pages(pa, order);

	run_apply(r, &op, NULL);
}

static uint64_t op_mmap(struct run *r, uint32_t pid, uint64_t addr,
			uint64_t length, unsigned prot, bool has_addr,
			bool fixed, bool populate)
{
	struct vm_op op = tu_op_mmap(pid, length, prot, has_addr, addr, fixed,
				     populate);
	struct vm_op_result res;

	return run_apply(r, &op, &res) ? 0 : res.u.mmap.start;
}

static void op_munmap(struct run *r, uint32_t pid, uint64_t addr,
		      uint64_t length)
{
	struct vm_op op = tu_op_munmap(pid, addr, length);

	run_apply(r, &op, NULL);
}

static void op_brk(struct run *r, uint32_t pid, bool absolute,
		   int64_t increment, uint64_t addr)
{
	struct vm_op op = tu_op_brk(pid, absolute, increment, addr);

	run_apply(r, &op, NULL);
}

static void op_switch(struct run *r, uint32_t cpu, uint32_t pid)
{
	struct vm_op op = tu_op_switch(cpu, pid);

	run_apply(r, &op, NULL);
}

static void run_check(const struct run *r)
{
	ck_assert_msg(!r->failed, "%s", r->why);
}

/* ---- the same scenario in separate processes ---- */

#define RW (VM_PROT_READ | VM_PROT_WRITE)
#define PG VM_PAGE_SIZE

/*
 * About fifty operations mixing every kind: processes, regions, brk,
 * kmalloc from several caches and kmalloc_large, vmalloc, the page
 * allocator, context switches, frees in an interleaved order.
 */
static void scenario(struct run *r)
{
	uint32_t a, b, c;
	uint64_t k1, k2, k3, kl, ks[5], v1, v2, v3, p1, p2, p3, m1, m2;
	struct vm_process_info pi;

	a = op_create_default(r);                              /* 1 */
	b = op_create(r, 2 * PG, 0, PG, 16 * PG, false);       /* 2 */
	k1 = op_kmalloc(r, 100, VM_GFP_KERNEL);                /* 3 */
	k2 = op_kmalloc(r, 3000, VM_GFP_KERNEL | VM_GFP_DMA);  /* 4 */
	kl = op_kmalloc(r, 20000, VM_GFP_KERNEL);              /* 5 */
	op_kmalloc(r, 0, VM_GFP_KERNEL);                       /* 6 */
	v1 = op_vmalloc(r, 5 * PG, true);                      /* 7 */
	v2 = op_vmalloc(r, PG, false);                         /* 8 */
	p1 = op_pages(r, 2, VM_GFP_KERNEL);                    /* 9 */
	p2 = op_pages(r, 0, VM_GFP_HIGHUSER);                  /* 10 */
	m1 = op_mmap(r, a, 0, 3 * PG, RW, false, false, true); /* 11 */
	m2 = op_mmap(r, a, 0x10000000, 5 * PG, VM_PROT_READ, true, false,
		     false);                                   /* 12 */
	op_mmap(r, a, m1 + PG, 2 * PG, VM_PROT_READ, true, true,
		true);                                         /* 13 */
	op_munmap(r, a, m2 + PG, 2 * PG);                      /* 14 */
	op_brk(r, a, false, 10000, 0);                         /* 15 */
	op_brk(r, a, false, -4096, 0);                         /* 16 */
	if (!r->failed && vm_process_get(r->m, a, &pi) == 0)
		op_brk(r, a, true, 0, pi.brk_start + 3 * PG);  /* 17 */
	op_switch(r, 0, a);                                    /* 18 */
	op_switch(r, 1, b);                                    /* 19 */
	op_switch(r, 0, 0);                                    /* 20 */
	op_kfree(r, k1);                                       /* 21 */
	op_vfree(r, v1);                                       /* 22 */
	op_free_pages(r, p1, 2);                               /* 23 */
	for (int i = 0; i < 5; i++)
		ks[i] = op_kmalloc(r, 64, VM_GFP_KERNEL);      /* 24-28 */
	op_kfree(r, ks[3]);                                    /* 29 */
	op_kfree(r, ks[1]);                                    /* 30 */
	c = op_create(r, 4 * PG, 2 * PG, 0, 8 * PG, true);     /* 31 */
	m1 = op_mmap(r, c, 0, 16 * PG, RW, false, false, true); /* 32 */
	op_munmap(r, c, m1 + 4 * PG, 5 * PG);                  /* 33 */
	op_exit(r, b);                                         /* 34 */
	v3 = op_vmalloc(r, 10 * PG, true);                     /* 35 */
	p3 = op_pages(r, 5, VM_GFP_KERNEL | VM_GFP_DMA);       /* 36 */
	k3 = op_kmalloc(r, VM_MiB, VM_GFP_KERNEL);             /* 37 */
	op_switch(r, 1, c);                                    /* 38 */
	op_exit(r, c);                                         /* 39 */
	op_free_pages(r, p3, 5);                               /* 40 */
	op_kfree(r, k3);                                       /* 41 */
	op_vfree(r, v3);                                       /* 42 */
	op_mmap(r, a, 0x20000000, 4 * PG, RW | VM_PROT_EXEC, true, true,
		true);                                         /* 43 */
	op_brk(r, a, false, 8192, 0);                          /* 44 */
	op_kmalloc(r, 8192, 0x820u /* GFP_ATOMIC */);          /* 45 */
	op_kfree(r, k2);                                       /* 46 */
	op_pages(r, 1, VM_GFP_KERNEL | VM_GFP_DMA32);          /* 47 */
	op_switch(r, 0, a);                                    /* 48 */
	op_switch(r, 0, a);                                    /* 49 */
	op_vmalloc(r, 3 * PG, true);                           /* 50 */
	op_kfree(r, kl);                                       /* 51 */
	op_vfree(r, v2);                                       /* 52 */
	op_free_pages(r, p2, 0);                               /* 53 */
}

struct outcome {
	int ok;
	uint64_t digest, version, nprocs;
	char why[256];
};

static void run_scenario(const char *arch, struct outcome *o)
{
	struct run r = { 0 };
	struct vm_error e = { 0 };

	memset(o, 0, sizeof(*o));
	if (make_machine(arch, 256 * VM_MiB, 2, 2024, VM_DEFAULT_CHURN, &r.m,
			 &e)) {
		snprintf(o->why, sizeof(o->why), "boot: %s", e.detail);
		return;
	}
	scenario(&r);
	o->ok = !r.failed;
	o->digest = vm_machine_digest(r.m);
	o->version = vm_machine_version(r.m);
	o->nprocs = vm_machine_nprocesses(r.m);
	memcpy(o->why, r.why, sizeof(o->why));
	vm_machine_free(r.m);
}

/*
 * Makes the host heap's history different from the parent's: a few
 * thousand malloc and free calls of seeded sizes, some blocks kept.
 * The kept blocks stay reachable from a static array, so that valgrind
 * (make check-valgrind) does not count them as leaked when the child
 * exits.
 */
static void churn_host_heap(uint64_t seed)
{
	enum { SLOTS = 257 };
	static void *slot[SLOTS];

	for (int i = 0; i < 4000; i++) {
		unsigned k = (unsigned)(tu_splitmix(&seed) % SLOTS);

		free(slot[k]);
		slot[k] = malloc(1 + tu_splitmix(&seed) % 65536);
		if (slot[k])
			memset(slot[k], 0xa5, 1);
	}
	for (int k = 0; k < SLOTS; k += 2)
		free(slot[k]); /* the odd ones stay, as a fragmented heap */
}

static pid_t spawn(const char *arch, uint64_t seed, int *rfd)
{
	int fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct outcome o;
		size_t off = 0;

		close(fds[0]);
		churn_host_heap(seed);
		run_scenario(arch, &o);
		while (off < sizeof(o)) {
			ssize_t n = write(fds[1], (char *)&o + off,
					  sizeof(o) - off);

			if (n <= 0 && errno != EINTR)
				_exit(3);
			if (n > 0)
				off += (size_t)n;
		}
		_exit(0);
	}
	close(fds[1]);
	*rfd = fds[0];
	return pid;
}

static void collect(pid_t pid, int fd, struct outcome *o)
{
	size_t off = 0;
	int status;

	while (off < sizeof(*o)) {
		ssize_t n = read(fd, (char *)o + off, sizeof(*o) - off);

		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	close(fd);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(same_scenario_same_digest_across_processes)
{
	struct outcome here, c1, c2;
	int fd1, fd2;
	pid_t p1 = spawn(tu_arches[_i], 1, &fd1);
	pid_t p2 = spawn(tu_arches[_i], 2, &fd2);

	run_scenario(tu_arches[_i], &here);
	collect(p1, fd1, &c1);
	collect(p2, fd2, &c2);
	ck_assert_msg(here.ok, "%s: %s", tu_arches[_i], here.why);
	ck_assert_msg(c1.ok && c2.ok, "%s: child: %s%s", tu_arches[_i], c1.why,
		      c2.why);
	ck_assert_uint_ge(here.version, 50);
	ck_assert_uint_eq(here.nprocs, 1);
	ck_assert_uint_eq(c1.version, here.version);
	ck_assert_uint_eq(c2.version, here.version);
	ck_assert_msg(c1.digest == here.digest && c2.digest == here.digest,
		      "%s: digests %#" PRIx64 " %#" PRIx64 " %#" PRIx64,
		      tu_arches[_i], here.digest, c1.digest, c2.digest);
}
END_TEST

/* ---- the digest sees every single difference ---- */

struct ranges {
	size_t n, cap;
	struct {
		uint64_t s, e;
		struct vm_owner o;
	} *r;
};

static int ranges_cb(void *ctx, uint64_t s, uint64_t e,
		     const struct vm_owner *o)
{
	struct ranges *rs = ctx;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? 2 * rs->cap : 256;
		rs->r = realloc(rs->r, rs->cap * sizeof(*rs->r));
		ck_assert_ptr_nonnull(rs->r);
	}
	memset(&rs->r[rs->n], 0, sizeof(rs->r[rs->n]));
	rs->r[rs->n].s = s;
	rs->r[rs->n].e = e;
	rs->r[rs->n].o = *o;
	rs->n++;
	return 0;
}

/* Whether two machines list the same owner for every frame. */
static bool same_frames(const struct vm_machine *a, const struct vm_machine *b)
{
	struct ranges ra = { 0 }, rb = { 0 };
	bool same;

	vm_machine_frames(a, 0, UINT64_MAX, ranges_cb, &ra);
	vm_machine_frames(b, 0, UINT64_MAX, ranges_cb, &rb);
	same = ra.n == rb.n;
	for (size_t i = 0; same && i < ra.n; i++)
		same = ra.r[i].s == rb.r[i].s && ra.r[i].e == rb.r[i].e &&
		       vm_owner_eq(&ra.r[i].o, &rb.r[i].o);
	free(ra.r);
	free(rb.r);
	return same;
}

/* Whether every zone has the same free blocks per order. */
static bool same_free_counts(const struct vm_machine *a,
			     const struct vm_machine *b)
{
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct vm_zone_info za, zb;

		if (!vm_machine_zone_populated(a, (enum vm_zone_id)z))
			continue;
		vm_machine_zone_info(a, (enum vm_zone_id)z, &za);
		vm_machine_zone_info(b, (enum vm_zone_id)z, &zb);
		if (za.free_pages != zb.free_pages ||
		    memcmp(za.free_blocks, zb.free_blocks,
			   sizeof(za.free_blocks)))
			return false;
	}
	return true;
}

/* kmalloc_large and alloc_pages of one order take the same block: only
 * the owner of its frames differs. */
START_TEST(digest_sees_frame_owner)
{
	struct vm_machine *m1 = boot(tu_arches[_i], 128 * VM_MiB, 1, 5, 0);
	struct vm_machine *m2 = boot(tu_arches[_i], 128 * VM_MiB, 1, 5, 0);
	struct run r1 = { .m = m1 }, r2 = { .m = m2 };
	uint64_t va, pa;
	const struct vm_layout *l = vm_machine_layout(m1);

	ck_assert_uint_eq(vm_machine_digest(m1), vm_machine_digest(m2));
	va = op_kmalloc(&r1, 16 * 1024, VM_GFP_KERNEL); /* order 2 */
	pa = op_pages(&r2, 2, VM_GFP_KERNEL);
	run_check(&r1);
	run_check(&r2);
	ck_assert_uint_eq(va - l->page_offset, pa);
	ck_assert_int_eq(vm_machine_owner(m1, pa >> VM_PAGE_SHIFT).kind,
			 VM_OWNER_KMALLOC_LARGE);
	ck_assert_int_eq(vm_machine_owner(m2, pa >> VM_PAGE_SHIFT).kind,
			 VM_OWNER_PAGE_ALLOC);
	ck_assert(same_free_counts(m1, m2));
	ck_assert_uint_eq(vm_machine_frames_in_use(m1),
			  vm_machine_frames_in_use(m2));
	ck_assert_uint_eq(vm_machine_version(m1), vm_machine_version(m2));
	ck_assert_uint_ne(vm_machine_digest(m1), vm_machine_digest(m2));
	vm_machine_free(m1);
	vm_machine_free(m2);
}
END_TEST

/* The leaf entry that maps va in pid's tables: its address and value. */
static void user_leaf(const struct vm_machine *m, uint32_t pid, uint64_t va,
		      uint64_t *entry_pa, uint64_t *entry)
{
	struct vm_translate_req q = { .va = va, .has_pid = true, .pid = pid };
	struct vm_translation t;
	struct vm_error e = { 0 };

	ck_assert_msg(vm_translate(m, &q, &t, &e) == 0, "%s", e.detail);
	ck_assert_msg(t.ok, "%#" PRIx64 " not mapped: %s", va, t.fault.reason);
	ck_assert_uint_gt(t.nwalk, 0);
	*entry_pa = t.walk[t.nwalk - 1].entry_pa;
	*entry = t.walk[t.nwalk - 1].entry;
}

START_TEST(digest_sees_one_pte_bit)
{
	struct vm_machine *m = boot(tu_arches[_i], 128 * VM_MiB, 1, 6, 64);
	struct run r = { .m = m };
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	uint32_t pid = op_create_default(&r);
	struct vm_region_info ri;
	uint64_t d0, v0, epa, e;

	run_check(&r);
	ck_assert_int_eq(vm_process_region(m, pid, 0, &ri), 0);
	user_leaf(m, pid, ri.start, &epa, &e);
	ck_assert_uint_eq(vm_test_phys_read(m, epa, a->entry_size), e);
	d0 = vm_machine_digest(m);
	v0 = vm_machine_version(m);
	vm_test_phys_write(m, epa, a->entry_size, e ^ VM_PTE_A);
	ck_assert_uint_ne(vm_machine_digest(m), d0);
	ck_assert_uint_eq(vm_machine_version(m), v0);
	/* The bit alone made the difference. */
	vm_test_phys_write(m, epa, a->entry_size, e);
	ck_assert_uint_eq(vm_machine_digest(m), d0);
	vm_machine_free(m);
}
END_TEST

/* Two frees in either order leave the same free frames, in a different
 * list order (SPEC 1.3: a free goes to the head of its list). */
START_TEST(digest_sees_free_list_order)
{
	struct vm_machine *m1 = boot(tu_arches[_i], 64 * VM_MiB, 1, 7, 0), *m2;
	struct run r1 = { .m = m1 }, r2;
	uint64_t p[8], a, c;

	for (int i = 0; i < 8; i++)
		p[i] = op_pages(&r1, 0, VM_GFP_KERNEL);
	run_check(&r1);
	/* A pristine machine hands out ascending frames. */
	for (int i = 1; i < 8; i++)
		ck_assert_uint_eq(p[i], p[0] + (uint64_t)i * VM_PAGE_SIZE);
	/* a and c = a + 2 pages, at even pfns: their buddies (the next
	 * frames) stay allocated, so neither free merges. */
	a = (p[0] >> VM_PAGE_SHIFT) % 2 ? p[1] : p[0];
	c = a + 2 * VM_PAGE_SIZE;
	m2 = vm_machine_clone(m1);
	r2.m = m2;
	r2.failed = 0;
	op_free_pages(&r1, a, 0);
	op_free_pages(&r1, c, 0);
	op_free_pages(&r2, c, 0);
	op_free_pages(&r2, a, 0);
	run_check(&r1);
	run_check(&r2);
	ck_assert(same_frames(m1, m2));
	ck_assert(same_free_counts(m1, m2));
	ck_assert_uint_eq(vm_machine_version(m1), vm_machine_version(m2));
	ck_assert_uint_ne(vm_machine_digest(m1), vm_machine_digest(m2));
	/* And the order shows: the next order-0 request takes the head. */
	ck_assert_uint_eq(op_pages(&r1, 0, VM_GFP_KERNEL), c);
	ck_assert_uint_eq(op_pages(&r2, 0, VM_GFP_KERNEL), a);
	vm_machine_free(m1);
	vm_machine_free(m2);
}
END_TEST

START_TEST(digest_sees_cr3)
{
	struct vm_machine *m = boot(tu_arches[_i], 128 * VM_MiB, 2, 8, 64);
	struct run r = { .m = m };
	uint32_t pid = op_create_default(&r);
	uint64_t d0 = vm_machine_digest(m), cr3;
	uint32_t cur;
	struct vm_process_info pi;

	run_check(&r);
	op_switch(&r, 1, pid);
	run_check(&r);
	ck_assert_int_eq(vm_cpu_get(m, 1, &cur, &cr3), 0);
	ck_assert_int_eq(vm_process_get(m, pid, &pi), 0);
	ck_assert_uint_eq(cur, pid);
	ck_assert_uint_eq(cr3, pi.pgd_pa);
	ck_assert_uint_ne(vm_machine_digest(m), d0);
	/* Back to the idle task: the state, and so the digest, as before. */
	op_switch(&r, 1, 0);
	run_check(&r);
	ck_assert_uint_eq(vm_machine_digest(m), d0);
	vm_machine_free(m);
}
END_TEST

START_TEST(digest_sees_prng_seed)
{
	/* Without churn the seed reaches nothing but the PRNG's state. */
	struct vm_machine *a = boot(tu_arches[_i], 64 * VM_MiB, 1, 1, 0);
	struct vm_machine *b = boot(tu_arches[_i], 64 * VM_MiB, 1, 2, 0);
	struct vm_machine *c = boot(tu_arches[_i], 64 * VM_MiB, 1, 1, 0);

	ck_assert(same_frames(a, b));
	ck_assert_uint_ne(vm_machine_digest(a), vm_machine_digest(b));
	ck_assert_uint_eq(vm_machine_digest(a), vm_machine_digest(c));
	vm_machine_free(a);
	vm_machine_free(b);
	vm_machine_free(c);
}
END_TEST

START_TEST(version_is_not_in_the_digest)
{
	struct vm_machine *m = boot(tu_arches[_i], 64 * VM_MiB, 2, 9, 64);
	struct run r = { .m = m };
	uint32_t pid = op_create_default(&r);
	uint64_t d, v, cr3_before, cr3_after;
	uint32_t cur;

	op_switch(&r, 0, pid);
	run_check(&r);
	d = vm_machine_digest(m);
	v = vm_machine_version(m);
	ck_assert_int_eq(vm_cpu_get(m, 0, &cur, &cr3_before), 0);
	/* Switching to the current task: counted, but nothing changes. */
	op_switch(&r, 0, pid);
	op_switch(&r, 1, 0);
	run_check(&r);
	ck_assert_int_eq(vm_cpu_get(m, 0, &cur, &cr3_after), 0);
	ck_assert_uint_eq(cr3_after, cr3_before);
	ck_assert_uint_eq(vm_machine_version(m), v + 2);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	vm_machine_free(m);
}
END_TEST

/* ---- round trips after a random workload ---- */

/* A seeded mix of every operation; refusals are allowed and must change
 * nothing. */
static void random_workload(struct vm_machine *m, uint64_t seed, unsigned n)
{
	uint64_t kva[64], vva[32], ppa[32];
	uint32_t pord[32], pids[8];
	unsigned nk = 0, nv = 0, np = 0, npid = 0;
	uint32_t cpus = vm_machine_config(m)->cpus;

	for (unsigned i = 0; i < n; i++) {
		struct vm_op op;
		struct vm_op_result res;
		struct vm_error e = { 0 };
		uint64_t d = vm_machine_digest(m), ver = vm_machine_version(m);
		uint64_t x = tu_splitmix(&seed);
		int rc;

		memset(&op, 0, sizeof(op));
		switch (x % 12) {
		case 0:
			if (npid == 8)
				continue;
			op.type = VM_OP_PROCESS_CREATE;
			strcpy(op.u.create.name, "w");
			op.u.create.text = (x >> 8) % 3 ? VM_SEG_DEFAULT : 0;
			op.u.create.data = VM_SEG_DEFAULT;
			op.u.create.heap = (x >> 12) % 5 * PG;
			op.u.create.stack = VM_SEG_DEFAULT;
			op.u.create.populate = (x >> 16) & 1;
			break;
		case 1:
			if (!npid)
				continue;
			op.type = VM_OP_PROCESS_EXIT;
			op.u.exit.pid = pids[(x >> 8) % npid];
			break;
		case 2:
		case 3:
			if (nk == 64)
				continue;
			op.type = VM_OP_KMALLOC;
			op.u.kmalloc.size = (x >> 8) % 2
						    ? (x >> 16) % 8192
						    : (x >> 16) % (64 * 1024);
			op.u.kmalloc.gfp = (x >> 40) % 4
						   ? VM_GFP_KERNEL
						   : VM_GFP_KERNEL | VM_GFP_DMA;
			break;
		case 4:
			if (!nk)
				continue;
			op.type = VM_OP_KFREE;
			op.u.kfree.va = kva[(x >> 8) % nk];
			break;
		case 5:
			if (nv == 32)
				continue;
			op.type = VM_OP_VMALLOC;
			op.u.vmalloc.size = 1 + (x >> 8) % (16 * PG);
			op.u.vmalloc.guard = (x >> 40) & 1;
			break;
		case 6:
			if (!nv)
				continue;
			op.type = VM_OP_VFREE;
			op.u.vfree.va = vva[(x >> 8) % nv];
			break;
		case 7:
			if (np == 32)
				continue;
			op.type = VM_OP_ALLOC_PAGES;
			op.u.alloc_pages.order = (uint32_t)((x >> 8) % 6);
			op.u.alloc_pages.gfp = (x >> 40) % 3 ? VM_GFP_KERNEL
							     : VM_GFP_HIGHUSER;
			break;
		case 8:
			if (!np)
				continue;
			op.type = VM_OP_FREE_PAGES;
			op.u.free_pages.pa = ppa[(x >> 8) % np];
			op.u.free_pages.order = pord[(x >> 8) % np];
			break;
		case 9:
		case 10:
			if (!npid)
				continue;
			op.type = (x >> 8) % 3 ? VM_OP_MMAP : VM_OP_MUNMAP;
			op.u.mmap.pid = pids[(x >> 12) % npid];
			if (op.type == VM_OP_MMAP) {
				op.u.mmap.length = 1 + (x >> 20) % (12 * PG);
				op.u.mmap.prot = (uint8_t)((x >> 40) % 8);
				op.u.mmap.populate = (x >> 44) & 1;
			} else {
				struct vm_region_info ri;

				op.u.munmap.pid = op.u.mmap.pid;
				if (vm_process_region(m, op.u.munmap.pid, 0,
						      &ri))
					continue;
				op.u.munmap.addr = ri.start + PG;
				op.u.munmap.length = PG;
			}
			break;
		default:
			op.type =
				(x >> 8) % 2 && npid ? VM_OP_BRK : VM_OP_SWITCH;
			if (op.type == VM_OP_BRK) {
				op.u.brk.pid = pids[(x >> 12) % npid];
				op.u.brk.increment =
					(int64_t)((x >> 20) % (6 * PG)) -
					(int64_t)(2 * PG);
			} else {
				op.u.sw.cpu = (uint32_t)((x >> 12) % cpus);
				op.u.sw.pid = npid && (x >> 20) % 4
						      ? pids[(x >> 24) % npid]
						      : 0;
			}
			break;
		}
		rc = vm_machine_apply(m, &op, &res, &e);
		if (rc) {
			ck_assert_msg(vm_machine_digest(m) == d,
				      "refused %s (%s) changed the digest",
				      vm_op_name(op.type), e.detail);
			ck_assert_uint_eq(vm_machine_version(m), ver);
			continue;
		}
		switch (op.type) {
		case VM_OP_PROCESS_CREATE:
			pids[npid++] = res.u.create.pid;
			break;
		case VM_OP_PROCESS_EXIT:
			for (unsigned k = 0; k < npid; k++)
				if (pids[k] == op.u.exit.pid)
					pids[k] = pids[--npid];
			break;
		case VM_OP_KMALLOC:
			if (!res.u.kmalloc.zero)
				kva[nk++] = res.u.kmalloc.va;
			break;
		case VM_OP_KFREE:
			for (unsigned k = 0; k < nk; k++)
				if (kva[k] == op.u.kfree.va) {
					kva[k] = kva[--nk];
					break;
				}
			break;
		case VM_OP_VMALLOC:
			vva[nv++] = res.u.vmalloc.va;
			break;
		case VM_OP_VFREE:
			for (unsigned k = 0; k < nv; k++)
				if (vva[k] == op.u.vfree.va) {
					vva[k] = vva[--nv];
					break;
				}
			break;
		case VM_OP_ALLOC_PAGES:
			ppa[np] = res.u.alloc_pages.pa;
			pord[np++] = op.u.alloc_pages.order;
			break;
		case VM_OP_FREE_PAGES:
			for (unsigned k = 0; k < np; k++)
				if (ppa[k] == op.u.free_pages.pa) {
					ppa[k] = ppa[np - 1];
					pord[k] = pord[np - 1];
					np--;
					break;
				}
			break;
		default:
			break;
		}
	}
}

START_TEST(serialise_load_serialise_is_identical)
{
	struct vm_machine *m = boot(tu_arches[_i], 512 * VM_MiB, 2, 10 + _i,
				    VM_DEFAULT_CHURN);
	struct vm_machine *d = NULL, *c;
	uint8_t *a, *b, *cb;
	size_t alen, blen, clen;
	struct vm_error e = { 0 };

	random_workload(m, 0xabcdULL + (uint64_t)_i, 250 * tu_scale());
	ck_assert_uint_gt(vm_machine_version(m), 100);
	vm_state_serialize(m, &a, &alen);
	ck_assert_msg(vm_state_decode(a, alen, &d, &e) == 0, "%s", e.detail);
	vm_state_serialize(d, &b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_msg(memcmp(a, b, alen) == 0, "%s: reloaded state encodes "
		      "differently", tu_arches[_i]);
	ck_assert_uint_eq(vm_machine_digest(d), vm_machine_digest(m));
	ck_assert_uint_eq(vm_machine_version(d), vm_machine_version(m));
	c = vm_machine_clone(m);
	ck_assert_uint_eq(vm_machine_digest(c), vm_machine_digest(m));
	ck_assert_uint_eq(vm_machine_version(c), vm_machine_version(m));
	vm_state_serialize(c, &cb, &clen);
	ck_assert_uint_eq(clen, alen);
	ck_assert_int_eq(memcmp(a, cb, alen), 0);
	/* The copies go on as the original would. */
	random_workload(m, 77, 40);
	random_workload(d, 77, 40);
	random_workload(c, 77, 40);
	ck_assert_uint_eq(vm_machine_digest(d), vm_machine_digest(m));
	ck_assert_uint_eq(vm_machine_digest(c), vm_machine_digest(m));
	free(a);
	free(b);
	free(cb);
	vm_machine_free(m);
	vm_machine_free(d);
	vm_machine_free(c);
}
END_TEST

/* ---- refused operations change nothing ---- */

struct snap {
	uint64_t digest, version, inuse;
	uint8_t *bytes;
	size_t len;
};

static void snap_take(const struct vm_machine *m, struct snap *s)
{
	s->digest = vm_machine_digest(m);
	s->version = vm_machine_version(m);
	s->inuse = vm_machine_frames_in_use(m);
	vm_state_serialize(m, &s->bytes, &s->len);
}

static void assert_unchanged(const struct vm_machine *m, const struct snap *s,
			     const char *what)
{
	struct snap now;
	struct vm_error e = { 0 };

	snap_take(m, &now);
	ck_assert_msg(now.digest == s->digest, "%s changed the digest", what);
	ck_assert_msg(now.version == s->version, "%s changed the version",
		      what);
	ck_assert_msg(now.inuse == s->inuse, "%s changed frames in use (%"
		      PRIu64 " -> %" PRIu64 ")", what, s->inuse, now.inuse);
	ck_assert_msg(now.len == s->len &&
			      memcmp(now.bytes, s->bytes, s->len) == 0,
		      "%s changed the canonical state", what);
	ck_assert_msg(vm_machine_check(m, &e) == 0, "after %s: %s", what,
		      e.detail);
	free(now.bytes);
}

/* Applies op, which must be refused with code (or code2), changing
 * nothing. */
static void refuse(struct vm_machine *m, const struct vm_op *op, int code,
		   int code2, const char *what)
{
	struct snap s;
	struct vm_error e = { 0 };
	struct vm_op_result res;
	int rc;

	snap_take(m, &s);
	rc = vm_machine_apply(m, op, &res, &e);
	ck_assert_msg(rc == code || (code2 && rc == code2),
		      "%s: expected %s, got %s (%s)", what, vm_errname(code),
		      rc ? vm_errname(rc) : "success", e.detail);
	ck_assert_int_eq(e.code, rc);
	ck_assert_msg(e.detail[0] != '\0', "%s: no detail", what);
	assert_unchanged(m, &s, what);
	free(s.bytes);
}

START_TEST(refused_operations_change_nothing)
{
	struct vm_machine *m = boot(tu_arches[_i], 256 * VM_MiB, 2, 12,
				    VM_DEFAULT_CHURN);
	const struct vm_layout *l = vm_machine_layout(m);
	struct run r = { .m = m };
	struct vm_process_info pi;
	struct vm_op op;
	uint32_t pid, other;
	uint64_t kobj, kobj2, kfreed, vlive, vfreed, pages;

	pid = op_create_default(&r);
	other = op_create(&r, VM_SEG_DEFAULT, VM_SEG_DEFAULT, 3 * PG,
			  VM_SEG_DEFAULT, true);
	kobj = op_kmalloc(&r, 200, VM_GFP_KERNEL);
	kobj2 = op_kmalloc(&r, 200, VM_GFP_KERNEL);
	kfreed = op_kmalloc(&r, 200, VM_GFP_KERNEL);
	op_kfree(&r, kfreed); /* its slab lives on: kobj, kobj2 */
	vlive = op_vmalloc(&r, 4 * PG, true);
	vfreed = op_vmalloc(&r, 2 * PG, true);
	op_vfree(&r, vfreed);
	pages = op_pages(&r, 2, VM_GFP_KERNEL);
	op_switch(&r, 0, pid);
	run_check(&r);
	ck_assert_int_eq(vm_process_get(m, other, &pi), 0);
	(void)kobj2;

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_CREATE;
	strcpy(op.u.create.name, "huge");
	op.u.create.text = l->task_size + PG;
	op.u.create.data = op.u.create.heap = op.u.create.stack =
		VM_SEG_DEFAULT;
	refuse(m, &op, VM_ERANGE, 0, "process_create beyond user space");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_EXIT;
	op.u.exit.pid = 4242;
	refuse(m, &op, VM_ENOENT, 0, "exit of a missing pid");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MMAP;
	op.u.mmap.pid = pid;
	op.u.mmap.length = 0;
	op.u.mmap.prot = RW;
	refuse(m, &op, VM_EINVAL, 0, "mmap of length 0");
	op.u.mmap.length = PG;
	op.u.mmap.has_addr = op.u.mmap.fixed = true;
	op.u.mmap.addr = 0x20000123;
	refuse(m, &op, VM_EINVAL, 0, "fixed mmap unaligned");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MUNMAP;
	op.u.munmap.pid = pid;
	op.u.munmap.addr = 0x400800;
	op.u.munmap.length = PG;
	refuse(m, &op, VM_EINVAL, 0, "munmap unaligned");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_BRK;
	op.u.brk.pid = other;
	op.u.brk.increment = -(int64_t)(pi.brk - pi.brk_start) - 1;
	refuse(m, &op, VM_EINVAL, 0, "brk below the heap start");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KMALLOC;
	op.u.kmalloc.size = VM_MiB * 4 + 1;
	op.u.kmalloc.gfp = VM_GFP_KERNEL;
	refuse(m, &op, VM_EINVAL, 0, "kmalloc above KMALLOC_MAX_SIZE");
	op.u.kmalloc.size = 64;
	op.u.kmalloc.gfp = VM_GFP_DMA | VM_GFP_HIGHMEM;
	refuse(m, &op, VM_EINVAL, 0, "kmalloc with GFP_ZONE_BAD");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KFREE;
	op.u.kfree.va = kobj + 8;
	refuse(m, &op, VM_EINTERIOR, 0, "kfree of an interior pointer");
	op.u.kfree.va = kfreed;
	refuse(m, &op, VM_EDOUBLEFREE, 0, "kfree twice");
	op.u.kfree.va = vlive;
	refuse(m, &op, VM_EWRONGFREE, 0, "kfree of a vmalloc address");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VMALLOC;
	op.u.vmalloc.size = 0;
	refuse(m, &op, VM_EINVAL, 0, "vmalloc of 0 bytes");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VFREE;
	op.u.vfree.va = vfreed;
	refuse(m, &op, VM_ENOTALLOC, VM_EDOUBLEFREE, "vfree twice");
	op.u.vfree.va = vlive + PG;
	refuse(m, &op, VM_EINTERIOR, 0, "vfree inside an area");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_ALLOC_PAGES;
	op.u.alloc_pages.order = VM_MAX_ORDER + 1;
	op.u.alloc_pages.gfp = VM_GFP_KERNEL;
	refuse(m, &op, VM_EINVAL, 0, "alloc_pages of order 11");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_FREE_PAGES;
	op.u.free_pages.pa = pages;
	op.u.free_pages.order = 1;
	refuse(m, &op, VM_EORDER, 0, "free_pages with the wrong order");
	op.u.free_pages.order = 2;
	op.u.free_pages.pa = pages + PG;
	refuse(m, &op, VM_EINTERIOR, 0, "free_pages inside the block");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_SWITCH;
	op.u.sw.cpu = 1;
	op.u.sw.pid = 4242;
	refuse(m, &op, VM_ENOENT, 0, "switch to a missing pid");
	op.u.sw.pid = pid;
	refuse(m, &op, VM_EBUSY, 0, "switch to a task on another CPU");
	op.u.sw.cpu = 2;
	op.u.sw.pid = 0;
	refuse(m, &op, VM_ENOENT, 0, "switch on a missing CPU");

	vm_machine_free(m);
}
END_TEST

/* ---- out of memory half way ---- */

static void count_allocs(void *ctx, int alloc, uint64_t pfn, unsigned order,
			 const struct vm_owner *o)
{
	(void)pfn;
	(void)o;
	if (alloc)
		*(uint64_t *)ctx += 1ULL << order;
}

static uint64_t free_pages_total(const struct vm_machine *m)
{
	uint64_t n = 0;

	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct vm_zone_info zi;

		if (!vm_machine_zone_populated(m, (enum vm_zone_id)z))
			continue;
		vm_machine_zone_info(m, (enum vm_zone_id)z, &zi);
		n += zi.free_pages;
	}
	return n;
}

/* Applies op, which must run out of memory after allocating frames, and
 * leave the machine as it was. */
static void oom_half_way(struct vm_machine *m, const struct vm_op *op,
			 const char *what)
{
	struct snap s;
	struct vm_error e = { 0 };
	uint64_t allocated = 0;
	int rc;

	snap_take(m, &s);
	vm_machine_set_observer(m, count_allocs, &allocated);
	rc = vm_machine_apply(m, op, NULL, &e);
	vm_machine_set_observer(m, NULL, NULL);
	ck_assert_msg(rc == VM_ENOMEM,
		      "%s: expected out of memory, got %s (%s)", what,
		      rc ? vm_errname(rc) : "success", e.detail);
	ck_assert_msg(allocated > 0, "%s failed before allocating anything",
		      what);
	assert_unchanged(m, &s, what);
	free(s.bytes);
}

START_TEST(out_of_memory_half_way_changes_nothing)
{
	struct vm_machine *m = boot(tu_arches[_i], 32 * VM_MiB, 1, 13, 0);
	struct vm_machine *twin = boot(tu_arches[_i], 32 * VM_MiB, 1, 13, 0);
	struct run r = { .m = m }, rt = { .m = twin };
	struct vm_op op;
	uint32_t pid;
	uint64_t more;

	pid = op_create(&r, PG, PG, 0, PG, false);
	op_create(&rt, PG, PG, 0, PG, false);
	run_check(&r);
	run_check(&rt);
	more = (free_pages_total(m) + 64) * PG;

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MMAP;
	op.u.mmap.pid = pid;
	op.u.mmap.length = more;
	op.u.mmap.prot = RW;
	op.u.mmap.populate = true;
	oom_half_way(m, &op, "mmap populating more than is free");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_CREATE;
	strcpy(op.u.create.name, "bigstack");
	op.u.create.text = op.u.create.data = VM_SEG_DEFAULT;
	op.u.create.heap = 0;
	op.u.create.stack = more;
	op.u.create.populate = true;
	oom_half_way(m, &op, "process with a stack larger than free memory");

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VMALLOC;
	op.u.vmalloc.size = more;
	op.u.vmalloc.guard = true;
	oom_half_way(m, &op, "vmalloc larger than free memory");

	/* Nothing leaked: the machine is the twin that never tried. */
	ck_assert_uint_eq(vm_machine_digest(m), vm_machine_digest(twin));
	/* And it still works: pids were not used up by the failures. */
	ck_assert_uint_eq(op_create(&r, PG, 0, 0, PG, true), pid + 1);
	run_check(&r);
	vm_machine_free(m);
	vm_machine_free(twin);
}
END_TEST

/* ---- host memory follows use, not RAM (SPEC 1.3) ---- */

START_TEST(host_memory_does_not_grow_with_ram)
{
	static const char *const arch64[] = { "x86_64", "i386-pae" };
	const char *arch = arch64[_i];
	struct vm_machine *small = boot(arch, VM_GiB, 1, 0, VM_DEFAULT_CHURN);
	struct vm_machine *big =
		boot(arch, 64 * VM_GiB, 1, 0, VM_DEFAULT_CHURN);
	size_t s = vm_machine_host_bytes(small), b = vm_machine_host_bytes(big);

	ck_assert_msg(b <= s + 16 * 1024, "%s: 64 GiB holds %zu host bytes, "
		      "1 GiB %zu", arch, b, s);
	ck_assert_uint_gt(s, 0);
	vm_machine_free(small);
	vm_machine_free(big);
}
END_TEST

/* The issue-6 budget: an idle x86_64 1 GiB machine with one process. */
START_TEST(idle_machine_fits_in_64_kib)
{
	struct vm_machine *m = boot("x86_64", VM_GiB, 1, 0, VM_DEFAULT_CHURN);
	struct run r = { m, 0, "" };

	ck_assert_uint_ne(op_create_default(&r), 0);
	ck_assert_msg(vm_machine_host_bytes(m) <= 64 * 1024,
		      "an idle machine holds %zu host bytes",
		      vm_machine_host_bytes(m));
	vm_machine_free(m);
}
END_TEST

/*
 * Frame contents are kept in chunks that come and go with their non-zero
 * words: random 4- and 8-byte writes (zeros included) to one frame read
 * back as from flat memory, and clearing every word gives every byte of
 * host memory back.
 */
START_TEST(frame_storage_reads_as_flat_memory)
{
	struct vm_machine *m = boot("x86_64", VM_GiB, 1, 0, VM_DEFAULT_CHURN);
	uint64_t frame = (VM_GiB >> VM_PAGE_SHIFT) - 1, seed = 7 + _i;
	uint64_t base = frame << VM_PAGE_SHIFT;
	size_t before = vm_machine_host_bytes(m);
	uint8_t flat[VM_PAGE_SIZE] = { 0 };

	for (int step = 0; step < 4000; step++) {
		unsigned size = (tu_splitmix(&seed) & 1) ? 8 : 4;
		unsigned off = (unsigned)(tu_splitmix(&seed) % (VM_PAGE_SIZE / size)) *
			       size;
		/* Mostly in two chunks, so that words also go back to 0. */
		uint64_t v = tu_splitmix(&seed) % 3 ? tu_splitmix(&seed) : 0;

		if (tu_splitmix(&seed) % 4)
			off = (off % 1024) + 1536;
		if (size == 4)
			v &= 0xffffffffu;
		vm_test_phys_write(m, base + off, size, v);
		for (unsigned i = 0; i < size; i++)
			flat[off + i] = (uint8_t)(v >> (8 * i));
		if (step % 256 == 0 || step == 3999)
			for (unsigned w = 0; w < VM_PAGE_SIZE; w += 4) {
				uint64_t want = 0;

				for (unsigned i = 0; i < 4; i++)
					want |= (uint64_t)flat[w + i] << (8 * i);
				ck_assert_uint_eq(vm_test_phys_read(m, base + w,
								    4), want);
			}
	}
	for (unsigned w = 0; w < VM_PAGE_SIZE; w += 8)
		vm_test_phys_write(m, base + w, 8, 0);
	ck_assert_uint_eq(vm_machine_host_bytes(m), before);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("determinism");
	TCase *tc = tcase_create("determinism");

	tcase_set_timeout(tc, 120.0 * tu_scale());
	tcase_add_loop_test(tc, same_scenario_same_digest_across_processes, 0,
			    4);
	tcase_add_loop_test(tc, digest_sees_frame_owner, 0, 4);
	tcase_add_loop_test(tc, digest_sees_one_pte_bit, 0, 4);
	tcase_add_loop_test(tc, digest_sees_free_list_order, 0, 4);
	tcase_add_loop_test(tc, digest_sees_cr3, 0, 4);
	tcase_add_loop_test(tc, digest_sees_prng_seed, 0, 4);
	tcase_add_loop_test(tc, version_is_not_in_the_digest, 0, 4);
	tcase_add_loop_test(tc, serialise_load_serialise_is_identical, 0, 4);
	tcase_add_loop_test(tc, refused_operations_change_nothing, 0, 4);
	tcase_add_loop_test(tc, out_of_memory_half_way_changes_nothing, 0, 4);
	tcase_add_loop_test(tc, host_memory_does_not_grow_with_ram, 0, 2);
	tcase_add_test(tc, idle_machine_fits_in_64_kib);
	tcase_add_loop_test(tc, frame_storage_reads_as_flat_memory, 0, 3);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
