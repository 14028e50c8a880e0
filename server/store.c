/* store.c - machines in memory, made durable in SQLite; see store.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/enc.h"
#include "core/machine.h"
#include "core/state.h"
#include "store.h"
#include "xlock.h"

/* A snapshot every this many operations bounds replay at start. */
#define SNAPSHOT_EVERY 1024

struct entry {
	struct api_entry pub;        /* what the API sees */
	uint64_t memory;             /* simulated RAM, for quotas */
	/* Who else may see it, in tenant order; under the table's lock. */
	struct api_share *shares;
	size_t nshares;
	struct xlock lock;           /* the machine's */
	atomic_uint refs;            /* the table's, and each opener's */
	bool removed;                /* under lock */
	uint64_t snapshot_version;   /* under lock */
	/*
	 * A queued commit keeps the write lock past close(): under mu,
	 * `pending` says a commit is queued, `closed` that the writer has
	 * closed meanwhile (the committer then releases the lock).
	 */
	pthread_mutex_t mu;
	bool pending, closed;
	/* Counts for /metrics, refreshed by each writer. */
	atomic_uint_fast64_t processes, frames;
};

/* An operation waiting for the group commit. */
struct pending {
	struct entry *e;             /* referenced, write-locked */
	struct vm_op op;
	struct vm_enc rec, ans;
	uint64_t version, digest;
	uint8_t *state;              /* a snapshot to store with it, or NULL */
	size_t state_len;
	void (*done)(void *cls, bool ok, const struct api_problem *p);
	void *cls;
	char by[API_TENANT_MAX + 1]; /* the tenant that applied it */
	struct pending *next;
};

struct store {
	pthread_rwlock_t lock;       /* the table's */
	struct entry **v;            /* sorted by (tenant, id) */
	size_t n, cap, max;
	struct db *db;
	pthread_mutex_t db_lock;     /* one writer of the database at a time */
	uint64_t keep;
	/* The group committer: a queue, and the thread that drains it. */
	pthread_mutex_t q_mu;
	pthread_cond_t q_cv;
	struct pending *q_head, **q_tail;
	bool q_stop;
	bool busy;                   /* a group is being written */
	pthread_t committer;
	atomic_uint_fast64_t durable_ops;
	bool loaded;                 /* store_load succeeded: snapshot at stop */
	/* Whether an owner may still get machines (its tenant exists). */
	bool (*alive)(void *cls, const char *owner);
	void *alive_cls;
};

static void *committer_main(void *arg);
static void commit_group(struct store *s, struct pending *g);

struct store *store_create(struct db *db, size_t max_machines, uint64_t keep)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->db_lock, NULL);
	s->max = max_machines;
	s->db = db;
	s->keep = keep;
	pthread_mutex_init(&s->q_mu, NULL);
	pthread_cond_init(&s->q_cv, NULL);
	s->q_tail = &s->q_head;
	if (pthread_create(&s->committer, NULL, committer_main, s))
		abort();
	return s;
}

static void entry_free(struct entry *e)
{
	vm_machine_free(e->pub.m);
	free(e->shares);
	xlock_destroy(&e->lock);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

static int cmp_key(const char *tenant, const char *id, const struct entry *e)
{
	int c = strcmp(tenant, e->pub.owner);

	return c ? c : strcmp(id, e->pub.id);
}

/* The index of (tenant, id), or where it would go; *found says which. */
static size_t find(const struct store *s, const char *tenant, const char *id,
		   bool *found)
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

static struct entry *entry_new(const char *tenant, const char *id,
			       const char *created, struct vm_machine *m)
{
	struct entry *e = calloc(1, sizeof(*e));

	if (!e)
		abort();
	snprintf(e->pub.id, sizeof(e->pub.id), "%s", id);
	snprintf(e->pub.owner, sizeof(e->pub.owner), "%s", tenant);
	e->memory = vm_machine_config(m)->memory;
	snprintf(e->pub.created, sizeof(e->pub.created), "%s", created);
	e->pub.m = m;
	e->snapshot_version = vm_machine_version(m);
	atomic_init(&e->refs, 1); /* the table's */
	atomic_init(&e->processes, vm_machine_nprocesses(m));
	atomic_init(&e->frames, vm_machine_frames_in_use(m));
	xlock_init(&e->lock);
	pthread_mutex_init(&e->mu, NULL);
	return e;
}

/* Puts e in the table at i (table write-locked). */
static void insert_at(struct store *s, size_t i, struct entry *e)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v)
			abort();
	}
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
	s->v[i] = e;
	s->n++;
}

/* ---- durability ---- */

static int db_failed(struct store *s, struct api_problem *p, const char *what)
{
	return api_fail(p, "service_unavailable",
			"the database could not be written (%s: %.200s); "
			"nothing was changed, try again", what,
			db_error(s->db));
}

/* Stores a new machine's first snapshot (db locked by the caller). */
static int persist_new(struct store *s, const char *tenant, const char *id,
		       const char *created, const struct vm_machine *m,
		       struct api_problem *p)
{
	uint8_t *state;
	size_t len;
	int rc;

	vm_state_serialize(m, &state, &len);
	rc = db_begin(s->db) ||
	     db_machine_insert(s->db, tenant, id, created, state, len,
			       vm_machine_version(m)) ||
	     db_commit(s->db);
	free(state);
	if (rc) {
		db_rollback(s->db);
		return db_failed(s, p, "create");
	}
	return 0;
}

struct reload {
	struct vm_machine *m;
	int rc;
};

static int reload_machine(void *ctx, const struct db_machine *dm)
{
	struct reload *r = ctx;

	r->rc = vm_state_decode(dm->state, dm->state_len, &r->m, NULL);
	return r->rc;
}

