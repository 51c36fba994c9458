/* Writing nix-index databases, and the file trees they list (nixdb.h). */
#include "config.h"
#include "nixdb.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* ---- trees ---- */

void nixdb_tree_release(struct nixdb_tree *t)
{
    for (size_t i = 0; i < t->nchildren; i++)
        nixdb_tree_release(&t->children[i]);
    free(t->children);
    free(t->name);
    free(t->target);
    memset(t, 0, sizeof *t);
}

struct nixdb_tree *nixdb_tree_add(struct nixdb_tree *t, const char *name, size_t len)
{
    t->children = xrealloc(t->children, (t->nchildren + 1) * sizeof *t->children);
    struct nixdb_tree *c = &t->children[t->nchildren++];
    memset(c, 0, sizeof *c);
    c->name = xstrndup(name, len);
    t->size = t->nchildren;
    return c;
}

/* A .ls node into t, at most `depth` levels deep. */
static int listing_node(json_t *n, struct nixdb_tree *t, unsigned depth, struct rx_error **err)
{
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type)
        return rx_error_set(err, RX_EFORMAT, "a node without a type");
    if (strcmp(type, "regular") == 0) {
        json_t *size = json_object_get(n, "size");
        json_t *x = json_object_get(n, "executable");
        if (!json_is_integer(size) || json_integer_value(size) < 0 || (x && !json_is_boolean(x)))
            return rx_error_set(err, RX_EFORMAT, "a regular file without a size");
        t->type = json_is_true(x) ? NIXDB_EXECUTABLE : NIXDB_REGULAR;
        t->size = (uint64_t)json_integer_value(size);
    } else if (strcmp(type, "symlink") == 0) {
        const char *target = json_string_value(json_object_get(n, "target"));
        if (!target || !*target)
            return rx_error_set(err, RX_EFORMAT, "a symlink without a target");
        t->type = NIXDB_SYMLINK;
        t->target = xstrdup(target);
    } else if (strcmp(type, "directory") == 0) {
        json_t *entries = json_object_get(n, "entries");
        if (!json_is_object(entries))
            return rx_error_set(err, RX_EFORMAT, "a directory without entries");
        if (depth == 0)
            return rx_error_set(err, RX_EFORMAT, "directories nested too deep");
        t->type = NIXDB_DIRECTORY;
        const char *name;
        json_t *v;
        json_object_foreach(entries, name, v) {
            size_t len = strlen(name);
            if (len == 0 || len > 255 || strchr(name, '/') || strcmp(name, ".") == 0 ||
                strcmp(name, "..") == 0)
                return rx_error_set(err, RX_EFORMAT, "a bad entry name '%s'", name);
            struct nixdb_tree *c = nixdb_tree_add(t, name, len);
            if (listing_node(v, c, depth - 1, err) < 0)
                return -1;
        }
        t->size = t->nchildren;
    } else {
        return rx_error_set(err, RX_EFORMAT, "a node of unknown type '%s'", type);
    }
    return 0;
}

int nixdb_tree_from_listing(const char *json, size_t len, struct nixdb_tree *root,
                            struct rx_error **err)
{
    memset(root, 0, sizeof *root);
    json_error_t jerr;
    json_t *top = json_loadb(json, len, 0, &jerr);
    if (!top)
        return rx_error_set(err, RX_EFORMAT, "not JSON: %s", jerr.text);
    int ret;
    json_t *v = json_object_get(top, "version");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        ret = rx_error_set(err, RX_EFORMAT, "not a version 1 listing");
    else
        ret = listing_node(json_object_get(top, "root"), root, 256, err);
    json_decref(top);
    if (ret < 0)
        nixdb_tree_release(root);
    return ret;
}

static int cmp_child(const void *a, const void *b)
{
    const struct nixdb_tree *x = *(const struct nixdb_tree *const *)a;
    const struct nixdb_tree *y = *(const struct nixdb_tree *const *)b;
    return strcmp(x->name, y->name); /* byte order, as Rust's Vec<u8> */
}

