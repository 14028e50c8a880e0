/*
 * translate.c - translation (one and batched), DMA checks, __pa/__va.
 *
 * Translations are answered by batch.c's writer, and a batch in the plain
 * form is read by batch.c's reader; the cJSON code below reads a single
 * translate and every batch the reader declines, and remains, whole, the
 * reference the fast path is tested against (batch.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dma.h"
#include "core/translate.h"
#include "batch.h"
#include "internal.h"

static bool use_reference;

void api_translate_use_reference(bool on)
{
	use_reference = on;
}

/* Sends the JSON text in b as the 200 answer; takes b's buffer. */
static int reply_buf(struct api_call *c, struct api_buf *b)
{
	/* NUL-terminated, as cJSON's text is: readers may take it as a
	 * string. */
	api_buf_reserve(b, 1);
	b->s[b->len] = '\0';
	free(c->resp->body);
	c->resp->status = 200;
	c->resp->content_type = "application/json";
	c->resp->body = b->s;
	c->resp->body_len = b->len;
	return 0;
}

/* Reads one translate request from obj (the body, or a batch item). */
static int read_translate(struct api_call *c, const cJSON *obj,
			  struct vm_translate_req *r, bool *explain)
{
	uint64_t cpu = 0, pid = 0;
	char mode[16] = "user", access[16] = "read";
	bool has_va;
	int v;

	memset(r, 0, sizeof(*r));
	*explain = false;
	if (api_json_u64(obj, "va", &r->va, &has_va, &c->prob) ||
	    api_json_u64(obj, "cpu", &cpu, &r->has_cpu, &c->prob) ||
	    api_json_u64(obj, "pid", &pid, &r->has_pid, &c->prob) ||
	    api_json_str(obj, "mode", mode, sizeof(mode) - 1, NULL, &c->prob) ||
	    api_json_str(obj, "access", access, sizeof(access) - 1, NULL,
			 &c->prob) ||
	    api_json_bool(obj, "explain", explain, NULL, &c->prob))
		return -1;
	if (!has_va)
		return api_fail(&c->prob, "missing_field",
				"va: the virtual address to translate");
	if (r->has_cpu && r->has_pid)
		return api_fail(&c->prob, "invalid_value",
				"give cpu or pid, not both");
	if (cpu > UINT32_MAX || pid > UINT32_MAX)
		return api_fail(&c->prob, "out_of_range",
				"%s: too large", cpu > UINT32_MAX ? "cpu" : "pid");
	r->cpu = (uint32_t)cpu;
	r->pid = (uint32_t)pid;
	if ((v = vm_mode_parse(mode)) < 0)
		return api_fail(&c->prob, "invalid_value",
				"mode: \"user\" or \"kernel\"");
	r->mode = (enum vm_mode)v;
	if ((v = vm_access_parse(access)) < 0)
		return api_fail(&c->prob, "invalid_value",
				"access: \"read\", \"write\" or \"exec\"");
	r->access = (enum vm_access)v;
	return 0;
}

