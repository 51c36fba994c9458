/* What runix boot (cmd-boot.c) takes from runix run: a store path's closure, made complete. */
#pragma once

#include <stdbool.h>

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
