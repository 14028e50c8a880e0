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