static int reload_op(void *ctx, const struct db_op *o)
{
	struct reload *r = ctx;
	struct vm_op op;

	if (vm_op_decode(o->rec, o->len, &op) ||
	    vm_machine_apply(r->m, &op, NULL, NULL) ||
	    vm_machine_digest(r->m) != o->digest ||
	    vm_machine_version(r->m) != o->version)
		return r->rc = -1;
	return 0;
}

/* The machine as the database holds it; NULL when it cannot be read. */
static struct vm_machine *reload(struct store *s, const struct entry *e)
{
	struct reload r = { NULL, 0 };

	if (db_load_one(s->db, e->pub.owner, e->pub.id, reload_machine, reload_op,
			&r) != 0) {
		vm_machine_free(r.m);
		return NULL;
	}
	return r.m;
}

/* The first index of owner's machines (table locked). */
static size_t first_of(const struct store *s, const char *owner)
{
	bool found;

	return find(s, owner, "", &found);
}

/* An owner's machines and their total memory (table locked). */
static void count_owner(const struct store *s, const char *owner,
			uint64_t *machines, uint64_t *memory)
{
	*machines = *memory = 0;
	for (size_t i = first_of(s, owner);
	     i < s->n && strcmp(s->v[i]->pub.owner, owner) == 0; i++) {
		(*machines)++;
		*memory += s->v[i]->memory;
	}
}

static int over_quota(const struct store *s, const char *owner,
		      uint64_t memory, const struct api_quota *q,
		      struct api_problem *p)
{
	uint64_t machines, used;

	count_owner(s, owner, &machines, &used);
	if (machines >= q->machines)
		return api_fail(p, "quota_exceeded",
				"tenant \"%s\" may have %llu machines and has "
				"%llu; delete one first", owner,
				(unsigned long long)q->machines,
				(unsigned long long)machines);
	if (memory > q->memory || used > q->memory - memory)
		return api_fail(p, "quota_exceeded",
				"tenant \"%s\" may have %llu bytes of simulated "
				"RAM in all; it has %llu and asks for %llu more",
				owner, (unsigned long long)q->memory,
				(unsigned long long)used,
				(unsigned long long)memory);
	return 0;
}

static int ms_create(void *impl, const char *owner, const char *id,
		     struct vm_machine *m, const struct api_quota *quota,
		     struct api_problem *p)
{
	struct store *s = impl;
	bool found;
	size_t i;
	time_t now = time(NULL);
	struct tm tm;
	char created[32];

	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_rwlock_wrlock(&s->lock);
	i = find(s, owner, id, &found);
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
	if (s->alive && !s->alive(s->alive_cls, owner)) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "not_found", "tenant \"%s\" was removed",
				owner);
	}
	if (quota && over_quota(s, owner, vm_machine_config(m)->memory, quota,
				p)) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	pthread_mutex_lock(&s->db_lock);
	if (persist_new(s, owner, id, created, m, p)) {
		pthread_mutex_unlock(&s->db_lock);
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	pthread_mutex_unlock(&s->db_lock);
	insert_at(s, i, entry_new(owner, id, created, m));
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* Drops a reference; the last one frees. */
static void unref(struct entry *e)
{
	if (atomic_fetch_sub(&e->refs, 1) == 1)
		entry_free(e);
}

/*
 * The entry (owner, id) if who may do `need` to it (table locked):
 * NULL with 404 when who cannot see it, 403 when it can but not this.
 */
static struct entry *visible(const struct store *s,
			     const struct api_caller *who, const char *owner,
			     const char *id, enum api_access need,
			     struct api_problem *p)
{
	bool found;
	size_t i = find(s, owner, id, &found);
	struct entry *e = found ? s->v[i] : NULL;
	enum api_access a = API_ACCESS_NONE;
	const char *sep = strcmp(owner, who->tenant) ? "." : "";
	const char *ns = *sep ? owner : "";

	if (e)
		a = api_access_for(who, owner, e->shares, e->nshares);
	if (a == API_ACCESS_NONE) {
		api_fail(p, "not_found", "no machine \"%s%s%s\"", ns, sep, id);
		return NULL;
	}
	if (a < need && who->role == API_ROLE_GRADER) {
		api_fail(p, "forbidden", "a grader reads machines and changes "
			 "nothing (machine \"%s%s%s\")", ns, sep, id);
		return NULL;
	}
	if (a < need) {
		api_fail(p, "forbidden",
			 "machine \"%s%s%s\" is shared with you %s; %s",
			 ns, sep, id,
			 a == API_ACCESS_READ ? "read-only" : "for writing",
			 need == API_ACCESS_OWNER
				 ? "only its owner may delete it or change "
				   "its shares"
				 : "clone it to change a copy of your own");
		return NULL;
	}
	return e;
}

static struct api_entry *ms_open(void *impl, const struct api_caller *who,
				 const char *owner, const char *id,
				 enum api_access need, struct api_problem *p)
{
	struct store *s = impl;
	struct entry *e;

	pthread_rwlock_rdlock(&s->lock);
	e = visible(s, who, owner, id, need, p);
	if (e)
		atomic_fetch_add(&e->refs, 1);
	pthread_rwlock_unlock(&s->lock);
	if (!e)
		return NULL;
	if (need >= API_ACCESS_WRITE)
		xlock_write(&e->lock);
	else
		xlock_read(&e->lock);
	if (e->removed) {
		xlock_unlock(&e->lock);
		unref(e);
		api_fail(p, "not_found", "machine \"%s\" was deleted", id);
		return NULL;
	}
	return &e->pub;
}

static void ms_close(void *impl, struct api_entry *pub, bool write)
{
	struct entry *e = (struct entry *)pub;

	(void)impl;
	if (write) {
		bool deferred;

		atomic_store(&e->processes, vm_machine_nprocesses(e->pub.m));
		atomic_store(&e->frames, vm_machine_frames_in_use(e->pub.m));
		/* With a commit queued, the committer releases the lock. */
		pthread_mutex_lock(&e->mu);
		deferred = e->pending;
		e->closed = deferred;
		pthread_mutex_unlock(&e->mu);
		if (deferred)
			return;
	}
	xlock_unlock(&e->lock);
	unref(e);
}

/* Takes e out of the table at i (table write-locked); the caller then
 * retires it (retire). */
static void take_out(struct store *s, size_t i)
{
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(*s->v));
	s->n--;
}

