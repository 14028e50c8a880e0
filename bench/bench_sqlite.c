/*
 * bench_sqlite.c - the suite's own baseline for durable writes: how many
 * single-row transactions per second SQLite commits on this disk.
 *
 * usage: bench_sqlite DIR [SECONDS]
 *
 * Prints `sqlite_commit_rps VALUE commits/s` and `sqlite_version VERSION
 * -`. In a new database DIR/baseline.db, with the settings vmlabd uses at
 * durability full (db/db.c: WAL, synchronous=FULL, the default
 * checkpointing), it commits one INSERT of a 64-byte row per BEGIN
 * IMMEDIATE ... COMMIT, as fast as it can, for SECONDS (default
 * $VMLAB_BENCH_SECONDS, else 5). DIR should be where the daemon's
 * database lives, so that both meet the same disk and file system; the
 * file is removed at the end. It links the SQLite library vmlabd links.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

static sqlite3 *db;

static void die(const char *what)
{
	fprintf(stderr, "bench_sqlite: %s: %s\n", what,
		db ? sqlite3_errmsg(db) : "out of memory");
	exit(1);
}

static void exec(const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		die(sql);
}

static sqlite3_stmt *prepare(const char *sql)
{
	sqlite3_stmt *s;

	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		die(sql);
	return s;
}

static void step(sqlite3_stmt *s, const char *what)
{
	if (sqlite3_step(s) != SQLITE_DONE)
		die(what);
	sqlite3_reset(s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *env = getenv("VMLAB_BENCH_SECONDS");
	double secs = 5, t0, t;
	unsigned char row[64];
	sqlite3_stmt *begin, *insert, *commit;
	long long n = 0;
	char path[4096];

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: bench_sqlite DIR [SECONDS]\n");
		return 2;
	}
	if (argc > 2)
		secs = atof(argv[2]);
	else if (env && *env)
		secs = atof(env);
	if (secs <= 0) {
		fprintf(stderr, "bench_sqlite: SECONDS must be > 0\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/baseline.db", argv[1]);
	unlink(path);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die(path);
	exec("PRAGMA journal_mode = WAL");
	exec("PRAGMA synchronous = FULL");
	exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
	begin = prepare("BEGIN IMMEDIATE");
	insert = prepare("INSERT INTO t (v) VALUES (?)");
	commit = prepare("COMMIT");
	memset(row, 0xa5, sizeof(row));

	t0 = now_s();
	do {
		step(begin, "begin");
		if (sqlite3_bind_blob(insert, 1, row, sizeof(row),
				      SQLITE_STATIC) != SQLITE_OK)
			die("bind");
		step(insert, "insert");
		step(commit, "commit");
		n++;
		t = now_s() - t0;
	} while (t < secs);

	sqlite3_finalize(begin);
	sqlite3_finalize(insert);
	sqlite3_finalize(commit);
	if (sqlite3_close(db) != SQLITE_OK)
		die("close");
	db = NULL;
	unlink(path);
	/* The WAL and shm files go with the last connection's close. */
	printf("sqlite_commit_rps %.1f commits/s\n", (double)n / t);
	printf("sqlite_version %s -\n", sqlite3_libversion());
	return 0;
}
