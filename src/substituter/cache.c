/* Binary cache URLs and their nix-cache-info. */
#include "config.h"
#include "cache.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto-hash.h"
#include "s3.h"
#include "store-path.h"
#include "util-mem.h"

#include "banned.h"

static int parse_int(const char *s, size_t len, int *out)
{
    if (len == 0 || len > 10)
        return -1;
    long v = 0;
    size_t i = 0;
    bool neg = s[0] == '-';
    if (neg || s[0] == '+')
        i++;
    if (i == len)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > INT_MAX)
        return -1;
    *out = (int)(neg ? -v : v);
    return 0;
}

/* Where the "user:password@" of url is: *at is its '@', or NULL if there is none. */
static const char *userinfo(const char *url, const char **start)
{
    const char *s = strstr(url, "://");
    if (!s)
        return NULL;
    s += 3;
    size_t alen = strcspn(s, "/?#");
    const char *at = NULL;
    for (const char *p = s; p < s + alen; p++)
        if (*p == '@')
            at = p;
    *start = s;
    return at;
}

char *cache_url_redact(const char *url)
{
    const char *start;
    const char *at = userinfo(url, &start);
    if (!at)
        return xstrdup(url);
    return xasprintf("%.*s%s", (int)(start - url), url, at + 1);
}

static int cache_parse(struct cache *c, const char *url, const char *shown, size_t order,
                       struct rx_error **err);
static int parse_query(struct cache *c, const char *q, const char *shown, struct rx_error **err);

int cache_init(struct cache *c, const char *url, size_t order, struct rx_error **err)
{
    memset(c, 0, sizeof *c);
    /* Parse the URL without its credentials, and name it so in messages. */
    const char *start;
    const char *at = userinfo(url, &start);
    _cleanup_free_ char *bare = cache_url_redact(url);
    if (cache_parse(c, bare, bare, order, err) < 0)
        return -1;
    if (at)
        c->auth = xstrndup(start, (size_t)(at + 1 - start));
    return 0;
}

static int cache_parse(struct cache *c, const char *url, const char *shown, size_t order,
                       struct rx_error **err)
{
    size_t scheme;
    if (strncmp(url, "s3://", 5) == 0) {
        for (const char *p = url; *p; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return rx_error_set(err, RX_EUSAGE, "cache '%s': URL contains a space or control "
                                                    "character", shown);
        if (s3_cache_new(url, shown, &c->s3, err) < 0)
            return -1;
        c->url = s3_cache_url(c->s3);
        c->order = order;
        return parse_query(c, strchr(url, '?'), shown, err);
    }
    if (strncmp(url, "https://", 8) == 0)
        scheme = 8;
    else if (strncmp(url, "http://", 7) == 0)
        scheme = 7;
    else if (strncmp(url, "file://", 7) == 0)
        scheme = 7;
    else
        return rx_error_set(err, RX_EUSAGE,
                            "cache '%s': unsupported URL (use https://, http://, s3:// or file://)", shown);
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return rx_error_set(err, RX_EUSAGE, "cache '%s': URL contains a space or control "
                                                "character", shown);
    const char *q = strchr(url, '?');
    size_t len = q ? (size_t)(q - url) : strlen(url);
    if (memchr(url, '#', len))
        return rx_error_set(err, RX_EUSAGE, "cache '%s': URL has a fragment", shown);
    while (len > scheme && url[len - 1] == '/')
        len--;
    if (len == scheme || (scheme == 7 && strncmp(url, "file://", 7) == 0 && url[7] != '/'))
        return rx_error_set(err, RX_EUSAGE, "cache '%s': URL has no %s", shown,
                            strncmp(url, "file://", 7) == 0 ? "absolute path" : "host");
    c->url = xstrndup(url, len);
    c->order = order;
    return parse_query(c, q, shown, err);
}

/* The query string at q ('?' or NULL): priority=N is kept, the rest is Nix's or s3.c's. */
static int parse_query(struct cache *c, const char *q, const char *shown, struct rx_error **err)
{
    if (!q)
        return 0;
    /* key=value&key=value */
    const char *p = q + 1;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen > 9 && strncmp(p, "priority=", 9) == 0) {
            if (parse_int(p + 9, plen - 9, &c->priority) < 0) {
                rx_error_set(err, RX_EUSAGE, "cache '%s': priority is not a number", shown);
                cache_release(c);
                return -1;
            }
            c->priority_from_url = true;
        }
        p += plen + (amp ? 1 : 0);
    }
    return 0;
}

