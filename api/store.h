/*
 * store.h - where the API finds machines: an interface the server fills.
 *
 * The API never knows whether machines live in memory or in SQLite: the
 * server hands it a store. A store maps (owner, id) to machines, with
 * each machine's shares, and hands them out locked to callers that may
 * see them (access.h): any number of readers of one machine at once, one
 * writer at a time (SPEC part 3), different machines never waiting for
 * each other. A writer's changes become visible to others, and its
 * response is sent, only after the store has taken the operation
 * (store->commit); a store that cannot take it refuses and puts the
 * machine back as it was.
 */
#ifndef API_STORE_H
#define API_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/machine.h"
#include "core/op.h"
#include "access.h"
#include "problem.h"

#define API_ID_MAX 63
#define API_MAX_SHARES 1024        /* shares per machine */

/* A machine as the store hands it out (locked for read or write). */
struct api_entry {
	char owner[API_TENANT_MAX + 1];    /* the tenant whose it is */
	char id[API_ID_MAX + 1];
	char created[32];          /* ISO-8601, service metadata */
	struct vm_machine *m;      /* the writer may replace it (restore) */
};

/* A machine's full name: its owner's namespace and its id there. */
struct api_name {
	char owner[API_TENANT_MAX + 1];
	char id[API_ID_MAX + 1];
};

struct api_store_ops {
	/*
	 * Creates a machine under (owner, id); the store takes m. With a
	 * quota, the owner's machines and total memory are checked against
	 * it under the same lock as the insertion. -1 with p filled
	 * (already_exists, too_many_machines, quota_exceeded, not_found
	 * when the owner was removed meanwhile, service_unavailable).
	 */
	int (*create)(void *impl, const char *owner, const char *id,
		      struct vm_machine *m, const struct api_quota *quota,
		      struct api_problem *p);
	/*
	 * Finds a machine and locks it for who: for writing when need is
	 * API_ACCESS_WRITE or more, else for reading. NULL with p filled:
	 * not_found when who may not see it (or there is none), forbidden
	 * when who sees it but has less than need (api_access_for).
	 */
	struct api_entry *(*open)(void *impl, const struct api_caller *who,
				  const char *owner, const char *id,
				  enum api_access need, struct api_problem *p);
	/* Unlocks an entry from open (write: it was opened for writing). */
	void (*close)(void *impl, struct api_entry *e, bool write);
	/*
	 * Deletes a machine who owns (API_ACCESS_OWNER); -1 with p filled as
	 * open's, or service_unavailable.
	 */
	int (*remove)(void *impl, const struct api_caller *who,
		      const char *owner, const char *id,
		      struct api_problem *p);
	/*
	 * Lists up to limit machines who may see, in (owner, id) order,
	 * after (after->owner, after->id) (both "" for the start); only
	 * owner's when owner is not NULL. Returns how many, and sets *more
	 * when there are further ones.
	 */
	size_t (*list)(void *impl, const struct api_caller *who,
		       const char *owner, const struct api_name *after,
		       size_t limit, struct api_name *out, bool *more);
	/*
	 * Takes a successful operation of a write-locked entry, applied by
	 * tenant `by`, before it is acknowledged. -1 with p filled
	 * ("service_unavailable") refuses it; the store then puts e->m back
	 * as it was before the operation (it holds the last state it made
	 * durable; it may replace e->m).
	 */
	int (*commit)(void *impl, struct api_entry *e, const char *by,
		      const struct vm_op *op, const struct vm_op_result *res,
		      struct api_problem *p);
	/*
	 * A machine's log after version `after`, oldest first, at most
	 * limit records: fn gets each (version, record, answer, tenant that
	 * applied it). Returns how many, or -1 with p filled.
	 */
	int (*history)(void *impl, const char *owner, const char *id,
		       uint64_t after, unsigned limit,
		       int (*fn)(void *ctx, uint64_t version,
				 const struct vm_op *op,
				 const struct vm_op_result *res,
				 const char *by),
		       void *ctx, struct api_problem *p);
	/*
	 * Optional: queues the operation for a group commit instead of
	 * committing it now (SPEC part 3: many mutations share one
	 * transaction and one fsync). The entry stays write-locked (close()
	 * defers the unlock) until the store has committed or refused it;
	 * then done(cls, ok, p) runs: ok, or refused with p filled and the
	 * machine back as it was. done may run on the store's thread, or
	 * before commit_async returns, on the caller's (a store that is not
	 * writing commits a lone operation at once).
	 */
	void (*commit_async)(void *impl, struct api_entry *e, const char *by,
			     const struct vm_op *op,
			     const struct vm_op_result *res,
			     void (*done)(void *cls, bool ok,
					  const struct api_problem *p),
			     void *cls);
	/* Machines an owner has, and their total simulated RAM (bytes). */
	void (*usage)(void *impl, const char *owner, uint64_t *machines,
		      uint64_t *memory);
	/*
	 * A machine's shares (at most cap, in tenant order; "*" first);
	 * returns how many there are in all.
	 */
	size_t (*shares)(void *impl, const char *owner, const char *id,
			 struct api_share *out, size_t cap);
	/*
	 * Shares a machine (or changes a share's access); *created says
	 * whether the share is new. -1 with p filled: not_found,
	 * too_many_shares, service_unavailable.
	 */
	int (*share_put)(void *impl, const char *owner, const char *id,
			 const struct api_share *sh, bool *created,
			 struct api_problem *p);
	/* Revokes a share; -1 with p filled: not_found, service_unavailable. */
	int (*share_remove)(void *impl, const char *owner, const char *id,
			    const char *tenant, struct api_problem *p);
	/* Optional, for /metrics: transactions committed, operations made
	 * durable. */
	void (*counters)(void *impl, uint64_t *transactions,
			 uint64_t *operations);
	/* Totals for /metrics. */
	void (*totals)(void *impl, uint64_t *machines, uint64_t *processes,
		       uint64_t *frames);
};

struct api_store {
	const struct api_store_ops *ops;
	void *impl;
};

#endif
