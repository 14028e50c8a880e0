/* phys.c - sparse page-table frame contents; see phys.h. */
#include <string.h>

#include "phys.h"

#define FRAME_BYTES 4096

struct phys_frame {
	uint32_t nonzero;            /* entries (8-byte words) not zero */
	uint8_t bytes[FRAME_BYTES];
};

void phys_init(struct vm_phys *p, struct vm_hostmem *hm)
{
	hmap_init(&p->frames, sizeof(struct phys_frame *));
	p->hm = hm;
}

void phys_release(struct vm_phys *p)
{
	size_t cur = 0;
	struct phys_frame **f;

	while ((f = hmap_next(&p->frames, &cur, NULL)))
		hm_free(p->hm, *f, sizeof(**f));
	hmap_release(&p->frames, p->hm);
}

static inline struct phys_frame *frame_of(const struct vm_phys *p,
					  uint64_t pfn)
{
	struct phys_frame **f = hmap_get(&p->frames, pfn);

	return f ? *f : NULL;
}

const uint8_t *phys_frame_bytes(const struct vm_phys *p, uint64_t pfn)
{
	struct phys_frame *f = frame_of(p, pfn);

	return f ? f->bytes : NULL;
}

static inline uint64_t load_le(const uint8_t *b, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint64_t phys_read(const struct vm_phys *p, uint64_t pa, unsigned size)
{
	struct phys_frame *f = frame_of(p, pa >> 12);

	return f ? load_le(f->bytes + (pa & (FRAME_BYTES - 1)), size) : 0;
}

/* Whether the aligned 8-byte word holding offset is all zero. */
static inline int word_zero(const uint8_t *b, unsigned off)
{
	return load_le(b + (off & ~7u), 8) == 0;
}

void phys_write(struct vm_phys *p, uint64_t pa, unsigned size, uint64_t v)
{
	uint64_t pfn = pa >> 12;
	unsigned off = (unsigned)(pa & (FRAME_BYTES - 1));
	struct phys_frame *f = frame_of(p, pfn);
	int was_zero;

	if (!f) {
		if (v == 0)
			return;
		f = hm_zalloc(p->hm, sizeof(*f));
		*(struct phys_frame **)hmap_put(&p->frames, p->hm, pfn) = f;
	}
	was_zero = word_zero(f->bytes, off);
	for (unsigned i = 0; i < size; i++)
		f->bytes[off + i] = (uint8_t)(v >> (8 * i));
	if (was_zero && !word_zero(f->bytes, off))
		f->nonzero++;
	else if (!was_zero && word_zero(f->bytes, off))
		f->nonzero--;
	if (f->nonzero == 0)
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
	hm_free(p->hm, f, sizeof(*f));
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
