/* Parsing and signature checks of narinfo files. */
#include "config.h"
#include "narinfo.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util-buf.h"
#include "util-mem.h"

#include "banned.h"

enum field {
    F_STORE_PATH,
    F_URL,
    F_COMPRESSION,
    F_FILE_HASH,
    F_FILE_SIZE,
    F_NAR_HASH,
    F_NAR_SIZE,
    F_REFERENCES,
    F_DERIVER,
    F_SYSTEM,
    F_SIG,
    F_CA,
    F_COUNT,
    F_UNKNOWN = F_COUNT,
};

static const char *const field_names[F_COUNT] = {
    [F_STORE_PATH] = "StorePath", [F_URL] = "URL",         [F_COMPRESSION] = "Compression",
    [F_FILE_HASH] = "FileHash",   [F_FILE_SIZE] = "FileSize", [F_NAR_HASH] = "NarHash",
    [F_NAR_SIZE] = "NarSize",     [F_REFERENCES] = "References", [F_DERIVER] = "Deriver",
    [F_SYSTEM] = "System",        [F_SIG] = "Sig",         [F_CA] = "CA",
};

static enum field field_lookup(const char *k, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == n && memcmp(field_names[i], k, n) == 0)
            return (enum field)i;
    return F_UNKNOWN;
}

void narinfo_release(struct narinfo *ni)
{
    free(ni->url);
    free(ni->compression);
    free(ni->refs);
    free(ni->system);
    for (size_t i = 0; i < ni->nsigs; i++)
        free(ni->sigs[i]);
    free(ni->sigs);
    free(ni->ca);
    free(ni->dropped);
    memset(ni, 0, sizeof *ni);
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static bool url_ok(const char *s, size_t n)
{
    if (n == 0 || s[0] == '/' || memmem(s, n, "://", 3) || memchr(s, '#', n) ||
        memchr(s, '\\', n) || memchr(s, ' ', n))
        return false;
    /* libcurl decodes a file:// path: "%2e%2e" would be a ".." segment. */
    if (memchr(s, '%', n))
        return false;
    /* No ".." path segment before any query string. */
    const char *q = memchr(s, '?', n);
    size_t plen = q ? (size_t)(q - s) : n;
    size_t start = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i == plen || s[i] == '/') {
            if (i - start == 2 && s[start] == '.' && s[start + 1] == '.')
                return false;
            start = i + 1;
        }
    }
    return true;
}

