/* op.c - operation records and their application; see op.h. */
#include <stdlib.h>
#include <string.h>

#include "enc.h"
#include "gfp.h"
#include "machine_int.h"
#include "op.h"
#include "pagetable.h"
#include "state.h"

const char *vm_op_name(enum vm_op_type type)
{
	static const char *const names[VM_OP_TYPE_END] = {
		[VM_OP_PROCESS_CREATE] = "process_create",
		[VM_OP_PROCESS_EXIT] = "process_exit",
		[VM_OP_MMAP] = "mmap",
		[VM_OP_MUNMAP] = "munmap",
		[VM_OP_BRK] = "brk",
		[VM_OP_KMALLOC] = "kmalloc",
		[VM_OP_KFREE] = "kfree",
		[VM_OP_VMALLOC] = "vmalloc",
		[VM_OP_VFREE] = "vfree",
		[VM_OP_ALLOC_PAGES] = "alloc_pages",
		[VM_OP_FREE_PAGES] = "free_pages",
		[VM_OP_SWITCH] = "switch",
	};
	return type > 0 && type < VM_OP_TYPE_END ? names[type] : "unknown";
}

/* ---- application ---- */

static int alloc_pages_op(struct vm_machine *m, const struct vm_op *op,
			  struct vm_op_result *res, struct vm_error *err)
{
	uint32_t order = op->u.alloc_pages.order, gfp = op->u.alloc_pages.gfp;
	struct vm_owner o = vm_owner_make(VM_OWNER_PAGE_ALLOC, 0, 0);
	uint64_t pfn, pa;
	int rc;

	if (order > VM_MAX_ORDER)
		return vm_fail(err, VM_EINVAL, "order: must be 0 to %d "
				       "(MAX_PAGE_ORDER)", VM_MAX_ORDER);
	if (vm_gfp_zone_bad(gfp))
		return vm_fail(err, VM_EINVAL, "gfp: asks for two zones at "
				       "once (GFP_ZONE_BAD)");
	rc = m_alloc(m, order, gfp, &o, &pfn);
	if (rc)
		return vm_fail(err, rc, "out of memory: no free block of order "
				       "%u in the zones the gfp allows", order);
	pa = pfn << VM_PAGE_SHIFT;
	res->u.alloc_pages.pa = pa;
	res->u.alloc_pages.order = order;
	res->u.alloc_pages.zone = vm_layout_zone_of(&m->layout, pfn);
	res->u.alloc_pages.has_va = pa < m->layout.lowmem_bytes;
	res->u.alloc_pages.va = res->u.alloc_pages.has_va
					? pa + m->layout.page_offset : 0;
	return 0;
}

static int free_pages_op(struct vm_machine *m, const struct vm_op *op,
			 struct vm_error *err)
{
	uint64_t pa = op->u.free_pages.pa, head;
	uint32_t order = op->u.free_pages.order;
	unsigned real;
	struct vm_owner o;

	if (order > VM_MAX_ORDER)
		return vm_fail(err, VM_EINVAL, "order: must be 0 to %d",
			       VM_MAX_ORDER);
	if (pa & (VM_PAGE_SIZE - 1))
		return vm_fail(err, VM_EINVAL, "pa: must be page aligned");
	if (pa >= m->layout.memory)
		return vm_fail(err, VM_ERANGE, "pa: %#llx is beyond RAM",
			       (unsigned long long)pa);
	if (!buddy_find(m->buddy, pa >> VM_PAGE_SHIFT, &head, &real, &o)) {
		o = buddy_owner(m->buddy, pa >> VM_PAGE_SHIFT);
		if (o.kind != VM_OWNER_FREE)
			return vm_fail(err, VM_EWRONGFREE,
				       "%#llx is %s memory, never handed out",
				       (unsigned long long)pa,
				       vm_owner_kind_name(o.kind));
		return vm_fail(err, VM_EDOUBLEFREE,
			       "%#llx is free: freed already (double free) or "
			       "never allocated", (unsigned long long)pa);
	}
	if (o.kind != VM_OWNER_PAGE_ALLOC)
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx belongs to %s, not to alloc_pages",
			       (unsigned long long)pa,
			       vm_owner_kind_name(o.kind));
	if (head << VM_PAGE_SHIFT != pa)
		return vm_fail(err, VM_EINTERIOR,
			       "%#llx is inside the order-%u block at %#llx",
			       (unsigned long long)pa, real,
			       (unsigned long long)(head << VM_PAGE_SHIFT));
	if (real != order)
		return vm_fail(err, VM_EORDER,
			       "the block at %#llx has order %u, not %u",
			       (unsigned long long)pa, real, order);
	m_free(m, head, order);
	return 0;
}

