/*
 * hostmem.h - host memory accounting for one machine.
 *
 * Every byte core/ holds for a machine is allocated through a vm_hostmem,
 * which counts bytes and allocation calls. The count is how the model keeps
 * its promise that host memory grows with what is mapped and allocated,
 * never with simulated RAM, and how a test proves that a query allocates
 * nothing.
 *
 * Host allocation failure aborts the process (after printing nothing: core
 * never prints): a simulator that cannot get host memory cannot keep its
 * state consistent, and the service bounds every structure long before the
 * host runs out (the Redis zmalloc policy).
 */
#ifndef VM_HOSTMEM_H
#define VM_HOSTMEM_H

#include <stddef.h>
#include <stdint.h>

struct vm_hostmem {
	size_t bytes;    /* bytes held now */
	uint64_t allocs; /* allocation calls ever made (malloc, calloc, realloc) */
};

/* Returns zeroed memory of `size` bytes (size > 0), counted in hm. */
void *hm_zalloc(struct vm_hostmem *hm, size_t size);

/* Resizes p from old to new bytes; new bytes beyond old are zeroed. */
void *hm_realloc(struct vm_hostmem *hm, void *p, size_t old, size_t new_size);

/* Frees p of `size` bytes; accepts NULL. */
void hm_free(struct vm_hostmem *hm, void *p, size_t size);

/*
 * Inserts item (elem bytes) at index i of the array *arr holding *n of
 * *cap elements, doubling the capacity (from 8) when full.
 */
void hm_array_insert(struct vm_hostmem *hm, void **arr, uint32_t *n,
		     uint32_t *cap, size_t elem, uint32_t i, const void *item);

#endif
