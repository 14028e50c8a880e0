/*
 * metrics.h - what /metrics reports, in Prometheus text format 0.0.4.
 *
 * Requests by route and status (401, 403 and 429 show refused callers),
 * a latency histogram, the store's totals (machines, processes, frames in
 * use), the number of tenants, and connections: open, accepted, refused
 * at once (per-address limit) and the limit. Counting is lock-free
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

/* Counts a connection closed as soon as accepted (a limit reached). */
void metrics_connection_refused(struct metrics *m);

/* Reports limit as the vmlab_connections_limit gauge. */
void metrics_connection_limit(struct metrics *m, unsigned limit);

/* The text of /metrics, malloc'd (api_ctx.metrics takes this shape). */
char *metrics_text(void *m);

#endif
