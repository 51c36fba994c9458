/* runix gc, runix store delete and runix store destroy: removing what the store holds. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli-settings.h"
#include "cli.h"
#include "store-gc.h"
#include "store-path.h"
#include "store.h"
#include "util-mem.h"
#include "util-units.h"

#include "banned.h"

static const char gc_usage[] =
    "usage: runix gc [OPTIONS]\n"
    "\n"
    "Delete every store path that nothing keeps alive: no GC root (runix's own,\n"
    "and Nix's under nix/var/nix/gcroots and profiles) reaches it, and no running\n"
    "program uses it.  Each deleted path is printed on stdout, and a summary on\n"
    "stderr.  Real Nix would delete the same paths (nix-store --gc).\n"
    "\n"
    "      --older-than DURATION  first drop the automatic roots (those 'runix run'\n"
    "                            makes) not used for DURATION (30d, 12h, 90m, 2w,\n"
    "                            45s); manual, installed and Nix's roots stay\n"
    "      --max-freed SIZE      stop once SIZE is freed (500M, 2G, 1024 bytes)\n"
    "      --keep-size SIZE      stop once the store holds at most SIZE\n"
    "  -n, --dry-run             delete nothing: print what would be deleted\n"
    "      --json                print one JSON document instead\n"
    "      --store DIR           the store root (default: $RUNIX_STORE, the config file's\n"
    "                            'store', or ~/.local/share/runix)\n"
    "  -h, --help                show this help\n"
    "\n"
    "With --max-freed or --keep-size, the least recently used paths go first (a\n"
    "path's last use is that of the dropped roots that kept it, else when it was\n"
    "fetched), and a path always goes before those it references.  Sizes are NAR\n"
    "sizes; K, M, G and T are powers of 1024.\n"
    "\n"
    "Other runix processes wait while a collection runs, and it waits for those\n"
    "already writing the store.  Interrupted at any moment, it leaves a valid store;\n"
    "the next collection finishes the job.\n"
    "\n"
    "Automatic collection: with min-free set in runix.conf, a fetch first collects\n"
    "garbage when the store's file system has less than min-free free, until\n"
    "max-free is free (see the README).\n"
    "\n"
    "Exit status: 0 when the collection ran, 1 when it failed, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix gc\n"
    "  runix gc --dry-run\n"
    "  runix gc --older-than 30d\n"
    "  runix gc --max-freed 1G --json\n";

enum { OPT_OLDER = 0x200, OPT_MAX_FREED, OPT_KEEP_SIZE, OPT_JSON, OPT_FORCE, OPT_YES };

struct report {
    bool json;
    json_t *paths; /* with json */
    json_t *roots;
};

static void on_path(void *ctx, const struct store_path *p, uint64_t size)
{
    struct report *r = ctx;
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    if (r->json)
        json_array_append_new(r->paths,
                              json_pack("{s:s, s:I}", "path", full, "narSize", (json_int_t)size));
    else
        printf("%s\n", full);
}

static void on_root(void *ctx, const struct store_root *root)
{
    struct report *r = ctx;
    if (r->json)
        json_array_append_new(r->roots, json_pack("{s:s, s:s, s:s, s:I}", "kind",
                                                  store_root_kind_name(root->kind), "name",
                                                  root->name, "where", root->where, "lastUsed",
                                                  (json_int_t)root->last_used));
}