static bool compression_ok(const char *s, size_t n)
{
    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

static int parse_refs(struct narinfo *ni, const char *v, size_t n, struct rx_error **err)
{
    size_t i = 0;
    while (i < n) {
        if (v[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && v[j] != ' ')
            j++;
        struct store_path p;
        if (store_path_parse_basename(v + i, j - i, &p, err) < 0)
            return rx_error_wrap(err, "field 'References'");
        ni->refs = xrealloc(ni->refs, (ni->nrefs + 1) * sizeof *ni->refs);
        ni->refs[ni->nrefs++] = p;
        i = j;
    }
    return 0;
}

static int cmp_paths(const void *a, const void *b)
{
    return store_path_cmp(a, b);
}

/* A sorted copy of the references (caller frees). */
static struct store_path *sorted_refs(const struct narinfo *ni)
{
    struct store_path *refs = xmalloc((ni->nrefs ? ni->nrefs : 1) * sizeof *refs);
    if (ni->nrefs)
        memcpy(refs, ni->refs, ni->nrefs * sizeof *refs);
    qsort(refs, ni->nrefs, sizeof *refs, cmp_paths);
    return refs;
}

static int check_unique_refs(const struct narinfo *ni, struct rx_error **err)
{
    struct store_path *refs = sorted_refs(ni);
    int r = 0;
    for (size_t i = 1; i < ni->nrefs && r == 0; i++) {
        if (store_path_cmp(&refs[i - 1], &refs[i]) == 0)
            r = rx_error_set(err, RX_EFORMAT, "field 'References' lists '%s-%s' twice",
                             refs[i].hash, refs[i].name);
    }
    free(refs);
    return r;
}

/* Add "field 'F' ('value') is dropped: why" to ni->dropped. */
static void note_dropped(struct narinfo *ni, const char *field, const char *v, size_t n,
                         const char *why)
{
    int shown = n > 200 ? 200 : (int)n;
    char *msg = xasprintf("%s%sunsigned field '%s' ('%.*s%s') is dropped: %s",
                          ni->dropped ? ni->dropped : "", ni->dropped ? "; " : "", field, shown,
                          v, (size_t)shown < n ? "..." : "", why);
    free(ni->dropped);
    ni->dropped = msg;
}

/*
 * The hash part of a store path as Nix makes it (makeStorePath): sha256 of
 * "<type>:<algo>:<base16 inner>:/nix/store:<name>", folded to 20 bytes
 * (compressHash) and written in nix32.
 */
static void make_store_hash(const char *type, const struct hash *inner, const char *name,
                            char out[STORE_HASH_LEN + 1])
{
    char hs[HASH_STR_MAX];
    hash_format(inner, HASH_BASE16, hs);
    _cleanup_free_ char *s = xasprintf("%s:%s:%s:%s", type, hs, STORE_DIR, name);
    struct hash h;
    sha256_buf(s, strlen(s), &h);
    unsigned char folded[20] = {0};
    for (size_t i = 0; i < SHA256_SIZE; i++)
        folded[i % 20] ^= h.bytes[i];
    nix32_encode(folded, sizeof folded, out);
}

/* Nix's makeType: "<kind>:<ref>:<ref>...[:self]", references sorted, the path itself as "self". */
static char *make_type(const struct narinfo *ni, const char *kind, bool *self)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    struct store_path *refs = sorted_refs(ni);
    char path[STORE_PATH_MAX + 1];
    int r = rx_buf_append(&b, kind, strlen(kind));
    *self = false;
    for (size_t i = 0; i < ni->nrefs; i++) {
        if (store_path_cmp(&refs[i], &ni->path) == 0) {
            *self = true;
            continue;
        }
        store_path_format(&refs[i], path);
        r |= rx_buf_append(&b, ":", 1);
        r |= rx_buf_append(&b, path, strlen(path));
    }
    if (*self)
        r |= rx_buf_append(&b, ":self", 5);
    (void)r; /* the buffer has no limit */
    free(refs);
    return rx_buf_detach(&b, NULL);
}

/*
 * Is ca a content address Nix 2.8 parses (parseContentAddress), and does
 * it give ni's store path (makeTextPath, makeFixedOutputPath)?  NULL if so,
 * else why not.
 *   text:sha256:<hash>
 *   fixed:[r:]<md5|sha1|sha256|sha512>:<hash>
 * with <hash> in base16, nix32 or base64.
 */
static const char *ca_check(const struct narinfo *ni, const char *ca)
{
    bool text = strncmp(ca, "text:", 5) == 0;
    bool recursive = false;
    const char *rest;
    if (text) {
        rest = ca + 5;
    } else if (strncmp(ca, "fixed:", 6) == 0) {
        rest = ca + 6;
        recursive = strncmp(rest, "r:", 2) == 0;
        if (recursive)
            rest += 2;
    } else {
        return "not a content address ('text:' or 'fixed:')";
    }
    const char *colon = strchr(rest, ':');
    enum hash_algo algo;
    if (!colon || hash_algo_parse(rest, (size_t)(colon - rest), &algo) < 0)
        return "unknown hash algorithm";
    if (text && algo != HASH_SHA256)
        return "a text content address must use sha256";
    struct hash inner;
    if (hash_parse_digest(colon + 1, strlen(colon + 1), algo, &inner) < 0)
        return "not a hash";

    char want[STORE_HASH_LEN + 1];
    bool self;
    if (text || (recursive && algo == HASH_SHA256)) {
        _cleanup_free_ char *type = make_type(ni, text ? "text" : "source", &self);
        if (text && self)
            return "a text content address cannot refer to itself";
        make_store_hash(type, &inner, ni->path.name, want);
    } else {
        if (ni->nrefs > 0)
            return "a fixed-output content address other than 'fixed:r:sha256' has no references";
        char hs[HASH_STR_MAX];
        hash_format(&inner, HASH_BASE16, hs);
        _cleanup_free_ char *fixed = xasprintf("fixed:out:%s%s:", recursive ? "r:" : "", hs);
        struct hash h;
        sha256_buf(fixed, strlen(fixed), &h);
        make_store_hash("output:out", &h, ni->path.name, want);
    }
    if (strcmp(want, ni->path.hash) != 0)
        return "it does not match the store path";
    return NULL;
}

static int parse_field(struct narinfo *ni, enum field f, const char *v, size_t n,
                       struct rx_error **err)
{
    static const enum hash_algo sha256 = HASH_SHA256;
    const char *name = field_names[f];

    switch (f) {
    case F_STORE_PATH:
        if (store_path_parse(v, n, &ni->path, err) < 0)
            return rx_error_wrap(err, "field 'StorePath'");
        return 0;
    case F_URL:
        if (!url_ok(v, n))
            return rx_error_set(err, RX_EFORMAT,
                                "field 'URL' ('%.*s') is not a relative path inside the cache",
                                (int)n, v);
        ni->url = xstrndup(v, n);
        return 0;
    case F_COMPRESSION:
        if (!compression_ok(v, n))
            return rx_error_set(err, RX_EFORMAT, "field 'Compression' has an invalid value '%.*s'",
                                (int)n, v);
        ni->compression = xstrndup(v, n);
        return 0;
    case F_FILE_HASH:
        ni->has_file_hash = true;
        if (hash_parse(v, n, &sha256, &ni->file_hash, err) < 0)
            return rx_error_wrap(err, "field '%s'", name);
        return 0;
    case F_NAR_HASH:
        if (hash_parse(v, n, &sha256, &ni->nar_hash, err) < 0)
            return rx_error_wrap(err, "field '%s'", name);
        return 0;
    case F_FILE_SIZE:
        ni->has_file_size = true;
        if (parse_u64(v, n, &ni->file_size) < 0)
            return rx_error_set(err, RX_EFORMAT, "field 'FileSize' is not a size: '%.*s'", (int)n,
                                v);
        return 0;
    case F_NAR_SIZE:
        if (parse_u64(v, n, &ni->nar_size) < 0 || ni->nar_size == 0)
            return rx_error_set(err, RX_EFORMAT,
                                "field 'NarSize' is not a positive size: '%.*s'", (int)n, v);
        return 0;
    case F_REFERENCES:
        return parse_refs(ni, v, n, err);
    case F_DERIVER: {
        if (n == 15 && memcmp(v, "unknown-deriver", 15) == 0)
            return 0;
        /* Unsigned: a bad value is dropped, not a reason to refuse a signed narinfo. */
        struct rx_error *e = NULL;
        if (store_path_parse_basename(v, n, &ni->deriver, &e) < 0 ||
            strlen(ni->deriver.name) < 5 ||
            strcmp(ni->deriver.name + strlen(ni->deriver.name) - 4, ".drv") != 0) {
            note_dropped(ni, "Deriver", v, n, e ? e->msg : "not a derivation's store path");
            rx_error_free(e);
            memset(&ni->deriver, 0, sizeof ni->deriver);
            return 0;
        }
        ni->has_deriver = true;
        return 0;
    }
    case F_SYSTEM:
        ni->system = xstrndup(v, n);
        return 0;
    case F_SIG:
        ni->sigs = xrealloc(ni->sigs, (ni->nsigs + 1) * sizeof *ni->sigs);
        ni->sigs[ni->nsigs++] = xstrndup(v, n);
        return 0;
    case F_CA:
        /* Checked against StorePath and References once all are read. */
        ni->ca = xstrndup(v, n);
        return 0;
    case F_UNKNOWN:
        break;
    }
    return 0;
}

int narinfo_parse(const char *text, size_t len, struct narinfo *out, struct rx_error **err)
{
    bool seen[F_COUNT] = {false};
    size_t lineno = 0;

    memset(out, 0, sizeof *out);
    if (len > NARINFO_MAX)
        return rx_error_set(err, RX_EFORMAT, "narinfo is larger than %d bytes", NARINFO_MAX);
    if (len == 0)
        return rx_error_set(err, RX_EFORMAT, "narinfo is empty");
    if (text[len - 1] != '\n')
        return rx_error_set(err, RX_EFORMAT, "narinfo does not end with a newline");

    size_t pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        lineno++;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c < 0x20 || c == 0x7f) {
                narinfo_release(out);
                return rx_error_set(err, RX_EFORMAT,
                                    "narinfo line %zu contains a control character (0x%02x)",
                                    lineno, c);
            }
        }
        const char *colon = memchr(line, ':', n);
        if (!colon || colon == line) {
            narinfo_release(out);
            return rx_error_set(err, RX_EFORMAT, "narinfo line %zu is not 'Key: value'", lineno);
        }
        size_t klen = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vlen = n - klen - 1;
        if (vlen > 0) {
            if (*v != ' ') {
                narinfo_release(out);
                return rx_error_set(err, RX_EFORMAT,
                                    "narinfo line %zu has no space after the ':'", lineno);
            }
            v++;
            vlen--;
        }
        enum field f = field_lookup(line, klen);
        if (f == F_UNKNOWN)
            continue;
        if (f != F_SIG && seen[f]) {
            narinfo_release(out);
            return rx_error_set(err, RX_EFORMAT, "narinfo has field '%s' more than once",
                                field_names[f]);
        }
        seen[f] = true;
        if (parse_field(out, f, v, vlen, err) < 0) {
            narinfo_release(out);
            return rx_error_wrap(err, "narinfo line %zu", lineno);
        }
    }

    static const enum field required[] = {F_STORE_PATH, F_URL, F_NAR_HASH, F_NAR_SIZE};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        if (!seen[required[i]]) {
            narinfo_release(out);
            return rx_error_set(err, RX_EFORMAT, "narinfo lacks the mandatory field '%s'",
                                field_names[required[i]]);
        }
    }
    if (check_unique_refs(out, err) < 0) {
        narinfo_release(out);
        return -1;
    }
    if (!out->compression)
        out->compression = xstrdup("bzip2");
    /* Nix stores CA as is and aborts on a value it cannot parse (nix path-info, --verify). */
    const char *why = out->ca ? ca_check(out, out->ca) : NULL;
    if (why) {
        note_dropped(out, "CA", out->ca, strlen(out->ca), why);
        free(out->ca);
        out->ca = NULL;
    }
    return 0;
}

