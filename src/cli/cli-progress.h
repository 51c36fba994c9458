/* The command line's side of fetch_events: the status line, "fetched" lines, warnings. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "fetch.h"
#include "store-path.h"

/* How a fetch is shown: the library never prints, it only calls fetch_events. */
enum cli_output {
    CLI_QUIET, /* errors only (--quiet) */
    CLI_LINES, /* one line per fetched path on stderr (not a terminal) */
    CLI_PLAIN, /* a terminal that cannot redraw (TERM=dumb): lines, then the summary */
    CLI_TTY,   /* one self-updating status line on stderr, then the summary */
};

/* Paths being downloaded, for the status line (the oldest is named). */
enum { CLI_PROGRESS_INFLIGHT = 64 };

/*
 * One reporter per fetch.  CLI_TTY keeps a self-updating status line on
 * stderr that names a path being downloaded, CLI_LINES and CLI_PLAIN
 * print a line per fetched path, CLI_QUIET nothing but the --dry-run plan.
 * On a terminal (CLI_TTY, CLI_PLAIN), cli_progress_finish() ends with one
 * summary line.  CLI_TTY redraws with '\r' and, unless NO_COLOR is set,
 * erases with ANSI sequences and colours the warning prefix; NO_COLOR
 * output has no escape sequence at all.  Warnings ("warning: ...") go to
 * stderr unless quiet, and those about weakened checks even then; the plan
 * goes to stdout.
 */
struct cli_progress {
    enum cli_output output;
    bool color;        /* CLI_TTY without NO_COLOR: escape sequences allowed */
    bool status_shown; /* the TTY line is on screen */
    size_t shown_len;  /* its length, to blank it without escape sequences */
    double started;    /* monotonic seconds at cli_progress_init() */
    size_t paths;      /* fetched so far, and their download size */
    uint64_t bytes;
    struct fetch_progress last; /* the latest progress report */
    bool have_last;
    struct store_path inflight[CLI_PROGRESS_INFLIGHT];
    size_t ninflight;
    struct fetch_events events;
};

/* Set p up for --quiet (quiet) or else for what stderr is; pass &p->events in fetch_opts.events. */
void cli_progress_init(struct cli_progress *p, bool quiet);

/* Take the status line away (before an error is printed, and at the end). */
void cli_progress_clear(struct cli_progress *p);

/*
 * The fetch succeeded: clear the status line and, on a terminal, print
 * "fetched N paths, SIZE in T s (RATE/s)" when anything was fetched (the
 * rate is over the whole time, and left out when that is too short to
 * measure).
 */
void cli_progress_finish(struct cli_progress *p);

/*
 * The summary line for n paths of `bytes` in `seconds`, into out (for
 * tests): "fetched 12 paths, 8.1 MiB in 1.4 s (5.8 MiB/s)".
 */
void cli_progress_summary(size_t n, uint64_t bytes, double seconds, char *out, size_t outsz);
