/*
 * runix boot: a closure's init as pid 1 of new namespaces whose root holds
 * the runix store read-only (run-boot.h; docs/boot.md).
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-run.h"
#include "cli-settings.h"
#include "cli.h"
#include "run-boot.h"
#include "store-path.h"
#include "util-mem.h"

#include "banned.h"

enum {
    OPT_INIT = 0x200,
    OPT_HOSTNAME,
    OPT_NETWORK,
    OPT_MAP,
    OPT_STOP_TIMEOUT,
    OPT_OFFLINE,
};

static const char boot_usage[] =
    "usage: runix boot [OPTIONS] STOREPATH [-- INIT-ARGS...]\n"
    "\n"
    "Fetch STOREPATH's closure if it is not in the store yet, then run STOREPATH/init\n"
    "as pid 1 of new user, pid, mount, uts, ipc and network namespaces, as a\n"
    "container manager does.  Its root is an empty tmpfs with /nix/store (the\n"
    "runix store, read-only), /proc, /sys (read-only), /dev (the host's null, zero,\n"
    "full, random, urandom and tty, and /dev/console, a pty relayed to this\n"
    "terminal), /run, /tmp and an empty /etc; $container is runix, and\n"
    "/run/host/container-manager and /run/host/os-release are there, as systemd's\n"
    "container interface asks.  /sys/fs/cgroup is the cgroup runix runs in, which\n"
    "systemd needs to be yours (delegated).  SIGTERM or SIGINT to runix sends\n"
    "SIGRTMIN+3 (a clean shutdown) to pid 1, and SIGKILL after the stop timeout.\n"
    "runix exits with pid 1's exit status (128+N for signal N; 0 after a halt or\n"
    "power-off, 129 after a reboot); nothing is left behind.  docs/boot.md has what a\n"
    "NixOS system needs.\n"
    "\n"
    "Options:\n"
    "      --init PROG           run PROG (a path below STOREPATH, or an absolute\n"
    "                            /nix/store path) instead of STOREPATH/init\n"
    "      --hostname NAME       the host name inside (default: STOREPATH's name)\n"
    "      --network MODE        none (default: a network namespace with loopback\n"
    "                            only) or host (the host's network)\n"
    "      --map MODE            the ids inside: auto (default: subid when possible),\n"
    "                            subid (0 is you, 1..65535 your range in /etc/subuid\n"
    "                            and /etc/subgid, through newuidmap and newgidmap),\n"
    "                            or single (only 0, which is you)\n"
    "      --stop-timeout SECONDS  from SIGRTMIN+3 to SIGKILL (default: 10)\n"
    "      --offline             never use the network; fail if a path is missing\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix boot /nix/store/ffffffffffffffffffffffffffffffff-nixos-system-box-24.05\n"
    "  runix boot --map single --hostname box "
    "/nix/store/ffffffffffffffffffffffffffffffff-nixos-system-box-24.05\n"
    "  runix boot --init bin/sh /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-busybox -- -c 'echo hi'\n";

struct boot_cmd {
    struct boot_config cfg;
    const char *init_opt; /* --init as given */
    char *hostname;       /* owned */
    char *init;           /* owned */
    char **argv;          /* owned array; strings borrowed */
    char *const *args;    /* after "--" */
    int nargs;
    char why[512];        /* why auto fell back to one id */
};

/* A host name the kernel and resolvers take: 1..64 of [A-Za-z0-9.-_]. */
static bool hostname_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            return false;
    return true;
}

/* The default host name: the store path's name, what a host name cannot hold as '-'. */
static char *default_hostname(const char *base)
{
    const char *name = strchr(base, '-');
    name = name ? name + 1 : base;
    char *h = xstrndup(name, 63);
    for (char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '_'))
            *p = '-';
    return h;
}

static int parse_seconds(const char *s, unsigned *out)
{
    if (!*s || strlen(s) > 6)
        return -1;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    *out = v;
    return 0;
}

