/* process.c - processes, address spaces, CPUs; see process.h. */
#include <stdlib.h>
#include <string.h>

#include "gfp.h"
#include "machine_int.h"
#include "op.h"
#include "pagetable.h"

/* mmap_min_addr: the lowest address a user mapping may take (Linux's
 * default CONFIG_DEFAULT_MMAP_MIN_ADDR on x86). */
#define MMAP_MIN_ADDR 0x10000ULL

/* Default segment sizes (SPEC 1.5). */
#define DEFAULT_TEXT (64 * 1024ULL)
#define DEFAULT_DATA (16 * 1024ULL)
#define DEFAULT_HEAP 0ULL
#define DEFAULT_STACK (128 * 1024ULL)

/* x86_64 kernel stacks: THREAD_SIZE 16 KiB, THREAD_ALIGN the same. */
#define KSTACK_PAGES 4
#define KSTACK_ALIGN (16 * 1024ULL)

static inline uint64_t page_up(uint64_t v)
{
	return (v + VM_PAGE_SIZE - 1) & ~(VM_PAGE_SIZE - 1);
}

const char *vm_vma_kind_name(enum vm_vma_kind kind)
{
	static const char *const names[] = { "text", "data", "heap", "stack",
					     "mmap" };
	return names[kind];
}

char *vm_prot_format(unsigned prot, char buf[4])
{
	buf[0] = (prot & VM_PROT_READ) ? 'r' : '-';
	buf[1] = (prot & VM_PROT_WRITE) ? 'w' : '-';
	buf[2] = (prot & VM_PROT_EXEC) ? 'x' : '-';
	buf[3] = '\0';
	return buf;
}

int vm_prot_parse(const char *t)
{
	int p = 0;

	if (strlen(t) != 3)
		return -1;
	if (t[0] == 'r')
		p |= VM_PROT_READ;
	else if (t[0] != '-')
		return -1;
	if (t[1] == 'w')
		p |= VM_PROT_WRITE;
	else if (t[1] != '-')
		return -1;
	if (t[2] == 'x')
		p |= VM_PROT_EXEC;
	else if (t[2] != '-')
		return -1;
	return p;
}

struct vm_process *m_process(const struct vm_machine *m, uint32_t pid)
{
	uint32_t lo = 0, hi = m->nprocs;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (m->procs[mid].pid < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nprocs && m->procs[lo].pid == pid ? &m->procs[lo]
							  : NULL;
}

const struct vm_vma *mm_find_vma(const struct vm_mm *mm, uint64_t va)
{
	uint32_t lo = 0, hi = mm->nvmas;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (mm->vmas[mid].end <= va)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < mm->nvmas && mm->vmas[lo].start <= va ? &mm->vmas[lo]
							   : NULL;
}

/* Whether [lo, hi) meets any region. */
static bool mm_overlaps(const struct vm_mm *mm, uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < mm->nvmas; i++)
		if (mm->vmas[i].start < hi && mm->vmas[i].end > lo)
			return true;
	return false;
}

static void vma_insert_at(struct vm_machine *m, struct vm_mm *mm, uint32_t i,
			  const struct vm_vma *v)
{
	hm_array_insert(&m->hm, (void **)&mm->vmas, &mm->nvmas, &mm->capvmas,
			sizeof(*v), i, v);
}

/*
 * Removes region i. The array shrinks by half when a quarter full, so that
 * the host memory of a process follows the regions it has now, not the
 * most it ever had (VM_MAX_MAPPINGS bounds the machine's count).
 */
static void vma_delete_at(struct vm_machine *m, struct vm_mm *mm, uint32_t i)
{
	memmove(&mm->vmas[i], &mm->vmas[i + 1],
		(mm->nvmas - i - 1) * sizeof(*mm->vmas));
	mm->nvmas--;
	if (mm->capvmas > 8 && mm->nvmas <= mm->capvmas / 4) {
		mm->vmas = hm_realloc(&m->hm, mm->vmas,
				      mm->capvmas * sizeof(*mm->vmas),
				      mm->capvmas / 2 * sizeof(*mm->vmas));
		mm->capvmas /= 2;
	}
}

/* Regions in all the machine's processes. */
static uint32_t machine_vmas(const struct vm_machine *m)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < m->nprocs; i++)
		n += m->procs[i].mm.nvmas;
	return n;
}

/*
 * VM_MAX_MAPPINGS: refuses (VM_ENOMEM, as Linux's mmap and munmap) an
 * operation that may add `more` regions beyond it. Called before the
 * operation changes anything.
 */
static int map_limit(const struct vm_machine *m, uint32_t more,
		     struct vm_error *err)
{
	uint32_t n = machine_vmas(m);

