/*
 * metrics.h - what /metrics reports, in Prometheus text format 0.0.4.
 *
 * Requests by route and status (401, 403 and 429 show refused callers),
 * a latency histogram, the store's totals (machines, processes, frames in
 * use) and the number of tenants. Counting is lock-free
 * (relaxed atomics), so it costs a request nothing it would notice.
 */
#ifndef SERVER_METRICS_H
#define SERVER_METRICS_H

#include <stdint.h>

#include "api/store.h"

struct metrics;

/* Routes are counted by the pattern api_dispatch reports (resp->route). */
struct metrics *metrics_create(struct api_store store);
void metrics_free(struct metrics *m);

void metrics_request(struct metrics *m, const char *route, int status,
		     uint64_t micros);

/* Reports count(cls) as the vmlab_tenants gauge. */
void metrics_tenants(struct metrics *m, size_t (*count)(void *cls),
		     void *cls);

/* Counts a connection opened (+1) or closed (-1). */
void metrics_connection(struct metrics *m, int delta);

/* The text of /metrics, malloc'd (api_ctx.metrics takes this shape). */
char *metrics_text(void *m);

#endif
