/* Fetching closures from binary caches into a store, and what a fetch reports. */
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
#include <stdint.h>
#include <sys/types.h>

#include "cache.h"
#include "crypto-sig.h"
#include "store-path.h"
#include "store.h"
#include "util-buf.h"
#include "util-error.h"

/* Where a fetch stands, for fetch_events.progress. */
struct fetch_progress {
    size_t paths_done, paths_total; /* of the paths to download (total grows with the walk) */
    uint64_t bytes_done, bytes_total;
    double rate; /* bytes per second since the start; 0 in the first 0.2 s */
};

/* One path a --dry-run would download (fetch_events.dry_run). */
struct fetch_plan_entry {
    struct store_path path;
    uint64_t download_size; /* FileSize, or NarSize when the narinfo has none */
    uint64_t nar_size;
    const char *cache_url; /* the cache it would come from */
    const char *narinfo;   /* its narinfo, as Nix writes it, signatures included */
    const struct store_path *refs; /* its references */
    size_t nrefs;
};

/*
 * What a fetch tells its caller while it runs, as libcurl's progress
 * callback does: each callback gets `ctx` back, any may be NULL, and all
 * are called from the thread that called fetch_closure().  Strings and
 * entries are valid during the call only.
 */
struct fetch_events {
    void *ctx;
    /* About every 200 ms while downloading, and after each path. */
    void (*progress)(void *ctx, const struct fetch_progress *p);
    /*
     * The download of `path` (`size` bytes: FileSize or NarSize) is handed
     * to a download worker; path_done follows when it is in the store.  A
     * path that failed may start again, from the next cache.
     */
    void (*path_started)(void *ctx, const struct store_path *path, uint64_t size);
    /* `path` is in the store now; `size` is what was downloaded (FileSize or NarSize). */
    void (*path_done)(void *ctx, const struct store_path *path, uint64_t size);
    /*
     * Not an error, but the user should know: a cache that is not used, a
     * download that failed (the next cache is asked), unchecked signatures.
     * The message has no prefix and no newline.  `security` marks the
     * warnings about weakened checks (--insecure-no-verify), which a quiet
     * reporter must show all the same.
     */
    void (*warning)(void *ctx, bool security, const char *msg);
    /* Another process is fetching `path`; this one waits for it now. */
    void (*waiting)(void *ctx, const struct store_path *path);
    /*
     * Nothing has come from the cache at cache_url for a second or more;
     * its oldest request has waited `secs` seconds.  Called about once a
     * second while that lasts.
     */
    void (*cache_wait)(void *ctx, const char *cache_url, unsigned secs);
    /* --dry-run: what would be downloaded, in walk order (n may be 0). */
    void (*dry_run)(void *ctx, const struct fetch_plan_entry *entries, size_t n);
};

struct fetch_opts {
    struct cache *caches; /* sorted and marked usable/unusable in place */
    size_t ncaches;
    const struct trusted_keys *keys;
    bool no_verify;            /* accept unsigned narinfos (loudly) */
    unsigned http_connections; /* per host; 0 means 25 */
    long connect_timeout;      /* seconds; 0 means libcurl's default */
    long stalled_timeout;      /* seconds without NAR data; 0 means 300 */
    long narinfo_timeout;      /* seconds for a whole narinfo or nix-cache-info request; 0: 8 */
    const char *netrc_file;    /* or NULL */
    const char *ca_file;       /* CA certificates for https://, or NULL for the system's */
    unsigned attempts;         /* per request and cache; 0 means 5 */
    unsigned jobs;             /* NARs at once; 0 means by CPU count */
    bool dry_run;              /* fetch nothing: hand the plan to events->dry_run */
    mode_t umask; /* the process umask (canonical modes are enforced against it) */
    const struct fetch_events *events; /* or NULL: report nothing */
    /*
     * What a distributable says in advance (both may be empty): the whole
     * closure, so that every narinfo is asked for at once rather than a
     * level of references at a time; and narinfos it embeds, sorted by
     * path, used as if the cache whose (normalised) URL is embedded_cache
     * had answered with them (they are checked as any narinfo is).
     */
    const struct store_path *closure_hint;
    size_t nclosure_hint;
    const struct fetch_embedded *embedded;
    size_t nembedded;
    const char *embedded_cache;
    /* what earlier fetches learned of each host's connections (fetch-hosts.h), or NULL */
    const char *host_notes;
};

struct fetch_embedded {
    struct store_path path;
    const char *narinfo;
};

#define FETCH_DEFAULT_CONNECTIONS 25
#define FETCH_DEFAULT_ATTEMPTS 5
#define FETCH_DEFAULT_STALL 300
/* Five attempts at a cache that never answers, with their pauses, end within a minute. */
#define FETCH_DEFAULT_NARINFO_TIMEOUT 8

