/*
 * machine.h - a simulated machine: creation, lifecycle and identity.
 *
 * A machine is a function of its creation parameters (vm_config, seed
 * included) and the ordered operations applied to it (op.h): no wall
 * clock, host address or hash order reaches its state. Creation boots it:
 * zones, reservations, the kernel's reference page table, the boot churn.
 *
 * Concurrency: a machine is not thread-safe. Queries take a const machine
 * and never change it, so any number may run at once; a mutation needs the
 * machine to itself (the service holds a per-machine read/write lock).
 *
 * Everything a machine holds on the host is counted (vm_machine_host_bytes)
 * and grows with what is mapped and allocated, never with simulated RAM.
 */
#ifndef VM_MACHINE_H
#define VM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "error.h"
#include "layout.h"

/*
 * model_version names the behaviour of the model: any change that would
 * alter an answer or a digest for the same operations bumps it (SPEC 1.9).
 */
#define VM_MODEL_VERSION 1

#define VM_MAX_CPUS 64
#define VM_MIN_MEMORY (32 * VM_MiB)
#define VM_DEFAULT_MEMORY VM_GiB
#define VM_DEFAULT_CHURN 1024
#define VM_MAX_CHURN (1u << 20)
/* The default service limit on x86_64 RAM (SPEC 1.3). */
#define VM_DEFAULT_MAX_MEMORY (64 * VM_GiB)

struct vm_config {
	enum vm_arch_id arch;     /* default VM_ARCH_X86_64 */
	uint64_t memory;          /* bytes, multiple of 1 MiB, >= 32 MiB */
	uint32_t cpus;            /* 1..64 */
	uint64_t seed;
	uint64_t churn;           /* boot churn pages per zone (SPEC 1.3) */
	enum vm_vmsplit vmsplit;  /* 32-bit only */
	bool kaslr;               /* x86_64 only */
	uint64_t max_memory;      /* service limit for 64-bit RAM; 0: default */
};

struct vm_machine;

/* The defaults of SPEC 2.2: x86_64, 1 GiB, 1 CPU, seed 0, churn 1024. */
void vm_config_default(struct vm_config *c);

/* Validates c; VM_EINVAL with a detail naming the field. */
int vm_config_check(const struct vm_config *c, struct vm_error *err);

/* Boots a machine; *out is the caller's, freed with vm_machine_free. */
int vm_machine_create(const struct vm_config *c, struct vm_machine **out,
		      struct vm_error *err);

/* Frees a machine; accepts NULL. */
void vm_machine_free(struct vm_machine *m);

/* A new machine with the same state (and digest and version). */
struct vm_machine *vm_machine_clone(const struct vm_machine *m);

const struct vm_config *vm_machine_config(const struct vm_machine *m);
const struct vm_layout *vm_machine_layout(const struct vm_machine *m);

/* Operations applied since creation. */
uint64_t vm_machine_version(const struct vm_machine *m);

/* A 64-bit hash of the canonical state (state.h). */
uint64_t vm_machine_digest(const struct vm_machine *m);

/* Host bytes held, and host allocation calls ever made, by this machine. */
size_t vm_machine_host_bytes(const struct vm_machine *m);
uint64_t vm_machine_host_allocs(const struct vm_machine *m);

/* Live processes (pid 0, the idle task, not counted). */
uint32_t vm_machine_nprocesses(const struct vm_machine *m);

/* Frames in use (allocated, reservations excluded). */
uint64_t vm_machine_frames_in_use(const struct vm_machine *m);

/*
 * Zones (as /proc/buddyinfo): whether zone z has frames here, and its free
 * blocks per order. Frames: ownership as ranges (buddy.h's vm_range_fn),
 * adjacent frames with the same owner merged, in [start_pfn, end_pfn).
 */
bool vm_machine_zone_populated(const struct vm_machine *m, enum vm_zone_id z);
struct vm_zone_info;
void vm_machine_zone_info(const struct vm_machine *m, enum vm_zone_id z,
			  struct vm_zone_info *info);
struct vm_owner;
typedef int (*vm_frame_range_fn)(void *ctx, uint64_t start_pfn,
				 uint64_t end_pfn, const struct vm_owner *owner);
int vm_machine_frames(const struct vm_machine *m, uint64_t start_pfn,
		      uint64_t end_pfn, vm_frame_range_fn fn, void *ctx);
/* The owner of one frame. */
struct vm_owner vm_machine_owner(const struct vm_machine *m, uint64_t pfn);

/*
 * Runs every invariant checker (SPEC 1.4); 0, or VM_ECORRUPT with the
 * first broken invariant in err.
 */
int vm_machine_check(const struct vm_machine *m, struct vm_error *err);

#endif
