/* bench-webhook's yardsticks (see tools/bench-webhook.c): the bare libcurl client that does
 * the sink's HTTP work with none of sluice's code, and "Kafka alone", what consuming the same
 * records costs without doing anything with them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "router/router.h"
#include "tools/bench-webhook/bench_webhook.h"

/* ---- the bare client: libcurl multi on its own, none of sluice's code, as the yardstick ---- */

struct bare_slot {
    CURL *easy;
    struct curl_slist *headers;
    char *body;
    int busy;
};

struct bare {
    const struct options *o;
    const char *url;
    unsigned char key[64];
    int keylen;
    long next, total, done, failed;
};

static size_t bare_discard(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

/* Body j: the array_size records the sink would send as one batch of partition j % P (each
 * element shaped as the webhook sink shapes it), signed as the sink signs it, ready to post. */
static int bare_prepare(struct bare *bb, struct bare_slot *slot, long j)
{
    const struct options *o = bb->o;
    int partition = (int)(j % o->partitions);
    long first = (j / o->partitions) * o->array_size;
    size_t cap = (size_t)o->array_size * 560 + 16, len = 0;
    char *body = malloc(cap), id[128], value[512], key[32], line[256], *msg = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    long long ts = (long long)time(NULL);
    struct curl_slist *h = NULL;
    int idlen, msglen;

    if (!body)
        return -1;
    body[len++] = '[';
    for (int k = 0; k < o->array_size; k++) {
        long offset = first + k, i = offset * o->partitions + partition;
        record_key(i, key, sizeof key);
        record_value(i, value, sizeof value);
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{\"id\":\"bench:bench:%d:%ld\",\"topic\":\"bench\",\"partition\":%d,\"offset\":%ld,"
                                "\"key\":\"%s\",\"value\":%s,\"timestamp\":1764600000000}",
                                k ? "," : "", partition, offset, partition, offset, key, value);
    }
    body[len++] = ']';
    body[len] = '\0';
    idlen = snprintf(id, sizeof id, "bench:bench:%d:%ld-%ld", partition, first, first + o->array_size - 1);
    msglen = idlen + 32 + (int)len;
    if (!(msg = malloc((size_t)msglen + 1))) {
        free(body);
        return -1;
    }
    msglen = snprintf(msg, (size_t)msglen + 1, "%s.%lld.%s", id, ts, body);
    HMAC(EVP_sha256(), bb->key, bb->keylen, (unsigned char *)msg, (size_t)msglen, mac, &maclen);
    free(msg);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    snprintf(line, sizeof line, "webhook-id: %s", id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "Idempotency-Key: %s", id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    h = curl_slist_append(h, line);
    memcpy(line, "webhook-signature: v1,", 22);
    EVP_EncodeBlock((unsigned char *)line + 22, mac, (int)maclen);
    h = curl_slist_append(h, line);
    slot->headers = h;
    slot->body = body;
    curl_easy_setopt(slot->easy, CURLOPT_URL, bb->url);
    curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(slot->easy, CURLOPT_WRITEFUNCTION, bare_discard);
    curl_easy_setopt(slot->easy, CURLOPT_PRIVATE, slot);
    return 0;
}

static void bare_release(struct bare_slot *slot)
{
    curl_slist_free_all(slot->headers);
    free(slot->body);
    slot->headers = NULL;
    slot->body = NULL;
    slot->busy = 0;
}

/* Starts the next body on every idle slot. */
static int bare_fill(struct bare *bb, CURLM *multi, struct bare_slot *slots, int nslots)
{
    for (int s = 0; s < nslots && bb->next < bb->total; s++) {
        if (slots[s].busy)
            continue;
        if (bare_prepare(bb, &slots[s], bb->next) != 0 || curl_multi_add_handle(multi, slots[s].easy) != CURLM_OK)
            return -1;
        slots[s].busy = 1;
        bb->next++;
    }
    return 0;
}

/* Posts records / array_size bodies of array_size records to URL/bare, keeping as many
 * requests in flight as the sink had; prints and returns its records/s (0 on failure). */
double bench_bare(const char *url, const struct options *o, int in_flight, const struct child *rcv,
                         double *cpu_us)
{
    char full[256];
    const char *b64 = &BENCH_SECRET[sizeof "whsec_" - 1];   /* the base64 after the prefix */
    unsigned char key[64];
    struct bare bb = { .o = o, .url = full, .total = o->records / o->array_size };
    struct bare_slot *slots = calloc((size_t)in_flight, sizeof *slots);
    CURLM *multi = curl_multi_init();
    double t0, secs, rate = 0, cpu0 = self_cpu_s(), rcpu0 = proc_cpu_s(rcv->pid);
    int running = 0, left, ok = 1;
    CURLMsg *msg;

    snprintf(full, sizeof full, "%s/bare", url);
    bb.keylen = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)strlen(b64));
    memcpy(bb.key, key, sizeof key);
    if (!slots || !multi || bb.keylen <= 0 || bb.total < 1) {
        fprintf(stderr, "bench-webhook: bare client: cannot set up\n");
        goto out;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)in_flight);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)in_flight + 4);
    for (int s = 0; s < in_flight; s++)
        if (!(slots[s].easy = curl_easy_init()))
            goto out;
    t0 = now_s();
    if (bare_fill(&bb, multi, slots, in_flight) != 0)
        goto out;
    while (bb.done < bb.total && ok) {
        curl_multi_perform(multi, &running);
        while ((msg = curl_multi_info_read(multi, &left))) {
            struct bare_slot *slot = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != CURLE_OK || status != 200)
                bb.failed++;
            curl_multi_remove_handle(multi, msg->easy_handle);
            bare_release(slot);
            bb.done++;
        }
        if (bare_fill(&bb, multi, slots, in_flight) != 0) {
            ok = 0;
            break;
        }
        if (bb.done < bb.total)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    secs = now_s() - t0;
    if (ok && bb.failed == 0 && secs > 0) {
        rate = (double)(bb.total * o->array_size) / secs;
        printf("bare libcurl multi, json_array x%d, %d in flight: %ld records in %.2f s: %.0f records/s, "
               "%.0f requests/s (%ld requests)\n", o->array_size, in_flight, bb.total * o->array_size, secs, rate,
               (double)bb.total / secs, bb.total);
        double client = self_cpu_s() - cpu0, receiver = proc_cpu_s(rcv->pid) - rcpu0;
        printf("  CPU meanwhile: client %.2f s, receiver %.2f s\n", client, receiver);
        *cpu_us = (client + receiver) / (double)(bb.total * o->array_size) * 1e6;
    } else {
        fprintf(stderr, "bench-webhook: bare client: %ld of %ld requests failed\n", bb.failed, bb.done);
    }
