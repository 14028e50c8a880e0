/* state.c - canonical encoding and digest; see state.h. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "enc.h"
#include "machine_int.h"
#include "le.h"
#include "pagetable.h"
#include "state.h"

static const char magic[8] = { 'V', 'M', 'L', 'A', 'B', 'S', 'T', '1' };
#define HEADER_BYTES 24

/* ---- XXH64 (Yann Collet's specification, xxhash.com) ---- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}


static inline uint64_t round64(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t merge64(uint64_t acc, uint64_t v)
{
	acc ^= round64(0, v);
	return acc * P1 + P4;
}

uint64_t vm_xxh64(const void *buf, size_t len, uint64_t seed)
{
	const uint8_t *p = buf, *end = p + len;
	uint64_t h;

	if (len >= 32) {
		uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed,
			 v4 = seed - P1;

		do {
			v1 = round64(v1, vm_le64(p));
			v2 = round64(v2, vm_le64(p + 8));
			v3 = round64(v3, vm_le64(p + 16));
			v4 = round64(v4, vm_le64(p + 24));
			p += 32;
		} while (p <= end - 32);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) +
		    rotl64(v4, 18);
		h = merge64(h, v1);
		h = merge64(h, v2);
		h = merge64(h, v3);
		h = merge64(h, v4);
	} else {
		h = seed + P5;
	}
	h += (uint64_t)len;
	for (; p + 8 <= end; p += 8)
		h = rotl64(h ^ round64(0, vm_le64(p)), 27) * P1 + P4;
	if (p + 4 <= end) {
		h = rotl64(h ^ ((uint64_t)vm_le32(p) * P1), 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++)
		h = rotl64(h ^ (*p * P5), 11) * P1;
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

/* ---- encoding ---- */

static void encode_phys(const struct vm_machine *m, struct vm_enc *e)
{
	size_t n = phys_count(&m->phys);
	uint64_t *pfns = malloc((n + 1) * sizeof(*pfns));

	if (!pfns)
		abort();
	phys_pfns_sorted(&m->phys, pfns);
	enc_u64(e, n);
	for (size_t i = 0; i < n; i++)
		phys_encode_frame(&m->phys, pfns[i], e);
	free(pfns);
}

static void encode_body(const struct vm_machine *m, struct vm_enc *e)
{
	const struct vm_config *c = &m->config;

	enc_u8(e, (uint8_t)c->arch);
	enc_u64(e, c->memory);
	enc_u32(e, c->cpus);
	enc_u64(e, c->seed);
	enc_u64(e, c->churn);
	enc_u8(e, (uint8_t)c->vmsplit);
	enc_u8(e, c->kaslr);
	for (int i = 0; i < 4; i++)
		enc_u64(e, m->rng.s[i]);
	enc_u32(e, m->next_pid);
	enc_u64(e, m->swapper_pfn);
	for (int i = 0; i < 4; i++)
		enc_u64(e, m->kernel_pmd_pfn[i]);
	for (uint32_t i = 0; i < c->cpus; i++) {
		enc_u32(e, m->cpus[i].pid);
		enc_u64(e, m->cpus[i].cr3);
	}
	buddy_encode(m->buddy, e);
	encode_phys(m, e);
	enc_u32(e, m->nprocs);
	for (uint32_t i = 0; i < m->nprocs; i++) {
		const struct vm_process *p = &m->procs[i];

		enc_u32(e, p->pid);
		enc_str(e, p->name);
		enc_u64(e, p->kstack);
		enc_u64(e, p->mm.pgd_pfn);
		enc_u64(e, p->mm.brk_start);
		enc_u64(e, p->mm.brk);
		enc_u8(e, p->mm.populate);
		enc_u32(e, p->mm.nvmas);
		for (uint32_t k = 0; k < p->mm.nvmas; k++) {
			enc_u64(e, p->mm.vmas[k].start);
			enc_u64(e, p->mm.vmas[k].end);
			enc_u8(e, p->mm.vmas[k].prot);
			enc_u8(e, p->mm.vmas[k].kind);
		}
	}
	slab_encode(m, e);
	vmalloc_encode(m, e);
}

