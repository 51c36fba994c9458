/*
 * Reading distributables: find the JSON payload, parse it with jansson, and
 * check every field before anything else looks at it.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

const char *const dist_known_systems[] = {
    "x86_64-linux", "aarch64-linux", "x86_64-darwin", "aarch64-darwin", NULL,
};

/* The here-document that carries the payload in the sh form. */
static const char sh_open[] = ": <<'RUNIX_JSON'";
static const char sh_close[] = "RUNIX_JSON";

/* Where in the JSON we are, as "systems.x86_64-linux.paths[0]". */
struct where {
    char s[512];
    size_t len;
};

static size_t where_push(struct where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t where_push(struct where *w, const char *fmt, ...)
{
    size_t old = w->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(w->s + w->len, sizeof w->s - w->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        w->len += (size_t)n < sizeof w->s - w->len ? (size_t)n : sizeof w->s - w->len - 1;
    return old;
}

static void where_pop(struct where *w, size_t old)
{
    w->len = old;
    w->s[old] = '\0';
}

static size_t where_key(struct where *w, const char *key)
{
    return w->len ? where_push(w, ".%s", key) : where_push(w, "%s", key);
}

struct parse {
    const char *label;
    struct rx_error **err;
    struct where w;
};

static int bad(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct parse *p, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->w.len)
        return rx_error_set(p->err, RX_EFORMAT, "'%s': %s: %s", p->label, p->w.s, msg);
    return rx_error_set(p->err, RX_EFORMAT, "'%s': %s", p->label, msg);
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "something else";
}

/* A string without NUL bytes, or -1 with an error. */
static int get_string(struct parse *p, const json_t *v, const char **out)
{
    if (!json_is_string(v))
        return bad(p, "expected a string, found %s", json_kind(v));
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return bad(p, "the string contains a NUL byte");
    *out = s;
    return 0;
}

static int get_store_path(struct parse *p, const json_t *v, struct store_path *out)
{
    const char *s;
    if (get_string(p, v, &s) < 0)
        return -1;
    struct rx_error *e = NULL;
    if (store_path_parse(s, strlen(s), out, &e) < 0) {
        bad(p, "expected a store path (/nix/store/<hash>-<name>): %s", e->msg);
        rx_error_free(e);
        return -1;
    }
    return 0;
}

/* Names of apps and of the distributable: they become file names. */
static bool name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '-'))
            return false;
    }
    return true;
}

/* "x86_64-linux": lower-case words joined by one '-'. */
static bool system_valid(const char *s)
{
    const char *dash = strchr(s, '-');
    if (!dash || dash == s || dash[1] == '\0' || strlen(s) > 64)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
            return false;
    return true;
}

static bool env_name_valid(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* Variables that runix and its engines set: a file may not change them. */
static bool env_name_reserved(const char *s)
{
    return strncmp(s, "RUNIX_", 6) == 0 || strcmp(s, "LD_PRELOAD") == 0 ||
           strcmp(s, "LD_AUDIT") == 0;
}

/* "name:<base64 of 32 bytes>", as Nix writes public keys. */
static bool public_key_valid(const char *s)
{
    const char *colon = strchr(s, ':');
    if (!colon || colon == s || strlen(colon + 1) != 44 || colon[44] != '=')
        return false;
    for (const char *c = colon + 1; c < colon + 44; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '+' || *c == '/'))
            return false;
    return true;
}

/* A program inside the main path: relative, without "." or ".." components. */
static bool program_valid(const char *s)
{
    if (*s == '\0' || *s == '/')
        return false;
    for (const char *c = s; *c;) {
        const char *end = strchr(c, '/');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n + (end ? 1 : 0);
        if (end && *c == '\0')
            return false; /* a trailing '/' */
    }
    return true;
}

static int cmp_path(const void *a, const void *b)
{
    return store_path_cmp(a, b);
}

static int cmp_narinfo(const void *a, const void *b)
{
    return store_path_cmp(&((const struct dist_narinfo *)a)->path,
                          &((const struct dist_narinfo *)b)->path);
}

