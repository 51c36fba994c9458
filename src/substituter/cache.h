/* Binary cache URLs and their nix-cache-info. */
#pragma once
/*
 * Binary cache addresses and nix-cache-info (nix-formats.md sections 6.2
 * and 6.6).
 *
 * A cache URL is http://, https://, file:// or s3:// (s3.h).  Trailing slashes are
 * dropped and the query string is taken apart: `priority=N` is kept, other
 * parameters (trusted, want-mass-query, ...) are ignored.  File URLs are
 * made by joining the base with '/' and a relative path.
 *
 * Credentials in a URL ("https://user:password@host/...") never appear in
 * cache.url, which messages show: cache_file_url() alone puts them back,
 * into the URLs that are requested.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

struct s3_cache;

struct cache {
    char *url;  /* owned; normalised base, no query, no trailing '/', no user:password@ */
    struct s3_cache *s3; /* owned; for an s3:// cache, else NULL */
    char *auth; /* owned, or NULL: the "user:password@" taken out of url */
    int priority;
    bool priority_from_url;
    size_t order; /* position in the configured list, for a stable sort */
    bool usable;  /* nix-cache-info was read and accepted */
    char *why;    /* owned; why the cache is unusable, or NULL */
};

/* Parse and normalise a cache URL into c (which the caller releases). */
int cache_init(struct cache *c, const char *url, size_t order, struct rx_error **err);
void cache_release(struct cache *c);

/* "<base>/<rel>" with the credentials, if any, for a request; owned by the caller. */
char *cache_file_url(const struct cache *c, const char *rel);

/*
 * Does "<base>/<rel>" name a file inside the cache?  rel (up to any '?')
 * is percent-decoded as libcurl decodes a file:// path, and then its
 * segments may not climb above the base.  A decoded NUL or '\\' is refused.
 */
bool cache_rel_inside(const char *rel);

/*
 * For a file:// cache: does "<base>/<rel>" still name a file inside the
 * cache's directory once every symbolic link is resolved?  (A link in the
 * cache could otherwise make runix read any file the user can.)  A file
 * that does not exist is inside: asking for it finds nothing.  Always true
 * for other caches, whose server decides.
 */
bool cache_file_resolves_inside(const struct cache *c, const char *rel);

/*
 * Apply a nix-cache-info text: refuses a StoreDir other than /nix/store
 * and takes Priority unless the URL set one.
 */
int cache_apply_info(struct cache *c, const char *text, size_t len, struct rx_error **err);

/*
 * The s3:// cache among caches[0..n) whose bucket url (a request URL from
 * cache_file_url) is in, or NULL: its requests are signed.
 */
const struct cache *cache_find_s3(const struct cache *caches, size_t n, const char *url);

/* url without any "user:password@", for a message; owned by the caller. */
char *cache_url_redact(const char *url);

/* Sort by priority (lower first), then by configured order. */
void cache_sort(struct cache *caches, size_t n);
