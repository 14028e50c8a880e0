/*
 * vmalloc.h - the vmalloc areas of a machine, for queries.
 *
 * vmalloc and vfree are operations (op.h). Each area is virtually
 * contiguous and backed by separate order-0 frames (possibly highmem),
 * mapped in the kernel's reference table and followed by a guard page
 * unless it was made without one.
 */
#ifndef VM_VMALLOC_H
#define VM_VMALLOC_H

#include <stdbool.h>
#include <stdint.h>

struct vm_machine;

struct vm_vmalloc_info {
	uint64_t va;
	uint64_t pages;
	bool guard;
	bool kernel_stack;       /* a process's stack (CONFIG_VMAP_STACK) */
	uint32_t pid;            /* its process, for a kernel stack */
};

/* Areas in address order: count, and area i. */
uint32_t vm_vmalloc_count(const struct vm_machine *m);
void vm_vmalloc_get(const struct vm_machine *m, uint32_t i,
		    struct vm_vmalloc_info *out);

/* The pfn behind page p of area i. */
uint64_t vm_vmalloc_pfn(const struct vm_machine *m, uint32_t i, uint64_t p);

/* The index of the area that starts at va, or -1. */
int vm_vmalloc_at(const struct vm_machine *m, uint64_t va);

#endif
