/* fetch_closure(): the order of a fetch's steps, each done by another fetch-*.c. */
#include "config.h"
#include "fetch.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

/*
 * Wait for the paths other processes are fetching, and fetch those they
 * dropped.  Nothing here blocks on a lock: each round re-reads the
 * database for every path another process holds, registers what that made
 * ready, locks without waiting what can be locked, and otherwise sleeps a
 * little (up to REGISTER_EVERY_S).  A lock we hold never waits for another
 * process (fetch_claim_ready), so processes cannot wait for each other in
 * a circle.
 */
static int settle(struct fetch *f, struct rx_error **err)
{
    double pause = 0.01;
    for (;;) {
        if (rx_interrupted)
            return rx_error_set(err, EINTR, "interrupted");
        if (fetch_register_ready(f, err) < 0)
            return -1;
        if (f->aborting)
            return 0;
        f->registered_at = fetch_now_s();
        int moved = fetch_poll_foreign(f, err);
        if (moved < 0)
            return -1;
        if (moved > 0) {
            if (fetch_walk(f, err) < 0)
                return -1;
            pause = 0.01;
            continue;
        }
        bool waiting = false;
        for (size_t i = 0; i < f->nitems; i++) {
            struct item *it = &f->items[i];
            if (it->state != S_FOREIGN)
                continue;
            waiting = true;
            if (!it->waited_for) {
                it->waited_for = true;
                fetch_report_waiting(f, it);
            }
        }
        if (!waiting)
            return 0;
        fetch_pause_s(pause);
        pause = pause * 2 < REGISTER_EVERY_S ? pause * 2 : REGISTER_EVERY_S;
    }
}

/*
 * Paths of the closures that are registered but gone from disk (removed
 * by hand, replaced by something no NAR makes) are unregistered, with
 * every path that needs them, so that the walk fetches them again.
 */
static int repair(struct fetch *f, const struct store_path *paths, size_t n, struct rx_error **err)
{
    struct store_path *missing;
    size_t nmissing, gone;
    if (store_check_missing(f->store, paths, n, &missing, &nmissing, err) < 0)
        return -1;
    int r = store_unregister_missing(f->store, missing, nmissing, &gone, err);
    if (r == 0 && gone > 0) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&missing[0], full);
        size_t others = gone > nmissing ? gone - nmissing : 0;
        _cleanup_free_ char *also =
            others ? xasprintf(", with the %zu registered path%s that need%s %s", others,
                               others == 1 ? "" : "s", others == 1 ? "s" : "",
                               nmissing == 1 ? "it" : "them")
                   : xstrdup("");
        if (nmissing == 1)
            fetch_warn(
                f, "'%s' is registered but missing or damaged in %s/nix/store: fetching it again%s",
                full, store_root(f->store), also);
        else
            fetch_warn(f,
                       "%zu registered paths are missing or damaged in %s/nix/store ('%s', ...): "
                       "fetching them again%s",
                       nmissing, store_root(f->store), full, also);
    }
    free(missing);
    return r;
}

/* The items for the paths asked for; *todo gets how many are not valid yet. */
static int add_tops(struct fetch *f, const struct store_path *paths, size_t n, size_t *todo,
                    struct rx_error **err)
{
    *todo = 0;
    for (size_t i = 0; i < n; i++) {
        bool created;
        size_t idx = fetch_item_get(f, &paths[i], &created);
        f->items[idx].top = true;
        if (!created)
            continue;
        int v = store_is_valid(f->store, &paths[i], err);
        if (v < 0)
            return -1;
        if (v)
            f->items[idx].state = S_VALID;
        else
            (*todo)++;
    }
    return 0;
}

/*
 * A distributable's closure, when it gives one: the narinfos of every path
 * that is not valid yet are asked for from the start.
 */
