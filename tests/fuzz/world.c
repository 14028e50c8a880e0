/*
 * world.c - the world of fuzz_dispatch and fuzz_op's machine (world.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "core/machine.h"
#include "core/op.h"
#include "world.h"

#define NSLOTS FUZZ_NSLOTS
#define MAX_SHARES 4
#define MAX_LOG 32

struct memstore fuzz_store;
static struct memtenants tenants, tenants0;
struct api_ctx fuzz_ctx;
bool fuzz_dirty, fuzz_committed;
char fuzz_m1_kva[24], fuzz_m1_vva[24], fuzz_m1_pa[24], fuzz_m1_map[24];

/* The world's machines as they were made, to put back. */
struct kept {
	const char *owner, *id;
	struct vm_machine *m;
	struct api_share shares[MAX_SHARES];
	size_t nshares;
	struct memstore_rec log[MAX_LOG];
	unsigned nlog;
};

static struct kept kept[4];
static unsigned nkept;

static void world_die(const char *what, const struct api_response *r)
{
	fprintf(stderr, "fuzz world: %s (status %d, %s): %.*s\n", what,
		r ? r->status : 0, r && r->content_type ? r->content_type : "-",
		r && r->body ? (int)(r->body_len < 400 ? r->body_len : 400) : 0,
		r && r->body ? r->body : "");
	abort();
}

/* ---- the store's and directory's changes mark the world dirty ---- */

static struct api_store_ops ops;
static struct api_tenants_ops tops;

static int w_create(void *impl, const char *owner, const char *id,
		    struct vm_machine *m, const struct api_quota *quota,
		    struct api_problem *p)
{
	fuzz_dirty = true;
	return memstore_ops.create(impl, owner, id, m, quota, p);
}

static int w_remove(void *impl, const struct api_caller *who,
		    const char *owner, const char *id, struct api_problem *p)
{
	fuzz_dirty = true;
	return memstore_ops.remove(impl, who, owner, id, p);
}

static int w_commit(void *impl, struct api_entry *e, const char *by,
		    const struct vm_op *op, const struct vm_op_result *res,
		    struct api_problem *p)
{
	fuzz_dirty = fuzz_committed = true;
	return memstore_ops.commit(impl, e, by, op, res, p);
}

static int w_share_put(void *impl, const char *owner, const char *id,
		       const struct api_share *sh, bool *created,
		       struct api_problem *p)
{
	fuzz_dirty = true;
	return memstore_ops.share_put(impl, owner, id, sh, created, p);
}

static int w_share_remove(void *impl, const char *owner, const char *id,
			  const char *tenant, struct api_problem *p)
{
	fuzz_dirty = true;
	return memstore_ops.share_remove(impl, owner, id, tenant, p);
}

static int w_tcreate(void *impl, struct api_tenant_info *t,
		     char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	fuzz_dirty = true;
	return memtenants_ops.create(impl, t, token, p);
}

static int w_tremove(void *impl, const char *name, struct api_problem *p)
{
	fuzz_dirty = true;
	return memtenants_ops.remove(impl, name, p);
}

static int w_rotate(void *impl, const char *name,
		    char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	fuzz_dirty = true;
	return memtenants_ops.rotate(impl, name, token, p);
}

static char *metrics(void *cls)
{
	(void)cls;
	return strdup("vmlab_up 1\n");
}

/* ---- the world ---- */

static void setup_keep(const char *method, const char *path,
		       const char *token, const char *body, int want,
		       const char *key, char *out);

/* A request that must answer want; the string member key of its answer
 * copied into out (24 bytes) when out is given. */
static void setup_call(const char *method, const char *path,
		       const char *token, const char *body, int want)
{
	setup_keep(method, path, token, body, want, NULL, NULL);
}

static void setup_keep(const char *method, const char *path,
		       const char *token, const char *body, int want,
		       const char *key, char *out)
{
	struct api_request rq = {
		.method = method, .path = path,
		.content_type = "application/json", .authorization = token,
		.body = body, .body_len = strlen(body),
	};
	struct api_response r;

	fuzz_ctx.auth = token != NULL;
	api_dispatch(&fuzz_ctx, &rq, &r);
	if (r.status != want)
		world_die(path, &r);
	if (out) {
		cJSON *o = cJSON_ParseWithLength(r.body, r.body_len);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

		if (!cJSON_IsString(v))
			world_die(key, &r);
		snprintf(out, 24, "%s", v->valuestring);
		cJSON_Delete(o);
	}
	api_response_release(&r);
}

