/* The closure walk: nix-cache-info, then narinfos, checked and followed along References. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "decompress.h"
#include "store.h"
#include "util-mem.h"

#include "banned.h"

/* Ask the next cache for an item's narinfo, or fail it when none is left. */
void fetch_next_cache(struct fetch *f, struct item *it)
{
    it->cache++;
    it->attempt = 0;
    it->retry_at = 0;
    if (it->have_ni) {
        narinfo_release(&it->ni);
        it->have_ni = false;
    }
    while (it->cache < f->o->ncaches && !f->o->caches[it->cache].usable)
        it->cache++;
    if (it->cache < f->o->ncaches) {
        it->state = S_NEED_INFO;
        return;
    }
    fetch_fail_path(f, it, "no cache could provide it");
}

void fetch_query_start(struct fetch *f, size_t idx)
{
    struct item *it = &f->items[idx];
    char rel[STORE_HASH_LEN + 16];
    snprintf(rel, sizeof rel, "%s.narinfo", it->path.hash);
    _cleanup_free_ char *url = cache_file_url(&f->o->caches[it->cache], rel);
    it->state = S_QUERYING;
    it->attempt++;
    fetch_http_request(f, REQ_NARINFO, idx, url);
}

/* A reference found in an accepted narinfo: look it up, or queue its narinfo. */
static int add_ref(struct fetch *f, size_t referrer, const struct store_path *p,
                   struct rx_error **err)
{
    bool created;
    size_t idx = fetch_item_get(f, p, &created);
    struct item *it = &f->items[referrer];
    it->refs[it->nrefs++] = idx;
    if (!created)
        return 0;
    int v = store_is_valid(f->store, p, err);
    if (v < 0)
        return -1;
    if (v) {
        f->items[idx].state = S_VALID;
    } else {
        f->items[idx].cache = 0;
        while (f->items[idx].cache < f->o->ncaches && !f->o->caches[f->items[idx].cache].usable)
            f->items[idx].cache++;
    }
    return 0;
}

/* Try to take on an item whose narinfo was accepted. */
int fetch_claim(struct fetch *f, size_t idx, struct rx_error **err)
{
    struct item *it = &f->items[idx];
    if (f->o->dry_run) {
        it->state = S_HAVE_INFO;
        return 0;
    }
    if (it->lock_fd < 0) {
        int r = store_lock_path(f->store, &it->path, false, &it->lock_fd, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            it->state = S_FOREIGN;
            return 0;
        }
        int v = fetch_item_unlock_if_valid(f, it, err);
        if (v != 0)
            return v < 0 ? -1 : 0;
    }
    /* Ours now; whatever is already there the job keeps, if it is this very NAR, or removes. */
    fetch_job_submit(f, idx);
    return 0;
}

/* Is each reference of it valid, or locked by us and downloading or downloaded? */
static bool refs_grounded(const struct fetch *f, const struct item *it)
{
    for (size_t k = 0; k < it->nrefs; k++) {
        const struct item *r = &f->items[it->refs[k]];
        if (r->state != S_VALID &&
            !(r->lock_fd >= 0 && (r->state == S_DOWNLOADING || r->state == S_ON_DISK)))
            return false;
    }
    return true;
}

/*
 * By induction every path we lock has only valid or grounded references:
 * a process never holds a lock that waits for another process's path, so
 * no two processes can wait for each other, and what we hold registers
 * once our own downloads are done, which frees the locks for the rest.
 */
