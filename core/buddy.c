/* buddy.c - zones, free lists and frame ownership; see buddy.h. */
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "enc.h"
#include "hmap.h"

#define NONE UINT32_MAX
#define MAX_BLOCK (1ULL << VM_MAX_ORDER)
#define MAX_RESERVATIONS 8

/* A block touched since boot: allocated, or free and on a list. */
struct frame_rec {
	struct vm_owner owner;  /* FREE for a free block */
	uint32_t next, prev;    /* list links (free blocks), NONE at ends */
	uint8_t order;
	uint8_t free;
};

/* Order-10 blocks never touched since boot: [next, end), step 1024. */
struct virgin_run {
	uint64_t next, end;
};

struct zone_lists {
	uint32_t head[VM_NR_ORDERS];
	uint64_t count[VM_NR_ORDERS];  /* explicit blocks on each list */
	struct virgin_run *runs;       /* ascending; only the first shrinks */
	unsigned nruns, first_run;
	uint64_t free_pages;
};

struct reservation {
	uint64_t start, end;
	struct vm_owner owner;
};

struct vm_buddy {
	const struct vm_layout *layout;
	struct vm_hostmem *hm;
	struct vm_hmap recs;           /* first frame -> struct frame_rec */
	struct zone_lists zone[VM_ZONE_COUNT];
	struct reservation res[MAX_RESERVATIONS];
	unsigned nres;
	uint64_t allocated;            /* frames in allocated blocks */
};

struct vm_buddy *buddy_create(const struct vm_layout *l,
			      struct vm_hostmem *hm)
{
	struct vm_buddy *b = hm_zalloc(hm, sizeof(*b));

	b->layout = l;
	b->hm = hm;
	hmap_init(&b->recs, sizeof(struct frame_rec));
	for (int z = 0; z < VM_ZONE_COUNT; z++)
		for (int o = 0; o < VM_NR_ORDERS; o++)
			b->zone[z].head[o] = NONE;
	return b;
}

void buddy_free_all(struct vm_buddy *b)
{
	if (!b)
		return;
	hmap_release(&b->recs, b->hm);
	for (int z = 0; z < VM_ZONE_COUNT; z++)
		hm_free(b->hm, b->zone[z].runs,
			b->zone[z].nruns * sizeof(struct virgin_run));
	hm_free(b->hm, b, sizeof(*b));
}

static inline struct frame_rec *rec_get(const struct vm_buddy *b,
					uint64_t pfn)
{
	return hmap_get(&b->recs, pfn);
}

static inline enum vm_zone_id zone_of(const struct vm_buddy *b, uint64_t pfn)
{
	return vm_layout_zone_of(b->layout, pfn);
}

static uint64_t virgin_blocks(const struct zone_lists *zl)
{
	uint64_t n = 0;

	for (unsigned i = zl->first_run; i < zl->nruns; i++)
		n += (zl->runs[i].end - zl->runs[i].next) / MAX_BLOCK;
	return n;
}

/* Puts a free block at the head of its list. */
static void push_free(struct vm_buddy *b, uint64_t pfn, unsigned order)
{
	struct zone_lists *zl = &b->zone[zone_of(b, pfn)];
	struct frame_rec *r = hmap_put(&b->recs, b->hm, pfn);

	r->owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
	r->order = (uint8_t)order;
	r->free = 1;
	r->prev = NONE;
	r->next = zl->head[order];
	if (r->next != NONE)
		rec_get(b, r->next)->prev = (uint32_t)pfn;
	zl->head[order] = (uint32_t)pfn;
	zl->count[order]++;
	zl->free_pages += 1ULL << order;
}

/* Takes a free block off its list and forgets its record. */
static void unlink_free(struct vm_buddy *b, uint64_t pfn)
{
	struct frame_rec *r = rec_get(b, pfn);
	struct zone_lists *zl = &b->zone[zone_of(b, pfn)];
	unsigned order = r->order;

	if (r->prev != NONE)
		rec_get(b, r->prev)->next = r->next;
	else
		zl->head[order] = r->next;
	if (r->next != NONE)
		rec_get(b, r->next)->prev = r->prev;
	zl->count[order]--;
	zl->free_pages -= 1ULL << order;
	hmap_del(&b->recs, b->hm, pfn);
}