void nixdb_tree_list(const struct nixdb_tree *t, const char *prefix, struct nixdb_file **files,
                     size_t *n)
{
    struct item {
        char *path;
        const struct nixdb_tree *node;
    };
    size_t cap = 16, top = 0, plen = strlen(prefix);
    struct item *stack = xmalloc(cap * sizeof *stack);
    stack[top++] = (struct item){ xstrdup(""), t };
    *files = NULL;
    *n = 0;
    while (top > 0) {
        struct item it = stack[--top];
        const struct nixdb_tree *node = it.node;
        if (node->type == NIXDB_DIRECTORY && node->nchildren) {
            const struct nixdb_tree **kids = xcalloc(node->nchildren, sizeof *kids);
            for (size_t i = 0; i < node->nchildren; i++)
                kids[i] = &node->children[i];
            qsort(kids, node->nchildren, sizeof *kids, cmp_child);
            for (size_t i = 0; i < node->nchildren; i++) {
                if (top == cap) {
                    cap *= 2;
                    stack = xrealloc(stack, cap * sizeof *stack);
                }
                stack[top++] = (struct item){ xasprintf("%s/%s", it.path, kids[i]->name), kids[i] };
            }
            free(kids);
        }
        bool carries = !strchr(it.path, '\n') && !(node->target && strchr(node->target, '\n'));
        if (carries && strncmp(it.path, prefix, plen) == 0) {
            *files = xrealloc(*files, (*n + 1) * sizeof **files);
            (*files)[(*n)++] = (struct nixdb_file){
                .path = it.path,
                .type = node->type,
                .size = node->type == NIXDB_SYMLINK ? 0 : node->size,
                .target = node->target ? xstrdup(node->target) : NULL,
            };
        } else {
            free(it.path);
        }
    }
    free(stack);
}

void nixdb_files_free(struct nixdb_file *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].path);
        free(files[i].target);
    }
    free(files);
}

/* ---- the writer ---- */

struct nixdb_writer {
    int fd;
    char *name;
    ZSTD_CStream *zs;
    struct rx_buf plain; /* frcode bytes not compressed yet */
    unsigned char *out;
    size_t out_cap;
    bool failed;
};

struct nixdb_writer *nixdb_writer_new(int fd, const char *name, int level, struct rx_error **err)
{
    struct nixdb_writer *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->name = xstrdup(name);
    w->plain = (struct rx_buf)RX_BUF_INIT((size_t)1 << 30);
    w->zs = ZSTD_createCStream();
    if (!w->zs || ZSTD_isError(ZSTD_CCtx_setParameter(w->zs, ZSTD_c_compressionLevel, level))) {
        rx_error_set(err, RX_EFORMAT, "'%s': cannot start a zstd encoder", name);
        nixdb_writer_free(w);
        return NULL;
    }
    w->out_cap = ZSTD_CStreamOutSize();
    w->out = xmalloc(w->out_cap);
    unsigned char head[NIXDB_HEADER_LEN] = { 'N', 'I', 'X', 'I', NIXDB_VERSION };
    if (write_all(fd, head, sizeof head) < 0) {
        rx_error_errno(err, "cannot write '%s'", name);
        nixdb_writer_free(w);
        return NULL;
    }
    return w;
}

void nixdb_writer_free(struct nixdb_writer *w)
{
    if (!w)
        return;
    ZSTD_freeCStream(w->zs);
    rx_buf_release(&w->plain);
    free(w->out);
    free(w->name);
    free(w);
}

static int compress(struct nixdb_writer *w, ZSTD_EndDirective mode, struct rx_error **err)
{
    ZSTD_inBuffer in = { w->plain.data ? w->plain.data : "", w->plain.len, 0 };
    for (;;) {
        ZSTD_outBuffer o = { w->out, w->out_cap, 0 };
        size_t left = ZSTD_compressStream2(w->zs, &o, &in, mode);
        if (ZSTD_isError(left)) {
            w->failed = true;
            return rx_error_set(err, RX_EFORMAT, "'%s': zstd: %s", w->name,
                                ZSTD_getErrorName(left));
        }
        if (o.pos && write_all(w->fd, w->out, o.pos) < 0) {
            w->failed = true;
            return rx_error_errno(err, "cannot write '%s'", w->name);
        }
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            break;
    }
    rx_buf_reset(&w->plain);
    return 0;
}

