/*
 * test_dispatch.c - api_dispatch without sockets.
 *
 * The API is driven through api_dispatch() over a small in-memory store
 * (tests/support/memstore.c: api/store.h's operations, nothing of
 * server/), so these tests see what no HTTP test can: the machine's
 * canonical bytes before and after a refused mutation, and a store that
 * refuses to commit.
 *
 * Covered: route matching (404 no_such_route for an unknown path, 405
 * method_not_allowed for every route with every other method), the strict
 * JSON scanner (duplicate keys at any depth, 2^53 - 1 as a number and no
 * further, escapes, surrogate pairs, overlong UTF-8, nesting 32 deep and
 * no deeper, data after the value, an empty body read as {}),
 * api_parse_u64 (hex, decimal, units, overflow, junk), Content-Type
 * acceptance (SPEC 2.1: JSON, form or text; anything else 415), If-Match
 * (412 on a stale version), and that every refused mutation leaves the
 * machine byte-identical (vm_state_serialize) with its version.
 *
 * Tenants (SPEC part 3), with the small tenant directory of memstore.c
 * (api/tenants.h; tokens compared in plain text): with auth on, the
 * bearer token's forms (401 with WWW-Authenticate), a limited caller
 * (429 with Retry-After), /healthz open, the role needs (403 for a
 * tenant on /metrics and admin routes, a grader creating or changing a
 * machine), a stranger's 404 on every machine route, owner.id names and
 * the names that cannot be one, the quotas at their exact edges, shares,
 * lists and the history's tenant; with auth off, the caller is the admin
 * in namespace "local".
 */
#include <check.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/internal.h"
#include "api/json.h"
#include "core/machine.h"
#include "core/state.h"
#include "tests/support/memstore.h"

/* ---- machines and tenants in memory (tests/support/memstore.h) ---- */

#define NSLOTS 16
#define TS_SHARES 4    /* shares per machine: too_many_shares beyond */
#define TS_LOG 64      /* history records per machine */
#define ADMIN_TOKEN MEMSTORE_ADMIN_TOKEN

static struct memstore ts;
static struct memtenants tt;

static struct memstore_slot *ts_find(const char *owner, const char *id)
{
	return memstore_find(&ts, owner, id);
}

static struct memstore_tenant *tt_find(const char *name)
{
	return memtenants_find(&tt, name);
}

/* Adds a tenant with this token directly (no request). */
static void tt_add(const char *name, enum api_role role,
		   const struct api_quota *q, const char *token)
{
	ck_assert_msg(memtenants_add(&tt, name, role, q, token) == 0,
		      "the test directory is full");
}

/* ---- calling the API ---- */

static struct api_ctx ctx;
static struct api_response rsp;
static cJSON *rj; /* the last answer, parsed */
static const char *authz; /* the Authorization header sent, or NULL */

static int call(const char *method, const char *target, const char *ctype,
		const char *if_match, const char *body, size_t len)
{
	char path[512];
	const char *q = strchr(target, '?');
	struct api_request rq = {
		.method = method, .path = path, .query = q ? q + 1 : NULL,
		.content_type = ctype,
		.if_match = if_match, .authorization = authz,
		.body = body ? body : "", .body_len = len,
	};

	/* "path?query" as a server splits it. */
	snprintf(path, sizeof(path), "%.*s",
		 (int)(q ? (size_t)(q - target) : strlen(target)), target);
	api_response_release(&rsp);
	cJSON_Delete(rj);
	rj = NULL;
	api_dispatch(&ctx, &rq, &rsp);
	if (rsp.body)
		rj = cJSON_ParseWithLength(rsp.body, rsp.body_len);
	/* Never a 5xx, but the store's own refusal (503). */
	ck_assert_msg(rsp.status >= 200 &&
			      (rsp.status < 500 ||
			       (rsp.status == 503 && ts.refuse_commit)),
		      "%s %s: status %d: %.300s", method, target, rsp.status,
		      rsp.body ? rsp.body : "");
	return rsp.status;
}

static int post(const char *path, const char *body)
{
	return call("POST", path, "application/json", NULL, body,
		    strlen(body));
}

static int get(const char *path)
{
	return call("GET", path, NULL, NULL, NULL, 0);
}

/* The problem code of the last answer, "" when it is not a problem. */
static const char *code(void)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(rj, "code");

	return cJSON_IsString(c) ? c->valuestring : "";
}

static const char *str(const char *name)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(rj, name);

	ck_assert_msg(cJSON_IsString(c), "no string %s in %.300s", name,
		      rsp.body ? rsp.body : "");
	return c->valuestring;
}

static uint64_t num(const char *name)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(rj, name);

	ck_assert_msg(cJSON_IsNumber(c), "no number %s in %.300s", name,
		      rsp.body ? rsp.body : "");
	return (uint64_t)c->valuedouble;
}

static const char *header(const char *name)
{
	for (unsigned i = 0; i < rsp.nheaders; i++)
		if (strcasecmp(rsp.headers[i].name, name) == 0)
			return rsp.headers[i].value;
	return NULL;
}

#define ck_problem(st, cd)                                                    \
	do {                                                                  \
		ck_assert_msg(rsp.status == (st) && strcmp(code(), (cd)) == 0, \
			      "want %d %s, got %d: %.300s", (st), (cd),        \
			      rsp.status, rsp.body ? rsp.body : "");           \
		ck_assert_str_eq(rsp.content_type,                            \
				 "application/problem+json");                 \
	} while (0)

#define ck_status(st)                                                         \
	ck_assert_msg(rsp.status == (st), "want %d, got %d: %.300s", (st),    \
		      rsp.status, rsp.body ? rsp.body : "")

/* ---- the fixture: machine d1 with something of everything ---- */

static char kva[24], kva2[24], vva[24], ppa[24];

static void setup(void)
{
	memstore_init(&ts, NSLOTS, TS_SHARES, TS_LOG);
	memset(&tt, 0, sizeof(tt));
	memset(&ctx, 0, sizeof(ctx));
	memset(&rsp, 0, sizeof(rsp));
	rj = NULL;
	authz = NULL;
	ctx.store.ops = &memstore_ops;
	ctx.store.impl = &ts;
	ctx.tenants.ops = &memtenants_ops;
	ctx.tenants.impl = &tt;
	ctx.config.openapi = "{}";
	ctx.config.openapi_len = 2;
	ctx.config.version = "test";
	post("/v1/machines", "{\"id\":\"d1\",\"memory\":\"64MiB\",\"cpus\":2}");
	ck_status(201);
	post("/v1/machines/d1/processes", "{\"name\":\"p1\"}");
	ck_status(201);
	post("/v1/machines/d1/cpus/0/switch", "{\"pid\":1}");
	ck_status(200);
	post("/v1/machines/d1/kmalloc", "{\"size\":64}");
	ck_status(201);
	snprintf(kva, sizeof(kva), "%s", str("va"));
	post("/v1/machines/d1/kmalloc", "{\"size\":64}");
	ck_status(201);
	snprintf(kva2, sizeof(kva2), "%s", str("va"));
	post("/v1/machines/d1/vmalloc", "{\"size\":\"8KiB\"}");
	ck_status(201);
	snprintf(vva, sizeof(vva), "%s", str("va"));
	post("/v1/machines/d1/pages", "{\"order\":1}");
	ck_status(201);
	snprintf(ppa, sizeof(ppa), "%s", str("pa"));
}

static void teardown(void)
{
	api_response_release(&rsp);
	cJSON_Delete(rj);
	rj = NULL;
	memstore_free(&ts);
}

static struct vm_machine *machine(const char *id)
{
	struct memstore_slot *s = ts_find("local", id);

	ck_assert_msg(s != NULL, "no machine %s", id);
	return s->pub.m;
}

/* The machine's canonical bytes (caller frees). */
static uint8_t *state(const char *id, size_t *len)
{
	uint8_t *buf;

	vm_state_serialize(machine(id), &buf, len);
	return buf;
}

/* ---- routes: 404 tells an unknown path from 405, a wrong method ---- */

static const char *const methods[] = {
	"GET", "POST", "PUT", "PATCH", "DELETE",
};

/* A route's pattern with its parameters filled in for machine m. */
static void fill_m(const char *pattern, const char *m, char *out, size_t cap)
{
	size_t o = 0;

	for (const char *q = pattern; *q && o + 8 < cap;) {
		const char *v = NULL;

		if (strncmp(q, "{m}", 3) == 0)
			v = m;
		else if (strncmp(q, "{pid}", 5) == 0)
			v = "1";
		else if (strncmp(q, "{n}", 3) == 0)
			v = "0";
		else if (strncmp(q, "{t}", 3) == 0)
			v = "nobody";
		if (v) {
			o += (size_t)snprintf(out + o, cap - o, "%s", v);
			q = strchr(q, '}') + 1;
		} else {
			out[o++] = *q++;
		}
	}
	out[o] = '\0';
}

/* ... for machine d1. */
static void fill(const char *pattern, char *out, size_t cap)
{
	fill_m(pattern, "d1", out, cap);
}

static bool has_method(const char *pattern, const char *method)
{
	for (const struct api_route *r = api_routes(); r->method; r++)
		if (strcmp(r->pattern, pattern) == 0 &&
		    strcmp(r->method, method) == 0)
			return true;
	return false;
}

START_TEST(every_other_method_is_405)
{
	unsigned checked = 0;

	for (const struct api_route *r = api_routes(); r->method; r++) {
		char path[160];

		fill(r->pattern, path, sizeof(path));
		for (unsigned i = 0; i < sizeof(methods) / sizeof(*methods);
		     i++) {
			if (has_method(r->pattern, methods[i]))
				continue;
			call(methods[i], path, "application/json", NULL, "{}",
			     2);
			ck_problem(405, "method_not_allowed");
			checked++;
		}
	}
	ck_assert_uint_gt(checked, 50);
}
END_TEST

