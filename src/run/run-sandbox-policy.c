/*
 * Combining a distributable's sandbox policy with the command line's options:
 * the command line restricts freely, and widens only by naming what it widens.
 */
#include "config.h"

#include <string.h>

#include "run-sandbox-policy.h"
#include "util-mem.h"

#include "banned.h"

char *sandbox_path_expand(const char *path, const char *home, const char *pwd,
                          struct rx_error **err)
{
    const char *base = NULL, *rest = path, *what = NULL;
    if (path[0] == '~') {
        base = home, rest = path + 1, what = "HOME";
    } else if (strncmp(path, "$PWD", 4) == 0) {
        base = pwd, rest = path + 4, what = "the working directory";
    }
    if (!what)
        return xstrdup(path);
    if (!base || base[0] != '/') {
        rx_error_set(err, RX_EUSAGE, "'%s' needs %s, which is not an absolute path here", path,
                     what);
        return NULL;
    }
    size_t n = strlen(base);
    while (n > 1 && base[n - 1] == '/')
        n--;
    if (n == 1 && *rest)
        n = 0; /* "/" + "/x" */
    return xasprintf("%.*s%s", (int)n, base, rest);
}

static void note(char ***notes, size_t *n, char *s)
{
    *notes = xrealloc(*notes, (*n + 1) * sizeof **notes);
    (*notes)[(*n)++] = s;
}

static int cwd_rank(enum sandbox_cwd c)
{
    return c == SANDBOX_CWD_NONE ? 0 : c == SANDBOX_CWD_RO ? 1 : 2;
}

static const char *cwd_name(enum sandbox_cwd c)
{
    return c == SANDBOX_CWD_NONE ? "none" : c == SANDBOX_CWD_RO ? "ro" : "rw";
}

static int net_rank(enum sandbox_net v)
{
    return v == SANDBOX_NET_NONE ? 0 : v == SANDBOX_NET_ALLOW ? 1 : 2;
}

static const char *net_name(enum sandbox_net v)
{
    return v == SANDBOX_NET_NONE ? "none" : v == SANDBOX_NET_ALLOW ? "allow:..." : "host";
}

/* Does the file's allow-list have this entry (a port 0 there is 80 and 443)? */
static bool allow_listed(const struct sandbox_policy *f, const struct sandbox_allow *a)
{
    for (size_t i = 0; i < f->nallow; i++) {
        if (strcmp(f->allow[i].host, a->host) != 0)
            continue;
        if (f->allow[i].port == a->port ||
            (f->allow[i].port == 0 && (a->port == 80 || a->port == 443)))
            return true;
    }
    return false;
}

