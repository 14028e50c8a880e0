/* machines.c - /v1/machines: create, list, get, delete, clone, and the
 * machine-wide views (layout, zones, frames, slabs). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buddy.h"
#include "core/owner.h"
#include "core/slab.h"
#include "core/state.h"
#include "internal.h"


/* [a-z0-9][a-z0-9-]{0,62} (SPEC 2.2): no dot, which names owners. */
bool api_valid_id(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > API_ID_MAX || !(islower((unsigned char)id[0]) ||
					  isdigit((unsigned char)id[0])))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)id[i]) ||
		      isdigit((unsigned char)id[i]) || id[i] == '-'))
			return false;
	return true;
}

/* A fresh id "m-" + 12 hex digits from the OS's random source. */
static void generate_id(char id[API_ID_MAX + 1])
{
	unsigned char r[6] = { 0 };
	FILE *f = fopen("/dev/urandom", "rb");

	if (!f || fread(r, 1, sizeof(r), f) != sizeof(r)) {
		/* Without /dev/urandom, the clock and pid still differ. */
		uint64_t t = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

		memcpy(r, &t, sizeof(r));
	}
	if (f)
		fclose(f);
	snprintf(id, API_ID_MAX + 1, "m-%02x%02x%02x%02x%02x%02x", r[0], r[1],
		 r[2], r[3], r[4], r[5]);
}

cJSON *api_machine_json(const struct api_call *call,
			const struct api_entry *e)
{
	const struct vm_config *c = vm_machine_config(e->m);
	const struct vm_arch *a = vm_arch_get(c->arch);
	cJSON *o = cJSON_CreateObject();
	char buf[API_PARAM_MAX + 1];

	/* The name the caller uses in paths: "lab1", or "alice.lab1". */
	api_machine_name(call, e->owner, e->id, buf);
	cJSON_AddStringToObject(o, "id", buf);
	cJSON_AddStringToObject(o, "owner", e->owner);
	cJSON_AddStringToObject(o, "arch", a->name);
	api_add_u64(o, "memory", c->memory);
	api_add_u64(o, "cpus", c->cpus);
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)c->seed);
	cJSON_AddStringToObject(o, "seed", buf);
	api_add_u64(o, "churn", c->churn);
	if (a->is64)
		cJSON_AddNullToObject(o, "vmsplit");
	else
		cJSON_AddStringToObject(o, "vmsplit",
					vm_vmsplit_name(c->vmsplit));
	cJSON_AddBoolToObject(o, "kaslr", c->kaslr);
	api_add_u64(o, "model_version", VM_MODEL_VERSION);
	api_add_u64(o, "version", vm_machine_version(e->m));
	snprintf(buf, sizeof(buf), "%016llx",
		 (unsigned long long)vm_machine_digest(e->m));
	cJSON_AddStringToObject(o, "digest", buf);
	api_add_u64(o, "processes", vm_machine_nprocesses(e->m));
	api_add_u64(o, "frames_in_use", vm_machine_frames_in_use(e->m));
	cJSON_AddStringToObject(o, "created", e->created);
	return o;
}

/* Answers the caller's new machine id (201, with its Location). */
static int reply_created(struct api_call *c, const char *id)
{
	struct api_store *s = &c->ctx->store;
	struct api_entry *e;
	char loc[96];

	e = s->ops->open(s->impl, &c->caller, c->caller.tenant, id,
			 API_ACCESS_READ, &c->prob);
	if (!e)
		return -1;  /* deleted meanwhile */
	api_reply(c, 201, api_machine_json(c, e));
	s->ops->close(s->impl, e, false);
	snprintf(loc, sizeof(loc), "/v1/machines/%s", id);
	api_add_header(c->resp, "Location", loc);
	return 0;
}

/*
 * A limited caller's machine and memory quotas, before a machine of
 * `memory` bytes is built (the store checks again as it inserts, so
 * two creations at once cannot both pass).
 */
