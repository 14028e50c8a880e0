/* pagetable.c - entries in simulated frames, walks and builders. */
#include "gfp.h"
#include "pagetable.h"

static inline const struct vm_arch *arch_of(const struct vm_machine *m)
{
	return m->layout.arch;
}

static inline unsigned pte_level(const struct vm_machine *m)
{
	return arch_of(m)->levels - 1u;
}

static inline uint64_t entry_pa(const struct vm_machine *m, uint64_t table,
				unsigned level, uint64_t va)
{
	return (table << VM_PAGE_SHIFT) +
	       (uint64_t)vm_level_index(arch_of(m), level, va) *
		       arch_of(m)->entry_size;
}

static inline uint64_t read_entry(const struct vm_machine *m, uint64_t table,
				  unsigned level, uint64_t va)
{
	return phys_read(&m->phys, entry_pa(m, table, level, va),
			 arch_of(m)->entry_size);
}

int pt_is_leaf(const struct vm_machine *m, unsigned level, uint64_t entry)
{
	return level == pte_level(m) ||
	       (arch_of(m)->level[level].large && (entry & VM_PTE_PS));
}

uint64_t pt_entry_addr(const struct vm_machine *m, unsigned level,
		       uint64_t entry)
{
	const struct vm_arch *a = arch_of(m);
	uint64_t addr = entry & a->addr_mask;

	/* A large leaf's frame starts at its own alignment (bit 12 is PAT). */
	if (level != pte_level(m) && a->level[level].large &&
	    (entry & VM_PTE_PS))
		addr &= ~(vm_level_span(a, level) - 1);
	return addr;
}

void pt_walk(const struct vm_machine *m, uint64_t top_pfn, uint64_t va,
	     struct vm_walk *w)
{
	const struct vm_arch *a = arch_of(m);
	const unsigned last = a->levels - 1u, esz = a->entry_size;
	uint64_t table = top_pfn;
	unsigned i;

	/* pt_is_leaf and pt_entry_addr, written out: the hot path. */
	w->leaf = -1;
	w->pa = 0;
	w->page_size = 0;
	for (i = 0;; i++) {
		const struct vm_level *l = &a->level[i];
		struct vm_walk_step *s = &w->step[i];
		unsigned idx = (unsigned)(va >> l->shift) & (l->entries - 1u);
		uint64_t e;

		s->level = (uint8_t)i;
		s->index = (uint16_t)idx;
		s->entry_pa = (table << VM_PAGE_SHIFT) + (uint64_t)idx * esz;
		s->entry = e = phys_read(&m->phys, s->entry_pa, esz);
		if (!(e & VM_PTE_P))
			break;
		if (i == last || (l->large && (e & VM_PTE_PS))) {
			uint64_t span = 1ULL << l->shift;

			w->leaf = (int)i;
			w->page_size = span;
			/* A large leaf's frame starts at its own alignment. */
			w->pa = (e & a->addr_mask & ~(span - 1)) |
				(va & (span - 1));
			break;
		}
		table = (e & a->addr_mask) >> VM_PAGE_SHIFT;
	}
	w->nsteps = i + 1;
}

uint64_t pt_user_flags(const struct vm_machine *m, unsigned prot)
{
	/*
	 * A populated user page as the fault path leaves it: P|US|A, RW and D
	 * when writable (populate faults for write), NX unless executable.
	 */
	uint64_t f = VM_PTE_P | VM_PTE_US | VM_PTE_A;

	if (prot & VM_PROT_WRITE)
		f |= VM_PTE_RW | VM_PTE_D;
	if (!(prot & VM_PROT_EXEC) && arch_of(m)->nx)
		f |= VM_PTE_NX;
	return f;
}

uint64_t pt_kernel_flags(const struct vm_machine *m)
{
	/* __PAGE_KERNEL: __PAGE_KERNEL_EXEC | NX. */
	return VM_PAGE_KERNEL_EXEC | (arch_of(m)->nx ? VM_PTE_NX : 0);
}

/* Whether va is in the kernel half of the top-level table. */
static inline int kernel_half(const struct vm_machine *m, uint64_t va)
{
	return vm_level_index(arch_of(m), 0, va) >=
	       m->layout.kernel_pgd_boundary;
}

/*
 * Writes an entry. A kernel-half top-level entry of the reference table is
 * copied into every process at once (sync_global_pgds).
 */
