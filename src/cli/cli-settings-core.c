/* The settings only runix-core uses: CA certificates, caches, trusted keys, fetch options. */
#include "config.h"
#include "cli-settings.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli-settings-internal.h"
#include "cli.h"
#include "fetch.h"
#include "util-mem.h"

#include "banned.h"

static int add_keys(struct cli_settings *s, const struct strv *v, const char *source,
                    struct rx_error **err)
{
    for (size_t i = 0; i < v->n; i++) {
        if (trusted_keys_add(&s->keys, v->v[i], strlen(v->v[i]), err) < 0) {
            /* The user's setting: a usage error, as a bad --trusted-key is. */
            rx_error_wrap(err, "%s: trusted key '%s'", source, v->v[i]);
            if (err && *err)
                (*err)->code = RX_EUSAGE;
            return -1;
        }
    }
    return 0;
}

/*
 * Where Linux systems keep their CA bundle, most common first: Debian,
 * Ubuntu, Arch, Gentoo and Alpine; Fedora and RHEL; RHEL 7 and CentOS;
 * openSUSE; Alpine and others; Arch's extracted copy.  The one-file runix
 * has no libcurl of the host to know it, so it looks here.
 */
static const char *const system_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/etc/ca-certificates/extracted/tls-ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
};

const char *cli_system_ca_file(void)
{
    if (!RUNIX_ONE_FILE)
        return NULL;
    for (size_t i = 0; i < ARRAY_SIZE(system_ca_files); i++)
        if (access(system_ca_files[i], R_OK) == 0)
            return system_ca_files[i];
    return NULL;
}

/* CA certificates for https:// caches, as Nix finds them: the setting, whose default
 * is NIX_SSL_CERT_FILE, else SSL_CERT_FILE, else the system's (libcurl's, or for the
 * one-file runix, the first of system_ca_files that exists). */
static int resolve_ca_file(struct cli_settings *s, const struct cli_conf *c, struct rx_error **err)
{
    const char *env_ca = getenv("NIX_SSL_CERT_FILE");
    if (!env_ca || !*env_ca)
        env_ca = getenv("SSL_CERT_FILE");
    if (c->ssl_cert_file && *c->ssl_cert_file)
        s->ssl_cert_file = xstrdup(c->ssl_cert_file);
    else if (env_ca && *env_ca)
        s->ssl_cert_file = xstrdup(env_ca);
    if (!s->ssl_cert_file && cli_system_ca_file())
        s->ssl_cert_file = xstrdup(cli_system_ca_file());
    if (s->ssl_cert_file && access(s->ssl_cert_file, R_OK) < 0)
        return rx_error_errno(err,
                              "CA certificate file '%s' (ssl-cert-file, NIX_SSL_CERT_FILE or "
                              "SSL_CERT_FILE) cannot be read",
                              s->ssl_cert_file);
    return 0;
}

/*
 * The cache URLs, strongest first: --cache, else $RUNIX_CACHES, else the
 * config file's substituters, else the default; then the config file's
 * extra-substituters (unless --cache or $RUNIX_CACHES replaced the list),
 * then --extra-cache.
 */
static void cache_urls(const struct cli_settings *s, const struct cli_conf *c, struct strv *urls)
{
    const char *env_caches = getenv("RUNIX_CACHES");
    const struct strv *base = NULL;
    struct strv env_v = {0};
    if (s->flag_caches.n) {
        base = &s->flag_caches;
    } else if (env_caches) {
        cli_strv_push_words(&env_v, env_caches);
        base = &env_v;
    } else if (c->have_caches) {
        base = &c->caches;
    }
    if (base) {
        for (size_t i = 0; i < base->n; i++)
            cli_strv_push(urls, base->v[i]);
    } else {
        cli_strv_push(urls, DEFAULT_CACHE);
    }
    if (!s->flag_caches.n && !env_caches)
        for (size_t i = 0; i < c->extra_caches.n; i++)
            cli_strv_push(urls, c->extra_caches.v[i]);
    for (size_t i = 0; i < s->flag_extra_caches.n; i++)
        cli_strv_push(urls, s->flag_extra_caches.v[i]);
    cli_strv_clear(&env_v);
}

