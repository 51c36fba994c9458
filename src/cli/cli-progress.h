/* The command line's side of fetch_events: the status line, "fetched" lines, warnings. */
#pragma once

#include <stdbool.h>

#include "fetch.h"

/* How a fetch is shown: the library never prints, it only calls fetch_events. */
enum cli_output {
    CLI_QUIET, /* errors only (--quiet) */
    CLI_LINES, /* one line per fetched path on stderr (not a terminal) */
    CLI_TTY,   /* one self-updating status line on stderr */
};

/*
 * One reporter per fetch.  CLI_TTY keeps a self-updating status line on
 * stderr, CLI_LINES prints a line per fetched path, CLI_QUIET nothing
 * but the --dry-run plan.  Warnings ("warning: ...") go to stderr unless
 * quiet, and those about weakened checks even then; the plan goes to stdout.
 */
struct cli_progress {
    enum cli_output output;
    bool status_shown; /* the TTY line is on screen */
    struct fetch_events events;
};

/* Set p up for --quiet (quiet) or else for what stderr is; pass &p->events in fetch_opts.events. */
void cli_progress_init(struct cli_progress *p, bool quiet);

/* Take the status line away (before an error is printed, and at the end). */
void cli_progress_clear(struct cli_progress *p);