static void write_entry(struct vm_machine *m, uint64_t table, unsigned level,
			uint64_t va, uint64_t v)
{
	phys_write(&m->phys, entry_pa(m, table, level, va),
		   arch_of(m)->entry_size, v);
	if (level == 0 && table == m->swapper_pfn && kernel_half(m, va))
		for (uint32_t i = 0; i < m->nprocs; i++)
			phys_write(&m->phys,
				   entry_pa(m, m->procs[i].mm.pgd_pfn, 0, va),
				   arch_of(m)->entry_size, v);
}

static int alloc_table(struct vm_machine *m, uint32_t pid, unsigned level,
		       uint64_t *pfn)
{
	struct vm_owner o = vm_owner_make(VM_OWNER_PAGE_TABLE, pid, 0);

	o.sub = (uint8_t)level;
	return m_alloc(m, 0, VM_GFP_KERNEL, &o, pfn);
}

/* The entry value that points to a table of the next level. */
static uint64_t table_entry(const struct vm_machine *m, unsigned level,
			    uint64_t child, uint64_t va)
{
	/* PAE's PDPT holds only P: RW, US and NX are reserved there. */
	if (!arch_of(m)->level[level].perm_bits)
		return (child << VM_PAGE_SHIFT) | VM_PDPT_PRESENT;
	return (child << VM_PAGE_SHIFT) |
	       (kernel_half(m, va) ? VM_KERNPG_TABLE : VM_PAGE_TABLE);
}

/* Descends to the table of level `to`, allocating what is missing. */
static int ensure_to(struct vm_machine *m, uint64_t top_pfn, uint32_t pid,
		     uint64_t va, unsigned to, uint64_t *out)
{
	uint64_t table = top_pfn;

	for (unsigned i = 0; i < to; i++) {
		uint64_t e = read_entry(m, table, i, va), child;

		if (!(e & VM_PTE_P)) {
			int rc = alloc_table(m, pid, i + 1, &child);

			if (rc)
				return rc;
			write_entry(m, table, i, va,
				    table_entry(m, i, child, va));
		} else {
			child = pt_entry_addr(m, i, e) >> VM_PAGE_SHIFT;
		}
		table = child;
	}
	*out = table;
	return 0;
}

int pt_ensure(struct vm_machine *m, uint64_t top_pfn, uint32_t pid,
	      uint64_t va, uint64_t *pte_table)
{
	return ensure_to(m, top_pfn, pid, va, pte_level(m), pte_table);
}

void pt_set_pte(struct vm_machine *m, uint64_t pte_table, uint64_t va,
		uint64_t entry)
{
	write_entry(m, pte_table, pte_level(m), va, entry);
}

uint64_t pt_clear_pte(struct vm_machine *m, uint64_t top_pfn, uint64_t va,
		      uint64_t *next)
{
	struct vm_walk w;
	uint64_t old;

	pt_walk(m, top_pfn, va, &w);
	*next = va + VM_PAGE_SIZE;
	if (w.leaf < 0 && w.nsteps > 0 && w.nsteps - 1 < pte_level(m)) {
		/* No table below this entry: nothing mapped in its span. */
		uint64_t span = vm_level_span(arch_of(m), w.nsteps - 1);
		uint64_t end = (va & ~(span - 1)) + span;

		*next = end > va ? end : UINT64_MAX;
	}
	if (w.leaf != (int)pte_level(m))
		return 0;
	old = w.step[w.leaf].entry;
	phys_write(&m->phys, w.step[w.leaf].entry_pa, arch_of(m)->entry_size,
		   0);
	return old;
}

/* Whether the table at level `level` may be freed when empty. */
static int prunable(const struct vm_machine *m, unsigned level)
{
	/* The top level stays; PAE's user PMDs live as long as the PDPT. */
	if (level == 0)
		return 0;
	return !(arch_of(m)->id == VM_ARCH_I386_PAE && level == 1);
}

