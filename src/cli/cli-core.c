/* The parts of runix-core, the binary with every command, that differ from the front. */
#include "config.h"

#include "cli.h"

#include <errno.h>
#include <unistd.h>
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

/* runix-core is its own core: a bundle of it needs nothing beside it. */
int cli_core_path(char *out, size_t outsz, struct rx_error **err)
{
    ssize_t n = readlink("/proc/self/exe", out, outsz - 1);
    if (n <= 0 || (size_t)n >= outsz - 1) {
        if (n > 0)
            errno = ENAMETOOLONG;
        return rx_error_errno(err, "cannot read /proc/self/exe");
    }
    out[n] = '\0';
    return 0;
}
