/* A distributable's sandbox policy and the command line: how they combine (docs/sandbox.md). */
#pragma once

#include <stddef.h>

#include "run-sandbox.h"
#include "util-error.h"

/* Which options the command line gave, beyond what its policy holds. */
enum {
    SANDBOX_SET_CWD = 1 << 0, /* --cwd */
    SANDBOX_SET_NET = 1 << 1, /* --network */
    SANDBOX_SET_OFF = 1 << 2, /* --no-sandbox */
};

/*
 * A policy path as a file writes it: "~" and "~/x" below home, "$PWD" and
 * "$PWD/x" below pwd, "/x" as it is.  Returns the absolute path (free it),
 * or NULL with the reason in err when home or pwd is needed and not
 * absolute.
 */
char *sandbox_path_expand(const char *path, const char *home, const char *pwd,
                          struct rx_error **err);

/*
 * Combine a file's policy (file; file->on) with the command line's (cli,
 * with `set` from the flags above) into *out, a new policy.  What the
 * command line restricts further applies as it is; what it widens applies
 * too (it can only be given explicitly), and each such widening is added to
 * *notes (n of them; free each and the array) for the caller to say.  The
 * rules, in docs/sandbox.md:
 *
 *   --no-sandbox        drops the policy (a widening)
 *   --cwd               replaces the cwd mode; rw over ro/none, ro over none widen
 *   --network           replaces the network; allow: over none, host over either,
 *                       an allow: entry the file does not list widen
 *   --ro/--rw PATH      add to the file's binds; one the file's do not cover widens
 *   --hide, --env-deny, --clearenv   add (restrict)
 *   --setenv            after the file's; --env-keep widens
 *   --allow-nested      widens
 *
 * A file without a policy (or with one not enabled) leaves the command
 * line's as it is.
 */
void sandbox_policy_merge(const struct sandbox_policy *file, const struct sandbox_policy *cli,
                          unsigned set, struct sandbox_policy *out, char ***notes, size_t *n);
