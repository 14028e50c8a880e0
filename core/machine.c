/* machine.c - configuration, boot, lifecycle; see machine.h. */
#include <stdlib.h>
#include <string.h>

#include "enc.h"
#include "gfp.h"
#include "machine_int.h"
#include "pagetable.h"
#include "state.h"

void vm_config_default(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->arch = VM_ARCH_X86_64;
	c->memory = VM_DEFAULT_MEMORY;
	c->cpus = 1;
	c->churn = VM_DEFAULT_CHURN;
	c->vmsplit = VM_VMSPLIT_3G_1G;
}

int vm_config_check(const struct vm_config *c, struct vm_error *err)
{
	const struct vm_arch *a;
	uint64_t limit;

	if ((unsigned)c->arch >= VM_ARCH_COUNT)
		return vm_fail(err, VM_EINVAL, "arch: unknown architecture");
	a = vm_arch_get(c->arch);
	limit = a->max_memory;
	if (a->is64) {
		uint64_t service = c->max_memory ? c->max_memory
						 : VM_DEFAULT_MAX_MEMORY;
		if (service < limit)
			limit = service;
	}
	if (c->memory % VM_MiB)
		return vm_fail(err, VM_EINVAL,
			       "memory: must be a multiple of 1 MiB");
	if (c->memory < VM_MIN_MEMORY || c->memory > limit)
		return vm_fail(err, VM_EINVAL,
			       "memory: must be between 32 MiB and %llu MiB "
			       "on %s", (unsigned long long)(limit / VM_MiB),
			       a->name);
	if (c->cpus < 1 || c->cpus > VM_MAX_CPUS)
		return vm_fail(err, VM_ERANGE, "cpus: must be 1 to %d",
			       VM_MAX_CPUS);
	if (c->churn > VM_MAX_CHURN)
		return vm_fail(err, VM_ERANGE, "churn: at most %u pages",
			       VM_MAX_CHURN);
	if ((unsigned)c->vmsplit > VM_VMSPLIT_1G_3G)
		return vm_fail(err, VM_EINVAL, "vmsplit: unknown split");
	if (a->is64 && c->vmsplit != VM_VMSPLIT_3G_1G)
		return vm_fail(err, VM_EINVAL,
			       "vmsplit: only i386 and i386-pae take a split");
	if (c->kaslr && c->arch != VM_ARCH_X86_64)
		return vm_fail(err, VM_EINVAL, "kaslr: x86_64 only");
	return 0;
}

/* ---- frame allocation for the modules ---- */

static void notify(struct vm_machine *m, int alloc, uint64_t pfn,
		   unsigned order, const struct vm_owner *o)
{
	if (m->observer)
		m->observer(m->observer_ctx, alloc, pfn, order, o);
}

int m_alloc(struct vm_machine *m, unsigned order, uint32_t gfp,
	    const struct vm_owner *owner, uint64_t *pfn)
{
	enum vm_zone_id zones[VM_ZONE_COUNT];
	unsigned n = vm_gfp_zonelist(gfp, &m->layout, zones);
	int rc = buddy_alloc(m->buddy, order, zones, n, owner, pfn);

	if (rc == 0)
		notify(m, 1, *pfn, order, owner);
	return rc;
}

void m_free(struct vm_machine *m, uint64_t pfn, unsigned order)
{
	struct vm_owner o;

	buddy_find(m->buddy, pfn, NULL, NULL, &o);
	buddy_free(m->buddy, pfn, order);
	notify(m, 0, pfn, order, &o);
}

void m_set_owner(struct vm_machine *m, uint64_t pfn,
		 const struct vm_owner *owner)
{
	buddy_set_owner(m->buddy, pfn, owner);
}

/* ---- lifecycle ---- */

/* Initialises the parts every machine has, empty, in place (m->hm and the
 * observer are left as they are); boot or a decode fills them. */
void m_init(struct vm_machine *m, const struct vm_config *c)
{
	m->config = *c;
	vm_rng_init(&m->rng, c->seed);
	m->buddy = NULL;
	phys_init(&m->phys, &m->hm);
	hmap_init(&m->slabs, sizeof(struct vm_slab));
	slab_init(m);
	m->next_pid = 1;
}

struct vm_machine *m_new(const struct vm_config *c)
{
	struct vm_hostmem hm = { 0, 0 };
	struct vm_machine *m = hm_zalloc(&hm, sizeof(*m));

	m->hm = hm;
	m_init(m, c);
	return m;
}

static void reserve_boot(struct vm_machine *m)
{
	const struct vm_layout *l = &m->layout;
	struct vm_owner o = vm_owner_make(VM_OWNER_RESERVED, 0, 0);
	static const uint64_t sect[] = { VM_KIMAGE_START, VM_KIMAGE_TEXT_END,
					 VM_KIMAGE_RODATA_END, VM_KIMAGE_END };

	buddy_reserve(m->buddy, 0, VM_FIRMWARE_END >> VM_PAGE_SHIFT, o);
	for (unsigned i = 0; i < 3; i++) {
		o = vm_owner_make(VM_OWNER_KERNEL_IMAGE, 0, 0);
		o.sub = (uint8_t)i;
		buddy_reserve(m->buddy, sect[i] >> VM_PAGE_SHIFT,
			      sect[i + 1] >> VM_PAGE_SHIFT, o);
	}
	buddy_reserve(m->buddy, l->mem_map_pfn,
		      l->mem_map_pfn + l->mem_map_pages,
		      vm_owner_make(VM_OWNER_MEM_MAP, 0, 0));
}

