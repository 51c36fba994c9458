/* runix fetch: download closures from binary caches into the store. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cli-bundle-core.h"
#include "cli-dist.h"
#include "cli-progress.h"
#include "cli-settings.h"
#include "cli.h"
#include "run-storesock.h"
#include "fetch.h"
#include "store-gc.h"
#include "store-index.h"
#include "store-path.h"
#include "store-roots.h"
#include "store.h"
#include "util-fs.h"
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
    "path (/nix/store/...-hello-2.12/bin/hello).  A FILE is a distributable (or\n"
    "its https:// or github: reference): its store paths for this system are\n"
    "fetched, from its caches too once trusted.  Inside a sandbox\n"
    "($RUNIX_STORE_SOCKET set) the runix outside fetches the store paths and makes\n"
    "them visible (docs/store-socket.md).\n"
    "\n"
    "  -n, --dry-run             print what would be downloaded, with sizes\n"
    "      --offline             download nothing: only check that the closures are\n"
    "                            complete in the store\n"
    "      --trust               trust a distributable's own caches and keys, once\n"
    "      --root NAME           keep the paths asked for under the GC root NAME\n"
    "                            (kind manual), made before they are registered;\n"
    "                            failing to make it fails the fetch\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Settings in ~/.config/runix/runix.conf (nix.conf syntax): store, substituters,\n"
    "extra-substituters, trusted-public-keys, extra-trusted-public-keys,\n"
    "http-connections, connect-timeout, narinfo-timeout, stalled-download-timeout,\n"
    "download-attempts, netrc-file, ssl-cert-file, github-url.  Environment: RUNIX_STORE,\n"
    "RUNIX_CACHES, RUNIX_GITHUB_URL,\n"
    "RUNIX_TRUSTED_KEYS, RUNIX_CONFIG (another config file), NIX_SSL_CERT_FILE or\n"
    "SSL_CERT_FILE (CA certificates for https:// caches).\n"
    "\n"
    "Interrupted (SIGINT, SIGTERM, SIGHUP), it keeps the paths it has completed,\n"
    "removes the rest and dies of the same signal.\n"
    "\n"
    "A path registered in the store but gone from disk (removed by hand) is fetched\n"
    "again, with the paths that need it.  When a path cannot be fetched, every\n"
    "closure that does not need it is still fetched and kept, and printed.\n"
    "\n"
    "Exit status: 0 when every closure is in the store, 1 when a path could not be\n"
    "fetched, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix fetch /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --dry-run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --store /tmp/store --cache https://cache.nixos.org /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix fetch --offline /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10/bin/hello\n"
    "  runix fetch --root hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

/*
 * How many of the paths are valid in st (their closures then are too);
 * with `report`, each one that is not is an error (--offline).  -1 on error.
 */
static ssize_t count_valid(struct store *st, const struct store_path *paths, size_t n,
                           bool report)
{
    size_t valid = 0;
    for (size_t i = 0; i < n; i++) {
        struct rx_error *err = NULL;
        int v = store_is_valid(st, &paths[i], &err);
        if (v < 0) {
            cli_fail(err);
            return -1;
        }
        valid += v > 0;
        if (v == 0 && report) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[i], full);
            cli_error("%s is not in the store %s and --offline forbids fetching it; run "
                      "'runix fetch %s' while online",
                      full, store_root(st), full);
        }
    }
    return (ssize_t)valid;
}

/*
 * How many registered paths of the closures are missing or damaged on disk;
 * with `report`, each is an error (--offline).  -1 on error.
 */
static ssize_t count_missing(struct store *st, const struct store_path *paths, size_t n,
                             bool report)
{
    struct rx_error *err = NULL;
    struct store_path *missing;
    size_t nmissing;
    if (store_check_missing(st, paths, n, &missing, &nmissing, &err) < 0) {
        cli_fail(err);
        return -1;
    }
    for (size_t i = 0; report && i < nmissing; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&missing[i], full);
        cli_error("%s is registered but missing or damaged in %s/nix/store, and --offline "
                  "forbids fetching it again; run 'runix fetch' of the same paths while online",
                  full, store_root(st));
    }
    free(missing);
    return (ssize_t)nmissing;
}

