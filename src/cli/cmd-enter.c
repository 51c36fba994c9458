/*
 * runix enter: a shell (or a command) in which /nix is the runix root,
 * read-write, so that real Nix uses the runix store as a single-user
 * install (docs/enter.md).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "cli-run.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-sig.h"
#include "run-enter.h"
#include "store-index.h"
#include "store-path.h"
#include "util-buf.h"
#include "util-mem.h"

#include "banned.h"

/* Shells report these when a command cannot be found or run. */
enum { EXIT_NOT_EXECUTABLE = 126, EXIT_NOT_FOUND = 127 };

enum { OPT_WITH = 0x200, OPT_GPU, OPT_OFFLINE };

static const char enter_usage[] =
    "usage: runix enter [OPTIONS] [COMMAND [ARGS...]]\n"
    "\n"
    "Start $SHELL (or /bin/sh), or COMMAND, in a view of the system in which\n"
    "/nix is the runix store's root, read-write: its store, its database\n"
    "(var/nix/db), its GC roots and profiles.  Everything else is the host's.\n"
    "Real Nix then uses the runix store as a single-user install: the host's\n"
    "own Nix (/usr/bin/nix-build) or one fetched with --with.  What Nix builds,\n"
    "substitutes or collects there is registered in the same database, and its\n"
    "roots (result links, profiles) keep paths alive for 'runix gc' too.\n"
    "\n"
    "NIX_CONF_DIR is /nix/etc/nix, whose nix.conf runix writes on every entry\n"
    "(unless its first line was removed): no build users, the Nix sandbox on\n"
    "where nested user namespaces work, runix's caches and trusted keys as\n"
    "substituters and trusted-public-keys.\n"
    "\n"
    "/run/opengl-driver shows /nix/var/nix/opengl-driver when that has a lib/;\n"
    "--gpu fills it first with links to the host's GPU libraries, so that\n"
    "programs from nixpkgs find the host's driver.\n"
    "\n"
    "Options (before COMMAND):\n"
    "      --with STOREPATH      fetch STOREPATH's closure if needed and put its bin/\n"
    "                            on PATH (repeatable), e.g. a Nix from a cache\n"
    "      --gpu                 link the host's GPU libraries (from its loader cache,\n"
    "                            `ldconfig -p`; $RUNIX_LD_CACHE names another cache\n"
    "                            file) into /run/opengl-driver/lib\n"
    "      --offline             never use the network for --with\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: COMMAND's own (or the shell's); 126 or 127 when it cannot be\n"
    "run or found; 1 when runix itself fails, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix enter\n"
    "  runix enter nix-store --verify --check-contents\n"
    "  runix enter --with /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10 hello\n"
    "  runix enter --gpu ls /run/opengl-driver/lib\n";

struct enter_ctx {
    struct cli_settings s;
    struct store_path *with;
    size_t nwith;
    bool gpu, offline;
    char *root; /* canonical */
};

static void ctx_release(struct enter_ctx *c)
{
    cli_settings_release(&c->s);
    free(c->with);
    free(c->root);
}

/* 0: go on; 1: the help was printed; -1: a usage error was said. */
static int parse_args(struct enter_ctx *c, int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"with", required_argument, NULL, OPT_WITH},
        {"gpu", no_argument, NULL, OPT_GPU},
        {"offline", no_argument, NULL, OPT_OFFLINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int o;
    optind = 0;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&c->s, o, optarg))
            continue;
        switch (o) {
        case 'h':
            return cli_print_help(enter_usage), 1;
        case OPT_GPU:
            c->gpu = true;
            break;
        case OPT_OFFLINE:
            c->offline = true;
            break;
        case OPT_WITH: {
            struct rx_error *err = NULL;
            c->with = xrealloc(c->with, (c->nwith + 1) * sizeof *c->with);
            if (store_path_parse(optarg, strlen(optarg), &c->with[c->nwith], &err) < 0) {
                cli_usage_error("enter", "--with '%s': %s", optarg, err->msg);
                rx_error_free(err);
                return -1;
            }
            c->nwith++;
            break;
        }
        default:
            cli_option_error("enter", o, argv, opts);
            return -1;
        }
    }
    return 0;
}

