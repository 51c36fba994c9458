/* Queries of the store database and the registration of new paths (see store.h). */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "crypto-hash.h"
#include "util-mem.h"

#include "banned.h"

/* The ValidPaths id of p, 0 if not valid, -1 on error. */
static sqlite3_int64 query_id(struct store *s, const struct store_path *p, struct rx_error **err)
{
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    sqlite3_reset(s->q_id);
    sqlite3_bind_text(s->q_id, 1, full, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s->q_id);
    sqlite3_int64 id = 0;
    if (r == SQLITE_ROW)
        id = sqlite3_column_int64(s->q_id, 0);
    else if (r != SQLITE_DONE)
        id = store_db_error(s, err, "querying a path");
    sqlite3_reset(s->q_id);
    return id;
}

int store_is_valid(struct store *s, const struct store_path *p, struct rx_error **err)
{
    sqlite3_int64 id = query_id(s, p, err);
    return id < 0 ? -1 : id > 0;
}

int store_query_references(struct store *s, const struct store_path *p, struct store_path **refs,
                           size_t *nrefs, struct rx_error **err)
{
    *refs = NULL;
    *nrefs = 0;
    sqlite3_int64 id = query_id(s, p, err);
    if (id < 0)
        return -1;
    if (id == 0) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(p, full);
        return rx_error_set(err, RX_ENOTFOUND, "'%s' is not valid in store '%s'", full, s->root);
    }
    sqlite3_reset(s->q_refs);
    sqlite3_bind_int64(s->q_refs, 1, id);
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(s->q_refs)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s->q_refs, 0);
        struct store_path sp;
        if (!t || store_path_parse(t, strlen(t), &sp, err) < 0) {
            sqlite3_reset(s->q_refs);
            free(*refs);
            *refs = NULL;
            *nrefs = 0;
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        if (*nrefs == cap) {
            cap = cap ? 2 * cap : 8;
            *refs = xrealloc(*refs, cap * sizeof **refs);
        }
        (*refs)[(*nrefs)++] = sp;
    }
    sqlite3_reset(s->q_refs);
    if (r != SQLITE_DONE) {
        free(*refs);
        *refs = NULL;
        *nrefs = 0;
        return store_db_error(s, err, "querying references");
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Signatures joined by spaces, sorted and without repeats, as Nix stores them. */
static char *join_sigs(const char *const *sigs, size_t n)
{
    if (n == 0)
        return NULL;
    const char **v = xmalloc(n * sizeof *v);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = sigs[i];
        len += strlen(sigs[i]) + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (o != out)
            *o++ = ' ';
        size_t l = strlen(v[i]);
        memcpy(o, v[i], l);
        o += l;
    }
    *o = '\0';
    free(v);
    return out;
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what, struct rx_error **err)
{
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, what);
    return 0;
}

static int insert_path(struct store *s, const struct store_info *in, time_t now,
                       struct rx_error **err)
{
    char full[STORE_PATH_MAX + 1], drv[STORE_PATH_MAX + 1], hex[2 * SHA256_SIZE + 1];
    char hashstr[8 + sizeof hex];
    store_path_format(&in->path, full);
    hex_encode(in->nar_hash.bytes, SHA256_SIZE, hex);
    snprintf(hashstr, sizeof hashstr, "sha256:%s", hex);
    _cleanup_free_ char *sigs = join_sigs(in->sigs, in->nsigs);

    sqlite3_stmt *st = s->ins_path;
    sqlite3_bind_text(st, 1, full, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hashstr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
    if (in->deriver) {
        store_path_format(in->deriver, drv);
        sqlite3_bind_text(st, 4, drv, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 4);
    }
    sqlite3_bind_int64(st, 5, (sqlite3_int64)in->nar_size);
    if (sigs)
        sqlite3_bind_text(st, 6, sigs, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 6);
    if (in->ca)
        sqlite3_bind_text(st, 7, in->ca, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 7);
    int r = step_done(s, st, "registering a path", err);
    sqlite3_clear_bindings(st);
    return r < 0 ? rx_error_wrap(err, "'%s'", full) : 0;
}

int store_register(struct store *s, const struct store_info *infos, size_t n, struct rx_error **err)
{
    if (n == 0)
        return 0;
    bool *skip = xcalloc(n, sizeof *skip);
    time_t now = time(NULL);
    if (store_db_exec(s, "begin immediate;", err) < 0) {
        free(skip);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char base[STORE_BASENAME_MAX + 1];
        store_path_basename(&infos[i].path, base);
        struct stat st;
        if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rx_error_errno(err, "cannot register '%s': not in '%s/nix/store'", base, s->root);
            goto fail;
        }
        sqlite3_int64 id = query_id(s, &infos[i].path, err);
        if (id < 0)
            goto fail;
        if (id > 0) {
            skip[i] = true;
            continue;
        }
        if (insert_path(s, &infos[i], now, err) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        char full[STORE_PATH_MAX + 1], ref[STORE_PATH_MAX + 1];
        store_path_format(&infos[i].path, full);
        sqlite3_int64 id = query_id(s, &infos[i].path, err);
        if (id <= 0)
            goto fail;
        for (size_t j = 0; j < infos[i].nrefs; j++) {
            store_path_format(&infos[i].refs[j], ref);
            sqlite3_bind_int64(s->ins_ref, 1, id);
            sqlite3_bind_text(s->ins_ref, 2, ref, -1, SQLITE_TRANSIENT);
            if (step_done(s, s->ins_ref, "registering a reference", err) < 0) {
                rx_error_wrap(err, "'%s' -> '%s' (the reference must be valid first)", full, ref);
                goto fail;
            }
        }
    }
    if (store_db_exec(s, "commit;", err) < 0)
        goto fail;
    free(skip);
    return 0;
fail:
    sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
    free(skip);
    return -1;
}

int store_sync(struct store *s, struct rx_error **err)
{
    if (syncfs(s->store_fd) < 0)
        return rx_error_errno(err, "cannot write '%s/nix/store' to disk", s->root);
    return 0;
}

int store_stats(struct store *s, uint64_t *npaths, uint64_t *nar_bytes, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select count(*), coalesce(sum(narSize), 0) from ValidPaths", &st,
                         err) < 0)
        return -1;
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        store_db_error(s, err, "counting paths");
        sqlite3_finalize(st);
        return -1;
    }
    *npaths = (uint64_t)sqlite3_column_int64(st, 0);
    *nar_bytes = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return 0;
}
