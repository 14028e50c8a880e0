/* faultvfs.c - an SQLite VFS that fails on purpose; see faultvfs.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "faultvfs.h"

/* The bytes one write overwrote, to be put back at a power loss. */
struct undo {
	sqlite3_int64 off;
	size_t len;
	unsigned char *data;
};

/* What we know of one open database file (main, WAL or journal). */
struct ffile {
	char *path;
	bool dirty;                  /* written since the last sync */
	sqlite3_int64 synced_size;   /* its size at the last sync (if dirty) */
	struct undo *log;
	size_t n, cap;
	struct ffile *prev, *next;   /* the open files, under mu */
};

/* The file SQLite holds: ours, then the real VFS's right after it. */
struct fault_file {
	sqlite3_file base;
	struct ffile *f;             /* NULL: not a database file */
	sqlite3_file *real;
};

static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *real;
	pthread_mutex_t mu;
	struct ffile *files;
	/* The spec. */
	bool readonly;
	uint64_t full_after;         /* 0: never */
	uint64_t ioerr_write, ioerr_sync;  /* 0: never; else the Nth call */
	unsigned sync_delay_ms;
	/* Counters, under mu. */
	uint64_t writes, syncs, bytes;
	bool full;
} fv = { .mu = PTHREAD_MUTEX_INITIALIZER };

static sqlite3_file *real_of(sqlite3_file *p)
{
	return ((struct fault_file *)p)->real;
}

static void undo_clear(struct ffile *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->log[i].data);
	f->n = 0;
	f->dirty = false;
}

/* Remembers the file's size the first time it changes after a sync. */
static int mark_dirty(struct fault_file *ff)
{
	sqlite3_int64 size;
	int rc;

	if (ff->f->dirty)
		return SQLITE_OK;
	rc = ff->real->pMethods->xFileSize(ff->real, &size);
	if (rc != SQLITE_OK)
		return rc;
	ff->f->synced_size = size;
	ff->f->dirty = true;
	return SQLITE_OK;
}

/* Saves the bytes [off, off + len) that exist now (up to the file's end). */
static int save(struct fault_file *ff, sqlite3_int64 off, size_t len)
{
	struct ffile *f = ff->f;
	sqlite3_int64 size;
	struct undo *u;
	int rc;

	rc = ff->real->pMethods->xFileSize(ff->real, &size);
	if (rc != SQLITE_OK)
		return rc;
	if (off >= size)
		return SQLITE_OK; /* beyond the end: the truncate undoes it */
	if ((sqlite3_int64)len > size - off)
		len = (size_t)(size - off);
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 64;
		f->log = realloc(f->log, f->cap * sizeof(*f->log));
		if (!f->log)
			abort();
	}
	u = &f->log[f->n];
	u->off = off;
	u->len = len;
	u->data = malloc(len);
	if (!u->data)
		abort();
	rc = ff->real->pMethods->xRead(ff->real, u->data, (int)len, off);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
		free(u->data);
		return rc;
	}
	f->n++;
	return SQLITE_OK;
}

/* ---- the file methods ---- */

static int f_close(sqlite3_file *p)
{
	struct fault_file *ff = (struct fault_file *)p;
	int rc = ff->real->pMethods->xClose(ff->real);

	if (ff->f) {
		pthread_mutex_lock(&fv.mu);
		if (ff->f->prev)
			ff->f->prev->next = ff->f->next;
		else
			fv.files = ff->f->next;
		if (ff->f->next)
			ff->f->next->prev = ff->f->prev;
		pthread_mutex_unlock(&fv.mu);
		undo_clear(ff->f);
		free(ff->f->log);
		free(ff->f->path);
		free(ff->f);
		ff->f = NULL;
	}
	return rc;
}

static int f_read(sqlite3_file *p, void *buf, int amt, sqlite3_int64 off)
{
	return real_of(p)->pMethods->xRead(real_of(p), buf, amt, off);
}

