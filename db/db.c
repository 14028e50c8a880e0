/* db.c - machines in SQLite: schema, migrations, statements; see db.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db.h"

enum stmt {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_MACHINE_INSERT, S_MACHINE_DELETE, S_OP_INSERT, S_SNAPSHOT,
	S_OPS_TRIM, S_MACHINES, S_MACHINE_ONE, S_OPS_AFTER, S_HISTORY,
	S_TENANT_INSERT, S_TENANT_TOKEN, S_GRANTS_DROP, S_TENANT_MACHINES_DROP,
	S_TENANT_DELETE, S_TENANTS, S_SHARE_PUT, S_SHARE_DELETE, S_SHARES,
	S_COUNT
};

static const char *const sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_MACHINE_INSERT] =
		"INSERT INTO machines (tenant, id, created, snapshot, "
		"snapshot_version) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_MACHINE_DELETE] = "DELETE FROM machines WHERE tenant = ?1 AND id = ?2",
	[S_OP_INSERT] =
		"INSERT INTO ops (tenant, id, version, record, result, digest, "
		"applied_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_SNAPSHOT] =
		"UPDATE machines SET snapshot = ?3, snapshot_version = ?4 "
		"WHERE tenant = ?1 AND id = ?2",
	[S_OPS_TRIM] =
		"DELETE FROM ops WHERE tenant = ?1 AND id = ?2 AND version <= ?3",
	[S_MACHINES] =
		"SELECT tenant, id, created, snapshot, snapshot_version "
		"FROM machines ORDER BY tenant, id",
	[S_MACHINE_ONE] =
		"SELECT tenant, id, created, snapshot, snapshot_version "
		"FROM machines WHERE tenant = ?1 AND id = ?2",
	[S_OPS_AFTER] =
		"SELECT version, record, result, digest, applied_by FROM ops "
		"WHERE tenant = ?1 AND id = ?2 AND version > ?3 "
		"ORDER BY version",
	[S_HISTORY] =
		"SELECT version, record, result, digest, applied_by FROM ops "
		"WHERE tenant = ?1 AND id = ?2 AND version > ?3 "
		"ORDER BY version LIMIT ?4",
	[S_TENANT_INSERT] =
		"INSERT INTO tenants (name, role, token_hash, quota_machines, "
		"quota_memory, quota_processes, quota_rate, created) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_TENANT_TOKEN] =
		"UPDATE tenants SET token_hash = ?2 WHERE name = ?1",
	/* db_tenant_delete, in this order: the shares others granted to
	 * the tenant, its machines (their ops and shares cascade), then
	 * the tenant itself. */
	[S_GRANTS_DROP] = "DELETE FROM shares WHERE grantee = ?1",
	[S_TENANT_MACHINES_DROP] = "DELETE FROM machines WHERE tenant = ?1",
	[S_TENANT_DELETE] = "DELETE FROM tenants WHERE name = ?1",
	[S_TENANTS] =
		"SELECT name, role, token_hash, quota_machines, quota_memory, "
		"quota_processes, quota_rate, created FROM tenants "
		"ORDER BY name",
	[S_SHARE_PUT] =
		"INSERT INTO shares (tenant, id, grantee, access) "
		"VALUES (?1, ?2, ?3, ?4) "
		"ON CONFLICT (tenant, id, grantee) "
		"DO UPDATE SET access = excluded.access",
	[S_SHARE_DELETE] =
		"DELETE FROM shares WHERE tenant = ?1 AND id = ?2 "
		"AND grantee = ?3",
	[S_SHARES] =
		"SELECT tenant, id, grantee, access FROM shares "
		"ORDER BY tenant, id, grantee",
};

/*
 * The schema of each version, applied in turn from the file's
 * user_version (forward migrations). A released step is never edited:
 * files of that version exist and only the steps after it run on them.
 * Version 1: machines and their log.
 * Version 2: tenants and the shares of machines (SPEC part 3).
 */
