/* slab.c - kmalloc caches, kmalloc_large and kfree; see slab.h. */
#include <stdlib.h>
#include <string.h>

#include "enc.h"
#include "gfp.h"
#include "machine_int.h"
#include "op.h"
#include "slab.h"

/* SLUB geometry on x86_64 (SPEC 1.6, /proc/slabinfo of Linux 6.18). */
static const struct {
	const char *name, *dma_name;
	uint32_t size, objs, pages;
} classes[VM_KMALLOC_CLASSES] = {
	{ "kmalloc-8", "dma-kmalloc-8", 8, 512, 1 },
	{ "kmalloc-16", "dma-kmalloc-16", 16, 256, 1 },
	{ "kmalloc-32", "dma-kmalloc-32", 32, 128, 1 },
	{ "kmalloc-64", "dma-kmalloc-64", 64, 64, 1 },
	{ "kmalloc-96", "dma-kmalloc-96", 96, 42, 1 },
	{ "kmalloc-128", "dma-kmalloc-128", 128, 32, 1 },
	{ "kmalloc-192", "dma-kmalloc-192", 192, 21, 1 },
	{ "kmalloc-256", "dma-kmalloc-256", 256, 16, 1 },
	{ "kmalloc-512", "dma-kmalloc-512", 512, 16, 2 },
	{ "kmalloc-1k", "dma-kmalloc-1k", 1024, 16, 4 },
	{ "kmalloc-2k", "dma-kmalloc-2k", 2048, 16, 8 },
	{ "kmalloc-4k", "dma-kmalloc-4k", 4096, 8, 8 },
	{ "kmalloc-8k", "dma-kmalloc-8k", 8192, 4, 8 },
};

static inline unsigned cls(unsigned cache)
{
	return cache % VM_KMALLOC_CLASSES;
}

uint32_t slab_object_size(unsigned cache)
{
	return classes[cls(cache)].size;
}

uint32_t slab_objects_per_slab(unsigned cache)
{
	return classes[cls(cache)].objs;
}

uint32_t slab_pages_per_slab(unsigned cache)
{
	return classes[cls(cache)].pages;
}

static unsigned slab_order(unsigned cache)
{
	unsigned o = 0;

	while ((1u << o) < slab_pages_per_slab(cache))
		o++;
	return o;
}

const char *slab_cache_name(unsigned cache)
{
	return cache < VM_KMALLOC_CLASSES ? classes[cache].name
					  : classes[cls(cache)].dma_name;
}

const char *vm_slab_cache_name(unsigned i)
{
	return slab_cache_name(i);
}

unsigned vm_slab_cache_count(void)
{
	return VM_NCACHES;
}

void vm_slab_cache_info(const struct vm_machine *m, unsigned i,
			struct vm_cache_info *out)
{
	const struct vm_cache *c = &m->caches[i];

	out->name = slab_cache_name(i);
	out->object_size = slab_object_size(i);
	out->objects_per_slab = slab_objects_per_slab(i);
	out->pages_per_slab = slab_pages_per_slab(i);
	out->active_objects = c->active;
	out->total_objects = c->slabs * slab_objects_per_slab(i);
	out->slabs = c->slabs;
}

void slab_init(struct vm_machine *m)
{
	for (unsigned i = 0; i < VM_NCACHES; i++) {
		m->caches[i].partial = VM_NONE64;
		m->caches[i].slabs = 0;
		m->caches[i].active = 0;
	}
}

void slab_release(struct vm_machine *m)
{
	hmap_release(&m->slabs, &m->hm);
}

static inline struct vm_slab *slab_get(const struct vm_machine *m,
				       uint64_t pfn)
{
	return hmap_get(&m->slabs, pfn);
}

static void partial_unlink(struct vm_machine *m, uint64_t pfn)
{
	struct vm_slab *s = slab_get(m, pfn);
	struct vm_cache *c = &m->caches[s->cache];

	if (s->prev != VM_NONE64)
		slab_get(m, s->prev)->next = s->next;
	else
		c->partial = s->next;
	if (s->next != VM_NONE64)
		slab_get(m, s->next)->prev = s->prev;
	s->next = s->prev = VM_NONE64;
	s->on_partial = 0;
}