	if (n + more <= VM_MAX_MAPPINGS)
		return 0;
	return vm_fail(err, VM_ENOMEM,
		       "the machine's processes have %u mappings and this "
		       "would make %u; a machine holds at most %u: munmap "
		       "some first", n, n + more, VM_MAX_MAPPINGS);
}

/* Whether removing [lo, hi) splits a region in two (one more region). */
static bool mm_splits(const struct vm_mm *mm, uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < mm->nvmas; i++)
		if (mm->vmas[i].start < lo && mm->vmas[i].end > hi)
			return true;
	return false;
}

/*
 * Inserts a region into a gap; an anonymous mapping merges with mmap
 * neighbours of the same protection, as vma_merge() does.
 */
static void vma_add(struct vm_machine *m, struct vm_mm *mm,
		    const struct vm_vma *v)
{
	uint32_t i = 0;

	while (i < mm->nvmas && mm->vmas[i].start < v->start)
		i++;
	if (v->kind == VM_VMA_MMAP) {
		struct vm_vma *l = i > 0 ? &mm->vmas[i - 1] : NULL;
		struct vm_vma *r = i < mm->nvmas ? &mm->vmas[i] : NULL;
		bool ml = l && l->end == v->start && l->kind == VM_VMA_MMAP &&
			  l->prot == v->prot;
		bool mr = r && r->start == v->end && r->kind == VM_VMA_MMAP &&
			  r->prot == v->prot;

		if (ml && mr) {
			l->end = r->end;
			vma_delete_at(m, mm, i);
			return;
		}
		if (ml) {
			l->end = v->end;
			return;
		}
		if (mr) {
			r->start = v->start;
			return;
		}
	}
	vma_insert_at(m, mm, i, v);
}

/* Removes [lo, hi) from the regions, splitting those that straddle it. */
static void vma_remove_range(struct vm_machine *m, struct vm_mm *mm,
			     uint64_t lo, uint64_t hi)
{
	for (uint32_t i = 0; i < mm->nvmas;) {
		struct vm_vma *v = &mm->vmas[i];

		if (v->end <= lo || v->start >= hi) {
			i++;
		} else if (v->start >= lo && v->end <= hi) {
			vma_delete_at(m, mm, i);
		} else if (v->start < lo && v->end > hi) {
			struct vm_vma right = *v;

			right.start = hi;
			v->end = lo;
			vma_insert_at(m, mm, i + 1, &right);
			i += 2;
		} else if (v->start < lo) {
			v->end = lo;
			i++;
		} else {
			v->start = hi;
			i++;
		}
	}
}

/* Backs [lo, hi) with fresh user frames: tables first, as the fault path. */
static int populate(struct vm_machine *m, struct vm_process *p, uint64_t lo,
		    uint64_t hi, unsigned prot)
{
	uint64_t flags = pt_user_flags(m, prot);

	for (uint64_t va = lo; va < hi; va += VM_PAGE_SIZE) {
		struct vm_owner o = vm_owner_make(VM_OWNER_USER, p->pid, va);
		uint64_t table, pfn;
		int rc;

		o.mapcount = 1;
		rc = pt_ensure(m, p->mm.pgd_pfn, p->pid, va, &table);
		if (!rc)
			rc = m_alloc(m, 0, VM_GFP_HIGHUSER, &o, &pfn);
		if (rc)
			return rc;
		pt_set_pte(m, table, va, (pfn << VM_PAGE_SHIFT) | flags);
	}
	return 0;
}

/* Unmaps every page of [lo, hi), frees its frames and empty tables. */
static void unmap_range(struct vm_machine *m, struct vm_process *p,
			uint64_t lo, uint64_t hi)
{
	const struct vm_arch *a = m->layout.arch;
	struct vm_mm *mm = &p->mm;

	for (uint32_t i = 0; i < mm->nvmas; i++) {
		uint64_t s = mm->vmas[i].start > lo ? mm->vmas[i].start : lo;
		uint64_t e = mm->vmas[i].end < hi ? mm->vmas[i].end : hi;

		for (uint64_t va = s, next; va < e; va = next) {
			uint64_t old = pt_clear_pte(m, mm->pgd_pfn, va, &next);
			uint64_t head, pfn;
			struct vm_owner o;

			if (!(old & VM_PTE_P))
				continue;
			pfn = (old & a->addr_mask) >> VM_PAGE_SHIFT;
			if (!buddy_find(m->buddy, pfn, &head, NULL, &o))
				continue;
			if (o.kind == VM_OWNER_USER && o.mapcount > 1) {
				o.mapcount--;
				m_set_owner(m, head, &o);
			} else {
				m_free(m, pfn, 0);
			}
		}
	}
	pt_prune(m, mm->pgd_pfn, lo, hi);
}