static int dispatch(struct vm_machine *m, const struct vm_op *op,
		    struct vm_op_result *res, struct vm_error *err)
{
	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		return proc_create(m, op, &res->u.create.pid, err);
	case VM_OP_PROCESS_EXIT:
		return proc_exit(m, op->u.exit.pid, err);
	case VM_OP_MMAP: {
		int rc = proc_mmap(m, op, &res->u.mmap.start, err);

		res->u.mmap.end = res->u.mmap.start +
				  ((op->u.mmap.length + VM_PAGE_SIZE - 1) &
				   ~(VM_PAGE_SIZE - 1));
		res->u.mmap.prot = op->u.mmap.prot;
		return rc;
	}
	case VM_OP_MUNMAP:
		return proc_munmap(m, op, err);
	case VM_OP_BRK:
		return proc_brk(m, op, err);
	case VM_OP_KMALLOC:
		return slab_kmalloc(m, op, res, err);
	case VM_OP_KFREE:
		return slab_kfree(m, op->u.kfree.va, err);
	case VM_OP_VMALLOC:
		return vm_vmalloc(m, op, res, err);
	case VM_OP_VFREE:
		return vm_vfree(m, op->u.vfree.va, err);
	case VM_OP_ALLOC_PAGES:
		return alloc_pages_op(m, op, res, err);
	case VM_OP_FREE_PAGES:
		return free_pages_op(m, op, err);
	case VM_OP_SWITCH:
		return cpu_switch(m, op, res, err);
	default:
		return vm_fail(err, VM_EINVAL, "unknown operation type %d",
			       (int)op->type);
	}
}

static uint64_t pages_of(uint64_t bytes)
{
	return bytes / VM_PAGE_SIZE + 1;
}

/*
 * Frames an operation may allocate, at most, when it makes more than one
 * allocation (0 when it makes at most one, which fails before changing
 * anything). Generous: each region may need a fresh chain of tables.
 */
static uint64_t frames_bound(const struct vm_machine *m,
			     const struct vm_op *op)
{
	uint64_t pages = 0, chains = 1;

	switch (op->type) {
	case VM_OP_PROCESS_CREATE: {
		const uint64_t *s = &op->u.create.text;

		for (int i = 0; i < 4; i++)
			if (op->u.create.populate)
				pages += s[i] == VM_SEG_DEFAULT ? 64
								: pages_of(s[i]);
		pages += 8; /* top level, PAE PMDs, kernel stack */
		chains = 6;
		break;
	}
	case VM_OP_MMAP:
		if (!op->u.mmap.populate)
			return 0;
		pages = pages_of(op->u.mmap.length);
		break;
	case VM_OP_BRK: {
		const struct vm_process *p = m_process(m, op->u.brk.pid);

		if (op->u.brk.absolute && p && op->u.brk.addr > p->mm.brk)
			pages = pages_of(op->u.brk.addr - p->mm.brk);
		else if (!op->u.brk.absolute && op->u.brk.increment > 0)
			pages = pages_of((uint64_t)op->u.brk.increment);
		else
			return 0;
		break;
	}
	case VM_OP_VMALLOC:
		pages = pages_of(op->u.vmalloc.size);
		break;
	default:
		return 0;
	}
	if (pages > UINT64_MAX / 4)
		return UINT64_MAX;
	return pages + pt_tables_bound(m, pages) +
	       chains * m->layout.arch->levels;
}

static uint64_t free_lowmem(const struct vm_machine *m)
{
	uint64_t n = 0;

	for (int z = VM_ZONE_DMA; z <= VM_ZONE_NORMAL; z++) {
		struct vm_zone_info zi;

		buddy_zone_info(m->buddy, (enum vm_zone_id)z, &zi);
		n += zi.free_pages;
	}
	return n;
}

