/* Reading nix-index databases as a stream (nixdb.h). */
#include "config.h"
#include "nixdb.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define IN_CHUNK (64 * 1024)

struct nixdb_reader {
    char *name; /* owned: the file, for messages */
    int fd;     /* -1 when reading from memory */
    const unsigned char *mem;
    size_t memlen, mempos;

    ZSTD_DStream *zs;
    unsigned char *in; /* IN_CHUNK bytes */
    ZSTD_inBuffer zin;
    size_t zret;       /* ZSTD_decompressStream's last hint: 0 when a frame just ended */
    bool flush;        /* the output was full: zstd may hold more without new input */
    bool any_input;
    unsigned char *out; /* decompressed bytes, [out_pos, out_len) not yet read */
    size_t out_cap, out_pos, out_len;
    uint64_t offset; /* decompressed bytes consumed */

    char *meta; /* NIXDB_LINE_MAX + 1 */
    size_t meta_len;
    char *path; /* NIXDB_LINE_MAX + 1: the last line's path, which the next shares */
    size_t path_len;
    long shared;
    bool files_pending; /* file lines since the last package line */
    bool failed;
};

static int fail(struct nixdb_reader *r, struct rx_error **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct nixdb_reader *r, struct rx_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    r->failed = true;
    return rx_error_set(err, RX_EFORMAT, "'%s': %s", r->name, msg);
}

static ssize_t source_read(struct nixdb_reader *r, void *buf, size_t n)
{
    if (r->fd < 0) {
        size_t k = r->memlen - r->mempos < n ? r->memlen - r->mempos : n;
        memcpy(buf, r->mem + r->mempos, k);
        r->mempos += k;
        return (ssize_t)k;
    }
    return read_retry(r->fd, buf, n);
}

static int start(struct nixdb_reader *r, struct nixdb_reader **out, struct rx_error **err)
{
    unsigned char head[NIXDB_HEADER_LEN];
    size_t got = 0;
    while (got < sizeof head) {
        ssize_t k = source_read(r, head + got, sizeof head - got);
        if (k < 0) {
            rx_error_errno(err, "'%s': read", r->name);
            goto bad;
        }
        if (k == 0)
            break;
        got += (size_t)k;
    }
    if (got < 4 || memcmp(head, NIXDB_MAGIC, 4) != 0) {
        char shown[32] = "";
        size_t k = 0;
        for (size_t i = 0; i < got && i < 4; i++)
            k += (size_t)snprintf(shown + k, sizeof shown - k,
                                  head[i] >= 0x20 && head[i] < 0x7f ? "%c" : "\\x%02x", head[i]);
        fail(r, err, "not a nix-index database: it starts with '%s', not 'NIXI'", shown);
        goto bad;
    }
    if (got < sizeof head) {
        fail(r, err, "truncated: the header ends after %zu bytes", got);
        goto bad;
    }
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | head[4 + i];
    if (v != NIXDB_VERSION) {
        fail(r, err,
             "nix-index database format version %llu; runix reads version %d (update runix, "
             "or download a database of that version)",
             (unsigned long long)v, NIXDB_VERSION);
        goto bad;
    }
    r->zs = ZSTD_createDStream();
    if (!r->zs || ZSTD_isError(ZSTD_initDStream(r->zs)) ||
        ZSTD_isError(ZSTD_DCtx_setParameter(r->zs, ZSTD_d_windowLogMax, NIXDB_WINDOW_LOG_MAX))) {
        fail(r, err, "cannot start a zstd decoder");
        goto bad;
    }
    r->in = xmalloc(IN_CHUNK);
    r->zin = (ZSTD_inBuffer){ r->in, 0, 0 };
    r->out_cap = ZSTD_DStreamOutSize();
    r->out = xmalloc(r->out_cap);
    r->meta = xmalloc(NIXDB_LINE_MAX + 1);
    r->path = xmalloc(NIXDB_LINE_MAX + 1);
    r->zret = 1;
    *out = r;
    return 0;
bad:
    nixdb_close(r);
    return -1;
}

int nixdb_open(const char *file, struct nixdb_reader **out, struct rx_error **err)
{
    *out = NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return rx_error_errno(err, "cannot open the index '%s'", file);
    struct nixdb_reader *r = xcalloc(1, sizeof *r);
    r->name = xstrdup(file);
    r->fd = fd;
    return start(r, out, err);
}

int nixdb_open_mem(const void *data, size_t len, const char *name, struct nixdb_reader **out,
                   struct rx_error **err)
{
    *out = NULL;
    struct nixdb_reader *r = xcalloc(1, sizeof *r);
    r->name = xstrdup(name);
    r->fd = -1;
    r->mem = data;
    r->memlen = len;
    return start(r, out, err);
}