START_TEST(every_route_is_found_with_its_method)
{
	for (const struct api_route *r = api_routes(); r->method; r++) {
		char path[160];

		fill(r->pattern, path, sizeof(path));
		/* An empty body: each route answers, none with 404 or 405
		 * for want of a route (missing fields are 422). */
		call(r->method, path, NULL, NULL, NULL, 0);
		ck_assert_msg(strcmp(code(), "no_such_route") != 0 &&
				      strcmp(code(), "method_not_allowed") != 0,
			      "%s %s: %s", r->method, path, rsp.body);
		ck_assert_str_eq(rsp.route, r->pattern);
	}
}
END_TEST

START_TEST(a_405_names_the_allowed_methods)
{
	const char *allow;

	/* RFC 9110 15.5.6: a 405 response MUST carry Allow. */
	call("PUT", "/v1/machines/d1", "application/json", NULL, "{}", 2);
	ck_problem(405, "method_not_allowed");
	allow = header("Allow");
	ck_assert_msg(allow != NULL, "405 without an Allow header");
	ck_assert_ptr_nonnull(strstr(allow, "GET"));
	ck_assert_ptr_nonnull(strstr(allow, "DELETE"));
	ck_assert_ptr_null(strstr(allow, "POST"));
}
END_TEST

static const char *const unknown_paths[] = {
	"/", "", "/v2", "/v1/", "/v1/machine", "/v1/machines/",
	"/V1/machines", "/v1/machines/d1/", "/v1/machines/d1/nothing",
	"/v1/machines//layout", "/v1/machines/d1/processes/1/mmap/x",
	"/v1/machines/d1/cpus/0", "/v1/machines/d1/cpus/0/switch/",
	"/v1/machines/d1/translate/batch/x", "/healthz/", "/metricsx",
	"/v1/openapi.yaml", "v1/machines", "/v1/machines/d1/pages/free/1",
};

START_TEST(unknown_paths_are_404_no_such_route)
{
	for (unsigned i = 0; i < sizeof(methods) / sizeof(*methods); i++) {
		call(methods[i], unknown_paths[_i], NULL, NULL, NULL, 0);
		ck_problem(404, "no_such_route");
	}
}
END_TEST

START_TEST(unknown_machine_is_404_not_found)
{
	char path[160];

	for (const struct api_route *r = api_routes(); r->method; r++) {
		char *at;

		if (!strstr(r->pattern, "{m}"))
			continue;
		fill(r->pattern, path, sizeof(path));
		at = strstr(path, "/d1");
		memmove(at + 4, at + 3, strlen(at + 3) + 1);
		memcpy(at, "/d9", 3);
		at[3] = 'x'; /* "/d9x" */
		call(r->method, path, "application/json", NULL, "{}", 2);
		ck_assert_msg(rsp.status == 404 || rsp.status == 422,
			      "%s %s: %s", r->method, path, rsp.body);
		if (rsp.status == 404)
			ck_problem(404, "not_found");
	}
}
END_TEST

START_TEST(an_overlong_machine_id_is_404_not_found)
{
	char path[160];

	/* An id longer than any id can be is still an unknown machine on a
	 * known route, not an unknown route. */
	memset(path, 0, sizeof(path));
	strcpy(path, "/v1/machines/");
	memset(path + strlen(path), 'a', 64);
	get(path);
	ck_problem(404, "not_found");
}
END_TEST

/*
 * A path of any bytes (a server percent-decodes it) is quoted in the
 * problem's detail as valid UTF-8: a byte that is no part of a valid
 * sequence, and a sequence cut at the detail's length, become '?'.
 * (Found by tests/fuzz/fuzz_dispatch; the input is in
 * tests/fuzz/regressions/dispatch/.)
 */
static const char *const raw_paths[] = {
	"/v0/\xcd\xcdmachines/m2",
	"/v1/machines/\xff",
	"/v1/machines/d1/processes/\xc3\x28",
	"/v1/\xed\xa0\x80",                   /* a surrogate */
	"/v1/x\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac"
	"\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac",  /* cut at 100 */
};

START_TEST(a_problem_quotes_any_path_as_utf8)
{
	struct api_problem p;
	cJSON *o = NULL;

	get(raw_paths[_i]);
	ck_assert_int_eq(rsp.status, 404);
	ck_assert_msg(api_json_parse(rsp.body, rsp.body_len, &o, &p) == 0,
		      "%s: %s", p.detail, rsp.body);
	ck_assert_ptr_nonnull(strchr(str("detail"), '?'));
	cJSON_Delete(o);
}
END_TEST

/* ---- the strict scanner ---- */

/* A key of 70 characters: longer than any field name. */
#define K10 "kkkkkkkkkk"
#define K70 K10 K10 K10 K10 K10 K10 K10

struct jcase {
	const char *text;
	size_t len;        /* 0: strlen(text) */
	const char *code;  /* NULL: accepted */
};

static const struct jcase jcases[] = {
	/* One value, whitespace around it, nothing after it. */
	{ "{}", 0, NULL },
	{ " \t\r\n{} \t\r\n", 0, NULL },
	{ "{} x", 0, "malformed_json" },
	{ "{}{}", 0, "malformed_json" },
	{ "{} {}", 0, "malformed_json" },
	{ "{}]", 0, "malformed_json" },
	{ "{},", 0, "malformed_json" },
	{ "1 2", 0, "malformed_json" },
	{ "{}\0", 3, "malformed_json" },
	{ "\v{}", 0, "malformed_json" },
	{ "\xc2\xa0{}", 0, "malformed_json" },
	{ " ", 0, "malformed_json" },
	{ "{", 0, "malformed_json" },
	{ "{\"a\"}", 0, "malformed_json" },
	{ "{\"a\":}", 0, "malformed_json" },
	{ "{\"a\":1,}", 0, "malformed_json" },
	{ "[1,]", 0, "malformed_json" },
	{ "{'a':1}", 0, "malformed_json" },
	{ "{a:1}", 0, "malformed_json" },
	{ "tru", 0, "malformed_json" },
	{ "True", 0, "malformed_json" },
	{ "nul", 0, "malformed_json" },
	{ "truex", 0, "malformed_json" },
	/* Numbers: RFC 8259 grammar; integers up to 2^53 - 1 in magnitude. */
	{ "9007199254740991", 0, NULL },
	{ "-9007199254740991", 0, NULL },
	{ "9007199254740992", 0, "imprecise_number" },
	{ "-9007199254740992", 0, "imprecise_number" },
	{ "9007199254740993", 0, "imprecise_number" },
	{ "18446744073709551616", 0, "imprecise_number" },
	{ "{\"a\":[1,{\"b\":99999999999999999999}]}", 0, "imprecise_number" },
	{ "0", 0, NULL },
	{ "-0", 0, NULL },
	{ "1.5", 0, NULL },
	{ "1e3", 0, NULL },
	{ "-1.25E-2", 0, NULL },
	{ "01", 0, "malformed_json" },
	{ "-", 0, "malformed_json" },
	{ "+1", 0, "malformed_json" },
	{ "1.", 0, "malformed_json" },
	{ ".5", 0, "malformed_json" },
	{ "1e", 0, "malformed_json" },
	{ "0x10", 0, "malformed_json" },
	{ "NaN", 0, "malformed_json" },
	{ "Infinity", 0, "malformed_json" },
	/* Escapes. */
	{ "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uFFFF\"", 0, NULL },
	{ "\"\\x41\"", 0, "malformed_json" },
	{ "\"\\a\"", 0, "malformed_json" },
	{ "\"\\U0041\"", 0, "malformed_json" },
	{ "\"\\u12\"", 0, "malformed_json" },
	{ "\"\\u12G4\"", 0, "malformed_json" },
	{ "\"\\", 0, "malformed_json" },
	{ "\"abc", 0, "malformed_json" },
	/* Surrogates: pairs only. */
	{ "\"\\ud83d\\ude00\"", 0, NULL },
	{ "\"\\uD83D\\uDE00\"", 0, NULL },
	{ "\"\\ud800\"", 0, "malformed_json" },
	{ "\"\\udc00\"", 0, "malformed_json" },
	{ "\"\\ud83d\\u0041\"", 0, "malformed_json" },
	{ "\"\\ude00\\ud83d\"", 0, "malformed_json" },
	{ "\"\\ud83d\\ud83d\"", 0, "malformed_json" },
	{ "\"\\ud83dx\"", 0, "malformed_json" },
	/* UTF-8: shortest forms, no surrogates, nothing past U+10FFFF. */
	{ "\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\"", 0,
	  NULL },
	{ "\"\x7f\"", 0, NULL },
	{ "\"\xc0\xaf\"", 0, "malformed_json" },
	{ "\"\xc1\xbf\"", 0, "malformed_json" },
	{ "\"\xe0\x80\xaf\"", 0, "malformed_json" },
	{ "\"\xe0\x9f\xbf\"", 0, "malformed_json" },
	{ "\"\xf0\x80\x80\xaf\"", 0, "malformed_json" },
	{ "\"\xf0\x8f\xbf\xbf\"", 0, "malformed_json" },
	{ "\"\xed\xa0\x80\"", 0, "malformed_json" },
	{ "\"\xed\xbf\xbf\"", 0, "malformed_json" },
	{ "\"\xf4\x90\x80\x80\"", 0, "malformed_json" },
	{ "\"\xf5\x80\x80\x80\"", 0, "malformed_json" },
	{ "\"\xff\"", 0, "malformed_json" },
	{ "\"\x80\"", 0, "malformed_json" },
	{ "\"\xc3\"", 0, "malformed_json" },
	{ "\"\xe2\x82\"", 0, "malformed_json" },
	{ "{\"\xc0\xaf\":1}", 0, "malformed_json" },
	/* No raw control characters in strings. */
	{ "\"a\0b\"", 5, "malformed_json" },
	{ "\"a\x1f\"", 0, "malformed_json" },
	{ "\"a\tb\"", 0, "malformed_json" },
	/* Duplicate keys, at any depth. */
	{ "{\"a\":1,\"a\":2}", 0, "duplicate_key" },
	{ "{\"a\":1,\"b\":2,\"a\":1}", 0, "duplicate_key" },
	{ "{\"a\":{\"b\":1,\"b\":2}}", 0, "duplicate_key" },
	{ "{\"x\":[{\"a\":1},{\"a\":1,\"a\":2}]}", 0, "duplicate_key" },
	{ "[[[[{\"k\":{\"k\":{\"z\":1,\"z\":1}}}]]]]", 0, "duplicate_key" },
	{ "{\"a\":{\"x\":1},\"b\":{\"x\":1}}", 0, NULL },
	{ "[{\"a\":1},{\"a\":1}]", 0, NULL },
	{ "{\"a\":1,\"A\":1}", 0, NULL },
	{ "{\"a\":1,\"a \":1}", 0, NULL },
	/* The same key, once written with an escape: still the same key. */
	{ "{\"a\":1,\"\\u0061\":2}", 0, "duplicate_key" },
	{ "{\"va\":1,\"v\\u0061\":2}", 0, "duplicate_key" },
	{ "{\"a/b\":1,\"a\\/b\":2}", 0, "duplicate_key" },
	{ "{\"\\u0061\":1,\"\\u0061\":2}", 0, "duplicate_key" },
	/* Different keys written with escapes are different keys. */
	{ "{\"\\u0061\":1,\"\\u0062\":2}", 0, NULL },
	{ "{\"\\u00e9\":1,\"\\u00fc\":2}", 0, NULL },
	/* Long keys: equal ones are duplicates, ones differing late are not. */
	{ "{\"" K70 "\":1,\"" K70 "\":2}", 0, "duplicate_key" },
	{ "{\"" K70 "A\":1,\"" K70 "B\":2}", 0, NULL },
};

