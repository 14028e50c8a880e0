/*
 * memstore.h - machines held in memory: the store the API uses until
 * persistence exists.
 *
 * A sorted table of (tenant, id) -> entry under one read/write lock, each
 * entry with its own read/write lock and a reference count, so requests on
 * different machines never wait for each other, reads of one machine run
 * in parallel, and a delete waits for nobody (the last reference frees).
 */
#ifndef SERVER_MEMSTORE_H
#define SERVER_MEMSTORE_H

#include "api/store.h"

struct memstore;

/* max_machines 0: no limit. */
struct memstore *memstore_create(size_t max_machines);
void memstore_free(struct memstore *s);

/* The store interface over it (api/store.h). */
struct api_store memstore_api(struct memstore *s);

#endif
