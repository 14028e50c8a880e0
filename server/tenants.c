/* tenants.c - the tenant directory; see tenants.h. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "db/db.h"
#include "tenants.h"

#define TOKEN_PREFIX "vmlab_"
#define TOKEN_BYTES 32
#define ADMIN_TOKEN_MIN 32

struct tenant {
	struct api_tenant_info info;
	uint8_t hash[DB_HASH_BYTES];
	pthread_mutex_t mu;          /* the bucket's */
	double tokens;
	uint64_t last_ns;
};

/* The hash index: a token hash's first 8 bytes, sorted. */
struct slot {
	uint64_t key;
	struct tenant *t;
};

struct tenants {
	struct store *store;
	pthread_rwlock_t lock;       /* v, n, index */
	struct tenant **v;           /* sorted by name */
	size_t n, cap;
	struct slot *index;          /* n slots */
	bool admin;                  /* auth on: admin_hash is set */
	uint8_t admin_hash[DB_HASH_BYTES];
	pthread_mutex_t admin_mu;    /* one change of the directory at a time */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hash_token(const char *token, uint8_t out[DB_HASH_BYTES])
{
	crypto_generichash(out, DB_HASH_BYTES, (const unsigned char *)token,
			   strlen(token), NULL, 0);
}

static uint64_t key_of(const uint8_t hash[DB_HASH_BYTES])
{
	uint64_t k;

	memcpy(&k, hash, sizeof(k));
	return k;
}

/* A fresh token: 256 bits from the OS, base64url, with a prefix that
 * lets secret scanners recognise it. */
static void new_token(char token[API_TOKEN_MAX + 1])
{
	unsigned char raw[TOKEN_BYTES];
	char b64[sodium_base64_ENCODED_LEN(TOKEN_BYTES,
		  sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	snprintf(token, API_TOKEN_MAX + 1, "%s%s", TOKEN_PREFIX, b64);
	sodium_memzero(b64, sizeof(b64));
}

static void iso_now(char buf[32])
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int cmp_slot(const void *a, const void *b)
{
	uint64_t x = ((const struct slot *)a)->key;
	uint64_t y = ((const struct slot *)b)->key;

	return x < y ? -1 : x > y;
}

/* Rebuilds the hash index (directory write-locked). */
static void reindex(struct tenants *t)
{
	free(t->index);
	t->index = malloc((t->n ? t->n : 1) * sizeof(*t->index));
	if (!t->index)
		abort();
	for (size_t i = 0; i < t->n; i++) {
		t->index[i].key = key_of(t->v[i]->hash);
		t->index[i].t = t->v[i];
	}
	qsort(t->index, t->n, sizeof(*t->index), cmp_slot);
}

/* The tenant whose token hashes to h (directory locked), or NULL. */
static struct tenant *by_hash(const struct tenants *t,
			      const uint8_t h[DB_HASH_BYTES])
{
	uint64_t k = key_of(h);
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (t->index[mid].key < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < t->n && t->index[lo].key == k; lo++)
		if (sodium_memcmp(t->index[lo].t->hash, h, DB_HASH_BYTES) == 0)
			return t->index[lo].t;
	return NULL;
}

/* The index of name in v, or where it would go. */
static size_t by_name(const struct tenants *t, const char *name, bool *found)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, t->v[mid]->info.name);

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

static struct tenant *tenant_new(const struct api_tenant_info *info,
				 const uint8_t hash[DB_HASH_BYTES])
{
	struct tenant *x = calloc(1, sizeof(*x));

	if (!x)
		abort();
	x->info = *info;
	memcpy(x->hash, hash, DB_HASH_BYTES);
	pthread_mutex_init(&x->mu, NULL);
	x->tokens = (double)info->quota.rate;
	x->last_ns = now_ns();
	return x;
}

static void tenant_free(struct tenant *x)
{
	pthread_mutex_destroy(&x->mu);
	free(x);
}

/* Puts x at i of v (directory write-locked). */
static void insert_at(struct tenants *t, size_t i, struct tenant *x)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->v = realloc(t->v, t->cap * sizeof(*t->v));
		if (!t->v)
			abort();
	}
	memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(*t->v));
	t->v[i] = x;
	t->n++;
	reindex(t);
}

/* ---- the directory interface ---- */

/*
 * Takes one request from x's bucket: `rate` tokens a second, at most one
 * second's worth saved up. 0, or the whole seconds until one is there.
 */