START_TEST(scanner_case)
{
	const struct jcase *c = &jcases[_i];
	size_t len = c->len ? c->len : strlen(c->text);
	struct api_problem p = { NULL, "" };
	cJSON *out = NULL;
	int rc = api_json_parse(c->text, len, &out, &p);
	bool tree = out != NULL;

	cJSON_Delete(out); /* before any assertion can end the test */
	if (!c->code) {
		ck_assert_msg(rc == 0 && tree, "case %d (%s) refused: %s", _i,
			      c->text, p.detail);
		ck_assert_ptr_null(p.code);
	} else {
		ck_assert_msg(rc == -1 && p.code && strcmp(p.code, c->code) == 0,
			      "case %d (%s): want %s, got %s", _i, c->text,
			      c->code, p.code ? p.code : "acceptance");
		ck_assert(!tree);
		ck_assert_msg(p.detail[0] != '\0', "no detail");
	}
}
END_TEST

/* depth levels of nesting: arrays, or objects and arrays in turn. */
static char *nested(int depth, bool mixed)
{
	char *s = malloc((size_t)depth * 6 + 2), *q = s;

	for (int i = 0; i < depth; i++) {
		if (mixed && i % 2) {
			memcpy(q, "{\"a\":", 5);
			q += 5;
		} else {
			*q++ = '[';
		}
	}
	*q++ = '1';
	for (int i = depth - 1; i >= 0; i--)
		*q++ = mixed && i % 2 ? '}' : ']';
	*q = '\0';
	return s;
}

START_TEST(nesting_32_is_fine_33_is_not)
{
	for (int mixed = 0; mixed < 2; mixed++) {
		struct api_problem p = { NULL, "" };
		cJSON *out = NULL;
		char *ok = nested(API_JSON_MAX_DEPTH, mixed);
		char *deep = nested(API_JSON_MAX_DEPTH + 1, mixed);
		char *deeper = nested(1000, mixed);

		ck_assert_int_eq(API_JSON_MAX_DEPTH, 32);
		ck_assert_int_eq(api_json_parse(ok, strlen(ok), &out, &p), 0);
		cJSON_Delete(out);
		out = NULL;
		ck_assert_int_eq(api_json_parse(deep, strlen(deep), &out, &p),
				 -1);
		ck_assert_str_eq(p.code, "malformed_json");
		ck_assert_ptr_null(out);
		ck_assert_int_eq(
			api_json_parse(deeper, strlen(deeper), &out, &p), -1);
		ck_assert_str_eq(p.code, "malformed_json");
		free(ok);
		free(deep);
		free(deeper);
	}
	/* Through the API: a body 33 deep is 400, not a crash. */
	{
		char *deep = nested(33, true), body[512];

		snprintf(body, sizeof(body), "{\"va\":%s}", deep);
		post("/v1/machines/d1/translate", body);
		ck_problem(400, "malformed_json");
		free(deep);
	}
}
END_TEST

START_TEST(escapes_decode_to_their_characters)
{
	static const char text[] =
		"{\"s\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9 "
		"\\ud83d\\ude00 \\u20AC\"}";
	static const char want[] = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9 "
				   "\xf0\x9f\x98\x80 \xe2\x82\xac";
	struct api_problem p = { NULL, "" };
	cJSON *out = NULL;
	char buf[64];
	bool present;

	ck_assert_int_eq(api_json_parse(text, strlen(text), &out, &p), 0);
	ck_assert_int_eq(api_json_str(out, "s", buf, sizeof(buf) - 1,
				      &present, &p),
			 0);
	ck_assert(present);
	ck_assert_str_eq(buf, want);
	cJSON_Delete(out);
}
END_TEST

/*
 * cJSON ends strings at NUL, so "d2\u0000x" would reach a handler as "d2":
 * a value or a field name with a NUL in it must be refused, never read
 * shortened (SPEC 2.2: ids match [a-z0-9][a-z0-9-]{0,62}; SPEC 2.4:
 * unknown fields are refused so that a typo never does something else).
 */
static const struct {
	const char *path, *body, *code;
} nul_cases[] = {
	{ "/v1/machines", "{\"id\":\"d2\\u0000x\"}", "invalid_value" },
	{ "/v1/machines/d1/processes", "{\"name\":\"p\\u0000x\"}",
	  "invalid_value" },
	{ "/v1/machines/d1/translate",
	  "{\"va\":\"0x1000\",\"mode\":\"kernel\\u0000junk\"}",
	  "invalid_value" },
	{ "/v1/machines/d1/kmalloc",
	  "{\"size\":64,\"gfp\":\"GFP_KERNEL\\u0000|GFP_DMA\"}",
	  "invalid_value" },
	{ "/v1/machines/d1/translate", "{\"va\\u0000x\":\"0x1000\"}",
	  "unknown_field" },
	{ "/v1/machines/d1/kmalloc", "{\"size\\u0000\":64}",
	  "unknown_field" },
};

START_TEST(a_nul_escape_never_shortens_a_value)
{
	size_t len0, len1;
	uint8_t *s0 = state("d1", &len0), *s1;

	bool same;

	post(nul_cases[_i].path, nul_cases[_i].body);
	s1 = state("d1", &len1);
	same = len0 == len1 && memcmp(s0, s1, len0) == 0;
	free(s0);
	free(s1);
	ck_problem(422, nul_cases[_i].code);
	ck_assert_ptr_null(ts_find("local", "d2"));
	ck_assert(same);
}
END_TEST

START_TEST(an_empty_body_is_an_empty_object)
{
	struct api_problem p = { NULL, "" };
	cJSON *out = NULL;
	size_t before = vm_machine_nprocesses(machine("d1"));

	ck_assert_int_eq(api_json_parse("", 0, &out, &p), 0);
	ck_assert(cJSON_IsObject(out));
	ck_assert_ptr_null(out->child);
	cJSON_Delete(out);
	/* Every field defaulted: a process is created. */
	call("POST", "/v1/machines/d1/processes", NULL, NULL, NULL, 0);
	ck_status(201);
	ck_assert_uint_eq(vm_machine_nprocesses(machine("d1")), before + 1);
	/* Required fields are missing, not malformed. */
	call("POST", "/v1/machines/d1/kmalloc", "application/json", NULL, "",
	     0);
	ck_problem(422, "missing_field");
	call("POST", "/v1/machines/d1/translate/batch", NULL, NULL, NULL, 0);
	ck_problem(422, "missing_field");
	/* And a body-less route takes an empty body. */
	call("GET", "/v1/machines/d1", "application/json", NULL, "", 0);
	ck_status(200);
}
END_TEST

