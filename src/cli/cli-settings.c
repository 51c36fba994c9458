/* The settings of both binaries: flags, the config file, the environment, the store. */
#include "config.h"
#include "cli-settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-settings-internal.h"
#include "cli.h"
#include "util-conf.h"
#include "util-mem.h"
#include "util-units.h"

#include "banned.h"

void cli_strv_push(struct strv *v, const char *s)
{
    v->v = xrealloc(v->v, (v->n + 1) * sizeof *v->v);
    v->v[v->n++] = xstrdup(s);
}

void cli_strv_clear(struct strv *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

void cli_strv_push_words(struct strv *v, const char *s)
{
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \t\n");
        _cleanup_free_ char *w = xstrndup(p, n);
        cli_strv_push(v, w);
        p += n;
    }
}

int cli_settings_option(struct cli_settings *s, int c, const char *arg)
{
    switch (c) {
    case OPT_STORE:
        free(s->flag_store);
        s->flag_store = xstrdup(arg);
        return 1;
    case OPT_CACHE:
        cli_strv_push(&s->flag_caches, arg);
        return 1;
    case OPT_EXTRA_CACHE:
        cli_strv_push(&s->flag_extra_caches, arg);
        return 1;
    case OPT_TRUSTED_KEY:
        cli_strv_push(&s->flag_keys, arg);
        return 1;
    case OPT_INSECURE:
        s->insecure = true;
        return 1;
    case OPT_QUIET:
    case 'q':
        s->quiet = true;
        return 1;
    default:
        return 0;
    }
}

static int parse_number(const char *v, long min, long max, long *out, const char *name,
                        const char *file, unsigned line, struct rx_error **err)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return rx_error_set(err, RX_EFORMAT, "%s:%u: '%s' must be a number from %ld to %ld",
                            file, line, name, min, max);
    *out = n;
    return 0;
}

static int on_setting(void *ctx, const char *name, const char *value, const char *file,
                      unsigned line, struct rx_error **err)
{
    struct cli_conf *c = ctx;
    long n;
    if (strcmp(name, "store") == 0) {
        free(c->store);
        c->store = xstrdup(value);
        free(c->store_file);
        c->store_file = xstrdup(file);
    } else if (strcmp(name, "substituters") == 0) {
        cli_strv_clear(&c->caches);
        cli_strv_push_words(&c->caches, value);
        c->have_caches = true;
    } else if (strcmp(name, "extra-substituters") == 0) {
        cli_strv_push_words(&c->extra_caches, value);
    } else if (strcmp(name, "trusted-public-keys") == 0) {
        cli_strv_clear(&c->keys);
        cli_strv_push_words(&c->keys, value);
        c->have_keys = true;
    } else if (strcmp(name, "extra-trusted-public-keys") == 0) {
        cli_strv_push_words(&c->extra_keys, value);
    } else if (strcmp(name, "http-connections") == 0) {
        if (parse_number(value, 0, 1024, &n, name, file, line, err) < 0)
            return -1;
        c->s->http_connections = (unsigned)n;
    } else if (strcmp(name, "connect-timeout") == 0) {
        if (parse_number(value, 0, 86400, &n, name, file, line, err) < 0)
            return -1;
        c->s->connect_timeout = n;
    } else if (strcmp(name, "stalled-download-timeout") == 0) {
        if (parse_number(value, 1, 86400, &n, name, file, line, err) < 0)
            return -1;
        c->s->stalled_timeout = n;
    } else if (strcmp(name, "narinfo-timeout") == 0) {
        if (parse_number(value, 1, 86400, &n, name, file, line, err) < 0)
            return -1;
        c->s->narinfo_timeout = n;
    } else if (strcmp(name, "download-attempts") == 0) {
        if (parse_number(value, 1, 100, &n, name, file, line, err) < 0)
            return -1;
        c->s->attempts = (unsigned)n;
    } else if (strcmp(name, "ssl-cert-file") == 0) {
        free(c->ssl_cert_file);
        c->ssl_cert_file = xstrdup(value);
    } else if (strcmp(name, "bin-dir") == 0) {
        free(c->s->bin_dir);
        c->s->bin_dir = xstrdup(value);
    } else if (strcmp(name, "github-url") == 0) {
        free(c->s->github_url);
        c->s->github_url = xstrdup(value);
    } else if (strcmp(name, "index-url") == 0) {
        free(c->s->index_url);
        c->s->index_url = value[0] ? xstrdup(value) : NULL;
    } else if (strcmp(name, "index-sha256") == 0) {
        free(c->s->index_sha256);
        c->s->index_sha256 = value[0] ? xstrdup(value) : NULL;
        free(c->s->index_config);
        c->s->index_config = xstrdup(file);
    } else if (strncmp(name, "index.", 6) == 0 && strlen(name) > 10 &&
               strcmp(name + strlen(name) - 4, ".url") == 0) {
        _cleanup_free_ char *entry =
            xasprintf("%.*s %s", (int)(strlen(name) - 10), name + 6, value);
        cli_strv_push(&c->s->index_urls, entry);
    } else if (strcmp(name, "min-free") == 0 || strcmp(name, "max-free") == 0) {
        /* Sizes as runix gc takes them (500M, 2G); Nix's plain byte counts too. */
        _cleanup_free_ char *what = xasprintf("%s:%u: '%s'", file, line, name);
        if (parse_size(value, what, name[1] == 'i' ? &c->s->min_free : &c->s->max_free, err) <
            0)
            return -1;
    } else if (strcmp(name, "netrc-file") == 0) {
        free(c->s->netrc_file);
        c->s->netrc_file = value[0] ? xstrdup(value) : NULL;
    } else {
        fprintf(stderr, "%s: warning: %s:%u: unknown setting '%s'\n", cli_progname, file, line,
                name);
    }
    return 0;
}

