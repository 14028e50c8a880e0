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
 * The API runs over tests/support/memstore.c (api/store.h): machines in
 * a small table in memory, no locks, no SQLite and no fsync. Like the
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
#include "bench/bench_time.h"
#include "core/machine.h"
#include "core/state.h"
#include "tests/support/memstore.h"

#define SLOTS 64
#define DEFAULT_CREATES 5000ULL

static struct memstore store;

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
	double ns = 0, t0, s0 = store.snapshot_ns;
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
	*snap = (store.snapshot_ns - s0) / (double)n / 1e3;
	return ns / (double)n / 1e3;
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
	memstore_init(&store, SLOTS, 0, 0);
	store.clock_ns = now_ns;
	ctx.store.ops = &memstore_ops;
	ctx.store.impl = &store;
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
	memstore_free(&store);
	return 0;
}
