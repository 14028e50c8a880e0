/*
 * testing.h - hooks for tests: watching frames move, and breaking state.
 *
 * Not for the service. The observer sees every frame allocation and free
 * that an operation makes, so a test can keep an independent reference of
 * frame ownership; the corruptions each break one invariant on purpose, so
 * a test can show that vm_machine_check notices.
 */
#ifndef VM_TESTING_H
#define VM_TESTING_H

#include <stdint.h>

#include "owner.h"

struct vm_machine;

typedef void (*vm_frame_observer)(void *ctx, int alloc, uint64_t pfn,
				  unsigned order, const struct vm_owner *owner);

/* Calls fn for each frame allocation (alloc 1) and free (alloc 0) from now
 * on; NULL stops. Boot has happened before anyone can watch. */
void vm_machine_set_observer(struct vm_machine *m, vm_frame_observer fn,
			     void *ctx);

/*
 * Raw access to simulated RAM through the accessor the MMU uses: a write
 * into a table frame changes translations as a store to RAM would.
 * size is the entry size, 4 or 8; pa naturally aligned.
 */
uint64_t vm_test_phys_read(const struct vm_machine *m, uint64_t pa,
			   unsigned size);
void vm_test_phys_write(struct vm_machine *m, uint64_t pa, unsigned size,
			uint64_t value);

enum vm_corruption {
	VM_CORRUPT_FREE_COUNT,     /* a free-list count off by one */
	VM_CORRUPT_OWNED_TWICE,    /* an allocated frame also on a free list */
	VM_CORRUPT_USER_PTE,       /* a user PTE aimed at a kernel frame */
	VM_CORRUPT_KERNEL_HALF,    /* a process's kernel-half entry changed */
	VM_CORRUPT_VMALLOC_PTE,    /* a vmalloc PTE aimed at another frame */
	VM_CORRUPT_SLAB_INUSE,     /* a slab's object count off by one */
	VM_CORRUPT_VMA_OVERLAP,    /* two regions of a process overlap */
	VM_CORRUPT_CR3,            /* a CPU's CR3 not its task's table */
	VM_CORRUPT_COUNT
};

/*
 * Breaks one invariant. Needs something to break: a process (user PTE,
 * kernel half, regions with at least two), a vmalloc area, a slab;
 * VM_ENOENT when the machine has none.
 */
int vm_test_corrupt(struct vm_machine *m, enum vm_corruption what);

#endif
