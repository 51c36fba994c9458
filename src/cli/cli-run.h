/* What runix boot and runix enter take from runix run: closures made complete. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "cli-settings.h"

/*
 * Make target's closure complete as runix run does (the settings s, which
 * this takes over and releases; --offline as offline), keep it locked and
 * rooted, then call fn with the store directory on the host and target's
 * basename; returns what fn returned, or the exit code of what failed
 * (printed).  target is a store path (no file below it); cmd names the
 * command in messages.
 */
int run_with_closure(const char *cmd, struct cli_settings *s, bool offline, const char *target,
                     int (*fn)(void *arg, const char *store_dir, const char *base), void *arg);

struct store_path;
/*
 * For runix enter --with (cmd-run.c): make the closures of roots complete
 * in s's store as runix run does (from their indexes, else fetched by
 * runix-core in a child, each kept by its auto root), hold them locked for
 * the program that is exec'd next, and put their bin/ at the front of PATH.
 * s is finished (cli_settings_finish()) and stays the caller's.  Returns
 * EXIT_OK, or the exit code after saying why.
 */
int cli_run_with(const char *cmd, struct cli_settings *s, const struct store_path *roots,
                 size_t n, bool offline);
