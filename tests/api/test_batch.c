/*
 * test_batch.c - the translate routes' fast JSON path against the cJSON
 * reference (api/batch.h).
 *
 * Every body goes through api_dispatch twice, once as the daemon answers
 * it and once with api_translate_use_reference(true), which answers the
 * way the routes did before api/batch.c (strict scan, cJSON tree, cJSON
 * print); status, headers and every byte of the body must agree.
 *
 * Covered, on a machine of every arch with two processes, mappings of
 * every protection (populated and not), kmalloc, vmalloc and a second CPU
 * running the other process: seeded random batches and single translates
 * of addresses near everything mapped, random, non-canonical and beyond
 * 32 bits, by pid and by CPU (existing and not), in user and kernel mode,
 * for read, write and exec, with and without the walk, the integers as
 * numbers and as strings of every form, keys in any order and whitespace
 * anywhere; until each fault kind, outcome and signal code has answered.
 * Hostile bodies: the same batches with bytes and tokens broken, and a
 * list of every refusal the strict path has for a batch (malformed text,
 * duplicate keys, escapes, U+0000, invalid UTF-8, depth, imprecise and
 * overlong numbers, trailing data, unknown fields, wrong types, out of
 * range values, 10,001 items, no such machine). The reader itself, on
 * every body above, against the way the route read a batch before (the
 * strict scan and json.h's field readers, in ref_read): it never takes
 * a body that way refuses and reads what it takes into the same
 * requests (a dispatcher that scans every body first would hide that
 * from the answers), takes every plain body the generator makes, and
 * reads integer strings exactly as api_parse_u64 at their edges. The
 * writer's slow path for names, and its string and number printing
 * against cJSON's.
 */
#include <check.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/batch.h"
#include "api/internal.h"
#include "api/json.h"
#include "core/machine.h"
#include "tests/support/memstore.h"

/* ---- a store in memory (tests/support/memstore.h) ---- */

#define NSLOTS 8

static struct memstore store;

static struct api_entry *find(const char *owner, const char *id)
{
	struct memstore_slot *s = memstore_find(&store, owner, id);

	return s ? &s->pub : NULL;
}

static struct api_ctx ctx;

static void setup(void)
{
	memset(&ctx, 0, sizeof(ctx));
	memstore_init(&store, NSLOTS, 0, 0);
	ctx.store.ops = &memstore_ops;
	ctx.store.impl = &store;
	ctx.config.version = "test";
	api_translate_use_reference(false);
}

static void teardown(void)
{
	memstore_free(&store);
	api_translate_use_reference(false);
}

/* ---- requests ---- */

static void dispatch(const char *method, const char *path, const char *body,
		     size_t len, struct api_response *r)
{
	struct api_request rq = {
		.method = method, .path = path,
		.content_type = "application/json",
		.body = body, .body_len = len,
	};

	api_dispatch(&ctx, &rq, r);
}

/* A setup request that must succeed; its answer parsed (caller frees). */
static cJSON *must(const char *method, const char *path, const char *fmt, ...)
{
	struct api_response r;
	char body[512];
	va_list ap;
	cJSON *o;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	dispatch(method, path, body, strlen(body), &r);
	ck_assert_msg(r.status / 100 == 2, "%s %s %s: %d %.300s", method, path,
		      body, r.status, r.body ? r.body : "");
	o = cJSON_ParseWithLength(r.body, r.body_len);
	ck_assert_ptr_nonnull(o);
	api_response_release(&r);
	return o;
}

/* What the answers of the random runs held, so that none goes untested. */
static struct {
	unsigned ok, faults, walks, problems, by_cpu;
	unsigned kind[4], outcome[4], si[4];
	unsigned fast, declined;
} seen;

static void count(const char *body, const char *what, unsigned *n)
{
	for (const char *p = body; (p = strstr(p, what)); p++)
		(*n)++;
}

static void tally(const struct api_response *r)
{
	static const char *const kinds[] = {
		"\"kind\":\"none\"", "\"kind\":\"not_present\"",
		"\"kind\":\"protection\"", "\"kind\":\"general_protection\""
	};
	static const char *const outcomes[] = {
		"\"outcome\":\"none\"", "\"outcome\":\"sigsegv\"",
		"\"outcome\":\"demand_paging\"", "\"outcome\":\"oops\""
	};
	static const char *const si[] = {
		"\"si_code\":null", "\"si_code\":\"SEGV_MAPERR\"",
		"\"si_code\":\"SEGV_ACCERR\"", "\"si_code\":\"SI_KERNEL\""
	};

	if (r->status != 200) {
		seen.problems++;
		return;
	}
	count(r->body, "\"ok\":true", &seen.ok);
	count(r->body, "\"ok\":false", &seen.faults);
	count(r->body, "\"walk\":[{", &seen.walks);
	count(r->body, "\"cpu\":0,", &seen.by_cpu);
	count(r->body, "\"cpu\":1,", &seen.by_cpu);
	for (int i = 0; i < 4; i++) {
		count(r->body, kinds[i], &seen.kind[i]);
		count(r->body, outcomes[i], &seen.outcome[i]);
		count(r->body, si[i], &seen.si[i]);
	}
}

