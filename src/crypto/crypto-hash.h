#pragma once
/*
 * Hashes and their textual forms, as Nix writes them.
 *
 *  - Nix base32 ("nix32"): alphabet 0123456789abcdfghijklmnpqrsvwxyz, the
 *    byte string read as a little-endian number and printed most significant
 *    digit first (see nix-formats.md section 1.2).  Not RFC 4648.
 *  - base16 (lower-case on output, either case on input), base64 (standard
 *    alphabet, padded).
 *  - hash strings "<algo>:<digest>" with the digest in base16, nix32 or
 *    base64 (told apart by length alone, as Nix does), and SRI
 *    "<algo>-<base64>".
 *
 * Only sha256 (with OpenSSL's libcrypto, which uses the CPU's SHA extensions)
 * and sha512 (libsodium) are computed; md5 and sha1 are
 * known so that their strings (e.g. in a narinfo CA field) can be parsed.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHA256_* are deprecated in OpenSSL 3 in favour of EVP, but they need no
 * allocation and use the same SHA extensions where the CPU has them. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <sodium.h>

#include "util-error.h"

enum hash_algo {
    HASH_MD5,
    HASH_SHA1,
    HASH_SHA256,
    HASH_SHA512,
};

#define HASH_MAX_SIZE 64
#define SHA256_SIZE 32
#define NIX32_SHA256_LEN 52
/* "sha512:" + 128 hex digits + NUL is the longest string hash_format() makes. */
#define HASH_STR_MAX 140

struct hash {
    enum hash_algo algo;
    unsigned char bytes[HASH_MAX_SIZE];
};

enum hash_encoding {
    HASH_BASE16,
    HASH_NIX32,
    HASH_BASE64,
    HASH_SRI,
};

size_t hash_algo_size(enum hash_algo algo);
const char *hash_algo_name(enum hash_algo algo);
/* Returns 0 and sets *algo, or -1 for an unknown name. */
int hash_algo_parse(const char *name, size_t len, enum hash_algo *algo);

/* Length of the nix32 encoding of n bytes: ceil(8n/5). */
size_t nix32_encoded_len(size_t n);
/* Encode n bytes into out, which must hold nix32_encoded_len(n) + 1 bytes. */
void nix32_encode(const unsigned char *in, size_t n, char *out);
/*
 * Decode a nix32 string of slen characters into exactly
 * slen * 5 / 8 bytes.  Fails (-1) on a character outside the alphabet, a
 * length that no byte count encodes to, or non-zero surplus bits.  *outlen
 * gets the byte count; out must hold at least slen * 5 / 8 bytes.
 */
int nix32_decode(const char *s, size_t slen, unsigned char *out, size_t outcap, size_t *outlen);

void hex_encode(const unsigned char *in, size_t n, char *out); /* out: 2n + 1 */
int hex_decode(const char *s, size_t slen, unsigned char *out, size_t n); /* slen must be 2n */

/* Strict, padded, standard-alphabet base64.  Returns 0 iff s decodes to exactly n bytes. */
int base64_decode_exact(const char *s, size_t slen, unsigned char *out, size_t n);
/* out must hold sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) bytes. */
void base64_encode(const unsigned char *in, size_t n, char *out, size_t outsz);

/*
 * Parse "<algo>:<digest>" or "<algo>-<base64>".  If `want` is not NULL the
 * algorithm must be *want.  Errors name the string.
 */
int hash_parse(const char *s, size_t len, const enum hash_algo *want, struct hash *out,
               struct rx_error **err);

/* Parse a bare digest of a known algorithm: base16, nix32 or base64 by length. */
int hash_parse_digest(const char *s, size_t len, enum hash_algo algo, struct hash *out);

/* Format as "<algo>:<digest>" (or SRI) into out (HASH_STR_MAX bytes). */
void hash_format(const struct hash *h, enum hash_encoding enc, char *out);

bool hash_equal(const struct hash *a, const struct hash *b);

/* Streaming sha256. */
struct sha256_ctx {
    SHA256_CTX st;
};
void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *p, size_t n);
void sha256_final(struct sha256_ctx *c, struct hash *out);
void sha256_buf(const void *p, size_t n, struct hash *out);

/* Call once before using anything here (libsodium's initialisation). */
int crypto_init(void);
