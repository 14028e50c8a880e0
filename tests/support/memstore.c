/*
 * memstore.c - machines and tenants in memory (see memstore.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memstore.h"
#include "api/internal.h"
#include "core/machine.h"
#include "core/state.h"

static void *must_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fprintf(stderr, "memstore: out of memory\n");
		abort();
	}
	return p;
}

void memstore_init(struct memstore *ms, size_t nslots, size_t max_shares,
		   unsigned max_log)
{
	memset(ms, 0, sizeof(*ms));
	ms->s = must_calloc(nslots, sizeof(ms->s[0]));
	ms->nslots = nslots;
	ms->max_shares = max_shares;
	ms->max_log = max_log;
}

static void save(struct memstore_slot *s)
{
	free(s->saved);
	vm_state_serialize(s->pub.m, &s->saved, &s->saved_len);
}

static void drop(struct memstore_slot *s)
{
	vm_machine_free(s->pub.m);
	free(s->saved);
	free(s->shares);
	free(s->log);
	memset(s, 0, sizeof(*s));
}

void memstore_clear(struct memstore *ms)
{
	for (size_t i = 0; i < ms->nslots; i++)
		if (ms->s[i].used)
			drop(&ms->s[i]);
}

void memstore_free(struct memstore *ms)
{
	if (ms->s)
		memstore_clear(ms);
	free(ms->s);
	ms->s = NULL;
	ms->nslots = 0;
}

struct memstore_slot *memstore_find(struct memstore *ms, const char *owner,
				    const char *id)
{
	for (size_t i = 0; i < ms->nslots; i++)
		if (ms->s[i].used && strcmp(ms->s[i].pub.owner, owner) == 0 &&
		    strcmp(ms->s[i].pub.id, id) == 0)
			return &ms->s[i];
	return NULL;
}

size_t memstore_count(const struct memstore *ms)
{
	size_t n = 0;

	for (size_t i = 0; i < ms->nslots; i++)
		n += ms->s[i].used;
	return n;
}

static void ms_usage(void *impl, const char *owner, uint64_t *machines,
		     uint64_t *memory)
{
	struct memstore *ms = impl;

	*machines = *memory = 0;
	for (size_t i = 0; i < ms->nslots; i++)
		if (ms->s[i].used && strcmp(ms->s[i].pub.owner, owner) == 0) {
			(*machines)++;
			*memory += vm_machine_config(ms->s[i].pub.m)->memory;
		}
}

static int ms_create(void *impl, const char *owner, const char *id,
		     struct vm_machine *m, const struct api_quota *quota,
		     struct api_problem *p)
{
	struct memstore *ms = impl;
	uint64_t machines, memory, want = vm_machine_config(m)->memory;

	if (memstore_find(ms, owner, id))
		return api_fail(p, "already_exists", "\"%s\" exists", id);
	if (quota) {
		ms_usage(impl, owner, &machines, &memory);
		if (machines >= quota->machines ||
		    memory + want > quota->memory) {
			ms->quota_refusals++;
			return api_fail(p, "quota_exceeded",
					"the test store's quota");
		}
	}
	for (size_t i = 0; i < ms->nslots; i++) {
		struct memstore_slot *s = &ms->s[i];
		double t0 = 0;

		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		snprintf(s->pub.owner, sizeof(s->pub.owner), "%s", owner);
		snprintf(s->pub.id, sizeof(s->pub.id), "%s", id);
		/* A fixed time: no clock reaches what a test compares. */
		snprintf(s->pub.created, sizeof(s->pub.created),
			 "2000-01-01T00:00:00Z");
		s->pub.m = m;
		s->used = true;
		if (ms->max_shares)
			s->shares = must_calloc(ms->max_shares,
						sizeof(s->shares[0]));
		if (ms->max_log)
			s->log = must_calloc(ms->max_log, sizeof(s->log[0]));
		if (ms->clock_ns)
			t0 = ms->clock_ns();
		save(s);
		if (ms->clock_ns)
			ms->snapshot_ns += ms->clock_ns() - t0;
		return 0;
	}
	return api_fail(p, "too_many_machines", "the test store is full");
}

