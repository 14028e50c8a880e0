/*
 * op.h - operations: every mutation of a machine, as a record.
 *
 * Each successful mutation is one operation record (SPEC 1.9): a C struct
 * with a compact, versioned binary encoding, so that the service can log
 * it, and replaying a machine's records on a fresh machine of the same
 * configuration gives the same state and digest. Only successful
 * operations count: vm_machine_apply either applies an operation whole
 * (bumping the version by one) or changes nothing and returns an error.
 *
 * Encoding (little-endian): u8 encoding version (VM_OP_ENCODING), u8 type,
 * then the type's fields in the order of the structs below, integers at
 * their declared width, booleans as one byte, strings as u16 length and
 * bytes. The encoding version changes whenever the layout does; decoders
 * keep reading every earlier version.
 */
#ifndef VM_OP_H
#define VM_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "layout.h"

struct vm_machine;
struct vm_enc;

#define VM_OP_ENCODING 1
#define VM_PROC_NAME_MAX 31

enum vm_op_type {
	VM_OP_PROCESS_CREATE = 1,
	VM_OP_PROCESS_EXIT,
	VM_OP_MMAP,
	VM_OP_MUNMAP,
	VM_OP_BRK,
	VM_OP_KMALLOC,
	VM_OP_KFREE,
	VM_OP_VMALLOC,
	VM_OP_VFREE,
	VM_OP_ALLOC_PAGES,
	VM_OP_FREE_PAGES,
	VM_OP_SWITCH,
	VM_OP_TYPE_END
};

/* "process_create", "mmap", ... (the history's `op`). */
const char *vm_op_name(enum vm_op_type type);

/* Sizes use VM_SEG_DEFAULT for "the default of SPEC 1.5". */
#define VM_SEG_DEFAULT UINT64_MAX

struct vm_op {
	enum vm_op_type type;
	union {
		struct {
			char name[VM_PROC_NAME_MAX + 1];
			uint64_t text, data, heap, stack;
			bool populate;
		} create;
		struct {
			uint32_t pid;
		} exit;
		struct {
			uint32_t pid;
			uint64_t addr;      /* hint or fixed address */
			uint64_t length;
			uint8_t prot;       /* VM_PROT_* */
			bool has_addr, fixed, populate;
		} mmap;
		struct {
			uint32_t pid;
			uint64_t addr, length;
		} munmap;
		struct {
			uint32_t pid;
			bool absolute;      /* addr given, not increment */
			int64_t increment;
			uint64_t addr;
		} brk;
		struct {
			uint64_t size;
			uint32_t gfp;
		} kmalloc;
		struct {
			uint64_t va;
		} kfree, vfree;
		struct {
			uint64_t size;
			bool guard;
		} vmalloc;
		struct {
			uint32_t order;
			uint32_t gfp;
		} alloc_pages;
		struct {
			uint64_t pa;
			uint32_t order;
		} free_pages;
		struct {
			uint32_t cpu, pid;
		} sw;
	} u;
};

/* Warnings a kmalloc answer carries (the flags the slab layer stripped). */
#define VM_WARN_STRIPPED_DMA32 1u
#define VM_WARN_STRIPPED_HIGHMEM 2u

/* What a successful operation answers; see each field's op. */
struct vm_op_result {
	union {
		struct {
			uint32_t pid;
		} create;
		struct {
			uint64_t start, end;
			uint8_t prot;
		} mmap;
		struct {
			uint64_t va, pa, size;
			bool zero;          /* ZERO_SIZE_PTR: no pa, no cache */
			bool large;         /* kmalloc_large: order is set */
			unsigned cache;     /* slab cache index */
			unsigned order;
			enum vm_zone_id zone;
			uint32_t warnings;  /* VM_WARN_* */
		} kmalloc;
		struct {
			uint64_t va, size, pages;
			bool guard;
		} vmalloc;
		struct {
			uint64_t pa, va;
			bool has_va;
			unsigned order;
			enum vm_zone_id zone;
		} alloc_pages;
		struct {
			uint32_t cpu, prev_pid, next_pid;
			uint64_t cr3_before, cr3_after;
		} sw;
	} u;
};

/*
 * Applies op. On success returns 0, fills res (may be NULL) and bumps the
 * version; on failure returns a VM_E* code with err filled and the machine
 * exactly as before (same digest, same version).
 */
int vm_machine_apply(struct vm_machine *m, const struct vm_op *op,
		     struct vm_op_result *res, struct vm_error *err);

/* Appends op's encoding to e. */
void vm_op_encode(const struct vm_op *op, struct vm_enc *e);

/*
 * Decodes one record of len bytes. VM_ECORRUPT when malformed or with
 * trailing bytes, VM_EVERSION for an unknown encoding version.
 */
int vm_op_decode(const void *buf, size_t len, struct vm_op *op);

/* A record's bytes in a fresh buffer (*buf freed by the caller, free()). */
int vm_op_serialize(const struct vm_op *op, uint8_t **buf, size_t *len);

/*
 * The answer of an applied operation, encoded (u8 encoding version, then
 * the fields the type answers, as the record's), so that a machine's
 * history can show what each operation answered. Decoding needs the
 * operation's type; VM_ECORRUPT when the bytes do not fit it.
 */
void vm_op_result_encode(const struct vm_op *op, const struct vm_op_result *r,
			 struct vm_enc *e);
int vm_op_result_decode(enum vm_op_type type, const void *buf, size_t len,
			struct vm_op_result *r);

#endif