int vm_machine_apply(struct vm_machine *m, const struct vm_op *op,
		     struct vm_op_result *res, struct vm_error *err)
{
	struct vm_op_result scratch;
	uint8_t *snap = NULL;
	size_t snaplen = 0;
	uint64_t bound = frames_bound(m, op);
	int rc;

	if (!res)
		res = &scratch;
	memset(res, 0, sizeof(*res));
	/*
	 * An operation that makes many allocations could run out of frames
	 * half way. When that is possible at all, keep the canonical state
	 * to put back, so that a refused operation changes nothing.
	 */
	if (bound && free_lowmem(m) < bound)
		vm_state_serialize(m, &snap, &snaplen);
#ifdef VM_DEBUG
	uint64_t before = bound ? vm_machine_digest(m) : 0;
#endif
	rc = dispatch(m, op, res, err);
	if (rc) {
		if (snap && m_restore(m, snap, snaplen) != 0)
			abort(); /* a machine's own state always loads */
#ifdef VM_DEBUG
		if (bound && vm_machine_digest(m) != before)
			abort(); /* a refused operation changed the machine */
#endif
		free(snap);
		return rc;
	}
	free(snap);
	m->version++;
#ifdef VM_DEBUG
	{
		struct vm_error e;

		if (vm_machine_check(m, &e))
			abort(); /* an invariant broke: see e.detail */
	}
#endif
	return 0;
}

/* ---- encoding ---- */

void vm_op_encode(const struct vm_op *op, struct vm_enc *e)
{
	enc_u8(e, VM_OP_ENCODING);
	enc_u8(e, (uint8_t)op->type);
	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		enc_str(e, op->u.create.name);
		enc_u64(e, op->u.create.text);
		enc_u64(e, op->u.create.data);
		enc_u64(e, op->u.create.heap);
		enc_u64(e, op->u.create.stack);
		enc_u8(e, op->u.create.populate);
		break;
	case VM_OP_PROCESS_EXIT:
		enc_u32(e, op->u.exit.pid);
		break;
	case VM_OP_MMAP:
		enc_u32(e, op->u.mmap.pid);
		enc_u64(e, op->u.mmap.addr);
		enc_u64(e, op->u.mmap.length);
		enc_u8(e, op->u.mmap.prot);
		enc_u8(e, op->u.mmap.has_addr);
		enc_u8(e, op->u.mmap.fixed);
		enc_u8(e, op->u.mmap.populate);
		break;
	case VM_OP_MUNMAP:
		enc_u32(e, op->u.munmap.pid);
		enc_u64(e, op->u.munmap.addr);
		enc_u64(e, op->u.munmap.length);
		break;
	case VM_OP_BRK:
		enc_u32(e, op->u.brk.pid);
		enc_u8(e, op->u.brk.absolute);
		enc_u64(e, (uint64_t)op->u.brk.increment);
		enc_u64(e, op->u.brk.addr);
		break;
	case VM_OP_KMALLOC:
		enc_u64(e, op->u.kmalloc.size);
		enc_u32(e, op->u.kmalloc.gfp);
		break;
	case VM_OP_KFREE:
		enc_u64(e, op->u.kfree.va);
		break;
	case VM_OP_VMALLOC:
		enc_u64(e, op->u.vmalloc.size);
		enc_u8(e, op->u.vmalloc.guard);
		break;
	case VM_OP_VFREE:
		enc_u64(e, op->u.vfree.va);
		break;
	case VM_OP_ALLOC_PAGES:
		enc_u32(e, op->u.alloc_pages.order);
		enc_u32(e, op->u.alloc_pages.gfp);
		break;
	case VM_OP_FREE_PAGES:
		enc_u64(e, op->u.free_pages.pa);
		enc_u32(e, op->u.free_pages.order);
		break;
	case VM_OP_SWITCH:
		enc_u32(e, op->u.sw.cpu);
		enc_u32(e, op->u.sw.pid);
		break;
	default:
		break;
	}
}

