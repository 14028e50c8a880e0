/*
 * fuzz_dispatch.c - api_dispatch with any request, on the store in memory.
 *
 * Input framing (text; a line ends at '\n', a '\r' before it is dropped):
 *
 *   line 1   the method, then optionally " auth": dispatch with auth on
 *   line 2   the target, "path" or "path?query" (split at the first '?')
 *   then     header lines "Name: value" up to an empty line; the names
 *            taken (case-insensitively) are Content-Type, If-Match and
 *            Authorization; others are ignored
 *   rest     the body, as bytes (it may hold NULs)
 *
 * Input that ends early leaves the rest empty: "GET\n/healthz" is a
 * request. A NUL inside the method, target or a header ends that string,
 * as it would in a server's C strings.
 *
 * The world every input meets is world.h's: machines m1 and m2 in
 * namespace "local" with auth off; tokens for the admin, alice, bob,
 * carol (rate-limited) and a grader, and alice's lab1 shared with bob,
 * with auth on. The world is
 * put back after any request that changed it, so that each input runs
 * alone and a crash reproduces from its input.
 *
 * A crash (abort) is: a status outside 200..499 (any 5xx: no request is
 * the server's fault here); a response still pending; a body that is not
 * strict JSON (api_json_parse: RFC 8259, valid UTF-8, no duplicate keys)
 * where the route answers JSON, that is everywhere but /metrics and a 204;
 * a 4xx that is not an RFC 9457 problem (application/problem+json with
 * type, title, status equal to the answer's, detail and code); a 405
 * without Allow, a 401 without WWW-Authenticate; a machine whose version
 * moved in a request that committed nothing; and a machine that fails
 * vm_machine_check after a request that changed the store.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "api/json.h"
#include "core/machine.h"
#include "tests/support/memstore.h"
#include "world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what, const struct api_response *r)
{
	fprintf(stderr, "fuzz_dispatch: %s (status %d, %s): %.*s\n", what,
		r ? r->status : 0, r && r->content_type ? r->content_type : "-",
		r && r->body ? (int)(r->body_len < 400 ? r->body_len : 400) : 0,
		r && r->body ? r->body : "");
	abort();
}

/* ---- what every answer must be ---- */

static const char *header(const struct api_response *r, const char *name)
{
	for (unsigned i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void check_problem(const struct api_response *r, const cJSON *o)
{
	static const char *const need[] = { "type", "title", "detail",
					    "code" };
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

	if (!r->content_type ||
	    strcmp(r->content_type, "application/problem+json") != 0)
		die("a refusal that is not problem+json", r);
	for (unsigned i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o,
								     need[i])))
			die("a problem without a member", r);
	if (!cJSON_IsNumber(st) || st->valuedouble != r->status)
		die("a problem whose status is not the answer's", r);
}

static void check_answer(const struct api_response *r)
{
	cJSON *o = NULL;
	struct api_problem p;

	if (r->status < 200 || r->status > 499)
		die("a status outside 200..499", r);
	if (r->pending)
		die("an answer left pending", r);
	if (r->status == 405 && !header(r, "Allow"))
		die("a 405 without Allow", r);
	if (r->status == 401 && !header(r, "WWW-Authenticate"))
		die("a 401 without WWW-Authenticate", r);
	if (r->status == 204 ||
	    (r->route && strcmp(r->route, "/metrics") == 0 &&
	     r->status == 200))
		return;
	if (!r->content_type ||
	    (strcmp(r->content_type, "application/json") != 0 &&
	     strcmp(r->content_type, "application/problem+json") != 0))
		die("an answer that is not JSON", r);
	if (!r->body || api_json_parse(r->body, r->body_len, &o, &p))
		die("an answer whose body is not strict JSON", r);
	if (r->status >= 400)
		check_problem(r, o);
	cJSON_Delete(o);
}

/* Versions of the world's machines before a request; NEW for a slot
 * that was free (a machine created or cloned there starts anew). */
#define NEW UINT64_MAX
static uint64_t versions[FUZZ_NSLOTS];

static void remember_versions(void)
{
	for (size_t i = 0; i < fuzz_store.nslots; i++) {
		const struct memstore_slot *s = &fuzz_store.s[i];

		versions[i] = s->used ? vm_machine_version(s->pub.m) : NEW;
	}
}

/* After a request that changed the store: every machine still valid. */
static void check_machines(void)
{
	struct vm_error err = { 0, "" };

	for (size_t i = 0; i < fuzz_store.nslots; i++) {
		const struct memstore_slot *s = &fuzz_store.s[i];

		if (s->used && vm_machine_check(s->pub.m, &err)) {
			fprintf(stderr, "fuzz_dispatch: %s.%s: %s\n",
				s->pub.owner, s->pub.id, err.detail);
			abort();
		}
	}
}

/* A request that committed nothing changed no machine's version. */
static void check_unchanged(const struct api_response *r)
{
	for (size_t i = 0; i < fuzz_store.nslots; i++) {
		const struct memstore_slot *s = &fuzz_store.s[i];

		if (s->used && versions[i] != NEW &&
		    vm_machine_version(s->pub.m) != versions[i])
			die("a request that committed nothing changed a "
			    "machine", r);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static struct fuzz_request fr;
	struct api_response r;

	if (!ready) {
		fuzz_world_init();
		ready = true;
	}
	fuzz_request_parse(data, size, &fr);
	fuzz_ctx.auth = fr.auth;
	fuzz_dirty = fuzz_committed = false;
	remember_versions();
	api_dispatch(&fuzz_ctx, &fr.rq, &r);
	check_answer(&r);
	if (!fuzz_committed)
		check_unchanged(&r);
	api_response_release(&r);
	fuzz_request_free(&fr);
	if (fuzz_dirty) {
		check_machines();
		fuzz_world_reset();
	}
	return 0;
}