static cJSON *translation_json(const struct vm_machine *m,
			       const struct vm_translation *t, bool explain)
{
	const struct vm_arch *a = vm_machine_layout(m)->arch;
	cJSON *o = cJSON_CreateObject();

	api_add_hex(o, "va", t->va);
	api_add_u64(o, "pid", t->pid);
	if (t->via_cpu)
		api_add_u64(o, "cpu", t->cpu);
	else
		cJSON_AddNullToObject(o, "cpu");
	cJSON_AddStringToObject(o, "mode", vm_mode_name(t->mode));
	cJSON_AddStringToObject(o, "access", vm_access_name(t->access));
	cJSON_AddBoolToObject(o, "ok", t->ok);
	if (t->ok)
		api_add_hex(o, "pa", t->pa);
	else
		cJSON_AddNullToObject(o, "pa");
	cJSON_AddStringToObject(o, "region", vm_region_name(t->region));
	if (t->page_size)
		api_add_u64(o, "page_size", t->page_size);
	else
		cJSON_AddNullToObject(o, "page_size");
	if (t->ok) {
		cJSON_AddNullToObject(o, "fault");
	} else {
		cJSON *f = cJSON_AddObjectToObject(o, "fault");

		cJSON_AddStringToObject(f, "kind",
					vm_fault_kind_name(t->fault.kind));
		api_add_hex(f, "error_code", t->fault.error_code);
		api_add_hex(f, "linux_error_code", t->fault.linux_error_code);
		cJSON_AddStringToObject(f, "outcome",
					vm_outcome_name(t->fault.outcome));
		if (t->fault.si_code != VM_SI_NONE) {
			cJSON_AddStringToObject(f, "signal", "SIGSEGV");
			cJSON_AddStringToObject(f, "si_code",
						vm_si_code_name(t->fault.si_code));
		} else {
			cJSON_AddNullToObject(f, "signal");
			cJSON_AddNullToObject(f, "si_code");
		}
		if (t->fault.level >= 0)
			cJSON_AddStringToObject(f, "level",
						a->level[t->fault.level].name);
		else
			cJSON_AddNullToObject(f, "level");
		cJSON_AddStringToObject(f, "reason", t->fault.reason);
	}
	if (explain) {
		cJSON *walk = cJSON_AddArrayToObject(o, "walk");

		for (unsigned i = 0; i < t->nwalk; i++) {
			cJSON *s = cJSON_CreateObject(), *fl;
			const char *names[12];
			unsigned n = vm_entry_flags(m, t->walk[i].level,
						    t->walk[i].entry, names);

			cJSON_AddStringToObject(s, "level",
						a->level[t->walk[i].level].name);
			api_add_u64(s, "index", t->walk[i].index);
			api_add_hex(s, "entry_pa", t->walk[i].entry_pa);
			api_add_entry(s, "entry", t->walk[i].entry,
				      a->entry_size * 2);
			fl = cJSON_AddArrayToObject(s, "flags");
			for (unsigned k = 0; k < n; k++)
				cJSON_AddItemToArray(fl,
						     cJSON_CreateString(names[k]));
			cJSON_AddItemToArray(walk, s);
		}
	}
	return o;
}

int api_translate(struct api_call *c)
{
	struct vm_translate_req r;
	struct vm_translation t;
	struct vm_error err = { 0, "" };
	struct api_entry *e;
	struct api_writer w;
	bool explain;
	cJSON *o;

	if (read_translate(c, c->body, &r, &explain) || !(e = api_open(c, false)))
		return -1;
	if (vm_translate(e->m, &r, &t, &err)) {
		api_close(c, e, false);
		return api_vm_fail(c, &err);
	}
	if (use_reference) {
		o = translation_json(e->m, &t, explain);
		api_close(c, e, false);
		return api_reply(c, 200, o);
	}
	api_writer_init(&w, e->m);
	api_writer_put(&w, &t, explain);
	api_close(c, e, false);
	return reply_buf(c, &w.buf);
}

/* "items[3]: " before the problem of item i. */
static void item_detail(struct api_call *c, int i)
{
	char d[API_DETAIL_MAX];

	snprintf(d, sizeof(d), "items[%d]: %.290s", i, c->prob.detail);
	strcpy(c->prob.detail, d);
}

/*
 * The tree of the body as routes.c's prepare_body makes it for a route
 * with fields, for a dispatcher that leaves a batch its raw text: strict
 * scan, an object, no member but the route's fields.
 */
static int batch_tree(struct api_call *c)
{
	const char *fields[8];
	unsigned n = 0;

	if (c->body)
		return 0; /* the dispatcher made it */
	if (api_json_parse(c->req->body, c->req->body_len, &c->body, &c->prob))
		return -1;
	if (!cJSON_IsObject(c->body))
		return api_fail(&c->prob, "wrong_type",
				"the body must be a JSON object");
	for (const struct api_field *f = c->route->fields; f->name && n < 7;
	     f++)
		fields[n++] = f->name;
	fields[n] = NULL;
	return api_json_only(c->body, fields, &c->prob);
}

