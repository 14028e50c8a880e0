/* test_db.c - db/: schema, writes, load order, history, compaction,
 * and the files it refuses to touch. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db/db.h"

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/vmlab-dbtest-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
}

static void teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct db *open_ok(void)
{
	char why[DB_ERROR_MAX] = "";
	struct db *db = db_open(path, DB_FULL, NULL, why);

	ck_assert_msg(db != NULL, "open: %s", why);
	return db;
}

static const uint8_t state1[] = "snapshot one", state2[] = "snapshot two";

static void put_op(struct db *db, const char *id, uint64_t v)
{
	uint8_t rec[8], res[4] = { 1, 2, 3, 4 };

	memcpy(rec, &v, sizeof(v));
	ck_assert_int_eq(db_op_append(db, "local", id, v, rec, sizeof(rec), res,
				      sizeof(res), v * 1000003ULL, "local"),
			 0);
}

struct seen {
	char log[4096];
};

static int on_machine(void *ctx, const struct db_machine *m)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "M %s.%s %s %zu %llu;",
		 m->tenant, m->id, m->created, m->state_len,
		 (unsigned long long)m->snapshot_version);
	return 0;
}

static int on_op(void *ctx, const struct db_op *o)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "o%llu:%llu:%zu:%s;",
		 (unsigned long long)o->version,
		 (unsigned long long)o->digest, o->result_len, o->by);
	return 0;
}

START_TEST(writes_survive_reopen_in_order)
{
	struct db *db = open_ok();
	struct seen s = { "" };

	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "b", "t1", state1,
					   sizeof(state1), 0), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "a", "t2", state2,
					   sizeof(state2), 0), 0);
	put_op(db, "b", 1);
	put_op(db, "a", 1);
	put_op(db, "b", 2);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_uint_eq(db_commits(db), 1);
	db_close(db);

	db = open_ok();
	ck_assert_int_eq(db_load(db, on_machine, on_op, &s), 0);
	/* Machines by (tenant, id), each followed by its log in order;
	 * digests keep all 64 bits. */
	ck_assert_str_eq(s.log, "M local.a t2 13 0;o1:1000003:4:local;"
				"M local.b t1 13 0;o1:1000003:4:local;"
				"o2:2000006:4:local;");
	db_close(db);
}
END_TEST

START_TEST(rollback_leaves_nothing)
{
	struct db *db = open_ok();
	struct seen s = { "" };

	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "a", "t", state1,
					   sizeof(state1), 0), 0);
	db_rollback(db);
	ck_assert_int_eq(db_load(db, on_machine, on_op, &s), 0);
	ck_assert_str_eq(s.log, "");
	/* A duplicate id is an error, not a crash, and rolls back. */
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "a", "t", state1,
					   sizeof(state1), 0), 0);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_ne(db_machine_insert(db, "local", "a", "t", state1,
					   sizeof(state1), 0), 0);
	ck_assert_ptr_nonnull(strstr(db_error(db), "UNIQUE"));
	db_rollback(db);
	db_close(db);
}
END_TEST

START_TEST(snapshot_compacts_and_delete_cascades)
{
	struct db *db = open_ok();
	struct seen s = { "" };
	uint64_t big = UINT64_MAX - 5;

	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "a", "t", state1,
					   sizeof(state1), 0), 0);
	for (uint64_t v = 1; v <= 10; v++)
		put_op(db, "a", v);
	/* Snapshot at 8 keeping 3 records behind it: 1..5 go. */
	ck_assert_int_eq(db_snapshot(db, "local", "a", state2, sizeof(state2),
				     8, 3), 0);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(db_load(db, on_machine, on_op, &s), 0);
	ck_assert_str_eq(s.log, "M local.a t 13 8;o9:9000027:4:local;"
				"o10:10000030:4:local;");
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(db_history(db, "local", "a", 0, 100, on_op, &s), 5);
	ck_assert_ptr_nonnull(strstr(s.log, "o6:"));
	ck_assert_ptr_null(strstr(s.log, "o5:"));
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(db_history(db, "local", "a", 7, 2, on_op, &s), 2);
	ck_assert_str_eq(s.log, "o8:8000024:4:local;o9:9000027:4:local;");
	/* Deleting a machine takes its log with it (foreign key cascade). */
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_delete(db, "local", "a"), 0);
	ck_assert_int_eq(db_commit(db), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(db_history(db, "local", "a", 0, 100, on_op, &s), 0);
	ck_assert_int_eq(db_load_one(db, "local", "a", on_machine, on_op, &s),
			 1);
	/* A digest with the top bit set comes back whole. */
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_insert(db, "local", "z", "t", state1,
					   sizeof(state1), 0), 0);
	{
		uint8_t rec[1] = { 9 };

		ck_assert_int_eq(db_op_append(db, "local", "z", 1, rec, 1, rec,
					      1, big, "local"), 0);
	}
	ck_assert_int_eq(db_commit(db), 0);
	memset(&s, 0, sizeof(s));
	ck_assert_int_eq(db_history(db, "local", "z", 0, 1, on_op, &s), 1);
	{
		char want[64];

		snprintf(want, sizeof(want), "o1:%llu:1:local;",
			 (unsigned long long)big);
		ck_assert_str_eq(s.log, want);
	}
	db_close(db);
}
END_TEST

