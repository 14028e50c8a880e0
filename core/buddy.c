/* buddy.c - zones, free lists and frame ownership; see buddy.h. */
#include <stdlib.h>
#include <string.h>

#include "buddy.h"
#include "enc.h"
#include "hmap.h"

#define NONE UINT32_MAX
#define MAX_BLOCK (1ULL << VM_MAX_ORDER)
#define MAX_RESERVATIONS 8
#define BOOT_CHUNK_SHIFT 9 /* 512 frames per boot bitmap */

/*
 * Host state, sized for the boot churn's scatter of small blocks (SPEC
 * 1.3 promises a 64 GiB machine costs at most 16 KiB more than a 1 GiB
 * one, and a 64 GiB machine churns one more zone):
 * - an allocated block: a record with its owner, keyed by its first frame;
 * - a frame left to the boot churn: a bit, 512 frames per bitmap;
 * - a free block: a list node keyed by (first frame, order) in its zone's
 *   own dense map, so that each zone's map is sized by that zone alone.
 */
struct alloc_rec {
	struct vm_owner owner;
	uint8_t order;
};

struct free_node {
	uint32_t next, prev;    /* list links (pfns, same order), NONE at ends */
};

/* Order-10 blocks never touched since boot: [next, end), step 1024. */
struct virgin_run {
	uint64_t next, end;
};

struct zone_lists {
	struct vm_hmap nodes;          /* free_key(pfn, order) -> free_node */
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
	struct vm_hmap allocs;         /* first frame -> struct alloc_rec */
	struct vm_hmap boot;           /* pfn >> 9 -> uint64_t[8] */
	struct zone_lists zone[VM_ZONE_COUNT];
	struct reservation res[MAX_RESERVATIONS];
	unsigned nres;
	uint64_t allocated;            /* frames in allocated blocks */
};

static inline uint64_t free_key(uint64_t pfn, unsigned order)
{
	return pfn | (uint64_t)order << 40;
}

struct vm_buddy *buddy_create(const struct vm_layout *l,
			      struct vm_hostmem *hm)
{
	struct vm_buddy *b = hm_zalloc(hm, sizeof(*b));

	b->layout = l;
	b->hm = hm;
	hmap_init(&b->allocs, sizeof(struct alloc_rec));
	hmap_init_dense(&b->boot, 8 * sizeof(uint64_t));
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		hmap_init_dense(&b->zone[z].nodes, sizeof(struct free_node));
		for (int o = 0; o < VM_NR_ORDERS; o++)
			b->zone[z].head[o] = NONE;
	}
	return b;
}

void buddy_free_all(struct vm_buddy *b)
{
	if (!b)
		return;
	hmap_release(&b->allocs, b->hm);
	hmap_release(&b->boot, b->hm);
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		hmap_release(&b->zone[z].nodes, b->hm);
		hm_free(b->hm, b->zone[z].runs,
			b->zone[z].nruns * sizeof(struct virgin_run));
	}
	hm_free(b->hm, b, sizeof(*b));
}

static inline enum vm_zone_id zone_of(const struct vm_buddy *b, uint64_t pfn)
{
	return vm_layout_zone_of(b->layout, pfn);
}

static inline struct free_node *node_get(const struct vm_buddy *b,
					 uint64_t pfn, unsigned order)
{
	return hmap_get(&b->zone[zone_of(b, pfn)].nodes, free_key(pfn, order));
}

/* ---- boot bits ---- */

static bool boot_test(const struct vm_buddy *b, uint64_t pfn)
{
	const uint64_t *bits = hmap_get(&b->boot, pfn >> BOOT_CHUNK_SHIFT);
	unsigned i = pfn & ((1u << BOOT_CHUNK_SHIFT) - 1);

	return bits && (bits[i / 64] >> (i % 64) & 1);
}