/* Print the summary (stderr) or the JSON document (stdout); the exit code. */
static int finish(struct report *r, const char *verb_done, const char *verb_would, bool dry_run,
                  const struct store_gc_result *res)
{
    char b[32];
    if (r->json) {
        json_t *doc = json_pack("{s:b, s:o, s:o, s:I, s:I, s:I}", "dryRun", dry_run, "deleted",
                                r->paths, "rootsDropped", r->roots, "paths",
                                (json_int_t)res->npaths, "bytes", (json_int_t)res->bytes,
                                "storeBytesBefore", (json_int_t)res->store_bytes_before);
        r->paths = r->roots = NULL;
        char *text = json_dumps(doc, JSON_INDENT(2));
        json_decref(doc);
        if (text)
            printf("%s\n", text);
        free(text);
    } else {
        fprintf(stderr, "%s %zu path%s, %s %s", dry_run ? verb_would : verb_done, res->npaths,
                res->npaths == 1 ? "" : "s", dry_run ? "freeing" : "freed",
                format_size(res->bytes, b));
        if (res->nroots)
            fprintf(stderr, " (%s %zu old automatic root%s)", dry_run ? "dropping" : "dropped",
                    res->nroots, res->nroots == 1 ? "" : "s");
        fputc('\n', stderr);
    }
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

/* The settings error as the command's: a usage error exits 2. */
static int settings_error(const char *cmd, struct rx_error *err)
{
    int code = err && err->code == RX_EUSAGE ? EXIT_USAGE : EXIT_FAIL;
    cli_cmd_error(cmd, "%s", err ? err->msg : "unknown error");
    rx_error_free(err);
    return code;
}

/* Open the store at root to write it; 0, or 1 when there is none (said so), or -1 (said why). */
static int open_existing(const char *cmd, const char *root, struct store **st)
{
    struct rx_error *err = NULL;
    struct store *ro = NULL;
    int r = store_open_readonly(root, &ro, &err);
    store_close(ro);
    if (r < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return -1;
    }
    if (r > 0)
        return 1;
    if (store_open(root, st, &err) < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return -1;
    }
    return 0;
}

int cmd_gc(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"older-than", required_argument, NULL, OPT_OLDER},
        {"max-freed", required_argument, NULL, OPT_MAX_FREED},
        {"keep-size", required_argument, NULL, OPT_KEEP_SIZE},
        {"dry-run", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    struct store_gc_opts o = {.older_than = -1, .max_freed = STORE_GC_NO_LIMIT,
                              .keep_size = STORE_GC_NO_LIMIT};
    struct report rep = {0};
    struct rx_error *err = NULL;
    int c, ret = EXIT_FAIL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:nqh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case OPT_OLDER:
            if (parse_duration(optarg, "--older-than", &o.older_than, &err) < 0)
                goto usage;
            break;
        case OPT_MAX_FREED:
            if (parse_size(optarg, "--max-freed", &o.max_freed, &err) < 0)
                goto usage;
            break;
        case OPT_KEEP_SIZE:
            if (parse_size(optarg, "--keep-size", &o.keep_size, &err) < 0)
                goto usage;
            break;
        case 'n':
            o.dry_run = true;
            break;
        case OPT_JSON:
            rep.json = true;
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(gc_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("gc", c, argv, opts);
        }
    }
    if (optind < argc) {
        cli_settings_release(&s);
        return cli_usage_error("gc", "unexpected argument '%s'", argv[optind]);
    }
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return settings_error("gc", err);
    }
    struct store *st = NULL;
    int r = open_existing("gc", s.store, &st);
    if (r != 0) {
        if (r > 0)
            fprintf(stderr, "runix gc: there is no store at %s: nothing to collect\n", s.store);
        cli_settings_release(&s);
        return r > 0 ? EXIT_OK : EXIT_FAIL;
    }
    if (rep.json) {
        rep.paths = json_array();
        rep.roots = json_array();
    }
    o.on_path = on_path;
    o.on_root = on_root;
    o.ctx = &rep;
    struct store_gc_result res;
    if (store_gc(st, &o, &res, &err) < 0) {
        fflush(stdout);
        cli_cmd_error("gc", "%s (deleted %zu paths before that; run 'runix gc' again to finish)",
                      err->msg, res.npaths);
        rx_error_free(err);
        ret = EXIT_FAIL;
    } else {
        ret = finish(&rep, "deleted", "would delete", o.dry_run, &res);
    }
    json_decref(rep.paths);
    json_decref(rep.roots);
    store_close(st);
    cli_settings_release(&s);
    return ret;
usage:
    cli_settings_release(&s);
    ret = cli_usage_error("gc", "%s", err->msg);
    rx_error_free(err);
    return ret;
}

/* ---- runix store ------------------------------------------------------------ */

static const char delete_usage[] =
    "usage: runix store delete [OPTIONS] STOREPATH...\n"
    "\n"
    "Delete the store paths, if nothing alive needs them: no GC root keeps them and\n"
    "no other valid path references them.  Otherwise nothing is deleted, and what\n"
    "keeps each one alive is named.  Each deleted path is printed on stdout.\n"
    "\n"
    "      --force               delete them with every path that references them,\n"
    "                            and drop the runix roots that held any of those;\n"
    "                            paths a running program uses are still refused\n"
    "  -n, --dry-run             delete nothing: print what would be deleted\n"
    "      --store DIR           the store root\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when the paths were deleted, 1 when refused or failed, 2 for a\n"
    "bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix store delete /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix store delete --force --dry-run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

static const char destroy_usage[] =
    "usage: runix store destroy [OPTIONS]\n"
    "\n"
    "Remove the whole store: every store path, the database, the roots and runix's\n"
    "own files (R/nix, and the root directory R itself if that leaves it empty).\n"
    "Refused while another runix process uses the store or a program runs from it.\n"
    "On a terminal it asks you to type the store's path to confirm; elsewhere it\n"
    "needs --yes.\n"
    "\n"
    "  -y, --yes                 do not ask\n"
    "      --store DIR           the store root\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when the store is gone (or there was none), 1 when refused or\n"
    "failed, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix store destroy\n"
    "  runix store destroy --store /tmp/store --yes\n";

