/*
 * test_translate.c - the MMU's walk and Linux's reaction (SPEC 1.4, 1.5,
 * 1.7): the walker reads only simulated RAM, the kernel half is shared,
 * faults carry the hardware's error code and Linux's outcome, page sizes
 * and flags are those of the boot tables, and __pa/__va keep the kernel's
 * rules. Error-code bits are arch/x86/include/asm/trap_pf.h's.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "core/arch.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/op.h"
#include "core/process.h"
#include "core/testing.h"
#include "core/translate.h"
#include "tests/core/testutil.h"

/* X86_PF_PROT, _WRITE, _USER, _INSTR. */
#define PF_P 0x1u
#define PF_W 0x2u
#define PF_U 0x4u
#define PF_I 0x10u

static const char *const arches_nx[] = { "i386-pae", "x86_64",
					 "x86_64-la57" };

static struct vm_machine *boot_cpus(const char *arch, uint64_t memory,
				    uint32_t cpus)
{
	struct vm_config c;

	tu_config(&c, arch, memory);
	c.cpus = cpus;
	return tu_boot_config(&c);
}

static void do_switch(struct vm_machine *m, uint32_t cpu, uint32_t pid)
{
	struct vm_op op = tu_op_switch(cpu, pid);
	struct vm_op_result r = tu_apply_ok(m, &op, NULL);

	ck_assert_uint_eq(r.u.sw.next_pid, pid);
}

/* Where the default data segment starts (SPEC 1.5). */
static uint64_t data_start(const struct vm_machine *m)
{
	return tu_text_start(m) + 64 * 1024;
}

static struct vm_translation tr(const struct vm_machine *m, uint32_t pid,
				uint64_t va, enum vm_mode mode,
				enum vm_access acc)
{
	struct vm_translate_req q = { .va = va, .has_pid = true, .pid = pid,
				      .mode = mode, .access = acc };
	struct vm_translation t;
	struct vm_error e = { 0 };
	int rc;

	memset(&t, 0xa5, sizeof(t));
	rc = vm_translate(m, &q, &t, &e);
	ck_assert_msg(rc == 0, "translate %#llx pid %u: %s",
		      (unsigned long long)va, pid, e.detail);
	ck_assert_uint_eq(t.va, va);
	ck_assert_uint_eq(t.pid, pid);
	ck_assert(!t.via_cpu);
	return t;
}

static struct vm_translation tr_cpu(const struct vm_machine *m, uint32_t cpu,
				    uint64_t va, enum vm_mode mode,
				    enum vm_access acc)
{
	struct vm_translate_req q = { .va = va, .has_cpu = true, .cpu = cpu,
				      .mode = mode, .access = acc };
	struct vm_translation t;
	struct vm_error e = { 0 };
	int rc;

	memset(&t, 0xa5, sizeof(t));
	rc = vm_translate(m, &q, &t, &e);
	ck_assert_msg(rc == 0, "translate %#llx cpu %u: %s",
		      (unsigned long long)va, cpu, e.detail);
	ck_assert(t.via_cpu);
	ck_assert_uint_eq(t.cpu, cpu);
	return t;
}

#define assert_ok(t)                                                     \
	ck_assert_msg((t).ok, "%#llx: fault %s: %s",                     \
		      (unsigned long long)(t).va,                        \
		      vm_fault_kind_name((t).fault.kind), (t).fault.reason)

/* Every step of a walk is what RAM holds at its entry_pa. */
static void assert_walk_is_ram(const struct vm_machine *m,
			       const struct vm_translation *t)
{
	const struct vm_arch *a = tu_arch_of(m);

	for (unsigned i = 0; i < t->nwalk; i++) {
		uint64_t ram = vm_test_phys_read(m, t->walk[i].entry_pa,
						 a->entry_size);

		ck_assert_msg(t->walk[i].entry == ram,
			      "%#llx step %u: entry %#llx, RAM %#llx",
			      (unsigned long long)t->va, i,
			      (unsigned long long)t->walk[i].entry,
			      (unsigned long long)ram);
		ck_assert_uint_eq(t->walk[i].entry_pa % a->entry_size, 0);
		ck_assert_uint_eq(t->walk[i].index,
				  vm_level_index(a, t->walk[i].level, t->va));
	}
}

/* The level at which U/S is first meaningful (PAE's PDPT has no US). */
static int first_perm_level(const struct vm_arch *a)
{
	for (unsigned i = 0; i < a->levels; i++)
		if (a->level[i].perm_bits)
			return (int)i;
	return -1;
}

/* ---- the walker reads simulated RAM (SPEC 1.4) ------------------------ */

START_TEST(walk_entries_are_ram)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t vm = tu_vmalloc(m, 3 * VM_PAGE_SIZE, true).u.vmalloc.va;
	const uint64_t user[] = { tu_text_start(m), data_start(m),
				  l->stack_top - VM_PAGE_SIZE,
				  l->stack_top - 128 * 1024 };
	const uint64_t kern[] = { l->page_offset, l->page_offset + 0x123456,
				  l->high_memory - 1, vm, vm + 0x2fff,
				  l->vmalloc_end - VM_PAGE_SIZE };

	for (unsigned i = 0; i < sizeof(user) / sizeof(user[0]); i++) {
		struct vm_translation t = tr(m, pid, user[i], VM_MODE_USER,
					     VM_ACCESS_READ);

		assert_ok(t);
		ck_assert_uint_eq(t.nwalk, tu_arch_of(m)->levels);
		ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
		ck_assert_int_eq(t.region, VM_REGION_USER);
		assert_walk_is_ram(m, &t);
	}
	for (unsigned i = 0; i < sizeof(kern) / sizeof(kern[0]); i++) {
		struct vm_translation t = tr(m, pid, kern[i], VM_MODE_KERNEL,
					     VM_ACCESS_READ);

		ck_assert_uint_ge(t.nwalk, 1);
		assert_walk_is_ram(m, &t);
	}
	vm_machine_free(m);
}
END_TEST

/*
 * A raw store into a PTE changes the translation: clearing P makes the
 * page not present, aiming the entry at another frame moves the
 * translation there, and putting the value back restores it.
 */
START_TEST(raw_pte_write_changes_translation)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t va = data_start(m) + 0x2345;
	struct vm_translation t = tr(m, pid, va, VM_MODE_USER, VM_ACCESS_WRITE);
	struct vm_translation tx = tr(m, pid, tu_text_start(m), VM_MODE_USER,
				      VM_ACCESS_READ);
	uint64_t leaf_pa, leaf, pa = t.pa;
	uint64_t before = vm_machine_digest(m);

	assert_ok(t);
	assert_ok(tx);
	ck_assert_uint_eq(t.nwalk, a->levels);
	leaf_pa = t.walk[t.nwalk - 1].entry_pa;
	leaf = t.walk[t.nwalk - 1].entry;
	ck_assert(leaf & VM_PTE_P);
	ck_assert_uint_eq(leaf & a->addr_mask, pa & ~(VM_PAGE_SIZE - 1));

	/* P clear: not present at the PTE; the data region allows the
	 * write, so Linux would demand-page it. */
	vm_test_phys_write(m, leaf_pa, a->entry_size, leaf & ~VM_PTE_P);
	ck_assert_uint_eq(vm_test_phys_read(m, leaf_pa, a->entry_size),
			  leaf & ~VM_PTE_P);
	t = tr(m, pid, va, VM_MODE_USER, VM_ACCESS_WRITE);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.level, (int)a->levels - 1);
	ck_assert_uint_eq(t.fault.error_code, PF_W | PF_U);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
	ck_assert_int_eq(t.fault.si_code, VM_SI_NONE);
	ck_assert_uint_eq(t.page_size, 0);
	ck_assert_uint_eq(t.walk[t.nwalk - 1].entry, leaf & ~VM_PTE_P);

	/* Repointed at the text page's frame. */
	vm_test_phys_write(m, leaf_pa, a->entry_size,
			   (leaf & ~a->addr_mask) |
				   (tx.pa & ~(VM_PAGE_SIZE - 1)));
	t = tr(m, pid, va, VM_MODE_USER, VM_ACCESS_READ);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, (tx.pa & ~(VM_PAGE_SIZE - 1)) + 0x345);
	ck_assert_uint_ne(t.pa, pa);

	/* The walk follows a repointed upper-level entry just as well:
	 * clearing P in the top-level entry hides the whole range. */
	{
		struct vm_translation u = tr(m, pid, va, VM_MODE_USER,
					     VM_ACCESS_READ);
		int top = 0;
		uint64_t e0 = u.walk[top].entry, p0 = u.walk[top].entry_pa;

		vm_test_phys_write(m, p0, a->entry_size, e0 & ~VM_PTE_P);
		u = tr(m, pid, va, VM_MODE_USER, VM_ACCESS_READ);
		ck_assert(!u.ok);
		ck_assert_int_eq(u.fault.kind, VM_FAULT_NOT_PRESENT);
		ck_assert_int_eq(u.fault.level, 0);
		ck_assert_uint_eq(u.nwalk, 1);
		vm_test_phys_write(m, p0, a->entry_size, e0);
	}

	/* Back as it was: same pa, same digest, invariants hold. */
	vm_test_phys_write(m, leaf_pa, a->entry_size, leaf);
	t = tr(m, pid, va, VM_MODE_USER, VM_ACCESS_WRITE);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, pa);
	ck_assert_uint_eq(vm_machine_digest(m), before);
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* ---- the kernel half is shared (SPEC 1.4, 1.5) -------------------------- */

