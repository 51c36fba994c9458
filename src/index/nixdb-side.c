/* Reading the sidecars of a database (nixdb.h): libc only, so that the runix front links it. */
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
#include "util-mem.h"

#include "banned.h"

#define SIDE_FIELDS_MAX 16

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
            _cleanup_free_ char *want = xasprintf(NIXDB_SIDE_MAGIC "%s %s", kinds[i], identity);
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