static int add_hints(struct fetch *f, struct rx_error **err)
{
    for (size_t i = 0; i < f->o->nclosure_hint; i++) {
        bool created;
        size_t idx = fetch_item_get(f, &f->o->closure_hint[i], &created);
        if (!created)
            continue;
        int v = store_is_valid(f->store, &f->o->closure_hint[i], err);
        if (v < 0)
            return -1;
        if (v)
            f->items[idx].state = S_VALID; /* else asked for as the paths are */
    }
    return 0;
}

/*
 * Mark in blocked[] the paths that failed and those that need one of them,
 * directly or not: those can never be registered.  Returns how many of the
 * paths asked for are blocked; *first gets the first of them.
 */
static size_t find_blocked(const struct fetch *f, bool *blocked, size_t *first)
{
    for (size_t i = 0; i < f->nitems; i++)
        blocked[i] = f->items[i].state == S_FAILED;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < f->nitems; i++) {
            const struct item *it = &f->items[i];
            if (blocked[i] || it->state == S_VALID)
                continue;
            for (size_t k = 0; k < it->nrefs && !blocked[i]; k++)
                blocked[i] = blocked[it->refs[k]];
            changed |= blocked[i];
        }
    }
    size_t tops = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        if (blocked[i] && f->items[i].top && f->items[i].state != S_FAILED) {
            if (tops++ == 0)
                *first = i;
        }
    }
    return tops;
}

/*
 * After a complete walk: every path must be valid now, unless it failed or
 * needs one that did.  -1 with err naming what failed (or a path that is
 * unfinished for another reason).
 */
static int check_done(struct fetch *f, struct rx_error **err)
{
    bool *blocked = xcalloc(f->nitems ? f->nitems : 1, sizeof *blocked);
    size_t first = 0;
    size_t nblocked = find_blocked(f, blocked, &first);
    for (size_t i = 0; i < f->nitems; i++) {
        const struct item *it = &f->items[i];
        if (it->state == S_VALID || blocked[i])
            continue;
        free(blocked);
        char full[STORE_PATH_MAX + 1];
        store_path_format(&it->path, full);
        if (it->state == S_ON_DISK || it->state == S_HAVE_INFO)
            /* Its references never all became valid (nor locked: see fetch_claim_ready). */
            return rx_error_set(err, RX_EFORMAT,
                                "cannot register '%s': its references lead back to it, a "
                                "cycle that no Nix store can hold; the narinfos of '%s' are "
                                "wrong",
                                full, f->o->caches[it->cache].url);
        return rx_error_set(err, RX_EFORMAT, "internal error: '%s' was left unfinished", full);
    }
    free(blocked);
    if (f->failures.len == 0)
        return 0;
    if (nblocked == 0)
        return rx_error_set(err, RX_ENOTFOUND, "%s", f->failures.data);
    char full[STORE_PATH_MAX + 1];
    store_path_format(&f->items[first].path, full);
    if (nblocked == 1)
        return rx_error_set(err, RX_ENOTFOUND, "%s\n'%s' is incomplete, as it needs that",
                            f->failures.data, full);
    return rx_error_set(err, RX_ENOTFOUND,
                        "%s\n'%s' and %zu more of the paths asked for are incomplete, as they "
                        "need that",
                        f->failures.data, full, nblocked - 1);
}

