/*
 * vmalloc.c - virtually contiguous kernel memory.
 *
 * An area is taken first-fit from the lowest address of the vmalloc region
 * and followed by one unmapped guard page unless VM_NO_GUARD
 * (__get_vm_area_node); its pages are separate order-0 frames allocated
 * with GFP_KERNEL | __GFP_HIGHMEM, all allocated first and then mapped in
 * the reference table (__vmalloc_area_node, vmap_pages_range). vfree
 * unmaps and frees the pages; the page tables stay, as in Linux, and the
 * area is reusable at once (Linux purges lazily: a simplification).
 */
#include <stdlib.h>
#include <string.h>

#include "enc.h"
#include "gfp.h"
#include "machine_int.h"
#include "op.h"
#include "pagetable.h"
#include "vmalloc.h"

static uint64_t area_span(const struct vm_area *a)
{
	return ((uint64_t)a->npages + a->guard) << VM_PAGE_SHIFT;
}

int vmalloc_find(const struct vm_machine *m, uint64_t va)
{
	uint32_t lo = 0, hi = m->nareas;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (m->areas[mid].va + area_span(&m->areas[mid]) <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nareas && m->areas[lo].va <= va ? (int)lo : -1;
}

static void area_insert(struct vm_machine *m, uint32_t i,
			const struct vm_area *a)
{
	hm_array_insert(&m->hm, (void **)&m->areas, &m->nareas, &m->capareas,
			sizeof(*a), i, a);
}

int vmalloc_area(struct vm_machine *m, uint64_t npages, bool guard,
		 uint64_t align, enum vm_area_kind kind, uint32_t pid,
		 uint64_t *va, struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	uint64_t need = (npages + guard) << VM_PAGE_SHIFT;
	uint64_t cursor = l->vmalloc_start, start = 0;
	uint32_t i;
	struct vm_area a;
	struct vm_owner o;
	int rc;

	for (i = 0; i <= m->nareas; i++) {
		uint64_t limit = i < m->nareas ? m->areas[i].va : l->vmalloc_end;

		start = (cursor + align - 1) & ~(align - 1);
		if (start <= limit && limit - start >= need)
			break;
		if (i < m->nareas)
			cursor = m->areas[i].va + area_span(&m->areas[i]);
	}
	if (i > m->nareas)
		return vm_fail(err, VM_ENOSPACE,
			       "no free range of %llu pages left in the "
			       "vmalloc region",
			       (unsigned long long)(npages + guard));

	memset(&a, 0, sizeof(a));
	a.va = start;
	a.npages = (uint32_t)npages;
	a.guard = guard;
	a.kind = (uint8_t)kind;
	a.pid = pid;
	a.pfns = hm_zalloc(&m->hm, npages * sizeof(*a.pfns));
	o = kind == VM_AREA_STACK
		    ? vm_owner_make(VM_OWNER_KERNEL_STACK, pid, start)
		    : vm_owner_make(VM_OWNER_VMALLOC, 0, start);
	for (uint64_t p = 0; p < npages; p++) {
		uint64_t pfn;

		rc = m_alloc(m, 0, VM_GFP_KERNEL | VM_GFP_HIGHMEM, &o, &pfn);
		if (rc)
			goto fail;
		a.pfns[p] = (uint32_t)pfn;
	}
	for (uint64_t p = 0; p < npages; p++) {
		uint64_t table, v = start + (p << VM_PAGE_SHIFT);

		rc = pt_ensure(m, m->swapper_pfn, 0, v, &table);
		if (rc)
			goto fail;
		pt_set_pte(m, table, v,
			   ((uint64_t)a.pfns[p] << VM_PAGE_SHIFT) |
				   pt_kernel_flags(m));
	}
	area_insert(m, i, &a);
	*va = start;
	return 0;
fail:
	/* The caller restores the machine; only the host array is ours. */
	hm_free(&m->hm, a.pfns, npages * sizeof(*a.pfns));
	return vm_fail(err, VM_ENOMEM, "out of memory: vmalloc of %llu pages",
		       (unsigned long long)npages);
}

void vfree_area(struct vm_machine *m, uint32_t i)
{
	struct vm_area a = m->areas[i];
	uint64_t next;

	for (uint32_t p = 0; p < a.npages; p++)
		pt_clear_pte(m, m->swapper_pfn,
			     a.va + ((uint64_t)p << VM_PAGE_SHIFT), &next);
	for (uint32_t p = 0; p < a.npages; p++)
		m_free(m, a.pfns[p], 0);
	hm_free(&m->hm, a.pfns, a.npages * sizeof(*a.pfns));
	memmove(&m->areas[i], &m->areas[i + 1],
		(m->nareas - i - 1) * sizeof(*m->areas));
	m->nareas--;
}

void vmalloc_release(struct vm_machine *m)
{
	for (uint32_t i = 0; i < m->nareas; i++)
		hm_free(&m->hm, m->areas[i].pfns,
			m->areas[i].npages * sizeof(uint32_t));
	hm_free(&m->hm, m->areas, m->capareas * sizeof(*m->areas));
	m->areas = NULL;
	m->nareas = m->capareas = 0;
}

int vm_vmalloc(struct vm_machine *m, const struct vm_op *op,
	       struct vm_op_result *res, struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	uint64_t size = op->u.vmalloc.size, npages, va;
	int rc;

	if (size == 0)
		return vm_fail(err, VM_EINVAL, "size: must be at least 1 byte");
	if (size > l->vmalloc_end - l->vmalloc_start)
		return vm_fail(err, VM_EINVAL,
			       "size: larger than the vmalloc region (%llu "
			       "bytes)", (unsigned long long)(l->vmalloc_end -
							      l->vmalloc_start));
	npages = (size + VM_PAGE_SIZE - 1) >> VM_PAGE_SHIFT;
	/* __vmalloc_node_range: more pages than RAM never succeeds. */
	if (npages > l->max_pfn)
		return vm_fail(err, VM_ENOMEM,
			       "out of memory: %llu pages is more than RAM",
			       (unsigned long long)npages);
	rc = vmalloc_area(m, npages, op->u.vmalloc.guard, VM_PAGE_SIZE,
			  VM_AREA_VMALLOC, 0, &va, err);
	if (rc)
		return rc;
	res->u.vmalloc.va = va;
	res->u.vmalloc.pages = npages;
	res->u.vmalloc.size = npages << VM_PAGE_SHIFT;
	res->u.vmalloc.guard = op->u.vmalloc.guard;
	return 0;
}

int vm_vfree(struct vm_machine *m, uint64_t va, struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	int i;

	if (va >= l->page_offset && va < l->high_memory) {
		struct vm_owner o = buddy_owner(m->buddy, (va - l->page_offset) >>
							       VM_PAGE_SHIFT);

		/* The wrong kind of free, as kfree of a vmalloc address. */
		if (o.kind != VM_OWNER_FREE)
			return vm_fail(err, VM_EWRONGFREE,
				       "%#llx is a kernel logical address (%s "
				       "memory), not a vmalloc area: kmalloc "
				       "objects go back with kfree, alloc_pages "
				       "blocks with free_pages",
				       (unsigned long long)va,
				       vm_owner_kind_name(o.kind));
	}
	if (va < l->vmalloc_start || va >= l->vmalloc_end)
		return vm_fail(err, VM_ERANGE,
			       "%#llx is not in the vmalloc region [%#llx, "
			       "%#llx)", (unsigned long long)va,
			       (unsigned long long)l->vmalloc_start,
			       (unsigned long long)l->vmalloc_end);
	i = vmalloc_find(m, va);
	if (i < 0)
		return vm_fail(err, VM_ENOTALLOC,
			       "no vmalloc area at %#llx: freed already "
			       "(double free) or never allocated",
			       (unsigned long long)va);
	if (m->areas[i].va != va)
		return vm_fail(err, VM_EINTERIOR,
			       "%#llx is inside the area at %#llx: pass its "
			       "start", (unsigned long long)va,
			       (unsigned long long)m->areas[i].va);
	if (m->areas[i].kind == VM_AREA_STACK)
		return vm_fail(err, VM_EWRONGFREE,
			       "%#llx is the kernel stack of pid %u: it goes "
			       "when the process exits",
			       (unsigned long long)va, m->areas[i].pid);
	vfree_area(m, (uint32_t)i);
	return 0;
}

/* Counts present PTEs of the reference table in [lo, hi). */
static uint64_t count_ptes(const struct vm_machine *m, uint64_t table,
			   unsigned level, uint64_t base, uint64_t lo,
			   uint64_t hi)
{
	const struct vm_arch *a = m->layout.arch;
	uint64_t n = 0, span = vm_level_span(a, level);

	if (!phys_frame_nonzero(&m->phys, table))
		return 0;
	for (unsigned i = 0; i < a->level[level].entries; i++) {
		uint64_t s = vm_arch_canon(a, base + i * span);
		uint64_t e = phys_read(&m->phys,
				       (table << VM_PAGE_SHIFT) + i * a->entry_size,
				       a->entry_size);

		if (s + span - 1 < lo || s >= hi || !(e & VM_PTE_P))
			continue;
		if (pt_is_leaf(m, level, e))
			n++;
		else
			n += count_ptes(m, pt_entry_addr(m, level, e) >>
						   VM_PAGE_SHIFT,
					level + 1, s, lo, hi);
	}
	return n;
}

int vmalloc_check(const struct vm_machine *m, struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	uint64_t mapped = 0, present;
	uint64_t lo = l->vmalloc_start, hi = l->vmalloc_end;

	for (uint32_t i = 0; i < m->nareas; i++) {
		const struct vm_area *a = &m->areas[i];

		if (a->va < l->vmalloc_start || a->va & (VM_PAGE_SIZE - 1) ||
		    a->va + area_span(a) > l->vmalloc_end ||
		    (i > 0 && m->areas[i - 1].va + area_span(&m->areas[i - 1]) >
				      a->va))
			return vm_fail(err, VM_ECORRUPT,
				       "vmalloc area %#llx overlaps or leaves "
				       "the region", (unsigned long long)a->va);
		for (uint32_t p = 0; p < a->npages; p++) {
			uint64_t va = a->va + ((uint64_t)p << VM_PAGE_SHIFT);
			struct vm_walk w;
			struct vm_owner o = buddy_owner(m->buddy, a->pfns[p]);
			uint8_t kind = a->kind == VM_AREA_STACK
					       ? VM_OWNER_KERNEL_STACK
					       : VM_OWNER_VMALLOC;

			pt_walk(m, m->swapper_pfn, va, &w);
			if (w.leaf < 0 ||
			    w.pa != (uint64_t)a->pfns[p] << VM_PAGE_SHIFT ||
			    o.kind != kind || o.addr != a->va)
				return vm_fail(err, VM_ECORRUPT,
					       "vmalloc page %#llx does not map "
					       "a frame of its own area",
					       (unsigned long long)va);
		}
		mapped += a->npages;
	}
	/* No present PTE in the region that no area accounts for. */
	present = count_ptes(m, m->swapper_pfn, 0, 0, lo, hi);
	if (present != mapped)
		return vm_fail(err, VM_ECORRUPT,
			       "%llu PTEs present in the vmalloc region, areas "
			       "map %llu", (unsigned long long)present,
			       (unsigned long long)mapped);
	return 0;
}

void vmalloc_encode(const struct vm_machine *m, struct vm_enc *e)
{
	enc_u32(e, m->nareas);
	for (uint32_t i = 0; i < m->nareas; i++) {
		const struct vm_area *a = &m->areas[i];

		enc_u64(e, a->va);
		enc_u32(e, a->npages);
		enc_u8(e, a->guard);
		enc_u8(e, a->kind);
		enc_u32(e, a->pid);
		for (uint32_t p = 0; p < a->npages; p++)
			enc_u32(e, a->pfns[p]);
	}
}

int vmalloc_decode(struct vm_machine *m, struct vm_dec *d)
{
	uint32_t n = dec_u32(d);

	if (!dec_room(d, n, 22))
		return VM_ECORRUPT;
	for (uint32_t i = 0; i < n; i++) {
		struct vm_area a;

		memset(&a, 0, sizeof(a));
		a.va = dec_u64(d);
		a.npages = dec_u32(d);
		a.guard = dec_u8(d);
		a.kind = dec_u8(d);
		a.pid = dec_u32(d);
		if (d->failed || a.guard > 1 || a.kind > VM_AREA_STACK ||
		    a.npages == 0 || !dec_room(d, a.npages, 4) ||
		    (i > 0 && m->areas[i - 1].va >= a.va))
			return dec_fail(d), VM_ECORRUPT;
		a.pfns = hm_zalloc(&m->hm, a.npages * sizeof(*a.pfns));
		for (uint32_t p = 0; p < a.npages; p++)
			a.pfns[p] = dec_u32(d);
		area_insert(m, m->nareas, &a);
	}
	return d->failed ? VM_ECORRUPT : 0;
}

uint32_t vm_vmalloc_count(const struct vm_machine *m)
{
	return m->nareas;
}

void vm_vmalloc_get(const struct vm_machine *m, uint32_t i,
		    struct vm_vmalloc_info *out)
{
	const struct vm_area *a = &m->areas[i];

	out->va = a->va;
	out->pages = a->npages;
	out->guard = a->guard;
	out->kernel_stack = a->kind == VM_AREA_STACK;
	out->pid = a->pid;
}

uint64_t vm_vmalloc_pfn(const struct vm_machine *m, uint32_t i, uint64_t p)
{
	return m->areas[i].pfns[p];
}

int vm_vmalloc_at(const struct vm_machine *m, uint64_t va)
{
	int i = vmalloc_find(m, va);

	return i >= 0 && m->areas[i].va == va ? i : -1;
}