/* A batch the strict way: a cJSON tree in, a cJSON tree out. */
static int batch_reference(struct api_call *c)
{
	static const char *const fields[] = { "va",     "cpu",    "pid",
					      "mode",   "access", "explain",
					      NULL };
	const cJSON *items, *it;
	struct vm_translate_req *reqs;
	bool *explain;
	struct api_entry *e;
	int n, i = 0, rc = 0;
	cJSON *o, *results;

	if (batch_tree(c))
		return -1;
	items = cJSON_GetObjectItemCaseSensitive(c->body, "items");
	if (!items)
		return api_fail(&c->prob, "missing_field",
				"items: an array of translate requests");
	if (!cJSON_IsArray(items))
		return api_fail(&c->prob, "wrong_type",
				"items: must be an array");
	n = cJSON_GetArraySize(items);
	if (n > API_MAX_BATCH)
		return api_fail(&c->prob, "batch_too_large",
				"items: %d requests; at most %d in one batch",
				n, API_MAX_BATCH);
	reqs = calloc((size_t)n + 1, sizeof(*reqs));
	explain = calloc((size_t)n + 1, sizeof(*explain));
	if (!reqs || !explain)
		abort();
	/* Every item is validated before the machine is touched. */
	cJSON_ArrayForEach(it, items) {
		if (!cJSON_IsObject(it)) {
			rc = api_fail(&c->prob, "wrong_type",
				      "items[%d]: must be an object", i);
			break;
		}
		if (api_json_only(it, fields, &c->prob) ||
		    read_translate(c, it, &reqs[i], &explain[i])) {
			item_detail(c, i);
			rc = -1;
			break;
		}
		i++;
	}
	if (rc || !(e = api_open(c, false))) {
		free(reqs);
		free(explain);
		return -1;
	}
	o = cJSON_CreateObject();
	results = cJSON_AddArrayToObject(o, "results");
	for (i = 0; i < n; i++) {
		struct vm_translation t;
		struct vm_error err = { 0, "" };

		if (vm_translate(e->m, &reqs[i], &t, &err)) {
			api_vm_fail(c, &err);
			item_detail(c, i);
			rc = -1;
			break;
		}
		cJSON_AddItemToArray(results, translation_json(e->m, &t,
							       explain[i]));
	}
	api_close(c, e, false);
	free(reqs);
	free(explain);
	if (rc) {
		cJSON_Delete(o);
		return -1;
	}
	return api_reply(c, 200, o);
}

/*
 * A batch in the plain form, read and answered without a tree; any other
 * body the reference way, which says what is wrong with it (batch.h).
 */
int api_translate_batch(struct api_call *c)
{
	struct api_batch in;
	struct api_writer w;
	struct api_entry *e;
	size_t i;

	if (use_reference ||
	    api_batch_read(c->req->body, c->req->body_len, &in))
		return batch_reference(c);
	if (!(e = api_open(c, false))) {
		api_batch_free(&in);
		return -1;
	}
	api_writer_init(&w, e->m);
	/* About 150 bytes an answer without its walk. */
	api_buf_reserve(&w.buf, 16 + in.n * 160);
	API_BUF_LIT(&w.buf, "{\"results\":[");
	for (i = 0; i < in.n; i++) {
		struct vm_translation t;
		struct vm_error err = { 0, "" };

		if (vm_translate(e->m, &in.items[i].req, &t, &err)) {
			api_vm_fail(c, &err);
			item_detail(c, (int)i);
			break;
		}
		if (i)
			API_BUF_LIT(&w.buf, ",");
		api_writer_put(&w, &t, in.items[i].explain);
	}
	api_close(c, e, false);
	if (i < in.n) {
		api_batch_free(&in);
		free(w.buf.s);
		return -1;
	}
	api_batch_free(&in);
	API_BUF_LIT(&w.buf, "]}");
	return reply_buf(c, &w.buf);
}