static const char *const migrations[DB_SCHEMA_VERSION] = {
	"CREATE TABLE machines ("
	"  tenant TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  created TEXT NOT NULL,"
	"  snapshot BLOB NOT NULL,"
	"  snapshot_version INTEGER NOT NULL,"
	"  PRIMARY KEY (tenant, id)"
	") WITHOUT ROWID;"
	"CREATE TABLE ops ("
	"  tenant TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  record BLOB NOT NULL,"
	"  result BLOB NOT NULL,"
	"  digest INTEGER NOT NULL,"
	"  applied_by TEXT NOT NULL,"
	"  PRIMARY KEY (tenant, id, version),"
	"  FOREIGN KEY (tenant, id) REFERENCES machines (tenant, id)"
	"    ON DELETE CASCADE"
	") WITHOUT ROWID;",

	/*
	 * machines.tenant deliberately has no foreign key to tenants: the
	 * admin's namespaces ("admin", "local") own machines without being
	 * tenant rows. Nor has shares.grantee ("*" is every tenant):
	 * db_tenant_delete drops a tenant's grants itself. The quota
	 * checks keep the uint64 quotas within SQLite's int64.
	 */
	"CREATE TABLE tenants ("
	"  name TEXT NOT NULL PRIMARY KEY,"
	"  role TEXT NOT NULL CHECK (role IN ('tenant', 'grader')),"
	"  token_hash BLOB NOT NULL UNIQUE"
	"    CHECK (typeof(token_hash) = 'blob' AND length(token_hash) = 32),"
	"  quota_machines INTEGER NOT NULL CHECK (quota_machines >= 0),"
	"  quota_memory INTEGER NOT NULL CHECK (quota_memory >= 0),"
	"  quota_processes INTEGER NOT NULL CHECK (quota_processes >= 0),"
	"  quota_rate INTEGER NOT NULL CHECK (quota_rate >= 0),"
	"  created TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE shares ("
	"  tenant TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  grantee TEXT NOT NULL,"
	"  access TEXT NOT NULL CHECK (access IN ('read', 'write')),"
	"  PRIMARY KEY (tenant, id, grantee),"
	"  FOREIGN KEY (tenant, id) REFERENCES machines (tenant, id)"
	"    ON DELETE CASCADE"
	") WITHOUT ROWID;",
};

/* The tables a file of schema version v (> 0) must have. */
static int64_t tables_of(int64_t v)
{
	return v >= 2 ? 4 : 2;
}

struct db {
	sqlite3 *h;
	sqlite3_stmt *st[S_COUNT];
	uint64_t commits;
	char err[DB_ERROR_MAX];
};

static int fail(struct db *db, const char *what)
{
	snprintf(db->err, sizeof(db->err), "%s: %s", what,
		 sqlite3_errmsg(db->h));
	return -1;
}

const char *db_error(const struct db *db)
{
	return db->err;
}

