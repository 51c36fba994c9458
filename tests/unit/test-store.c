#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "test-helpers.h"

#include "store-graph.h"
#include "store.h"
#include "util-mem.h"

#define P_LEAF "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define P_APP "/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"

static struct store_path sp(const char *s)
{
    struct store_path p;
    assert_int_equal(store_path_parse(s, strlen(s), &p, NULL), 0);
    return p;
}

static void put(const char *root, const char *path)
{
    char *d = xasprintf("%s%s", root, path);
    assert_int_equal(mkdir(d, 0755), 0);
    free(d);
}

static bool exists(const char *root, const char *path)
{
    char *d = xasprintf("%s%s", root, path);
    struct stat st;
    bool r = lstat(d, &st) == 0;
    free(d);
    return r;
}

static char *query(const char *root, const char *sql)
{
    char *db = xasprintf("%s/nix/var/nix/db/db.sqlite", root);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
    char *out = xstrdup("");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        char *n = xasprintf("%s%s;", out, t ? t : "NULL");
        free(out);
        out = n;
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    free(db);
    return out;
}

static void test_store_layout_and_schema(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s;
    struct rx_error *err = NULL;
    if (store_open(root, &s, &err) < 0)
        fail_msg("%s", err->msg);
    store_close(s);
    char *schema = xasprintf("%s/nix/var/nix/db/schema", root);
    size_t len;
    char *text = td_read(schema, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(text, "10", 2);
    free(text);
    assert_true(exists(root, "/nix/store"));
    assert_true(exists(root, "/nix/var/nix/gcroots"));
    char *objs = query(root, "select name from sqlite_master order by name");
    assert_string_equal(objs, "DeleteSelfRefs;DerivationOutputs;IndexDerivationOutputs;"
                              "IndexReference;IndexReferrer;Refs;ValidPaths;"
                              "sqlite_autoindex_DerivationOutputs_1;sqlite_autoindex_Refs_1;"
                              "sqlite_autoindex_ValidPaths_1;sqlite_sequence;");
    free(objs);
    char *mode = query(root, "pragma journal_mode");
    assert_string_equal(mode, "wal;");
    free(mode);

    /* Opening again is fine; another schema version is refused. */
    assert_int_equal(store_open(root, &s, NULL), 0);
    store_close(s);
    FILE *f = fopen(schema, "w");
    fputs("11", f);
    fclose(f);
    assert_int_equal(store_open(root, &s, &err), -1);
    assert_non_null(strstr(err->msg, "schema version '11'"));
    rx_error_clear(&err);
    free(schema);
    td_rmtree(root);
    free(root);
}

static void test_store_register(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s;
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct store_path leaf = sp(P_LEAF), app = sp(P_APP);
    struct store_path app_refs[] = {leaf, app};
    const char *sigs[] = {"b-key:BBBB", "a-key:AAAA", "b-key:BBBB"};
    struct store_info ileaf = {.path = leaf, .nar_size = 288};
    struct store_info iapp = {.path = app, .nar_size = 2384, .refs = app_refs, .nrefs = 2,
                              .sigs = sigs, .nsigs = 3, .ca = NULL};
    memset(iapp.nar_hash.bytes, 0xab, 32);
    struct rx_error *err = NULL;

    /* Not on disk: refused. */
    assert_int_equal(store_register(s, &ileaf, 1, &err), -1);
    assert_non_null(strstr(err->msg, "not in"));
    rx_error_clear(&err);

    /* A reference that is not valid: refused, and nothing registered. */
    put(root, P_LEAF);
    put(root, P_APP);
    assert_int_equal(store_register(s, &iapp, 1, &err), -1);
    assert_non_null(strstr(err->msg, "must be valid first"));
    rx_error_clear(&err);
    assert_int_equal(store_is_valid(s, &app, NULL), 0);

    /* Together: fine, in either order. */
    struct store_info both[] = {iapp, ileaf};
    if (store_register(s, both, 2, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(store_is_valid(s, &app, NULL), 1);
    assert_int_equal(store_is_valid(s, &leaf, NULL), 1);
    struct store_path *refs;
    size_t n;
    assert_int_equal(store_query_references(s, &app, &refs, &n, NULL), 0);
    assert_int_equal(n, 2);
    free(refs);
    char *rows = query(root, "select hash || ' ' || narSize || ' ' || coalesce(sigs, 'NULL') || ' ' "
                             "|| coalesce(ultimate, 'NULL') from ValidPaths order by path");
    assert_string_equal(rows, "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                              " 288 NULL NULL;"
                              "sha256:abababababababababababababababababababababababababababababababab"
                              " 2384 a-key:AAAA b-key:BBBB NULL;");
    free(rows);
    /* Registering again changes nothing. */
    assert_int_equal(store_register(s, both, 2, NULL), 0);
    char *count = query(root, "select count(*) from ValidPaths");
    assert_string_equal(count, "2;");
    free(count);
    store_close(s);
    td_rmtree(root);
    free(root);
}

#define P_MID "/nix/store/00000000000000000000000000000000-spec-mid-1.0"
#define P_OTHER "/nix/store/11111111111111111111111111111111-spec-other-1.0"

static char *missing_names(struct store *s, const struct store_path *roots, size_t n)
{
    struct store_path *m;
    size_t nm;
    struct rx_error *err = NULL;
    if (store_check_missing(s, roots, n, &m, &nm, &err) < 0)
        fail_msg("%s", err->msg);
    char *out = xstrdup("");
    for (size_t i = 0; i < nm; i++) {
        char *o = xasprintf("%s%s;", out, m[i].name);
        free(out);
        out = o;
    }
    free(m);
    return out;
}

/* A path gone from disk is found, and unregistered with its referrers (and only them). */
static void test_store_missing_unregistered_with_referrers(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s;
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct store_path leaf = sp(P_LEAF), mid = sp(P_MID), app = sp(P_APP), other = sp(P_OTHER);
    struct store_path mid_refs[] = {leaf}, app_refs[] = {mid, app};
    struct store_info infos[] = {
        {.path = leaf},
        {.path = mid, .refs = mid_refs, .nrefs = 1},
        {.path = app, .refs = app_refs, .nrefs = 2},
        {.path = other},
    };
    put(root, P_LEAF);
    put(root, P_MID);
    put(root, P_APP);
    put(root, P_OTHER);
    struct rx_error *err = NULL;
    if (store_register(s, infos, 4, &err) < 0)
        fail_msg("%s", err->msg);

    char *m = missing_names(s, NULL, 0);
    assert_string_equal(m, "");
    free(m);
    char *d = xasprintf("%s%s", root, P_LEAF);
    assert_int_equal(rmdir(d), 0);
    m = missing_names(s, NULL, 0);
    assert_string_equal(m, "spec-leaf-1.0;");
    free(m);
    m = missing_names(s, &app, 1); /* in app's closure */
    assert_string_equal(m, "spec-leaf-1.0;");
    free(m);
    m = missing_names(s, &other, 1); /* not in other's */
    assert_string_equal(m, "");
    free(m);

    /* Back on disk before the transaction: nothing is unregistered. */
    struct store_path lost = leaf;
    assert_int_equal(mkdir(d, 0755), 0);
    size_t gone = 99;
    assert_int_equal(store_unregister_missing(s, &lost, 1, &gone, NULL), 0);
    assert_int_equal(gone, 0);
    assert_int_equal(store_is_valid(s, &leaf, NULL), 1);

    /* Gone: it goes, with mid and app that need it; other stays, and no Refs row dangles. */
    assert_int_equal(rmdir(d), 0);
    if (store_unregister_missing(s, &lost, 1, &gone, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(gone, 3);
    char *rows = query(root, "select path from ValidPaths order by path");
    assert_string_equal(rows, P_OTHER ";");
    free(rows);
    rows = query(root, "select count(*) from Refs");
    assert_string_equal(rows, "0;");
    free(rows);
    m = missing_names(s, NULL, 0);
    assert_string_equal(m, "");
    free(m);

    /* Something no NAR makes (a FIFO) in place of a path is damaged. */
    char *o = xasprintf("%s%s", root, P_OTHER);
    assert_int_equal(rmdir(o), 0);
    assert_int_equal(mkfifo(o, 0644), 0);
    m = missing_names(s, &other, 1);
    assert_string_equal(m, "spec-other-1.0;");
    free(m);
    assert_int_equal(store_unregister_missing(s, &other, 1, &gone, NULL), 0);
    assert_int_equal(gone, 1);
    assert_int_equal(store_is_valid(s, &other, NULL), 0);
    free(o);
    free(d);
    store_close(s);
    td_rmtree(root);
    free(root);
}

static void test_store_graph(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s;
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct store_path leaf = sp(P_LEAF), mid = sp(P_MID), app = sp(P_APP), other = sp(P_OTHER);
    struct store_path mid_refs[] = {leaf, mid}, app_refs[] = {mid, leaf, app};
    struct store_info infos[] = {
        {.path = leaf, .nar_size = 1},
        {.path = mid, .refs = mid_refs, .nrefs = 2, .nar_size = 10},
        {.path = app, .refs = app_refs, .nrefs = 3, .nar_size = 100},
        {.path = other, .nar_size = 1000},
    };
    put(root, P_LEAF);
    put(root, P_MID);
    put(root, P_APP);
    put(root, P_OTHER);
    assert_int_equal(store_register(s, infos, 4, NULL), 0);

    struct store_graph g;
    struct rx_error *err = NULL;
    if (store_graph_load(s, &g, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(g.n, 4);
    for (size_t i = 1; i < g.n; i++)
        assert_true(store_path_cmp(&g.nodes[i - 1].path, &g.nodes[i].path) < 0);
    long il = store_graph_find(&g, &leaf), im = store_graph_find(&g, &mid);
    long ia = store_graph_find(&g, &app), io = store_graph_find(&g, &other);
    assert_true(il >= 0 && im >= 0 && ia >= 0 && io >= 0);
    struct store_path none = sp("/nix/store/00000000000000000000000000000000-none");
    assert_int_equal(store_graph_find(&g, &none), -1);
    /* Self-references are left out; both directions are there. */
    assert_int_equal(g.nodes[ia].nrefs, 2);
    assert_int_equal(g.nodes[im].nrefs, 1);
    assert_int_equal(g.nodes[im].refs[0], il);
    assert_int_equal(g.nodes[il].nreferrers, 2);
    assert_int_equal(g.nodes[io].nrefs + g.nodes[io].nreferrers, 0);
    assert_int_equal(g.nodes[ia].nar_size, 100);
    assert_true(g.nodes[ia].registered > 0);

    uint32_t start = (uint32_t)im, *cl;
    size_t n = store_graph_closure(&g, &start, 1, &cl);
    assert_int_equal(n, 2);
    assert_true((cl[0] == il && cl[1] == im) || (cl[0] == im && cl[1] == il));
    free(cl);
    bool mark[4] = {false};
    start = (uint32_t)ia;
    store_graph_mark(&g, &start, 1, mark);
    assert_true(mark[il] && mark[im] && mark[ia] && !mark[io]);
    store_graph_release(&g);
    store_close(s);
    td_rmtree(root);
    free(root);
}

static void test_store_locks_and_leftovers(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s;
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct store_path leaf = sp(P_LEAF), app = sp(P_APP);
    int fd1, fd2;
    assert_int_equal(store_lock_path(s, &leaf, false, &fd1, NULL), 1);
    /* flock is per open file: a second open, even here, conflicts. */
    assert_int_equal(store_lock_path(s, &leaf, false, &fd2, NULL), 0);
    store_unlock_path(s, &leaf, fd1);
    assert_false(exists(root, P_LEAF ".lock"));
    assert_int_equal(store_lock_path(s, &leaf, false, &fd2, NULL), 1);
    store_unlock_path(s, &leaf, fd2);

    /* Unregistered entries are removed, unless someone holds their lock. */
    put(root, P_LEAF);
    put(root, P_APP);
    char *sub = xasprintf("%s%s/sub", root, P_APP);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(chmod(sub, 0555), 0);
    free(sub);
    char *app_dir = xasprintf("%s%s", root, P_APP);
    assert_int_equal(chmod(app_dir, 0555), 0);
    free(app_dir);
    assert_int_equal(store_lock_path(s, &leaf, false, &fd1, NULL), 1);
    struct rx_error *err = NULL;
    if (store_clean_leftovers(s, &err) < 0)
        fail_msg("%s", err->msg);
    assert_true(exists(root, P_LEAF));
    assert_false(exists(root, P_APP));
    store_unlock_path(s, &leaf, fd1);
    assert_int_equal(store_lock_path(s, &leaf, false, &fd1, NULL), 1);
    assert_int_equal(store_remove_invalid(s, &leaf, NULL), 0);
    assert_false(exists(root, P_LEAF));
    store_unlock_path(s, &leaf, fd1);
    (void)app;

    /* A dead process's work dir is removed when the store is opened for writing, even
     * by a run that never needs a work dir of its own. */
    store_close(s);
    char *stale = xasprintf("%s/nix/var/runix/tmp/999999-deadbeef", root);
    assert_int_equal(mkdir(stale, 0700), 0);
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct stat st;
    assert_int_equal(stat(stale, &st), -1);
    int tfd = store_tmp_fd(s, NULL);
    assert_true(tfd >= 0);
    free(stale);
    store_close(s);
    /* Our own work dir goes away with the store. */
    char *tmpdir = xasprintf("%s/nix/var/runix/tmp", root);
    char *ls = xasprintf("test -z \"$(ls -A '%s')\"", tmpdir);
    assert_int_equal(system(ls), 0);
    free(ls);
    free(tmpdir);
    td_rmtree(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_layout_and_schema),
        cmocka_unit_test(test_store_register),
        cmocka_unit_test(test_store_locks_and_leftovers),
        cmocka_unit_test(test_store_missing_unregistered_with_referrers),
        cmocka_unit_test(test_store_graph),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