static void boot_set(struct vm_buddy *b, uint64_t pfn, bool on)
{
	uint64_t key = pfn >> BOOT_CHUNK_SHIFT, *bits;
	unsigned i = pfn & ((1u << BOOT_CHUNK_SHIFT) - 1);

	if (on) {
		bits = hmap_put(&b->boot, b->hm, key);
		bits[i / 64] |= 1ULL << (i % 64);
		return;
	}
	bits = hmap_get(&b->boot, key);
	bits[i / 64] &= ~(1ULL << (i % 64));
	for (unsigned w = 0; w < 8; w++)
		if (bits[w])
			return;
	hmap_del(&b->boot, b->hm, key);
}

static bool is_boot_owner(const struct vm_owner *o, unsigned order)
{
	static const struct vm_owner boot = { .kind = VM_OWNER_BOOT };

	return order == 0 && vm_owner_eq(o, &boot);
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
	struct free_node *n = hmap_put(&zl->nodes, b->hm, free_key(pfn, order));

	n->prev = NONE;
	n->next = zl->head[order];
	if (n->next != NONE)
		node_get(b, n->next, order)->prev = (uint32_t)pfn;
	zl->head[order] = (uint32_t)pfn;
	zl->count[order]++;
	zl->free_pages += 1ULL << order;
}

/* Takes a free block off its list. */
static void unlink_free(struct vm_buddy *b, uint64_t pfn, unsigned order)
{
	struct zone_lists *zl = &b->zone[zone_of(b, pfn)];
	struct free_node n = *node_get(b, pfn, order);

	if (n.prev != NONE)
		node_get(b, n.prev, order)->next = n.next;
	else
		zl->head[order] = n.next;
	if (n.next != NONE)
		node_get(b, n.next, order)->prev = n.prev;
	zl->count[order]--;
	zl->free_pages -= 1ULL << order;
	hmap_del(&zl->nodes, b->hm, free_key(pfn, order));
}

/* The head of a zone's list of the given order, or UINT64_MAX. */
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
		unlink_free(b, pfn, order);
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
	if (is_boot_owner(owner, order)) {
		boot_set(b, pfn, true);
	} else {
		struct alloc_rec *r = hmap_put(&b->allocs, b->hm, pfn);

		r->owner = *owner;
		r->order = (uint8_t)order;
	}
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

	if (!hmap_del(&b->allocs, b->hm, pfn))
		boot_set(b, pfn, false);
	b->allocated -= 1ULL << order;
	while (order < VM_MAX_ORDER) {
		uint64_t buddy = pfn ^ (1ULL << order);

		if (buddy >= b->layout->max_pfn || zone_of(b, buddy) != z ||
		    !node_get(b, buddy, order))
			break;
		unlink_free(b, buddy, order);
		pfn &= ~(1ULL << order);
		order++;
	}
	push_free(b, pfn, order);
}

/* The allocated block containing pfn: its head, order and owner. */
static bool alloc_of(const struct vm_buddy *b, uint64_t pfn, uint64_t *head,
		     unsigned *order, struct vm_owner *owner)
{
	if (boot_test(b, pfn)) {
		*head = pfn;
		*order = 0;
		*owner = vm_owner_make(VM_OWNER_BOOT, 0, 0);
		return true;
	}
	for (unsigned k = 0; k <= VM_MAX_ORDER; k++) {
		uint64_t h = pfn & ~((1ULL << k) - 1);
		const struct alloc_rec *r = hmap_get(&b->allocs, h);

		if (r && pfn < h + (1ULL << r->order)) {
			*head = h;
			*order = r->order;
			*owner = r->owner;
			return true;
		}
	}
	return false;
}

bool buddy_find(const struct vm_buddy *b, uint64_t pfn, uint64_t *head,
		unsigned *order, struct vm_owner *owner)
{
	uint64_t h;
	unsigned o;
	struct vm_owner ow;

	if (!alloc_of(b, pfn, &h, &o, &ow))
		return false;
	if (head)
		*head = h;
	if (order)
		*order = o;
	if (owner)
		*owner = ow;
	return true;
}

void buddy_set_owner(struct vm_buddy *b, uint64_t head,
		     const struct vm_owner *owner)
{
	struct alloc_rec *r = hmap_get(&b->allocs, head);

	if (!r) {
		/* A boot frame handed to another owner. */
		boot_set(b, head, false);
		r = hmap_put(&b->allocs, b->hm, head);
		r->order = 0;
	}
	r->owner = *owner;
	if (is_boot_owner(owner, r->order)) {
		hmap_del(&b->allocs, b->hm, head);
		boot_set(b, head, true);
	}
}

