/* translate.c - the MMU's answer and Linux's reaction; see translate.h. */
#include <stdio.h>
#include <string.h>

#include "machine_int.h"
#include "pagetable.h"
#include "translate.h"

/* Page-fault error code bits (arch/x86/include/asm/trap_pf.h). */
#define PF_PROT 0x1u
#define PF_WRITE 0x2u
#define PF_USER 0x4u
#define PF_INSTR 0x10u

const char *vm_mode_name(enum vm_mode m)
{
	return m == VM_MODE_USER ? "user" : "kernel";
}

const char *vm_access_name(enum vm_access a)
{
	static const char *const n[] = { "read", "write", "exec" };
	return n[a];
}

const char *vm_fault_kind_name(enum vm_fault_kind k)
{
	static const char *const n[] = { "none", "not_present", "protection",
					 "general_protection" };
	return n[k];
}

const char *vm_outcome_name(enum vm_outcome o)
{
	static const char *const n[] = { "none", "sigsegv", "demand_paging",
					 "oops" };
	return n[o];
}

const char *vm_si_code_name(enum vm_si_code c)
{
	static const char *const n[] = { "", "SEGV_MAPERR", "SEGV_ACCERR",
					 "SI_KERNEL" };
	return n[c];
}

int vm_mode_parse(const char *s)
{
	if (strcmp(s, "user") == 0)
		return VM_MODE_USER;
	if (strcmp(s, "kernel") == 0)
		return VM_MODE_KERNEL;
	return -1;
}

int vm_access_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, vm_access_name((enum vm_access)i)) == 0)
			return i;
	return -1;
}

unsigned vm_entry_flags(const struct vm_machine *m, unsigned level,
			uint64_t entry, const char *names[12])
{
	const struct vm_arch *a = m->layout.arch;
	bool leaf_large = level != a->levels - 1u && a->level[level].large &&
			  (entry & VM_PTE_PS);
	unsigned n = 0;

	if (entry & VM_PTE_P) names[n++] = "P";
	if (entry & VM_PTE_RW) names[n++] = "RW";
	if (entry & VM_PTE_US) names[n++] = "US";
	if (entry & VM_PTE_PWT) names[n++] = "PWT";
	if (entry & VM_PTE_PCD) names[n++] = "PCD";
	if (entry & VM_PTE_A) names[n++] = "A";
	if (entry & VM_PTE_D) names[n++] = "D";
	/* Bit 7 is PS in a directory entry and PAT in a 4 KiB PTE. */
	if ((entry & VM_PTE_PS) && level != a->levels - 1u) names[n++] = "PS";
	if (entry & VM_PTE_G) names[n++] = "G";
	if (((entry & VM_PTE_PS) && level == a->levels - 1u) ||
	    (leaf_large && (entry & VM_PTE_PAT_LARGE)))
		names[n++] = "PAT";
	if (a->nx && (entry & VM_PTE_NX)) names[n++] = "NX";
	return n;
}

/*
 * Whether the region forbids the access, as arch/x86/mm/fault.c's
 * access_error() decides: a write needs VM_WRITE; a read that found the
 * page present is a protection error; a read that did not needs the region
 * to be accessible at all (on x86 any of r, w, x makes it readable). An
 * instruction fetch (only where NX exists) needs VM_EXEC: Linux would map
 * the page and fault again on NX, ending in the same SIGSEGV.
 */
static bool access_error(const struct vm_vma *v, bool write, bool fetch,
			 bool present)
{
	if (write)
		return !(v->prot & VM_PROT_WRITE);
	if (fetch && !(v->prot & VM_PROT_EXEC))
		return true;
	if (present)
		return true;
	return !(v->prot & (VM_PROT_READ | VM_PROT_WRITE | VM_PROT_EXEC));
}

int vm_translate(const struct vm_machine *m, const struct vm_translate_req *req,
		 struct vm_translation *out, struct vm_error *err)
{
	const struct vm_arch *a = m->layout.arch;
	const struct vm_process *p = NULL;
	const struct vm_vma *vma = NULL;
	struct vm_walk w;
	uint64_t top;
	uint32_t pid;
	int bad = -1;
	const char *why = NULL;
	bool exec_nx = a->nx && req->access == VM_ACCESS_EXEC;

