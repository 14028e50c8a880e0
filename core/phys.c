/* phys.c - sparse page-table frame contents; see phys.h. */
#include <string.h>

#include "enc.h"
#include "phys.h"

void phys_init(struct vm_phys *p, struct vm_hostmem *hm)
{
	/* Headers live in the map's slots: one load less on every walk. */
	hmap_init(&p->frames, sizeof(struct phys_frame));
	p->hm = hm;
}

static void frame_free(struct vm_phys *p, struct phys_frame *f)
{
	for (unsigned c = 0; c < PHYS_NCHUNKS; c++)
		if (f->chunk[c])
			hm_free(p->hm, f->chunk[c], PHYS_CHUNK_BYTES);
}

void phys_release(struct vm_phys *p)
{
	size_t cur = 0;
	struct phys_frame *f;

	while ((f = hmap_next(&p->frames, &cur, NULL)))
		frame_free(p, f);
	hmap_release(&p->frames, p->hm);
}

static inline struct phys_frame *frame_of(const struct vm_phys *p,
					  uint64_t pfn)
{
	return phys_frame_(p, pfn);
}

void phys_encode_frame(const struct vm_phys *p, uint64_t pfn,
		       struct vm_enc *e)
{
	const struct phys_frame *f = frame_of(p, pfn);

	enc_u32(e, (uint32_t)pfn);
	enc_u16(e, f ? f->total : 0);
	if (!f)
		return;
	enc_reserve(e, f->total * 10u);
	for (unsigned c = 0; c < PHYS_NCHUNKS; c++) {
		const uint8_t *b = f->chunk[c];

		for (unsigned w = 0; b && w < PHYS_CHUNK_BYTES / 8; w++) {
			uint64_t v = vm_le64(b + 8 * w);

			if (v) {
				enc_u16(e, (uint16_t)(c * PHYS_CHUNK_BYTES / 8 +
						      w));
				enc_u64(e, v);
			}
		}
	}
}

void phys_write(struct vm_phys *p, uint64_t pa, unsigned size, uint64_t v)
{
	uint64_t pfn = pa >> 12;
	unsigned off = (unsigned)(pa & (PHYS_FRAME_BYTES - 1));
	unsigned ci = off >> PHYS_CHUNK_SHIFT, co = off & (PHYS_CHUNK_BYTES - 1);
	struct phys_frame *f = frame_of(p, pfn);
	uint8_t *c;
	bool was_zero, is_zero;

	if (!f) {
		if (v == 0)
			return;
		f = hmap_put(&p->frames, p->hm, pfn);
	}
	c = f->chunk[ci];
	if (!c) {
		if (v == 0)
			return;
		c = f->chunk[ci] = hm_zalloc(p->hm, PHYS_CHUNK_BYTES);
	}
	was_zero = vm_le64(c + (co & ~7u)) == 0;
	for (unsigned i = 0; i < size; i++)
		c[co + i] = (uint8_t)(v >> (8 * i));
	is_zero = vm_le64(c + (co & ~7u)) == 0;
	if (was_zero == is_zero)
		return;
	if (!is_zero) {
		f->nonzero[ci]++;
		f->total++;
		return;
	}
	f->total--;
	if (--f->nonzero[ci] == 0) {
		hm_free(p->hm, c, PHYS_CHUNK_BYTES);
		f->chunk[ci] = NULL;
	}
	if (f->total == 0)
		phys_clear_frame(p, pfn);
}

int phys_frame_nonzero(const struct vm_phys *p, uint64_t pfn)
{
	return frame_of(p, pfn) != NULL;
}

void phys_clear_frame(struct vm_phys *p, uint64_t pfn)
{
	struct phys_frame *f = frame_of(p, pfn);

	if (!f)
		return;
	frame_free(p, f);
	hmap_del(&p->frames, p->hm, pfn);
}

size_t phys_count(const struct vm_phys *p)
{
	return p->frames.count;
}

void phys_pfns_sorted(const struct vm_phys *p, uint64_t *out)
{
	hmap_keys_sorted(&p->frames, out);
}
