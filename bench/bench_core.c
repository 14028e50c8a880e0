/*
 * bench_core.c - how fast core answers, and how much host memory a machine
 * holds.
 *
 * Prints one line per measure, `name value unit`:
 *
 *   core_walk_ns        one 4-level translation (vm_translate) of a user
 *                       address, x86_64 1 GiB, over 10,000 mapped 4 KiB
 *                       pages of one process; the addresses are drawn
 *                       beforehand, so translations are independent and
 *                       may overlap in the CPU
 *   core_walk_dep_ns    the same, but each address is chosen from the
 *                       previous answer's pa, so each walk waits for the
 *                       one before (latency, not throughput)
 *   core_translate_batch_ns
 *                       per item of a batch of 1,000 requests over the
 *                       same pages, each answer kept in its own result as
 *                       the batch route needs them (JSON excluded); core
 *                       has no batch call, so this loops vm_translate
 *   machine_host_bytes  vm_machine_host_bytes of an idle x86_64 1 GiB
 *                       machine with one process, default churn
 *
 * Each timing is the median of 3 runs of N translations, N from argv[1],
 * else $VMLAB_BENCH_LOOPS, else a default that takes about a second in
 * all on a current x86_64 host (the batch figure rounds N up to whole
 * batches). The addresses come from a seeded xorshift sequence, the same
 * every run. Timing uses CLOCK_MONOTONIC.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/layout.h"
#include "bench/bench_time.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/translate.h"

#define NPAGES 10000
#define DEFAULT_LOOPS 2000000ULL
#define BATCH 1000

static void die(const char *what, const struct vm_error *e)
{
	fprintf(stderr, "bench_core: %s: %s\n", what, e ? e->detail : "");
	exit(1);
}

/* An x86_64 1 GiB machine (default churn) with one process; with pages,
 * that process also maps `pages` populated anonymous pages. */
static struct vm_machine *make_machine(uint64_t pages, uint64_t *base)
{
	struct vm_config c;
	struct vm_machine *m = NULL;
	struct vm_error e = { 0 };
	struct vm_op op;
	struct vm_op_result r;

	vm_config_default(&c);
	c.arch = VM_ARCH_X86_64;
	c.memory = VM_GiB;
	if (vm_machine_create(&c, &m, &e))
		die("machine", &e);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_CREATE;
	strcpy(op.u.create.name, "bench");
	op.u.create.text = op.u.create.data = VM_SEG_DEFAULT;
	op.u.create.heap = op.u.create.stack = VM_SEG_DEFAULT;
	op.u.create.populate = true;
	if (vm_machine_apply(m, &op, &r, &e))
		die("process", &e);
	if (pages) {
		memset(&op, 0, sizeof(op));
		op.type = VM_OP_MMAP;
		op.u.mmap.pid = r.u.create.pid;
		op.u.mmap.length = pages * VM_PAGE_SIZE;
		op.u.mmap.prot = 3; /* rw- */
		op.u.mmap.populate = true;
		if (vm_machine_apply(m, &op, &r, &e))
			die("mmap", &e);
		*base = r.u.mmap.start;
	}
	return m;
}

/* xorshift64*: the benchmark's own address stream, not the model's. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Sink for results, so that no walk is optimised away. */
static volatile uint64_t sink;

static double walk_independent(const struct vm_machine *m,
			       const uint64_t *vas, uint64_t loops)
{
	struct vm_translate_req q = { .has_pid = true, .pid = 1,
				      .mode = VM_MODE_USER,
				      .access = VM_ACCESS_READ };
	struct vm_translation t;
	uint64_t acc = 0;
	double t0 = now_ns();

	for (uint64_t i = 0; i < loops; i++) {
		q.va = vas[i % NPAGES];
		if (vm_translate(m, &q, &t, NULL) || !t.ok)
			die("translation failed", NULL);
		acc += t.pa;
	}
	sink = acc;
	return (now_ns() - t0) / (double)loops;
}

