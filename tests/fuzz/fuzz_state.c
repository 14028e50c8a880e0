/*
 * fuzz_state.c - canonical state (core/state.h) from any bytes.
 *
 * Input framing: the whole input is one encoding, for vm_state_decode.
 *
 * A state it takes must pass vm_machine_check; its encoding
 * (vm_state_serialize) must decode again, to a machine of the same
 * digest and version that encodes to the same bytes (the canonical form
 * is a fixed point). Then a few operations of every kind (a process with
 * a mapping, a switch, kmalloc and kfree, vmalloc and vfree, pages and
 * their free, brk, munmap, an exit) are applied as far as the machine
 * allows, and it must still pass vm_machine_check.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/machine.h"
#include "core/op.h"
#include "core/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct vm_machine *m, const char *when)
{
	struct vm_error err = { 0, "" };

	if (vm_machine_check(m, &err)) {
		fprintf(stderr, "fuzz_state: %s: %s\n", when, err.detail);
		abort();
	}
}

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_state: %s\n", what);
	abort();
}

static bool run(struct vm_machine *m, struct vm_op *op,
		struct vm_op_result *res)
{
	struct vm_error err = { 0, "" };

	return vm_machine_apply(m, op, res, &err) == 0;
}

/* Operations of every kind, each as far as the machine allows. */
static void exercise(struct vm_machine *m)
{
	struct vm_op op;
	struct vm_op_result r, k, v, pg;
	uint32_t pid = 0;
	bool have_k, have_v, have_pg;

	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_CREATE;
	strcpy(op.u.create.name, "fuzz");
	op.u.create.text = op.u.create.data = VM_SEG_DEFAULT;
	op.u.create.heap = op.u.create.stack = VM_SEG_DEFAULT;
	op.u.create.populate = true;
	if (run(m, &op, &r))
		pid = r.u.create.pid;
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MMAP;
	op.u.mmap.pid = pid;
	op.u.mmap.length = 3 * 4096;
	op.u.mmap.prot = 3;
	op.u.mmap.populate = true;
	if (pid && run(m, &op, &r)) {
		memset(&op, 0, sizeof(op));
		op.type = VM_OP_MUNMAP;
		op.u.munmap.pid = pid;
		op.u.munmap.addr = r.u.mmap.start;
		op.u.munmap.length = 4096;
		run(m, &op, NULL);
	}
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_BRK;
	op.u.brk.pid = pid;
	op.u.brk.increment = 8192;
	if (pid)
		run(m, &op, NULL);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_SWITCH;
	op.u.sw.pid = pid;
	run(m, &op, NULL);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KMALLOC;
	op.u.kmalloc.size = 200;
	op.u.kmalloc.gfp = 0xcc0;
	have_k = run(m, &op, &k) && !k.u.kmalloc.zero;
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VMALLOC;
	op.u.vmalloc.size = 3 * 4096;
	op.u.vmalloc.guard = true;
	have_v = run(m, &op, &v);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_ALLOC_PAGES;
	op.u.alloc_pages.order = 2;
	op.u.alloc_pages.gfp = 0xcc0;
	have_pg = run(m, &op, &pg);
	check(m, "after allocations");
	memset(&op, 0, sizeof(op));
	if (have_k) {
		op.type = VM_OP_KFREE;
		op.u.kfree.va = k.u.kmalloc.va;
		run(m, &op, NULL);
	}
	if (have_v) {
		op.type = VM_OP_VFREE;
		op.u.vfree.va = v.u.vmalloc.va;
		run(m, &op, NULL);
	}
	if (have_pg) {
		op.type = VM_OP_FREE_PAGES;
		op.u.free_pages.pa = pg.u.alloc_pages.pa;
		op.u.free_pages.order = 2;
		run(m, &op, NULL);
	}
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_EXIT;
	op.u.exit.pid = pid;
	if (pid)
		run(m, &op, NULL);
	check(m, "after frees");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_machine *m, *again;
	struct vm_error err = { 0, "" };
	uint8_t *a, *b;
	size_t alen, blen;

	if (vm_state_decode(data, size, &m, &err))
		return 0;
	check(m, "decoded");
	vm_state_serialize(m, &a, &alen);
	if (vm_state_decode(a, alen, &again, &err)) {
		fprintf(stderr, "fuzz_state: re-encoded: %s\n", err.detail);
		abort();
	}
	if (vm_machine_digest(again) != vm_machine_digest(m) ||
	    vm_machine_version(again) != vm_machine_version(m))
		fail("the re-encoded state has another digest or version");
	vm_state_serialize(again, &b, &blen);
	if (alen != blen || memcmp(a, b, alen) != 0)
		fail("the canonical encoding is not a fixed point");
	free(a);
	free(b);
	vm_machine_free(again);
	exercise(m);
	vm_machine_free(m);
	return 0;
}