/* The head of a zone's list of the given order, or NONE when empty. */
static uint64_t list_head(const struct zone_lists *zl, unsigned order)
{
	if (zl->head[order] != NONE)
		return zl->head[order];
	if (order == VM_MAX_ORDER && zl->first_run < zl->nruns)
		return zl->runs[zl->first_run].next;
	return UINT64_MAX;
}

/* Removes the head block of a list (explicit or virgin). */
static void take_head(struct vm_buddy *b, struct zone_lists *zl,
		      unsigned order, uint64_t pfn)
{
	struct virgin_run *run;

	if (zl->head[order] != NONE) {
		unlink_free(b, pfn);
		return;
	}
	run = &zl->runs[zl->first_run];
	run->next += MAX_BLOCK;
	if (run->next == run->end)
		zl->first_run++;
	zl->free_pages -= MAX_BLOCK;
}

static void mark_allocated(struct vm_buddy *b, uint64_t pfn, unsigned order,
			   const struct vm_owner *owner)
{
	struct frame_rec *r = hmap_put(&b->recs, b->hm, pfn);

	r->owner = *owner;
	r->order = (uint8_t)order;
	r->free = 0;
	r->next = r->prev = NONE;
	b->allocated += 1ULL << order;
}

static int alloc_from(struct vm_buddy *b, enum vm_zone_id z, unsigned order,
		      const struct vm_owner *owner, uint64_t *out)
{
	struct zone_lists *zl = &b->zone[z];

	for (unsigned o = order; o <= VM_MAX_ORDER; o++) {
		uint64_t pfn = list_head(zl, o);

		if (pfn == UINT64_MAX)
			continue;
		take_head(b, zl, o, pfn);
		/* Keep the lower half; each upper half goes to its list. */
		while (o > order) {
			o--;
			push_free(b, pfn + (1ULL << o), o);
		}
		mark_allocated(b, pfn, order, owner);
		*out = pfn;
		return 0;
	}
	return VM_ENOMEM;
}

int buddy_alloc(struct vm_buddy *b, unsigned order,
		const enum vm_zone_id *zones, unsigned nzones,
		const struct vm_owner *owner, uint64_t *pfn)
{
	for (unsigned i = 0; i < nzones; i++)
		if (alloc_from(b, zones[i], order, owner, pfn) == 0)
			return 0;
	return VM_ENOMEM;
}

int buddy_alloc_in_zone(struct vm_buddy *b, enum vm_zone_id zone,
			const struct vm_owner *owner, uint64_t *pfn)
{
	return alloc_from(b, zone, 0, owner, pfn);
}

void buddy_free(struct vm_buddy *b, uint64_t pfn, unsigned order)
{
	enum vm_zone_id z = zone_of(b, pfn);

	hmap_del(&b->recs, b->hm, pfn);
	b->allocated -= 1ULL << order;
	while (order < VM_MAX_ORDER) {
		uint64_t buddy = pfn ^ (1ULL << order);
		struct frame_rec *r = rec_get(b, buddy);

		if (!r || !r->free || r->order != order ||
		    buddy >= b->layout->max_pfn || zone_of(b, buddy) != z)
			break;
		unlink_free(b, buddy);
		pfn &= ~(1ULL << order);
		order++;
	}
	push_free(b, pfn, order);
}

/* The record of the block containing pfn (free or allocated), or NULL. */
static const struct frame_rec *block_of(const struct vm_buddy *b,
					uint64_t pfn, uint64_t *head)
{
	for (unsigned k = 0; k <= VM_MAX_ORDER; k++) {
		uint64_t h = pfn & ~((1ULL << k) - 1);
		const struct frame_rec *r = rec_get(b, h);

		if (r && pfn < h + (1ULL << r->order)) {
			*head = h;
			return r;
		}
	}
	return NULL;
}