void cache_release(struct cache *c)
{
    free(c->url);
    free(c->auth);
    free(c->why);
    s3_cache_free(c->s3);
    c->url = c->auth = c->why = NULL;
    c->s3 = NULL;
}

char *cache_file_url(const struct cache *c, const char *rel)
{
    if (c->s3)
        return xasprintf("%s/%s", c->s3->base, rel);
    if (!c->auth)
        return xasprintf("%s/%s", c->url, rel);
    const char *host = strstr(c->url, "://") + 3;
    return xasprintf("%.*s%s%s/%s", (int)(host - c->url), c->url, c->auth, host, rel);
}

bool cache_rel_inside(const char *rel)
{
    size_t n = strcspn(rel, "?#");
    _cleanup_free_ char *d = xmalloc(n + 1);
    size_t dn = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char byte;
        if (rel[i] == '%' && i + 2 < n && hex_decode(rel + i + 1, 2, &byte, 1) == 0) {
            d[dn++] = (char)byte;
            i += 2;
        } else {
            d[dn++] = rel[i];
        }
    }
    if (dn == 0 || d[0] == '/' || memchr(d, '\0', dn) || memchr(d, '\\', dn))
        return false;
    long depth = 0;
    size_t start = 0;
    for (size_t i = 0; i <= dn; i++) {
        if (i < dn && d[i] != '/')
            continue;
        size_t len = i - start;
        if (len == 2 && d[start] == '.' && d[start + 1] == '.') {
            if (--depth < 0)
                return false;
        } else if (len > 0 && !(len == 1 && d[start] == '.')) {
            depth++;
        }
        start = i + 1;
    }
    return depth > 0;
}

int cache_apply_info(struct cache *c, const char *text, size_t len, struct rx_error **err)
{
    bool have_store_dir = false;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (colon) {
            size_t klen = (size_t)(colon - line);
            const char *v = colon + 1, *ve = le;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r'))
                ve--;
            size_t vlen = (size_t)(ve - v);
            if (klen == 8 && memcmp(line, "StoreDir", 8) == 0) {
                if (vlen != STORE_DIR_LEN || memcmp(v, STORE_DIR, STORE_DIR_LEN) != 0)
                    return rx_error_set(err, RX_EUNSUPPORTED,
                                        "cache '%s' is for store dir '%.*s', not " STORE_DIR,
                                        c->url, (int)(vlen > 200 ? 200 : vlen), v);
                have_store_dir = true;
            } else if (klen == 8 && memcmp(line, "Priority", 8) == 0) {
                int prio;
                if (parse_int(v, vlen, &prio) < 0)
                    return rx_error_set(err, RX_EFORMAT,
                                        "cache '%s': nix-cache-info has a bad Priority", c->url);
                if (!c->priority_from_url)
                    c->priority = prio;
            }
        }
        line = le + 1;
    }
    if (!have_store_dir)
        return rx_error_set(err, RX_EFORMAT, "cache '%s': nix-cache-info has no StoreDir",
                            c->url);
    return 0;
}

static int cache_cmp(const void *a, const void *b)
{
    const struct cache *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

void cache_sort(struct cache *caches, size_t n)
{
    qsort(caches, n, sizeof *caches, cache_cmp);
}

bool cache_file_resolves_inside(const struct cache *c, const char *rel)
{
    if (strncmp(c->url, "file://", 7) != 0)
        return true;
    const char *dir = c->url + 7;
    _cleanup_free_ char *path = xasprintf("%s/%.*s", dir, (int)strcspn(rel, "?#"), rel);
    _cleanup_free_ char *real_dir = realpath(dir, NULL);
    _cleanup_free_ char *real = realpath(path, NULL);
    if (!real)
        return errno == ENOENT || errno == ENOTDIR;
    if (!real_dir)
        return false;
    size_t n = strlen(real_dir);
    return strncmp(real, real_dir, n) == 0 && (real[n] == '/' || (n == 1 && real_dir[0] == '/'));
}

const struct cache *cache_find_s3(const struct cache *caches, size_t n, const char *url)
{
    for (size_t i = 0; i < n; i++) {
        const struct s3_cache *s = caches[i].s3;
        if (!s)
            continue;
        size_t bl = strlen(s->base);
        if (strncmp(url, s->base, bl) == 0 && url[bl] == '/')
            return &caches[i];
    }
    return NULL;
}
