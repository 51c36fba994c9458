/*
 * runix , PROGRAM [ARGS...]: run a program by its name, from the package of
 * the nixpkgs index whose bin/ has it.  Everything here needs libc only, so
 * the front does it all while the index's sidecar (nixdb.h) is fresh: it
 * runs what it ran before for PROGRAM while the index is unchanged, and
 * else bisects the sidecar.  A missing or stale sidecar, which only a pass
 * over the zstd-compressed database can make, sends the command to
 * runix-core (cli_index_side_ready, in cmd-index.c).
 */
#include "config.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-byname.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "dist.h"
#include "nixdb.h"
#include "util-fs.h"
#include "util-mem.h"

#include "banned.h"

#pragma weak cli_index_side_ready

static const char comma_usage[] =
    "usage: runix , [OPTIONS] PROGRAM [ARGS...]\n"
    "       runix , --print PROGRAM\n"
    "       , PROGRAM [ARGS...]            (runix installed or linked as ',')\n"
    "\n"
    "Run PROGRAM from the package that has bin/PROGRAM in the nixpkgs index,\n"
    "with no Nix evaluator: the index gives the package's store path, which is\n"
    "fetched and run as 'runix run STOREPATH/bin/PROGRAM ARGS' would.  When\n"
    "several top-level packages have it, runix asks which on a terminal and\n"
    "remembers the answer for PROGRAM; elsewhere it lists them and exits 1.\n"
    "The index comes from 'runix index update'.\n"
    "\n"
    "      --print               print the package's store path instead of running\n"
    CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix , jq --version\n"
    "  runix , --print rg\n"
    "  ln -s \"$(command -v runix)\" ~/.local/bin/, && , cowsay hi\n";

struct candidate {
    char *attr, *output; /* owned */
    struct store_path path;
};

struct bin_search {
    const char *path; /* "/bin/PROG" */
    struct candidate *c;
    size_t n;
    bool bad;
};

/* A .bins line: BASENAME PATH TYPE SIZE TOPLEVEL ATTR OUTPUT SYSTEM STOREPATH. */
static int on_bin(void *ctx, char **f, size_t n)
{
    struct bin_search *b = ctx;
    struct store_path p;
    if (n != 9 || store_path_parse(f[8], strlen(f[8]), &p, NULL) < 0) {
        b->bad = true;
        return 1;
    }
    if (strcmp(f[1], b->path) != 0 || f[2][0] == 'd' || strcmp(f[4], "1") != 0 ||
        (f[7][0] && strcmp(f[7], dist_host_system()) != 0))
        return 0;
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->c[i].attr, f[5]) == 0)
            return 0;
    b->c = xrealloc(b->c, (b->n + 1) * sizeof *b->c);
    b->c[b->n++] = (struct candidate){ xstrdup(f[5]), xstrdup(f[6]), p };
    return 0;
}

static void candidates_free(struct candidate *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].attr);
        free(c[i].output);
    }
    free(c);
}

/*
 * The top-level packages of the index with bin/prog, for this system:
 * 1 with *out set, 0 when the sidecar is missing or stale, or an exit code
 * (negated) after saying why.
 */
static int find_packages(const char *prog, const char *file, struct bin_search *b)
{
    char id[64];
    if (!file || !cli_index_identity(file, id))
        return 0;
    _cleanup_free_ char *bins = xasprintf("%s.bins", file);
    struct nixdb_side side;
    struct rx_error *err = NULL;
    int r = nixdb_side_open(bins, id, &side, &err);
    if (r <= 0) {
        if (r < 0) {
            cli_cmd_error(",", "%s", err->msg);
            rx_error_free(err);
            return -EXIT_FAIL;
        }
        return 0;
    }
    _cleanup_free_ char *want = xasprintf("/bin/%s", prog);
    b->path = want;
    int k = nixdb_side_find(&side, prog, true, on_bin, b);
    nixdb_side_close(&side);
    b->path = NULL;
    if (k < 0 || b->bad) {
        cli_cmd_error(",", "cannot read '%s'; run 'runix index update'", bins);
        return -EXIT_FAIL;
    }
    return 1;
}

static void remember(const char *prog, const char *attr, const struct store_path *p,
                     const char *index_file)
{
    _cleanup_free_ char *f = cli_comma_state_file(prog);
    char id[64], full[STORE_PATH_MAX + 1];
    if (!f || !cli_index_identity(index_file, id))
        return;
    store_path_format(p, full);
    _cleanup_free_ char *dir = xstrndup(f, (size_t)(strrchr(f, '/') - f));
    _cleanup_free_ char *text = xasprintf("attr %s\npath %s\nindex %s\n", attr, full, id);
    struct rx_error *err = NULL;
    if (mkdir_p_mode(dir, 0700, &err) < 0 ||
        write_data_atomic_at(AT_FDCWD, f, text, strlen(text), 0600, false, &err) < 0) {
        cli_cmd_error(",", "warning: cannot remember the choice for '%s': %s", prog, err->msg);
        rx_error_free(err);
    }
}

