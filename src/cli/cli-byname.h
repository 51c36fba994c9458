/* Running by name: NAME#ATTR references, the indexes they resolve in, ',' PROGRAM. */
#pragma once
/*
 * An index is a nix-index database (src/index/nixdb.h) that maps attribute
 * names and the files of packages to store paths, so that no evaluator is
 * needed:
 *
 *   ${XDG_CACHE_HOME:-~/.cache}/runix/index/<NAME>/files   the database
 *   ${XDG_CACHE_HOME:-~/.cache}/runix/index/<NAME>/meta    where it came from
 *
 * NAME is "nixpkgs" (downloaded from index-url, by default
 * nix-community/nix-index-database's release) or one configured as
 * index.NAME.url.  'runix index update' downloads them.
 *
 * 'runix , PROGRAM' remembers what it ran in
 * ${XDG_STATE_HOME:-~/.local/state}/runix/comma/<PROGRAM>: the attribute,
 * the store path and the identity (device, inode, size, mtime) of the
 * index it was found in.  While that index is unchanged the front runs the
 * store path without reading the index, as fast as 'runix run STOREPATH'.
 *
 * This half uses libc only (the front links it), as do ',' (cmd-comma.c)
 * and the sidecars it reads; decompressing a database, to make them, and
 * every other lookup are runix-core's (cmd-index.c).
 */

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-path.h"

#define CLI_DEFAULT_INDEX "nixpkgs"
/* The longest attribute name runix looks up. */
#define CLI_ATTR_MAX 256

/*
 * Is arg "NAME#ATTR" (NAME of letters, digits, '-' and '_'; ATTR of
 * letters, digits and "_-.'+") and not a file that exists (a
 * distributable "FILE#APP")?
 */
bool cli_byname_is_ref(const char *arg);

/* Is name a valid index NAME (and PROGRAM a valid program name for ',')? */
bool cli_index_name_valid(const char *name);
bool cli_program_name_valid(const char *name);

/* The database file of index `name`, or NULL without HOME.  The caller frees it. */
char *cli_index_file(const char *name);

/* The state file of ',' for `prog`, or NULL without HOME.  The caller frees it. */
char *cli_comma_state_file(const char *prog);

/* "DEV INO SIZE MTIME_S MTIME_NS" of the file, in id (64 bytes); false if it cannot be read. */
bool cli_index_identity(const char *file, char id[64]);

/* Say on stderr, for cmd, that index name (its database file) is older than 30 days, if it is. */
void cli_index_warn_old(const char *cmd, const char *name, const char *file);

/*
 * What ',' remembered for prog: the attribute (attr, CLI_ATTR_MAX + 1
 * bytes) and the store path, and whether the index it came from is still
 * the same file.  false when nothing (valid) is remembered.
 */
bool cli_comma_recall(const char *prog, char *attr, struct store_path *path, bool *index_same);

/*
 * runix-core: make the sidecars of index name (nixdb.h) if they are missing
 * or stale, for cmd.  Prints why not (no index, a broken one) and returns
 * an exit code.  Weak in the front, which reads fresh sidecars itself and
 * hands the rest to runix-core.
 */
int cli_index_side_ready(const char *cmd, const char *name);

/*
 * runix-core: the store path of "NAME#ATTR" in index NAME, for command
 * `cmd`.  Prints why not (no index, no such attribute and the closest
 * names) and returns an exit code (0: *out set).
 */
int cli_byname_resolve(const char *cmd, const char *ref, struct store_path *out);

/* ---- runix locate (cmd-locate.c; the scan of a whole database, cmd-index.c) ---- */

struct cli_locate {
    const char *pat;
    size_t plen;
    bool top;     /* --top-level */
    json_t *arr;  /* --json: the matches, or NULL: print lines */
    size_t found; /* matches printed */
    bool bad;     /* a sidecar line that does not parse */
};

/* The end of the last match of pat (re, or the literal pat[0..plen)) in path, or -1. */
long cli_locate_match_end(const char *path, size_t len, const char *pat, size_t plen,
                          const regex_t *re);
/* Print one match (a line as nix-locate's, or a JSON object in lo->arr). */
void cli_locate_print(struct cli_locate *lo, const char *attr, const char *output, bool top,
                      const char *full, const char *path, char type, uint64_t size);
/*
 * runix-core: print every match of lo in the database of index name (re
 * when --regex).  Returns an exit code after saying why not; weak in the
 * front, which hands such a locate to runix-core.
 */
int cli_locate_scan(const char *name, struct cli_locate *lo, const regex_t *re);