/* "runix fetch: <the error>"; returns EXIT_FAIL. */
static int fail(struct rx_error *err)
{
    cli_cmd_error("fetch", "%s", err ? err->msg : "unknown error");
    rx_error_free(err);
    return EXIT_FAIL;
}

/*
 * Open the store for what the command needs, creating and writing nothing
 * unless it must: read-only while every closure is there and whole on disk
 * (or for --dry-run and --offline), read-write to download or repair.
 * Returns 0 with *st, or the exit code after saying why.
 */
static int open_store(const char *root, bool dry_run, bool offline,
                      const struct store_path *paths, size_t n, struct store **st)
{
    struct rx_error *err = NULL;
    *st = NULL;
    int r = store_open_readonly(root, st, &err);
    if (r < 0)
        return fail(err);
    if (r > 0) {
        if (dry_run) {
            *st = store_new_empty(root);
            return 0;
        }
        if (offline) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[0], full);
            cli_cmd_error("fetch",
                          "there is no store at '%s' yet, so %s is not in it and --offline "
                          "forbids fetching it; run 'runix fetch %s' while online",
                          root, full, full);
            return EXIT_FAIL;
        }
    } else {
        ssize_t valid = count_valid(*st, paths, n, offline);
        if (valid < 0)
            return EXIT_FAIL;
        if (offline) {
            ssize_t missing = count_missing(*st, paths, n, true);
            return missing != 0 || (size_t)valid < n ? EXIT_FAIL : 0;
        }
        if (dry_run)
            return 0;
        if ((size_t)valid == n) {
            ssize_t missing = count_missing(*st, paths, n, false);
            if (missing < 0)
                return EXIT_FAIL;
            if (missing == 0)
                return 0;
        }
        store_close(*st);
        *st = NULL;
    }
    if (store_open(root, st, &err) < 0)
        return fail(err);
    return 0;
}

/*
 * A path no key in force vouches for may still be the very path a cache in
 * force has, signed: then that signature is registered with it and it is
 * used.  1 when it was, 0 when no cache vouches for it, -1 after saying why
 * it must not be used (a cache in force says it has other contents).
 */
static int vouch(struct store *st, const struct fetch_opts *fo, const struct store_path *bad,
                 const struct store_path *root)
{
    struct rx_error *err = NULL;
    struct hash h;
    char *sig = NULL, *why = NULL;
    if (store_query_nar_hash(st, bad, &h, &err) < 0 || fetch_vouch(fo, bad, &h, &sig, &why, &err) < 0)
        return cli_fail(err), -1;
    int r = 0;
    char full[STORE_PATH_MAX + 1], top[STORE_PATH_MAX + 1];
    store_path_format(bad, full);
    store_path_format(root, top);
    if (why) {
        cli_cmd_error("fetch", "'%s' (in the closure of '%s') in the store was installed under a "
                               "key this command does not trust, and %s: it is not used; to "
                               "repair it, remove it (chmod -R u+w %s/nix/store/%s-%s && rm -rf "
                               "%s/nix/store/%s-%s) and fetch again",
                      full, top, why, store_root(st), bad->hash, bad->name, store_root(st),
                      bad->hash, bad->name);
        r = -1;
    } else if (sig && store_add_sig(st, bad, sig, &err) < 0) {
        cli_fail(err);
        r = -1;
    } else if (sig) {
        r = 1;
    }
    free(sig);
    free(why);
    return r;
}

