/*
 * routes.c - the route table and api_dispatch.
 *
 * One static table names every route with its method, its pattern, the
 * body fields it takes and whether it mutates. Dispatch matches the path
 * segment by segment ({name} matches one segment), tells 404 (no pattern
 * matches the path) from 405 (a pattern matches, with another method),
 * checks the Content-Type, parses the body strictly and refuses unknown
 * fields before a handler runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/gfp.h"
#include "internal.h"

#define F(n, k) { n, API_F_##k }
#define END { NULL, 0 }

static const struct api_field f_machine[] = {
	F("id", STRING), F("arch", STRING), F("memory", SIZE), F("cpus", U64),
	F("seed", U64), F("churn", U64), F("vmsplit", STRING),
	F("kaslr", BOOL), END
};
static const struct api_field f_clone[] = { F("id", STRING), END };
static const struct api_field f_process[] = {
	F("name", STRING), F("text", SIZE), F("data", SIZE), F("heap", SIZE),
	F("stack", SIZE), F("populate", BOOL), END
};
static const struct api_field f_mmap[] = {
	F("length", SIZE), F("prot", STRING), F("addr", U64), F("fixed", BOOL),
	F("populate", BOOL), END
};
static const struct api_field f_munmap[] = {
	F("addr", U64), F("length", SIZE), END
};
static const struct api_field f_brk[] = {
	F("increment", I64), F("addr", U64), END
};
static const struct api_field f_kmalloc[] = {
	F("size", SIZE), F("gfp", STRING), END
};
static const struct api_field f_va[] = { F("va", U64), END };
static const struct api_field f_vmalloc[] = {
	F("size", SIZE), F("guard", BOOL), END
};
static const struct api_field f_pages[] = {
	F("order", U64), F("gfp", STRING), END
};
static const struct api_field f_pages_free[] = {
	F("pa", U64), F("order", U64), END
};
static const struct api_field f_switch[] = { F("pid", U64), END };
static const struct api_field f_translate[] = {
	F("va", U64), F("cpu", U64), F("pid", U64), F("mode", STRING),
	F("access", STRING), F("explain", BOOL), END
};
static const struct api_field f_batch[] = { F("items", ITEMS), END };
static const struct api_field f_dma[] = {
	F("va", U64), F("length", SIZE), F("dma_mask_bits", U64),
	F("pid", U64), END
};
static const struct api_field f_pa[] = { F("pa", U64), END };

static const struct api_field f_tenant[] = {
	F("name", STRING), F("role", STRING), F("quota", QUOTA), END
};
static const struct api_field f_share[] = {
	F("tenant", STRING), F("access", STRING), END
};

#define M "/v1/machines/{m}"
#define P M "/processes/{pid}"
#define T "/v1/tenants"

#define PUBLIC API_NEED_NONE
#define ANY API_NEED_CALLER
#define OBSERVER API_NEED_OBSERVER
#define ADMIN API_NEED_ADMIN
#define CREATOR API_NEED_CREATOR
#define READ API_NEED_READ
#define WRITE API_NEED_WRITE
#define OWNER API_NEED_OWNER

static const struct api_route routes[] = {
	{ "GET", "/healthz", api_healthz, NULL, false, PUBLIC, false },
	{ "GET", "/metrics", api_metrics, NULL, false, OBSERVER, false },
	{ "GET", "/v1", api_index, NULL, false, ANY, false },
	{ "GET", "/v1/openapi.json", api_openapi, NULL, false, ANY, false },
	{ "GET", "/v1/whoami", api_whoami, NULL, false, ANY, false },
	{ "POST", T, api_tenant_create, f_tenant, false, ADMIN, false },
	{ "GET", T, api_tenant_list, NULL, false, ADMIN, false },
	{ "DELETE", T "/{t}", api_tenant_delete, NULL, false, ADMIN, false },
	{ "POST", T "/{t}/tokens", api_token_issue, NULL, false, ADMIN, false },
	{ "POST", "/v1/machines", api_machine_create, f_machine, false,
	  CREATOR, false },
	{ "GET", "/v1/machines", api_machine_list, NULL, false, ANY, false },
	{ "GET", M, api_machine_get, NULL, false, READ, false },
	{ "DELETE", M, api_machine_delete, NULL, false, OWNER, false },
	{ "POST", M "/clone", api_machine_clone, f_clone, false, CREATOR, false },
	{ "POST", M "/shares", api_share_create, f_share, false, OWNER, false },
	{ "GET", M "/shares", api_share_list, NULL, false, OWNER, false },
	{ "DELETE", M "/shares/{t}", api_share_delete, NULL, false, OWNER, false },
	{ "GET", M "/layout", api_layout, NULL, false, READ, false },
	{ "GET", M "/zones", api_zones, NULL, false, READ, false },
	{ "GET", M "/frames", api_frames, NULL, false, READ, false },
	{ "GET", M "/slabs", api_slabs, NULL, false, READ, false },
	{ "POST", M "/processes", api_process_create, f_process, true, WRITE, false },
	{ "GET", M "/processes", api_process_list, NULL, false, READ, false },
	{ "GET", P, api_process_get, NULL, false, READ, false },
	{ "DELETE", P, api_process_exit, NULL, true, WRITE, false },
	{ "POST", P "/mmap", api_mmap, f_mmap, true, WRITE, false },
	{ "POST", P "/munmap", api_munmap, f_munmap, true, WRITE, false },
	{ "POST", P "/brk", api_brk, f_brk, true, WRITE, false },
	{ "GET", P "/pagetable", api_pagetable, NULL, false, READ, false },
	{ "POST", M "/kmalloc", api_kmalloc, f_kmalloc, true, WRITE, false },
	{ "POST", M "/kfree", api_kfree, f_va, true, WRITE, false },
	{ "POST", M "/vmalloc", api_vmalloc, f_vmalloc, true, WRITE, false },
	{ "POST", M "/vfree", api_vfree, f_va, true, WRITE, false },
	{ "POST", M "/pages", api_pages, f_pages, true, WRITE, false },
	{ "POST", M "/pages/free", api_pages_free, f_pages_free, true, WRITE, false },
	{ "GET", M "/cpus", api_cpus, NULL, false, READ, false },
	{ "GET", M "/history", api_history, NULL, false, READ, false },
	{ "POST", M "/cpus/{n}/switch", api_switch, f_switch, true, WRITE, false },
	{ "POST", M "/translate", api_translate, f_translate, false, READ, false },
	/* A batch's text is read in one pass, without a tree (batch.c). */
	{ "POST", M "/translate/batch", api_translate_batch, f_batch, false,
	  READ, true },
	{ "POST", M "/dma-check", api_dma_check, f_dma, false, READ, false },
	{ "POST", M "/virt-to-phys", api_virt_to_phys, f_va, false, READ, false },
	{ "POST", M "/phys-to-virt", api_phys_to_virt, f_pa, false, READ, false },
	{ NULL, NULL, NULL, NULL, false, PUBLIC, false },
};