static int check_quota(struct api_call *c, uint64_t memory,
		       uint64_t processes)
{
	struct api_store *s = &c->ctx->store;
	const struct api_quota *q = &c->caller.quota;
	uint64_t machines, used;

	if (!c->caller.limited)
		return 0;
	s->ops->usage(s->impl, c->caller.tenant, &machines, &used);
	if (machines >= q->machines)
		return api_fail(&c->prob, "quota_exceeded",
				"tenant \"%s\" may have %llu machines and has "
				"%llu; delete one first", c->caller.tenant,
				(unsigned long long)q->machines,
				(unsigned long long)machines);
	if (memory > q->memory || used > q->memory - memory)
		return api_fail(&c->prob, "quota_exceeded",
				"tenant \"%s\" may have %llu bytes of simulated "
				"RAM in all; it has %llu and asks for %llu more",
				c->caller.tenant,
				(unsigned long long)q->memory,
				(unsigned long long)used,
				(unsigned long long)memory);
	if (processes > q->processes)
		return api_fail(&c->prob, "quota_exceeded",
				"the machine has %llu processes; tenant \"%s\" "
				"may have %llu per machine",
				(unsigned long long)processes, c->caller.tenant,
				(unsigned long long)q->processes);
	return 0;
}

static const struct api_quota *quota_of(const struct api_call *c)
{
	return c->caller.limited ? &c->caller.quota : NULL;
}

/* Reads the creation fields of SPEC 2.2 into cfg; 422 names the field. */
static int read_config(struct api_call *c, struct vm_config *cfg)
{
	char arch[32] = "x86_64", split[16];
	bool has_split, has_kaslr, kaslr = false;
	uint64_t cpus = 1;
	struct vm_error err = { 0, "" };
	const struct vm_arch *a;

	vm_config_default(cfg);
	cfg->max_memory = c->ctx->config.max_memory;
	if (api_json_str(c->body, "arch", arch, sizeof(arch) - 1, NULL,
			 &c->prob) ||
	    api_json_size(c->body, "memory", &cfg->memory, NULL, &c->prob) ||
	    api_json_u64(c->body, "cpus", &cpus, NULL, &c->prob) ||
	    api_json_u64(c->body, "seed", &cfg->seed, NULL, &c->prob) ||
	    api_json_u64(c->body, "churn", &cfg->churn, NULL, &c->prob) ||
	    api_json_str(c->body, "vmsplit", split, sizeof(split) - 1,
			 &has_split, &c->prob) ||
	    api_json_bool(c->body, "kaslr", &kaslr, &has_kaslr, &c->prob))
		return -1;
	a = vm_arch_by_name(arch);
	if (!a)
		return api_fail(&c->prob, "invalid_value",
				"arch: \"%.31s\" is not one of i386, i386-pae, "
				"x86_64, x86_64-la57", arch);
	cfg->arch = a->id;
	if (cpus > VM_MAX_CPUS || cpus == 0)
		return api_fail(&c->prob, "out_of_range",
				"cpus: must be 1 to %d", VM_MAX_CPUS);
	cfg->cpus = (uint32_t)cpus;
	if (has_split) {
		int s = vm_vmsplit_parse(split);

		if (a->is64)
			return api_fail(&c->prob, "invalid_value",
					"vmsplit: only i386 and i386-pae take "
					"a split");
		if (s < 0)
			return api_fail(&c->prob, "invalid_value",
					"vmsplit: \"%.15s\" is not 3G/1G, 2G/2G "
					"or 1G/3G", split);
		cfg->vmsplit = (enum vm_vmsplit)s;
	}
	cfg->kaslr = kaslr;
	if (has_kaslr && kaslr && a->id != VM_ARCH_X86_64)
		return api_fail(&c->prob, "invalid_value",
				"kaslr: x86_64 only");
	if (vm_config_check(cfg, &err))
		return api_vm_fail(c, &err);
	return 0;
}

int api_machine_create(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	struct vm_config cfg;
	struct vm_machine *m;
	struct vm_error err = { 0, "" };
	char id[API_ID_MAX + 1];
	bool has_id;

	if (api_json_str(c->body, "id", id, API_ID_MAX, &has_id, &c->prob))
		return -1;
	if (has_id && !api_valid_id(id))
		return api_fail(&c->prob, "invalid_value",
				"id: \"%.63s\" must match [a-z0-9][a-z0-9-]{0,62}",
				id);
	if (read_config(c, &cfg) || check_quota(c, cfg.memory, 0))
		return -1;
	if (!has_id)
		generate_id(id);
	if (vm_machine_create(&cfg, &m, &err))
		return api_vm_fail(c, &err);
	if (s->ops->create(s->impl, c->caller.tenant, id, m, quota_of(c),
			   &c->prob)) {
		vm_machine_free(m);
		return -1;
	}
	return reply_created(c, id);
}

