/*
 * xlock.h - a read/write lock that any thread may release.
 *
 * A machine stays write-locked from the moment an operation is applied
 * until its record is durable (SPEC part 3), and the group committer that
 * makes it durable is another thread than the one that applied it; POSIX
 * rwlocks must be unlocked by their owner, so machines use this instead.
 * Writers are preferred: a waiting writer holds back new readers.
 */
#ifndef SERVER_XLOCK_H
#define SERVER_XLOCK_H

#include <pthread.h>
#include <stdbool.h>

struct xlock {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned readers;
	unsigned writers_waiting;
	bool writer;
};

void xlock_init(struct xlock *l);
void xlock_destroy(struct xlock *l);
void xlock_read(struct xlock *l);
void xlock_write(struct xlock *l);
/* Releases a read or write hold, from any thread. */
void xlock_unlock(struct xlock *l);

#endif
