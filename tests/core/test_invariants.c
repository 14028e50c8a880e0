/*
 * test_invariants.c - every invariant checker notices what it guards
 * (SPEC 1.4), and the decoders refuse what is not a valid encoding
 * (SPEC 1.9).
 *
 * Each corruption of core/testing.h breaks one invariant on purpose; on a
 * machine that has what the corruption needs (a process with two regions,
 * a vmalloc area, a slab object), vm_machine_check passes before and fails
 * with VM_ECORRUPT and a detail after. The state decoder must survive any
 * byte string: truncations, flipped bytes, a wrong magic, an unknown
 * format; the operation decoder likewise for records.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/gfp.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/process.h"
#include "core/state.h"
#include "core/testing.h"
#include "tests/core/testutil.h"

static const char *const corruption_names[VM_CORRUPT_COUNT] = {
	[VM_CORRUPT_FREE_COUNT] = "free_count",
	[VM_CORRUPT_OWNED_TWICE] = "owned_twice",
	[VM_CORRUPT_USER_PTE] = "user_pte",
	[VM_CORRUPT_KERNEL_HALF] = "kernel_half",
	[VM_CORRUPT_VMALLOC_PTE] = "vmalloc_pte",
	[VM_CORRUPT_SLAB_INUSE] = "slab_inuse",
	[VM_CORRUPT_VMA_OVERLAP] = "vma_overlap",
	[VM_CORRUPT_CR3] = "cr3",
};

/* Two CPUs, so that a second process can run on CPU 1. */
static struct vm_machine *boot(const char *arch, uint64_t memory,
			       uint64_t churn)
{
	struct vm_config c;

	tu_config(&c, arch, memory);
	c.churn = churn;
	c.cpus = 2;
	return tu_boot_config(&c);
}

static uint32_t create(struct vm_machine *m, uint64_t text, uint64_t data,
		       uint64_t stack, bool populate)
{
	struct vm_op op = tu_op_create("victim", text, data, VM_SEG_DEFAULT,
				       stack, populate);

	return tu_apply_ok(m, &op, NULL).u.create.pid;
}

/*
 * What every corruption needs: a process (populated, with text, data and
 * stack: three regions), a slab object and a vmalloc area; and a second
 * process running on CPU 1, so that CPUs run real tasks.
 */
static struct vm_machine *build_state(const char *arch)
{
	struct vm_machine *m = boot(arch, 256 * VM_MiB, VM_DEFAULT_CHURN);
	struct vm_op op;
	uint32_t second;

	create(m, VM_SEG_DEFAULT, VM_SEG_DEFAULT, VM_SEG_DEFAULT, true);
	second =
		create(m, VM_SEG_DEFAULT, VM_SEG_DEFAULT, VM_SEG_DEFAULT, true);
	tu_kmalloc(m, 64, VM_GFP_KERNEL);
	tu_vmalloc(m, 3 * VM_PAGE_SIZE, true);
	op = tu_op_switch(1, second);
	tu_apply_ok(m, &op, NULL);
	return m;
}

/* ---- each checker catches its corruption ---- */

START_TEST(checker_catches_corruption)
{
	const char *arch = tu_arches[_i / VM_CORRUPT_COUNT];
	enum vm_corruption what = (enum vm_corruption)(_i % VM_CORRUPT_COUNT);
	struct vm_machine *m = build_state(arch);
	struct vm_error e = { 0 };
	int rc;

	rc = vm_machine_check(m, &e);
	ck_assert_msg(rc == 0, "%s before %s: %s", arch,
		      corruption_names[what], e.detail);
	rc = vm_test_corrupt(m, what);
	ck_assert_msg(rc == 0, "%s: corruption %s not applied (%s)", arch,
		      corruption_names[what], vm_errname(rc));
	memset(&e, 0, sizeof(e));
	rc = vm_machine_check(m, &e);
	ck_assert_msg(rc == VM_ECORRUPT, "%s: %s went unnoticed (%s)", arch,
		      corruption_names[what], vm_errname(rc));
	ck_assert_int_eq(e.code, VM_ECORRUPT);
	ck_assert_msg(e.detail[0] != '\0', "%s: %s: no detail", arch,
		      corruption_names[what]);
	vm_machine_free(m);
}
END_TEST

