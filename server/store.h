/*
 * store.h - the machines vmlabd serves: in memory, made durable in SQLite.
 *
 * A sorted table of (tenant, id) -> entry under one read/write lock; each
 * entry has its own read/write lock and a reference count, so requests on
 * different machines never wait for each other, reads of one machine run
 * in parallel, and a delete waits for nobody (the last reference frees).
 *
 * Durability (db/): creating a machine stores its snapshot, each
 * operation appends its record (with its answer and the digest after it)
 * and is acknowledged only once committed; a machine keeps its write lock
 * until then, so nobody sees a change that is not durable. A commit that
 * fails is answered 503 and the machine is reloaded from the database,
 * exactly as before. At start every machine is loaded (snapshot, then the
 * log replayed, each digest checked); a clean stop snapshots every machine
 * changed since its last snapshot.
 */
#ifndef SERVER_STORE_H
#define SERVER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/store.h"
#include "db/db.h"

struct store;

/*
 * A store over db (taken; closed with the store). max_machines 0: no
 * limit; keep: log records kept behind the latest snapshot.
 */
struct store *store_create(struct db *db, size_t max_machines, uint64_t keep);

/*
 * Loads every machine of the database; -1 with why filled when a
 * snapshot does not decode or a replay diverges from its recorded digest.
 */
int store_load(struct store *s, char *why, size_t len);

/* Snapshots changed machines (if store_load succeeded), then frees
 * everything. */
void store_free(struct store *s);

/* The store interface over it (api/store.h). */
struct api_store store_api(struct store *s);

/* Machines held. */
size_t store_count(struct store *s);

/*
 * Tenants (server/tenants.c) keep their rows in the same database. An
 * owner that alive() says is gone gets no new machine (a removal and a
 * creation racing cannot leave a machine behind).
 */
void store_set_alive(struct store *s,
		     bool (*alive)(void *cls, const char *owner), void *cls);

/* Runs fn's writes in one transaction, committed before it returns;
 * -1 (rolled back) with why filled. */
int store_db_write(struct store *s, int (*fn)(struct db *db, void *ctx),
		   void *ctx, char *why, size_t len);

/* Runs fn's reads with the database to itself. */
int store_db_read(struct store *s, int (*fn)(struct db *db, void *ctx),
		  void *ctx);

/*
 * Removes a tenant durably: its row, its machines (waiting for their
 * current users) and every share granted to it. -1 with why filled when
 * the database refuses (nothing changed).
 */
int store_remove_tenant(struct store *s, const char *tenant, char *why,
			size_t len);

#endif
