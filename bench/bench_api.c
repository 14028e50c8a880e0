/*
 * bench_api.c - what POST /v1/machines costs in the process, without
 * HTTP and without a disk.
 *
 * Prints two lines, `name value unit`:
 *
 *   create_machine_us   microseconds per POST /v1/machines {"id": ...}
 *                       (an x86_64 1 GiB machine, the defaults) through
 *                       api_dispatch, from the request to the 201 body
 *   create_machine_snapshot_us
 *                       the part of it the store spends on the snapshot
 *
 * The API runs over a store written here (api/store.h): machines in a
 * small table in memory, no locks, no SQLite and no fsync. Like the
 * daemon's store it keeps a snapshot of each new machine
 * (vm_state_serialize), since that is work every creation does before
 * it is durable; only the write to disk is left out.
 *
 * N creations (argv[1], else $VMLAB_BENCH_CREATES, else 5,000) run in
 * rounds of SLOTS machines with distinct ids; each round's machines are
 * deleted (not timed) before the next, so memory stays bounded. The
 * figure is the median of 3 runs. Timing uses CLOCK_MONOTONIC.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "core/layout.h"
#include "core/machine.h"
#include "core/state.h"

#define SLOTS 64
#define RUNS 3
#define DEFAULT_CREATES 5000ULL

/* ---- a store in memory: SLOTS machines, found by a linear scan ---- */

struct slot {
	struct api_entry pub;      /* first: an entry is its slot */
	bool used;
	uint8_t *snapshot;         /* the machine as a store would keep it */
	size_t snapshot_len;
};

static struct slot slots[SLOTS];
static double snapshot_ns;     /* time in vm_state_serialize, in all */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static struct slot *find(const char *owner, const char *id)
{
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].used && strcmp(slots[i].pub.id, id) == 0 &&
		    strcmp(slots[i].pub.owner, owner) == 0)
			return &slots[i];
	return NULL;
}

static void drop(struct slot *s)
{
	vm_machine_free(s->pub.m);
	free(s->snapshot);
	memset(s, 0, sizeof(*s));
}

static int ms_create(void *impl, const char *owner, const char *id,
		     struct vm_machine *m, const struct api_quota *quota,
		     struct api_problem *p)
{
	double t0;

	(void)impl;
	(void)quota;    /* the admin has none */
	if (find(owner, id))
		return api_fail(p, "already_exists", "\"%s\" exists", id);
	for (int i = 0; i < SLOTS; i++) {
		struct slot *s = &slots[i];

		if (s->used)
			continue;
		snprintf(s->pub.owner, sizeof(s->pub.owner), "%s", owner);
		snprintf(s->pub.id, sizeof(s->pub.id), "%s", id);
		/* A fixed time: the clock is no part of what is measured. */
		strcpy(s->pub.created, "2000-01-01T00:00:00Z");
		s->pub.m = m;
		s->used = true;
		t0 = now_ns();
		vm_state_serialize(m, &s->snapshot, &s->snapshot_len);
		snapshot_ns += now_ns() - t0;
		return 0;
	}
	return api_fail(p, "too_many_machines", "the bench store is full");
}

static struct api_entry *ms_open(void *impl, const struct api_caller *who,
				 const char *owner, const char *id,
				 enum api_access need, struct api_problem *p)
{
	struct slot *s = find(owner, id);

	(void)impl;
	(void)who;     /* the admin sees everything */
	(void)need;
	if (!s) {
		api_fail(p, "not_found", "no machine \"%s\"", id);
		return NULL;
	}
	return &s->pub;
}

static void ms_close(void *impl, struct api_entry *e, bool write)
{
	(void)impl;
	(void)e;
	(void)write;
}

static int ms_remove(void *impl, const struct api_caller *who,
		     const char *owner, const char *id, struct api_problem *p)
{
	struct slot *s = find(owner, id);

	(void)impl;
	(void)who;
	if (!s)
		return api_fail(p, "not_found", "no machine \"%s\"", id);
	drop(s);
	return 0;
}

static size_t ms_list(void *impl, const struct api_caller *who,
		      const char *owner, const struct api_name *after,
		      size_t limit, struct api_name *out, bool *more)
{
	(void)impl;
	(void)who;
	(void)owner;
	(void)after;
	(void)limit;
	(void)out;
	*more = false;  /* not used by this bench */
	return 0;
}

static int ms_commit(void *impl, struct api_entry *e, const char *by,
		     const struct vm_op *op, const struct vm_op_result *res,
		     struct api_problem *p)
{
	(void)impl;
	(void)e;
	(void)by;
	(void)op;
	(void)res;
	(void)p;
	return 0;       /* creations do not commit; nothing else runs */
}

static int ms_history(void *impl, const char *owner, const char *id,
		      uint64_t after, unsigned limit,
		      int (*fn)(void *ctx, uint64_t version,
				const struct vm_op *op,
				const struct vm_op_result *res,
				const char *by),
		      void *cls, struct api_problem *p)
{
	(void)impl;
	(void)owner;
	(void)id;
	(void)after;
	(void)limit;
	(void)fn;
	(void)cls;
	(void)p;
	return 0;
}