START_TEST(kernel_half_same_in_every_process)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = l->arch;
	uint64_t vm = tu_vmalloc(m, 2 * VM_PAGE_SIZE, true).u.vmalloc.va;
	uint32_t pids[4] = { 0 };
	uint64_t kva[3];
	unsigned nk = 0;
	uint32_t cpu_pid;
	uint64_t cr3;

	for (unsigned i = 1; i < 4; i++)
		pids[i] = tu_create(m, "proc", true);
	kva[nk++] = l->page_offset + 0x1234;
	kva[nk++] = vm + 0x10;
	if (a->is64)
		kva[nk++] = 0xffffffff81000000ULL;
	ck_assert_int_eq(vm_cpu_get(m, 0, &cpu_pid, &cr3), 0);
	ck_assert_uint_eq(cpu_pid, 0);
	for (unsigned k = 0; k < nk; k++) {
		struct vm_translation ref = tr(m, 0, kva[k], VM_MODE_KERNEL,
					       VM_ACCESS_READ);

		assert_ok(ref);
		/* pid 0 walks the reference table, which CPU 0 holds. */
		ck_assert_uint_eq(ref.walk[0].entry_pa,
				  cr3 + (uint64_t)ref.walk[0].index *
						a->entry_size);
		for (unsigned i = 1; i < 4; i++) {
			struct vm_process_info pi;
			struct vm_translation t = tr(m, pids[i], kva[k],
						     VM_MODE_KERNEL,
						     VM_ACCESS_READ);

			ck_assert_int_eq(vm_process_get(m, pids[i], &pi), 0);
			assert_ok(t);
			ck_assert_uint_eq(t.pa, ref.pa);
			ck_assert_uint_eq(t.page_size, ref.page_size);
			ck_assert_uint_eq(t.nwalk, ref.nwalk);
			/* The top-level entry is in the process's own table
			 * and holds the reference table's value; below it the
			 * tables are the same frames. */
			ck_assert_uint_eq(t.walk[0].entry_pa,
					  pi.pgd_pa + (uint64_t)t.walk[0].index *
							      a->entry_size);
			ck_assert_uint_ne(t.walk[0].entry_pa,
					  ref.walk[0].entry_pa);
			for (unsigned s = 0; s < t.nwalk; s++) {
				ck_assert_uint_eq(t.walk[s].entry,
						  ref.walk[s].entry);
				ck_assert_uint_eq(t.walk[s].index,
						  ref.walk[s].index);
				if (s > 0)
					ck_assert_uint_eq(t.walk[s].entry_pa,
							  ref.walk[s].entry_pa);
			}
		}
	}
	/* Every kernel-half top-level entry, raw, equals the reference's. */
	for (unsigned i = 1; i < 4; i++) {
		struct vm_process_info pi;

		ck_assert_int_eq(vm_process_get(m, pids[i], &pi), 0);
		for (unsigned idx = l->kernel_pgd_boundary;
		     idx < a->level[0].entries; idx++)
			ck_assert_uint_eq(
				vm_test_phys_read(m, pi.pgd_pa +
							     idx * a->entry_size,
						  a->entry_size),
				vm_test_phys_read(m, cr3 + idx * a->entry_size,
						  a->entry_size));
	}
	vm_machine_free(m);
}
END_TEST

START_TEST(user_half_differs_between_processes)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t p1 = tu_create(m, "proc", true);
	uint32_t p2 = tu_create(m, "proc", true);
	const uint64_t vas[] = { tu_text_start(m), data_start(m),
				 l->stack_top - VM_PAGE_SIZE };

	for (unsigned i = 0; i < 3; i++) {
		struct vm_translation a = tr(m, p1, vas[i], VM_MODE_USER,
					     VM_ACCESS_READ);
		struct vm_translation b = tr(m, p2, vas[i], VM_MODE_USER,
					     VM_ACCESS_READ);

		assert_ok(a);
		assert_ok(b);
		ck_assert_uint_ne(a.pa, b.pa);
		ck_assert_uint_ne(a.walk[0].entry_pa, b.walk[0].entry_pa);
		ck_assert_uint_ne(a.walk[a.nwalk - 1].entry_pa,
				  b.walk[b.nwalk - 1].entry_pa);
	}
	vm_machine_free(m);
}
END_TEST

/*
 * va (a kernel address) translates to the same pa through the reference
 * table, each process's table and each CPU's CR3; a CPU's walk starts in
 * the table its CR3 holds.
 */
static void assert_seen_everywhere(const struct vm_machine *m, uint64_t va,
				   const uint32_t *pids, unsigned npids,
				   uint32_t ncpus)
{
	struct vm_translation ref = tr(m, 0, va, VM_MODE_KERNEL,
				       VM_ACCESS_WRITE);
	unsigned esize = tu_arch_of(m)->entry_size;

	assert_ok(ref);
	ck_assert_int_eq(ref.region, VM_REGION_VMALLOC);
	ck_assert_uint_eq(ref.page_size, VM_PAGE_SIZE);
	for (unsigned i = 0; i < npids; i++) {
		struct vm_translation t = tr(m, pids[i], va, VM_MODE_KERNEL,
					     VM_ACCESS_WRITE);

		assert_ok(t);
		ck_assert_uint_eq(t.pa, ref.pa);
	}
	for (uint32_t c = 0; c < ncpus; c++) {
		struct vm_translation t = tr_cpu(m, c, va, VM_MODE_KERNEL,
						 VM_ACCESS_READ);
		uint32_t pid;
		uint64_t cr3;

		ck_assert_int_eq(vm_cpu_get(m, c, &pid, &cr3), 0);
		assert_ok(t);
		ck_assert_uint_eq(t.pid, pid);
		ck_assert_uint_eq(t.pa, ref.pa);
		ck_assert_uint_eq(t.walk[0].entry_pa,
				  cr3 + (uint64_t)t.walk[0].index * esize);
	}
}

/*
 * A vmalloc made after the processes exist, large enough to need new
 * tables (it spans more than one 4 MiB PDE on i386), is visible at once
 * through every process's table and through each CPU's CR3, before and
 * after context switches (SPEC 1.4: preallocation on x86_64, sync on i386).
 */