void nixdb_close(struct nixdb_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    ZSTD_freeDStream(r->zs);
    free(r->in);
    free(r->out);
    free(r->meta);
    free(r->path);
    free(r->name);
    free(r);
}

/* Make decompressed bytes available: 1, 0 at the end of the stream, -1 with err. */
static int fill(struct nixdb_reader *r, struct rx_error **err)
{
    while (r->out_pos == r->out_len) {
        if (r->zin.pos == r->zin.size && !r->flush) {
            ssize_t k = source_read(r, r->in, IN_CHUNK);
            if (k < 0) {
                r->failed = true;
                return rx_error_errno(err, "'%s': read", r->name);
            }
            if (k == 0) {
                if (!r->any_input)
                    return fail(r, err, "no zstd stream after the header");
                if (r->zret != 0)
                    return fail(r, err, "truncated zstd stream (after %llu decompressed bytes)",
                                (unsigned long long)r->offset);
                return 0;
            }
            r->any_input = true;
            r->zin = (ZSTD_inBuffer){ r->in, (size_t)k, 0 };
        }
        ZSTD_outBuffer o = { r->out, r->out_cap, 0 };
        size_t ret = ZSTD_decompressStream(r->zs, &o, &r->zin);
        if (ZSTD_isError(ret))
            return fail(r, err, "corrupt zstd stream after %llu decompressed bytes: %s",
                        (unsigned long long)r->offset, ZSTD_getErrorName(ret));
        r->zret = ret;
        r->flush = o.pos == o.size;
        r->out_pos = 0;
        r->out_len = o.pos;
    }
    return 1;
}

/* One byte of the stream into *c: 1, 0 at its end, -1. */
static int get_byte(struct nixdb_reader *r, unsigned char *c, struct rx_error **err)
{
    int f = fill(r, err);
    if (f <= 0)
        return f;
    *c = r->out[r->out_pos++];
    r->offset++;
    return 1;
}

/*
 * Append bytes up to (not including) `stop` to buf[*len...], consuming the
 * stop byte too; at most NIXDB_LINE_MAX in all.  1, 0 when the stream ended
 * before `stop`, -1.
 */
static int read_until(struct nixdb_reader *r, unsigned char stop, char *buf, size_t *len,
                      uint64_t line_start, struct rx_error **err)
{
    for (;;) {
        int f = fill(r, err);
        if (f <= 0)
            return f;
        const unsigned char *p = r->out + r->out_pos;
        size_t avail = r->out_len - r->out_pos;
        const unsigned char *hit = memchr(p, stop, avail);
        size_t n = hit ? (size_t)(hit - p) : avail;
        if (*len + n > NIXDB_LINE_MAX)
            return fail(r, err, "the line at offset %llu is longer than %d bytes",
                        (unsigned long long)line_start, NIXDB_LINE_MAX);
        memcpy(buf + *len, p, n);
        *len += n;
        r->out_pos += n + (hit ? 1 : 0);
        r->offset += n + (hit ? 1 : 0);
        if (hit)
            return 1;
    }
}

static int parse_size(const char *s, size_t n, uint64_t *out)
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

int nixdb_next(struct nixdb_reader *r, struct nixdb_line *line, struct rx_error **err)
{
    if (r->failed)
        return rx_error_set(err, RX_EFORMAT, "'%s': reading stopped at an earlier error",
                            r->name);
    uint64_t at = r->offset;
    int f = fill(r, err);
    if (f < 0)
        return -1;
    if (f == 0) {
        if (r->files_pending)
            return fail(r, err, "file entries at the end have no package entry after them");
        return 0;
    }
    r->meta_len = 0;
    f = read_until(r, 0, r->meta, &r->meta_len, at, err);
    if (f <= 0)
        return f < 0 ? -1 : fail(r, err, "the stream ends inside the line at offset %llu",
                                 (unsigned long long)at);
    if (memchr(r->meta, '\n', r->meta_len))
        return fail(r, err, "the line at offset %llu has a newline in its metadata",
                    (unsigned long long)at);
    unsigned char b;
    long diff;
    if ((f = get_byte(r, &b, err)) <= 0)
        goto short_line;
    if (b != 0x80) {
        diff = (signed char)b;
    } else {
        unsigned char hi, lo;
        if ((f = get_byte(r, &hi, err)) <= 0 || (f = get_byte(r, &lo, err)) <= 0)
            goto short_line;
        diff = (int16_t)(uint16_t)((unsigned)hi << 8 | lo);
    }
    long shared = r->shared + diff;
    if (shared < 0 || (size_t)shared > r->path_len)
        return fail(r, err,
                    "the line at offset %llu shares %ld bytes with a previous path of %zu",
                    (unsigned long long)at, shared, r->path_len);
    r->shared = shared;
    r->path_len = (size_t)shared;
    f = read_until(r, '\n', r->path, &r->path_len, at, err);
    if (f <= 0)
        goto short_line;
    r->path[r->path_len] = '\0';
    r->meta[r->meta_len] = '\0';

    memset(line, 0, sizeof *line);
    line->offset = at;
    if (r->meta_len == 1 && r->meta[0] == 'p') {
        line->kind = NIXDB_PACKAGE;
        line->json = r->path;
        line->json_len = r->path_len;
        r->files_pending = false;
        return 1;
    }
    line->kind = NIXDB_FILE;
    line->path = r->path;
    line->path_len = r->path_len;
    char t = r->meta_len ? r->meta[r->meta_len - 1] : '\0';
    switch (t) {
    case 'r':
    case 'x':
    case 'd':
        if (parse_size(r->meta, r->meta_len - 1, &line->size) < 0)
            return fail(r, err, "the entry at offset %llu has a bad size '%.*s'",
                        (unsigned long long)at, (int)(r->meta_len - 1), r->meta);
        line->type = (enum nixdb_type)t;
        break;
    case 's':
        line->type = NIXDB_SYMLINK;
        line->target = r->meta;
        line->target_len = r->meta_len - 1;
        break;
    default:
        return fail(r, err, "the entry at offset %llu has unknown metadata (not a size with "
                            "r, x or d, a target with s, or p)",
                    (unsigned long long)at);
    }
    r->files_pending = true;
    return 1;
short_line:
    if (f < 0)
        return -1;
    return fail(r, err, "the stream ends inside the line at offset %llu",
                (unsigned long long)at);
}

