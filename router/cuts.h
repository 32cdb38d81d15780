/* The router: stable batch cuts and their commit metadata, "sluice1 <sink>=<first>-<last>;..." (cuts.c). */
#ifndef SLUICE_ROUTER_CUTS_H
#define SLUICE_ROUTER_CUTS_H

#include "engine.h"

size_t rpart_cut_metadata(struct rpart *rp, const struct router_batch *extra, char *buf);
int cuts_names_sink(const rd_kafka_topic_partition_t *tp, const char *sink);
int rpart_learn_known(struct rpart *rp);
/* The id of sink @p sink's group replay marked in @p tp's commit metadata, -1 when none. */
int64_t cuts_replay_mark(const rd_kafka_topic_partition_t *tp, const char *sink);
/* Whether @p sp's group replay is to be marked in the next commit (it was applied and the target
 * holds what it rewound). */
int spart_replay_marked(const struct spart *sp);
int spart_cut_fits(struct spart *sp, const struct router_batch *b);
int cuts_shape(struct spart *sp, size_t *n, size_t *bytes, int full, int *recorded, int *cut);
void spart_keep_cut(struct spart *sp, const struct router_batch *b);
void router_want_cut_commit(struct router *r);
void rpart_read_cuts(struct rpart *rp, const rd_kafka_topic_partition_t *tp);
int rpart_holds_cut(const struct rpart *rp);
int router_holds_cuts(const struct router *r);

#endif
