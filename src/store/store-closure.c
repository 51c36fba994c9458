/* Closures: computed from the database, and written out as closure indexes. */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-index.h"
#include "util-mem.h"

#include "banned.h"

int store_closure(struct store *s, const struct store_path *roots, size_t n,
                  struct store_path **out, size_t *nout, struct rx_error **err)
{
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n; i++) {
        int v = store_is_valid(s, &roots[i], err);
        if (v <= 0)
            return v < 0 ? -1 : 1;
    }
    /* Valid paths' references are valid: one recursive query gives the closure. */
    static const char head[] = "with recursive c(id) as (select id from ValidPaths where path in (";
    static const char tail[] = ") union select reference from Refs join c on referrer = c.id) "
                               "select path from ValidPaths where id in (select id from c) "
                               "order by path";
    _cleanup_free_ char *sql = xmalloc(sizeof head + 2 * n + sizeof tail);
    size_t k = 0;
    memcpy(sql, head, sizeof head - 1);
    k = sizeof head - 1;
    for (size_t i = 0; i < n; i++) {
        if (i)
            sql[k++] = ',';
        sql[k++] = '?';
    }
    memcpy(sql + k, tail, sizeof tail);
    sqlite3_stmt *st;
    if (store_db_prepare(s, sql, &st, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&roots[i], full);
        sqlite3_bind_text(st, (int)i + 1, full, -1, SQLITE_TRANSIENT);
    }
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        struct store_path sp;
        if (!t || store_path_parse(t, strlen(t), &sp, err) < 0) {
            sqlite3_finalize(st);
            free(*out);
            *out = NULL;
            *nout = 0;
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        if (*nout == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*nout)++] = sp;
    }
    if (r != SQLITE_DONE) {
        store_db_error(s, err, "computing a closure");
        sqlite3_finalize(st);
        free(*out);
        *out = NULL;
        *nout = 0;
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

/* The closure is the database's to say; the format is store-index.c's. */
int store_index_write(struct store *s, const struct store_path *p, struct rx_error **err)
{
    struct store_path bad;
    char *sigs;
    return store_index_write_checked(s, p, NULL, NULL, &bad, &sigs, err); /* no keys: no check */
}