/*
 * The heart of it: path with body answered the fast way and the
 * reference way, byte for byte.
 */
static void same_answer(const char *path, const char *body, size_t len)
{
	struct api_response f, r;
	size_t at = 0;

	api_translate_use_reference(false);
	dispatch("POST", path, body, len, &f);
	api_translate_use_reference(true);
	dispatch("POST", path, body, len, &r);
	api_translate_use_reference(false);
	while (at < f.body_len && at < r.body_len && f.body[at] == r.body[at])
		at++;
	ck_assert_msg(f.status == r.status && f.body_len == r.body_len &&
			      at == f.body_len,
		      "%s %.200s%s:\nstatus %d, reference %d; bodies differ "
		      "at byte %zu:\nfast      ...%.160s\nreference ...%.160s",
		      path, body, len > 200 ? "..." : "", f.status, r.status,
		      at, f.body + (at > 40 ? at - 40 : 0),
		      r.body + (at > 40 ? at - 40 : 0));
	ck_assert_str_eq(f.content_type, r.content_type);
	ck_assert_uint_eq(f.nheaders, r.nheaders);
	for (unsigned i = 0; i < f.nheaders; i++) {
		ck_assert_str_eq(f.headers[i].name, r.headers[i].name);
		ck_assert_str_eq(f.headers[i].value, r.headers[i].value);
	}
	ck_assert_str_eq(f.route, r.route);
	tally(&r);
	api_response_release(&f);
	api_response_release(&r);
}

/* ---- a seeded random sequence and text ---- */

static uint64_t rng;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dULL;
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

struct text {
	char *s;
	size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = t->cap - t->len;

		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if ((size_t)n < room)
			break;
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		ck_assert_ptr_nonnull(t->s);
	}
	t->len += (size_t)n;
}

/* Whitespace, now and then, where JSON allows it. */
static void ws(struct text *t)
{
	static const char *const w[] = { " ", "\n", "\t", "\r\n ", "  " };

	if (below(8) == 0)
		add(t, "%s", w[below(5)]);
}

/* ---- the machines: one of each arch ---- */

static const char *const arches[] = { "i386", "i386-pae", "x86_64",
				      "x86_64-la57" };

#define NADDR 256

/* A machine to translate on, and addresses worth translating near. */
struct target {
	char id[32];
	unsigned va_bits;
	uint64_t addr[NADDR];
	unsigned naddr;
};

/* Every "0x..." string in an answer, as an address to go near. */
static void harvest(struct target *tg, const cJSON *o)
{
	const cJSON *it;

	if (cJSON_IsString(o) && strncmp(o->valuestring, "0x", 2) == 0 &&
	    tg->naddr < NADDR)
		tg->addr[tg->naddr++] = strtoull(o->valuestring, NULL, 16);
	cJSON_ArrayForEach(it, o)
		harvest(tg, it);
}

static void keep(struct target *tg, cJSON *o)
{
	harvest(tg, o);
	cJSON_Delete(o);
}

static void make_target(struct target *tg, unsigned a)
{
	char p[128];
	static const char *const prots[] = { "r--", "rw-", "r-x", "---",
					     "rwx", "-w-" };

	memset(tg, 0, sizeof(*tg));
	snprintf(tg->id, sizeof(tg->id), "m%u", a);
	tg->va_bits = a < 2 ? 32 : a == 2 ? 48 : 57;
	cJSON_Delete(must("POST", "/v1/machines",
			  "{\"id\":\"%s\",\"arch\":\"%s\",\"cpus\":2,"
			  "\"seed\":%u,\"memory\":\"256MiB\"}",
			  tg->id, arches[a], 7 + a));
	snprintf(p, sizeof(p), "/v1/machines/%s/processes", tg->id);
	keep(tg, must("POST", p, "{\"name\":\"one\"}"));
	keep(tg, must("POST", p, "{\"name\":\"two\",\"populate\":false}"));
	for (unsigned i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "/v1/machines/%s/processes/%u/mmap",
			 tg->id, 1 + i % 2);
		keep(tg, must("POST", p,
			      "{\"length\":%u,\"prot\":\"%s\","
			      "\"populate\":%s}",
			      (i == 2 ? 512u : 4u) * 4096, prots[i],
			      i % 3 ? "true" : "false"));
	}
	snprintf(p, sizeof(p), "/v1/machines/%s/kmalloc", tg->id);
	keep(tg, must("POST", p, "{\"size\":4096}"));
	snprintf(p, sizeof(p), "/v1/machines/%s/vmalloc", tg->id);
	keep(tg, must("POST", p, "{\"size\":\"16KiB\"}"));
	snprintf(p, sizeof(p), "/v1/machines/%s/cpus/1/switch", tg->id);
	cJSON_Delete(must("POST", p, "{\"pid\":2}"));
	for (unsigned pid = 1; pid <= 2; pid++) {
		snprintf(p, sizeof(p), "/v1/machines/%s/processes/%u",
			 tg->id, pid);
		keep(tg, must("GET", p, ""));
	}
	snprintf(p, sizeof(p), "/v1/machines/%s/layout", tg->id);
	keep(tg, must("GET", p, ""));
	ck_assert_uint_gt(tg->naddr, 20);
}