static void add_process(struct vm_machine *m, const struct vm_process *p)
{
	/* Pids only grow, so the list stays sorted by appending. */
	hm_array_insert(&m->hm, (void **)&m->procs, &m->nprocs, &m->capprocs,
			sizeof(*p), m->nprocs, p);
}

static uint64_t seg_size(uint64_t v, uint64_t def)
{
	return v == VM_SEG_DEFAULT ? def : page_up(v);
}

int proc_create(struct vm_machine *m, const struct vm_op *op, uint32_t *pid,
		struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	uint64_t text, data, heap, stack, ts, de, he, ss;
	struct vm_process proc, *p;
	const struct vm_arch *a = l->arch;
	int rc;

	for (const uint64_t *v = &op->u.create.text; v <= &op->u.create.stack;
	     v++)
		if (*v != VM_SEG_DEFAULT && *v > l->task_size)
			return vm_fail(err, VM_ERANGE,
				       "segment sizes must fit in the user "
				       "address space (%#llx bytes)",
				       (unsigned long long)l->task_size);
	text = seg_size(op->u.create.text, DEFAULT_TEXT);
	data = seg_size(op->u.create.data, DEFAULT_DATA);
	heap = seg_size(op->u.create.heap, DEFAULT_HEAP);
	stack = seg_size(op->u.create.stack, DEFAULT_STACK);
	ts = a->is64 ? 0x400000ULL : 0x08048000ULL;
	de = ts + text + data;
	he = de + heap;
	if (stack > l->stack_top || he > l->stack_top - stack)
		return vm_fail(err, VM_EINVAL,
			       "text, data, heap and stack (%llu bytes) do "
			       "not fit below the stack top %#llx",
			       (unsigned long long)(text + data + heap + stack),
			       (unsigned long long)l->stack_top);
	ss = l->stack_top - stack;
	if (m->nprocs >= VM_MAX_PROCESSES)
		return vm_fail(err, VM_ENPROC,
			       "the machine has %u processes, the most it "
			       "runs: let one exit first", m->nprocs);
	rc = map_limit(m, (text != 0) + (data != 0) + (heap != 0) +
			       (stack != 0), err);
	if (rc)
		return rc;

	memset(&proc, 0, sizeof(proc));
	proc.pid = m->next_pid;
	memcpy(proc.name, op->u.create.name, sizeof(op->u.create.name));
	proc.mm.populate = op->u.create.populate;
	proc.mm.brk_start = de;
	proc.mm.brk = he;

	/* dup_task_struct allocates the kernel stack before the mm. */
	if (a->is64) {
		rc = vmalloc_area(m, KSTACK_PAGES, true, KSTACK_ALIGN,
				  VM_AREA_STACK, proc.pid, &proc.kstack, err);
	} else {
		struct vm_owner o = vm_owner_make(VM_OWNER_KERNEL_STACK,
						  proc.pid, 0);
		rc = m_alloc(m, 1, VM_GFP_KERNEL, &o, &proc.kstack);
	}
	if (!rc)
		rc = pt_pgd_alloc(m, proc.pid, &proc.mm.pgd_pfn);
	if (rc)
		return rc == VM_ENOMEM ? vm_fail(err, rc, "out of memory "
						 "creating the process")
				       : rc;
	add_process(m, &proc);
	m->next_pid++;
	p = m_process(m, proc.pid);

	{
		const struct {
			uint64_t start, size;
			unsigned prot;
			enum vm_vma_kind kind;
		} seg[] = {
			{ ts, text, VM_PROT_READ | VM_PROT_EXEC, VM_VMA_TEXT },
			{ ts + text, data, VM_PROT_READ | VM_PROT_WRITE,
			  VM_VMA_DATA },
			{ de, heap, VM_PROT_READ | VM_PROT_WRITE, VM_VMA_HEAP },
			{ ss, stack, VM_PROT_READ | VM_PROT_WRITE, VM_VMA_STACK },
		};

		for (unsigned i = 0; i < 4; i++) {
			struct vm_vma v = { seg[i].start,
					    seg[i].start + seg[i].size,
					    (uint8_t)seg[i].prot,
					    (uint8_t)seg[i].kind };

			if (seg[i].size == 0)
				continue;
			vma_add(m, &p->mm, &v);
			if (op->u.create.populate) {
				rc = populate(m, p, v.start, v.end, v.prot);
				if (rc)
					return vm_fail(err, rc,
						       "out of memory populating "
						       "the %s segment",
						       vm_vma_kind_name(seg[i].kind));
			}
		}
	}
	*pid = proc.pid;
	return 0;
}

static int find_process(const struct vm_machine *m, uint32_t pid,
			struct vm_process **out, struct vm_error *err)
{
	*out = m_process(m, pid);
	if (!*out)
		return vm_fail(err, VM_ENOENT, "no process with pid %u", pid);
	return 0;
}

