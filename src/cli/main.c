/* runix's entry point and command table, shared by runix and runix-core. */
#include "config.h"

#include <dlfcn.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include "cli-bundle.h"
#include "cli-dist.h"
#include "cli-settings.h"
#include "cli.h"
#include "util-install.h"
#include "util-mem.h"
#include "util-text.h"

#include "banned.h"

const char *cli_progname = "runix";
mode_t cli_umask;

static const char main_usage[] =
    "usage: runix [GLOBAL OPTIONS] COMMAND [ARGS...]\n"
    "       runix --version | --help\n"
    "\n"
    "Run software from Nix binary caches without installing Nix and without root.\n"
    "\n"
    "Global options go before the command and mean what they mean after it (for\n"
    "fetch, run, shell and doctor; --trusted-key for narinfo verify too):\n"
    CLI_SETTINGS_USAGE
    "  -V, --version             print runix's version\n"
    "  -h, --help                show this help\n";

static const char main_examples[] =
    "\n"
    "Examples:\n"
    "  runix run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix --store /tmp/store fetch /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix doctor\n"
    "  runix help run\n";

/*
 * The CMD_CORE commands are not linked into the front: it execs runix-core
 * for them and never calls their functions, which are NULL there.
 */
#pragma weak cmd_doctor
#pragma weak cmd_enter
#pragma weak cmd_fetch
#pragma weak cmd_nar
#pragma weak cmd_narinfo
#pragma weak cmd_trust
#pragma weak cmd_generate
#pragma weak cmd_install
#pragma weak cmd_uninstall
#pragma weak cmd_upgrade
#pragma weak cmd_roots
#pragma weak cmd_list
#pragma weak cmd_index
#pragma weak cmd_gc
#pragma weak cmd_store
#pragma weak cmd_verify
#pragma weak cmd_self
#pragma weak cmd_bundle
#pragma weak cmd_export

static void print_version(void)
{
    printf("runix %s\n", RUNIX_VERSION);
}

/* `runix version`, the same as `runix --version`. */
static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs("usage: runix version\n"
              "\n"
              "Print runix's version, as 'runix --version' does.\n"
              "\n"
              "Examples:\n"
              "  runix version\n"
              "  runix --version\n",
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
    {"boot", cmd_boot, "boot a closure's init (NixOS, systemd) as pid 1 of a container", 0},
    {"enter", cmd_enter, "start a shell in which /nix is the runix store, for real Nix",
     CMD_CORE},
    {"doctor", cmd_doctor, "report the store, caches and which engines work here", CMD_CORE},
    {"fetch", cmd_fetch, "download store paths' closures from binary caches into the store",
     CMD_CORE},
    {"verify", cmd_verify, "check the store's paths against their NAR hashes, and repair them",
     CMD_CORE},
    {"nar", cmd_nar, "create, unpack, hash and list Nix archives (NAR)", CMD_CORE | CMD_GROUP},
    {"narinfo", cmd_narinfo, "check narinfo files and their signatures",
     CMD_CORE | CMD_GROUP},
    {"trust", cmd_trust, "trust the caches and keys a distributable brings", CMD_CORE},
    {"generate", cmd_generate, "write a distributable for store paths or installables",
     CMD_CORE},
    {"install", cmd_install, "install a distributable's apps as commands", CMD_CORE},
    {"uninstall", cmd_uninstall, "remove an installed tool's commands", CMD_CORE},
    {"upgrade", cmd_upgrade, "download installed tools again and switch to what changed",
     CMD_CORE},
    {"roots", cmd_roots, "list the roots that keep store paths alive; add and remove them",
     CMD_CORE},
    {"list", cmd_list, "list the store's paths, their sizes and what keeps them", CMD_CORE},
    {"ls", cmd_list, "the same as list", CMD_CORE},
    {"index", cmd_index, "download or build indexes of packages by name and file",
     CMD_CORE | CMD_GROUP},
    {"locate", cmd_locate, "list the packages of the index that have a file", 0},
    {",", cmd_comma, "run a program by its name, from the package the index has it in", 0},
    {"gc", cmd_gc, "delete the store paths nothing keeps alive", CMD_CORE},
    {"store", cmd_store, "delete store paths by hand, or the whole store", CMD_CORE | CMD_GROUP},
    {"self", cmd_self, "show, update or uninstall this runix; its man page and completions",
     CMD_CORE | CMD_GROUP},
    {"bundle", cmd_bundle, "write one executable that runs an app offline, runix included",
     CMD_CORE},
    {"export", cmd_export, "write a closure as a root file system or an OCI image", CMD_CORE},
    {"version", cmd_version, "print runix's version", 0},
};

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
    fprintf(stderr, "; see '%s %s --help'\n", cli_progname, cmd);
    va_end(ap);
    return EXIT_USAGE;
}

