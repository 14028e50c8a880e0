/* metrics.c - request counters and the Prometheus text; see metrics.h. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "metrics.h"

/* Statuses the API answers with; anything else counts as "other". */
static const int statuses[] = { 200, 201, 204, 400, 401, 403, 404, 405,
				409, 412, 413, 415, 422, 429, 500, 503 };
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]) + 1)
#define MAX_ROUTES 64

/* Latency bucket bounds in microseconds. */
static const uint64_t bounds[] = { 50, 100, 250, 500, 1000, 2500,
				   5000, 10000, 25000, 100000, 1000000 };
#define NBUCKETS (sizeof(bounds) / sizeof(bounds[0]) + 1)

struct metrics {
	struct api_store store;
	const char *routes[MAX_ROUTES];  /* patterns; last two: 404, 405 */
	unsigned nroutes;
	atomic_uint_fast64_t count[MAX_ROUTES][NSTATUS];
	atomic_uint_fast64_t bucket[NBUCKETS];
	atomic_uint_fast64_t sum_us, total;
	atomic_int_fast64_t connections;
	atomic_uint_fast64_t accepted, refused;
	unsigned connection_limit;
	size_t (*tenants)(void *cls);
	void *tenants_cls;
};

void metrics_tenants(struct metrics *m, size_t (*count)(void *cls),
		     void *cls)
{
	m->tenants = count;
	m->tenants_cls = cls;
}

struct metrics *metrics_create(struct api_store store)
{
	struct metrics *m = calloc(1, sizeof(*m));
	const struct api_route *r;

	if (!m)
		abort();
	m->store = store;
	for (r = api_routes(); r->method && m->nroutes < MAX_ROUTES - 2; r++) {
		bool seen = false;

		for (unsigned i = 0; i < m->nroutes; i++)
			seen |= strcmp(m->routes[i], r->pattern) == 0;
		if (!seen)
			m->routes[m->nroutes++] = r->pattern;
	}
	m->routes[m->nroutes++] = "not_found";
	m->routes[m->nroutes++] = "method_not_allowed";
	return m;
}

void metrics_free(struct metrics *m)
{
	free(m);
}

void metrics_request(struct metrics *m, const char *route, int status,
		     uint64_t micros)
{
	unsigned r, s, b;

	for (r = 0; r < m->nroutes; r++)
		if (route && strcmp(m->routes[r], route) == 0)
			break;
	if (r == m->nroutes)
		r = m->nroutes - 2; /* unknown: count as not found */
	for (s = 0; s < NSTATUS - 1 && statuses[s] != status; s++)
		;
	for (b = 0; b < NBUCKETS - 1 && micros > bounds[b]; b++)
		;
	atomic_fetch_add_explicit(&m->count[r][s], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, micros, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->total, 1, memory_order_relaxed);
}

void metrics_connection(struct metrics *m, int delta)
{
	atomic_fetch_add_explicit(&m->connections, delta, memory_order_relaxed);
	if (delta > 0)
		atomic_fetch_add_explicit(&m->accepted, 1,
					  memory_order_relaxed);
}

void metrics_connection_refused(struct metrics *m)
{
	atomic_fetch_add_explicit(&m->refused, 1, memory_order_relaxed);
}

void metrics_connection_limit(struct metrics *m, unsigned limit)
{
	m->connection_limit = limit;
}

struct buf {
	char *s;
	size_t len, cap;
};

static void out(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			abort();
	}
	b->len += (size_t)n;
}

