/* The parts of runix, the front, that differ from runix-core (see cli.h). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli-settings-internal.h"
#include "cli.h"
#include "util-install.h"

#include "banned.h"

int cli_binary_init(void)
{
    return 0;
}

int cli_core_path(char *out, size_t outsz, struct rx_error **err)
{
    return rx_install_find(RX_INSTALL_CORE, out, outsz, err);
}

int cli_run_core_command(const struct cli_command *cmd, int argc, char **argv, char **group_argv)
{
    (void)cmd;
    (void)argc;
    (void)argv;
    char core[PATH_MAX];
    struct rx_error *err = NULL;
    if (cli_core_path(core, sizeof core, &err) < 0) {
        cli_error("%s; reinstall runix", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    /* The same command line, so runix-core dispatches it as runix would have. */
    execv(core, group_argv);
    cli_error("cannot run %s: %s", core, strerror(errno));
    return EXIT_FAIL;
}

/* The front only runs programs: runix-core resolves caches and keys when it fetches. */
int cli_settings_resolve_core(struct cli_settings *s, const struct cli_conf *c,
                              struct rx_error **err)
{
    (void)s;
    (void)c;
    (void)err;
    return 0;
}

void cli_settings_release_core(struct cli_settings *s)
{
    (void)s;
}
