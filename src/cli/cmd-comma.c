/*
 * runix , PROGRAM [ARGS...]: run a program by its name, from the package of
 * the nixpkgs index whose bin/ has it.  The front runs what was found
 * before while the index is unchanged; everything else is runix-core's
 * (cli_comma_core in cmd-index.c).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cli-byname.h"
#include "cli-settings.h"
#include "cli.h"
#include "util-mem.h"

#include "banned.h"

#pragma weak cli_comma_core

const char cli_comma_usage[] =
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

/* Options end at PROGRAM; every option is one element or a value-taking pair. */
static bool takes_value(const char *a)
{
    static const char *const with_value[] = { "--store", "--cache", "--extra-cache",
                                              "--trusted-key" };
    for (size_t i = 0; i < ARRAY_SIZE(with_value); i++)
        if (strcmp(a, with_value[i]) == 0)
            return true;
    return false;
}

int cmd_comma(int argc, char **argv)
{
    bool print = false;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return cli_print_help(cli_comma_usage);
        if (strcmp(a, "--print") == 0)
            print = true;
        else if (takes_value(a) && i + 1 < argc)
            i++;
    }
    if (i >= argc)
        return cli_usage_error(",", "expected a PROGRAM to run");
    const char *prog = argv[i];
    if (!cli_program_name_valid(prog))
        return cli_usage_error(",", "'%s' is not a program name", prog);
    char attr[CLI_ATTR_MAX + 1];
    struct store_path p;
    bool same;
    /* The warm start: what was run before, from the same index, and no options to heed. */
    if (i == 1 && !print && cli_comma_recall(prog, attr, &p, &same) && same) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&p, full);
        _cleanup_free_ char *db = cli_index_file(CLI_DEFAULT_INDEX);
        cli_index_warn_old(",", CLI_DEFAULT_INDEX, db);
        _cleanup_free_ char *exe = xasprintf("%s/bin/%s", full, prog);
        char **av = xcalloc((size_t)argc + 2, sizeof *av);
        av[0] = (char *)"run";
        av[1] = exe;
        for (int k = i + 1; k < argc; k++)
            av[k - i + 1] = argv[k];
        int r = cmd_run(argc - i + 1, av);
        free(av);
        return r;
    }
    if (!cli_comma_core) {
        _cleanup_free_ char **av = xcalloc((size_t)argc + 2, sizeof *av);
        av[0] = (char *)cli_progname;
        for (int k = 0; k < argc; k++)
            av[k + 1] = argv[k];
        return cli_run_core_command(NULL, argc, argv, av);
    }
    return cli_comma_core(argc, argv);
}