char *metrics_text(void *cls)
{
	struct metrics *m = cls;
	struct buf b = { malloc(4096), 0, 4096 };
	uint64_t machines, processes, frames, cum = 0;

	if (!b.s)
		abort();
	b.s[0] = '\0';
	out(&b, "# HELP vmlab_requests_total Requests answered, by route "
		"and status.\n# TYPE vmlab_requests_total counter\n");
	for (unsigned r = 0; r < m->nroutes; r++)
		for (unsigned s = 0; s < NSTATUS; s++) {
			uint64_t n = atomic_load(&m->count[r][s]);

			if (!n)
				continue;
			if (s < NSTATUS - 1)
				out(&b, "vmlab_requests_total{route=\"%s\","
					"status=\"%d\"} %llu\n", m->routes[r],
				    statuses[s], (unsigned long long)n);
			else
				out(&b, "vmlab_requests_total{route=\"%s\","
					"status=\"other\"} %llu\n",
				    m->routes[r], (unsigned long long)n);
		}
	out(&b, "# HELP vmlab_request_duration_seconds Time from a complete "
		"request to its answer.\n# TYPE vmlab_request_duration_seconds "
		"histogram\n");
	for (unsigned i = 0; i < NBUCKETS; i++) {
		cum += atomic_load(&m->bucket[i]);
		if (i < NBUCKETS - 1)
			out(&b, "vmlab_request_duration_seconds_bucket{le=\"%g\"}"
				" %llu\n", (double)bounds[i] / 1e6,
			    (unsigned long long)cum);
		else
			out(&b, "vmlab_request_duration_seconds_bucket{le=\"+Inf\"}"
				" %llu\n", (unsigned long long)cum);
	}
	out(&b, "vmlab_request_duration_seconds_sum %g\n",
	    (double)atomic_load(&m->sum_us) / 1e6);
	out(&b, "vmlab_request_duration_seconds_count %llu\n",
	    (unsigned long long)atomic_load(&m->total));
	m->store.ops->totals(m->store.impl, &machines, &processes, &frames);
	out(&b, "# HELP vmlab_machines Machines held.\n# TYPE vmlab_machines "
		"gauge\nvmlab_machines %llu\n", (unsigned long long)machines);
	out(&b, "# HELP vmlab_processes Processes in all machines.\n# TYPE "
		"vmlab_processes gauge\nvmlab_processes %llu\n",
	    (unsigned long long)processes);
	out(&b, "# HELP vmlab_frames_in_use Simulated frames allocated in all "
		"machines.\n# TYPE vmlab_frames_in_use gauge\n"
		"vmlab_frames_in_use %llu\n", (unsigned long long)frames);
	if (m->store.ops->counters) {
		uint64_t tx, ops;

		m->store.ops->counters(m->store.impl, &tx, &ops);
		out(&b, "# HELP vmlab_db_transactions_total Database transactions "
			"committed (one fsync each with durability full).\n"
			"# TYPE vmlab_db_transactions_total counter\n"
			"vmlab_db_transactions_total %llu\n",
		    (unsigned long long)tx);
		out(&b, "# HELP vmlab_durable_operations_total Operations made "
			"durable (committed), counted before they are "
			"answered.\n# TYPE "
			"vmlab_durable_operations_total counter\n"
			"vmlab_durable_operations_total %llu\n",
		    (unsigned long long)ops);
	}
	if (m->tenants)
		out(&b, "# HELP vmlab_tenants Tenants (students and graders).\n"
			"# TYPE vmlab_tenants gauge\nvmlab_tenants %zu\n",
		    m->tenants(m->tenants_cls));
	out(&b, "# HELP vmlab_connections Open HTTP connections.\n# TYPE "
		"vmlab_connections gauge\nvmlab_connections %lld\n",
	    (long long)atomic_load(&m->connections));
	out(&b, "# HELP vmlab_connections_limit Connections held at most "
		"(--max-connections); more wait in the listen queue.\n"
		"# TYPE vmlab_connections_limit gauge\n"
		"vmlab_connections_limit %u\n", m->connection_limit);
	out(&b, "# HELP vmlab_connections_total HTTP connections accepted."
		"\n# TYPE vmlab_connections_total counter\n"
		"vmlab_connections_total %llu\n",
	    (unsigned long long)atomic_load(&m->accepted));
	out(&b, "# HELP vmlab_connections_refused_total Connections closed "
		"as soon as accepted, their address at "
		"--max-connections-per-ip.\n"
		"# TYPE vmlab_connections_refused_total counter\n"
		"vmlab_connections_refused_total %llu\n",
	    (unsigned long long)atomic_load(&m->refused));
	return b.s;
}