/* The long option in opts that arg ("--name" or "--name=value") names exactly, or NULL. */
static const struct option *long_option(const char *arg, const struct option *opts)
{
    if (strncmp(arg, "--", 2) != 0)
        return NULL;
    size_t n = strcspn(arg + 2, "=");
    for (const struct option *o = opts; o && o->name; o++)
        if (strncmp(o->name, arg + 2, n) == 0 && o->name[n] == '\0')
            return o;
    return NULL;
}

int cli_option_error(const char *cmd, int c, char **argv, const struct option *opts)
{
    /* The element getopt_long stopped at: the option, unless it was a short one inside a
     * cluster ("-qx"), where optopt says which. */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    bool is_long = arg && strncmp(arg, "--", 2) == 0 && arg[2];
    int n = is_long ? (int)strcspn(arg, "=") : 0;
    if (c == ':') {
        if (is_long)
            return cli_usage_error(cmd, "option '%.*s' needs a value", n, arg);
        return cli_usage_error(cmd, "option '-%c' needs a value", optopt);
    }
    if (optopt != 0 && is_long && arg[n] == '=') {
        const struct option *o = long_option(arg, opts);
        if (o && o->val == optopt && o->has_arg == no_argument)
            return cli_usage_error(cmd, "option '%.*s' takes no value", n, arg);
    }
    if (optopt == 0 && is_long) {
        /* Unknown, or an abbreviation of several. */
        size_t k = 0;
        for (const struct option *o = opts; o && o->name; o++)
            if (strncmp(o->name, arg + 2, (size_t)n - 2) == 0)
                k++;
        if (k > 1)
            return cli_usage_error(cmd, "option '%.*s' is ambiguous", n, arg);
        return cli_usage_error(cmd, "unknown option '%.*s'", n, arg);
    }
    if (optopt > 0 && optopt < 0x80)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg ? arg : "");
}

int cli_print_help(const char *usage)
{
    fputs(usage, stdout);
    return EXIT_OK;
}

/*
 * A group's help: intro (usage and description), its commands, then the
 * examples, which begin with a blank line and "Examples:".
 */
static void print_group_help(const char *group, const char *intro, const char *examples,
                             const struct cli_command *cmds, size_t n, FILE *f)
{
    fputs(intro, f);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "  %-12s %s\n", "help", "show a command's help, as COMMAND --help does");
    fprintf(f, "\nRun '%s COMMAND --help' for a command's options.\n", group);
    fputs(examples, f);
}

const struct cli_command *cli_command_table(size_t *n)
{
    *n = ARRAY_SIZE(commands);
    return commands;
}

void cli_print_main_help(void)
{
    print_group_help("runix", main_usage, main_examples, commands, ARRAY_SIZE(commands), stdout);
}

