/* The sidecars of a database, for lookups that must not decompress it (nixdb.h). */
#include "config.h"
#include "nixdb.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-buf.h"
#include "util-fs.h"
#include "util-mem.h"

#include "banned.h"

#define SIDE_MAGIC "runix index sidecar 1 "
#define SIDE_FIELDS_MAX 16

struct lines {
    char **v;
    size_t n, cap;
};

static void lines_push(struct lines *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = s;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A field may hold no control character: they would sort before the separator. */
static bool field_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

static int write_side(const char *file, const char *head, struct lines *l, struct rx_error **err)
{
    qsort(l->v, l->n, sizeof *l->v, cmp_line);
    size_t total = strlen(head);
    for (size_t i = 0; i < l->n; i++)
        total += strlen(l->v[i]) + 1;
    char *buf = xmalloc(total + 1);
    size_t k = strlen(head);
    memcpy(buf, head, k);
    for (size_t i = 0; i < l->n; i++) {
        size_t n = strlen(l->v[i]);
        memcpy(buf + k, l->v[i], n);
        buf[k + n] = '\n';
        k += n + 1;
    }
    int r = write_data_atomic_at(AT_FDCWD, file, buf, k, 0644, false, err);
    free(buf);
    return r;
}

struct pending {
    char *name, *path; /* owned */
    enum nixdb_type type;
    uint64_t size;
};

int nixdb_side_build(const char *db, const char *bins, const char *attrs, const char *identity,
                     struct rx_error **err)
{
    struct nixdb_reader *r;
    if (nixdb_open(db, &r, err) < 0)
        return -1;
    struct lines lb = { 0 }, la = { 0 };
    struct pending *pend = NULL;
    size_t npend = 0, cap = 0;
    bool small = true, complete = true;
    struct nixdb_line l;
    int k;
    while ((k = nixdb_next(r, &l, err)) > 0) {
        if (l.kind == NIXDB_FILE) {
            if (l.path_len < 6 || memcmp(l.path, "/bin/", 5) != 0) {
                small = false;
                continue;
            }
            if (!field_ok(l.path, l.path_len)) {
                complete = false;
                continue;
            }
            if (npend == cap) {
                cap = cap ? cap * 2 : 16;
                pend = xrealloc(pend, cap * sizeof *pend);
            }
            const char *base = strrchr(l.path, '/') + 1;
            pend[npend++] = (struct pending){ xstrdup(base), xstrndup(l.path, l.path_len), l.type,
                                              l.type == NIXDB_SYMLINK ? 0 : l.size };
            continue;
        }
        struct nixdb_package p;
        if (npend == 0 && !memmem(l.json, l.json_len, "\"toplevel\":true", 15))
            continue; /* nothing of it goes into either file */
        if (nixdb_package_parse(r, &l, &p, err) < 0) {
            k = -1;
            break;
        }
        char full[STORE_PATH_MAX + 1];
        store_path_format(&p.path, full);
        const char *sys = p.system ? p.system : "";
        bool ok = field_ok(p.attr, strlen(p.attr)) && field_ok(p.output, strlen(p.output)) &&
                  field_ok(sys, strlen(sys));
        if (!ok)
            complete = false;
        for (size_t i = 0; i < npend; i++) {
            if (ok)
                lines_push(&lb, xasprintf("%s\t%s\t%c\t%llu\t%d\t%s\t%s\t%s\t%s", pend[i].name,
                                          pend[i].path, (char)pend[i].type,
                                          (unsigned long long)pend[i].size, p.toplevel ? 1 : 0,
                                          p.attr, p.output, sys, full));
            free(pend[i].name);
            free(pend[i].path);
        }
        npend = 0;
        if (ok && p.toplevel)
            lines_push(&la, xasprintf("%s\t%s\t%s\t%s", p.attr, p.output, sys, full));
        nixdb_package_release(&p);
    }
    nixdb_close(r);
    for (size_t i = 0; i < npend; i++) {
        free(pend[i].name);
        free(pend[i].path);
    }
    free(pend);
    int ret = -1;
    if (k == 0) {
        _cleanup_free_ char *head = xasprintf(SIDE_MAGIC "%s %s %s\n", small ? "small" : "full",
                                              complete ? "complete" : "partial", identity);
        ret = write_side(bins, head, &lb, err) < 0 || write_side(attrs, head, &la, err) < 0 ? -1
                                                                                           : 0;
    }
    lines_free(&lb);
    lines_free(&la);
    return ret;
}

/* The bytes at off, through the chunk cache: *n of them (0 at the end), or NULL on error. */
static const char *bytes_at(struct nixdb_side *s, uint64_t off, size_t *n)
{
    if (off < s->chunk_off || off >= s->chunk_off + s->chunk_len) {
        ssize_t k = pread(s->fd, s->chunk, NIXDB_SIDE_CHUNK, (off_t)off);
        if (k < 0)
            return NULL;
        s->chunk_off = off;
        s->chunk_len = (size_t)k;
    }
    *n = (size_t)(s->chunk_off + s->chunk_len - off);
    return s->chunk + (off - s->chunk_off);
}

/* The line at off (owned, without its '\n') and where the next starts; NULL at the end. */
static char *line_at(struct nixdb_side *s, uint64_t off, uint64_t *next)
{
    struct rx_buf b = RX_BUF_INIT(NIXDB_LINE_MAX * 4);
    while (off < s->len) {
        size_t n;
        const char *p = bytes_at(s, off, &n);
        if (!p || n == 0)
            break;
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (rx_buf_append(&b, p, take) < 0)
            break;
        off += take;
        if (nl) {
            *next = off + 1;
            return rx_buf_detach(&b, NULL);
        }
    }
    rx_buf_release(&b);
    return NULL;
}

/* The first line start at or after off. */
static uint64_t line_after(struct nixdb_side *s, uint64_t off)
{
    if (off <= s->body)
        return s->body;
    for (uint64_t at = off - 1; at < s->len;) {
        size_t n;
        const char *p = bytes_at(s, at, &n);
        if (!p || n == 0)
            break;
        const char *nl = memchr(p, '\n', n);
        if (nl)
            return at + (uint64_t)(nl - p) + 1;
        at += n;
    }
    return s->len;
}

int nixdb_side_open(const char *file, const char *identity, struct nixdb_side *s,
                    struct rx_error **err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : rx_error_errno(err, "cannot open '%s'", file);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return 0;
    }
    s->fd = fd;
    s->len = (uint64_t)st.st_size;
    s->chunk = xmalloc(NIXDB_SIDE_CHUNK);
    uint64_t next;
    _cleanup_free_ char *head = line_at(s, 0, &next);
    char last;
    if (head && pread(fd, &last, 1, st.st_size - 1) == 1 && last == '\n') {
        static const char *const kinds[] = { "small complete", "full complete", "small partial",
                                             "full partial" };
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
            _cleanup_free_ char *want = xasprintf(SIDE_MAGIC "%s %s", kinds[i], identity);
            if (strcmp(head, want) == 0) {
                s->small = i % 2 == 0;
                s->complete = i < 2;
                s->body = next;
                return 1;
            }
        }
    }
    nixdb_side_close(s);
    return 0;
}

