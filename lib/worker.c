#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "worker.h"

struct worker_job {
    worker_fn run, done;
    void *arg;
    struct worker_job *next;
};

struct job_queue {
    struct worker_job *head, *tail;
};

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct job_queue todo;        /* guarded by lock */
    struct job_queue finished;    /* guarded by lock */
    int stopping;
    int wake_fds[2];              /* the thread writes a byte per finished job; the loop reads */
    struct event *wake_ev;
};

static void queue_push(struct job_queue *q, struct worker_job *job)
{
    job->next = NULL;
    if (q->tail)
        q->tail->next = job;
    else
        q->head = job;
    q->tail = job;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        struct worker_job *job = w->todo.head;
        if (!job) {
            if (w->stopping)
                break;
            pthread_cond_wait(&w->wake, &w->lock);
            continue;
        }
        w->todo.head = job->next;
        if (!w->todo.head)
            w->todo.tail = NULL;
        pthread_mutex_unlock(&w->lock);
        job->run(job->arg);
        pthread_mutex_lock(&w->lock);
        queue_push(&w->finished, job);
        /* A full pipe already has a wake-up pending: nothing is lost when write fails. */
        if (write(w->wake_fds[1], "j", 1) < 0 && errno != EAGAIN)
            perror("worker: wake");
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void on_jobs_finished(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    struct worker_job *job;
    char drain[256];

    (void)what;
    while (read(fd, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&w->lock);
    job = w->finished.head;
    w->finished.head = w->finished.tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (job) {
        struct worker_job *next = job->next;
        job->done(job->arg);
        free(job);
        job = next;
    }
}

struct worker *worker_new(struct event_base *eb, char *err, size_t errlen)
{
    struct worker *w = calloc(1, sizeof *w);

    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->wake_fds[0] = w->wake_fds[1] = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    if (pipe2(w->wake_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "worker: pipe: %s", strerror(errno));
        goto fail;
    }
    w->wake_ev = event_new(eb, w->wake_fds[0], EV_READ | EV_PERSIST, on_jobs_finished, w);
    if (!w->wake_ev || event_add(w->wake_ev, NULL) != 0) {
        snprintf(err, errlen, "worker: cannot watch its pipe");
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        snprintf(err, errlen, "worker: cannot start a thread");
        goto fail;
    }
    return w;
fail:
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->wake_fds[0] >= 0) {
        close(w->wake_fds[0]);
        close(w->wake_fds[1]);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
    return NULL;
}

int worker_submit(struct worker *w, worker_fn run, worker_fn done, void *arg)
{
    struct worker_job *job = malloc(sizeof *job);

    if (!job)
        return -1;
    job->run = run;
    job->done = done;
    job->arg = arg;
    pthread_mutex_lock(&w->lock);
    queue_push(&w->todo, job);
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

void worker_free(struct worker *w)
{
    struct worker_job *job;

    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    /* Completions that never ran: the owner is going away, so only the memory is freed. */
    for (job = w->finished.head; job;) {
        struct worker_job *next = job->next;
        free(job);
        job = next;
    }
    event_free(w->wake_ev);
    close(w->wake_fds[0]);
    close(w->wake_fds[1]);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    free(w);
}