static int exec(struct db *db, const char *q)
{
	char *msg = NULL;

	if (sqlite3_exec(db->h, q, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(db->err, sizeof(db->err), "%s", msg ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* An integer from a one-row query, or -1 with db->err set. */
static int64_t query_int(struct db *db, const char *q)
{
	sqlite3_stmt *s;
	int64_t v = -1;

	if (sqlite3_prepare_v2(db->h, q, -1, &s, NULL) != SQLITE_OK) {
		fail(db, q);
		return -1;
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	else
		fail(db, q);
	sqlite3_finalize(s);
	return v;
}

/* PRAGMA quick_check must answer one row, "ok". */
static int quick_check(struct db *db)
{
	sqlite3_stmt *s;
	int ok = 0;

	if (sqlite3_prepare_v2(db->h, "PRAGMA quick_check", -1, &s, NULL) !=
	    SQLITE_OK)
		return fail(db, "quick_check");
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);

		ok = t && strcmp((const char *)t, "ok") == 0;
		if (!ok)
			snprintf(db->err, sizeof(db->err),
				 "the database is damaged: %.200s",
				 t ? (const char *)t : "?");
	} else {
		fail(db, "quick_check");
	}
	sqlite3_finalize(s);
	return ok ? 0 : -1;
}

/*
 * Checks what the file is before anything is written to it: a database
 * of ours (or an empty one), of a schema this build knows.
 */
static int check_file(struct db *db, int64_t *version)
{
	int64_t tables;

	*version = query_int(db, "PRAGMA user_version");
	if (*version < 0)
		return -1; /* "file is not a database" and the like */
	if (*version > DB_SCHEMA_VERSION) {
		snprintf(db->err, sizeof(db->err),
			 "schema version %lld is newer than this vmlabd's "
			 "(%d): use the vmlabd that wrote it",
			 (long long)*version, DB_SCHEMA_VERSION);
		return -1;
	}
	tables = query_int(db, "SELECT count(*) FROM sqlite_master");
	if (tables < 0)
		return -1;
	if (*version == 0 && tables > 0) {
		snprintf(db->err, sizeof(db->err),
			 "not a vmlab database (it has tables, and no vmlab "
			 "schema version)");
		return -1;
	}
	if (*version > 0 &&
	    query_int(db, "SELECT count(*) FROM sqlite_master WHERE type = "
			  "'table' AND name IN ('machines', 'ops', 'tenants', "
			  "'shares')") != tables_of(*version)) {
		snprintf(db->err, sizeof(db->err),
			 "not a vmlab database (schema version %lld, but not "
			 "vmlab's tables)", (long long)*version);
		return -1;
	}
	return *version > 0 ? quick_check(db) : 0;
}

static int migrate(struct db *db, int64_t from)
{
	char q[64];

	for (int64_t v = from; v < DB_SCHEMA_VERSION; v++) {
		if (exec(db, "BEGIN IMMEDIATE") || exec(db, migrations[v])) {
			exec(db, "ROLLBACK");
			return -1;
		}
		snprintf(q, sizeof(q), "PRAGMA user_version = %lld",
			 (long long)v + 1);
		if (exec(db, q) || exec(db, "COMMIT")) {
			exec(db, "ROLLBACK");
			return -1;
		}
	}
	return 0;
}

/*
 * Judges an existing file through a read-only connection, so that a file
 * we refuse is never written, not even by a checkpoint at close.
 */
static int check_readonly(const char *path, const char *vfs, int64_t *version,
			  char why[DB_ERROR_MAX])
{
	struct db probe;
	char side[2][1100];
	bool existed[2];
	int rc;

	/* A read-only look at a WAL database may leave empty -wal and -shm
	 * files behind: remove those we made if the file is refused. */
	snprintf(side[0], sizeof(side[0]), "%s-wal", path);
	snprintf(side[1], sizeof(side[1]), "%s-shm", path);
	for (int i = 0; i < 2; i++)
		existed[i] = access(side[i], F_OK) == 0;
	memset(&probe, 0, sizeof(probe));
	rc = sqlite3_open_v2(path, &probe.h, SQLITE_OPEN_READONLY, vfs);
	if (rc == SQLITE_OK)
		rc = check_file(&probe, version);
	else
		snprintf(probe.err, sizeof(probe.err), "%s",
			 probe.h ? sqlite3_errmsg(probe.h) : sqlite3_errstr(rc));
	if (rc)
		snprintf(why, DB_ERROR_MAX, "%.100s: %.150s", path, probe.err);
	sqlite3_close(probe.h);
	if (rc)
		for (int i = 0; i < 2; i++)
			if (!existed[i])
				unlink(side[i]);
	return rc ? -1 : 0;
}

struct db *db_open(const char *path, enum db_durability d, const char *vfs,
		   char why[DB_ERROR_MAX])
{
	struct db *db;
	int64_t version = 0;
	int rc;

	if (access(path, F_OK) == 0 &&
	    check_readonly(path, vfs, &version, why))
		return NULL;
	db = calloc(1, sizeof(*db));
	if (!db)
		abort();
	rc = sqlite3_open_v2(path, &db->h,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     vfs);
	if (rc != SQLITE_OK) {
		snprintf(why, DB_ERROR_MAX, "%.100s: %.150s", path,
			 db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, 5000);
	if (check_file(db, &version) ||
	    exec(db, "PRAGMA journal_mode = WAL") ||
	    exec(db, d == DB_FULL ? "PRAGMA synchronous = FULL"
				  : "PRAGMA synchronous = NORMAL") ||
	    exec(db, "PRAGMA foreign_keys = ON") || migrate(db, version)) {
		snprintf(why, DB_ERROR_MAX, "%.100s: %.150s", path, db->err);
		goto fail;
	}
	for (int i = 0; i < S_COUNT; i++)
		if (sqlite3_prepare_v3(db->h, sql[i], -1,
				       SQLITE_PREPARE_PERSISTENT, &db->st[i],
				       NULL) != SQLITE_OK) {
			fail(db, sql[i]);
			snprintf(why, DB_ERROR_MAX, "%.100s: %.150s", path,
				 db->err);
			goto fail;
		}
	return db;
fail:
	db_close(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	sqlite3_close(db->h);
	free(db);
}

/* Runs a statement to completion (no rows expected) and resets it. */
static int run(struct db *db, enum stmt k, const char *what)
{
	sqlite3_stmt *s = db->st[k];
	int rc = sqlite3_step(s);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return fail(db, what);
	return 0;
}

int db_begin(struct db *db)
{
	return run(db, S_BEGIN, "begin");
}

int db_commit(struct db *db)
{
	if (run(db, S_COMMIT, "commit")) {
		char err[DB_ERROR_MAX];

		/* A failed COMMIT may leave the transaction open. */
		memcpy(err, db->err, sizeof(err));
		if (!sqlite3_get_autocommit(db->h))
			run(db, S_ROLLBACK, "rollback");
		/*
		 * The transaction's frames may already be in the WAL file
		 * (SQLite writes them before the fsync that failed), where
		 * recovery at the next open would find them. A TRUNCATE
		 * checkpoint copies only what was committed and empties the
		 * WAL, so the refused transaction cannot come back.
		 */
		if (exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"))
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 "; and the WAL could not be emptied");
		memcpy(db->err, err, sizeof(err));
		return -1;
	}
	db->commits++;
	return 0;
}

void db_rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		run(db, S_ROLLBACK, "rollback");
}

static void bind_key(sqlite3_stmt *s, const char *tenant, const char *id)
{
	sqlite3_bind_text(s, 1, tenant, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id, -1, SQLITE_STATIC);
}

int db_machine_insert(struct db *db, const char *tenant, const char *id,
		      const char *created, const uint8_t *state, size_t len,
		      uint64_t version)
{
	sqlite3_stmt *s = db->st[S_MACHINE_INSERT];

	bind_key(s, tenant, id);
	sqlite3_bind_text(s, 3, created, -1, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 4, state, len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)version);
	return run(db, S_MACHINE_INSERT, "insert machine");
}

int db_machine_delete(struct db *db, const char *tenant, const char *id)
{
	bind_key(db->st[S_MACHINE_DELETE], tenant, id);
	return run(db, S_MACHINE_DELETE, "delete machine");
}

int db_op_append(struct db *db, const char *tenant, const char *id,
		 uint64_t version, const uint8_t *rec, size_t len,
		 const uint8_t *result, size_t result_len, uint64_t digest,
		 const char *by)
{
	sqlite3_stmt *s = db->st[S_OP_INSERT];

	bind_key(s, tenant, id);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)version);
	sqlite3_bind_blob64(s, 4, rec, len, SQLITE_STATIC);
	sqlite3_bind_blob64(s, 5, result, result_len, SQLITE_STATIC);
	/* The digest's 64 bits, stored as SQLite's signed integer. */
	sqlite3_bind_int64(s, 6, (sqlite3_int64)digest);
	sqlite3_bind_text(s, 7, by, -1, SQLITE_STATIC);
	return run(db, S_OP_INSERT, "append operation");
}

int db_snapshot(struct db *db, const char *tenant, const char *id,
		const uint8_t *state, size_t len, uint64_t version,
		uint64_t keep)
{
	sqlite3_stmt *s = db->st[S_SNAPSHOT];

	bind_key(s, tenant, id);
	sqlite3_bind_blob64(s, 3, state, len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)version);
	if (run(db, S_SNAPSHOT, "snapshot"))
		return -1;
	if (version <= keep)
		return 0;
	s = db->st[S_OPS_TRIM];
	bind_key(s, tenant, id);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)(version - keep));
	return run(db, S_OPS_TRIM, "compact history");
}

