/*
 * machine_int.h - the inside of a machine, shared by the core/ modules.
 *
 * Not part of core's interface: only the .c files of core/ include it. Each module owns
 * its part (buddy: frames; phys: table contents; pagetable: entries;
 * process: tasks and address spaces; slab; vmalloc) and the machine ties
 * them together. Every pointer inside a machine points to memory counted
 * in m->hm, and nothing in the state refers to a host address: links are
 * pfns, pids and virtual addresses, so the state encodes canonically.
 */
#ifndef VM_MACHINE_INT_H
#define VM_MACHINE_INT_H

#include <stdatomic.h>

#include "buddy.h"
#include "hmap.h"
#include "layout.h"
#include "machine.h"
#include "phys.h"
#include "process.h"
#include "rng.h"

#define VM_NAME_MAX 32
#define VM_NONE32 UINT32_MAX

struct vm_vma {
	uint64_t start, end;   /* page aligned, end exclusive */
	uint8_t prot;          /* VM_PROT_* */
	uint8_t kind;          /* enum vm_vma_kind */
};

/* An address space (Linux's mm_struct); a process owns one. */
struct vm_mm {
	uint64_t pgd_pfn;      /* top-level table (the PDPT on PAE) */
	struct vm_vma *vmas;   /* sorted by start, non-overlapping */
	uint32_t nvmas, capvmas;
	uint64_t brk_start, brk;
	bool populate;         /* back new brk pages at once */
};

struct vm_process {
	uint32_t pid;
	char name[VM_NAME_MAX];
	struct vm_mm mm;
	uint64_t kstack;       /* i386: first pfn of the order-1 block;
				  x86_64: va of the vmalloc area */
};

struct vm_cpu {
	uint32_t pid;          /* current task; 0 is the idle task */
	uint64_t cr3;          /* physical address of the loaded table */
};

/* The kmalloc caches: kmalloc-8 .. 8k, then dma-kmalloc-8 .. 8k. */
#define VM_KMALLOC_CLASSES 13
#define VM_NCACHES (2 * VM_KMALLOC_CLASSES)

struct vm_cache {
	uint64_t partial;      /* first slab pfn of the partial list, MRU
				  first; VM_NONE64 when empty */
	uint64_t slabs;        /* slabs allocated */
	uint64_t active;       /* objects in use */
};

#define VM_NONE64 UINT64_MAX

/* One slab; keyed by its first pfn in m->slabs. */
struct vm_slab {
	uint64_t used[8];      /* bitmap of objects in use (<= 512) */
	uint64_t next, prev;   /* partial list links, VM_NONE64 at ends */
	uint16_t inuse;
	uint8_t cache;
	uint8_t on_partial;
};

enum vm_area_kind { VM_AREA_VMALLOC, VM_AREA_STACK };

/* A vmalloc area; m->areas is sorted by va. */
struct vm_area {
	uint64_t va;
	uint32_t npages;
	uint8_t guard;
	uint8_t kind;          /* enum vm_area_kind */
	uint32_t pid;          /* VM_AREA_STACK: the owner */
	uint32_t *pfns;        /* npages frames, in page order */
};

struct vm_machine {
	struct vm_hostmem hm;
	struct vm_config config;
	struct vm_layout layout;
	struct vm_rng rng;
	struct vm_buddy *buddy;
	struct vm_phys phys;
	uint64_t version;
	/*
	 * The digest of this version, computed by the first reader that asks
	 * (digest_for = version + 1, 0 = none). Only vm_machine_apply changes
	 * a machine and it always changes the version, or puts the state back
	 * exactly; readers, which may run in parallel, write the same value.
	 */
	_Atomic uint64_t digest_cache, digest_for;

	uint64_t swapper_pfn;           /* the reference table's top */
	uint64_t kernel_pmd_pfn[4];     /* PAE: the shared kernel PMDs */

	struct vm_process *procs;       /* sorted by pid */
	uint32_t nprocs, capprocs;
	uint32_t next_pid;

	struct vm_cpu cpus[VM_MAX_CPUS];

	struct vm_cache caches[VM_NCACHES];
	struct vm_hmap slabs;           /* pfn -> struct vm_slab */

	struct vm_area *areas;
	uint32_t nareas, capareas;

	/* Test hook: called for each frame allocation and free. */
	void (*observer)(void *ctx, int alloc, uint64_t pfn, unsigned order,
			 const struct vm_owner *owner);
	void *observer_ctx;
};

/*
 * Forgets the cached digest: for the test hooks (testing.c), the only
 * writers of state outside vm_machine_apply.
 */
static inline void m_state_changed(struct vm_machine *m)
{
	atomic_store_explicit(&m->digest_for, 0, memory_order_release);
}

