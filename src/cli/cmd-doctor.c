/* runix doctor: what this machine offers runix, and why not when it does not. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <getopt.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "cli-human.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "s3.h"
#include "fetch.h"
#include "run-engine.h"
#include "store-graph.h"
#include "store-index.h"
#include "store-roots.h"
#include "store-usage.h"
#include "store.h"
#include "util-mem.h"

#include "banned.h"

static const char doctor_usage[] =
    "usage: runix doctor [OPTIONS]\n"
    "\n"
    "Report, section by section: the platform; the config file read; the store\n"
    "(location, size, number of paths, its roots, what 'runix gc' could free now\n"
    "and when it last ran, registered paths missing on disk) and how to remove\n"
    "it; whether the host\n"
    "has a /nix/store; each configured cache and whether it answers (for an\n"
    "s3:// cache, where its AWS credentials came from and whether a request\n"
    "signed with them succeeds); the trusted keys; the CA certificates for https:// and where they come from; and each\n"
    "engine and whether it works here, with the cause and the fix when it does\n"
    "not.  A bad config file or CA setting is reported in its section, and the\n"
    "report goes on.\n"
    "\n" CLI_SETTINGS_USAGE "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when everything it checked works, 1 when something is broken\n"
    "(each problem is reported in its section, with what to do), 2 for a bad\n"
    "command line.\n"
    "\n"
    "Examples:\n"
    "  runix doctor\n"
    "  runix doctor --cache https://cache.nixos.org\n"
    "  runix doctor --cache 's3://nix-cache?region=eu-west-1&profile=ci'\n"
    "  runix --store /tmp/store doctor\n";

/* Where the collector records its last run (runix gc). */
#define STORE_LAST_GC_FILE "nix/var/runix/last-gc"

/* What the sections share. */
struct doctor {
    struct cli_settings s;
    bool have_settings;     /* s was resolved (else caches and keys are unknown) */
    char *conf_path;        /* the config file looked for, or NULL */
    bool conf_read;         /* it exists and was read */
    struct rx_error *conf_err;     /* what is wrong with it */
    struct rx_error *ca_err;       /* the CA file cannot be read */
    struct rx_error *settings_err; /* the rest failed (the environment) */
    const char *ca_source;  /* where the CA file setting came from */
    bool broken;            /* something checked does not work: exit 1 */
};

/* One line of a section, indented; a problem marks the report broken. */
static void problem(struct doctor *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct doctor *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  problem: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    d->broken = true;
}

static void section_platform(struct doctor *d)
{
    (void)d;
    struct utsname u;
    uname(&u);
    printf("runix %s\n", RUNIX_VERSION);
    printf("platform: %s %s %s, glibc %s\n", u.sysname, u.release, u.machine,
           gnu_get_libc_version());
}

static void section_config(struct doctor *d)
{
    if (!d->conf_path)
        printf("config: none (no HOME, XDG_CONFIG_HOME or RUNIX_CONFIG)\n");
    else if (d->conf_read)
        printf("config: %s\n", d->conf_path);
    else if (!d->conf_err)
        printf("config: none (%s does not exist; the defaults apply)\n", d->conf_path);
    else
        printf("config: %s\n", d->conf_path);
    if (d->conf_err)
        problem(d, "%s; fix the file (the rest of this report uses the defaults instead)",
                d->conf_err->msg);
    if (d->settings_err)
        problem(d, "%s", d->settings_err->msg);
}

/*
 * Registered paths that are gone from disk (the first few named); true when
 * there are none.
 */
static bool report_missing(struct store *st)
{
    struct rx_error *err = NULL;
    struct store_path *missing;
    size_t n;
    if (store_check_missing(st, NULL, 0, &missing, &n, &err) < 0) {
        printf("  store consistency: cannot check: %s\n", err->msg);
        rx_error_free(err);
        return false;
    }
    if (n == 0) {
        printf("  store consistency: every registered path is on disk\n");
        return true;
    }
    printf("  store consistency: %zu registered path%s missing or damaged on disk:\n", n,
           n == 1 ? " is" : "s are");
    for (size_t i = 0; i < n && i < 5; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&missing[i], full);
        printf("    %s\n", full);
    }
    if (n > 5)
        printf("    (and %zu more)\n", n - 5);
    printf("  problem: run 'runix fetch PATH' to fetch each again; what needs them is fetched "
           "again when you next fetch or run it\n");
    free(missing);
    return false;
}

