/* s3:// binary caches: their URLs, their credentials and S3's error answers. */
#pragma once
/*
 * An s3:// cache is named as Nix names it:
 *
 *   s3://BUCKET[?region=R&endpoint=HOST[:PORT]&scheme=https|http&profile=P]
 *
 * region defaults to us-east-1.  Without an endpoint the bucket is on AWS
 * and is addressed virtual-hosted (https://BUCKET.s3.REGION.amazonaws.com);
 * with one (an S3-compatible service: MinIO, Ceph, R2, Garage) it is
 * addressed path-style (SCHEME://HOST[:PORT]/BUCKET).  scheme defaults to
 * https; an endpoint written as a URL brings its own.
 *
 * Credentials come from the standard chain, in its order: the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN), then a profile (profile= of the URL, else
 * AWS_PROFILE, else "default") from the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials) and then the
 * config file (AWS_CONFIG_FILE, else ~/.aws/config).  As in Nix, profile=
 * names the profile to use and the environment's keys are not consulted.
 * With none found the requests go unsigned, which a public bucket allows.
 *
 * Nothing here talks to the network: fetch-http.c signs the requests
 * (with libcurl's own SigV4) from what is kept here.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

struct s3_cache {
    char *bucket;   /* owned */
    char *region;   /* owned */
    char *endpoint; /* owned; host[:port], or NULL for AWS */
    char *scheme;   /* owned; "https" or "http" */
    char *profile;  /* owned; from profile=, or NULL */
    char *base;     /* owned; the HTTP URL of the bucket, no trailing '/' */
    /* credentials, all NULL for anonymous requests; never shown */
    char *access_key, *secret_key, *session_token; /* owned */
    char *cred_source; /* owned; where they came from, in words (no secret in it) */
};

/*
 * Parse url (s3://...) into *out, taking its credentials from the chain.
 * `shown` names the cache in errors.  -1 with err for a bad URL or a
 * credentials file that names the profile but cannot be used.
 */
int s3_cache_new(const char *url, const char *shown, struct s3_cache **out,
                 struct rx_error **err);
void s3_cache_free(struct s3_cache *s);

/* The normalised cache URL, which messages show: "s3://BUCKET[?...]" with the parameters given. */
char *s3_cache_url(const struct s3_cache *s);

/* "aws:amz:REGION:s3", for CURLOPT_AWS_SIGV4; owned by the caller. */
char *s3_sigv4_provider(const struct s3_cache *s);

/*
 * The keys of profile `name` in an AWS shared credentials or config file
 * (text, len): "[name]" sections, or "[profile name]" when `config`
 * (where "[default]" stays as it is).  Sections of the same name add up,
 * and a later key replaces an earlier one.  Returns 1 when the section
 * exists (the keys found, if any, set and owned by the caller), 0 when it
 * does not.
 */
int s3_profile_parse(const char *text, size_t len, const char *name, bool config, char **akid,
                     char **secret, char **token);

/*
 * S3's error document (<Error><Code>..</Code><Message>..</Message>...):
 * its Code and Message, entities decoded and control characters dropped,
 * each cut to fit; false when the body is not one.
 */
bool s3_error_parse(const char *body, size_t len, char *code, size_t code_size, char *msg,
                    size_t msg_size);

/*
 * Is an S3 error with this status and Code the bucket saying "no such
 * key" (404, or 403 AccessDenied, S3's answer for a missing key to whom
 * may not list the bucket)?  Otherwise it is about the request itself
 * (signature, key, clock, token, region), which no other key would fix.
 */
bool s3_error_is_missing(long status, const char *code);

/* A hint for an error Code ("check this machine's clock"), or NULL. */
const char *s3_error_hint(const char *code);
