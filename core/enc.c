/* enc.c - little-endian byte writer and bounded reader; see enc.h. */
#include <stdlib.h>
#include <string.h>

#include "enc.h"

void enc_init(struct vm_enc *e)
{
	memset(e, 0, sizeof(*e));
}

void enc_release(struct vm_enc *e)
{
	free(e->buf);
	memset(e, 0, sizeof(*e));
}

void enc_grow(struct vm_enc *e, size_t n)
{
	size_t cap = e->cap ? e->cap : 256;

	while (cap - e->len < n)
		cap *= 2;
	e->buf = realloc(e->buf, cap);
	if (!e->buf)
		abort();
	e->cap = cap;
}

void enc_bytes(struct vm_enc *e, const void *p, size_t n)
{
	if (e->cap - e->len < n)
		enc_grow(e, n);
	if (n)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

void enc_str(struct vm_enc *e, const char *s)
{
	size_t n = strlen(s);

	enc_u16(e, (uint16_t)n);
	enc_bytes(e, s, n);
}

void dec_init(struct vm_dec *d, const void *buf, size_t len)
{
	d->buf = buf;
	d->len = len;
	d->pos = 0;
	d->failed = false;
}

bool dec_fail(struct vm_dec *d)
{
	d->failed = true;
	return false;
}

bool dec_bytes(struct vm_dec *d, void *p, size_t n)
{
	if (d->failed || n > d->len - d->pos)
		return dec_fail(d);
	if (n)
		memcpy(p, d->buf + d->pos, n);
	d->pos += n;
	return true;
}

static uint64_t dec_le(struct vm_dec *d, unsigned n)
{
	uint8_t b[8];
	uint64_t v = 0;

	if (!dec_bytes(d, b, n))
		return 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

uint8_t dec_u8(struct vm_dec *d) { return (uint8_t)dec_le(d, 1); }
uint16_t dec_u16(struct vm_dec *d) { return (uint16_t)dec_le(d, 2); }
uint32_t dec_u32(struct vm_dec *d) { return (uint32_t)dec_le(d, 4); }
uint64_t dec_u64(struct vm_dec *d) { return dec_le(d, 8); }

bool dec_str(struct vm_dec *d, char *buf, size_t cap)
{
	uint16_t n = dec_u16(d);

	if (d->failed || n >= cap)
		return dec_fail(d);
	if (!dec_bytes(d, buf, n))
		return false;
	/* enc_str writes strlen() bytes: a NUL inside is no encoding of
	 * ours, and would read back as a shorter string, encoded otherwise. */
	if (memchr(buf, '\0', n))
		return dec_fail(d);
	buf[n] = '\0';
	return true;
}

bool dec_room(struct vm_dec *d, uint64_t count, size_t each)
{
	if (d->failed)
		return false;
	if (each && count > (d->len - d->pos) / each)
		return dec_fail(d);
	return true;
}
