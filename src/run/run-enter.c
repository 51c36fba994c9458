/* runix enter's view: /nix is the runix root, read-write; the GPU driver; the user's passwd line. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-enter.h"
#include "run-sandbox.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* The first line of a nix.conf runix wrote (and may write again). */
#define NIX_CONF_MARK "# Written by runix enter; remove this line to keep your own edits.\n"

/* ---- /etc/passwd and /etc/group for users only NSS knows ------------------ */

bool enter_has_id(const char *text, unsigned id)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *f = line;
        for (int i = 0; i < 2 && f && (!end || f < end); i++) {
            f = strchr(f, ':');
            if (f)
                f++;
        }
        if (f && (!end || f < end)) {
            char *stop;
            errno = 0;
            unsigned long v = strtoul(f, &stop, 10);
            if (errno == 0 && stop != f && *stop == ':' && v == id)
                return true;
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

/*
 * The host's file at path with line added, when the file lacks id; NULL
 * when it has it (or cannot be read: then nothing is bound over it).
 */
static char *with_own_line(const char *path, unsigned id, const char *line)
{
    struct rx_buf b = RX_BUF_INIT(64u << 20);
    struct rx_error *err = NULL;
    if (read_file(path, &b, &err) < 0) {
        rx_error_free(err);
        rx_buf_release(&b);
        return NULL;
    }
    char *text = rx_buf_detach(&b, NULL);
    if (enter_has_id(text, id)) {
        free(text);
        return NULL;
    }
    size_t n = strlen(text);
    char *out = xasprintf("%s%s%s", text, n && text[n - 1] != '\n' ? "\n" : "", line);
    free(text);
    return out;
}

static char *passwd_text(uid_t uid, gid_t gid)
{
    struct passwd *pw = getpwuid(uid);
    const char *name = passwd_field(pw ? pw->pw_name : getenv("USER"), "user");
    _cleanup_free_ char *line =
        xasprintf("%s:x:%u:%u:%s:%s:%s\n", name, (unsigned)uid, (unsigned)gid,
                  passwd_field(pw ? pw->pw_gecos : NULL, ""),
                  passwd_field(pw ? pw->pw_dir : getenv("HOME"), "/"),
                  passwd_field(pw ? pw->pw_shell : NULL, "/bin/sh"));
    return with_own_line("/etc/passwd", uid, line);
}

static char *group_text(gid_t gid)
{
    struct group *gr = getgrgid(gid);
    const char *name = passwd_field(gr ? gr->gr_name : getenv("USER"), "user");
    _cleanup_free_ char *line = xasprintf("%s:x:%u:\n", name, (unsigned)gid);
    return with_own_line("/etc/group", gid, line);
}

/* Write text to a new file at staged (in the staging tmpfs) and bind it over target. */
static int bind_text(const char *staged, const char *text, const char *target,
                     struct rx_error **err)
{
    int fd = open(staged, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return rx_error_errno(err, "cannot create %s", staged);
    int w = write_all(fd, text, strlen(text));
    close(fd);
    if (w < 0)
        return rx_error_errno(err, "cannot write %s", staged);
    if (mount(staged, target, NULL, MS_BIND, NULL) < 0)
        return rx_error_errno(err, "cannot bind a generated %s", target + strlen("/newroot"));
    return 0;
}

/* ---- the GPU driver ------------------------------------------------------- */

/* The tag `ldconfig -p` gives this machine's own libraries. */
#if defined(__x86_64__)
#define LDCONFIG_TAG "libc6,x86-64"
#elif defined(__aarch64__)
#define LDCONFIG_TAG "libc6,AArch64"
#else
#define LDCONFIG_TAG NULL /* the first entry of each name */
#endif

static bool is_gpu_library(const char *name)
{
    static const char *const prefixes[] = {
        "libcuda.", "libcudadebugger.", "libnvidia-", "libnvcuvid.", "libnvoptix.",
        "libGL.", "libGLX", "libGLES", "libGLdispatch.", "libOpenGL.", "libEGL",
        "libvulkan.", "libdrm", "libgbm.", "libva.", "libva-", "libvdpau"};
    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* `ldconfig -p [-C cache]`'s output, or -1 with err. */
static int ldconfig_list(const char *cache, struct rx_buf *out, struct rx_error **err)
{
    static const char *const tools[] = {"/sbin/ldconfig", "/usr/sbin/ldconfig",
                                        "/usr/bin/ldconfig", "/bin/ldconfig"};
    const char *tool = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(tools) && !tool; i++)
        if (access(tools[i], X_OK) == 0)
            tool = tools[i];
    if (!tool)
        return rx_error_set(err, RX_ENOTFOUND, "no ldconfig in /sbin or /usr/sbin, which lists "
                                               "the host's libraries");
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return rx_error_errno(err, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        if (cache)
            execl(tool, "ldconfig", "-p", "-C", cache, (char *)NULL);
        else
            execl(tool, "ldconfig", "-p", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return rx_error_errno(err, "fork");
    }
    int r = read_fd(p[0], "the output of ldconfig -p", out, err);
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return rx_error_set(err, EIO, "'%s -p%s%s' failed (is the loader cache readable?)",
                            tool, cache ? " -C " : "", cache ? cache : "");
    return 0;
}

/* Remove the symlinks in dir (what an earlier fill made). */
static void clear_links(int dir)
{
    DIR *d = fdopendir(dup(dir));
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_LNK)
            unlinkat(dir, e->d_name, 0);
    closedir(d);
}

/* Link the GPU libraries of one `ldconfig -p` line ("\tNAME (TAGS) => PATH") into lib. */
static size_t link_line(int lib, char *line)
{
    char *name = line + strspn(line, " \t");
    char *sp = strchr(name, ' ');
    char *arrow = strstr(name, " => ");
    if (!sp || !arrow || arrow < sp || sp[1] != '(')
        return 0;
    *sp = '\0';
    char *tags = sp + 2, *close_paren = strchr(tags, ')');
    const char *path = arrow + 4;
    if (!close_paren || close_paren > arrow || path[0] != '/' || strchr(name, '/') ||
        !is_gpu_library(name))
        return 0;
    *close_paren = '\0';
    /* "libc6,x86-64", maybe followed by ", OS ABI: ..." or ",hwcap: ...". */
    size_t tl = LDCONFIG_TAG ? strlen(LDCONFIG_TAG) : 0;
    if (LDCONFIG_TAG && (strncmp(tags, LDCONFIG_TAG, tl) != 0 || (tags[tl] && tags[tl] != ',')))
        return 0;
    /* Resolved, so that a sandbox can show the file at the link's target. */
    _cleanup_free_ char *real = realpath(path, NULL);
    /* ldconfig lists the loader's choice first: later entries of a name are kept out. */
    return real && symlinkat(real, lib, name) == 0 ? 1 : 0;
}

/* Link the *.json files of the host's src directory into dir/sub. */
static void link_icds(int dir, const char *src, const char *sub)
{
    DIR *d = opendir(src);
    if (!d)
        return;
    int to = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || e->d_name[0] == '.' || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        if (to < 0 && mkdir_p_at(dir, sub, &to, NULL) < 0)
            break;
        _cleanup_free_ char *target = xasprintf("%s/%s", src, e->d_name);
        _cleanup_free_ char *real = realpath(target, NULL);
        if (real)
            symlinkat(real, to, e->d_name);
    }
    if (to >= 0)
        close(to);
    closedir(d);
}

int enter_gpu_fill(const char *root, const char *cache, size_t *nlibs, struct rx_error **err)
{
    static const struct {
        const char *src, *sub;
    } icds[] = {{"/usr/share/vulkan/icd.d", "share/vulkan/icd.d"},
                {"/etc/vulkan/icd.d", "share/vulkan/icd.d"},
                {"/usr/share/glvnd/egl_vendor.d", "share/glvnd/egl_vendor.d"},
                {"/etc/glvnd/egl_vendor.d", "share/glvnd/egl_vendor.d"}};
    *nlibs = 0;
    struct rx_buf out = RX_BUF_INIT(64u << 20);
    if (ldconfig_list(cache, &out, err) < 0) {
        rx_buf_release(&out);
        return -1;
    }
    _cleanup_free_ char *text = rx_buf_detach(&out, NULL);
    _cleanup_free_ char *top = xasprintf("%s/%s", root, ENTER_DRIVER_DIR);
    _cleanup_close_ int dir = -1, lib = -1;
    if (mkdir_p(top, err) < 0)
        return -1;
    if ((dir = open(top, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return rx_error_errno(err, "cannot open %s", top);
    if (mkdir_p_at(dir, "lib", &lib, err) < 0)
        return -1;
    clear_links(lib);
    for (size_t i = 0; i < ARRAY_SIZE(icds); i++) {
        int sub = openat(dir, icds[i].sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (sub >= 0) {
            clear_links(sub);
            close(sub);
        }
    }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        *nlibs += link_line(lib, line);
    }
    for (size_t i = 0; i < ARRAY_SIZE(icds); i++)
        link_icds(dir, icds[i].src, icds[i].sub);
    return 0;
}

/* fn on the target of each symlink in dir. */
static void each_link(const char *dir, void (*fn)(void *ctx, const char *target), void *ctx)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char target[PATH_MAX];
        ssize_t n = e->d_type == DT_LNK
                        ? readlinkat(dirfd(d), e->d_name, target, sizeof target - 1)
                        : -1;
        if (n > 0 && target[0] == '/') {
            target[n] = '\0';
            fn(ctx, target);
        }
    }
    closedir(d);
}

void enter_gpu_each_target(const char *root, void (*fn)(void *ctx, const char *target),
                           void *ctx)
{
    static const char *const subs[] = {"lib", "share/vulkan/icd.d", "share/glvnd/egl_vendor.d"};
    for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
        _cleanup_free_ char *dir = xasprintf("%s/%s/%s", root, ENTER_DRIVER_DIR, subs[i]);
        each_link(dir, fn, ctx);
    }
}

int enter_bind_driver(const char *dir, struct rx_error **err)
{
    struct stat st;
    if (lstat(ENTER_DRIVER_VIEW, &st) < 0 || !S_ISDIR(st.st_mode)) {
        /* The host's /run, entry by entry, under a tmpfs that has room for one more. */
        _cleanup_close_ int old = open("/run", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (old < 0)
            return rx_error_errno(err, "cannot open /run");
        if (mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
            return rx_error_errno(err, "cannot mount a tmpfs on /run for %s", ENTER_DRIVER_VIEW);
        char from[64];
        snprintf(from, sizeof from, "/proc/self/fd/%d", old);
        userns_mirror(from, "/run", "opengl-driver");
        if (mkdir(ENTER_DRIVER_VIEW, 0755) < 0)
            return rx_error_errno(err, "cannot create %s", ENTER_DRIVER_VIEW);
    }
    if (mount(dir, ENTER_DRIVER_VIEW, NULL, MS_BIND | MS_REC, NULL) < 0)
        return rx_error_errno(err, "cannot bind %s on %s", dir, ENTER_DRIVER_VIEW);
    return 0;
}

/* ---- the Nix sandbox inside ------------------------------------------------ */

/* In the probe's pid 1: the mounts a sandboxed build needs. */
static int probe_mounts(void)
{
    if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
        mkdir("/tmp/proc", 0755) < 0 ||
        mount("proc", "/tmp/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return 1;
    return 0;
}

static bool probe_nested_sandbox(void)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        char why[256];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                    CLONE_NEWUTS) < 0 ||
            userns_setup_ids(uid, gid, why, sizeof why) < 0)
            _exit(1);
        pid_t init = fork();
        if (init == 0)
            _exit(probe_mounts());
        int st;
        if (init < 0 || waitpid(init, &st, 0) < 0)
            _exit(1);
        _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1);
    }
    if (pid < 0)
        return false;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool enter_nested_sandbox_works(const char *state_file)
{
    if (state_file && engine_userns_known_good(state_file))
        return true;
    bool ok = probe_nested_sandbox();
    if (state_file)
        engine_userns_remember(state_file, ok);
    return ok;
}