int proc_exit(struct vm_machine *m, uint32_t pid, struct vm_error *err)
{
	struct vm_process *p;
	const struct vm_layout *l = &m->layout;
	uint32_t idx;
	int rc = find_process(m, pid, &p, err);

	if (rc)
		return rc;
	for (uint32_t c = 0; c < m->config.cpus; c++)
		if (m->cpus[c].pid == pid) {
			m->cpus[c].pid = 0;
			m->cpus[c].cr3 = m->swapper_pfn << VM_PAGE_SHIFT;
		}
	/* exit_mmap: pages, then tables; then pgd_free; then the stack. */
	unmap_range(m, p, 0, l->task_size);
	pt_prune(m, p->mm.pgd_pfn, 0, l->task_size);
	pt_pgd_free(m, p->mm.pgd_pfn);
	if (l->arch->is64)
		vfree_area(m, (uint32_t)vmalloc_find(m, p->kstack));
	else
		m_free(m, p->kstack, 1);
	hm_free(&m->hm, p->mm.vmas, p->mm.capvmas * sizeof(struct vm_vma));
	idx = (uint32_t)(p - m->procs);
	memmove(&m->procs[idx], &m->procs[idx + 1],
		(m->nprocs - idx - 1) * sizeof(*m->procs));
	m->nprocs--;
	return 0;
}

/*
 * Top-down search (unmapped_area_topdown): the highest gap below
 * mmap_base that holds len bytes and stays above mmap_min_addr.
 */
static int topdown(const struct vm_machine *m, const struct vm_mm *mm,
		   uint64_t len, uint64_t *out)
{
	uint64_t limit = m->layout.mmap_base;

	for (uint32_t i = mm->nvmas; i-- > 0;) {
		const struct vm_vma *v = &mm->vmas[i];

		if (v->start >= limit)
			continue;
		if (v->end <= limit && limit - v->end >= len) {
			*out = limit - len;
			return 0;
		}
		limit = v->start;
	}
	if (limit >= MMAP_MIN_ADDR && limit - MMAP_MIN_ADDR >= len) {
		*out = limit - len;
		return 0;
	}
	return VM_ENOSPACE;
}

int proc_mmap(struct vm_machine *m, const struct vm_op *op, uint64_t *start,
	      struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	struct vm_process *p;
	uint64_t len, addr = 0;
	int rc = find_process(m, op->u.mmap.pid, &p, err);

	if (rc)
		return rc;
	if (op->u.mmap.length == 0 || op->u.mmap.length > l->task_size)
		return vm_fail(err, op->u.mmap.length ? VM_ERANGE : VM_EINVAL,
			       "length: must be 1 to %#llx bytes",
			       (unsigned long long)l->task_size);
	if (op->u.mmap.prot & ~7u)
		return vm_fail(err, VM_EINVAL, "prot: unknown bits");
	len = page_up(op->u.mmap.length);
	if (op->u.mmap.fixed) {
		addr = op->u.mmap.addr;
		if (!op->u.mmap.has_addr)
			return vm_fail(err, VM_EINVAL,
				       "addr: a fixed mapping needs an address");
		if (addr & (VM_PAGE_SIZE - 1))
			return vm_fail(err, VM_EINVAL,
				       "addr: a fixed mapping must be page "
				       "aligned");
		if (addr < MMAP_MIN_ADDR || addr > l->task_size ||
		    len > l->task_size - addr)
			return vm_fail(err, VM_ERANGE,
				       "[addr, addr + length) must lie in "
				       "[%#llx, %#llx)",
				       (unsigned long long)MMAP_MIN_ADDR,
				       (unsigned long long)l->task_size);
	} else {
		bool ok = false;

		if (op->u.mmap.has_addr && op->u.mmap.addr <= l->task_size) {
			/* arch_get_unmapped_area_topdown: addr &= PAGE_MASK. */
			addr = op->u.mmap.addr & ~(VM_PAGE_SIZE - 1);
			ok = addr >= MMAP_MIN_ADDR && addr <= l->task_size &&
			     len <= l->task_size - addr &&
			     !mm_overlaps(&p->mm, addr, addr + len);
		}
		if (!ok && topdown(m, &p->mm, len, &addr))
			return vm_fail(err, VM_ENOSPACE,
				       "no gap of %llu bytes below mmap_base "
				       "%#llx", (unsigned long long)len,
				       (unsigned long long)l->mmap_base);
	}
	rc = map_limit(m, 1 + (op->u.mmap.fixed &&
			       mm_splits(&p->mm, addr, addr + len)), err);
	if (rc)
		return rc;
	if (op->u.mmap.fixed) {
		unmap_range(m, p, addr, addr + len);
		vma_remove_range(m, &p->mm, addr, addr + len);
	}
	{
		struct vm_vma v = { addr, addr + len, op->u.mmap.prot,
				    VM_VMA_MMAP };

		vma_add(m, &p->mm, &v);
	}
	if (op->u.mmap.populate) {
		rc = populate(m, p, addr, addr + len, op->u.mmap.prot);
		if (rc)
			return vm_fail(err, rc, "out of memory populating "
					       "the mapping");
	}
	*start = addr;
	return 0;
}