START_TEST(late_vmalloc_visible_everywhere)
{
	struct vm_machine *m = boot_cpus(tu_arches[_i], VM_GiB, 2);
	uint32_t p1 = tu_create(m, "proc", true);
	uint32_t p2 = tu_create(m, "proc", true);
	uint32_t p3 = tu_create(m, "proc", true);
	const uint32_t pids[] = { p1, p2, p3 };
	uint64_t npages = 1100, vm;
	uint64_t probes[4];

	do_switch(m, 0, p1);
	do_switch(m, 1, p2);
	vm = tu_vmalloc(m, npages * VM_PAGE_SIZE, true).u.vmalloc.va;
	probes[0] = vm;
	probes[1] = vm + 0x1234;
	probes[2] = vm + (npages / 2) * VM_PAGE_SIZE + 8;
	probes[3] = vm + npages * VM_PAGE_SIZE - 1;
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned k = 0; k < 4; k++)
			assert_seen_everywhere(m, probes[k], pids, 3, 2);
		/* Move the tasks around: p3 onto CPU 0, p1 onto CPU 1; then
		 * CPU 1 back to idle and p2 onto CPU 0. */
		if (round == 0) {
			do_switch(m, 0, p3);
			do_switch(m, 1, p1);
		} else if (round == 1) {
			do_switch(m, 1, 0);
			do_switch(m, 0, p2);
		}
	}
	tu_assert_checks(m);
	vm_machine_free(m);
}
END_TEST

/* CR3 after a switch is the next task's table; the user half follows. */
START_TEST(switch_changes_user_half_only)
{
	struct vm_machine *m = boot_cpus(tu_arches[_i], VM_GiB, 2);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t p1 = tu_create(m, "proc", true);
	uint32_t p2 = tu_create(m, "proc", true);
	struct vm_process_info i1, i2;
	struct vm_translation a, b, ka, kb;
	uint32_t pid;
	uint64_t cr3;

	ck_assert_int_eq(vm_process_get(m, p1, &i1), 0);
	ck_assert_int_eq(vm_process_get(m, p2, &i2), 0);
	do_switch(m, 1, p1);
	ck_assert_int_eq(vm_cpu_get(m, 1, &pid, &cr3), 0);
	ck_assert_uint_eq(pid, p1);
	ck_assert_uint_eq(cr3, i1.pgd_pa);
	a = tr_cpu(m, 1, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ);
	ka = tr_cpu(m, 1, l->page_offset + 0x4000, VM_MODE_KERNEL,
		    VM_ACCESS_READ);
	do_switch(m, 1, p2);
	ck_assert_int_eq(vm_cpu_get(m, 1, &pid, &cr3), 0);
	ck_assert_uint_eq(cr3, i2.pgd_pa);
	b = tr_cpu(m, 1, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ);
	kb = tr_cpu(m, 1, l->page_offset + 0x4000, VM_MODE_KERNEL,
		    VM_ACCESS_READ);
	assert_ok(a);
	assert_ok(b);
	assert_ok(ka);
	assert_ok(kb);
	ck_assert_uint_eq(a.pa, tr(m, p1, tu_text_start(m), VM_MODE_USER,
				   VM_ACCESS_READ).pa);
	ck_assert_uint_eq(b.pa, tr(m, p2, tu_text_start(m), VM_MODE_USER,
				   VM_ACCESS_READ).pa);
	ck_assert_uint_ne(a.pa, b.pa);
	ck_assert_uint_eq(ka.pa, kb.pa);
	ck_assert_uint_eq(ka.pa, 0x4000);
	/* CPU 0 still runs the idle task. */
	ck_assert_int_eq(vm_cpu_get(m, 0, &pid, &cr3), 0);
	ck_assert_uint_eq(pid, 0);
	vm_machine_free(m);
}
END_TEST

/* ---- faults (SPEC 1.7) --------------------------------------------------- */

/*
 * User access to a mapped direct-map address: a protection fault with P|U
 * at the first level that has U/S (PGD; the PMD on PAE, whose PDPT has no
 * U/S), SIGSEGV with SEGV_MAPERR (no user region covers it).
 */
START_TEST(user_access_to_kernel_page)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	const enum vm_access accs[] = { VM_ACCESS_READ, VM_ACCESS_WRITE };

	for (unsigned k = 0; k < 2; k++) {
		struct vm_translation t = tr(m, pid, l->page_offset + 0x1000,
					     VM_MODE_USER, accs[k]);
		uint32_t want = PF_P | PF_U | (k ? PF_W : 0);

		ck_assert(!t.ok);
		ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
		ck_assert_uint_eq(t.fault.error_code, want);
		ck_assert_uint_eq(t.fault.linux_error_code, want);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
		ck_assert_int_eq(t.fault.si_code, VM_SEGV_MAPERR);
		ck_assert_str_eq(vm_si_code_name(t.fault.si_code),
				 "SEGV_MAPERR");
		ck_assert_int_eq(t.fault.level, first_perm_level(l->arch));
		ck_assert_int_eq(t.region, VM_REGION_DIRECT_MAP);
		ck_assert_uint_gt(t.page_size, 0);
		ck_assert(strstr(t.fault.reason, "U/S") != NULL);
	}
	/* The same through CPU 0's idle task. */
	{
		struct vm_translation t = tr_cpu(m, 0, l->page_offset + 0x1000,
						 VM_MODE_USER, VM_ACCESS_READ);

		ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
		ck_assert_uint_eq(t.fault.error_code, PF_P | PF_U);
		ck_assert_uint_eq(t.pid, 0);
	}
	vm_machine_free(m);
}
END_TEST

/*
 * SPEC 2.2's example, on i386 3G/1G: PGD entry 768 maps pa 0 with a 4 MiB
 * page, raw 0x000001e3 (P RW A D PS G), and a user read faults there.
 */
START_TEST(spec_example_i386)
{
	struct vm_machine *m = tu_boot("i386", VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_translation t = tr(m, pid, 0xc0001234ULL, VM_MODE_USER,
				     VM_ACCESS_READ);
	const char *names[12];
	static const char *const want[] = { "P", "RW", "A", "D", "PS", "G" };
	unsigned n;

	ck_assert(!t.ok);
	ck_assert_int_eq(t.region, VM_REGION_DIRECT_MAP);
	ck_assert_uint_eq(t.page_size, 4 * VM_MiB);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(t.fault.error_code, 0x5);
	ck_assert_uint_eq(t.fault.linux_error_code, 0x5);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_MAPERR);
	ck_assert_int_eq(t.fault.level, 0);
	ck_assert_msg(strstr(t.fault.reason, "PGD entry 768") != NULL, "%s",
		      t.fault.reason);
	ck_assert_uint_eq(t.nwalk, 1);
	ck_assert_uint_eq(t.walk[0].index, 768);
	ck_assert_uint_eq(t.walk[0].entry, 0x000001e3ULL);
	n = vm_entry_flags(m, 0, t.walk[0].entry, names);
	ck_assert_uint_eq(n, 6);
	for (unsigned i = 0; i < n; i++)
		ck_assert_str_eq(names[i], want[i]);
	/* Kernel mode reads it: __pa(0xc0001234) = 0x1234. */
	t = tr(m, pid, 0xc0001234ULL, VM_MODE_KERNEL, VM_ACCESS_READ);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, 0x1234);
	vm_machine_free(m);
}
END_TEST

/*
 * linux_error_code: Linux sets P for a user access at or above
 * TASK_SIZE_MAX even when nothing is mapped there (fault.c); below it the
 * code is the hardware's.
 */