int fetch_claim_ready(struct fetch *f, bool foreign, struct rx_error **err)
{
    if (f->o->dry_run)
        return 0;
    size_t held = 0;
    for (size_t i = 0; i < f->nitems; i++)
        held += f->items[i].lock_fd >= 0;
    int moved = 0;
    /*
     * References are found after their referrers, so going from the last
     * item to the first mostly locks a closure bottom up in one pass; the
     * passes go on while they lock more.
     */
    for (int pass_moved = 1; pass_moved > 0 && !f->aborting;) {
        pass_moved = 0;
        for (size_t i = f->nitems; i-- > 0 && !f->aborting;) {
            struct item *it = &f->items[i];
            if (it->state != S_HAVE_INFO && !(foreign && it->state == S_FOREIGN))
                continue;
            /* A path locked already (its download failed, another cache has it) needs no room. */
            if ((it->lock_fd < 0 && held >= LOCKS_MAX) || !refs_grounded(f, it))
                continue;
            bool had = it->lock_fd >= 0;
            enum item_state was = it->state;
            if (fetch_claim(f, i, err) < 0)
                return -1;
            held += !had && it->lock_fd >= 0;
            if (it->state == S_VALID) {
                /* Another process registered it just now. */
                fetch_count_done(f);
                fetch_announce_done(f, it);
            }
            if (it->state != was)
                pass_moved++;
        }
        moved += pass_moved;
    }
    return moved;
}

int fetch_poll_foreign(struct fetch *f, struct rx_error **err)
{
    for (size_t i = 0; i < f->nitems; i++) {
        struct item *it = &f->items[i];
        if (it->state != S_FOREIGN)
            continue;
        int v = store_is_valid(f->store, &it->path, err);
        if (v < 0)
            return -1;
        if (v) {
            it->state = S_VALID;
            fetch_count_done(f);
            fetch_announce_done(f, it);
        }
    }
    return fetch_claim_ready(f, true, err);
}

/* A narinfo request that failed: retry it later, or ask the next cache. */
static void narinfo_failed(struct fetch *f, struct item *it, const struct http_reply *r)
{
    const struct cache *c = &f->o->caches[it->cache];
    if (r->outcome == OUT_NOT_FOUND) {
        fetch_item_note(it, c->url, "not found");
    } else if (r->outcome == OUT_TRANSIENT) {
        unsigned attempts = f->o->attempts ? f->o->attempts : FETCH_DEFAULT_ATTEMPTS;
        if (it->attempt < attempts) {
            it->state = S_NEED_INFO;
            it->retry_at = fetch_now_s() + fetch_backoff_s(it->attempt);
            return;
        }
        fetch_item_note(it, c->url, "%s.narinfo: %s (after %u attempts)", it->path.hash, r->why,
                        it->attempt);
    } else if (r->too_big) {
        fetch_item_note(it, c->url, "narinfo larger than %d bytes", NARINFO_MAX);
    } else {
        fetch_item_note(it, c->url, "%s.narinfo: %s", it->path.hash, r->why);
    }
    fetch_next_cache(f, it);
}

/* Is ni the narinfo asked for, in a compression we read, signed (unless told not to check)? */
static int narinfo_acceptable(struct fetch *f, struct item *it, const struct narinfo *ni)
{
    const struct cache *c = &f->o->caches[it->cache];
    struct rx_error *e = NULL;
    if (store_path_cmp(&ni->path, &it->path) != 0) {
        char got[STORE_PATH_MAX + 1];
        store_path_format(&ni->path, got);
        fetch_item_note(it, c->url, "narinfo is for '%s', not the path asked for", got);
        return -1;
    }
    if (!decompress_supported(ni->compression)) {
        fetch_item_note(it, c->url, "unsupported compression '%s'", ni->compression);
        return -1;
    }
    if (!f->o->no_verify && narinfo_verify(ni, f->o->keys, &e) < 0) {
        fetch_item_note(it, c->url, "%s", e->msg);
        rx_error_free(e);
        return -1;
    }
    return 0;
}

static void take_narinfo(struct fetch *f, size_t idx, struct narinfo *ni, struct rx_error **fatal);