static void partial_push(struct vm_machine *m, uint64_t pfn)
{
	struct vm_slab *s = slab_get(m, pfn);
	struct vm_cache *c = &m->caches[s->cache];

	s->prev = VM_NONE64;
	s->next = c->partial;
	if (s->next != VM_NONE64)
		slab_get(m, s->next)->prev = pfn;
	c->partial = pfn;
	s->on_partial = 1;
}

/* The smallest class whose objects hold size (1 .. 8192). */
static unsigned size_class(uint64_t size)
{
	for (unsigned i = 0; i < VM_KMALLOC_CLASSES; i++)
		if (size <= classes[i].size)
			return i;
	return VM_KMALLOC_CLASSES - 1;
}

static int slab_alloc(struct vm_machine *m, unsigned cache, uint32_t gfp,
		      uint64_t *pa, struct vm_error *err)
{
	struct vm_cache *c = &m->caches[cache];
	uint64_t pfn = c->partial;
	struct vm_slab *s;
	unsigned idx = 0;

	if (pfn == VM_NONE64) {
		struct vm_owner o = vm_owner_make(VM_OWNER_SLAB, cache, 0);
		int rc = m_alloc(m, slab_order(cache), gfp, &o, &pfn);

		if (rc)
			return vm_fail(err, rc, "out of memory: no frames for "
					       "a new %s slab",
					       slab_cache_name(cache));
		s = hmap_put(&m->slabs, &m->hm, pfn);
		memset(s, 0, sizeof(*s));
		s->cache = (uint8_t)cache;
		c->slabs++;
		partial_push(m, pfn);
	}
	s = slab_get(m, pfn);
	while (s->used[idx / 64] & (1ULL << (idx % 64)))
		idx++;
	s->used[idx / 64] |= 1ULL << (idx % 64);
	s->inuse++;
	c->active++;
	if (s->inuse == slab_objects_per_slab(cache))
		partial_unlink(m, pfn);
	*pa = (pfn << VM_PAGE_SHIFT) + (uint64_t)idx * slab_object_size(cache);
	return 0;
}

int slab_kmalloc(struct vm_machine *m, const struct vm_op *op,
		 struct vm_op_result *res, struct vm_error *err)
{
	uint64_t size = op->u.kmalloc.size, pa = 0, pfn;
	uint32_t gfp = op->u.kmalloc.gfp;
	char buf[160];
	int rc;

	memset(&res->u.kmalloc, 0, sizeof(res->u.kmalloc));
	if (vm_gfp_zone_bad(gfp))
		return vm_fail(err, VM_EINVAL,
			       "gfp: %s asks for two zones at once "
			       "(GFP_ZONE_BAD)", vm_gfp_format(gfp, buf,
							       sizeof(buf)));
	if (size > VM_KMALLOC_MAX_SIZE)
		return vm_fail(err, VM_EINVAL,
			       "size: kmalloc serves at most KMALLOC_MAX_SIZE "
			       "(4 MiB); use vmalloc or alloc_pages");
	/* kmalloc_fix_flags(): the slab layer strips DMA32 and HIGHMEM. */
	if (gfp & VM_GFP_DMA32)
		res->u.kmalloc.warnings |= VM_WARN_STRIPPED_DMA32;
	if (gfp & VM_GFP_HIGHMEM)
		res->u.kmalloc.warnings |= VM_WARN_STRIPPED_HIGHMEM;
	gfp &= ~(VM_GFP_DMA32 | VM_GFP_HIGHMEM);
	res->u.kmalloc.size = size;
	if (size == 0) {
		res->u.kmalloc.zero = true;
		res->u.kmalloc.va = VM_ZERO_SIZE_PTR;
		return 0;
	}
	if (size > VM_KMALLOC_MAX_CACHE) {
		unsigned order = 0;
		struct vm_owner o = vm_owner_make(VM_OWNER_KMALLOC_LARGE, 0, 0);

		while ((VM_PAGE_SIZE << order) < size)
			order++;
		rc = m_alloc(m, order, gfp, &o, &pfn);
		if (rc)
			return vm_fail(err, rc, "out of memory: no free block "
					       "of order %u", order);
		pa = pfn << VM_PAGE_SHIFT;
		res->u.kmalloc.large = true;
		res->u.kmalloc.order = order;
	} else {
		unsigned cache = size_class(size) +
				 ((gfp & VM_GFP_DMA) ? VM_KMALLOC_CLASSES : 0);

		rc = slab_alloc(m, cache, gfp, &pa, err);
		if (rc)
			return rc;
		res->u.kmalloc.cache = cache;
	}
	res->u.kmalloc.pa = pa;
	res->u.kmalloc.va = m->layout.page_offset + pa;
	res->u.kmalloc.zone = vm_layout_zone_of(&m->layout, pa >> VM_PAGE_SHIFT);
	return 0;
}

