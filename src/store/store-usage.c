/* What the roots of a store keep alive (see store-usage.h). */
#include "config.h"
#include "store-usage.h"

#include <stdlib.h>
#include <string.h>

#include "util-mem.h"

#include "banned.h"

struct pair {
    uint32_t node, root;
};

void store_usage_compute(const struct store_graph *g, const struct store_root *roots,
                         size_t nroots, bool keepers, struct store_usage *u)
{
    *u = (struct store_usage){0};
    u->roots = xcalloc(nroots + 1, sizeof *u->roots);
    u->keeper = xmalloc((g->n + 1) * sizeof *u->keeper);
    u->last_used = xcalloc(g->n + 1, sizeof *u->last_used);
    for (size_t i = 0; i < g->n; i++)
        u->keeper[i] = STORE_USAGE_NONE;

    /* seen[i] == r + 1: root r has reached node i; no clearing between roots. */
    _cleanup_free_ uint32_t *seen = xcalloc(g->n + 1, sizeof *seen);
    _cleanup_free_ uint32_t *stack = xmalloc((g->n + 1) * sizeof *stack);
    _cleanup_free_ struct pair *pairs = NULL;
    size_t npairs = 0, cap = 0;

    for (size_t r = 0; r < nroots && r < STORE_USAGE_MANY; r++) {
        const struct store_root *root = &roots[r];
        struct store_usage_root *ur = &u->roots[r];
        uint32_t stamp = (uint32_t)r + 1;
        size_t top = 0;
        for (size_t t = 0; t < root->ntargets; t++) {
            long i = store_graph_find(g, &root->targets[t]);
            if (i >= 0 && seen[i] != stamp) {
                seen[i] = stamp;
                stack[top++] = (uint32_t)i;
            }
        }
        while (top) {
            uint32_t i = stack[--top];
            const struct store_graph_node *v = &g->nodes[i];
            ur->closure_bytes += v->nar_size;
            ur->closure_paths++;
            if (u->keeper[i] == STORE_USAGE_NONE)
                u->keeper[i] = (uint32_t)r;
            else if (u->keeper[i] != r)
                u->keeper[i] = STORE_USAGE_MANY;
            if (root->last_used > u->last_used[i])
                u->last_used[i] = root->last_used;
            if (keepers) {
                if (npairs == cap) {
                    cap = cap ? 2 * cap : 1024;
                    pairs = xrealloc(pairs, cap * sizeof *pairs);
                }
                pairs[npairs++] = (struct pair){i, (uint32_t)r};
            }
            for (uint32_t k = 0; k < v->nrefs; k++)
                if (seen[v->refs[k]] != stamp) {
                    seen[v->refs[k]] = stamp;
                    stack[top++] = v->refs[k];
                }
        }
    }

    for (size_t i = 0; i < g->n; i++) {
        uint64_t size = g->nodes[i].nar_size;
        u->paths++;
        u->bytes += size;
        if (u->keeper[i] == STORE_USAGE_NONE) {
            u->dead_paths++;
            u->dead_bytes += size;
        } else if (u->keeper[i] != STORE_USAGE_MANY) {
            u->roots[u->keeper[i]].unique_bytes += size;
            u->roots[u->keeper[i]].unique_paths++;
        }
    }

    if (keepers) {
        /* A counting sort by node: pairs come root by root, so each node's roots stay in order. */
        u->kept_at = xcalloc(g->n + 2, sizeof *u->kept_at);
        u->kept = xmalloc((npairs + 1) * sizeof *u->kept);
        for (size_t p = 0; p < npairs; p++)
            u->kept_at[pairs[p].node + 1]++;
        for (size_t i = 0; i < g->n; i++)
            u->kept_at[i + 1] += u->kept_at[i];
        _cleanup_free_ size_t *fill = xmalloc((g->n + 1) * sizeof *fill);
        memcpy(fill, u->kept_at, (g->n + 1) * sizeof *fill);
        for (size_t p = 0; p < npairs; p++)
            u->kept[fill[pairs[p].node]++] = pairs[p].root;
    }
}

void store_usage_release(struct store_usage *u)
{
    free(u->roots);
    free(u->keeper);
    free(u->last_used);
    free(u->kept_at);
    free(u->kept);
    *u = (struct store_usage){0};
}
