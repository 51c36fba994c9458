/* SHA-256 through OpenSSL's libcrypto (SHA-NI where the CPU has it). */
/* In a file of its own so that programs which only format hashes do not load libcrypto. */
#include "config.h"
#include "crypto-hash.h"

#include <string.h>

#include "banned.h"

void sha256_init(struct sha256_ctx *c)
{
    SHA256_Init(&c->st);
}

void sha256_update(struct sha256_ctx *c, const void *p, size_t n)
{
    SHA256_Update(&c->st, p, n);
}

void sha256_final(struct sha256_ctx *c, struct hash *out)
{
    out->algo = HASH_SHA256;
    memset(out->bytes, 0, sizeof out->bytes);
    SHA256_Final(out->bytes, &c->st);
}

void sha256_buf(const void *p, size_t n, struct hash *out)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final(&c, out);
}