static void slab_free_object(struct vm_machine *m, uint64_t pfn, unsigned idx)
{
	struct vm_slab *s = slab_get(m, pfn);
	unsigned cache = s->cache;
	struct vm_cache *c = &m->caches[cache];

	s->used[idx / 64] &= ~(1ULL << (idx % 64));
	s->inuse--;
	c->active--;
	if (s->inuse == 0) {
		if (s->on_partial)
			partial_unlink(m, pfn);
		hmap_del(&m->slabs, &m->hm, pfn);
		c->slabs--;
		m_free(m, pfn, slab_order(cache));
		return;
	}
	/* The slab just used goes to the front of the partial list. */
	if (s->on_partial)
		partial_unlink(m, pfn);
	partial_push(m, pfn);
}

/* Why an address that is not a live kmalloc object cannot be kfreed. */
static int wrong_owner(uint64_t va, const struct vm_owner *o,
		       struct vm_error *err)
{
	switch (o->kind) {
	case VM_OWNER_PAGE_ALLOC:
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx came from alloc_pages: free it with "
			       "free_pages", (unsigned long long)va);
	case VM_OWNER_VMALLOC:
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx is the direct-map alias of a vmalloc "
			       "page: free the area with vfree",
			       (unsigned long long)va);
	default:
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx is %s memory, not a kmalloc object",
			       (unsigned long long)va,
			       vm_owner_kind_name(o->kind));
	}
}

int slab_kfree(struct vm_machine *m, uint64_t va, struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	uint64_t pa, head;
	unsigned order;
	struct vm_owner o;

	/* kfree(NULL) and kfree(ZERO_SIZE_PTR) do nothing. */
	if (va == 0 || va == VM_ZERO_SIZE_PTR)
		return 0;
	if (va >= l->vmalloc_start && va < l->vmalloc_end)
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx is a vmalloc address: free it with vfree",
			       (unsigned long long)va);
	if (va < l->page_offset || va >= l->high_memory)
		return vm_fail(err, VM_ERANGE,
			       "%#llx is not a kernel logical address: kmalloc "
			       "returns addresses in [%#llx, %#llx)",
			       (unsigned long long)va,
			       (unsigned long long)l->page_offset,
			       (unsigned long long)l->high_memory);
	pa = va - l->page_offset;
	if (!buddy_find(m->buddy, pa >> VM_PAGE_SHIFT, &head, &order, &o)) {
		o = buddy_owner(m->buddy, pa >> VM_PAGE_SHIFT);
		if (o.kind != VM_OWNER_FREE)
			return wrong_owner(va, &o, err);
		return vm_fail(err, VM_EDOUBLEFREE,
			       "%#llx is free memory: freed already (double "
			       "free) or never allocated",
			       (unsigned long long)va);
	}
	if (o.kind == VM_OWNER_KMALLOC_LARGE) {
		if (pa != head << VM_PAGE_SHIFT)
			return vm_fail(err, VM_EINTERIOR,
				       "%#llx is %llu bytes into the kmalloc "
				       "block at %#llx: pass its start",
				       (unsigned long long)va,
				       (unsigned long long)(pa - (head << 12)),
				       (unsigned long long)(l->page_offset +
							    (head << 12)));
		m_free(m, head, order);
		return 0;
	}
	if (o.kind != VM_OWNER_SLAB)
		return wrong_owner(va, &o, err);
	{
		uint64_t off = pa - (head << VM_PAGE_SHIFT);
		unsigned cache = o.id, size = slab_object_size(cache);
		unsigned idx = (unsigned)(off / size);
		const struct vm_slab *s = slab_get(m, head);
		bool live = idx < slab_objects_per_slab(cache) &&
			    (s->used[idx / 64] & (1ULL << (idx % 64)));
		uint64_t obj = l->page_offset + (head << VM_PAGE_SHIFT) +
			       (uint64_t)idx * size;

		if (live && off % size)
			return vm_fail(err, VM_EINTERIOR,
				       "%#llx is %llu bytes into the %s object "
				       "at %#llx: pass its start",
				       (unsigned long long)va,
				       (unsigned long long)(off % size),
				       slab_cache_name(cache),
				       (unsigned long long)obj);
		if (!live)
			return vm_fail(err, VM_EDOUBLEFREE,
				       "%#llx is not a live %s object: freed "
				       "already (double free) or never "
				       "allocated", (unsigned long long)va,
				       slab_cache_name(cache));
		slab_free_object(m, head, idx);
	}
	return 0;
}

