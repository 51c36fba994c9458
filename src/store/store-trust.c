/*
 * Which keys vouch for the paths in the store.
 *
 * Every program runix runs shares the one store, and a distributable may
 * bring its own keys, so "the path is valid" is not enough to run it: one of
 * its signatures must verify with a key in force for this run.  The
 * signatures registered with each path (ValidPaths.sigs, as Nix keeps them)
 * are checked over the fingerprint Nix signs (nix-formats.md section 5).
 */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store-index.h"
#include "util-buf.h"
#include "util-mem.h"

#include "banned.h"

static int cmp_paths(const void *a, const void *b)
{
    return store_path_cmp(a, b);
}

char *store_fingerprint(const struct store_path *p, const struct hash *nar_hash, uint64_t nar_size,
                        const struct store_path *refs, size_t nrefs)
{
    struct store_path *sorted = xmalloc((nrefs ? nrefs : 1) * sizeof *sorted);
    if (nrefs)
        memcpy(sorted, refs, nrefs * sizeof *sorted);
    qsort(sorted, nrefs, sizeof *sorted, cmp_paths);

    char path[STORE_PATH_MAX + 1], hash[HASH_STR_MAX], num[32];
    store_path_format(p, path);
    hash_format(nar_hash, HASH_NIX32, hash);
    snprintf(num, sizeof num, "%llu", (unsigned long long)nar_size);
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    int r = rx_buf_append(&b, "1;", 2);
    r |= rx_buf_append(&b, path, strlen(path));
    r |= rx_buf_append(&b, ";", 1);
    r |= rx_buf_append(&b, hash, strlen(hash));
    r |= rx_buf_append(&b, ";", 1);
    r |= rx_buf_append(&b, num, strlen(num));
    r |= rx_buf_append(&b, ";", 1);
    for (size_t i = 0; i < nrefs; i++) {
        store_path_format(&sorted[i], path);
        if (i)
            r |= rx_buf_append(&b, ",", 1);
        r |= rx_buf_append(&b, path, strlen(path));
    }
    (void)r; /* the buffer has no limit */
    free(sorted);
    return rx_buf_detach(&b, NULL);
}

/* Does one of the space-separated signatures verify over fp? */
static bool sigs_verify(const char *sigs, const char *fp, const struct trusted_keys *keys)
{
    for (const char *s = sigs; s && *s;) {
        size_t n = strcspn(s, " ");
        struct signature sig;
        if (n && signature_parse(s, n, &sig, NULL) == 0 &&
            trusted_keys_verify(keys, &sig, fp, strlen(fp)))
            return true;
        s += n;
        s += strspn(s, " ");
    }
    return false;
}