struct vm_owner buddy_owner(const struct vm_buddy *b, uint64_t pfn)
{
	uint64_t h;
	unsigned o;
	struct vm_owner ow;

	for (unsigned i = 0; i < b->nres; i++)
		if (pfn >= b->res[i].start && pfn < b->res[i].end)
			return b->res[i].owner;
	if (alloc_of(b, pfn, &h, &o, &ow))
		return ow;
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

/*
 * Sorts spans by start, stably: a least-significant-digit radix sort, as
 * many 11-bit passes as the largest start needs (two for a 1 GiB
 * machine). It runs on every state check and range walk, over
 * thousands of free blocks, where a comparison sort cost most of a
 * snapshot's decode.
 */
#define SPAN_RADIX_BITS 11
#define SPAN_RADIX (1u << SPAN_RADIX_BITS)

static void sort_spans(struct span *v, size_t n)
{
	struct span *tmp, *from = v, *to;
	uint64_t max = 0;
	size_t *count;

	for (size_t i = 0; i < n; i++)
		if (v[i].start > max)
			max = v[i].start;
	if (n < 2 || max == 0)
		return;
	tmp = malloc(n * sizeof(*tmp));
	count = malloc(SPAN_RADIX * sizeof(*count));
	if (!tmp || !count)
		abort();
	to = tmp;
	for (unsigned shift = 0; shift < 64 && (max >> shift);
	     shift += SPAN_RADIX_BITS) {
		size_t sum = 0;
		struct span *t;

		memset(count, 0, SPAN_RADIX * sizeof(*count));
		for (size_t i = 0; i < n; i++)
			count[(from[i].start >> shift) & (SPAN_RADIX - 1)]++;
		for (unsigned d = 0; d < SPAN_RADIX; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			to[count[(from[i].start >> shift) &
				 (SPAN_RADIX - 1)]++] = from[i];
		t = from;
		from = to;
		to = t;
	}
	if (from != v)
		memcpy(v, from, n * sizeof(*v));
	free(count);
	free(tmp);
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Frames left to the boot churn, by address; calls fn on each. The
 * bitmaps' chunks are few (one per 512 frames that boot left anything
 * in), so sorting them is cheap, and within a chunk the bits are in
 * order: callers merge this with their other, shorter, sorted lists
 * rather than sort every boot frame.
 */
static void each_boot_frame(const struct vm_buddy *b,
			    void (*fn)(void *ctx, uint64_t pfn), void *ctx)
{
	size_t cur = 0, n = 0;
	uint64_t key, *keys = malloc((b->boot.count + 1) * sizeof(*keys));

	if (!keys)
		abort();
	while (hmap_next(&b->boot, &cur, &key))
		keys[n++] = key;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++) {
		const uint64_t *bits = hmap_get(&b->boot, keys[i]);

		for (unsigned w = 0; w < 8; w++)
			for (uint64_t v = bits[w]; v; v &= v - 1)
				fn(ctx, (keys[i] << BOOT_CHUNK_SHIFT) + w * 64 +
						(unsigned)__builtin_ctzll(v));
	}
	free(keys);
}

static uint64_t boot_count(const struct vm_buddy *b)
{
	size_t cur = 0;
	uint64_t n = 0;
	const uint64_t *bits;

	while ((bits = hmap_next(&b->boot, &cur, NULL)))
		for (unsigned w = 0; w < 8; w++)
			n += (uint64_t)__builtin_popcountll(bits[w]);
	return n;
}

struct span_list {
	struct span *v;
	size_t n;
};

static void add_boot_span(void *ctx, uint64_t pfn)
{
	struct span_list *l = ctx;

	l->v[l->n].start = pfn;
	l->v[l->n].end = pfn + 1;
	l->v[l->n].owner = vm_owner_make(VM_OWNER_BOOT, 0, 0);
	l->n++;
}

/*
 * Every known span, sorted by start: reservations, allocated blocks, boot
 * frames, free blocks and virgin runs. The boot frames, the most
 * numerous, come in order already and are merged with the others, which
 * are sorted (stably: on a shared start, which only a corrupt state has,
 * reservations come before blocks, then boot frames, then free spans).
 */
static struct span *collect_spans(const struct vm_buddy *b, size_t *n)
{
	size_t cap = b->nres + b->allocs.count, cur, nboot, i, j;
	struct span_list sl, boot;
	struct span *out;
	uint64_t key;
	const struct alloc_rec *r;