/* Ask on the terminal which of the candidates; -1 when no answer. */
static int ask(const char *prog, const struct candidate *c, size_t n)
{
    fprintf(stderr, "%s: several packages have bin/%s:\n", cli_progname, prog);
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&c[i].path, full);
        fprintf(stderr, "  %zu) %s.%s  %s\n", i + 1, c[i].attr, c[i].output, full);
    }
    for (int tries = 0; tries < 3; tries++) {
        fprintf(stderr, "which one (1-%zu)? ", n);
        fflush(stderr);
        char line[64];
        if (!fgets(line, sizeof line, stdin))
            return -1;
        char *end;
        long v = strtol(line, &end, 10);
        if (end != line && (*end == '\n' || *end == '\0') && v >= 1 && (size_t)v <= n)
            return (int)(v - 1);
    }
    return -1;
}

/* 'runix run [settings] STOREPATH/bin/PROG ARGS...' */
static int run_program(const struct strv *pass, const struct store_path *p, const char *prog,
                       int argc, char **argv)
{
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    _cleanup_free_ char *exe = xasprintf("%s/bin/%s", full, prog);
    int ac = 0;
    char **av = xcalloc(pass->n + (size_t)argc + 3, sizeof *av);
    av[ac++] = (char *)"run";
    for (size_t i = 0; i < pass->n; i++)
        av[ac++] = pass->v[i];
    av[ac++] = exe;
    for (int i = 0; i < argc; i++)
        av[ac++] = argv[i];
    int r = cmd_run(ac, av);
    free(av);
    return r;
}

/* The front hands the command to runix-core, whole. */
static int in_core(int argc, char **argv)
{
    _cleanup_free_ char **av = xcalloc((size_t)argc + 2, sizeof *av);
    av[0] = (char *)cli_progname;
    for (int k = 0; k < argc; k++)
        av[k + 1] = argv[k];
    return cli_run_core_command(NULL, argc, argv, av);
}

int cmd_comma(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS, {"print", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    bool print = false;
    struct cli_settings s = { 0 };
    struct strv pass = { 0 }; /* the settings options, for runix run */
    struct bin_search b = { 0 };
    _cleanup_free_ char *file = cli_index_file(CLI_DEFAULT_INDEX);
    int o, ret = EXIT_USAGE, prev = 1;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (o == 'h') {
            ret = cli_print_help(comma_usage);
            goto out;
        }
        if (o == 'p') {
            print = true;
        } else if (cli_settings_option(&s, o, optarg)) {
            for (int i = prev; i < optind; i++) /* the elements it took */
                cli_strv_push(&pass, argv[i]);
        } else {
            ret = cli_option_error(",", o, argv, opts);
            goto out;
        }
        prev = optind;
    }
    if (optind >= argc) {
        ret = cli_usage_error(",", "expected a PROGRAM to run");
        goto out;
    }
    const char *prog = argv[optind];
    if (!cli_program_name_valid(prog)) {
        ret = cli_usage_error(",", "'%s' is not a program name", prog);
        goto out;
    }
    char attr[CLI_ATTR_MAX + 1];
    struct store_path was;
    bool same, recalled = cli_comma_recall(prog, attr, &was, &same);
    /* The warm start: what ran before, from the same index. */
    if (recalled && same && !print) {
        cli_index_warn_old(",", CLI_DEFAULT_INDEX, file);
        ret = run_program(&pass, &was, prog, argc - optind - 1, argv + optind + 1);
        goto out;
    }
    if (cli_index_side_ready && (ret = cli_index_side_ready(",", CLI_DEFAULT_INDEX)) != EXIT_OK)
        goto out;
    int found = find_packages(prog, file, &b);
    if (found == 0 && !cli_index_side_ready) { /* no index, or no fresh sidecar: runix-core's */
        ret = in_core(argc, argv);
        goto out;
    }
    if (found <= 0) {
        if (found == 0)
            cli_cmd_error(",", "the sidecar of the nixpkgs index changed while it was read; "
                               "run again");
        ret = EXIT_FAIL;
        goto out;
    }
    if (!cli_index_side_ready)
        cli_index_warn_old(",", CLI_DEFAULT_INDEX, file);
    int pick = -1;
    for (size_t i = 0; recalled && b.n > 1 && i < b.n && pick < 0; i++)
        if (strcmp(b.c[i].attr, attr) == 0)
            pick = (int)i;
    ret = EXIT_FAIL;
    if (b.n == 0) {
        cli_cmd_error(",", "no top-level package in the nixpkgs index has bin/%s; 'runix "
                           "locate %s' lists every file called so",
                      prog, prog);
    } else if (b.n == 1) {
        pick = 0;
    } else if (pick < 0 && isatty(STDIN_FILENO) && isatty(STDERR_FILENO)) {
        pick = ask(prog, b.c, b.n);
        if (pick < 0)
            cli_cmd_error(",", "nothing chosen: nothing run");
    } else if (pick < 0) {
        cli_cmd_error(",", "several packages have bin/%s; run one of them:", prog);
        for (size_t i = 0; i < b.n; i++)
            fprintf(stderr, "  runix run %s#%s %s\n", CLI_DEFAULT_INDEX, b.c[i].attr, prog);
    }
    if (pick >= 0) {
        remember(prog, b.c[pick].attr, &b.c[pick].path, file);
        if (print) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&b.c[pick].path, full);
            printf("%s\n", full);
            ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
        } else {
            ret = run_program(&pass, &b.c[pick].path, prog, argc - optind - 1, argv + optind + 1);
        }
    }
out:
    candidates_free(b.c, b.n);
    cli_strv_clear(&pass);
    cli_settings_release(&s);
    return ret;
}
