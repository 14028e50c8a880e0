/*
 * translate.h - what the MMU does with a virtual address, and what Linux
 * does next (SPEC 1.7); and the kernel's __pa/__va rules.
 *
 * A translation is a pure query: it reads the machine through a const
 * pointer, allocates nothing and fills a caller-owned result.
 */
#ifndef VM_TRANSLATE_H
#define VM_TRANSLATE_H

#include <stdbool.h>
#include <stdint.h>

#include "arch.h"
#include "error.h"
#include "layout.h"

struct vm_machine;

enum vm_mode { VM_MODE_USER, VM_MODE_KERNEL };
enum vm_access { VM_ACCESS_READ, VM_ACCESS_WRITE, VM_ACCESS_EXEC };

enum vm_fault_kind {
	VM_FAULT_NONE,
	VM_FAULT_NOT_PRESENT,       /* #PF, P clear at some level */
	VM_FAULT_PROTECTION,        /* #PF, the entries forbid the access */
	VM_FAULT_GENERAL_PROTECTION /* #GP: non-canonical address */
};

enum vm_outcome {
	VM_OUTCOME_NONE,
	VM_OUTCOME_SIGSEGV,         /* user mode: a signal */
	VM_OUTCOME_DEMAND_PAGING,   /* a region allows it: Linux maps a page */
	VM_OUTCOME_OOPS,            /* kernel mode, no region: an oops */
};

enum vm_si_code {
	VM_SI_NONE,
	VM_SEGV_MAPERR,             /* no region covers the address */
	VM_SEGV_ACCERR,             /* a region covers it but forbids it */
	VM_SI_KERNEL,               /* #GP: force_sig(SIGSEGV) */
};

/* API names: "user", "write", "not_present", "sigsegv", "SEGV_MAPERR". */
const char *vm_mode_name(enum vm_mode m);
const char *vm_access_name(enum vm_access a);
const char *vm_fault_kind_name(enum vm_fault_kind k);
const char *vm_outcome_name(enum vm_outcome o);
const char *vm_si_code_name(enum vm_si_code c);
int vm_mode_parse(const char *s);    /* -1 when unknown */
int vm_access_parse(const char *s);  /* -1 when unknown */

struct vm_translate_req {
	uint64_t va;
	bool has_cpu;     /* default: CPU 0 */
	uint32_t cpu;
	bool has_pid;     /* exclusive with has_cpu */
	uint32_t pid;
	enum vm_mode mode;
	enum vm_access access;
};

#define VM_REASON_MAX 192

struct vm_translation {
	uint64_t va;
	uint32_t pid;            /* the task whose tables were walked */
	bool via_cpu;
	uint32_t cpu;
	enum vm_mode mode;
	enum vm_access access;
	bool ok;
	uint64_t pa;             /* when ok */
	enum vm_region_kind region;
	uint64_t page_size;      /* 0: no leaf reached */
	struct {
		enum vm_fault_kind kind;
		uint32_t error_code;
		uint32_t linux_error_code;
		enum vm_outcome outcome;
		enum vm_si_code si_code;   /* VM_SI_NONE: no signal */
		int level;                 /* arch level index, -1: none */
		char reason[VM_REASON_MAX];
	} fault;
	unsigned nwalk;          /* entries read, top first */
	struct {
		uint8_t level;
		uint16_t index;
		uint64_t entry_pa;
		uint64_t entry;
	} walk[VM_MAX_LEVELS];
};

/*
 * Translates. Fails only for a request that is never valid (VM_EINVAL: a
 * va beyond a 32-bit address space, both cpu and pid) or names nothing
 * (VM_ENOENT: no such CPU or pid); a fault is a result.
 */
int vm_translate(const struct vm_machine *m, const struct vm_translate_req *req,
		 struct vm_translation *out, struct vm_error *err);

/* Names the flags set in a raw entry at arch level `level`, in the order
 * P RW US PWT PCD A D PS G PAT NX; returns the count written to names. */
unsigned vm_entry_flags(const struct vm_machine *m, unsigned level,
			uint64_t entry, const char *names[12]);

/*
 * __pa (virt_to_phys): [PAGE_OFFSET, high_memory), and on 64-bit
 * [__START_KERNEL_map, +512 MiB) with phys_base 0, when the result is RAM.
 * Anything else is VM_ERANGE with the reason (a vmalloc address names the
 * frame a walk finds, as vmalloc_to_pfn would).
 */
int vm_virt_to_phys(const struct vm_machine *m, uint64_t va, uint64_t *pa,
		    struct vm_error *err);

/* __va (phys_to_virt): pa below lowmem's end; VM_ERANGE otherwise. */
int vm_phys_to_virt(const struct vm_machine *m, uint64_t pa, uint64_t *va,
		    struct vm_error *err);

#endif
