#pragma once
/*
 * The store's whole reference graph in memory: every valid path with its
 * size, registration time and references, read from the database in two
 * queries.  What the collector, `runix roots` and `runix list` compute on:
 * closures of many roots at once, what only one root keeps alive, what is
 * dead.  10,000 paths load in a few milliseconds.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-path.h"
#include "store.h"
#include "util-error.h"

struct store_graph_node {
    struct store_path path;
    int64_t id; /* ValidPaths.id */
    uint64_t nar_size;
    int64_t registered; /* registrationTime, seconds since the epoch */
    /* Indexes into nodes[], self-references left out. */
    const uint32_t *refs;
    uint32_t nrefs;
    const uint32_t *referrers;
    uint32_t nreferrers;
};

struct store_graph {
    struct store_graph_node *nodes; /* sorted by path */
    size_t n;
    uint32_t *edges; /* storage of every node's refs and referrers */
};

/* Read the graph of s (one read transaction, so it is consistent). */
int store_graph_load(struct store *s, struct store_graph *g, struct rx_error **err);
void store_graph_release(struct store_graph *g);

/* The index of p in g, or -1 when p is not valid. */
long store_graph_find(const struct store_graph *g, const struct store_path *p);

/*
 * Mark everything reachable from starts[0..n) (node indexes): mark[i] is
 * set to true for each, mark having g->n entries.  Marks already set stop
 * the walk there (their closure is taken to be marked too), so calls can
 * add to one marking.
 */
void store_graph_mark(const struct store_graph *g, const uint32_t *starts, size_t n, bool *mark);

/* The closure of starts as node indexes, sorted, in *out (free it); returns the count. */
size_t store_graph_closure(const struct store_graph *g, const uint32_t *starts, size_t n,
                           uint32_t **out);