void vm_state_encode(const struct vm_machine *m, struct vm_enc *e)
{
	enc_bytes(e, magic, sizeof(magic));
	enc_u32(e, VM_STATE_FORMAT);
	enc_u32(e, VM_MODEL_VERSION);
	enc_u64(e, m->version);
	encode_body(m, e);
}

void vm_state_serialize(const struct vm_machine *m, uint8_t **buf,
			size_t *len)
{
	struct vm_enc e;

	enc_init(&e);
	vm_state_encode(m, &e);
	*buf = e.buf;
	*len = e.len;
}

static uint64_t digest_of(const struct vm_machine *m)
{
	struct vm_enc e;
	uint64_t h;

	enc_init(&e);
	encode_body(m, &e);
	h = vm_xxh64(e.buf, e.len, 0);
	enc_release(&e);
	return h;
}

uint64_t vm_machine_digest(const struct vm_machine *m)
{
	/* The cache is not part of the state: const to every caller. */
	struct vm_machine *w = (struct vm_machine *)m;
	uint64_t h;

	if (atomic_load_explicit(&w->digest_for, memory_order_acquire) ==
	    m->version + 1) {
		h = atomic_load_explicit(&w->digest_cache,
					 memory_order_relaxed);
#ifdef VM_DEBUG
		if (h != digest_of(m))
			abort(); /* the machine changed under its version */
#endif
		return h;
	}
	h = digest_of(m);
	atomic_store_explicit(&w->digest_cache, h, memory_order_relaxed);
	atomic_store_explicit(&w->digest_for, m->version + 1,
			      memory_order_release);
	return h;
}

/* ---- decoding ---- */

static int decode_phys(struct vm_machine *m, struct vm_dec *d)
{
	uint64_t n = dec_u64(d), prev = 0;

	if (!dec_room(d, n, 6))
		return VM_ECORRUPT;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t pfn = dec_u32(d);
		uint16_t nz = dec_u16(d);
		int last = -1;

		if (d->failed || nz == 0 || nz > 512 || pfn >= m->layout.max_pfn ||
		    (i > 0 && pfn <= prev) || !dec_room(d, nz, 10))
			return dec_fail(d), VM_ECORRUPT;
		for (unsigned k = 0; k < nz; k++) {
			uint16_t w = dec_u16(d);
			uint64_t v = dec_u64(d);

			if (d->failed || w >= 512 || (int)w <= last || v == 0)
				return dec_fail(d), VM_ECORRUPT;
			last = w;
			phys_write(&m->phys, (pfn << VM_PAGE_SHIFT) + 8u * w, 8, v);
		}
		prev = pfn;
	}
	return 0;
}

static int decode_procs(struct vm_machine *m, struct vm_dec *d)
{
	uint32_t n = dec_u32(d);

	if (!dec_room(d, n, 48))
		return VM_ECORRUPT;
	m->procs = n ? hm_zalloc(&m->hm, n * sizeof(*m->procs)) : NULL;
	m->capprocs = n;
	for (uint32_t i = 0; i < n; i++) {
		struct vm_process *p = &m->procs[i];
		uint32_t nv;

		p->pid = dec_u32(d);
		if (!dec_str(d, p->name, sizeof(p->name)))
			return VM_ECORRUPT;
		p->kstack = dec_u64(d);
		p->mm.pgd_pfn = dec_u64(d);
		p->mm.brk_start = dec_u64(d);
		p->mm.brk = dec_u64(d);
		p->mm.populate = dec_u8(d);
		nv = dec_u32(d);
		m->nprocs = i + 1;
		if (!dec_room(d, nv, 18) || p->mm.pgd_pfn >= m->layout.max_pfn ||
		    (i > 0 && m->procs[i - 1].pid >= p->pid) ||
		    p->mm.brk < p->mm.brk_start)
			return dec_fail(d), VM_ECORRUPT;
		p->mm.vmas = nv ? hm_zalloc(&m->hm, nv * sizeof(struct vm_vma))
				: NULL;
		p->mm.capvmas = p->mm.nvmas = nv;
		for (uint32_t k = 0; k < nv; k++) {
			struct vm_vma *v = &p->mm.vmas[k];

			v->start = dec_u64(d);
			v->end = dec_u64(d);
			v->prot = dec_u8(d);
			v->kind = dec_u8(d);
			if (v->prot > 7 || v->kind > VM_VMA_MMAP)
				return dec_fail(d), VM_ECORRUPT;
		}
		/* i386 stacks are order-1 blocks: a pfn within RAM. */
		if (!m->layout.arch->is64 && p->kstack >= m->layout.max_pfn)
			return dec_fail(d), VM_ECORRUPT;
	}
	return d->failed ? VM_ECORRUPT : 0;
}

