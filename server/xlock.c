/* xlock.c - a read/write lock any thread may release; see xlock.h. */
#include "xlock.h"

void xlock_init(struct xlock *l)
{
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	l->readers = 0;
	l->writers_waiting = 0;
	l->writer = false;
}

void xlock_destroy(struct xlock *l)
{
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
}

void xlock_read(struct xlock *l)
{
	pthread_mutex_lock(&l->mu);
	while (l->writer || l->writers_waiting)
		pthread_cond_wait(&l->cv, &l->mu);
	l->readers++;
	pthread_mutex_unlock(&l->mu);
}

void xlock_write(struct xlock *l)
{
	pthread_mutex_lock(&l->mu);
	l->writers_waiting++;
	while (l->writer || l->readers)
		pthread_cond_wait(&l->cv, &l->mu);
	l->writers_waiting--;
	l->writer = true;
	pthread_mutex_unlock(&l->mu);
}

void xlock_unlock(struct xlock *l)
{
	pthread_mutex_lock(&l->mu);
	if (l->writer)
		l->writer = false;
	else if (l->readers)
		l->readers--;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
}
