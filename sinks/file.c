/* The file sink: NDJSON, one object per record with topic, partition, offset, key, value
 * (embedded as JSON when it parses, else as a string; null for a tombstone) and timestamp. The
 * line of a record is made once for all the file sinks it goes to (file_line.c).
 *
 * It is transactional: next to the data file, PATH.positions records the data file's length
 * and each partition's next offset after every write (written to a temporary file, fsynced,
 * renamed). At start, bytes beyond the recorded length (batches written before a crash, whose
 * positions were not recorded) are cut off, so data and positions always agree and a record
 * is in the file once, whatever kill -9 interrupts. Writes and fsync run on a worker thread:
 * the event loop never waits on the disk. The batches handed over while the worker writes are
 * written next as one group: one writev of their lines (read in place, not copied), one fsync,
 * one positions file for all of them (with 64 partitions a sink has up to 64 batches in
 * flight), each batch with its own compare-and-set and verdict, none acknowledged before the
 * positions file that records it is in place. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "file_line.h"
#include "sink.h"
#include "lib/worker.h"

struct file_job;

struct file_sink {
    struct sink super;
    char *path;
    int fsync_each;
    int fd;                       /* valid when opened */
    int opened;
    int counted;                  /* counted in file_line_users */
    char *positions_path;
    char *positions_tmp;
    struct worker *worker;
    /* On the loop: the group that batches join while the worker writes the one before, and
     * the jobs handed to the worker, oldest first (freed by file_stop if never completed). */
    struct file_job *pending;
    struct file_job *submitted, *submitted_tail;
    /* Touched only on the worker thread once started (and in start, before it). */
    json_t *positions;            /* {"topic": {"partition": next}} */
    off_t length;
};

enum file_job_kind { FILE_JOB_WRITE, FILE_JOB_LOAD };

/* One batch of a group. */
struct file_item {
    struct sink_batch *batch;
    size_t len;                   /* the bytes of its lines */
    enum sink_result result;
    int applied;                  /* its position was moved (undone if the group fails) */
    int64_t stored;               /* the position before it */
    off_t at;                     /* where it was appended; -1: not appended */
    char error[256];
};

/* A write job is a group: every batch handed over while the worker was busy with the group
 * before, written with one write, one fsync and one positions file (group commit). Each batch
 * keeps its own compare-and-set and its own verdict. */
struct file_job {
    enum file_job_kind kind;
    struct file_sink *fs;
    struct file_job *next;        /* in fs->submitted */
    struct sink_positions *req;   /* FILE_JOB_LOAD */
    struct file_item *items;      /* FILE_JOB_WRITE */
    size_t count, cap;
};

static const struct cfg_opt file_opts[] = {
    { .name = "path", .type = CFG_T_STR, .offset = offsetof(struct file_sink, path), .flags = CFG_REQUIRED,
      .help = "File to append records to, one JSON object per line; PATH.positions is kept beside it" },
    CFG_BOOL("fsync", "true", offsetof(struct file_sink, fsync_each),
             "fsync the data and the positions after every write (off: faster, a host crash may lose the tail)"),
    CFG_END
};

