/*
 * tenants.h - the tenant directory the server hands the API.
 *
 * SPEC part 3: an admin creates tenants (role tenant or grader) with
 * quotas and a token each; a token is shown once, at creation or
 * rotation, and kept only as a hash. The API decides who may call what
 * (access.h); the directory knows who a token belongs to, keeps each
 * tenant's request-rate bucket, and makes tenants durable. The server
 * implements it (server/tenants.c), so the API links no crypto and no
 * database.
 */
#ifndef API_TENANTS_H
#define API_TENANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access.h"
#include "problem.h"

#define API_TOKEN_MAX 64

struct api_tenant_info {
	char name[API_TENANT_MAX + 1];
	enum api_role role;        /* tenant or grader */
	struct api_quota quota;
	char created[32];          /* ISO-8601, set by the directory */
};

/* What authenticate() found. */
enum api_auth {
	API_AUTH_OK,
	API_AUTH_UNKNOWN,          /* no tenant has this token: 401 */
	API_AUTH_LIMITED,          /* over its request rate: 429 */
};

struct api_tenants_ops {
	/*
	 * The caller a bearer token belongs to (the admin's token too),
	 * taking one request from its rate bucket; when the bucket is
	 * empty, API_AUTH_LIMITED with *retry_after the seconds until a
	 * request is allowed again.
	 */
	enum api_auth (*authenticate)(void *impl, const char *token,
				      struct api_caller *out,
				      uint32_t *retry_after);
	/*
	 * Creates a tenant and its first token (durable before it returns),
	 * setting t->created. -1 with p filled: already_exists,
	 * too_many_tenants, service_unavailable.
	 */
	int (*create)(void *impl, struct api_tenant_info *t,
		      char token[API_TOKEN_MAX + 1], struct api_problem *p);
	/* Tenants after `after` ("" for the start) in name order. */
	size_t (*list)(void *impl, const char *after, size_t limit,
		       struct api_tenant_info *out, bool *more);
	/* 0 and *out filled when the tenant exists (the admin's does not). */
	int (*get)(void *impl, const char *name, struct api_tenant_info *out);
	/* Removes a tenant, its machines and the shares granted to it. */
	int (*remove)(void *impl, const char *name, struct api_problem *p);
	/* A new token for the tenant; the old one stops working at once. */
	int (*rotate)(void *impl, const char *name,
		      char token[API_TOKEN_MAX + 1], struct api_problem *p);
};

struct api_tenants {
	const struct api_tenants_ops *ops;  /* NULL: no tenants (tests) */
	void *impl;
};

#endif