/* The whole file, for "left untouched" checks. */
static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "rb");
	char *buf;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(*len + 1);
	ck_assert_uint_eq(fread(buf, 1, *len, f), *len);
	fclose(f);
	return buf;
}

static void assert_refused_untouched(const char *expect)
{
	char why[DB_ERROR_MAX] = "";
	size_t a, b;
	char *before = slurp(path, &a), *after;
	struct db *db = db_open(path, DB_FULL, NULL, why);

	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(why, expect) != NULL, "why: %s", why);
	after = slurp(path, &b);
	ck_assert_uint_eq(a, b);
	ck_assert_int_eq(memcmp(before, after, a), 0);
	free(before);
	free(after);
}

START_TEST(newer_schema_refused_untouched)
{
	sqlite3 *h;

	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TABLE x (a); "
					 "PRAGMA user_version = 99",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_refused_untouched("schema version 99");
}
END_TEST

START_TEST(foreign_database_refused_untouched)
{
	sqlite3 *h;

	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(h, "CREATE TABLE other (a)", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_refused_untouched("not a vmlab database");
}
END_TEST

START_TEST(garbage_file_refused_untouched)
{
	FILE *f = fopen(path, "wb");

	for (int i = 0; i < 65536; i++)
		fputc((i * 2654435761u) >> 13 & 0xff, f);
	fclose(f);
	assert_refused_untouched("not a database");
}
END_TEST

START_TEST(schema_version_recorded)
{
	struct db *db = open_ok();
	sqlite3 *h;
	sqlite3_stmt *s;

	db_close(db);
	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s,
					    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(s, 0), DB_SCHEMA_VERSION);
	sqlite3_finalize(s);
	ck_assert_int_eq(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s,
					    NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(h);
	/* Opening again migrates nothing and works. */
	db_close(open_ok());
}
END_TEST

/* ---- tenants and shares (schema 2) ---- */

/* A distinct hash per seed, with zero bytes at its start, middle and end
 * (a hash handled as a C string would lose them). */
static void make_hash(uint8_t h[DB_HASH_BYTES], unsigned seed)
{
	for (int i = 0; i < DB_HASH_BYTES; i++)
		h[i] = (uint8_t)(seed * 37 + i * 11 + 1);
	h[0] = h[13] = h[DB_HASH_BYTES - 1] = 0;
}

static struct db_tenant tenant(const char *name, const uint8_t *hash)
{
	struct db_tenant t = {
		.name = name,
		.role = "tenant",
		.token_hash = hash,
		.quota = { 10, 1ULL << 32, 64, 50 },
		.created = "2024-01-02T03:04:05Z",
	};

	return t;
}

static void insert_tenant(struct db *db, const char *name, unsigned seed)
{
	uint8_t h[DB_HASH_BYTES];
	struct db_tenant t = tenant(name, h);

	make_hash(h, seed);
	ck_assert_msg(db_tenant_insert(db, &t) == 0, "insert: %s",
		      db_error(db));
}

/* A tenant as loaded, copied out of the borrowed row. */
struct kept_tenant {
	char name[40], role[16], created[40];
	uint8_t hash[DB_HASH_BYTES];
	struct db_quota quota;
};

struct kept {
	struct kept_tenant t[8];
	int n;
};

static int keep_tenant(void *ctx, const struct db_tenant *t)
{
	struct kept *k = ctx;
	struct kept_tenant *c;

	ck_assert_int_lt(k->n, 8);
	c = &k->t[k->n++];
	snprintf(c->name, sizeof(c->name), "%s", t->name);
	snprintf(c->role, sizeof(c->role), "%s", t->role);
	snprintf(c->created, sizeof(c->created), "%s", t->created);
	memcpy(c->hash, t->token_hash, DB_HASH_BYTES);
	c->quota = t->quota;
	return 0;
}

static void assert_kept(const struct kept_tenant *c, const struct db_tenant *t)
{
	ck_assert_str_eq(c->name, t->name);
	ck_assert_str_eq(c->role, t->role);
	ck_assert_str_eq(c->created, t->created);
	ck_assert_int_eq(memcmp(c->hash, t->token_hash, DB_HASH_BYTES), 0);
	ck_assert_uint_eq(c->quota.machines, t->quota.machines);
	ck_assert_uint_eq(c->quota.memory, t->quota.memory);
	ck_assert_uint_eq(c->quota.processes, t->quota.processes);
	ck_assert_uint_eq(c->quota.rate, t->quota.rate);
}

static int on_tenant_name(void *ctx, const struct db_tenant *t)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%s;", t->name);
	return 0;
}

