#include "config.h"
#include "crypto-hash.h"

#include <string.h>

#include "banned.h"

static const char nix32_alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";

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

size_t nix32_encoded_len(size_t n)
{
    return (n * 8 + 4) / 5;
}

void nix32_encode(const unsigned char *in, size_t n, char *out)
{
    size_t len = nix32_encoded_len(n);
    for (size_t p = 0; p < len; p++) {
        size_t k = len - 1 - p;
        size_t b = k * 5;
        size_t i = b / 8, j = b % 8;
        unsigned c = (unsigned)in[i] >> j;
        if (i + 1 < n)
            c |= (unsigned)in[i + 1] << (8 - j);
        out[p] = nix32_alphabet[c & 31];
    }
    out[len] = '\0';
}

static int nix32_digit(char c)
{
    /* Not strchr: it would also find the terminating NUL. */
    for (int i = 0; i < 32; i++)
        if (nix32_alphabet[i] == c)
            return i;
    return -1;
}

int nix32_decode(const char *s, size_t slen, unsigned char *out, size_t outcap, size_t *outlen)
{
    size_t n = slen * 5 / 8;
    if (nix32_encoded_len(n) != slen || n > outcap)
        return -1;
    memset(out, 0, n);
    for (size_t p = 0; p < slen; p++) {
        int d = nix32_digit(s[p]);
        if (d < 0)
            return -1;
        size_t k = slen - 1 - p;
        size_t b = k * 5;
        size_t i = b / 8, j = b % 8;
        out[i] |= (unsigned char)(d << j);
        unsigned carry = (unsigned)d >> (8 - j);
        if (i + 1 < n)
            out[i + 1] |= (unsigned char)carry;
        else if (carry)
            return -1; /* bits beyond the last byte must be zero */
    }
    if (outlen)
        *outlen = n;
    return 0;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *s, size_t slen, unsigned char *out, size_t n)
{
    if (slen != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
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