static void read_op(sqlite3_stmt *s, struct db_op *o)
{
	o->version = (uint64_t)sqlite3_column_int64(s, 0);
	o->rec = sqlite3_column_blob(s, 1);
	o->len = (size_t)sqlite3_column_bytes(s, 1);
	o->result = sqlite3_column_blob(s, 2);
	o->result_len = (size_t)sqlite3_column_bytes(s, 2);
	o->digest = (uint64_t)sqlite3_column_int64(s, 3);
	o->by = (const char *)sqlite3_column_text(s, 4);
}

/* Hands over the machines a prepared query yields, each with its tail. */
static int load_rows(struct db *db, sqlite3_stmt *ms,
		     int (*machine)(void *ctx, const struct db_machine *m),
		     int (*op)(void *ctx, const struct db_op *o), void *ctx,
		     bool *any)
{
	sqlite3_stmt *os = db->st[S_OPS_AFTER];
	int rc = 0, step;

	while (rc == 0 && (step = sqlite3_step(ms)) == SQLITE_ROW) {
		struct db_machine m;

		*any = true;
		m.tenant = (const char *)sqlite3_column_text(ms, 0);
		m.id = (const char *)sqlite3_column_text(ms, 1);
		m.created = (const char *)sqlite3_column_text(ms, 2);
		m.state = sqlite3_column_blob(ms, 3);
		m.state_len = (size_t)sqlite3_column_bytes(ms, 3);
		m.snapshot_version = (uint64_t)sqlite3_column_int64(ms, 4);
		rc = machine(ctx, &m);
		if (rc)
			break;
		bind_key(os, m.tenant, m.id);
		sqlite3_bind_int64(os, 3, (sqlite3_int64)m.snapshot_version);
		while (rc == 0 && (step = sqlite3_step(os)) == SQLITE_ROW) {
			struct db_op o;

			read_op(os, &o);
			rc = op(ctx, &o);
		}
		if (rc == 0 && step != SQLITE_DONE)
			rc = fail(db, "read log");
		sqlite3_reset(os);
		sqlite3_clear_bindings(os);
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = fail(db, "read machines");
	sqlite3_reset(ms);
	sqlite3_clear_bindings(ms);
	return rc;
}

int db_load(struct db *db,
	    int (*machine)(void *ctx, const struct db_machine *m),
	    int (*op)(void *ctx, const struct db_op *o), void *ctx)
{
	bool any = false;

	return load_rows(db, db->st[S_MACHINES], machine, op, ctx, &any);
}

int db_load_one(struct db *db, const char *tenant, const char *id,
		int (*machine)(void *ctx, const struct db_machine *m),
		int (*op)(void *ctx, const struct db_op *o), void *ctx)
{
	bool any = false;
	int rc;

	bind_key(db->st[S_MACHINE_ONE], tenant, id);
	rc = load_rows(db, db->st[S_MACHINE_ONE], machine, op, ctx, &any);
	return rc ? rc : !any;
}

int db_history(struct db *db, const char *tenant, const char *id,
	       uint64_t after, unsigned limit,
	       int (*fn)(void *ctx, const struct db_op *o), void *ctx)
{
	sqlite3_stmt *s = db->st[S_HISTORY];
	int n = 0, step;

	bind_key(s, tenant, id);
	sqlite3_bind_int64(s, 3, (sqlite3_int64)after);
	sqlite3_bind_int64(s, 4, limit);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_op o;

		read_op(s, &o);
		if (fn(ctx, &o))
			break;
		n++;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		n = fail(db, "read history");
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return n;
}

/* Hands each row of statement k to row(), until it returns non-zero. */
static int each_row(struct db *db, enum stmt k, const char *what,
		    int (*row)(struct db *db, sqlite3_stmt *s, void *arg),
		    void *arg)
{
	sqlite3_stmt *s = db->st[k];
	int rc = 0, step;

	while (rc == 0 && (step = sqlite3_step(s)) == SQLITE_ROW)
		rc = row(db, s, arg);
	if (rc == 0 && step != SQLITE_DONE)
		rc = fail(db, what);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/*
 * SQLite's integers are signed: a quota of 2^63 or more would come back
 * negative (and break the CHECK), so it is refused here, by name.
 */
static int check_quota(struct db *db, const struct db_quota *q)
{
	const struct {
		const char *name;
		uint64_t v;
	} f[] = {
		{ "machines", q->machines },
		{ "memory", q->memory },
		{ "processes", q->processes },
		{ "rate", q->rate },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v > (uint64_t)INT64_MAX) {
			snprintf(db->err, sizeof(db->err),
				 "insert tenant: quota %s %llu is out of "
				 "range (at most 2^63 - 1)", f[i].name,
				 (unsigned long long)f[i].v);
			return -1;
		}
	return 0;
}

int db_tenant_insert(struct db *db, const struct db_tenant *t)
{
	sqlite3_stmt *s = db->st[S_TENANT_INSERT];

	if (check_quota(db, &t->quota))
		return -1;
	sqlite3_bind_text(s, 1, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, t->role, -1, SQLITE_STATIC);
	/* A NULL hash binds NULL, which NOT NULL refuses. */
	sqlite3_bind_blob(s, 3, t->token_hash, DB_HASH_BYTES, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)t->quota.machines);
	sqlite3_bind_int64(s, 5, (sqlite3_int64)t->quota.memory);
	sqlite3_bind_int64(s, 6, (sqlite3_int64)t->quota.processes);
	sqlite3_bind_int64(s, 7, (sqlite3_int64)t->quota.rate);
	sqlite3_bind_text(s, 8, t->created, -1, SQLITE_STATIC);
	return run(db, S_TENANT_INSERT, "insert tenant");
}

int db_tenant_set_token(struct db *db, const char *name,
			const uint8_t hash[DB_HASH_BYTES])
{
	sqlite3_stmt *s = db->st[S_TENANT_TOKEN];

	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 2, hash, DB_HASH_BYTES, SQLITE_STATIC);
	if (run(db, S_TENANT_TOKEN, "set token"))
		return -1;
	/* An UPDATE matching nothing succeeds: a rotation that changed
	 * nothing must not be answered as done. */
	if (sqlite3_changes(db->h) == 0) {
		snprintf(db->err, sizeof(db->err),
			 "set token: no tenant %.100s", name ? name : "(null)");
		return -1;
	}
	return 0;
}