/*
 * Make the closures of paths[0..n) valid in s.  Paths of those closures
 * that are registered but gone from disk are unregistered first, with
 * every path that needs them (store_unregister_missing()), and fetched
 * again.  Closures already complete cost a database query and an lstat per
 * path, and no network access.  When a path cannot be fetched, everything
 * that does not need it is still fetched and registered; -1 then, with err
 * naming each path that failed and why.
 */
int fetch_closure(struct store *s, const struct fetch_opts *o, const struct store_path *paths,
                  size_t n, struct rx_error **err);

/*
 * Does a cache of o vouch for valid path p, whose registered NarHash is
 * nar_hash?  Each cache's narinfo of p is read in turn; the first that a
 * key of o->keys signs decides: the same NarHash gives that signature in
 * *sig (free it), another gives why in *why (free it).  Both NULL when no
 * cache has a narinfo signed by a key of o->keys.  -1 on error.
 */
int fetch_vouch(const struct fetch_opts *o, const struct store_path *p, const struct hash *nar_hash,
                char **sig, char **why, struct rx_error **err);

/*
 * Download valid path p's NAR again (runix verify --repair): from the first
 * cache whose narinfo of p a key of o->keys signs (or that carries one of
 * the signatures the store registered for p, sigs[0..nsigs)) and that gives
 * the registered NarHash nar_hash and NarSize nar_size; the NAR is checked
 * against them as a fetch checks it, and unpacked canonically (its root
 * left writable, to be moved) as dir_fd/name.  0 when it is there; 1 when
 * no cache could provide it, with every cache's answer in *why (free it);
 * -1 with err when the store cannot take it or on interruption.  A cache
 * that cannot be reached gets its why set, and is not asked again.
 */
int fetch_nar_into(const struct fetch_opts *o, const struct store_path *p,
                   const struct hash *nar_hash, uint64_t nar_size, const char *const *sigs,
                   size_t nsigs, int dir_fd, const char *name, char **why, struct rx_error **err);

/*
 * A small document (a distributable) by http:// or https://, revalidated:
 * with etag or last_modified set (from an earlier answer), a 304 answer sets
 * not_modified and leaves body empty.  Otherwise body gets the document (at
 * most body.max bytes) and etag/last_modified the new validators (or NULL).
 * A redirect may not leave https://.  Uses o's connect timeout, CA file and
 * netrc.  -1 with err (RX_ENOTFOUND for HTTP 404).
 */
struct fetch_document {
    struct rx_buf body;
    char *etag;          /* owned, or NULL */
    char *last_modified; /* owned, or NULL */
    bool not_modified;
};
int fetch_document(const char *url, const struct fetch_opts *o, struct fetch_document *doc,
                   struct rx_error **err);

/*
 * One file by http://, https:// or file://, streamed to s->sink as it
 * arrives (a database, a NAR, a listing).  Content encodings libcurl knows
 * (br, zstd, gzip) are decoded on the way; another one is left to the
 * caller, who finds it in s->content_encoding.  With s->etag or
 * s->last_modified set, a 304 answer sets not_modified and sends nothing.
 * s->progress, when set, is called as bytes arrive.  A redirect may not
 * leave https://.  -1 with err: RX_ENOTFOUND when the server has no such
 * file (HTTP 404, 403 or 410, or a missing file://), RX_ENET otherwise, or
 * the sink's error.
 */
struct fetch_stream {
    int (*sink)(void *ctx, const void *data, size_t len, struct rx_error **err);
    void (*progress)(void *ctx, uint64_t done, uint64_t total); /* total 0: unknown */
    void *ctx;
    const char *etag, *last_modified; /* validators to send, or NULL */
    long timeout_s;                   /* the whole request; 0: none */
    /*
     * Or, when set: the Accept-Encoding to send, and the body is handed over
     * as sent, its Content-Encoding (xz, which libcurl does not know, as
     * well as zstd and br) left to the caller.
     */
    const char *raw_encodings;
    /* the answer */
    char *resp_etag;        /* owned, or NULL */
    char *resp_last_modified; /* owned, or NULL */
    char *content_encoding; /* owned, or NULL */
    bool not_modified;
};
int fetch_stream(const char *url, const struct fetch_opts *o, struct fetch_stream *s,
                 struct rx_error **err);
void fetch_stream_release(struct fetch_stream *s);

/*
 * Is cache c there?  GET its nix-cache-info once (with the URL's
 * credentials, if any), with o's connect timeout (5 s when unset), CA file
 * and netrc, and at most 15 s in all: 0 when it answers, else -1 with the
 * reason in err (RX_ENET).  For runix doctor; a fetch reads nix-cache-info
 * itself, with retries.
 */
int fetch_cache_probe(const struct cache *c, const struct fetch_opts *o, struct rx_error **err);
