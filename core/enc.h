/*
 * enc.h - the byte writer and reader behind every canonical encoding.
 *
 * Fixed-width little-endian integers, so that an encoding is the same
 * bytes on every host. The writer grows a buffer it owns (host scratch
 * memory, not a machine's); the reader never reads past its end and
 * remembers the first failure, so decoders check once at the end.
 */
#ifndef VM_ENC_H
#define VM_ENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_enc {
	uint8_t *buf;
	size_t len;
	size_t cap;
};

struct vm_dec {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	bool failed;
};

void enc_init(struct vm_enc *e);
void enc_release(struct vm_enc *e); /* frees buf */
/* Makes room for n more bytes (the writers' slow path). */
void enc_grow(struct vm_enc *e, size_t n);
/* Makes room for n more bytes at once, before many small writes. */
static inline void enc_reserve(struct vm_enc *e, size_t n)
{
	if (e->cap - e->len < n)
		enc_grow(e, n);
}
void enc_bytes(struct vm_enc *e, const void *p, size_t n);
void enc_str(struct vm_enc *e, const char *s); /* u16 length + bytes */

/*
 * The integer writers are inline: a digest encodes a whole machine, some
 * ten thousand fields, and a call and a copy per field would cost more
 * than the hash.
 */
static inline void enc_le(struct vm_enc *e, uint64_t v, unsigned n)
{
	uint8_t *p;

	if (e->cap - e->len < n)
		enc_grow(e, n);
	p = e->buf + e->len;
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
	e->len += n;
}

static inline void enc_u8(struct vm_enc *e, uint8_t v) { enc_le(e, v, 1); }
static inline void enc_u16(struct vm_enc *e, uint16_t v) { enc_le(e, v, 2); }
static inline void enc_u32(struct vm_enc *e, uint32_t v) { enc_le(e, v, 4); }
static inline void enc_u64(struct vm_enc *e, uint64_t v) { enc_le(e, v, 8); }

void dec_init(struct vm_dec *d, const void *buf, size_t len);
uint8_t dec_u8(struct vm_dec *d);
uint16_t dec_u16(struct vm_dec *d);
uint32_t dec_u32(struct vm_dec *d);
uint64_t dec_u64(struct vm_dec *d);
bool dec_bytes(struct vm_dec *d, void *p, size_t n);
/* Reads a string into buf (NUL-terminated); fails if it needs > cap - 1. */
bool dec_str(struct vm_dec *d, char *buf, size_t cap);
/* Marks the decoder failed (a value out of range) and returns false. */
bool dec_fail(struct vm_dec *d);
/* Whether a count of items of at least `each` bytes can still follow. */
bool dec_room(struct vm_dec *d, uint64_t count, size_t each);

#endif