START_TEST(linux_error_code_hides_kernel_layout)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	/* The last vmalloc page: never mapped here. */
	uint64_t kva = l->vmalloc_end - VM_PAGE_SIZE;
	struct vm_translation t = tr(m, pid, kva, VM_MODE_USER,
				     VM_ACCESS_READ);

	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_U | PF_P);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_MAPERR);
	ck_assert_uint_eq(t.page_size, 0);
	ck_assert_int_eq(t.region, VM_REGION_VMALLOC);

	t = tr(m, pid, kva, VM_MODE_USER, VM_ACCESS_WRITE);
	ck_assert_uint_eq(t.fault.error_code, PF_U | PF_W);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_U | PF_W | PF_P);

	/* Exactly TASK_SIZE_MAX: the first non-user address. On 32-bit it
	 * is PAGE_OFFSET (mapped, a protection fault either way). */
	t = tr(m, pid, l->task_size, VM_MODE_USER, VM_ACCESS_READ);
	ck_assert(!t.ok);
	ck_assert(t.fault.linux_error_code & PF_P);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);

	/* Below TASK_SIZE, unmapped, no region: the hardware's code. */
	t = tr(m, pid, 0x10000, VM_MODE_USER, VM_ACCESS_READ);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_U);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_MAPERR);

	/* Kernel mode on the unmapped kernel page: an oops, no signal, and
	 * no P added (the rule is for user accesses). */
	t = tr(m, pid, kva, VM_MODE_KERNEL, VM_ACCESS_READ);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, 0);
	ck_assert_uint_eq(t.fault.linux_error_code, 0);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	ck_assert_int_eq(t.fault.si_code, VM_SI_NONE);
	vm_machine_free(m);
}
END_TEST

/* x86_64: a non-canonical address raises #GP, code 0, with no walk. */
START_TEST(non_canonical_is_general_protection)
{
	struct vm_machine *m = tu_boot(tu_arches64[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", true);
	/* Just above the lower half, and just below the upper half. */
	uint64_t lo = 1ULL << (a->va_bits - 1);
	uint64_t hi = ~((1ULL << (a->va_bits - 1)) - 1) - 1;
	const uint64_t vas[] = { lo, hi, 0x8000000000000000ULL };

	for (unsigned i = 0; i < 3; i++) {
		struct vm_translation t = tr(m, pid, vas[i], VM_MODE_USER,
					     VM_ACCESS_READ);

		ck_assert(!vm_arch_canonical(a, vas[i]));
		ck_assert(!t.ok);
		ck_assert_int_eq(t.fault.kind, VM_FAULT_GENERAL_PROTECTION);
		ck_assert_str_eq(vm_fault_kind_name(t.fault.kind),
				 "general_protection");
		ck_assert_uint_eq(t.fault.error_code, 0);
		ck_assert_uint_eq(t.nwalk, 0);
		ck_assert_uint_eq(t.page_size, 0);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
		ck_assert_int_eq(t.region, VM_REGION_HOLE);

		t = tr(m, pid, vas[i], VM_MODE_KERNEL, VM_ACCESS_WRITE);
		ck_assert_int_eq(t.fault.kind, VM_FAULT_GENERAL_PROTECTION);
		ck_assert_uint_eq(t.fault.error_code, 0);
		ck_assert_uint_eq(t.nwalk, 0);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	}
	/* The canonical neighbours walk (and fault) as #PF. */
	{
		struct vm_translation t = tr(m, pid, lo - VM_PAGE_SIZE,
					     VM_MODE_USER, VM_ACCESS_READ);

		ck_assert_int_ne(t.fault.kind, VM_FAULT_GENERAL_PROTECTION);
		ck_assert_uint_ge(t.nwalk, 1);
	}
	vm_machine_free(m);
}
END_TEST

/*
 * populate:false regions fault as not present, and Linux demand-pages
 * where the region allows the access; where it does not, SEGV_ACCERR.
 */
START_TEST(demand_paging)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", false);
	uint32_t exec_bit = a->nx ? PF_I : 0;
	struct vm_translation t;
	struct vm_op op;
	struct vm_op_result r;

	t = tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_U);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
	ck_assert_str_eq(vm_outcome_name(t.fault.outcome), "demand_paging");
	ck_assert_int_eq(t.fault.si_code, VM_SI_NONE);
	ck_assert_uint_eq(t.page_size, 0);

	t = tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_EXEC);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U | exec_bit);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);

	t = tr(m, pid, data_start(m), VM_MODE_USER, VM_ACCESS_WRITE);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U | PF_W);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);

	/* A write to unpopulated text: the region forbids it. */
	t = tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_WRITE);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_ACCERR);

	/* An mmap with populate false, on a populated process too. */
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MMAP;
	op.u.mmap.pid = tu_create(m, "proc", true);
	op.u.mmap.length = 3 * VM_PAGE_SIZE;
	op.u.mmap.prot = VM_PROT_READ | VM_PROT_WRITE;
	op.u.mmap.populate = false;
	r = tu_apply_ok(m, &op, NULL);
	ck_assert_uint_eq(r.u.mmap.start,
			  vm_machine_layout(m)->mmap_base - 3 * VM_PAGE_SIZE);
	t = tr(m, op.u.mmap.pid, r.u.mmap.start + VM_PAGE_SIZE, VM_MODE_USER,
	       VM_ACCESS_WRITE);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_DEMAND_PAGING);
	/*
	 * Exec in a rw- region: with NX the fault has I and the region
	 * forbids it; without NX the CPU cannot tell an instruction fetch
	 * from a read (no I bit), so Linux sees a read the region allows
	 * (fault.c access_error() tests X86_PF_INSTR, never set there).
	 */
	t = tr(m, op.u.mmap.pid, r.u.mmap.start, VM_MODE_USER, VM_ACCESS_EXEC);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_uint_eq(t.fault.error_code, PF_U | exec_bit);
	if (a->nx) {
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
		ck_assert_int_eq(t.fault.si_code, VM_SEGV_ACCERR);
	} else {
		ck_assert_msg(t.fault.outcome == VM_OUTCOME_DEMAND_PAGING,
			      "exec without NX is a read: outcome %s (%s)",
			      vm_outcome_name(t.fault.outcome),
			      vm_si_code_name(t.fault.si_code));
	}
	vm_machine_free(m);
}
END_TEST

/* A write to populated text: protection, P|W|U, SEGV_ACCERR. */
START_TEST(write_to_text_is_protection)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_translation t = tr(m, pid, tu_text_start(m) + 0x40,
				     VM_MODE_USER, VM_ACCESS_WRITE);

	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(t.fault.error_code, PF_P | PF_W | PF_U);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_P | PF_W | PF_U);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_ACCERR);
	ck_assert_str_eq(vm_si_code_name(t.fault.si_code), "SEGV_ACCERR");
	/* R/W is clear in the PTE only: the tables above are _PAGE_TABLE. */
	ck_assert_int_eq(t.fault.level, (int)a->levels - 1);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	/* Reading and executing it work. */
	assert_ok(tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ));
	assert_ok(tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_EXEC));
	vm_machine_free(m);
}
END_TEST

