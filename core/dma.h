/*
 * dma.h - may a device DMA to this buffer? (SPEC 1.8)
 *
 * The rules of Documentation/core-api/dma-api-howto.rst: dma_map_single
 * takes memory from kmalloc or the page allocator (direct-mapped, one
 * physically contiguous range, below the device's mask); anything else
 * (vmalloc, kmap, the kernel image, stacks, user pages) goes through a
 * scatter-gather list built from the pages behind it, which works without
 * bounce buffers when every page is mapped and below the mask.
 *
 * A pure query: nothing is allocated; segments are handed to a callback.
 */
#ifndef VM_DMA_H
#define VM_DMA_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct vm_machine;

#define VM_DMA_MAX_LENGTH (1ULL << 30)

/* Reasons, as bits; names in vm_dma_reason_name. */
enum vm_dma_reason {
	VM_DMA_VMALLOC_ADDRESS = 1u << 0,
	VM_DMA_NOT_CONTIGUOUS = 1u << 1,
	VM_DMA_ABOVE_DMA_MASK = 1u << 2,
	VM_DMA_UNMAPPED = 1u << 3,
	VM_DMA_USER_ADDRESS = 1u << 4,
	VM_DMA_KERNEL_IMAGE = 1u << 5,
	VM_DMA_KMAP_ADDRESS = 1u << 6,
	VM_DMA_CROSSES_ALLOCATIONS = 1u << 7,
	VM_DMA_NOT_ALLOCATED = 1u << 8,  /* direct-mapped, but not from
					    kmalloc or alloc_pages */
	VM_DMA_KERNEL_STACK = 1u << 9,
};
#define VM_DMA_NREASONS 10

/* "vmalloc_address", ... for bit i (0..VM_DMA_NREASONS-1). */
const char *vm_dma_reason_name(unsigned bit);

struct vm_dma_req {
	uint64_t va;
	uint64_t length;         /* 1 .. 1 GiB */
	unsigned mask_bits;      /* 1 .. 64 (32 by default at the API) */
	bool has_pid;            /* a user address needs its process */
	uint32_t pid;
};

struct vm_dma_result {
	bool single_ok;
	bool sg_ok;
	uint32_t reasons;        /* VM_DMA_* bits */
	uint64_t nsegments;
};

/* Called for each segment of the scatter-gather list, in order. */
typedef void (*vm_dma_segment_fn)(void *ctx, uint64_t pa, uint64_t length);

int vm_dma_check(const struct vm_machine *m, const struct vm_dma_req *req,
		 struct vm_dma_result *out, vm_dma_segment_fn fn, void *ctx,
		 struct vm_error *err);

#endif
