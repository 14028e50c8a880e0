/*
 * tenants.h - the tenant directory of a shared vmlabd (SPEC part 3).
 *
 * Tenants live in memory for every request and in the store's database
 * for restarts. A token is 256 random bits from the OS (libsodium's
 * randombytes), shown once as "vmlab_" + 43 base64url characters and
 * kept only as its BLAKE2b-256 hash (crypto_generichash); a presented
 * token is hashed and compared with sodium_memcmp. Each tenant has a
 * token bucket of `rate` requests per second (burst: one second's
 * worth), kept in memory only.
 */
#ifndef SERVER_TENANTS_H
#define SERVER_TENANTS_H

#include <stdbool.h>
#include <stddef.h>

#include "api/tenants.h"
#include "store.h"

#define TENANTS_MAX 10000

struct tenants;

/*
 * The directory over store (which keeps the rows and drops a removed
 * tenant's machines). admin_token: the admin's token with auth on, or
 * NULL. Calls sodium_init; NULL when libsodium cannot start.
 */
struct tenants *tenants_create(struct store *store, const char *admin_token);

/* Loads the tenants of the database; -1 with why filled. */
int tenants_load(struct tenants *t, char *why, size_t len);

void tenants_free(struct tenants *t);

/* The directory interface over it (api/tenants.h). */
struct api_tenants tenants_api(struct tenants *t);

/* Tenants held (a void * for metrics_tenants). */
size_t tenants_count(void *t);

/*
 * The admin's token from path: read when the file exists (it must be
 * private to its owner, mode 0600 or stricter, and hold one token of 32
 * to API_TOKEN_MAX printable characters), else generated and written
 * there with mode 0600. -1 with why filled.
 */
int tenants_admin_token(const char *path, char token[API_TOKEN_MAX + 1],
			char *why, size_t len);

#endif
