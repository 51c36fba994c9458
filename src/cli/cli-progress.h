/* The command line's side of fetch_events: the status line, "fetched" lines, warnings. */
#pragma once

#include <stdbool.h>

#include "fetch.h"

/*
 * One reporter per fetch.  FETCH_TTY keeps a self-updating status line on
 * stderr, FETCH_LINES prints a line per fetched path, FETCH_QUIET nothing
 * but the --dry-run plan.  Warnings ("warning: ...") go to stderr unless
 * quiet; the plan goes to stdout.
 */
struct cli_progress {
    enum fetch_output output;
    bool status_shown; /* the TTY line is on screen */
    struct fetch_events events;
};

/* Set p up for `output`; pass &p->events in fetch_opts.events. */
void cli_progress_init(struct cli_progress *p, enum fetch_output output);

/* Take the status line away (before an error is printed, and at the end). */
void cli_progress_clear(struct cli_progress *p);