/* Exec of data: NX set, so a protection fault with I (0x10). */
START_TEST(exec_of_data_faults_with_nx)
{
	struct vm_machine *m = tu_boot(arches_nx[_i], VM_GiB);
	const struct vm_arch *a = tu_arch_of(m);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	const uint64_t vas[] = { data_start(m), l->stack_top - VM_PAGE_SIZE };

	ck_assert(a->nx);
	for (unsigned i = 0; i < 2; i++) {
		struct vm_translation t = tr(m, pid, vas[i], VM_MODE_USER,
					     VM_ACCESS_EXEC);

		ck_assert(!t.ok);
		ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
		ck_assert_uint_eq(t.fault.error_code, PF_P | PF_U | PF_I);
		ck_assert_uint_eq(t.fault.linux_error_code, PF_P | PF_U | PF_I);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
		ck_assert_int_eq(t.fault.si_code, VM_SEGV_ACCERR);
		ck_assert(t.walk[t.nwalk - 1].entry & VM_PTE_NX);
	}
	/* Kernel exec from the (NX) direct map outside the image. */
	{
		struct vm_translation t = tr(m, pid, l->page_offset + 64 * VM_MiB,
					     VM_MODE_KERNEL, VM_ACCESS_EXEC);

		ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
		ck_assert_uint_eq(t.fault.error_code, PF_P | PF_I);
		ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	}
	/*
	 * The image's direct-map alias: i386-pae runs the kernel from it, so
	 * it stays executable; x86_64 runs from __START_KERNEL_map, and the
	 * whole direct map is NX (SPEC 1.4).
	 */
	{
		struct vm_translation t = tr(m, pid, l->page_offset + 16 * VM_MiB,
					     VM_MODE_KERNEL, VM_ACCESS_EXEC);

		if (a->is64) {
			ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
			ck_assert_uint_eq(t.fault.error_code, PF_P | PF_I);
		} else {
			assert_ok(t);
			ck_assert_uint_eq(t.pa, 16 * VM_MiB);
			t = tr(m, pid, l->page_offset + 24 * VM_MiB - 1,
			       VM_MODE_KERNEL, VM_ACCESS_EXEC);
			assert_ok(t);
			t = tr(m, pid, l->page_offset + 24 * VM_MiB,
			       VM_MODE_KERNEL, VM_ACCESS_EXEC);
			ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
			t = tr(m, pid, l->page_offset + 16 * VM_MiB - 1,
			       VM_MODE_KERNEL, VM_ACCESS_EXEC);
			ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
		}
	}
	vm_machine_free(m);
}
END_TEST

/* i386 without PAE has no NX: exec is checked as read. */
START_TEST(exec_of_data_on_i386_is_a_read)
{
	struct vm_machine *m = tu_boot("i386", VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_translation r = tr(m, pid, data_start(m) + 8, VM_MODE_USER,
				     VM_ACCESS_READ);
	struct vm_translation x = tr(m, pid, data_start(m) + 8, VM_MODE_USER,
				     VM_ACCESS_EXEC);
	struct vm_translation k;

	ck_assert(!tu_arch_of(m)->nx);
	assert_ok(r);
	assert_ok(x);
	ck_assert_uint_eq(x.pa, r.pa);
	/* An exec fault has no I bit either. */
	k = tr(m, pid, 0xc0000000ULL, VM_MODE_USER, VM_ACCESS_EXEC);
	ck_assert_int_eq(k.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(k.fault.error_code, PF_P | PF_U);
	vm_machine_free(m);
}
END_TEST

/*
 * x86_64 kernel text at __START_KERNEL_map + 16 MiB: read-only executable
 * 2 MiB pages; with CR0.WP=1 a kernel write faults (an oops).
 */
START_TEST(kernel_write_to_text_faults)
{
	struct vm_machine *m = tu_boot(tu_arches64[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t text = 0xffffffff81000000ULL;
	struct vm_translation t = tr(m, pid, text + 0x100, VM_MODE_KERNEL,
				     VM_ACCESS_WRITE);

	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(t.fault.error_code, PF_P | PF_W);
	ck_assert_uint_eq(t.fault.linux_error_code, PF_P | PF_W);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	ck_assert_int_eq(t.fault.si_code, VM_SI_NONE);
	ck_assert_int_eq(t.region, VM_REGION_KERNEL_TEXT);

	t = tr(m, pid, text + 0x100, VM_MODE_KERNEL, VM_ACCESS_READ);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, 16 * VM_MiB + 0x100);
	ck_assert_uint_eq(t.page_size, 2 * VM_MiB);
	assert_ok(tr(m, pid, text, VM_MODE_KERNEL, VM_ACCESS_EXEC));
	/* rodata [20, 22) MiB: read-only, NX. */
	t = tr(m, pid, 0xffffffff81400000ULL, VM_MODE_KERNEL, VM_ACCESS_WRITE);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	t = tr(m, pid, 0xffffffff81400000ULL, VM_MODE_KERNEL, VM_ACCESS_EXEC);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(t.fault.error_code, PF_P | PF_I);
	/* data and bss [22, 24) MiB: read-write, NX. */
	t = tr(m, pid, 0xffffffff81600000ULL, VM_MODE_KERNEL, VM_ACCESS_WRITE);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, 22 * VM_MiB);
	t = tr(m, pid, 0xffffffff81600000ULL, VM_MODE_KERNEL, VM_ACCESS_EXEC);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	/* Users cannot touch it at all. */
	t = tr(m, pid, text, VM_MODE_USER, VM_ACCESS_READ);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(t.fault.error_code, PF_P | PF_U);
	vm_machine_free(m);
}
END_TEST

/* SMAP off: kernel mode reads and writes user pages. */
START_TEST(kernel_reads_user_pages)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	uint32_t pid = tu_create(m, "proc", true);
	struct vm_translation u = tr(m, pid, tu_text_start(m) + 0x10,
				     VM_MODE_USER, VM_ACCESS_READ);
	struct vm_translation k = tr(m, pid, tu_text_start(m) + 0x10,
				     VM_MODE_KERNEL, VM_ACCESS_READ);
	struct vm_translation w = tr(m, pid, data_start(m), VM_MODE_KERNEL,
				     VM_ACCESS_WRITE);

	assert_ok(u);
	assert_ok(k);
	assert_ok(w);
	ck_assert_uint_eq(k.pa, u.pa);
	ck_assert_uint_eq(w.pa, tr(m, pid, data_start(m), VM_MODE_USER,
				   VM_ACCESS_WRITE).pa);
	/* CR0.WP=1 applies to user pages too: kernel write to text. */
	k = tr(m, pid, tu_text_start(m), VM_MODE_KERNEL, VM_ACCESS_WRITE);
	ck_assert_int_eq(k.fault.kind, VM_FAULT_PROTECTION);
	ck_assert_uint_eq(k.fault.error_code, PF_P | PF_W);
	vm_machine_free(m);
}
END_TEST

/* ---- page sizes and flags (SPEC 1.4) ------------------------------------- */

static void assert_flags(const struct vm_machine *m, unsigned level,
			 uint64_t entry, const char *const *want, unsigned n)
{
	const char *names[12];
	unsigned got = vm_entry_flags(m, level, entry, names);
	char buf[128] = "";

	for (unsigned i = 0; i < got; i++) {
		strncat(buf, names[i], sizeof(buf) - strlen(buf) - 2);
		strcat(buf, " ");
	}
	ck_assert_msg(got == n, "entry %#llx level %u: flags [%s], want %u",
		      (unsigned long long)entry, level, buf, n);
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(strcmp(names[i], want[i]) == 0,
			      "entry %#llx: flags [%s], flag %u want %s",
			      (unsigned long long)entry, buf, i, want[i]);
}

/*
 * Bits an entry must have and must not have, where SPEC fixes only some
 * (user leaves: A and D are the CPU's to set).
 */
static void assert_bits(uint64_t entry, uint64_t must, uint64_t mustnt)
{
	ck_assert_msg((entry & must) == must && !(entry & mustnt),
		      "entry %#llx: want bits %#llx set and %#llx clear",
		      (unsigned long long)entry, (unsigned long long)must,
		      (unsigned long long)mustnt);
}

START_TEST(page_sizes_and_flags)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	const struct vm_arch *a = l->arch;
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t vm = tu_vmalloc(m, VM_PAGE_SIZE, true).u.vmalloc.va;
	struct vm_translation t;
	/* The largest page the direct map uses on a 1 GiB machine. */
	uint64_t direct = a->is64 ? VM_GiB
				  : a->id == VM_ARCH_I386 ? 4 * VM_MiB
							  : 2 * VM_MiB;
	static const char *const kern_nx[] = { "P", "RW", "A", "D", "PS", "G",
					       "NX" };
	static const char *const kern_x[] = { "P", "RW", "A", "D", "PS", "G" };
	static const char *const kern4k_nx[] = { "P", "RW", "A", "D", "G",
						 "NX" };
	static const char *const kern4k_x[] = { "P", "RW", "A", "D", "G" };
	static const char *const utable[] = { "P", "RW", "US", "A", "D" };
	static const char *const ktable[] = { "P", "RW", "A", "D" };
	static const char *const pdpt[] = { "P" };

	/* The direct map, kernel page flags with PS (and NX). */
	t = tr(m, pid, l->page_offset + 64 * VM_MiB + 0x1234, VM_MODE_KERNEL,
	       VM_ACCESS_READ);
	assert_ok(t);
	ck_assert_uint_eq(t.pa, 64 * VM_MiB + 0x1234);
	ck_assert_uint_eq(t.page_size, direct);
	ck_assert_str_eq(a->level[t.walk[t.nwalk - 1].level].name,
			 direct == VM_GiB ? "PUD" : direct == 4 * VM_MiB
							    ? "PGD"
							    : "PMD");
	if (a->nx)
		assert_flags(m, t.walk[t.nwalk - 1].level,
			     t.walk[t.nwalk - 1].entry, kern_nx, 7);
	else
		assert_flags(m, t.walk[t.nwalk - 1].level,
			     t.walk[t.nwalk - 1].entry, kern_x, 6);
	/* Its upper levels are kernel tables (_KERNPG_TABLE), PAE's PDPT
	 * entry only P. */
	for (unsigned s = 0; s + 1 < t.nwalk; s++) {
		if (!a->level[s].perm_bits) {
			assert_flags(m, s, t.walk[s].entry, pdpt, 1);
			ck_assert_uint_eq(t.walk[s].entry & 0xfff, 0x001);
		} else {
			assert_flags(m, s, t.walk[s].entry, ktable, 4);
			ck_assert_uint_eq(t.walk[s].entry & 0xfff, 0x063);
		}
	}

	/* User text and data: 4 KiB pages, user tables above. */
	t = tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ);
	assert_ok(t);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	/* Text r-x: user, read-only, executable. */
	assert_bits(t.walk[t.nwalk - 1].entry, VM_PTE_P | VM_PTE_US,
		    VM_PTE_RW | VM_PTE_NX | VM_PTE_PS | VM_PTE_G);
	for (unsigned s = 0; s + 1 < t.nwalk; s++) {
		if (!a->level[s].perm_bits) {
			assert_flags(m, s, t.walk[s].entry, pdpt, 1);
		} else {
			assert_flags(m, s, t.walk[s].entry, utable, 5);
			ck_assert_uint_eq(t.walk[s].entry & 0xfff, 0x067);
		}
	}
	t = tr(m, pid, data_start(m), VM_MODE_USER, VM_ACCESS_WRITE);
	assert_ok(t);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	/* Data rw-: user, writable, no-execute where NX exists. */
	assert_bits(t.walk[t.nwalk - 1].entry,
		    VM_PTE_P | VM_PTE_US | VM_PTE_RW | (a->nx ? VM_PTE_NX : 0),
		    VM_PTE_G);
	{
		const char *names[12];
		unsigned n = vm_entry_flags(m, a->levels - 1,
					    t.walk[t.nwalk - 1].entry, names);

		ck_assert_uint_ge(n, 3);
		ck_assert_str_eq(names[0], "P");
		ck_assert_str_eq(names[1], "RW");
		ck_assert_str_eq(names[2], "US");
		if (a->nx)
			ck_assert_str_eq(names[n - 1], "NX");
	}

	/* vmalloc: 4 KiB kernel pages (__PAGE_KERNEL). */
	t = tr(m, pid, vm, VM_MODE_KERNEL, VM_ACCESS_WRITE);
	assert_ok(t);
	ck_assert_uint_eq(t.page_size, VM_PAGE_SIZE);
	if (a->nx)
		assert_flags(m, a->levels - 1, t.walk[t.nwalk - 1].entry,
			     kern4k_nx, 6);
	else
		assert_flags(m, a->levels - 1, t.walk[t.nwalk - 1].entry,
			     kern4k_x, 5);

	/* x86_64: the kernel image mapping uses 2 MiB pages, Global;
	 * text is read-only and executable. */
	if (a->is64) {
		t = tr(m, pid, 0xffffffff81000000ULL, VM_MODE_KERNEL,
		       VM_ACCESS_READ);
		assert_ok(t);
		ck_assert_uint_eq(t.page_size, 2 * VM_MiB);
		ck_assert_str_eq(a->level[t.walk[t.nwalk - 1].level].name,
				 "PMD");
		assert_bits(t.walk[t.nwalk - 1].entry,
			    VM_PTE_P | VM_PTE_PS | VM_PTE_G,
			    VM_PTE_RW | VM_PTE_US | VM_PTE_NX);
		/* vmemmap maps mem_map with 2 MiB pages. */
		t = tr(m, pid, l->vmemmap_base + 0x40, VM_MODE_KERNEL,
		       VM_ACCESS_READ);
		assert_ok(t);
		ck_assert_uint_eq(t.page_size, 2 * VM_MiB);
		ck_assert_uint_eq(t.pa, (l->mem_map_pfn << VM_PAGE_SHIFT) + 0x40);
		ck_assert_int_eq(t.region, VM_REGION_VMEMMAP);
	}
	vm_machine_free(m);
}
END_TEST

