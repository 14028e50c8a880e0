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
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
