/* runix doctor: what this machine offers runix, and why not when it does not. */
#include "config.h"

#include <dlfcn.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "cli-settings.h"
#include "cli.h"
#include "fetch.h"
#include "run-engine.h"
#include "store.h"
#include "util-mem.h"

#include "banned.h"

static const char doctor_usage[] =
    "usage: runix doctor [OPTIONS]\n"
    "\n"
    "Report the platform, the store (location, size, number of paths), each\n"
    "configured cache and whether it answers, and each engine and whether it\n"
    "works here, with the precise reason when it does not.\n"
    "\n" CLI_SETTINGS_USAGE "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when everything it checked works, 1 when something is broken\n"
    "(each problem is reported in its section, with what to do), 2 for a bad\n"
    "command line.\n"
    "\n"
    "Examples:\n"
    "  runix doctor\n"
    "  runix doctor --cache https://cache.nixos.org\n"
    "  runix --store /tmp/store doctor\n";

/* The engines section: each engine and why it is not usable; true when one is. */
static bool report_engines(void)
{
    printf("engines:\n");
    struct rx_error *why = NULL;
    bool userns = engine_userns_probe(&why) == 0;
    if (userns)
        printf("  userns: usable\n");
    else
        printf("  userns: not usable: %s\n", why->msg);
    rx_error_clear(&why);
    char shim[PATH_MAX];
    bool preload = false;
    if (engine_preload_find(shim, sizeof shim, &why) < 0) {
        printf("  preload: not usable: %s\n", why->msg);
        rx_error_clear(&why);
    } else {
        void *h = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            printf("  preload: not usable: %s\n", dlerror());
        } else {
            dlclose(h);
            preload = true;
            printf("  preload: usable (%s; not for statically linked programs)\n", shim);
        }
    }
    const char *forced = getenv("RUNIX_ENGINE");
    printf("auto chooses: %s%s\n", userns ? "userns" : preload ? "preload" : "nothing",
           forced && *forced ? " (RUNIX_ENGINE overrides it)" : "");
    return userns || preload;
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, o, optarg))
            continue;
        cli_settings_release(&s);
        if (o == 'h')
            return cli_print_help(doctor_usage);
        return cli_option_error("doctor", o, argv, opts);
    }
    if (optind != argc) {
        cli_settings_release(&s);
        return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind]);
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        if (err && err->code == RX_EUSAGE) {
            cli_cmd_error("doctor", "%s", err->msg);
            rx_error_free(err);
            return EXIT_USAGE;
        }
        return cli_fail(err);
    }

    struct utsname u;
    uname(&u);
    printf("runix %s\n", RUNIX_VERSION);
    printf("platform: %s %s %s, glibc %s\n", u.sysname, u.release, u.machine,
           gnu_get_libc_version());

    struct store *st = NULL;
    if (store_open(s.store, &st, &err) < 0) {
        printf("store: %s: unusable: %s\n", s.store, err->msg);
        rx_error_clear(&err);
    } else {
        uint64_t npaths = 0, bytes = 0;
        if (store_stats(st, &npaths, &bytes, &err) < 0) {
            printf("store: %s: %s\n", store_root(st), err->msg);
            rx_error_clear(&err);
        } else {
            printf("store: %s (%llu paths, %.1f MiB)\n", store_root(st),
                   (unsigned long long)npaths, (double)bytes / (1024.0 * 1024.0));
        }
        store_close(st);
    }

    printf("caches:\n");
    struct fetch_opts fo;
    cli_settings_fetch_opts(&s, &fo);
    for (size_t i = 0; i < s.ncaches; i++) {
        if (fetch_cache_probe(&s.caches[i], &fo, &err) < 0) {
            printf("  %s: does not answer: %s\n", s.caches[i].url, err->msg);
            rx_error_clear(&err);
        } else {
            printf("  %s: answers\n", s.caches[i].url);
        }
    }
    printf("trusted keys: %zu\n", s.keys.n);

    bool usable = report_engines();
    cli_settings_release(&s);
    return usable ? EXIT_OK : EXIT_FAIL;
}