/* ---- random requests ---- */

/* An address: near something, random, non-canonical or an edge. */
static uint64_t pick_va(const struct target *tg, bool may_fail)
{
	uint64_t top = tg->va_bits == 64 ? UINT64_MAX
					 : (1ULL << tg->va_bits) - 1;

	switch (below(10)) {
	case 0:
		return rnd() & top;
	case 1:
		if (tg->va_bits == 32 && !may_fail)
			return rnd() & 0xffffffffULL;
		/* Bit va_bits - 1 not copied up: non-canonical. */
		return (rnd() & top) ^ (1ULL << 63);
	case 2: {
		static const uint64_t edge[] = { 0, 0xfff, 0x1000,
						 0xffffffffULL };

		return edge[below(4)];
	}
	default:
		return tg->addr[below(tg->naddr)] + (rnd() % 0x6000) - 0x3000;
	}
}

/* An integer field's value in one of the forms the routes take. */
static void put_int(struct text *t, uint64_t v)
{
	switch (below(v <= API_MAX_SAFE_INT ? 5 : 4)) {
	case 0:
		add(t, "\"0x%" PRIx64 "\"", v);
		break;
	case 1:
		add(t, "\"0X%" PRIX64 "\"", v);
		break;
	case 2:
		add(t, "\"%" PRIu64 "\"", v);
		break;
	case 3:
		add(t, "\"0x%016" PRIx64 "\"", v);
		break;
	default:
		add(t, "%" PRIu64, v);
	}
}

/*
 * One translate request object; may_fail lets in what fails the whole
 * batch: a pid or CPU that does not exist, a va beyond 32 bits.
 */
static void gen_item(struct text *t, const struct target *tg, bool may_fail)
{
	const char *member[6];
	char buf[6][48];
	unsigned n = 0, who = below(may_fail ? 12 : 10);
	struct text v = { NULL, 0, 0 };

	put_int(&v, pick_va(tg, may_fail));
	member[n++] = "va";
	snprintf(buf[0], sizeof(buf[0]), "%s", v.s);
	free(v.s);
	if (who < 7) {
		static const uint64_t ids[] = { 1, 2, 1, 0, 1, 0, 1 };
		struct text w = { NULL, 0, 0 };

		put_int(&w, ids[who]);
		member[n] = who < 3 ? "pid" : "cpu";
		snprintf(buf[n++], sizeof(buf[0]), "%s", w.s);
		free(w.s);
	} else if (who >= 10) {
		/* No such task, no such CPU. */
		member[n] = who == 10 ? "pid" : "cpu";
		snprintf(buf[n++], sizeof(buf[0]), "%u", who == 10 ? 3 : 2);
	}
	if (below(2)) {
		member[n] = "mode";
		snprintf(buf[n++], sizeof(buf[0]), "\"%s\"",
			 below(2) ? "user" : "kernel");
	}
	if (below(2)) {
		static const char *const acc[] = { "read", "write", "exec" };

		member[n] = "access";
		snprintf(buf[n++], sizeof(buf[0]), "\"%s\"", acc[below(3)]);
	}
	if (below(3) == 0) {
		member[n] = "explain";
		snprintf(buf[n++], sizeof(buf[0]), "%s",
			 below(3) ? "true" : "false");
	}
	/* In any order. */
	for (unsigned i = n - 1; i > 0; i--) {
		unsigned j = below(i + 1);
		const char *m = member[i];
		char b[48];

		member[i] = member[j];
		member[j] = m;
		memcpy(b, buf[i], sizeof(b));
		memcpy(buf[i], buf[j], sizeof(b));
		memcpy(buf[j], b, sizeof(b));
	}
	add(t, "{");
	for (unsigned i = 0; i < n; i++) {
		ws(t);
		add(t, "%s\"%s\"", i ? "," : "", member[i]);
		ws(t);
		add(t, ":");
		ws(t);
		add(t, "%s", buf[i]);
		ws(t);
	}
	add(t, "}");
}

static void gen_batch(struct text *t, const struct target *tg, unsigned n,
		      bool may_fail)
{
	t->len = 0;
	ws(t);
	add(t, "{");
	ws(t);
	add(t, "\"items\"");
	ws(t);
	add(t, ":");
	ws(t);
	add(t, "[");
	for (unsigned i = 0; i < n; i++) {
		ws(t);
		if (i)
			add(t, ",");
		ws(t);
		gen_item(t, tg, may_fail);
	}
	ws(t);
	add(t, "]");
	ws(t);
	add(t, "}");
	ws(t);
}

static unsigned scale(void)
{
	const char *s = getenv("VMLAB_TEST_SCALE");
	int n = s ? atoi(s) : 1;

	return n > 0 ? (unsigned)n : 1;
}

