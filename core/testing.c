/* testing.c - observer and corruption hooks; see testing.h. */
#include "buddy.h"
#include "machine_int.h"
#include "pagetable.h"
#include "testing.h"

void vm_machine_set_observer(struct vm_machine *m, vm_frame_observer fn,
			     void *ctx)
{
	m->observer = fn;
	m->observer_ctx = ctx;
}

uint64_t vm_test_phys_read(const struct vm_machine *m, uint64_t pa,
			   unsigned size)
{
	return phys_read(&m->phys, pa, size);
}

void vm_test_phys_write(struct vm_machine *m, uint64_t pa, unsigned size,
			uint64_t value)
{
	phys_write(&m->phys, pa, size, value);
	m_state_changed(m);
}

/* The first present user leaf of process p: its entry's address. */
static int first_user_pte(struct vm_machine *m, struct vm_process *p,
			  uint64_t *entry_pa, uint64_t *entry)
{
	for (uint32_t i = 0; i < p->mm.nvmas; i++)
		for (uint64_t va = p->mm.vmas[i].start; va < p->mm.vmas[i].end;
		     va += VM_PAGE_SIZE) {
			struct vm_walk w;

			pt_walk(m, p->mm.pgd_pfn, va, &w);
			if (w.leaf >= 0) {
				*entry_pa = w.step[w.leaf].entry_pa;
				*entry = w.step[w.leaf].entry;
				return 0;
			}
		}
	return VM_ENOENT;
}

int vm_test_corrupt(struct vm_machine *m, enum vm_corruption what)
{
	const struct vm_arch *a = m->layout.arch;
	struct vm_process *p = m->nprocs ? &m->procs[0] : NULL;
	uint64_t epa, e;

	m_state_changed(m);
	switch (what) {
	case VM_CORRUPT_FREE_COUNT:
	case VM_CORRUPT_OWNED_TWICE:
		return buddy_test_corrupt(m->buddy, what == VM_CORRUPT_OWNED_TWICE);
	case VM_CORRUPT_USER_PTE:
		if (!p || first_user_pte(m, p, &epa, &e))
			return VM_ENOENT;
		/* Aim it at the kernel image's first frame. */
		phys_write(&m->phys, epa, a->entry_size,
			   (e & ~a->addr_mask) | VM_KIMAGE_START);
		return 0;
	case VM_CORRUPT_KERNEL_HALF:
		if (!p)
			return VM_ENOENT;
		epa = (p->mm.pgd_pfn << VM_PAGE_SHIFT) +
		      (uint64_t)m->layout.kernel_pgd_boundary * a->entry_size;
		phys_write(&m->phys, epa, a->entry_size,
			   phys_read(&m->phys, epa, a->entry_size) ^ VM_PTE_RW);
		return 0;
	case VM_CORRUPT_VMALLOC_PTE: {
		struct vm_walk w;

		if (!m->nareas)
			return VM_ENOENT;
		pt_walk(m, m->swapper_pfn, m->areas[0].va, &w);
		if (w.leaf < 0)
			return VM_ENOENT;
		e = w.step[w.leaf].entry;
		phys_write(&m->phys, w.step[w.leaf].entry_pa, a->entry_size,
			   (e & ~a->addr_mask) |
				   ((e & a->addr_mask) ^ VM_PAGE_SIZE));
		return 0;
	}
	case VM_CORRUPT_SLAB_INUSE: {
		size_t cur = 0;
		struct vm_slab *s = hmap_next(&m->slabs, &cur, NULL);

		if (!s)
			return VM_ENOENT;
		s->inuse++;
		return 0;
	}
	case VM_CORRUPT_VMA_OVERLAP:
		if (!p || p->mm.nvmas < 2)
			return VM_ENOENT;
		p->mm.vmas[0].end = p->mm.vmas[1].start + VM_PAGE_SIZE;
		return 0;
	case VM_CORRUPT_CR3:
		m->cpus[0].cr3 ^= VM_PAGE_SIZE;
		return 0;
	default:
		return VM_EINVAL;
	}
}
