#pragma once
/*
 * Configuration files in nix.conf syntax:
 *
 *     # comment
 *     name = value words   # comment
 *
 * One setting per line; the name is a run of non-blank characters before
 * '='; the value is the rest of the line, with comments removed and blanks
 * trimmed (list settings split it at blanks).  "include PATH" and
 * "!include PATH" (missing file allowed) read another file, relative to
 * the including file's directory, at most CONF_MAX_DEPTH deep.
 */

#include <stddef.h>

#include "util-error.h"

#define CONF_MAX_SIZE (1024 * 1024)
#define CONF_MAX_DEPTH 8

/*
 * Called for each setting; `file` and `line` say where it was.  Returns 0,
 * or -1 with *err set to stop.
 */
typedef int (*conf_setting_fn)(void *ctx, const char *name, const char *value, const char *file,
                               unsigned line, struct rx_error **err);

/* Parse text (from `file`, for messages and includes). */
int conf_parse(const char *text, size_t len, const char *file, conf_setting_fn fn, void *ctx,
               struct rx_error **err);

/* Read and parse a file; a missing file is not an error if `optional`. */
int conf_parse_file(const char *path, int optional, conf_setting_fn fn, void *ctx,
                    struct rx_error **err);