static int cmp_app(const void *a, const void *b)
{
    return strcmp(((const struct dist_app *)a)->name, ((const struct dist_app *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool path_in(const struct store_path *sorted, size_t n, const struct store_path *p)
{
    return n && bsearch(p, sorted, n, sizeof *sorted, cmp_path) != NULL;
}

/* An array of store paths, without repeats; *out is sorted when `sort`. */
static int get_path_array(struct parse *p, const json_t *v, bool sort, struct store_path **out,
                          size_t *n)
{
    if (!json_is_array(v))
        return bad(p, "expected an array of store paths, found %s", json_kind(v));
    size_t len = json_array_size(v);
    struct store_path *paths = xcalloc(len ? len : 1, sizeof *paths);
    for (size_t i = 0; i < len; i++) {
        size_t old = where_push(&p->w, "[%zu]", i);
        if (get_store_path(p, json_array_get(v, i), &paths[i]) < 0) {
            free(paths);
            return -1;
        }
        where_pop(&p->w, old);
    }
    struct store_path *sorted = xcalloc(len ? len : 1, sizeof *sorted);
    memcpy(sorted, paths, len * sizeof *paths);
    qsort(sorted, len, sizeof *sorted, cmp_path);
    for (size_t i = 1; i < len; i++) {
        if (store_path_cmp(&sorted[i - 1], &sorted[i]) == 0) {
            char s[STORE_PATH_MAX + 1];
            store_path_format(&sorted[i], s);
            free(sorted);
            free(paths);
            return bad(p, "'%s' is listed twice", s);
        }
    }
    if (sort) {
        free(paths);
        paths = sorted;
    } else {
        free(sorted);
    }
    *out = paths;
    *n = len;
    return 0;
}

/* The StorePath line of a narinfo text must name `path`. */
static int check_narinfo(struct parse *p, const char *text, const struct store_path *path)
{
    char want[STORE_PATH_MAX + 1];
    store_path_format(path, want);
    if (strlen(text) > 1024 * 1024)
        return bad(p, "the narinfo is larger than 1 MiB");
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, "StorePath: ", 11) == 0) {
            const char *v = line + 11;
            size_t n = strcspn(v, "\n");
            if (n != strlen(want) || memcmp(v, want, n) != 0)
                return bad(p, "the narinfo is for '%.*s', not for '%s'", (int)(n > 300 ? 300 : n),
                           v, want);
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return bad(p, "expected a narinfo (with a StorePath line), as the cache serves it");
}

static void system_release(struct dist_system *s)
{
    free(s->system);
    free(s->paths);
    free(s->closure);
    for (size_t i = 0; i < s->nnarinfos; i++)
        free(s->narinfos[i].text);
    free(s->narinfos);
}

static int parse_system(struct parse *p, const char *key, const json_t *v, struct dist_system *s)
{
    s->system = xstrdup(key);
    if (!system_valid(key))
        return bad(p, "expected a system such as 'x86_64-linux' as the key");
    if (!json_is_object(v))
        return bad(p, "expected an object with 'paths', found %s", json_kind(v));

    json_t *paths = json_object_get(v, "paths");
    if (!paths)
        return bad(p, "missing required field 'paths' (the store paths to fetch, the main one first)");
    size_t old = where_key(&p->w, "paths");
    if (get_path_array(p, paths, false, &s->paths, &s->npaths) < 0)
        return -1;
    if (s->npaths == 0)
        return bad(p, "expected at least one store path");
    where_pop(&p->w, old);

    json_t *closure = json_object_get(v, "closure");
    if (closure) {
        old = where_key(&p->w, "closure");
        if (get_path_array(p, closure, true, &s->closure, &s->nclosure) < 0)
            return -1;
        for (size_t i = 0; i < s->npaths; i++) {
            if (!path_in(s->closure, s->nclosure, &s->paths[i])) {
                char ps[STORE_PATH_MAX + 1];
                store_path_format(&s->paths[i], ps);
                return bad(p, "the closure does not contain '%s' (from 'paths'): list every "
                              "store path of the closure",
                           ps);
            }
        }
        where_pop(&p->w, old);
    }

    json_t *narinfos = json_object_get(v, "narinfos");
    if (narinfos) {
        old = where_key(&p->w, "narinfos");
        if (!json_is_object(narinfos))
            return bad(p, "expected an object from store path to narinfo text, found %s",
                       json_kind(narinfos));
        s->narinfos = xcalloc(json_object_size(narinfos) + 1, sizeof *s->narinfos);
        const char *k;
        json_t *text;
        json_object_foreach(narinfos, k, text) {
            size_t o2 = where_push(&p->w, "[\"%.300s\"]", k);
            struct dist_narinfo *ni = &s->narinfos[s->nnarinfos];
            struct rx_error *e = NULL;
            if (store_path_parse(k, strlen(k), &ni->path, &e) < 0) {
                bad(p, "expected a store path as the key: %s", e->msg);
                rx_error_free(e);
                return -1;
            }
            if (s->closure && !path_in(s->closure, s->nclosure, &ni->path))
                return bad(p, "the path is not in the closure");
            const char *t;
            if (get_string(p, text, &t) < 0 || check_narinfo(p, t, &ni->path) < 0)
                return -1;
            ni->text = xstrdup(t);
            s->nnarinfos++;
            where_pop(&p->w, o2);
        }
        qsort(s->narinfos, s->nnarinfos, sizeof *s->narinfos, cmp_narinfo);
        where_pop(&p->w, old);
    }
    return 0;
}

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void sandbox_release(struct dist_sandbox *sb)
{
    if (!sb)
        return;
    free(sb->cwd);
    free(sb->network);
    strv_free(sb->ro, sb->nro);
    strv_free(sb->rw, sb->nrw);
    strv_free(sb->hide, sb->nhide);
    strv_free(sb->setenv, sb->nsetenv);
    strv_free(sb->keep, sb->nkeep);
    strv_free(sb->deny, sb->ndeny);
    free(sb);
}

/*
 * An object of environment variables (at the current key) into a sorted,
 * NULL-ended "NAME=VALUE" array *out of *n entries.
 */
static int get_env_object(struct parse *p, const json_t *obj, char ***out, size_t *n)
{
    if (!json_is_object(obj))
        return bad(p, "expected an object of strings, found %s", json_kind(obj));
    *out = xcalloc(json_object_size(obj) + 1, sizeof **out);
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        size_t o2 = where_key(&p->w, k);
        const char *s;
        if (!env_name_valid(k))
            return bad(p, "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
        if (env_name_reserved(k))
            return bad(p, "runix sets this variable itself; a distributable cannot");
        if (get_string(p, val, &s) < 0)
            return -1;
        size_t len = strlen(k) + 1 + strlen(s) + 1;
        char *kv = xmalloc(len);
        snprintf(kv, len, "%s=%s", k, s);
        (*out)[(*n)++] = kv;
        where_pop(&p->w, o2);
    }
    qsort(*out, *n, sizeof **out, cmp_str);
    return 0;
}

/* Refuse a key of a policy object that is not in `known` (NULL-terminated). */
static int policy_keys(struct parse *p, const json_t *obj, const char *const *known)
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)obj, k, val) {
        bool ok = false;
        for (size_t i = 0; known[i] && !ok; i++)
            ok = strcmp(k, known[i]) == 0;
        if (!ok) {
            char list[256] = "";
            size_t used = 0;
            for (size_t i = 0; known[i]; i++) {
                int n = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "",
                                 known[i]);
                if (n > 0 && (size_t)n < sizeof list - used)
                    used += (size_t)n;
            }
            return bad(p, "unknown field '%.100s' in a sandbox policy (this runix knows %s); a "
                          "policy field runix does not know could loosen it, so the file is "
                          "refused: it needs a newer runix (format %d.%d here)",
                       k, list, DIST_FORMAT_MAJOR, DIST_FORMAT_MINOR);
        }
    }
    return 0;
}