static void batch_path(const struct target *tg, char *path, size_t cap)
{
	snprintf(path, cap, "/v1/machines/%s/translate/batch", tg->id);
}

/*
 * The reference reader: how the batch route read a body before batch.c
 * (routes.c's prepare_body, then translate.c's read_translate for each
 * item), through json.h alone. 0 with the requests in b, -1 when the
 * route refuses the body before it translates anything.
 */
static int ref_item(const cJSON *obj, struct api_batch_item *it)
{
	static const char *const fields[] = { "va", "cpu", "pid", "mode",
					      "access", "explain", NULL };
	struct vm_translate_req *r = &it->req;
	struct api_problem p;
	uint64_t cpu = 0, pid = 0;
	char mode[16] = "user", access[16] = "read";
	bool has_va;
	int v;

	memset(it, 0, sizeof(*it));
	if (!cJSON_IsObject(obj) || api_json_only(obj, fields, &p) ||
	    api_json_u64(obj, "va", &r->va, &has_va, &p) ||
	    api_json_u64(obj, "cpu", &cpu, &r->has_cpu, &p) ||
	    api_json_u64(obj, "pid", &pid, &r->has_pid, &p) ||
	    api_json_str(obj, "mode", mode, sizeof(mode) - 1, NULL, &p) ||
	    api_json_str(obj, "access", access, sizeof(access) - 1, NULL,
			 &p) ||
	    api_json_bool(obj, "explain", &it->explain, NULL, &p))
		return -1;
	if (!has_va || (r->has_cpu && r->has_pid) || cpu > UINT32_MAX ||
	    pid > UINT32_MAX)
		return -1;
	r->cpu = (uint32_t)cpu;
	r->pid = (uint32_t)pid;
	if ((v = vm_mode_parse(mode)) < 0)
		return -1;
	r->mode = (enum vm_mode)v;
	if ((v = vm_access_parse(access)) < 0)
		return -1;
	r->access = (enum vm_access)v;
	return 0;
}

static int ref_read(const char *text, size_t len, struct api_batch *b)
{
	static const char *const top[] = { "items", NULL };
	struct api_problem p;
	cJSON *root = NULL;
	const cJSON *items, *it;
	int rc = -1;

	memset(b, 0, sizeof(*b));
	if (api_json_parse(text, len, &root, &p))
		return -1;
	items = cJSON_GetObjectItemCaseSensitive(root, "items");
	if (!cJSON_IsObject(root) || api_json_only(root, top, &p) ||
	    !cJSON_IsArray(items) ||
	    cJSON_GetArraySize(items) > API_MAX_BATCH)
		goto out;
	b->cap = (size_t)cJSON_GetArraySize(items) + 1;
	b->items = calloc(b->cap, sizeof(*b->items));
	ck_assert_ptr_nonnull(b->items);
	cJSON_ArrayForEach(it, items)
		if (ref_item(it, &b->items[b->n++]))
			goto out;
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc)
		api_batch_free(b);
	return rc;
}

static void same_item(const struct api_batch_item *a,
		      const struct api_batch_item *b)
{
	ck_assert_uint_eq(a->req.va, b->req.va);
	ck_assert_int_eq(a->req.has_cpu, b->req.has_cpu);
	ck_assert_uint_eq(a->req.cpu, b->req.cpu);
	ck_assert_int_eq(a->req.has_pid, b->req.has_pid);
	ck_assert_uint_eq(a->req.pid, b->req.pid);
	ck_assert_int_eq(a->req.mode, b->req.mode);
	ck_assert_int_eq(a->req.access, b->req.access);
	ck_assert_int_eq(a->explain, b->explain);
}

/*
 * The reader never takes a body the reference refuses, and reads what it
 * takes as the reference does; plain bodies (the generator's) it takes.
 * (The dispatcher may scan a body before the route sees it, which would
 * hide a reader that takes too much from same_answer: hence this.)
 */
static void check_taken(const struct text *t, bool plain)
{
	struct api_batch f, r;
	int rc = api_batch_read(t->s, t->len, &f);
	int ref = ref_read(t->s, t->len, &r);

	if (plain)
		ck_assert_msg(rc == 0, "declined a plain body: %.300s", t->s);
	if (rc == 0) {
		ck_assert_msg(ref == 0, "took what the reference refuses: "
			      "%.*s", (int)t->len, t->s);
		ck_assert_uint_eq(f.n, r.n);
		for (size_t i = 0; i < f.n; i++)
			same_item(&f.items[i], &r.items[i]);
		seen.fast++;
	} else {
		seen.declined++;
	}
	api_batch_free(&f);
	api_batch_free(&r);
}

