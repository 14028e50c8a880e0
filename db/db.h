/*
 * db.h - machines kept durably in SQLite.
 *
 * A machine is stored as its canonical state (a snapshot, authoritative:
 * SPEC 1.9) plus the log of operation records applied since, each with
 * the digest the machine had after it. Loading a machine decodes the
 * snapshot and replays the tail; a replay whose digest differs from the
 * recorded one is reported, never silently accepted.
 *
 * The database is in WAL mode with synchronous=FULL (or NORMAL, an
 * explicit opt-out), foreign keys on, a busy timeout, and its schema
 * version in PRAGMA user_version with forward migrations. A file that is
 * not a database, or is of a newer schema, is refused at open and never
 * written.
 *
 * Writes happen in transactions the caller groups: db_begin, any number
 * of db_* writes, db_commit (one fsync for the group) or db_rollback. A
 * failure to write is an error the caller reports (503), never a crash.
 *
 * Not thread-safe: one thread (the committer) uses a db at a time.
 */
#ifndef DB_DB_H
#define DB_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_SCHEMA_VERSION 2
#define DB_HASH_BYTES 32
#define DB_ERROR_MAX 256

struct db;

enum db_durability { DB_FULL, DB_NORMAL };

/*
 * Opens (creating when absent) the database at path and brings its schema
 * up to date. NULL with why filled (a newer schema, not a database, I/O).
 * vfs: an SQLite VFS name, or NULL for the default (tests inject faults).
 */
struct db *db_open(const char *path, enum db_durability d, const char *vfs,
		   char why[DB_ERROR_MAX]);
void db_close(struct db *db);

/* The last error's text. */
const char *db_error(const struct db *db);

int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* A new machine: its creation time and first snapshot at version. */
int db_machine_insert(struct db *db, const char *tenant, const char *id,
		      const char *created, const uint8_t *state, size_t len,
		      uint64_t version);

/* Forgets a machine and its log. */
int db_machine_delete(struct db *db, const char *tenant, const char *id);

/*
 * Appends the record of the operation that took a machine to version,
 * with its encoded answer, the digest after it and the tenant that
 * applied it.
 */
int db_op_append(struct db *db, const char *tenant, const char *id,
		 uint64_t version, const uint8_t *rec, size_t len,
		 const uint8_t *result, size_t result_len, uint64_t digest,
		 const char *by);

/*
 * Replaces a machine's snapshot with its state at version, and drops log
 * records at or below version beyond the `keep` most recent ones
 * (history retention, SPEC part 3).
 */
int db_snapshot(struct db *db, const char *tenant, const char *id,
		const uint8_t *state, size_t len, uint64_t version,
		uint64_t keep);

/* One stored machine, as db_load hands it over (borrowed for the call). */
struct db_machine {
	const char *tenant, *id, *created;
	const uint8_t *state;        /* the snapshot */
	size_t state_len;
	uint64_t snapshot_version;
};

/* One log record (borrowed for the call). */
struct db_op {
	uint64_t version;
	const uint8_t *rec;
	size_t len;
	const uint8_t *result;
	size_t result_len;
	uint64_t digest;
	const char *by;              /* the tenant that applied it */
};

/*
 * Calls machine() for each stored machine (in (tenant, id) order), then
 * op() for each of its records after the snapshot, in version order.
 * A callback returning non-zero stops the load with that value.
 */
int db_load(struct db *db,
	    int (*machine)(void *ctx, const struct db_machine *m),
	    int (*op)(void *ctx, const struct db_op *o), void *ctx);

/* As db_load, for one machine; 1 when there is no such machine. */
int db_load_one(struct db *db, const char *tenant, const char *id,
		int (*machine)(void *ctx, const struct db_machine *m),
		int (*op)(void *ctx, const struct db_op *o), void *ctx);

/*
 * Log records of one machine with version > after, at most limit of them,
 * oldest first; returns how many were passed to fn, or -1.
 */
int db_history(struct db *db, const char *tenant, const char *id,
	       uint64_t after, unsigned limit,
	       int (*fn)(void *ctx, const struct db_op *o), void *ctx);

/* ---- tenants and shares (schema 2; SPEC part 3) ---- */

/* A tenant's quotas (SPEC part 3); stored as given. */
struct db_quota {
	uint64_t machines;           /* machines it may own */
	uint64_t memory;             /* total simulated RAM, bytes (< 2^63) */
	uint64_t processes;          /* processes per machine */
	uint64_t rate;               /* requests per second */
};

/* One tenant (borrowed for the call when db_tenants_load hands it). */
struct db_tenant {
	const char *name;
	const char *role;            /* "tenant" or "grader" */
	const uint8_t *token_hash;   /* DB_HASH_BYTES: never the token */
	struct db_quota quota;
	const char *created;         /* ISO-8601 */
};

/* Adds a tenant; -1 when the name or the hash exists already. */
int db_tenant_insert(struct db *db, const struct db_tenant *t);

/* Replaces a tenant's token hash (rotation); -1 when there is none. */
int db_tenant_set_token(struct db *db, const char *name,
			const uint8_t hash[DB_HASH_BYTES]);

/*
 * Removes a tenant with its machines (their logs and shares go with
 * them) and every share granted to it (no error when there is none;
 * grants to "*" stay).
 */
int db_tenant_delete(struct db *db, const char *name);

/* Calls fn for each tenant, in name order; non-zero from fn stops. */
int db_tenants_load(struct db *db,
		    int (*fn)(void *ctx, const struct db_tenant *t),
		    void *ctx);

/* A machine (tenant, id) shared with grantee ("*": every tenant). */
struct db_share {
	const char *tenant, *id;     /* the machine */
	const char *grantee;
	bool write;                  /* access "write", else "read" */
};

/* Adds a share, or changes the access of an existing one. */
int db_share_put(struct db *db, const struct db_share *s);

/* Removes a share (no error when there is none). */
int db_share_delete(struct db *db, const char *tenant, const char *id,
		    const char *grantee);

/* Calls fn for each share in (tenant, id, grantee) order. */
int db_shares_load(struct db *db,
		   int (*fn)(void *ctx, const struct db_share *s), void *ctx);

/* Counters for tests and /metrics: transactions committed. */
uint64_t db_commits(const struct db *db);

#endif
