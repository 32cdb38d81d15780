/* A thread for blocking work (file writes and fsync): jobs run on it in submission order and
 * their completion runs back on the event loop, so the loop never waits on a disk. */
#ifndef SLUICE_WORKER_H
#define SLUICE_WORKER_H

#include <stddef.h>
#include <event2/event.h>

struct worker;
typedef void (*worker_fn)(void *arg);

/** @brief Start a worker thread whose completions run on @p eb. */
struct worker *worker_new(struct event_base *eb, char *err, size_t errlen);

/** @brief Run @p run(arg) on the thread, then @p done(arg) on the loop. 0, or -1 when out of memory. */
int worker_submit(struct worker *w, worker_fn run, worker_fn done, void *arg);

/** @brief Finish queued jobs, run no further completions, join the thread and free. */
void worker_free(struct worker *w);

#endif