/* What who may do to (owner, id): the slot, or NULL with p filled. */
static struct memstore_slot *ms_access(struct memstore *ms,
				       const struct api_caller *who,
				       const char *owner, const char *id,
				       enum api_access need,
				       struct api_problem *p)
{
	struct memstore_slot *s = memstore_find(ms, owner, id);
	enum api_access a = API_ACCESS_NONE;

	if (s)
		a = api_access_for(who, owner, s->shares, s->nshares);
	if (a == API_ACCESS_NONE) {
		api_fail(p, "not_found", "no machine \"%s.%s\"", owner, id);
		return NULL;
	}
	if (a < need) {
		api_fail(p, "forbidden", "the test store says %s may not",
			 who->tenant);
		return NULL;
	}
	return s;
}

static struct api_entry *ms_open(void *impl, const struct api_caller *who,
				 const char *owner, const char *id,
				 enum api_access need, struct api_problem *p)
{
	struct memstore_slot *s = ms_access(impl, who, owner, id, need, p);

	return s ? &s->pub : NULL;
}

static void ms_close(void *impl, struct api_entry *e, bool write)
{
	(void)impl;
	(void)e;
	(void)write;
}

static int ms_remove(void *impl, const struct api_caller *who,
		     const char *owner, const char *id, struct api_problem *p)
{
	struct memstore_slot *s = ms_access(impl, who, owner, id,
					    API_ACCESS_OWNER, p);

	if (!s)
		return -1;
	drop(s);
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	const struct api_name *x = a, *y = b;
	int c = strcmp(x->owner, y->owner);

	return c ? c : strcmp(x->id, y->id);
}

static size_t ms_list(void *impl, const struct api_caller *who,
		      const char *owner, const struct api_name *after,
		      size_t limit, struct api_name *out, bool *more)
{
	struct memstore *ms = impl;
	struct api_name *all = must_calloc(ms->nslots, sizeof(*all));
	size_t n = 0, k = 0;

	for (size_t i = 0; i < ms->nslots; i++) {
		const struct memstore_slot *s = &ms->s[i];

		if (!s->used || (owner && strcmp(s->pub.owner, owner) != 0) ||
		    api_access_for(who, s->pub.owner, s->shares,
				   s->nshares) == API_ACCESS_NONE)
			continue;
		strcpy(all[n].owner, s->pub.owner);
		strcpy(all[n].id, s->pub.id);
		if (cmp_name(&all[n], after) > 0)
			n++;
	}
	qsort(all, n, sizeof(all[0]), cmp_name);
	for (; k < n && k < limit; k++)
		out[k] = all[k];
	*more = k < n;
	free(all);
	return k;
}

static int ms_commit(void *impl, struct api_entry *e, const char *by,
		     const struct vm_op *op, const struct vm_op_result *res,
		     struct api_problem *p)
{
	struct memstore *ms = impl;
	struct memstore_slot *s = (struct memstore_slot *)e;
	struct vm_machine *back;

	ms->commits++;
	if (ms->refuse_commit) {
		/* Back to the last committed state, as the contract says. */
		if (vm_state_decode(s->saved, s->saved_len, &back, NULL)) {
			fprintf(stderr, "memstore: a saved state does not "
					"decode\n");
			abort();
		}
		vm_machine_free(s->pub.m);
		s->pub.m = back;
		return api_fail(p, "service_unavailable",
				"the test store refuses to commit");
	}
	save(s);
	if (s->nlog < ms->max_log) {
		struct memstore_rec *r = &s->log[s->nlog++];

		r->version = vm_machine_version(e->m);
		r->op = *op;
		r->res = *res;
		snprintf(r->by, sizeof(r->by), "%s", by);
	}
	return 0;
}