const struct api_route *api_routes(void)
{
	return routes;
}

/*
 * Matches path against pattern; fills params (decoded as is: ids, pids
 * and CPU numbers contain no escapes). A parameter longer than any id
 * still matches, as "" with *toolong set: such a thing cannot exist, so
 * the answer is 404 not_found for it, not no_such_route.
 */
static bool match(const char *pattern, const char *path,
		  char params[API_MAX_PARAMS][API_PARAM_MAX + 1], bool *toolong)
{
	unsigned np = 0;

	*toolong = false;
	while (*pattern && *path) {
		if (*pattern == '{') {
			size_t n = strcspn(path, "/");

			if (n == 0 || np == API_MAX_PARAMS)
				return false;
			if (n > API_PARAM_MAX) {
				*toolong = true;
				n = 0;
			}
			memcpy(params[np], path, n);
			params[np++][n] = '\0';
			n = strcspn(path, "/");
			path += n;
			pattern = strchr(pattern, '}') + 1;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

static void send_problem(struct api_call *c);

static void drop_etag(struct api_response *r)
{
	unsigned k = 0;

	for (unsigned i = 0; i < r->nheaders; i++)
		if (strcmp(r->headers[i].name, "ETag") != 0)
			r->headers[k++] = r->headers[i];
	r->nheaders = k;
}

void api_problem_response(struct api_response *resp,
			  const struct api_problem *p)
{
	struct api_call c;
	const char *route = resp->route;

	memset(&c, 0, sizeof(c));
	c.resp = resp;
	c.prob = *p;
	free(resp->body);
	resp->body = NULL;
	resp->pending = false;
	send_problem(&c);
	resp->route = route;
}

static void send_problem(struct api_call *c)
{
	const struct api_problem_type *t = api_problem_type(c->prob.code);
	cJSON *o = cJSON_CreateObject();
	char type[96];

	if (!t)
		t = api_problem_type("internal_error");
	snprintf(type, sizeof(type), "/problems/%s", t->code);
	api_utf8_scrub(c->prob.detail);
	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddStringToObject(o, "title", t->title);
	cJSON_AddNumberToObject(o, "status", t->status);
	cJSON_AddStringToObject(o, "detail", c->prob.detail);
	cJSON_AddStringToObject(o, "code", t->code);
	drop_etag(c->resp); /* no ETag on a refusal */
	api_reply(c, t->status, o);
	c->resp->content_type = "application/problem+json";
}

/* Whether a Content-Type may carry a JSON body (SPEC 2.1). */
static bool acceptable_type(const char *ct)
{
	static const char *const ok[] = {
		"application/json", "application/x-www-form-urlencoded",
		"text/", "application/problem+json",
	};
	size_t n;

	if (!ct || !*ct)
		return true;
	n = strcspn(ct, ";");
	for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t k = strlen(ok[i]);

		if (ok[i][k - 1] == '/' ? strncasecmp(ct, ok[i], k) == 0
					: (n == k && strncasecmp(ct, ok[i], k) == 0))
			return true;
		/* A structured suffix: application/anything+json. */
	}
	return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static int prepare_body(struct api_call *c)
{
	const struct api_request *r = c->req;
	const char *fields[32];
	unsigned n = 0;

	if (!c->route->fields) {
		if (r->body_len == 0)
			return 0;
		/* A body where none is read is harmless only if it is empty
		 * JSON; refuse anything else so that nothing is ignored. */
		if (api_json_parse(r->body, r->body_len, &c->body, &c->prob))
			return -1;
		if (!cJSON_IsObject(c->body) || c->body->child)
			return api_fail(&c->prob, "unknown_field",
					"this endpoint takes no body");
		return 0;
	}
	if (!acceptable_type(r->content_type))
		return api_fail(&c->prob, "unsupported_media_type",
				"send JSON (application/json); \"%.60s\" is "
				"not accepted", r->content_type);
	if (c->route->raw)
		return 0;
	if (api_json_parse(r->body, r->body_len, &c->body, &c->prob))
		return -1;
	if (!cJSON_IsObject(c->body))
		return api_fail(&c->prob, "wrong_type",
				"the body must be a JSON object");
	for (const struct api_field *f = c->route->fields; f->name; f++)
		fields[n++] = f->name;
	fields[n] = NULL;
	return api_json_only(c->body, fields, &c->prob);
}

/*
 * The caller of a request with auth on: "Authorization: Bearer <token>"
 * (RFC 6750; the scheme is case-insensitive). 401 with WWW-Authenticate
 * when the token is missing or unknown, 429 with Retry-After when the
 * tenant is over its request rate.
 */
static int authenticate(struct api_call *c)
{
	const struct api_tenants *t = &c->ctx->tenants;
	const char *h = c->req->authorization;
	char token[API_TOKEN_MAX + 1];
	uint32_t retry = 1;
	size_t n;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		api_add_header(c->resp, "WWW-Authenticate",
			       "Bearer realm=\"vmlab\"");
		return api_fail(&c->prob, "unauthorized",
				"send Authorization: Bearer <token> (the token "
				"your instructor gave you)");
	}
	h += 7;
	h += strspn(h, " ");
	n = strlen(h);
	while (n > 0 && h[n - 1] == ' ')
		n--;
	if (n == 0 || n > API_TOKEN_MAX || !t->ops)
		goto invalid;
	memcpy(token, h, n);
	token[n] = '\0';
	switch (t->ops->authenticate(t->impl, token, &c->caller, &retry)) {
	case API_AUTH_OK:
		return 0;
	case API_AUTH_LIMITED: {
		char v[16];

		snprintf(v, sizeof(v), "%u", (unsigned)retry);
		api_add_header(c->resp, "Retry-After", v);
		return api_fail(&c->prob, "rate_limited",
				"tenant \"%s\" may make %llu requests per "
				"second; retry after %u s", c->caller.tenant,
				(unsigned long long)c->caller.quota.rate,
				(unsigned)retry);
	}
	default:
		break;
	}
invalid:
	api_add_header(c->resp, "WWW-Authenticate",
		       "Bearer realm=\"vmlab\", error=\"invalid_token\"");
	return api_fail(&c->prob, "unauthorized",
			"the bearer token is not valid (it may have been "
			"rotated); ask for a new one");
}

/* {m} as (owner, id): "lab1" is the caller's own, "alice.lab1" alice's. */
static int resolve_machine(struct api_call *c)
{
	const char *p = c->params[0], *dot = strchr(p, '.');
	size_t n = dot ? (size_t)(dot - p) : 0;

	if (!dot) {
		snprintf(c->machine.owner, sizeof(c->machine.owner), "%s",
			 c->caller.tenant);
	} else if (n <= API_TENANT_MAX) {
		memcpy(c->machine.owner, p, n);
		c->machine.owner[n] = '\0';
		p = dot + 1;
	}
	if ((dot && n > API_TENANT_MAX) || strlen(p) > API_ID_MAX ||
	    !api_valid_tenant(c->machine.owner) || !api_valid_id(p))
		return api_fail(&c->prob, "not_found", "no machine \"%.100s\"",
				c->params[0]);
	memcpy(c->machine.id, p, strlen(p) + 1);  /* length checked above */
	return 0;
}

/* The caller's role against the route's need, before any work. */
static int authorize(struct api_call *c)
{
	enum api_role r = c->caller.role;

	switch (c->route->need) {
	case API_NEED_OBSERVER:
		if (r == API_ROLE_TENANT)
			return api_fail(&c->prob, "forbidden",
					"%s needs the admin or a grader token",
					c->route->pattern);
		break;
	case API_NEED_ADMIN:
		if (r != API_ROLE_ADMIN)
			return api_fail(&c->prob, "forbidden",
					"%s %s needs the admin token",
					c->route->method, c->route->pattern);
		break;
	case API_NEED_CREATOR:
		if (r == API_ROLE_GRADER)
			return api_fail(&c->prob, "forbidden",
					"a grader reads machines and changes "
					"nothing; it cannot create one");
		break;
	default:
		break;
	}
	if (strncmp(c->route->pattern, "/v1/machines/{m}", 16) == 0)
		return resolve_machine(c);
	return 0;
}

void api_dispatch(struct api_ctx *ctx, const struct api_request *req,
		  struct api_response *resp)
{
	struct api_call c;
	bool path_known = false, toolong = false;
	char allow[64] = "";
	int rc = -1;

	memset(resp, 0, sizeof(*resp));
	memset(&c, 0, sizeof(c));
	c.ctx = ctx;
	c.req = req;
	c.resp = resp;
	snprintf(c.caller.tenant, sizeof(c.caller.tenant), "%s",
		 API_LOCAL_TENANT);
	c.caller.role = API_ROLE_ADMIN;
	for (const struct api_route *r = routes; r->method; r++) {
		char params[API_MAX_PARAMS][API_PARAM_MAX + 1];
		bool tl;

		if (!match(r->pattern, req->path, params, &tl))
			continue;
		path_known = true;
		if (strcmp(r->method, req->method) != 0) {
			/* RFC 9110 15.5.6: a 405 names the allowed methods. */
			snprintf(allow + strlen(allow),
				 sizeof(allow) - strlen(allow), "%s%s",
				 allow[0] ? ", " : "", r->method);
			continue;
		}
		c.route = r;
		toolong = tl;
		memcpy(c.params, params, sizeof(params));
		break;
	}
	resp->route = c.route ? c.route->pattern
		      : path_known ? "method_not_allowed" : "not_found";
	/* Everything but /healthz needs a caller, unknown paths too. */
	if (ctx->auth && !(c.route && c.route->need == API_NEED_NONE) &&
	    authenticate(&c)) {
		send_problem(&c);
		return;
	}
	if (c.route && toolong) {
		api_fail(&c.prob, "not_found",
			 "no such resource: an id or number in the path is "
			 "longer than %d characters", API_PARAM_MAX);
		send_problem(&c);
		return;
	}
	if (!c.route) {
		api_fail(&c.prob, path_known ? "method_not_allowed"
					     : "no_such_route",
			 path_known ? "%s is not allowed on %.100s"
				    : "no route %.100s%s (see /v1 for the "
				      "index)",
			 path_known ? req->method : req->path,
			 path_known ? req->path : "");
		send_problem(&c);
		if (path_known)
			api_add_header(resp, "Allow", allow);
		return;
	}
	if (authorize(&c) == 0 && prepare_body(&c) == 0)
		rc = c.route->handler(&c);
	if (rc != 0) {
		free(resp->body);
		resp->body = NULL;
		if (!c.prob.code)
			api_fail(&c.prob, "internal_error", "no detail");
		send_problem(&c);
	}
	cJSON_Delete(c.body);
}

void api_response_release(struct api_response *resp)
{
	free(resp->body);
	resp->body = NULL;
}

/* ---- helpers shared by the resources ---- */

int api_reply(struct api_call *c, int status, cJSON *obj)
{
	c->resp->status = status;
	c->resp->content_type = "application/json";
	free(c->resp->body);
	c->resp->body = cJSON_PrintUnformatted(obj);
	c->resp->body_len = c->resp->body ? strlen(c->resp->body) : 0;
	cJSON_Delete(obj);
	return 0;
}

void api_hex(char buf[19], uint64_t v)
{
	snprintf(buf, 19, "0x%llx", (unsigned long long)v);
}

cJSON *api_add_hex(cJSON *obj, const char *name, uint64_t v)
{
	char buf[19];

	api_hex(buf, v);
	return cJSON_AddStringToObject(obj, name, buf);
}

cJSON *api_add_entry(cJSON *obj, const char *name, uint64_t v,
		     unsigned digits)
{
	char buf[19];

	snprintf(buf, sizeof(buf), "0x%0*llx", (int)digits,
		 (unsigned long long)v);
	return cJSON_AddStringToObject(obj, name, buf);
}

cJSON *api_add_u64(cJSON *obj, const char *name, uint64_t v)
{
	return cJSON_AddNumberToObject(obj, name, (double)v);
}

void api_add_header(struct api_response *r, const char *name,
		    const char *value)
{
	if (r->nheaders == API_MAX_HEADERS)
		return;
	r->headers[r->nheaders].name = name;
	snprintf(r->headers[r->nheaders].value,
		 sizeof(r->headers[r->nheaders].value), "%s", value);
	r->nheaders++;
}

void api_set_etag(struct api_call *c, uint64_t version)
{
	char v[32];

	snprintf(v, sizeof(v), "\"%llu\"", (unsigned long long)version);
	api_add_header(c->resp, "ETag", v);
}

struct api_entry *api_open(struct api_call *c, bool write)
{
	struct api_store *s = &c->ctx->store;
	enum api_access need = API_ACCESS_READ;

	if (c->route->need == API_NEED_OWNER)
		need = API_ACCESS_OWNER;
	else if (c->route->need == API_NEED_WRITE || write)
		need = API_ACCESS_WRITE;
	return s->ops->open(s->impl, &c->caller, c->machine.owner,
			    c->machine.id, need, &c->prob);
}

void api_machine_name(const struct api_call *c, const char *owner,
		      const char *id, char buf[API_PARAM_MAX + 1])
{
	if (strcmp(owner, c->caller.tenant) == 0)
		snprintf(buf, API_PARAM_MAX + 1, "%s", id);
	else
		snprintf(buf, API_PARAM_MAX + 1, "%s.%s", owner, id);
}

void api_close(struct api_call *c, struct api_entry *e, bool write)
{
	struct api_store *s = &c->ctx->store;

	s->ops->close(s->impl, e, write);
}

int api_vm_fail(struct api_call *c, const struct vm_error *err)
{
	return api_fail(&c->prob, api_code_for_vm_error(err->code), "%s",
			err->detail);
}

/* If-Match: "<version>" or * (RFC 9110: strong comparison, so a weak
 * W/ tag never matches). */
static int if_match(struct api_call *c, uint64_t version)
{
	const char *h = c->req->if_match;
	char want[32];

	if (!h)
		return 0;
	if (strcmp(h, "*") == 0)
		return 0;
	snprintf(want, sizeof(want), "\"%llu\"", (unsigned long long)version);
	if (strcmp(h, want) == 0)
		return 0;
	return api_fail(&c->prob, "precondition_failed",
			"If-Match %.40s, but the machine is at version %llu",
			c->req->if_match, (unsigned long long)version);
}

/* The caller's processes-per-machine quota, before a process is made. */
static int process_quota(struct api_call *c, const struct api_entry *e,
			 const struct vm_op *op)
{
	uint64_t q = c->caller.quota.processes;

	if (!c->caller.limited || op->type != VM_OP_PROCESS_CREATE ||
	    vm_machine_nprocesses(e->m) < q)
		return 0;
	return api_fail(&c->prob, "quota_exceeded",
			"tenant \"%s\" may have %llu processes per machine; "
			"this one has %u", c->caller.tenant,
			(unsigned long long)q, vm_machine_nprocesses(e->m));
}

int api_mutate(struct api_call *c, const struct vm_op *op,
	       struct vm_op_result *res, struct api_entry **out)
{
	struct api_store *s = &c->ctx->store;
	struct api_entry *e = api_open(c, true);
	struct vm_error err = { 0, "" };

	if (!e)
		return -1;
	if (if_match(c, vm_machine_version(e->m)) || process_quota(c, e, op) ||
	    (vm_machine_apply(e->m, op, res, &err) && api_vm_fail(c, &err))) {
		api_close(c, e, true);
		return -1;
	}
	if (c->req->commit_done && s->ops->commit_async) {
		/* Answered once durable: the server holds the response. */
		s->ops->commit_async(s->impl, e, c->caller.tenant, op, res,
				     c->req->commit_done, c->req->commit_cls);
		c->resp->pending = true;
	} else if (s->ops->commit(s->impl, e, c->caller.tenant, op, res,
				  &c->prob)) {
		api_close(c, e, true);
		return -1;
	}
	api_set_etag(c, vm_machine_version(e->m));
	*out = e;
	return 0;
}

int api_param_u32(struct api_call *c, unsigned i, const char *what,
		  uint32_t *v)
{
	uint64_t x;
	const char *t = c->params[i];

	/* Decimal only in paths: /processes/12, /cpus/0. */
	for (const char *q = t; *q; q++)
		if (*q < '0' || *q > '9')
			return api_fail(&c->prob, "not_found",
					"no %s \"%.20s\"", what, t);
	if (api_parse_u64(t, false, &x) || x > UINT32_MAX)
		return api_fail(&c->prob, "not_found", "no %s %.20s", what, t);
	*v = (uint32_t)x;
	return 0;
}

int api_gfp(struct api_call *c, const char *name, uint32_t *gfp)
{
	char text[256];
	bool present;
	struct vm_error err = { 0, "" };

	*gfp = VM_GFP_KERNEL;
	if (api_json_str(c->body, name, text, sizeof(text) - 1, &present,
			 &c->prob))
		return -1;
	if (present && vm_gfp_parse(text, gfp, &err))
		return api_fail(&c->prob, "invalid_value", "%s", err.detail);
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int api_page(struct api_call *c, uint64_t *size, char *token, size_t cap)
{
	char buf[32];
	int rc = api_query(c, "page_size", buf, sizeof(buf));

	*size = API_DEFAULT_PAGE;
	if (rc < 0)
		return -1;
	if (rc == 1 && (api_parse_u64(buf, false, size) || *size < 1 ||
			*size > API_MAX_PAGE))
		return api_fail(&c->prob, "bad_query",
				"page_size: must be 1 to %d", API_MAX_PAGE);
	return api_query(c, "page_token", token, cap);
}

int api_bad_token(struct api_call *c)
{
	return api_fail(&c->prob, "bad_query",
			"page_token: not a token this server gave");
}

int api_query(struct api_call *c, const char *name, char *buf, size_t cap)
{
	const char *q = c->req->query;
	size_t nlen = strlen(name);

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);

		if (len > nlen && strncmp(q, name, nlen) == 0 && q[nlen] == '=') {
			size_t o = 0;

			for (size_t i = nlen + 1; i < len; i++) {
				int ch = q[i];

				if (ch == '%') {
					int h, l;

					if (i + 2 >= len + 1 ||
					    (h = hexval(q[i + 1])) < 0 ||
					    (l = hexval(q[i + 2])) < 0)
						return api_fail(&c->prob,
								"bad_query",
								"%s: bad %%-escape",
								name);
					ch = h * 16 + l;
					i += 2;
				} else if (ch == '+') {
					ch = ' ';
				}
				if (o + 1 >= cap || ch == 0)
					return api_fail(&c->prob, "bad_query",
							"%s: value too long",
							name);
				buf[o++] = (char)ch;
			}
			buf[o] = '\0';
			return 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return 0;
}