bool buddy_find(const struct vm_buddy *b, uint64_t pfn, uint64_t *head,
		unsigned *order, struct vm_owner *owner)
{
	uint64_t h;
	const struct frame_rec *r = block_of(b, pfn, &h);

	if (!r || r->free)
		return false;
	if (head)
		*head = h;
	if (order)
		*order = r->order;
	if (owner)
		*owner = r->owner;
	return true;
}

void buddy_set_owner(struct vm_buddy *b, uint64_t head,
		     const struct vm_owner *owner)
{
	rec_get(b, head)->owner = *owner;
}

struct vm_owner buddy_owner(const struct vm_buddy *b, uint64_t pfn)
{
	uint64_t h;
	const struct frame_rec *r;

	for (unsigned i = 0; i < b->nres; i++)
		if (pfn >= b->res[i].start && pfn < b->res[i].end)
			return b->res[i].owner;
	r = block_of(b, pfn, &h);
	if (r)
		return r->owner;
	return vm_owner_make(VM_OWNER_FREE, 0, 0);
}

void buddy_reserve(struct vm_buddy *b, uint64_t start_pfn, uint64_t end_pfn,
		   struct vm_owner owner)
{
	struct reservation *r;
	unsigned i;

	if (start_pfn >= end_pfn || b->nres == MAX_RESERVATIONS)
		return;
	/* Keep the list sorted by start. */
	for (i = b->nres; i > 0 && b->res[i - 1].start > start_pfn; i--)
		b->res[i] = b->res[i - 1];
	r = &b->res[i];
	r->start = start_pfn;
	r->end = end_pfn;
	r->owner = owner;
	b->nres++;
}

static void add_run(struct vm_buddy *b, struct zone_lists *zl, uint64_t s,
		    uint64_t e)
{
	zl->runs = hm_realloc(b->hm, zl->runs, zl->nruns * sizeof(*zl->runs),
			      (zl->nruns + 1) * sizeof(*zl->runs));
	zl->runs[zl->nruns].next = s;
	zl->runs[zl->nruns].end = e;
	zl->nruns++;
	zl->free_pages += e - s;
}

/*
 * Splits [s, e) into the largest aligned blocks, as the kernel's
 * __free_pages_memory() does; order-10 blocks become virgin runs, the
 * others are collected (ascending) for queueing.
 */
static void carve(struct vm_buddy *b, struct zone_lists *zl, uint64_t s,
		  uint64_t e, uint64_t (*small)[2], unsigned *nsmall)
{
	while (s < e) {
		unsigned k = VM_MAX_ORDER;

		while (k > 0 && ((s & ((1ULL << k) - 1)) || s + (1ULL << k) > e))
			k--;
		if (k == VM_MAX_ORDER) {
			uint64_t n = (e - s) / MAX_BLOCK;

			add_run(b, zl, s, s + n * MAX_BLOCK);
			s += n * MAX_BLOCK;
			continue;
		}
		small[*nsmall][0] = s;
		small[*nsmall][1] = k;
		(*nsmall)++;
		s += 1ULL << k;
	}
}

void buddy_boot(struct vm_buddy *b)
{
	const struct vm_layout *l = b->layout;

	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct zone_lists *zl = &b->zone[z];
		uint64_t zs = l->zone_start_pfn[z], ze = l->zone_end_pfn[z];
		/* At most 2 * VM_NR_ORDERS small blocks per free range. */
		uint64_t small[(MAX_RESERVATIONS + 1) * 2 * VM_NR_ORDERS][2];
		unsigned nsmall = 0;
		uint64_t s = zs;

		for (unsigned i = 0; i <= b->nres && s < ze; i++) {
			uint64_t e = i < b->nres ? b->res[i].start : ze;

			if (e > ze)
				e = ze;
			if (e > s)
				carve(b, zl, s, e, small, &nsmall);
			if (i < b->nres && b->res[i].end > s)
				s = b->res[i].end;
		}
		/* Lowest address at the head: push in descending order. */
		while (nsmall > 0) {
			nsmall--;
			push_free(b, small[nsmall][0], (unsigned)small[nsmall][1]);
		}
	}
}