/*
 * R/nix/var/runix/last-gc, which the collector writes: "<unix time> <paths
 * deleted> <bytes freed>\n".  1 with the values, 0 when absent, -1 when it
 * cannot be read or is not that line.
 */
static int read_last_gc(int root_fd, int64_t *when, uint64_t *paths, uint64_t *bytes)
{
    int fd = openat(root_fd, STORE_LAST_GC_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || buf[n - 1] != '\n')
        return -1;
    buf[n] = '\0';
    unsigned long long v[3];
    const char *c = buf;
    for (int i = 0; i < 3; i++) {
        if (*c < '0' || *c > '9')
            return -1;
        char *end;
        errno = 0;
        v[i] = strtoull(c, &end, 10);
        if (errno || *end != (i < 2 ? ' ' : '\n'))
            return -1;
        c = end + 1;
    }
    if (*c || v[0] > INT64_MAX)
        return -1;
    *when = (int64_t)v[0];
    *paths = v[1];
    *bytes = v[2];
    return 1;
}

/* The roots, what no root keeps (what gc could free now) and the last gc. */
static void report_usage(struct store *st)
{
    struct rx_error *err = NULL;
    struct store_graph g;
    if (store_graph_load(st, &g, &err) < 0) {
        printf("  collectable: cannot tell: %s\n", err->msg);
        rx_error_free(err);
        return;
    }
    char *real = NULL;
    int root_fd = store_root_open(store_root(st), &real, &err);
    free(real);
    if (root_fd < 0) {
        printf("  collectable: cannot tell: %s\n", err->msg);
        rx_error_free(err);
        store_graph_release(&g);
        return;
    }
    struct store_root *roots = NULL;
    size_t nroots = 0;
    if (store_roots_scan(root_fd, store_root(st), &roots, &nroots, &err) < 0) {
        printf("  collectable: cannot tell: %s\n", err->msg);
        rx_error_clear(&err);
    } else {
        size_t kinds[STORE_ROOT_NIX + 1] = {0};
        for (size_t i = 0; i < nroots; i++)
            kinds[roots[i].kind]++;
        printf("  roots: %zu (%zu auto, %zu manual, %zu installed, %zu of Nix's; see "
               "'runix roots')\n",
               nroots, kinds[STORE_ROOT_AUTO], kinds[STORE_ROOT_MANUAL],
               kinds[STORE_ROOT_INSTALLED], kinds[STORE_ROOT_NIX]);
        struct store_usage u;
        store_usage_compute(&g, roots, nroots, false, &u);
        char size[32];
        cli_human_size(u.dead_bytes, size, sizeof size);
        printf("  collectable now: %zu path%s, %s (kept by no root; 'runix gc' deletes them)\n",
               u.dead_paths, u.dead_paths == 1 ? "" : "s", size);
        store_usage_release(&u);
    }
    int64_t when;
    uint64_t paths, bytes;
    int r = read_last_gc(root_fd, &when, &paths, &bytes);
    if (r == 0) {
        printf("  last gc: never\n");
    } else if (r < 0) {
        printf("  last gc: unknown (%s/%s cannot be read as '<time> <paths> <bytes>')\n",
               store_root(st), STORE_LAST_GC_FILE);
    } else {
        char ago[64], size[32], date[64];
        cli_human_ago((int64_t)time(NULL), when, ago, sizeof ago);
        cli_human_size(bytes, size, sizeof size);
        time_t t = (time_t)when;
        struct tm tm;
        if (!gmtime_r(&t, &tm) || !strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm))
            snprintf(date, sizeof date, "%" PRId64, when);
        printf("  last gc: %s (%s), deleted %" PRIu64 " path%s, freed %s\n", ago, date, paths,
               paths == 1 ? "" : "s", size);
    }
    close(root_fd);
    store_roots_free(roots, nroots);
    store_graph_release(&g);
}