static void ms_usage(void *impl, const char *owner, uint64_t *machines,
		     uint64_t *memory)
{
	(void)impl;
	*machines = *memory = 0;
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].used && strcmp(slots[i].pub.owner, owner) == 0) {
			(*machines)++;
			*memory += vm_machine_config(slots[i].pub.m)->memory;
		}
}

static size_t ms_shares(void *impl, const char *owner, const char *id,
			struct api_share *out, size_t cap)
{
	(void)impl;
	(void)owner;
	(void)id;
	(void)out;
	(void)cap;
	return 0;
}

static int ms_share_put(void *impl, const char *owner, const char *id,
			const struct api_share *sh, bool *created,
			struct api_problem *p)
{
	(void)impl;
	(void)owner;
	(void)id;
	(void)sh;
	(void)created;
	return api_fail(p, "service_unavailable", "not in this bench");
}

static int ms_share_remove(void *impl, const char *owner, const char *id,
			   const char *tenant, struct api_problem *p)
{
	(void)impl;
	(void)owner;
	(void)id;
	(void)tenant;
	return api_fail(p, "not_found", "no shares in this bench");
}

static void ms_totals(void *impl, uint64_t *machines, uint64_t *processes,
		      uint64_t *frames)
{
	(void)impl;
	*machines = *processes = *frames = 0;
}

static const struct api_store_ops ms_ops = {
	.create = ms_create, .open = ms_open, .close = ms_close,
	.remove = ms_remove, .list = ms_list, .commit = ms_commit,
	.history = ms_history, .usage = ms_usage, .shares = ms_shares,
	.share_put = ms_share_put, .share_remove = ms_share_remove,
	.totals = ms_totals,
};

/* ---- the bench ---- */

static struct api_ctx ctx;

/* One request through the API; exits unless it answers `status`. */
static void call(const char *method, const char *path, const char *body,
		 int status)
{
	struct api_request req = {
		.method = method, .path = path,
		.content_type = "application/json",
		.body = body, .body_len = strlen(body),
	};
	struct api_response resp;

	memset(&resp, 0, sizeof(resp));
	api_dispatch(&ctx, &req, &resp);
	if (resp.status != status) {
		fprintf(stderr, "bench_api: %s %s answered %d, not %d: %.*s\n",
			method, path, resp.status, status,
			(int)(resp.body_len < 300 ? resp.body_len : 300),
			resp.body ? resp.body : "");
		exit(1);
	}
	api_response_release(&resp);
}

/*
 * Microseconds per creation over n creations, in rounds of SLOTS; *snap
 * the part of it spent on snapshots.
 */
static double run(uint64_t n, uint64_t *serial, double *snap)
{
	char body[64], path[96];
	double ns = 0, t0, s0 = snapshot_ns;
	uint64_t done = 0;

	while (done < n) {
		uint64_t k = n - done < SLOTS ? n - done : SLOTS;
		uint64_t first = *serial;

		t0 = now_ns();
		for (uint64_t i = 0; i < k; i++) {
			snprintf(body, sizeof(body), "{\"id\":\"m%llu\"}",
				 (unsigned long long)(*serial)++);
			call("POST", "/v1/machines", body, 201);
		}
		ns += now_ns() - t0;
		for (uint64_t i = 0; i < k; i++) {
			snprintf(path, sizeof(path), "/v1/machines/m%llu",
				 (unsigned long long)(first + i));
			call("DELETE", path, "", 204);
		}
		done += k;
	}
	*snap = (snapshot_ns - s0) / (double)n / 1e3;
	return ns / (double)n / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median3(double v[RUNS])
{
	qsort(v, RUNS, sizeof(v[0]), cmp_double);
	return v[RUNS / 2];
}

int main(int argc, char **argv)
{
	const char *env = getenv("VMLAB_BENCH_CREATES");
	uint64_t n = DEFAULT_CREATES, serial = 0;
	double us[RUNS], snap[RUNS];

	if (argc > 1)
		n = strtoull(argv[1], NULL, 0);
	else if (env && *env)
		n = strtoull(env, NULL, 0);
	if (n == 0) {
		fprintf(stderr, "usage: bench_api [CREATES] (or "
				"VMLAB_BENCH_CREATES=CREATES), CREATES > 0\n");
		return 2;
	}
	ctx.store.ops = &ms_ops;
	ctx.config.openapi = "{}";
	ctx.config.openapi_len = 2;
	ctx.config.version = "bench";
	/* vmlabd's defaults (--max-machines, --max-memory). */
	ctx.config.max_machines = 10000;
	ctx.config.max_memory = 64 * VM_GiB;

	for (int r = 0; r < RUNS; r++)
		us[r] = run(n, &serial, &snap[r]);
	printf("create_machine_us %.1f us\n", median3(us));
	printf("create_machine_snapshot_us %.1f us\n", median3(snap));
	for (int i = 0; i < SLOTS; i++)
		if (slots[i].used)
			drop(&slots[i]);
	return 0;
}