/* ---- nix.conf ------------------------------------------------------------- */

int enter_write_nix_conf(const char *root, bool sandbox, const char *substituters,
                         const char *keys, struct rx_error **err)
{
    _cleanup_free_ char *dir = xasprintf("%s/nix/etc/nix", root);
    _cleanup_free_ char *path = xasprintf("%s/nix.conf", dir);
    if (mkdir_p(dir, err) < 0)
        return -1;
    struct rx_buf old = RX_BUF_INIT(1u << 20);
    struct rx_error *e = NULL;
    if (read_file(path, &old, &e) == 0) {
        bool ours = old.len >= strlen(NIX_CONF_MARK) &&
                    memcmp(old.data, NIX_CONF_MARK, strlen(NIX_CONF_MARK)) == 0;
        rx_buf_release(&old);
        if (!ours)
            return 0;
    }
    rx_error_free(e);
    rx_buf_release(&old);
    _cleanup_free_ char *text = xasprintf(
        NIX_CONF_MARK
        "# Nix inside 'runix enter' uses the runix store as a single-user install.\n"
        "build-users-group =\n"
        "sandbox = %s\n"
        "substituters = %s\n"
        "trusted-public-keys = %s\n",
        sandbox ? "true" : "false", substituters, keys);
    return write_file_atomic_at(AT_FDCWD, path, text, false, err);
}

