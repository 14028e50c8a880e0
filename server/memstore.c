/* memstore.c - machines in memory; see memstore.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/machine.h"
#include "memstore.h"

#define TENANT_MAX 63

struct entry {
	struct api_entry pub;        /* what the API sees */
	char tenant[TENANT_MAX + 1];
	pthread_rwlock_t lock;       /* the machine's */
	atomic_uint refs;            /* the table's, and each opener's */
	bool removed;                /* under lock */
	/* Counts for /metrics, refreshed by each writer. */
	atomic_uint_fast64_t processes, frames;
};

struct memstore {
	pthread_rwlock_t lock;       /* the table's */
	struct entry **v;            /* sorted by (tenant, id) */
	size_t n, cap, max;
};

struct memstore *memstore_create(size_t max_machines)
{
	struct memstore *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	pthread_rwlock_init(&s->lock, NULL);
	s->max = max_machines;
	return s;
}

static void entry_free(struct entry *e)
{
	vm_machine_free(e->pub.m);
	pthread_rwlock_destroy(&e->lock);
	free(e);
}

void memstore_free(struct memstore *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		entry_free(s->v[i]);
	free(s->v);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

static int cmp_key(const char *tenant, const char *id, const struct entry *e)
{
	int c = strcmp(tenant, e->tenant);

	return c ? c : strcmp(id, e->pub.id);
}

/* The index of (tenant, id), or where it would go; *found says which. */
static size_t find(const struct memstore *s, const char *tenant,
		   const char *id, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_key(tenant, id, s->v[mid]);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

static int ms_create(void *impl, const char *tenant, const char *id,
		     struct vm_machine *m, struct api_problem *p)
{
	struct memstore *s = impl;
	struct entry *e;
	bool found;
	size_t i;
	time_t now = time(NULL);
	struct tm tm;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, tenant, id, &found);
	if (found) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "already_exists",
				"a machine \"%s\" exists already", id);
	}
	if (s->max && s->n >= s->max) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "too_many_machines",
				"this server holds at most %zu machines",
				s->max);
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		abort();
	snprintf(e->pub.id, sizeof(e->pub.id), "%s", id);
	snprintf(e->tenant, sizeof(e->tenant), "%s", tenant);
	gmtime_r(&now, &tm);
	strftime(e->pub.created, sizeof(e->pub.created), "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
	e->pub.m = m;
	atomic_init(&e->refs, 1); /* the table's */
	atomic_init(&e->processes, vm_machine_nprocesses(m));
	atomic_init(&e->frames, vm_machine_frames_in_use(m));
	pthread_rwlock_init(&e->lock, NULL);
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = e;
	s->n++;
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* Drops a reference; the last one frees. */
static void unref(struct entry *e)
{
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		entry_free(e);
}

static struct api_entry *ms_open(void *impl, const char *tenant,
				 const char *id, bool write)
{
	struct memstore *s = impl;
	struct entry *e = NULL;
	bool found;
	size_t i;

	pthread_rwlock_rdlock(&s->lock);
	i = find(s, tenant, id, &found);
	if (found) {
		e = s->v[i];
		atomic_fetch_add(&e->refs, 1);
	}
	pthread_rwlock_unlock(&s->lock);
	if (!e)
		return NULL;
	if (write)
		pthread_rwlock_wrlock(&e->lock);
	else
		pthread_rwlock_rdlock(&e->lock);
	if (e->removed) {
		pthread_rwlock_unlock(&e->lock);
		unref(e);
		return NULL;
	}
	return &e->pub;
}

static void ms_close(void *impl, struct api_entry *pub, bool write)
{
	struct entry *e = (struct entry *)pub;

	(void)impl;
	if (write) {
		atomic_store(&e->processes, vm_machine_nprocesses(e->pub.m));
		atomic_store(&e->frames, vm_machine_frames_in_use(e->pub.m));
	}
	pthread_rwlock_unlock(&e->lock);
	unref(e);
}

static int ms_remove(void *impl, const char *tenant, const char *id,
		     struct api_problem *p)
{
	struct memstore *s = impl;
	struct entry *e;
	bool found;
	size_t i;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, tenant, id, &found);
	if (!found) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "not_found", "no machine \"%s\"", id);
	}
	e = s->v[i];
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
	s->n--;
	pthread_rwlock_unlock(&s->lock);
	/* Wait for the machine's current users, then let it go. */
	pthread_rwlock_wrlock(&e->lock);
	e->removed = true;
	pthread_rwlock_unlock(&e->lock);
	unref(e);
	return 0;
}

static size_t ms_list(void *impl, const char *tenant, const char *after,
		      size_t limit, char (*ids)[API_ID_MAX + 1], bool *more)
{
	struct memstore *s = impl;
	size_t i, n = 0;
	bool found;

	pthread_rwlock_rdlock(&s->lock);
	i = find(s, tenant, after, &found);
	if (found)
		i++;
	for (; i < s->n && strcmp(s->v[i]->tenant, tenant) == 0; i++) {
		if (n == limit) {
			*more = true;
			break;
		}
		strcpy(ids[n++], s->v[i]->pub.id);
	}
	pthread_rwlock_unlock(&s->lock);
	return n;
}

static int ms_commit(void *impl, struct api_entry *e, const struct vm_op *op,
		     struct api_problem *p)
{
	/* In memory, an applied operation is as durable as it gets. */
	(void)impl;
	(void)e;
	(void)op;
	(void)p;
	return 0;
}

static void ms_totals(void *impl, uint64_t *machines, uint64_t *processes,
		      uint64_t *frames)
{
	struct memstore *s = impl;

	*machines = *processes = *frames = 0;
	pthread_rwlock_rdlock(&s->lock);
	*machines = s->n;
	for (size_t i = 0; i < s->n; i++) {
		*processes += atomic_load(&s->v[i]->processes);
		*frames += atomic_load(&s->v[i]->frames);
	}
	pthread_rwlock_unlock(&s->lock);
}

static const struct api_store_ops ops = {
	ms_create, ms_open, ms_close, ms_remove, ms_list, ms_commit, ms_totals,
};

struct api_store memstore_api(struct memstore *s)
{
	struct api_store st = { &ops, s };

	return st;
}