	for (int z = 0; z < VM_ZONE_COUNT; z++)
		cap += b->zone[z].nruns + b->zone[z].nodes.count;
	sl.v = malloc((cap + 1) * sizeof(*sl.v));
	nboot = boot_count(b);
	boot.v = malloc((nboot + 1) * sizeof(*boot.v));
	if (!sl.v || !boot.v)
		abort();
	sl.n = 0;
	for (unsigned k = 0; k < b->nres; k++, sl.n++) {
		sl.v[sl.n].start = b->res[k].start;
		sl.v[sl.n].end = b->res[k].end;
		sl.v[sl.n].owner = b->res[k].owner;
	}
	cur = 0;
	while ((r = hmap_next(&b->allocs, &cur, &key))) {
		sl.v[sl.n].start = key;
		sl.v[sl.n].end = key + (1ULL << r->order);
		sl.v[sl.n].owner = r->owner;
		sl.n++;
	}
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		const struct zone_lists *zl = &b->zone[z];

		cur = 0;
		while (hmap_next(&zl->nodes, &cur, &key)) {
			uint64_t pfn = key & ((1ULL << 40) - 1);

			sl.v[sl.n].start = pfn;
			sl.v[sl.n].end = pfn + (1ULL << (key >> 40));
			sl.v[sl.n].owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
			sl.n++;
		}
		for (unsigned k = zl->first_run; k < zl->nruns; k++, sl.n++) {
			sl.v[sl.n].start = zl->runs[k].next;
			sl.v[sl.n].end = zl->runs[k].end;
			sl.v[sl.n].owner = vm_owner_make(VM_OWNER_FREE, 0, 0);
		}
	}
	sort_spans(sl.v, sl.n);
	boot.n = 0;
	each_boot_frame(b, add_boot_span, &boot);
	out = malloc((sl.n + boot.n + 1) * sizeof(*out));

	if (!out)
		abort();
	for (i = j = 0; i < sl.n || j < boot.n;) {
		bool take_boot = i == sl.n ||
			(j < boot.n &&
			 (boot.v[j].start < sl.v[i].start ||
			  (boot.v[j].start == sl.v[i].start &&
			   sl.v[i].owner.kind == VM_OWNER_FREE)));

		out[i + j] = take_boot ? boot.v[j] : sl.v[i];
		if (take_boot)
			j++;
		else
			i++;
	}
	*n = sl.n + boot.n;
	free(sl.v);
	free(boot.v);
	return out;
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
	size_t n, i;
	struct span *v = collect_spans(b, &n);
	uint64_t covered = 0, allocated = boot_count(b);
	int rc = 0;

	/* Every frame in exactly one place, and all frames accounted for. */
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
		rc = vm_fail(err, VM_ECORRUPT,
			     "%llu frames tracked, RAM has %llu",
			     (unsigned long long)covered,
			     (unsigned long long)l->max_pfn);
	free(v);

	/* Allocated blocks: aligned, in one zone, counted. */
	{
		size_t cur = 0;
		uint64_t pfn;
		const struct alloc_rec *r;

		while (rc == 0 && (r = hmap_next(&b->allocs, &cur, &pfn))) {
			uint64_t size = 1ULL << r->order;

			if (r->order > VM_MAX_ORDER || (pfn & (size - 1)) ||
			    pfn + size > l->max_pfn ||
			    zone_of(b, pfn + size - 1) != zone_of(b, pfn) ||
			    r->owner.kind >= VM_OWNER_KIND_COUNT ||
			    r->owner.kind == VM_OWNER_FREE)
				rc = vm_fail(err, VM_ECORRUPT,
					     "allocated block at pfn %#llx order "
					     "%u is malformed",
					     (unsigned long long)pfn, r->order);
			allocated += size;
		}
	}
	if (rc == 0 && allocated != b->allocated)
		rc = vm_fail(err, VM_ECORRUPT,
			     "allocated count %llu, blocks hold %llu",
			     (unsigned long long)b->allocated,
			     (unsigned long long)allocated);