START_TEST(random_batches)
{
	struct target tg;
	struct text t = { NULL, 0, 0 };
	char path[96];

	rng = 0x9e3779b97f4a7c15ULL + (uint64_t)_i;
	memset(&seen, 0, sizeof(seen));
	make_target(&tg, (unsigned)_i);
	batch_path(&tg, path, sizeof(path));
	for (unsigned k = 0; k < 150 * scale(); k++) {
		bool may_fail = below(5) == 0;
		unsigned n = below(8) == 0 ? below(400) : below(12);

		gen_batch(&t, &tg, n, may_fail);
		check_taken(&t, true);
		same_answer(path, t.s, t.len);
	}
	/* Big ones: the answer buffer grows past its first guess. */
	gen_batch(&t, &tg, 1000, false);
	same_answer(path, t.s, t.len);
	t.len = 0;
	add(&t, "{\"items\":[");
	for (unsigned i = 0; i < 1000; i++)
		add(&t, "%s{\"va\":\"0x%" PRIx64 "\",\"explain\":true,"
			"\"pid\":1}", i ? "," : "", pick_va(&tg, false));
	add(&t, "]}");
	check_taken(&t, true);
	same_answer(path, t.s, t.len);
	/* An empty batch. */
	t.len = 0;
	add(&t, "{\"items\":[]}");
	check_taken(&t, true);
	same_answer(path, t.s, t.len);
	/* Every kind of answer came up. */
	ck_assert_uint_gt(seen.ok, 0);
	ck_assert_uint_gt(seen.walks, 0);
	ck_assert_uint_gt(seen.by_cpu, 0);
	ck_assert_uint_gt(seen.problems, 0);
	/* No address is non-canonical on 32 bits: no #GP there. */
	for (int i = 1; i < (tg.va_bits == 32 ? 3 : 4); i++) {
		ck_assert_msg(seen.kind[i] > 0, "no fault kind %d", i);
		ck_assert_msg(seen.si[i] > 0, "no si_code %d", i);
	}
	ck_assert_uint_gt(seen.si[0], 0);
	ck_assert_uint_gt(seen.outcome[1], 0);
	ck_assert_uint_gt(seen.outcome[2], 0);
	ck_assert_uint_gt(seen.outcome[3], 0);
	free(t.s);
}
END_TEST

START_TEST(random_singles)
{
	struct target tg;
	struct text t = { NULL, 0, 0 };
	char path[96];

	rng = 0x51ed2701ULL + (uint64_t)_i;
	make_target(&tg, (unsigned)_i);
	snprintf(path, sizeof(path), "/v1/machines/%s/translate", tg.id);
	for (unsigned k = 0; k < 400 * scale(); k++) {
		t.len = 0;
		gen_item(&t, &tg, below(5) == 0);
		same_answer(path, t.s, t.len);
	}
	free(t.s);
}
END_TEST

/* ---- hostile bodies ---- */

/* Breaks t once: a byte changed, put in or taken out, or a token put in. */
static void mutate(struct text *t)
{
	static const char bytes[] = "{}[]\",:\\ \t\n0123456789abcdefxX-+.eE"
				    "\x01\x1f\x7f\x80\xbf\xc0\xc3\xed\xf4\xff";
	static const char *const tokens[] = {
		"\"va\":1,", "\"va\":\"0x1\",", "\"pid\":1,", "\"cpu\":0,",
		"\"mode\":\"user\",", "\"explain\":true,", "\"zz\":1,",
		"\"v\\u0061\":1,", "\"\\u0000\":1,", "\"va\":\"\\u0000\",",
		"\"va\":1.5,", "\"va\":1e3,", "\"va\":-1,", "\"va\":-0,",
		"\"va\":9007199254740991,", "\"va\":9007199254740992,",
		"\"va\":0.0000000000000000000000000000000000000000000000000"
		"000000000001,",
		"\"va\":null,", "\"va\":[],", "\"va\":{},", "\"va\":true,",
		"\"va\":\"\",", "\"va\":\"0x\",", "\"va\":\"12ab\",",
		"\"va\":\"0x10000000000000000\",",
		"\"va\":\"18446744073709551616\",", "\"va\":\"\\u0030x1\",",
		"\"mode\":\"USER\",", "\"mode\":\"user \",",
		"\"mode\":\"a-mode-name-over-15-bytes\",", "\"mode\":1,",
		"\"access\":\"exe\",", "\"explain\":1,",
		"\"explain\":\"true\",",
		"\"pid\":4294967296,", "\"cpu\":\"0x100000000\",",
		"\"pid\":\"4294967295\",", "\"pid\":-1,", "\"\xc3\xa9\":1,",
		"\"va\":\"\xc3\xa9\",", "\"va\":\"\xed\xa0\x80\",",
		"\"va\":\"\\ud800\",", "\"va\":\"\\udc00x\",",
		"\"va\":01,", "\"va\":1.,", "\"va\":.5,", "\"va\":1e,",
		"\"va\":tru,", "\"items\":[],", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		"[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],",
		"\"va\":\"0x1\"\"pid\":1,", "\"va\"1,", ",", "{", "}", "]",
		"\xef\xbb\xbf", "\"va\":\"\t\",", "\"va\":\"\\n\",",
	};
	size_t at = t->len ? (size_t)below((unsigned)t->len + 1) : 0;
	char ins[200];
	size_t n = 0;

	switch (below(4)) {
	case 0: /* change */
		if (at < t->len)
			t->s[at] = bytes[below(sizeof(bytes) - 1)];
		return;
	case 1: /* take out up to 3 */
		n = below(4);
		if (at + n > t->len)
			n = t->len - at;
		memmove(t->s + at, t->s + at + n, t->len - at - n);
		t->len -= n;
		return;
	case 2: /* put in a byte */
		ins[0] = bytes[below(sizeof(bytes) - 1)];
		n = 1;
		break;
	default: { /* put in a token, where a member could begin */
		const char *tok = tokens[below(sizeof(tokens) /
					       sizeof(tokens[0]))];
		char *brace = at < t->len ? memchr(t->s + at, '{',
						   t->len - at) : NULL;

		if (brace)
			at = (size_t)(brace - t->s) + 1;
		n = strlen(tok);
		memcpy(ins, tok, n);
		break;
	}
	}
	add(t, "%*s", (int)n, "");
	memmove(t->s + at + n, t->s + at, t->len - n - at);
	memcpy(t->s + at, ins, n);
}