/*
 * The kernel's reference tables, from the swapper's kernel half down:
 * every present entry that is not a leaf must name a table frame of the
 * kernel's (owner page table, id 0), and no table may be named twice.
 * A decoded state is otherwise only checked through the processes'
 * tables and the vmalloc areas' own PTEs, and an entry aimed elsewhere,
 * or at a table another entry names, is written through by the next
 * vmalloc.
 */
struct kwalk {
	uint64_t *pfn;             /* the tables reached */
	size_t n, cap;
};

static int walk_kernel_tables(const struct vm_machine *m, uint64_t table,
			      unsigned level, struct kwalk *kw)
{
	const struct vm_arch *a = m->layout.arch;
	unsigned first = level == 0 ? m->layout.kernel_pgd_boundary : 0;

	if (kw->n == kw->cap) {
		uint64_t *p = realloc(kw->pfn, (kw->cap * 2 + 64) *
					       sizeof(*p));

		if (!p)
			abort();
		kw->pfn = p;
		kw->cap = kw->cap * 2 + 64;
	}
	kw->pfn[kw->n++] = table;
	if (level + 1 >= a->levels)
		return 0;
	for (unsigned i = first; i < a->level[level].entries; i++) {
		uint64_t e = phys_read(&m->phys, (table << VM_PAGE_SHIFT) +
						 (uint64_t)i * a->entry_size,
				       a->entry_size);
		uint64_t pfn = pt_entry_addr(m, level, e) >> VM_PAGE_SHIFT;
		struct vm_owner o;

		if (!(e & VM_PTE_P) || pt_is_leaf(m, level, e))
			continue;
		if (pfn >= m->layout.max_pfn)
			return VM_ECORRUPT;
		o = buddy_owner(m->buddy, pfn);
		if (o.kind != VM_OWNER_PAGE_TABLE || o.id != 0 ||
		    walk_kernel_tables(m, pfn, level + 1, kw))
			return VM_ECORRUPT;
	}
	return 0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return (a > b) - (a < b);
}

static int check_kernel_tables(const struct vm_machine *m)
{
	struct kwalk kw = { NULL, 0, 0 };
	int rc = walk_kernel_tables(m, m->swapper_pfn, 0, &kw);

	if (!rc) {
		qsort(kw.pfn, kw.n, sizeof(kw.pfn[0]), cmp_u64);
		for (size_t i = 1; i < kw.n && !rc; i++)
			if (kw.pfn[i] == kw.pfn[i - 1])
				rc = VM_ECORRUPT;
	}
	free(kw.pfn);
	return rc;
}