/* Waits for a removed machine's current users, then lets it go. */
static void retire(struct entry *e)
{
	xlock_write(&e->lock);
	e->removed = true;
	xlock_unlock(&e->lock);
	unref(e);
}

static int ms_remove(void *impl, const struct api_caller *who,
		     const char *owner, const char *id, struct api_problem *p)
{
	struct store *s = impl;
	struct entry *e;
	bool found;
	size_t i;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	e = visible(s, who, owner, id, API_ACCESS_OWNER, p);
	if (!e) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	i = find(s, owner, id, &found);
	pthread_mutex_lock(&s->db_lock);
	rc = db_begin(s->db) || db_machine_delete(s->db, owner, id) ||
	     db_commit(s->db);
	if (rc)
		db_rollback(s->db);
	pthread_mutex_unlock(&s->db_lock);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return db_failed(s, p, "delete");
	}
	take_out(s, i);
	pthread_rwlock_unlock(&s->lock);
	retire(e);
	return 0;
}

static size_t ms_list(void *impl, const struct api_caller *who,
		      const char *owner, const struct api_name *after,
		      size_t limit, struct api_name *out, bool *more)
{
	struct store *s = impl;
	size_t i, n = 0;
	bool found;

	pthread_rwlock_rdlock(&s->lock);
	i = find(s, after->owner, after->id, &found);
	if (found)
		i++;
	if (owner) {
		size_t first = first_of(s, owner);

		i = i > first ? i : first;
	}
	for (; i < s->n; i++) {
		const struct entry *e = s->v[i];

		if (owner && strcmp(e->pub.owner, owner) != 0)
			break;
		if (api_access_for(who, e->pub.owner, e->shares,
				   e->nshares) == API_ACCESS_NONE)
			continue;
		if (n == limit) {
			*more = true;
			break;
		}
		strcpy(out[n].owner, e->pub.owner);
		strcpy(out[n].id, e->pub.id);
		n++;
	}
	pthread_rwlock_unlock(&s->lock);
	return n;
}

static void ms_usage(void *impl, const char *owner, uint64_t *machines,
		     uint64_t *memory)
{
	struct store *s = impl;

	pthread_rwlock_rdlock(&s->lock);
	count_owner(s, owner, machines, memory);
	pthread_rwlock_unlock(&s->lock);
}

/*
 * Makes an applied operation durable before it is acknowledged; the
 * caller holds the machine's write lock.
 */
static int ms_commit(void *impl, struct api_entry *pub, const char *by,
		     const struct vm_op *op, const struct vm_op_result *res,
		     struct api_problem *p)
{
	struct store *s = impl;
	struct entry *e = (struct entry *)pub;
	struct vm_enc rec, ans;
	uint64_t version = vm_machine_version(e->pub.m);
	uint64_t digest = vm_machine_digest(e->pub.m);
	uint8_t *state = NULL;
	size_t len = 0;
	int rc;

	enc_init(&rec);
	enc_init(&ans);
	vm_op_encode(op, &rec);
	vm_op_result_encode(op, res, &ans);
	if (version - e->snapshot_version >= SNAPSHOT_EVERY)
		vm_state_serialize(e->pub.m, &state, &len);
	pthread_mutex_lock(&s->db_lock);
	rc = db_begin(s->db) ||
	     db_op_append(s->db, e->pub.owner, e->pub.id, version, rec.buf,
			  rec.len, ans.buf, ans.len, digest, by) ||
	     (state && db_snapshot(s->db, e->pub.owner, e->pub.id, state, len,
				   version, s->keep)) ||
	     db_commit(s->db);
	if (rc) {
		struct vm_machine *back;

		db_rollback(s->db);
		/* Put the machine back exactly as the database has it. */
		back = reload(s, e);
		pthread_mutex_unlock(&s->db_lock);
		if (back) {
			vm_machine_free(e->pub.m);
			e->pub.m = back;
		} else {
			/* Unreadable too: serve it no more until restart. */
			e->removed = true;
		}
		rc = db_failed(s, p, vm_op_name(op->type));
	} else {
		pthread_mutex_unlock(&s->db_lock);
		atomic_fetch_add(&s->durable_ops, 1);
		if (state)
			e->snapshot_version = version;
	}
	free(state);
	enc_release(&rec);
	enc_release(&ans);
	return rc;
}