static int ms_history(void *impl, const char *owner, const char *id,
		      uint64_t after, unsigned limit,
		      int (*fn)(void *ctx, uint64_t version,
				const struct vm_op *op,
				const struct vm_op_result *res,
				const char *by),
		      void *cls, struct api_problem *p)
{
	struct memstore_slot *s = memstore_find(impl, owner, id);
	int n = 0;

	if (!s)
		return api_fail(p, "not_found", "no machine \"%s\"", id);
	for (unsigned i = 0; i < s->nlog && (unsigned)n < limit; i++) {
		const struct memstore_rec *r = &s->log[i];

		if (r->version <= after)
			continue;
		if (fn(cls, r->version, &r->op, &r->res, r->by))
			return -1;
		n++;
	}
	return n;
}

static size_t ms_shares(void *impl, const char *owner, const char *id,
			struct api_share *out, size_t cap)
{
	struct memstore_slot *s = memstore_find(impl, owner, id);

	if (!s)
		return 0;
	for (size_t i = 0; i < s->nshares && i < cap; i++)
		out[i] = s->shares[i];
	return s->nshares;
}

static int ms_share_put(void *impl, const char *owner, const char *id,
			const struct api_share *sh, bool *created,
			struct api_problem *p)
{
	struct memstore *ms = impl;
	struct memstore_slot *s = memstore_find(ms, owner, id);
	size_t k = 0;

	if (!s)
		return api_fail(p, "not_found", "no machine \"%s\"", id);
	/* In tenant order: "*" sorts first. */
	while (k < s->nshares && strcmp(s->shares[k].tenant, sh->tenant) < 0)
		k++;
	*created = k == s->nshares ||
		   strcmp(s->shares[k].tenant, sh->tenant) != 0;
	if (*created && s->nshares == ms->max_shares)
		return api_fail(p, "too_many_shares", "the test store holds "
				"%zu shares a machine", ms->max_shares);
	if (*created) {
		memmove(&s->shares[k + 1], &s->shares[k],
			(s->nshares - k) * sizeof(s->shares[0]));
		s->nshares++;
	}
	s->shares[k] = *sh;
	return 0;
}

static int ms_share_remove(void *impl, const char *owner, const char *id,
			   const char *tenant, struct api_problem *p)
{
	struct memstore_slot *s = memstore_find(impl, owner, id);

	for (size_t k = 0; s && k < s->nshares; k++) {
		if (strcmp(s->shares[k].tenant, tenant) != 0)
			continue;
		memmove(&s->shares[k], &s->shares[k + 1],
			(s->nshares - k - 1) * sizeof(s->shares[0]));
		s->nshares--;
		return 0;
	}
	return api_fail(p, "not_found", "no share with \"%s\"", tenant);
}

static void ms_totals(void *impl, uint64_t *machines, uint64_t *processes,
		      uint64_t *frames)
{
	struct memstore *ms = impl;

	*machines = *processes = *frames = 0;
	for (size_t i = 0; i < ms->nslots; i++)
		if (ms->s[i].used) {
			(*machines)++;
			*processes += vm_machine_nprocesses(ms->s[i].pub.m);
			*frames += vm_machine_frames_in_use(ms->s[i].pub.m);
		}
}

const struct api_store_ops memstore_ops = {
	.create = ms_create, .open = ms_open, .close = ms_close,
	.remove = ms_remove, .list = ms_list, .commit = ms_commit,
	.history = ms_history, .usage = ms_usage, .shares = ms_shares,
	.share_put = ms_share_put, .share_remove = ms_share_remove,
	.totals = ms_totals,
};

/* ---- the tenant directory ---- */

struct memstore_tenant *memtenants_find(struct memtenants *tt,
					const char *name)
{
	for (int i = 0; i < MEMSTORE_TENANTS; i++)
		if (tt->t[i].used && strcmp(tt->t[i].info.name, name) == 0)
			return &tt->t[i];
	return NULL;
}

