/* The router: the life of a batch: cut, write, verdict, retry, dead letters, dry run (batch.c). */
#ifndef SLUICE_ROUTER_BATCH_H
#define SLUICE_ROUTER_BATCH_H

#include "engine.h"

void spart_dead_letter(struct spart *sp, const struct sink_record *e, const char *reason);
void batch_write(struct router_batch *b);
void spart_flush(struct spart *sp);
void spart_flush_position(struct spart *sp);
void on_linger(evutil_socket_t fd, short what, void *arg);
void spart_schedule(struct spart *sp);
void batch_orphan_unlink(struct router_batch *b);

#endif