START_TEST(numbers_at_the_edge_of_2_53)
{
	struct api_problem p = { NULL, "" };
	cJSON *out = NULL;
	uint64_t u = 0;
	int64_t i = 0;
	bool present = false;
	static const char a[] = "{\"u\":9007199254740991,"
				"\"n\":-9007199254740991,"
				"\"s\":\"-9007199254740991\","
				"\"min\":\"-9223372036854775808\","
				"\"max\":\"9223372036854775807\","
				"\"hex\":\"0xffffffffffffffff\","
				"\"under\":\"-9223372036854775809\","
				"\"over\":\"9223372036854775808\","
				"\"neg\":-1,\"frac\":1.5}";

	ck_assert_int_eq(api_json_parse(a, strlen(a), &out, &p), 0);
	ck_assert_int_eq(api_json_u64(out, "u", &u, &present, &p), 0);
	ck_assert(present);
	ck_assert_uint_eq(u, 9007199254740991ULL);
	ck_assert_int_eq(api_json_i64(out, "n", &i, NULL, &p), 0);
	ck_assert_int_eq(i, -9007199254740991LL);
	ck_assert_int_eq(api_json_i64(out, "s", &i, NULL, &p), 0);
	ck_assert_int_eq(i, -9007199254740991LL);
	ck_assert_int_eq(api_json_i64(out, "min", &i, NULL, &p), 0);
	ck_assert_int_eq(i, INT64_MIN);
	ck_assert_int_eq(api_json_i64(out, "max", &i, NULL, &p), 0);
	ck_assert_int_eq(i, INT64_MAX);
	ck_assert_int_eq(api_json_u64(out, "hex", &u, NULL, &p), 0);
	ck_assert_uint_eq(u, UINT64_MAX);
	ck_assert_int_eq(api_json_i64(out, "under", &i, NULL, &p), -1);
	ck_assert_str_eq(p.code, "invalid_value");
	ck_assert_int_eq(api_json_i64(out, "over", &i, NULL, &p), -1);
	ck_assert_str_eq(p.code, "invalid_value");
	ck_assert_int_eq(api_json_u64(out, "neg", &u, NULL, &p), -1);
	ck_assert_str_eq(p.code, "out_of_range");
	ck_assert_int_eq(api_json_u64(out, "frac", &u, NULL, &p), -1);
	ck_assert_str_eq(p.code, "wrong_type");
	ck_assert_int_eq(api_json_i64(out, "frac", &i, NULL, &p), -1);
	ck_assert_str_eq(p.code, "wrong_type");
	/* Absent: untouched, not present. */
	u = 7;
	ck_assert_int_eq(api_json_u64(out, "nothing", &u, &present, &p), 0);
	ck_assert(!present);
	ck_assert_uint_eq(u, 7);
	cJSON_Delete(out);

	/* Through the API: 2^53 - 1 is read exactly, 2^53 is 422. */
	post("/v1/machines/d1/translate", "{\"va\":9007199254740991}");
	ck_status(200);
	ck_assert_str_eq(str("va"), "0x1fffffffffffff");
	post("/v1/machines/d1/translate", "{\"va\":9007199254740992}");
	ck_problem(422, "imprecise_number");
	post("/v1/machines/d1/translate", "{\"va\":\"9007199254740993\"}");
	ck_status(200);
	ck_assert_str_eq(str("va"), "0x20000000000001");
	/* Negative increments, as a string and as a number. */
	post("/v1/machines/d1/processes/1/brk", "{\"increment\":\"8192\"}");
	ck_status(200);
	post("/v1/machines/d1/processes/1/brk", "{\"increment\":\"-4096\"}");
	ck_status(200);
	post("/v1/machines/d1/processes/1/brk", "{\"increment\":-4096}");
	ck_status(200);
	ck_assert_str_eq(str("brk"), str("brk_start"));
}
END_TEST

/* ---- api_parse_u64 ---- */

struct ucase {
	const char *text;
	bool units;
	int rc;
	uint64_t v;
};

static const struct ucase ucases[] = {
	{ "0", false, 0, 0 },
	{ "42", false, 0, 42 },
	{ "00012", false, 0, 12 },
	{ "18446744073709551615", false, 0, UINT64_MAX },
	{ "18446744073709551616", false, -1, 0 },
	{ "99999999999999999999", false, -1, 0 },
	{ "0x0", false, 0, 0 },
	{ "0x1f", false, 0, 31 },
	{ "0X1F", false, 0, 31 },
	{ "0xAbCdEf", false, 0, 0xabcdef },
	{ "0xffffffffffffffff", false, 0, UINT64_MAX },
	{ "0x0000000000000000000000001", false, 0, 1 },
	{ "0x10000000000000000", false, -1, 0 },
	{ "0x", false, -1, 0 },
	{ "0X", false, -1, 0 },
	{ "0x", true, -1, 0 },
	{ "", false, -1, 0 },
	{ "", true, -1, 0 },
	{ " 1", false, -1, 0 },
	{ "1 ", false, -1, 0 },
	{ "1 ", true, -1, 0 },
	{ "+1", false, -1, 0 },
	{ "-1", false, -1, 0 },
	{ "-0", false, -1, 0 },
	{ "1a", false, -1, 0 },
	{ "0x1g", false, -1, 0 },
	{ "0x-1", false, -1, 0 },
	{ "x10", false, -1, 0 },
	{ "1.5", false, -1, 0 },
	{ "1e3", false, -1, 0 },
	{ "1_000", false, -1, 0 },
	{ "4KiB", false, -1, 0 },
	{ "4KiB", true, 0, 4096 },
	{ "4 KiB", true, 0, 4096 },
	{ "1B", true, 0, 1 },
	{ "0B", true, 0, 0 },
	{ "3MiB", true, 0, 3ULL << 20 },
	{ "1GiB", true, 0, 1ULL << 30 },
	{ "2TiB", true, 0, 2ULL << 40 },
	{ "16777215TiB", true, 0, 16777215ULL << 40 },
	{ "16777216TiB", true, -1, 0 },
	{ "17179869183GiB", true, 0, 17179869183ULL << 30 },
	{ "17179869184GiB", true, -1, 0 },
	{ "18446744073709551615B", true, 0, UINT64_MAX },
	{ "18446744073709551616B", true, -1, 0 },
	{ "12", true, 0, 12 },
	{ "0x1000", true, 0, 4096 },
	{ "0x10KiB", true, -1, 0 },
	{ "4kib", true, -1, 0 },
	{ "4KB", true, -1, 0 },
	{ "4K", true, -1, 0 },
	{ "4 KiB ", true, -1, 0 },
	{ "4  KiB", true, -1, 0 },
	{ "4\tKiB", true, -1, 0 },
	{ "KiB", true, -1, 0 },
	{ " KiB", true, -1, 0 },
	{ "4KiBx", true, -1, 0 },
	{ "4.5KiB", true, -1, 0 },
	{ "-4KiB", true, -1, 0 },
	{ "4PiB", true, -1, 0 },
};

START_TEST(parse_u64_case)
{
	const struct ucase *c = &ucases[_i];
	uint64_t v = 0xdeadbeef;
	int rc = api_parse_u64(c->text, c->units, &v);

	ck_assert_msg(rc == c->rc, "\"%s\" (units %d): rc %d, want %d",
		      c->text, c->units, rc, c->rc);
	if (rc == 0)
		ck_assert_msg(v == c->v, "\"%s\": %" PRIu64 ", want %" PRIu64,
			      c->text, v, c->v);
}
END_TEST

/* ---- Content-Type (SPEC 2.1: JSON whatever it says, unless it is
 * neither JSON, form nor text) ---- */

struct ctcase {
	const char *type;
	int status;
};

static const struct ctcase ctcases[] = {
	{ NULL, 200 },
	{ "application/json", 200 },
	{ "application/json; charset=utf-8", 200 },
	{ "application/json;charset=UTF-8", 200 },
	{ "Application/JSON", 200 },
	{ "application/x-www-form-urlencoded", 200 },
	{ "text/plain", 200 },
	{ "text/plain; charset=us-ascii", 200 },
	{ "application/vnd.x+json", 200 },
	{ "application/problem+json", 200 },
	{ "application/xml", 415 },
	{ "image/png", 415 },
	{ "application/octet-stream", 415 },
	{ "multipart/form-data; boundary=x", 415 },
	{ "application/jsonx", 415 },
	{ "application/json-seq", 415 },
};

START_TEST(content_type_case)
{
	const struct ctcase *c = &ctcases[_i];
	static const char body[] = "{\"va\":\"0x1000\"}";

	call("POST", "/v1/machines/d1/translate", c->type, NULL, body,
	     strlen(body));
	if (c->status == 415)
		ck_problem(415, "unsupported_media_type");
	else
		ck_assert_msg(rsp.status == c->status, "%s: %d %s", c->type,
			      rsp.status, rsp.body);
}
END_TEST

/* ---- If-Match ---- */

START_TEST(if_match_makes_a_mutation_conditional)
{
	uint64_t v = vm_machine_version(machine("d1"));
	uint64_t digest = vm_machine_digest(machine("d1"));
	char cur[32], stale[32], next[32];
	static const char body[] = "{\"size\":32}";

	snprintf(cur, sizeof(cur), "\"%" PRIu64 "\"", v);
	snprintf(stale, sizeof(stale), "\"%" PRIu64 "\"", v - 1);
	snprintf(next, sizeof(next), "\"%" PRIu64 "\"", v + 1);

	/* Stale, unquoted, garbage: 412, nothing changes, no ETag. */
	{
		char bare[32];
		const char *bad[] = { stale, next, "\"\"", "abc", bare,
				      "W/\"999\"" };

		snprintf(bare, sizeof(bare), "%" PRIu64, v);
		for (unsigned i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
			call("POST", "/v1/machines/d1/kmalloc",
			     "application/json", bad[i], body, strlen(body));
			ck_problem(412, "precondition_failed");
			ck_assert_ptr_null(header("ETag"));
		}
	}
	ck_assert_uint_eq(vm_machine_digest(machine("d1")), digest);
	ck_assert_uint_eq(vm_machine_version(machine("d1")), v);

	/* The current version: applied; ETag and body name the next. */
	call("POST", "/v1/machines/d1/kmalloc", "application/json", cur, body,
	     strlen(body));
	ck_status(201);
	ck_assert_ptr_nonnull(header("ETag"));
	ck_assert_str_eq(header("ETag"), next);
	ck_assert_uint_eq(num("version"), v + 1);

	/* The same If-Match again is stale now. */
	call("POST", "/v1/machines/d1/kmalloc", "application/json", cur, body,
	     strlen(body));
	ck_problem(412, "precondition_failed");

	/* "*" matches any version. */
	call("POST", "/v1/machines/d1/kmalloc", "application/json", "*", body,
	     strlen(body));
	ck_status(201);
	ck_assert_uint_eq(num("version"), v + 2);

	/* On DELETE too: a stale exit leaves the process. */
	call("DELETE", "/v1/machines/d1/processes/1", NULL, stale, NULL, 0);
	ck_problem(412, "precondition_failed");
	ck_assert_uint_eq(vm_machine_nprocesses(machine("d1")), 1);
	snprintf(cur, sizeof(cur), "\"%" PRIu64 "\"", v + 2);
	call("DELETE", "/v1/machines/d1/processes/1", NULL, cur, NULL, 0);
	ck_status(204);
	ck_assert_uint_eq(vm_machine_nprocesses(machine("d1")), 0);
}
END_TEST

