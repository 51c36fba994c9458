/* How runix shows a fetch: fetch_events turned into stderr lines (and the --dry-run plan). */
#include "config.h"
#include "cli-progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "store-path.h"

#include "banned.h"

static void fmt_size(uint64_t b, char *out, size_t n)
{
    if (b < 1024)
        snprintf(out, n, "%" PRIu64 " B", b);
    else if (b < 1024 * 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(out, n, "%.1f MiB", (double)b / (1024 * 1024));
    else
        snprintf(out, n, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

void cli_progress_clear(struct cli_progress *p)
{
    if (p->status_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->status_shown = false;
    }
}

static void on_progress(void *ctx, const struct fetch_progress *s)
{
    struct cli_progress *p = ctx;
    if (p->output != CLI_TTY)
        return;
    char a[32], b[32], r[32], eta[32] = "";
    fmt_size(s->bytes_done, a, sizeof a);
    fmt_size(s->bytes_total, b, sizeof b);
    fmt_size((uint64_t)s->rate, r, sizeof r);
    if (s->rate > 0 && s->bytes_total > s->bytes_done)
        snprintf(eta, sizeof eta, ", ETA %.0fs",
                 (double)(s->bytes_total - s->bytes_done) / s->rate);
    fprintf(stderr, "\r\033[Kfetching: %zu/%zu paths, %s/%s, %s/s%s", s->paths_done, s->paths_total,
            a, b, r, eta);
    fflush(stderr);
    p->status_shown = true;
}

static void on_path_done(void *ctx, const struct store_path *path, uint64_t size)
{
    struct cli_progress *p = ctx;
    if (p->output != CLI_LINES)
        return;
    char full[STORE_PATH_MAX + 1], sz[32];
    store_path_format(path, full);
    fmt_size(size, sz, sizeof sz);
    fprintf(stderr, "fetched %s (%s)\n", full, sz);
}

static void on_warning(void *ctx, bool security, const char *msg)
{
    struct cli_progress *p = ctx;
    cli_progress_clear(p);
    /* --quiet hides progress, never a warning that checks are off. */
    if (p->output != CLI_QUIET || security)
        fprintf(stderr, "warning: %s\n", msg);
}

static void on_waiting(void *ctx, const struct store_path *path)
{
    (void)path;
    /* Nothing moves while another process fetches it: no stale rate on screen. */
    cli_progress_clear(ctx);
}

static void on_cache_wait(void *ctx, const char *cache_url, unsigned secs)
{
    struct cli_progress *p = ctx;
    if (p->output != CLI_TTY)
        return;
    fprintf(stderr, "\r\033[Kwaiting for %s (%u s)", cache_url, secs);
    fflush(stderr);
    p->status_shown = true;
}

static void on_dry_run(void *ctx, const struct fetch_plan_entry *e, size_t n)
{
    cli_progress_clear(ctx);
    uint64_t dl = 0, nar = 0;
    for (size_t i = 0; i < n; i++) {
        dl += e[i].download_size;
        nar += e[i].nar_size;
    }
    char a[32], b[32];
    fmt_size(dl, a, sizeof a);
    fmt_size(nar, b, sizeof b);
    printf("%zu path%s to fetch (%s download, %s unpacked)%s\n", n, n == 1 ? "" : "s", a, b,
           n ? ":" : "");
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&e[i].path, full);
        fmt_size(e[i].download_size, a, sizeof a);
        fmt_size(e[i].nar_size, b, sizeof b);
        printf("  %s  (%s, %s unpacked, from %s)\n", full, a, b, e[i].cache_url);
    }
}

void cli_progress_init(struct cli_progress *p, bool quiet)
{
    enum cli_output output = quiet ? CLI_QUIET : isatty(STDERR_FILENO) ? CLI_TTY : CLI_LINES;
    *p = (struct cli_progress){.output = output};
    p->events = (struct fetch_events){.ctx = p,
                                      .progress = on_progress,
                                      .path_done = on_path_done,
                                      .warning = on_warning,
                                      .waiting = on_waiting,
                                      .cache_wait = on_cache_wait,
                                      .dry_run = on_dry_run};
}