/* Queues an applied operation for the next group commit. */
static void ms_commit_async(void *impl, struct api_entry *pub,
			    const char *by, const struct vm_op *op,
			    const struct vm_op_result *res,
			    void (*done)(void *cls, bool ok,
					 const struct api_problem *p),
			    void *cls)
{
	struct store *s = impl;
	struct entry *e = (struct entry *)pub;
	struct pending *p = calloc(1, sizeof(*p));
	bool lead;

	if (!p)
		abort();
	p->e = e;
	atomic_fetch_add(&e->refs, 1);
	p->op = *op;
	snprintf(p->by, sizeof(p->by), "%s", by);
	enc_init(&p->rec);
	enc_init(&p->ans);
	vm_op_encode(op, &p->rec);
	vm_op_result_encode(op, res, &p->ans);
	p->version = vm_machine_version(e->pub.m);
	p->digest = vm_machine_digest(e->pub.m);
	if (p->version - e->snapshot_version >= SNAPSHOT_EVERY)
		vm_state_serialize(e->pub.m, &p->state, &p->state_len);
	p->done = done;
	p->cls = cls;
	pthread_mutex_lock(&e->mu);
	e->pending = true;
	pthread_mutex_unlock(&e->mu);
	/*
	 * When nobody is writing the database, this thread commits its own
	 * operation at once: a lone client pays no hand-off to the committer
	 * and no parked connection. Operations that come meanwhile queue up
	 * and go together in the committer's next transaction.
	 */
	pthread_mutex_lock(&s->q_mu);
	lead = !s->busy && !s->q_head && !s->q_stop;
	if (lead) {
		s->busy = true;
	} else {
		*s->q_tail = p;
		s->q_tail = &p->next;
		pthread_cond_signal(&s->q_cv);
	}
	pthread_mutex_unlock(&s->q_mu);
	if (!lead)
		return;
	commit_group(s, p);
	pthread_mutex_lock(&s->q_mu);
	s->busy = false;
	if (s->q_head)
		pthread_cond_signal(&s->q_cv);
	pthread_mutex_unlock(&s->q_mu);
}

/* Writes a group in one transaction; 0, or -1 with nothing written. */
static int write_group(struct store *s, struct pending *g)
{
	if (db_begin(s->db))
		return -1;
	for (struct pending *p = g; p; p = p->next)
		if (db_op_append(s->db, p->e->pub.owner, p->e->pub.id, p->version,
				 p->rec.buf, p->rec.len, p->ans.buf, p->ans.len,
				 p->digest, p->by) ||
		    (p->state &&
		     db_snapshot(s->db, p->e->pub.owner, p->e->pub.id, p->state,
				 p->state_len, p->version, s->keep))) {
			db_rollback(s->db);
			return -1;
		}
	if (db_commit(s->db)) {
		db_rollback(s->db);
		return -1;
	}
	return 0;
}

/* Settles one member of a group: the answer, then the machine's lock. */
static void settle(struct store *s, struct pending *p, bool ok,
		   const struct api_problem *prob)
{
	struct entry *e = p->e;
	bool closed;

	if (ok && p->state)
		e->snapshot_version = p->version;
	p->done(p->cls, ok, prob);
	pthread_mutex_lock(&e->mu);
	e->pending = false;
	closed = e->closed;
	e->closed = false;
	pthread_mutex_unlock(&e->mu);
	if (closed) {
		xlock_unlock(&e->lock);
		unref(e); /* the writer's reference */
	}
	unref(e); /* the queue's */
	(void)s;
}

/*
 * Commits a group in one transaction and settles each member; a failed
 * group is refused whole, and each of its machines is reloaded from the
 * database.
 */
static void commit_group(struct store *s, struct pending *g)
{
	struct pending *next;
	struct api_problem prob = { NULL, "" };
	uint64_t n = 0;
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = write_group(s, g);
	if (rc) {
		db_failed(s, &prob, "commit");
		/* Each machine back exactly as the database has it. */
		for (struct pending *p = g; p; p = p->next) {
			struct vm_machine *back = reload(s, p->e);

			if (back) {
				vm_machine_free(p->e->pub.m);
				p->e->pub.m = back;
			} else {
				p->e->removed = true;
			}
		}
	}
	pthread_mutex_unlock(&s->db_lock);
	/* Counted before any is answered: /metrics never lags an answer. */
	for (struct pending *p = g; p; p = p->next)
		n++;
	if (rc == 0)
		atomic_fetch_add(&s->durable_ops, n);
	for (struct pending *p = g; p; p = next) {
		next = p->next;
		settle(s, p, rc == 0, rc == 0 ? NULL : &prob);
		enc_release(&p->rec);
		enc_release(&p->ans);
		free(p->state);
		free(p);
	}
}

/*
 * The group committer: every operation queued while the database was
 * being written goes into the next transaction, so the number of fsyncs
 * follows load, not requests.
 */
static void *committer_main(void *arg)
{
	struct store *s = arg;

	for (;;) {
		struct pending *g;

		pthread_mutex_lock(&s->q_mu);
		while ((!s->q_head || s->busy) && !s->q_stop)
			pthread_cond_wait(&s->q_cv, &s->q_mu);
		if (!s->q_head && s->q_stop) {
			pthread_mutex_unlock(&s->q_mu);
			return NULL;
		}
		g = s->q_head;
		s->q_head = NULL;
		s->q_tail = &s->q_head;
		s->busy = true;
		pthread_mutex_unlock(&s->q_mu);
		commit_group(s, g);
		pthread_mutex_lock(&s->q_mu);
		s->busy = false;
		pthread_mutex_unlock(&s->q_mu);
	}
}

static void ms_counters(void *impl, uint64_t *transactions,
			uint64_t *operations)
{
	struct store *s = impl;

	pthread_mutex_lock(&s->db_lock);
	*transactions = db_commits(s->db);
	pthread_mutex_unlock(&s->db_lock);
	*operations = atomic_load(&s->durable_ops);
}

struct hist {
	int (*fn)(void *ctx, uint64_t version, const struct vm_op *op,
		  const struct vm_op_result *res, const char *by);
	void *ctx;
	int bad;
};