START_TEST(a_refusal_keeps_if_match_usable)
{
	uint64_t v = vm_machine_version(machine("d1"));
	char cur[32];

	snprintf(cur, sizeof(cur), "\"%" PRIu64 "\"", v);
	/* Refused by the model (interior pointer): version unchanged ... */
	{
		char body[64];

		snprintf(body, sizeof(body), "{\"va\":\"0x%" PRIx64 "\"}",
			 (uint64_t)strtoull(kva, NULL, 16) + 8);
		call("POST", "/v1/machines/d1/kfree", "application/json", cur,
		     body, strlen(body));
		ck_assert_int_eq(rsp.status, 409);
	}
	/* ... so the same If-Match still applies the next mutation. */
	call("POST", "/v1/machines/d1/kmalloc", "application/json", cur,
	     "{\"size\":8}", 10);
	ck_status(201);
	ck_assert_uint_eq(num("version"), v + 1);
}
END_TEST

/* ---- a refused mutation leaves the machine byte-identical ---- */

enum store_mode { STORE_OK, STORE_REFUSES };

struct rcase {
	const char *what;
	const char *method, *path, *body; /* body: "$K" kva, "$I" kva + 8,
					   * "$J" kva2 (freed), "$V" vva,
					   * "$P" ppa */
	const char *ctype, *if_match;
	enum store_mode store;
	int status;
	const char *code;
};

static const struct rcase rcases[] = {
	{ "double free", "POST", "/v1/machines/d1/kfree", "{\"va\":\"$J\"}",
	  NULL, NULL, STORE_OK, 409, "double_free" },
	{ "interior pointer", "POST", "/v1/machines/d1/kfree",
	  "{\"va\":\"$I\"}", NULL, NULL, STORE_OK, 409, "interior_pointer" },
	{ "kfree of a vmalloc address", "POST", "/v1/machines/d1/kfree",
	  "{\"va\":\"$V\"}", NULL, NULL, STORE_OK, 409, "wrong_free" },
	{ "free_pages with the wrong order", "POST",
	  "/v1/machines/d1/pages/free", "{\"pa\":\"$P\",\"order\":0}", NULL,
	  NULL, STORE_OK, 409, "wrong_order" },
	{ "vmalloc past free memory", "POST", "/v1/machines/d1/vmalloc",
	  "{\"size\":\"60MiB\"}", NULL, NULL, STORE_OK, 409,
	  "out_of_memory" },
	{ "a process past free memory", "POST", "/v1/machines/d1/processes",
	  "{\"text\":\"56MiB\"}", NULL, NULL, STORE_OK, 409,
	  "out_of_memory" },
	{ "mmap past free memory", "POST",
	  "/v1/machines/d1/processes/1/mmap", "{\"length\":\"56MiB\"}", NULL,
	  NULL, STORE_OK, 409, "out_of_memory" },
	{ "brk past free memory", "POST", "/v1/machines/d1/processes/1/brk",
	  "{\"increment\":\"0x3800000\"}", NULL, NULL, STORE_OK, 409,
	  "out_of_memory" },
	{ "switch to a task running on another CPU", "POST",
	  "/v1/machines/d1/cpus/1/switch", "{\"pid\":1}", NULL, NULL,
	  STORE_OK, 409, "task_busy" },
	{ "switch to no process", "POST", "/v1/machines/d1/cpus/0/switch",
	  "{\"pid\":99}", NULL, NULL, STORE_OK, 404, "not_found" },
	{ "exit of no process", "DELETE", "/v1/machines/d1/processes/99", NULL,
	  NULL, NULL, STORE_OK, 404, "not_found" },
	{ "an impossible GFP", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64,\"gfp\":\"GFP_DMA|__GFP_HIGHMEM\"}", NULL, NULL,
	  STORE_OK, 422, "invalid_value" },
	{ "an unknown field", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64,\"sizes\":64}", NULL, NULL, STORE_OK, 422,
	  "unknown_field" },
	{ "a wrong type", "POST", "/v1/machines/d1/vmalloc",
	  "{\"size\":\"8KiB\",\"guard\":1}", NULL, NULL, STORE_OK, 400,
	  "wrong_type" },
	{ "an unsupported Content-Type", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64}", "image/png", NULL, STORE_OK, 415,
	  "unsupported_media_type" },
	{ "a stale If-Match", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64}", NULL, "\"1\"", STORE_OK, 412,
	  "precondition_failed" },
	{ "a duplicate key", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64,\"size\":128}", NULL, NULL, STORE_OK, 400,
	  "duplicate_key" },
	{ "kmalloc the store cannot commit", "POST", "/v1/machines/d1/kmalloc",
	  "{\"size\":64}", NULL, NULL, STORE_REFUSES, 503,
	  "service_unavailable" },
	{ "a process the store cannot commit", "POST",
	  "/v1/machines/d1/processes", "{\"name\":\"x\"}", NULL, NULL,
	  STORE_REFUSES, 503, "service_unavailable" },
	{ "vfree the store cannot commit", "POST", "/v1/machines/d1/vfree",
	  "{\"va\":\"$V\"}", NULL, NULL, STORE_REFUSES, 503,
	  "service_unavailable" },
	{ "an exit the store cannot commit", "DELETE",
	  "/v1/machines/d1/processes/1", NULL, NULL, NULL, STORE_REFUSES, 503,
	  "service_unavailable" },
};

/* Replaces the $ markers of a case body with the fixture's addresses. */
static void expand(const char *t, char *out, size_t cap)
{
	size_t o = 0;

	for (; *t && o + 24 < cap; t++) {
		const char *v = NULL;
		char buf[24];

		if (*t == '$') {
			switch (*++t) {
			case 'K': v = kva; break;
			case 'J': v = kva2; break;
			case 'V': v = vva; break;
			case 'P': v = ppa; break;
			case 'I':
				snprintf(buf, sizeof(buf), "0x%" PRIx64,
					 (uint64_t)strtoull(kva, NULL, 16) + 8);
				v = buf;
				break;
			default:
				ck_abort_msg("bad marker");
			}
			o += (size_t)snprintf(out + o, cap - o, "%s", v);
		} else {
			out[o++] = *t;
		}
	}
	out[o] = '\0';
}

START_TEST(refusal_leaves_the_machine_byte_identical)
{
	const struct rcase *c = &rcases[_i];
	char body[256] = "";
	size_t len0, len1;
	uint8_t *s0, *s1;
	uint64_t v0, d0;
	unsigned commits;
	bool same;

	/* kva2 freed: the double free's target. */
	snprintf(body, sizeof(body), "{\"va\":\"%s\"}", kva2);
	post("/v1/machines/d1/kfree", body);
	ck_status(200);
	if (c->body)
		expand(c->body, body, sizeof(body));
	s0 = state("d1", &len0);
	v0 = vm_machine_version(machine("d1"));
	d0 = vm_machine_digest(machine("d1"));
	commits = ts.commits;
	ts.refuse_commit = c->store == STORE_REFUSES;

	call(c->method, c->path, c->ctype ? c->ctype : "application/json",
	     c->if_match, c->body ? body : NULL, c->body ? strlen(body) : 0);
	ts.refuse_commit = false;
	ck_assert_msg(rsp.status == c->status && strcmp(code(), c->code) == 0,
		      "%s: want %d %s, got %d: %.300s", c->what, c->status,
		      c->code, rsp.status, rsp.body);
	ck_assert_ptr_null(header("ETag"));

	s1 = state("d1", &len1);
	same = len0 == len1 && memcmp(s0, s1, len0) == 0;
	free(s0);
	free(s1);
	ck_assert_msg(same, "%s: the refused request changed the machine's "
		      "state (%zu -> %zu bytes)", c->what, len0, len1);
	ck_assert_uint_eq(vm_machine_version(machine("d1")), v0);
	ck_assert_uint_eq(vm_machine_digest(machine("d1")), d0);
	/* Only a request the model applied reaches the store. */
	ck_assert_uint_eq(ts.commits,
			  commits + (c->store == STORE_REFUSES ? 1 : 0));

	/* And the machine still works: the next mutation is version v0 + 1. */
	post("/v1/machines/d1/kmalloc", "{\"size\":16}");
	ck_status(201);
	ck_assert_uint_eq(num("version"), v0 + 1);
}
END_TEST

START_TEST(commit_refused_then_retried_gives_the_same_answer)
{
	char first[64];

	/* d3: a copy of d1 as it is now, before anything is refused. */
	post("/v1/machines/d1/clone", "{\"id\":\"d3\"}");
	ck_status(201);
	/* The store refuses d1's kmalloc; the retry is taken ... */
	ts.refuse_commit = true;
	post("/v1/machines/d1/kmalloc", "{\"size\":128}");
	ck_problem(503, "service_unavailable");
	ts.refuse_commit = false;
	post("/v1/machines/d1/kmalloc", "{\"size\":128}");
	ck_status(201);
	snprintf(first, sizeof(first), "%s %s", str("va"), str("pa"));
	/* ... and answers what the copy, never refused, answers. */
	post("/v1/machines/d3/kmalloc", "{\"size\":128}");
	ck_status(201);
	snprintf(first + strlen(first), sizeof(first) - strlen(first),
		 " == %s %s", str("va"), str("pa"));
	ck_assert_msg(vm_machine_digest(machine("d1")) ==
			      vm_machine_digest(machine("d3")),
		      "the retried kmalloc answers otherwise than on a copy "
		      "never refused: %s", first);
}
END_TEST