/* Object [start, start + size) of a live kmalloc allocation containing pa,
 * for the DMA check; false when pa is in no live allocation. */
bool slab_object_at(const struct vm_machine *m, uint64_t pa, uint64_t *start,
		    uint64_t *size)
{
	uint64_t head;
	unsigned order;
	struct vm_owner o;

	if (!buddy_find(m->buddy, pa >> VM_PAGE_SHIFT, &head, &order, &o))
		return false;
	if (o.kind == VM_OWNER_KMALLOC_LARGE || o.kind == VM_OWNER_PAGE_ALLOC) {
		*start = head << VM_PAGE_SHIFT;
		*size = VM_PAGE_SIZE << order;
		return true;
	}
	if (o.kind == VM_OWNER_SLAB) {
		const struct vm_slab *s = slab_get(m, head);
		uint32_t sz = slab_object_size(o.id);
		uint64_t idx = (pa - (head << VM_PAGE_SHIFT)) / sz;

		if (idx >= slab_objects_per_slab(o.id) ||
		    !(s->used[idx / 64] & (1ULL << (idx % 64))))
			return false;
		*start = (head << VM_PAGE_SHIFT) + idx * sz;
		*size = sz;
		return true;
	}
	return false;
}

int slab_check(const struct vm_machine *m, struct vm_error *err)
{
	uint64_t slabs[VM_NCACHES] = { 0 }, active[VM_NCACHES] = { 0 };
	uint64_t partial[VM_NCACHES] = { 0 };
	size_t cur = 0;
	uint64_t pfn;
	const struct vm_slab *s;

	while ((s = hmap_next(&m->slabs, &cur, &pfn))) {
		unsigned n = 0, objs;
		uint64_t head;
		unsigned order;
		struct vm_owner o;

		if (s->cache >= VM_NCACHES)
			return vm_fail(err, VM_ECORRUPT, "slab %#llx: bad cache",
				       (unsigned long long)pfn);
		objs = slab_objects_per_slab(s->cache);
		for (unsigned i = 0; i < 8; i++)
			n += (unsigned)__builtin_popcountll(s->used[i]);
		if (n != s->inuse || n == 0 || n > objs ||
		    (s->on_partial != 0) != (n < objs))
			return vm_fail(err, VM_ECORRUPT,
				       "slab %#llx of %s: %u objects marked, "
				       "inuse %u, %s", (unsigned long long)pfn,
				       slab_cache_name(s->cache), n, s->inuse,
				       s->on_partial ? "partial" : "full");
		if (!buddy_find(m->buddy, pfn, &head, &order, &o) ||
		    head != pfn || order != slab_order(s->cache) ||
		    o.kind != VM_OWNER_SLAB || o.id != s->cache)
			return vm_fail(err, VM_ECORRUPT,
				       "slab %#llx is not a %s block of its own",
				       (unsigned long long)pfn,
				       slab_cache_name(s->cache));
		slabs[s->cache]++;
		active[s->cache] += n;
		partial[s->cache] += s->on_partial;
	}
	for (unsigned c = 0; c < VM_NCACHES; c++) {
		uint64_t n = 0, prev = VM_NONE64;

		for (uint64_t p = m->caches[c].partial; p != VM_NONE64;) {
			s = slab_get(m, p);
			if (!s || s->cache != c || !s->on_partial ||
			    s->prev != prev || n > m->slabs.count)
				return vm_fail(err, VM_ECORRUPT,
					       "%s partial list broken at %#llx",
					       slab_cache_name(c),
					       (unsigned long long)p);
			n++;
			prev = p;
			p = s->next;
		}
		if (n != partial[c] || slabs[c] != m->caches[c].slabs ||
		    active[c] != m->caches[c].active)
			return vm_fail(err, VM_ECORRUPT,
				       "%s counters do not match its slabs",
				       slab_cache_name(c));
	}
	return 0;
}