static int hist_op(void *ctx, const struct db_op *o)
{
	struct hist *h = ctx;
	struct vm_op op;
	struct vm_op_result res;

	if (vm_op_decode(o->rec, o->len, &op) ||
	    vm_op_result_decode(op.type, o->result, o->result_len, &res)) {
		h->bad = 1;
		return 1;
	}
	return h->fn(h->ctx, o->version, &op, &res, o->by);
}

static int ms_history(void *impl, const char *tenant, const char *id,
		      uint64_t after, unsigned limit,
		      int (*fn)(void *ctx, uint64_t version,
				const struct vm_op *op,
				const struct vm_op_result *res, const char *by),
		      void *ctx, struct api_problem *p)
{
	struct store *s = impl;
	struct hist h = { fn, ctx, 0 };
	int n;

	pthread_mutex_lock(&s->db_lock);
	n = db_history(s->db, tenant, id, after, limit, hist_op, &h);
	pthread_mutex_unlock(&s->db_lock);
	if (n < 0 || h.bad)
		return api_fail(p, "service_unavailable",
				"the history could not be read: %.200s",
				h.bad ? "a record does not decode"
				      : db_error(s->db));
	return n;
}

static void ms_totals(void *impl, uint64_t *machines, uint64_t *processes,
		      uint64_t *frames)
{
	struct store *s = impl;

	*machines = *processes = *frames = 0;
	pthread_rwlock_rdlock(&s->lock);
	*machines = s->n;
	for (size_t i = 0; i < s->n; i++) {
		*processes += atomic_load(&s->v[i]->processes);
		*frames += atomic_load(&s->v[i]->frames);
	}
	pthread_rwlock_unlock(&s->lock);
}

/* ---- shares ---- */

/* The index of tenant's share in e, or where it would go. */
static size_t share_find(const struct entry *e, const char *tenant,
			 bool *found)
{
	size_t i = 0;

	while (i < e->nshares && strcmp(e->shares[i].tenant, tenant) < 0)
		i++;
	*found = i < e->nshares && strcmp(e->shares[i].tenant, tenant) == 0;
	return i;
}

static size_t ms_shares(void *impl, const char *owner, const char *id,
			struct api_share *out, size_t cap)
{
	struct store *s = impl;
	bool found;
	size_t i, n = 0;

	pthread_rwlock_rdlock(&s->lock);
	i = find(s, owner, id, &found);
	if (found) {
		const struct entry *e = s->v[i];

		n = e->nshares;
		if (n)
			memcpy(out, e->shares,
			       (n < cap ? n : cap) * sizeof(*out));
	}
	pthread_rwlock_unlock(&s->lock);
	return n;
}

/* Runs one write of the database in its own transaction (db locked). */
static int db_write(struct store *s, int rc)
{
	if (rc == 0 && db_commit(s->db) == 0)
		return 0;
	db_rollback(s->db);
	return -1;
}

static int ms_share_put(void *impl, const char *owner, const char *id,
			const struct api_share *sh, bool *created,
			struct api_problem *p)
{
	struct store *s = impl;
	struct db_share ds = { owner, id, sh->tenant, sh->write };
	struct entry *e;
	bool found;
	size_t i, k;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, owner, id, &found);
	if (!found) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "not_found", "no machine \"%s\"", id);
	}
	e = s->v[i];
	k = share_find(e, sh->tenant, created);
	*created = !*created;
	if (*created && e->nshares >= API_MAX_SHARES) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "too_many_shares",
				"a machine has at most %d shares; share it "
				"with \"*\" instead", API_MAX_SHARES);
	}
	pthread_mutex_lock(&s->db_lock);
	rc = db_write(s, db_begin(s->db) || db_share_put(s->db, &ds));
	pthread_mutex_unlock(&s->db_lock);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return db_failed(s, p, "share");
	}
	if (*created) {
		e->shares = realloc(e->shares,
				    (e->nshares + 1) * sizeof(*e->shares));
		if (!e->shares)
			abort();
		memmove(&e->shares[k + 1], &e->shares[k],
			(e->nshares - k) * sizeof(*e->shares));
		e->nshares++;
	}
	e->shares[k] = *sh;
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* Drops share k of e (table write-locked). */
static void share_drop(struct entry *e, size_t k)
{
	memmove(&e->shares[k], &e->shares[k + 1],
		(e->nshares - k - 1) * sizeof(*e->shares));
	e->nshares--;
}

static int ms_share_remove(void *impl, const char *owner, const char *id,
			   const char *tenant, struct api_problem *p)
{
	struct store *s = impl;
	struct entry *e;
	bool found;
	size_t i, k;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	i = find(s, owner, id, &found);
	e = found ? s->v[i] : NULL;
	k = e ? share_find(e, tenant, &found) : 0;
	if (!e || !found) {
		pthread_rwlock_unlock(&s->lock);
		return api_fail(p, "not_found",
				"machine \"%s\" is not shared with \"%s\"", id,
				tenant);
	}
	pthread_mutex_lock(&s->db_lock);
	rc = db_write(s, db_begin(s->db) ||
			      db_share_delete(s->db, owner, id, tenant));
	pthread_mutex_unlock(&s->db_lock);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return db_failed(s, p, "unshare");
	}
	share_drop(e, k);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

/* ---- tenants ---- */

void store_set_alive(struct store *s,
		     bool (*alive)(void *cls, const char *owner), void *cls)
{
	s->alive = alive;
	s->alive_cls = cls;
}

int store_db_write(struct store *s, int (*fn)(struct db *db, void *ctx),
		   void *ctx, char *why, size_t len)
{
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = db_write(s, db_begin(s->db) || fn(s->db, ctx));
	if (rc)
		snprintf(why, len, "%s", db_error(s->db));
	pthread_mutex_unlock(&s->db_lock);
	return rc;
}