static int on_share(void *ctx, const struct db_share *sh)
{
	struct seen *s = ctx;
	size_t n = strlen(s->log);

	snprintf(s->log + n, sizeof(s->log) - n, "%s.%s>%s:%s;", sh->tenant,
		 sh->id, sh->grantee, sh->write ? "w" : "r");
	return 0;
}

/* Callbacks that stop at the first row with a value of their own. */
static int stop_tenant(void *ctx, const struct db_tenant *t)
{
	(void)t;
	++*(int *)ctx;
	return 7;
}

static int stop_share(void *ctx, const struct db_share *sh)
{
	(void)sh;
	++*(int *)ctx;
	return 9;
}

static const char *tenants_of(struct db *db, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(db_tenants_load(db, on_tenant_name, s), 0);
	return s->log;
}

static const char *shares_of(struct db *db, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(db_shares_load(db, on_share, s), 0);
	return s->log;
}

static const char *machines_of(struct db *db, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	ck_assert_int_eq(db_load(db, on_machine, on_op, s), 0);
	return s->log;
}

static void put_machine(struct db *db, const char *tenant, const char *id)
{
	ck_assert_int_eq(db_machine_insert(db, tenant, id, "t", state1,
					   sizeof(state1), 0), 0);
}

static void put_share(struct db *db, const char *tenant, const char *id,
		      const char *grantee, bool write)
{
	struct db_share sh = { tenant, id, grantee, write };

	ck_assert_msg(db_share_put(db, &sh) == 0, "share: %s", db_error(db));
}

/* One integer from a query on the file, through a connection of its own. */
static long long file_int(const char *q)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	long long v;

	ck_assert_int_eq(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL),
			 SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(h, q, -1, &s, NULL) == SQLITE_OK,
		      "%s: %s", q, sqlite3_errmsg(h));
	ck_assert_int_eq(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(h);
	return v;
}

START_TEST(tenants_round_trip)
{
	struct db *db = open_ok();
	uint8_t ha[DB_HASH_BYTES], hb[DB_HASH_BYTES];
	struct db_tenant a, b;
	struct kept k = { .n = 0 };
	int calls = 0;

	make_hash(ha, 1);
	make_hash(hb, 2);
	a = tenant("alice", ha);
	b = tenant("bob", hb);
	b.role = "grader";
	/* The largest quotas SQLite's signed integers hold, and zero. */
	b.quota = (struct db_quota){ INT64_MAX, INT64_MAX - 1, 0, 1 };
	b.created = "2025-12-31T23:59:59Z";
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_insert(db, &b), 0);
	ck_assert_int_eq(db_tenant_insert(db, &a), 0);
	ck_assert_int_eq(db_commit(db), 0);
	/* In name order, every field whole, the hash's zero bytes too. */
	ck_assert_int_eq(db_tenants_load(db, keep_tenant, &k), 0);
	ck_assert_int_eq(k.n, 2);
	assert_kept(&k.t[0], &a);
	assert_kept(&k.t[1], &b);
	/* A callback's non-zero stops the load and is its result. */
	ck_assert_int_eq(db_tenants_load(db, stop_tenant, &calls), 7);
	ck_assert_int_eq(calls, 1);
	db_close(db);

	db = open_ok();
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(db_tenants_load(db, keep_tenant, &k), 0);
	ck_assert_int_eq(k.n, 2);
	assert_kept(&k.t[0], &a);
	assert_kept(&k.t[1], &b);
	db_close(db);
}
END_TEST

