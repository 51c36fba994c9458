/* Distributables on the command line: "FILE[#APP]" references, and running them. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "dist.h"

struct cli_dist {
    char *file;     /* owned: the file, without "#APP" */
    char *label;    /* owned: what messages call it (the file, or its reference) */
    char *app_name; /* owned, or NULL for the default app */
    struct dist d;
    const struct dist_system *sys; /* this machine's entry */
    const struct dist_app *app;    /* the app asked for */
    char *raw;                     /* owned: the file's bytes, as parsed */
    size_t rawlen;
    char tag[96]; /* names the file's closure indexes (store-index.h) */
};

/* Is arg a reference to a distributable rather than a store path? */
bool cli_dist_is_ref(const char *arg);

/* Is it one that must be downloaded (https://, http://, github:)? */
bool cli_dist_is_remote(const char *arg);

/*
 * runix-core: download (or revalidate) a remote reference and return the
 * local copy as "FILE[#APP]" in *local (free it); with offline, use the
 * copy downloaded before, saying how old it is.  Returns an exit code after
 * saying why (0: done).  The download runs in a child process.
 */
int cli_ref_resolve(const char *cmd, const char *ref, bool offline, char **local);

/*
 * Does `file` start like a distributable (dist_sniff)?  For argv[1] of a
 * file run by its shebang line: false for anything that cannot be opened.
 */
bool cli_dist_file_sniff(const char *file);

/*
 * Read "FILE[#APP]" for command `cmd`: the file, the entry for this system
 * and the app.  Prints why on failure and returns an exit code (0: done).
 * With `any_system`, a file without this system's entry is accepted (for
 * --list), and sys is NULL.
 */
int cli_dist_open(const char *cmd, const char *ref, bool any_system, struct cli_dist *out);
/* The same, naming the file `label` in messages (a remote reference's local copy). */
int cli_dist_open_as(const char *cmd, const char *ref, const char *label, bool any_system,
                     struct cli_dist *out);

/* One line saying an app's sandbox policy (nothing when sb is NULL). */
void cli_dist_sandbox_print(const struct dist_sandbox *sb, FILE *out, const char *indent);

/* Print the apps (with their sandbox policies), systems and caches (runix run --list). */
void cli_dist_list(const struct cli_dist *cd, FILE *out);

void cli_dist_release(struct cli_dist *cd);

struct cli_settings;

/*
 * runix-core: may this distributable's caches and keys be used?  Yes
 * without asking when the user already has every one of them, when the
 * file's content was trusted before ('runix trust'), with `trust`
 * (--trust), or when the user says so at a prompt on a terminal.  Then
 * they are added to s (which cli_settings_finish() filled) for this
 * command only.  Prints why not and returns an exit code (0: trusted).
 */
int cli_dist_trust(const char *cmd, const struct cli_dist *cd, struct cli_settings *s, bool trust);