static uint32_t take(struct tenant *x)
{
	double rate = (double)x->info.quota.rate;
	uint64_t now = now_ns();
	uint32_t wait = 0;

	pthread_mutex_lock(&x->mu);
	x->tokens += (double)(now - x->last_ns) * 1e-9 * rate;
	if (x->tokens > rate)
		x->tokens = rate;
	x->last_ns = now;
	if (x->tokens >= 1.0)
		x->tokens -= 1.0;
	else
		wait = (uint32_t)ceil((1.0 - x->tokens) / rate);
	pthread_mutex_unlock(&x->mu);
	return wait ? wait : 0;
}

static enum api_auth td_authenticate(void *impl, const char *token,
				     struct api_caller *out,
				     uint32_t *retry_after)
{
	struct tenants *t = impl;
	uint8_t h[DB_HASH_BYTES];
	struct tenant *x;
	enum api_auth rc = API_AUTH_UNKNOWN;

	hash_token(token, h);
	if (t->admin && sodium_memcmp(h, t->admin_hash, DB_HASH_BYTES) == 0) {
		memset(out, 0, sizeof(*out));
		snprintf(out->tenant, sizeof(out->tenant), "%s",
			 API_ADMIN_TENANT);
		out->role = API_ROLE_ADMIN;
		return API_AUTH_OK;
	}
	pthread_rwlock_rdlock(&t->lock);
	x = by_hash(t, h);
	if (x) {
		memset(out, 0, sizeof(*out));
		snprintf(out->tenant, sizeof(out->tenant), "%s", x->info.name);
		out->role = x->info.role;
		out->limited = true;
		out->quota = x->info.quota;
		*retry_after = take(x);
		rc = *retry_after ? API_AUTH_LIMITED : API_AUTH_OK;
	}
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

struct row {
	const struct api_tenant_info *info;
	const uint8_t *hash;
};

static int insert_row(struct db *db, void *ctx)
{
	const struct row *r = ctx;
	struct db_tenant dt = {
		.name = r->info->name,
		.role = api_role_name(r->info->role),
		.token_hash = r->hash,
		.quota = { r->info->quota.machines, r->info->quota.memory,
			   r->info->quota.processes, r->info->quota.rate },
		.created = r->info->created,
	};

	return db_tenant_insert(db, &dt);
}

static int unavailable(struct api_problem *p, const char *what,
		       const char *why)
{
	return api_fail(p, "service_unavailable",
			"the database could not be written (%s: %.200s); "
			"nothing was changed, try again", what, why);
}

static int td_create(void *impl, struct api_tenant_info *info,
		     char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	struct tenants *t = impl;
	struct api_tenant_info copy = *info;
	uint8_t h[DB_HASH_BYTES];
	struct row r = { &copy, h };
	char why[DB_ERROR_MAX];
	bool found;
	size_t i;

	pthread_mutex_lock(&t->admin_mu);
	pthread_rwlock_rdlock(&t->lock);
	by_name(t, info->name, &found);
	i = t->n;
	pthread_rwlock_unlock(&t->lock);
	if (found || i >= TENANTS_MAX) {
		pthread_mutex_unlock(&t->admin_mu);
		return found ? api_fail(p, "already_exists",
					"a tenant \"%s\" exists already; POST "
					"/v1/tenants/%s/tokens gives it a new "
					"token", info->name, info->name)
			     : api_fail(p, "too_many_tenants",
					"this server holds at most %d tenants",
					TENANTS_MAX);
	}
	iso_now(info->created);
	copy = *info;
	new_token(token);
	hash_token(token, h);
	if (store_db_write(t->store, insert_row, &r, why, sizeof(why))) {
		pthread_mutex_unlock(&t->admin_mu);
		sodium_memzero(token, API_TOKEN_MAX + 1);
		return unavailable(p, "create tenant", why);
	}
	pthread_rwlock_wrlock(&t->lock);
	i = by_name(t, info->name, &found);
	insert_at(t, i, tenant_new(&copy, h));
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&t->admin_mu);
	return 0;
}

static size_t td_list(void *impl, const char *after, size_t limit,
		      struct api_tenant_info *out, bool *more)
{
	struct tenants *t = impl;
	bool found;
	size_t i, n = 0;

