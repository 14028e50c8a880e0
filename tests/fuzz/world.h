/*
 * world.h - what the fuzz targets and their seed generator share: the
 * API's world of fuzz_dispatch and the starting machine of fuzz_op.
 *
 * The world (fuzz_world_init): with auth off, the caller is the admin in
 * namespace "local", which has machines m1 (x86_64, 64 MiB, two CPUs; a
 * process with a mapping on CPU 1, a kmalloc, a vmalloc area, pages, and
 * their log) and m2 (i386, 32 MiB); with auth on, tokens "admin-secret"
 * (the admin), "tok-alice", "tok-bob" (tenants), "tok-carol" (a tenant
 * over her request rate) and "tok-grader", where alice has lab1 (with a
 * process) shared with bob for reading. The store
 * and the directory are in memory (tests/support/memstore.h); every
 * change either makes is seen (fuzz_dirty, fuzz_committed), and
 * fuzz_world_reset puts the world back as it was made.
 */
#ifndef TESTS_FUZZ_WORLD_H
#define TESTS_FUZZ_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "tests/support/memstore.h"

#define FUZZ_NSLOTS 12     /* machines the store holds at most */

extern struct api_ctx fuzz_ctx;
extern struct memstore fuzz_store;
extern bool fuzz_dirty;      /* the store or directory changed */
extern bool fuzz_committed;  /* an operation was committed */

/* What m1's setup answered: the addresses of its kmalloc, vmalloc area,
 * pages and pid 1's mapping, that valid frees and unmaps name. */
extern char fuzz_m1_kva[24], fuzz_m1_vva[24], fuzz_m1_pa[24];
extern char fuzz_m1_map[24];

void fuzz_world_init(void);
void fuzz_world_reset(void);

/*
 * A request in fuzz_dispatch's framing (its header comment): the method
 * line, the target, header lines up to an empty one, the body.
 */
#define FUZZ_FIELD 4096    /* method line, target or header, at most */

struct fuzz_request {
	struct api_request rq;
	bool auth;                 /* the method line said " auth" */
	char method[64], target[FUZZ_FIELD], h[FUZZ_FIELD];
	char ctype[FUZZ_FIELD], ifm[FUZZ_FIELD], authz[FUZZ_FIELD];
	char *body;                /* malloc'd, exactly body_len bytes */
};

void fuzz_request_parse(const uint8_t *data, size_t size,
			struct fuzz_request *fr);
void fuzz_request_free(struct fuzz_request *fr);

/* fuzz_op's machine: x86_64, 32 MiB, two CPUs, a process (pid 1) with a
 * mapping on CPU 1, a kmalloc, a vmalloc area and pages of order 1. */
struct vm_machine *fuzz_op_start(void);

#endif