static void print_help_usage(const char *group, const struct cli_command *cmds)
{
    printf("usage: %s help [COMMAND...]\n"
           "\n"
           "Print a command's help, the same text as '%s COMMAND --help'; without a\n"
           "command, the list of commands.\n"
           "\n"
           "Examples:\n"
           "  %s help\n"
           "  %s help %s\n",
           group, group, group, group, cmds[0].name);
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
        size_t d = edit_distance(name, cmds[i].name, 3);
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

static const struct cli_command *find_command(const char *name, const struct cli_command *cmds,
                                              size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

static int not_a_command(const char *group, const char *name, const struct cli_command *cmds,
                         size_t n)
{
    const char *guess = closest_command(name, cmds, n);
    if (guess)
        fprintf(stderr, "%s: '%s' is not a command; did you mean '%s'? (see '%s --help')\n",
                group, name, guess, group);
    else
        fprintf(stderr, "%s: '%s' is not a command; see '%s --help'\n", group, name, group);
    return EXIT_USAGE;
}

int cli_dispatch(const char *group, const char *intro, const char *examples,
                 const struct cli_command *cmds, size_t n, int argc, char **argv)
{
    if (argc < 2) {
        print_group_help(group, intro, examples, cmds, n, stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_group_help(group, intro, examples, cmds, n, stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "help") == 0) {
        if (argc == 2) {
            print_group_help(group, intro, examples, cmds, n, stdout);
            return EXIT_OK;
        }
        if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0 ||
            strcmp(argv[2], "help") == 0) {
            print_help_usage(group, cmds);
            return EXIT_OK;
        }
        const struct cli_command *cmd = find_command(argv[2], cmds, n);
        if (!cmd)
            return not_a_command(group, argv[2], cmds, n);
        /* "help CMD [SUB...]" is "CMD [SUB...] --help". */
        int hargc = argc - 2 + 1;
        char **hargv = xcalloc((size_t)hargc + 1, sizeof *hargv);
        for (int i = 2; i < argc; i++)
            hargv[i - 2] = argv[i];
        hargv[hargc - 1] = (char *)"--help";
        int r = run_command(cmd, hargc, hargv, argv);
        free(hargv);
        return r;
    }
    const struct cli_command *cmd = find_command(name, cmds, n);
    if (cmd)
        return run_command(cmd, argc - 1, argv + 1, argv);
    return not_a_command(group, name, cmds, n);
}

/* The options every store-and-cache command shares (cli-settings.h), as global options. */
static const struct option global_opts[] = {
    CLI_SETTINGS_OPTIONS,
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/*
 * "runix [GLOBAL OPTIONS] COMMAND [ARGS...]": answer --version and --help,
 * and move the global options after the command's name (after the
 * subcommand's, for a CMD_GROUP command), where the command parses them as
 * its own.  Returns an exit code when done (a usage error, or --version),
 * else -1 with *out the command line to dispatch (owned; its strings are
 * argv's).
 */
static int global_options(int argc, char **argv, char ***out)
{
    char **globals = xcalloc((size_t)argc + 1, sizeof *globals);
    int ng = 0, i = 1;
    optind = 1;
    for (;;) {
        int c = getopt_long(argc, argv, "+:qVh", global_opts, NULL);
        if (c == -1)
            break;
        if (c == 'V') {
            free(globals);
            print_version();
            return EXIT_OK;
        }
        if (c == 'h') {
            free(globals);
            print_group_help("runix", main_usage, main_examples, commands,
                             ARRAY_SIZE(commands), stdout);
            return EXIT_OK;
        }
        if (c == '?' || c == ':') {
            free(globals);
            const char *arg = argv[optind - 1];
            if (c == ':')
                fprintf(stderr, "%s: option '%.*s' needs a value; see '%s --help'\n",
                        cli_progname, (int)strcspn(arg, "="), arg, cli_progname);
            else if (optopt > 0 && optopt < 0x80 && strncmp(arg, "--", 2) != 0)
                fprintf(stderr, "%s: unknown option '-%c'; see '%s --help'\n", cli_progname,
                        optopt, cli_progname);
            else
                fprintf(stderr, "%s: unknown option '%.*s'; see '%s --help'\n", cli_progname,
                        (int)strcspn(arg, "="), arg, cli_progname);
            return EXIT_USAGE;
        }
        /* The elements this option took, as given ("--store DIR", "--store=DIR", "-q"). */
        for (; i < optind; i++)
            globals[ng++] = argv[i];
    }
    int cmd = optind; /* past a "--" that ended the global options */
    char **av = xcalloc((size_t)argc + 1, sizeof *av);
    int k = 0;
    av[k++] = argv[0];
    if (cmd < argc) {
        av[k++] = argv[cmd++];
        const struct cli_command *row = find_command(av[1], commands, ARRAY_SIZE(commands));
        if (row && (row->flags & CMD_GROUP) && cmd < argc && argv[cmd][0] != '-')
            av[k++] = argv[cmd++];
    } else if (ng) {
        free(globals);
        free(av);
        fprintf(stderr, "%s: expected a command after the global options; see '%s --help'\n",
                cli_progname, cli_progname);
        return EXIT_USAGE;
    }
    for (int j = 0; j < ng; j++)
        av[k++] = globals[j];
    while (cmd < argc)
        av[k++] = argv[cmd++];
    av[k] = NULL;
    free(globals);
    optind = 1;
    *out = av;
    return -1;
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
#if !RUNIX_ONE_FILE
    /* (A static runix never has it: the loader preloads nothing into a static program.) */
    void (*disable)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "runix_preload_disable");
    if (disable)
        disable();
#endif

    /* One umask read, before any thread exists (umask() has no getter). */
    cli_umask = umask(022);
    umask(cli_umask);

    if (cli_binary_init() < 0)
        return EXIT_FAIL;
    /* Every command's option errors are ours (cli_option_error), not getopt's. */
    opterr = 0;
    /*
     * A bundle (cli-bundle.h) runs its app: 'runix run ROOT ARGS...', its
     * closure imported from itself.  Its own import child, and whoever
     * sets RUNIX_AS_RUNIX, get the runix inside instead; the variable goes
     * no further than here.
     */
    struct cli_bundle bundle;
    _cleanup_free_ char **bundle_argv = NULL;
    if (getenv("RUNIX_AS_RUNIX")) {
        unsetenv("RUNIX_AS_RUNIX");
    } else {
        struct rx_error *err = NULL;
        int b = cli_bundle_detect(&bundle, &err);
        if (b < 0) {
            cli_error("%s; download the bundle again", err->msg);
            rx_error_free(err);
            return EXIT_FAIL;
        }
        if (b > 0) {
            bundle_argv = cli_bundle_argv(&bundle, argc, argv, &argc);
            argv = bundle_argv;
            cli_running_bundle = &bundle;
            int r = cli_dispatch("runix", main_usage, main_examples, commands,
                                 ARRAY_SIZE(commands), argc, argv);
            cli_bundle_release(&bundle);
            return r;
        }
    }
    /* A distributable run by its first line ("#!/usr/bin/env runix"): the kernel
     * gives its path as argv[1].  That is 'runix run FILE -- ARGS...', so that
     * every argument after it, '--' included, is the program's. */
    _cleanup_free_ char **shebang = NULL;
    if (argc >= 2 && argv[1][0] != '-' && !find_command(argv[1], commands, ARRAY_SIZE(commands)) &&
        cli_dist_file_sniff(argv[1])) {
        shebang = xcalloc((size_t)argc + 3, sizeof *shebang);
        shebang[0] = argv[0];
        shebang[1] = (char *)"run";
        shebang[2] = argv[1];
        shebang[3] = (char *)"--";
        for (int i = 2; i < argc; i++)
            shebang[i + 2] = argv[i];
        argc += 2;
        argv = shebang;
    }
    /* Installed or linked as ',' (as comma is): ', PROGRAM ARGS' is 'runix , PROGRAM ARGS'. */
    _cleanup_free_ char **comma = NULL;
    const char *base = strrchr(argv[0], '/');
    if (strcmp(base ? base + 1 : argv[0], ",") == 0) {
        comma = xcalloc((size_t)argc + 2, sizeof *comma);
        comma[0] = argv[0];
        comma[1] = (char *)",";
        for (int i = 1; i < argc; i++)
            comma[i + 1] = argv[i];
        argc++;
        argv = comma;
    }
    char **av = NULL;
    int r = global_options(argc, argv, &av);
    if (r >= 0)
        return r;
    int ac = 0;
    while (av[ac])
        ac++;
    r = cli_dispatch("runix", main_usage, main_examples, commands, ARRAY_SIZE(commands), ac, av);
    free(av);
    return r;
}