void buddy_zone_info(const struct vm_buddy *b, enum vm_zone_id z,
		     struct vm_zone_info *info)
{
	const struct zone_lists *zl = &b->zone[z];

	for (int o = 0; o < VM_NR_ORDERS; o++)
		info->free_blocks[o] = zl->count[o];
	info->free_blocks[VM_MAX_ORDER] += virgin_blocks(zl);
	info->free_pages = zl->free_pages;
}

uint64_t buddy_allocated_pages(const struct vm_buddy *b)
{
	return b->allocated;
}

/* ---- ordered walks: reservations, records and virgin runs by address ---- */

struct span {
	uint64_t start, end;
	struct vm_owner owner;
};

static int cmp_span(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->start > y->start) - (x->start < y->start);
}

/* Every known span (reservations, records, virgin runs), sorted. */
static struct span *collect_spans(const struct vm_buddy *b, size_t *n)
{
	size_t cap = b->nres + b->recs.count, i = 0, cur = 0;
	struct span *v;
	uint64_t key;
	const struct frame_rec *r;

	for (int z = 0; z < VM_ZONE_COUNT; z++)
		cap += b->zone[z].nruns;
	v = malloc((cap ? cap : 1) * sizeof(*v));
	if (!v)
		abort();
	for (unsigned k = 0; k < b->nres; k++, i++) {
		v[i].start = b->res[k].start;
		v[i].end = b->res[k].end;
		v[i].owner = b->res[k].owner;
	}
	while ((r = hmap_next(&b->recs, &cur, &key))) {
		v[i].start = key;
		v[i].end = key + (1ULL << r->order);
		v[i].owner = r->owner;
		i++;
	}
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		const struct zone_lists *zl = &b->zone[z];

		for (unsigned k = zl->first_run; k < zl->nruns; k++, i++) {
			v[i].start = zl->runs[k].next;
			v[i].end = zl->runs[k].end;
			v[i].owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
		}
	}
	qsort(v, i, sizeof(*v), cmp_span);
	*n = i;
	return v;
}

/* Whether frames [s, ...) owned by o continue the range [cs, ce) of co. */
static bool continues(uint64_t cs, uint64_t ce, const struct vm_owner *co,
		      uint64_t s, const struct vm_owner *o)
{
	if (s != ce)
		return false;
	if (co->kind == VM_OWNER_USER && o->kind == VM_OWNER_USER)
		return co->id == o->id && co->mapcount == o->mapcount &&
		       o->addr == co->addr + (s - cs) * VM_PAGE_SIZE;
	return vm_owner_eq(co, o);
}

int buddy_ranges(const struct vm_buddy *b, uint64_t start_pfn,
		 uint64_t end_pfn, vm_range_fn fn, void *ctx)
{
	size_t n, i;
	struct span *v = collect_spans(b, &n);
	struct vm_owner free_owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
	struct vm_owner cur_owner = free_owner;
	uint64_t cs = start_pfn, ce = start_pfn, pos = start_pfn;
	int rc = 0;

	if (end_pfn > b->layout->max_pfn)
		end_pfn = b->layout->max_pfn;
	for (i = 0; i <= n && pos < end_pfn && rc == 0; i++) {
		struct span seg[2];
		unsigned nseg = 0;

		/* The free gap before span i (or up to the end), then span i. */
		uint64_t next = i < n ? v[i].start : end_pfn;

		if (i < n && v[i].end <= pos)
			continue;
		if (next > pos) {
			seg[nseg].start = pos;
			seg[nseg].end = next < end_pfn ? next : end_pfn;
			seg[nseg++].owner = free_owner;
		}
		if (i < n && v[i].start < end_pfn) {
			seg[nseg].start = v[i].start > pos ? v[i].start : pos;
			seg[nseg].end = v[i].end < end_pfn ? v[i].end : end_pfn;
			seg[nseg].owner = v[i].owner;
			/* A user page range starting mid-way keeps its va. */
			if (v[i].owner.kind == VM_OWNER_USER)
				seg[nseg].owner.addr +=
					(seg[nseg].start - v[i].start) *
					VM_PAGE_SIZE;
			nseg++;
		}
		for (unsigned k = 0; k < nseg && rc == 0; k++) {
			if (seg[k].start >= seg[k].end)
				continue;
			if (ce > cs && continues(cs, ce, &cur_owner,
						 seg[k].start, &seg[k].owner)) {
				ce = seg[k].end;
			} else {
				if (ce > cs)
					rc = fn(ctx, cs, ce, &cur_owner);
				cs = seg[k].start;
				ce = seg[k].end;
				cur_owner = seg[k].owner;
			}
			pos = seg[k].end;
		}
	}
	if (rc == 0 && ce > cs)
		rc = fn(ctx, cs, ce, &cur_owner);
	free(v);
	return rc;
}

