/*
 * api.h - the REST/JSON API of SPEC part 2, without sockets.
 *
 * api_dispatch() takes a whole request (method, path, query, the headers
 * that matter, body) and produces a whole response; the HTTP server only
 * moves bytes. So the API runs the same under libmicrohttpd, in Check
 * tests and under a fuzzer. Every refusal is an RFC 9457 problem from the
 * catalogue of problem.h, never a crash, and a refused request changes
 * nothing. Routes live in one static table (routes.c); a path that matches
 * no route is 404, a known path with another method 405.
 */
#ifndef API_API_H
#define API_API_H

#include <stdbool.h>
#include <stddef.h>

#include "problem.h"
#include "store.h"
#include "tenants.h"

struct api_request {
	const char *method;        /* "GET", "POST", "DELETE", ... */
	const char *path;          /* without the query: "/v1/machines/lab1" */
	const char *query;         /* raw, without '?': "page_size=10"; or NULL */
	const char *content_type;  /* NULL when absent */
	const char *if_match;      /* NULL when absent */
	const char *authorization; /* the Authorization header, or NULL */
	const char *body;
	size_t body_len;
	/*
	 * Set by a server that can hold an answer until its operation is
	 * durable: a mutation is then queued for a group commit, the
	 * response comes back with `pending` set, and done() says later
	 * whether to send it (ok) or a problem instead (api_problem_response).
	 */
	void (*commit_done)(void *cls, bool ok, const struct api_problem *p);
	void *commit_cls;
};

#define API_MAX_HEADERS 4

struct api_response {
	int status;
	const char *content_type;  /* static string */
	char *body;                /* malloc'd, freed with api_response_release */
	size_t body_len;
	unsigned nheaders;
	struct {
		const char *name;  /* static */
		char value[96];
	} headers[API_MAX_HEADERS];
	const char *route;         /* route pattern, for metrics; static */
	bool pending;              /* hold until commit_done (see above) */
};

struct api_config {
	size_t max_machines;       /* 0: no limit */
	uint64_t max_memory;       /* service limit on x86_64 RAM (bytes) */
	const char *openapi;       /* docs/openapi.json, served as is */
	size_t openapi_len;
	const char *version;       /* vmlabd's version, for /v1 */
};

struct api_ctx {
	struct api_store store;
	struct api_config config;
	/*
	 * With auth, every request but /healthz names its caller with a
	 * bearer token (tenants.authenticate); without, every request acts
	 * as the admin, in the namespace "local" (SPEC part 3).
	 */
	bool auth;
	struct api_tenants tenants;
	/* Optional: the server's /metrics text (malloc'd, caller frees). */
	char *(*metrics)(void *cls);
	void *metrics_cls;
};

/* Answers one request; resp is the caller's (api_response_release). */
void api_dispatch(struct api_ctx *ctx, const struct api_request *req,
		  struct api_response *resp);

void api_response_release(struct api_response *resp);

/* Replaces resp with the problem p (its body, status, headers). */
void api_problem_response(struct api_response *resp,
			  const struct api_problem *p);

#endif