/* ---- tenants: tokens, roles, shares, names, quotas (SPEC part 3) ---- */

#define C16 "0123456789abcdef"
#define T64 C16 C16 C16 C16        /* a token of the longest length */
#define O32 "o123456789abcdef0123456789abcdef"  /* the longest tenant */

static const struct api_quota q_tenant = {
	.machines = 8, .memory = 16ULL << 30, .processes = 64, .rate = 20,
};
static const struct api_quota q_grader = { .rate = 200 };

static char bearer[API_TOKEN_MAX + 64];

/* Sends "Authorization: Bearer <token>" from now on (NULL: none). */
static void as(const char *token)
{
	if (!token) {
		authz = NULL;
		return;
	}
	snprintf(bearer, sizeof(bearer), "Bearer %s", token);
	authz = bearer;
}

static char *test_metrics(void *cls)
{
	(void)cls;
	return strdup("vmlab_up 1\n");
}

/* Auth on: tenants alice, bob, carol, a grader, "long" (a 64-character
 * token) and the admin (ADMIN_TOKEN); d1 stays local's. */
static void auth_setup(void)
{
	setup();
	ctx.auth = true;
	ctx.metrics = test_metrics;
	tt_add("alice", API_ROLE_TENANT, &q_tenant, "tok-alice");
	tt_add("bob", API_ROLE_TENANT, &q_tenant, "tok-bob");
	tt_add("carol", API_ROLE_TENANT, &q_tenant, "tok-carol");
	tt_add("grader", API_ROLE_GRADER, &q_grader, "tok-grader");
	tt_add("long", API_ROLE_TENANT, &q_tenant, T64);
}

static unsigned used_slots(void)
{
	return (unsigned)memstore_count(&ts);
}

/* The caller creates machine id of 64 MiB. */
static void create(const char *id)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"id\":\"%s\",\"memory\":\"64MiB\"}",
		 id);
	post("/v1/machines", body);
	ck_status(201);
}

START_TEST(no_token_is_401_before_routing)
{
	static const char *const paths[] = {
		"/v1", "/v1/machines", "/v1/whoami", "/metrics",
		"/v1/tenants", "/v1/machines/d1", "/v1/nothing", "/",
	};
	unsigned before = used_slots();

	as(NULL);
	for (unsigned i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
		get(paths[i]);
		ck_problem(401, "unauthorized");
		ck_assert_str_eq(header("WWW-Authenticate"),
				 "Bearer realm=\"vmlab\"");
	}
	post("/v1/machines", "{\"id\":\"x1\"}");
	ck_problem(401, "unauthorized");
	call("PUT", "/v1/machines", NULL, NULL, NULL, 0);
	ck_problem(401, "unauthorized");
	ck_assert_uint_eq(used_slots(), before);
}
END_TEST

static const struct {
	const char *header;
	bool invalid_token;    /* a token was sent: error="invalid_token" */
	bool asked;            /* a token the directory is asked about */
} bad_bearers[] = {
	{ "tok-alice", false, false },              /* no scheme */
	{ "Basic dG9rLWFsaWNlOg==", false, false }, /* another scheme */
	{ "Bearer", false, false },                 /* no token at all */
	{ "Bearertok-alice", false, false },
	{ "", false, false },
	{ "Bearer ", true, false },                 /* an empty token */
	{ "Bearer     ", true, false },
	{ "Bearer tok-nobody", true, true },
	{ "Bearer tok-alicex", true, true },
	{ "Bearer tok-alic", true, true },
	{ "Bearer " T64 "x", true, false },         /* 65 characters */
	{ "Bearer " T64 T64, true, false },
};

START_TEST(a_malformed_or_unknown_bearer_is_401)
{
	const char *www;

	authz = bad_bearers[_i].header;
	get("/v1/whoami");
	ck_problem(401, "unauthorized");
	/* No token that cannot be one reaches the directory. */
	ck_assert_uint_eq(tt.lookups, bad_bearers[_i].asked ? 1 : 0);
	www = header("WWW-Authenticate");
	ck_assert_ptr_nonnull(www);
	ck_assert_msg(strncmp(www, "Bearer realm=\"vmlab\"", 20) == 0, "%s",
		      www);
	ck_assert_msg((strstr(www, "error=\"invalid_token\"") != NULL) ==
			      bad_bearers[_i].invalid_token,
		      "\"%s\": WWW-Authenticate %s", authz, www);
}
END_TEST

START_TEST(the_bearer_forms_that_work)
{
	static const char *const good[] = {
		"Bearer tok-alice", "bearer tok-alice", "BEARER tok-alice",
		"Bearer   tok-alice  ",
	};

	for (unsigned i = 0; i < sizeof(good) / sizeof(*good); i++) {
		authz = good[i];
		get("/v1/whoami");
		ck_status(200);
		ck_assert_str_eq(str("tenant"), "alice");
		ck_assert_str_eq(str("role"), "tenant");
	}
	/* 64 characters: the longest token there is. */
	as(T64);
	get("/v1/whoami");
	ck_status(200);
	ck_assert_str_eq(str("tenant"), "long");
	as(ADMIN_TOKEN);
	get("/v1/whoami");
	ck_status(200);
	ck_assert_str_eq(str("tenant"), "admin");
	ck_assert_str_eq(str("role"), "admin");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rj, "quota")));
}
END_TEST

START_TEST(a_limited_caller_is_429_with_retry_after)
{
	unsigned before = used_slots();

	tt_find("alice")->limited = true;
	as("tok-alice");
	get("/v1/whoami");
	ck_problem(429, "rate_limited");
	ck_assert_str_eq(header("Retry-After"), "7");
	ck_assert_ptr_null(header("WWW-Authenticate"));
	post("/v1/machines", "{\"id\":\"x1\"}");
	ck_problem(429, "rate_limited");
	ck_assert_uint_eq(used_slots(), before);
	/* Others are not held back. */
	as("tok-bob");
	get("/v1/whoami");
	ck_status(200);
	ck_assert_ptr_null(header("Retry-After"));
}
END_TEST

START_TEST(healthz_is_open)
{
	as(NULL);
	get("/healthz");
	ck_status(200);
	ck_assert_str_eq(str("status"), "ok");
	/* A token is not even looked at. */
	authz = "Bearer tok-nobody";
	get("/healthz");
	ck_status(200);
	tt_find("alice")->limited = true;
	as("tok-alice");
	get("/healthz");
	ck_status(200);
}
END_TEST

START_TEST(metrics_and_tenants_need_their_role)
{
	static const char *const tenants_only_admin[][3] = {
		{ "GET", "/v1/tenants", NULL },
		{ "POST", "/v1/tenants", "{\"name\":\"dave\"}" },
		{ "DELETE", "/v1/tenants/bob", NULL },
		{ "POST", "/v1/tenants/bob/tokens", NULL },
	};
	static const char *const callers[] = { "tok-alice", "tok-grader" };

	as("tok-alice");
	get("/metrics");
	ck_problem(403, "forbidden");
	as("tok-grader");
	get("/metrics");
	ck_status(200);
	as(ADMIN_TOKEN);
	get("/metrics");
	ck_status(200);
	for (unsigned k = 0; k < 2; k++) {
		as(callers[k]);
		for (unsigned i = 0; i < 4; i++) {
			const char *const *r = tenants_only_admin[i];

			call(r[0], r[1], "application/json", NULL, r[2],
			     r[2] ? strlen(r[2]) : 0);
			ck_problem(403, "forbidden");
		}
	}
	/* Nothing happened: bob is there with his token, dave is not. */
	ck_assert_ptr_null(tt_find("dave"));
	as("tok-bob");
	get("/v1/whoami");
	ck_status(200);
	/* The admin may. */
	as(ADMIN_TOKEN);
	get("/v1/tenants");
	ck_status(200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
				 rj, "items")), 5);
}
END_TEST

START_TEST(a_grader_creates_nothing)
{
	unsigned before;

	as(ADMIN_TOKEN);
	create("a1");
	before = used_slots();
	as("tok-grader");
	post("/v1/machines", "{\"id\":\"g1\",\"memory\":\"64MiB\"}");
	ck_problem(403, "forbidden");
	post("/v1/machines/admin.a1/clone", "{\"id\":\"g1\"}");
	ck_problem(403, "forbidden");
	ck_assert_uint_eq(used_slots(), before);
	ck_assert_ptr_null(ts_find("grader", "g1"));
	/* It reads every machine. */
	get("/v1/machines/admin.a1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "admin.a1");
	ck_assert_str_eq(str("owner"), "admin");
	get("/v1/machines/local.d1/zones");
	ck_status(200);
}
END_TEST

START_TEST(a_grader_kmalloc_is_403_and_changes_nothing)
{
	struct memstore_slot *s;
	uint8_t *s0;
	size_t len0;
	uint64_t v0;
	unsigned commits;
	bool same;

	as("tok-alice");
	create("lab1");
	s = ts_find("alice", "lab1");
	vm_state_serialize(s->pub.m, &s0, &len0);
	v0 = vm_machine_version(s->pub.m);
	commits = ts.commits;

	as("tok-grader");
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":64}");
	ck_problem(403, "forbidden");
	ck_assert_ptr_null(header("ETag"));
	post("/v1/machines/alice.lab1/processes", "{}");
	ck_problem(403, "forbidden");
	call("DELETE", "/v1/machines/alice.lab1", NULL, NULL, NULL, 0);
	ck_problem(403, "forbidden");
	post("/v1/machines/alice.lab1/shares",
	     "{\"tenant\":\"grader\",\"access\":\"write\"}");
	ck_problem(403, "forbidden");

	s = ts_find("alice", "lab1");
	ck_assert_ptr_nonnull(s);
	{
		uint8_t *s1;
		size_t len1;

		vm_state_serialize(s->pub.m, &s1, &len1);
		same = len0 == len1 && memcmp(s0, s1, len0) == 0;
		free(s1);
	}
	free(s0);
	ck_assert_msg(same, "a grader's refused kmalloc changed the machine");
	ck_assert_uint_eq(vm_machine_version(s->pub.m), v0);
	ck_assert_uint_eq(ts.commits, commits);
	ck_assert_uint_eq(s->nshares, 0);
}
END_TEST