out:
    for (int s = 0; slots && s < in_flight; s++) {
        if (slots[s].busy)
            curl_multi_remove_handle(multi, slots[s].easy);
        bare_release(&slots[s]);
        if (slots[s].easy)
            curl_easy_cleanup(slots[s].easy);
    }
    free(slots);
    if (multi)
        curl_multi_cleanup(multi);
    return rate;
}

/* ---- the floor: Kafka alone ---- */

/* A plain librdkafka consumer, with the fetch settings sluice's router sets by default, takes
 * every record of the topic and drops it: what consuming alone costs, in CPU a record of this
 * process (its poll loop and librdkafka's threads) and of the mock Kafka. No sluice can spend
 * less than that plus the bare client's own work; with the machine's cores the limit, that
 * bounds the ratio to the bare client. Returns the CPU a record in microseconds, 0 on failure. */
double bench_consume(const char *brokers, const struct options *o, long available, int round,
                            const struct child *kafka)
{
    char errstr[512], group[64];
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_queue_t *queue;
    rd_kafka_t *rk;
    double t0, secs, cpu0, kcpu0, cpu_us = 0;
    long got = 0, bytes = 0;

    snprintf(group, sizeof group, "bench-consume-%d-%d", (int)getpid(), round);
    rd_kafka_conf_set(kc, "bootstrap.servers", brokers, errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(kc, "enable.auto.commit", "false", errstr, sizeof errstr);
    for (size_t i = 0; router_consumer_defaults[i][0]; i++)
        rd_kafka_conf_set(kc, router_consumer_defaults[i][0], router_consumer_defaults[i][1], errstr, sizeof errstr);
    if (!(rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof errstr))) {
        fprintf(stderr, "bench-webhook: consumer: %s\n", errstr);
        return 0;
    }
    rd_kafka_poll_set_consumer(rk);
    queue = rd_kafka_queue_get_consumer(rk);
    parts = rd_kafka_topic_partition_list_new(o->partitions);
    for (int p = 0; p < o->partitions; p++)
        rd_kafka_topic_partition_list_add(parts, "bench", p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cpu0 = self_cpu_s();
    kcpu0 = proc_cpu_s(kafka->pid);
    t0 = now_s();
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "bench-webhook: consumer: cannot assign the partitions\n");
        goto out;
    }
    /* In batches off the consumer queue, as the router takes them: the cheapest way out. */
    while (got < available && now_s() - t0 < STALL_LIMIT_S) {
        rd_kafka_message_t *msgs[1000];
        ssize_t n = rd_kafka_consume_batch_queue(queue, 100, msgs, sizeof msgs / sizeof msgs[0]);
        for (ssize_t i = 0; i < n; i++) {
            if (!msgs[i]->err) {
                got++;
                bytes += (long)msgs[i]->len;
            }
            rd_kafka_message_destroy(msgs[i]);
        }
    }
    secs = now_s() - t0;
    if (got == available && secs > 0) {
        double mine = self_cpu_s() - cpu0, broker = proc_cpu_s(kafka->pid) - kcpu0;
        cpu_us = (mine + broker) / (double)got * 1e6;
        printf("Kafka alone (a librdkafka consumer with sluice's fetch settings, records dropped): %ld records "
               "(%.0f MiB) in %.2f s: %.0f records/s; CPU consumer %.2f s, mock kafka %.2f s: %.2f us a record\n",
               got, (double)bytes / 1048576.0, secs, (double)got / secs, mine, broker, cpu_us);
    } else {
        fprintf(stderr, "bench-webhook: consumer: %ld of %ld records in %.0f s\n", got, available, secs);
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_queue_destroy(queue);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return cpu_us;
}