static int index_checked(struct store *st, const struct store_path *p, const char *tag,
                         const struct trusted_keys *keys, const struct fetch_opts *fo)
{
    struct rx_error *err = NULL;
    struct store_path bad;
    char *sigs = NULL;
    int r;
    struct store_path vouched;
    bool have_vouched = false;
    /* Each pass either writes the index or vouches for one more path, or stops. */
    while ((r = store_index_write_checked(st, p, tag, keys, &bad, &sigs, &err)) > 0) {
        if (have_vouched && store_path_cmp(&vouched, &bad) == 0) {
            /* The signature the cache vouched with still does not verify: the
             * database no longer says what was signed (its references, say). */
            char full[STORE_PATH_MAX + 1];
            store_path_format(&bad, full);
            cli_cmd_error("fetch", "'%s' in store '%s' does not match what its cache signed (its "
                                   "registered references or hash differ): the store's database "
                                   "is damaged; run 'runix verify --repair %s'",
                          full, store_root(st), full);
            free(sigs);
            return -1;
        }
        struct fetch_opts o = *fo;
        o.keys = keys;
        vouched = bad;
        have_vouched = true;
        int v = vouch(st, &o, &bad, p);
        if (v == 0)
            break;
        free(sigs);
        sigs = NULL;
        if (v < 0)
            return -1;
    }
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

/* Which keys vouch for paths[i], and the tag of its index: the distributable it came from. */
struct index_plan {
    const struct fetch_opts *fo;          /* the caches in force */
    size_t nplain;                        /* paths[0..nplain) were named by the user */
    const struct cli_dist *dists;         /* the rest come from these, in order */
    const struct trusted_keys *user_keys; /* the user's own */
    const struct trusted_keys *all_keys;  /* with the distributables' */
    bool insecure;                        /* --insecure-no-verify: no check */
    const char *plain_tag;                /* the tag of paths[0..nplain): a bundle's, or NULL */
};

/* The tag of paths[i]'s index: none for a path named by the user, else its distributable's. */
static const char *index_tag(const struct index_plan *plan, size_t i)
{
    if (i < plan->nplain)
        return plan->plain_tag;
    size_t d = 0;
    for (size_t before = plan->nplain; before + plan->dists[d].sys->npaths <= i; d++)
        before += plan->dists[d].sys->npaths;
    return plan->dists[d].tag;
}

/*
 * Write the closure index of every path asked for that is valid (what a warm
 * 'runix run' reads instead of the database; never into a store of someone
 * else's that we only read), once a key in force vouches for its closure,
 * then print those paths.  -1 after saying why when one could not be.
 */
static int write_indexes(struct store *st, const struct store_path *paths, size_t n,
                         const struct index_plan *plan, struct rx_error **err)
{
    int ret = 0;
    for (size_t i = 0; i < n; i++) {
        int v = store_is_valid(st, &paths[i], err);
        if (v < 0)
            return cli_fail(*err), *err = NULL, -1;
        if (v == 0)
            continue; /* the fetch said why */
        const char *tag = index_tag(plan, i);
        const struct trusted_keys *keys = i < plan->nplain ? plan->user_keys : plan->all_keys;
        if (store_writable(st) &&
            index_checked(st, &paths[i], tag, plan->insecure ? NULL : keys, plan->fo) < 0) {
            ret = -1;
            continue;
        }
        char full[STORE_PATH_MAX + 1];
        store_path_format(&paths[i], full);
        printf("%s\n", full);
    }
    return ret;
}

static int cmp_embedded(const void *a, const void *b)
{
    return store_path_cmp(&((const struct fetch_embedded *)a)->path,
                          &((const struct fetch_embedded *)b)->path);
}

/*
 * What distributables say in advance, for the fetch: their closures (every
 * narinfo asked for at once) and their embedded narinfos, as answers of the
 * first distributable's first cache.
 */
static void dist_hints(const struct cli_dist *dists, size_t n, const struct cli_settings *s,
                       struct fetch_opts *fo, struct store_path **paths,
                       struct fetch_embedded **emb)
{
    size_t np = 0, ne = 0;
    for (size_t i = 0; i < n; i++) {
        const struct dist_system *sys = dists[i].sys;
        *paths = xrealloc(*paths, (np + sys->nclosure + 1) * sizeof **paths);
        if (sys->nclosure)
            memcpy(*paths + np, sys->closure, sys->nclosure * sizeof **paths);
        np += sys->nclosure;
        *emb = xrealloc(*emb, (ne + sys->nnarinfos + 1) * sizeof **emb);
        for (size_t j = 0; j < sys->nnarinfos; j++)
            (*emb)[ne++] = (struct fetch_embedded){ sys->narinfos[j].path, sys->narinfos[j].text };
    }
    if (ne)
        qsort(*emb, ne, sizeof **emb, cmp_embedded);
    fo->closure_hint = *paths;
    fo->nclosure_hint = np;
    fo->embedded = *emb;
    fo->nembedded = ne;
    fo->embedded_cache = NULL;
    if (ne && dists[0].d.ncaches) {
        struct cache c = { 0 };
        if (cache_init(&c, dists[0].d.caches[0].url, 0, NULL) == 0) {
            for (size_t i = 0; i < s->ncaches && !fo->embedded_cache; i++)
                if (strcmp(s->caches[i].url, c.url) == 0)
                    fo->embedded_cache = s->caches[i].url;
            cache_release(&c);
        }
    }
}

/* The GC roots to make (store-roots.h): --root, and what run and install ask for. */
struct root_plan {
    const char *manual;    /* --root NAME */
    const char *automatic; /* --auto-root REF: runix run of a distributable */
    bool auto_each;        /* --auto-root-each: runix run or shell of store paths */
    const char *installed; /* --installed-root NAME: runix install and upgrade */
};

/* Make one root, NAME encoded from ref; `use`: refresh it when it already holds paths. */
static int make_root(int root_fd, const char *root, enum store_root_kind kind, const char *ref,
                     const struct store_path *paths, size_t n, bool use, struct rx_error **err)
{
    char name[STORE_ROOT_NAME_MAX + 1];
    if (store_root_name_encode(ref, name, err) < 0)
        return -1;
    return use ? store_root_use(root_fd, root, kind, name, paths, n, err)
               : store_root_set(root_fd, root, kind, name, paths, n, err);
}

/*
 * Make the roots of plan for paths[0..n) (paths[0..nplain) named as store
 * paths), before any of them is registered, so that no collection can take
 * them between the fetch and their use.  A manual or installed root that
 * cannot be made fails the command (-1, said); an automatic one is a
 * warning, and none is made in a store the user cannot write.
 */
static int make_roots(const char *store, const struct root_plan *plan,
                      const struct store_path *paths, size_t n, size_t nplain)
{
    if (!plan->manual && !plan->automatic && !plan->auto_each && !plan->installed)
        return 0;
    if (n == 0)
        return 0;
    struct rx_error *err = NULL;
    _cleanup_free_ char *root = NULL;
    _cleanup_close_ int root_fd = store_root_open(store, &root, &err);
    if (root_fd < 0)
        return cli_fail(err), -1;
    if (plan->manual && make_root(root_fd, root, STORE_ROOT_MANUAL, plan->manual, paths, n,
                                  false, &err) < 0) {
        cli_cmd_error("fetch", "%s; nothing was fetched (use --store DIR for a store of your "
                               "own, or fetch without --root)",
                      err->msg);
        rx_error_free(err);
        return -1;
    }
    if (plan->installed && make_root(root_fd, root, STORE_ROOT_INSTALLED, plan->installed,
                                     paths, n, true, &err) < 0)
        return cli_fail(err), -1;
    int r = 0;
    if (plan->automatic)
        r = make_root(root_fd, root, STORE_ROOT_AUTO, plan->automatic, paths, n, true, &err);
    for (size_t i = 0; plan->auto_each && r == 0 && i < nplain; i++) {
        char base[STORE_BASENAME_MAX + 1];
        store_path_basename(&paths[i], base);
        r = make_root(root_fd, root, STORE_ROOT_AUTO, base, &paths[i], 1, true, &err);
    }
    if (r < 0) {
        cli_error("warning: cannot keep a GC root for what runs: %s; until one can be made, "
                  "a collection may remove it",
                  err->msg);
        rx_error_free(err);
    }
    return 0;
}

/* Long: options, paths, settings, the fetch, the index and the output, in that order. */
/* Ask the store socket for each path; print each argument once its path is realised. */
static int fetch_through_socket(const char *sock, char **args, size_t n,
                                const struct store_path *paths)
{
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1], why[STORESOCK_ANSWER_MAX + 256];
        store_path_format(&paths[i], full);
        int r = storesock_realise(sock, full, why, sizeof why);
        if (r > 0) {
            cli_error("the store socket refused %s: %s", full, why);
            return EXIT_FAIL;
        }
        if (r < 0) {
            cli_error("cannot realise %s through the store socket ($RUNIX_STORE_SOCKET): %s",
                      full, why);
            return EXIT_FAIL;
        }
        printf("%s\n", args[i]);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"dry-run", no_argument, NULL, 'n'},
        {"offline", no_argument, NULL, 'o'},
        {"trust", no_argument, NULL, 't'},
        {"dist-label", required_argument, NULL, 'L'},
        {"root", required_argument, NULL, 'R'},
        {"auto-root", required_argument, NULL, 'A'},
        {"auto-root-each", no_argument, NULL, 'E'},
        {"installed-root", required_argument, NULL, 'I'},
        {"bundle", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool dry_run = false, offline = false, trust = false;
    const char *label = NULL, *bundle = NULL;
    struct root_plan roots = {0};
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
        case 't':
            trust = true;
            break;
        case 'L': /* runix run: what the user called the distributable */
            label = optarg;
            break;
        case 'R':
            if (!*optarg) {
                cli_settings_release(&s);
                return cli_usage_error("fetch", "--root needs a NAME");
            }
            roots.manual = optarg;
            break;
        case 'A': /* runix run: its automatic root */
            roots.automatic = optarg;
            break;
        case 'E':
            roots.auto_each = true;
            break;
        case 'I': /* runix install and upgrade */
            roots.installed = optarg;
            break;
        case 'B': /* a bundle's first run: its paths, from it alone (cli-bundle-core.h) */
            bundle = optarg;
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
    size_t nargs = (size_t)(argc - optind), n = 0, ndists = 0;
    struct store_path *paths = xcalloc(nargs, sizeof *paths);
    struct cli_dist *dists = xcalloc(nargs, sizeof *dists);
    struct trusted_keys user_keys = TRUSTED_KEYS_INIT;
    struct store_path *hint_paths = NULL;
    struct fetch_embedded *hints = NULL;
    struct store *st = NULL;
    struct rx_error *err = NULL;
    struct bundle_manifest bm = {0};
    struct bundle_cache bc = {0};
    _cleanup_close_ int bundle_fd = -1;
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

    /* In a sandbox: the store is read-only, the runix outside realises (docs/store-socket.md). */
    const char *sock = getenv("RUNIX_STORE_SOCKET");
    if (sock && *sock && ndists == 0 && !dry_run) {
        ret = fetch_through_socket(sock, argv + optind, nargs, paths);
        goto out;
    }
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
    if (s.keys.n)
        memcpy(user_keys.keys, s.keys.keys, s.keys.n * sizeof *user_keys.keys);
    for (size_t i = 0; i < ndists; i++) {
        if ((ret = cli_dist_trust("fetch", &dists[i], &s, trust)) != EXIT_OK)
            goto out;
        const struct dist_system *sys = dists[i].sys;
        paths = xrealloc(paths, (n + sys->npaths) * sizeof *paths);
        memcpy(paths + n, sys->paths, sys->npaths * sizeof *paths);
        n += sys->npaths;
    }
    struct fetch_opts vouch_opts;
    cli_settings_fetch_opts(&s, &vouch_opts);
    struct index_plan plan = { .fo = &vouch_opts, .nplain = nplain, .dists = dists,
                               .user_keys = &user_keys, .all_keys = &s.keys,
                               .insecure = s.insecure };
    if (bundle && (ndists || dry_run || offline)) {
        ret = cli_usage_error("fetch", "--bundle takes store paths only, without --dry-run "
                                       "or --offline");
        goto out;
    }
    if (bundle && bundle_manifest_read(bundle, &bm, &bundle_fd, &err) < 0) {
        ret = cli_fail(err);
        goto out;
    }
    for (size_t i = 0; bundle && i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < bm.nroots && !found; j++)
            found = store_path_cmp(&paths[i], &bm.roots[j]) == 0;
        if (!found) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[i], full);
            cli_cmd_error("fetch", "%s is not a root of the bundle '%s'", full, bundle);
            ret = EXIT_FAIL;
            goto out;
        }
    }
    if ((ret = open_store(s.store, dry_run, offline, paths, n, &st)) != EXIT_OK)
        goto out;
    if (bundle) {
        /* The bundle's own paths, by the bundle's own keys, checked as any download. */
        if (bundle_import_prepare(&bm, bundle_fd, st, &bc, &err) < 0) {
            ret = cli_fail(err);
            goto out;
        }
        vouch_opts.caches = bc.has_cache ? &bc.cache : NULL;
        vouch_opts.ncaches = bc.has_cache ? 1 : 0;
        vouch_opts.keys = &bm.keys;
        vouch_opts.no_verify = false;
        plan.user_keys = plan.all_keys = &bm.keys;
        plan.insecure = false;
        plan.plain_tag = bm.tag;
    }
    /* min-free: make room first, keeping what this fetch is for (store-gc.h). */
    struct store_gc_result gc_res;
    if (!dry_run && !offline &&
        store_gc_auto(st, s.min_free, s.max_free, paths, n, &gc_res, &err) < 0) {
        cli_cmd_error("fetch", "warning: automatic garbage collection failed: %s", err->msg);
        rx_error_clear(&err);
    }
    /* A closure index still to write may need signatures registered first
     * (vouch()): that is a write to the database. */
    for (size_t i = 0; !dry_run && !offline && store_writable(st) && i < n; i++) {
        int v = store_is_valid(st, &paths[i], NULL);
        if (v > 0 && !store_index_holds(st, &paths[i], index_tag(&plan, i))) {
            store_close(st);
            st = NULL;
            if (store_open(s.store, &st, &err) < 0) {
                ret = cli_fail(err);
                goto out;
            }
            break;
        }
    }
    ret = EXIT_FAIL;
    if (!dry_run && make_roots(s.store, &roots, paths, n, nplain) < 0)
        goto out;
    if (!offline) {
        struct fetch_opts fo;
        struct cli_progress progress;
        cli_settings_fetch_opts(&s, &fo);
        cli_progress_init(&progress, s.quiet);
        fo.events = &progress.events;
        fo.dry_run = dry_run;
        dist_hints(dists, ndists, &s, &fo, &hint_paths, &hints);
        if (bundle) {
            fo.caches = vouch_opts.caches;
            fo.ncaches = vouch_opts.ncaches;
            fo.keys = vouch_opts.keys;
            fo.no_verify = false;
            free(hint_paths);
            hint_paths = xcalloc(bm.npaths, sizeof *hint_paths);
            for (size_t i = 0; i < bm.npaths; i++)
                hint_paths[i] = bm.paths[i].path;
            fo.closure_hint = hint_paths;
            fo.nclosure_hint = bm.npaths;
        }
        /* Ctrl-C and friends: stop, keep what is complete, remove the rest, then die of it. */
        rx_catch_interrupts();
        int r = fetch_closure(st, &fo, paths, n, &err);
        if (r == 0 && !dry_run)
            cli_progress_finish(&progress);
        else
            cli_progress_clear(&progress);
        if (r < 0) {
            /* What could be completed is kept: it is usable, and says so. */
            struct rx_error *e2 = NULL;
            if (!dry_run && !rx_interrupted)
                write_indexes(st, paths, n, &plan, &e2);
            fflush(stdout);
            ret = cli_fail(err);
            goto out;
        }
    }
    if (!dry_run && write_indexes(st, paths, n, &plan, &err) < 0) {
        ret = EXIT_FAIL;
        goto out;
    }
    ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