/* Runs statement k with the tenant name as its only parameter. */
static int run_named(struct db *db, enum stmt k, const char *name,
		     const char *what)
{
	sqlite3_bind_text(db->st[k], 1, name, -1, SQLITE_STATIC);
	return run(db, k, what);
}

int db_tenant_delete(struct db *db, const char *name)
{
	/* Grants first: grantee has no foreign key to cascade from. */
	if (run_named(db, S_GRANTS_DROP, name, "delete tenant's grants") ||
	    run_named(db, S_TENANT_MACHINES_DROP, name,
		      "delete tenant's machines"))
		return -1;
	return run_named(db, S_TENANT_DELETE, name, "delete tenant");
}

struct tenants_cb {
	int (*fn)(void *ctx, const struct db_tenant *t);
	void *ctx;
};

static int tenant_row(struct db *db, sqlite3_stmt *s, void *arg)
{
	struct tenants_cb *cb = arg;
	struct db_tenant t;

	t.name = (const char *)sqlite3_column_text(s, 0);
	t.role = (const char *)sqlite3_column_text(s, 1);
	t.token_hash = sqlite3_column_blob(s, 2);
	/* The CHECK guarantees the length; callers read DB_HASH_BYTES
	 * from the pointer, so a file altered behind our back must not
	 * make them read past a shorter blob. */
	if (sqlite3_column_bytes(s, 2) != DB_HASH_BYTES || !t.token_hash) {
		snprintf(db->err, sizeof(db->err),
			 "read tenants: tenant %.100s has a token hash of "
			 "%d bytes", t.name ? t.name : "?",
			 sqlite3_column_bytes(s, 2));
		return -1;
	}
	t.quota.machines = (uint64_t)sqlite3_column_int64(s, 3);
	t.quota.memory = (uint64_t)sqlite3_column_int64(s, 4);
	t.quota.processes = (uint64_t)sqlite3_column_int64(s, 5);
	t.quota.rate = (uint64_t)sqlite3_column_int64(s, 6);
	t.created = (const char *)sqlite3_column_text(s, 7);
	return cb->fn(cb->ctx, &t);
}