/* "/abs", "~", "~/rel", "$PWD" or "$PWD/rel", without ".", ".." or empty components. */
static bool policy_path_valid(const char *s)
{
    const char *rest;
    if (s[0] == '/')
        rest = s;
    else if (s[0] == '~')
        rest = s + 1;
    else if (strncmp(s, "$PWD", 4) == 0)
        rest = s + 4;
    else
        return false;
    if (*rest == '\0')
        return true; /* "~" or "$PWD" */
    if (*rest != '/')
        return false;
    if (strcmp(rest, "/") == 0)
        return true;
    return program_valid(rest + 1);
}

/* Each entry of allow:HOST[:PORT],...: a name, *.name, an IPv4 literal or [IPv6]. */
static bool network_valid(const char *s)
{
    if (strcmp(s, "none") == 0 || strcmp(s, "host") == 0)
        return true;
    if (strncmp(s, "allow:", 6) != 0)
        return false;
    const char *c = s + 6;
    if (*c == '\0')
        return false;
    while (*c) {
        const char *end = strchr(c, ',');
        size_t n = end ? (size_t)(end - c) : strlen(c);
        if (n == 0 || n > 300)
            return false;
        size_t host = n;
        const char *port = NULL;
        if (c[0] == '[') {
            const char *close = memchr(c, ']', n);
            if (!close || close == c + 1)
                return false;
            for (const char *h = c + 1; h < close; h++)
                if (!(strchr("0123456789abcdefABCDEF:.", *h)))
                    return false;
            host = (size_t)(close - c) + 1;
            if (host < n) {
                if (c[host] != ':')
                    return false;
                port = c + host + 1;
            }
        } else {
            const char *colon = memchr(c, ':', n);
            if (colon) {
                host = (size_t)(colon - c);
                port = colon + 1;
            }
            if (host == 0)
                return false;
            size_t i = (host > 2 && c[0] == '*' && c[1] == '.') ? 2 : 0;
            for (; i < host; i++)
                if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
                      (c[i] >= '0' && c[i] <= '9') || c[i] == '.' || c[i] == '-'))
                    return false;
        }
        if (port) {
            size_t plen = n - (size_t)(port - c);
            if (plen == 0 || plen > 5)
                return false;
            unsigned v = 0;
            for (size_t i = 0; i < plen; i++) {
                if (port[i] < '0' || port[i] > '9')
                    return false;
                v = v * 10 + (unsigned)(port[i] - '0');
            }
            if (v < 1 || v > 65535)
                return false;
        }
        c += n + (end ? 1 : 0);
        if (end && *c == '\0')
            return false;
    }
    return true;
}