/* A list's page token: "owner.id" of the last machine of a page. */
static int parse_after(const char *t, struct api_name *after)
{
	const char *dot = strchr(t, '.');
	size_t n = dot ? (size_t)(dot - t) : 0;

	if (!dot || n > API_TENANT_MAX || strlen(dot + 1) > API_ID_MAX)
		return -1;
	memcpy(after->owner, t, n);
	after->owner[n] = '\0';
	strcpy(after->id, dot + 1);
	return api_valid_tenant(after->owner) && api_valid_id(after->id) ? 0
									 : -1;
}

int api_machine_list(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	char buf[API_PARAM_MAX + 8], owner[API_TENANT_MAX + 2];
	struct api_name after = { "", "" }, *names;
	uint64_t size;
	size_t n;
	bool more = false, has_owner;
	cJSON *o, *items;
	int rc;

	if ((rc = api_page(c, &size, buf, sizeof(buf))) < 0)
		return -1;
	if (rc == 1 && parse_after(buf, &after))
		return api_bad_token(c);
	/* ?owner=alice: only alice's machines (those the caller sees). */
	if ((rc = api_query(c, "owner", owner, sizeof(owner))) < 0)
		return -1;
	has_owner = rc == 1;
	if (has_owner && !api_valid_tenant(owner))
		return api_fail(&c->prob, "bad_query",
				"owner: \"%.40s\" is not a tenant name", owner);
	names = malloc((size_t)size * sizeof(*names));
	if (!names)
		abort();
	n = s->ops->list(s->impl, &c->caller, has_owner ? owner : NULL, &after,
			 (size_t)size, names, &more);
	o = cJSON_CreateObject();
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = 0; i < n; i++) {
		struct api_entry *e = s->ops->open(s->impl, &c->caller,
						   names[i].owner, names[i].id,
						   API_ACCESS_READ, &c->prob);

		if (!e)
			continue; /* deleted meanwhile */
		cJSON_AddItemToArray(items, api_machine_json(c, e));
		s->ops->close(s->impl, e, false);
	}
	c->prob.code = NULL;
	if (more && n > 0) {
		snprintf(buf, sizeof(buf), "%s.%s", names[n - 1].owner,
			 names[n - 1].id);
		cJSON_AddStringToObject(o, "next_page_token", buf);
	} else {
		cJSON_AddNullToObject(o, "next_page_token");
	}
	free(names);
	return api_reply(c, 200, o);
}

int api_machine_get(struct api_call *c)
{
	struct api_entry *e = api_open(c, false);

	if (!e)
		return -1;
	api_reply(c, 200, api_machine_json(c, e));
	api_close(c, e, false);
	return 0;
}

int api_machine_delete(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;

	if (s->ops->remove(s->impl, &c->caller, c->machine.owner,
			   c->machine.id, &c->prob))
		return -1;
	c->resp->status = 204;
	c->resp->content_type = "application/json";
	return 0;
}

int api_machine_clone(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	struct api_entry *e;
	struct vm_machine *copy;
	char id[API_ID_MAX + 1];
	bool has_id;

	if (api_json_str(c->body, "id", id, API_ID_MAX, &has_id, &c->prob))
		return -1;
	if (has_id && !api_valid_id(id))
		return api_fail(&c->prob, "invalid_value",
				"id: \"%.63s\" must match [a-z0-9][a-z0-9-]{0,62}",
				id);
	if (!has_id)
		generate_id(id);
	e = api_open(c, false);
	if (!e)
		return -1;
	/* The quota first: a clone copies a whole machine. */
	if (check_quota(c, vm_machine_config(e->m)->memory,
			vm_machine_nprocesses(e->m))) {
		api_close(c, e, false);
		return -1;
	}
	copy = vm_machine_clone(e->m);
	api_close(c, e, false);
	if (s->ops->create(s->impl, c->caller.tenant, id, copy, quota_of(c),
			   &c->prob)) {
		vm_machine_free(copy);
		return -1;
	}
	return reply_created(c, id);
}

/* ---- machine-wide views ---- */

