/*
 * store.h - where the API finds machines: an interface the server fills.
 *
 * The API never knows whether machines live in memory or in SQLite: the
 * server hands it a store. A store maps (tenant, id) to machines and hands
 * them out locked: any number of readers of one machine at once, one
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
#include "problem.h"

#define API_ID_MAX 63

/* A machine as the store hands it out (locked for read or write). */
struct api_entry {
	char id[API_ID_MAX + 1];
	char created[32];          /* ISO-8601, service metadata */
	struct vm_machine *m;      /* the writer may replace it (restore) */
};

struct api_store_ops {
	/*
	 * Creates a machine under id; the store takes m. -1 with p filled
	 * ("already_exists", "too_many_machines").
	 */
	int (*create)(void *impl, const char *tenant, const char *id,
		      struct vm_machine *m, struct api_problem *p);
	/* Finds and locks a machine; NULL when there is none. */
	struct api_entry *(*open)(void *impl, const char *tenant,
				  const char *id, bool write);
	/* Unlocks an entry from open. */
	void (*close)(void *impl, struct api_entry *e, bool write);
	/* Deletes a machine; -1 with p filled when there is none. */
	int (*remove)(void *impl, const char *tenant, const char *id,
		      struct api_problem *p);
	/*
	 * Lists up to limit ids after `after` ("" for the start) in id order
	 * into ids (each API_ID_MAX + 1 bytes); returns how many, and sets
	 * *more when there are further ones.
	 */
	size_t (*list)(void *impl, const char *tenant, const char *after,
		       size_t limit, char (*ids)[API_ID_MAX + 1], bool *more);
	/*
	 * Takes a successful operation of a write-locked entry before it is
	 * acknowledged. -1 with p filled ("service_unavailable") refuses it;
	 * the store then puts e->m back as it was before the operation (it
	 * holds the last state it made durable; it may replace e->m).
	 */
	int (*commit)(void *impl, struct api_entry *e, const struct vm_op *op,
		      const struct vm_op_result *res, struct api_problem *p);
	/*
	 * A machine's log after version `after`, oldest first, at most
	 * limit records: fn gets each (version, record, answer, tenant that
	 * applied it). Returns how many, or -1 with p filled.
	 */
	int (*history)(void *impl, const char *tenant, const char *id,
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
	 * then done(cls, ok, p) runs on the store's thread: ok, or refused
	 * with p filled and the machine back as it was.
	 */
	void (*commit_async)(void *impl, struct api_entry *e,
			     const struct vm_op *op,
			     const struct vm_op_result *res,
			     void (*done)(void *cls, bool ok,
					  const struct api_problem *p),
			     void *cls);
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
