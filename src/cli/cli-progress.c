/* How runix shows a fetch: fetch_events turned into stderr lines (and the --dry-run plan). */
#include "config.h"
#include "cli-progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "store-path.h"

#include "banned.h"

/* Below this, a duration is too short to give a meaningful rate. */
#define MIN_RATE_SECONDS 0.1

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

void cli_progress_summary(size_t n, uint64_t bytes, double seconds, char *out, size_t outsz)
{
    char sz[32], rate[48] = "";
    fmt_size(bytes, sz, sizeof sz);
    if (seconds >= MIN_RATE_SECONDS) {
        char r[32];
        fmt_size((uint64_t)((double)bytes / seconds), r, sizeof r);
        snprintf(rate, sizeof rate, " (%s/s)", r);
    }
    snprintf(out, outsz, "fetched %zu path%s, %s in %.1f s%s", n, n == 1 ? "" : "s", sz,
             seconds, rate);
}

void cli_progress_clear(struct cli_progress *p)
{
    if (!p->status_shown)
        return;
    if (p->color)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r%*s\r", (int)p->shown_len, "");
    fflush(stderr);
    p->status_shown = false;
    p->shown_len = 0;
}

static size_t term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10)
        return ws.ws_col;
    return 80;
}

/* The status line: counts, bytes and rate, then a path being downloaded. */
static void draw(struct cli_progress *p)
{
    char line[512];
    size_t len = 0;
    if (p->have_last) {
        const struct fetch_progress *s = &p->last;
        char a[32], b[32], r[48] = "", eta[32] = "";
        fmt_size(s->bytes_done, a, sizeof a);
        fmt_size(s->bytes_total, b, sizeof b);
        /* No rate until there is one to give: never "0 B/s". */
        if (s->rate >= 1) {
            char rr[32];
            fmt_size((uint64_t)s->rate, rr, sizeof rr);
            snprintf(r, sizeof r, ", %s/s", rr);
            if (s->bytes_total > s->bytes_done)
                snprintf(eta, sizeof eta, ", ETA %.0fs",
                         (double)(s->bytes_total - s->bytes_done) / s->rate);
        }
        len = (size_t)snprintf(line, sizeof line, "fetching: %zu/%zu paths, %s/%s%s%s",
                               s->paths_done, s->paths_total, a, b, r, eta);
    } else {
        len = (size_t)snprintf(line, sizeof line, "fetching");
    }
    if (len < sizeof line && p->ninflight) {
        int k = snprintf(line + len, sizeof line - len, ": %s", p->inflight[0].name);
        if (k > 0 && p->ninflight > 1)
            k += snprintf(line + len + (size_t)k, sizeof line - len - (size_t)k, " (+%zu more)",
                          p->ninflight - 1);
        if (k > 0)
            len += (size_t)k;
    }
    if (len >= sizeof line)
        len = sizeof line - 1;
    /* One row: a wrapped line cannot be redrawn with '\r'. */
    size_t w = term_width() - 1;
    if (len > w)
        len = w;
    if (p->color) {
        fprintf(stderr, "\r\033[K%.*s", (int)len, line);
    } else {
        size_t pad = p->shown_len > len ? p->shown_len - len : 0;
        fprintf(stderr, "\r%.*s%*s", (int)len, line, (int)pad, "");
        if (pad)
            fprintf(stderr, "\r%.*s", (int)len, line);
    }
    fflush(stderr);
    p->status_shown = true;
    p->shown_len = len;
}

static void on_progress(void *ctx, const struct fetch_progress *s)
{
    struct cli_progress *p = ctx;
    p->last = *s;
    p->have_last = true;
    if (p->output == CLI_TTY)
        draw(p);
}

static void on_path_started(void *ctx, const struct store_path *path, uint64_t size)
{
    (void)size;
    struct cli_progress *p = ctx;
    for (size_t i = 0; i < p->ninflight; i++)
        if (store_path_cmp(&p->inflight[i], path) == 0)
            return;
    if (p->ninflight < CLI_PROGRESS_INFLIGHT)
        p->inflight[p->ninflight++] = *path;
    if (p->output == CLI_TTY)
        draw(p);
}

static void on_path_done(void *ctx, const struct store_path *path, uint64_t size)
{
    struct cli_progress *p = ctx;
    p->paths++;
    p->bytes += size;
    for (size_t i = 0; i < p->ninflight; i++) {
        if (store_path_cmp(&p->inflight[i], path) == 0) {
            memmove(&p->inflight[i], &p->inflight[i + 1],
                    (p->ninflight - i - 1) * sizeof *p->inflight);
            p->ninflight--;
            break;
        }
    }
    if (p->output != CLI_LINES && p->output != CLI_PLAIN)
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
    if (p->output != CLI_QUIET || security) {
        if (p->color)
            fprintf(stderr, "\033[33mwarning:\033[0m %s\n", msg);
        else
            fprintf(stderr, "warning: %s\n", msg);
    }
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

void cli_progress_finish(struct cli_progress *p)
{
    cli_progress_clear(p);
    if ((p->output != CLI_TTY && p->output != CLI_PLAIN) || p->paths == 0)
        return;
    char line[160];
    cli_progress_summary(p->paths, p->bytes, now_s() - p->started, line, sizeof line);
    fprintf(stderr, "%s\n", line);
}

void cli_progress_init(struct cli_progress *p, bool quiet)
{
    const char *term = getenv("TERM");
    const char *no_color = getenv("NO_COLOR");
    enum cli_output output = CLI_LINES;
    if (quiet)
        output = CLI_QUIET;
    else if (isatty(STDERR_FILENO))
        output = term && strcmp(term, "dumb") == 0 ? CLI_PLAIN : CLI_TTY;
    /* p is large (the in-flight list): clear it without a big temporary. */
    memset(p, 0, sizeof *p);
    p->output = output;
    /* https://no-color.org: set and not empty means no colour. */
    p->color = output == CLI_TTY && !(no_color && *no_color);
    p->started = now_s();
    p->events = (struct fetch_events){.ctx = p,
                                      .progress = on_progress,
                                      .path_started = on_path_started,
                                      .path_done = on_path_done,
                                      .warning = on_warning,
                                      .waiting = on_waiting,
                                      .cache_wait = on_cache_wait,
                                      .dry_run = on_dry_run};
}