START_TEST(hostile_batches)
{
	struct target tg;
	struct text t = { NULL, 0, 0 };
	char path[96];

	rng = 0xdeadbeefULL + (uint64_t)_i;
	memset(&seen, 0, sizeof(seen));
	make_target(&tg, (unsigned)_i);
	batch_path(&tg, path, sizeof(path));
	for (unsigned k = 0; k < 1500 * scale(); k++) {
		gen_batch(&t, &tg, below(4), false);
		for (unsigned m = 1 + below(3); m > 0; m--)
			mutate(&t);
		check_taken(&t, false);
		same_answer(path, t.s, t.len);
	}
	/* Some broken bodies are still plain and fine; most are not. */
	ck_assert_uint_gt(seen.fast, 0);
	ck_assert_uint_gt(seen.declined, seen.fast);
	free(t.s);
}
END_TEST

/*
 * The refusals of the strict path, each as the reference gives it, and
 * for the top of the body also as a literal answer: the batch may take
 * its body raw from the dispatcher and then makes these itself.
 */
static const struct {
	const char *body;
	int status;
	const char *code;
	const char *detail; /* NULL: not pinned here */
} refusals[] = {
	{ "", 422, "missing_field", "items: an array of translate requests" },
	{ " ", 400, "malformed_json", "expected a value at byte 1" },
	{ "[]", 400, "wrong_type", "the body must be a JSON object" },
	{ "null", 400, "wrong_type", "the body must be a JSON object" },
	{ "{}", 422, "missing_field", "items: an array of translate requests" },
	{ "{\"items\":[],\"x\":1}", 422, "unknown_field",
	  "unknown field \"x\": this endpoint takes no such field" },
	{ "{\"items\":[],\"items\":[]}", 400, "duplicate_key",
	  "the key \"items\" appears twice in one object" },
	{ "{\"it\\u0065ms\":[]}", 200, NULL, NULL },
	{ "{\"items\":{}}", 400, "wrong_type", "items: must be an array" },
	{ "{\"items\":null}", 400, "wrong_type", "items: must be an array" },
	{ "{\"items\":[]} x", 400, "malformed_json",
	  "data after the JSON value at byte 13" },
	{ "\xef\xbb\xbf{\"items\":[]}", 400, "malformed_json", NULL },
	{ "{\"items\":[3]}", 400, "wrong_type", "items[0]: must be an object" },
	{ "{\"items\":[{}]}", 422, "missing_field", NULL },
	{ "{\"items\":[{\"va\":1},{\"va\":2,\"zz\":0}]}", 422,
	  "unknown_field", NULL },
	{ "{\"items\":[{\"va\":1,\"va\":2}]}", 400, "duplicate_key", NULL },
	{ "{\"items\":[{\"va\":1,\"v\\u0061\":2}]}", 400, "duplicate_key",
	  NULL },
	{ "{\"items\":[{\"va\":1,\"pid\":1,\"cpu\":0}]}", 422,
	  "invalid_value", "items[0]: give cpu or pid, not both" },
	{ "{\"items\":[{\"va\":9007199254740992}]}", 422, "imprecise_number",
	  NULL },
	{ "{\"items\":[{\"va\":1.5}]}", 400, "wrong_type", NULL },
	{ "{\"items\":[{\"va\":-1}]}", 422, "out_of_range", NULL },
	{ "{\"items\":[{\"va\":0.0000000000000000000000000000000000000000000"
	  "000000000000000000001}]}", 400, "wrong_type",
	  "items[0]: va: must be a non-negative integer" },
	{ "{\"items\":[{\"va\":1.000000000000000000000000000000000000000000000"
	  "0000000000000000000000000000}]}", 200, NULL, NULL },
	{ "{\"items\":[{\"va\":1e2}]}", 200, NULL, NULL },
	{ "{\"items\":[{\"va\":\"0x\"}]}", 422, "invalid_value", NULL },
	{ "{\"items\":[{\"va\":\"\\u0000\"}]}", 422, "invalid_value", NULL },
	{ "{\"items\":[{\"\\u0000\":1}]}", 422, "unknown_field", NULL },
	{ "{\"items\":[{\"va\":\"\xc3\"}]}", 400, "malformed_json", NULL },
	{ "{\"items\":[{\"va\":1,\"mode\":\"USER\"}]}", 422, "invalid_value",
	  NULL },
	{ "{\"items\":[{\"va\":1,\"mode\":\"kernel-and-more-than-15\"}]}", 422,
	  "invalid_value", NULL },
	{ "{\"items\":[{\"va\":1,\"explain\":1}]}", 400, "wrong_type", NULL },
	{ "{\"items\":[{\"va\":1,\"pid\":4294967296}]}", 422, "out_of_range",
	  NULL },
	{ "{\"items\":[{\"va\":1,\"pid\":null}]}", 400, "wrong_type", NULL },
	{ "{\"items\":[{\"va\":1,\"pid\":7}]}", 404, "not_found", NULL },
	{ "{\"items\":[{\"va\":1,\"cpu\":7}]}", 404, "not_found", NULL },
	{ "{\"items\":[{\"va\":1},]}", 400, "malformed_json", NULL },
	{ "{\"items\":[{\"va\":1}]", 400, "malformed_json", NULL },
};