int api_layout(struct api_call *c)
{
	struct api_entry *e = api_open(c, false);
	const struct vm_layout *l;
	cJSON *o, *levels, *regions;

	if (!e)
		return -1;
	l = vm_machine_layout(e->m);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "arch", l->arch->name);
	levels = cJSON_AddArrayToObject(o, "levels");
	for (unsigned i = 0; i < l->arch->levels; i++)
		cJSON_AddItemToArray(levels,
				     cJSON_CreateString(l->arch->level[i].name));
	api_add_hex(o, "page_offset", l->page_offset);
	api_add_hex(o, "task_size", l->task_size);
	api_add_hex(o, "high_memory", l->high_memory);
	api_add_u64(o, "lowmem_bytes", l->lowmem_bytes);
	api_add_u64(o, "highmem_bytes", l->highmem_bytes);
	api_add_hex(o, "vmalloc_start", l->vmalloc_start);
	api_add_hex(o, "vmalloc_end", l->vmalloc_end);
	api_add_hex(o, "mmap_base", l->mmap_base);
	regions = cJSON_AddArrayToObject(o, "regions");
	for (unsigned i = 0; i < l->nregions; i++) {
		const struct vm_region *r = &l->regions[i];
		cJSON *ro = cJSON_CreateObject();

		cJSON_AddStringToObject(ro, "name", vm_region_name(r->kind));
		api_add_hex(ro, "start", r->start);
		if (r->last == UINT64_MAX)
			cJSON_AddStringToObject(ro, "end",
						"0x10000000000000000");
		else
			api_add_hex(ro, "end", r->last + 1);
		api_add_hex(ro, "last", r->last);
		cJSON_AddStringToObject(ro, "description", r->description);
		cJSON_AddItemToArray(regions, ro);
	}
	api_close(c, e, false);
	return api_reply(c, 200, o);
}

int api_zones(struct api_call *c)
{
	struct api_entry *e = api_open(c, false);
	const struct vm_layout *l;
	cJSON *o, *zones;

	if (!e)
		return -1;
	l = vm_machine_layout(e->m);
	o = cJSON_CreateObject();
	zones = cJSON_AddArrayToObject(o, "zones");
	for (int z = 0; z < VM_ZONE_COUNT; z++) {
		struct vm_zone_info zi;
		cJSON *zo, *blocks;

		if (!vm_machine_zone_populated(e->m, (enum vm_zone_id)z))
			continue;
		vm_machine_zone_info(e->m, (enum vm_zone_id)z, &zi);
		zo = cJSON_CreateObject();
		cJSON_AddStringToObject(zo, "name",
					vm_zone_name((enum vm_zone_id)z));
		api_add_u64(zo, "start_pfn", l->zone_start_pfn[z]);
		api_add_u64(zo, "end_pfn", l->zone_end_pfn[z]);
		api_add_u64(zo, "free_pages", zi.free_pages);
		blocks = cJSON_AddArrayToObject(zo, "free_blocks");
		for (int k = 0; k < VM_NR_ORDERS; k++)
			cJSON_AddItemToArray(
				blocks,
				cJSON_CreateNumber((double)zi.free_blocks[k]));
		cJSON_AddItemToArray(zones, zo);
	}
	api_close(c, e, false);
	return api_reply(c, 200, o);
}

/* The owner object of a frame range (SPEC 2.3 "owner": {"kind", ...}). */
static cJSON *owner_json(const struct vm_arch *a, const struct vm_owner *o)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "kind", vm_owner_kind_name(o->kind));
	switch (o->kind) {
	case VM_OWNER_KERNEL_IMAGE:
		cJSON_AddStringToObject(j, "section",
					vm_kernel_section_name(o->sub));
		break;
	case VM_OWNER_PAGE_TABLE:
		api_add_u64(j, "pid", o->id);
		cJSON_AddStringToObject(j, "level",
					a->level[o->sub < a->levels ? o->sub : 0]
						.name);
		break;
	case VM_OWNER_SLAB:
		cJSON_AddStringToObject(j, "cache", vm_slab_cache_name(o->id));
		break;
	case VM_OWNER_VMALLOC:
		api_add_hex(j, "area", o->addr);
		break;
	case VM_OWNER_USER:
		api_add_u64(j, "pid", o->id);
		api_add_hex(j, "va", o->addr);
		api_add_u64(j, "mapcount", o->mapcount);
		break;
	case VM_OWNER_KERNEL_STACK:
		api_add_u64(j, "pid", o->id);
		if (o->addr)
			api_add_hex(j, "area", o->addr);
		break;
	default:
		break;
	}
	return j;
}