char *narinfo_fingerprint(const struct narinfo *ni)
{
    return store_fingerprint(&ni->path, &ni->nar_hash, ni->nar_size, ni->refs, ni->nrefs);
}

static void add_line(struct rx_buf *b, const char *key, const char *value)
{
    int r = rx_buf_append(b, key, strlen(key));
    r |= rx_buf_append(b, ": ", 2);
    r |= rx_buf_append(b, value, strlen(value));
    r |= rx_buf_append(b, "\n", 1);
    (void)r;
}

char *narinfo_format(const struct narinfo *ni)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    char s[STORE_PATH_MAX + 1];
    char h[HASH_STR_MAX];
    char num[32];

    store_path_format(&ni->path, s);
    add_line(&b, "StorePath", s);
    add_line(&b, "URL", ni->url);
    add_line(&b, "Compression", ni->compression);
    if (ni->has_file_hash) {
        hash_format(&ni->file_hash, HASH_NIX32, h);
        add_line(&b, "FileHash", h);
    }
    if (ni->has_file_size) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)ni->file_size);
        add_line(&b, "FileSize", num);
    }
    hash_format(&ni->nar_hash, HASH_NIX32, h);
    add_line(&b, "NarHash", h);
    snprintf(num, sizeof num, "%llu", (unsigned long long)ni->nar_size);
    add_line(&b, "NarSize", num);
    int r = rx_buf_append(&b, "References: ", 12);
    for (size_t i = 0; i < ni->nrefs; i++) {
        store_path_basename(&ni->refs[i], s);
        if (i)
            r |= rx_buf_append(&b, " ", 1);
        r |= rx_buf_append(&b, s, strlen(s));
    }
    r |= rx_buf_append(&b, "\n", 1);
    (void)r;
    if (ni->has_deriver) {
        store_path_basename(&ni->deriver, s);
        add_line(&b, "Deriver", s);
    }
    if (ni->system)
        add_line(&b, "System", ni->system);
    for (size_t i = 0; i < ni->nsigs; i++)
        add_line(&b, "Sig", ni->sigs[i]);
    if (ni->ca)
        add_line(&b, "CA", ni->ca);
    return rx_buf_detach(&b, NULL);
}

