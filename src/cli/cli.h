/* The command layer's shared declarations: the command table, messages, exit codes. */
#pragma once
/*
 * The command-line layer: the only code that parses argv, writes to stdout
 * or chooses an exit code.
 *
 * Two binaries share it.  runix, the front users run, links only libc and
 * jansson (distributables are JSON): it runs programs itself (run, shell)
 * so that a warm start loads nothing else.
 * runix-core has every command and every library (libcurl, SQLite,
 * libsodium, the decompressors).  The front hands each command marked
 * CMD_CORE to runix-core by exec, from cli_dispatch(); the parts that differ
 * between the binaries are in cli-front.c and cli-core.c.
 *
 * Adding a new command:
 *  1. Write `int cmd_<name>(int argc, char **argv)` in cmd-<name>.c, taking
 *     argv[0] as the command's own name.  Parse options with getopt_long,
 *     with opterr = 0 and an optstring that begins with "+:", and hand
 *     '?' and ':' to cli_option_error(); answer --help with the command's
 *     usage on stdout and exit 0.  The usage ends with an "Examples:"
 *     section of commands that work as shown (t0200-cli.sh checks every
 *     command has one).
 *  2. Declare it below and add a row to the table in main.c (name,
 *     function, one-line summary, flags).  A command that needs anything
 *     beyond libc (the network, the database, signatures, compression) gets
 *     CMD_CORE and its file goes into runix-core's sources in meson.build
 *     only; declare it in the weak list in main.c too.  A command without
 *     CMD_CORE is linked into both binaries and must keep the front free of
 *     those libraries (tests/integration/t0010-front-core.sh checks it).
 *  3. Return an EXIT_* code; print errors with cli_error()/cli_fail().
 *  4. Add tests: a unit test for the logic below cli/, an integration test
 *     in tests/integration/ for the command itself, and a line in
 *     README.md's command list.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util-error.h"

/* Exit codes. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* the operation failed: bad input, failed check */
    EXIT_USAGE = 2, /* bad command line */
};

/* Flag bits of a command, as git's RUN_SETUP: what the command needs. */
enum {
    /*
     * Runs in runix-core: the front execs runix-core with the same
     * arguments.  Only rows of the top-level table may carry it.
     */
    CMD_CORE = 1 << 0,
    /*
     * A group of subcommands (runix nar hash): global options given before
     * it go after the subcommand's name.
     */
    CMD_GROUP = 1 << 1,
};

struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv); /* NULL in the front for CMD_CORE rows */
    const char *summary;
    unsigned flags; /* CMD_* */
};

/*
 * Dispatch argv[1] among cmds (argv[0] is the group's name, for messages).
 * Prints the group's help (intro, the commands, then examples, which begin
 * with "\nExamples:\n") for -h/--help, "help", or no argument (then on
 * stderr, exit 2).  "help CMD [SUB...]" runs "CMD [SUB...] --help".
 */
int cli_dispatch(const char *group, const char *intro, const char *examples,
                 const struct cli_command *cmds, size_t ncmds, int argc, char **argv);

/* "runix: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "runix <cmd>: <message>" on stderr. */
void cli_cmd_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print err's message (with "runix: "), free it, and return EXIT_FAIL. */
int cli_fail(struct rx_error *err);
/*
 * Print "runix <cmd>: <msg>; see 'runix <cmd> --help'" (one line); returns
 * EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct option;
/*
 * The usage error for what getopt_long returned as c ('?' or ':'), in place
 * of getopt's own messages (which need opterr = 0): "unknown option
 * '--foo'", "option '--store' needs a value", "option '--quiet' takes no
 * value".  argv and opts are those given to getopt_long.  Returns
 * EXIT_USAGE.
 */
int cli_option_error(const char *cmd, int c, char **argv, const struct option *opts);
/* The top-level command table (main.c), for runix self man. */
const struct cli_command *cli_command_table(size_t *n);
/* Print 'runix --help' to stdout. */
void cli_print_main_help(void);

/* Print a command's usage text to stdout; returns EXIT_OK. */
int cli_print_help(const char *usage);

/*
 * The path of runix-core, the binary with every command: next to the
 * running binary, else where it is installed (util-install.h).  0, or -1
 * with err saying where it was looked for.
 */
int cli_core_path(char *out, size_t outsz, struct rx_error **err);

/*
 * The per-binary parts, from cli-front.c (runix) or cli-core.c (runix-core).
 *
 * cli_binary_init: what the binary needs before any command (libsodium in
 * runix-core).  0, or -1 after printing why.
 *
 * cli_run_core_command: run a CMD_CORE row.  argc/argv are the command's
 * (argv[0] its name), group_argv the whole command line the dispatcher got.
 * runix-core calls cmd->fn; the front execs runix-core with group_argv and
 * returns only when that fails.
 */
int cli_binary_init(void);
int cli_run_core_command(const struct cli_command *cmd, int argc, char **argv,
                         char **group_argv);

extern const char *cli_progname;
extern mode_t cli_umask;

int cmd_fetch(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_nar(int argc, char **argv);
int cmd_narinfo(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_install(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_upgrade(int argc, char **argv);
int cmd_roots(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_locate(int argc, char **argv);
int cmd_comma(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_store(int argc, char **argv);
int cmd_self(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_bundle(int argc, char **argv);
int cmd_boot(int argc, char **argv);
int cmd_enter(int argc, char **argv);
int cmd_export(int argc, char **argv);

