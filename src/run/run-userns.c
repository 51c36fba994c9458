/* The userns engine (Linux): a user + mount namespace in which /nix/store is the runix store. */
/*
 * The userns engine: an unprivileged user + mount namespace in which
 * /nix/store is the runix store.
 *
 *   host with /nix/store: a read-only overlay of the runix store over the
 *     host's, mounted on /nix/store (NixOS hosts keep /bin/sh and /etc);
 *   otherwise: a new root.  A tmpfs is mounted inside the new namespace (the
 *     host sees nothing), the old root is moved below it, every top-level
 *     entry of the old root is bound into a fresh directory next to /nix,
 *     and pivot_root enters it.  pivot_root, not chroot: the kernel refuses
 *     new user namespaces inside a chroot, and programs run by runix may
 *     want one (bwrap, the Nix sandbox, runix itself).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-platform.h"
#include "util-fs.h"
#include "util-mem.h"

#include "banned.h"

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = w == (ssize_t)n ? 0 : (w < 0 ? -errno : -EIO);
    close(fd);
    return e;
}

static long read_number(const char *path)
{
    FILE *f = fopen(path, "re");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* How many threads this process has (the Threads: line of /proc/self/status), or -1. */
static long thread_count(void)
{
    FILE *f = fopen("/proc/self/status", "re");
    long v = -1;
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Threads: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

void userns_unshare_reason(int e, char *why, size_t n)
{
    long threads = e == EINVAL ? thread_count() : -1;
    long clone = read_number("/proc/sys/kernel/unprivileged_userns_clone");
    long max = read_number("/proc/sys/user/max_user_namespaces");
    if (e == EPERM && clone == 0)
        snprintf(why, n, "user namespaces disabled: /proc/sys/kernel/unprivileged_userns_clone is 0");
    else if (e == ENOSPC && max == 0)
        snprintf(why, n, "user namespaces disabled: /proc/sys/user/max_user_namespaces is 0");
    else if (e == ENOSPC)
        snprintf(why, n,
                 "unshare(CLONE_NEWUSER) failed: ENOSPC, the limit of user namespaces is reached "
                 "(/proc/sys/user/max_user_namespaces in this or a parent namespace)");
    else if (e == EPERM)
        snprintf(why, n,
                 "unshare(CLONE_NEWUSER) failed: EPERM, probably a seccomp or AppArmor policy "
                 "(a container's default seccomp profile), or runix runs inside a chroot");
    else if (e == EINVAL && threads > 1)
        snprintf(why, n,
                 "unshare(CLONE_NEWUSER) failed: EINVAL, as this process has %ld threads and the "
                 "kernel gives a new user namespace only to a single-threaded one (an emulator "
                 "such as qemu-user runs threads of its own)",
                 threads);
    else if (e == EINVAL)
        snprintf(why, n, "unshare(CLONE_NEWUSER) failed: EINVAL, the kernel has no user namespaces");
    else
        snprintf(why, n, "unshare(CLONE_NEWUSER) failed: %s", strerror(e));
}

/* Map uid and gid to themselves in a new user namespace. */
int userns_write_ids(uid_t uid, gid_t gid, char *why, size_t n)
{
    char map[64];
    int e = write_file("/proc/self/setgroups", "deny");
    if (e < 0 && e != -ENOENT) {
        snprintf(why, n, "writing /proc/self/setgroups failed: %s", strerror(-e));
        return -1;
    }
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)uid, (unsigned)uid);
    if ((e = write_file("/proc/self/uid_map", map)) < 0) {
        snprintf(why, n,
                 "writing /proc/self/uid_map failed: %s, probably AppArmor's restriction of "
                 "unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns)",
                 strerror(-e));
        return -1;
    }
    snprintf(map, sizeof map, "%u %u 1\n", (unsigned)gid, (unsigned)gid);
    if ((e = write_file("/proc/self/gid_map", map)) < 0) {
        snprintf(why, n, "writing /proc/self/gid_map failed: %s", strerror(-e));
        return -1;
    }
    return 0;
}

/* Map uid and gid to themselves in a new user namespace, and keep our mounts to ourselves. */
int userns_setup_ids(uid_t uid, gid_t gid, char *why, size_t n)
{
    if (userns_write_ids(uid, gid, why, n) < 0)
        return -1;
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
        snprintf(why, n,
                 "mount in the new namespace failed: %s, probably a security policy (AppArmor) "
                 "denies mounts in user namespaces",
                 strerror(errno));
        return -1;
    }
    return 0;
}

struct probe {
    uid_t uid;
    gid_t gid;
    char *why;
    size_t n;
    int ok;
};

/* In the probe child: the same steps as the engine, and one mount of its own kind. */
static int probe_child(void *arg)
{
    struct probe *p = arg;
    if (userns_setup_ids(p->uid, p->gid, p->why, p->n) < 0)
        return 1;
    if (mount("tmpfs", "/", "tmpfs", 0, NULL) < 0) {
        snprintf(p->why, p->n, "mounting a tmpfs in the new namespace failed: %s",
                 strerror(errno));
        return 1;
    }
    p->ok = 1;
    return 0;
}

