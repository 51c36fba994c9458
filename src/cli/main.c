/* runix's entry point and command table, shared by runix and runix-core. */
#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "cli-dist.h"
#include "cli.h"
#include "util-install.h"
#include "util-mem.h"

#include "banned.h"

const char *cli_progname = "runix";
mode_t cli_umask;

static const char main_usage[] =
    "usage: runix [--version] [--help] COMMAND [ARGS...]\n"
    "\n"
    "Run software from Nix binary caches without installing Nix.\n";

/*
 * The CMD_CORE commands are not linked into the front: it execs runix-core
 * for them and never calls their functions, which are NULL there.
 */
#pragma weak cmd_doctor
#pragma weak cmd_fetch
#pragma weak cmd_nar
#pragma weak cmd_narinfo
#pragma weak cmd_trust
#pragma weak cmd_generate
#pragma weak cmd_install
#pragma weak cmd_uninstall
#pragma weak cmd_upgrade

static void print_version(void)
{
    printf("runix %s\n", RUNIX_VERSION);
}

/* `runix version`, the same as `runix --version`. */
static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs("usage: runix version\n\nPrint runix's version, as 'runix --version' does.\n",
              stdout);
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    print_version();
    return EXIT_OK;
}

static const struct cli_command commands[] = {
    {"run", cmd_run, "run a program from a store path, fetching its closure if needed", 0},
    {"shell", cmd_shell, "start a shell with store paths' programs on PATH", 0},
    {"doctor", cmd_doctor, "report the store, caches and which engines work here", CMD_CORE},
    {"fetch", cmd_fetch, "download store paths' closures from binary caches into the store",
     CMD_CORE},
    {"nar", cmd_nar, "create, unpack, hash and list Nix archives (NAR)", CMD_CORE},
    {"narinfo", cmd_narinfo, "check narinfo files and their signatures", CMD_CORE},
    {"trust", cmd_trust, "trust the caches and keys a distributable brings", CMD_CORE},
    {"generate", cmd_generate, "write a distributable for store paths or installables",
     CMD_CORE},
    {"install", cmd_install, "install a distributable's apps as commands", CMD_CORE},
    {"uninstall", cmd_uninstall, "remove an installed tool's commands", CMD_CORE},
    {"upgrade", cmd_upgrade, "download installed tools again and switch to what changed",
     CMD_CORE},
    {"version", cmd_version, "print runix's version", 0},
};

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int cli_core_path(char *out, size_t outsz, struct rx_error **err)
{
    return rx_install_find(RX_INSTALL_CORE, out, outsz, err);
}

/* "runix[ CMD]: <message>" on stderr, one line. */
static void report(const char *cmd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void report(const char *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "%s%s%s: ", cli_progname, cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(NULL, fmt, ap);
    va_end(ap);
}

void cli_cmd_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(cmd, fmt, ap);
    va_end(ap);
}

int cli_fail(struct rx_error *err)
{
    cli_error("%s", err ? err->msg : "unknown error");
    rx_error_free(err);
    return EXIT_FAIL;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s %s: ", cli_progname, cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s %s --help' for more information.\n", cli_progname, cmd);
    va_end(ap);
    return EXIT_USAGE;
}

int cli_print_help(const char *usage)
{
    fputs(usage, stdout);
    return EXIT_OK;
}

static void print_group_help(const char *group, const char *intro,
                             const struct cli_command *cmds, size_t n, FILE *f)
{
    fputs(intro, f);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\nRun '%s COMMAND --help' for a command's options.\n", group);
}

/*
 * The edit distance of a and b, counting a swap of two neighbouring
 * characters as one edit (optimal string alignment), capped: any distance
 * above 2 is 3.  Names are short, so the fixed rows are enough; longer
 * strings count as far apart.
 */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 32 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN)
        return 3;
    size_t d[MAXLEN + 1][MAXLEN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb] > 2 ? 3 : d[la][lb];
}