START_TEST(a_stranger_gets_404_on_every_machine_route)
{
	unsigned n404 = 0;
	char path[160];

	as("tok-alice");
	create("lab1");
	post("/v1/machines/lab1/processes", "{}");
	ck_status(201);
	as("tok-bob");
	for (const struct api_route *r = api_routes(); r->method; r++) {
		if (!strstr(r->pattern, "{m}"))
			continue;
		fill_m(r->pattern, "alice.lab1", path, sizeof(path));
		call(r->method, path, "application/json", NULL, "{}", 2);
		/* 422 for a body missing its fields, checked first; never
		 * an answer that would tell the machine exists. */
		ck_assert_msg(rsp.status == 404 || rsp.status == 422,
			      "%s %s: %s", r->method, path, rsp.body);
		if (rsp.status == 404) {
			ck_problem(404, "not_found");
			n404++;
		}
	}
	ck_assert_uint_ge(n404, 15);
	/* Its own name for it is its own namespace: no such machine. */
	get("/v1/machines/lab1");
	ck_problem(404, "not_found");
	get("/v1/machines");
	ck_status(200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
				 rj, "items")), 0);
	get("/v1/machines?owner=alice");
	ck_status(200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
				 rj, "items")), 0);
	ck_assert_uint_eq(vm_machine_nprocesses(ts_find("alice", "lab1")
							 ->pub.m), 1);
}
END_TEST

START_TEST(owner_dot_id_names_a_machine)
{
	as("tok-alice");
	create("lab1");
	get("/v1/machines/lab1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "lab1");
	ck_assert_str_eq(str("owner"), "alice");
	/* Its full name works too, and it answers the name the caller
	 * uses. */
	get("/v1/machines/alice.lab1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "lab1");
	as(ADMIN_TOKEN);
	get("/v1/machines/alice.lab1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "alice.lab1");
	ck_assert_str_eq(str("owner"), "alice");
	/* The admin's own namespace is "admin". */
	get("/v1/machines/lab1");
	ck_problem(404, "not_found");

	/* An owner of 32 characters, the longest. */
	tt_add(O32, API_ROLE_TENANT, &q_tenant, "tok-32");
	as("tok-32");
	create("m");
	as(ADMIN_TOKEN);
	get("/v1/machines/" O32 ".m");
	ck_status(200);
	ck_assert_str_eq(str("owner"), O32);
}
END_TEST

static const char *const bad_names[] = {
	"a..b", ".x", "x.", ".lab1", "alice.", "alice..lab1",
	"alice.lab1.x", "Alice.lab1", "alice.Lab1", "-alice.lab1",
	"alice.-lab1", "al ice.lab1", "*.lab1", ".",
	/* 33 characters: its first 32 name a real tenant with machine m. */
	O32 "x.m", "x" O32 ".m",
};

START_TEST(names_that_cannot_be_a_machine_are_404)
{
	char path[200];

	as("tok-alice");
	create("lab1");
	tt_add(O32, API_ROLE_TENANT, &q_tenant, "tok-32");
	as("tok-32");
	create("m");
	as(ADMIN_TOKEN);
	snprintf(path, sizeof(path), "/v1/machines/%s", bad_names[_i]);
	get(path);
	ck_problem(404, "not_found");
	snprintf(path, sizeof(path), "/v1/machines/%s/kmalloc", bad_names[_i]);
	post(path, "{\"size\":8}");
	ck_problem(404, "not_found");
	ck_assert_uint_eq(vm_machine_version(ts_find("alice", "lab1")->pub.m),
			  0);
	ck_assert_uint_eq(vm_machine_version(ts_find(O32, "m")->pub.m), 0);
}
END_TEST

/* A tenant "q" with quota, as the caller. */
static void as_q(uint64_t machines, uint64_t memory, uint64_t processes)
{
	struct api_quota q = {
		.machines = machines, .memory = memory,
		.processes = processes, .rate = 20,
	};

	tt_add("q", API_ROLE_TENANT, &q, "tok-q");
	as("tok-q");
}

START_TEST(quota_of_machines_at_its_edge)
{
	as_q(2, 16ULL << 30, 64);
	create("m1");
	create("m2");   /* n - 1 had: fine */
	post("/v1/machines", "{\"id\":\"m3\",\"memory\":\"64MiB\"}");
	ck_problem(429, "quota_exceeded");
	ck_assert_ptr_null(header("Retry-After"));
	ck_assert_ptr_null(ts_find("q", "m3"));
	post("/v1/machines/m1/clone", "{\"id\":\"c1\"}");
	ck_problem(429, "quota_exceeded");
	ck_assert_ptr_null(ts_find("q", "c1"));
	/* The admin, and another tenant, are not held by q's quota. */
	as("tok-alice");
	create("m3");
	as("tok-q");
	call("DELETE", "/v1/machines/m2", NULL, NULL, NULL, 0);
	ck_status(204);
	create("m3");
	get("/v1/whoami");
	ck_status(200);
	ck_assert_uint_eq((uint64_t)cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rj, "usage"), "machines")
		->valuedouble, 2);
	/* Refused before any work: the store never saw a creation over
	 * the quota. */
	ck_assert_uint_eq(ts.quota_refusals, 0);
}
END_TEST

START_TEST(quota_of_memory_at_its_edge)
{
	as_q(8, 96ULL << 20, 64);
	create("m1");                       /* 64 MiB */
	post("/v1/machines", "{\"id\":\"m2\",\"memory\":\"33MiB\"}");
	ck_problem(429, "quota_exceeded");  /* 97 MiB in all */
	ck_assert_ptr_null(ts_find("q", "m2"));
	post("/v1/machines/m1/clone", "{\"id\":\"c1\"}");
	ck_problem(429, "quota_exceeded");  /* 128 MiB */
	post("/v1/machines", "{\"id\":\"m2\",\"memory\":\"32MiB\"}");
	ck_status(201);                     /* exactly 96 MiB */
	get("/v1/whoami");
	ck_status(200);
	ck_assert_uint_eq((uint64_t)cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(rj, "usage"), "memory")
		->valuedouble, 96ULL << 20);
	ck_assert_uint_eq(ts.quota_refusals, 0);
}
END_TEST

START_TEST(quota_of_processes_at_its_edge)
{
	struct memstore_slot *s;
	uint8_t *s0, *s1;
	size_t len0, len1;
	unsigned commits;
	bool same;

	/* Two machines of the admin's, with 2 and 3 processes, shared
	 * with q for reading. */
	as(ADMIN_TOKEN);
	create("t2");
	create("t3");
	for (int i = 0; i < 5; i++) {
		post(i < 2 ? "/v1/machines/t2/processes"
			   : "/v1/machines/t3/processes", "{}");
		ck_status(201);
	}
	as_q(8, 16ULL << 30, 2);
	as(ADMIN_TOKEN);
	post("/v1/machines/t2/shares",
	     "{\"tenant\":\"q\",\"access\":\"read\"}");
	ck_status(201);
	post("/v1/machines/t3/shares",
	     "{\"tenant\":\"q\",\"access\":\"read\"}");
	ck_status(201);

	as("tok-q");
	create("m");
	get("/v1/machines/m");
	ck_assert_uint_eq(num("processes"), 0);
	post("/v1/machines/m/processes", "{}");
	ck_status(201);
	post("/v1/machines/m/processes", "{}");
	ck_status(201);                     /* n - 1 had: fine */
	s = ts_find("q", "m");
	vm_state_serialize(s->pub.m, &s0, &len0);
	commits = ts.commits;
	post("/v1/machines/m/processes", "{}");
	ck_problem(429, "quota_exceeded");
	vm_state_serialize(s->pub.m, &s1, &len1);
	same = len0 == len1 && memcmp(s0, s1, len0) == 0;
	free(s0);
	free(s1);
	ck_assert_msg(same, "a refused process creation changed the machine");
	ck_assert_uint_eq(ts.commits, commits);
	ck_assert_uint_eq(vm_machine_nprocesses(s->pub.m), 2);

	/* A clone brings its processes: 2 fit, 3 do not. */
	post("/v1/machines/admin.t2/clone", "{\"id\":\"c2\"}");
	ck_status(201);
	ck_assert_str_eq(str("owner"), "q");
	post("/v1/machines/admin.t3/clone", "{\"id\":\"c3\"}");
	ck_problem(429, "quota_exceeded");
	ck_assert_ptr_null(ts_find("q", "c3"));
}
END_TEST

/* The "tenant" of each history record of the last answer, joined. */
static void history_tenants(char *out, size_t cap)
{
	const cJSON *ops = cJSON_GetObjectItemCaseSensitive(rj, "operations");
	const cJSON *o;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(o, ops) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "tenant");

		ck_assert(cJSON_IsString(t));
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "",
				      t->valuestring);
	}
}

START_TEST(history_names_the_tenant_that_applied_each_op)
{
	char who[128];

	as("tok-alice");
	create("lab1");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"bob\",\"access\":\"write\"}");
	ck_status(201);
	post("/v1/machines/lab1/kmalloc", "{\"size\":64}");
	ck_status(201);
	as("tok-bob");
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":64}");
	ck_status(201);
	as(ADMIN_TOKEN);
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":64}");
	ck_status(201);
	as("tok-grader");
	get("/v1/machines/alice.lab1/history");
	ck_status(200);
	history_tenants(who, sizeof(who));
	ck_assert_str_eq(who, "alice bob admin");
}
END_TEST