int store_db_read(struct store *s, int (*fn)(struct db *db, void *ctx),
		  void *ctx)
{
	int rc;

	pthread_mutex_lock(&s->db_lock);
	rc = fn(s->db, ctx);
	pthread_mutex_unlock(&s->db_lock);
	return rc;
}

int store_remove_tenant(struct store *s, const char *tenant, char *why,
			size_t len)
{
	struct entry **gone;
	size_t first, n = 0;
	int rc;

	pthread_rwlock_wrlock(&s->lock);
	pthread_mutex_lock(&s->db_lock);
	rc = db_write(s, db_begin(s->db) || db_tenant_delete(s->db, tenant));
	if (rc)
		snprintf(why, len, "%s", db_error(s->db));
	pthread_mutex_unlock(&s->db_lock);
	if (rc) {
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	/* Its machines leave the table; its shares leave every machine. */
	first = first_of(s, tenant);
	while (first + n < s->n &&
	       strcmp(s->v[first + n]->pub.owner, tenant) == 0)
		n++;
	gone = malloc((n ? n : 1) * sizeof(*gone));
	if (!gone)
		abort();
	if (n) {
		memcpy(gone, &s->v[first], n * sizeof(*gone));
		memmove(&s->v[first], &s->v[first + n],
			(s->n - first - n) * sizeof(*s->v));
		s->n -= n;
	}
	for (size_t i = 0; i < s->n; i++) {
		bool found;
		size_t k = share_find(s->v[i], tenant, &found);

		if (found)
			share_drop(s->v[i], k);
	}
	pthread_rwlock_unlock(&s->lock);
	for (size_t i = 0; i < n; i++)
		retire(gone[i]);
	free(gone);
	return 0;
}

static const struct api_store_ops ops = {
	.create = ms_create,
	.open = ms_open,
	.close = ms_close,
	.remove = ms_remove,
	.list = ms_list,
	.commit = ms_commit,
	.history = ms_history,
	.commit_async = ms_commit_async,
	.usage = ms_usage,
	.shares = ms_shares,
	.share_put = ms_share_put,
	.share_remove = ms_share_remove,
	.counters = ms_counters,
	.totals = ms_totals,
};

struct api_store store_api(struct store *s)
{
	struct api_store st = { &ops, s };

	return st;
}

size_t store_count(struct store *s)
{
	size_t n;

	pthread_rwlock_rdlock(&s->lock);
	n = s->n;
	pthread_rwlock_unlock(&s->lock);
	return n;
}

/* ---- start and stop ---- */

/*
 * Loading at start. One thread (the caller) reads the machines and their
 * log tails from the database in (tenant, id) order and hands each
 * machine, copied out of SQLite, to a pool of workers; a worker decodes
 * the snapshot (every invariant checked) and replays the tail, checking
 * each record's version, answer and digest. Machines are independent, so
 * the replay, which is nearly all the cost, runs on every CPU. The table
 * is built in order at the end, and only if every machine loaded: a
 * failure names the first failing machine in (tenant, id) order, the
 * same whatever the timing, and leaves the table empty.
 */

/* Jobs read ahead of the workers, per worker (bounds memory). */
#define LOAD_AHEAD 4
#define LOAD_MAX_WORKERS 64

/* One record of a tail; its bytes are in the job's arena. */
struct load_rec {
	uint64_t version, digest;
	size_t rec, len;             /* offsets and lengths in the arena */
	size_t ans, ans_len;
};

/* A machine to load, then what its worker made of it. */
struct load_job {
	size_t index;                /* in (tenant, id) order */
	char *tenant, *id, *created;
	uint8_t *state;              /* the snapshot */
	size_t state_len;
	struct load_rec *recs;
	size_t nrecs, caprecs;
	struct vm_enc arena;         /* records' and answers' bytes */
	struct entry *e;             /* loaded, or NULL with why */
	char why[512];
	struct load_job *next;
};

struct loader {
	pthread_mutex_t mu;
	pthread_cond_t work;         /* a job was queued, or the end */
	pthread_cond_t room;         /* a job is done */
	struct load_job *head, **tail;
	size_t ahead;                /* queued or being loaded */
	bool end;                    /* the reader has queued its last */
	struct load_job *cur;        /* being read */
	size_t n;                    /* jobs read */
	struct entry **out;          /* out[index], cap entries */
	size_t cap;
	bool failed;                 /* a machine failed: read no further */
	size_t fail_index;           /* the first failing one */
	char fail_why[512];
};

static void job_free(struct load_job *j)
{
	free(j->tenant);
	free(j->id);
	free(j->created);
	free(j->state);
	free(j->recs);
	enc_release(&j->arena);
	free(j);
}

static char *dup_or_abort(const char *s)
{
	char *d = strdup(s ? s : "");

	if (!d)
		abort();
	return d;
}

/* Why machine j did not load: its replay of r gives something else. */
static void replay_fail(struct load_job *j, const struct load_rec *r,
			const struct vm_op *op, const char *what)
{
	snprintf(j->why, sizeof(j->why), "machine %s.%s: replaying version "
		 "%llu (%s) does not give %s: this vmlabd's model differs "
		 "from the one that wrote it", j->tenant, j->id,
		 (unsigned long long)r->version, vm_op_name(op->type), what);
}

/*
 * Replays one record on m and checks it against what was recorded: the
 * operation applies, takes the machine to the recorded version, gives
 * the recorded answer byte for byte, and leaves the recorded digest.
 */
static int replay(struct load_job *j, struct vm_machine *m,
		  const struct load_rec *r, struct vm_enc *ans)
{
	const uint8_t *bytes = j->arena.buf;
	struct vm_error err = { 0, "" };
	struct vm_op_result res;
	struct vm_op op;
	char what[sizeof(err.detail) + 64];

	if (vm_op_decode(bytes + r->rec, r->len, &op)) {
		snprintf(j->why, sizeof(j->why), "machine %s.%s: the record of "
			 "version %llu does not decode", j->tenant, j->id,
			 (unsigned long long)r->version);
		return -1;
	}
	memset(&res, 0, sizeof(res));
	if (vm_machine_apply(m, &op, &res, &err)) {
		snprintf(what, sizeof(what), "the digest it had (%016llx): %s",
			 (unsigned long long)r->digest, err.detail);
		replay_fail(j, r, &op, what);
		return -1;
	}
	if (vm_machine_version(m) != r->version) {
		snprintf(what, sizeof(what), "that version (it gives %llu)",
			 (unsigned long long)vm_machine_version(m));
		replay_fail(j, r, &op, what);
		return -1;
	}
	ans->len = 0;
	vm_op_result_encode(&op, &res, ans);
	if (ans->len != r->ans_len ||
	    memcmp(ans->buf, bytes + r->ans, r->ans_len) != 0) {
		replay_fail(j, r, &op, "the answer it had");
		return -1;
	}
	if (vm_machine_digest(m) != r->digest) {
		snprintf(what, sizeof(what), "the digest it had (%016llx)",
			 (unsigned long long)r->digest);
		replay_fail(j, r, &op, what);
		return -1;
	}
	return 0;
}

/* Decodes j's snapshot and replays its tail: j->e, or j->why. */
static void load_job_run(struct load_job *j, struct vm_enc *ans)
{
	struct vm_error err = { 0, "" };
	struct vm_machine *m;

	if (vm_state_decode(j->state, j->state_len, &m, &err)) {
		snprintf(j->why, sizeof(j->why), "machine %s.%s: its snapshot "
			 "does not decode: %s", j->tenant, j->id, err.detail);
		return;
	}
	for (size_t i = 0; i < j->nrecs; i++)
		if (replay(j, m, &j->recs[i], ans)) {
			vm_machine_free(m);
			return;
		}
	j->e = entry_new(j->tenant, j->id, j->created, m);
}

/* Settles a finished job (mu held): its entry into out, or a failure. */
static void load_job_done(struct loader *l, struct load_job *j)
{
	if (j->e) {
		l->out[j->index] = j->e;
	} else if (!l->failed || j->index < l->fail_index) {
		l->failed = true;
		l->fail_index = j->index;
		snprintf(l->fail_why, sizeof(l->fail_why), "%s", j->why);
	}
	l->ahead--;
	job_free(j);
	pthread_cond_signal(&l->room);
}

static void *load_worker(void *arg)
{
	struct loader *l = arg;
	struct vm_enc ans;

	enc_init(&ans);
	pthread_mutex_lock(&l->mu);
	for (;;) {
		struct load_job *j;
		bool skip;

		while (!l->head && !l->end)
			pthread_cond_wait(&l->work, &l->mu);
		j = l->head;
		if (!j)
			break;
		l->head = j->next;
		if (!l->head)
			l->tail = &l->head;
		/* Behind a failure the work is wasted, not wrong: skip it. */
		skip = l->failed && j->index > l->fail_index;
		pthread_mutex_unlock(&l->mu);
		if (skip)
			snprintf(j->why, sizeof(j->why), "not loaded");
		else
			load_job_run(j, &ans);
		pthread_mutex_lock(&l->mu);
		load_job_done(l, j);
	}
	pthread_mutex_unlock(&l->mu);
	enc_release(&ans);
	return NULL;
}

/* Queues the job being read, waiting while the workers are behind. */
static void load_queue(struct loader *l, size_t workers)
{
	struct load_job *j = l->cur;

	l->cur = NULL;
	pthread_mutex_lock(&l->mu);
	while (l->ahead >= LOAD_AHEAD * workers)
		pthread_cond_wait(&l->room, &l->mu);
	if (j->index >= l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->out = realloc(l->out, l->cap * sizeof(*l->out));
		if (!l->out)
			abort();
	}
	l->out[j->index] = NULL;
	l->ahead++;
	*l->tail = j;
	l->tail = &j->next;
	pthread_cond_signal(&l->work);
	pthread_mutex_unlock(&l->mu);
}

struct load_read {
	struct loader *l;
	size_t workers;
};

static int read_machine(void *ctx, const struct db_machine *dm)
{
	struct load_read *r = ctx;
	struct loader *l = r->l;
	struct load_job *j;
	bool failed;

	if (l->cur)
		load_queue(l, r->workers);
	pthread_mutex_lock(&l->mu);
	failed = l->failed;
	pthread_mutex_unlock(&l->mu);
	/* Every machine before the failure is queued already. */
	if (failed)
		return 1;
	j = calloc(1, sizeof(*j));
	if (!j)
		abort();
	j->index = l->n++;
	j->tenant = dup_or_abort(dm->tenant);
	j->id = dup_or_abort(dm->id);
	j->created = dup_or_abort(dm->created);
	j->state = malloc(dm->state_len ? dm->state_len : 1);
	if (!j->state)
		abort();
	if (dm->state_len)
		memcpy(j->state, dm->state, dm->state_len);
	j->state_len = dm->state_len;
	enc_init(&j->arena);
	l->cur = j;
	return 0;
}

static int read_op(void *ctx, const struct db_op *o)
{
	struct load_read *r = ctx;
	struct load_job *j = r->l->cur;
	struct load_rec *rec;

	if (j->nrecs == j->caprecs) {
		j->caprecs = j->caprecs ? 2 * j->caprecs : 16;
		j->recs = realloc(j->recs, j->caprecs * sizeof(*j->recs));
		if (!j->recs)
			abort();
	}
	rec = &j->recs[j->nrecs++];
	rec->version = o->version;
	rec->digest = o->digest;
	rec->rec = j->arena.len;
	rec->len = o->len;
	enc_bytes(&j->arena, o->rec, o->len);
	rec->ans = j->arena.len;
	rec->ans_len = o->result_len;
	enc_bytes(&j->arena, o->result, o->result_len);
	return 0;
}

static size_t load_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > LOAD_MAX_WORKERS ? LOAD_MAX_WORKERS : (size_t)n;
}