/* An array of strings that pass `ok` (NULL: any string without '=' or NUL). */
static int policy_strings(struct parse *p, const json_t *obj, const char *key,
                          bool (*ok)(const char *), const char *what, char ***out, size_t *n)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    size_t old = where_key(&p->w, key);
    if (!json_is_array(v))
        return bad(p, "expected an array of %s, found %s", what, json_kind(v));
    *out = xcalloc(json_array_size(v) + 1, sizeof **out);
    for (size_t i = 0; i < json_array_size(v); i++) {
        size_t o2 = where_push(&p->w, "[%zu]", i);
        const char *s;
        if (get_string(p, json_array_get(v, i), &s) < 0)
            return -1;
        if (!ok(s))
            return bad(p, "expected %s, found '%.300s'", what, s);
        (*out)[(*n)++] = xstrdup(s);
        where_pop(&p->w, o2);
    }
    where_pop(&p->w, old);
    return 0;
}

static bool env_pattern_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '*'))
            return false;
    return true;
}

static int policy_bool(struct parse *p, const json_t *obj, const char *key, bool *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    size_t old = where_key(&p->w, key);
    if (!json_is_boolean(v))
        return bad(p, "expected true or false, found %s", json_kind(v));
    *out = json_is_true(v);
    where_pop(&p->w, old);
    return 0;
}

static int parse_sandbox_env(struct parse *p, const json_t *v, struct dist_sandbox *sb)
{
    static const char *const known[] = {"clear", "set", "keep", "deny", NULL};
    if (!json_is_object(v))
        return bad(p, "expected an object with 'clear', 'set', 'keep' or 'deny', found %s",
                   json_kind(v));
    if (policy_keys(p, v, known) < 0 || policy_bool(p, v, "clear", &sb->clearenv) < 0)
        return -1;
    const json_t *set = json_object_get(v, "set");
    if (set) {
        size_t old = where_key(&p->w, "set");
        if (get_env_object(p, set, &sb->setenv, &sb->nsetenv) < 0)
            return -1;
        where_pop(&p->w, old);
    }
    if (policy_strings(p, v, "keep", env_name_valid, "environment variable names", &sb->keep,
                       &sb->nkeep) < 0 ||
        policy_strings(p, v, "deny", env_pattern_valid,
                       "variable names or patterns (NAME, PREFIX*, *SUFFIX, *MID*)", &sb->deny,
                       &sb->ndeny) < 0)
        return -1;
    return 0;
}

