/* runix fetch: download closures from binary caches into the store. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-progress.h"
#include "cli-settings.h"
#include "cli.h"
#include "fetch.h"
#include "store-path.h"
#include "store.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

static const char fetch_usage[] =
    "usage: runix fetch [OPTIONS] STOREPATH...\n"
    "\n"
    "Download the closures of the store paths from binary caches into the runix\n"
    "store, checking every narinfo signature against the trusted keys and every\n"
    "NAR against its hashes, then print the store paths.  Paths already in the\n"
    "store are not downloaded again.  A STOREPATH may name a file inside a store\n"
    "path (/nix/store/...-hello-2.12/bin/hello).\n"
    "\n"
    "  -n, --dry-run             print what would be downloaded, with sizes\n"
    "      --offline             download nothing: only check that the closures are\n"
    "                            complete in the store\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Settings in ~/.config/runix/runix.conf (nix.conf syntax): store, substituters,\n"
    "extra-substituters, trusted-public-keys, extra-trusted-public-keys,\n"
    "http-connections, connect-timeout, stalled-download-timeout, download-attempts,\n"
    "netrc-file, ssl-cert-file.  Environment: RUNIX_STORE, RUNIX_CACHES,\n"
    "RUNIX_TRUSTED_KEYS, RUNIX_CONFIG (another config file), NIX_SSL_CERT_FILE or\n"
    "SSL_CERT_FILE (CA certificates for https:// caches).\n"
    "\n"
    "Interrupted (SIGINT, SIGTERM, SIGHUP), it keeps the paths it has completed,\n"
    "removes the rest and dies of the same signal.\n"
    "\n"
    "Exit status: 0 when every closure is in the store, 1 when a path could not be\n"
    "fetched, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix fetch /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --dry-run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --store /tmp/store --cache https://cache.nixos.org /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --offline /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10/bin/hello\n";

/* --offline: every path must already be valid (its closure then is too). */
static int check_complete(struct store *st, const struct store_path *paths, size_t n)
{
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        struct rx_error *err = NULL;
        int v = store_is_valid(st, &paths[i], &err);
        if (v < 0) {
            cli_fail(err);
            return -1;
        }
        if (v == 0) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[i], full);
            cli_error("%s is not in the store %s and --offline forbids fetching it; run "
                      "'runix fetch %s' while online",
                      full, store_root(st), full);
            ret = -1;
        }
    }
    return ret;
}

/* Long: options, paths, settings, the fetch, the index and the output, in that order. */
int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"dry-run", no_argument, NULL, 'n'},
        {"offline", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool dry_run = false, offline = false;
    int c, ret = EXIT_FAIL;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, "+:nqh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case 'n':
            dry_run = true;
            break;
        case 'o':
            offline = true;
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(fetch_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("fetch", c, argv, opts);
        }
    }
    if (optind == argc) {
        cli_settings_release(&s);
        return cli_usage_error("fetch", "expected at least one STOREPATH");
    }
    size_t n = (size_t)(argc - optind);
    struct store_path *paths = xcalloc(n, sizeof *paths);
    struct rx_error *err = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *a = argv[optind + (int)i];
        const char *sub;
        if (store_path_parse_with_subpath(a, strlen(a), &paths[i], &sub, &err) < 0) {
            cli_usage_error("fetch", "%s", err->msg);
            rx_error_free(err);
            free(paths);
            cli_settings_release(&s);
            return EXIT_USAGE;
        }
    }

    struct store *st = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        if (err && err->code == RX_EUSAGE) {
            cli_cmd_error("fetch", "%s", err->msg);
            rx_error_free(err);
            ret = EXIT_USAGE;
        } else {
            ret = cli_fail(err);
        }
        goto out;
    }
    if (store_open(s.store, &st, &err) < 0) {
        ret = cli_fail(err);
        goto out;
    }
    if (offline) {
        if (check_complete(st, paths, n) < 0)
            goto out;
    } else {
        struct fetch_opts fo;
        struct cli_progress progress;
        cli_settings_fetch_opts(&s, &fo);
        cli_progress_init(&progress, s.quiet);
        fo.events = &progress.events;
        fo.dry_run = dry_run;
        /* Ctrl-C and friends: stop, keep what is complete, remove the rest, then die of it. */
        rx_catch_interrupts();
        int r = fetch_closure(st, &fo, paths, n, &err);
        if (r == 0 && !dry_run)
            cli_progress_finish(&progress);
        else
            cli_progress_clear(&progress);
        if (r < 0) {
            ret = cli_fail(err);
            goto out;
        }
    }
    if (!dry_run) {
        /* What a warm 'runix run' reads instead of the database. */
        for (size_t i = 0; i < n; i++) {
            if (store_index_write(st, &paths[i], &err) < 0) {
                ret = cli_fail(err);
                goto out;
            }
        }
        for (size_t i = 0; i < n; i++) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[i], full);
            printf("%s\n", full);
        }
    }
    ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
    store_close(st);
    free(paths);
    cli_settings_release(&s);
    rx_die_of_interrupt();
    return ret;
}
