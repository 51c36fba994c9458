/* What a fetch reports while it runs: calls to the caller's fetch_events, never output. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <stdarg.h>
#include <stdlib.h>

#include "util-mem.h"

#include "banned.h"

/* At most every TICK_MS, unless forced (a path is done). */
void fetch_progress_tick(struct fetch *f, bool force)
{
    if (!f->ev->progress)
        return;
    double t = fetch_now_s();
    if (!force && t - f->last_tick < TICK_MS / 1000.0)
        return;
    f->last_tick = t;
    uint64_t done = atomic_load(&f->bytes_done);
    double el = t - f->started;
    struct fetch_progress p = {
        .paths_done = f->paths_done,
        .paths_total = f->paths_total,
        .bytes_done = done,
        .bytes_total = f->bytes_total,
        .rate = el > 0.2 ? (double)done / el : 0,
    };
    f->ev->progress(f->ev->ctx, &p);
}

void fetch_count_done(struct fetch *f)
{
    f->paths_done++;
    fetch_progress_tick(f, true);
}

void fetch_announce_done(struct fetch *f, const struct item *it)
{
    if (f->ev->path_done)
        f->ev->path_done(f->ev->ctx, &it->path,
                         it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size);
}

void fetch_announce_start(struct fetch *f, const struct item *it)
{
    if (f->ev->path_started)
        f->ev->path_started(f->ev->ctx, &it->path,
                            it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size);
}

static void warn(struct fetch *f, bool security, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void warn(struct fetch *f, bool security, const char *fmt, va_list ap)
{
    if (!f->ev->warning)
        return;
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    f->ev->warning(f->ev->ctx, security, msg);
}

void fetch_warn(struct fetch *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn(f, false, fmt, ap);
    va_end(ap);
}

void fetch_warn_security(struct fetch *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    warn(f, true, fmt, ap);
    va_end(ap);
}

void fetch_report_waiting(struct fetch *f, const struct item *it)
{
    if (f->ev->waiting)
        f->ev->waiting(f->ev->ctx, &it->path);
}

void fetch_report_cache_wait(struct fetch *f, const char *cache_url, unsigned secs)
{
    if (f->ev->cache_wait)
        f->ev->cache_wait(f->ev->ctx, cache_url, secs);
}

/* The --dry-run plan: every item whose narinfo was accepted, in walk order. */
void fetch_report_plan(struct fetch *f)
{
    if (!f->ev->dry_run)
        return;
    struct fetch_plan_entry *e = f->nitems ? xcalloc(f->nitems, sizeof *e) : NULL;
    size_t n = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        const struct item *it = &f->items[i];
        if (it->state != S_HAVE_INFO)
            continue;
        e[n].path = it->path;
        e[n].download_size = it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size;
        e[n].nar_size = it->ni.nar_size;
        e[n].cache_url = f->o->caches[it->cache].url;
        e[n].narinfo = narinfo_format(&it->ni);
        e[n].refs = it->ni.refs;
        e[n].nrefs = it->ni.nrefs;
        n++;
    }
    f->ev->dry_run(f->ev->ctx, e, n);
    for (size_t i = 0; i < n; i++)
        free((char *)e[i].narinfo);
    free(e);
}
