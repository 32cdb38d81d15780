/* The Standard Webhooks signer of the webhook sink (webhook.c, its only user), exposed for its
 * unit test: the "whsec_" secret and "v1," HMAC-SHA256 signatures. (tools/webhook-receiver.c
 * decodes its secret with webhook_whsec_decode too.) */
#ifndef SLUICE_WEBHOOK_SIGN_H
#define SLUICE_WEBHOOK_SIGN_H

#include <stddef.h>

#define WEBHOOK_WHSEC_MAX 256

/** @brief Decode a "whsec_<base64>" secret (the prefix is optional) into @p key.
 * @return the key's length, or -1 when it is not base64 or empty. */
int webhook_whsec_decode(const char *secret, unsigned char *key, size_t keymax);

/** @brief "v1," + base64(HMAC-SHA256(key, id "." timestamp "." body)) into @p out.
 * @return 0, or -1 when @p out is too small. */
int webhook_signature(const unsigned char *key, size_t keylen, const char *id, long long timestamp,
                      const char *body, size_t bodylen, char *out, size_t outlen);

/* A signer keyed once, for many signatures (what a sink keeps). */
struct webhook_signer;
struct webhook_signer *webhook_signer_new(const unsigned char *key, size_t keylen);
int webhook_signer_sign(struct webhook_signer *sg, const char *id, long long timestamp, const char *body, size_t bodylen,
                     char *out, size_t outlen);
void webhook_signer_free(struct webhook_signer *sg);

#endif
