/* wal.c - the WAL: busy waits, disk written ahead, the checkpoint thread, RESTART. */
#define _GNU_SOURCE
#include "store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* SQLite's default busy handler sleeps in steps that grow to 100 ms, so a writer waiting
 * for a checkpoint that holds the lock for 2 ms could sleep 50: requests measured a p99 of
 * 400-600 ms behind it. This one retries every 100 us, for about a second. */
int wh_store_busy_short(void *ud, int n)
{
    (void)ud;
    if (n >= 10000) return 0;
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    return 1;
}

/* Disk written ahead (store.preallocate). A write that grows a file, or lands in blocks not
 * yet allocated, changes the inode's size or extents; on ext4 that needs a journal handle,
 * and while the checkpointer's fdatasync commits the journal the audit writer's write() to
 * the WAL waits 1-2 ms, and every request in its commit with it (seen with perf trace; with
 * both measures below the median single-event p99 went from 2.5 ms to 1.9 ms: see
 * bench/RESULTS.md). So:
 * - the WAL is filled with zeros up to `bytes` at open, so that the writer overwrites blocks
 *   that exist (zeros, not fallocate: an unwritten extent is converted in the journal when
 *   first written). SQLite reads a zero frame as the end of the log (page 0, wrong salts),
 *   and journal_size_limit (this size, at least 64 MiB) keeps the file when the WAL restarts;
 * - the database grows in steps of `bytes` (SQLITE_FCNTL_CHUNK_SIZE, set on each
 *   connection that writes it: the writer and the checkpointer), not a page at a time. */
void wh_store_chunk_size(sqlite3 *db, int64_t bytes)
{
    int sz = (int)bytes;
    if (sz > 0) sqlite3_file_control(db, "main", SQLITE_FCNTL_CHUNK_SIZE, &sz);
}

void wh_store_wal_preallocate(const wh_store *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s-wal", s->path);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return;
    }
    static const char zeros[1 << 16];
    int64_t off = st.st_size;
    while (off < s->o.preallocate) {
        int64_t left = s->o.preallocate - off;
        size_t n = left < (int64_t)sizeof(zeros) ? (size_t)left : sizeof(zeros);
        ssize_t w = pwrite(fd, zeros, n, off);
        if (w <= 0) {
            fprintf(stderr, "whiply: audit store: cannot write ahead %s: %s (commits may stall)\n",
                    path, w < 0 ? strerror(errno) : "no progress");
            break;
        }
        off += w;
    }
    if (off > st.st_size) fdatasync(fd);
    close(fd);
}

/* The RESTART checkpoint that bounds the WAL under a saturating load (see CKPT_HARD). */
void wh_store_wal_restart(wh_store *s)
{
    int log = 0, done = 0;
    sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_RESTART, &log, &done);
}

/* checkpoint once the WAL holds 16 MiB (the hook counts frames, one a page) */
#define CKPT_BYTES (16 << 20)
#define CKPT_PAGES(s) (CKPT_BYTES / (s)->page_size)
/* PASSIVE checkpoints never block the writer, but while it commits back to back they never
 * catch up with the WAL's end either, and the WAL only restarts from its beginning once a
 * checkpoint has caught up. So: PASSIVE again while each pass gets further (the tail left
 * is short), on the checkpoint thread; and when the WAL has grown past CKPT_HARD anyway
 * (a load that keeps both cores busy), a RESTART, run by the writer itself between two
 * commits once their requests are answered: it copies the rest at the writer's priority
 * (the checkpoint thread's nice 10 would let the WAL grow by GBs) and the writer waits for
 * it, as it would wait for a RESTART from any connection. journal_size_limit then truncates
 * the file. */
#define CKPT_HARD(s) (8 * CKPT_PAGES(s))

int wh_store_wal_hook(void *ud, sqlite3 *db, const char *name, int pages)
{
    wh_store *s = ud;
    pthread_mutex_lock(&s->lock);
    s->wal_pages = pages;
    if (pages >= CKPT_PAGES(s)) pthread_cond_signal(&s->ckpt_wake);
    if (pages >= CKPT_HARD(s)) s->restart_due = true;
    pthread_mutex_unlock(&s->lock);
    return SQLITE_OK;
}

#define CKPT_NICE 10

void *wh_store_ckpt_main(void *arg)
{
    wh_store *s = arg;
    sqlite3 *db = NULL;
    /* Checkpoints run in the machine's spare time: at nice 10 this thread no longer takes a
     * core from the audit writer or the HTTP threads while they have work, which took the
     * single-event p99 from 1.61-1.97 ms to 1.25-1.75 ms in interleaved runs (bench/RESULTS.md).
     * On Linux a TID's nice is that thread's alone. Under a load that keeps both cores busy
     * this thread falls behind; the writer's RESTART past CKPT_HARD bounds the WAL then. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CKPT_NICE) != 0)
        fprintf(stderr, "whiply: audit store: checkpoints at normal priority: %s\n",
                strerror(errno));
    /* A connection that has not yet read the database checkpoints nothing (SQLite 3.40
     * returns OK and does no work): read once first. */
    if (sqlite3_open_v2(s->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(db, "SELECT count(*) FROM meta", NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "whiply: audit store: no checkpoint connection: the WAL will grow\n");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_handler(db, wh_store_busy_short, NULL);
    wh_store_chunk_size(db, s->o.preallocate);
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        if (s->wal_pages < CKPT_PAGES(s)) {
            struct timespec ts = wh_deadline_ms(1000);
            pthread_cond_timedwait(&s->ckpt_wake, &s->lock, &ts);
            if (s->wal_pages < CKPT_PAGES(s)) continue;
        }
        s->wal_pages = 0;
        pthread_mutex_unlock(&s->lock);
        int log = 0, done = 0, prev_left = INT32_MAX;
        for (int pass = 0; pass < 16; pass++) {
            if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) !=
                SQLITE_OK)
                break;
            int left = log - done;
            if (left <= 0 || left >= prev_left) break;
            prev_left = left;
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    sqlite3_close(db);
    return NULL;
}