int db_tenants_load(struct db *db,
		    int (*fn)(void *ctx, const struct db_tenant *t),
		    void *ctx)
{
	struct tenants_cb cb = { fn, ctx };

	return each_row(db, S_TENANTS, "read tenants", tenant_row, &cb);
}

int db_share_put(struct db *db, const struct db_share *s)
{
	sqlite3_stmt *st = db->st[S_SHARE_PUT];

	bind_key(st, s->tenant, s->id);
	sqlite3_bind_text(st, 3, s->grantee, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, s->write ? "write" : "read", -1,
			  SQLITE_STATIC);
	return run(db, S_SHARE_PUT, "put share");
}

int db_share_delete(struct db *db, const char *tenant, const char *id,
		    const char *grantee)
{
	sqlite3_stmt *s = db->st[S_SHARE_DELETE];

	bind_key(s, tenant, id);
	sqlite3_bind_text(s, 3, grantee, -1, SQLITE_STATIC);
	return run(db, S_SHARE_DELETE, "delete share");
}

struct shares_cb {
	int (*fn)(void *ctx, const struct db_share *s);
	void *ctx;
};

static int share_row(struct db *db, sqlite3_stmt *s, void *arg)
{
	struct shares_cb *cb = arg;
	struct db_share sh;
	const char *access = (const char *)sqlite3_column_text(s, 3);

	(void)db;
	sh.tenant = (const char *)sqlite3_column_text(s, 0);
	sh.id = (const char *)sqlite3_column_text(s, 1);
	sh.grantee = (const char *)sqlite3_column_text(s, 2);
	sh.write = access && strcmp(access, "write") == 0;
	return cb->fn(cb->ctx, &sh);
}

int db_shares_load(struct db *db,
		   int (*fn)(void *ctx, const struct db_share *s), void *ctx)
{
	struct shares_cb cb = { fn, ctx };

	return each_row(db, S_SHARES, "read shares", share_row, &cb);
}

uint64_t db_commits(const struct db *db)
{
	return db->commits;
}
