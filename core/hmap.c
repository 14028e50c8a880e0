/* hmap.c - open addressing with backward-shift deletion; see hmap.h. */
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define MIN_CAPACITY 16

static inline uint64_t *slot_key(const struct vm_hmap *h, size_t i)
{
	return (uint64_t *)(h->slots + i * h->stride);
}

static inline void *slot_value(const struct vm_hmap *h, size_t i)
{
	return h->slots + i * h->stride + sizeof(uint64_t);
}

static inline size_t home(const struct vm_hmap *h, uint64_t key)
{
	return hmap_home_(h, key);
}

void hmap_init(struct vm_hmap *h, size_t value_size)
{
	memset(h, 0, sizeof(*h));
	h->value_size = value_size;
	h->stride = sizeof(uint64_t) + ((value_size + 7) & ~(size_t)7);
	h->load8 = 6;
}

void hmap_init_dense(struct vm_hmap *h, size_t value_size)
{
	hmap_init(h, value_size);
	h->load8 = 7;
}

void hmap_release(struct vm_hmap *h, struct vm_hostmem *hm)
{
	hm_free(hm, h->slots, h->capacity * h->stride);
	h->slots = NULL;
	h->capacity = 0;
	h->count = 0;
}

static void rehash(struct vm_hmap *h, struct vm_hostmem *hm, size_t capacity)
{
	struct vm_hmap old = *h;

	h->capacity = capacity;
	h->slots = hm_zalloc(hm, capacity * h->stride);
	for (size_t i = 0; i < old.capacity; i++) {
		uint64_t k = *slot_key(&old, i);
		size_t j;

		if (!k)
			continue;
		for (j = home(h, k - 1); *slot_key(h, j);
		     j = (j + 1) & (capacity - 1))
			;
		memcpy(h->slots + j * h->stride, old.slots + i * old.stride,
		       h->stride);
	}
	hm_free(hm, old.slots, old.capacity * old.stride);
}

void *hmap_put(struct vm_hmap *h, struct vm_hostmem *hm, uint64_t key)
{
	size_t i;
	void *v = hmap_get(h, key);

	if (v)
		return v;
	if ((h->count + 1) * 8 > h->capacity * h->load8)
		rehash(h, hm, h->capacity ? h->capacity * 2 : MIN_CAPACITY);
	for (i = home(h, key); *slot_key(h, i); i = (i + 1) & (h->capacity - 1))
		;
	*slot_key(h, i) = key + 1;
	h->count++;
	return slot_value(h, i);
}

bool hmap_del(struct vm_hmap *h, struct vm_hostmem *hm, uint64_t key)
{
	size_t mask = h->capacity - 1, i, j;

	if (!h->capacity)
		return false;
	for (i = home(h, key);; i = (i + 1) & mask) {
		uint64_t k = *slot_key(h, i);

		if (k == 0)
			return false;
		if (k == key + 1)
			break;
	}
	/*
	 * Backward shift: move each later member of the probe run into the
	 * hole when its home does not lie cyclically in (hole, j].
	 */
	for (j = (i + 1) & mask;; j = (j + 1) & mask) {
		uint64_t k = *slot_key(h, j);
		size_t hj;

		if (k == 0)
			break;
		hj = home(h, k - 1);
		if (((j - hj) & mask) >= ((j - i) & mask)) {
			memcpy(h->slots + i * h->stride, h->slots + j * h->stride,
			       h->stride);
			i = j;
		}
	}
	memset(h->slots + i * h->stride, 0, h->stride);
	h->count--;
	if (h->count == 0) {
		hmap_release(h, hm);
	} else if (h->capacity > MIN_CAPACITY && h->count * 8 < h->capacity) {
		rehash(h, hm, h->capacity / 2);
	}
	return true;
}

void *hmap_next(const struct vm_hmap *h, size_t *cursor, uint64_t *key)
{
	for (size_t i = *cursor; i < h->capacity; i++) {
		uint64_t k = *slot_key(h, i);

		if (k) {
			*cursor = i + 1;
			if (key)
				*key = k - 1;
			return slot_value(h, i);
		}
	}
	*cursor = h->capacity;
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

void hmap_keys_sorted(const struct vm_hmap *h, uint64_t *out)
{
	size_t n = 0, cur = 0;
	uint64_t k;

	while (hmap_next(h, &cur, &k))
		out[n++] = k;
	qsort(out, n, sizeof(*out), cmp_u64);
}