	pthread_rwlock_rdlock(&t->lock);
	i = by_name(t, after, &found);
	if (found)
		i++;
	for (; i < t->n; i++) {
		if (n == limit) {
			*more = true;
			break;
		}
		out[n++] = t->v[i]->info;
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

static int td_get(void *impl, const char *name, struct api_tenant_info *out)
{
	struct tenants *t = impl;
	bool found;
	size_t i;

	pthread_rwlock_rdlock(&t->lock);
	i = by_name(t, name, &found);
	if (found)
		*out = t->v[i]->info;
	pthread_rwlock_unlock(&t->lock);
	return found ? 0 : -1;
}

static int td_remove(void *impl, const char *name, struct api_problem *p)
{
	struct tenants *t = impl;
	struct tenant *x;
	char why[DB_ERROR_MAX];
	bool found;
	size_t i;

	pthread_mutex_lock(&t->admin_mu);
	pthread_rwlock_wrlock(&t->lock);
	i = by_name(t, name, &found);
	if (!found) {
		pthread_rwlock_unlock(&t->lock);
		pthread_mutex_unlock(&t->admin_mu);
		return api_fail(p, "not_found", "no tenant \"%s\"", name);
	}
	/* Out of the directory first: its token stops working, and no
	 * new machine can be made for it while its machines go. */
	x = t->v[i];
	memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof(*t->v));
	t->n--;
	reindex(t);
	pthread_rwlock_unlock(&t->lock);
	if (store_remove_tenant(t->store, name, why, sizeof(why))) {
		pthread_rwlock_wrlock(&t->lock);
		insert_at(t, by_name(t, name, &found), x);
		pthread_rwlock_unlock(&t->lock);
		pthread_mutex_unlock(&t->admin_mu);
		return unavailable(p, "remove tenant", why);
	}
	pthread_mutex_unlock(&t->admin_mu);
	tenant_free(x);
	return 0;
}

struct rekey {
	const char *name;
	const uint8_t *hash;
};

static int set_token_row(struct db *db, void *ctx)
{
	const struct rekey *k = ctx;

	return db_tenant_set_token(db, k->name, k->hash);
}

static int td_rotate(void *impl, const char *name,
		     char token[API_TOKEN_MAX + 1], struct api_problem *p)
{
	struct tenants *t = impl;
	uint8_t h[DB_HASH_BYTES];
	struct rekey k = { name, h };
	char why[DB_ERROR_MAX];
	bool found;
	size_t i;

	pthread_mutex_lock(&t->admin_mu);
	pthread_rwlock_rdlock(&t->lock);
	by_name(t, name, &found);
	pthread_rwlock_unlock(&t->lock);
	if (!found) {
		pthread_mutex_unlock(&t->admin_mu);
		return api_fail(p, "not_found", "no tenant \"%s\"", name);
	}
	new_token(token);
	hash_token(token, h);
	if (store_db_write(t->store, set_token_row, &k, why, sizeof(why))) {
		pthread_mutex_unlock(&t->admin_mu);
		sodium_memzero(token, API_TOKEN_MAX + 1);
		return unavailable(p, "rotate token", why);
	}
	/* The old token stops working before the new one is answered. */
	pthread_rwlock_wrlock(&t->lock);
	i = by_name(t, name, &found);
	memcpy(t->v[i]->hash, h, DB_HASH_BYTES);
	reindex(t);
	pthread_rwlock_unlock(&t->lock);
	pthread_mutex_unlock(&t->admin_mu);
	return 0;
}

static const struct api_tenants_ops ops = {
	.authenticate = td_authenticate,
	.create = td_create,
	.list = td_list,
	.get = td_get,
	.remove = td_remove,
	.rotate = td_rotate,
};

struct api_tenants tenants_api(struct tenants *t)
{
	struct api_tenants d = { &ops, t };

	return d;
}

/* Whether owner may get machines: the admin's namespaces, or a tenant. */
static bool alive(void *cls, const char *owner)
{
	struct tenants *t = cls;
	bool found;

	if (strcmp(owner, API_ADMIN_TENANT) == 0 ||
	    strcmp(owner, API_LOCAL_TENANT) == 0)
		return true;
	pthread_rwlock_rdlock(&t->lock);
	by_name(t, owner, &found);
	pthread_rwlock_unlock(&t->lock);
	return found;
}

struct tenants *tenants_create(struct store *store, const char *admin_token)
{
	struct tenants *t;

