#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "crypto-hash.h"
#include "util-install.h"
#include "util-mem.h"
#include "banned.h"

const char *cli_progname = "runix";
mode_t cli_umask;

static const char main_usage[] =
    "usage: runix [--version] [--help] COMMAND [ARGS...]\n"
    "\n"
    "Run software from Nix binary caches without installing Nix.\n";

#ifdef RUNIX_FRONT
/*
 * The runix binary is a small front: it runs programs itself (run, shell),
 * so that a warm start loads no network or compression libraries, and hands
 * every other command to runix-core, which has them all.
 */
static char **front_argv;

int cli_core_path(char *out, size_t outsz)
{
    return rx_install_find(RX_INSTALL_CORE, out, outsz, NULL);
}

static int exec_core(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    char core[PATH_MAX];
    if (cli_core_path(core, sizeof core) < 0) {
        cli_error("runix-core not found next to runix nor in %s; reinstall runix",
                  RUNIX_REL_LIBEXECDIR);
        return EXIT_FAIL;
    }
    execv(core, front_argv);
    cli_error("cannot run %s: %s", core, strerror(errno));
    return EXIT_FAIL;
}
#define CORE(fn) exec_core
#else
int cli_core_path(char *out, size_t outsz)
{
    ssize_t n = readlink("/proc/self/exe", out, outsz - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return 0;
}
#define CORE(fn) fn
#endif

static const struct cli_command commands[] = {
    {"run", cmd_run, "run a program from a store path, fetching its closure if needed"},
    {"shell", cmd_shell, "start a shell with store paths' programs on PATH"},
    {"doctor", CORE(cmd_doctor), "report the store, caches and which engines work here"},
    {"fetch", CORE(cmd_fetch), "download store paths' closures from binary caches into the store"},
    {"nar", CORE(cmd_nar), "create, unpack, hash and list Nix archives (NAR)"},
    {"narinfo", CORE(cmd_narinfo), "check narinfo files and their signatures"},
};

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cli_progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
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
                    return cmds[i].fn(2, args);
                }
            }
        }
        print_group_help(group, intro, cmds, n, stdout);
        return EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(cmds[i].name, name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "%s: '%s' is not a command. See '%s --help'.\n", group, name, group);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    /* One umask read, before any thread exists (umask() has no getter). */
    /* Under the preload engine (runix run from a program runix runs) the library is in this
     * process too; runix's own file operations and execs must stay real. */
    void (*disable)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "runix_preload_disable");
    if (disable)
        disable();

    cli_umask = umask(022);
    umask(cli_umask);

#ifdef RUNIX_FRONT
    front_argv = argv;
#endif
#ifndef RUNIX_FRONT
    if (crypto_init() < 0) {
        cli_error("cannot initialise libsodium");
        return EXIT_FAIL;
    }
#endif
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("runix %s\n", RUNIX_VERSION);
        return EXIT_OK;
    }
    if (argc >= 2 && argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 &&
        strcmp(argv[1], "-h") != 0) {
        fprintf(stderr, "runix: unknown option '%s'\n", argv[1]);
        fputs(main_usage, stderr);
        return EXIT_USAGE;
    }
    return cli_dispatch("runix", main_usage, commands, ARRAY_SIZE(commands), argc, argv);
}
