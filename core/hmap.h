/*
 * hmap.h - a map from 64-bit keys to fixed-size values, stored inline.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), Fibonacci hashing, power-of-two capacity kept at most 3/4
 * full (7/8 for maps made with hmap_init_dense, which trade a few more
 * probes for a quarter less memory). Used wherever core/ needs sparse per-frame or per-object state, so
 * that host memory follows the number of entries, not the key range.
 *
 * Iteration order depends on insertion history and capacity, so nothing
 * that reaches a machine's state, digest or answers may depend on it: code
 * that must walk entries in a defined order sorts the keys first
 * (hmap_keys_sorted).
 *
 * Pointers returned by get/put are valid until the next put or del on the
 * same map.
 */
#ifndef VM_HMAP_H
#define VM_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hostmem.h"

struct vm_hmap {
	unsigned char *slots; /* capacity slots of (key + 1, value) */
	size_t capacity;      /* 0 or a power of two */
	size_t count;
	size_t value_size;    /* bytes of each value */
	size_t stride;        /* bytes of each slot */
	unsigned load8;       /* most entries per 8 slots before growing */
};

/* An empty map of values of value_size bytes; allocates nothing yet. */
void hmap_init(struct vm_hmap *h, size_t value_size);

/* The same, filled up to 7/8 before growing. */
void hmap_init_dense(struct vm_hmap *h, size_t value_size);

/* Frees the slots (counted in hm); the map is empty and reusable after. */
void hmap_release(struct vm_hmap *h, struct vm_hostmem *hm);

/* Fibonacci hashing: spreads clustered keys (consecutive pfns) evenly. */
static inline size_t hmap_home_(const struct vm_hmap *h, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 32) &
	       (h->capacity - 1);
}

/* The value of key, or NULL. Inline: the page-table walk's hot path. */
static inline void *hmap_get(const struct vm_hmap *h, uint64_t key)
{
	if (!h->capacity)
		return NULL;
	for (size_t i = hmap_home_(h, key);; i = (i + 1) & (h->capacity - 1)) {
		unsigned char *slot = h->slots + i * h->stride;
		uint64_t k;

		memcpy(&k, slot, sizeof(k));
		if (k == 0)
			return NULL;
		if (k == key + 1)
			return slot + sizeof(uint64_t);
	}
}

/*
 * The value of key, inserted zeroed if absent. Key UINT64_MAX is reserved.
 */
void *hmap_put(struct vm_hmap *h, struct vm_hostmem *hm, uint64_t key);

/* Removes key; returns whether it was present. Shrinks when sparse. */
bool hmap_del(struct vm_hmap *h, struct vm_hostmem *hm, uint64_t key);

/*
 * Iteration: start with *cursor = 0; each call returns the next value and
 * its key, or NULL at the end. The map must not change during iteration.
 */
void *hmap_next(const struct vm_hmap *h, size_t *cursor, uint64_t *key);

/* Writes the h->count keys to out in ascending order. */
void hmap_keys_sorted(const struct vm_hmap *h, uint64_t *out);

#endif
