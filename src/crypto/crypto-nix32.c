/* Nix base32 and hex encoding and decoding. */
/* No libsodium here, so that code which only checks store paths (the runix
 * front) does not load it. */
#include "config.h"
#include "crypto-hash.h"

#include <string.h>

#include "banned.h"

static const char nix32_alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";

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