	if (sodium_init() < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		abort();
	t->store = store;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->admin_mu, NULL);
	if (admin_token) {
		t->admin = true;
		hash_token(admin_token, t->admin_hash);
	}
	reindex(t);
	store_set_alive(store, alive, t);
	return t;
}

struct loading {
	struct tenants *t;
	char *why;
	size_t len;
};

static int load_row(void *ctx, const struct db_tenant *dt)
{
	struct loading *l = ctx;
	struct api_tenant_info info;

	memset(&info, 0, sizeof(info));
	if (!api_valid_tenant(dt->name) ||
	    (strcmp(dt->role, "tenant") != 0 &&
	     strcmp(dt->role, "grader") != 0)) {
		snprintf(l->why, l->len, "tenant \"%.40s\": not a valid row",
			 dt->name);
		return -1;
	}
	snprintf(info.name, sizeof(info.name), "%s", dt->name);
	info.role = dt->role[0] == 'g' ? API_ROLE_GRADER : API_ROLE_TENANT;
	info.quota.machines = dt->quota.machines;
	info.quota.memory = dt->quota.memory;
	info.quota.processes = dt->quota.processes;
	info.quota.rate = dt->quota.rate ? dt->quota.rate : 1;
	snprintf(info.created, sizeof(info.created), "%s", dt->created);
	/* Rows come in name order: each goes last. */
	if (l->t->n == l->t->cap) {
		l->t->cap = l->t->cap ? l->t->cap * 2 : 16;
		l->t->v = realloc(l->t->v, l->t->cap * sizeof(*l->t->v));
		if (!l->t->v)
			abort();
	}
	l->t->v[l->t->n++] = tenant_new(&info, dt->token_hash);
	return 0;
}

static int load_all(struct db *db, void *ctx)
{
	return db_tenants_load(db, load_row, ctx);
}

int tenants_load(struct tenants *t, char *why, size_t len)
{
	struct loading l = { t, why, len };
	int rc;

	why[0] = '\0';
	pthread_rwlock_wrlock(&t->lock);
	rc = store_db_read(t->store, load_all, &l);
	reindex(t);
	pthread_rwlock_unlock(&t->lock);
	if (rc && !why[0])
		snprintf(why, len, "the tenants could not be read");
	return rc ? -1 : 0;
}

void tenants_free(struct tenants *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		tenant_free(t->v[i]);
	free(t->v);
	free(t->index);
	sodium_memzero(t->admin_hash, sizeof(t->admin_hash));
	pthread_mutex_destroy(&t->admin_mu);
	pthread_rwlock_destroy(&t->lock);
	free(t);
}

size_t tenants_count(void *impl)
{
	struct tenants *t = impl;
	size_t n;

	pthread_rwlock_rdlock(&t->lock);
	n = t->n;
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* ---- the admin's token file ---- */

static int read_admin(int fd, const char *path, char token[API_TOKEN_MAX + 1],
		      char *why, size_t len)
{
	char buf[API_TOKEN_MAX + 3];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s: not a regular file", path);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(why, len, "%s: readable by others (mode %03o); "
			 "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			 buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	buf[n] = '\0';
	if (n < ADMIN_TOKEN_MIN || n > API_TOKEN_MAX) {
		snprintf(why, len, "%s: the token must be %d to %d "
			 "characters", path, ADMIN_TOKEN_MIN, API_TOKEN_MAX);
		return -1;
	}
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] <= ' ' || buf[i] > '~') {
			snprintf(why, len, "%s: the token must be printable "
				 "ASCII without spaces", path);
			return -1;
		}
	memcpy(token, buf, (size_t)n + 1);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

int tenants_admin_token(const char *path, char token[API_TOKEN_MAX + 1],
			char *why, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char line[API_TOKEN_MAX + 2];
	size_t n;
	int rc;

	if (fd >= 0) {
		rc = read_admin(fd, path, token, why, len);
		close(fd);
		return rc;
	}
	if (errno != ENOENT) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (sodium_init() < 0) {
		snprintf(why, len, "libsodium could not start");
		return -1;
	}
	new_token(token);
	n = (size_t)snprintf(line, sizeof(line), "%s\n", token);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	rc = fd < 0 || write(fd, line, n) != (ssize_t)n || fsync(fd);
	if (rc)
		snprintf(why, len, "%s: %s", path, strerror(errno));
	if (fd >= 0 && close(fd) && !rc) {
		snprintf(why, len, "%s: %s", path, strerror(errno));
		rc = 1;
	}
	sodium_memzero(line, sizeof(line));
	if (rc)
		unlink(path);
	return rc ? -1 : 0;
}
