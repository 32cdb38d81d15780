/* The group's control topic in a running sluice (group.h). One partition, read from its start by
 * a consumer of its own (assigned, never a member of a group, commits nothing) and written by a
 * producer of its own, both polled on the loop without blocking. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "conf.h"
#include "conf_kafka.h"
#include "control_record.h"
#include "group.h"
#include "lib/clock.h"
#include "lib/log.h"

#define GROUP_POLL_MS 100        /* how often the control topic is read: a pause takes effect within it */
#define GROUP_REPLICAS_MAX 256   /* replicas remembered for GET /group; more are counted only */
#define GROUP_SINKS_MAX 4096     /* sinks with a group state; a record for more is skipped */

struct group_sink {
    char name[CONTROL_NAME_MAX];
    int paused;                      /* -1: the group never said */
    struct group_replay replay;      /* id -1: none */
};

struct group_replica {
    struct control_record rec;       /* its last announcement */
};

struct group {
    struct event_base *eb;
    char *topic;
    char replica_id[CONTROL_NAME_MAX];
    char admin_url[256];
    char host[128];
    int64_t heartbeat_ms, started_ms;
    rd_kafka_t *consumer, *producer;
    rd_kafka_queue_t *admin_queue;   /* the answer to CreateTopics */
    struct event *poll_timer, *heartbeat_timer;
    int assigned, caught_up;
    int64_t next_offset, caught_up_ms;
    struct group_sink *sinks;
    size_t nsinks;
    struct group_replica *replicas;
    size_t nreplicas;
    uint64_t records, skipped, announce_errors;
    char last_error[256];
    struct group_hooks hooks;
};

static int set_all(rd_kafka_conf_t *kc, const json_t *kafka, int producer, char *err, size_t errlen)
{
    if (conf_kafka_apply_standalone(kc, kafka, producer, err, errlen) != 0)
        return -1;
    rd_kafka_conf_set_log_cb(kc, log_kafka);
    return 0;
}

static void group_error(struct group *g, const char *fmt, const char *what)
{
    char text[sizeof g->last_error];
    snprintf(text, sizeof text, fmt, what);
    if (strcmp(text, g->last_error) != 0)
        LOG(LOG_WARN, "control topic %s: %s", g->topic, text);
    memcpy(g->last_error, text, sizeof text);
}

static struct group_sink *sink_slot(struct group *g, const char *name, int create)
{
    struct group_sink *v;

    for (size_t i = 0; i < g->nsinks; i++)
        if (strcmp(g->sinks[i].name, name) == 0)
            return &g->sinks[i];
    if (!create || g->nsinks >= GROUP_SINKS_MAX || !(v = realloc(g->sinks, (g->nsinks + 1) * sizeof *v)))
        return NULL;
    g->sinks = v;
    v = &g->sinks[g->nsinks++];
    memset(v, 0, sizeof *v);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->paused = -1;
    v->replay.id = -1;
    return v;
}

static void replica_seen(struct group *g, const struct control_record *rec)
{
    struct group_replica *v;
    size_t i;

    for (i = 0; i < g->nreplicas && strcmp(g->replicas[i].rec.name, rec->name) != 0; i++)
        ;
    if (rec->tombstone) {
        if (i < g->nreplicas)
            g->replicas[i] = g->replicas[--g->nreplicas];
        return;
    }
    if (i == g->nreplicas) {
        if (g->nreplicas >= GROUP_REPLICAS_MAX || !(v = realloc(g->replicas, (g->nreplicas + 1) * sizeof *v)))
            return;
        g->replicas = v;
        g->nreplicas++;
    }
    g->replicas[i].rec = *rec;
}