static double walk_dependent(const struct vm_machine *m, uint64_t base,
			     uint64_t loops)
{
	struct vm_translate_req q = { .has_pid = true, .pid = 1,
				      .mode = VM_MODE_USER,
				      .access = VM_ACCESS_READ };
	struct vm_translation t;
	uint64_t pa = 0x12345000;
	double t0 = now_ns();

	for (uint64_t i = 0; i < loops; i++) {
		/* The next page comes from the frame number just found. */
		uint64_t page = ((pa >> VM_PAGE_SHIFT) * 0x9e3779b97f4a7c15ULL +
				 i) % NPAGES;

		q.va = base + page * VM_PAGE_SIZE + (pa & 0xff8);
		if (vm_translate(m, &q, &t, NULL) || !t.ok)
			die("translation failed", NULL);
		pa = t.pa;
	}
	sink = pa;
	return (now_ns() - t0) / (double)loops;
}

/*
 * A batch answers every item into a result of its own (the route prints
 * them all after), so unlike walk_independent the results are not
 * overwritten in place: the out array is part of the cost. The batches
 * are consecutive slices of vas, so 10 different ones take turns.
 */
static double walk_batch(const struct vm_machine *m, const uint64_t *vas,
			 struct vm_translation *out, uint64_t batches)
{
	struct vm_translate_req q[BATCH];
	uint64_t acc = 0;
	double t0, ns = 0;

	for (uint64_t b = 0; b < batches; b++) {
		const uint64_t *va = vas + (b % (NPAGES / BATCH)) * BATCH;

		/* Filling the requests stands for parsing: not timed. */
		for (int i = 0; i < BATCH; i++)
			q[i] = (struct vm_translate_req){
				.va = va[i], .has_pid = true, .pid = 1,
				.mode = VM_MODE_USER,
				.access = VM_ACCESS_READ };
		t0 = now_ns();
		for (int i = 0; i < BATCH; i++)
			if (vm_translate(m, &q[i], &out[i], NULL) || !out[i].ok)
				die("translation failed", NULL);
		ns += now_ns() - t0;
		for (int i = 0; i < BATCH; i++)
			acc += out[i].pa;
	}
	sink = acc;
	return ns / (double)(batches * BATCH);
}

int main(int argc, char **argv)
{
	const char *env = getenv("VMLAB_BENCH_LOOPS");
	uint64_t loops = DEFAULT_LOOPS, base = 0, seed = 0x2545f4914f6cdd1dULL;
	uint64_t *vas;
	struct vm_machine *m;
	double ind[RUNS], dep[RUNS], bat[RUNS];
	struct vm_translation *out;

	if (argc > 1)
		loops = strtoull(argv[1], NULL, 0);
	else if (env && *env)
		loops = strtoull(env, NULL, 0);
	if (loops == 0) {
		fprintf(stderr, "usage: bench_core [LOOPS] (or "
				"VMLAB_BENCH_LOOPS=LOOPS), LOOPS > 0\n");
		return 2;
	}

	m = make_machine(NPAGES, &base);
	vas = malloc(NPAGES * sizeof(*vas));
	out = malloc(BATCH * sizeof(*out));
	if (!vas || !out)
		die("out of host memory", NULL);
	for (int i = 0; i < NPAGES; i++)
		vas[i] = base + (next_rand(&seed) % NPAGES) * VM_PAGE_SIZE +
			 (next_rand(&seed) & 0xff8);

	for (int r = 0; r < RUNS; r++) {
		ind[r] = walk_independent(m, vas, loops);
		dep[r] = walk_dependent(m, base, loops);
		bat[r] = walk_batch(m, vas, out, (loops + BATCH - 1) / BATCH);
	}
	printf("core_walk_ns %.1f ns\n", median3(ind));
	printf("core_walk_dep_ns %.1f ns\n", median3(dep));
	printf("core_translate_batch_ns %.1f ns\n", median3(bat));
	free(out);
	free(vas);
	vm_machine_free(m);

	m = make_machine(0, NULL);
	printf("machine_host_bytes %zu bytes\n", vm_machine_host_bytes(m));
	vm_machine_free(m);
	return 0;
}