/* Reads the header and the configuration. */
static int decode_head(struct vm_dec *d, struct vm_config *c,
		       uint64_t *version, struct vm_error *err)
{
	char mg[8];
	uint32_t format;
	uint8_t kaslr;

	if (!dec_bytes(d, mg, sizeof(mg)) || memcmp(mg, magic, sizeof(mg)))
		return vm_fail(err, VM_ECORRUPT, "not a vmlab machine state");
	format = dec_u32(d);
	(void)dec_u32(d); /* the model_version it was written under */
	*version = dec_u64(d);
	if (d->failed)
		return vm_fail(err, VM_ECORRUPT, "truncated state header");
	if (format != VM_STATE_FORMAT)
		return vm_fail(err, VM_EVERSION,
			       "state format %u; this build reads format %u",
			       format, VM_STATE_FORMAT);
	vm_config_default(c);
	c->arch = (enum vm_arch_id)dec_u8(d);
	c->memory = dec_u64(d);
	c->cpus = dec_u32(d);
	c->seed = dec_u64(d);
	c->churn = dec_u64(d);
	c->vmsplit = (enum vm_vmsplit)dec_u8(d);
	kaslr = dec_u8(d);
	c->kaslr = kaslr == 1;
	if (d->failed || (unsigned)c->arch >= VM_ARCH_COUNT || kaslr > 1)
		return vm_fail(err, VM_ECORRUPT, "bad machine configuration");
	/* Whatever service limit let it be created, the arch's is the cap. */
	c->max_memory = vm_arch_get(c->arch)->max_memory;
	if (vm_config_check(c, NULL))
		return vm_fail(err, VM_ECORRUPT, "bad machine configuration");
	return 0;
}

/* Decodes the rest of the body into m (fresh from m_init). */
static int decode_rest(struct vm_machine *m, struct vm_dec *d,
		       uint64_t version, struct vm_error *err)
{
	const struct vm_config *c = &m->config;

	m->version = version;
	/* The layout is a function of the configuration (and the seed). */
	vm_layout_init(&m->layout, vm_arch_get(c->arch), c->memory,
		       c->vmsplit, c->kaslr, &m->rng);
	m->buddy = buddy_create(&m->layout, &m->hm);
	for (int i = 0; i < 4; i++)
		m->rng.s[i] = dec_u64(d);
	m->next_pid = dec_u32(d);
	m->swapper_pfn = dec_u64(d);
	for (int i = 0; i < 4; i++)
		m->kernel_pmd_pfn[i] = dec_u64(d);
	for (uint32_t i = 0; i < c->cpus; i++) {
		m->cpus[i].pid = dec_u32(d);
		m->cpus[i].cr3 = dec_u64(d);
	}
	if (d->failed || m->swapper_pfn >= m->layout.max_pfn ||
	    buddy_decode(m->buddy, d) || decode_phys(m, d) ||
	    decode_procs(m, d) || slab_decode(m, d) || vmalloc_decode(m, d) ||
	    d->failed || d->pos != d->len)
		return vm_fail(err, VM_ECORRUPT,
			       "machine state does not decode (byte %zu of "
			       "%zu)", d->pos, d->len);
	if (vm_machine_check(m, err))
		return VM_ECORRUPT;
	if (check_kernel_tables(m))
		return vm_fail(err, VM_ECORRUPT, "a kernel page-table entry "
			       "names no kernel table of its own");
	return 0;
}

int vm_state_decode(const void *buf, size_t len, struct vm_machine **out,
		    struct vm_error *err)
{
	struct vm_dec d;
	struct vm_config c;
	struct vm_machine *m;
	uint64_t version;
	int rc;

	dec_init(&d, buf, len);
	rc = decode_head(&d, &c, &version, err);
	if (rc)
		return rc;
	m = m_new(&c);
	rc = decode_rest(m, &d, version, err);
	if (rc) {
		vm_machine_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int m_restore(struct vm_machine *m, const uint8_t *buf, size_t len)
{
	struct vm_dec d;
	struct vm_config c;
	struct vm_hostmem hm;
	uint64_t version;
	void (*observer)(void *, int, uint64_t, unsigned,
			 const struct vm_owner *) = m->observer;
	void *ctx = m->observer_ctx;
	int rc;

	dec_init(&d, buf, len);
	rc = decode_head(&d, &c, &version, NULL);
	if (rc)
		return rc;
	m_release(m);
	hm = m->hm;
	memset(m, 0, sizeof(*m));
	m->hm = hm;
	m->observer = observer;
	m->observer_ctx = ctx;
	m_init(m, &c);
	return decode_rest(m, &d, version, NULL);
}