static int f_write(sqlite3_file *p, const void *buf, int amt,
		   sqlite3_int64 off)
{
	struct fault_file *ff = (struct fault_file *)p;
	int rc;

	if (!ff->f)
		return ff->real->pMethods->xWrite(ff->real, buf, amt, off);
	pthread_mutex_lock(&fv.mu);
	fv.writes++;
	if (fv.readonly) {
		rc = SQLITE_READONLY;
	} else if (fv.ioerr_write && fv.writes == fv.ioerr_write) {
		rc = SQLITE_IOERR_WRITE;
	} else if (fv.full || (fv.full_after &&
			       fv.bytes + (uint64_t)amt > fv.full_after)) {
		fv.full = true;
		rc = SQLITE_FULL;
	} else {
		rc = mark_dirty(ff);
		if (rc == SQLITE_OK)
			rc = save(ff, off, (size_t)amt);
		if (rc == SQLITE_OK)
			rc = ff->real->pMethods->xWrite(ff->real, buf, amt, off);
		if (rc == SQLITE_OK)
			fv.bytes += (uint64_t)amt;
	}
	pthread_mutex_unlock(&fv.mu);
	return rc;
}

static int f_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct fault_file *ff = (struct fault_file *)p;
	sqlite3_int64 now;
	int rc;

	if (!ff->f)
		return ff->real->pMethods->xTruncate(ff->real, size);
	pthread_mutex_lock(&fv.mu);
	if (fv.readonly) {
		rc = SQLITE_READONLY;
	} else {
		rc = mark_dirty(ff);
		if (rc == SQLITE_OK)
			rc = ff->real->pMethods->xFileSize(ff->real, &now);
		/* What is cut off comes back at a power loss. */
		if (rc == SQLITE_OK && now > size)
			rc = save(ff, size, (size_t)(now - size));
		if (rc == SQLITE_OK)
			rc = ff->real->pMethods->xTruncate(ff->real, size);
	}
	pthread_mutex_unlock(&fv.mu);
	return rc;
}

static int f_sync(sqlite3_file *p, int flags)
{
	struct fault_file *ff = (struct fault_file *)p;
	int rc;

	if (!ff->f)
		return ff->real->pMethods->xSync(ff->real, flags);
	/* The slow disk sleeps outside the mutex: a power loss meanwhile
	 * finds the file's writes not yet synced. */
	if (fv.sync_delay_ms)
		nanosleep(&(struct timespec){ fv.sync_delay_ms / 1000,
					      (long)(fv.sync_delay_ms % 1000) *
						      1000000L },
			  NULL);
	pthread_mutex_lock(&fv.mu);
	fv.syncs++;
	if (fv.ioerr_sync && fv.syncs == fv.ioerr_sync) {
		rc = SQLITE_IOERR_FSYNC; /* nothing made durable */
	} else {
		rc = ff->real->pMethods->xSync(ff->real, flags);
		if (rc == SQLITE_OK)
			undo_clear(ff->f);
	}
	pthread_mutex_unlock(&fv.mu);
	return rc;
}

static int f_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	return real_of(p)->pMethods->xFileSize(real_of(p), size);
}

static int f_lock(sqlite3_file *p, int level)
{
	return real_of(p)->pMethods->xLock(real_of(p), level);
}

static int f_unlock(sqlite3_file *p, int level)
{
	return real_of(p)->pMethods->xUnlock(real_of(p), level);
}

static int f_check_reserved(sqlite3_file *p, int *out)
{
	return real_of(p)->pMethods->xCheckReservedLock(real_of(p), out);
}

static int f_file_control(sqlite3_file *p, int op, void *arg)
{
	return real_of(p)->pMethods->xFileControl(real_of(p), op, arg);
}

static int f_sector_size(sqlite3_file *p)
{
	return real_of(p)->pMethods->xSectorSize(real_of(p));
}

static int f_device_characteristics(sqlite3_file *p)
{
	return real_of(p)->pMethods->xDeviceCharacteristics(real_of(p));
}

static int f_shm_map(sqlite3_file *p, int pg, int pgsz, int extend,
		     void volatile **out)
{
	return real_of(p)->pMethods->xShmMap(real_of(p), pg, pgsz, extend, out);
}

