/* hostmem.c - counted host allocations; see hostmem.h. */
#include <stdlib.h>
#include <string.h>

#include "hostmem.h"

void *hm_zalloc(struct vm_hostmem *hm, size_t size)
{
	void *p = calloc(1, size);

	if (!p)
		abort();
	hm->bytes += size;
	hm->allocs++;
	return p;
}

void *hm_realloc(struct vm_hostmem *hm, void *p, size_t old, size_t new_size)
{
	void *q;

	if (new_size == 0) {
		hm_free(hm, p, old);
		return NULL;
	}
	q = realloc(p, new_size);
	if (!q)
		abort();
	if (new_size > old)
		memset((char *)q + old, 0, new_size - old);
	hm->bytes = hm->bytes - old + new_size;
	hm->allocs++;
	return q;
}

void hm_free(struct vm_hostmem *hm, void *p, size_t size)
{
	if (!p)
		return;
	free(p);
	hm->bytes -= size;
}

void hm_array_insert(struct vm_hostmem *hm, void **arr, uint32_t *n,
		     uint32_t *cap, size_t elem, uint32_t i, const void *item)
{
	char *a;

	if (*n == *cap) {
		uint32_t c = *cap ? *cap * 2 : 8;

		*arr = hm_realloc(hm, *arr, *cap * elem, c * elem);
		*cap = c;
	}
	a = *arr;
	memmove(a + (i + 1) * elem, a + i * elem, (*n - i) * elem);
	memcpy(a + i * elem, item, elem);
	(*n)++;
}