static void make_world(void)
{
	static const struct api_quota q = {
		.machines = 4, .memory = 512ULL << 20, .processes = 8,
		.rate = 100,
	};
	const char *a = "Bearer tok-alice";

	memtenants_add(&tenants, "alice", API_ROLE_TENANT, &q, "tok-alice");
	memtenants_add(&tenants, "bob", API_ROLE_TENANT, &q, "tok-bob");
	memtenants_add(&tenants, "grader", API_ROLE_GRADER, &q, "tok-grader");
	/* carol is over her request rate: every request of hers is 429. */
	memtenants_add(&tenants, "carol", API_ROLE_TENANT, &q, "tok-carol");
	memtenants_find(&tenants, "carol")->limited = true;
	tenants0 = tenants;

	setup_call("POST", "/v1/machines", NULL,
		   "{\"id\":\"m1\",\"memory\":\"64MiB\",\"cpus\":2,"
		   "\"churn\":64}", 201);
	setup_call("POST", "/v1/machines/m1/processes", NULL,
		   "{\"name\":\"p1\"}", 201);
	setup_keep("POST", "/v1/machines/m1/processes/1/mmap", NULL,
		   "{\"length\":\"16KiB\",\"prot\":\"rw-\"}", 201, "start",
		   fuzz_m1_map);
	setup_call("POST", "/v1/machines/m1/cpus/1/switch", NULL,
		   "{\"pid\":1}", 200);
	setup_keep("POST", "/v1/machines/m1/kmalloc", NULL,
		   "{\"size\":64}", 201, "va", fuzz_m1_kva);
	setup_keep("POST", "/v1/machines/m1/vmalloc", NULL,
		   "{\"size\":\"8KiB\"}", 201, "va", fuzz_m1_vva);
	setup_keep("POST", "/v1/machines/m1/pages", NULL, "{\"order\":1}",
		   201, "pa", fuzz_m1_pa);
	setup_call("POST", "/v1/machines", NULL,
		   "{\"id\":\"m2\",\"arch\":\"i386\",\"memory\":\"32MiB\","
		   "\"churn\":16}", 201);
	setup_call("POST", "/v1/machines", a,
		   "{\"id\":\"lab1\",\"memory\":\"32MiB\",\"churn\":16}", 201);
	setup_call("POST", "/v1/machines/lab1/processes", a, "{}", 201);
	setup_call("POST", "/v1/machines/lab1/shares", a,
		   "{\"tenant\":\"bob\",\"access\":\"read\"}", 201);

	for (size_t i = 0; i < fuzz_store.nslots; i++) {
		const struct memstore_slot *s = &fuzz_store.s[i];
		struct kept *sd;

		if (!s->used)
			continue;
		sd = &kept[nkept++];
		sd->owner = strdup(s->pub.owner);
		sd->id = strdup(s->pub.id);
		sd->m = vm_machine_clone(s->pub.m);
		memcpy(sd->shares, s->shares, s->nshares * sizeof(*s->shares));
		sd->nshares = s->nshares;
		memcpy(sd->log, s->log, s->nlog * sizeof(*s->log));
		sd->nlog = s->nlog;
	}
}

/* Puts the world back as make_world left it. */
void fuzz_world_reset(void)
{
	struct api_problem p;

	memstore_clear(&fuzz_store);
	for (unsigned i = 0; i < nkept; i++) {
		const struct kept *sd = &kept[i];
		struct memstore_slot *s;

		if (memstore_ops.create(&fuzz_store, sd->owner, sd->id,
					vm_machine_clone(sd->m), NULL, &p))
			world_die("reset", NULL);
		s = memstore_find(&fuzz_store, sd->owner, sd->id);
		memcpy(s->shares, sd->shares, sd->nshares * sizeof(*s->shares));
		s->nshares = sd->nshares;
		memcpy(s->log, sd->log, sd->nlog * sizeof(*s->log));
		s->nlog = sd->nlog;
	}
	tenants = tenants0;
}

void fuzz_world_init(void)
{
	memstore_init(&fuzz_store, NSLOTS, MAX_SHARES, MAX_LOG);
	ops = memstore_ops;
	ops.create = w_create;
	ops.remove = w_remove;
	ops.commit = w_commit;
	ops.share_put = w_share_put;
	ops.share_remove = w_share_remove;
	tops = memtenants_ops;
	tops.create = w_tcreate;
	tops.remove = w_tremove;
	tops.rotate = w_rotate;
	fuzz_ctx.store.ops = &ops;
	fuzz_ctx.store.impl = &fuzz_store;
	fuzz_ctx.tenants.ops = &tops;
	fuzz_ctx.tenants.impl = &tenants;
	fuzz_ctx.config.openapi = "{\"openapi\":\"3.1.0\"}";
	fuzz_ctx.config.openapi_len = strlen(fuzz_ctx.config.openapi);
	fuzz_ctx.config.version = "fuzz";
	fuzz_ctx.config.max_machines = NSLOTS - 2;
	/* Small machines only: a fuzzer's request should take
	 * milliseconds, and SPEC's 64 GiB would take the host's RAM. */
	fuzz_ctx.config.max_memory = 256ULL << 20;
	fuzz_ctx.metrics = metrics;
	make_world();
}