static int store_delete_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"force", no_argument, NULL, OPT_FORCE},
        {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool force = false, dry_run = false;
    struct rx_error *err = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:nqh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case OPT_FORCE:
            force = true;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(delete_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("store delete", c, argv, opts);
        }
    }
    if (optind == argc) {
        cli_settings_release(&s);
        return cli_usage_error("store delete", "expected at least one STOREPATH");
    }
    size_t n = (size_t)(argc - optind);
    _cleanup_free_ struct store_path *paths = xcalloc(n, sizeof *paths);
    for (size_t i = 0; i < n; i++) {
        const char *a = argv[optind + (int)i];
        if (store_path_parse(a, strlen(a), &paths[i], &err) < 0) {
            cli_settings_release(&s);
            int r = cli_usage_error("store delete", "%s", err->msg);
            rx_error_free(err);
            return r;
        }
    }
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return settings_error("store delete", err);
    }
    struct store *st = NULL;
    int r = open_existing("store delete", s.store, &st);
    if (r != 0) {
        if (r > 0) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&paths[0], full);
            cli_cmd_error("store delete", "'%s' is not in the store %s: there is no store there",
                          full, s.store);
        }
        cli_settings_release(&s);
        return EXIT_FAIL;
    }
    struct report rep = {0};
    struct store_gc_result res;
    char *why = NULL;
    int ret = EXIT_FAIL;
    r = store_delete(st, paths, n, force, dry_run, on_path, &rep, &res, &why, &err);
    if (r < 0) {
        fflush(stdout);
        cli_cmd_error("store delete", "%s", err->msg);
        rx_error_free(err);
    } else if (r > 0) {
        cli_cmd_error("store delete", "not deleting anything:");
        fprintf(stderr, "%s\n", why);
        fprintf(stderr, "%s",
                force ? "stop the programs using them first\n"
                      : "remove those roots or referrers first, or use --force to delete the "
                        "paths with everything that references them\n");
        free(why);
    } else {
        ret = finish(&rep, "deleted", "would delete", dry_run, &res);
    }
    store_close(st);
    cli_settings_release(&s);
    return ret;
}

/* Ask on the terminal to type root; true when the answer is it. */
static bool confirm(const char *root, const char *given)
{
    fprintf(stderr,
            "This removes the store %s and everything in it, for good.\n"
            "Type the store's path to confirm: ",
            root);
    fflush(stderr);
    char line[4096];
    if (!fgets(line, sizeof line, stdin))
        return false;
    line[strcspn(line, "\n")] = '\0';
    return strcmp(line, root) == 0 || strcmp(line, given) == 0;
}

static int store_destroy_cmd(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool yes = false;
    struct rx_error *err = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:yqh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case 'y':
            yes = true;
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(destroy_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("store destroy", c, argv, opts);
        }
    }
    if (optind < argc) {
        cli_settings_release(&s);
        return cli_usage_error("store destroy", "unexpected argument '%s'", argv[optind]);
    }
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return settings_error("store destroy", err);
    }
    if (!yes && !isatty(STDIN_FILENO)) {
        cli_cmd_error("store destroy",
                      "refusing to remove the store %s without confirmation: stdin is not a "
                      "terminal; pass --yes to remove it",
                      s.store);
        cli_settings_release(&s);
        return EXIT_FAIL;
    }
    struct store *st = NULL;
    int r = open_existing("store destroy", s.store, &st);
    if (r != 0) {
        if (r > 0)
            fprintf(stderr, "runix store destroy: there is no store at %s\n", s.store);
        cli_settings_release(&s);
        return r > 0 ? EXIT_OK : EXIT_FAIL;
    }
    char *why = NULL;
    int ret = EXIT_FAIL;
    r = store_destroy_check(st, &why, &err);
    if (r < 0) {
        cli_cmd_error("store destroy", "%s", err->msg);
        rx_error_free(err);
    } else if (r > 0) {
        cli_cmd_error("store destroy", "not removing anything: %s", why);
        free(why);
    } else if (!yes && !confirm(store_root(st), s.store)) {
        cli_cmd_error("store destroy", "not confirmed: the store %s stays", store_root(st));
    } else if (store_destroy(st, &err) < 0) {
        cli_cmd_error("store destroy", "%s", err->msg);
        rx_error_free(err);
    } else {
        fprintf(stderr, "removed the store %s\n", store_root(st));
        ret = EXIT_OK;
    }
    store_close(st);
    cli_settings_release(&s);
    return ret;
}

static const char store_intro[] =
    "usage: runix store COMMAND [ARGS...]\n"
    "\n"
    "Remove things from the local store by hand ('runix gc' removes what is dead).\n";

static const char store_examples[] =
    "\n"
    "Examples:\n"
    "  runix store delete /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix store destroy --yes\n";

static const struct cli_command store_commands[] = {
    {"delete", store_delete_cmd, "delete store paths nothing needs (or, --force, with what needs them)", 0},
    {"destroy", store_destroy_cmd, "remove the whole store", 0},
};

int cmd_store(int argc, char **argv)
{
    return cli_dispatch("runix store", store_intro, store_examples, store_commands,
                        ARRAY_SIZE(store_commands), argc, argv);
}