/* A corruption that needs something the machine lacks changes nothing. */
START_TEST(corruption_needs_its_state)
{
	struct vm_machine *m = boot(tu_arches[_i], 64 * VM_MiB, 0);
	static const enum vm_corruption needy[] = {
		VM_CORRUPT_USER_PTE, VM_CORRUPT_KERNEL_HALF,
		VM_CORRUPT_VMALLOC_PTE, VM_CORRUPT_SLAB_INUSE,
		VM_CORRUPT_VMA_OVERLAP,
	};
	uint64_t d = vm_machine_digest(m);
	struct vm_error e = { 0 };

	for (unsigned i = 0; i < sizeof(needy) / sizeof(needy[0]); i++) {
		ck_assert_msg(vm_test_corrupt(m, needy[i]) == VM_ENOENT,
			      "%s on a fresh machine",
			      corruption_names[needy[i]]);
		ck_assert_uint_eq(vm_machine_digest(m), d);
	}
	ck_assert_int_eq(vm_test_corrupt(m, VM_CORRUPT_COUNT), VM_EINVAL);
	/* One region, nothing populated: no overlap, no user PTE to break. */
	create(m, VM_SEG_DEFAULT, 0, 0, false);
	d = vm_machine_digest(m);
	ck_assert_int_eq(vm_test_corrupt(m, VM_CORRUPT_VMA_OVERLAP), VM_ENOENT);
	ck_assert_int_eq(vm_test_corrupt(m, VM_CORRUPT_USER_PTE), VM_ENOENT);
	ck_assert_uint_eq(vm_machine_digest(m), d);
	ck_assert_msg(vm_machine_check(m, &e) == 0, "%s", e.detail);
	vm_machine_free(m);
}
END_TEST

/* ---- the state decoder ---- */

/* A small machine with something in every part of the state. */
static struct vm_machine *small_machine(const char *arch)
{
	struct vm_machine *m = boot(arch, 32 * VM_MiB, 64);