/* The flag decoder itself: PS in a directory, PAT in a 4 KiB PTE. */
START_TEST(entry_flag_names)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], 64 * VM_MiB);
	const struct vm_arch *a = tu_arch_of(m);
	unsigned pte = a->levels - 1u;
	static const char *const all4k[] = { "P", "RW", "US", "PWT", "PCD",
					     "A", "D", "G", "PAT" };
	static const char *const none[] = { NULL };

	assert_flags(m, pte, 0x1ffULL, all4k, 9);
	assert_flags(m, pte, 0, none, 0);
	if (a->nx) {
		static const char *const nx[] = { "P", "NX" };

		assert_flags(m, pte, VM_PTE_NX | VM_PTE_P, nx, 2);
	} else {
		static const char *const p[] = { "P" };

		/* A 32-bit entry has no bit 63. */
		assert_flags(m, pte, VM_PTE_P, p, 1);
	}
	ck_assert_str_eq(vm_mode_name(VM_MODE_USER), "user");
	ck_assert_str_eq(vm_access_name(VM_ACCESS_WRITE), "write");
	ck_assert_str_eq(vm_fault_kind_name(VM_FAULT_NOT_PRESENT),
			 "not_present");
	ck_assert_str_eq(vm_fault_kind_name(VM_FAULT_PROTECTION), "protection");
	ck_assert_str_eq(vm_outcome_name(VM_OUTCOME_SIGSEGV), "sigsegv");
	ck_assert_str_eq(vm_outcome_name(VM_OUTCOME_OOPS), "oops");
	ck_assert_int_eq(vm_mode_parse("kernel"), VM_MODE_KERNEL);
	ck_assert_int_eq(vm_mode_parse("root"), -1);
	ck_assert_int_eq(vm_access_parse("exec"), VM_ACCESS_EXEC);
	ck_assert_int_eq(vm_access_parse("run"), -1);
	vm_machine_free(m);
}
END_TEST

