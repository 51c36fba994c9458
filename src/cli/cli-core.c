/* The parts of runix-core, the binary with every command, that differ from the front. */
#include "config.h"

#include "cli.h"
#include "crypto-hash.h"

int cli_binary_init(void)
{
    if (crypto_init() < 0) {
        cli_error("cannot initialise libsodium");
        return -1;
    }
    return 0;
}

int cli_run_core_command(const struct cli_command *cmd, int argc, char **argv, char **group_argv)
{
    (void)group_argv;
    if (!cmd->fn)
        BUG("command '%s' has no function", cmd->name);
    return cmd->fn(argc, argv);
}
