/*
 * tenancy.c - SPEC part 3's shared sandboxes: /v1/whoami, /v1/tenants
 * (admin only) and a machine's shares (its owner and the admin).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/machine.h"
#include "internal.h"


/* Quotas a tenant gets for what its creation leaves out (docs/tenants.md). */
static const struct api_quota default_tenant = {
	.machines = 8, .memory = 16ULL << 30, .processes = 64, .rate = 20,
};
static const struct api_quota default_grader = {
	.machines = 0, .memory = 0, .processes = 0, .rate = 200,
};

/* Upper bounds of each quota (they keep sums and counters in range). */
#define QUOTA_MACHINES_MAX 100000
#define QUOTA_MEMORY_MAX (1ULL << 50)      /* 1 PiB */
#define QUOTA_PROCESSES_MAX 100000
#define QUOTA_RATE_MAX 1000000

static const char *role_names[] = { "tenant", "grader" };

static cJSON *quota_json(const struct api_quota *q)
{
	cJSON *o = cJSON_CreateObject();

	api_add_u64(o, "machines", q->machines);
	api_add_u64(o, "memory", q->memory);
	api_add_u64(o, "processes", q->processes);
	api_add_u64(o, "rate", q->rate);
	return o;
}

static cJSON *usage_json(struct api_call *c, const char *tenant)
{
	struct api_store *s = &c->ctx->store;
	uint64_t machines = 0, memory = 0;
	cJSON *o = cJSON_CreateObject();

	s->ops->usage(s->impl, tenant, &machines, &memory);
	api_add_u64(o, "machines", machines);
	api_add_u64(o, "memory", memory);
	return o;
}

int api_whoami(struct api_call *c)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "tenant", c->caller.tenant);
	cJSON_AddStringToObject(o, "role", api_role_name(c->caller.role));
	if (c->caller.limited)
		cJSON_AddItemToObject(o, "quota", quota_json(&c->caller.quota));
	else
		cJSON_AddNullToObject(o, "quota");
	cJSON_AddItemToObject(o, "usage", usage_json(c, c->caller.tenant));
	return api_reply(c, 200, o);
}

/* One quota member: absent keeps the default; else within [lo, hi]. */
static int quota_field(struct api_call *c, const cJSON *q, const char *name,
		       bool size, uint64_t lo, uint64_t hi, uint64_t *v)
{
	bool present;
	int rc = size ? api_json_size(q, name, v, &present, &c->prob)
		      : api_json_u64(q, name, v, &present, &c->prob);

	if (rc)
		return -1;
	if (present && (*v < lo || *v > hi))
		return api_fail(&c->prob, "out_of_range",
				"quota.%s: must be %llu to %llu", name,
				(unsigned long long)lo, (unsigned long long)hi);
	return 0;
}

static int read_quota(struct api_call *c, struct api_quota *q)
{
	static const char *const names[] = {
		"machines", "memory", "processes", "rate", NULL
	};
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(c->body, "quota");

	if (!o || cJSON_IsNull(o))
		return 0;
	if (!cJSON_IsObject(o))
		return api_fail(&c->prob, "wrong_type",
				"quota: must be an object with machines, "
				"memory, processes and rate");
	if (api_json_only(o, names, &c->prob))
		return -1;
	return quota_field(c, o, "machines", false, 0, QUOTA_MACHINES_MAX,
			   &q->machines) ||
	       quota_field(c, o, "memory", true, 0, QUOTA_MEMORY_MAX,
			   &q->memory) ||
	       quota_field(c, o, "processes", false, 0, QUOTA_PROCESSES_MAX,
			   &q->processes) ||
	       quota_field(c, o, "rate", false, 1, QUOTA_RATE_MAX, &q->rate);
}

static cJSON *tenant_json(struct api_call *c, const struct api_tenant_info *t)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "role", api_role_name(t->role));
	cJSON_AddItemToObject(o, "quota", quota_json(&t->quota));
	cJSON_AddItemToObject(o, "usage", usage_json(c, t->name));
	cJSON_AddStringToObject(o, "created", t->created);
	return o;
}

/* A tenant name in a body or path that can name a real tenant. */
static bool reserved(const char *name)
{
	return strcmp(name, API_ADMIN_TENANT) == 0 ||
	       strcmp(name, API_LOCAL_TENANT) == 0;
}