/* Every result names the layout region of its address (SPEC 1.7). */
START_TEST(result_names_the_region)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	struct {
		uint64_t va;
		enum vm_region_kind kind;
	} want[12];
	unsigned n = 0;

	want[n].va = 0x1000;
	want[n++].kind = VM_REGION_USER;
	want[n].va = l->page_offset;
	want[n++].kind = VM_REGION_DIRECT_MAP;
	want[n].va = l->vmalloc_start;
	want[n++].kind = VM_REGION_VMALLOC;
	want[n].va = l->vmalloc_end;
	want[n++].kind = VM_REGION_HOLE;
	if (l->arch->is64) {
		want[n].va = l->vmemmap_base;
		want[n++].kind = VM_REGION_VMEMMAP;
		want[n].va = 0xffffffff81000000ULL;
		want[n++].kind = VM_REGION_KERNEL_TEXT;
		want[n].va = 0xffffffffa0000000ULL;
		want[n++].kind = VM_REGION_MODULES;
		want[n].va = 0xffffffffff600000ULL;
		want[n++].kind = VM_REGION_FIXMAP;
		/* cpu_entry_area */
		want[n].va = 0xfffffe0000000000ULL;
		want[n++].kind = VM_REGION_HOLE;
	} else {
		/* The 8 MiB VMALLOC_OFFSET gap. */
		want[n].va = l->high_memory + VM_PAGE_SIZE;
		want[n++].kind = VM_REGION_HOLE;
		want[n].va = l->vmalloc_end - 1;
		want[n++].kind = VM_REGION_VMALLOC;
		want[n].va = 0xffbff000ULL;
		want[n++].kind = VM_REGION_PKMAP;
		want[n].va = 0xfff1d000ULL;
		want[n++].kind = VM_REGION_FIXMAP;
	}
	for (unsigned i = 0; i < n; i++) {
		struct vm_translation t = tr(m, 0, want[i].va, VM_MODE_KERNEL,
					     VM_ACCESS_READ);

		ck_assert_msg(t.region == want[i].kind,
			      "%#llx: region %s, want %s",
			      (unsigned long long)want[i].va,
			      vm_region_name(t.region),
			      vm_region_name(want[i].kind));
	}
	vm_machine_free(m);
}
END_TEST

/* ---- __pa and __va (SPEC 1.7 "Conversions") ------------------------------ */

START_TEST(virt_to_phys_rules)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint64_t vm = tu_vmalloc(m, 2 * VM_PAGE_SIZE, true).u.vmalloc.va;
	struct vm_error e;
	uint64_t pa, va;
	char want[32];
	struct vm_translation t;

	/* The direct map: __pa = va - PAGE_OFFSET, up to high_memory. */
	ck_assert_int_eq(vm_virt_to_phys(m, l->page_offset + 0x1234, &pa, NULL),
			 0);
	ck_assert_uint_eq(pa, 0x1234);
	ck_assert_int_eq(vm_virt_to_phys(m, l->high_memory - 1, &pa, NULL), 0);
	ck_assert_uint_eq(pa, l->lowmem_bytes - 1);
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(vm_virt_to_phys(m, l->high_memory, &pa, &e),
			 VM_ERANGE);
	ck_assert_int_eq(e.code, VM_ERANGE);

	/* A vmalloc address: refused, naming the frame a walk finds. */
	t = tr(m, 0, vm + VM_PAGE_SIZE + 0x80, VM_MODE_KERNEL, VM_ACCESS_READ);
	assert_ok(t);
	memset(&e, 0, sizeof(e));
	pa = 0xdead;
	ck_assert_int_eq(vm_virt_to_phys(m, vm + VM_PAGE_SIZE + 0x80, &pa, &e),
			 VM_ERANGE);
	ck_assert_uint_eq(pa, 0xdead);
	snprintf(want, sizeof(want), "%#llx", (unsigned long long)t.pa);
	ck_assert_msg(strstr(e.detail, want) != NULL,
		      "detail \"%s\" does not name pa %s", e.detail, want);
	ck_assert_msg(strstr(e.detail, "vmalloc") != NULL, "%s", e.detail);

	/* A user address. */
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(vm_virt_to_phys(m, tu_text_start(m), &pa, &e),
			 VM_ERANGE);
	ck_assert_msg(strstr(e.detail, "user") != NULL, "%s", e.detail);

	/* __va: pa below lowmem's end. */
	ck_assert_int_eq(vm_phys_to_virt(m, 0x1234, &va, NULL), 0);
	ck_assert_uint_eq(va, l->page_offset + 0x1234);
	ck_assert_int_eq(vm_phys_to_virt(m, l->lowmem_bytes - 1, &va, NULL), 0);
	ck_assert_uint_eq(va, l->high_memory - 1);
	/* Beyond RAM. */
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(vm_phys_to_virt(m, l->memory, &va, &e), VM_ERANGE);
	ck_assert_int_eq(vm_phys_to_virt(m, l->memory + 5 * VM_GiB, &va, &e),
			 VM_ERANGE);

	/* Round trip over the direct map. */
	for (uint64_t p = 0; p < l->lowmem_bytes; p += 7 * VM_MiB + 0x123) {
		ck_assert_int_eq(vm_phys_to_virt(m, p, &va, NULL), 0);
		ck_assert_int_eq(vm_virt_to_phys(m, va, &pa, NULL), 0);
		ck_assert_uint_eq(pa, p);
	}
	vm_machine_free(m);
}
END_TEST

/* x86_64: [__START_KERNEL_map, +512 MiB) with phys_base 0, within RAM. */
START_TEST(virt_to_phys_kernel_text)
{
	struct vm_machine *m = tu_boot(tu_arches64[_i], 64 * VM_MiB);
	struct vm_error e = { 0 };
	uint64_t pa;

	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffff81000000ULL, &pa, &e), 0);
	ck_assert_uint_eq(pa, 0x1000000);
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffff80000000ULL, &pa, &e), 0);
	ck_assert_uint_eq(pa, 0);
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffff83ffffffULL, &pa, &e), 0);
	ck_assert_uint_eq(pa, 64 * VM_MiB - 1);
	/* Past RAM (64 MiB), though inside the 512 MiB text region. */
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffff84000000ULL, &pa, &e),
			 VM_ERANGE);
	/* Modules, fixmap, holes: not logical addresses. */
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffffa0000000ULL, &pa, &e),
			 VM_ERANGE);
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffffffff600000ULL, &pa, &e),
			 VM_ERANGE);
	ck_assert_int_eq(vm_virt_to_phys(m, 0xffffea0000000000ULL, &pa, &e),
			 VM_ERANGE);
	vm_machine_free(m);
}
END_TEST