/* Each URL once, in order. */
static int resolve_caches(struct cli_settings *s, const struct cli_conf *c, struct rx_error **err)
{
    struct strv urls = {0};
    int ret = 0;
    cache_urls(s, c, &urls);
    s->caches = xcalloc(urls.n ? urls.n : 1, sizeof *s->caches);
    for (size_t i = 0; i < urls.n; i++) {
        bool dup = false;
        for (size_t j = 0; j < s->ncaches; j++)
            dup |= strcmp(urls.v[i], s->caches[j].url) == 0;
        if (dup)
            continue;
        if (cache_init(&s->caches[s->ncaches], urls.v[i], s->ncaches, err) < 0) {
            ret = -1;
            /* Name the option when the URL came from the command line. */
            const char *opt = NULL;
            for (size_t j = 0; j < s->flag_caches.n; j++)
                if (strcmp(urls.v[i], s->flag_caches.v[j]) == 0)
                    opt = "--cache";
            for (size_t j = 0; !opt && j < s->flag_extra_caches.n; j++)
                if (strcmp(urls.v[i], s->flag_extra_caches.v[j]) == 0)
                    opt = "--extra-cache";
            if (opt && err && *err && (*err)->code == RX_EUSAGE)
                rx_error_wrap(err, "bad %s", opt);
            break;
        }
        s->ncaches++;
    }
    cli_strv_clear(&urls);
    return ret;
}

/*
 * The trusted keys: $RUNIX_TRUSTED_KEYS replaces the config file's
 * trusted-public-keys and extra-trusted-public-keys (else the default key);
 * --trusted-key adds to either.
 */
static int resolve_keys(struct cli_settings *s, const struct cli_conf *c, struct rx_error **err)
{
    const char *env_keys = getenv("RUNIX_TRUSTED_KEYS");
    if (env_keys) {
        struct strv v = {0};
        cli_strv_push_words(&v, env_keys);
        int r = add_keys(s, &v, "RUNIX_TRUSTED_KEYS", err);
        cli_strv_clear(&v);
        if (r < 0)
            return -1;
    } else if (c->have_keys) {
        if (add_keys(s, &c->keys, c->path, err) < 0)
            return -1;
    } else if (trusted_keys_add(&s->keys, DEFAULT_TRUSTED_KEY, strlen(DEFAULT_TRUSTED_KEY), err) <
               0) {
        return -1;
    }
    if (!env_keys && add_keys(s, &c->extra_keys, c->path, err) < 0)
        return -1;
    /* A bad value on the command line is a usage error, named as given. */
    for (size_t i = 0; i < s->flag_keys.n; i++) {
        const char *k = s->flag_keys.v[i];
        struct rx_error *e = NULL;
        if (trusted_keys_add(&s->keys, k, strlen(k), &e) < 0) {
            rx_error_set(err, RX_EUSAGE, "bad --trusted-key '%s': %s", k, e ? e->msg : "");
            rx_error_free(e);
            return -1;
        }
    }
    return 0;
}

int cli_settings_finish_keys(struct cli_settings *s, struct rx_error **err)
{
    struct cli_conf c;
    int ret = -1;
    if (cli_conf_read(&c, s, err) == 0)
        ret = resolve_keys(s, &c, err);
    cli_conf_release(&c);
    return ret;
}

int cli_settings_resolve_core(struct cli_settings *s, const struct cli_conf *c,
                              struct rx_error **err)
{
    if (resolve_ca_file(s, c, err) < 0 || resolve_caches(s, c, err) < 0 ||
        resolve_keys(s, c, err) < 0)
        return -1;
    return 0;
}

void cli_settings_release_core(struct cli_settings *s)
{
    for (size_t i = 0; i < s->ncaches; i++)
        cache_release(&s->caches[i]);
    free(s->caches);
    trusted_keys_release(&s->keys);
}

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
    o->narinfo_timeout = s->narinfo_timeout;
    o->attempts = s->attempts;
    o->netrc_file = s->netrc_file;
    o->host_notes = s->host_notes;
    o->ca_file = s->ssl_cert_file;
    o->umask = cli_umask;
}
