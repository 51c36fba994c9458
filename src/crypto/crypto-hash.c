/* Hash algorithms, base64 and hash strings in the forms Nix writes (see crypto-hash.h). */
#include "config.h"
#include "crypto-hash.h"

#include <string.h>

#include "banned.h"

static const struct {
    const char *name;
    size_t size;
} algos[] = {
    [HASH_MD5] = {"md5", 16},
    [HASH_SHA1] = {"sha1", 20},
    [HASH_SHA256] = {"sha256", 32},
    [HASH_SHA512] = {"sha512", 64},
};

int crypto_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

size_t hash_algo_size(enum hash_algo algo)
{
    return algos[algo].size;
}

const char *hash_algo_name(enum hash_algo algo)
{
    return algos[algo].name;
}

int hash_algo_parse(const char *name, size_t len, enum hash_algo *algo)
{
    for (size_t i = 0; i < sizeof algos / sizeof algos[0]; i++) {
        if (strlen(algos[i].name) == len && memcmp(algos[i].name, name, len) == 0) {
            *algo = (enum hash_algo)i;
            return 0;
        }
    }
    return -1;
}

int base64_decode_exact(const char *s, size_t slen, unsigned char *out, size_t n)
{
    size_t got = 0;
    const char *end = NULL;
    if (slen != sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1)
        return -1;
    if (sodium_base642bin(out, n, s, slen, NULL, &got, &end, sodium_base64_VARIANT_ORIGINAL) != 0)
        return -1;
    if (got != n || end != s + slen)
        return -1;
    return 0;
}

void base64_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
    sodium_bin2base64(out, outsz, in, n, sodium_base64_VARIANT_ORIGINAL);
}

int hash_parse_digest(const char *s, size_t len, enum hash_algo algo, struct hash *out)
{
    size_t n = hash_algo_size(algo);
    out->algo = algo;
    memset(out->bytes, 0, sizeof out->bytes);
    if (len == 2 * n)
        return hex_decode(s, len, out->bytes, n);
    if (len == nix32_encoded_len(n)) {
        size_t got;
        if (nix32_decode(s, len, out->bytes, n, &got) < 0 || got != n)
            return -1;
        return 0;
    }
    if (len == sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1)
        return base64_decode_exact(s, len, out->bytes, n);
    return -1;
}

int hash_parse(const char *s, size_t len, const enum hash_algo *want, struct hash *out,
               struct rx_error **err)
{
    size_t sep = 0;
    while (sep < len && s[sep] != ':' && s[sep] != '-')
        sep++;
    if (sep == len)
        return rx_error_set(err, RX_EFORMAT, "hash '%.*s' has no algorithm prefix", (int)len, s);
    enum hash_algo algo;
    if (hash_algo_parse(s, sep, &algo) < 0)
        return rx_error_set(err, RX_EFORMAT, "hash '%.*s' has unknown algorithm '%.*s'", (int)len,
                            s, (int)sep, s);
    if (want && algo != *want)
        return rx_error_set(err, RX_EFORMAT, "hash '%.*s' is not a %s hash", (int)len, s,
                            hash_algo_name(*want));
    const char *d = s + sep + 1;
    size_t dlen = len - sep - 1;
    int r;
    if (s[sep] == '-') {
        out->algo = algo;
        memset(out->bytes, 0, sizeof out->bytes);
        r = base64_decode_exact(d, dlen, out->bytes, hash_algo_size(algo));
    } else {
        r = hash_parse_digest(d, dlen, algo, out);
    }
    if (r < 0)
        return rx_error_set(err, RX_EFORMAT, "hash '%.*s' is not a valid %s digest", (int)len, s,
                            hash_algo_name(algo));
    return 0;
}

void hash_format(const struct hash *h, enum hash_encoding enc, char *out)
{
    size_t n = hash_algo_size(h->algo);
    const char *name = hash_algo_name(h->algo);
    size_t nl = strlen(name);
    memcpy(out, name, nl);
    out[nl] = enc == HASH_SRI ? '-' : ':';
    char *d = out + nl + 1;
    switch (enc) {
    case HASH_BASE16:
        hex_encode(h->bytes, n, d);
        break;
    case HASH_NIX32:
        nix32_encode(h->bytes, n, d);
        break;
    case HASH_BASE64:
    case HASH_SRI:
    default:
        base64_encode(h->bytes, n, d, HASH_STR_MAX - nl - 1);
        break;
    }
}

bool hash_equal(const struct hash *a, const struct hash *b)
{
    /* Public data (content hashes): no need for a constant-time compare. */
    return a->algo == b->algo && memcmp(a->bytes, b->bytes, hash_algo_size(a->algo)) == 0;
}