	/* Lists: members aligned, in zone, fully merged; counts match. */
	for (int z = 0; z < VM_ZONE_COUNT && rc == 0; z++) {
		const struct zone_lists *zl = &b->zone[z];
		uint64_t pages = 0, listed = 0;

		for (unsigned o = 0; o < VM_NR_ORDERS && rc == 0; o++) {
			uint64_t count = 0, prev = NONE;

			for (uint64_t p = zl->head[o]; p != NONE;) {
				const struct free_node *fn =
					hmap_get(&zl->nodes, free_key(p, o));
				uint64_t bd = p ^ (1ULL << o);

				if (!fn || (p & ((1ULL << o) - 1)) ||
				    p + (1ULL << o) > l->max_pfn ||
				    zone_of(b, p) != (enum vm_zone_id)z ||
				    zone_of(b, p + (1ULL << o) - 1) !=
					    (enum vm_zone_id)z ||
				    fn->prev != prev || count > zl->nodes.count) {
					rc = vm_fail(err, VM_ECORRUPT,
						     "%s free list of order %u "
						     "is broken at pfn %#llx",
						     vm_zone_name(z), o,
						     (unsigned long long)p);
					break;
				}
				if (o < VM_MAX_ORDER && bd < l->max_pfn &&
				    zone_of(b, bd) == (enum vm_zone_id)z &&
				    hmap_get(&zl->nodes, free_key(bd, o))) {
					rc = vm_fail(err, VM_ECORRUPT,
						     "free block %#llx and its "
						     "buddy %#llx (order %u) "
						     "are not merged",
						     (unsigned long long)p,
						     (unsigned long long)bd, o);
					break;
				}
				count++;
				prev = p;
				p = fn->next;
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
		if (rc == 0 && listed != zl->nodes.count)
			rc = vm_fail(err, VM_ECORRUPT,
				     "%s: %llu blocks on lists, %zu free nodes",
				     vm_zone_name(z), (unsigned long long)listed,
				     zl->nodes.count);
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
	return !d->failed && o->kind < VM_OWNER_KIND_COUNT &&
	       o->kind != VM_OWNER_FREE;
}

struct key_list {
	uint64_t *v;
	size_t n;
};

static void add_key(void *ctx, uint64_t pfn)
{
	struct key_list *k = ctx;

	k->v[k->n++] = pfn;
}

/* One allocated block: its first frame, order and owner (21 bytes). */
#define BLOCK_BYTES 21

static void enc_block(struct vm_enc *e, uint64_t pfn,
		      const struct alloc_rec *r)
{
	enc_u32(e, (uint32_t)pfn);
	enc_u8(e, r->order);
	enc_owner(e, &r->owner);
}

/*
 * One boot frame: order 0 and the boot owner, the same 17 bytes after
 * every frame number. Boot frames are most of a small machine's blocks.
 */
static void enc_boot_frame(struct vm_enc *e, uint64_t pfn)
{
	static const uint8_t tail[BLOCK_BYTES - 4] = { 0, VM_OWNER_BOOT };

	enc_u32(e, (uint32_t)pfn);
	enc_reserve(e, sizeof(tail));
	memcpy(e->buf + e->len, tail, sizeof(tail));
	e->len += sizeof(tail);
}

void buddy_encode(const struct vm_buddy *b, struct vm_enc *e)
{
	struct key_list k, boot;
	size_t cur = 0, i, j;
	uint64_t key;

	enc_u32(e, b->nres);
	for (unsigned n = 0; n < b->nres; n++) {
		enc_u64(e, b->res[n].start);
		enc_u64(e, b->res[n].end);
		enc_owner(e, &b->res[n].owner);
	}
	/* Free lists in list order: that order decides future answers. */
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		const struct zone_lists *zl = &b->zone[z];

		for (unsigned o = 0; o < VM_NR_ORDERS; o++) {
			enc_u64(e, zl->count[o]);
			for (uint64_t p = zl->head[o]; p != NONE;
			     p = node_get(b, p, o)->next)
				enc_u32(e, (uint32_t)p);
		}
		enc_u32(e, zl->nruns - zl->first_run);
		for (unsigned r = zl->first_run; r < zl->nruns; r++) {
			enc_u64(e, zl->runs[r].next);
			enc_u64(e, zl->runs[r].end);
		}
	}
	/*
	 * Allocated blocks (boot frames included) by address: the blocks
	 * sorted, merged with the boot frames, which come in order.
	 */
	k.n = boot.n = 0;
	k.v = malloc((b->allocs.count + 1) * sizeof(*k.v));
	boot.v = malloc((boot_count(b) + 1) * sizeof(*boot.v));
	if (!k.v || !boot.v)
		abort();
	while (hmap_next(&b->allocs, &cur, &key))
		k.v[k.n++] = key;
	qsort(k.v, k.n, sizeof(*k.v), cmp_key);
	each_boot_frame(b, add_key, &boot);
	enc_u64(e, k.n + boot.n);
	enc_reserve(e, (k.n + boot.n) * BLOCK_BYTES);
	for (i = j = 0; i < k.n || j < boot.n;) {
		if (i == k.n || (j < boot.n && boot.v[j] < k.v[i])) {
			enc_boot_frame(e, boot.v[j++]);
		} else {
			enc_block(e, k.v[i], hmap_get(&b->allocs, k.v[i]));
			i++;
		}
	}
	free(k.v);
	free(boot.v);
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
				struct free_node *fn;

				if (d->failed || p >= l->max_pfn ||
				    (p & ((1u << o) - 1)) ||
				    zone_of(b, p) != (enum vm_zone_id)z ||
				    hmap_get(&zl->nodes, free_key(p, o)))
					return dec_fail(d), VM_ECORRUPT;
				/* Append at the tail to keep list order. */
				fn = hmap_put(&zl->nodes, b->hm, free_key(p, o));
				fn->next = NONE;
				fn->prev = tail;
				if (tail != NONE)
					node_get(b, tail, o)->next = p;
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
		for (uint32_t r = 0; r < nruns; r++) {
			uint64_t s = dec_u64(d), e = dec_u64(d);

			if (s >= e || e > l->max_pfn || (s & (MAX_BLOCK - 1)) ||
			    (e & (MAX_BLOCK - 1)))
				return dec_fail(d), VM_ECORRUPT;
			add_run(b, zl, s, e);
		}
	}
	{
		uint64_t nalloc = dec_u64(d), prev = 0;

		if (!dec_room(d, nalloc, 21))
			return VM_ECORRUPT;
		for (uint64_t i = 0; i < nalloc; i++) {
			uint32_t p = dec_u32(d);
			uint8_t order = dec_u8(d);
			struct vm_owner o;

			if (!dec_owner(d, &o) || order > VM_MAX_ORDER ||
			    p >= l->max_pfn || (i > 0 && p <= prev))
				return dec_fail(d), VM_ECORRUPT;
			mark_allocated(b, p, order, &o);
			prev = p;
		}
	}
	return d->failed ? VM_ECORRUPT : 0;
}

int buddy_test_corrupt(struct vm_buddy *b, int owned_twice)
{
	size_t cur = 0;
	uint64_t pfn;
	const struct alloc_rec *r;

	if (!owned_twice) {
		b->zone[VM_ZONE_DMA].count[0]++;
		return 0;
	}
	/* Queue an allocated frame on its zone's order-0 list as well. */
	while ((r = hmap_next(&b->allocs, &cur, &pfn)))
		if (r->order == 0) {
			push_free(b, pfn, 0);
			return 0;
		}
	return VM_ENOENT;
}
