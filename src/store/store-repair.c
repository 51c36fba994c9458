/* Registered paths that are gone from disk: found, and unregistered with what needs them. */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util-mem.h"

#include "banned.h"

/*
 * Is the top of p there as a store path can be: a directory, regular file
 * or symlink that lstat sees, and (unless a symlink) that we may read?  A
 * NAR holds nothing else, so anything else was put there by hand.
 */
static bool whole_on_disk(struct store *s, const struct store_path *p)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    if (S_ISLNK(st.st_mode))
        return true;
    if (S_ISDIR(st.st_mode))
        return faccessat(s->store_fd, base, R_OK | X_OK, AT_EACCESS) == 0;
    if (S_ISREG(st.st_mode))
        return faccessat(s->store_fd, base, R_OK, AT_EACCESS) == 0;
    return false;
}

static void push(struct store_path **v, size_t *n, size_t *cap, const struct store_path *p)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *v = xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = *p;
}

/* Every registered path, sorted. */
static int all_valid(struct store *s, struct store_path **out, size_t *nout, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select path from ValidPaths order by path", &st, err) < 0)
        return -1;
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        struct store_path sp;
        if (!t || store_path_parse(t, strlen(t), &sp, err) < 0) {
            sqlite3_finalize(st);
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        push(out, nout, &cap, &sp);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, "listing the valid paths");
    return 0;
}

int store_check_missing(struct store *s, const struct store_path *roots, size_t n,
                        struct store_path **out, size_t *nout, struct rx_error **err)
{
    *out = NULL;
    *nout = 0;
    struct store_path *paths = NULL;
    size_t npaths = 0;
    if (!roots) {
        if (all_valid(s, &paths, &npaths, err) < 0) {
            free(paths);
            return -1;
        }
    } else {
        /* The closures of the roots that are valid: the others are simply to be fetched. */
        struct store_path *valid = n ? xmalloc(n * sizeof *valid) : NULL;
        size_t nvalid = 0;
        for (size_t i = 0; i < n; i++) {
            int v = store_is_valid(s, &roots[i], err);
            if (v < 0) {
                free(valid);
                return -1;
            }
            if (v)
                valid[nvalid++] = roots[i];
        }
        int r = nvalid ? store_closure(s, valid, nvalid, &paths, &npaths, err) : 0;
        free(valid);
        if (r != 0) {
            free(paths);
            /* 1: a root was unregistered meanwhile; the caller sees it as missing anyway. */
            return r < 0 ? -1 : 0;
        }
    }
    size_t cap = 0;
    for (size_t i = 0; i < npaths; i++)
        if (!whole_on_disk(s, &paths[i]))
            push(out, nout, &cap, &paths[i]);
    free(paths);
    return 0;
}

/*
 * Unregister full (not whole on disk) and every path that references it,
 * directly or not; *count grows by how many.  Inside a transaction.
 * Referrers go first: Refs' "on delete restrict" forbids removing a path
 * while another still references it, and a referrer is always at a greater
 * distance from full than what it references, so the longest distance,
 * largest first, is a safe order.
 */
static int unregister_with_referrers(struct store *s, sqlite3_stmt *q, sqlite3_stmt *del,
                                     const char *full, size_t *count, struct rx_error **err)
{
    sqlite3_bind_text(q, 1, full, -1, SQLITE_TRANSIENT);
    sqlite3_int64 *ids = NULL;
    size_t n = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(q)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            ids = xrealloc(ids, cap * sizeof *ids);
        }
        ids[n++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_reset(q);
    if (r != SQLITE_DONE) {
        free(ids);
        return store_db_error(s, err, "finding the paths that need a missing one");
    }
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(del, 1, ids[i]);
        r = sqlite3_step(del);
        sqlite3_reset(del);
        if (r != SQLITE_DONE) {
            free(ids);
            return store_db_error(s, err, "unregistering a missing path");
        }
        *count += (size_t)sqlite3_changes(s->db);
    }
    free(ids);
    return 0;
}

int store_unregister_missing(struct store *s, const struct store_path *missing, size_t n,
                             size_t *nunregistered, struct rx_error **err)
{
    *nunregistered = 0;
    if (n == 0)
        return 0;
    static const char referrers[] =
        "with recursive r(id, depth) as (select id, 0 from ValidPaths where path = ? "
        "union select referrer, depth + 1 from Refs join r on reference = r.id "
        "where referrer != r.id) "
        "select id from r group by id order by max(depth) desc";
    sqlite3_stmt *q = NULL, *del = NULL;
    if (store_db_prepare(s, referrers, &q, err) < 0 ||
        store_db_prepare(s, "delete from ValidPaths where id = ?", &del, err) < 0) {
        sqlite3_finalize(q);
        return -1;
    }
    /* Holding the write lock: whoever registers a path again does it before or after us. */
    int ret = store_db_exec(s, "begin immediate;", err);
    size_t count = 0;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        /* Looked at again inside the transaction: it may have been fetched meanwhile. */
        if (whole_on_disk(s, &missing[i]))
            continue;
        char full[STORE_PATH_MAX + 1];
        store_path_format(&missing[i], full);
        if (unregister_with_referrers(s, q, del, full, &count, err) < 0) {
            rx_error_wrap(err, "'%s'", full);
            sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
            ret = -1;
        }
    }
    sqlite3_finalize(q);
    sqlite3_finalize(del);
    if (ret == 0 && store_db_exec(s, "commit;", err) < 0) {
        sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
        ret = -1;
    }
    if (ret == 0)
        *nunregistered = count;
    return ret;
}