static void section_store(struct doctor *d)
{
    if (!d->have_settings || !d->s.store) {
        printf("store: unknown\n");
        return;
    }
    /* Looked at, never made or changed. */
    struct rx_error *err = NULL;
    struct store *st = NULL;
    int r = store_open_readonly(d->s.store, &st, &err);
    if (r < 0) {
        printf("store: %s\n", d->s.store);
        problem(d, "unusable: %s", err->msg);
        rx_error_clear(&err);
        return;
    }
    if (r > 0) {
        printf("store: %s: no store there yet ('runix fetch' makes it)\n", d->s.store);
        return;
    }
    uint64_t npaths = 0, bytes = 0;
    if (store_stats(st, &npaths, &bytes, &err) < 0) {
        printf("store: %s\n", store_root(st));
        problem(d, "%s", err->msg);
        rx_error_clear(&err);
    } else {
        printf("store: %s (%llu paths, %.1f MiB%s)\n", store_root(st),
               (unsigned long long)npaths, (double)bytes / (1024.0 * 1024.0),
               store_writable(st) ? "" : "; read-only to you: runs, fetches nothing");
    }
    report_usage(st);
    if (!report_missing(st))
        d->broken = true;
    /* Store paths are read-only directories, as Nix makes them. */
    printf("  to remove it: chmod -R u+w %s && rm -rf %s\n", store_root(st), store_root(st));
    store_close(st);
}

static void section_host_store(struct doctor *d)
{
    (void)d;
    struct stat sb;
    if (stat("/nix/store", &sb) == 0 && S_ISDIR(sb.st_mode))
        printf("host store: /nix/store exists (Nix is installed here): userns shows the runix\n"
               "  store over it, preload maps the closure's paths to the runix store; the\n"
               "  host's own store paths stay visible and are never changed\n");
    else
        printf("host store: none (no /nix/store here): userns makes /nix/store in a new\n"
               "  root, preload maps /nix/store paths to the runix store\n");
}

static void section_caches(struct doctor *d)
{
    printf("caches:\n");
    if (!d->have_settings) {
        printf("  unknown (see the problems above)\n");
        return;
    }
    struct fetch_opts fo;
    struct rx_error *err = NULL;
    cli_settings_fetch_opts(&d->s, &fo);
    for (size_t i = 0; i < d->s.ncaches; i++) {
        const struct cache *c = &d->s.caches[i];
        /* An s3:// cache: where its keys came from, and whether S3 takes a request signed with them. */
        const struct s3_cache *s3 = c->s3;
        if (s3) {
            printf("  %s: bucket '%s' at %s, region %s\n", c->url, s3->bucket, s3->base,
                   s3->region);
            printf("    credentials: %s\n", s3->cred_source);
        }
        const char *asked = s3 ? (s3->access_key ? "signed request" : "unsigned request")
                               : NULL;
        if (fetch_cache_probe(c, &fo, &err) < 0) {
            if (s3)
                printf("    %s for nix-cache-info: fails: %s\n", asked, err->msg);
            else
                printf("  %s: does not answer: %s\n", c->url, err->msg);
            d->broken = true;
            rx_error_clear(&err);
        } else if (s3) {
            printf("    %s for nix-cache-info: answers\n", asked);
        } else {
            printf("  %s: answers\n", c->url);
        }
    }
}

static void section_keys(struct doctor *d)
{
    if (!d->have_settings) {
        printf("trusted keys: unknown\n");
        return;
    }
    printf("trusted keys (%zu):", d->s.keys.n);
    for (size_t i = 0; i < d->s.keys.n; i++)
        printf(" %s", d->s.keys.keys[i].name);
    printf("\n");
}

