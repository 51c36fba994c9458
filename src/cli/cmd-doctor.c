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

#include <curl/curl.h>

#include "cli-settings.h"
#include "cli.h"
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
    "Exit status: 0 when some engine works, 1 when none does.\n";

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

/* GET <cache>/nix-cache-info; "" when it answers, else the reason. */
static void probe_cache(const struct cli_settings *s, const char *url, char *why, size_t n)
{
    why[0] = '\0';
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(why, n, "cannot initialise libcurl");
        return;
    }
    _cleanup_free_ char *u = xasprintf("%s/nix-cache-info", url);
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s->connect_timeout > 0 ? s->connect_timeout : 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
    if (s->ssl_cert_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ssl_cert_file);
    if (s->netrc_file) {
        curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(h, CURLOPT_NETRC_FILE, s->netrc_file);
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc != CURLE_OK)
        snprintf(why, n, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (strncmp(url, "file:", 5) != 0 && code != 200)
        snprintf(why, n, "nix-cache-info: HTTP %ld", code);
    curl_easy_cleanup(h);
}

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
    while ((o = getopt_long(argc, argv, "+qh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, o, optarg))
            continue;
        cli_settings_release(&s);
        if (o == 'h')
            return cli_print_help(doctor_usage);
        return cli_usage_error("doctor", "invalid option");
    }
    if (optind != argc) {
        cli_settings_release(&s);
        return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind]);
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < s.ncaches; i++) {
        char why[CURL_ERROR_SIZE + 64];
        probe_cache(&s, s.caches[i].url, why, sizeof why);
        if (why[0])
            printf("  %s: does not answer: %s\n", s.caches[i].url, why);
        else
            printf("  %s: answers\n", s.caches[i].url);
    }
    printf("trusted keys: %zu\n", s.keys.n);

    bool usable = report_engines();
    curl_global_cleanup();
    cli_settings_release(&s);
    return usable ? EXIT_OK : EXIT_FAIL;
}