static int f_shm_lock(sqlite3_file *p, int off, int n, int flags)
{
	return real_of(p)->pMethods->xShmLock(real_of(p), off, n, flags);
}

static void f_shm_barrier(sqlite3_file *p)
{
	real_of(p)->pMethods->xShmBarrier(real_of(p));
}

static int f_shm_unmap(sqlite3_file *p, int del)
{
	return real_of(p)->pMethods->xShmUnmap(real_of(p), del);
}

/*
 * Version 2: with the shared-memory methods (WAL), without xFetch, so
 * that SQLite never reads through a memory map behind our back.
 */
static const sqlite3_io_methods f_methods = {
	.iVersion = 2,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_file_size,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check_reserved,
	.xFileControl = f_file_control,
	.xSectorSize = f_sector_size,
	.xDeviceCharacteristics = f_device_characteristics,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
};

/* ---- the VFS methods ---- */

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p,
		  int flags, int *out_flags)
{
	struct fault_file *ff = (struct fault_file *)p;
	int rc;

	(void)vfs;
	memset(ff, 0, sizeof(*ff));
	ff->real = (sqlite3_file *)(ff + 1);
	rc = fv.real->xOpen(fv.real, name, ff->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		/* SQLite calls no method of a file whose open failed. */
		ff->base.pMethods = NULL;
		return rc;
	}
	ff->base.pMethods = &f_methods;
	if (name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL |
			      SQLITE_OPEN_MAIN_JOURNAL))) {
		ff->f = calloc(1, sizeof(*ff->f));
		if (!ff->f || !(ff->f->path = strdup(name)))
			abort();
		pthread_mutex_lock(&fv.mu);
		ff->f->next = fv.files;
		if (fv.files)
			fv.files->prev = ff->f;
		fv.files = ff->f;
		pthread_mutex_unlock(&fv.mu);
	}
	return SQLITE_OK;
}

static int v_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void)vfs;
	return fv.real->xDelete(fv.real, name, sync_dir);
}

static int v_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
	(void)vfs;
	return fv.real->xAccess(fv.real, name, flags, out);
}

static int v_full_pathname(sqlite3_vfs *vfs, const char *name, int n,
			   char *out)
{
	(void)vfs;
	return fv.real->xFullPathname(fv.real, name, n, out);
}

static void *v_dl_open(sqlite3_vfs *vfs, const char *name)
{
	(void)vfs;
	return fv.real->xDlOpen(fv.real, name);
}

static void v_dl_error(sqlite3_vfs *vfs, int n, char *msg)
{
	(void)vfs;
	fv.real->xDlError(fv.real, n, msg);
}

static void (*v_dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	(void)vfs;
	return fv.real->xDlSym(fv.real, h, sym);
}

static void v_dl_close(sqlite3_vfs *vfs, void *h)
{
	(void)vfs;
	fv.real->xDlClose(fv.real, h);
}

static int v_randomness(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xRandomness(fv.real, n, out);
}

static int v_sleep(sqlite3_vfs *vfs, int us)
{
	(void)vfs;
	return fv.real->xSleep(fv.real, us);
}

static int v_current_time(sqlite3_vfs *vfs, double *out)
{
	(void)vfs;
	return fv.real->xCurrentTime(fv.real, out);
}

static int v_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
	(void)vfs;
	return fv.real->xGetLastError ? fv.real->xGetLastError(fv.real, n, out)
				      : 0;
}

static int v_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void)vfs;
	return fv.real->xCurrentTimeInt64(fv.real, out);
}