static void section_ca(struct doctor *d)
{
    if (d->ca_err) {
        printf("CA certificates: from %s\n", d->ca_source);
        problem(d, "%s; point it at an existing file, or unset it to use the system's",
                d->ca_err->msg);
        return;
    }
    if (d->have_settings && d->s.ssl_cert_file)
        printf("CA certificates: %s (from %s)\n", d->s.ssl_cert_file, d->ca_source);
    else if (RUNIX_ONE_FILE)
        printf("CA certificates: none found in the usual places (https:// caches need "
               "ssl-cert-file or SSL_CERT_FILE)\n");
    else
        printf("CA certificates: the system's default (libcurl's)\n");
}

static long read_sysctl(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

/* What to do about user namespaces that do not work, from the sysctls that govern them. */
static void userns_fix(const char *why, bool preload)
{
    long clone = read_sysctl("/proc/sys/kernel/unprivileged_userns_clone");
    long max = read_sysctl("/proc/sys/user/max_user_namespaces");
    long aa = read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
    if (clone == 0)
        printf("    fix: sudo sysctl -w kernel.unprivileged_userns_clone=1 (and put it in\n"
               "         /etc/sysctl.d/ to keep it)\n");
    else if (max == 0 || strstr(why, "max_user_namespaces"))
        printf("    fix: sudo sysctl -w user.max_user_namespaces=15000 (on the host, when\n"
               "         runix runs in a container; put it in /etc/sysctl.d/ to keep it)\n");
    else if (aa == 1)
        printf("    fix: AppArmor restricts unprivileged user namespaces (Ubuntu 24.04 and\n"
               "         later): allow them for runix with a profile in /etc/apparmor.d/\n"
               "         ('profile runix /path/to/runix flags=(unconfined) { userns, }', the\n"
               "         same for runix-core, then 'sudo apparmor_parser -r' on it), or for\n"
               "         everyone: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\n");
    if (preload)
        printf("    or use the other engine: --engine preload (auto does so already)\n");
    else
        printf("    or run runix where user namespaces are allowed\n");
}

static void section_engines(struct doctor *d)
{
    printf("engines:\n");
    struct rx_error *why = NULL;
    char shim[PATH_MAX];
    bool preload = false;
    _cleanup_free_ char *preload_why = NULL;
    if (engine_preload_find(shim, sizeof shim, &why) < 0) {
        preload_why = xstrdup(why->msg);
        rx_error_clear(&why);
    } else if (RUNIX_ONE_FILE) {
        /* Extracted and checked byte for byte against the copy inside this static runix,
         * which cannot dlopen a library of the host's libc to try it. */
        preload = true;
    } else {
        void *h = dlopen(shim, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            preload_why = xstrdup(dlerror());
        } else {
            dlclose(h);
            preload = true;
        }
    }
    bool userns = engine_userns_probe(&why) == 0;
    if (userns) {
        printf("  userns: usable\n");
    } else {
        printf("  userns: not usable: %s\n", why->msg);
        userns_fix(why->msg, preload);
    }
    rx_error_clear(&why);
    if (preload) {
        printf("  preload: usable (%s; not for statically linked programs)\n", shim);
    } else {
        printf("  preload: not usable: %s\n", preload_why);
        printf("    fix: reinstall runix (librunix-preload.so belongs beside it)%s\n",
               userns ? ", or use --engine userns (auto does so already)" : "");
    }
    const char *forced = getenv("RUNIX_ENGINE");
    printf("auto chooses: %s%s\n", userns ? "userns" : preload ? "preload" : "nothing",
           forced && *forced ? " (RUNIX_ENGINE overrides it)" : "");
    if (!userns && !preload)
        d->broken = true;
}

/*
 * The report, in order.  Each section prints its heading and lines and
 * calls problem() for what does not work; one more check is one more line.
 */
static void (*const sections[])(struct doctor *) = {
    section_platform, section_config, section_store, section_host_store,
    section_caches,   section_keys,   section_ca,    section_engines,
};

/* Where the CA setting comes from, as resolve_ca_file() takes it (cli-settings-core.c). */
static const char *ca_source(const struct cli_conf *c)
{
    if (c && c->ssl_cert_file && *c->ssl_cert_file)
        return "ssl-cert-file in the config file";
    const char *e = getenv("NIX_SSL_CERT_FILE");
    if (e && *e)
        return "NIX_SSL_CERT_FILE";
    e = getenv("SSL_CERT_FILE");
    if (e && *e)
        return "SSL_CERT_FILE";
    if (cli_system_ca_file())
        return "the system's usual place";
    return "the system's default";
}

/*
 * Resolve the settings, going on past a bad config file (then without it)
 * and an unreadable CA file (then with the system's).  Returns EXIT_USAGE
 * after printing why for a bad value on the command line, else -1.
 */
static int resolve(struct doctor *d)
{
    struct cli_conf c;
    struct cli_settings probe = {0};
    if (cli_conf_read(&c, &probe, &d->conf_err) < 0) {
        d->conf_path = c.path ? xstrdup(c.path) : NULL;
        cli_conf_release(&c);
        memset(&c, 0, sizeof c);
        setenv("RUNIX_CONFIG", "/dev/null", 1); /* the defaults, for the rest */
    } else {
        d->conf_read = c.path && access(c.path, F_OK) == 0;
        d->conf_path = c.path ? xstrdup(c.path) : NULL;
    }
    d->ca_source = ca_source(&c);
    cli_conf_release(&c);
    cli_settings_release(&probe);

    for (int attempt = 0; attempt < 3; attempt++) {
        struct rx_error *err = NULL;
        if (cli_settings_finish(&d->s, &err) == 0) {
            d->have_settings = true;
            return -1;
        }
        if (err && err->code == RX_EUSAGE && strncmp(err->msg, "bad --", 6) == 0) {
            cli_cmd_error("doctor", "%s", err->msg);
            rx_error_free(err);
            return EXIT_USAGE;
        }
        /* Start the resolution over with the part at fault set aside. */
        struct cli_settings fresh = {0};
        fresh.flag_store = d->s.flag_store ? xstrdup(d->s.flag_store) : NULL;
        for (size_t i = 0; i < d->s.flag_caches.n; i++)
            cli_strv_push(&fresh.flag_caches, d->s.flag_caches.v[i]);
        for (size_t i = 0; i < d->s.flag_extra_caches.n; i++)
            cli_strv_push(&fresh.flag_extra_caches, d->s.flag_extra_caches.v[i]);
        for (size_t i = 0; i < d->s.flag_keys.n; i++)
            cli_strv_push(&fresh.flag_keys, d->s.flag_keys.v[i]);
        fresh.insecure = d->s.insecure;
        fresh.quiet = d->s.quiet;
        cli_settings_release(&d->s);
        d->s = fresh;
        if (!d->ca_err && err && strstr(err->msg, "CA certificate file")) {
            d->ca_err = err;
            unsetenv("NIX_SSL_CERT_FILE");
            unsetenv("SSL_CERT_FILE");
            if (strcmp(d->ca_source, "ssl-cert-file in the config file") == 0)
                setenv("RUNIX_CONFIG", "/dev/null", 1);
        } else if (!d->settings_err) {
            d->settings_err = err;
            unsetenv("RUNIX_TRUSTED_KEYS");
            unsetenv("RUNIX_CACHES");
        } else {
            rx_error_free(err);
            return -1;
        }
    }
    return -1;
}

int cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct doctor d = {0};
    int o;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&d.s, o, optarg))
            continue;
        cli_settings_release(&d.s);
        if (o == 'h')
            return cli_print_help(doctor_usage);
        return cli_option_error("doctor", o, argv, opts);
    }
    if (optind != argc) {
        cli_settings_release(&d.s);
        return cli_usage_error("doctor", "unexpected argument '%s'", argv[optind]);
    }
    int ret = resolve(&d);
    if (ret < 0) {
        for (size_t i = 0; i < ARRAY_SIZE(sections); i++)
            sections[i](&d);
        ret = d.broken ? EXIT_FAIL : EXIT_OK;
    }
    cli_settings_release(&d.s);
    free(d.conf_path);
    rx_error_free(d.conf_err);
    rx_error_free(d.ca_err);
    rx_error_free(d.settings_err);
    return fflush(stdout) == 0 ? ret : EXIT_FAIL;
}