void slab_encode(const struct vm_machine *m, struct vm_enc *e)
{
	uint64_t keys_small[1];
	uint64_t *keys = m->slabs.count ? malloc(m->slabs.count * sizeof(*keys))
					: keys_small;

	if (!keys)
		abort();
	for (unsigned c = 0; c < VM_NCACHES; c++) {
		uint64_t n = 0;

		for (uint64_t p = m->caches[c].partial; p != VM_NONE64;
		     p = slab_get(m, p)->next)
			n++;
		enc_u64(e, n);
		for (uint64_t p = m->caches[c].partial; p != VM_NONE64;
		     p = slab_get(m, p)->next)
			enc_u64(e, p);
	}
	hmap_keys_sorted(&m->slabs, keys);
	enc_u64(e, m->slabs.count);
	for (size_t i = 0; i < m->slabs.count; i++) {
		const struct vm_slab *s = slab_get(m, keys[i]);

		enc_u64(e, keys[i]);
		enc_u8(e, s->cache);
		for (unsigned w = 0; w < 8; w++)
			enc_u64(e, s->used[w]);
	}
	if (keys != keys_small)
		free(keys);
}

int slab_decode(struct vm_machine *m, struct vm_dec *d)
{
	uint64_t lists[VM_NCACHES];
	uint64_t *order[VM_NCACHES] = { 0 };
	uint64_t n;
	int rc = VM_ECORRUPT;

	for (unsigned c = 0; c < VM_NCACHES; c++) {
		lists[c] = dec_u64(d);
		if (!dec_room(d, lists[c], 8))
			goto out;
		order[c] = malloc((lists[c] + 1) * sizeof(uint64_t));
		if (!order[c])
			abort();
		for (uint64_t i = 0; i < lists[c]; i++)
			order[c][i] = dec_u64(d);
	}
	n = dec_u64(d);
	if (!dec_room(d, n, 73))
		goto out;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pfn = dec_u64(d);
		struct vm_slab *s;
		unsigned inuse = 0;

		if (d->failed || hmap_get(&m->slabs, pfn))
			goto out;
		s = hmap_put(&m->slabs, &m->hm, pfn);
		memset(s, 0, sizeof(*s));
		s->next = s->prev = VM_NONE64;
		s->cache = dec_u8(d);
		for (unsigned w = 0; w < 8; w++) {
			s->used[w] = dec_u64(d);
			inuse += (unsigned)__builtin_popcountll(s->used[w]);
		}
		if (s->cache >= VM_NCACHES || inuse == 0 ||
		    inuse > slab_objects_per_slab(s->cache))
			goto out;
		s->inuse = (uint16_t)inuse;
		m->caches[s->cache].slabs++;
		m->caches[s->cache].active += inuse;
	}
	/* Rebuild each partial list in its encoded order (push in reverse). */
	for (unsigned c = 0; c < VM_NCACHES; c++)
		for (uint64_t i = lists[c]; i-- > 0;) {
			struct vm_slab *s = slab_get(m, order[c][i]);

			if (!s || s->cache != c || s->on_partial)
				goto out;
			partial_push(m, order[c][i]);
		}
	rc = d->failed ? VM_ECORRUPT : 0;
out:
	for (unsigned c = 0; c < VM_NCACHES; c++)
		free(order[c]);
	return rc;
}
