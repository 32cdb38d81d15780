/* The file sink: NDJSON, one object per record with topic, partition, offset, key, value
 * (embedded as JSON when it parses, else as a string; null for a tombstone) and timestamp.
 *
 * It is transactional: next to the data file, PATH.positions records the data file's length
 * and each partition's next offset after every batch (written to a temporary file, fsynced,
 * renamed). At start, bytes beyond the recorded length (a batch written before a crash, whose
 * positions were not recorded) are cut off, so data and positions always agree and a record
 * is in the file once, whatever kill -9 interrupts. Writes and fsync run on a worker thread:
 * the event loop never waits on the disk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sink.h"
#include "lib/worker.h"

struct file_sink {
    struct sink super;
    char *path;
    int fsync_each;
    int fd;                       /* valid when opened */
    int opened;
    char *positions_path;
    char *positions_tmp;
    struct worker *worker;
    /* Touched only on the worker thread once started (and in start, before it). */
    json_t *positions;            /* {"topic": {"partition": next}} */
    off_t length;
};

enum file_job_kind { FILE_JOB_WRITE, FILE_JOB_LOAD };

struct file_job {
    enum file_job_kind kind;
    struct file_sink *fs;
    struct sink_batch *batch;
    struct sink_positions *req;
    char *buf;
    size_t len;
    enum sink_result result;
    char error[256];
    off_t at;                     /* where the batch was appended; -1: not appended */
};

