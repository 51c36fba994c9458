/* The fetch's item table: one item per store path of the closure, found by its hash. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util-mem.h"

#include "banned.h"

static uint64_t hash_key(const char *h)
{
    uint64_t x = 1469598103934665603ull;
    for (int i = 0; i < STORE_HASH_LEN; i++)
        x = (x ^ (unsigned char)h[i]) * 1099511628211ull;
    return x;
}

static void table_grow(struct fetch *f)
{
    size_t ncap = f->table_cap ? f->table_cap * 2 : 256;
    size_t *t = xmalloc(ncap * sizeof *t);
    for (size_t i = 0; i < ncap; i++)
        t[i] = SIZE_MAX;
    for (size_t i = 0; i < f->nitems; i++) {
        size_t h = hash_key(f->items[i].path.hash) & (ncap - 1);
        while (t[h] != SIZE_MAX)
            h = (h + 1) & (ncap - 1);
        t[h] = i;
    }
    free(f->table);
    f->table = t;
    f->table_cap = ncap;
}

/* The item for p, created if new (*created set).  Returns its index. */
size_t fetch_item_get(struct fetch *f, const struct store_path *p, bool *created)
{
    if ((f->nitems + 1) * 2 > f->table_cap)
        table_grow(f);
    size_t h = hash_key(p->hash) & (f->table_cap - 1);
    while (f->table[h] != SIZE_MAX) {
        struct item *it = &f->items[f->table[h]];
        if (memcmp(it->path.hash, p->hash, STORE_HASH_LEN) == 0 &&
            strcmp(it->path.name, p->name) == 0) {
            *created = false;
            return f->table[h];
        }
        h = (h + 1) & (f->table_cap - 1);
    }
    if (f->nitems == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->items = xrealloc(f->items, f->cap * sizeof *f->items);
    }
    size_t idx = f->nitems++;
    struct item *it = &f->items[idx];
    memset(it, 0, sizeof *it);
    it->path = *p;
    it->lock_fd = -1;
    it->state = S_NEED_INFO;
    struct rx_buf why = RX_BUF_INIT(64 * 1024);
    it->why = why;
    f->table[h] = idx;
    *created = true;
    return idx;
}

void fetch_item_note(struct item *it, const char *cache, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *line = xasprintf("\n  %s: %s", cache, msg);
    if (rx_buf_append(&it->why, line, strlen(line)) < 0) {
        /* Enough has been said already. */
    }
}

/* A path whose narinfo names it, or NULL (a path asked for has none). */
static const struct item *referrer_of(const struct fetch *f, const struct item *it)
{
    size_t idx = (size_t)(it - f->items);
    for (size_t i = 0; i < f->nitems; i++)
        for (size_t k = 0; k < f->items[i].nrefs; k++)
            if (f->items[i].refs[k] == idx)
                return &f->items[i];
    return NULL;
}

void fetch_fail_path(struct fetch *f, struct item *it, const char *summary)
{
    char full[STORE_PATH_MAX + 1], by[STORE_PATH_MAX + 1];
    store_path_format(&it->path, full);
    /* Which path needed it, unless the store itself failed (then that is all to say). */
    const struct item *r = it->top || f->local_failed ? NULL : referrer_of(f, it);
    if (r)
        store_path_format(&r->path, by);
    it->state = S_FAILED;
    if (it->lock_fd >= 0) {
        /* Nothing of it is left (a failed download removes what it unpacked); others may try. */
        store_remove_invalid(f->store, &it->path, NULL);
        store_unlock_path(f->store, &it->path, it->lock_fd);
        it->lock_fd = -1;
    }
    _cleanup_free_ char *msg =
        xasprintf("%scannot fetch '%s'%s%s%s: %s%s", f->failures.len ? "\n" : "", full,
                  r ? " (a reference of '" : "", r ? by : "", r ? "')" : "", summary,
                  it->why.data ? it->why.data : "");
    if (rx_buf_append(&f->failures, msg, strlen(msg)) < 0) {
        /* Enough has been said already. */
    }
}

int fetch_item_unlock_if_valid(struct fetch *f, struct item *it, struct rx_error **err)
{
    int v = store_is_valid(f->store, &it->path, err);
    if (v == 0)
        return 0;
    store_unlock_path(f->store, &it->path, it->lock_fd);
    it->lock_fd = -1;
    if (v > 0)
        it->state = S_VALID;
    return v;
}

/* Unlock and free every item; an unregistered path of ours is removed first. */
void fetch_items_release(struct fetch *f)
{
    for (size_t i = 0; i < f->nitems; i++) {
        struct item *it = &f->items[i];
        if (it->lock_fd >= 0) {
            /* Never leave an unregistered path behind. */
            if (it->state == S_ON_DISK)
                store_remove_invalid(f->store, &it->path, NULL);
            store_unlock_path(f->store, &it->path, it->lock_fd);
        }
        if (it->have_ni)
            narinfo_release(&it->ni);
        free(it->refs);
        rx_buf_release(&it->why);
    }
    free(f->items);
    free(f->table);
}