int store_check_sigs(struct store *s, const struct store_path *paths, size_t n,
                     const struct trusted_keys *keys, struct store_path *bad, char **bad_sigs,
                     struct rx_error **err)
{
    *bad_sigs = NULL;
    sqlite3_stmt *info, *refs;
    if (store_db_prepare(s, "select id, hash, narSize, sigs, ca from ValidPaths where path = ?",
                         &info, err) < 0)
        return -1;
    if (store_db_prepare(s, "select path from Refs join ValidPaths on reference = id "
                            "where referrer = ?",
                         &refs, err) < 0) {
        sqlite3_finalize(info);
        return -1;
    }
    int ret = 0;
    struct store_path *rv = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n && ret == 0; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&paths[i], full);
        sqlite3_reset(info);
        sqlite3_bind_text(info, 1, full, -1, SQLITE_TRANSIENT);
        int r = sqlite3_step(info);
        if (r != SQLITE_ROW) {
            ret = r == SQLITE_DONE ? rx_error_set(err, RX_ENOTFOUND, "'%s' is not valid", full)
                                   : store_db_error(s, err, "reading a path's signatures");
            break;
        }
        sqlite3_int64 id = sqlite3_column_int64(info, 0);
        const char *hash_s = (const char *)sqlite3_column_text(info, 1);
        uint64_t size = (uint64_t)sqlite3_column_int64(info, 2);
        const char *sigs = (const char *)sqlite3_column_text(info, 3);
        const char *ca = (const char *)sqlite3_column_text(info, 4);
        /* A content-addressed path is its own proof (Nix trusts it without a signature):
         * runix registers a CA only after checking that it gives this path. */
        if (ca && *ca)
            continue;
        struct hash h;
        enum hash_algo want = HASH_SHA256;
        if (!hash_s || hash_parse(hash_s, strlen(hash_s), &want, &h, err) < 0) {
            ret = rx_error_wrap(err, "store database of '%s': hash of '%s'", s->root, full);
            break;
        }
        size_t nrefs = 0;
        sqlite3_reset(refs);
        sqlite3_bind_int64(refs, 1, id);
        while ((r = sqlite3_step(refs)) == SQLITE_ROW) {
            const char *t = (const char *)sqlite3_column_text(refs, 0);
            if (nrefs == cap) {
                cap = cap ? 2 * cap : 16;
                rv = xrealloc(rv, cap * sizeof *rv);
            }
            if (!t || store_path_parse(t, strlen(t), &rv[nrefs], err) < 0) {
                ret = rx_error_wrap(err, "store database of '%s'", s->root);
                break;
            }
            nrefs++;
        }
        if (ret == 0 && r != SQLITE_DONE)
            ret = store_db_error(s, err, "reading references");
        if (ret != 0)
            break;
        _cleanup_free_ char *fp = store_fingerprint(&paths[i], &h, size, rv, nrefs);
        if (!sigs_verify(sigs, fp, keys)) {
            *bad = paths[i];
            *bad_sigs = xstrdup(sigs && *sigs ? sigs : "");
            ret = 1;
        }
    }
    free(rv);
    sqlite3_finalize(info);
    sqlite3_finalize(refs);
    return ret;
}

int store_index_write_checked(struct store *s, const struct store_path *p, const char *tag,
                              const struct trusted_keys *keys, struct store_path *bad,
                              char **bad_sigs, struct rx_error **err)
{
    *bad_sigs = NULL;
    struct store_path *cl;
    size_t n;
    /* One that still holds was checked when it was written: a fetch of a complete
     * closure writes nothing. */
    if (store_index_read_tagged(s->root_fd, s->root, tag, p, &cl, &n, NULL) == 0) {
        free(cl);
        return 0;
    }
    int r = store_closure(s, p, 1, &cl, &n, err);
    if (r != 0) {
        if (r > 0) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(p, full);
            rx_error_set(err, RX_ENOTFOUND, "%s is not valid in the store", full);
        }
        return -1;
    }
    if (keys)
        r = store_check_sigs(s, cl, n, keys, bad, bad_sigs, err);
    if (r == 0)
        r = store_index_save_tagged(s->root_fd, s->root, tag, p, cl, n, err);
    free(cl);
    return r;
}

int store_query_nar_hash(struct store *s, const struct store_path *p, struct hash *out,
                         struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select hash from ValidPaths where path = ?", &st, err) < 0)
        return -1;
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    sqlite3_bind_text(st, 1, full, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st), ret = 0;
    const char *h = r == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    enum hash_algo want = HASH_SHA256;
    if (r != SQLITE_ROW)
        ret = r == SQLITE_DONE ? rx_error_set(err, RX_ENOTFOUND, "'%s' is not valid", full)
                               : store_db_error(s, err, "reading a path's hash");
    else if (!h || hash_parse(h, strlen(h), &want, out, err) < 0)
        ret = rx_error_wrap(err, "store database of '%s': hash of '%s'", s->root, full);
    sqlite3_finalize(st);
    return ret;
}

int store_add_sig(struct store *s, const struct store_path *p, const char *sig,
                  struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s,
                         "update ValidPaths set sigs = case when sigs is null or sigs = '' then ?1 "
                         "else sigs || ' ' || ?1 end where path = ?2",
                         &st, err) < 0)
        return -1;
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    sqlite3_bind_text(st, 1, sig, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, full, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, "adding a signature");
    return 0;
}

bool store_index_holds(struct store *s, const struct store_path *p, const char *tag)
{
    struct store_path *cl;
    size_t n;
    if (store_index_read_tagged(s->root_fd, s->root, tag, p, &cl, &n, NULL) != 0)
        return false;
    free(cl);
    return true;
}