static void segment_cb(void *ctx, uint64_t pa, uint64_t length)
{
	cJSON *s = cJSON_CreateObject();

	api_add_hex(s, "pa", pa);
	api_add_u64(s, "length", length);
	cJSON_AddItemToArray(ctx, s);
}

int api_dma_check(struct api_call *c)
{
	struct vm_dma_req r = { 0, 0, 32, false, 0 };
	struct vm_dma_result res;
	struct vm_error err = { 0, "" };
	struct api_entry *e;
	uint64_t bits = 32, pid = 0;
	bool has_va, has_len;
	cJSON *o, *segs, *reasons;

	if (api_json_u64(c->body, "va", &r.va, &has_va, &c->prob) ||
	    api_json_size(c->body, "length", &r.length, &has_len, &c->prob) ||
	    api_json_u64(c->body, "dma_mask_bits", &bits, NULL, &c->prob) ||
	    api_json_u64(c->body, "pid", &pid, &r.has_pid, &c->prob))
		return -1;
	if (!has_va || !has_len)
		return api_fail(&c->prob, "missing_field",
				"%s: the buffer to check",
				has_va ? "length" : "va");
	if (bits < 1 || bits > 64)
		return api_fail(&c->prob, "out_of_range",
				"dma_mask_bits: 1 to 64 (24 is ISA, 32 the "
				"default)");
	if (pid > UINT32_MAX)
		return api_fail(&c->prob, "out_of_range", "pid: too large");
	r.mask_bits = (unsigned)bits;
	r.pid = (uint32_t)pid;
	if (!(e = api_open(c, false)))
		return -1;
	o = cJSON_CreateObject();
	api_add_hex(o, "va", r.va);
	api_add_u64(o, "length", r.length);
	api_add_u64(o, "dma_mask_bits", r.mask_bits);
	segs = cJSON_CreateArray();
	if (vm_dma_check(e->m, &r, &res, segment_cb, segs, &err)) {
		api_close(c, e, false);
		cJSON_Delete(segs);
		cJSON_Delete(o);
		return api_vm_fail(c, &err);
	}
	api_close(c, e, false);
	cJSON_AddBoolToObject(o, "single_ok", res.single_ok);
	cJSON_AddBoolToObject(o, "sg_ok", res.sg_ok);
	cJSON_AddItemToObject(o, "segments", segs);
	reasons = cJSON_AddArrayToObject(o, "reasons");
	for (unsigned b = 0; b < VM_DMA_NREASONS; b++)
		if (res.reasons & (1u << b))
			cJSON_AddItemToArray(
				reasons, cJSON_CreateString(vm_dma_reason_name(b)));
	return api_reply(c, 200, o);
}

/*
 * __pa and __va: {in: address} -> {in, out}, or the kernel's reason why
 * the address has no such translation.
 */
static int convert(struct api_call *c, const char *in, const char *out,
		   const char *what,
		   int (*fn)(const struct vm_machine *m, uint64_t a,
			     uint64_t *b, struct vm_error *err))
{
	struct vm_error err = { 0, "" };
	struct api_entry *e;
	uint64_t a, b;
	bool has;
	int rc;
	cJSON *o;

	if (api_json_u64(c->body, in, &a, &has, &c->prob))
		return -1;
	if (!has)
		return api_fail(&c->prob, "missing_field", "%s: %s", in, what);
	if (!(e = api_open(c, false)))
		return -1;
	rc = fn(e->m, a, &b, &err);
	api_close(c, e, false);
	if (rc)
		return api_vm_fail(c, &err);
	o = cJSON_CreateObject();
	api_add_hex(o, in, a);
	api_add_hex(o, out, b);
	return api_reply(c, 200, o);
}

int api_virt_to_phys(struct api_call *c)
{
	return convert(c, "va", "pa", "a kernel logical address",
		       vm_virt_to_phys);
}

int api_phys_to_virt(struct api_call *c)
{
	return convert(c, "pa", "va", "a physical address", vm_phys_to_virt);
}