int engine_userns_probe(struct rx_error **err)
{
    /*
     * A child that shares our memory and runs while we wait (like vfork), created
     * directly in new namespaces: cheaper than fork, and this process stays as it was.
     * The child only fills why: it must not allocate from the heap it shares with us.
     */
    static char stack[64 * 1024] __attribute__((aligned(16)));
    char why[512] = "";
    struct probe p = {getuid(), getgid(), why, sizeof why, 0};
    pid_t pid = clone(probe_child, stack + sizeof stack,
                      CLONE_NEWUSER | CLONE_NEWNS | CLONE_VM | CLONE_VFORK | SIGCHLD, &p);
    if (pid < 0) {
        userns_unshare_reason(errno, why, sizeof why);
        return rx_error_set(err, RX_EUNSUPPORTED, "%s", why);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (p.ok)
        return 0;
    return rx_error_set(err, RX_EUNSUPPORTED, "%s",
                        why[0] ? why : "the user namespace probe failed");
}

/* MS_* flags of the mount holding path that a bind may not drop in a user namespace. */
unsigned long userns_locked_flags(const char *path)
{
    struct statvfs sv;
    unsigned long f = 0;
    if (statvfs(path, &sv) < 0)
        return 0;
    if (sv.f_flag & ST_NOSUID)
        f |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV)
        f |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC)
        f |= MS_NOEXEC;
    if (sv.f_flag & ST_NOATIME)
        f |= MS_NOATIME;
    if (sv.f_flag & ST_NODIRATIME)
        f |= MS_NODIRATIME;
    if (sv.f_flag & ST_RELATIME)
        f |= MS_RELATIME;
    return f;
}

static int bind_ro(const char *src, const char *dst, struct rx_error **err)
{
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return rx_error_errno(err, "cannot bind %s on %s", src, dst);
    if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | userns_locked_flags(src), NULL) < 0)
        return rx_error_errno(err, "cannot make %s read-only", dst);
    return 0;
}

/* The options string of an overlay: ',' ':' and '\' in paths are escaped. */
static int overlay_opts(char *out, size_t n, const char *upper_store)
{
    size_t k = 0;
    const char *prefix = "lowerdir=";
    for (const char *p = prefix; *p; p++)
        out[k++] = *p;
    for (const char *p = upper_store; *p; p++) {
        if (k + 3 >= n)
            return -1;
        if (*p == ',' || *p == ':' || *p == '\\')
            out[k++] = '\\';
        out[k++] = *p;
    }
    const char *rest = ":/nix/store";
    if (k + strlen(rest) + 1 > n)
        return -1;
    for (const char *p = rest; *p; p++)
        out[k++] = *p;
    out[k] = '\0';
    return 0;
}

void userns_mirror(const char *src, const char *dst, const char *skip)
{
    DIR *d = opendir(src);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || (skip && strcmp(name, skip) == 0))
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        if ((size_t)snprintf(from, sizeof from, "%s/%s", src, name) >= sizeof from ||
            (size_t)snprintf(to, sizeof to, "%s/%s", dst, name) >= sizeof to)
            continue;
        struct stat st;
        if (lstat(from, &st) < 0)
            continue; /* gone meanwhile */
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(to, 0755) < 0)
                continue;
            if (mount(from, to, NULL, MS_BIND | MS_REC, NULL) < 0)
                rmdir(to);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(from, target, sizeof target - 1);
            if (n < 0)
                continue;
            target[n] = '\0';
            if (symlink(target, to) < 0)
                continue;
        } else if (S_ISREG(st.st_mode)) {
            int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
            if (fd < 0)
                continue;
            close(fd);
            if (mount(from, to, NULL, MS_BIND, NULL) < 0)
                unlink(to);
        }
    }
    closedir(d);
}