static int64_t positions_get(json_t *positions, const char *topic, int32_t partition)
{
    char key[16];
    json_t *t = json_object_get(positions, topic), *v;
    snprintf(key, sizeof key, "%" PRId32, partition);
    v = t ? json_object_get(t, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static int positions_set(json_t *positions, const char *topic, int32_t partition, int64_t next)
{
    char key[16];
    json_t *t = json_object_get(positions, topic);
    snprintf(key, sizeof key, "%" PRId32, partition);
    if (!t) {
        if (json_object_set_new(positions, topic, json_object()) != 0)
            return -1;
        t = json_object_get(positions, topic);
    }
    return json_object_set_new(t, key, json_integer(next));
}

/* Writes @p iov[0..n) whole (it is advanced over what went); 0, or -1 with errno. */
static int writev_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    struct iovec one = { (void *)buf, len };
    return writev_all(fd, &one, 1);
}

/* Records length and positions: temporary file, fsync, rename, fsync of the directory. */
static int positions_save(struct file_sink *fs, char *err, size_t errlen)
{
    json_t *doc = json_pack("{s:I, s:O}", "length", (json_int_t)fs->length, "positions", fs->positions);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    int fd = -1, rc = -1;

    json_decref(doc);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fd = open(fs->positions_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, text, strlen(text)) != 0 || write_all(fd, "\n", 1) != 0 ||
        (fs->fsync_each && fdatasync(fd) != 0)) {
        snprintf(err, errlen, "%s: %s", fs->positions_tmp, strerror(errno));
        goto out;
    }
    if (rename(fs->positions_tmp, fs->positions_path) != 0) {
        snprintf(err, errlen, "rename to %s: %s", fs->positions_path, strerror(errno));
        goto out;
    }
    if (fs->fsync_each) {
        char *copy = strdup(fs->positions_path);
        int dfd = copy ? open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(copy);
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

/* On the worker thread: a group's batches, each with its compare-and-set against the position
 * the batches before it left; the applied ones appended in one go, then fsync and positions. */
static void file_group_run(struct file_job *job)
{
    struct file_sink *fs = job->fs;
    off_t before = fs->length;
    /* The lines are read where they are: the records (and their prepared text, which nobody
     * changes) belong to the batches, which stay with the router until their verdicts. */
    struct iovec iov[256];
    int niov = 0;
    size_t pending = 0, applied = 0;
    char error[256] = "";

    for (size_t i = 0; i < job->count; i++) {
        struct file_item *it = &job->items[i];
        struct sink_batch *b = it->batch;

        it->stored = positions_get(fs->positions, b->topic, b->partition);
        if (it->stored != b->prev_next) {
            if (it->stored == b->next) {
                it->result = SINK_OK;   /* this very batch was applied before a retry */
                continue;
            }
            snprintf(it->error, sizeof it->error, "stored position is %" PRId64 ", expected %" PRId64,
                     it->stored, b->prev_next);
            it->result = SINK_FENCED;
            continue;
        }
        if (positions_set(fs->positions, b->topic, b->partition, b->next) != 0) {
            snprintf(error, sizeof error, "out of memory");
            goto undo;
        }
        it->applied = 1;
        applied++;
        it->at = fs->length + (off_t)pending;
        for (size_t r = 0; r < b->count; r++) {
            if (niov == (int)(sizeof iov / sizeof iov[0])) {
                if (writev_all(fs->fd, iov, niov) != 0)
                    goto write_failed;
                fs->length += (off_t)pending;
                pending = 0;
                niov = 0;
            }
            iov[niov].iov_base = b->records[r].prepared;
            iov[niov++].iov_len = b->records[r].prepared_len;
            pending += b->records[r].prepared_len;
        }
    }
    if (niov > 0) {
        if (writev_all(fs->fd, iov, niov) != 0)
            goto write_failed;
        fs->length += (off_t)pending;
    }
    if (!applied)
        return;
    if (fs->fsync_each && fdatasync(fs->fd) != 0)
        goto write_failed;
    if (positions_save(fs, error, sizeof error) != 0)
        goto undo;
    for (size_t i = 0; i < job->count; i++)
        if (job->items[i].applied)
            job->items[i].result = SINK_OK;
    return;
write_failed:
    snprintf(error, sizeof error, "write %s: %s", fs->path, strerror(errno));
undo:
    /* Leave the file and the positions as the positions file describes them, so that the
     * retries append once. */
    for (size_t i = job->count; i-- > 0;) {
        struct file_item *it = &job->items[i];
        if (it->applied)
            positions_set(fs->positions, it->batch->topic, it->batch->partition, it->stored);
        it->applied = 0;
        it->at = -1;
        if (it->result == SINK_RETRY)
            snprintf(it->error, sizeof it->error, "%s", error);
    }
    fs->length = before;
    if (ftruncate(fs->fd, before) != 0)
        for (size_t i = 0; i < job->count; i++)
            if (job->items[i].result == SINK_RETRY)
                snprintf(job->items[i].error, sizeof job->items[i].error, "%.200s; truncate: %s", error,
                         strerror(errno));
}

static void file_job_run(void *arg)
{
    struct file_job *job = arg;
    struct file_sink *fs = job->fs;

    if (job->kind == FILE_JOB_LOAD) {
        for (size_t i = 0; i < job->req->count; i++)
            job->req->next[i] = positions_get(fs->positions, job->req->topic, job->req->partitions[i]);
        return;
    }
    file_group_run(job);
}

static void file_job_free(struct file_job *job)
{
    if (!job)
        return;
    free(job->items);
    free(job);
}

static void file_submit(struct file_sink *fs, struct file_job *job);

/* Back on the loop: the verdicts, then the group that gathered meanwhile goes. */
static void file_job_done(void *arg)
{
    struct file_job *job = arg;
    struct file_sink *fs = job->fs;

    fs->submitted = job->next;
    if (!fs->submitted)
        fs->submitted_tail = NULL;
    if (job->kind == FILE_JOB_LOAD)
        sink_positions_done(job->req, 1, NULL);
    for (size_t i = 0; i < job->count; i++) {
        struct file_item *it = &job->items[i];
        if (it->result == SINK_OK && it->at >= 0)
            sink_batch_note(it->batch, "appended %zu bytes at byte %lld of %s; positions saved%s", it->len,
                            (long long)it->at, fs->path, job->count > 1 ? " (with the other batches of its group)" : "");
        else if (it->result == SINK_OK)
            sink_batch_note(it->batch, "already in %s (applied before a retry)", fs->path);
        sink_batch_done(it->batch, it->result, it->error[0] ? it->error : NULL);
    }
    file_job_free(job);
    if (!fs->submitted && fs->pending) {
        job = fs->pending;
        fs->pending = NULL;
        file_submit(fs, job);
    }
}

/* Hands @p job to the worker (it runs after every job handed before); on no memory, its
 * batches get SINK_RETRY and a load fails. */
static void file_submit(struct file_sink *fs, struct file_job *job)
{
    if (worker_submit(fs->worker, file_job_run, file_job_done, job) != 0) {
        if (job->kind == FILE_JOB_LOAD)
            sink_positions_done(job->req, 0, "out of memory");
        for (size_t i = 0; i < job->count; i++)
            sink_batch_done(job->items[i].batch, SINK_RETRY, "out of memory");
        file_job_free(job);
        return;
    }
    job->next = NULL;
    if (fs->submitted_tail)
        fs->submitted_tail->next = job;
    else
        fs->submitted = job;
    fs->submitted_tail = job;
}

static int file_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    (void)sk;
    return file_line_prepare(rec, err, errlen);
}

static void file_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    file_line_release(rec);
}

