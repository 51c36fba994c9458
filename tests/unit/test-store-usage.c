/* Unit tests of what roots keep alive, on a graph built by hand. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "store-graph.h"
#include "store-usage.h"
#include "util-mem.h"

/*
 * app1 -> lib -> leaf, app2 -> lib, tool -> leaf, lone.  Sizes are powers
 * of two, so every sum says which paths it counted.
 */
enum { APP1, APP2, LIB, LEAF, TOOL, LONE, N };
static const char *const paths[N] = {
    "/nix/store/11111111111111111111111111111111-app1",
    "/nix/store/22222222222222222222222222222222-app2",
    "/nix/store/33333333333333333333333333333333-lib",
    "/nix/store/44444444444444444444444444444444-leaf",
    "/nix/store/55555555555555555555555555555555-tool",
    "/nix/store/66666666666666666666666666666666-lone",
};
#define MISSING "/nix/store/77777777777777777777777777777777-missing"

struct graph_fixture {
    struct store_graph g;
    uint32_t at[N]; /* node index of each path */
    uint32_t edges[16];
};

static void build(struct graph_fixture *f)
{
    static struct store_graph_node nodes[N];
    for (int i = 0; i < N; i++) {
        nodes[i] = (struct store_graph_node){.nar_size = 1u << i, .registered = 100 + i};
        assert_int_equal(store_path_parse(paths[i], strlen(paths[i]), &nodes[i].path, NULL), 0);
        f->at[i] = (uint32_t)i; /* the hashes sort as the enum */
    }
    /* refs */
    f->edges[0] = LIB;
    nodes[APP1].refs = &f->edges[0], nodes[APP1].nrefs = 1;
    f->edges[1] = LIB;
    nodes[APP2].refs = &f->edges[1], nodes[APP2].nrefs = 1;
    f->edges[2] = LEAF;
    nodes[LIB].refs = &f->edges[2], nodes[LIB].nrefs = 1;
    f->edges[3] = LEAF;
    nodes[TOOL].refs = &f->edges[3], nodes[TOOL].nrefs = 1;
    f->g = (struct store_graph){.nodes = nodes, .n = N};
}

static struct store_root root_of(const char *name, int64_t used, const char *const *targets,
                                 size_t n)
{
    struct store_root r = {.kind = STORE_ROOT_MANUAL, .name = (char *)name, .last_used = used};
    r.targets = xcalloc(n, sizeof *r.targets);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            store_path_parse(targets[i], strlen(targets[i]), &r.targets[r.ntargets++], NULL), 0);
    return r;
}

static void test_usage(void **state)
{
    (void)state;
    struct graph_fixture f;
    build(&f);
    const char *t0[] = {paths[APP1]};
    const char *t1[] = {paths[APP2], MISSING};
    const char *t2[] = {MISSING};
    const char *t3[] = {paths[APP1], paths[LEAF]};
    struct store_root roots[] = {
        root_of("one", 50, t0, 1),
        root_of("two", 70, t1, 2),
        root_of("gone", 90, t2, 1),
        root_of("again", 10, t3, 2),
    };
    for (int keepers = 0; keepers < 2; keepers++) {
        struct store_usage u;
        store_usage_compute(&f.g, roots, 4, keepers, &u);
        /* one: app1 lib leaf; two: app2 lib leaf; gone: nothing; again: app1 lib leaf. */
        assert_int_equal(u.roots[0].closure_bytes, 1 | 4 | 8);
        assert_int_equal(u.roots[0].closure_paths, 3);
        assert_int_equal(u.roots[1].closure_bytes, 2 | 4 | 8);
        assert_int_equal(u.roots[2].closure_bytes, 0);
        assert_int_equal(u.roots[2].closure_paths, 0);
        assert_int_equal(u.roots[3].closure_bytes, 1 | 4 | 8);
        /* Only two keeps app2; app1 is one's and again's. */
        assert_int_equal(u.roots[0].unique_bytes, 0);
        assert_int_equal(u.roots[1].unique_bytes, 2);
        assert_int_equal(u.roots[1].unique_paths, 1);
        assert_int_equal(u.roots[3].unique_bytes, 0);
        assert_int_equal(u.keeper[APP2], 1);
        assert_int_equal(u.keeper[APP1], STORE_USAGE_MANY);
        assert_int_equal(u.keeper[TOOL], STORE_USAGE_NONE);
        assert_int_equal(u.paths, N);
        assert_int_equal(u.bytes, 63);
        assert_int_equal(u.dead_paths, 2);
        assert_int_equal(u.dead_bytes, 16 | 32);
        assert_int_equal(u.last_used[LEAF], 70);
        assert_int_equal(u.last_used[APP1], 50);
        assert_int_equal(u.last_used[LONE], 0);
        if (keepers) {
            size_t a = u.kept_at[LEAF], b = u.kept_at[LEAF + 1];
            assert_int_equal(b - a, 3);
            assert_int_equal(u.kept[a], 0);
            assert_int_equal(u.kept[a + 1], 1);
            assert_int_equal(u.kept[a + 2], 3);
            assert_int_equal(u.kept_at[LONE + 1] - u.kept_at[LONE], 0);
            assert_int_equal(u.kept_at[APP2 + 1] - u.kept_at[APP2], 1);
        } else {
            assert_null(u.kept_at);
        }
        store_usage_release(&u);
    }
    for (size_t i = 0; i < 4; i++)
        free(roots[i].targets);
}

static void test_empty(void **state)
{
    (void)state;
    struct store_graph g = {0};
    struct store_usage u;
    store_usage_compute(&g, NULL, 0, true, &u);
    assert_int_equal(u.paths, 0);
    assert_int_equal(u.dead_paths, 0);
    store_usage_release(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