static int cmp_entries(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	return cmp_key(x->pub.owner, x->pub.id, y);
}

/*
 * Takes the loaded entries as the table. SQLite's ORDER BY (BINARY
 * collation) is strcmp's order, so they come sorted; sorting anyway is
 * cheap insurance for the binary search.
 */
static void load_table(struct store *s, struct entry **v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		if (cmp_entries(&v[i - 1], &v[i]) >= 0) {
			qsort(v, n, sizeof(*v), cmp_entries);
			break;
		}
	s->v = v;
	s->n = s->cap = n;
}

/* Reads and replays every machine; 0, or -1 with why filled. */
static int load_machines(struct store *s, char *why, size_t len)
{
	struct loader l;
	struct load_read r = { &l, load_workers() };
	pthread_t t[LOAD_MAX_WORKERS];
	int rc;

	memset(&l, 0, sizeof(l));
	l.tail = &l.head;
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.work, NULL);
	pthread_cond_init(&l.room, NULL);
	for (size_t i = 0; i < r.workers; i++)
		if (pthread_create(&t[i], NULL, load_worker, &l))
			abort();
	rc = db_load(s->db, read_machine, read_op, &r);
	if (l.cur && rc == 0) {
		load_queue(&l, r.workers);
	} else if (l.cur) {
		job_free(l.cur);  /* its tail was not read whole */
		l.n--;
	}
	pthread_mutex_lock(&l.mu);
	l.end = true;
	pthread_cond_broadcast(&l.work);
	pthread_mutex_unlock(&l.mu);
	for (size_t i = 0; i < r.workers; i++)
		pthread_join(t[i], NULL);
	if (l.failed)
		snprintf(why, len, "%s", l.fail_why);
	else if (rc)
		snprintf(why, len, "%s", db_error(s->db));
	if (l.failed || rc) {
		for (size_t i = 0; i < l.n; i++)
			if (l.out[i])
				entry_free(l.out[i]);
		free(l.out);
		rc = -1;
	} else {
		load_table(s, l.out, l.n);
	}
	pthread_cond_destroy(&l.room);
	pthread_cond_destroy(&l.work);
	pthread_mutex_destroy(&l.mu);
	return rc;
}