static void prune_table(struct vm_machine *m, uint64_t table, unsigned level,
			uint64_t base, uint64_t lo, uint64_t hi)
{
	const struct vm_arch *a = arch_of(m);
	uint64_t span = vm_level_span(a, level);

	if (level == pte_level(m) || !phys_frame_nonzero(&m->phys, table))
		return;
	for (unsigned idx = 0; idx < a->level[level].entries; idx++) {
		uint64_t start = base + idx * span, end = start + span;
		uint64_t e, child;

		if (end <= lo || start >= hi)
			continue;
		e = phys_read(&m->phys,
			      (table << VM_PAGE_SHIFT) + idx * a->entry_size,
			      a->entry_size);
		if (!(e & VM_PTE_P) || pt_is_leaf(m, level, e))
			continue;
		child = pt_entry_addr(m, level, e) >> VM_PAGE_SHIFT;
		prune_table(m, child, level + 1, start, lo, hi);
		/* A table left with no entry goes back (free_pgtables). */
		if (prunable(m, level + 1) &&
		    !phys_frame_nonzero(&m->phys, child)) {
			phys_write(&m->phys,
				   (table << VM_PAGE_SHIFT) + idx * a->entry_size,
				   a->entry_size, 0);
			m_free(m, child, 0);
		}
	}
}

void pt_prune(struct vm_machine *m, uint64_t top_pfn, uint64_t lo,
	      uint64_t hi)
{
	prune_table(m, top_pfn, 0, 0, lo, hi);
}

/*
 * Maps [va, va + size) to [pa, ...) in the reference table with the largest
 * pages that fit and are allowed at or below max_level's page size; flags
 * are the 4 KiB leaf flags (PS is added for large leaves).
 */
static int map_kernel_range(struct vm_machine *m, uint64_t va, uint64_t pa,
			    uint64_t size, uint64_t flags, uint64_t max_page)
{
	const struct vm_arch *a = arch_of(m);

	while (size > 0) {
		unsigned level = pte_level(m);
		uint64_t table;
		int rc;

		for (unsigned i = 0; i < a->levels; i++) {
			uint64_t span = vm_level_span(a, i);

			if (a->level[i].large && span <= max_page &&
			    !(va & (span - 1)) && !(pa & (span - 1)) &&
			    size >= span) {
				level = i;
				break;
			}
		}
		rc = ensure_to(m, m->swapper_pfn, 0, va, level, &table);
		if (rc)
			return rc;
		write_entry(m, table, level, va,
			    pa | flags | (level != pte_level(m) ? VM_PTE_PS : 0));
		va += vm_level_span(a, level);
		pa += vm_level_span(a, level);
		size -= vm_level_span(a, level);
	}
	return 0;
}

static int build_direct_map(struct vm_machine *m)
{
	const struct vm_layout *l = &m->layout;
	uint64_t flags = pt_kernel_flags(m);
	int rc;

	if (arch_of(m)->id != VM_ARCH_I386_PAE)
		return map_kernel_range(m, l->page_offset, 0, l->lowmem_bytes,
					flags, UINT64_MAX);
	/*
	 * i386-pae: the kernel runs from its image in the direct map, so the
	 * pages covering [16 MiB, 24 MiB) stay executable.
	 */
	rc = map_kernel_range(m, l->page_offset, 0, VM_KIMAGE_START, flags,
			      UINT64_MAX);
	if (!rc)
		rc = map_kernel_range(m, l->page_offset + VM_KIMAGE_START,
				      VM_KIMAGE_START,
				      VM_KIMAGE_END - VM_KIMAGE_START,
				      VM_PAGE_KERNEL_EXEC, UINT64_MAX);
	if (!rc)
		rc = map_kernel_range(m, l->page_offset + VM_KIMAGE_END,
				      VM_KIMAGE_END,
				      l->lowmem_bytes - VM_KIMAGE_END, flags,
				      UINT64_MAX);
	return rc;
}

/*
 * x86_64: the image at __START_KERNEL_map + phys with 2 MiB pages: text
 * read-only executable, rodata read-only NX, data and bss read-write NX.
 */