/* Everything between the first request and the last registration. */
static int run(struct fetch *f, struct rx_error **err)
{
    const struct fetch_opts *o = f->o;
    if (o->no_verify)
        fetch_warn_security(f, "signatures are NOT checked (--insecure-no-verify): a cache or "
                               "anyone between you and it can put any file in your store");
    /*
     * With a single cache, ask for the top-level narinfos while its
     * nix-cache-info is on the way, saving a round trip; the answers are
     * taken in only once the cache is known to be usable.  (With several,
     * which to ask first depends on their priorities.)
     */
    /*
     * A distributable's embedded narinfos are signed answers of its only
     * cache: its NARs need not wait for its nix-cache-info, which is read
     * while they download and must say StoreDir /nix/store before any of
     * them is registered (follow_info, fetch-walk.c).  Among several
     * caches, it is read with theirs, as the walk must wait for those.
     */
    bool trailing = o->ncaches == 1 && o->nembedded && o->embedded_cache && !o->caches[0].why &&
                    strcmp(o->caches[0].url, o->embedded_cache) == 0;
    if (trailing) {
        o->caches[0].usable = true;
    } else if (o->ncaches == 1) {
        f->infos_pending = true;
        for (size_t i = 0; i < f->nitems; i++)
            if (f->items[i].state == S_NEED_INFO && !fetch_has_embedded(f, i))
                fetch_query_start(f, i);
    }
    if (fetch_load_cache_infos(f, err) < 0)
        return -1;
    f->infos_pending = false;
    if (trailing)
        fetch_follow_info_start(f);
    for (size_t i = 0; i < f->nitems; i++) {
        struct item *it = &f->items[i];
        while (it->state == S_NEED_INFO && it->cache < o->ncaches && !o->caches[it->cache].usable)
            it->cache++;
    }
    if (!o->dry_run) {
        /* Unregistered trees in nix/store are looked at when a path is claimed
         * (fetch-pool.c keeps one that is the very NAR) or by the collector. */
        if (store_tmp_fd(f->store, err) < 0)
            return -1;
        if (fetch_workers_start(f, err) < 0)
            return -1;
    }
    if (fetch_http_take_held(f, err) < 0 || fetch_walk(f, err) < 0)
        return -1;
    if (o->dry_run) {
        if (!f->aborting)
            fetch_report_plan(f);
    } else if (settle(f, err) < 0) {
        return -1;
    }
    if (f->aborting || (o->dry_run && f->failures.len))
        return rx_error_set(err, RX_ENOTFOUND, "%s", f->failures.data);
    return o->dry_run ? 0 : check_done(f, err);
}

/*
 * The soft limit on open files up to the hard one: the fetch's own locks
 * are bounded (LOCKS_MAX), but download threads, their connections and
 * unpacking take fds too, and the usual soft limit of 1,024 is a default
 * for programs that use select(), which runix does not.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            /* The limit stays as it was; LOCKS_MAX is chosen to fit in it. */
        }
    }
}

int fetch_closure(struct store *s, const struct fetch_opts *o, const struct store_path *paths,
                  size_t n, struct rx_error **err)
{
    raise_fd_limit();
    static const struct fetch_events no_events;
    struct fetch f = {.store = s, .o = o, .ev = o->events ? o->events : &no_events};
    struct rx_buf fb = RX_BUF_INIT(1024 * 1024);
    f.failures = fb;
    int ret = -1;

    size_t todo;
    if (repair(&f, paths, n, err) < 0 || add_tops(&f, paths, n, &todo, err) < 0)
        goto out_items;
    if (todo > 0 && add_hints(&f, err) < 0)
        goto out_items;
    if (todo == 0) {
        if (o->dry_run)
            fetch_report_plan(&f);
        ret = 0;
        goto out_items;
    }
    if (fetch_http_start(&f, err) < 0)
        goto out_items;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cond, NULL);
    f.started = fetch_now_s();

    ret = run(&f, err);
    if (f.threads) {
        /* Let running downloads finish; their paths are removed below. */
        if (ret < 0)
            f.aborting = true; /* and start no more */
        fetch_workers_stop(&f);
        fetch_drain_jobs(&f);
        if (ret < 0)
            fetch_register_ready(&f, NULL);
    }
    if (ret < 0 && rx_interrupted && !o->dry_run)
        rx_error_set(err, EINTR,
                     "interrupted: kept %zu complete path%s in %s; run the same command again "
                     "to fetch the rest",
                     f.kept, f.kept == 1 ? "" : "s", store_root(s));
    fetch_http_end(&f);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cond);
out_items:
    fetch_items_release(&f);
    free(f.info_attempt);
    free(f.info_retry_at);
    rx_buf_release(&f.failures);
    return ret;
}
