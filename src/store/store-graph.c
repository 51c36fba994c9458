/* The reference graph in memory (see store-graph.h). */
#include "config.h"
#include "store-graph.h"
#include "store-internal.h"

#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "util-mem.h"

#include "banned.h"

static int cmp_node_ptr(const void *a, const void *b)
{
    const struct store_graph_node *const *x = a, *const *y = b;
    return store_path_cmp(&(*x)->path, &(*y)->path);
}

/* Node index by ValidPaths.id: ids sorted, with the node each belongs to. */
struct id_ix {
    int64_t id;
    uint32_t node;
};

static int cmp_id(const void *a, const void *b)
{
    const struct id_ix *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static long node_of(const struct id_ix *ids, size_t n, int64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && ids[lo].id == id ? (long)ids[lo].node : -1;
}

struct edge {
    uint32_t from, to;
};

static int load(struct store *s, struct store_graph *g, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select id, path, narSize, registrationTime from ValidPaths", &st,
                         err) < 0)
        return -1;
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 1);
        struct store_path p;
        if (!t || store_path_parse(t, strlen(t), &p, err) < 0) {
            sqlite3_finalize(st);
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        if (g->n == cap) {
            cap = cap ? 2 * cap : 256;
            g->nodes = xrealloc(g->nodes, cap * sizeof *g->nodes);
        }
        g->nodes[g->n++] = (struct store_graph_node){
            .path = p,
            .id = sqlite3_column_int64(st, 0),
            .nar_size = (uint64_t)sqlite3_column_int64(st, 2),
            .registered = sqlite3_column_int64(st, 3),
        };
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, "reading the valid paths");
    if (g->n > 1) {
        /* Sort pointers, not the nodes (a store path is some 250 bytes), then lay them out. */
        _cleanup_free_ struct store_graph_node **order = xmalloc(g->n * sizeof *order);
        for (size_t i = 0; i < g->n; i++)
            order[i] = &g->nodes[i];
        qsort(order, g->n, sizeof *order, cmp_node_ptr);
        struct store_graph_node *sorted = xmalloc(g->n * sizeof *sorted);
        for (size_t i = 0; i < g->n; i++)
            sorted[i] = *order[i];
        free(g->nodes);
        g->nodes = sorted;
    }

    _cleanup_free_ struct id_ix *ids = xcalloc(g->n + 1, sizeof *ids);
    for (size_t i = 0; i < g->n; i++)
        ids[i] = (struct id_ix){g->nodes[i].id, (uint32_t)i};
    if (g->n)
        qsort(ids, g->n, sizeof *ids, cmp_id);

    if (store_db_prepare(s, "select referrer, reference from Refs", &st, err) < 0)
        return -1;
    _cleanup_free_ struct edge *edges = NULL;
    size_t nedges = 0, ecap = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        long from = node_of(ids, g->n, sqlite3_column_int64(st, 0));
        long to = node_of(ids, g->n, sqlite3_column_int64(st, 1));
        if (from < 0 || to < 0 || from == to)
            continue; /* self-references, and rows of no valid path (foreign keys forbid) */
        if (nedges == ecap) {
            ecap = ecap ? 2 * ecap : 1024;
            edges = xrealloc(edges, ecap * sizeof *edges);
        }
        edges[nedges++] = (struct edge){(uint32_t)from, (uint32_t)to};
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, "reading the references");

    /* Both directions in one array: counts, then offsets, then fill. */
    _cleanup_free_ uint32_t *nref = xcalloc(g->n + 1, sizeof *nref);
    _cleanup_free_ uint32_t *nrev = xcalloc(g->n + 1, sizeof *nrev);
    for (size_t e = 0; e < nedges; e++) {
        nref[edges[e].from]++;
        nrev[edges[e].to]++;
    }
    g->edges = xcalloc(2 * nedges + 1, sizeof *g->edges);
    uint32_t *at = g->edges;
    for (size_t i = 0; i < g->n; i++) {
        g->nodes[i].refs = at;
        at += nref[i];
        g->nodes[i].referrers = at;
        at += nrev[i];
    }
    for (size_t e = 0; e < nedges; e++) {
        struct store_graph_node *f = &g->nodes[edges[e].from], *t = &g->nodes[edges[e].to];
        ((uint32_t *)f->refs)[f->nrefs++] = edges[e].to;
        ((uint32_t *)t->referrers)[t->nreferrers++] = edges[e].from;
    }
    return 0;
}

int store_graph_load(struct store *s, struct store_graph *g, struct rx_error **err)
{
    *g = (struct store_graph){0};
    /* One read transaction: what a writer commits meanwhile is all in or all out. */
    if (store_db_exec(s, "begin", err) < 0)
        return -1;
    int r = load(s, g, err);
    store_db_exec(s, "commit", NULL);
    if (r < 0)
        store_graph_release(g);
    return r;
}

void store_graph_release(struct store_graph *g)
{
    free(g->nodes);
    free(g->edges);
    *g = (struct store_graph){0};
}

long store_graph_find(const struct store_graph *g, const struct store_path *p)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = store_path_cmp(&g->nodes[mid].path, p);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

void store_graph_mark(const struct store_graph *g, const uint32_t *starts, size_t n, bool *mark)
{
    _cleanup_free_ uint32_t *stack = xmalloc((g->n + 1) * sizeof *stack);
    size_t top = 0;
    for (size_t i = 0; i < n; i++) {
        if (mark[starts[i]])
            continue;
        mark[starts[i]] = true;
        stack[top++] = starts[i];
        while (top) {
            const struct store_graph_node *v = &g->nodes[stack[--top]];
            for (uint32_t k = 0; k < v->nrefs; k++)
                if (!mark[v->refs[k]]) {
                    mark[v->refs[k]] = true;
                    stack[top++] = v->refs[k];
                }
        }
    }
}

size_t store_graph_closure(const struct store_graph *g, const uint32_t *starts, size_t n,
                           uint32_t **out)
{
    _cleanup_free_ bool *mark = xcalloc(g->n + 1, sizeof *mark);
    store_graph_mark(g, starts, n, mark);
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++)
        k += mark[i];
    *out = xmalloc((k + 1) * sizeof **out);
    k = 0;
    for (size_t i = 0; i < g->n; i++)
        if (mark[i])
            (*out)[k++] = (uint32_t)i;
    return k;
}
