/*
 * process.h - processes, their address spaces, and the CPUs that run them.
 *
 * A process has a pid (1, 2, ... never reused), a name, a kernel stack, and
 * an address space (Linux's mm): a top-level page table whose kernel half
 * is the reference table's, and regions (VMAs) sorted by address. Regions
 * are created by process creation (text, data, heap, stack: SPEC 1.5), by
 * mmap, and by brk; munmap and brk remove or split them, freeing their
 * frames and any page table left empty.
 *
 * Each CPU has a current task and a CR3; pid 0 is the idle task, which runs
 * on the reference table and has no user space.
 *
 * The mutations are operations (op.h); this header has the queries.
 */
#ifndef VM_PROCESS_H
#define VM_PROCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

struct vm_machine;

/*
 * Limits of one machine (docs/limits.md). Mappings and processes cost the
 * host memory but little or no simulated RAM (a mapping made with
 * populate false costs none), so nothing else would bound them. They are
 * constants of the model, not options: a refusal depends only on the
 * machine's state and the operation, so a machine replays the same way on
 * any daemon.
 *
 * VM_MAX_MAPPINGS: regions (VMAs) in all the machine's processes. Linux's
 * vm.max_map_count (65,530) bounds each process; the model bounds the
 * machine, and lower, because each mutation of a machine costs time in
 * proportion to its state (its digest). An mmap, brk or munmap that would
 * go beyond it is VM_ENOMEM, as Linux's mmap and munmap answer ENOMEM at
 * vm.max_map_count.
 * VM_MAX_PROCESSES: live processes (pid 0 not counted); creating one more
 * is VM_ENPROC (fork's EAGAIN when RLIMIT_NPROC is reached).
 */
#define VM_MAX_MAPPINGS 8192u
#define VM_MAX_PROCESSES 1024u

/* Region permission bits; the API spells them "rwx" ("r-x", "rw-"). */
#define VM_PROT_READ 1u
#define VM_PROT_WRITE 2u
#define VM_PROT_EXEC 4u

enum vm_vma_kind {
	VM_VMA_TEXT,
	VM_VMA_DATA,
	VM_VMA_HEAP,
	VM_VMA_STACK,
	VM_VMA_MMAP,
};

/* "text", "data", "heap", "stack", "mmap". */
const char *vm_vma_kind_name(enum vm_vma_kind kind);

/* Formats prot as "rwx" with '-' for missing bits into buf[4]. */
char *vm_prot_format(unsigned prot, char buf[4]);

/* Parses "rwx"-style text (exactly 3 characters); -1 when malformed. */
int vm_prot_parse(const char *text);

struct vm_region_info {
	uint64_t start, end;       /* end exclusive */
	unsigned prot;
	enum vm_vma_kind kind;
};

struct vm_process_info {
	uint32_t pid;
	const char *name;          /* borrowed from the machine */
	uint64_t pgd_pa;           /* top-level table (PAE: the PDPT) */
	uint64_t kstack;           /* x86_64: va of the vmalloc'd stack;
				      i386: pa of the order-1 block */
	uint64_t brk_start, brk;
	uint32_t nregions;
};

/* Processes in pid order: count, and the pid at index i. */
uint32_t vm_process_count(const struct vm_machine *m);
uint32_t vm_process_pid_at(const struct vm_machine *m, uint32_t i);

/* One process; VM_ENOENT when there is none with that pid. */
int vm_process_get(const struct vm_machine *m, uint32_t pid,
		   struct vm_process_info *out);

/* Region i (0 .. nregions-1) of a process, in address order. */
int vm_process_region(const struct vm_machine *m, uint32_t pid, uint32_t i,
		      struct vm_region_info *out);

/*
 * The mappings of a process's page table (pid 0: the reference table),
 * user and kernel half, as runs where va and pa advance together with the
 * same page size and flags. flags are the leaf entry without its address.
 * fn returns non-zero to stop. VM_ENOENT for an unknown pid.
 */
typedef int (*vm_mapping_fn)(void *ctx, uint64_t va_start, uint64_t va_end,
			     uint64_t pa_start, uint64_t page_size,
			     uint64_t flags);
int vm_pagetable_mappings(const struct vm_machine *m, uint32_t pid,
			  vm_mapping_fn fn, void *ctx);

/*
 * The page-table frames a process owns (pid 0: the kernel's), in ascending
 * physical order, as pfns. fn returns non-zero to stop.
 */
typedef int (*vm_pfn_fn)(void *ctx, uint64_t pfn);
int vm_pagetable_frames(const struct vm_machine *m, uint32_t pid,
			vm_pfn_fn fn, void *ctx);

/* CPU n's current pid and CR3; VM_ENOENT for n >= cpus. */
int vm_cpu_get(const struct vm_machine *m, uint32_t n, uint32_t *pid,
	       uint64_t *cr3);

#endif