void fetch_narinfo_done(struct fetch *f, size_t idx, const struct http_reply *r,
                        struct rx_error **fatal)
{
    struct item *it = &f->items[idx];
    if (r->outcome != OUT_OK) {
        narinfo_failed(f, it, r);
        return;
    }
    struct rx_error *e = NULL;
    struct narinfo ni = NARINFO_INIT;
    if (narinfo_parse(r->body, r->len, &ni, &e) < 0) {
        fetch_item_note(it, f->o->caches[it->cache].url, "invalid narinfo: %s", e->msg);
        rx_error_free(e);
        narinfo_release(&ni);
        fetch_next_cache(f, it);
        return;
    }
    if (narinfo_acceptable(f, it, &ni) < 0) {
        narinfo_release(&ni);
        fetch_next_cache(f, it);
        return;
    }
    take_narinfo(f, idx, &ni, fatal);
}

/* Item idx's narinfo, parsed and acceptable: the item takes it (*ni is moved). */
static void take_narinfo(struct fetch *f, size_t idx, struct narinfo *ni, struct rx_error **fatal)
{
    struct item *it = &f->items[idx];
    /* Make room first: add_ref may move f->items. */
    free(it->refs);
    it->refs = ni->nrefs ? xmalloc(ni->nrefs * sizeof *it->refs) : NULL;
    it->nrefs = 0;
    it->ni = *ni;
    *ni = (struct narinfo)NARINFO_INIT;
    it->have_ni = true;
    for (size_t i = 0; i < f->items[idx].ni.nrefs; i++) {
        struct store_path ref = f->items[idx].ni.refs[i];
        if (store_path_cmp(&ref, &f->items[idx].path) == 0)
            continue;
        if (add_ref(f, idx, &ref, fatal) < 0)
            return;
    }
    /* Locked and downloaded once its references allow (fetch_claim_ready). */
    f->items[idx].state = S_HAVE_INFO;
    f->paths_total++;
    f->bytes_total +=
        f->items[idx].ni.has_file_size ? f->items[idx].ni.file_size : f->items[idx].ni.nar_size;
}

void fetch_cache_info_done(struct fetch *f, size_t idx, const struct http_reply *r)
{
    struct cache *c = &f->o->caches[idx];
    struct rx_error *e = NULL;
    unsigned attempts = f->o->attempts ? f->o->attempts : FETCH_DEFAULT_ATTEMPTS;
    free(c->why);
    c->why = NULL;
    if (r->outcome == OUT_OK) {
        if (cache_apply_info(c, r->body, r->len, &e) == 0) {
            c->usable = true;
            return;
        }
        c->why = xstrdup(e->msg);
        rx_error_free(e);
    } else if (r->outcome == OUT_NOT_FOUND) {
        c->why = xasprintf("'%s' does not appear to be a binary cache (no nix-cache-info)", c->url);
    } else {
        /* An s3:// URL has its parameters after the bucket: name the file apart. */
        if (c->s3)
            c->why = xasprintf("cannot read nix-cache-info of '%s': %s", c->url, r->why);
        else
            c->why = xasprintf("cannot read '%s/nix-cache-info': %s", c->url, r->why);
        if (r->outcome == OUT_TRANSIENT && f->info_attempt[idx] < attempts)
            f->info_retry_at[idx] = fetch_now_s() + fetch_backoff_s(f->info_attempt[idx]);
    }
}

/* Hand `e` to the caller as *err (replacing what was there); returns -1. */
int fetch_pass_error(struct rx_error *e, struct rx_error **err)
{
    rx_error_clear(err);
    if (err)
        *err = e;
    else
        rx_error_free(e);
    return -1;
}