int userns_stage_root(const char *what, struct rx_error **err)
{
    static const char *const bases[] = {"/tmp", "/var/tmp", "/mnt", "/run", "/dev/shm"};
    const char *base = NULL;
    for (size_t i = 0; i < sizeof bases / sizeof *bases; i++) {
        struct stat st;
        if (lstat(bases[i], &st) == 0 && S_ISDIR(st.st_mode) &&
            mount("tmpfs", bases[i], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") == 0) {
            base = bases[i];
            break;
        }
    }
    if (!base)
        return rx_error_errno(err, "cannot mount a tmpfs for %s", what);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/newroot", base);
    if (mkdir(path, 0755) < 0)
        return rx_error_errno(err, "cannot create %s", path);
    snprintf(path, sizeof path, "%s/oldroot", base);
    if (mkdir(path, 0755) < 0)
        return rx_error_errno(err, "cannot create %s", path);
    if (syscall(SYS_pivot_root, base, path) < 0)
        return rx_error_errno(err, "pivot_root into the tmpfs of %s failed", what);
    if (chdir("/") < 0)
        return rx_error_errno(err, "chdir /");
    return 0;
}

static int new_root(const char *store_dir, struct rx_error **err)
{
    if (userns_stage_root("the new root", err) < 0)
        return -1;

    /* Now "/" is the tmpfs and the host's root is /oldroot. */
    userns_mirror("/oldroot", "/newroot", "nix");
    if (mkdir("/newroot/nix", 0755) < 0 || mkdir("/newroot/nix/store", 0755) < 0)
        return rx_error_errno(err, "cannot create /nix/store in the new root");
    userns_mirror("/oldroot/nix", "/newroot/nix", "store");
    char src[PATH_MAX];
    if ((size_t)snprintf(src, sizeof src, "/oldroot%s", store_dir) >= sizeof src)
        return rx_error_set(err, RX_EUSAGE, "store path too long: %s", store_dir);
    if (bind_ro(src, "/newroot/nix/store", err) < 0)
        return -1;
    return userns_pivot_newroot(err);
}

int userns_pivot_newroot(struct rx_error **err)
{
    /* Enter it; the old root (with the tmpfs) is stacked on top, then detached. */
    if (mount("/newroot", "/newroot", NULL, MS_BIND | MS_REC, NULL) < 0)
        return rx_error_errno(err, "cannot bind the new root");
    if (chdir("/newroot") < 0)
        return rx_error_errno(err, "chdir /newroot");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return rx_error_errno(err, "pivot_root into the new root failed");
    if (umount2(".", MNT_DETACH) < 0)
        return rx_error_errno(err, "cannot detach the old root");
    if (chdir("/") < 0)
        return rx_error_errno(err, "chdir /");
    /* Nothing may be created in the new root's own directory. */
    mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
    return 0;
}

/*
 * A store path that both the runix store and the host's store hold is a
 * merged directory in the overlay, and every lookup below it searches both
 * layers (find over such a path takes twice as long).  Both copies have the
 * same contents, so the runix one is bound over it: below that, the kernel
 * walks a plain directory again.  Paths only one layer has need nothing.
 * Best effort: where a bind fails, the overlay still shows the right files.
 * Each costs two mount calls (~30 us), so a huge closure goes without.
 */
#define MAX_SHARED_BINDS 256

static void bind_shared_paths(const char *store_dir, int host, const char *const *paths,
                              size_t npaths)
{
    if (host < 0 || npaths > MAX_SHARED_BINDS)
        return;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY | userns_locked_flags(store_dir);
    for (size_t i = 0; i < npaths; i++) {
        struct stat st;
        if (fstatat(host, paths[i], &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            continue;
        char from[PATH_MAX], to[PATH_MAX];
        if ((size_t)snprintf(from, sizeof from, "%s/%s", store_dir, paths[i]) >= sizeof from ||
            (size_t)snprintf(to, sizeof to, "/nix/store/%s", paths[i]) >= sizeof to)
            continue;
        if (lstat(from, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;
        if (mount(from, to, NULL, MS_BIND, NULL) == 0)
            mount(NULL, to, NULL, flags, NULL);
    }
}

int engine_userns_enter(const char *store_dir, const char *const *paths, size_t npaths,
                        char **warning, struct rx_error **err)
{
    char cwd[PATH_MAX];
    bool have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    char why[512];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        userns_unshare_reason(errno, why, sizeof why);
        rx_error_set(err, RX_EUNSUPPORTED, "%s", why);
        return 1;
    }
    if (userns_setup_ids(uid, gid, why, sizeof why) < 0)
        return rx_error_set(err, EPERM, "%s", why);

    struct stat st;
    if (stat("/nix/store", &st) == 0 && S_ISDIR(st.st_mode)) {
        char opts[2 * PATH_MAX + 64];
        /* Before the overlay hides it: which of the paths the host has too. */
        int host = open("/nix/store", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (overlay_opts(opts, sizeof opts, store_dir) == 0 &&
            mount("overlay", "/nix/store", "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, opts) == 0) {
            bind_shared_paths(store_dir, host, paths, npaths);
            if (host >= 0)
                close(host);
            return 0;
        }
        if (host >= 0)
            close(host);
        /* No overlay (kernel before 5.11, or an unsupported file system): a new root whose
         * /nix/store is the runix store alone. */
    }
    if (new_root(store_dir, err) < 0)
        return -1;
    if (have_cwd && chdir(cwd) < 0)
        *warning = xasprintf("cannot enter %s in the new view (%s); starting in /", cwd,
                             strerror(errno));
    return 0;
}

bool engine_userns_known_good(const char *state_file)
{
    char id[64], seen[64];
    if (!platform_boot_id(id, sizeof id))
        return false;
    int fd = open(state_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    ssize_t r = read(fd, seen, sizeof seen - 1);
    close(fd);
    if (r <= 0)
        return false;
    seen[r] = '\0';
    return strcmp(id, seen) == 0;
}

void engine_userns_remember(const char *state_file, bool good)
{
    if (!good) {
        unlink(state_file);
        return;
    }
    char id[64];
    if (platform_boot_id(id, sizeof id))
        write_file_atomic_at(AT_FDCWD, state_file, id, false, NULL); /* read-only: probe again */
}