static bool dec_bool(struct vm_dec *d, bool *out)
{
	uint8_t v = dec_u8(d);

	if (v > 1)
		return dec_fail(d);
	*out = v;
	return true;
}

int vm_op_decode(const void *buf, size_t len, struct vm_op *op)
{
	struct vm_dec d;
	uint8_t enc, type;

	memset(op, 0, sizeof(*op));
	dec_init(&d, buf, len);
	enc = dec_u8(&d);
	type = dec_u8(&d);
	if (d.failed)
		return VM_ECORRUPT;
	if (enc != VM_OP_ENCODING)
		return VM_EVERSION;
	op->type = (enum vm_op_type)type;
	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		dec_str(&d, op->u.create.name, sizeof(op->u.create.name));
		op->u.create.text = dec_u64(&d);
		op->u.create.data = dec_u64(&d);
		op->u.create.heap = dec_u64(&d);
		op->u.create.stack = dec_u64(&d);
		dec_bool(&d, &op->u.create.populate);
		break;
	case VM_OP_PROCESS_EXIT:
		op->u.exit.pid = dec_u32(&d);
		break;
	case VM_OP_MMAP:
		op->u.mmap.pid = dec_u32(&d);
		op->u.mmap.addr = dec_u64(&d);
		op->u.mmap.length = dec_u64(&d);
		op->u.mmap.prot = dec_u8(&d);
		dec_bool(&d, &op->u.mmap.has_addr);
		dec_bool(&d, &op->u.mmap.fixed);
		dec_bool(&d, &op->u.mmap.populate);
		break;
	case VM_OP_MUNMAP:
		op->u.munmap.pid = dec_u32(&d);
		op->u.munmap.addr = dec_u64(&d);
		op->u.munmap.length = dec_u64(&d);
		break;
	case VM_OP_BRK:
		op->u.brk.pid = dec_u32(&d);
		dec_bool(&d, &op->u.brk.absolute);
		op->u.brk.increment = (int64_t)dec_u64(&d);
		op->u.brk.addr = dec_u64(&d);
		break;
	case VM_OP_KMALLOC:
		op->u.kmalloc.size = dec_u64(&d);
		op->u.kmalloc.gfp = dec_u32(&d);
		break;
	case VM_OP_KFREE:
		op->u.kfree.va = dec_u64(&d);
		break;
	case VM_OP_VMALLOC:
		op->u.vmalloc.size = dec_u64(&d);
		dec_bool(&d, &op->u.vmalloc.guard);
		break;
	case VM_OP_VFREE:
		op->u.vfree.va = dec_u64(&d);
		break;
	case VM_OP_ALLOC_PAGES:
		op->u.alloc_pages.order = dec_u32(&d);
		op->u.alloc_pages.gfp = dec_u32(&d);
		break;
	case VM_OP_FREE_PAGES:
		op->u.free_pages.pa = dec_u64(&d);
		op->u.free_pages.order = dec_u32(&d);
		break;
	case VM_OP_SWITCH:
		op->u.sw.cpu = dec_u32(&d);
		op->u.sw.pid = dec_u32(&d);
		break;
	default:
		return VM_ECORRUPT;
	}
	if (d.failed || d.pos != d.len)
		return VM_ECORRUPT;
	return 0;
}

int vm_op_serialize(const struct vm_op *op, uint8_t **buf, size_t *len)
{
	struct vm_enc e;

	enc_init(&e);
	vm_op_encode(op, &e);
	*buf = e.buf;
	*len = e.len;
	return 0;
}

