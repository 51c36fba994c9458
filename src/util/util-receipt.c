/* The install receipt (util-receipt.h). */
#include "config.h"

#include "util-receipt.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

int receipt_path_ok(const char *p)
{
    if (!p || p[0] != '/' || p[1] == '\0')
        return 0;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return 0;
    const char *s = p;
    while (*s) {
        s++; /* past the '/' */
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        s += n;
    }
    return 1;
}

static bool is_sha256_hex(const char *v)
{
    if (strlen(v) != 64)
        return false;
    for (const char *c = v; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

/* A value that is one word of printable characters (a version, an arch, a URL). */
static bool is_word(const char *v)
{
    if (!*v)
        return false;
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return false;
    return true;
}

void receipt_release(struct receipt *r)
{
    free(r->version);
    free(r->arch);
    free(r->base_url);
    free(r->binary);
    free(r->sha256);
    for (size_t i = 0; i < r->nfiles; i++)
        free(r->files[i]);
    free(r->files);
    unsigned format = r->format;
    *r = (struct receipt)RECEIPT_INIT;
    r->format = format;
}

/* Set *slot to value once: a key given twice is an error. */
static int set_once(char **slot, const char *key, const char *value, unsigned line,
                    struct rx_error **err)
{
    if (*slot)
        return rx_error_set(err, RX_EFORMAT, "line %u: '%s' is given twice", line, key);
    *slot = xstrdup(value);
    return 0;
}

static int take_line(struct receipt *r, char *line, unsigned lineno, bool *have_header,
                     struct rx_error **err)
{
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        line[--n] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 0;
    char *key = p;
    size_t klen = strcspn(key, " \t");
    char *value = key + klen;
    if (*value) {
        *value++ = '\0';
        while (*value == ' ' || *value == '\t')
            value++;
    }
    if (!*have_header) {
        if (strcmp(key, "runix-receipt") != 0)
            return rx_error_set(err, RX_EFORMAT,
                                "line %u: expected 'runix-receipt FORMAT', not a receipt of "
                                "this format",
                                lineno);
        char *end;
        errno = 0;
        unsigned long f = strtoul(value, &end, 10);
        if (errno || end == value || *end || f == 0 || f > 1000000)
            return rx_error_set(err, RX_EFORMAT, "line %u: bad receipt format '%s'", lineno,
                                value);
        r->format = (unsigned)f;
        if (f != RECEIPT_FORMAT)
            return rx_error_set(err, RX_EUNSUPPORTED,
                                "the receipt is in format %lu; this runix reads format %d", f,
                                RECEIPT_FORMAT);
        *have_header = true;
        return 0;
    }
    bool path = strcmp(key, "binary") == 0 || strcmp(key, "file") == 0;
    if (path && !receipt_path_ok(value))
        return rx_error_set(err, RX_EFORMAT,
                            "line %u: '%s' needs an absolute path without '.', '..' or empty "
                            "components",
                            lineno, key);
    if (strcmp(key, "binary") == 0)
        return set_once(&r->binary, key, value, lineno, err);
    if (strcmp(key, "file") == 0) {
        if (r->nfiles >= RECEIPT_MAX_FILES)
            return rx_error_set(err, RX_EFORMAT, "line %u: more than %d files", lineno,
                                RECEIPT_MAX_FILES);
        r->files = xrealloc(r->files, (r->nfiles + 1) * sizeof *r->files);
        r->files[r->nfiles++] = xstrdup(value);
        return 0;
    }
    if (strcmp(key, "sha256") == 0) {
        if (!is_sha256_hex(value))
            return rx_error_set(err, RX_EFORMAT,
                                "line %u: sha256 needs 64 lower-case hex digits", lineno);
        return set_once(&r->sha256, key, value, lineno, err);
    }
    char **slot = strcmp(key, "version") == 0    ? &r->version
                  : strcmp(key, "arch") == 0     ? &r->arch
                  : strcmp(key, "base-url") == 0 ? &r->base_url
                                                 : NULL;
    if (!slot)
        return 0; /* a key of a newer installer */
    if (!is_word(value))
        return rx_error_set(err, RX_EFORMAT, "line %u: '%s' needs one word", lineno, key);
    return set_once(slot, key, value, lineno, err);
}

int receipt_parse(const char *text, size_t len, struct receipt *r, struct rx_error **err)
{
    *r = (struct receipt)RECEIPT_INIT;
    if (len > RECEIPT_MAX_SIZE)
        return rx_error_set(err, RX_EFORMAT, "larger than %d bytes", RECEIPT_MAX_SIZE);
    if (memchr(text, '\0', len))
        return rx_error_set(err, RX_EFORMAT, "holds a NUL byte: not a receipt");
    bool have_header = false;
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        _cleanup_free_ char *line = xstrndup(text + pos, n);
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (take_line(r, line, lineno, &have_header, err) < 0) {
            receipt_release(r);
            return -1;
        }
    }
    if (!have_header) {
        receipt_release(r);
        return rx_error_set(err, RX_EFORMAT, "empty: no 'runix-receipt FORMAT' line");
    }
    if (!r->binary) {
        receipt_release(r);
        return rx_error_set(err, RX_EFORMAT, "no 'binary' line");
    }
    return 0;
}

int receipt_load(const char *path, struct receipt *r, struct rx_error **err)
{
    *r = (struct receipt)RECEIPT_INIT;
    struct rx_buf b = RX_BUF_INIT(RECEIPT_MAX_SIZE);
    if (read_file(path, &b, err) < 0) {
        if (err && *err && (*err)->code == ENOENT)
            (*err)->code = RX_ENOTFOUND;
        rx_buf_release(&b);
        return -1;
    }
    int ret = receipt_parse(b.data ? b.data : "", b.len, r, err);
    rx_buf_release(&b);
    if (ret < 0)
        return rx_error_wrap(err, "receipt '%s'", path);
    return 0;
}

char *receipt_format(const struct receipt *r)
{
    struct rx_buf b = RX_BUF_INIT(RECEIPT_MAX_SIZE * 2);
    _cleanup_free_ char *head = xasprintf(
        "# runix's install receipt: 'runix self uninstall' removes what it lists.\n"
        "runix-receipt %d\n",
        RECEIPT_FORMAT);
    int bad = rx_buf_append(&b, head, strlen(head));
    const struct {
        const char *key, *value;
    } kv[] = {
        {"version", r->version}, {"arch", r->arch},     {"base-url", r->base_url},
        {"binary", r->binary},   {"sha256", r->sha256},
    };
    for (size_t i = 0; i < ARRAY_SIZE(kv); i++) {
        if (!kv[i].value)
            continue;
        _cleanup_free_ char *l = xasprintf("%s %s\n", kv[i].key, kv[i].value);
        bad |= rx_buf_append(&b, l, strlen(l));
    }
    for (size_t i = 0; i < r->nfiles; i++) {
        _cleanup_free_ char *l = xasprintf("file %s\n", r->files[i]);
        bad |= rx_buf_append(&b, l, strlen(l));
    }
    if (bad)
        BUG("receipt larger than %d bytes", RECEIPT_MAX_SIZE * 2);
    return b.data;
}

int sha256sums_find(const char *text, size_t len, const char *name, char out[65],
                    struct rx_error **err)
{
    if (memchr(text, '\0', len))
        return rx_error_set(err, RX_EFORMAT, "SHA256SUMS holds a NUL byte");
    bool found = false;
    unsigned lineno = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && l[n - 1] == '\r')
            n--;
        if (n == 0)
            continue;
        bool hex = n > 66;
        for (size_t i = 0; hex && i < 64; i++)
            hex = (l[i] >= '0' && l[i] <= '9') || (l[i] >= 'a' && l[i] <= 'f') ||
                  (l[i] >= 'A' && l[i] <= 'F');
        if (!hex || l[64] != ' ' || (l[65] != ' ' && l[65] != '*'))
            return rx_error_set(err, RX_EFORMAT,
                                "SHA256SUMS line %u is not '<sha256>  <file name>'", lineno);
        const char *f = l + 66;
        size_t flen = n - 66;
        if (flen != strlen(name) || memcmp(f, name, flen) != 0)
            continue;
        char sum[65];
        for (size_t i = 0; i < 64; i++)
            sum[i] = (char)(l[i] >= 'A' && l[i] <= 'F' ? l[i] - 'A' + 'a' : l[i]);
        sum[64] = '\0';
        if (found && strcmp(sum, out) != 0)
            return rx_error_set(err, RX_EFORMAT, "SHA256SUMS lists '%s' twice, with different sums",
                                name);
        memcpy(out, sum, 65);
        found = true;
    }
    return found ? 0 : 1;
}