/* ---- fuzz_dispatch's input ---- */

struct input {
	const uint8_t *p, *end;
};

/* The next line (without "\r\n") into buf; false at the end of input. */
static bool line(struct input *in, char *buf, size_t cap)
{
	const uint8_t *nl;
	size_t n;

	if (in->p >= in->end)
		return false;
	nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
	n = nl ? (size_t)(nl - in->p) : (size_t)(in->end - in->p);
	memcpy(buf, in->p, n < cap ? n : cap - 1);
	in->p += n + (nl != NULL);
	if (n >= cap)
		n = cap - 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return true;
}

void fuzz_request_parse(const uint8_t *data, size_t size,
			struct fuzz_request *fr)
{
	struct input in = { data, data + size };
	char *q, *sp;
	bool has_ct = false, has_im = false, has_auth = false;

	fr->method[0] = fr->target[0] = '\0';
	line(&in, fr->method, sizeof(fr->method));
	line(&in, fr->target, sizeof(fr->target));
	while (line(&in, fr->h, sizeof(fr->h)) && fr->h[0]) {
		char *colon = strchr(fr->h, ':'), *v;

		if (!colon)
			continue;
		*colon = '\0';
		v = colon + 1 + strspn(colon + 1, " \t");
		if (strcasecmp(fr->h, "Content-Type") == 0) {
			strcpy(fr->ctype, v);
			has_ct = true;
		} else if (strcasecmp(fr->h, "If-Match") == 0) {
			strcpy(fr->ifm, v);
			has_im = true;
		} else if (strcasecmp(fr->h, "Authorization") == 0) {
			strcpy(fr->authz, v);
			has_auth = true;
		}
	}
	sp = strchr(fr->method, ' ');
	fr->auth = sp && strcmp(sp, " auth") == 0;
	if (sp)
		*sp = '\0';
	q = strchr(fr->target, '?');
	if (q)
		*q++ = '\0';
	memset(&fr->rq, 0, sizeof(fr->rq));
	fr->rq.method = fr->method;
	fr->rq.path = fr->target;
	fr->rq.query = q;
	fr->rq.content_type = has_ct ? fr->ctype : NULL;
	fr->rq.if_match = has_im ? fr->ifm : NULL;
	fr->rq.authorization = has_auth ? fr->authz : NULL;
	/* The body in a buffer of its own size, for ASan to see over-reads
	 * (a server's body has no NUL after it either). */
	fr->rq.body_len = (size_t)(in.end - in.p);
	fr->body = fr->rq.body_len ? malloc(fr->rq.body_len) : NULL;
	if (fr->rq.body_len && !fr->body)
		abort();
	if (fr->body)
		memcpy(fr->body, in.p, fr->rq.body_len);
	fr->rq.body = fr->body ? fr->body : "";
}

void fuzz_request_free(struct fuzz_request *fr)
{
	free(fr->body);
	fr->body = NULL;
}

/* ---- fuzz_op's machine ---- */

static void must_apply(struct vm_machine *m, struct vm_op *op)
{
	struct vm_op_result res;
	struct vm_error err = { 0, "" };

	if (vm_machine_apply(m, op, &res, &err)) {
		fprintf(stderr, "fuzz_op_start: %s\n",
			err.detail);
		abort();
	}
}

struct vm_machine *fuzz_op_start(void)
{
	struct vm_machine *start;
	struct vm_config c;
	struct vm_error err = { 0, "" };
	struct vm_op op;

	vm_config_default(&c);
	c.memory = 32ULL << 20;
	c.cpus = 2;
	c.churn = 64;
	if (vm_machine_create(&c, &start, &err)) {
		fprintf(stderr, "fuzz_op_start: %s\n", err.detail);
		abort();
	}
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_PROCESS_CREATE;
	strcpy(op.u.create.name, "p1");
	op.u.create.text = op.u.create.data = VM_SEG_DEFAULT;
	op.u.create.heap = op.u.create.stack = VM_SEG_DEFAULT;
	op.u.create.populate = true;
	must_apply(start, &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_MMAP;
	op.u.mmap.pid = 1;
	op.u.mmap.length = 4 * 4096;
	op.u.mmap.prot = 3;
	op.u.mmap.populate = true;
	must_apply(start, &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_SWITCH;
	op.u.sw.cpu = 1;
	op.u.sw.pid = 1;
	must_apply(start, &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_KMALLOC;
	op.u.kmalloc.size = 64;
	op.u.kmalloc.gfp = 0xcc0;
	must_apply(start, &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_VMALLOC;
	op.u.vmalloc.size = 8192;
	must_apply(start, &op);
	memset(&op, 0, sizeof(op));
	op.type = VM_OP_ALLOC_PAGES;
	op.u.alloc_pages.order = 1;
	op.u.alloc_pages.gfp = 0xcc0;
	must_apply(start, &op);
	return start;
}
