/*
 * le.h - little-endian loads, whatever the host's byte order, each as one
 * load (memcpy: any alignment). Page-table entries and the canonical
 * state are little-endian, as x86 memory is.
 */
#ifndef VM_LE_H
#define VM_LE_H

#include <stdint.h>
#include <string.h>

static inline uint64_t vm_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint32_t vm_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

#endif