out:
    bundle_import_release(&bc);
    bundle_manifest_release(&bm);
    store_close(st);
    free(user_keys.keys);
    free(hint_paths);
    free(hints);
    free(paths);
    for (size_t i = 0; i < ndists; i++)
        cli_dist_release(&dists[i]);
    free(dists);
    cli_settings_release(&s);
    rx_die_of_interrupt();
    return ret;
}

int cli_plan_closure(const char *cmd, struct cli_settings *s, const struct store_path *paths,
                     size_t n,
                     void (*on_plan)(void *ctx, const struct fetch_plan_entry *e, size_t n),
                     void *ctx)
{
    const char *tmpdir = getenv("TMPDIR");
    _cleanup_free_ char *dir =
        xasprintf("%s/runix-plan.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir))
        return cli_cmd_error(cmd, "cannot make a scratch directory: %s", strerror(errno)),
               EXIT_FAIL;
    struct store *st = NULL;
    struct rx_error *err = NULL;
    int ret = EXIT_OK;
    if (store_open(dir, &st, &err) < 0) {
        ret = cli_fail(err);
    } else {
        struct fetch_opts fo;
        cli_settings_fetch_opts(s, &fo);
        struct fetch_events ev = { .ctx = ctx, .dry_run = on_plan };
        fo.events = &ev;
        fo.dry_run = true;
        if (fetch_closure(st, &fo, paths, n, &err) < 0) {
            cli_cmd_error(cmd, "%s", err->msg);
            rx_error_free(err);
            cli_cmd_error(cmd, "the caches do not have the whole closure: nothing written");
            ret = EXIT_FAIL;
        }
        store_close(st);
    }
    if (rm_rf_at(AT_FDCWD, dir, NULL) < 0)
        cli_cmd_error(cmd, "warning: cannot remove '%s'", dir);
    return ret;
}
