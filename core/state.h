/*
 * state.h - a machine's canonical state: encode, decode, digest.
 *
 * The canonical form is a byte string that holds everything that decides
 * future results (SPEC 1.9): the configuration, the PRNG, the free lists
 * in list order, every allocated block and its owner, every non-zero
 * page-table entry, the slab lists, the vmalloc areas, the processes and
 * the CPUs. The same state always encodes to the same bytes, on any host.
 *
 * Layout: an 8-byte magic "VMLABST1", u32 format version, u32
 * model_version, u64 version (operations applied), then the body. The
 * digest is XXH64 (seed 0) of the body alone: it covers the simulated
 * state and nothing of the service's bookkeeping, so a clone has its
 * source's digest and replaying a machine's operations reproduces it.
 */
#ifndef VM_STATE_H
#define VM_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct vm_machine;
struct vm_enc;

#define VM_STATE_FORMAT 1

/* Appends m's canonical encoding to e. */
void vm_state_encode(const struct vm_machine *m, struct vm_enc *e);

/* The encoding in a fresh buffer, freed by the caller with free(). */
void vm_state_serialize(const struct vm_machine *m, uint8_t **buf,
			size_t *len);

/*
 * Rebuilds a machine from an encoding and checks every invariant; any
 * input that is not a valid state gives VM_ECORRUPT (or VM_EVERSION for a
 * format this build cannot read) and no machine.
 */
int vm_state_decode(const void *buf, size_t len, struct vm_machine **out,
		    struct vm_error *err);

/* XXH64 of len bytes (the digest's hash; xxhash.com's specification). */
uint64_t vm_xxh64(const void *buf, size_t len, uint64_t seed);

#endif