/* With the closure complete: the init's path and argv, the mapping, then boot. */
static int boot_closure(void *arg, const char *store_dir, const char *base)
{
    struct boot_cmd *b = arg;
    struct boot_config *c = &b->cfg;
    c->store_dir = store_dir;
    const char *prog = b->init_opt ? b->init_opt : "init";
    if (prog[0] == '/')
        b->init = xstrdup(prog);
    else
        b->init = xasprintf("%s/%s/%s", STORE_DIR, base, prog);
    c->init = b->init;
    if (!b->hostname)
        b->hostname = default_hostname(base);
    c->hostname = b->hostname;
    b->argv = xcalloc((size_t)b->nargs + 2, sizeof *b->argv);
    b->argv[0] = b->init;
    for (int i = 0; i < b->nargs; i++)
        b->argv[i + 1] = b->args[i];
    c->argv = b->argv;
    struct rx_error *err = NULL;
    enum boot_map asked = c->map;
    if (boot_map_resolve(c, &c->map, b->why, sizeof b->why, &err) < 0) {
        cli_cmd_error("boot", "%s", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    if (asked == BOOT_MAP_AUTO && c->map == BOOT_MAP_SINGLE)
        cli_cmd_error("boot",
                      "warning: only uid and gid 0 (you) exist inside, as %s; units with User=, "
                      "Group= or DynamicUser=, and programs that call setgroups() or switch "
                      "users, will fail (docs/boot.md)",
                      b->why);
    char cg[512];
    if (!boot_cgroup_writable(cg, sizeof cg))
        cli_cmd_error("boot",
                      "warning: the cgroup runix runs in (%s) is not yours to write, so systemd "
                      "will stop at 'Failed to create /init.scope control group'; run runix in a "
                      "delegated one (systemd-run --user --scope -p Delegate=yes runix boot ...)",
                      cg);
    int st = boot_run(c, &err);
    if (st < 0) {
        cli_cmd_error("boot", "%s", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    return st;
}

static int boot_option(struct boot_cmd *b, int o, const char *arg)
{
    struct boot_config *c = &b->cfg;
    switch (o) {
    case OPT_INIT:
        if (!*arg || strstr(arg, "..") || (arg[0] == '/' && strncmp(arg, STORE_DIR "/",
                                                                  strlen(STORE_DIR) + 1) != 0))
            return cli_usage_error("boot", "--init takes a path below STOREPATH or below "
                                           "%s, not '%s'",
                                   STORE_DIR, arg);
        b->init_opt = arg;
        return 0;
    case OPT_HOSTNAME:
        if (!hostname_ok(arg))
            return cli_usage_error("boot", "bad --hostname '%s' (1 to 64 letters, digits, '-', "
                                           "'.' or '_')",
                                   arg);
        free(b->hostname);
        b->hostname = xstrdup(arg);
        return 0;
    case OPT_NETWORK:
        if (strcmp(arg, "none") != 0 && strcmp(arg, "host") != 0)
            return cli_usage_error("boot", "unknown --network mode '%s' (none or host)", arg);
        c->host_network = arg[0] == 'h';
        return 0;
    case OPT_MAP:
        if (strcmp(arg, "auto") == 0)
            c->map = BOOT_MAP_AUTO;
        else if (strcmp(arg, "single") == 0)
            c->map = BOOT_MAP_SINGLE;
        else if (strcmp(arg, "subid") == 0)
            c->map = BOOT_MAP_SUBID;
        else
            return cli_usage_error("boot", "unknown --map mode '%s' (auto, single or subid)", arg);
        return 0;
    case OPT_STOP_TIMEOUT:
        if (parse_seconds(arg, &c->stop_timeout) < 0)
            return cli_usage_error("boot", "bad --stop-timeout '%s' (whole seconds)", arg);
        return 0;
    }
    return -1;
}

int cmd_boot(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"init", required_argument, NULL, OPT_INIT},
        {"hostname", required_argument, NULL, OPT_HOSTNAME},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"map", required_argument, NULL, OPT_MAP},
        {"stop-timeout", required_argument, NULL, OPT_STOP_TIMEOUT},
        {"offline", no_argument, NULL, OPT_OFFLINE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    struct boot_cmd b = {.cfg = {.map = BOOT_MAP_AUTO, .stop_timeout = 10}};
    bool offline = false;
    int o, ret = EXIT_USAGE;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (o == 'h') {
            ret = cli_print_help(boot_usage);
            goto out;
        }
        if (o == OPT_OFFLINE) {
            offline = true;
            continue;
        }
        if (cli_settings_option(&s, o, optarg))
            continue;
        if (o == '?' || o == ':') {
            cli_option_error("boot", o, argv, opts);
            goto out;
        }
        if (boot_option(&b, o, optarg) != 0)
            goto out;
    }
    if (optind == argc) {
        cli_usage_error("boot", "expected a STOREPATH");
        goto out;
    }
    const char *target = argv[optind++];
    if (optind < argc && strcmp(argv[optind], "--") != 0) {
        cli_usage_error("boot", "unexpected argument '%s'; the init's arguments go after '--'",
                        argv[optind]);
        goto out;
    }
    if (optind < argc)
        optind++;
    b.args = argv + optind;
    b.nargs = argc - optind;
    ret = run_with_closure("boot", &s, offline, target, boot_closure, &b);
out:
    cli_settings_release(&s);
    free(b.hostname);
    free(b.init);
    free(b.argv);
    return ret;
}
