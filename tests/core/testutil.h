/*
 * testutil.h - what the core Check tests share: the architecture names,
 * VMLAB_TEST_SCALE, a splitmix64 step, booting a machine and asserting that
 * it boots, asserting that vm_machine_check passes, builders for each
 * operation, applying an operation that must succeed (returning its
 * result) or must be refused (and change nothing), and running a suite.
 *
 * Every tu_* assertion fails the running test through Check. The library
 * uses core/ only, like the tests that link it.
 */
#ifndef VMLAB_TESTS_CORE_TESTUTIL_H
#define VMLAB_TESTS_CORE_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/arch.h"
#include "core/machine.h"
#include "core/op.h"

/* The four architectures, in vm_arch_id order; and the two 64-bit ones. */
extern const char *const tu_arches[4];
extern const char *const tu_arches64[2];

/* VMLAB_TEST_SCALE: multiplies loop counts and timeouts (default 1). */
unsigned tu_scale(void);

/* One step of splitmix64 on *state: the tests' own PRNG, not core's. */
uint64_t tu_splitmix(uint64_t *state);

/* vm_config_default, then arch (by name) and memory. */
void tu_config(struct vm_config *c, const char *arch, uint64_t memory);

/* Creates a machine from c; the boot must succeed. */
struct vm_machine *tu_boot_config(const struct vm_config *c);

/* A machine of arch and memory with every other parameter the default. */
struct vm_machine *tu_boot(const char *arch, uint64_t memory);

/* The machine's architecture. */
const struct vm_arch *tu_arch_of(const struct vm_machine *m);

/* Where the default text segment starts (SPEC 1.5). */
uint64_t tu_text_start(const struct vm_machine *m);

/* vm_machine_check must pass; a failure shows the detail. */
void tu_assert_checks(const struct vm_machine *m);

/* ---- operation builders: every other field zero ---- */

struct vm_op tu_op_create(const char *name, uint64_t text, uint64_t data,
			  uint64_t heap, uint64_t stack, bool populate);
struct vm_op tu_op_exit(uint32_t pid);
struct vm_op tu_op_mmap(uint32_t pid, uint64_t len, unsigned prot,
			bool has_addr, uint64_t addr, bool fixed,
			bool populate);
struct vm_op tu_op_munmap(uint32_t pid, uint64_t addr, uint64_t len);
struct vm_op tu_op_brk(uint32_t pid, bool absolute, int64_t inc,
		       uint64_t addr);
struct vm_op tu_op_kmalloc(uint64_t size, uint32_t gfp);
struct vm_op tu_op_kfree(uint64_t va);
struct vm_op tu_op_vmalloc(uint64_t size, bool guard);
struct vm_op tu_op_vfree(uint64_t va);
struct vm_op tu_op_alloc_pages(uint32_t order, uint32_t gfp);
struct vm_op tu_op_free_pages(uint64_t pa, uint32_t order);
struct vm_op tu_op_switch(uint32_t cpu, uint32_t pid);

/* ---- applying operations ---- */

/*
 * Applies op, which must succeed, and returns its result. what names the
 * operation in a failure message (NULL: the operation type's name).
 */
struct vm_op_result tu_apply_ok(struct vm_machine *m, const struct vm_op *op,
				const char *what);

/*
 * Applies op, which must be refused with code: the error carries code and
 * a non-empty detail, and digest, version and frames in use are unchanged
 * (SPEC 1.9: a refused request changes nothing).
 */
void tu_expect_fail(struct vm_machine *m, const struct vm_op *op, int code,
		    const char *what);

/* A process with the default segments (SPEC 1.5); returns its pid. */
uint32_t tu_create(struct vm_machine *m, const char *name, bool populate);
void tu_exit(struct vm_machine *m, uint32_t pid);

/* The allocators; each must succeed. */
struct vm_op_result tu_kmalloc(struct vm_machine *m, uint64_t size,
			       uint32_t gfp);
void tu_kfree(struct vm_machine *m, uint64_t va);
struct vm_op_result tu_vmalloc(struct vm_machine *m, uint64_t size,
			       bool guard);
void tu_vfree(struct vm_machine *m, uint64_t va);
struct vm_op_result tu_alloc_pages(struct vm_machine *m, uint32_t order,
				   uint32_t gfp);
void tu_free_pages(struct vm_machine *m, uint64_t pa, uint32_t order);

/* ---- running ---- */

/* Runs s (CK_ENV verbosity), frees it; EXIT_SUCCESS when nothing failed. */
int tu_run(Suite *s);

#endif