/*
 * The command closest to name: the first one edit away (or none), else the
 * first that name begins (two characters at least: 'narin' is 'narinfo',
 * not 'nar'), else the first two edits away.  Never more edits than name
 * has characters.  NULL when none is close.
 */
static const char *closest_command(const char *name, const struct cli_command *cmds, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3, len = strlen(name);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, cmds[i].name);
        if (d < best_d && d < len) {
            best = cmds[i].name;
            best_d = d;
        }
    }
    if (best_d < 2 || len < 2)
        return best;
    for (size_t i = 0; i < n; i++)
        if (strncmp(cmds[i].name, name, len) == 0)
            return cmds[i].name;
    return best;
}

static int run_command(const struct cli_command *cmd, int argc, char **argv, char **group_argv)
{
    if (cmd->flags & CMD_CORE)
        return cli_run_core_command(cmd, argc, argv, group_argv);
    return cmd->fn(argc, argv);
}

int cli_dispatch(const char *group, const char *intro, const struct cli_command *cmds,
                 size_t n, int argc, char **argv)
{
    if (argc < 2) {
        print_group_help(group, intro, cmds, n, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2 && strcmp(name, "help") == 0) {
            for (size_t i = 0; i < n; i++) {
                if (strcmp(cmds[i].name, argv[2]) == 0) {
                    char *args[] = {argv[2], (char *)"--help", NULL};
                    return run_command(&cmds[i], 2, args, argv);
                }
            }
        }
        print_group_help(group, intro, cmds, n, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return run_command(&cmds[i], argc - 1, argv + 1, argv);
    const char *guess = closest_command(name, cmds, n);
    if (guess)
        fprintf(stderr, "%s: '%s' is not a command; did you mean '%s'?\nSee '%s --help'.\n",
                group, name, guess, group);
    else
        fprintf(stderr, "%s: '%s' is not a command. See '%s --help'.\n", group, name, group);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /*
     * Set-user-ID, set-group-ID or with file capabilities (the kernel's
     * AT_SECURE), runix would run with privileges its caller does not have,
     * yet every setting it reads (RUNIX_* variables, the store and cache
     * configuration, the programs it starts) is the caller's to choose:
     * privilege escalation for any user.  Refuse before reading any of them.
     */
    if (getauxval(AT_SECURE)) {
        fprintf(stderr, "%s: refusing to run set-user-ID, set-group-ID or with file "
                        "capabilities: its settings come from the unprivileged caller\n",
                cli_progname);
        return EXIT_FAIL;
    }

    /* Under the preload engine (runix run from a program runix runs) the library is in this
     * process too; runix's own file operations and execs must stay real. */
    void (*disable)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "runix_preload_disable");
    if (disable)
        disable();

    /* One umask read, before any thread exists (umask() has no getter). */
    cli_umask = umask(022);
    umask(cli_umask);

    if (cli_binary_init() < 0)
        return EXIT_FAIL;
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        print_version();
        return EXIT_OK;
    }
    if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 &&
        strcmp(argv[1], "-h") != 0) {
        fprintf(stderr, "runix: unknown option '%s'\n", argv[1]);
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    /* A distributable run by its first line ("#!/usr/bin/env runix"): the kernel
     * gives its path as argv[1].  That is 'runix run FILE -- ARGS...', so that
     * every argument after it, '--' included, is the program's. */
    if (argc >= 2 && !find_command(argv[1]) && cli_dist_file_sniff(argv[1])) {
        char **av = xcalloc((size_t)argc + 3, sizeof *av);
        av[0] = argv[0];
        av[1] = (char *)"run";
        av[2] = argv[1];
        av[3] = (char *)"--";
        for (int i = 2; i < argc; i++)
            av[i + 2] = argv[i];
        return cli_dispatch("runix", main_usage, commands, ARRAY_SIZE(commands), argc + 2, av);
    }
    return cli_dispatch("runix", main_usage, commands, ARRAY_SIZE(commands), argc, argv);
}