/* i386 2 GiB: frames above lowmem are highmem, with no logical address. */
START_TEST(phys_to_virt_refuses_highmem)
{
	static const char *const a32[] = { "i386", "i386-pae" };
	struct vm_machine *m = tu_boot(a32[_i], 2 * VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint64_t lowmem = _i ? 0x379fe000ULL : 0x377fe000ULL;
	struct vm_error e = { 0 };
	uint64_t va, pa;

	ck_assert_uint_eq(l->lowmem_bytes, lowmem);
	ck_assert_int_eq(vm_phys_to_virt(m, lowmem - VM_PAGE_SIZE, &va, &e), 0);
	ck_assert_uint_eq(va, 0xc0000000ULL + lowmem - VM_PAGE_SIZE);
	ck_assert_int_eq(vm_phys_to_virt(m, lowmem, &va, &e), VM_ERANGE);
	ck_assert_msg(strstr(e.detail, "highmem") != NULL, "%s", e.detail);
	ck_assert_int_eq(vm_phys_to_virt(m, VM_GiB, &va, &e), VM_ERANGE);
	ck_assert_int_eq(vm_phys_to_virt(m, 2 * VM_GiB - 1, &va, &e), VM_ERANGE);
	ck_assert_int_eq(vm_phys_to_virt(m, 2 * VM_GiB, &va, &e), VM_ERANGE);
	/* The VMALLOC_OFFSET gap and the pkmap window have no __pa. */
	ck_assert_int_eq(vm_virt_to_phys(m, l->high_memory + VM_PAGE_SIZE, &pa,
					 &e), VM_ERANGE);
	ck_assert_int_eq(vm_virt_to_phys(m, _i ? 0xffa00000ULL : 0xff800000ULL,
					 &pa, &e), VM_ERANGE);
	ck_assert_int_eq(vm_virt_to_phys(m, 0xc0000000ULL - 1, &pa, &e),
			 VM_ERANGE);
	vm_machine_free(m);
}
END_TEST

/* ---- translate is a pure query ------------------------------------------- */

START_TEST(translate_is_pure)
{
	struct vm_machine *m = boot_cpus(tu_arches[_i], VM_GiB, 2);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t vm = tu_vmalloc(m, 5 * VM_PAGE_SIZE, true).u.vmalloc.va;
	uint64_t allocs, bytes, version, digest;
	const uint64_t vas[] = { tu_text_start(m), data_start(m), 0x10000,
				 l->page_offset + 0x777, vm, vm + 5 * VM_PAGE_SIZE,
				 l->vmalloc_end - 1, l->stack_top - 1,
				 l->arch->is64 ? 0x0100000000000000ULL
					       : 0xfffff000ULL };
	unsigned nva = sizeof(vas) / sizeof(vas[0]);
	unsigned oks = 0, faults = 0;

	do_switch(m, 1, pid);
	allocs = vm_machine_host_allocs(m);
	bytes = vm_machine_host_bytes(m);
	version = vm_machine_version(m);
	digest = vm_machine_digest(m);
	for (unsigned i = 0; i < 10000; i++) {
		struct vm_translate_req q = {
			.va = vas[i % nva] + (i / nva) % 64 * 8,
			.mode = (enum vm_mode)(i % 2),
			.access = (enum vm_access)(i % 3),
		};
		struct vm_translation t;

		if (i % 5 == 0) {
			q.has_pid = true;
			q.pid = (i / 5) % 2 ? pid : 0;
		} else {
			q.has_cpu = i % 5 > 2;
			q.cpu = i % 5 == 4;
		}
		ck_assert_int_eq(vm_translate(m, &q, &t, NULL), 0);
		if (t.ok)
			oks++;
		else
			faults++;
	}
	ck_assert_uint_gt(oks, 0);
	ck_assert_uint_gt(faults, 0);
	ck_assert_uint_eq(vm_machine_host_allocs(m), allocs);
	ck_assert_uint_eq(vm_machine_host_bytes(m), bytes);
	ck_assert_uint_eq(vm_machine_version(m), version);
	ck_assert_uint_eq(vm_machine_digest(m), digest);
	vm_machine_free(m);
}
END_TEST

/* Requests that are never valid, or name nothing. */
START_TEST(translate_request_errors)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	struct vm_translate_req q = { .va = 0x1000 };
	struct vm_translation t;
	struct vm_error e;

	q.has_cpu = q.has_pid = true;
	memset(&e, 0, sizeof(e));
	ck_assert_int_eq(vm_translate(m, &q, &t, &e), VM_EINVAL);
	ck_assert_int_eq(e.code, VM_EINVAL);
	q.has_pid = false;
	q.cpu = 1;
	ck_assert_int_eq(vm_translate(m, &q, &t, &e), VM_ENOENT);
	q.has_cpu = false;
	q.has_pid = true;
	q.pid = 7;
	ck_assert_int_eq(vm_translate(m, &q, &t, &e), VM_ENOENT);
	q.has_pid = false;
	q.va = 1ULL << 32;
	ck_assert_int_eq(vm_translate(m, &q, &t, &e),
			 tu_arch_of(m)->is64 ? 0 : VM_ERANGE);
	/* Defaults: CPU 0 (the idle task), user, read. */
	q.va = 0x1000;
	ck_assert_int_eq(vm_translate(m, &q, &t, &e), 0);
	ck_assert(t.via_cpu);
	ck_assert_uint_eq(t.cpu, 0);
	ck_assert_uint_eq(t.pid, 0);
	vm_machine_free(m);
}
END_TEST

/* ---- the idle task has only the kernel half (SPEC 1.5, 1.7) ------------- */

static int count_user_mapping(void *ctx, uint64_t va_start, uint64_t va_end,
			      uint64_t pa_start, uint64_t page_size,
			      uint64_t flags)
{
	uint64_t *task_size = ctx;

	if (va_start < task_size[0])
		task_size[1]++;
	else
		task_size[2]++;
	(void)va_end;
	(void)pa_start;
	(void)page_size;
	(void)flags;
	return 0;
}

START_TEST(idle_task_has_only_the_kernel_half)
{
	struct vm_machine *m = tu_boot(tu_arches[_i], VM_GiB);
	const struct vm_layout *l = vm_machine_layout(m);
	uint32_t pid = tu_create(m, "proc", true);
	uint64_t ctx[3] = { l->task_size, 0, 0 };
	struct vm_translation t;

	/* The process's text, as the idle task sees it. */
	t = tr_cpu(m, 0, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ);
	ck_assert_uint_eq(t.pid, 0);
	ck_assert(!t.ok);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_SIGSEGV);
	ck_assert_int_eq(t.fault.si_code, VM_SEGV_MAPERR);
	t = tr(m, 0, tu_text_start(m), VM_MODE_KERNEL, VM_ACCESS_READ);
	ck_assert_int_eq(t.fault.kind, VM_FAULT_NOT_PRESENT);
	ck_assert_int_eq(t.fault.outcome, VM_OUTCOME_OOPS);
	t = tr(m, 0, l->stack_top - VM_PAGE_SIZE, VM_MODE_KERNEL,
	       VM_ACCESS_READ);
	ck_assert(!t.ok);
	/* The kernel half is there. */
	assert_ok(tr(m, 0, l->page_offset, VM_MODE_KERNEL, VM_ACCESS_READ));
	assert_ok(tr(m, pid, tu_text_start(m), VM_MODE_USER, VM_ACCESS_READ));
	/* Its table maps nothing below TASK_SIZE, and something above. */
	ck_assert_int_eq(vm_pagetable_mappings(m, 0, count_user_mapping, ctx),
			 0);
	ck_assert_uint_eq(ctx[1], 0);
	ck_assert_uint_gt(ctx[2], 0);
	vm_machine_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("translate");
	TCase *tc = tcase_create("translate");

	tcase_add_loop_test(tc, walk_entries_are_ram, 0, 4);
	tcase_add_loop_test(tc, raw_pte_write_changes_translation, 0, 4);
	tcase_add_loop_test(tc, kernel_half_same_in_every_process, 0, 4);
	tcase_add_loop_test(tc, user_half_differs_between_processes, 0, 4);
	tcase_add_loop_test(tc, late_vmalloc_visible_everywhere, 0, 4);
	tcase_add_loop_test(tc, switch_changes_user_half_only, 0, 4);
	tcase_add_loop_test(tc, user_access_to_kernel_page, 0, 4);
	tcase_add_test(tc, spec_example_i386);
	tcase_add_loop_test(tc, linux_error_code_hides_kernel_layout, 0, 4);
	tcase_add_loop_test(tc, non_canonical_is_general_protection, 0, 2);
	tcase_add_loop_test(tc, demand_paging, 0, 4);
	tcase_add_loop_test(tc, write_to_text_is_protection, 0, 4);
	tcase_add_loop_test(tc, exec_of_data_faults_with_nx, 0, 3);
	tcase_add_test(tc, exec_of_data_on_i386_is_a_read);
	tcase_add_loop_test(tc, kernel_write_to_text_faults, 0, 2);
	tcase_add_loop_test(tc, kernel_reads_user_pages, 0, 4);
	tcase_add_loop_test(tc, page_sizes_and_flags, 0, 4);
	tcase_add_loop_test(tc, entry_flag_names, 0, 4);
	tcase_add_loop_test(tc, result_names_the_region, 0, 4);
	tcase_add_loop_test(tc, virt_to_phys_rules, 0, 4);
	tcase_add_loop_test(tc, virt_to_phys_kernel_text, 0, 2);
	tcase_add_loop_test(tc, phys_to_virt_refuses_highmem, 0, 2);
	tcase_add_loop_test(tc, translate_is_pure, 0, 4);
	tcase_add_loop_test(tc, translate_request_errors, 0, 4);
	tcase_add_loop_test(tc, idle_task_has_only_the_kernel_half, 0, 4);
	suite_add_tcase(s, tc);
	return tu_run(s);
}
