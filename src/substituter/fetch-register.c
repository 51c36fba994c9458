/* Registration of fetched paths, in batches closed under references. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <stdlib.h>

#include "store.h"
#include "util-mem.h"

#include "banned.h"

bool fetch_refs_valid(const struct fetch *f, const struct item *it, const bool *in_batch)
{
    for (size_t k = 0; k < it->nrefs; k++) {
        size_t r = it->refs[k];
        if (f->items[r].state != S_VALID && !(in_batch && in_batch[r]))
            return false;
    }
    return true;
}

/* Mark in[] the paths on disk whose references are valid or marked too; returns how many. */
static size_t pick_batch(const struct fetch *f, bool *in)
{
    size_t n = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < f->nitems; i++) {
            if (f->items[i].state == S_ON_DISK && !in[i] && fetch_refs_valid(f, &f->items[i], in)) {
                in[i] = true;
                n++;
                changed = true;
            }
        }
    }
    return n;
}

/* Register every path of ours whose references are (or become) valid. */
int fetch_register_ready(struct fetch *f, struct rx_error **err)
{
    if (f->info_trailing)
        return 0; /* the cache is not known to be for /nix/store yet */
    bool *in = xcalloc(f->nitems, sizeof *in);
    size_t n = pick_batch(f, in);
    if (n == 0) {
        free(in);
        return 0;
    }
    struct store_info *infos = xcalloc(n, sizeof *infos);
    size_t k = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        if (!in[i])
            continue;
        const struct narinfo *ni = &f->items[i].ni;
        struct store_info *si = &infos[k++];
        si->path = ni->path;
        si->nar_hash = ni->nar_hash;
        si->nar_size = ni->nar_size;
        si->refs = ni->refs;
        si->nrefs = ni->nrefs;
        si->deriver = ni->has_deriver ? &ni->deriver : NULL;
        si->sigs = (const char *const *)ni->sigs;
        si->nsigs = ni->nsigs;
        si->ca = ni->ca;
    }
    /*
     * The files renamed into nix/store reach the disk before the database
     * says they are there: after a power loss a registered path is whole.
     */
    int r = store_sync(f->store, err);
    if (r == 0)
        r = store_register(f->store, infos, n, err);
    free(infos);
    if (r == 0) {
        for (size_t i = 0; i < f->nitems; i++) {
            if (!in[i])
                continue;
            f->items[i].state = S_VALID;
            store_unlock_path(f->store, &f->items[i].path, f->items[i].lock_fd);
            f->items[i].lock_fd = -1;
            f->kept++;
            /* Only now, when it is there to stay. */
            fetch_announce_done(f, &f->items[i]);
        }
    }
    free(in);
    return r;
}

/*
 * Register what is ready every REGISTER_EVERY_S, not only at the end: a
 * run that is interrupted keeps what it has fetched so far, other
 * processes waiting for those paths go on, and the locks they free go to
 * the next paths.  Each batch is closed under references (a path goes in
 * only with or after all it references).  Then see what other processes
 * have registered meanwhile.
 */
int fetch_register_some(struct fetch *f, double now, struct rx_error **err)
{
    /* Sooner when half the locks wait for it: small paths download faster than that. */
    size_t on_disk = 0;
    for (size_t i = 0; i < f->nitems; i++)
        on_disk += f->items[i].state == S_ON_DISK;
    if (now - f->registered_at < REGISTER_EVERY_S && on_disk < LOCKS_MAX / 2)
        return 0;
    f->registered_at = now;
    if (fetch_register_ready(f, err) < 0 || fetch_poll_foreign(f, err) < 0)
        return -1;
    return 0;
}
