/* testutil.c - the helpers the core Check tests share; see testutil.h. */
#include "tests/core/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/layout.h"

const char *const tu_arches[4] = { "i386", "i386-pae", "x86_64",
				   "x86_64-la57" };
const char *const tu_arches64[2] = { "x86_64", "x86_64-la57" };

unsigned tu_scale(void)
{
	const char *s = getenv("VMLAB_TEST_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v > 0 ? (unsigned)v : 1;
}

uint64_t tu_splitmix(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- machines ---- */

void tu_config(struct vm_config *c, const char *arch, uint64_t memory)
{
	vm_config_default(c);
	c->arch = vm_arch_by_name(arch)->id;
	c->memory = memory;
}

struct vm_machine *tu_boot_config(const struct vm_config *c)
{
	struct vm_machine *m = NULL;
	struct vm_error e = { 0 };
	int rc = vm_machine_create(c, &m, &e);

	ck_assert_msg(rc == 0, "boot %s %llu MiB: %s",
		      vm_arch_get(c->arch)->name,
		      (unsigned long long)(c->memory / VM_MiB), e.detail);
	return m;
}

struct vm_machine *tu_boot(const char *arch, uint64_t memory)
{
	struct vm_config c;

	tu_config(&c, arch, memory);
	return tu_boot_config(&c);
}

const struct vm_arch *tu_arch_of(const struct vm_machine *m)
{
	return vm_machine_layout(m)->arch;
}

uint64_t tu_text_start(const struct vm_machine *m)
{
	return tu_arch_of(m)->is64 ? 0x400000ULL : 0x08048000ULL;
}

void tu_assert_checks(const struct vm_machine *m)
{
	struct vm_error e = { 0 };
	int rc = vm_machine_check(m, &e);

	ck_assert_msg(rc == 0, "invariant broken: %s", e.detail);
}

/* ---- operation builders ---- */

static struct vm_op op_of(enum vm_op_type type)
{
	struct vm_op op;

	memset(&op, 0, sizeof(op));
	op.type = type;
	return op;
}

struct vm_op tu_op_create(const char *name, uint64_t text, uint64_t data,
			  uint64_t heap, uint64_t stack, bool populate)
{
	struct vm_op op = op_of(VM_OP_PROCESS_CREATE);

	snprintf(op.u.create.name, sizeof(op.u.create.name), "%s", name);
	op.u.create.text = text;
	op.u.create.data = data;
	op.u.create.heap = heap;
	op.u.create.stack = stack;
	op.u.create.populate = populate;
	return op;
}

struct vm_op tu_op_exit(uint32_t pid)
{
	struct vm_op op = op_of(VM_OP_PROCESS_EXIT);

	op.u.exit.pid = pid;
	return op;
}

struct vm_op tu_op_mmap(uint32_t pid, uint64_t len, unsigned prot,
			bool has_addr, uint64_t addr, bool fixed,
			bool populate)
{
	struct vm_op op = op_of(VM_OP_MMAP);

	op.u.mmap.pid = pid;
	op.u.mmap.length = len;
	op.u.mmap.prot = (uint8_t)prot;
	op.u.mmap.has_addr = has_addr;
	op.u.mmap.addr = addr;
	op.u.mmap.fixed = fixed;
	op.u.mmap.populate = populate;
	return op;
}

struct vm_op tu_op_munmap(uint32_t pid, uint64_t addr, uint64_t len)
{
	struct vm_op op = op_of(VM_OP_MUNMAP);

	op.u.munmap.pid = pid;
	op.u.munmap.addr = addr;
	op.u.munmap.length = len;
	return op;
}

struct vm_op tu_op_brk(uint32_t pid, bool absolute, int64_t inc,
		       uint64_t addr)
{
	struct vm_op op = op_of(VM_OP_BRK);

	op.u.brk.pid = pid;
	op.u.brk.absolute = absolute;
	op.u.brk.increment = inc;
	op.u.brk.addr = addr;
	return op;
}

struct vm_op tu_op_kmalloc(uint64_t size, uint32_t gfp)
{
	struct vm_op op = op_of(VM_OP_KMALLOC);

	op.u.kmalloc.size = size;
	op.u.kmalloc.gfp = gfp;
	return op;
}

struct vm_op tu_op_kfree(uint64_t va)
{
	struct vm_op op = op_of(VM_OP_KFREE);

	op.u.kfree.va = va;
	return op;
}

struct vm_op tu_op_vmalloc(uint64_t size, bool guard)
{
	struct vm_op op = op_of(VM_OP_VMALLOC);

	op.u.vmalloc.size = size;
	op.u.vmalloc.guard = guard;
	return op;
}

struct vm_op tu_op_vfree(uint64_t va)
{
	struct vm_op op = op_of(VM_OP_VFREE);

	op.u.vfree.va = va;
	return op;
}

struct vm_op tu_op_alloc_pages(uint32_t order, uint32_t gfp)
{
	struct vm_op op = op_of(VM_OP_ALLOC_PAGES);

	op.u.alloc_pages.order = order;
	op.u.alloc_pages.gfp = gfp;
	return op;
}

struct vm_op tu_op_free_pages(uint64_t pa, uint32_t order)
{
	struct vm_op op = op_of(VM_OP_FREE_PAGES);

	op.u.free_pages.pa = pa;
	op.u.free_pages.order = order;
	return op;
}

struct vm_op tu_op_switch(uint32_t cpu, uint32_t pid)
{
	struct vm_op op = op_of(VM_OP_SWITCH);

	op.u.sw.cpu = cpu;
	op.u.sw.pid = pid;
	return op;
}

/* ---- applying operations ---- */

struct vm_op_result tu_apply_ok(struct vm_machine *m, const struct vm_op *op,
				const char *what)
{
	struct vm_op_result r;
	struct vm_error e = { 0 };
	int rc = vm_machine_apply(m, op, &r, &e);

	ck_assert_msg(rc == 0, "%s: %s (%s)",
		      what ? what : vm_op_name(op->type), vm_errname(rc),
		      e.detail);
	return r;
}

void tu_expect_fail(struct vm_machine *m, const struct vm_op *op, int code,
		    const char *what)
{
	struct vm_error e;
	uint64_t digest = vm_machine_digest(m);
	uint64_t version = vm_machine_version(m);
	uint64_t used = vm_machine_frames_in_use(m);
	int rc;

	memset(&e, 0, sizeof(e));
	rc = vm_machine_apply(m, op, NULL, &e);
	ck_assert_msg(rc == code, "%s: expected %s, got %s (%s)", what,
		      vm_errname(code), vm_errname(rc), e.detail);
	ck_assert_msg(e.code == code, "%s: err.code %d, returned %d", what,
		      e.code, rc);
	ck_assert_msg(e.detail[0] != '\0', "%s: empty detail", what);
	ck_assert_msg(vm_machine_digest(m) == digest,
		      "%s: the refused operation changed the digest", what);
	ck_assert_msg(vm_machine_version(m) == version,
		      "%s: the refused operation bumped the version", what);
	ck_assert_msg(vm_machine_frames_in_use(m) == used,
		      "%s: the refused operation moved frames", what);
}

uint32_t tu_create(struct vm_machine *m, const char *name, bool populate)
{
	struct vm_op op = tu_op_create(name, VM_SEG_DEFAULT, VM_SEG_DEFAULT,
				       VM_SEG_DEFAULT, VM_SEG_DEFAULT,
				       populate);

	return tu_apply_ok(m, &op, NULL).u.create.pid;
}

void tu_exit(struct vm_machine *m, uint32_t pid)
{
	struct vm_op op = tu_op_exit(pid);

	tu_apply_ok(m, &op, NULL);
}

struct vm_op_result tu_kmalloc(struct vm_machine *m, uint64_t size,
			       uint32_t gfp)
{
	struct vm_op op = tu_op_kmalloc(size, gfp);

	return tu_apply_ok(m, &op, NULL);
}

void tu_kfree(struct vm_machine *m, uint64_t va)
{
	struct vm_op op = tu_op_kfree(va);

	tu_apply_ok(m, &op, NULL);
}

struct vm_op_result tu_vmalloc(struct vm_machine *m, uint64_t size,
			       bool guard)
{
	struct vm_op op = tu_op_vmalloc(size, guard);

	return tu_apply_ok(m, &op, NULL);
}

void tu_vfree(struct vm_machine *m, uint64_t va)
{
	struct vm_op op = tu_op_vfree(va);

	tu_apply_ok(m, &op, NULL);
}

struct vm_op_result tu_alloc_pages(struct vm_machine *m, uint32_t order,
				   uint32_t gfp)
{
	struct vm_op op = tu_op_alloc_pages(order, gfp);

	return tu_apply_ok(m, &op, NULL);
}

void tu_free_pages(struct vm_machine *m, uint64_t pa, uint32_t order)
{
	struct vm_op op = tu_op_free_pages(pa, order);

	tu_apply_ok(m, &op, NULL);
}

/* ---- running ---- */

int tu_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