static int parse_sandbox(struct parse *p, const json_t *v, struct dist_sandbox **out)
{
    static const char *const known[] = {"enable", "cwd", "ro", "rw", "hide", "network", "env",
                                        NULL};
    if (json_is_boolean(v)) {
        *out = xcalloc(1, sizeof **out);
        (*out)->enable = json_is_true(v);
        return 0;
    }
    if (!json_is_object(v))
        return bad(p, "expected true, false or an object (a sandbox policy), found %s",
                   json_kind(v));
    struct dist_sandbox *sb = *out = xcalloc(1, sizeof *sb);
    sb->enable = true;
    if (policy_keys(p, v, known) < 0 || policy_bool(p, v, "enable", &sb->enable) < 0)
        return -1;
    const char *s;
    const json_t *cwd = json_object_get(v, "cwd");
    if (cwd) {
        size_t old = where_key(&p->w, "cwd");
        if (get_string(p, cwd, &s) < 0)
            return -1;
        if (strcmp(s, "rw") != 0 && strcmp(s, "ro") != 0 && strcmp(s, "none") != 0)
            return bad(p, "expected 'rw', 'ro' or 'none', found '%.100s'", s);
        sb->cwd = xstrdup(s);
        where_pop(&p->w, old);
    }
    const json_t *net = json_object_get(v, "network");
    if (net) {
        size_t old = where_key(&p->w, "network");
        if (get_string(p, net, &s) < 0)
            return -1;
        if (!network_valid(s))
            return bad(p, "expected 'none', 'host' or 'allow:HOST[:PORT],...' (HOST a name, "
                          "*.domain, an IPv4 literal or [IPv6]), found '%.300s'",
                       s);
        sb->network = xstrdup(s);
        where_pop(&p->w, old);
    }
    static const char what[] = "paths ('/abs', '~/rel' or '$PWD/rel', without '.' or '..')";
    if (policy_strings(p, v, "ro", policy_path_valid, what, &sb->ro, &sb->nro) < 0 ||
        policy_strings(p, v, "rw", policy_path_valid, what, &sb->rw, &sb->nrw) < 0 ||
        policy_strings(p, v, "hide", policy_path_valid, what, &sb->hide, &sb->nhide) < 0)
        return -1;
    const json_t *env = json_object_get(v, "env");
    if (env) {
        size_t old = where_key(&p->w, "env");
        if (parse_sandbox_env(p, env, sb) < 0)
            return -1;
        where_pop(&p->w, old);
    }
    return 0;
}

static void app_release(struct dist_app *a)
{
    free(a->name);
    free(a->program);
    for (size_t i = 0; i < a->nargs; i++)
        free(a->args[i]);
    free(a->args);
    for (size_t i = 0; i < a->nenv; i++)
        free(a->env[i]);
    free(a->env);
    sandbox_release(a->sandbox);
}

static int parse_app(struct parse *p, const char *key, const json_t *v, struct dist_app *a)
{
    a->name = xstrdup(key);
    if (!name_valid(key))
        return bad(p, "expected an app name of letters, digits and '._+-' as the key");
    if (!json_is_object(v))
        return bad(p, "expected an object with 'program', found %s", json_kind(v));

    json_t *prog = json_object_get(v, "program");
    if (!prog)
        return bad(p, "missing required field 'program'");
    size_t old = where_key(&p->w, "program");
    const char *s;
    if (get_string(p, prog, &s) < 0)
        return -1;
    if (!program_valid(s))
        return bad(p, "expected a path inside the main store path ('bin/tool') or a program "
                      "name ('tool'), found '%.300s'",
                   s);
    a->program = xstrdup(s);
    where_pop(&p->w, old);

    json_t *args = json_object_get(v, "args");
    if (args) {
        old = where_key(&p->w, "args");
        if (!json_is_array(args))
            return bad(p, "expected an array of strings, found %s", json_kind(args));
        a->args = xcalloc(json_array_size(args) + 1, sizeof *a->args);
        for (size_t i = 0; i < json_array_size(args); i++) {
            size_t o2 = where_push(&p->w, "[%zu]", i);
            if (get_string(p, json_array_get(args, i), &s) < 0)
                return -1;
            a->args[a->nargs++] = xstrdup(s);
            where_pop(&p->w, o2);
        }
        where_pop(&p->w, old);
    }

    json_t *env = json_object_get(v, "env");
    if (env) {
        old = where_key(&p->w, "env");
        if (get_env_object(p, env, &a->env, &a->nenv) < 0)
            return -1;
        where_pop(&p->w, old);
    }

    json_t *sb = json_object_get(v, "sandbox");
    if (sb) {
        old = where_key(&p->w, "sandbox");
        if (parse_sandbox(p, sb, &a->sandbox) < 0)
            return -1;
        where_pop(&p->w, old);
    }
    return 0;
}

static void cache_release(struct dist_cache *c)
{
    free(c->url);
    for (size_t i = 0; i < c->nkeys; i++)
        free(c->keys[i]);
    free(c->keys);
}