	if (req->has_cpu && req->has_pid)
		return vm_fail(err, VM_EINVAL, "give cpu or pid, not both");
	if (!a->is64 && req->va > 0xffffffffULL)
		return vm_fail(err, VM_ERANGE,
			       "va: %s addresses are 32 bits wide", a->name);
	if (req->has_pid) {
		pid = req->pid;
	} else {
		uint32_t cpu = req->has_cpu ? req->cpu : 0;

		if (cpu >= m->config.cpus)
			return vm_fail(err, VM_ENOENT,
				       "no CPU %u (the machine has %u)", cpu,
				       m->config.cpus);
		pid = m->cpus[cpu].pid;
		out->cpu = cpu;
	}
	if (pid == 0) {
		top = m->swapper_pfn;
	} else {
		p = m_process(m, pid);
		if (!p)
			return vm_fail(err, VM_ENOENT,
				       "no process with pid %u", pid);
		top = p->mm.pgd_pfn;
	}

	out->va = req->va;
	out->pid = pid;
	out->via_cpu = !req->has_pid;
	if (req->has_pid)
		out->cpu = 0;
	out->mode = req->mode;
	out->access = req->access;
	out->ok = false;
	out->pa = 0;
	out->region = vm_layout_region(&m->layout, req->va)->kind;
	out->page_size = 0;
	out->nwalk = 0;
	/* Field by field: the 192-byte reason is written only for a fault. */
	out->fault.kind = VM_FAULT_NONE;
	out->fault.error_code = out->fault.linux_error_code = 0;
	out->fault.outcome = VM_OUTCOME_NONE;
	out->fault.si_code = VM_SI_NONE;
	out->fault.level = -1;
	out->fault.reason[0] = '\0';

	if (!vm_arch_canonical(a, req->va)) {
		out->fault.kind = VM_FAULT_GENERAL_PROTECTION;
		out->fault.outcome = req->mode == VM_MODE_USER
					     ? VM_OUTCOME_SIGSEGV
					     : VM_OUTCOME_OOPS;
		if (req->mode == VM_MODE_USER)
			out->fault.si_code = VM_SI_KERNEL;
		snprintf(out->fault.reason, sizeof(out->fault.reason),
			 "non-canonical address: bits 63..%u must all equal "
			 "bit %u (#GP, no page walk)", a->va_bits - 1,
			 a->va_bits - 1);
		return 0;
	}

	pt_walk(m, top, req->va, &w);
	out->nwalk = w.nsteps;
	for (unsigned i = 0; i < w.nsteps; i++) {
		out->walk[i].level = w.step[i].level;
		out->walk[i].index = w.step[i].index;
		out->walk[i].entry_pa = w.step[i].entry_pa;
		out->walk[i].entry = w.step[i].entry;
	}
	if (w.leaf < 0) {
		bad = (int)w.nsteps - 1;
		out->fault.kind = VM_FAULT_NOT_PRESENT;
		why = "page not present (P clear";
	} else {
		out->page_size = w.page_size;
		/* Permissions combine over every level that has the bits. */
		for (unsigned i = 0; i < w.nsteps && bad < 0; i++) {
			uint64_t e = w.step[i].entry;

			if (!a->level[w.step[i].level].perm_bits)
				continue;
			if (req->mode == VM_MODE_USER && !(e & VM_PTE_US))
				why = "user-mode access to a supervisor page "
				      "(U/S clear";
			else if (req->access == VM_ACCESS_WRITE &&
				 !(e & VM_PTE_RW))
				why = "write to a read-only page (R/W clear";
			else if (exec_nx && (e & VM_PTE_NX))
				why = "instruction fetch from a no-execute page "
				      "(NX set";
			if (why)
				bad = (int)i;
		}
		if (bad < 0) {
			out->ok = true;
			out->pa = w.pa;
			return 0;
		}
		out->fault.kind = VM_FAULT_PROTECTION;
	}

	out->fault.level = w.step[bad].level;
	out->fault.error_code =
		(out->fault.kind == VM_FAULT_PROTECTION ? PF_PROT : 0) |
		(req->access == VM_ACCESS_WRITE ? PF_WRITE : 0) |
		(req->mode == VM_MODE_USER ? PF_USER : 0) |
		(exec_nx ? PF_INSTR : 0);
	/* fault.c: user accesses at or above TASK_SIZE_MAX always look like
	 * protection faults, to hide the kernel's layout. */
	out->fault.linux_error_code = out->fault.error_code;
	if (req->mode == VM_MODE_USER && req->va >= m->layout.task_size)
		out->fault.linux_error_code |= PF_PROT;