/* ---- invariants ---- */

int buddy_check(const struct vm_buddy *b, struct vm_error *err)
{
	const struct vm_layout *l = b->layout;
	size_t n, i, listed = 0, free_recs = 0;
	struct span *v = collect_spans(b, &n);
	uint64_t covered = 0, allocated = 0;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		if (i > 0 && v[i].start < v[i - 1].end)
			rc = vm_fail(err, VM_ECORRUPT,
				     "frames %#llx..%#llx are in two places "
				     "(owned twice or on two free lists)",
				     (unsigned long long)v[i].start,
				     (unsigned long long)v[i - 1].end);
		covered += v[i].end - v[i].start;
	}
	if (rc == 0 && covered != l->max_pfn)
		rc = vm_fail(err, VM_ECORRUPT, "%llu frames tracked, RAM has %llu", (unsigned long long)covered, (unsigned long long)l->max_pfn);
	free(v);

	/* Each record: aligned, in one zone; free ones fully merged. */
	{
		size_t cur = 0;
		uint64_t pfn;
		const struct frame_rec *r;

		while (rc == 0 && (r = hmap_next(&b->recs, &cur, &pfn))) {
			uint64_t size = 1ULL << r->order;
			enum vm_zone_id z = zone_of(b, pfn);

			if (r->order > VM_MAX_ORDER || (pfn & (size - 1)) ||
			    pfn + size > l->max_pfn ||
			    zone_of(b, pfn + size - 1) != z) {
				rc = vm_fail(err, VM_ECORRUPT,
					     "block at pfn %#llx order %u is "
					     "misaligned or crosses its zone",
					     (unsigned long long)pfn, r->order);
				break;
			}
			if (!r->free) {
				allocated += size;
				continue;
			}
			free_recs++;
			if (r->order < VM_MAX_ORDER) {
				uint64_t bd = pfn ^ size;
				const struct frame_rec *br = rec_get(b, bd);

				if (br && br->free && br->order == r->order &&
				    bd < l->max_pfn && zone_of(b, bd) == z)
					rc = vm_fail(err, VM_ECORRUPT,
						     "free block %#llx and its "
						     "buddy %#llx (order %u) "
						     "are not merged",
						     (unsigned long long)pfn,
						     (unsigned long long)bd,
						     r->order);
			}
		}
	}
	if (rc == 0 && allocated != b->allocated)
		rc = vm_fail(err, VM_ECORRUPT,
			     "allocated count %llu, blocks hold %llu",
			     (unsigned long long)b->allocated,
			     (unsigned long long)allocated);

	/* Lists: every member free, of the list's order and zone; counts. */
	for (int z = 0; z < VM_ZONE_COUNT && rc == 0; z++) {
		const struct zone_lists *zl = &b->zone[z];
		uint64_t pages = 0;

		for (unsigned o = 0; o < VM_NR_ORDERS && rc == 0; o++) {
			uint64_t count = 0, prev = NONE;

			for (uint64_t p = zl->head[o]; p != NONE;) {
				const struct frame_rec *r = rec_get(b, p);

				if (!r || !r->free || r->order != o ||
				    zone_of(b, p) != (enum vm_zone_id)z ||
				    r->prev != prev || count > b->recs.count) {
					rc = vm_fail(err, VM_ECORRUPT,
						     "%s free list of order %u "
						     "is broken at pfn %#llx",
						     vm_zone_name(z), o,
						     (unsigned long long)p);
					break;
				}
				count++;
				prev = p;
				p = r->next;
			}
			if (rc == 0 && count != zl->count[o])
				rc = vm_fail(err, VM_ECORRUPT,
					     "%s order %u: %llu blocks listed, "
					     "count says %llu", vm_zone_name(z),
					     o, (unsigned long long)count,
					     (unsigned long long)zl->count[o]);
			listed += count;
			pages += count << o;
		}
		for (unsigned k = zl->first_run; k < zl->nruns && rc == 0; k++) {
			const struct virgin_run *run = &zl->runs[k];

			if ((run->next & (MAX_BLOCK - 1)) ||
			    (run->end & (MAX_BLOCK - 1)) || run->next > run->end ||
			    zone_of(b, run->next) != (enum vm_zone_id)z)
				rc = vm_fail(err, VM_ECORRUPT,
					     "bad virgin run in %s",
					     vm_zone_name(z));
			pages += run->end - run->next;
		}
		if (rc == 0 && pages != zl->free_pages)
			rc = vm_fail(err, VM_ECORRUPT,
				     "%s: %llu free pages listed, count says "
				     "%llu", vm_zone_name(z),
				     (unsigned long long)pages,
				     (unsigned long long)zl->free_pages);
	}
	if (rc == 0 && listed != free_recs)
		rc = vm_fail(err, VM_ECORRUPT,
			     "%zu free blocks on lists, %zu free records", listed,
			     free_recs);
	return rc;
}

