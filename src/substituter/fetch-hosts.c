/* What earlier fetches learned of each host's connections (fetch-hosts.h). */
#include "config.h"

#include "fetch-hosts.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define HOSTS_FILE_MAX (256 * 1024)
#define HOST_CONNS_MAX 1024
#define HOST_KEEP_S (30 * 24 * 3600) /* notes older than this are dropped from the file */

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool printable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] <= ' ' || p[i] > '~')
            return false;
    return true;
}

int host_key(const char *url, char key[HOST_KEY_MAX + 1])
{
    const char *sep = strstr(url, "://");
    if (!sep || sep == url)
        return -1;
    const char *auth = sep + 3;
    size_t alen = strcspn(auth, "/?#");
    const char *host = auth;
    for (size_t i = 0; i < alen; i++)
        if (auth[i] == '@')
            host = auth + i + 1;
    size_t slen = (size_t)(sep - url) + 3, hlen = (size_t)(auth + alen - host);
    if (hlen == 0 || slen + hlen > HOST_KEY_MAX || !printable(url, slen) ||
        !printable(host, hlen))
        return -1;
    for (size_t i = 0; i < slen; i++)
        key[i] = lower(url[i]);
    for (size_t i = 0; i < hlen; i++)
        key[slen + i] = lower(host[i]);
    key[slen + hlen] = '\0';
    return 0;
}

static struct host_note *find(const struct host_notes *h, const char *key)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->v[i].key, key) == 0)
            return &h->v[i];
    return NULL;
}

/* Note conns for key at when, unless a later note of it is there. */
static void put(struct host_notes *h, const char *key, unsigned conns, int64_t when)
{
    struct host_note *n = find(h, key);
    if (!n) {
        h->v = xrealloc(h->v, (h->n + 1) * sizeof *h->v);
        n = &h->v[h->n++];
        snprintf(n->key, sizeof n->key, "%s", key);
    } else if (n->when > when) {
        return;
    }
    n->conns = conns;
    n->when = when;
}

/* One line "KEY CONNS WHEN", or false. */
static bool parse_line(const char *p, size_t n, char key[HOST_KEY_MAX + 1], unsigned *conns,
                       int64_t *when)
{
    char line[HOST_KEY_MAX + 64];
    if (n >= sizeof line)
        return false;
    memcpy(line, p, n);
    line[n] = '\0';
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' '))
        return false;
    *sp1 = *sp2 = '\0';
    char check[HOST_KEY_MAX + 1];
    if (host_key(line, check) < 0 || strcmp(check, line) != 0)
        return false;
    char *end;
    errno = 0;
    unsigned long c = strtoul(sp1 + 1, &end, 10);
    if (errno || end == sp1 + 1 || *end || sp1[1] < '0' || sp1[1] > '9' || c == 0 ||
        c > HOST_CONNS_MAX)
        return false;
    long long w = strtoll(sp2 + 1, &end, 10);
    if (errno || end == sp2 + 1 || *end || sp2[1] < '0' || sp2[1] > '9')
        return false;
    memcpy(key, line, strlen(line) + 1);
    *conns = (unsigned)c;
    *when = (int64_t)w;
    return true;
}

void host_notes_parse(struct host_notes *h, const char *text, size_t len)
{
    h->v = NULL;
    h->n = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char key[HOST_KEY_MAX + 1];
        unsigned conns;
        int64_t when;
        if (h->n < HOST_NOTES_MAX * 2 && parse_line(p, n, key, &conns, &when))
            put(h, key, conns, when);
        p += n + 1;
    }
}

void host_notes_load(struct host_notes *h, const char *file)
{
    struct rx_buf b = RX_BUF_INIT(HOSTS_FILE_MAX);
    struct rx_error *err = NULL;
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 || read_fd(fd, file, &b, &err) < 0) {
        rx_error_free(err);
        rx_buf_reset(&b);
    }
    if (fd >= 0)
        close(fd);
    host_notes_parse(h, b.data ? b.data : "", b.len);
    rx_buf_release(&b);
}

unsigned host_notes_get(const struct host_notes *h, const char *key, int64_t now)
{
    const struct host_note *n = find(h, key);
    if (!n || n->when < now - HOST_NOTE_TTL_S || n->when > now + 3600)
        return 0;
    return n->conns;
}

void host_notes_set(struct host_notes *h, const char *key, unsigned conns, int64_t now)
{
    char check[HOST_KEY_MAX + 1];
    if (conns == 0 || conns > HOST_CONNS_MAX || host_key(key, check) < 0 || strcmp(check, key))
        return;
    put(h, key, conns, now);
}

static int by_when_desc(const void *a, const void *b)
{
    const struct host_note *x = a, *y = b;
    return x->when < y->when ? 1 : x->when > y->when ? -1 : strcmp(x->key, y->key);
}

char *host_notes_format(const struct host_notes *h, int64_t now)
{
    struct host_note *v = xmalloc((h->n + 1) * sizeof *v);
    if (h->n)
        memcpy(v, h->v, h->n * sizeof *v);
    qsort(v, h->n, sizeof *v, by_when_desc);
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    int r = 0;
    for (size_t i = 0, kept = 0; i < h->n && kept < HOST_NOTES_MAX; i++) {
        if (v[i].when < now - HOST_KEEP_S)
            continue;
        char line[HOST_KEY_MAX + 64];
        int len = snprintf(line, sizeof line, "%s %u %" PRId64 "\n", v[i].key, v[i].conns,
                           v[i].when);
        r |= rx_buf_append(&b, line, (size_t)len);
        kept++;
    }
    (void)r; /* the buffer has no limit */
    free(v);
    char *text = rx_buf_detach(&b, NULL);
    return text ? text : xstrdup("");
}

int host_notes_save(const char *file, const struct host_notes *news, int64_t now)
{
    struct host_notes all;
    host_notes_load(&all, file);
    for (size_t i = 0; i < news->n; i++)
        put(&all, news->v[i].key, news->v[i].conns, news->v[i].when);
    _cleanup_free_ char *text = host_notes_format(&all, now);
    host_notes_release(&all);
    _cleanup_free_ char *dir = xstrdup(file);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir_p(dir, NULL) < 0)
            return -1;
    }
    return write_file_atomic_at(AT_FDCWD, file, text, false, NULL);
}

void host_notes_release(struct host_notes *h)
{
    free(h->v);
    h->v = NULL;
    h->n = 0;
}