START_TEST(tenant_duplicates_and_bad_rows_refused)
{
	struct db *db = open_ok();
	uint8_t h1[DB_HASH_BYTES], h2[DB_HASH_BYTES];
	struct db_tenant t;
	struct seen s;

	make_hash(h1, 1);
	make_hash(h2, 2);
	ck_assert_int_eq(db_begin(db), 0);
	insert_tenant(db, "alice", 1);
	ck_assert_int_eq(db_commit(db), 0);

	/* The same name with another hash. */
	t = tenant("alice", h2);
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_insert(db, &t), -1);
	ck_assert_msg(strstr(db_error(db), "tenants.name") != NULL, "%s",
		      db_error(db));
	db_rollback(db);
	/* Another name with the same hash: a token names one tenant. */
	t = tenant("bob", h1);
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_insert(db, &t), -1);
	ck_assert_msg(strstr(db_error(db), "tenants.token_hash") != NULL,
		      "%s", db_error(db));
	db_rollback(db);
	/* A role the schema does not know, and no hash at all. */
	t = tenant("carol", h2);
	t.role = "admin";
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_insert(db, &t), -1);
	ck_assert_msg(strstr(db_error(db), "CHECK") != NULL, "%s",
		      db_error(db));
	t = tenant("carol", NULL);
	ck_assert_int_eq(db_tenant_insert(db, &t), -1);
	ck_assert_msg(strstr(db_error(db), "NOT NULL") != NULL, "%s",
		      db_error(db));
	db_rollback(db);
	ck_assert_str_eq(tenants_of(db, &s), "alice;");
	db_close(db);
}
END_TEST

START_TEST(tenant_quota_out_of_range_refused)
{
	struct db *db = open_ok();
	uint8_t h[DB_HASH_BYTES];
	struct db_tenant t;
	struct seen s;

	make_hash(h, 1);
	ck_assert_int_eq(db_begin(db), 0);
	/* Each quota in turn at 2^63, then at 2^64 - 1: never wrapped. */
	for (int i = 0; i < 8; i++) {
		uint64_t bad = i < 4 ? 1ULL << 63 : UINT64_MAX;
		uint64_t *q;

		t = tenant("alice", h);
		q = i % 4 == 0 ? &t.quota.machines :
		    i % 4 == 1 ? &t.quota.memory :
		    i % 4 == 2 ? &t.quota.processes : &t.quota.rate;
		*q = bad;
		ck_assert_int_eq(db_tenant_insert(db, &t), -1);
		ck_assert_msg(strstr(db_error(db), "out of range") != NULL,
			      "%d: %s", i, db_error(db));
	}
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_str_eq(tenants_of(db, &s), "");
	db_close(db);
}
END_TEST

START_TEST(tenant_token_rotation)
{
	struct db *db = open_ok();
	uint8_t h2[DB_HASH_BYTES], h3[DB_HASH_BYTES], h9[DB_HASH_BYTES];
	struct kept k = { .n = 0 };

	make_hash(h2, 2);
	make_hash(h3, 3);
	make_hash(h9, 9);
	ck_assert_int_eq(db_begin(db), 0);
	insert_tenant(db, "alice", 1);
	insert_tenant(db, "bob", 2);
	ck_assert_int_eq(db_tenant_set_token(db, "alice", h3), 0);
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	db = open_ok();
	ck_assert_int_eq(db_tenants_load(db, keep_tenant, &k), 0);
	ck_assert_int_eq(k.n, 2);
	ck_assert_int_eq(memcmp(k.t[0].hash, h3, DB_HASH_BYTES), 0);
	/* No such tenant: refused, not silently done. */
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_set_token(db, "nobody", h9), -1);
	ck_assert_msg(strstr(db_error(db), "no tenant nobody") != NULL, "%s",
		      db_error(db));
	/* Bob's hash: refused. */
	ck_assert_int_eq(db_tenant_set_token(db, "alice", h2), -1);
	ck_assert_msg(strstr(db_error(db), "UNIQUE") != NULL, "%s",
		      db_error(db));
	db_rollback(db);
	memset(&k, 0, sizeof(k));
	ck_assert_int_eq(db_tenants_load(db, keep_tenant, &k), 0);
	ck_assert_int_eq(memcmp(k.t[0].hash, h3, DB_HASH_BYTES), 0);
	db_close(db);
}
END_TEST

