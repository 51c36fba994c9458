/* Parsing, checking and formatting store paths (see store-path.h). */
#include "config.h"
#include "store-path.h"

#include <stdio.h>
#include <string.h>

#include "crypto-hash.h"
#include "util-mem.h"
#include "banned.h"

static bool name_char_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.' || c == '_' || c == '?' || c == '=';
}

bool store_path_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > STORE_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok((unsigned char)name[i]))
            return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    if (len >= 2 && name[0] == '.' && name[1] == '-')
        return false;
    if (len >= 3 && name[0] == '.' && name[1] == '.' && name[2] == '-')
        return false;
    return true;
}

int store_path_parse_basename(const char *s, size_t len, struct store_path *out,
                              struct rx_error **err)
{
    unsigned char digest[20];
    if (len < STORE_HASH_LEN + 2)
        return rx_error_set(err, RX_EFORMAT, "'%.*s' is not a store path basename (too short)",
                            (int)len, s);
    if (nix32_decode(s, STORE_HASH_LEN, digest, sizeof digest, NULL) < 0)
        return rx_error_set(err, RX_EFORMAT,
                            "store path '%.*s' has an invalid hash part (not 32 nix32 characters)",
                            (int)len, s);
    if (s[STORE_HASH_LEN] != '-')
        return rx_error_set(err, RX_EFORMAT, "store path '%.*s' has no '-' after its hash part",
                            (int)len, s);
    const char *name = s + STORE_HASH_LEN + 1;
    size_t nlen = len - STORE_HASH_LEN - 1;
    if (nlen > STORE_NAME_MAX)
        return rx_error_set(err, RX_EFORMAT, "store path '%.*s' has a name longer than %d characters",
                            (int)len, s, STORE_NAME_MAX);
    if (!store_path_name_valid(name, nlen))
        return rx_error_set(err, RX_EFORMAT, "store path '%.*s' has an invalid name", (int)len, s);
    memcpy(out->hash, s, STORE_HASH_LEN);
    out->hash[STORE_HASH_LEN] = '\0';
    memcpy(out->name, name, nlen);
    out->name[nlen] = '\0';
    return 0;
}

int store_path_parse_with_subpath(const char *s, size_t len, struct store_path *out,
                                  const char **subpath, struct rx_error **err)
{
    static const char prefix[] = STORE_DIR "/";
    if (len < sizeof prefix - 1 || memcmp(s, prefix, sizeof prefix - 1) != 0) {
        if (len > 0 && s[0] == '/' && memchr(s, '/', len) &&
            len > STORE_HASH_LEN + 2) {
            /* Looks like a path in some other store dir. */
            const char *last = memrchr(s, '/', len);
            size_t dirlen = (size_t)(last - s);
            if (dirlen > 0 && (dirlen != STORE_DIR_LEN || memcmp(s, STORE_DIR, STORE_DIR_LEN) != 0))
                return rx_error_set(err, RX_EFORMAT,
                                    "'%.*s' is not in the Nix store '%s' (only /nix/store is supported)",
                                    (int)len, s, STORE_DIR);
        }
        return rx_error_set(err, RX_EFORMAT, "'%.*s' is not a store path under %s", (int)len, s,
                            STORE_DIR);
    }
    const char *base = s + sizeof prefix - 1;
    size_t rest = len - (sizeof prefix - 1);
    const char *slash = memchr(base, '/', rest);
    size_t blen = slash ? (size_t)(slash - base) : rest;
    if (store_path_parse_basename(base, blen, out, err) < 0)
        return -1;
    *subpath = base + blen;
    return 0;
}

int store_path_parse(const char *s, size_t len, struct store_path *out, struct rx_error **err)
{
    const char *sub;
    if (store_path_parse_with_subpath(s, len, out, &sub, err) < 0)
        return -1;
    if (sub != s + len)
        return rx_error_set(err, RX_EFORMAT,
                            "'%.*s' is not a store path (it has something after the name)",
                            (int)len, s);
    return 0;
}

void store_path_basename(const struct store_path *p, char *out)
{
    snprintf(out, STORE_BASENAME_MAX + 1, "%s-%s", p->hash, p->name);
}

void store_path_format(const struct store_path *p, char *out)
{
    snprintf(out, STORE_PATH_MAX + 1, STORE_DIR "/%s-%s", p->hash, p->name);
}

int store_path_cmp(const struct store_path *a, const struct store_path *b)
{
    int c = memcmp(a->hash, b->hash, STORE_HASH_LEN);
    if (c)
        return c;
    /* Compare "-name" bytewise; both names end at NUL, which sorts first. */
    return strcmp(a->name, b->name);
}

char *store_name_package(const char *name)
{
    for (const char *p = name; (p = strchr(p, '-')); p++)
        if (p[1] >= '0' && p[1] <= '9')
            return xstrndup(name, (size_t)(p - name));
    return xstrdup(name);
}