static void on_record(struct group *g, const rd_kafka_message_t *m)
{
    struct control_record rec;
    struct group_sink *gs;
    char err[256];

    g->next_offset = m->offset + 1;
    g->records++;
    if (control_record_parse(m->key, m->key_len, m->payload, m->len, &rec, err, sizeof err) != 0) {
        g->skipped++;
        LOG(LOG_WARN, "control topic %s: record at offset %" PRId64 " skipped: %s", g->topic, m->offset, err);
        return;
    }
    if (rec.kind == CONTROL_REPLICA) {
        replica_seen(g, &rec);
        return;
    }
    if (rec.tombstone || !(gs = sink_slot(g, rec.name, 1)))
        return;
    if (rec.kind == CONTROL_PAUSE) {
        gs->paused = rec.paused;
        if (g->caught_up)
            LOG(LOG_INFO, "group: sink %s %s (by %s)", rec.name, rec.paused ? "paused" : "resumed",
                rec.by[0] ? rec.by : "?");
        if (g->hooks.pause)
            g->hooks.pause(g->hooks.arg, rec.name, rec.paused);
        return;
    }
    gs->replay = (struct group_replay){ .id = m->offset, .offset = rec.offset, .timestamp_ms = rec.timestamp_ms,
                                        .partition = rec.partition, .at_ms = rec.at_ms };
    memcpy(gs->replay.topic, rec.topic, sizeof gs->replay.topic);
    /* While catching up the replay is history: the partitions assigned later look for its mark. */
    if (g->caught_up) {
        LOG(LOG_INFO, "group: replay %" PRId64 " of sink %s (by %s)", m->offset, rec.name, rec.by[0] ? rec.by : "?");
        if (g->hooks.replay)
            g->hooks.replay(g->hooks.arg, rec.name, &gs->replay);
    }
}

static void group_assign(struct group *g)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t kerr;

    rd_kafka_topic_partition_list_add(list, g->topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    kerr = rd_kafka_assign(g->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (kerr)
        group_error(g, "cannot read it: %s", rd_kafka_err2str(kerr));
    else
        g->assigned = 1;
}

static void on_created(struct group *g, rd_kafka_event_t *ev)
{
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **topics = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_event_error(ev);

    if (!kerr && n == 1)
        kerr = rd_kafka_topic_result_error(topics[0]);
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
        LOG(LOG_INFO, "control topic %s created (compacted, 1 partition)", g->topic);
    else if (kerr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        /* Without the right to create topics it may still exist: read it anyway. */
        group_error(g, "cannot create it (%s); reading it as it is", rd_kafka_err2str(kerr));
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    struct group *g = arg;
    rd_kafka_message_t *m;
    rd_kafka_event_t *ev;
    (void)fd;
    (void)what;

    rd_kafka_poll(g->producer, 0);
    while ((ev = rd_kafka_queue_poll(g->admin_queue, 0)) != NULL) {
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
            on_created(g, ev);
        rd_kafka_event_destroy(ev);
    }
    /* A burst at most per turn, as the consumer of records does: the loop stays responsive. */
    for (int i = 0; i < 1000 && g->assigned && (m = rd_kafka_consumer_poll(g->consumer, 0)) != NULL; i++) {
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!g->caught_up) {
                g->caught_up = 1;
                g->caught_up_ms = wall_ms();
                g->last_error[0] = '\0';
                LOG(LOG_INFO, "control topic %s read to its end (%" PRIu64 " records, %zu sinks with a group state)",
                    g->topic, g->records, g->nsinks);
                if (g->hooks.caught_up)
                    g->hooks.caught_up(g->hooks.arg);
            }
        } else if (m->err) {
            group_error(g, "%s", rd_kafka_message_errstr(m));
        } else {
            on_record(g, m);
        }
        rd_kafka_message_destroy(m);
    }
}

static void on_announced(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct group *g = opaque;
    (void)rk;
    if (m->err) {
        g->announce_errors++;
        group_error(g, "cannot announce this replica: %s", rd_kafka_err2str(m->err));
    }
}