/* ---- canonical encoding ---- */

static void enc_owner(struct vm_enc *e, const struct vm_owner *o)
{
	enc_u8(e, o->kind);
	enc_u8(e, o->sub);
	enc_u16(e, o->mapcount);
	enc_u32(e, o->id);
	enc_u64(e, o->addr);
}

static bool dec_owner(struct vm_dec *d, struct vm_owner *o)
{
	o->kind = dec_u8(d);
	o->sub = dec_u8(d);
	o->mapcount = dec_u16(d);
	o->id = dec_u32(d);
	o->addr = dec_u64(d);
	return !d->failed && o->kind < VM_OWNER_KIND_COUNT;
}

void buddy_encode(const struct vm_buddy *b, struct vm_enc *e)
{
	uint64_t *keys = malloc((b->recs.count + 1) * sizeof(*keys));
	size_t nalloc = 0;

	if (!keys)
		abort();
	enc_u32(e, b->nres);
	for (unsigned i = 0; i < b->nres; i++) {
		enc_u64(e, b->res[i].start);
		enc_u64(e, b->res[i].end);
		enc_owner(e, &b->res[i].owner);
	}
	/* Free lists in list order: that order decides future answers. */
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		const struct zone_lists *zl = &b->zone[z];

		for (unsigned o = 0; o < VM_NR_ORDERS; o++) {
			enc_u64(e, zl->count[o]);
			for (uint64_t p = zl->head[o]; p != NONE;
			     p = rec_get(b, p)->next)
				enc_u32(e, (uint32_t)p);
		}
		enc_u32(e, zl->nruns - zl->first_run);
		for (unsigned k = zl->first_run; k < zl->nruns; k++) {
			enc_u64(e, zl->runs[k].next);
			enc_u64(e, zl->runs[k].end);
		}
	}
	/* Allocated blocks by address. */
	hmap_keys_sorted(&b->recs, keys);
	for (size_t i = 0; i < b->recs.count; i++)
		if (!rec_get(b, keys[i])->free)
			nalloc++;
	enc_u64(e, nalloc);
	for (size_t i = 0; i < b->recs.count; i++) {
		const struct frame_rec *r = rec_get(b, keys[i]);

		if (r->free)
			continue;
		enc_u32(e, (uint32_t)keys[i]);
		enc_u8(e, r->order);
		enc_owner(e, &r->owner);
	}
	free(keys);
}

