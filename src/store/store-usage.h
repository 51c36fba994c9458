#pragma once
/*
 * What the roots of a store keep alive, computed on its reference graph
 * (store-graph.h) in one pass per root: each root's closure and the part of
 * it no other root keeps, each path's latest use, and what no root keeps
 * (what the collector may delete).  What `runix roots`, `runix list` and
 * `runix doctor` show.
 *
 * A root's targets that are not valid keep nothing (their index is -1).
 * Cost: the sum of the roots' closure sizes, with no allocation per root.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-graph.h"
#include "store-roots.h"

#define STORE_USAGE_NONE UINT32_MAX /* no root keeps the path */
#define STORE_USAGE_MANY (UINT32_MAX - 1) /* two roots or more keep it */

struct store_usage_root {
    uint64_t closure_bytes; /* NAR sizes of the closure of its valid targets */
    size_t closure_paths;
    uint64_t unique_bytes; /* of those, what no other root keeps */
    size_t unique_paths;
};

struct store_usage {
    struct store_usage_root *roots; /* one per root, in the order given */
    /* Per node of the graph: */
    uint32_t *keeper;   /* the one root that keeps it, STORE_USAGE_NONE or _MANY */
    int64_t *last_used; /* the latest last use of the roots keeping it; 0: none known */
    /*
     * With `keepers`: the roots keeping node i are kept[kept_at[i] ..
     * kept_at[i + 1]), by increasing index; else both NULL.
     */
    size_t *kept_at;
    uint32_t *kept;
    /* The whole store. */
    size_t paths, dead_paths; /* dead: kept by no root */
    uint64_t bytes, dead_bytes;
};

/*
 * Compute u for roots[0..nroots) on g.  With keepers, also the list of the
 * roots keeping each path (memory: the sum of the closure sizes).
 */
void store_usage_compute(const struct store_graph *g, const struct store_root *roots,
                         size_t nroots, bool keepers, struct store_usage *u);
void store_usage_release(struct store_usage *u);
