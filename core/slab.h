/*
 * slab.h - the kmalloc caches, as /proc/slabinfo shows them.
 *
 * kmalloc-8 .. kmalloc-8k and their dma-kmalloc twins (ZONE_DMA), with the
 * geometry SLUB gives them on x86_64 (SPEC 1.6). Each cache keeps its
 * partial slabs most recently used first; an allocation takes the lowest
 * free object of the first partial slab, or a new slab; a slab that becomes
 * empty goes back to the buddy allocator at once. Above 8 KiB kmalloc is
 * kmalloc_large: one page-allocator block of the smallest order that
 * holds it; above KMALLOC_MAX_SIZE (4 MiB) it fails.
 *
 * kmalloc and kfree are operations (op.h); this header has the queries.
 */
#ifndef VM_SLAB_H
#define VM_SLAB_H

#include <stdint.h>

struct vm_machine;

#define VM_KMALLOC_MAX_CACHE 8192ULL
#define VM_KMALLOC_MAX_SIZE (4ULL << 20)
#define VM_ZERO_SIZE_PTR 0x10ULL

struct vm_cache_info {
	const char *name;          /* "kmalloc-96", "dma-kmalloc-1k" */
	uint32_t object_size;
	uint32_t objects_per_slab;
	uint32_t pages_per_slab;
	uint64_t active_objects;
	uint64_t total_objects;
	uint64_t slabs;
};

/* The name of cache i ("kmalloc-96", "dma-kmalloc-1k"). */
const char *vm_slab_cache_name(unsigned i);

/* The number of caches, and cache i in listing order. */
unsigned vm_slab_cache_count(void);
void vm_slab_cache_info(const struct vm_machine *m, unsigned i,
			struct vm_cache_info *out);

#endif