/* Every cache's nix-cache-info, with retries; -1 unless some cache is usable. */
static int read_cache_infos(struct fetch *f, struct rx_error **err)
{
    const struct fetch_opts *o = f->o;
    for (;;) {
        /* Start what is due; a transient failure sets a retry time. */
        double t = fetch_now_s(), next = -1;
        for (size_t i = 0; i < o->ncaches; i++) {
            if (f->info_retry_at[i] < 0)
                continue;
            if (f->info_retry_at[i] > t) {
                next = next < 0 || f->info_retry_at[i] < next ? f->info_retry_at[i] : next;
                continue;
            }
            f->info_retry_at[i] = -1;
            f->info_attempt[i]++;
            _cleanup_free_ char *url = cache_file_url(&o->caches[i], "nix-cache-info");
            fetch_http_request(f, REQ_CACHE_INFO, i, url);
        }
        if (f->info_active == 0 && next < 0)
            return 0;
        int timeout = 1000;
        if (next >= 0 && f->info_active == 0)
            timeout = (int)((next - t) * 1000) + 1;
        if (fetch_http_wait(f, timeout, err) < 0)
            return -1;
        fetch_http_collect(f, NULL);
    }
}

int fetch_load_cache_infos(struct fetch *f, struct rx_error **err)
{
    const struct fetch_opts *o = f->o;
    f->info_attempt = xcalloc(o->ncaches, sizeof *f->info_attempt);
    f->info_retry_at = xcalloc(o->ncaches, sizeof *f->info_retry_at);
    for (size_t i = 0; i < o->ncaches; i++)
        f->info_retry_at[i] = o->caches[i].usable || o->caches[i].why ? -1 : 0;
    if (read_cache_infos(f, err) < 0)
        return -1;
    cache_sort(o->caches, o->ncaches);
    size_t usable = 0;
    for (size_t i = 0; i < o->ncaches; i++)
        usable += o->caches[i].usable;
    /* With none usable, the error lists them all: say it once. */
    for (size_t i = 0; i < o->ncaches && usable > 0; i++)
        if (!o->caches[i].usable)
            fetch_warn(f, "not using cache: %s", o->caches[i].why);
    if (usable == 0) {
        struct rx_buf b = RX_BUF_INIT(SIZE_MAX / 2);
        for (size_t i = 0; i < o->ncaches; i++) {
            _cleanup_free_ char *l = xasprintf("\n  %s", o->caches[i].why);
            if (rx_buf_append(&b, l, strlen(l)) < 0)
                break;
        }
        rx_error_set(err, RX_ENOTFOUND, "no usable binary cache%s",
                     o->ncaches ? b.data : " is configured (use --cache URL)");
        rx_buf_release(&b);
        return -1;
    }
    return 0;
}

/*
 * Start the narinfo requests that are due; *next_retry gets the earliest
 * retry time still to come (or -1).  Returns whether any item still needs
 * its narinfo.
 */
static int cmp_embedded(const void *a, const void *b)
{
    return store_path_cmp(&((const struct fetch_embedded *)a)->path,
                          &((const struct fetch_embedded *)b)->path);
}

bool fetch_has_embedded(const struct fetch *f, size_t idx)
{
    struct fetch_embedded key = { .path = f->items[idx].path };
    return f->o->nembedded &&
           bsearch(&key, f->o->embedded, f->o->nembedded, sizeof key, cmp_embedded) != NULL;
}

/*
 * The narinfo a distributable embeds for item idx, taken as the answer of
 * the cache it names (and checked like any answer).  True when there was one.
 */
static bool use_embedded(struct fetch *f, size_t idx, struct rx_error **fatal)
{
    struct item *it = &f->items[idx];
    if (!f->o->nembedded || it->attempt > 0 || !f->o->embedded_cache ||
        strcmp(f->o->caches[it->cache].url, f->o->embedded_cache) != 0)
        return false;
    struct fetch_embedded key = { .path = it->path };
    const struct fetch_embedded *e =
        bsearch(&key, f->o->embedded, f->o->nembedded, sizeof key, cmp_embedded);
    if (!e)
        return false;
    /* One that does not hold is no answer of the cache's: ask the cache itself. */
    struct narinfo ni = NARINFO_INIT;
    struct rx_error *bad = NULL;
    bool usable = narinfo_parse(e->narinfo, strlen(e->narinfo), &ni, &bad) == 0 &&
                  narinfo_acceptable(f, it, &ni) == 0;
    rx_error_free(bad);
    if (!usable) {
        narinfo_release(&ni);
        return false;
    }
    it->attempt++;
    take_narinfo(f, idx, &ni, fatal);
    return true;
}