	create(m, 2 * VM_PAGE_SIZE, VM_PAGE_SIZE, 2 * VM_PAGE_SIZE, true);
	tu_kmalloc(m, 100, VM_GFP_KERNEL);
	tu_vmalloc(m, 2 * VM_PAGE_SIZE, true);
	return m;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

START_TEST(state_decode_rejects_truncations)
{
	struct vm_machine *m = small_machine(tu_arches[_i]), *out;
	uint8_t *buf;
	size_t len, step;

	vm_state_serialize(m, &buf, &len);
	/* Every length under a plain build; a dense sample is enough when
	 * the encoding is long (each attempt decodes up to its end). */
	step = len <= 40000 ? 1 : len / 40000 + 1;
	for (size_t n = 0; n < len; n += (n < 4096 ? 1 : step)) {
		struct vm_error e = { 0 };
		int rc;

		out = NULL;
		rc = vm_state_decode(buf, n, &out, &e);
		ck_assert_msg(rc == VM_ECORRUPT, "%s: %zu of %zu bytes: %s",
			      tu_arches[_i], n, len,
			      rc ? vm_errname(rc) : "decoded");
		ck_assert_ptr_null(out);
		ck_assert_msg(e.detail[0] != '\0', "%zu bytes: no detail", n);
	}
	{
		struct vm_error e = { 0 };

		out = NULL;
		ck_assert_msg(vm_state_decode(buf, len, &out, &e) == 0, "%s",
			      e.detail);
		ck_assert_uint_eq(vm_machine_digest(out), vm_machine_digest(m));
		vm_machine_free(out);
	}
	free(buf);
	vm_machine_free(m);
}
END_TEST

START_TEST(state_decode_survives_flipped_bytes)
{
	struct vm_machine *m = small_machine(tu_arches[_i]);
	uint8_t *buf, *copy;
	size_t len;
	uint64_t seed = 0xf11b5ULL + (uint64_t)_i;
	unsigned n = 300 * tu_scale(), decoded = 0;

	vm_state_serialize(m, &buf, &len);
	copy = malloc(len);
	ck_assert_ptr_nonnull(copy);
	for (unsigned k = 0; k < n; k++) {
		/* The header and configuration often, the body everywhere. */
		size_t pos = k % 4 == 0 ? tu_splitmix(&seed) % 64
					: tu_splitmix(&seed) % len;
		uint8_t x = (uint8_t)(1 + tu_splitmix(&seed) % 255);
		struct vm_machine *out = NULL;
		struct vm_error e = { 0 };
		int rc;

		memcpy(copy, buf, len);
		copy[pos] ^= x;
		rc = vm_state_decode(copy, len, &out, &e);
		ck_assert_msg(rc == 0 || rc == VM_ECORRUPT || rc == VM_EVERSION,
			      "%s: byte %zu ^ %#x: %s", tu_arches[_i], pos, x,
			      vm_errname(rc));
		if (rc == 0) {
			struct vm_error ce = { 0 };

			decoded++;
			ck_assert_msg(vm_machine_check(out, &ce) == 0,
				      "byte %zu ^ %#x decoded to a broken "
				      "machine: %s", pos, x, ce.detail);
			vm_machine_free(out);
		} else {
			ck_assert_ptr_null(out);
			ck_assert_msg(e.detail[0] != '\0',
				      "byte %zu: no detail", pos);
		}
	}
	/* Some flips are harmless (the version, the seed): they decode. */
	ck_assert_uint_gt(decoded, 0);
	ck_assert_uint_lt(decoded, n);
	free(copy);
	free(buf);
	vm_machine_free(m);
}
END_TEST

START_TEST(state_decode_checks_magic_and_format)
{
	struct vm_machine *m = small_machine(tu_arches[_i]), *out = NULL;
	uint8_t *buf;
	size_t len;
	struct vm_error e = { 0 };
	static const uint32_t formats[] = {
		0, VM_STATE_FORMAT + 1, 0xffffffffu,
	};

	vm_state_serialize(m, &buf, &len);
	ck_assert_uint_ge(len, 24);
	ck_assert_int_eq(memcmp(buf, "VMLABST1", 8), 0);
	for (int i = 0; i < 8; i++) {
		buf[i] ^= 0x20;
		ck_assert_int_eq(vm_state_decode(buf, len, &out, &e),
				 VM_ECORRUPT);
		ck_assert_ptr_null(out);
		buf[i] ^= 0x20;
	}
	for (unsigned i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
		put_u32(buf + 8, formats[i]);
		memset(&e, 0, sizeof(e));
		ck_assert_int_eq(vm_state_decode(buf, len, &out, &e),
				 VM_EVERSION);
		ck_assert_ptr_null(out);
		ck_assert_msg(e.detail[0] != '\0', "no detail");
	}
	put_u32(buf + 8, VM_STATE_FORMAT);
	ck_assert_int_eq(vm_state_decode(buf, len, &out, &e), 0);
	vm_machine_free(out);
	free(buf);
	vm_machine_free(m);
}
END_TEST

/* ---- the operation decoder ---- */

/* One record of each type, every field set. */
static void sample_op(enum vm_op_type t, struct vm_op *op)
{
	memset(op, 0, sizeof(*op));
	op->type = t;
	switch (t) {
	case VM_OP_PROCESS_CREATE:
		strcpy(op->u.create.name, "sh");
		op->u.create.text = 0x10000;
		op->u.create.data = VM_SEG_DEFAULT;
		op->u.create.heap = 0;
		op->u.create.stack = 0x20000;
		op->u.create.populate = true;
		break;
	case VM_OP_PROCESS_EXIT:
		op->u.exit.pid = 7;
		break;
	case VM_OP_MMAP:
		op->u.mmap.pid = 3;
		op->u.mmap.addr = 0x7f0000000000ULL;
		op->u.mmap.length = 0x3000;
		op->u.mmap.prot = VM_PROT_READ | VM_PROT_WRITE;
		op->u.mmap.has_addr = op->u.mmap.fixed = true;
		op->u.mmap.populate = true;
		break;
	case VM_OP_MUNMAP:
		op->u.munmap.pid = 3;
		op->u.munmap.addr = 0x400000;
		op->u.munmap.length = 0x1000;
		break;
	case VM_OP_BRK:
		op->u.brk.pid = 2;
		op->u.brk.absolute = true;
		op->u.brk.increment = -4096;
		op->u.brk.addr = 0x602000;
		break;
	case VM_OP_KMALLOC:
		op->u.kmalloc.size = 100;
		op->u.kmalloc.gfp = VM_GFP_KERNEL;
		break;
	case VM_OP_KFREE:
		op->u.kfree.va = 0xffff888001000000ULL;
		break;
	case VM_OP_VMALLOC:
		op->u.vmalloc.size = 0x5000;
		op->u.vmalloc.guard = true;
		break;
	case VM_OP_VFREE:
		op->u.vfree.va = 0xffffc90000000000ULL;
		break;
	case VM_OP_ALLOC_PAGES:
		op->u.alloc_pages.order = 3;
		op->u.alloc_pages.gfp = VM_GFP_KERNEL | VM_GFP_DMA;
		break;
	case VM_OP_FREE_PAGES:
		op->u.free_pages.pa = 0x200000;
		op->u.free_pages.order = 3;
		break;
	case VM_OP_SWITCH:
		op->u.sw.cpu = 1;
		op->u.sw.pid = 4;
		break;
	default:
		break;
	}
}

/* The byte offset of the last boolean of a record, or 0 when none. */
static size_t last_bool_offset(enum vm_op_type t, size_t len)
{
	switch (t) {
	case VM_OP_PROCESS_CREATE: /* populate ends the record */
	case VM_OP_MMAP:           /* populate ends the record */
	case VM_OP_VMALLOC:        /* guard ends the record */
		return len - 1;
	case VM_OP_BRK:            /* u8 u8 u32 pid, then absolute */
		return 2 + 4;
	default:
		return 0;
	}
}

START_TEST(op_decode_rejects_malformed)
{
	enum vm_op_type t = (enum vm_op_type)(VM_OP_PROCESS_CREATE + _i);
	struct vm_op op, d;
	uint8_t *buf, *big, *again;
	size_t len, alen, b;

	sample_op(t, &op);
	ck_assert_int_eq(vm_op_serialize(&op, &buf, &len), 0);
	ck_assert_uint_ge(len, 2);
	ck_assert_uint_eq(buf[0], VM_OP_ENCODING);
	ck_assert_uint_eq(buf[1], (unsigned)t);
	/* The whole record decodes and encodes back to the same bytes. */
	ck_assert_int_eq(vm_op_decode(buf, len, &d), 0);
	ck_assert_int_eq(vm_op_serialize(&d, &again, &alen), 0);
	ck_assert_uint_eq(alen, len);
	ck_assert_int_eq(memcmp(again, buf, len), 0);
	free(again);
	/* Every truncation. */
	for (size_t n = 0; n < len; n++)
		ck_assert_msg(vm_op_decode(buf, n, &d) == VM_ECORRUPT,
			      "%s: %zu of %zu bytes decoded", vm_op_name(t), n,
			      len);
	/* Trailing bytes. */
	big = malloc(len + 8);
	ck_assert_ptr_nonnull(big);
	memcpy(big, buf, len);
	memset(big + len, 0, 8);
	for (size_t extra = 1; extra <= 8; extra++)
		ck_assert_msg(vm_op_decode(big, len + extra, &d) == VM_ECORRUPT,
			      "%s with %zu trailing bytes decoded",
			      vm_op_name(t), extra);
	/* Unknown types. */
	memcpy(big, buf, len);
	for (unsigned bad = 0; bad < 256; bad++) {
		if (bad >= VM_OP_PROCESS_CREATE && bad < VM_OP_TYPE_END)
			continue;
		big[1] = (uint8_t)bad;
		ck_assert_msg(vm_op_decode(big, len, &d) == VM_ECORRUPT,
			      "type %u decoded", bad);
	}
	/* Unknown encoding versions. */
	memcpy(big, buf, len);
	for (unsigned v = 0; v < 256; v++) {
		if (v == VM_OP_ENCODING)
			continue;
		big[0] = (uint8_t)v;
		ck_assert_msg(vm_op_decode(big, len, &d) == VM_EVERSION,
			      "encoding version %u: not VM_EVERSION", v);
	}
	/* A boolean that is neither 0 nor 1. */
	b = last_bool_offset(t, len);
	if (b) {
		memcpy(big, buf, len);
		ck_assert_uint_le(big[b], 1);
		big[b] = 2;
		ck_assert_msg(vm_op_decode(big, len, &d) == VM_ECORRUPT,
			      "%s with a boolean of 2 decoded", vm_op_name(t));
	}
	free(big);
	free(buf);
}
END_TEST

START_TEST(op_decode_rejects_empty_and_oversized_name)
{
	struct vm_op d;
	uint8_t rec[2 + 2 + 64 + 33] = { 0 };
	size_t n = 0;

	ck_assert_int_eq(vm_op_decode(rec, 0, &d), VM_ECORRUPT);
	/* A process name longer than VM_PROC_NAME_MAX. */
	rec[n++] = VM_OP_ENCODING;
	rec[n++] = VM_OP_PROCESS_CREATE;
	rec[n++] = VM_PROC_NAME_MAX + 1;
	rec[n++] = 0;
	memset(rec + n, 'a', VM_PROC_NAME_MAX + 1);
	n += VM_PROC_NAME_MAX + 1;
	memset(rec + n, 0, 4 * 8);
	n += 4 * 8;
	rec[n++] = 1;
	ck_assert_uint_le(n, sizeof(rec));
	ck_assert_int_eq(vm_op_decode(rec, n, &d), VM_ECORRUPT);
	/* The same record with a name that fits decodes. */
	rec[2] = VM_PROC_NAME_MAX;
	memmove(rec + 4 + VM_PROC_NAME_MAX, rec + 4 + VM_PROC_NAME_MAX + 1,
		n - (4 + VM_PROC_NAME_MAX + 1));
	n--;
	ck_assert_int_eq(vm_op_decode(rec, n, &d), 0);
	ck_assert_uint_eq(strlen(d.u.create.name), VM_PROC_NAME_MAX);
}
END_TEST

/*
 * A process name with a NUL inside (found by tests/fuzz/fuzz_op): no
 * encoder writes one, and it would read back as a shorter name that
 * encodes to other bytes.
 */
START_TEST(op_decode_rejects_a_nul_in_a_name)
{
	static const uint8_t rec[] = {
		VM_OP_ENCODING, VM_OP_PROCESS_CREATE, 3, 0, 'o', 'n', 0,
		0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0,
		0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0,
	};
	uint8_t ok[sizeof(rec)];
	struct vm_op d;

	ck_assert_int_eq(vm_op_decode(rec, sizeof(rec), &d), VM_ECORRUPT);
	/* The same record with a name of three letters decodes. */
	memcpy(ok, rec, sizeof(rec));
	ok[6] = 'e';
	ck_assert_int_eq(vm_op_decode(ok, sizeof(ok), &d), 0);
	ck_assert_str_eq(d.u.create.name, "one");
}
END_TEST

/*
 * A kernel page-table entry aimed beyond RAM, or at a table another entry
 * names (both found by tests/fuzz/fuzz_state): the reference table's
 * kernel half belongs to no process, so only the decoder sees it, and the
 * next vmalloc would write through it.
 */
START_TEST(state_decode_checks_the_kernel_tables)
{
	struct vm_machine *m = boot(tu_arches[_i], 32 * VM_MiB, 64), *out;
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = l->arch;
	struct vm_error err = { 0 };
	uint64_t cr3, e = 0, bad, off, word, mask;
	uint32_t pid;
	uint8_t *buf, pat[10];
	size_t len, at = 0, found = 0;
	unsigned i, shift;

	/* A vmalloc area: on i386 the direct map is all large pages, and
	 * the area's page table is the kernel half's first table. */
	tu_vmalloc(m, 2 * VM_PAGE_SIZE, true);
	ck_assert_int_eq(vm_cpu_get(m, 0, &pid, &cr3), 0);
	ck_assert_uint_eq(pid, 0);
	/* The first kernel-half entry that names a table (not a leaf). */
	for (i = l->kernel_pgd_boundary; i < a->level[0].entries; i++) {
		e = vm_test_phys_read(m, cr3 + (uint64_t)i * a->entry_size,
				      a->entry_size);
		/* Bit 7 is PS: a large page at this level on i386. */
		if ((e & VM_PTE_P) && !(e & (1u << 7)))
			break;
	}
	ck_assert_uint_lt(i, a->level[0].entries);
	/*
	 * Its record in the encoding: RAM is encoded in 8-byte words, each
	 * a u16 index in its frame and a u64 value (two entries on i386).
	 */
	off = (uint64_t)i * a->entry_size;
	word = vm_test_phys_read(m, cr3 + (off & ~7ull), 8);
	vm_state_serialize(m, &buf, &len);
	pat[0] = (uint8_t)(off / 8);
	pat[1] = (uint8_t)(off / 8 >> 8);
	for (int k = 0; k < 8; k++)
		pat[2 + k] = (uint8_t)(word >> (8 * k));
	for (size_t k = 0; k + sizeof(pat) <= len; k++)
		if (memcmp(buf + k, pat, sizeof(pat)) == 0) {
			at = k;
			found++;
		}
	ck_assert_uint_eq(found, 1);
	/* The same flags, a frame beyond the machine's 32 MiB; then the
	 * top table itself, a table that another entry names. */
	shift = (unsigned)(off & 7) * 8;
	mask = a->entry_size == 8 ? ~0ull : 0xffffffffull << shift;
	for (int t = 0; t < 2; t++) {
		uint64_t to = t == 0 ? 0xfff00000u : cr3;

		bad = (word & ~mask) | (((e & 0xfff) | to) << shift);
		for (int k = 0; k < 8; k++)
			buf[at + 2 + k] = (uint8_t)(bad >> (8 * k));
		out = NULL;
		err.detail[0] = '\0';
		ck_assert_msg(vm_state_decode(buf, len, &out, &err) ==
				      VM_ECORRUPT,
			      "%s: entry %u aimed at %#llx decoded",
			      tu_arches[_i], i, (unsigned long long)to);
		ck_assert_ptr_null(out);
		ck_assert_str_ne(err.detail, "");
	}
	free(buf);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("invariants");
	TCase *checks = tcase_create("checkers");
	TCase *state = tcase_create("state_decode");
	TCase *ops = tcase_create("op_decode");

	tcase_set_timeout(checks, 120.0 * tu_scale());
	tcase_set_timeout(state, 300.0 * tu_scale());
	tcase_add_loop_test(checks, checker_catches_corruption, 0,
			    4 * VM_CORRUPT_COUNT);
	tcase_add_loop_test(checks, corruption_needs_its_state, 0, 4);
	tcase_add_loop_test(state, state_decode_rejects_truncations, 0, 4);
	tcase_add_loop_test(state, state_decode_survives_flipped_bytes, 0, 4);
	tcase_add_loop_test(state, state_decode_checks_magic_and_format, 0, 4);
	tcase_add_loop_test(state, state_decode_checks_the_kernel_tables, 0, 4);
	tcase_add_loop_test(ops, op_decode_rejects_malformed, 0,
			    VM_OP_TYPE_END - VM_OP_PROCESS_CREATE);
	tcase_add_test(ops, op_decode_rejects_empty_and_oversized_name);
	tcase_add_test(ops, op_decode_rejects_a_nul_in_a_name);
	suite_add_tcase(s, checks);
	suite_add_tcase(s, state);
	suite_add_tcase(s, ops);
	return tu_run(s);
}