static const char *str_member(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

int nixdb_package_parse(const struct nixdb_reader *r, const struct nixdb_line *line,
                        struct nixdb_package *p, struct rx_error **err)
{
    memset(p, 0, sizeof *p);
    unsigned long long at = (unsigned long long)line->offset;
    json_error_t jerr;
    json_t *top = json_loadb(line->json, line->json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!top)
        return rx_error_set(err, RX_EFORMAT, "'%s': the package entry at offset %llu is not "
                                             "JSON: %s",
                            r->name, at, jerr.text);
    int ret = -1;
    _cleanup_free_ char *full = NULL;
    const char *dir = str_member(top, "store_dir");
    const char *hash = str_member(top, "hash");
    const char *name = str_member(top, "name");
    json_t *origin = json_object_get(top, "origin");
    json_t *sys = json_object_get(origin, "system");
    if (!json_is_object(top) || !dir || !hash || !name || !json_is_object(origin) ||
        !str_member(origin, "attr") || !str_member(origin, "output") ||
        !json_is_boolean(json_object_get(origin, "toplevel")) ||
        (sys && !json_is_string(sys) && !json_is_null(sys))) {
        rx_error_set(err, RX_EFORMAT,
                     "'%s': the package entry at offset %llu lacks store_dir, hash, name or "
                     "origin (attr, output, toplevel, system)",
                     r->name, at);
        goto out;
    }
    if (strcmp(dir, STORE_DIR) != 0) {
        rx_error_set(err, RX_EFORMAT, "'%s': the package entry at offset %llu is for the store "
                                      "'%s', not " STORE_DIR,
                     r->name, at, dir);
        goto out;
    }
    full = xasprintf(STORE_DIR "/%s-%s", hash, name);
    struct rx_error *e = NULL;
    if (strlen(full) > STORE_PATH_MAX || store_path_parse(full, strlen(full), &p->path, &e) < 0) {
        rx_error_set(err, RX_EFORMAT, "'%s': the package entry at offset %llu has a store path "
                                      "that does not parse: %s",
                     r->name, at, e ? e->msg : "too long");
        rx_error_free(e);
        goto out;
    }
    p->attr = xstrdup(str_member(origin, "attr"));
    p->output = xstrdup(str_member(origin, "output"));
    p->toplevel = json_is_true(json_object_get(origin, "toplevel"));
    p->system = json_is_string(sys) ? xstrdup(json_string_value(sys)) : NULL;
    ret = 0;
out:
    json_decref(top);
    if (ret < 0)
        nixdb_package_release(p);
    return ret;
}

void nixdb_package_release(struct nixdb_package *p)
{
    free(p->attr);
    free(p->output);
    free(p->system);
    p->attr = p->output = p->system = NULL;
}

bool nixdb_line_may_have_attr(const struct nixdb_line *line, const char *attr, size_t len)
{
    static const char key[] = "\"attr\":\"";
    const char *s = line->json, *end = line->json + line->json_len;
    while (s < end) {
        const char *k = memmem(s, (size_t)(end - s), key, sizeof key - 1);
        if (!k)
            return false;
        const char *v = k + sizeof key - 1;
        if ((size_t)(end - v) > len && memcmp(v, attr, len) == 0 && v[len] == '"')
            return true;
        s = v;
    }
    return false;
}