START_TEST(refusals_as_before)
{
	struct target tg;
	char path[96];

	make_target(&tg, 2);
	batch_path(&tg, path, sizeof(path));
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const char *b = refusals[i].body;
		struct text t = { (char *)b, strlen(b), 0 };
		struct api_response r;
		cJSON *o, *code, *detail;

		check_taken(&t, false);
		same_answer(path, b, strlen(b));
		dispatch("POST", path, b, strlen(b), &r);
		ck_assert_msg(r.status == refusals[i].status, "%s: %d %s", b,
			      r.status, r.body);
		if (refusals[i].code) {
			o = cJSON_ParseWithLength(r.body, r.body_len);
			code = cJSON_GetObjectItem(o, "code");
			detail = cJSON_GetObjectItem(o, "detail");
			ck_assert_msg(strcmp(code->valuestring,
					     refusals[i].code) == 0,
				      "%s: %s", b, r.body);
			if (refusals[i].detail)
				ck_assert_str_eq(detail->valuestring,
						 refusals[i].detail);
			cJSON_Delete(o);
		}
		api_response_release(&r);
	}
	/* No such machine: after the body is read, as before. */
	for (int i = 0; i < 2; i++) {
		const char *b = i ? "{\"items\":[{\"va\":-1}]}"
				  : "{\"items\":[{\"va\":1}]}";

		same_answer("/v1/machines/nope/translate/batch", b, strlen(b));
	}
}
END_TEST

/* The most items a batch takes, and one more. */
START_TEST(batch_limit)
{
	struct target tg;
	struct text t = { NULL, 0, 0 };
	char path[96];

	make_target(&tg, 0);
	batch_path(&tg, path, sizeof(path));
	for (unsigned n = API_MAX_BATCH; n <= API_MAX_BATCH + 1; n++) {
		t.len = 0;
		add(&t, "{\"items\":[");
		for (unsigned i = 0; i < n; i++)
			add(&t, "%s{\"va\":%u}", i ? "," : "", i * 4096);
		add(&t, "]}");
		check_taken(&t, n == API_MAX_BATCH);
		same_answer(path, t.s, t.len);
	}
	free(t.s);
}
END_TEST

/* ---- the reader's integers, and the number writer ---- */

/* {"items":[{"va":<v>}]}: taken with its va, or declined. */
static bool read_va(const char *v, uint64_t *va)
{
	struct api_batch b;
	char body[160];

	snprintf(body, sizeof(body), "{\"items\":[{\"va\":%s}]}", v);
	if (api_batch_read(body, strlen(body), &b))
		return false;
	ck_assert_uint_eq(b.n, 1);
	*va = b.items[0].req.va;
	api_batch_free(&b);
	return true;
}

START_TEST(reader_integers)
{
	static const char alpha[] = "0123456789abcdefABCDEFxXg +-";
	static const char *const edges[] = {
		"18446744073709551615", "18446744073709551616",
		"18446744073709551619", "18446744073709551620",
		"184467440737095516150", "0018446744073709551615",
		"0xffffffffffffffff", "0x10000000000000000",
		"0x0000000000000000000001", "0xFFFFFFFFFFFFFFFFF", "0x", "0X",
		"0", "", "x1", "0x-1", "1 ", "0x1g",
	};

	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		char q[44];
		uint64_t want = 0, got = 0;
		int rc = api_parse_u64(edges[i], false, &want);

		snprintf(q, sizeof(q), "\"%s\"", edges[i]);
		ck_assert_msg(read_va(q, &got) == (rc == 0), "%s", q);
		if (rc == 0)
			ck_assert_uint_eq(got, want);
	}
	rng = 12345;
	for (unsigned k = 0; k < 20000 * scale(); k++) {
		char s[40], q[44];
		unsigned n = below(22);
		uint64_t want = 0, got = 0;
		int rc;

		/* Mostly digits after "0x" or not, some junk. */
		for (unsigned i = 0; i < n; i++)
			s[i] = alpha[below(below(4) ? 22 : sizeof(alpha) - 1)];
		if (n >= 2 && below(2)) {
			s[0] = '0';
			s[1] = below(4) ? 'x' : 'X';
		}
		s[n] = '\0';
		/* As a string: exactly what api_parse_u64 takes. */
		snprintf(q, sizeof(q), "\"%s\"", s);
		rc = api_parse_u64(s, false, &want);
		ck_assert_msg(read_va(q, &got) == (rc == 0), "%s", q);
		if (rc == 0)
			ck_assert_uint_eq(got, want);
		/* As a JSON number: decimal digits, no leading zero, at
		 * most 2^53 - 1; anything else is the strict path's. */
		if (strspn(s, "0123456789") == n && n > 0) {
			bool ok = (n == 1 || s[0] != '0') && n <= 16 &&
				  strtoull(s, NULL, 10) <= API_MAX_SAFE_INT;

			ck_assert_msg(read_va(s, &got) == ok, "%s", s);
			if (ok)
				ck_assert_uint_eq(got, strtoull(s, NULL, 10));
		}
	}
}
END_TEST