static bool start_queries(struct fetch *f, double t, double *next_retry,
                          struct rx_error **fatal)
{
    bool waiting = false;
    *next_retry = -1;
    for (size_t i = 0; i < f->nitems && !f->aborting; i++) {
        struct item *it = &f->items[i];
        if (it->state != S_NEED_INFO)
            continue;
        waiting = true;
        if (it->retry_at > t) {
            if (*next_retry < 0 || it->retry_at < *next_retry)
                *next_retry = it->retry_at;
            continue;
        }
        if (f->active >= MAX_ACTIVE_QUERIES)
            break;
        if (it->cache >= f->o->ncaches) {
            fetch_fail_path(f, it, "no cache could provide it");
            continue;
        }
        if (use_embedded(f, i, fatal)) {
            if (*fatal)
                break;
            continue;
        }
        fetch_query_start(f, i);
    }
    return waiting;
}

void fetch_follow_info_start(struct fetch *f)
{
    f->info_trailing = true;
    f->info_attempt[0]++;
    _cleanup_free_ char *url = cache_file_url(&f->o->caches[0], "nix-cache-info");
    fetch_http_request(f, REQ_CACHE_INFO, 0, url);
}

/*
 * The nix-cache-info asked for while the NARs download: once it is in,
 * what is on disk may be registered; a transient failure asks again, as
 * read_cache_infos does; a cache it shows unusable (another StoreDir, not
 * a binary cache) fails the fetch with nothing registered.
 */
static int follow_info(struct fetch *f, double t, struct rx_error **err)
{
    if (!f->info_trailing || f->info_active > 0)
        return 0;
    struct cache *c = &f->o->caches[0];
    if (!c->why) {
        f->info_trailing = false;
        return 0;
    }
    if (f->info_retry_at[0] >= 0) {
        if (t >= f->info_retry_at[0]) {
            f->info_retry_at[0] = -1;
            fetch_follow_info_start(f);
        }
        return 0;
    }
    c->usable = false;
    return rx_error_set(err, RX_ENOTFOUND, "no usable binary cache\n  %s", c->why);
}

/* Walk the closure and download, until nothing is in flight. */
int fetch_walk(struct fetch *f, struct rx_error **err)
{
    struct rx_error *fatal = NULL;
    for (;;) {
        double t = fetch_now_s();
        double next_retry;
        if (follow_info(f, t, err) < 0)
            return -1;
        bool waiting = start_queries(f, t, &next_retry, &fatal) || f->info_trailing;
        if (fatal)
            return fetch_pass_error(fatal, err);
        fetch_drain_jobs(f);
        if (fetch_register_some(f, t, err) < 0 || fetch_claim_ready(f, false, err) < 0)
            return -1;
        if (f->active == 0 && f->outstanding == 0 && (!waiting || f->aborting)) {
            /* Everything has settled, unless a job finished just now. */
            fetch_drain_jobs(f);
            bool again = false;
            for (size_t i = 0; i < f->nitems && !f->aborting; i++)
                again |= f->items[i].state == S_NEED_INFO;
            if (!again)
                return 0;
            continue;
        }
        int timeout = TICK_MS;
        if (next_retry >= 0 && f->active == 0) {
            double d = (next_retry - t) * 1000;
            timeout = d < 1 ? 1 : d < TICK_MS ? (int)d : TICK_MS;
        }
        if (fetch_http_wait(f, timeout, err) < 0)
            return -1;
        fetch_http_collect(f, &fatal);
        if (fatal)
            return fetch_pass_error(fatal, err);
        fetch_progress_tick(f, false);
    }
}