START_TEST(shares_put_update_delete)
{
	struct db *db = open_ok();
	struct seen s;
	int calls = 0;

	ck_assert_int_eq(db_begin(db), 0);
	put_machine(db, "bob", "m");
	put_machine(db, "alice", "m");
	put_share(db, "bob", "m", "carol", false);
	put_share(db, "bob", "m", "alice", false);
	put_share(db, "alice", "m", "*", false);
	/* The same share again changes its access, adds no row. */
	put_share(db, "bob", "m", "alice", true);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_str_eq(shares_of(db, &s),
			 "alice.m>*:r;bob.m>alice:w;bob.m>carol:r;");
	ck_assert_int_eq(db_shares_load(db, stop_share, &calls), 9);
	ck_assert_int_eq(calls, 1);
	db_close(db);

	db = open_ok();
	ck_assert_str_eq(shares_of(db, &s),
			 "alice.m>*:r;bob.m>alice:w;bob.m>carol:r;");
	ck_assert_int_eq(db_begin(db), 0);
	put_share(db, "bob", "m", "alice", false);
	ck_assert_int_eq(db_share_delete(db, "bob", "m", "carol"), 0);
	/* Removing what is not there is no error. */
	ck_assert_int_eq(db_share_delete(db, "bob", "m", "carol"), 0);
	ck_assert_int_eq(db_share_delete(db, "bob", "nope", "alice"), 0);
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	db = open_ok();
	ck_assert_str_eq(shares_of(db, &s), "alice.m>*:r;bob.m>alice:r;");
	/* A share of a machine that does not exist is refused. */
	ck_assert_int_eq(db_begin(db), 0);
	{
		struct db_share sh = { "bob", "ghost", "alice", true };

		ck_assert_int_eq(db_share_put(db, &sh), -1);
		ck_assert_msg(strstr(db_error(db), "FOREIGN KEY") != NULL,
			      "%s", db_error(db));
	}
	db_rollback(db);
	db_close(db);
}
END_TEST

START_TEST(machine_delete_drops_its_shares)
{
	struct db *db = open_ok();
	struct seen s;

	ck_assert_int_eq(db_begin(db), 0);
	put_machine(db, "bob", "a");
	put_machine(db, "bob", "b");
	put_share(db, "bob", "a", "alice", true);
	put_share(db, "bob", "a", "*", false);
	put_share(db, "bob", "b", "alice", false);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_machine_delete(db, "bob", "a"), 0);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_str_eq(shares_of(db, &s), "bob.b>alice:r;");
	db_close(db);
	db = open_ok();
	ck_assert_str_eq(shares_of(db, &s), "bob.b>alice:r;");
	db_close(db);
}
END_TEST

/* Puts two operations on machine tenant.id. */
static void put_ops(struct db *db, const char *tenant, const char *id)
{
	uint8_t rec[2] = { 1, 2 };

	for (uint64_t v = 1; v <= 2; v++)
		ck_assert_int_eq(db_op_append(db, tenant, id, v, rec,
					      sizeof(rec), rec, sizeof(rec),
					      v, tenant), 0);
}

START_TEST(tenant_delete_takes_what_is_its)
{
	struct db *db = open_ok();
	struct seen s;

	ck_assert_int_eq(db_begin(db), 0);
	insert_tenant(db, "alice", 1);
	insert_tenant(db, "bob", 2);
	insert_tenant(db, "carol", 3);
	put_machine(db, "alice", "a1");
	put_machine(db, "alice", "a2");
	put_machine(db, "bob", "b1");
	put_machine(db, "local", "l1");
	put_ops(db, "alice", "a1");
	put_ops(db, "bob", "b1");
	put_share(db, "alice", "a1", "bob", true);      /* alice's own */
	put_share(db, "alice", "a2", "*", false);
	put_share(db, "bob", "b1", "alice", true);      /* granted to her */
	put_share(db, "bob", "b1", "carol", false);
	put_share(db, "bob", "b1", "*", false);
	put_share(db, "local", "l1", "alice", false);
	ck_assert_int_eq(db_commit(db), 0);

	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_msg(db_tenant_delete(db, "alice") == 0, "%s", db_error(db));
	ck_assert_int_eq(db_commit(db), 0);
	for (int round = 0; round < 2; round++) {
		ck_assert_str_eq(tenants_of(db, &s), "bob;carol;");
		ck_assert_str_eq(machines_of(db, &s),
				 "M bob.b1 t 13 0;o1:1:2:bob;o2:2:2:bob;"
				 "M local.l1 t 13 0;");
		ck_assert_str_eq(shares_of(db, &s),
				 "bob.b1>*:r;bob.b1>carol:r;");
		/* Her log went with her machines (not merely unread). */
		ck_assert_int_eq(file_int("SELECT count(*) FROM ops WHERE "
					  "tenant = 'alice'"), 0);
		ck_assert_int_eq(file_int("SELECT count(*) FROM ops"), 2);
		db_close(db);
		db = open_ok();
	}
	/* A tenant that is not there: nothing to do, no error. */
	ck_assert_int_eq(db_begin(db), 0);
	ck_assert_int_eq(db_tenant_delete(db, "alice"), 0);
	ck_assert_int_eq(db_commit(db), 0);
	ck_assert_str_eq(tenants_of(db, &s), "bob;carol;");
	db_close(db);
}
END_TEST