char *cli_xdg_path(const char *env, const char *home_rel, const char *rel)
{
    const char *x = getenv(env);
    if (x && x[0] == '/')
        return xasprintf("%s/%s", x, rel);
    const char *home = getenv("HOME");
    if (!home || home[0] != '/')
        return NULL;
    return xasprintf("%s/%s/%s", home, home_rel, rel);
}

/* Append the component comp[0..n) to the path being built in b (len bytes so far). */
static void push_component(char **b, size_t *len, size_t *cap, const char *comp, size_t n)
{
    if (n == 0 || (n == 1 && comp[0] == '.'))
        return;
    if (*len + n + 2 > *cap) {
        *cap = (*len + n + 2) * 2;
        *b = xrealloc(*b, *cap);
    }
    (*b)[(*len)++] = '/';
    memcpy(*b + *len, comp, n);
    *len += n;
    (*b)[*len] = '\0';
}

static void push_path(char **b, size_t *len, size_t *cap, const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        push_component(b, len, cap, p, n);
        p += n;
        while (*p == '/')
            p++;
    }
}

char *cli_absolute_path(const char *path, const char *base, bool tilde, const char *what,
                        struct rx_error **err)
{
    _cleanup_free_ char *cwd = NULL;
    const char *start = "";
    if (tilde && path[0] == '~') {
        if (path[1] != '\0' && path[1] != '/') {
            rx_error_set(err, RX_EUSAGE,
                         "%s: '%s' names another user's home, which runix does not look up; "
                         "write the directory out in full",
                         what, path);
            return NULL;
        }
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            rx_error_set(err, RX_EFORMAT, "%s: '%s' needs HOME, which is not an absolute path",
                         what, path);
            return NULL;
        }
        start = home;
        path++;
    } else if (path[0] != '/') {
        if (!base) {
            cwd = getcwd(NULL, 0);
            if (!cwd) {
                rx_error_errno(err,
                               "%s: cannot resolve the relative path '%s' (the current "
                               "directory is gone?); give an absolute one",
                               what, path);
                return NULL;
            }
            base = cwd;
        }
        start = base;
    }
    size_t len = 0, cap = strlen(start) + strlen(path) + 2;
    char *b = xmalloc(cap);
    b[0] = '\0';
    push_path(&b, &len, &cap, start);
    push_path(&b, &len, &cap, path);
    if (len == 0) {
        b[0] = '/';
        b[1] = '\0';
    }
    return b;
}

