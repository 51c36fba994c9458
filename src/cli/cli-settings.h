/* The settings of the commands that use a store and caches, and their sources. */
#pragma once
/*
 * Settings shared by the commands that use a store and caches (fetch,
 * doctor, run and shell).  Sources, weakest first:
 *
 *   built-in defaults
 *   the config file ${XDG_CONFIG_HOME:-$HOME/.config}/runix/runix.conf
 *     (or $RUNIX_CONFIG), nix.conf syntax, Nix's setting names
 *   the environment: RUNIX_STORE, RUNIX_CACHES, RUNIX_TRUSTED_KEYS,
 *     NIX_SSL_CERT_FILE / SSL_CERT_FILE
 *   command-line flags
 */

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "crypto-sig.h"
#include "util-error.h"

struct fetch_opts;
struct fetch_plan_entry;
struct store_path;

#define DEFAULT_CACHE "https://cache.nixos.org"
#define DEFAULT_TRUSTED_KEY "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="

/* getopt_long codes of the shared options. */
enum {
    OPT_STORE = 0x100,
    OPT_CACHE,
    OPT_EXTRA_CACHE,
    OPT_TRUSTED_KEY,
    OPT_INSECURE,
    OPT_QUIET,
};

#define CLI_SETTINGS_OPTIONS                                                                  \
    {"store", required_argument, NULL, OPT_STORE},                                            \
        {"cache", required_argument, NULL, OPT_CACHE},                                        \
        {"extra-cache", required_argument, NULL, OPT_EXTRA_CACHE},                            \
        {"trusted-key", required_argument, NULL, OPT_TRUSTED_KEY},                            \
        {"insecure-no-verify", no_argument, NULL, OPT_INSECURE},                              \
        {"quiet", no_argument, NULL, OPT_QUIET}

#define CLI_SETTINGS_USAGE                                                                    \
    "      --store DIR           the store root (default: $RUNIX_STORE, the config file's\n" \
    "                            'store', or ~/.local/share/runix)\n"                        \
    "      --cache URL           use this binary cache (repeatable; replaces the\n"          \
    "                            configured list); https://, http:// or file://\n"           \
    "      --extra-cache URL     use this cache as well as the configured ones\n"            \
    "      --trusted-key NAME:KEY  trust this public key too (repeatable)\n"                 \
    "      --insecure-no-verify  accept narinfos without a trusted signature (dangerous)\n"  \
    "  -q, --quiet               show no progress, only errors\n"

struct strv {
    char **v; /* owned, each owned */
    size_t n;
};

struct cli_settings {
    /* flags, as given */
    char *flag_store;
    struct strv flag_caches, flag_extra_caches, flag_keys;
    bool insecure;
    bool quiet;

    /* the result of cli_settings_finish() */
    char *store; /* owned */
    struct cache *caches;
    size_t ncaches;
    struct trusted_keys keys;
    unsigned http_connections;
    long connect_timeout;
    long stalled_timeout;
    long narinfo_timeout;
    unsigned attempts;
    char *netrc_file; /* owned or NULL */
    char *ssl_cert_file; /* owned or NULL: CA bundle for https:// */
    char *host_notes;    /* owned or NULL: ${XDG_CACHE_HOME:-~/.cache}/runix/hosts */
    char *github_url;    /* owned or NULL: the config's github-url */
    char *bin_dir;       /* owned or NULL: the config's bin-dir (runix install) */
    char *index_url;     /* owned or NULL: the config's index-url (runix index update) */
    char *index_sha256;  /* owned or NULL: the config's index-sha256 */
    char *index_config;  /* owned or NULL: the file that set index-sha256, for messages */
    struct strv index_urls; /* the config's index.NAME.url, as "NAME URL" */
    uint64_t min_free;   /* min-free: collect garbage below this much free space; 0: never */
    uint64_t max_free;   /* max-free: until this much is free; 0: as much as can go */
};

/* Returns 1 if c was a shared option (and took it), 0 if not. */
int cli_settings_option(struct cli_settings *s, int c, const char *arg);

/*
 * Read the config file and environment and combine everything.  In the
 * front (which only runs programs) that is the store alone: the CA file,
 * the caches and the keys are runix-core's (cli-settings-internal.h).
 */
int cli_settings_finish(struct cli_settings *s, struct rx_error **err);

/*
 * Resolve only the trusted keys into s->keys, as cli_settings_finish()
 * does: the config file's, or $RUNIX_TRUSTED_KEYS, or the default, then
 * s->flag_keys (runix-core only; for commands that check signatures but
 * use no store or cache).  0, or -1 with err; a bad --trusted-key is
 * RX_EUSAGE.
 */
int cli_settings_finish_keys(struct cli_settings *s, struct rx_error **err);

/* Fill fetch options from the settings (runix-core only). */
void cli_settings_fetch_opts(struct cli_settings *s, struct fetch_opts *o);

/*
 * The closures of paths as the caches' narinfos give them, without
 * downloading a NAR: a dry-run fetch into an empty scratch store, whose
 * plan goes to on_plan(ctx, ...) (runix-core only; in cmd-fetch.c).  EXIT_OK, or EXIT_FAIL
 * after saying, as cmd, what went wrong.
 */
int cli_plan_closure(const char *cmd, struct cli_settings *s, const struct store_path *paths,
                     size_t n,
                     void (*on_plan)(void *ctx, const struct fetch_plan_entry *e, size_t n),
                     void *ctx);

void cli_settings_release(struct cli_settings *s);

/*
 * The one-file runix's CA bundle when nothing names one: the first readable
 * file of the places Linux distributions keep it, or NULL (always NULL in
 * the Meson build, whose libcurl knows its system's).
 */
const char *cli_system_ca_file(void);