int proc_munmap(struct vm_machine *m, const struct vm_op *op,
		struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	struct vm_process *p;
	uint64_t addr = op->u.munmap.addr, len;
	int rc = find_process(m, op->u.munmap.pid, &p, err);

	if (rc)
		return rc;
	if (addr & (VM_PAGE_SIZE - 1))
		return vm_fail(err, VM_EINVAL, "addr: must be page aligned");
	if (op->u.munmap.length == 0 || op->u.munmap.length > l->task_size)
		return vm_fail(err, op->u.munmap.length ? VM_ERANGE : VM_EINVAL,
			       "length: must be 1 to %#llx bytes",
			       (unsigned long long)l->task_size);
	len = page_up(op->u.munmap.length);
	if (addr > l->task_size || len > l->task_size - addr)
		return vm_fail(err, VM_ERANGE,
			       "[addr, addr + length) must end by %#llx",
			       (unsigned long long)l->task_size);
	if (mm_splits(&p->mm, addr, addr + len)) {
		rc = map_limit(m, 1, err);
		if (rc)
			return rc;
	}
	unmap_range(m, p, addr, addr + len);
	vma_remove_range(m, &p->mm, addr, addr + len);
	return 0;
}

/* The heap region that ends at the break's page end, or NULL. */
static const struct vm_vma *brk_heap(const struct vm_mm *mm, uint64_t end)
{
	const struct vm_vma *h = end > mm->brk_start ? mm_find_vma(mm, end - 1)
						     : NULL;

	return h && h->kind == VM_VMA_HEAP && h->end == end ? h : NULL;
}

/* VM_MAX_MAPPINGS for a break moving from oldend to newend. */
static int brk_map_limit(const struct vm_machine *m, const struct vm_mm *mm,
			 uint64_t oldend, uint64_t newend,
			 struct vm_error *err)
{
	if (newend < oldend && mm_splits(mm, newend, oldend))
		return map_limit(m, 1, err);
	if (newend > oldend && !brk_heap(mm, oldend))
		return map_limit(m, 1, err);
	return 0;
}

int proc_brk(struct vm_machine *m, const struct vm_op *op,
	     struct vm_error *err)
{
	struct vm_process *p;
	struct vm_mm *mm;
	uint64_t nbrk, oldend, newend;
	int rc = find_process(m, op->u.brk.pid, &p, err);

	if (rc)
		return rc;
	mm = &p->mm;
	if (op->u.brk.absolute) {
		nbrk = op->u.brk.addr;
	} else if (op->u.brk.increment < 0) {
		uint64_t dec = (uint64_t)-(op->u.brk.increment + 1) + 1;

		if (dec > mm->brk - mm->brk_start)
			return vm_fail(err, VM_EINVAL,
				       "increment: the heap would end below its "
				       "start %#llx",
				       (unsigned long long)mm->brk_start);
		nbrk = mm->brk - dec;
	} else {
		uint64_t inc = (uint64_t)op->u.brk.increment;

		if (inc > m->layout.task_size - mm->brk)
			return vm_fail(err, VM_ERANGE,
				       "increment: the heap would leave user "
				       "space");
		nbrk = mm->brk + inc;
	}
	if (nbrk < mm->brk_start || nbrk > m->layout.task_size)
		return vm_fail(err, nbrk > m->layout.task_size ? VM_ERANGE
							       : VM_EINVAL,
			       "addr: the break must lie in [%#llx, %#llx]",
			       (unsigned long long)mm->brk_start,
			       (unsigned long long)m->layout.task_size);
	oldend = page_up(mm->brk);
	newend = page_up(nbrk);
	/* mm/mmap.c brk: keep an unmapped page before the next mapping. */
	if (newend > oldend && mm_overlaps(mm, oldend, newend + VM_PAGE_SIZE))
		return vm_fail(err, VM_ENOSPACE,
			       "brk: the heap would grow to %#llx, into or up "
			       "against the next mapping (Linux keeps a page "
			       "free below it)", (unsigned long long)newend);
	rc = brk_map_limit(m, mm, oldend, newend, err);
	if (rc)
		return rc;
	if (newend < oldend) {
		unmap_range(m, p, newend, oldend);
		vma_remove_range(m, mm, newend, oldend);
	} else if (newend > oldend) {
		const struct vm_vma *h = brk_heap(mm, oldend);

		if (h) {
			((struct vm_vma *)h)->end = newend;
		} else {
			struct vm_vma v = { oldend, newend,
					    VM_PROT_READ | VM_PROT_WRITE,
					    VM_VMA_HEAP };
			vma_add(m, mm, &v);
		}
		if (mm->populate) {
			rc = populate(m, p, oldend, newend,
				      VM_PROT_READ | VM_PROT_WRITE);
			if (rc)
				return vm_fail(err, rc, "out of memory growing "
						       "the heap");
		}
	}
	mm->brk = nbrk;
	return 0;
}

