#include "config.h"
#include "cli-settings.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util-conf.h"
#include "util-mem.h"

#include "banned.h"

static void strv_push(struct strv *v, const char *s)
{
    v->v = xrealloc(v->v, (v->n + 1) * sizeof *v->v);
    v->v[v->n++] = xstrdup(s);
}

static void strv_clear(struct strv *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = 0;
}

/* Split at blanks and append each word. */
static void strv_push_words(struct strv *v, const char *s)
{
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        size_t n = strcspn(p, " \t\n");
        _cleanup_free_ char *w = xstrndup(p, n);
        strv_push(v, w);
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
        strv_push(&s->flag_caches, arg);
        return 1;
    case OPT_EXTRA_CACHE:
        strv_push(&s->flag_extra_caches, arg);
        return 1;
    case OPT_TRUSTED_KEY:
        strv_push(&s->flag_keys, arg);
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

/* What the config file says, before the environment and flags apply. */
struct conf {
    char *store;
    char *ssl_cert_file;
    struct strv caches, extra_caches, keys, extra_keys;
    bool have_caches, have_keys;
    struct cli_settings *s;
};

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
    struct conf *c = ctx;
    long n;
    if (strcmp(name, "store") == 0) {
        free(c->store);
        c->store = xstrdup(value);
    } else if (strcmp(name, "substituters") == 0) {
        strv_clear(&c->caches);
        strv_push_words(&c->caches, value);
        c->have_caches = true;
    } else if (strcmp(name, "extra-substituters") == 0) {
        strv_push_words(&c->extra_caches, value);
    } else if (strcmp(name, "trusted-public-keys") == 0) {
        strv_clear(&c->keys);
        strv_push_words(&c->keys, value);
        c->have_keys = true;
    } else if (strcmp(name, "extra-trusted-public-keys") == 0) {
        strv_push_words(&c->extra_keys, value);
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
    } else if (strcmp(name, "download-attempts") == 0) {
        if (parse_number(value, 1, 100, &n, name, file, line, err) < 0)
            return -1;
        c->s->attempts = (unsigned)n;
    } else if (strcmp(name, "ssl-cert-file") == 0) {
        free(c->ssl_cert_file);
        c->ssl_cert_file = xstrdup(value);
    } else if (strcmp(name, "netrc-file") == 0) {
        free(c->s->netrc_file);
        c->s->netrc_file = value[0] ? xstrdup(value) : NULL;
    } else {
        fprintf(stderr, "%s: warning: %s:%u: unknown setting '%s'\n", cli_progname, file, line,
                name);
    }
    return 0;
}

static char *xdg_path(const char *env, const char *home_rel, const char *rel)
{
    const char *x = getenv(env);
    if (x && x[0] == '/')
        return xasprintf("%s/%s", x, rel);
    const char *home = getenv("HOME");
    if (!home || home[0] != '/')
        return NULL;
    return xasprintf("%s/%s/%s", home, home_rel, rel);
}

#ifndef RUNIX_FRONT
static int add_keys(struct cli_settings *s, const struct strv *v, const char *source,
                    struct rx_error **err)
{
    for (size_t i = 0; i < v->n; i++)
        if (trusted_keys_add(&s->keys, v->v[i], strlen(v->v[i]), err) < 0)
            return rx_error_wrap(err, "%s: trusted key '%s'", source, v->v[i]);
    return 0;
}
#endif