int narinfo_verify(const struct narinfo *ni, const struct trusted_keys *tk,
                   struct rx_error **err)
{
    _cleanup_free_ char *fp = narinfo_fingerprint(ni);
    struct rx_buf why = RX_BUF_INIT((size_t)-1);
    int r = 0;

    for (size_t i = 0; i < ni->nsigs; i++) {
        struct signature sig;
        const char *s = ni->sigs[i];
        char note[SIG_NAME_MAX + 64];
        if (signature_parse(s, strlen(s), &sig, NULL) < 0) {
            snprintf(note, sizeof note, "a malformed signature");
        } else if (!trusted_keys_find(tk, sig.name)) {
            snprintf(note, sizeof note, "'%s' (not a trusted key)", sig.name);
        } else if (!trusted_keys_verify(tk, &sig, fp, strlen(fp))) {
            snprintf(note, sizeof note, "'%s' (does not verify)", sig.name);
        } else {
            rx_buf_release(&why);
            return 0;
        }
        if (why.len)
            r |= rx_buf_append(&why, ", ", 2);
        r |= rx_buf_append(&why, note, strlen(note));
    }
    (void)r;
    char path[STORE_PATH_MAX + 1];
    store_path_format(&ni->path, path);
    if (ni->nsigs == 0)
        rx_error_set(err, RX_ESIG, "'%s' is not signed", path);
    else
        rx_error_set(err, RX_ESIG, "'%s' has no valid signature by a trusted key (signed by %s)",
                     path, why.data);
    rx_buf_release(&why);
    return -1;
}