/* ---- the view ------------------------------------------------------------- */

/* Build /newroot: the host's entries, <root>/nix at /nix, the generated passwd and group. */
static int build_root(const char *root, const char *passwd, const char *group,
                      struct rx_error **err)
{
    userns_mirror("/oldroot", "/newroot", "nix");
    if (mkdir("/newroot/nix", 0755) < 0)
        return rx_error_errno(err, "cannot create /nix in the new root");
    char src[PATH_MAX];
    if ((size_t)snprintf(src, sizeof src, "/oldroot%s/nix", root) >= sizeof src)
        return rx_error_set(err, RX_EUSAGE, "store root too long: %s", root);
    if (mount(src, "/newroot/nix", NULL, MS_BIND | MS_REC, NULL) < 0)
        return rx_error_errno(err, "cannot bind %s/nix on /nix", root);
    if (passwd && bind_text("/passwd", passwd, "/newroot/etc/passwd", err) < 0)
        return -1;
    if (group && bind_text("/group", group, "/newroot/etc/group", err) < 0)
        return -1;
    return 0;
}

int enter_view(const char *root, char **warning, struct rx_error **err)
{
    char cwd[PATH_MAX];
    bool have_cwd = getcwd(cwd, sizeof cwd) != NULL;
    uid_t uid = getuid();
    gid_t gid = getgid();
    /* NSS (sssd, LDAP) is asked here, on the host, before anything changes. */
    _cleanup_free_ char *passwd = passwd_text(uid, gid);
    _cleanup_free_ char *group = group_text(gid);
    char why[512];
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
        userns_unshare_reason(errno, why, sizeof why);
        return rx_error_set(err, RX_EUNSUPPORTED, "%s", why);
    }
    if (userns_setup_ids(uid, gid, why, sizeof why) < 0)
        return rx_error_set(err, EPERM, "%s", why);
    if (userns_stage_root("the view of runix enter", err) < 0 ||
        build_root(root, passwd, group, err) < 0 || userns_pivot_newroot(err) < 0)
        return -1;
    struct stat st;
    struct rx_error *gpu = NULL;
    if (stat("/" ENTER_DRIVER_DIR "/lib", &st) == 0 && S_ISDIR(st.st_mode) &&
        enter_bind_driver("/" ENTER_DRIVER_DIR, &gpu) < 0) {
        /* Everything else works: say so, and go on. */
        *warning = xasprintf("%s; programs will not find the GPU driver", gpu->msg);
        rx_error_free(gpu);
    }
    if (have_cwd && chdir(cwd) < 0 && !*warning)
        *warning = xasprintf("cannot enter %s in the new view (%s); starting in /", cwd,
                             strerror(errno));
    return 0;
}