int cli_settings_finish(struct cli_settings *s, struct rx_error **err)
{
    struct conf c = {.s = s};
    int ret = -1;

    _cleanup_free_ char *conf_path = NULL;
    const char *rc = getenv("RUNIX_CONFIG");
    if (rc && *rc)
        conf_path = xstrdup(rc);
    else
        conf_path = xdg_path("XDG_CONFIG_HOME", ".config", "runix/runix.conf");
    if (conf_path && conf_parse_file(conf_path, !(rc && *rc), on_setting, &c, err) < 0)
        goto out;

    /* The store. */
    const char *env_store = getenv("RUNIX_STORE");
    if (s->flag_store)
        s->store = xstrdup(s->flag_store);
    else if (env_store && *env_store)
        s->store = xstrdup(env_store);
    else if (c.store && *c.store)
        s->store = xstrdup(c.store);
    else
        s->store = xdg_path("XDG_DATA_HOME", ".local/share", "runix");
    if (!s->store) {
        rx_error_set(err, RX_EUSAGE, "no store location: set HOME, RUNIX_STORE or --store");
        goto out;
    }

#ifdef RUNIX_FRONT
    /* The front only runs programs: runix-core checks caches and keys when it fetches. */
    ret = 0;
#else
    /* CA certificates for https:// caches, as Nix finds them: the setting, whose default
     * is NIX_SSL_CERT_FILE, else SSL_CERT_FILE, else the system's. */
    const char *env_ca = getenv("NIX_SSL_CERT_FILE");
    if (!env_ca || !*env_ca)
        env_ca = getenv("SSL_CERT_FILE");
    if (c.ssl_cert_file && *c.ssl_cert_file)
        s->ssl_cert_file = xstrdup(c.ssl_cert_file);
    else if (env_ca && *env_ca)
        s->ssl_cert_file = xstrdup(env_ca);
    if (s->ssl_cert_file && access(s->ssl_cert_file, R_OK) < 0) {
        rx_error_errno(err, "CA certificate file '%s' (ssl-cert-file, NIX_SSL_CERT_FILE or "
                            "SSL_CERT_FILE) cannot be read",
                       s->ssl_cert_file);
        goto out;
    }

    /* Caches. */
    struct strv urls = {0};
    const char *env_caches = getenv("RUNIX_CACHES");
    const struct strv *base = NULL;
    struct strv env_v = {0};
    if (s->flag_caches.n) {
        base = &s->flag_caches;
    } else if (env_caches) {
        strv_push_words(&env_v, env_caches);
        base = &env_v;
    } else if (c.have_caches) {
        base = &c.caches;
    }
    if (base) {
        for (size_t i = 0; i < base->n; i++)
            strv_push(&urls, base->v[i]);
    } else {
        strv_push(&urls, DEFAULT_CACHE);
    }
    if (!s->flag_caches.n && !env_caches)
        for (size_t i = 0; i < c.extra_caches.n; i++)
            strv_push(&urls, c.extra_caches.v[i]);
    for (size_t i = 0; i < s->flag_extra_caches.n; i++)
        strv_push(&urls, s->flag_extra_caches.v[i]);
    strv_clear(&env_v);

    s->caches = xcalloc(urls.n ? urls.n : 1, sizeof *s->caches);
    for (size_t i = 0; i < urls.n; i++) {
        bool dup = false;
        for (size_t j = 0; j < s->ncaches; j++)
            dup |= strcmp(urls.v[i], s->caches[j].url) == 0;
        if (dup)
            continue;
        if (cache_init(&s->caches[s->ncaches], urls.v[i], s->ncaches, err) < 0) {
            strv_clear(&urls);
            goto out;
        }
        s->ncaches++;
    }
    strv_clear(&urls);

    /* Trusted keys. */
    const char *env_keys = getenv("RUNIX_TRUSTED_KEYS");
    if (env_keys) {
        struct strv v = {0};
        strv_push_words(&v, env_keys);
        int r = add_keys(s, &v, "RUNIX_TRUSTED_KEYS", err);
        strv_clear(&v);
        if (r < 0)
            goto out;
    } else if (c.have_keys) {
        if (add_keys(s, &c.keys, conf_path, err) < 0)
            goto out;
    } else if (trusted_keys_add(&s->keys, DEFAULT_TRUSTED_KEY, strlen(DEFAULT_TRUSTED_KEY),
                                err) < 0) {
        goto out;
    }
    if (!env_keys && add_keys(s, &c.extra_keys, conf_path, err) < 0)
        goto out;
    if (add_keys(s, &s->flag_keys, "--trusted-key", err) < 0)
        goto out;
    ret = 0;
#endif
out:
    free(c.store);
    free(c.ssl_cert_file);
    strv_clear(&c.caches);
    strv_clear(&c.extra_caches);
    strv_clear(&c.keys);
    strv_clear(&c.extra_keys);
    return ret;
}

#ifndef RUNIX_FRONT
void cli_settings_fetch_opts(struct cli_settings *s, struct fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->caches = s->caches;
    o->ncaches = s->ncaches;
    o->keys = &s->keys;
    o->no_verify = s->insecure;
    o->http_connections = s->http_connections;
    o->connect_timeout = s->connect_timeout;
    o->stalled_timeout = s->stalled_timeout;
    o->attempts = s->attempts;
    o->netrc_file = s->netrc_file;
    o->ca_file = s->ssl_cert_file;
    o->umask = cli_umask;
    o->output = s->quiet ? FETCH_QUIET : isatty(STDERR_FILENO) ? FETCH_TTY : FETCH_LINES;
}

#endif

void cli_settings_release(struct cli_settings *s)
{
    free(s->flag_store);
    strv_clear(&s->flag_caches);
    strv_clear(&s->flag_extra_caches);
    strv_clear(&s->flag_keys);
    free(s->store);
#ifndef RUNIX_FRONT
    for (size_t i = 0; i < s->ncaches; i++)
        cache_release(&s->caches[i]);
    free(s->caches);
    trusted_keys_release(&s->keys);
#endif
    free(s->netrc_file);
    free(s->ssl_cert_file);
}