void vm_op_result_encode(const struct vm_op *op, const struct vm_op_result *r,
			 struct vm_enc *e)
{
	enc_u8(e, VM_OP_ENCODING);
	switch (op->type) {
	case VM_OP_PROCESS_CREATE:
		enc_u32(e, r->u.create.pid);
		break;
	case VM_OP_MMAP:
		enc_u64(e, r->u.mmap.start);
		enc_u64(e, r->u.mmap.end);
		enc_u8(e, r->u.mmap.prot);
		break;
	case VM_OP_KMALLOC:
		enc_u64(e, r->u.kmalloc.va);
		enc_u64(e, r->u.kmalloc.pa);
		enc_u64(e, r->u.kmalloc.size);
		enc_u8(e, r->u.kmalloc.zero);
		enc_u8(e, r->u.kmalloc.large);
		enc_u32(e, r->u.kmalloc.cache);
		enc_u32(e, r->u.kmalloc.order);
		enc_u8(e, (uint8_t)r->u.kmalloc.zone);
		enc_u32(e, r->u.kmalloc.warnings);
		break;
	case VM_OP_VMALLOC:
		enc_u64(e, r->u.vmalloc.va);
		enc_u64(e, r->u.vmalloc.size);
		enc_u64(e, r->u.vmalloc.pages);
		enc_u8(e, r->u.vmalloc.guard);
		break;
	case VM_OP_ALLOC_PAGES:
		enc_u64(e, r->u.alloc_pages.pa);
		enc_u64(e, r->u.alloc_pages.va);
		enc_u8(e, r->u.alloc_pages.has_va);
		enc_u32(e, r->u.alloc_pages.order);
		enc_u8(e, (uint8_t)r->u.alloc_pages.zone);
		break;
	case VM_OP_SWITCH:
		enc_u32(e, r->u.sw.cpu);
		enc_u32(e, r->u.sw.prev_pid);
		enc_u32(e, r->u.sw.next_pid);
		enc_u64(e, r->u.sw.cr3_before);
		enc_u64(e, r->u.sw.cr3_after);
		break;
	default:
		break; /* the others answer with the machine's state */
	}
}

int vm_op_result_decode(enum vm_op_type type, const void *buf, size_t len,
			struct vm_op_result *r)
{
	struct vm_dec d;
	bool b = false;

	memset(r, 0, sizeof(*r));
	dec_init(&d, buf, len);
	if (dec_u8(&d) != VM_OP_ENCODING)
		return d.failed ? VM_ECORRUPT : VM_EVERSION;
	switch (type) {
	case VM_OP_PROCESS_CREATE:
		r->u.create.pid = dec_u32(&d);
		break;
	case VM_OP_MMAP:
		r->u.mmap.start = dec_u64(&d);
		r->u.mmap.end = dec_u64(&d);
		r->u.mmap.prot = dec_u8(&d);
		break;
	case VM_OP_KMALLOC:
		r->u.kmalloc.va = dec_u64(&d);
		r->u.kmalloc.pa = dec_u64(&d);
		r->u.kmalloc.size = dec_u64(&d);
		dec_bool(&d, &r->u.kmalloc.zero);
		dec_bool(&d, &r->u.kmalloc.large);
		r->u.kmalloc.cache = dec_u32(&d);
		r->u.kmalloc.order = dec_u32(&d);
		r->u.kmalloc.zone = (enum vm_zone_id)dec_u8(&d);
		r->u.kmalloc.warnings = dec_u32(&d);
		if (r->u.kmalloc.zone >= VM_ZONE_COUNT)
			return VM_ECORRUPT;
		break;
	case VM_OP_VMALLOC:
		r->u.vmalloc.va = dec_u64(&d);
		r->u.vmalloc.size = dec_u64(&d);
		r->u.vmalloc.pages = dec_u64(&d);
		dec_bool(&d, &r->u.vmalloc.guard);
		break;
	case VM_OP_ALLOC_PAGES:
		r->u.alloc_pages.pa = dec_u64(&d);
		r->u.alloc_pages.va = dec_u64(&d);
		dec_bool(&d, &b);
		r->u.alloc_pages.has_va = b;
		r->u.alloc_pages.order = dec_u32(&d);
		r->u.alloc_pages.zone = (enum vm_zone_id)dec_u8(&d);
		if (r->u.alloc_pages.zone >= VM_ZONE_COUNT)
			return VM_ECORRUPT;
		break;
	case VM_OP_SWITCH:
		r->u.sw.cpu = dec_u32(&d);
		r->u.sw.prev_pid = dec_u32(&d);
		r->u.sw.next_pid = dec_u32(&d);
		r->u.sw.cr3_before = dec_u64(&d);
		r->u.sw.cr3_after = dec_u64(&d);
		break;
	default:
		break;
	}
	return d.failed || d.pos != d.len ? VM_ECORRUPT : 0;
}
