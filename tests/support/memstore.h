/*
 * memstore.h - machines and tenants in memory, for programs that drive
 * api_dispatch without a server: the Check tests, the benchmark of the
 * API and the fuzz targets.
 *
 * The store (api/store.h) keeps its machines in a table of slots: no
 * locks, no SQLite, no fsync. Like a durable store it keeps each
 * machine's last committed state (its canonical bytes) and puts it back
 * when it refuses a commit, so a test can make it refuse (refuse_commit)
 * and see that nothing changed. Shares and the history's log are kept
 * per machine, up to the limits given at memstore_init.
 *
 * The tenant directory (api/tenants.h) keeps tokens in plain text; a
 * tenant's token is "tok-<name>" unless given, and the admin's is
 * MEMSTORE_ADMIN_TOKEN.
 */
#ifndef TESTS_SUPPORT_MEMSTORE_H
#define TESTS_SUPPORT_MEMSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/op.h"

/* One applied operation, as a store's log keeps it. */
struct memstore_rec {
	uint64_t version;
	struct vm_op op;
	struct vm_op_result res;
	char by[API_TENANT_MAX + 1];
};

/* A machine: its entry, last committed state, shares and log. */
struct memstore_slot {
	struct api_entry pub;      /* first: an entry is its slot */
	bool used;
	uint8_t *saved;            /* canonical bytes at the last commit */
	size_t saved_len;
	struct api_share *shares;  /* max_shares, in tenant order */
	size_t nshares;
	struct memstore_rec *log;  /* max_log */
	unsigned nlog;
};

struct memstore {
	struct memstore_slot *s;
	size_t nslots;
	size_t max_shares;         /* too_many_shares beyond */
	unsigned max_log;          /* records kept per machine */
	bool refuse_commit;        /* commit answers service_unavailable */
	unsigned commits;          /* commit calls, taken or refused */
	unsigned quota_refusals;   /* creations refused for quota */
	/*
	 * Optional: a clock (nanoseconds); when set, the time the store
	 * spends encoding machines on creation adds up in snapshot_ns.
	 */
	double (*clock_ns)(void);
	double snapshot_ns;
};

extern const struct api_store_ops memstore_ops;

/* An empty store of nslots machines; aborts when out of memory. */
void memstore_init(struct memstore *ms, size_t nslots, size_t max_shares,
		   unsigned max_log);
/* Drops every machine (the store stays usable). */
void memstore_clear(struct memstore *ms);
/* Drops every machine and frees the table. */
void memstore_free(struct memstore *ms);
/* The used slot of (owner, id), or NULL. */
struct memstore_slot *memstore_find(struct memstore *ms, const char *owner,
				    const char *id);
/* Machines in the store. */
size_t memstore_count(const struct memstore *ms);

/* ---- the tenant directory ---- */

#define MEMSTORE_ADMIN_TOKEN "admin-secret"
#define MEMSTORE_TENANTS 8

struct memstore_tenant {
	struct api_tenant_info info;
	char token[API_TOKEN_MAX + 1];
	bool used;
	bool limited;      /* its request bucket is empty */
};

struct memtenants {
	struct memstore_tenant t[MEMSTORE_TENANTS];
	unsigned rotations;
	unsigned lookups;  /* tokens the API asked about */
};

extern const struct api_tenants_ops memtenants_ops;

struct memstore_tenant *memtenants_find(struct memtenants *tt,
					const char *name);
/* Adds a tenant with this token directly (no request); -1 when full. */
int memtenants_add(struct memtenants *tt, const char *name,
		   enum api_role role, const struct api_quota *q,
		   const char *token);

#endif
