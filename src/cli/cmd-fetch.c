/* runix fetch: download closures from binary caches into the store. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-dist.h"
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
    "usage: runix fetch [OPTIONS] STOREPATH|FILE...\n"
    "\n"
    "Download the closures of the store paths from binary caches into the runix\n"
    "store, checking every narinfo signature against the trusted keys and every\n"
    "NAR against its hashes, then print the store paths.  Paths already in the\n"
    "store are not downloaded again.  A STOREPATH may name a file inside a store\n"
    "path (/nix/store/...-hello-2.12/bin/hello).  A FILE is a distributable: its\n"
    "store paths for this system are fetched, from its caches too once trusted.\n"
    "\n"
    "  -n, --dry-run             print what would be downloaded, with sizes\n"
    "      --offline             download nothing: only check that the closures are\n"
    "                            complete in the store\n"
    "      --trust               trust a distributable's own caches and keys, once\n" CLI_SETTINGS_USAGE
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
    "fetched, 2 for a bad command line.\n";

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

/*
 * Write the closure index of p (tagged for a distributable), after checking
 * that `keys` vouch for every path of its closure.  A path in the store that
 * no key in force vouches for was fetched for another program, under a key
 * this command does not trust: it is not used.
 */
static int index_checked(struct store *st, const struct store_path *p, const char *tag,
                         const struct trusted_keys *keys)
{
    struct rx_error *err = NULL;
    struct store_path bad;
    char *sigs = NULL;
    int r = store_index_write_checked(st, p, tag, keys, &bad, &sigs, &err);
    if (r < 0)
        return cli_fail(err), -1;
    if (r > 0) {
        /* "name:sig name2:sig2" -> "name, name2" */
        size_t k = 0;
        for (const char *q = sigs; *q;) {
            size_t len = strcspn(q, " "), name = strcspn(q, ":");
            if (name > len)
                name = len;
            if (k)
                sigs[k++] = ',', sigs[k++] = ' ';
            memmove(sigs + k, q, name);
            k += name;
            q += len;
            q += strspn(q, " ");
        }
        sigs[k] = '\0';
        char full[STORE_PATH_MAX + 1], root[STORE_PATH_MAX + 1];
        store_path_format(&bad, full);
        store_path_format(p, root);
        cli_cmd_error("fetch", "'%s' (in the closure of '%s') is in the store signed by %s%s%s, "
                               "a key this command does not trust, so it is not used; trust that "
                               "key (--trusted-key) or remove '%s' from the store and fetch again",
                      full, root, *sigs ? "'" : "no key", *sigs ? sigs : "",
                      *sigs ? "'" : "", full);
        free(sigs);
        return -1;
    }
    return 0;
}

/* Long: options, paths, settings, the fetch, the index and the output, in that order. */
int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"dry-run", no_argument, NULL, 'n'},
        {"offline", no_argument, NULL, 'o'},
        {"trust", no_argument, NULL, 't'},
        {"dist-label", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool dry_run = false, offline = false, trust = false;
    const char *label = NULL;
    int c, ret = EXIT_FAIL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+nqh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case 'n':
            dry_run = true;
            break;
        case 'o':
            offline = true;
            break;
        case 't':
            trust = true;
            break;
        case 'L': /* runix run: what the user called the distributable */
            label = optarg;
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(fetch_usage);
        default:
            cli_settings_release(&s);
            return cli_usage_error("fetch", "invalid option");
        }
    }
    if (optind == argc) {
        cli_settings_release(&s);
        return cli_usage_error("fetch", "expected at least one STOREPATH");
    }
    size_t nargs = (size_t)(argc - optind), n = 0, ndists = 0;
    struct store_path *paths = xcalloc(nargs, sizeof *paths);
    struct cli_dist *dists = xcalloc(nargs, sizeof *dists);
    struct rx_error *err = NULL;
    for (size_t i = 0; i < nargs; i++) {
        const char *a = argv[optind + (int)i];
        const char *sub;
        if (cli_dist_is_ref(a)) {
            _cleanup_free_ char *local = NULL;
            if (cli_dist_is_remote(a) &&
                (ret = cli_ref_resolve("fetch", a, offline, &local)) != EXIT_OK)
                goto out;
            ret = cli_dist_open_as("fetch", local ? local : a, local ? a : label, false,
                                   &dists[ndists++]);
            if (ret != EXIT_OK)
                goto out;
            continue;
        }
        if (store_path_parse_with_subpath(a, strlen(a), &paths[n++], &sub, &err) < 0) {
            cli_usage_error("fetch", "%s", err->msg);
            rx_error_free(err);
            ret = EXIT_USAGE;
            goto out;
        }
    }

    struct store *st = NULL;
    struct trusted_keys user_keys = TRUSTED_KEYS_INIT;
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
    /* The user's own keys vouch for the paths asked for by name; a
     * distributable's paths may have its keys too, once trusted. */
    size_t nplain = n;
    user_keys.n = s.keys.n;
    user_keys.keys = xmalloc((s.keys.n ? s.keys.n : 1) * sizeof *user_keys.keys);
    memcpy(user_keys.keys, s.keys.keys, s.keys.n * sizeof *user_keys.keys);
    for (size_t i = 0; i < ndists; i++) {
        if ((ret = cli_dist_trust("fetch", &dists[i], &s, trust)) != EXIT_OK)
            goto out;
        const struct dist_system *sys = dists[i].sys;
        paths = xrealloc(paths, (n + sys->npaths) * sizeof *paths);
        memcpy(paths + n, sys->paths, sys->npaths * sizeof *paths);
        n += sys->npaths;
    }
    ret = EXIT_FAIL;
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
        cli_progress_clear(&progress);
        if (r < 0) {
            ret = cli_fail(err);
            goto out;
        }
    }
    if (!dry_run) {
        /* What a warm 'runix run' reads instead of the database: written once
         * the keys in force vouch for every path of the closure. */
        for (size_t i = 0; i < n; i++) {
            const char *tag = NULL;
            const struct trusted_keys *keys = &user_keys;
            if (i >= nplain) {
                size_t d = 0;
                for (size_t before = nplain; before + dists[d].sys->npaths <= i; d++)
                    before += dists[d].sys->npaths;
                tag = dists[d].tag;
                keys = &s.keys;
            }
            if (index_checked(st, &paths[i], tag, s.insecure ? NULL : keys) < 0)
                goto out;
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
    free(user_keys.keys);
    free(paths);
    for (size_t i = 0; i < ndists; i++)
        cli_dist_release(&dists[i]);
    free(dists);
    cli_settings_release(&s);
    rx_die_of_interrupt();
    return ret;
}