static const struct cfg_opt file_opts[] = {
    { .name = "path", .type = CFG_T_STR, .offset = offsetof(struct file_sink, path), .flags = CFG_REQUIRED,
      .help = "File to append records to, one JSON object per line; PATH.positions is kept beside it" },
    CFG_BOOL("fsync", "true", offsetof(struct file_sink, fsync_each),
             "fsync the data and the positions after every batch (off: faster, a host crash may lose the tail)"),
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

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
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

/* On the worker thread: check the position, append, fsync, record the new positions. */
static void file_job_run(void *arg)
{
    struct file_job *job = arg;
    struct file_sink *fs = job->fs;
    struct sink_batch *b = job->batch;
    int64_t stored;
    off_t before = fs->length;

    if (job->kind == FILE_JOB_LOAD) {
        for (size_t i = 0; i < job->req->count; i++)
            job->req->next[i] = positions_get(fs->positions, job->req->topic, job->req->partitions[i]);
        job->result = SINK_OK;
        return;
    }
    stored = positions_get(fs->positions, b->topic, b->partition);
    if (stored != b->prev_next) {
        if (stored == b->next) {
            job->result = SINK_OK;   /* this very batch was applied before a retry */
            return;
        }
        snprintf(job->error, sizeof job->error, "stored position is %" PRId64 ", expected %" PRId64,
                 stored, b->prev_next);
        job->result = SINK_FENCED;
        return;
    }
    if (write_all(fs->fd, job->buf, job->len) != 0 || (fs->fsync_each && fdatasync(fs->fd) != 0)) {
        snprintf(job->error, sizeof job->error, "write %s: %s", fs->path, strerror(errno));
        goto undo;
    }
    job->at = fs->length;
    fs->length += (off_t)job->len;
    if (positions_set(fs->positions, b->topic, b->partition, b->next) != 0) {
        snprintf(job->error, sizeof job->error, "out of memory");
        goto undo;
    }
    if (positions_save(fs, job->error, sizeof job->error) != 0) {
        positions_set(fs->positions, b->topic, b->partition, stored);
        goto undo;
    }
    job->result = SINK_OK;
    return;
undo:
    /* Leave the file as the recorded positions describe it, so the retry appends once. */
    fs->length = before;
    if (ftruncate(fs->fd, before) != 0)
        snprintf(job->error + strlen(job->error), sizeof job->error - strlen(job->error),
                 "; truncate: %s", strerror(errno));
    job->result = SINK_RETRY;
}

/* Back on the loop. */
static void file_job_done(void *arg)
{
    struct file_job *job = arg;

    if (job->kind == FILE_JOB_LOAD) {
        sink_positions_done(job->req, 1, NULL);
    } else {
        if (job->result == SINK_OK && job->at >= 0)
            sink_batch_note(job->batch, "appended %zu bytes at byte %lld of %s; positions saved",
                            job->len, (long long)job->at, job->fs->path);
        else if (job->result == SINK_OK)
            sink_batch_note(job->batch, "already in %s (applied before a retry)", job->fs->path);
        sink_batch_done(job->batch, job->result, job->error[0] ? job->error : NULL);
    }
    free(job->buf);
    free(job);
}

static int file_prepare(struct sink *sk, struct sink_record *rec, char *err, size_t errlen)
{
    json_t *line = json_object(), *key = json_null(), *value = json_null();
    char *text;

    (void)sk;
    if (rec->key && !(key = json_stringn(rec->key, rec->key_len))) {
        snprintf(err, errlen, "key is not valid UTF-8");
        goto fail;
    }
    if (rec->value) {
        value = json_loadb(rec->value, rec->value_len, JSON_DECODE_ANY, NULL);
        if (!value && !(value = json_stringn(rec->value, rec->value_len))) {
            snprintf(err, errlen, "value is neither JSON nor valid UTF-8 text");
            goto fail;
        }
    }
    if (!line || json_object_set_new(line, "topic", json_string(rec->topic)) ||
        json_object_set_new(line, "partition", json_integer(rec->partition)) ||
        json_object_set_new(line, "offset", json_integer(rec->offset)) ||
        json_object_set_new(line, "key", key) || json_object_set_new(line, "value", value) ||
        json_object_set_new(line, "timestamp", rec->timestamp_ms >= 0 ? json_integer(rec->timestamp_ms) : json_null())) {
        key = value = NULL;   /* set_new took them, even on failure */
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    text = json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(line);
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rec->prepared_len = strlen(text) + 1;
    text[rec->prepared_len - 1] = '\n';   /* the terminating NUL becomes the newline */
    rec->prepared = text;
    return 0;
fail:
    json_decref(key);
    json_decref(value);
    json_decref(line);
    return -1;
}

static void file_release(struct sink *sk, struct sink_record *rec)
{
    (void)sk;
    free(rec->prepared);
    rec->prepared = NULL;
}

static void file_write(struct sink *sk, struct sink_batch *b)
{
    struct file_sink *fs = (struct file_sink *)sk;
    struct file_job *job = calloc(1, sizeof *job);
    size_t off = 0;

    if (!job || !(job->buf = malloc(b->bytes ? b->bytes : 1))) {
        free(job);
        sink_batch_done(b, SINK_RETRY, "out of memory");
        return;
    }
    for (size_t i = 0; i < b->count; i++) {
        memcpy(job->buf + off, b->records[i].prepared, b->records[i].prepared_len);
        off += b->records[i].prepared_len;
    }
    job->kind = FILE_JOB_WRITE;
    job->at = -1;
    job->fs = fs;
    job->batch = b;
    job->len = off;
    if (worker_submit(fs->worker, file_job_run, file_job_done, job) != 0) {
        free(job->buf);
        free(job);
        sink_batch_done(b, SINK_RETRY, "out of memory");
    }
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
    if (worker_submit(fs->worker, file_job_run, file_job_done, job) != 0) {
        free(job);
        sink_positions_done(req, 0, "out of memory");
    }
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
    return 0;
}

static void file_stop(struct sink *sk)
{
    struct file_sink *fs = (struct file_sink *)sk;
    worker_free(fs->worker);   /* finishes the write under way; no completion runs after */
    fs->worker = NULL;
}

static void file_destroy(struct sink *sk)
{
    struct file_sink *fs = (struct file_sink *)sk;
    worker_free(fs->worker);
    fs->worker = NULL;
    if (fs->opened)
        close(fs->fd);
    fs->opened = 0;
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
