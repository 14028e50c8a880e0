/*
 * phys.h - the contents of physical memory, as the MMU reads it.
 *
 * The model keeps data only where it decides translations: page-table
 * frames. Any frame can be read (a frame with no stored contents reads as
 * zeros); a frame gets host storage on its first non-zero write and gives
 * it back when its last non-zero entry is cleared, so an empty table, such
 * as a preallocated kernel PUD, costs no host memory.
 *
 * The page-table walker reads entries only through phys_read(), so a raw
 * write through phys_write() changes translations exactly as a write to
 * RAM would on real hardware.
 */
#ifndef VM_PHYS_H
#define VM_PHYS_H

#include <stdint.h>

#include "hmap.h"
#include "hostmem.h"

struct vm_phys {
	struct vm_hmap frames;  /* pfn -> struct phys_frame * */
	struct vm_hostmem *hm;
};

void phys_init(struct vm_phys *p, struct vm_hostmem *hm);
void phys_release(struct vm_phys *p);

/* Reads a 4- or 8-byte little-endian value at pa (naturally aligned). */
uint64_t phys_read(const struct vm_phys *p, uint64_t pa, unsigned size);

/* Writes a 4- or 8-byte value at pa (naturally aligned). */
void phys_write(struct vm_phys *p, uint64_t pa, unsigned size, uint64_t v);

/* Whether a frame holds any non-zero byte. */
int phys_frame_nonzero(const struct vm_phys *p, uint64_t pfn);

/* Zeroes a frame (drops its storage). */
void phys_clear_frame(struct vm_phys *p, uint64_t pfn);

/*
 * The stored frame's 4096 bytes, or NULL when the frame reads as zeros.
 * For the walker's fast path and for encoding.
 */
const uint8_t *phys_frame_bytes(const struct vm_phys *p, uint64_t pfn);

/* Stored frames, and their pfns in ascending order (out: count entries). */
size_t phys_count(const struct vm_phys *p);
void phys_pfns_sorted(const struct vm_phys *p, uint64_t *out);

#endif