struct frames_ctx {
	const struct vm_arch *arch;
	cJSON *ranges;
	const char *kind;   /* filter, or NULL */
	size_t n, limit;
	bool truncated;
	uint64_t next_pfn;
};

static int frames_cb(void *ctx, uint64_t s, uint64_t e,
		     const struct vm_owner *o)
{
	struct frames_ctx *f = ctx;
	cJSON *r;

	if (f->kind && strcmp(f->kind, vm_owner_kind_name(o->kind)) != 0)
		return 0;
	if (f->n == f->limit) {
		f->truncated = true;
		f->next_pfn = s;
		return 1;
	}
	r = cJSON_CreateObject();
	api_add_u64(r, "start_pfn", s);
	api_add_u64(r, "end_pfn", e);
	cJSON_AddItemToObject(r, "owner", owner_json(f->arch, o));
	cJSON_AddItemToArray(f->ranges, r);
	f->n++;
	return 0;
}

int api_frames(struct api_call *c)
{
	struct api_entry *e;
	struct frames_ctx f = { NULL, NULL, NULL, 0, 10000, false, 0 };
	char buf[64], kind[32];
	uint64_t start = 0, end = UINT64_MAX, max_pfn;
	cJSON *o;
	int rc;

	if ((rc = api_query(c, "owner", kind, sizeof(kind))) < 0)
		return -1;
	if (rc == 1) {
		bool known = false;

		for (int k = 0; k < VM_OWNER_KIND_COUNT; k++)
			known |= strcmp(kind, vm_owner_kind_name(k)) == 0;
		if (!known)
			return api_fail(&c->prob, "bad_query",
					"owner: \"%.31s\" is not an owner kind",
					kind);
		f.kind = kind;
	}
	if ((rc = api_query(c, "start_pfn", buf, sizeof(buf))) < 0 ||
	    (rc == 1 && api_parse_u64(buf, false, &start)))
		return rc < 0 ? -1 : api_fail(&c->prob, "bad_query",
					      "start_pfn: not an integer");
	if ((rc = api_query(c, "end_pfn", buf, sizeof(buf))) < 0 ||
	    (rc == 1 && api_parse_u64(buf, false, &end)))
		return rc < 0 ? -1 : api_fail(&c->prob, "bad_query",
					      "end_pfn: not an integer");
	if (start >= end)
		return api_fail(&c->prob, "bad_query",
				"start_pfn must be below end_pfn");
	e = api_open(c, false);
	if (!e)
		return -1;
	max_pfn = vm_machine_layout(e->m)->max_pfn;
	f.arch = vm_machine_layout(e->m)->arch;
	if (start >= max_pfn) {
		api_close(c, e, false);
		return api_fail(&c->prob, "bad_query",
				"start_pfn: the machine has %llu frames",
				(unsigned long long)max_pfn);
	}
	o = cJSON_CreateObject();
	f.ranges = cJSON_AddArrayToObject(o, "ranges");
	vm_machine_frames(e->m, start, end, frames_cb, &f);
	api_close(c, e, false);
	/* Large listings continue from next_start_pfn. */
	if (f.truncated)
		api_add_u64(o, "next_start_pfn", f.next_pfn);
	else
		cJSON_AddNullToObject(o, "next_start_pfn");
	return api_reply(c, 200, o);
}

int api_slabs(struct api_call *c)
{
	struct api_entry *e = api_open(c, false);
	cJSON *o, *caches;

	if (!e)
		return -1;
	o = cJSON_CreateObject();
	caches = cJSON_AddArrayToObject(o, "caches");
	for (unsigned i = 0; i < vm_slab_cache_count(); i++) {
		struct vm_cache_info ci;
		cJSON *co = cJSON_CreateObject();

		vm_slab_cache_info(e->m, i, &ci);
		cJSON_AddStringToObject(co, "name", ci.name);
		api_add_u64(co, "object_size", ci.object_size);
		api_add_u64(co, "objects_per_slab", ci.objects_per_slab);
		api_add_u64(co, "pages_per_slab", ci.pages_per_slab);
		api_add_u64(co, "active_objects", ci.active_objects);
		api_add_u64(co, "total_objects", ci.total_objects);
		api_add_u64(co, "slabs", ci.slabs);
		cJSON_AddItemToArray(caches, co);
	}
	api_close(c, e, false);
	return api_reply(c, 200, o);
}