/* Shares come in (tenant, id, grantee) order: each appends. */
static int load_share(void *ctx, const struct db_share *ds)
{
	struct store *s = ctx;
	struct api_share sh;
	struct entry *e;
	bool found;
	size_t i = find(s, ds->tenant, ds->id, &found);

	if (!found)
		return 0;  /* the foreign key makes this impossible */
	e = s->v[i];
	memset(&sh, 0, sizeof(sh));
	snprintf(sh.tenant, sizeof(sh.tenant), "%s", ds->grantee);
	sh.write = ds->write;
	e->shares = realloc(e->shares, (e->nshares + 1) * sizeof(*e->shares));
	if (!e->shares)
		abort();
	e->shares[e->nshares++] = sh;
	return 0;
}

int store_load(struct store *s, char *why, size_t len)
{
	int rc;

	why[0] = '\0';
	pthread_rwlock_wrlock(&s->lock);
	rc = load_machines(s, why, len);
	if (rc == 0 && db_shares_load(s->db, load_share, s)) {
		snprintf(why, len, "%s", db_error(s->db));
		rc = -1;
	}
	s->loaded = rc == 0;
	pthread_rwlock_unlock(&s->lock);
	return rc ? -1 : 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	/* Drain the committer: every queued operation is settled. */
	pthread_mutex_lock(&s->q_mu);
	s->q_stop = true;
	pthread_cond_signal(&s->q_cv);
	pthread_mutex_unlock(&s->q_mu);
	pthread_join(s->committer, NULL);
	pthread_cond_destroy(&s->q_cv);
	pthread_mutex_destroy(&s->q_mu);
	/*
	 * A clean stop snapshots every machine changed since its last
	 * snapshot, so that an upgrade never replays old records under new
	 * code (SPEC 1.9).
	 */
	/* A store that did not load whole writes nothing: the file stays
	 * as it was for the next start to judge. */
	if (s->db && s->loaded && db_begin(s->db) == 0) {
		int rc = 0;

		for (size_t i = 0; i < s->n && rc == 0; i++) {
			struct entry *e = s->v[i];
			uint64_t v = vm_machine_version(e->pub.m);
			uint8_t *state;
			size_t len;

			if (v == e->snapshot_version)
				continue;
			vm_state_serialize(e->pub.m, &state, &len);
			rc = db_snapshot(s->db, e->pub.owner, e->pub.id, state, len,
					 v, s->keep);
			free(state);
		}
		if (rc || db_commit(s->db))
			db_rollback(s->db);
	}
	for (size_t i = 0; i < s->n; i++)
		entry_free(s->v[i]);
	free(s->v);
	db_close(s->db);
	pthread_mutex_destroy(&s->db_lock);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}
