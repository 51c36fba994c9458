/* Where the installed parts of runix are (see util-install.h). */
#include "config.h"
#include "util-install.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util-mem.h"

#include "banned.h"

struct install_item {
    const char *file;
    int mode;             /* for access() */
    const char *rel;      /* from bindir, where runix is installed */
    const char *core_rel; /* from libexecdir/runix, where runix-core is installed */
};

static const struct install_item items[] = {
    [RX_INSTALL_CORE] = {"runix-core", X_OK, RUNIX_REL_LIBEXECDIR, "."},
    [RX_INSTALL_PRELOAD] = {"librunix-preload.so", R_OK, RUNIX_REL_PKGLIBDIR,
                            RUNIX_CORE_REL_PKGLIBDIR},
    [RX_INSTALL_FRONT] = {"runix", X_OK, ".", RUNIX_CORE_REL_BINDIR},
};

static bool try_path(char *out, size_t outsz, const char *dir, const char *rel,
                     const struct install_item *it)
{
    size_t n =
        (size_t)snprintf(out, outsz, "%s/%s%s%s", dir, rel ? rel : "", rel ? "/" : "", it->file);
    return n < outsz && access(out, it->mode) == 0;
}

int rx_install_find(enum rx_install_item item, char *out, size_t outsz, struct rx_error **err)
{
    if ((size_t)item >= ARRAY_SIZE(items))
        BUG("unknown install item %d", (int)item);
    const struct install_item *it = &items[item];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return rx_error_errno(err, "cannot read /proc/self/exe");
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return rx_error_set(err, RX_ENOTFOUND, "/proc/self/exe is not a path: '%s'", self);
    *slash = '\0';
    /* Which install directory the running binary is in, by its name. */
    const char *base = slash + 1;
#if RUNIX_ONE_FILE
    /* One file plays runix and runix-core (and has the engine libraries inside). */
    if (item == RX_INSTALL_CORE || item == RX_INSTALL_FRONT) {
        *slash = '/';
        if ((size_t)n + 1 > outsz)
            return rx_error_set(err, RX_ENOTFOUND, "'%s' is too long a path", self);
        memcpy(out, self, (size_t)n + 1);
        return 0;
    }
#endif
    const char *rel = strcmp(base, "runix-core") == 0 ? it->core_rel : it->rel;
    if (try_path(out, outsz, self, NULL, it))
        return 0;
    if (strcmp(rel, ".") != 0 && try_path(out, outsz, self, rel, it))
        return 0;
    if (strcmp(rel, ".") == 0)
        return rx_error_set(err, RX_ENOTFOUND, "%s not found next to %s (%s)", it->file, base,
                            self);
    return rx_error_set(err, RX_ENOTFOUND, "%s not found next to %s (%s) nor in %s/%s", it->file,
                        base, self, self, rel);
}