static int parse_cache(struct parse *p, const json_t *v, struct dist_cache *c)
{
    if (!json_is_object(v))
        return bad(p, "expected an object with 'url' and 'keys', found %s", json_kind(v));
    json_t *url = json_object_get(v, "url");
    if (!url)
        return bad(p, "missing required field 'url'");
    size_t old = where_key(&p->w, "url");
    const char *s;
    if (get_string(p, url, &s) < 0)
        return -1;
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0 &&
        strncmp(s, "file://", 7) != 0 && strncmp(s, "s3://", 5) != 0)
        return bad(p, "expected a cache URL (https://, http://, file:// or s3://), found '%.300s'",
                   s);
    c->url = xstrdup(s);
    where_pop(&p->w, old);

    json_t *keys = json_object_get(v, "keys");
    if (keys) {
        old = where_key(&p->w, "keys");
        if (!json_is_array(keys))
            return bad(p, "expected an array of public keys, found %s", json_kind(keys));
        c->keys = xcalloc(json_array_size(keys) + 1, sizeof *c->keys);
        for (size_t i = 0; i < json_array_size(keys); i++) {
            size_t o2 = where_push(&p->w, "[%zu]", i);
            if (get_string(p, json_array_get(keys, i), &s) < 0)
                return -1;
            if (!public_key_valid(s))
                return bad(p, "expected a public key 'name:<base64 of 32 bytes>', found '%.300s'",
                           s);
            c->keys[c->nkeys++] = xstrdup(s);
            where_pop(&p->w, o2);
        }
        where_pop(&p->w, old);
    }
    return 0;
}

static int parse_format(struct parse *p, const json_t *v, struct dist *d)
{
    const char *s;
    size_t old = where_key(&p->w, "format");
    if (get_string(p, v, &s) < 0)
        return -1;
    char *end;
    errno = 0;
    unsigned long major = strtoul(s, &end, 10);
    unsigned long minor = 0;
    bool ok = end != s && s[0] >= '0' && s[0] <= '9' && errno == 0 && major < 1000;
    if (ok && *end == '.') {
        const char *m = end + 1;
        minor = strtoul(m, &end, 10);
        ok = end != m && m[0] >= '0' && m[0] <= '9' && errno == 0 && minor < 1000000;
    }
    if (!ok || *end != '\0')
        return bad(p, "expected a format version 'MAJOR.MINOR' such as '1.0', found '%.100s'", s);
    if (major != DIST_FORMAT_MAJOR)
        return bad(p, "format %lu.%lu is not one this runix reads (%d.x): %s", major, minor,
                   DIST_FORMAT_MAJOR,
                   major > DIST_FORMAT_MAJOR ? "upgrade runix" : "regenerate the file");
    d->format_major = (unsigned)major;
    d->format_minor = (unsigned)minor;
    where_pop(&p->w, old);
    return 0;
}

static int parse_object(struct parse *p, const json_t *top, struct dist *d)
{
    if (!json_is_object(top))
        return bad(p, "expected a JSON object after the first line, found %s", json_kind(top));

    json_t *v = json_object_get(top, "format");
    if (!v)
        return bad(p, "missing required field 'format' (the format version, \"%d.%d\")",
                   DIST_FORMAT_MAJOR, DIST_FORMAT_MINOR);
    if (parse_format(p, v, d) < 0)
        return -1;

    const char *s;
    v = json_object_get(top, "name");
    if (!v)
        return bad(p, "missing required field 'name'");
    size_t old = where_key(&p->w, "name");
    if (get_string(p, v, &s) < 0)
        return -1;
    if (!name_valid(s))
        return bad(p, "expected a name of letters, digits and '._+-' (at most 100, not starting "
                      "with '.' or '-'), found '%.100s'",
                   s);
    d->name = xstrdup(s);
    where_pop(&p->w, old);

    v = json_object_get(top, "description");
    if (v) {
        old = where_key(&p->w, "description");
        if (get_string(p, v, &s) < 0)
            return -1;
        d->description = xstrdup(s);
        where_pop(&p->w, old);
    }

    v = json_object_get(top, "systems");
    if (!v)
        return bad(p, "missing required field 'systems' (the store paths for each system)");
    old = where_key(&p->w, "systems");
    if (!json_is_object(v) || json_object_size(v) == 0)
        return bad(p, "expected an object from system to store paths, with at least one system");
    d->systems = xcalloc(json_object_size(v), sizeof *d->systems);
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val) {
        size_t o2 = where_key(&p->w, k);
        int r = parse_system(p, k, val, &d->systems[d->nsystems++]);
        if (r < 0)
            return -1;
        where_pop(&p->w, o2);
    }
    where_pop(&p->w, old);

    v = json_object_get(top, "apps");
    if (v) {
        old = where_key(&p->w, "apps");
        if (!json_is_object(v))
            return bad(p, "expected an object from app name to app, found %s", json_kind(v));
        d->apps = xcalloc(json_object_size(v) + 1, sizeof *d->apps);
        json_object_foreach(v, k, val) {
            size_t o2 = where_key(&p->w, k);
            if (parse_app(p, k, val, &d->apps[d->napps++]) < 0)
                return -1;
            where_pop(&p->w, o2);
        }
        qsort(d->apps, d->napps, sizeof *d->apps, cmp_app);
        where_pop(&p->w, old);
    }

    v = json_object_get(top, "caches");
    if (v) {
        old = where_key(&p->w, "caches");
        if (!json_is_array(v))
            return bad(p, "expected an array of caches, found %s", json_kind(v));
        d->caches = xcalloc(json_array_size(v) + 1, sizeof *d->caches);
        for (size_t i = 0; i < json_array_size(v); i++) {
            size_t o2 = where_push(&p->w, "[%zu]", i);
            if (parse_cache(p, json_array_get(v, i), &d->caches[d->ncaches++]) < 0)
                return -1;
            where_pop(&p->w, o2);
        }
        where_pop(&p->w, old);
    }
    return 0;
}