/* Adds the batch's lines to the group that gathers; it goes to the worker at once when the
 * worker is idle, else when the group before it is done. */
static void file_write(struct sink *sk, struct sink_batch *b)
{
    struct file_sink *fs = (struct file_sink *)sk;
    struct file_job *job = fs->pending;
    struct file_item *it;

    if (!job && !(job = fs->pending = calloc(1, sizeof *job)))
        goto oom;
    job->kind = FILE_JOB_WRITE;
    job->fs = fs;
    if (job->count == job->cap) {
        size_t cap = job->cap ? job->cap * 2 : 8;
        struct file_item *items = realloc(job->items, cap * sizeof *items);
        if (!items)
            goto oom;
        job->items = items;
        job->cap = cap;
    }
    it = &job->items[job->count++];
    memset(it, 0, sizeof *it);
    it->batch = b;
    it->at = -1;
    it->result = SINK_RETRY;      /* until the group says otherwise */
    it->len = b->bytes;
    if (!fs->submitted) {
        fs->pending = NULL;
        file_submit(fs, job);
    }
    return;
oom:
    sink_batch_done(b, SINK_RETRY, "out of memory");
}

static void file_load_positions(struct sink *sk, struct sink_positions *req)
{
    struct file_sink *fs = (struct file_sink *)sk;
    struct file_job *job = calloc(1, sizeof *job);

    if (!job) {
        sink_positions_done(req, 0, "out of memory");
        return;
    }
    job->kind = FILE_JOB_LOAD;
    job->fs = fs;
    job->req = req;
    /* Reads after every batch handed over before it, as the batches' verdicts came first. */
    if (fs->pending) {
        struct file_job *group = fs->pending;
        fs->pending = NULL;
        file_submit(fs, group);
    }
    file_submit(fs, job);
}

