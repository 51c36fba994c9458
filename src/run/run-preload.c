/* The preload engine, runix's side: find the library and start the program. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-exec.h"
#include "run-platform.h"
#include "util-fs.h"
#include "util-install.h"
#include "util-io.h"
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

#if RUNIX_ONE_FILE
/*
 * Open the directory name in at (creating it 0700 when create), refusing a
 * symlink, a directory of another user and one that group or others may
 * write: whoever can write it could swap the libraries every program of the
 * preload engine loads.  Returns an fd, or -1 with err.
 */
static int open_own_dir(int at, const char *name, const char *shown, struct rx_error **err)
{
    if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
        return rx_error_errno(err, "cannot create '%s'", shown);
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open '%s' (a directory, not a symlink)", shown);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return rx_error_errno(err, "cannot stat '%s'", shown);
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
        close(fd);
        return rx_error_set(err, RX_EUNSUPPORTED,
                            "'%s' is not safe for the preload engine's libraries: it must be "
                            "yours and writable by no one else (owner uid %u, mode %04o): fix "
                            "it (chmod go-w) or remove it",
                            shown, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
    }
    return fd;
}

/* Whether name in dirfd is the user's regular file, writable by no one else, holding data. */
static bool same_file(int dirfd, const char *name, const unsigned char *data, size_t len)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
                !(st.st_mode & (S_IWGRP | S_IWOTH)) && (size_t)st.st_size == len;
    if (same) {
        unsigned char *buf = xmalloc(len ? len : 1);
        same = read_retry(fd, buf, len) == (ssize_t)len && memcmp(buf, data, len) == 0;
        free(buf);
    }
    close(fd);
    return same;
}

/* name in dirfd holding data: kept when it already does, else written again. */
static int ensure_file(int dirfd, const char *dir, const char *name, const unsigned char *data,
                       size_t len, struct rx_error **err)
{
    if (same_file(dirfd, name, data, len))
        return 0;
    if (write_data_atomic_at(dirfd, name, data, len, 0644, true, err) < 0)
        return rx_error_wrap(err, "cannot extract %s into '%s'", name, dir);
    if (!same_file(dirfd, name, data, len))
        return rx_error_set(err, RX_EHASH,
                            "'%s/%s' does not hold what was just written to it: is the disk "
                            "full or failing?",
                            dir, name);
    return 0;
}

int engine_preload_extract(char *dir, size_t dirsz, struct rx_error **err)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    _cleanup_free_ char *base = NULL;
    if (xdg && xdg[0] == '/')
        base = xasprintf("%s/runix", xdg);
    else if (home && home[0] == '/')
        base = xasprintf("%s/.local/share/runix", home);
    else
        return rx_error_set(err, RX_ENOTFOUND,
                            "no data directory for the preload engine's libraries: set HOME or "
                            "XDG_DATA_HOME (or RUNIX_PRELOAD_LIB)");
    _cleanup_free_ char *engines = xasprintf("%s/engines", base);
    _cleanup_free_ char *full = xasprintf("%s/%s", engines, rx_embedded_hash);
    if (strlen(full) + 1 > dirsz)
        return rx_error_set(err, RX_ENOTFOUND, "'%s' is too long a path", full);
    /* The parents of the data directory are the user's business (it is ~/.local/share
     * or what XDG_DATA_HOME says); from there on, every directory is checked. */
    char *slash = strrchr(base, '/');
    *slash = '\0';
    int r = mkdir_p_mode(base[0] ? base : "/", 0700, err);
    *slash = '/';
    if (r < 0)
        return rx_error_wrap(err, "cannot create the data directory for the preload engine");
    int fd = open_own_dir(AT_FDCWD, base, base, err);
    if (fd < 0)
        return -1;
    int efd = open_own_dir(fd, "engines", engines, err);
    close(fd);
    if (efd < 0)
        return -1;
    int hfd = open_own_dir(efd, rx_embedded_hash, full, err);
    close(efd);
    if (hfd < 0)
        return -1;
    r = ensure_file(hfd, full, AUDIT_NAME, rx_embedded_audit, rx_embedded_audit_len, err);
    if (r == 0)
        r = ensure_file(hfd, full, "librunix-preload.so", rx_embedded_preload,
                        rx_embedded_preload_len, err);
    close(hfd);
    if (r < 0)
        return -1;
    memcpy(dir, full, strlen(full) + 1);
    return 0;
}
#endif

int engine_preload_find(char *out, size_t outsz, struct rx_error **err)
{
    const char *env = getenv("RUNIX_PRELOAD_LIB");
    if (env && *env) {
        if (usable(env, out, outsz))
            return 0;
        return rx_error_set(err, RX_ENOTFOUND, "RUNIX_PRELOAD_LIB=%s: %s (or no %s beside it)",
                            env, strerror(errno), AUDIT_NAME);
    }
    char cand[PATH_MAX];
    struct rx_error *ierr = NULL;
#if RUNIX_ONE_FILE
    /* Inside this file: extracted to the user's data directory. */
    if (engine_preload_extract(cand, sizeof cand - sizeof "/librunix-preload.so", err) < 0)
        return -1;
    memcpy(cand + strlen(cand), "/librunix-preload.so", sizeof "/librunix-preload.so");
    if (usable(cand, out, outsz))
        return 0;
    return rx_error_errno(err, "cannot read %s", cand);
#endif
    /* Next to the binary (the build tree), else where meson install put it. */
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
