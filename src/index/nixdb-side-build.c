/* Writing the sidecars of a database (nixdb.h), in one pass over it. */
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
        _cleanup_free_ char *head = xasprintf(NIXDB_SIDE_MAGIC "%s %s %s\n", small ? "small" : "full",
                                              complete ? "complete" : "partial", identity);
        ret = write_side(bins, head, &lb, err) < 0 || write_side(attrs, head, &la, err) < 0 ? -1
                                                                                           : 0;
    }
    lines_free(&lb);
    lines_free(&la);
    return ret;
}