/* Schema version 1 exactly as db.c's migrations[0] creates it. */
static const char schema1[] =
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
	") WITHOUT ROWID;";

/* A file as a vmlabd of schema 1 left it: one machine, one record. */
static void write_schema1(const char *extra)
{
	sqlite3 *h;
	char *msg = NULL;

	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(h, "PRAGMA journal_mode = WAL", NULL, NULL,
				   &msg) == SQLITE_OK, "%s", msg);
	ck_assert_msg(sqlite3_exec(h, schema1, NULL, NULL, &msg) == SQLITE_OK,
		      "%s", msg);
	ck_assert_msg(sqlite3_exec(h,
				   "INSERT INTO machines VALUES ('local', 'm', "
				   "'t0', x'00010203', 0);"
				   "INSERT INTO ops VALUES ('local', 'm', 1, "
				   "x'09', x'0a0b', 77, 'local');"
				   "PRAGMA user_version = 1",
				   NULL, NULL, &msg) == SQLITE_OK, "%s", msg);
	ck_assert_msg(sqlite3_exec(h, extra, NULL, NULL, &msg) == SQLITE_OK,
		      "%s", msg);
	sqlite3_close(h);
}

START_TEST(schema1_file_migrates)
{
	struct db *db;
	struct seen s;
	int calls = 0;

	write_schema1("");
	db = open_ok();
	ck_assert_int_eq(file_int("PRAGMA user_version"), 2);
	ck_assert_str_eq(machines_of(db, &s),
			 "M local.m t0 4 0;o1:77:2:local;");
	ck_assert_int_eq(db_tenants_load(db, stop_tenant, &calls), 0);
	ck_assert_int_eq(db_shares_load(db, stop_share, &calls), 0);
	ck_assert_int_eq(calls, 0);
	/* The new tables work, on the machine the old file had too. */
	ck_assert_int_eq(db_begin(db), 0);
	insert_tenant(db, "alice", 1);
	put_share(db, "local", "m", "alice", true);
	ck_assert_int_eq(db_commit(db), 0);
	db_close(db);

	db = open_ok();
	ck_assert_int_eq(file_int("PRAGMA user_version"), 2);
	ck_assert_str_eq(tenants_of(db, &s), "alice;");
	ck_assert_str_eq(shares_of(db, &s), "local.m>alice:w;");
	ck_assert_str_eq(machines_of(db, &s),
			 "M local.m t0 4 0;o1:77:2:local;");
	db_close(db);
}
END_TEST

START_TEST(schema2_without_its_tables_refused_untouched)
{
	/* Says version 2 but has only version 1's tables. */
	write_schema1("PRAGMA user_version = 2");
	assert_refused_untouched("not vmlab's tables");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("db");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, writes_survive_reopen_in_order);
	tcase_add_test(tc, rollback_leaves_nothing);
	tcase_add_test(tc, snapshot_compacts_and_delete_cascades);
	tcase_add_test(tc, newer_schema_refused_untouched);
	tcase_add_test(tc, foreign_database_refused_untouched);
	tcase_add_test(tc, garbage_file_refused_untouched);
	tcase_add_test(tc, schema_version_recorded);
	tcase_add_test(tc, tenants_round_trip);
	tcase_add_test(tc, tenant_duplicates_and_bad_rows_refused);
	tcase_add_test(tc, tenant_quota_out_of_range_refused);
	tcase_add_test(tc, tenant_token_rotation);
	tcase_add_test(tc, shares_put_update_delete);
	tcase_add_test(tc, machine_delete_drops_its_shares);
	tcase_add_test(tc, tenant_delete_takes_what_is_its);
	tcase_add_test(tc, schema1_file_migrates);
	tcase_add_test(tc, schema2_without_its_tables_refused_untouched);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
