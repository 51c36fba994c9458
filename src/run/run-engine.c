/* Choosing an engine for runix run and shell, entering it, and exec'ing the program in it. */
#include "config.h"

#include "run-engine-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run-map.h"
#include "util-mem.h"

#include "banned.h"

int engine_parse(const char *name)
{
    if (strcmp(name, "auto") == 0)
        return ENGINE_AUTO;
    if (strcmp(name, "userns") == 0)
        return ENGINE_USERNS;
    if (strcmp(name, "preload") == 0)
        return ENGINE_PRELOAD;
    return -1;
}

const char *engine_name(enum engine_kind k)
{
    switch (k) {
    case ENGINE_USERNS:
        return "userns";
    case ENGINE_PRELOAD:
        return "preload";
    default:
        return "auto";
    }
}

int engine_enter(enum engine_kind want, const char *root, const char *store_dir,
                 const char *const *paths, size_t npaths, struct engine_choice *out,
                 struct rx_error **err)
{
    *out = (struct engine_choice)ENGINE_CHOICE_INIT;
    enum engine_kind k = want;
    _cleanup_free_ char *state = NULL;
    bool known = false;
    if (k == ENGINE_AUTO) {
        state = xasprintf("%s/nix/var/runix/userns-ok", root);
        /* Probe once per boot; afterwards enter directly (a failed unshare changes nothing). */
        known = engine_userns_known_good(state);
        if (known) {
            k = ENGINE_USERNS;
        } else if (engine_userns_probe(&out->userns_why) == 0) {
            engine_userns_remember(state, true);
            k = ENGINE_USERNS;
        } else {
            k = ENGINE_PRELOAD;
        }
    }
    if (k == ENGINE_USERNS) {
        struct rx_error *e = NULL;
        int r = engine_userns_enter(store_dir, paths, npaths, &out->warning, &e);
        if (r > 0 && known) {
            /* It worked earlier in this boot, but not now: fall back, probe next time. */
            engine_userns_remember(state, false);
            out->userns_why = e;
            k = ENGINE_PRELOAD;
        } else if (r != 0) {
            if (known)
                engine_userns_remember(state, false);
            engine_choice_release(out);
            if (err)
                *err = e;
            else
                rx_error_free(e);
            return rx_error_wrap(err, "userns engine");
        }
    }
    if (k != ENGINE_USERNS && k != ENGINE_PRELOAD)
        BUG("engine_enter: no engine chosen for '%s'", engine_name(want));
    out->kind = k;
    return 0;
}

char *engine_choice_describe(const struct engine_choice *c)
{
    if (c->kind == ENGINE_PRELOAD && c->userns_why)
        return xasprintf("preload (userns is not usable: %s)", c->userns_why->msg);
    return xstrdup(engine_name(c->kind));
}

void engine_choice_release(struct engine_choice *c)
{
    rx_error_clear(&c->userns_why);
    free(c->warning);
    c->warning = NULL;
}

int engine_exec(const struct engine_choice *c, const char *store_dir, const char *prog,
                char *const argv[], struct rx_error **err)
{
    if (c->kind == ENGINE_PRELOAD)
        return engine_preload_run(c, store_dir, prog, argv, environ, err);
    if (c->kind != ENGINE_USERNS)
        BUG("engine_exec: engine '%s' was never entered", engine_name(c->kind));
    /* In the view the kernel resolves /nix/store itself: a plain exec. */
    fflush(NULL);
    if (prog)
        execv(prog, argv);
    else
        execvp(argv[0], argv);
    int e = errno;
    return rx_error_set(err, e, "cannot run %s: %s", prog ? prog : argv[0], strerror(e));
}

bool engine_is_program(const char *store_dir, const char *logical)
{
    struct rx_map m;
    if (rx_map_init(&m, store_dir, NULL, NULL, NULL) < 0)
        return false;
    char real[PATH_MAX];
    struct stat sb;
    if (rx_resolve(&m, logical, true, real, sizeof real) < 0)
        return false;
    return stat(real, &sb) == 0 && S_ISREG(sb.st_mode) && (sb.st_mode & 0111);
}