int buddy_decode(struct vm_buddy *b, struct vm_dec *d)
{
	const struct vm_layout *l = b->layout;
	uint32_t nres = dec_u32(d);

	if (nres > MAX_RESERVATIONS)
		return dec_fail(d), VM_ECORRUPT;
	for (uint32_t i = 0; i < nres; i++) {
		struct vm_owner o;
		uint64_t s = dec_u64(d), e = dec_u64(d);

		if (!dec_owner(d, &o) || s >= e || e > l->max_pfn)
			return dec_fail(d), VM_ECORRUPT;
		buddy_reserve(b, s, e, o);
	}
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct zone_lists *zl = &b->zone[z];
		uint32_t nruns;

		for (unsigned o = 0; o < VM_NR_ORDERS; o++) {
			uint64_t count = dec_u64(d);
			uint32_t tail = NONE;

			if (!dec_room(d, count, 4))
				return VM_ECORRUPT;
			for (uint64_t i = 0; i < count; i++) {
				uint32_t p = dec_u32(d);
				struct frame_rec *r;

				if (p >= l->max_pfn || (p & ((1u << o) - 1)) ||
				    zone_of(b, p) != (enum vm_zone_id)z ||
				    hmap_get(&b->recs, p))
					return dec_fail(d), VM_ECORRUPT;
				/* Append at the tail to keep list order. */
				r = hmap_put(&b->recs, b->hm, p);
				r->owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
				r->order = (uint8_t)o;
				r->free = 1;
				r->next = NONE;
				r->prev = tail;
				if (tail != NONE)
					rec_get(b, tail)->next = p;
				else
					zl->head[o] = p;
				tail = p;
				zl->count[o]++;
				zl->free_pages += 1ULL << o;
			}
		}
		nruns = dec_u32(d);
		if (!dec_room(d, nruns, 16))
			return VM_ECORRUPT;
		for (uint32_t k = 0; k < nruns; k++) {
			uint64_t s = dec_u64(d), e = dec_u64(d);

			if (s >= e || e > l->max_pfn || (s & (MAX_BLOCK - 1)) ||
			    (e & (MAX_BLOCK - 1)))
				return dec_fail(d), VM_ECORRUPT;
			add_run(b, zl, s, e);
		}
	}
	{
		uint64_t nalloc = dec_u64(d);

		if (!dec_room(d, nalloc, 21))
			return VM_ECORRUPT;
		for (uint64_t i = 0; i < nalloc; i++) {
			uint32_t p = dec_u32(d);
			uint8_t order = dec_u8(d);
			struct vm_owner o;

			if (!dec_owner(d, &o) || order > VM_MAX_ORDER ||
			    p >= l->max_pfn || hmap_get(&b->recs, p))
				return dec_fail(d), VM_ECORRUPT;
			mark_allocated(b, p, order, &o);
		}
	}
	return d->failed ? VM_ECORRUPT : 0;
}

int buddy_test_corrupt(struct vm_buddy *b, int owned_twice)
{
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct zone_lists *zl = &b->zone[z];

		if (!owned_twice) {
			zl->count[0]++;
			return 0;
		}
		/* Put an allocated block's frame on a free list as well. */
		{
			size_t cur = 0;
			uint64_t pfn;
			const struct frame_rec *r;

			while ((r = hmap_next(&b->recs, &cur, &pfn)))
				if (!r->free && r->order == 0 &&
				    zone_of(b, pfn) == (enum vm_zone_id)z) {
					struct frame_rec *f;

					/* A free record for the buddy half of
					 * an order-1 block covering pfn. */
					f = hmap_put(&b->recs, b->hm, pfn ^ 1);
					if (f->free || !f->order) {
						f->free = 1;
						f->order = 1;
						f->next = zl->head[1];
						f->prev = NONE;
						zl->head[1] = (uint32_t)(pfn ^ 1);
						zl->count[1]++;
						zl->free_pages += 2;
						return 0;
					}
				}
		}
	}
	return VM_ENOENT;
}
