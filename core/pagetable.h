/*
 * pagetable.h - x86 page tables stored in simulated frames.
 *
 * Tables are frames from the buddy allocator (lowmem, GFP_KERNEL), owned
 * by the process they serve (pid 0: the kernel), holding entries in the
 * real formats (arch.h). Every read and write of an entry goes through the
 * physical-memory accessor (phys.h), so the tables are exactly what the
 * simulated MMU sees.
 *
 * The kernel's reference table (swapper_pg_dir) is built at boot; every
 * process's top level gets its kernel-half entries (pgd_ctor), and a later
 * change of a kernel-half top-level entry in the reference table is copied
 * into every process at once (what Linux's sync_global_pgds and
 * arch_sync_kernel_mappings guarantee; on x86_64 the vmalloc tables are
 * preallocated so the entries never change).
 *
 * Internal to core/ (takes the machine's inside).
 */
#ifndef VM_PAGETABLE_H
#define VM_PAGETABLE_H

#include <stdint.h>

#include "machine_int.h"

/* One level of a walk: what the MMU read there. */
struct vm_walk_step {
	uint8_t level;        /* index into arch->level[] */
	uint16_t index;
	uint64_t entry_pa;
	uint64_t entry;
};

struct vm_walk {
	unsigned nsteps;
	struct vm_walk_step step[VM_MAX_LEVELS];
	int leaf;             /* step index of the present leaf, or -1 */
	uint64_t pa;          /* translation when leaf >= 0 */
	uint64_t page_size;   /* page size of the leaf */
};

/*
 * Walks va from the top-level table at top_pfn, reading each entry through
 * phys_read, until a non-present entry or a leaf. Allocates nothing.
 */
void pt_walk(const struct vm_machine *m, uint64_t top_pfn, uint64_t va,
	     struct vm_walk *w);

/* Whether an entry at level i is a leaf (PS at a large-capable level). */
int pt_is_leaf(const struct vm_machine *m, unsigned level, uint64_t entry);

/* The frame address an entry at level i points to. */
uint64_t pt_entry_addr(const struct vm_machine *m, unsigned level,
		       uint64_t entry);

/* Leaf flags for a user page of prot (VM_PROT_*), populated. */
uint64_t pt_user_flags(const struct vm_machine *m, unsigned prot);
/* Leaf flags of a kernel data page (PAGE_KERNEL). */
uint64_t pt_kernel_flags(const struct vm_machine *m);

/*
 * Ensures the tables down to the PTE level exist for va under top_pfn,
 * allocating missing ones owned by pid, and returns the PTE table's pfn.
 */
int pt_ensure(struct vm_machine *m, uint64_t top_pfn, uint32_t pid,
	      uint64_t va, uint64_t *pte_table);

/* Writes the PTE for va in the PTE table pte_table. */
void pt_set_pte(struct vm_machine *m, uint64_t pte_table, uint64_t va,
		uint64_t entry);

/*
 * Clears the PTE mapping va under top_pfn, if any; returns the old entry
 * (0 when nothing was mapped). *next is the next address that may have a
 * PTE: past the whole span of a missing table, so that unmapping a huge
 * region that was never populated costs its tables, not its pages.
 */
uint64_t pt_clear_pte(struct vm_machine *m, uint64_t top_pfn, uint64_t va,
		      uint64_t *next);

/*
 * Frees the user-half tables under top_pfn that hold no entry and cover
 * only addresses in [lo, hi) (free_pgtables), deepest first, in address
 * order. The top level and PAE's preallocated PMDs are kept.
 */
void pt_prune(struct vm_machine *m, uint64_t top_pfn, uint64_t lo,
	      uint64_t hi);

/* Builds the reference table at boot; returns 0 or VM_ENOMEM. */
int pt_build_kernel(struct vm_machine *m);

/*
 * Allocates a process's top level (PAE: the PDPT and its user PMDs) and
 * copies the kernel half from the reference table (pgd_alloc + pgd_ctor).
 */
int pt_pgd_alloc(struct vm_machine *m, uint32_t pid, uint64_t *pfn);

/* Frees a top level made by pt_pgd_alloc (its user half must be empty). */
void pt_pgd_free(struct vm_machine *m, uint64_t pfn);

/* Frames per page-table page needed, at most, to map n more user pages. */
uint64_t pt_tables_bound(const struct vm_machine *m, uint64_t n);

#endif