/* The first line names runix: "#!/usr/bin/env runix", "#!/opt/bin/runix run". */
static bool shebang_names_runix(const char *head, size_t len)
{
    if (len < 2 || head[0] != '#' || head[1] != '!')
        return false;
    const char *nl = memchr(head, '\n', len);
    size_t n = nl ? (size_t)(nl - head) : len;
    for (size_t i = 2; i + 5 <= n; i++) {
        if (memcmp(head + i, "runix", 5) != 0)
            continue;
        bool start = head[i - 1] == '/' || head[i - 1] == ' ' || head[i - 1] == '\t' ||
                     head[i - 1] == '!';
        bool end = i + 5 == n || head[i + 5] == ' ' || head[i + 5] == '\t' || head[i + 5] == '\r';
        if (start && end)
            return true;
    }
    return false;
}

/* The sh form: "#!..." then the line ": <<'RUNIX_JSON'". */
static const char *sh_payload_start(const char *text, size_t len)
{
    if (len < 2 || text[0] != '#' || text[1] != '!')
        return NULL;
    const char *nl = memchr(text, '\n', len);
    if (!nl)
        return NULL;
    const char *l2 = nl + 1;
    size_t rest = len - (size_t)(l2 - text);
    size_t n = sizeof sh_open - 1;
    if (rest < n + 1 || memcmp(l2, sh_open, n) != 0 || l2[n] != '\n')
        return NULL;
    return l2 + n + 1;
}

bool dist_sniff(const char *head, size_t len)
{
    return shebang_names_runix(head, len) || sh_payload_start(head, len) != NULL;
}

/* The JSON part of the file and the line it starts on. */
static int payload(struct parse *p, const char *text, size_t len, const char **start,
                   size_t *plen, int *line0)
{
    const char *sh = sh_payload_start(text, len);
    if (sh) {
        const char *end = text + len;
        for (const char *l = sh; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            size_t n = nl ? (size_t)(nl - l) : (size_t)(end - l);
            if (n == sizeof sh_close - 1 && memcmp(l, sh_close, n) == 0) {
                *start = sh;
                *plen = (size_t)(l - sh);
                *line0 = 2;
                return 0;
            }
            if (!nl)
                break;
            l = nl + 1;
        }
        return bad(p, "the sh script has no line '%s' closing its payload", sh_close);
    }
    if (!shebang_names_runix(text, len))
        return bad(p, "not a distributable: expected a first line such as '#!/usr/bin/env runix'");
    const char *nl = memchr(text, '\n', len);
    if (!nl)
        return bad(p, "expected a JSON object after the first line, found nothing");
    *start = nl + 1;
    *plen = len - (size_t)(nl + 1 - text);
    *line0 = 1;
    return 0;
}

int dist_payload(const char *label, const char *text, size_t len, const char **json,
                 size_t *jlen, struct rx_error **err)
{
    struct parse p = { .label = label, .err = err };
    int line0;
    return payload(&p, text, len, json, jlen, &line0);
}