static const struct api_tenants *directory(struct api_call *c)
{
	const struct api_tenants *t = &c->ctx->tenants;

	if (!t->ops)
		api_fail(&c->prob, "not_found",
			 "this server keeps no tenants");
	return t->ops ? t : NULL;
}

int api_tenant_create(struct api_call *c)
{
	const struct api_tenants *d = directory(c);
	struct api_tenant_info t;
	char role[16] = "tenant", token[API_TOKEN_MAX + 1];
	bool has_name;
	cJSON *o;
	char loc[64];

	if (!d)
		return -1;
	memset(&t, 0, sizeof(t));
	if (api_json_str(c->body, "name", t.name, API_TENANT_MAX, &has_name,
			 &c->prob) ||
	    api_json_str(c->body, "role", role, sizeof(role) - 1, NULL,
			 &c->prob))
		return -1;
	if (!has_name)
		return api_fail(&c->prob, "missing_field",
				"name: the tenant's name, such as a student's "
				"login ([a-z0-9][a-z0-9-]{0,31})");
	if (!api_valid_tenant(t.name))
		return api_fail(&c->prob, "invalid_value",
				"name: \"%.40s\" must match [a-z0-9][a-z0-9-]{0,31}",
				t.name);
	if (reserved(t.name))
		return api_fail(&c->prob, "invalid_value",
				"name: \"%s\" is reserved for the admin's own "
				"machines", t.name);
	if (strcmp(role, role_names[0]) == 0)
		t.role = API_ROLE_TENANT;
	else if (strcmp(role, role_names[1]) == 0)
		t.role = API_ROLE_GRADER;
	else
		return api_fail(&c->prob, "invalid_value",
				"role: \"%.15s\" is not tenant or grader "
				"(there is one admin)", role);
	t.quota = t.role == API_ROLE_GRADER ? default_grader : default_tenant;
	if (read_quota(c, &t.quota))
		return -1;
	if (d->ops->create(d->impl, &t, token, &c->prob))
		return -1;
	o = tenant_json(c, &t);
	/* Shown once: only its hash is kept. */
	cJSON_AddStringToObject(o, "token", token);
	api_reply(c, 201, o);
	snprintf(loc, sizeof(loc), "/v1/tenants/%s", t.name);
	api_add_header(c->resp, "Location", loc);
	return 0;
}

int api_tenant_list(struct api_call *c)
{
	const struct api_tenants *d = directory(c);
	char buf[64], after[API_TENANT_MAX + 1] = "";
	struct api_tenant_info *v;
	uint64_t size;
	bool more = false;
	size_t n;
	cJSON *o, *items;
	int rc;

	if (!d)
		return -1;
	if ((rc = api_page(c, &size, buf, sizeof(buf))) < 0)
		return -1;
	if (rc == 1) {
		/* The token is the last name of the previous page. */
		if (!api_valid_tenant(buf))
			return api_bad_token(c);
		strcpy(after, buf);
	}
	v = malloc((size_t)size * sizeof(*v));
	if (!v)
		abort();
	n = d->ops->list(d->impl, after, (size_t)size, v, &more);
	o = cJSON_CreateObject();
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(items, tenant_json(c, &v[i]));
	if (more && n > 0)
		cJSON_AddStringToObject(o, "next_page_token", v[n - 1].name);
	else
		cJSON_AddNullToObject(o, "next_page_token");
	free(v);
	return api_reply(c, 200, o);
}

/* The tenant {t} of a path; 404 when there is none. */
static int path_tenant(struct api_call *c, const struct api_tenants *d,
		       struct api_tenant_info *t)
{
	const char *name = c->params[0];

	if (!api_valid_tenant(name) || d->ops->get(d->impl, name, t))
		return api_fail(&c->prob, "not_found",
				"no tenant \"%.40s\"%s", name,
				reserved(name) ? " (the admin's namespace is "
						 "not a tenant)" : "");
	return 0;
}

int api_tenant_delete(struct api_call *c)
{
	const struct api_tenants *d = directory(c);
	struct api_tenant_info t;

	if (!d || path_tenant(c, d, &t) ||
	    d->ops->remove(d->impl, t.name, &c->prob))
		return -1;
	c->resp->status = 204;
	c->resp->content_type = "application/json";
	return 0;
}