/* The caches' URLs and the trusted keys, space-separated, for nix.conf. */
static void nix_conf_lists(const struct cli_settings *s, char **subst, char **keys)
{
    struct rx_buf b = RX_BUF_INIT(1u << 20), k = RX_BUF_INIT(1u << 20);
    bool full = false;
    for (size_t i = 0; i < s->ncaches; i++)
        full |= (i && rx_buf_append(&b, " ", 1) < 0) ||
                rx_buf_append(&b, s->caches[i].url, strlen(s->caches[i].url)) < 0;
    for (size_t i = 0; i < s->keys.n; i++) {
        char text[SIG_STR_MAX];
        public_key_format(&s->keys.keys[i], text);
        full |= (i && rx_buf_append(&k, " ", 1) < 0) || rx_buf_append(&k, text, strlen(text)) < 0;
    }
    if (full)
        cli_error("warning: too many caches or keys for nix.conf; some are left out");
    *subst = rx_buf_detach(&b, NULL);
    *keys = rx_buf_detach(&k, NULL);
}

/* The store root, which must exist: Nix inside needs its database. */
static int open_root(struct enter_ctx *c)
{
    struct rx_error *err = NULL;
    int fd = store_root_open(c->s.store, &c->root, &err);
    if (fd >= 0) {
        close(fd);
        return EXIT_OK;
    }
    if (err->code == ENOENT) {
        cli_cmd_error("enter", "no runix store at '%s': %s; fetch something into it first "
                               "('runix fetch STOREPATH'), or name another with --store",
                      c->s.store, strerror(ENOENT));
        rx_error_free(err);
        return EXIT_FAIL;
    }
    return cli_fail(err);
}

static int enter_and_exec(struct enter_ctx *c, char **cmd)
{
    struct rx_error *err = NULL;
    if (c->gpu) {
        size_t n;
        if (enter_gpu_fill(c->root, getenv("RUNIX_LD_CACHE"), &n, &err) < 0)
            return rx_error_wrap(&err, "--gpu"), cli_fail(err);
        if (n == 0)
            cli_error("warning: --gpu: the host's loader cache lists no GPU libraries");
    }
    _cleanup_free_ char *subst = NULL, *keys = NULL;
    nix_conf_lists(&c->s, &subst, &keys);
    char *warning = NULL;
    if (enter_view(c->root, &warning, &err) < 0)
        return cli_fail(err);
    if (warning) {
        cli_error("warning: %s", warning);
        free(warning);
    }
    /* In the view, /nix is the root's nix/. */
    if (enter_write_nix_conf("", enter_nested_sandbox_works("/nix/var/runix/enter-sandbox"),
                             subst, keys, &err) < 0)
        return cli_fail(err);
    setenv("NIX_CONF_DIR", "/nix/etc/nix", 1);
    static char *sh[2];
    if (!cmd[0]) {
        const char *shell = getenv("SHELL");
        sh[0] = (char *)(shell && *shell ? shell : "/bin/sh");
        cmd = sh;
    }
    fflush(NULL);
    execvp(cmd[0], cmd);
    int e = errno;
    cli_cmd_error("enter", "cannot run '%s': %s", cmd[0], strerror(e));
    return e == ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
}

int cmd_enter(int argc, char **argv)
{
    struct enter_ctx c = {0};
    int r = parse_args(&c, argc, argv);
    if (r != 0) {
        ctx_release(&c);
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    }
    struct rx_error *err = NULL;
    int ret;
    if (cli_settings_finish(&c.s, &err) < 0) {
        if (err->code != RX_EUSAGE) {
            ret = cli_fail(err);
            goto out;
        }
        ret = cli_usage_error("enter", "%s", err->msg);
        rx_error_free(err);
        goto out;
    }
    if (c.nwith && (ret = cli_run_with("enter", &c.s, c.with, c.nwith, c.offline)) != EXIT_OK)
        goto out;
    if ((ret = open_root(&c)) != EXIT_OK)
        goto out;
    ret = enter_and_exec(&c, argv + optind);
out:
    ctx_release(&c);
    return ret;
}