void nixdb_side_close(struct nixdb_side *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->chunk);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* The first field of line compared with key, in strcmp's order. */
static int cmp_key(const char *line, const char *key)
{
    size_t flen = strcspn(line, "\t");
    size_t klen = strlen(key);
    int c = memcmp(line, key, flen < klen ? flen : klen);
    return c ? c : (flen > klen) - (flen < klen);
}

int nixdb_side_find(struct nixdb_side *s, const char *key, bool exact, nixdb_side_fn fn,
                    void *ctx)
{
    size_t klen = strlen(key);
    /* lo: a line start before every line whose key is >= key (or the first line). */
    uint64_t lo = s->body, hi = s->len;
    while (hi - lo > NIXDB_SIDE_CHUNK / 2) {
        uint64_t mid = lo + (hi - lo) / 2;
        uint64_t l = line_after(s, mid), next;
        if (l >= hi) {
            hi = mid;
            continue;
        }
        _cleanup_free_ char *line = line_at(s, l, &next);
        if (!line)
            return -1;
        if (cmp_key(line, key) < 0)
            lo = l;
        else
            hi = l;
    }
    for (uint64_t off = lo, next; off < s->len; off = next) {
        _cleanup_free_ char *line = line_at(s, off, &next);
        if (!line)
            return -1;
        int c = cmp_key(line, key);
        if (c < 0)
            continue;
        size_t flen = strcspn(line, "\t");
        if (flen < klen || memcmp(line, key, klen) != 0 || (exact && flen != klen))
            break;
        char *fields[SIDE_FIELDS_MAX];
        size_t nf = 0;
        for (char *f = line; f && nf < SIDE_FIELDS_MAX;) {
            fields[nf++] = f;
            char *t = strchr(f, '\t');
            if (t)
                *t++ = '\0';
            f = t;
        }
        int r = fn(ctx, fields, nf);
        if (r != 0)
            return r < 0 ? -1 : 0;
    }
    return 0;
}