static enum api_auth mt_authenticate(void *impl, const char *token,
				     struct api_caller *out,
				     uint32_t *retry_after)
{
	struct memtenants *tt = impl;

	tt->lookups++;
	memset(out, 0, sizeof(*out));
	if (strcmp(token, MEMSTORE_ADMIN_TOKEN) == 0) {
		strcpy(out->tenant, API_ADMIN_TENANT);
		out->role = API_ROLE_ADMIN;
		return API_AUTH_OK;
	}
	for (int i = 0; i < MEMSTORE_TENANTS; i++) {
		const struct memstore_tenant *t = &tt->t[i];

		if (!t->used || strcmp(t->token, token) != 0)
			continue;
		strcpy(out->tenant, t->info.name);
		out->role = t->info.role;
		out->limited = true;
		out->quota = t->info.quota;
		if (t->limited) {
			*retry_after = 7;
			return API_AUTH_LIMITED;
		}
		return API_AUTH_OK;
	}
	return API_AUTH_UNKNOWN;
}

static int mt_create(void *impl, struct api_tenant_info *info,
		     char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	struct memtenants *tt = impl;

	if (memtenants_find(tt, info->name))
		return api_fail(p, "already_exists", "\"%s\" exists",
				info->name);
	for (int i = 0; i < MEMSTORE_TENANTS; i++) {
		struct memstore_tenant *t = &tt->t[i];

		if (t->used)
			continue;
		memset(t, 0, sizeof(*t));
		strcpy(info->created, "2000-01-01T00:00:00Z");
		t->info = *info;
		snprintf(t->token, sizeof(t->token), "tok-%s", info->name);
		strcpy(token, t->token);
		t->used = true;
		return 0;
	}
	return api_fail(p, "too_many_tenants", "the test directory is full");
}

static size_t mt_list(void *impl, const char *after, size_t limit,
		      struct api_tenant_info *out, bool *more)
{
	struct memtenants *tt = impl;
	size_t n = 0;
	const char *last = after;

	*more = false;
	/* Name order, by repeated search for the next name. */
	for (;;) {
		const struct memstore_tenant *next = NULL;

		for (int i = 0; i < MEMSTORE_TENANTS; i++)
			if (tt->t[i].used &&
			    strcmp(tt->t[i].info.name, last) > 0 &&
			    (!next || strcmp(tt->t[i].info.name,
					     next->info.name) < 0))
				next = &tt->t[i];
		if (!next)
			return n;
		if (n == limit) {
			*more = true;
			return n;
		}
		out[n++] = next->info;
		last = next->info.name;
	}
}

static int mt_get(void *impl, const char *name, struct api_tenant_info *out)
{
	const struct memstore_tenant *t = memtenants_find(impl, name);

	if (!t)
		return -1;
	*out = t->info;
	return 0;
}

static int mt_remove(void *impl, const char *name, struct api_problem *p)
{
	struct memstore_tenant *t = memtenants_find(impl, name);

	if (!t)
		return api_fail(p, "not_found", "no tenant \"%s\"", name);
	memset(t, 0, sizeof(*t));
	return 0;
}

static int mt_rotate(void *impl, const char *name,
		     char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	struct memtenants *tt = impl;
	struct memstore_tenant *t = memtenants_find(tt, name);

	if (!t)
		return api_fail(p, "not_found", "no tenant \"%s\"", name);
	snprintf(t->token, sizeof(t->token), "tok-%s-%u", name,
		 ++tt->rotations);
	strcpy(token, t->token);
	return 0;
}

const struct api_tenants_ops memtenants_ops = {
	.authenticate = mt_authenticate, .create = mt_create,
	.list = mt_list, .get = mt_get, .remove = mt_remove,
	.rotate = mt_rotate,
};

int memtenants_add(struct memtenants *tt, const char *name,
		   enum api_role role, const struct api_quota *q,
		   const char *token)
{
	for (int i = 0; i < MEMSTORE_TENANTS; i++) {
		struct memstore_tenant *t = &tt->t[i];

		if (t->used)
			continue;
		memset(t, 0, sizeof(*t));
		snprintf(t->info.name, sizeof(t->info.name), "%s", name);
		t->info.role = role;
		t->info.quota = *q;
		strcpy(t->info.created, "2000-01-01T00:00:00Z");
		snprintf(t->token, sizeof(t->token), "%s", token);
		t->used = true;
		return 0;
	}
	return -1;
}
