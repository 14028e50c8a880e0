/*
 * fuzz_op.c - operation records (core/op.h): decode, encode, apply.
 *
 * Input framing: a sequence of records, each one byte of length (0 to
 * 255) and then that many bytes; a last record cut short is taken as it
 * is. At most MAX_OPS records are read.
 *
 * Each record goes to vm_op_decode. One it takes must encode
 * (vm_op_encode) to exactly its bytes, and is then applied
 * (vm_machine_apply) to a small machine: an x86_64 machine of 32 MiB with
 * two CPUs, a process with a mapping, a kmalloc, a vmalloc area and
 * pages, so that frees, switches and exits find something. An operation
 * the machine refuses must leave it byte for byte as it was
 * (vm_state_serialize) at the same version; one it applies gives an
 * answer whose encoding (vm_op_result_encode) decodes and encodes again
 * to the same bytes. After the sequence the machine passes
 * vm_machine_check, and the records applied again, in order, to a fresh
 * copy of the starting machine give the same digest (SPEC 1.9: replay;
 * checked for one input in 8, a copy being the costly part). The machine
 * is put back (a copy of the start) after an input that changed it.
 * Operations that may make a region above 64 MiB are decoded and
 * encoded but not applied (too_big: unmapping one takes minutes).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/enc.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/state.h"
#include "world.h"

#define MAX_OPS 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vm_machine *start;   /* the machine every input starts from */
static struct vm_machine *cur;     /* start, or the machine of this input */

static void fail(const char *what, const struct vm_op *op)
{
	fprintf(stderr, "fuzz_op: %s (op type %d)\n", what,
		op ? (int)op->type : -1);
	abort();
}

static void check_result(const struct vm_op *op, const struct vm_op_result *r)
{
	struct vm_enc a, b;
	struct vm_op_result back;

	enc_init(&a);
	enc_init(&b);
	vm_op_result_encode(op, r, &a);
	if (vm_op_result_decode(op->type, a.buf, a.len, &back))
		fail("an answer's encoding does not decode", op);
	vm_op_result_encode(op, &back, &b);
	if (a.len != b.len || memcmp(a.buf, b.buf, a.len) != 0)
		fail("an answer does not encode again to its bytes", op);
	enc_release(&a);
	enc_release(&b);
}

/* Applies op to m; a refusal must change nothing. */
static bool apply(struct vm_machine *m, const struct vm_op *op)
{
	struct vm_op_result res;
	struct vm_error err = { 0, "" };
	uint8_t *before, *after;
	size_t blen, alen;
	uint64_t version = vm_machine_version(m);

	vm_state_serialize(m, &before, &blen);
	memset(&res, 0, sizeof(res));
	if (vm_machine_apply(m, op, &res, &err) == 0) {
		free(before);
		if (vm_machine_version(m) != version + 1)
			fail("an applied operation is not one version", op);
		check_result(op, &res);
		return true;
	}
	vm_state_serialize(m, &after, &alen);
	if (vm_machine_version(m) != version || blen != alen ||
	    memcmp(before, after, blen) != 0)
		fail("a refused operation changed the machine", op);
	free(before);
	free(after);
	return false;
}

/*
 * Whether op may make a region bigger than BIG. Unmapping walks a
 * region page by page, tables or not (core/process.c unmap_range), so
 * munmap or exit of a 64 TiB mapping that was never populated takes
 * minutes: a known limit of the model, not something each input should
 * find again. Such operations are skipped.
 */
#define BIG (64ULL << 20)

static bool too_big(const struct vm_op *op)
{
	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		return (op->u.create.text != VM_SEG_DEFAULT &&
			op->u.create.text > BIG) ||
		       (op->u.create.data != VM_SEG_DEFAULT &&
			op->u.create.data > BIG) ||
		       (op->u.create.heap != VM_SEG_DEFAULT &&
			op->u.create.heap > BIG) ||
		       (op->u.create.stack != VM_SEG_DEFAULT &&
			op->u.create.stack > BIG);
	case VM_OP_MMAP:
		return op->u.mmap.length > BIG;
	case VM_OP_BRK:
		return op->u.brk.absolute ||
		       op->u.brk.increment > (int64_t)BIG;
	default:
		return false;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned replays;
	struct vm_op ops[MAX_OPS];
	unsigned nops = 0;
	struct vm_machine *replay;
	struct vm_error err = { 0, "" };
	size_t at = 0;

	if (!start) {
		start = fuzz_op_start();
		cur = vm_machine_clone(start);
	}
	while (at < size && nops < MAX_OPS) {
		size_t n = data[at++];
		struct vm_op op;
		struct vm_enc e;

		if (n > size - at)
			n = size - at;
		if (vm_op_decode(data + at, n, &op) == 0) {
			enc_init(&e);
			vm_op_encode(&op, &e);
			if (e.len != n || memcmp(e.buf, data + at, n) != 0)
				fail("a record does not encode to its bytes",
				     &op);
			enc_release(&e);
			if (!too_big(&op) && apply(cur, &op))
				ops[nops++] = op;
		}
		at += n;
	}
	if (!nops)
		return 0;
	if (vm_machine_check(cur, &err)) {
		fprintf(stderr, "fuzz_op: %s\n", err.detail);
		abort();
	}
	/* A copy costs more than the rest: one input in 8 replays (the
	 * first of a run always, so that a crash reproduces alone). */
	if (replays++ % 8 == 0) {
		replay = vm_machine_clone(start);
		for (unsigned i = 0; i < nops; i++)
			if (vm_machine_apply(replay, &ops[i], NULL, &err))
				fail("a replayed operation is refused",
				     &ops[i]);
		if (vm_machine_digest(replay) != vm_machine_digest(cur))
			fail("a replay gives another digest", NULL);
		vm_machine_free(replay);
	}
	/* Back to the start for the next input. */
	vm_machine_free(cur);
	cur = vm_machine_clone(start);
	return 0;
}