/* ---- lifecycle (machine.c) ---- */
/* A machine with its parts initialised and empty (no layout, no buddy). */
struct vm_machine *m_new(const struct vm_config *c);
/* The same, in place, leaving m->hm and the observer alone. */
void m_init(struct vm_machine *m, const struct vm_config *c);
/* Frees every part of a machine but the struct itself. */
void m_release(struct vm_machine *m);
/* Puts back the state of an encoding of this same machine (state.c). */
int m_restore(struct vm_machine *m, const uint8_t *buf, size_t len);

/* ---- frames (machine.c): buddy calls that also notify the observer ---- */
int m_alloc(struct vm_machine *m, unsigned order, uint32_t gfp,
	    const struct vm_owner *owner, uint64_t *pfn);
void m_free(struct vm_machine *m, uint64_t pfn, unsigned order);
/* Sets the owner of an allocated block, e.g. a user page's mapcount. */
void m_set_owner(struct vm_machine *m, uint64_t pfn,
		 const struct vm_owner *owner);

/* ---- processes and CPUs (process.c) ---- */
struct vm_process *m_process(const struct vm_machine *m, uint32_t pid);
/* The top-level table of pid (0: the reference table), or VM_NONE64. */
uint64_t m_top_table(const struct vm_machine *m, uint32_t pid);
struct vm_op;
struct vm_op_result;
int proc_create(struct vm_machine *m, const struct vm_op *op, uint32_t *pid,
		struct vm_error *err);
int proc_exit(struct vm_machine *m, uint32_t pid, struct vm_error *err);
int proc_mmap(struct vm_machine *m, const struct vm_op *op, uint64_t *start,
	      struct vm_error *err);
int proc_munmap(struct vm_machine *m, const struct vm_op *op,
		struct vm_error *err);
int proc_brk(struct vm_machine *m, const struct vm_op *op,
	     struct vm_error *err);
int cpu_switch(struct vm_machine *m, const struct vm_op *op,
	       struct vm_op_result *res, struct vm_error *err);
/* The VMA containing va, or NULL. */
const struct vm_vma *mm_find_vma(const struct vm_mm *mm, uint64_t va);

/* ---- slab (slab.c) ---- */
void slab_init(struct vm_machine *m);
void slab_release(struct vm_machine *m);
int slab_kmalloc(struct vm_machine *m, const struct vm_op *op,
		 struct vm_op_result *res, struct vm_error *err);
int slab_kfree(struct vm_machine *m, uint64_t va, struct vm_error *err);
/* The live kmalloc or alloc_pages allocation [start, start + size) that
 * holds pa; false when there is none. */
bool slab_object_at(const struct vm_machine *m, uint64_t pa, uint64_t *start,
		    uint64_t *size);
const char *slab_cache_name(unsigned cache);
struct vm_enc;
struct vm_dec;
void slab_encode(const struct vm_machine *m, struct vm_enc *e);
int slab_decode(struct vm_machine *m, struct vm_dec *d);
/* Object size, objects per slab and pages per slab of cache i. */
uint32_t slab_object_size(unsigned cache);
uint32_t slab_objects_per_slab(unsigned cache);
uint32_t slab_pages_per_slab(unsigned cache);

/* ---- vmalloc (vmalloc.c) ---- */
/*
 * Maps npages fresh frames at a first-fit area of the vmalloc region,
 * aligned to align bytes, followed by a guard page unless !guard.
 */
int vmalloc_area(struct vm_machine *m, uint64_t npages, bool guard,
		 uint64_t align, enum vm_area_kind kind, uint32_t pid,
		 uint64_t *va, struct vm_error *err);
/* Unmaps and frees the area starting at va (index i in m->areas). */
void vfree_area(struct vm_machine *m, uint32_t i);
/* The index of the area containing va (guard page included), or -1. */
int vmalloc_find(const struct vm_machine *m, uint64_t va);
int vm_vmalloc(struct vm_machine *m, const struct vm_op *op,
	       struct vm_op_result *res, struct vm_error *err);
int vm_vfree(struct vm_machine *m, uint64_t va, struct vm_error *err);
void vmalloc_encode(const struct vm_machine *m, struct vm_enc *e);
int vmalloc_decode(struct vm_machine *m, struct vm_dec *d);
void vmalloc_release(struct vm_machine *m);

/* ---- checks ---- */
int pagetable_check(const struct vm_machine *m, struct vm_error *err);
int process_check(const struct vm_machine *m, struct vm_error *err);
int slab_check(const struct vm_machine *m, struct vm_error *err);
int vmalloc_check(const struct vm_machine *m, struct vm_error *err);

#endif