static int build_kernel_image(struct vm_machine *m)
{
	static const struct {
		uint64_t start, end, flags;
	} sect[] = {
		{ VM_KIMAGE_START, VM_KIMAGE_TEXT_END, VM_PAGE_KERNEL_RX },
		{ VM_KIMAGE_TEXT_END, VM_KIMAGE_RODATA_END,
		  VM_PAGE_KERNEL_RX | VM_PTE_NX },
		{ VM_KIMAGE_RODATA_END, VM_KIMAGE_END,
		  VM_PAGE_KERNEL_EXEC | VM_PTE_NX },
	};

	for (unsigned i = 0; i < 3; i++) {
		int rc = map_kernel_range(m, m->layout.kernel_map + sect[i].start,
					  sect[i].start,
					  sect[i].end - sect[i].start,
					  sect[i].flags, 2 * VM_MiB);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Preallocates the second-level tables under every top-level entry of the
 * vmalloc region (preallocate_vmalloc_pages in arch/x86/mm/init_64.c), so
 * that later vmalloc mappings never change a top-level entry.
 */
static int prealloc_vmalloc(struct vm_machine *m)
{
	const struct vm_arch *a = arch_of(m);
	uint64_t span = vm_level_span(a, 0);

	for (uint64_t va = m->layout.vmalloc_start & ~(span - 1);
	     va < m->layout.vmalloc_end; va += span) {
		uint64_t t;
		int rc = ensure_to(m, m->swapper_pfn, 0, va, 1, &t);

		if (rc)
			return rc;
	}
	return 0;
}

int pt_build_kernel(struct vm_machine *m)
{
	const struct vm_layout *l = &m->layout;
	int rc = alloc_table(m, 0, 0, &m->swapper_pfn);

	if (rc)
		return rc;
	if (arch_of(m)->id == VM_ARCH_I386_PAE) {
		/* The kernel PMDs, shared by every PDPT (SHARED_KERNEL_PMD). */
		for (unsigned i = l->kernel_pgd_boundary; i < 4; i++) {
			uint64_t va = (uint64_t)i << 30, t;

			rc = ensure_to(m, m->swapper_pfn, 0, va, 1, &t);
			if (rc)
				return rc;
			m->kernel_pmd_pfn[i] = t;
		}
	}
	rc = build_direct_map(m);
	if (!rc && arch_of(m)->is64)
		rc = build_kernel_image(m);
	if (!rc && arch_of(m)->is64)
		rc = map_kernel_range(m, l->vmemmap_base,
				      l->mem_map_pfn << VM_PAGE_SHIFT,
				      l->mem_map_pages << VM_PAGE_SHIFT,
				      pt_kernel_flags(m), 2 * VM_MiB);
	if (!rc && arch_of(m)->is64)
		rc = prealloc_vmalloc(m);
	return rc;
}

int pt_pgd_alloc(struct vm_machine *m, uint32_t pid, uint64_t *pfn)
{
	const struct vm_arch *a = arch_of(m);
	unsigned boundary = m->layout.kernel_pgd_boundary;
	int rc = alloc_table(m, pid, 0, pfn);

	if (rc)
		return rc;
	/* PAE: the user PMDs come with the PDPT (pgd_prepopulate_pmd). */
	if (a->id == VM_ARCH_I386_PAE) {
		for (unsigned i = 0; i < boundary; i++) {
			uint64_t pmd;

			rc = alloc_table(m, pid, 1, &pmd);
			if (rc)
				return rc;
			phys_write(&m->phys, (*pfn << VM_PAGE_SHIFT) + i * 8u, 8,
				   (pmd << VM_PAGE_SHIFT) | VM_PDPT_PRESENT);
		}
	}
	/* pgd_ctor: clone_pgd_range of the kernel half. */
	for (unsigned i = boundary; i < a->level[0].entries; i++) {
		uint64_t off = (uint64_t)i * a->entry_size;
		uint64_t e = phys_read(&m->phys,
				       (m->swapper_pfn << VM_PAGE_SHIFT) + off,
				       a->entry_size);

		phys_write(&m->phys, (*pfn << VM_PAGE_SHIFT) + off,
			   a->entry_size, e);
	}
	return 0;
}

void pt_pgd_free(struct vm_machine *m, uint64_t pfn)
{
	const struct vm_arch *a = arch_of(m);

	if (a->id == VM_ARCH_I386_PAE) {
		for (unsigned i = 0; i < m->layout.kernel_pgd_boundary; i++) {
			uint64_t e = phys_read(&m->phys,
					       (pfn << VM_PAGE_SHIFT) + i * 8u, 8);

			if (e & VM_PTE_P)
				m_free(m, pt_entry_addr(m, 0, e) >> VM_PAGE_SHIFT,
				       0);
		}
	}
	phys_clear_frame(&m->phys, pfn);
	m_free(m, pfn, 0);
}

uint64_t pt_tables_bound(const struct vm_machine *m, uint64_t n)
{
	/* Each level below the top needs one table per span, plus an edge. */
	const struct vm_arch *a = arch_of(m);
	uint64_t t = 0;

	for (unsigned i = 1; i < a->levels; i++)
		t += n / (a->level[i].entries) + 2;
	return t;
}