static void announce(struct group *g, int leaving)
{
    struct control_record rec = { .kind = CONTROL_REPLICA, .tombstone = leaving, .at_ms = wall_ms(),
                                  .pid = (int64_t)getpid(), .started_ms = g->started_ms,
                                  .heartbeat_ms = g->heartbeat_ms };
    char key[CONTROL_NAME_MAX + 16], *value;
    int keylen;

    memcpy(rec.name, g->replica_id, sizeof rec.name);
    snprintf(rec.admin, sizeof rec.admin, "%s", g->admin_url);
    snprintf(rec.host, sizeof rec.host, "%s", g->host);
    keylen = control_record_key(&rec, key, sizeof key);
    value = control_record_value(&rec);
    if (keylen < 0 || (!value && !leaving) ||
        rd_kafka_producev(g->producer, RD_KAFKA_V_TOPIC(g->topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_KEY(key, (size_t)keylen), RD_KAFKA_V_VALUE(value, value ? strlen(value) : 0),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
        g->announce_errors++;
    free(value);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    announce(arg, 0);
}

/* The admin API's address as other replicas and `sluice ctl` reach it: control.advertise, else
 * admin.listen, with a wildcard host replaced by this host's name and a port 0 by the one bound. */
static void advertised_admin(struct group *g, const struct conf *conf, int admin_port)
{
    const char *listen = conf->control_advertise ? conf->control_advertise : conf->admin_listen;
    const char *colon = listen ? strrchr(listen, ':') : NULL;
    size_t hostlen = colon ? (size_t)(colon - listen) : 0;
    char port[16];

    g->admin_url[0] = '\0';
    if (!listen || !listen[0] || !colon || (!conf->control_advertise && admin_port < 0))
        return;
    if (strncmp(listen, "http://", 7) == 0 || strncmp(listen, "https://", 8) == 0) {
        snprintf(g->admin_url, sizeof g->admin_url, "%s", listen);
        return;
    }
    snprintf(port, sizeof port, "%s", colon + 1);
    if (strcmp(port, "0") == 0 && admin_port > 0)
        snprintf(port, sizeof port, "%d", admin_port);
    if (hostlen == 0 || (hostlen == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
        (hostlen == 4 && strncmp(listen, "[::]", 4) == 0) || (hostlen == 2 && strncmp(listen, "::", 2) == 0))
        snprintf(g->admin_url, sizeof g->admin_url, "http://%s:%s", g->host, port);
    else
        snprintf(g->admin_url, sizeof g->admin_url, "http://%.*s:%s", (int)hostlen, listen, port);
}

struct group *group_new(struct event_base *eb, const struct conf *conf, int admin_port, const struct group_hooks *hooks,
                        char *err, size_t errlen)
{
    struct group *g = calloc(1, sizeof *g);
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    rd_kafka_NewTopic_t *nt = NULL;
    char reader_group[64], errstr[256];
    struct timeval poll_every = ms_to_tv(GROUP_POLL_MS), beat_every;

    if (!g || !(g->topic = strdup(conf->control_topic))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    g->eb = eb;
    g->hooks = *hooks;
    g->heartbeat_ms = conf->control_heartbeat_ms;
    g->started_ms = wall_ms();
    if (gethostname(g->host, sizeof g->host - 1) != 0 || !g->host[0])
        snprintf(g->host, sizeof g->host, "localhost");
    /* The id: host and pid (a pod's name in Kubernetes), in the characters a key name takes. */
    snprintf(g->replica_id, sizeof g->replica_id, "%.100s-%ld", g->host, (long)getpid());
    for (char *c = g->replica_id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == '-'))
            *c = '-';
    advertised_admin(g, conf, admin_port);
    snprintf(reader_group, sizeof reader_group, "sluice-control-%ld", (long)getpid());   /* never joined */
    if (set_all(cc, conf->kafka, 0, errstr, sizeof errstr) != 0 || set_all(pc, conf->kafka, 1, errstr, sizeof errstr) != 0 ||
        rd_kafka_conf_set(cc, "group.id", reader_group, errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(cc, "enable.auto.commit", "false", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(cc, "enable.partition.eof", "true", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(pc, "linger.ms", "0", errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen, "control topic: %s", errstr);
        goto fail;
    }
    rd_kafka_conf_set_opaque(pc, g);
    rd_kafka_conf_set_dr_msg_cb(pc, on_announced);
    if (!(g->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, errstr, sizeof errstr))) {
        snprintf(err, errlen, "control topic reader: %s", errstr);
        goto fail;
    }
    cc = NULL;
    if (!(g->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, errstr, sizeof errstr))) {
        snprintf(err, errlen, "control topic writer: %s", errstr);
        goto fail;
    }
    pc = NULL;
    g->admin_queue = rd_kafka_queue_new(g->producer);
    /* Compacted: the last record of each key is the state, the topic stays small. */
    if (!(nt = rd_kafka_NewTopic_new(g->topic, 1, -1, errstr, sizeof errstr)) ||
        rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "control topic: %s", nt ? "cannot set cleanup.policy" : errstr);
        goto fail;
    }
    rd_kafka_CreateTopics(g->producer, &nt, 1, NULL, g->admin_queue);
    rd_kafka_NewTopic_destroy(nt);
    nt = NULL;
    /* Read at once: the topic usually exists; a new one is read once created. */
    group_assign(g);
    g->poll_timer = event_new(eb, -1, EV_PERSIST, on_poll, g);
    g->heartbeat_timer = event_new(eb, -1, EV_PERSIST, on_heartbeat, g);
    beat_every = ms_to_tv(g->heartbeat_ms);
    if (!g->poll_timer || !g->heartbeat_timer || event_add(g->poll_timer, &poll_every) != 0 ||
        event_add(g->heartbeat_timer, &beat_every) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(g->last_error, sizeof g->last_error, "not read yet");
    announce(g, 0);
    LOG(LOG_INFO, "control topic %s: replica %s, admin API %s", g->topic, g->replica_id,
        g->admin_url[0] ? g->admin_url : "(none)");
    return g;
fail:
    if (cc)
        rd_kafka_conf_destroy(cc);
    if (pc)
        rd_kafka_conf_destroy(pc);
    group_free(g);
    return NULL;
}

void group_free(struct group *g)
{
    if (!g)
        return;
    if (g->poll_timer)
        event_free(g->poll_timer);
    if (g->heartbeat_timer)
        event_free(g->heartbeat_timer);
    if (g->producer) {
        /* Shutdown only: a replica that leaves says so, ctl stops listing it at once. */
        announce(g, 1);
        rd_kafka_flush(g->producer, 2000);
    }
    if (g->admin_queue)
        rd_kafka_queue_destroy(g->admin_queue);
    if (g->consumer) {
        rd_kafka_assign(g->consumer, NULL);
        rd_kafka_destroy(g->consumer);
    }
    if (g->producer)
        rd_kafka_destroy(g->producer);
    free(g->sinks);
    free(g->replicas);
    free(g->topic);
    free(g);
}

int group_caught_up(const struct group *g)
{
    return g->caught_up;
}

const char *group_waiting_reason(const struct group *g)
{
    return g->last_error[0] ? g->last_error : "reading";
}

int group_sink_paused(const struct group *g, const char *sink)
{
    for (size_t i = 0; i < g->nsinks; i++)
        if (strcmp(g->sinks[i].name, sink) == 0)
            return g->sinks[i].paused;
    return -1;
}

const struct group_replay *group_sink_replay(const struct group *g, const char *sink)
{
    for (size_t i = 0; i < g->nsinks; i++)
        if (strcmp(g->sinks[i].name, sink) == 0)
            return g->sinks[i].replay.id >= 0 ? &g->sinks[i].replay : NULL;
    return NULL;
}

void group_apply_pauses(const struct group *g)
{
    for (size_t i = 0; i < g->nsinks; i++)
        if (g->sinks[i].paused == 1 && g->hooks.pause)
            g->hooks.pause(g->hooks.arg, g->sinks[i].name, 1);
}

json_t *group_view(const struct group *g)
{
    json_t *sinks = json_object(), *replicas = json_array();
    int64_t now = wall_ms();

    for (size_t i = 0; i < g->nsinks; i++) {
        const struct group_sink *gs = &g->sinks[i];
        json_t *s = json_object();
        if (gs->paused >= 0)
            json_object_set_new(s, "paused", json_boolean(gs->paused));
        if (gs->replay.id >= 0)
            json_object_set_new(s, "replay", json_pack("{s:I, s:I, s:I, s:s?, s:i}", "id", (json_int_t)gs->replay.id,
                                                       gs->replay.offset >= 0 ? "offset" : "timestamp_ms",
                                                       (json_int_t)(gs->replay.offset >= 0 ? gs->replay.offset
                                                                                           : gs->replay.timestamp_ms),
                                                       "at_ms", (json_int_t)gs->replay.at_ms,
                                                       "topic", gs->replay.topic[0] ? gs->replay.topic : NULL,
                                                       "partition", gs->replay.partition));
        json_object_set_new(sinks, gs->name, s);
    }
    for (size_t i = 0; i < g->nreplicas; i++) {
        const struct control_record *rec = &g->replicas[i].rec;
        json_array_append_new(replicas, json_pack("{s:s, s:s, s:s, s:I, s:I, s:b}", "replica", rec->name, "admin",
                                                  rec->admin, "host", rec->host, "pid", (json_int_t)rec->pid,
                                                  "seen_ms_ago", (json_int_t)(now - rec->at_ms),
                                                  "live", now - rec->at_ms < 3 * rec->heartbeat_ms));
    }
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:s, s:o, s:o}", "replica", g->replica_id, "admin",
                     g->admin_url, "topic", g->topic, "caught_up", g->caught_up, "next_offset",
                     (json_int_t)g->next_offset, "records_skipped", (json_int_t)g->skipped, "announce_errors",
                     (json_int_t)g->announce_errors, "error", g->caught_up ? "" : group_waiting_reason(g),
                     "sinks", sinks, "replicas", replicas);
}
