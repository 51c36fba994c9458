/* The preload engine, runix's side: find the library and start the program. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-exec.h"
#include "run-platform.h"
#include "util-install.h"
#include "util-mem.h"

#include "banned.h"

#define AUDIT_NAME "librunix-audit.so"

static bool usable1(const char *path, char *out, size_t outsz)
{
    char real[PATH_MAX];
    if (access(path, R_OK) < 0 || !realpath(path, real) || strlen(real) + 1 > outsz)
        return false;
    memcpy(out, real, strlen(real) + 1);
    return true;
}

/* The library, and its audit partner in the same directory. */
static bool usable(const char *path, char *out, size_t outsz)
{
    if (!usable1(path, out, outsz))
        return false;
    char audit[PATH_MAX];
    const char *slash = strrchr(out, '/');
    size_t dl = (size_t)(slash - out);
    if (dl + 1 + sizeof AUDIT_NAME > sizeof audit)
        return false;
    memcpy(audit, out, dl + 1);
    memcpy(audit + dl + 1, AUDIT_NAME, sizeof AUDIT_NAME);
    if (access(audit, R_OK) < 0)
        return false;
    return true;
}

void engine_preload_audit_path(const char *shim, char *out, size_t outsz)
{
    const char *slash = strrchr(shim, '/');
    size_t dl = slash ? (size_t)(slash - shim) : 0;
    if (dl + 1 + sizeof AUDIT_NAME > outsz) {
        out[0] = '\0';
        return;
    }
    memcpy(out, shim, dl);
    out[dl] = '/';
    memcpy(out + dl + 1, AUDIT_NAME, sizeof AUDIT_NAME);
}

int engine_preload_find(char *out, size_t outsz, struct rx_error **err)
{
    const char *env = getenv("RUNIX_PRELOAD_LIB");
    if (env && *env) {
        if (usable(env, out, outsz))
            return 0;
        return rx_error_set(err, RX_ENOTFOUND, "RUNIX_PRELOAD_LIB=%s: %s (or no %s beside it)",
                            env, strerror(errno), AUDIT_NAME);
    }
    /* Next to the binary (the build tree), else where meson install put it. */
    char cand[PATH_MAX];
    struct rx_error *ierr = NULL;
    if (rx_install_find(RX_INSTALL_PRELOAD, cand, sizeof cand, &ierr) == 0 &&
        usable(cand, out, outsz))
        return 0;
    if (!ierr)
        return rx_error_set(err, RX_ENOTFOUND, "%s is unreadable or has no %s beside it", cand,
                            AUDIT_NAME);
    ierr->code = RX_ENOTFOUND; /* what engine_exec() promises for a missing library */
    if (err) {
        rx_error_free(*err);
        *err = ierr;
    } else {
        rx_error_free(ierr);
    }
    return -1;
}

/* Where path (logical, or a host path) is: 0, or -1 when it cannot be resolved. */
static int real_path(const char *store_dir, const char *path, char *real, size_t realsz)
{
    if (rx_is_store_path(path)) {
        struct rx_map m;
        if (rx_map_init(&m, store_dir, NULL, NULL, NULL) < 0 ||
            rx_resolve(&m, path, true, real, realsz) < 0)
            return -1;
        return 0;
    }
    if (strlen(path) >= realsz)
        return -1;
    memcpy(real, path, strlen(path) + 1);
    return 0;
}

int engine_preload_exec(const char *store_dir, const char *shim, const char *audit,
                        const char *path,
                        char *const argv[], char *const envp[], struct rx_error **err)
{
    struct rx_map m;
    int r = rx_map_init(&m, store_dir, shim, audit, NULL);
    struct rx_exec x;
    if (r == 0)
        r = rx_exec_prepare(&m, path, argv, envp, &x);
    if (r < 0) {
        errno = -r;
        return rx_error_errno(err, "cannot run %s", path);
    }
    /* The system call itself: a preload library in runix's own process must not see it. */
    syscall(SYS_execve, x.file, x.argv, x.envp);
    int e = errno;
    rx_exec_free(&x);
    errno = e;
    return rx_error_errno(err, "cannot run %s", path);
}

int engine_is_static_elf(const char *store_dir, const char *path)
{
    char real[PATH_MAX];
    if (real_path(store_dir, path, real, sizeof real) < 0)
        return -1;
    return platform_is_static_program(real);
}

/*
 * A static program under the preload engine.  It makes no libc calls the
 * library could see, but most static programs (Go tools, static busybox)
 * do not care where they are: the kernel runs it from the store's real
 * location like any host program, with the closure's bin/ on PATH, and only
 * its own opens of /nix/store paths see the host's /nix/store.  It cannot
 * work at all only when the kernel refuses to run a file from there: the
 * file system holding the runix store is mounted noexec.  Everything else
 * (no execute bit, a foreign architecture) is the exec's own error, and a
 * static host program is just a host program.
 * Returns 0 to go on, or -1 with the reason in err.
 */
static int static_program(const struct engine_choice *c, const char *store_dir,
                          const char *prog, struct rx_error **err)
{
    char real[PATH_MAX];
    struct statvfs sv;
    bool in_store = rx_is_store_path(prog);
    if (in_store && real_path(store_dir, prog, real, sizeof real) == 0 &&
        statvfs(real, &sv) == 0 && (sv.f_flag & ST_NOEXEC))
        return rx_error_set(err, RX_EUNSUPPORTED,
                            "'%s' is statically linked, and the preload engine can run a static "
                            "program only from the runix store's real location, '%s', which is "
                            "on a file system mounted noexec: remount it with exec, or keep the "
                            "store elsewhere",
                            prog, store_dir);
    if (c->notice) {
        const char *slash = strrchr(prog, '/');
        char *msg = in_store ? xasprintf("'%s' is statically linked: it sees the host's "
                                         "/nix/store, not the runix one (the preload engine "
                                         "runs it from '%s')",
                                         slash ? slash + 1 : prog, store_dir)
                             : xasprintf("'%s' is statically linked: it sees the host's "
                                         "/nix/store, not the runix one",
                                         slash ? slash + 1 : prog);
        c->notice(msg);
        free(msg);
    }
    return 0;
}

int engine_preload_run(const struct engine_choice *c, const char *store_dir, const char *prog,
                       char *const argv[], char *const envp[], struct rx_error **err)
{
    char shim[PATH_MAX];
    if (engine_preload_find(shim, sizeof shim, err) < 0)
        return rx_error_wrap(err, "preload engine");
    char found[PATH_MAX];
    if (!prog) {
        struct rx_map m;
        int r = rx_map_init(&m, store_dir, NULL, NULL, NULL);
        if (r == 0)
            r = rx_path_search(&m, argv[0], envp, found, sizeof found);
        if (r < 0)
            return rx_error_set(err, -r, "cannot run %s: %s", argv[0], strerror(-r));
        prog = found;
    }
    if (engine_is_static_elf(store_dir, prog) == 1 && static_program(c, store_dir, prog, err) < 0)
        return -1;
    fflush(NULL);
    char audit[PATH_MAX];
    engine_preload_audit_path(shim, audit, sizeof audit);
    return engine_preload_exec(store_dir, shim, audit, prog, argv, envp, err);
}