/* The directory of a config file, absolute (a relative file is in the current directory). */
static char *conf_dir(const char *file, struct rx_error **err)
{
    const char *slash = strrchr(file, '/');
    _cleanup_free_ char *dir = slash ? xstrndup(file, (size_t)(slash - file)) : xstrdup(".");
    return cli_absolute_path(*dir ? dir : "/", NULL, false, file, err);
}

int cli_conf_read(struct cli_conf *c, struct cli_settings *s, struct rx_error **err)
{
    memset(c, 0, sizeof *c);
    c->s = s;
    const char *rc = getenv("RUNIX_CONFIG");
    if (rc && *rc)
        c->path = xstrdup(rc);
    else
        c->path = cli_xdg_path("XDG_CONFIG_HOME", ".config", "runix/runix.conf");
    if (c->path && conf_parse_file(c->path, !(rc && *rc), on_setting, c, err) < 0) {
        /* A bad setting is the user's to fix, as a bad option is: exit 2. */
        if (err && *err)
            (*err)->code = RX_EUSAGE;
        return -1;
    }
    return 0;
}

void cli_conf_release(struct cli_conf *c)
{
    free(c->path);
    free(c->store);
    free(c->store_file);
    free(c->ssl_cert_file);
    cli_strv_clear(&c->caches);
    cli_strv_clear(&c->extra_caches);
    cli_strv_clear(&c->keys);
    cli_strv_clear(&c->extra_keys);
}

int cli_settings_finish(struct cli_settings *s, struct rx_error **err)
{
    struct cli_conf c;
    int ret = -1;

    if (cli_conf_read(&c, s, err) < 0)
        goto out;

    /* The store, absolute from here on: whoever reads s->store (the engines, a fetch
     * child, doctor) sees the same directory, whatever its current directory. */
    const char *env_store = getenv("RUNIX_STORE");
    if (s->flag_store) {
        s->store = cli_absolute_path(s->flag_store, NULL, false, "--store", err);
    } else if (env_store && *env_store) {
        s->store = cli_absolute_path(env_store, NULL, false, "RUNIX_STORE", err);
    } else if (c.store && *c.store) {
        _cleanup_free_ char *what = xasprintf("'store' in %s", c.store_file);
        _cleanup_free_ char *dir = conf_dir(c.store_file, err);
        s->store = dir ? cli_absolute_path(c.store, dir, true, what, err) : NULL;
    } else {
        s->store = cli_xdg_path("XDG_DATA_HOME", ".local/share", "runix");
        if (!s->store)
            rx_error_set(err, RX_EUSAGE, "no store location: set HOME, RUNIX_STORE or --store");
    }
    if (!s->store)
        goto out;
    s->host_notes = cli_xdg_path("XDG_CACHE_HOME", ".cache", "runix/hosts");
    ret = cli_settings_resolve_core(s, &c, err);
out:
    cli_conf_release(&c);
    return ret;
}

void cli_settings_release(struct cli_settings *s)
{
    free(s->flag_store);
    cli_strv_clear(&s->flag_caches);
    cli_strv_clear(&s->flag_extra_caches);
    cli_strv_clear(&s->flag_keys);
    free(s->store);
    cli_settings_release_core(s);
    free(s->netrc_file);
    free(s->ssl_cert_file);
    free(s->host_notes);
    free(s->github_url);
    free(s->bin_dir);
    free(s->index_url);
    free(s->index_sha256);
    free(s->index_config);
    cli_strv_clear(&s->index_urls);
}