/*
 * The boot churn (SPEC 1.3): in every populated zone, min(churn, a quarter
 * of its free pages) order-0 allocations, then a seeded shuffle
 * (Fisher-Yates from the last element) and a free of the first half in
 * that order; the rest stay owned by boot.
 */
static void boot_churn(struct vm_machine *m)
{
	struct vm_owner boot = vm_owner_make(VM_OWNER_BOOT, 0, 0);

	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct vm_zone_info zi;
		uint64_t n, *pages;

		if (!vm_layout_zone_populated(&m->layout, (enum vm_zone_id)z))
			continue;
		buddy_zone_info(m->buddy, (enum vm_zone_id)z, &zi);
		n = zi.free_pages / 4;
		if (n > m->config.churn)
			n = m->config.churn;
		if (n == 0)
			continue;
		pages = malloc(n * sizeof(*pages));
		if (!pages)
			abort();
		for (uint64_t i = 0; i < n; i++)
			buddy_alloc_in_zone(m->buddy, (enum vm_zone_id)z, &boot,
					    &pages[i]);
		for (uint64_t i = n - 1; i > 0; i--) {
			uint64_t j = vm_rng_below(&m->rng, i + 1), t = pages[i];

			pages[i] = pages[j];
			pages[j] = t;
		}
		for (uint64_t i = 0; i < n / 2; i++)
			buddy_free(m->buddy, pages[i], 0);
		free(pages);
	}
}

int vm_machine_create(const struct vm_config *c, struct vm_machine **out,
		      struct vm_error *err)
{
	struct vm_machine *m;
	int rc = vm_config_check(c, err);

	if (rc)
		return rc;
	m = m_new(c);
	vm_layout_init(&m->layout, vm_arch_get(c->arch), c->memory,
		       c->vmsplit, c->kaslr, &m->rng);
	m->buddy = buddy_create(&m->layout, &m->hm);
	reserve_boot(m);
	buddy_boot(m->buddy);
	rc = pt_build_kernel(m);
	if (rc) {
		vm_machine_free(m);
		return vm_fail(err, VM_ENOMEM,
			       "memory: too small for the kernel's tables");
	}
	for (uint32_t i = 0; i < c->cpus; i++) {
		m->cpus[i].pid = 0;
		m->cpus[i].cr3 = m->swapper_pfn << VM_PAGE_SHIFT;
	}
	boot_churn(m);
	*out = m;
	return 0;
}

void m_release(struct vm_machine *m)
{
	for (uint32_t i = 0; i < m->nprocs; i++)
		hm_free(&m->hm, m->procs[i].mm.vmas,
			m->procs[i].mm.capvmas * sizeof(struct vm_vma));
	hm_free(&m->hm, m->procs, m->capprocs * sizeof(*m->procs));
	m->procs = NULL;
	m->nprocs = m->capprocs = 0;
	vmalloc_release(m);
	slab_release(m);
	phys_release(&m->phys);
	buddy_free_all(m->buddy);
	m->buddy = NULL;
}

void vm_machine_free(struct vm_machine *m)
{
	struct vm_hostmem hm;

	if (!m)
		return;
	m_release(m);
	hm = m->hm;
	hm_free(&hm, m, sizeof(*m));
}

struct vm_machine *vm_machine_clone(const struct vm_machine *m)
{
	struct vm_enc e;
	struct vm_machine *c = NULL;

	enc_init(&e);
	vm_state_encode(m, &e);
	if (vm_state_decode(e.buf, e.len, &c, NULL) != 0)
		abort(); /* a machine's own encoding always decodes */
	enc_release(&e);
	return c;
}

const struct vm_config *vm_machine_config(const struct vm_machine *m)
{
	return &m->config;
}

const struct vm_layout *vm_machine_layout(const struct vm_machine *m)
{
	return &m->layout;
}

uint64_t vm_machine_version(const struct vm_machine *m)
{
	return m->version;
}

size_t vm_machine_host_bytes(const struct vm_machine *m)
{
	return m->hm.bytes;
}

uint64_t vm_machine_host_allocs(const struct vm_machine *m)
{
	return m->hm.allocs;
}

uint32_t vm_machine_nprocesses(const struct vm_machine *m)
{
	return m->nprocs;
}

uint64_t vm_machine_frames_in_use(const struct vm_machine *m)
{
	return buddy_allocated_pages(m->buddy);
}

int vm_machine_check(const struct vm_machine *m, struct vm_error *err)
{
	int rc = buddy_check(m->buddy, err);

	if (!rc)
		rc = pagetable_check(m, err);
	if (!rc)
		rc = process_check(m, err);
	if (!rc)
		rc = slab_check(m, err);
	if (!rc)
		rc = vmalloc_check(m, err);
	return rc;
}

bool vm_machine_zone_populated(const struct vm_machine *m, enum vm_zone_id z)
{
	return vm_layout_zone_populated(&m->layout, z);
}

void vm_machine_zone_info(const struct vm_machine *m, enum vm_zone_id z,
			  struct vm_zone_info *info)
{
	buddy_zone_info(m->buddy, z, info);
}

int vm_machine_frames(const struct vm_machine *m, uint64_t start_pfn,
		      uint64_t end_pfn, vm_frame_range_fn fn, void *ctx)
{
	return buddy_ranges(m->buddy, start_pfn, end_pfn, fn, ctx);
}

struct vm_owner vm_machine_owner(const struct vm_machine *m, uint64_t pfn)
{
	return buddy_owner(m->buddy, pfn);
}
