#pragma once
/*
 * Store paths: /nix/store/<32 nix32 chars>-<name>.
 *
 * The name is 1..211 characters of [A-Za-z0-9+-._?=], and is not ".", ".."
 * and does not start with ".-" or "..-" (the rule of Nix 2.21 and later).
 * Parsing is strict: no trailing slash, no "//", no "." or ".." components,
 * nothing after the name.  Store paths for a store dir other than
 * /nix/store are refused.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

#define STORE_DIR "/nix/store"
#define STORE_DIR_LEN 10
#define STORE_HASH_LEN 32
#define STORE_NAME_MAX 211
/* hash + '-' + name */
#define STORE_BASENAME_MAX (STORE_HASH_LEN + 1 + STORE_NAME_MAX)
/* "/nix/store/" + basename */
#define STORE_PATH_MAX (STORE_DIR_LEN + 1 + STORE_BASENAME_MAX)

struct store_path {
    char hash[STORE_HASH_LEN + 1];
    char name[STORE_NAME_MAX + 1];
};

/* Parse a full path "/nix/store/<hash>-<name>". */
int store_path_parse(const char *s, size_t len, struct store_path *out, struct rx_error **err);

/* Parse a basename "<hash>-<name>" (as in narinfo References). */
int store_path_parse_basename(const char *s, size_t len, struct store_path *out,
                              struct rx_error **err);

/*
 * Parse "/nix/store/<hash>-<name>[/sub/path]".  *subpath points into s at
 * the '/' that starts the sub path, or at the end of s when there is none.
 */
int store_path_parse_with_subpath(const char *s, size_t len, struct store_path *out,
                                  const char **subpath, struct rx_error **err);

bool store_path_name_valid(const char *name, size_t len);

/* "<hash>-<name>" into out (STORE_BASENAME_MAX + 1 bytes). */
void store_path_basename(const struct store_path *p, char *out);
/* "/nix/store/<hash>-<name>" into out (STORE_PATH_MAX + 1 bytes). */
void store_path_format(const struct store_path *p, char *out);

/* Byte order of the full paths (equivalently of the basenames). */
int store_path_cmp(const struct store_path *a, const struct store_path *b);

/*
 * A store path name without its version: "hello-2.12" -> "hello", up to the
 * first '-' before a digit (the whole name when there is none); free it.
 */
char *store_name_package(const char *name);
