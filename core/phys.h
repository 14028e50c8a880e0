/*
 * phys.h - the contents of physical memory, as the MMU reads it.
 *
 * The model keeps data only where it decides translations: page-table
 * frames. Any frame can be read (a frame with no stored contents reads as
 * zeros); a frame gets host storage on its first non-zero write and gives
 * it back when its last non-zero entry is cleared, so an empty table, such
 * as a preallocated kernel PUD, costs no host memory; within a frame,
 * storage comes in chunks (below).
 *
 * The page-table walker reads entries only through phys_read(), so a raw
 * write through phys_write() changes translations exactly as a write to
 * RAM would on real hardware.
 */
#ifndef VM_PHYS_H
#define VM_PHYS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "hmap.h"
#include "le.h"
#include "hostmem.h"

struct vm_phys {
	struct vm_hmap frames;  /* pfn -> struct phys_frame (inline) */
	struct vm_hostmem *hm;
};

void phys_init(struct vm_phys *p, struct vm_hostmem *hm);
void phys_release(struct vm_phys *p);

/*
 * A frame is kept as 8 chunks of 512 bytes (64 eight-byte words), each
 * stored only while it holds a non-zero word: most tables use a few
 * neighbouring entries (a process's text, heap and stack each take a
 * handful of PTEs), so a table costs its header and one chunk, not 4 KiB.
 */
#define PHYS_FRAME_BYTES 4096u
#define PHYS_CHUNK_SHIFT 9
#define PHYS_CHUNK_BYTES (1u << PHYS_CHUNK_SHIFT)
#define PHYS_NCHUNKS (PHYS_FRAME_BYTES / PHYS_CHUNK_BYTES)

struct phys_frame {
	uint8_t *chunk[PHYS_NCHUNKS];     /* NULL: the chunk reads as zeros */
	uint16_t nonzero[PHYS_NCHUNKS];   /* non-zero words of each chunk */
	uint16_t total;                   /* of the whole frame */
};

/* Internal to phys and its inline reader. */
static inline struct phys_frame *phys_frame_(const struct vm_phys *p,
					     uint64_t pfn)
{
	return hmap_get(&p->frames, pfn);
}

/*
 * Reads a 4- or 8-byte little-endian value at pa (naturally aligned).
 * Inline: every level of every page-table walk comes here.
 */
static inline uint64_t phys_read(const struct vm_phys *p, uint64_t pa,
				 unsigned size)
{
	const struct phys_frame *f = phys_frame_(p, pa >> 12);
	unsigned off = (unsigned)(pa & (PHYS_FRAME_BYTES - 1));
	const uint8_t *c;

	if (!f || !(c = f->chunk[off >> PHYS_CHUNK_SHIFT]))
		return 0;
	c += off & (PHYS_CHUNK_BYTES - 1);
	return size == 8 ? vm_le64(c) : vm_le32(c);
}

/* Writes a 4- or 8-byte value at pa (naturally aligned). */
void phys_write(struct vm_phys *p, uint64_t pa, unsigned size, uint64_t v);

/* Whether a frame holds any non-zero byte. */
int phys_frame_nonzero(const struct vm_phys *p, uint64_t pfn);

/* Zeroes a frame (drops its storage). */
void phys_clear_frame(struct vm_phys *p, uint64_t pfn);

/*
 * Encodes a frame for the canonical state: u32 pfn, u16 count of non-zero
 * 8-byte words, then each one's u16 index and u64 value, by index.
 */
struct vm_enc;
void phys_encode_frame(const struct vm_phys *p, uint64_t pfn,
		       struct vm_enc *e);
/* Stored frames, and their pfns in ascending order (out: count entries). */
size_t phys_count(const struct vm_phys *p);
void phys_pfns_sorted(const struct vm_phys *p, uint64_t *out);

#endif