/*
 * A writer whose table of names is empty escapes each name as it goes
 * (api/batch.c's slow path, for a name too long to keep): same bytes.
 */
START_TEST(writer_without_table)
{
	struct target tg;
	struct api_entry *e;
	struct api_writer full, bare;

	rng = 99;
	make_target(&tg, 3);
	e = find(API_LOCAL_TENANT, tg.id);
	ck_assert_ptr_nonnull(e);
	api_writer_init(&full, e->m);
	api_writer_init(&bare, e->m);
	memset(bare.mode, 0, sizeof(bare.mode));
	memset(bare.access, 0, sizeof(bare.access));
	memset(bare.region, 0, sizeof(bare.region));
	for (unsigned k = 0; k < 2000; k++) {
		struct vm_translate_req r = { 0 };
		struct vm_translation t;
		struct vm_error err;
		bool explain = below(4) == 0;

		r.va = pick_va(&tg, false);
		r.has_pid = below(2);
		r.pid = 1 + below(2);
		r.mode = (enum vm_mode)below(2);
		r.access = (enum vm_access)below(3);
		ck_assert_int_eq(vm_translate(e->m, &r, &t, &err), 0);
		api_writer_put(&full, &t, explain);
		api_writer_put(&bare, &t, explain);
	}
	ck_assert_uint_eq(full.buf.len, bare.buf.len);
	ck_assert(memcmp(full.buf.s, bare.buf.s, full.buf.len) == 0);
	free(full.buf.s);
	free(bare.buf.s);
}
END_TEST

START_TEST(string_writer)
{
	rng = 4242;
	for (unsigned k = 0; k < 5000 * scale(); k++) {
		char s[24], *want;
		unsigned n = below(sizeof(s));
		struct api_buf b = { NULL, 0, 0 };
		cJSON *o;

		for (unsigned i = 0; i < n; i++)
			s[i] = (char)(1 + below(below(4) ? 127 : 255));
		s[n] = '\0';
		o = cJSON_CreateString(s);
		want = cJSON_PrintUnformatted(o);
		api_buf_string(&b, s);
		ck_assert_msg(b.len == strlen(want) &&
				      memcmp(b.s, want, b.len) == 0,
			      "%.*s, cJSON %s", (int)b.len, b.s, want);
		free(b.s);
		free(want);
		cJSON_Delete(o);
	}
}
END_TEST

START_TEST(number_writer)
{
	rng = 777;
	for (unsigned k = 0; k < 20000 * scale(); k++) {
		unsigned bits = below(65);
		uint64_t v = bits == 64 ? rnd() : rnd() & ((1ULL << bits) - 1);
		cJSON *n;
		char buf[32], *want;
		size_t len;

		if (below(8) == 0) /* near a power of ten */
			v = 1000000000000000ULL - 2 + below(4);
		n = cJSON_CreateNumber((double)v);
		want = cJSON_PrintUnformatted(n);
		len = api_json_number(buf, v);
		ck_assert_msg(len == strlen(want) &&
				      memcmp(buf, want, len) == 0,
			      "%" PRIu64 ": %.*s, cJSON %s", v, (int)len, buf,
			      want);
		free(want);
		cJSON_Delete(n);
	}
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("batch");
	TCase *tc = tcase_create("batch");

	tcase_add_checked_fixture(tc, setup, teardown);
	/* The reference path is slow under sanitizers (10,001 items). */
	tcase_set_timeout(tc, 120.0 * scale());
	tcase_add_loop_test(tc, random_batches, 0, 4);
	tcase_add_loop_test(tc, random_singles, 0, 4);
	tcase_add_loop_test(tc, hostile_batches, 0, 4);
	tcase_add_test(tc, refusals_as_before);
	tcase_add_test(tc, batch_limit);
	tcase_add_test(tc, reader_integers);
	tcase_add_test(tc, writer_without_table);
	tcase_add_test(tc, string_writer);
	tcase_add_test(tc, number_writer);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