/* Reads PATH.positions and cuts the data file back to the length it records. */
static int file_recover(struct file_sink *fs, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *doc, *positions;
    json_int_t length;
    struct stat st;

    if (fstat(fs->fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", fs->path, strerror(errno));
        return -1;
    }
    doc = json_load_file(fs->positions_path, 0, &jerr);
    if (!doc) {
        if (access(fs->positions_path, F_OK) == 0) {
            snprintf(err, errlen, "%s: unreadable (%s); move it away to start over", fs->positions_path, jerr.text);
            return -1;
        }
        fs->positions = json_object();
        fs->length = st.st_size;
        if (st.st_size > 0)
            sink_log(&fs->super, LOG_WARN, "%s has %lld bytes but no positions file: appending after them",
                     fs->path, (long long)st.st_size);
        return fs->positions ? 0 : -1;
    }
    if (json_unpack_ex(doc, &jerr, JSON_STRICT, "{s:I, s:o}", "length", &length, "positions", &positions) != 0 ||
        !json_is_object(positions)) {
        snprintf(err, errlen, "%s: not a positions file (%s)", fs->positions_path, jerr.text);
        json_decref(doc);
        return -1;
    }
    fs->positions = json_incref(positions);
    json_decref(doc);
    fs->length = (off_t)length;
    if (st.st_size > fs->length) {
        sink_log(&fs->super, LOG_WARN, "%s: cutting %lld bytes written after the last recorded batch (an interrupted write)",
                 fs->path, (long long)(st.st_size - fs->length));
        if (ftruncate(fs->fd, fs->length) != 0) {
            snprintf(err, errlen, "truncate %s: %s", fs->path, strerror(errno));
            return -1;
        }
    } else if (st.st_size < fs->length) {
        sink_log(&fs->super, LOG_ERROR, "%s is shorter (%lld bytes) than its positions say (%lld): it was cut or replaced; "
                 "records already counted as written are not in it", fs->path, (long long)st.st_size, (long long)fs->length);
        fs->length = st.st_size;
    }
    return 0;
}

static int file_start(struct sink *sk, char *err, size_t errlen)
{
    struct file_sink *fs = (struct file_sink *)sk;

    if (asprintf(&fs->positions_path, "%s.positions", fs->path) < 0 ||
        asprintf(&fs->positions_tmp, "%s.positions.tmp", fs->path) < 0) {
        fs->positions_path = fs->positions_tmp = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    fs->fd = open(fs->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fs->fd < 0) {
        snprintf(err, errlen, "open %s: %s", fs->path, strerror(errno));
        return -1;
    }
    fs->opened = 1;
    if (file_recover(fs, err, errlen) != 0)
        return -1;
    if (!(fs->worker = worker_new(sk->eb, err, errlen)))
        return -1;
    fs->counted = 1;
    file_line_users(1);
    return 0;
}

/* Stops the worker (the job under way finishes; no completion runs after) and frees the jobs
 * whose completion will not come. */
static void file_stop(struct sink *sk)
{
    struct file_sink *fs = (struct file_sink *)sk;

    worker_free(fs->worker);
    fs->worker = NULL;
    while (fs->submitted) {
        struct file_job *next = fs->submitted->next;
        file_job_free(fs->submitted);
        fs->submitted = next;
    }
    fs->submitted_tail = NULL;
    file_job_free(fs->pending);
    fs->pending = NULL;
}

static void file_destroy(struct sink *sk)
{
    struct file_sink *fs = (struct file_sink *)sk;
    file_stop(sk);
    if (fs->opened)
        close(fs->fd);
    fs->opened = 0;
    if (fs->counted)
        file_line_users(-1);
    fs->counted = 0;
    json_decref(fs->positions);
    free(fs->positions_path);
    free(fs->positions_tmp);
}

const struct sink_ops sink_file_ops = {
    .type = "file",
    .size = sizeof(struct file_sink),
    .opts = file_opts,
    .flags = SINK_F_TRANSACTIONAL | SINK_F_POSITION_BATCHES | SINK_F_PREPARED_TEXT,
    .help = "Appends records to a local NDJSON file, exactly once (the embedded default)",
    .start = file_start,
    .prepare = file_prepare,
    .release = file_release,
    .write = file_write,
    .load_positions = file_load_positions,
    .stop = file_stop,
    .destroy = file_destroy,
};