	if (p && req->va < m->layout.task_size)
		vma = mm_find_vma(&p->mm, req->va);
	if (vma && !access_error(vma, req->access == VM_ACCESS_WRITE, exec_nx,
				 out->fault.kind == VM_FAULT_PROTECTION)) {
		out->fault.outcome = VM_OUTCOME_DEMAND_PAGING;
	} else if (req->mode == VM_MODE_USER) {
		out->fault.outcome = VM_OUTCOME_SIGSEGV;
		out->fault.si_code = vma ? VM_SEGV_ACCERR : VM_SEGV_MAPERR;
	} else {
		out->fault.outcome = VM_OUTCOME_OOPS;
	}
	snprintf(out->fault.reason, sizeof(out->fault.reason),
		 "%s in %s entry %u)%s", why, a->level[w.step[bad].level].name,
		 w.step[bad].index,
		 out->fault.outcome == VM_OUTCOME_DEMAND_PAGING
			 ? "; the region allows the access, so Linux maps a "
			   "page (demand paging)"
			 : out->fault.si_code == VM_SEGV_ACCERR
				   ? "; the region forbids this access"
				   : "");
	return 0;
}

int vm_virt_to_phys(const struct vm_machine *m, uint64_t va, uint64_t *pa,
		    struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;
	const struct vm_region *r;

	if (va >= l->page_offset && va < l->high_memory) {
		*pa = va - l->page_offset;
		return 0;
	}
	if (l->arch->is64 && va >= l->kernel_map &&
	    va - l->kernel_map < VM_KERNEL_TEXT_SIZE &&
	    va - l->kernel_map < l->memory) {
		*pa = va - l->kernel_map;
		return 0;
	}
	if (!l->arch->is64 && va > 0xffffffffULL)
		return vm_fail(err, VM_ERANGE, "va: %s addresses are 32 bits "
				       "wide", l->arch->name);
	r = vm_layout_region(l, va);
	switch (r->kind) {
	case VM_REGION_VMALLOC: {
		struct vm_walk w;

		pt_walk(m, m->swapper_pfn, va, &w);
		if (w.leaf >= 0)
			return vm_fail(err, VM_ERANGE,
				       "%#llx is a vmalloc address: __pa does "
				       "not apply; walking the tables "
				       "(vmalloc_to_pfn) gives pa %#llx",
				       (unsigned long long)va,
				       (unsigned long long)w.pa);
		return vm_fail(err, VM_ERANGE,
			       "%#llx is a vmalloc address, and unmapped: __pa "
			       "does not apply", (unsigned long long)va);
	}
	case VM_REGION_USER:
		return vm_fail(err, VM_ERANGE,
			       "%#llx is a user address: __pa works on kernel "
			       "logical addresses only", (unsigned long long)va);
	case VM_REGION_DIRECT_MAP:
		return vm_fail(err, VM_ERANGE,
			       "%#llx is past high_memory (%#llx): no RAM "
			       "there", (unsigned long long)va,
			       (unsigned long long)l->high_memory);
	default:
		return vm_fail(err, VM_ERANGE,
			       "%#llx is in the %s region: __pa works on the "
			       "direct map [%#llx, %#llx)%s",
			       (unsigned long long)va, vm_region_name(r->kind),
			       (unsigned long long)l->page_offset,
			       (unsigned long long)l->high_memory,
			       l->arch->is64 ? " and the kernel image" : "");
	}
}

int vm_phys_to_virt(const struct vm_machine *m, uint64_t pa, uint64_t *va,
		    struct vm_error *err)
{
	const struct vm_layout *l = &m->layout;

	if (pa < l->lowmem_bytes) {
		*va = pa + l->page_offset;
		return 0;
	}
	if (pa < l->memory)
		return vm_fail(err, VM_ERANGE,
			       "%#llx is a highmem frame: it has no kernel "
			       "logical address (the kernel must kmap it)",
			       (unsigned long long)pa);
	return vm_fail(err, VM_ERANGE,
		       "%#llx is beyond the end of RAM (%#llx bytes)",
		       (unsigned long long)pa, (unsigned long long)l->memory);
}