int cpu_switch(struct vm_machine *m, const struct vm_op *op,
	       struct vm_op_result *res, struct vm_error *err)
{
	uint32_t cpu = op->u.sw.cpu, pid = op->u.sw.pid;
	struct vm_cpu *c;
	uint64_t cr3;

	if (cpu >= m->config.cpus)
		return vm_fail(err, VM_ENOENT, "no CPU %u (the machine has %u)",
			       cpu, m->config.cpus);
	c = &m->cpus[cpu];
	if (pid == 0) {
		cr3 = m->swapper_pfn << VM_PAGE_SHIFT;
	} else {
		struct vm_process *p = m_process(m, pid);

		if (!p)
			return vm_fail(err, VM_ENOENT, "no process with pid %u",
				       pid);
		cr3 = p->mm.pgd_pfn << VM_PAGE_SHIFT;
		for (uint32_t i = 0; i < m->config.cpus; i++)
			if (i != cpu && m->cpus[i].pid == pid)
				return vm_fail(err, VM_EBUSY,
					       "pid %u is running on CPU %u",
					       pid, i);
	}
	res->u.sw.cpu = cpu;
	res->u.sw.prev_pid = c->pid;
	res->u.sw.next_pid = pid;
	res->u.sw.cr3_before = c->cr3;
	/* switch_mm skips the CR3 write when the mm does not change. */
	if (c->pid != pid) {
		c->pid = pid;
		c->cr3 = cr3;
	}
	res->u.sw.cr3_after = c->cr3;
	return 0;
}

/* ---- queries ---- */

uint32_t vm_process_count(const struct vm_machine *m)
{
	return m->nprocs;
}

uint32_t vm_process_pid_at(const struct vm_machine *m, uint32_t i)
{
	return i < m->nprocs ? m->procs[i].pid : 0;
}

int vm_process_get(const struct vm_machine *m, uint32_t pid,
		   struct vm_process_info *out)
{
	const struct vm_process *p = m_process(m, pid);

	if (!p)
		return VM_ENOENT;
	out->pid = p->pid;
	out->name = p->name;
	out->pgd_pa = p->mm.pgd_pfn << VM_PAGE_SHIFT;
	out->kstack = m->layout.arch->is64 ? p->kstack
					   : p->kstack << VM_PAGE_SHIFT;
	out->brk_start = p->mm.brk_start;
	out->brk = p->mm.brk;
	out->nregions = p->mm.nvmas;
	return 0;
}

int vm_process_region(const struct vm_machine *m, uint32_t pid, uint32_t i,
		      struct vm_region_info *out)
{
	const struct vm_process *p = m_process(m, pid);

	if (!p || i >= p->mm.nvmas)
		return VM_ENOENT;
	out->start = p->mm.vmas[i].start;
	out->end = p->mm.vmas[i].end;
	out->prot = p->mm.vmas[i].prot;
	out->kind = (enum vm_vma_kind)p->mm.vmas[i].kind;
	return 0;
}

int vm_cpu_get(const struct vm_machine *m, uint32_t n, uint32_t *pid,
	       uint64_t *cr3)
{
	if (n >= m->config.cpus)
		return VM_ENOENT;
	*pid = m->cpus[n].pid;
	*cr3 = m->cpus[n].cr3;
	return 0;
}

/* The top-level table of pid (0: the reference table), or VM_NONE64. */
uint64_t m_top_table(const struct vm_machine *m, uint32_t pid)
{
	const struct vm_process *p;

	if (pid == 0)
		return m->swapper_pfn;
	p = m_process(m, pid);
	return p ? p->mm.pgd_pfn : VM_NONE64;
}

struct run {
	vm_mapping_fn fn;
	void *ctx;
	bool open;
	uint64_t va, end, pa, size, flags;
};

static int run_add(struct run *r, uint64_t va, uint64_t pa, uint64_t size,
		   uint64_t flags)
{
	int rc = 0;

	if (r->open && r->end == va && r->pa + (r->end - r->va) == pa &&
	    r->size == size && r->flags == flags) {
		r->end += size;
		return 0;
	}
	if (r->open)
		rc = r->fn(r->ctx, r->va, r->end, r->pa, r->size, r->flags);
	r->open = true;
	r->va = va;
	r->end = va + size;
	r->pa = pa;
	r->size = size;
	r->flags = flags;
	return rc;
}

