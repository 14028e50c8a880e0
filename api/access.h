/*
 * access.h - who is calling, and what they may do to a machine.
 *
 * SPEC part 3: every request acts as a caller, a tenant with a role.
 * `admin` may do everything, `grader` reads every machine and changes
 * nothing, `tenant` owns its machines and reads or writes the machines
 * shared with it ("*" shares with every tenant). The policy is this one
 * pure function, so the server's store and the API decide alike and a
 * test can read it whole.
 */
#ifndef API_ACCESS_H
#define API_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define API_TENANT_MAX 32          /* [a-z0-9][a-z0-9-]{0,31} */
#define API_ADMIN_TENANT "admin"   /* the admin's namespace with auth on */
#define API_LOCAL_TENANT "local"   /* the only caller with auth off */
#define API_EVERYONE "*"           /* a share with every tenant */

enum api_role { API_ROLE_TENANT, API_ROLE_GRADER, API_ROLE_ADMIN };

/* Ordered: each level includes the ones before it. */
enum api_access {
	API_ACCESS_NONE,   /* not visible: 404 */
	API_ACCESS_READ,   /* GET, translate, clone from it */
	API_ACCESS_WRITE,  /* operations that change the machine */
	API_ACCESS_OWNER,  /* delete it, manage its shares */
};

/* A tenant's quotas (SPEC part 3). */
struct api_quota {
	uint64_t machines;     /* machines it may own */
	uint64_t memory;       /* total simulated RAM of those, bytes */
	uint64_t processes;    /* processes per machine */
	uint64_t rate;         /* requests per second (token bucket) */
};

struct api_caller {
	char tenant[API_TENANT_MAX + 1];
	enum api_role role;
	bool limited;          /* quota applies (not for the admin) */
	struct api_quota quota;
};

/* One share of a machine. */
struct api_share {
	char tenant[API_TENANT_MAX + 1];   /* or API_EVERYONE */
	bool write;
};

/* What caller may do to a machine of owner with these shares. */
enum api_access api_access_for(const struct api_caller *caller,
			       const char *owner,
			       const struct api_share *shares, size_t nshares);

/* Whether s is a valid tenant name. */
bool api_valid_tenant(const char *s);

const char *api_role_name(enum api_role r);

#endif
