/* The parts of runix-core, the binary with every command, that differ from the front. */
#include "config.h"

#if RUNIX_ONE_FILE
#include <openssl/crypto.h>
#endif

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
#if RUNIX_ONE_FILE
    /*
     * OpenSSL linked in: its configuration file is the host's, written for
     * the host's own OpenSSL (providers and modules this file does not
     * have), so it reads none.  Only for the CMD_CORE commands: the one file
     * also plays the front, whose commands (run, shell, ...) never use
     * OpenSSL, and starts them as fast as the front does.
     */
    if (OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL) != 1) {
        cli_error("cannot initialise OpenSSL");
        return EXIT_FAIL;
    }
#endif
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