static void put(struct nixdb_writer *w, const void *p, size_t n)
{
    if (rx_buf_append(&w->plain, p, n) < 0)
        BUG("frcode buffer over its limit");
}

static void put_diff(struct nixdb_writer *w, long diff)
{
    unsigned char b[3];
    if (labs(diff) < 127) {
        b[0] = (unsigned char)(signed char)diff;
        put(w, b, 1);
    } else {
        uint16_t v = (uint16_t)(int16_t)diff;
        b[0] = 0x80;
        b[1] = (unsigned char)(v >> 8);
        b[2] = (unsigned char)(v & 0xff);
        put(w, b, 3);
    }
}

int nixdb_writer_add(struct nixdb_writer *w, const struct nixdb_package *p,
                     const struct nixdb_file *files, size_t n, struct rx_error **err)
{
    if (w->failed)
        return rx_error_set(err, RX_EFORMAT, "'%s': writing stopped at an earlier error",
                            w->name);
    if (n == 0)
        return 0;
    const char *last = "";
    size_t last_len = 0;
    long shared_len = 0;
    for (size_t i = 0; i < n; i++) {
        const struct nixdb_file *f = &files[i];
        size_t plen = strlen(f->path);
        char meta[32];
        if (f->type == NIXDB_SYMLINK) {
            if (strlen(f->target) + 1 > NIXDB_LINE_MAX || plen > NIXDB_LINE_MAX)
                return rx_error_set(err, RX_EFORMAT, "'%s': an entry of %s is too long", w->name,
                                    p->path.name);
            put(w, f->target, strlen(f->target));
            put(w, "s", 1);
        } else {
            if (plen > NIXDB_LINE_MAX)
                return rx_error_set(err, RX_EFORMAT, "'%s': an entry of %s is too long", w->name,
                                    p->path.name);
            int k = snprintf(meta, sizeof meta, "%llu%c", (unsigned long long)f->size,
                             (char)f->type);
            put(w, meta, (size_t)k);
        }
        put(w, "", 1);
        long shared = 0;
        while ((size_t)shared < last_len && (size_t)shared < plen && shared < INT16_MAX &&
               last[shared] == f->path[shared])
            shared++;
        put_diff(w, shared - shared_len);
        put(w, f->path + shared, plen - (size_t)shared);
        put(w, "\n", 1);
        shared_len = shared;
        last = f->path;
        last_len = plen;
    }
    /* The package line shares nothing, so the next package starts from 0 as the first did. */
    json_t *origin = json_pack("{s:s, s:s, s:b, s:s?}", "attr", p->attr, "output", p->output,
                               "toplevel", p->toplevel, "system", p->system);
    json_t *top = json_pack("{s:s, s:s, s:s, s:o}", "store_dir", STORE_DIR, "hash", p->path.hash,
                            "name", p->path.name, "origin", origin);
    if (!top)
        return rx_error_set(err, RX_EFORMAT, "'%s': cannot describe %s in JSON", w->name,
                            p->path.name);
    char *json = json_dumps(top, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(top);
    put(w, "p", 1);
    put(w, "", 1);
    put_diff(w, -shared_len);
    put(w, json, strlen(json));
    put(w, "\n", 1);
    free(json);
    if (w->plain.len >= 1024 * 1024)
        return compress(w, ZSTD_e_continue, err);
    return 0;
}

int nixdb_writer_finish(struct nixdb_writer *w, struct rx_error **err)
{
    if (w->failed)
        return rx_error_set(err, RX_EFORMAT, "'%s': writing stopped at an earlier error",
                            w->name);
    return compress(w, ZSTD_e_end, err);
}