/* One "key" or "key=number" of the spec; -1 when unknown or malformed. */
static int parse_item(const char *item, size_t len)
{
	static const struct {
		const char *key;
		uint64_t *v;
	} nums[] = {
		{ "full_after", &fv.full_after },
		{ "ioerr_write", &fv.ioerr_write },
		{ "ioerr_sync", &fv.ioerr_sync },
	};
	char buf[64], *eq, *end;
	unsigned long long v;

	if (len == 0)
		return 0;
	if (len >= sizeof(buf))
		return -1;
	memcpy(buf, item, len);
	buf[len] = '\0';
	if (strcmp(buf, "readonly") == 0) {
		fv.readonly = true;
		return 0;
	}
	if (strcmp(buf, "powerloss") == 0)
		return 0;
	eq = strchr(buf, '=');
	if (!eq || eq[1] < '0' || eq[1] > '9')
		return -1;
	*eq = '\0';
	errno = 0;
	v = strtoull(eq + 1, &end, 10);
	if (errno || *end || v == 0)
		return -1;
	if (strcmp(buf, "sync_delay_ms") == 0) {
		if (v > 10000)
			return -1;
		fv.sync_delay_ms = (unsigned)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (strcmp(buf, nums[i].key) == 0) {
			*nums[i].v = v;
			return 0;
		}
	return -1;
}

int faultvfs_register(const char *spec)
{
	const char *p = spec;

	if (fv.real)
		return -1; /* once */
	while (p && *p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (parse_item(p, len))
			return -1;
		p = comma ? comma + 1 : NULL;
	}
	if (sqlite3_initialize() != SQLITE_OK)
		return -1;
	fv.real = sqlite3_vfs_find(NULL);
	if (!fv.real)
		return -1;
	fv.vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct fault_file) + fv.real->szOsFile,
		.mxPathname = fv.real->mxPathname,
		.zName = FAULTVFS_NAME,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_full_pathname,
		.xDlOpen = v_dl_open,
		.xDlError = v_dl_error,
		.xDlSym = v_dl_sym,
		.xDlClose = v_dl_close,
		.xRandomness = v_randomness,
		.xSleep = v_sleep,
		.xCurrentTime = v_current_time,
		.xGetLastError = v_get_last_error,
		.xCurrentTimeInt64 = v_current_time_int64,
	};
	return sqlite3_vfs_register(&fv.vfs, 0) == SQLITE_OK ? 0 : -1;
}

uint64_t faultvfs_syncs(void)
{
	uint64_t n;

	pthread_mutex_lock(&fv.mu);
	n = fv.syncs;
	pthread_mutex_unlock(&fv.mu);
	return n;
}

uint64_t faultvfs_writes(void)
{
	uint64_t n;

	pthread_mutex_lock(&fv.mu);
	n = fv.writes;
	pthread_mutex_unlock(&fv.mu);
	return n;
}

_Noreturn void faultvfs_power_loss(void)
{
	unsigned long long undone = 0;   /* bytes put back or cut off */

	/* Held to the end: no write or sync slips in after the rollback. */
	pthread_mutex_lock(&fv.mu);
	for (struct ffile *f = fv.files; f; f = f->next) {
		int fd;

		struct stat st;

		if (!f->dirty)
			continue;
		fd = open(f->path, O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "faultvfs: %s: %s\n", f->path,
				strerror(errno));
			_exit(3);
		}
		if (fstat(fd, &st) == 0 && st.st_size > f->synced_size)
			undone += (unsigned long long)(st.st_size -
						       f->synced_size);
		for (size_t i = f->n; i-- > 0;) {
			const struct undo *u = &f->log[i];

			undone += u->len;
			if (pwrite(fd, u->data, u->len, (off_t)u->off) !=
			    (ssize_t)u->len) {
				fprintf(stderr, "faultvfs: %s: undo: %s\n",
					f->path, strerror(errno));
				_exit(3);
			}
		}
		if (ftruncate(fd, (off_t)f->synced_size)) {
			fprintf(stderr, "faultvfs: %s: truncate: %s\n", f->path,
				strerror(errno));
			_exit(3);
		}
		/* No close(): it would drop SQLite's POSIX locks, and the
		 * process ends now anyway. */
	}
	fprintf(stderr, "faultvfs: power loss after %llu syncs: %llu unsynced "
		"bytes undone\n", (unsigned long long)fv.syncs, undone);
	_exit(137);
}
