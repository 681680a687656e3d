/*
 * sha256.h - SHA-256 (FIPS 180-4) for API key hashes. No library the server already links
 * exports one, so this is a small implementation checked against the FIPS 180-4 examples
 * (tests/server/test_sha256.c).
 *
 * Thread-safety: reentrant; a context has one user at a time.
 */
#ifndef SRV_SHA256_H
#define SRV_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct srv_sha256_ctx {
    uint32_t h[8];
    uint64_t bytes; /* message length so far */
    unsigned char block[64];
    size_t used; /* bytes waiting in block */
} srv_sha256_ctx;

void srv_sha256_init(srv_sha256_ctx *c);
void srv_sha256_update(srv_sha256_ctx *c, const void *data, size_t len);
void srv_sha256_final(srv_sha256_ctx *c, unsigned char out[32]);

/** One call: the digest of data[0..len). */
void srv_sha256(const void *data, size_t len, unsigned char out[32]);

/** The digest as 64 lower-case hex digits and a NUL. */
void srv_sha256_hex(const unsigned char d[32], char out[65]);

#endif
