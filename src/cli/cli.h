#pragma once
/*
 * The command-line layer: the only code that parses argv, writes to stdout
 * or chooses an exit code.
 *
 * Adding a new command:
 *  1. Write `int cmd_<name>(int argc, char **argv)` in cmd-<name>.c, taking
 *     argv[0] as the command's own name.  Parse options with getopt_long,
 *     answer --help with the command's usage on stdout and exit 0.
 *  2. Declare it below and add a row to the table in main.c (name,
 *     function, one-line summary, usage text).
 *  3. Return an EXIT_* code; print errors with cli_error()/cli_fail().
 *  4. Add tests: a unit test for the logic below cli/, an integration test
 *     in tests/integration/ for the command itself, and a line in
 *     README.md's command list.
 */

#include <stddef.h>
#include <sys/types.h>

#include "util-error.h"

/* Exit codes. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* the operation failed: bad input, failed check */
    EXIT_USAGE = 2, /* bad command line */
};

struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

/*
 * Dispatch argv[1] among cmds (argv[0] is the group's name, for messages).
 * Prints the group's help for -h/--help or no argument.
 */
int cli_dispatch(const char *group, const char *intro, const struct cli_command *cmds,
                 size_t ncmds, int argc, char **argv);

/* "runix: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print err's message (with "runix: "), free it, and return EXIT_FAIL. */
int cli_fail(struct rx_error *err);
/* Print "runix <cmd>: <msg>" and a hint to use --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a command's usage text to stdout; returns EXIT_OK. */
int cli_print_help(const char *usage);

/* The path of runix-core, the binary with every command (see main.c); 0 or -1. */
int cli_core_path(char *out, size_t outsz);

extern const char *cli_progname;
extern mode_t cli_umask;

int cmd_fetch(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_shell(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_nar(int argc, char **argv);
int cmd_narinfo(int argc, char **argv);
