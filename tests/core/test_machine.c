/* test_machine.c - boot, processes, clone and state round trip, per arch. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "core/buddy.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/process.h"
#include "core/state.h"
#include "tests/core/testutil.h"

START_TEST(boots_and_checks)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 2 * VM_GiB);

	tu_assert_checks(m);
	ck_assert_uint_eq(vm_machine_version(m), 0);
	ck_assert_uint_eq(vm_machine_nprocesses(m), 0);
	vm_machine_free(m);
}
END_TEST

START_TEST(exit_returns_every_frame)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 1 * VM_GiB);
	uint64_t before = vm_machine_frames_in_use(m);
	struct vm_op op = { .type = VM_OP_PROCESS_EXIT };
	struct vm_error e;
	uint64_t after_create;
	/*
	 * x86_64 kernel stacks are vmalloc'd: the first one adds the kernel
	 * tables below the preallocated second level, and those stay.
	 */
	const struct vm_arch *a = vm_arch_get(vm_machine_config(m)->arch);
	uint64_t slack = a->is64 ? a->levels - 2u : 0;

	op.u.exit.pid = tu_create(m, "init", true);
	after_create = vm_machine_frames_in_use(m);
	ck_assert_uint_gt(after_create, before + 16 + 4 + 32);
	tu_assert_checks(m);
	ck_assert_int_eq(vm_machine_apply(m, &op, NULL, &e), 0);
	tu_assert_checks(m);
	ck_assert_uint_le(vm_machine_frames_in_use(m), before + slack);
	ck_assert_uint_ge(vm_machine_frames_in_use(m), before);
	ck_assert_uint_eq(vm_machine_nprocesses(m), 0);
	vm_machine_free(m);
}
END_TEST

START_TEST(clone_and_round_trip_keep_the_digest)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 1 * VM_GiB), *c, *d;
	uint8_t *a, *b;
	size_t alen, blen;
	struct vm_error e;

	tu_create(m, "init", true);
	c = vm_machine_clone(m);
	ck_assert_uint_eq(vm_machine_digest(c), vm_machine_digest(m));
	ck_assert_uint_eq(vm_machine_version(c), vm_machine_version(m));
	vm_state_serialize(m, &a, &alen);
	ck_assert_int_eq(vm_state_decode(a, alen, &d, &e), 0);
	vm_state_serialize(d, &b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_int_eq(memcmp(a, b, alen), 0);
	free(a);
	free(b);
	vm_machine_free(c);
	vm_machine_free(d);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("machine");
	TCase *tc = tcase_create("machine");

	tcase_add_loop_test(tc, boots_and_checks, 0, 4);
	tcase_add_loop_test(tc, exit_returns_every_frame, 0, 4);
	tcase_add_loop_test(tc, clone_and_round_trip_keep_the_digest, 0, 4);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