int dist_parse(const char *label, const char *text, size_t len, struct dist *out,
               struct rx_error **err)
{
    struct parse p = { .label = label, .err = err };
    memset(out, 0, sizeof *out);
    if (len > DIST_FILE_MAX)
        return bad(&p, "larger than %u MiB", DIST_FILE_MAX >> 20);

    const char *json = NULL;
    size_t jlen = 0;
    int line0 = 0;
    if (payload(&p, text, len, &json, &jlen, &line0) < 0)
        return -1;
    json_error_t jerr;
    json_t *top = json_loadb(json, jlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!top && strstr(jerr.text, "JSON_ALLOW_NUL"))
        return bad(&p, "line %d, column %d: a string holds \\u0000, which no field may contain",
                   jerr.line + line0, jerr.column);
    if (!top)
        return bad(&p, "line %d, column %d: %s", jerr.line + line0, jerr.column, jerr.text);
    int r = parse_object(&p, top, out);
    json_decref(top);
    if (r < 0)
        dist_release(out);
    return r;
}

int dist_load(const char *file, struct dist *out, struct rx_error **err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(file, &st) < 0)
        return rx_error_errno(err, "cannot read '%s'", file);
    if (!S_ISREG(st.st_mode))
        return rx_error_set(err, RX_EFORMAT, "'%s' is not a regular file", file);
    struct rx_buf b = RX_BUF_INIT(DIST_FILE_MAX);
    if (read_file(file, &b, err) < 0)
        return -1;
    int r = dist_parse(file, b.data ? b.data : "", b.len, out, err);
    rx_buf_release(&b);
    return r;
}

void dist_release(struct dist *d)
{
    free(d->name);
    free(d->description);
    for (size_t i = 0; i < d->nsystems; i++)
        system_release(&d->systems[i]);
    free(d->systems);
    for (size_t i = 0; i < d->napps; i++)
        app_release(&d->apps[i]);
    free(d->apps);
    for (size_t i = 0; i < d->ncaches; i++)
        cache_release(&d->caches[i]);
    free(d->caches);
    memset(d, 0, sizeof *d);
}

const char *dist_host_system(void)
{
#if defined(__x86_64__) && defined(__linux__)
    return "x86_64-linux";
#elif defined(__aarch64__) && defined(__linux__)
    return "aarch64-linux";
#elif defined(__x86_64__) && defined(__APPLE__)
    return "x86_64-darwin";
#elif defined(__aarch64__) && defined(__APPLE__)
    return "aarch64-darwin";
#elif defined(__i386__) && defined(__linux__)
    return "i686-linux";
#else
    return "unknown";
#endif
}

const struct dist_system *dist_system_find(const struct dist *d, const char *label,
                                           const char *system, struct rx_error **err)
{
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < d->nsystems; i++) {
        if (strcmp(d->systems[i].system, system) == 0)
            return &d->systems[i];
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                         d->systems[i].system);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    rx_error_set(err, RX_ENOTFOUND, "'%s' has nothing for %s; it lists %s", label, system, list);
    return NULL;
}

const struct dist_app *dist_app_find(const struct dist *d, const char *label, const char *name,
                                     struct rx_error **err)
{
    static const struct dist_app implicit = { .name = (char *)"default" };
    if (!name || !*name)
        name = "default";
    struct dist_app key = { .name = (char *)name };
    const struct dist_app *a =
        d->napps ? bsearch(&key, d->apps, d->napps, sizeof *d->apps, cmp_app) : NULL;
    if (a)
        return a;
    if (d->napps == 0 && strcmp(name, "default") == 0)
        return &implicit;
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < d->napps; i++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", d->apps[i].name);
        if (n > 0 && (size_t)n < sizeof list - used)
            used += (size_t)n;
    }
    if (d->napps == 0)
        rx_error_set(err, RX_ENOTFOUND, "'%s' has no app '%s'; it has only the default app", label,
                     name);
    else
        rx_error_set(err, RX_ENOTFOUND, "'%s' has no app '%s'; its apps are: %s", label, name,
                     list);
    return NULL;
}

const char *dist_narinfo_find(const struct dist_system *s, const struct store_path *path)
{
    struct dist_narinfo key = { .path = *path };
    const struct dist_narinfo *ni =
        s->nnarinfos ? bsearch(&key, s->narinfos, s->nnarinfos, sizeof *s->narinfos, cmp_narinfo)
                     : NULL;
    return ni ? ni->text : NULL;
}