START_TEST(with_auth_off_the_caller_is_the_local_admin)
{
	char who[128];

	/* A token is not read at all. */
	authz = "Bearer tok-alice";
	get("/v1/whoami");
	ck_status(200);
	ck_assert_str_eq(str("tenant"), "local");
	ck_assert_str_eq(str("role"), "admin");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(rj, "quota")));
	authz = NULL;
	get("/v1/whoami");
	ck_assert_str_eq(str("tenant"), "local");
	get("/v1/machines/d1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "d1");
	ck_assert_str_eq(str("owner"), "local");
	get("/v1/machines/local.d1");
	ck_status(200);
	ck_assert_str_eq(str("id"), "d1");
	get("/v1/machines/d1/history");
	ck_status(200);
	history_tenants(who, sizeof(who));
	ck_assert_str_eq(who, "local local local local local local");
	/* The admin's routes are open. */
	post("/v1/tenants", "{\"name\":\"dave\"}");
	ck_status(201);
	ck_assert_str_eq(str("token"), "tok-dave");
	ck_assert_ptr_nonnull(tt_find("dave"));
	get("/v1/tenants");
	ck_status(200);
	get("/metrics");
	ck_assert_int_ne(rsp.status, 401);
	ck_assert_int_ne(rsp.status, 403);
}
END_TEST

START_TEST(shares_give_read_or_write)
{
	as("tok-alice");
	create("lab1");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"bob\",\"access\":\"read\"}");
	ck_status(201);
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"bob\",\"access\":\"write\"}");
	ck_status(200);                     /* changed, not new */
	ck_assert_str_eq(str("access"), "write");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"*\",\"access\":\"read\"}");
	ck_status(201);
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"alice\",\"access\":\"read\"}");
	ck_problem(422, "invalid_value");   /* the owner itself */
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"nobody\",\"access\":\"read\"}");
	ck_problem(422, "invalid_value");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"bob\",\"access\":\"owner\"}");
	ck_problem(422, "invalid_value");
	get("/v1/machines/lab1/shares");
	ck_status(200);
	{
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(rj,
								      "items");

		ck_assert_int_eq(cJSON_GetArraySize(items), 2);
		ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(items, 0), "tenant")->valuestring,
			"*");
		ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(items, 1), "tenant")->valuestring,
			"bob");
	}

	/* bob writes but does not own; carol reads through "*". */
	as("tok-bob");
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":8}");
	ck_status(201);
	get("/v1/machines/alice.lab1/shares");
	ck_problem(403, "forbidden");
	call("DELETE", "/v1/machines/alice.lab1", NULL, NULL, NULL, 0);
	ck_problem(403, "forbidden");
	as("tok-carol");
	get("/v1/machines/alice.lab1");
	ck_status(200);
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":8}");
	ck_problem(403, "forbidden");

	/* The test store holds 4 shares a machine. */
	as("tok-alice");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"carol\",\"access\":\"read\"}");
	ck_status(201);
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"grader\",\"access\":\"read\"}");
	ck_status(201);
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"long\",\"access\":\"read\"}");
	ck_problem(409, "too_many_shares");
	post("/v1/machines/lab1/shares",
	     "{\"tenant\":\"carol\",\"access\":\"write\"}");
	ck_status(200);                     /* a change still fits */

	/* Revoked: bob keeps what "*" gives, then nothing. */
	call("DELETE", "/v1/machines/lab1/shares/bob", NULL, NULL, NULL, 0);
	ck_status(204);
	call("DELETE", "/v1/machines/lab1/shares/bob", NULL, NULL, NULL, 0);
	ck_problem(404, "not_found");
	as("tok-bob");
	get("/v1/machines/alice.lab1");
	ck_status(200);
	post("/v1/machines/alice.lab1/kmalloc", "{\"size\":8}");
	ck_problem(403, "forbidden");
	as("tok-alice");
	call("DELETE", "/v1/machines/lab1/shares/%2A", NULL, NULL, NULL, 0);
	ck_status(204);
	as("tok-bob");
	get("/v1/machines/alice.lab1");
	ck_problem(404, "not_found");
}
END_TEST

/* The ids of the items of the last list, joined. */
static void list_ids(char *out, size_t cap)
{
	const cJSON *o;
	size_t n = 0;

	out[0] = '\0';
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(rj, "items"))
		n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? " " : "",
				      cJSON_GetObjectItemCaseSensitive(o, "id")
					      ->valuestring);
}

START_TEST(lists_name_what_the_caller_sees)
{
	char ids[256];

	as("tok-alice");
	create("lab1");
	create("lab2");
	post("/v1/machines/lab2/shares",
	     "{\"tenant\":\"bob\",\"access\":\"read\"}");
	ck_status(201);
	as("tok-bob");
	create("b1");
	as(ADMIN_TOKEN);
	create("a1");

	as("tok-bob");
	get("/v1/machines");
	ck_status(200);
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "alice.lab2 b1");
	as(ADMIN_TOKEN);
	get("/v1/machines");
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "a1 alice.lab1 alice.lab2 bob.b1 local.d1");
	get("/v1/machines?page_size=2");
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "a1 alice.lab1");
	ck_assert_str_eq(str("next_page_token"), "alice.lab1");
	get("/v1/machines?page_size=2&page_token=alice.lab1");
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "alice.lab2 bob.b1");
	get("/v1/machines?owner=alice");
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "alice.lab1 alice.lab2");
	get("/v1/machines?owner=Alice");
	ck_problem(400, "bad_query");
	get("/v1/machines?page_token=lab1");
	ck_problem(400, "bad_query");
	as("tok-grader");
	get("/v1/machines?owner=bob");
	list_ids(ids, sizeof(ids));
	ck_assert_str_eq(ids, "bob.b1");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dispatch");
	TCase *routes = tcase_create("routes");
	TCase *json = tcase_create("json");
	TCase *u64 = tcase_create("parse_u64");
	TCase *ct = tcase_create("content_type");
	TCase *im = tcase_create("if_match");
	TCase *ref = tcase_create("refusals");
	TCase *tn = tcase_create("tenants");
	TCase *off = tcase_create("auth_off");
	TCase *all[] = { routes, json, u64, ct, im, ref, tn, off };
	SRunner *sr;
	int failed;

	for (unsigned i = 0; i < sizeof(all) / sizeof(*all); i++) {
		tcase_add_checked_fixture(all[i], all[i] == tn ? auth_setup
							      : setup,
					  teardown);
		tcase_set_timeout(all[i], 60);
		suite_add_tcase(s, all[i]);
	}
	tcase_add_test(routes, every_other_method_is_405);
	tcase_add_test(routes, every_route_is_found_with_its_method);
	tcase_add_test(routes, a_405_names_the_allowed_methods);
	tcase_add_loop_test(routes, unknown_paths_are_404_no_such_route, 0,
			    sizeof(unknown_paths) / sizeof(*unknown_paths));
	tcase_add_test(routes, unknown_machine_is_404_not_found);
	tcase_add_test(routes, an_overlong_machine_id_is_404_not_found);
	tcase_add_loop_test(routes, a_problem_quotes_any_path_as_utf8, 0,
			    sizeof(raw_paths) / sizeof(*raw_paths));

	tcase_add_loop_test(json, scanner_case, 0,
			    sizeof(jcases) / sizeof(*jcases));
	tcase_add_test(json, nesting_32_is_fine_33_is_not);
	tcase_add_test(json, escapes_decode_to_their_characters);
	tcase_add_loop_test(json, a_nul_escape_never_shortens_a_value, 0,
			    sizeof(nul_cases) / sizeof(*nul_cases));
	tcase_add_test(json, an_empty_body_is_an_empty_object);
	tcase_add_test(json, numbers_at_the_edge_of_2_53);

	tcase_add_loop_test(u64, parse_u64_case, 0,
			    sizeof(ucases) / sizeof(*ucases));

	tcase_add_loop_test(ct, content_type_case, 0,
			    sizeof(ctcases) / sizeof(*ctcases));

	tcase_add_test(im, if_match_makes_a_mutation_conditional);
	tcase_add_test(im, a_refusal_keeps_if_match_usable);

	tcase_add_loop_test(ref, refusal_leaves_the_machine_byte_identical, 0,
			    sizeof(rcases) / sizeof(*rcases));
	tcase_add_test(ref, commit_refused_then_retried_gives_the_same_answer);

	tcase_add_test(tn, no_token_is_401_before_routing);
	tcase_add_loop_test(tn, a_malformed_or_unknown_bearer_is_401, 0,
			    sizeof(bad_bearers) / sizeof(*bad_bearers));
	tcase_add_test(tn, the_bearer_forms_that_work);
	tcase_add_test(tn, a_limited_caller_is_429_with_retry_after);
	tcase_add_test(tn, healthz_is_open);
	tcase_add_test(tn, metrics_and_tenants_need_their_role);
	tcase_add_test(tn, a_grader_creates_nothing);
	tcase_add_test(tn, a_grader_kmalloc_is_403_and_changes_nothing);
	tcase_add_test(tn, a_stranger_gets_404_on_every_machine_route);
	tcase_add_test(tn, owner_dot_id_names_a_machine);
	tcase_add_loop_test(tn, names_that_cannot_be_a_machine_are_404, 0,
			    sizeof(bad_names) / sizeof(*bad_names));
	tcase_add_test(tn, quota_of_machines_at_its_edge);
	tcase_add_test(tn, quota_of_memory_at_its_edge);
	tcase_add_test(tn, quota_of_processes_at_its_edge);
	tcase_add_test(tn, history_names_the_tenant_that_applied_each_op);
	tcase_add_test(tn, shares_give_read_or_write);
	tcase_add_test(tn, lists_name_what_the_caller_sees);

	tcase_add_test(off, with_auth_off_the_caller_is_the_local_admin);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
