/* Ed25519 keys and signatures in Nix's textual forms, through libsodium. */
#include "config.h"
#include "crypto-sig.h"

#include <pthread.h>
#include <string.h>

#include <sodium.h>

#include "crypto-hash.h"
#include "util-mem.h"
#include "banned.h"

/*
 * Split "<name>:<base64>" and decode the base64 part into exactly n bytes.
 * `what` names the kind of string for error messages.
 */
static int parse_named(const char *s, size_t len, const char *what, char *name,
                       unsigned char *out, size_t n, struct rx_error **err)
{
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return rx_error_set(err, RX_EFORMAT, "%s '%.*s' has no 'name:' prefix", what, (int)len, s);
    size_t nl = (size_t)(colon - s);
    if (nl == 0)
        return rx_error_set(err, RX_EFORMAT, "%s '%.*s' has an empty name", what, (int)len, s);
    if (nl > SIG_NAME_MAX)
        return rx_error_set(err, RX_EFORMAT, "%s has a name longer than %d bytes", what,
                            SIG_NAME_MAX);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f)
            return rx_error_set(err, RX_EFORMAT, "%s name '%.*s' contains a space or control character",
                                what, (int)nl, s);
    }
    const char *b = colon + 1;
    size_t blen = len - nl - 1;
    if (base64_decode_exact(b, blen, out, n) < 0)
        return rx_error_set(err, RX_EFORMAT,
                            "%s '%.*s' is not %zu bytes of padded base64 after the name", what,
                            (int)len, s, n);
    memcpy(name, s, nl);
    name[nl] = '\0';
    return 0;
}

int public_key_parse(const char *s, size_t len, struct public_key *out, struct rx_error **err)
{
    return parse_named(s, len, "public key", out->name, out->key, PUBLIC_KEY_SIZE, err);
}

int secret_key_parse(const char *s, size_t len, struct secret_key *out, struct rx_error **err)
{
    return parse_named(s, len, "secret key", out->name, out->key, SECRET_KEY_SIZE, err);
}

int signature_parse(const char *s, size_t len, struct signature *out, struct rx_error **err)
{
    return parse_named(s, len, "signature", out->name, out->sig, SIGNATURE_SIZE, err);
}

static void format_named(const char *name, const unsigned char *b, size_t n, char *out)
{
    size_t nl = strlen(name);
    memcpy(out, name, nl);
    out[nl] = ':';
    base64_encode(b, n, out + nl + 1, SIG_STR_MAX - nl - 1);
}

void signature_format(const struct signature *sig, char *out)
{
    format_named(sig->name, sig->sig, SIGNATURE_SIZE, out);
}

void public_key_format(const struct public_key *key, char *out)
{
    format_named(key->name, key->key, PUBLIC_KEY_SIZE, out);
}

void secret_key_public(const struct secret_key *sk, struct public_key *out)
{
    memcpy(out->name, sk->name, sizeof out->name);
    crypto_sign_ed25519_sk_to_pk(out->key, sk->key);
}

void signature_sign(const struct secret_key *sk, const void *msg, size_t len,
                    struct signature *out)
{
    memcpy(out->name, sk->name, sizeof out->name);
    crypto_sign_detached(out->sig, NULL, msg, len, sk->key);
}

/*
 * Signatures that verified, remembered for the life of the process: the
 * same narinfo is checked more than once (when it is accepted, and again
 * when a closure's registered signatures are checked after the fetch), and
 * an Ed25519 verification costs a thousand times a sha256 of its inputs.
 * A slot holds the sha256 of key, signature and message, so only the very
 * same three hit; a collision of slots just forgets the older one.
 */
#define VERIFIED_SLOTS 1024

static struct hash verified[VERIFIED_SLOTS];
static pthread_mutex_t verified_mu = PTHREAD_MUTEX_INITIALIZER;

static void verified_digest(const struct signature *sig, const struct public_key *key,
                            const void *msg, size_t len, struct hash *out)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, key->key, sizeof key->key);
    sha256_update(&c, sig->sig, sizeof sig->sig);
    sha256_update(&c, msg, len);
    sha256_final(&c, out);
}

static size_t verified_slot(const struct hash *d)
{
    return ((size_t)d->bytes[0] << 8 | d->bytes[1]) % VERIFIED_SLOTS;
}

bool signature_verify_raw(const struct signature *sig, const struct public_key *key,
                          const void *msg, size_t len)
{
    struct hash d;
    verified_digest(sig, key, msg, len, &d);
    size_t slot = verified_slot(&d);
    pthread_mutex_lock(&verified_mu);
    bool known = hash_equal(&verified[slot], &d);
    pthread_mutex_unlock(&verified_mu);
    if (known)
        return true;
    if (crypto_sign_verify_detached(sig->sig, msg, len, key->key) != 0)
        return false;
    pthread_mutex_lock(&verified_mu);
    verified[slot] = d;
    pthread_mutex_unlock(&verified_mu);
    return true;
}

int trusted_keys_add(struct trusted_keys *tk, const char *s, size_t len, struct rx_error **err)
{
    struct public_key k;
    if (public_key_parse(s, len, &k, err) < 0)
        return -1;
    if (trusted_keys_find(tk, k.name))
        return 0; /* as in Nix: the first key of a name wins */
    tk->keys = xrealloc(tk->keys, (tk->n + 1) * sizeof *tk->keys);
    tk->keys[tk->n++] = k;
    return 0;
}

const struct public_key *trusted_keys_find(const struct trusted_keys *tk, const char *name)
{
    for (size_t i = 0; i < tk->n; i++)
        if (strcmp(tk->keys[i].name, name) == 0)
            return &tk->keys[i];
    return NULL;
}

void trusted_keys_release(struct trusted_keys *tk)
{
    free(tk->keys);
    tk->keys = NULL;
    tk->n = 0;
}

bool trusted_keys_verify(const struct trusted_keys *tk, const struct signature *sig,
                         const void *msg, size_t len)
{
    const struct public_key *k = trusted_keys_find(tk, sig->name);
    return k && signature_verify_raw(sig, k, msg, len);
}