/* Is path at or below dir? */
static bool below(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return true;
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Do the file's binds already let the program see (rw: write) path? */
static bool bind_covered(const struct sandbox_policy *f, const char *path, bool rw)
{
    bool covered = false;
    for (size_t i = 0; i < f->nbinds; i++) {
        const struct sandbox_bind *b = &f->binds[i];
        if (b->kind == SANDBOX_HIDE && (below(path, b->path) || below(b->path, path)))
            return false; /* it reveals (part of) what the file hides */
        if ((b->kind == SANDBOX_RW || (!rw && b->kind == SANDBOX_RO)) && below(path, b->path))
            covered = true;
    }
    return covered;
}

static void copy_strs(char ***v, size_t *n, char *const *from, size_t nfrom)
{
    for (size_t i = 0; i < nfrom; i++)
        sandbox_policy_add_str(v, n, from[i]);
}

void sandbox_policy_merge(const struct sandbox_policy *file, const struct sandbox_policy *cli,
                          unsigned set, struct sandbox_policy *out, char ***notes, size_t *n)
{
    static const struct sandbox_policy empty = SANDBOX_POLICY_INIT;
    *out = (struct sandbox_policy)SANDBOX_POLICY_INIT;
    const struct sandbox_policy *src = cli;
    bool from_file = file && file->on;
    if (from_file && (set & SANDBOX_SET_OFF)) {
        note(notes, n, xstrdup("--no-sandbox: the program runs without the sandbox"));
        out->log_fd = cli->log_fd;
        return;
    }
    if (!from_file)
        file = NULL;
    out->on = true;
    if (!file) {
        out->on = cli->on;
        file = &empty; /* adds nothing below */
    }
    out->log_fd = cli->log_fd;

    out->cwd = from_file ? file->cwd : cli->cwd;
    if (from_file && (set & SANDBOX_SET_CWD)) {
        out->cwd = cli->cwd;
        if (cwd_rank(cli->cwd) > cwd_rank(file->cwd))
            note(
                notes, n,
                xasprintf("--cwd %s: the policy says %s", cwd_name(cli->cwd), cwd_name(file->cwd)));
    }

    src = from_file && !(set & SANDBOX_SET_NET) ? file : cli;
    out->net = src->net;
    for (size_t i = 0; i < src->nallow; i++) {
        out->allow = xrealloc(out->allow, (out->nallow + 1) * sizeof *out->allow);
        out->allow[out->nallow].host = xstrdup(src->allow[i].host);
        out->allow[out->nallow++].port = src->allow[i].port;
    }
    if (from_file && (set & SANDBOX_SET_NET)) {
        if (net_rank(cli->net) > net_rank(file->net)) {
            note(notes, n,
                 xasprintf("--network %s: the policy says %s", net_name(cli->net),
                           net_name(file->net)));
        } else if (cli->net == SANDBOX_NET_ALLOW && file->net == SANDBOX_NET_ALLOW) {
            for (size_t i = 0; i < cli->nallow; i++)
                if (!allow_listed(file, &cli->allow[i]))
                    note(notes, n,
                         cli->allow[i].port
                             ? xasprintf("--network allow: %s:%d is not in the policy's list",
                                         cli->allow[i].host, cli->allow[i].port)
                             : xasprintf("--network allow: %s is not in the policy's list",
                                         cli->allow[i].host));
        }
    }

    for (size_t i = 0; i < file->nbinds; i++)
        sandbox_policy_add_bind(out, file->binds[i].kind, file->binds[i].path);
    for (size_t i = 0; i < cli->nbinds; i++) {
        const struct sandbox_bind *b = &cli->binds[i];
        sandbox_policy_add_bind(out, b->kind, b->path);
        if (from_file && b->kind != SANDBOX_HIDE &&
            !bind_covered(file, b->path, b->kind == SANDBOX_RW))
            note(notes, n,
                 xasprintf("--%s %s: the policy does not allow it",
                           b->kind == SANDBOX_RW ? "rw" : "ro", b->path));
    }

    out->allow_nested = file->allow_nested || cli->allow_nested;
    if (from_file && cli->allow_nested && !file->allow_nested)
        note(notes, n, xstrdup("--allow-nested: the program may create user namespaces"));
    out->clearenv = file->clearenv || cli->clearenv;
    copy_strs(&out->setenv, &out->nsetenv, file->setenv, file->nsetenv);
    copy_strs(&out->setenv, &out->nsetenv, cli->setenv, cli->nsetenv);
    copy_strs(&out->env_deny, &out->nenv_deny, file->env_deny, file->nenv_deny);
    copy_strs(&out->env_deny, &out->nenv_deny, cli->env_deny, cli->nenv_deny);
    copy_strs(&out->env_keep, &out->nenv_keep, file->env_keep, file->nenv_keep);
    for (size_t i = 0; i < cli->nenv_keep; i++) {
        bool had = false;
        for (size_t j = 0; j < file->nenv_keep && !had; j++)
            had = strcmp(file->env_keep[j], cli->env_keep[i]) == 0;
        if (had)
            continue;
        sandbox_policy_add_str(&out->env_keep, &out->nenv_keep, cli->env_keep[i]);
        if (from_file)
            note(notes, n,
                 xasprintf("--env-keep %s: the policy does not keep it", cli->env_keep[i]));
    }
}
