/*
 * auth.h - API keys (--api-keys FILE) and the per-key request rate (--key-rate).
 *
 * The key file holds one key per line, "NAME sha256:HEX": NAME is 1-63 characters of
 * A-Z a-z 0-9 . _ - (what logs and limits call the key), HEX the 64 lower-case hex digits of
 * the SHA-256 of the key itself. Blank lines and lines starting with '#' are ignored.
 * `hilanderd --hash-key NAME` reads a key on stdin and prints its line. The file is read once
 * at start; a bad line stops the start with a message naming the file and the line.
 *
 * A request authenticates with "Authorization: Bearer <key>": the key is hashed and the hash
 * compared in constant time with every stored hash (no early exit). Neither the key nor any
 * hash is ever logged; the key's name is.
 *
 * Rate: a token bucket per key and replica holding up to max(1, rate) tokens, refilled at
 * `rate` tokens per second; a request takes one token or is refused (429 + Retry-After).
 *
 * Thread-safety: srv_auth_check and srv_auth_rate may be called from any thread (the buckets
 * are under a leaf mutex: nothing else is locked, called or logged while it is held).
 */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include "hl/status.h"

#include <stddef.h>

typedef struct srv_auth srv_auth;

/** Keys longer than this are refused (as Authorization values and by --hash-key). */
#define SRV_AUTH_KEY_MAX 512
/** --hash-key refuses keys shorter than this. */
#define SRV_AUTH_KEY_MIN 16

/** Loads the key file; `rate` is --key-rate (0 = no limit). HL_INVAL/HL_IO with a message
 * "FILE:LINE: ..." in err. */
hl_status srv_auth_load(const char *path, int rate, srv_auth **out, hl_error *err);
void srv_auth_free(srv_auth *a);

/** Number of keys loaded. */
size_t srv_auth_count(const srv_auth *a);

/** Checks an Authorization header value (NULL = absent). Returns 1 and copies the key's name
 * into `name` when it carries a known key, else 0. */
int srv_auth_check(const srv_auth *a, const char *authorization, char name[64]);

/** Takes a token of key `name`'s bucket: 1 when the request may go on; 0 when refused, with
 * *retry_after the whole seconds until a token is back. Always 1 without a rate. */
int srv_auth_rate(srv_auth *a, const char *name, int *retry_after);

/** The key-file line for a key: "NAME sha256:HEX". HL_INVAL when the key is shorter than
 * SRV_AUTH_KEY_MIN, longer than SRV_AUTH_KEY_MAX or not made of token68 characters
 * (A-Z a-z 0-9 - . _ ~ + /, then '=' padding). */
hl_status srv_auth_hash_line(const char *name, const char *key, char *out, size_t len);

#endif
