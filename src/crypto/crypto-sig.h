#pragma once
/*
 * Ed25519 keys and signatures in Nix's textual forms (libsodium underneath).
 *
 *   public key  "<name>:<base64 of 32 bytes>"
 *   secret key  "<name>:<base64 of 64 bytes>"   (seed || public key)
 *   signature   "<name>:<base64 of 64 bytes>"
 *
 * The name is everything before the first ':'.  It must be non-empty and
 * made of printable ASCII other than space.  Base64 must be padded and of
 * exactly the right length.
 *
 * Trust is decided by name: a signature counts only if a trusted key of the
 * same name verifies it (see nix-formats.md section 5.3).  No secret is ever
 * compared with anything, so no comparison here needs to be constant-time;
 * signing uses libsodium, which is.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

#define SIG_NAME_MAX 128
#define PUBLIC_KEY_SIZE 32
#define SECRET_KEY_SIZE 64
#define SIGNATURE_SIZE 64
/* Longest textual signature: name, ':', 88 base64 chars, NUL. */
#define SIG_STR_MAX (SIG_NAME_MAX + 1 + 88 + 1)

struct public_key {
    char name[SIG_NAME_MAX + 1];
    unsigned char key[PUBLIC_KEY_SIZE];
};

struct secret_key {
    char name[SIG_NAME_MAX + 1];
    unsigned char key[SECRET_KEY_SIZE];
};

struct signature {
    char name[SIG_NAME_MAX + 1];
    unsigned char sig[SIGNATURE_SIZE];
};

int public_key_parse(const char *s, size_t len, struct public_key *out, struct rx_error **err);
int secret_key_parse(const char *s, size_t len, struct secret_key *out, struct rx_error **err);
int signature_parse(const char *s, size_t len, struct signature *out, struct rx_error **err);

/* "<name>:<base64>" into out (SIG_STR_MAX bytes). */
void signature_format(const struct signature *sig, char *out);
void public_key_format(const struct public_key *key, char *out);

void secret_key_public(const struct secret_key *sk, struct public_key *out);

/* Sign msg with sk; the signature takes sk's name. */
void signature_sign(const struct secret_key *sk, const void *msg, size_t len,
                    struct signature *out);

/* Raw check: does `sig` verify `msg` under `key`?  Names are not compared. */
bool signature_verify_raw(const struct signature *sig, const struct public_key *key,
                          const void *msg, size_t len);

/* A set of trusted keys, looked up by name; the first key of a name wins. */
struct trusted_keys {
    struct public_key *keys; /* owned */
    size_t n;
};

#define TRUSTED_KEYS_INIT { NULL, 0 }

int trusted_keys_add(struct trusted_keys *tk, const char *s, size_t len, struct rx_error **err);
const struct public_key *trusted_keys_find(const struct trusted_keys *tk, const char *name);
void trusted_keys_release(struct trusted_keys *tk);

/* Does a trusted key with sig's name verify it over msg? */
bool trusted_keys_verify(const struct trusted_keys *tk, const struct signature *sig,
                         const void *msg, size_t len);