static int map_walk(const struct vm_machine *m, uint64_t table,
		    unsigned level, uint64_t base, struct run *r)
{
	const struct vm_arch *a = m->layout.arch;
	if (!phys_frame_nonzero(&m->phys, table))
		return 0;
	for (unsigned i = 0; i < a->level[level].entries; i++) {
		uint64_t e = phys_read(&m->phys,
				       (table << VM_PAGE_SHIFT) + i * a->entry_size,
				       a->entry_size);
		uint64_t va = base + ((uint64_t)i << a->level[level].shift);
		int rc;

		if (!(e & VM_PTE_P))
			continue;
		if (pt_is_leaf(m, level, e)) {
			uint64_t pa = pt_entry_addr(m, level, e);

			rc = run_add(r, vm_arch_canon(a, va), pa,
				     vm_level_span(a, level),
				     e & ~a->addr_mask);
		} else {
			rc = map_walk(m, pt_entry_addr(m, level, e) >>
					      VM_PAGE_SHIFT,
				      level + 1, va, r);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int vm_pagetable_mappings(const struct vm_machine *m, uint32_t pid,
			  vm_mapping_fn fn, void *ctx)
{
	uint64_t top = m_top_table(m, pid);
	struct run r = { .fn = fn, .ctx = ctx };
	int rc;

	if (top == VM_NONE64)
		return VM_ENOENT;
	rc = map_walk(m, top, 0, 0, &r);
	if (rc == 0 && r.open)
		rc = fn(ctx, r.va, r.end, r.pa, r.size, r.flags);
	return rc;
}

struct frames_ctx {
	uint32_t pid;
	vm_pfn_fn fn;
	void *ctx;
};

static int frames_cb(void *ctx, uint64_t s, uint64_t e,
		     const struct vm_owner *o)
{
	struct frames_ctx *f = ctx;

	if (o->kind != VM_OWNER_PAGE_TABLE || o->id != f->pid)
		return 0;
	for (uint64_t p = s; p < e; p++) {
		int rc = f->fn(f->ctx, p);

		if (rc)
			return rc;
	}
	return 0;
}

int vm_pagetable_frames(const struct vm_machine *m, uint32_t pid,
			vm_pfn_fn fn, void *ctx)
{
	struct frames_ctx f = { pid, fn, ctx };

	if (m_top_table(m, pid) == VM_NONE64)
		return VM_ENOENT;
	return buddy_ranges(m->buddy, 0, m->layout.max_pfn, frames_cb, &f);
}

/* ---- invariants ---- */

static int check_user_tables(const struct vm_machine *m,
			     const struct vm_process *p, uint64_t table,
			     unsigned level, uint64_t base,
			     struct vm_error *err)
{
	const struct vm_arch *a = m->layout.arch;
	unsigned n = level == 0 ? m->layout.kernel_pgd_boundary
				: a->level[level].entries;

	for (unsigned i = 0; i < n; i++) {
		uint64_t e = phys_read(&m->phys,
				       (table << VM_PAGE_SHIFT) + i * a->entry_size,
				       a->entry_size);
		uint64_t va = base + ((uint64_t)i << a->level[level].shift);
		uint64_t pfn = pt_entry_addr(m, level, e) >> VM_PAGE_SHIFT;
		struct vm_owner o = buddy_owner(m->buddy, pfn);
		int rc;

		if (!(e & VM_PTE_P))
			continue;
		if (pt_is_leaf(m, level, e)) {
			if (o.kind != VM_OWNER_USER || o.id != p->pid ||
			    o.addr != va || o.mapcount == 0)
				return vm_fail(err, VM_ECORRUPT,
					       "pid %u: PTE for %#llx points at "
					       "pfn %#llx, owned by %s %u",
					       p->pid, (unsigned long long)va,
					       (unsigned long long)pfn,
					       vm_owner_kind_name(o.kind), o.id);
			continue;
		}
		if (o.kind != VM_OWNER_PAGE_TABLE || o.id != p->pid)
			return vm_fail(err, VM_ECORRUPT,
				       "pid %u: table for %#llx at pfn %#llx "
				       "is owned by %s %u", p->pid,
				       (unsigned long long)va,
				       (unsigned long long)pfn,
				       vm_owner_kind_name(o.kind), o.id);
		rc = check_user_tables(m, p, pfn, level + 1, va, err);
		if (rc)
			return rc;
	}
	return 0;
}

int pagetable_check(const struct vm_machine *m, struct vm_error *err)
{
	const struct vm_arch *a = m->layout.arch;
	size_t cur = 0;
	uint64_t pfn;

	/* Only page-table frames hold entries. */
	while (hmap_next(&m->phys.frames, &cur, &pfn)) {
		struct vm_owner o = buddy_owner(m->buddy, pfn);

		if (o.kind != VM_OWNER_PAGE_TABLE)
			return vm_fail(err, VM_ECORRUPT,
				       "pfn %#llx holds entries but is %s "
				       "memory", (unsigned long long)pfn,
				       vm_owner_kind_name(o.kind));
	}
	{
		struct vm_owner o = buddy_owner(m->buddy, m->swapper_pfn);

		if (o.kind != VM_OWNER_PAGE_TABLE || o.id != 0)
			return vm_fail(err, VM_ECORRUPT,
				       "the reference table %#llx is not the "
				       "kernel's", (unsigned long long)
				       m->swapper_pfn);
	}

	for (uint32_t k = 0; k < m->nprocs; k++) {
		const struct vm_process *p = &m->procs[k];
		int rc;

		for (unsigned i = m->layout.kernel_pgd_boundary;
		     i < a->level[0].entries; i++) {
			uint64_t off = (uint64_t)i * a->entry_size;

			if (phys_read(&m->phys, (p->mm.pgd_pfn << VM_PAGE_SHIFT) +
							off, a->entry_size) !=
			    phys_read(&m->phys, (m->swapper_pfn << VM_PAGE_SHIFT) +
							off, a->entry_size))
				return vm_fail(err, VM_ECORRUPT,
					       "pid %u: kernel-half top-level "
					       "entry %u differs from the "
					       "reference table", p->pid, i);
		}
		rc = check_user_tables(m, p, p->mm.pgd_pfn, 0, 0, err);
		if (rc)
			return rc;
	}
	return 0;
}

int process_check(const struct vm_machine *m, struct vm_error *err)
{
	for (uint32_t k = 0; k < m->nprocs; k++) {
		const struct vm_process *p = &m->procs[k];
		const struct vm_mm *mm = &p->mm;

		if (k > 0 && m->procs[k - 1].pid >= p->pid)
			return vm_fail(err, VM_ECORRUPT, "process list unsorted");
		if (p->pid >= m->next_pid)
			return vm_fail(err, VM_ECORRUPT, "pid %u not yet issued",
				       p->pid);
		for (uint32_t i = 0; i < mm->nvmas; i++) {
			const struct vm_vma *v = &mm->vmas[i];

			if (v->start >= v->end || (v->start | v->end) &
							  (VM_PAGE_SIZE - 1) ||
			    v->end > m->layout.task_size ||
			    (i > 0 && mm->vmas[i - 1].end > v->start))
				return vm_fail(err, VM_ECORRUPT,
					       "pid %u: region %u [%#llx, %#llx)"
					       " is malformed or overlaps",
					       p->pid, i,
					       (unsigned long long)v->start,
					       (unsigned long long)v->end);
		}
	}
	for (uint32_t k = 0; k < m->nprocs; k++) {
		const struct vm_process *p = &m->procs[k];
		struct vm_owner o;
		uint64_t head;
		unsigned order;
		bool ok;

		if (m->layout.arch->is64) {
			int i = vmalloc_find(m, p->kstack);

			ok = i >= 0 && m->areas[i].va == p->kstack &&
			     m->areas[i].kind == VM_AREA_STACK &&
			     m->areas[i].pid == p->pid;
		} else {
			ok = buddy_find(m->buddy, p->kstack, &head, &order, &o) &&
			     head == p->kstack && order == 1 &&
			     o.kind == VM_OWNER_KERNEL_STACK && o.id == p->pid;
		}
		if (!ok)
			return vm_fail(err, VM_ECORRUPT,
				       "pid %u: kernel stack %#llx is not its own",
				       p->pid, (unsigned long long)p->kstack);
		o = buddy_owner(m->buddy, p->mm.pgd_pfn);
		if (o.kind != VM_OWNER_PAGE_TABLE || o.id != p->pid)
			return vm_fail(err, VM_ECORRUPT,
				       "pid %u: top-level table %#llx is not its "
				       "own", p->pid,
				       (unsigned long long)p->mm.pgd_pfn);
	}
	for (uint32_t c = 0; c < m->config.cpus; c++) {
		uint64_t top = m_top_table(m, m->cpus[c].pid);

		if (top == VM_NONE64 ||
		    m->cpus[c].cr3 != top << VM_PAGE_SHIFT)
			return vm_fail(err, VM_ECORRUPT,
				       "CPU %u: CR3 %#llx is not pid %u's table",
				       c, (unsigned long long)m->cpus[c].cr3,
				       m->cpus[c].pid);
	}
	return 0;
}
