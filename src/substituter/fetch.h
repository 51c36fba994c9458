#pragma once
/*
 * Fetch the closures of store paths from binary caches into a store.
 *
 * The main thread walks References with many narinfo requests in flight
 * (libcurl multi: HTTP/2 streams or a keep-alive pool), verifies each
 * narinfo's signature against the trusted keys, and hands each path to a
 * pool of download threads as soon as it is accepted.  A download thread
 * streams the NAR: HTTP body -> FileHash/FileSize -> decompression ->
 * NarHash/NarSize -> NAR unpack into the store's private work dir; nothing
 * is ever held whole in memory or on disk.  Only a NAR that matched every
 * hash and size is moved into nix/store, and paths are registered together
 * with their references once all of them are in place (store.h).
 *
 * Paths another process is fetching are waited for; a path whose creator
 * died is fetched again.  Transient failures (5xx, 408, 429, resets,
 * timeouts, short bodies) are retried with exponential backoff; a narinfo
 * that is missing (404/403/410), unsigned, or wrong, and a NAR that keeps
 * failing, make the next cache be asked.  When no cache can provide a path
 * the error lists every cache and its answer.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "cache.h"
#include "crypto-sig.h"
#include "store-path.h"
#include "store.h"
#include "util-error.h"

enum fetch_output {
    FETCH_QUIET, /* errors only */
    FETCH_LINES, /* one line per fetched path on stderr */
    FETCH_TTY,   /* one self-updating status line on stderr */
};

struct fetch_opts {
    struct cache *caches; /* sorted and marked usable/unusable in place */
    size_t ncaches;
    const struct trusted_keys *keys;
    bool no_verify;            /* accept unsigned narinfos (loudly) */
    unsigned http_connections; /* per host; 0 means 25 */
    long connect_timeout;      /* seconds; 0 means libcurl's default */
    long stalled_timeout;      /* seconds without data; 0 means 300 */
    const char *netrc_file;    /* or NULL */
    const char *ca_file;       /* CA certificates for https://, or NULL for the system's */
    unsigned attempts;         /* per request and cache; 0 means 5 */
    unsigned jobs;             /* NARs at once; 0 means by CPU count */
    bool dry_run;              /* print what would be fetched to `out` */
    enum fetch_output output;
    mode_t umask; /* the process umask (canonical modes are enforced against it) */
    FILE *out; /* for --dry-run; stdout when NULL */
};

#define FETCH_DEFAULT_CONNECTIONS 25
#define FETCH_DEFAULT_ATTEMPTS 5
#define FETCH_DEFAULT_STALL 300

/*
 * Make the closures of paths[0..n) valid in s.  Paths that are already
 * valid cost one database lookup and no network access.
 */
int fetch_closure(struct store *s, const struct fetch_opts *o, const struct store_path *paths,
                  size_t n, struct rx_error **err);
