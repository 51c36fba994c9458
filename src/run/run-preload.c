/* The preload engine, runix's side: find the library and start the program. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run-engine.h"
#include "run-exec.h"

#include "banned.h"

#define SHIM_NAME "librunix-preload.so"
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

int engine_preload_find(char *out, size_t outsz, char *why, size_t whysz)
{
    const char *env = getenv("RUNIX_PRELOAD_LIB");
    if (env && *env) {
        if (usable(env, out, outsz))
            return 0;
        snprintf(why, whysz, "RUNIX_PRELOAD_LIB=%s: %s (or no %s beside it)", env,
                 strerror(errno), AUDIT_NAME);
        return -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        snprintf(why, whysz, "cannot read /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    char cand[PATH_MAX];
    if ((size_t)snprintf(cand, sizeof cand, "%s/%s", self, SHIM_NAME) < sizeof cand &&
        usable(cand, out, outsz))
        return 0;
    char alt[PATH_MAX + 32];
    if ((size_t)snprintf(alt, sizeof alt, "%s/../lib/runix/%s", self, SHIM_NAME) < sizeof alt &&
        usable(alt, out, outsz))
        return 0;
    snprintf(why, whysz, "%s and %s not found next to runix (%s) nor in %s/../lib/runix",
             SHIM_NAME, AUDIT_NAME, self, self);
    return -1;
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
    struct rx_map m;
    if (rx_map_init(&m, store_dir, NULL, NULL, NULL) < 0)
        return -1;
    char real[PATH_MAX], interp[PATH_MAX];
    if (rx_is_store_path(path)) {
        if (rx_resolve(&m, path, true, real, sizeof real) < 0)
            return -1;
    } else if (strlen(path) < sizeof real) {
        memcpy(real, path, strlen(path) + 1);
    } else {
        return -1;
    }
    if (rx_elf_interp(real, interp, sizeof interp) < 0)
        return -1;
    return interp[0] == '\0';
}