int api_token_issue(struct api_call *c)
{
	const struct api_tenants *d = directory(c);
	struct api_tenant_info t;
	char token[API_TOKEN_MAX + 1];
	cJSON *o;

	if (!d || path_tenant(c, d, &t) ||
	    d->ops->rotate(d->impl, t.name, token, &c->prob))
		return -1;
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", t.name);
	cJSON_AddStringToObject(o, "role", api_role_name(t.role));
	cJSON_AddStringToObject(o, "token", token);
	return api_reply(c, 201, o);
}

/* ---- shares of a machine ---- */

static cJSON *share_json(const struct api_share *sh)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "tenant", sh->tenant);
	cJSON_AddStringToObject(o, "access", sh->write ? "write" : "read");
	return o;
}

/* Checks that the caller owns {m} (404 / 403 otherwise). */
static int owns(struct api_call *c)
{
	struct api_entry *e = api_open(c, true);

	if (!e)
		return -1;
	api_close(c, e, true);
	return 0;
}

int api_share_create(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	const struct api_tenants *d = &c->ctx->tenants;
	struct api_share sh;
	struct api_tenant_info t;
	char access[16];
	bool has_tenant, has_access, created;

	memset(&sh, 0, sizeof(sh));
	if (api_json_str(c->body, "tenant", sh.tenant, API_TENANT_MAX,
			 &has_tenant, &c->prob) ||
	    api_json_str(c->body, "access", access, sizeof(access) - 1,
			 &has_access, &c->prob))
		return -1;
	if (!has_tenant)
		return api_fail(&c->prob, "missing_field",
				"tenant: the tenant to share with, or \"*\" "
				"for every tenant");
	if (!has_access)
		return api_fail(&c->prob, "missing_field",
				"access: \"read\" or \"write\"");
	if (strcmp(access, "read") != 0 && strcmp(access, "write") != 0)
		return api_fail(&c->prob, "invalid_value",
				"access: \"%.15s\" is not read or write",
				access);
	sh.write = access[0] == 'w';
	if (owns(c))
		return -1;
	if (strcmp(sh.tenant, API_EVERYONE) != 0 &&
	    (!api_valid_tenant(sh.tenant) || !d->ops ||
	     d->ops->get(d->impl, sh.tenant, &t)))
		return api_fail(&c->prob, "invalid_value",
				"tenant: there is no tenant \"%.40s\" (name one "
				"from GET /v1/tenants, or \"*\")", sh.tenant);
	if (strcmp(sh.tenant, c->machine.owner) == 0)
		return api_fail(&c->prob, "invalid_value",
				"tenant: \"%s\" owns the machine already",
				sh.tenant);
	if (s->ops->share_put(s->impl, c->machine.owner, c->machine.id, &sh,
			      &created, &c->prob))
		return -1;
	return api_reply(c, created ? 201 : 200, share_json(&sh));
}

int api_share_list(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	struct api_share *v;
	size_t n;
	cJSON *o, *items;

	if (owns(c))
		return -1;
	v = calloc(API_MAX_SHARES, sizeof(*v));
	if (!v)
		abort();
	n = s->ops->shares(s->impl, c->machine.owner, c->machine.id, v,
			   API_MAX_SHARES);
	o = cJSON_CreateObject();
	items = cJSON_AddArrayToObject(o, "items");
	for (size_t i = 0; i < n && i < API_MAX_SHARES; i++)
		cJSON_AddItemToArray(items, share_json(&v[i]));
	cJSON_AddNullToObject(o, "next_page_token");
	free(v);
	return api_reply(c, 200, o);
}

int api_share_delete(struct api_call *c)
{
	struct api_store *s = &c->ctx->store;
	const char *t = c->params[1];

	if (strcmp(t, "%2A") == 0 || strcmp(t, "%2a") == 0)
		t = API_EVERYONE;
	if (owns(c))
		return -1;
	if (strcmp(t, API_EVERYONE) != 0 && !api_valid_tenant(t))
		return api_fail(&c->prob, "not_found", "no share with \"%.40s\"",
				t);
	if (s->ops->share_remove(s->impl, c->machine.owner, c->machine.id, t,
				 &c->prob))
		return -1;
	c->resp->status = 204;
	c->resp->content_type = "application/json";
	return 0;
}
