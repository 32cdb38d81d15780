/* The router: a sink's position: rewind, resync when fenced, retention loss, the log end (position.c). */
#ifndef SLUICE_ROUTER_POSITION_H
#define SLUICE_ROUTER_POSITION_H

#include "engine.h"

void spart_check_beyond_end(struct spart *sp);
void positions_req_free(struct positions_req *req);
struct positions_req *positions_req_new(struct router *r, struct rtopic *rt, size_t sink_index, size_t n);
void spart_resync(struct spart *sp);
void spart_rewind(struct spart *sp, int64_t next);
void spart_check_lost(struct spart *sp, int64_t from);

void rpart_seek(struct rpart *rp, int64_t next, struct sink *sk);

#endif
