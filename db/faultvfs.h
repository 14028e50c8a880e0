/*
 * faultvfs.h - an SQLite VFS that fails on purpose, for the tests.
 *
 * "vmlab-fault" sits over the default VFS and passes everything through,
 * except that writes to the database files (the main database, its WAL and
 * its rollback journal) can be made to fail, and that every such write is
 * remembered until the file is synced, so that a power loss can be
 * simulated: the files go back to what their last xSync made durable.
 *
 * The spec is a comma-separated list (VMLAB_FAULT in the test daemon):
 *   readonly         every write and truncate fails (SQLITE_READONLY)
 *   full_after=BYTES once BYTES bytes have been written to the database
 *                    files since registration, a write that would go
 *                    beyond fails with SQLITE_FULL, and so does every
 *                    write after it (a full disk stays full)
 *   ioerr_write=N    the Nth xWrite fails with SQLITE_IOERR_WRITE (once)
 *   ioerr_sync=N     the Nth xSync fails with SQLITE_IOERR_FSYNC (once;
 *                    nothing is synced, the undo log is kept)
 *   sync_delay_ms=MS each xSync first sleeps MS ms (a slow disk; a power
 *                    loss meanwhile finds the writes it covers unsynced)
 *   powerloss        nothing more: the undo log is always kept
 * The empty spec injects nothing. Counts start at registration.
 *
 * The undo log: before each write, the bytes it overwrites (and, for the
 * first write after a sync, the file's size) are saved per file; xSync
 * drops the file's log. faultvfs_power_loss() applies each open file's
 * log newest first with plain POSIX I/O, truncates it to its synced size
 * and _exits without any cleanup. The -shm file (the WAL index, mapped in
 * memory) is not part of durability and is left as it is: SQLite rebuilds
 * the index from the WAL when it opens the database again.
 *
 * Thread-safe: one mutex orders every write, truncate and sync with the
 * power loss, so a write is either wholly undone or was never made.
 */
#ifndef DB_FAULTVFS_H
#define DB_FAULTVFS_H

#include <stdint.h>

#define FAULTVFS_NAME "vmlab-fault"

/*
 * Registers "vmlab-fault" (not as the default VFS) configured by spec.
 * 0, or -1 for a spec it does not understand or an SQLite error. Call
 * once, before the database is opened.
 */
int faultvfs_register(const char *spec);

/* xSync calls on the database files since registration. */
uint64_t faultvfs_syncs(void);

/* xWrite calls on the database files since registration. */
uint64_t faultvfs_writes(void);

/*
 * Puts every open database file back to its state at its last xSync,
 * then _exit(137): what a power loss leaves on disk. Call from a normal
 * thread (it takes the VFS's mutex), never from a signal handler.
 */
_Noreturn void faultvfs_power_loss(void);

#endif
