/* runix boot (Linux): the namespaces, the root, the console, the id maps, the stop. */
#include "config.h"

#include "run-boot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-sandbox.h"
#include "util-mem.h"

#include "banned.h"

/* ---- the id mapping -------------------------------------------------------- */

/* A decimal number that fills [s, end) and fits an unsigned long; -1 if not. */
static int parse_ulong(const char *s, const char *end, unsigned long *v)
{
    if (s == end || end - s > 10)
        return -1;
    unsigned long n = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        n = n * 10 + (unsigned long)(*p - '0');
    }
    *v = n;
    return 0;
}

int boot_subid_lookup(const char *file, const char *user, unsigned long id, unsigned long *start)
{
    FILE *f = fopen(file, "re");
    if (!f)
        return 0;
    char line[512], idtext[32];
    snprintf(idtext, sizeof idtext, "%lu", id);
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c1 = '\0';
        unsigned long first, count;
        if (parse_ulong(c1 + 1, c2, &first) < 0 ||
            parse_ulong(c2 + 1, c2 + 1 + strlen(c2 + 1), &count) < 0)
            continue;
        if (strcmp(line, idtext) != 0 && !(user && strcmp(line, user) == 0))
            continue;
        if (count >= BOOT_SUBID_COUNT && first > 0 && first + BOOT_SUBID_COUNT <= 0xfffffffeUL) {
            *start = first;
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* Is name an executable file in PATH (or /usr/bin and /bin without one)? */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *c = strchrnul(p, ':');
        char full[PATH_MAX];
        if (c > p && (size_t)snprintf(full, sizeof full, "%.*s/%s", (int)(c - p), p, name) <
                         sizeof full &&
            access(full, X_OK) == 0)
            return true;
        if (!*c)
            return false;
        p = c + 1;
    }
}

int boot_map_resolve(struct boot_config *c, enum boot_map *map, char *why, size_t whyn,
                     struct rx_error **err)
{
    why[0] = '\0';
    if (*map == BOOT_MAP_SINGLE)
        return 0;
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    const char *user = pw ? pw->pw_name : NULL;
    bool tools = in_path("newuidmap") && in_path("newgidmap");
    bool ranges = boot_subid_lookup("/etc/subuid", user, uid, &c->subuid) &&
                  boot_subid_lookup("/etc/subgid", user, getgid(), &c->subgid);
    if (tools && ranges) {
        *map = BOOT_MAP_SUBID;
        return 0;
    }
    if (!tools)
        snprintf(why, whyn, "newuidmap and newgidmap (Debian's uidmap package) are not in PATH");
    else
        snprintf(why, whyn,
                 "/etc/subuid and /etc/subgid give %s no range of %lu ids (as rootless podman "
                 "uses: %s:100000:65536)",
                 user ? user : "this user", BOOT_SUBID_COUNT + 1, user ? user : "USER");
    if (*map == BOOT_MAP_SUBID)
        return rx_error_set(err, RX_EUNSUPPORTED, "--map subid: %s", why);
    *map = BOOT_MAP_SINGLE;
    return 0;
}

/* Write text into /proc/<pid>/<name>. */
static int write_proc(pid_t pid, const char *name, const char *text, struct rx_error **err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open %s", path);
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    int e = errno;
    close(fd);
    if (w != (ssize_t)n) {
        errno = w < 0 ? e : EIO;
        return rx_error_errno(err, "cannot write %s", path);
    }
    return 0;
}

/* Run newuidmap or newgidmap for pid: 0 -> id, 1.. -> the range at first. */
static int run_idmap(const char *tool, pid_t pid, unsigned long id, unsigned long first,
                     struct rx_error **err)
{
    char spid[16], sid[16], sfirst[16], scount[16];
    snprintf(spid, sizeof spid, "%d", (int)pid);
    snprintf(sid, sizeof sid, "%lu", id);
    snprintf(sfirst, sizeof sfirst, "%lu", first);
    snprintf(scount, sizeof scount, "%lu", BOOT_SUBID_COUNT);
    char *av[] = {(char *)tool, spid, (char *)"0", sid, (char *)"1", (char *)"1", sfirst, scount,
                  NULL};
    fflush(NULL);
    pid_t h = fork();
    if (h < 0)
        return rx_error_errno(err, "fork");
    if (h == 0) {
        execvp(tool, av);
        _exit(127);
    }
    int st;
    while (waitpid(h, &st, 0) < 0)
        if (errno != EINTR)
            return rx_error_errno(err, "waitpid");
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        return rx_error_set(err, RX_EUNSUPPORTED, "cannot run %s", tool);
    return rx_error_set(err, EPERM,
                        "%s %s 0 %s 1 1 %s %s failed (its message is above); check the ranges "
                        "in /etc/subuid and /etc/subgid",
                        tool, spid, sid, sfirst, scount);
}

/* From outside: the maps of pid 1's user namespace. */
static int write_maps(const struct boot_config *c, pid_t pid, struct rx_error **err)
{
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (c->map == BOOT_MAP_SUBID)
        return run_idmap("newuidmap", pid, uid, c->subuid, err) < 0 ||
                       run_idmap("newgidmap", pid, gid, c->subgid, err) < 0
                   ? -1
                   : 0;
    char map[64];
    if (write_proc(pid, "setgroups", "deny", err) < 0)
        return -1;
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)uid);
    if (write_proc(pid, "uid_map", map, err) < 0)
        return -1;
    snprintf(map, sizeof map, "0 %u 1\n", (unsigned)gid);
    return write_proc(pid, "gid_map", map, err);
}

/* ---- pid 1, before the exec ------------------------------------------------ */

/* Copy the host's os-release (read through /oldroot) to path; absent on the host: none. */
static int copy_os_release(const char *path, struct rx_error **err)
{
    static const char *const from[] = {"/oldroot/etc/os-release", "/oldroot/usr/lib/os-release"};
    for (size_t i = 0; i < sizeof from / sizeof *from; i++) {
        FILE *f = fopen(from[i], "re");
        if (!f)
            continue;
        char buf[16384];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        return write_text(path, buf, err);
    }
    return 0;
}

/*
 * /sys read-only: a sysfs of the network namespace, or the host's bound
 * (--network host).  On /sys/fs/cgroup, the cgroup2 hierarchy of the new
 * cgroup namespace: its root is the cgroup runix runs in, which systemd can
 * use only when the user may write it (boot_cgroup_writable()); a kernel
 * that refuses the mount leaves it empty, which an init other than systemd
 * does not mind.
 */
static int mount_sys(struct rx_error **err)
{
    unsigned long f = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("sysfs", "/newroot/sys", "sysfs", f, NULL) < 0 &&
        bind_path("/oldroot/sys", "/newroot/sys", true, err) < 0)
        return -1;
    mount("cgroup2", "/newroot/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    return 0;
}

bool boot_cgroup_writable(char *path, size_t n)
{
    char line[PATH_MAX + 64], mnt[PATH_MAX] = "";
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return false;
    /* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - cgroup2 SOURCE SUPEROPTS" */
    while (!mnt[0] && fgets(line, sizeof line, f)) {
        char point[PATH_MAX];
        const char *dash = strstr(line, " - cgroup2 ");
        if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1)
            snprintf(mnt, sizeof mnt, "%s", point);
    }
    fclose(f);
    char cg[PATH_MAX] = "";
    if ((f = fopen("/proc/self/cgroup", "re"))) {
        while (!cg[0] && fgets(line, sizeof line, f))
            if (strncmp(line, "0::", 3) == 0) {
                size_t len = strcspn(line + 3, "\n");
                if (len > 0 && len < sizeof cg) {
                    memcpy(cg, line + 3, len);
                    cg[len] = '\0';
                }
            }
        fclose(f);
    }
    if (!mnt[0] || !cg[0]) {
        snprintf(path, n, "no cgroup2 hierarchy");
        return false;
    }
    snprintf(path, n, "%s%s", mnt, strcmp(cg, "/") == 0 ? "" : cg);
    return access(path, W_OK) == 0;
}

static int mount_tmpfs(const char *dst, const char *mode, struct rx_error **err)
{
    if (mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, mode) < 0)
        return rx_error_errno(err, "cannot mount a tmpfs on %s", dst + 8);
    return 0;
}

/* The root: /nix/store, /proc, /sys, /dev with the console, /run with /run/host, /tmp, /etc. */
static int build_root(const struct boot_config *c, const char *console, struct rx_error **err)
{
    if (userns_stage_root("the booted system's root", err) < 0)
        return -1;
    if (mount("tmpfs", "/newroot", "tmpfs", 0, "mode=0755") < 0)
        return rx_error_errno(err, "cannot mount the booted system's root");
    static const char *const dirs[] = {"/newroot/nix", "/newroot/nix/store", "/newroot/proc",
                                       "/newroot/sys", "/newroot/dev", "/newroot/run",
                                       "/newroot/tmp", "/newroot/etc"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (mkdir(dirs[i], 0755) < 0)
            return rx_error_errno(err, "cannot create %s", dirs[i] + 8);
    char src[PATH_MAX];
    if ((size_t)snprintf(src, sizeof src, "/oldroot%s", c->store_dir) >= sizeof src)
        return rx_error_set(err, ENAMETOOLONG, "store path too long: %s", c->store_dir);
    if (bind_path(src, "/newroot/nix/store", true, err) < 0 || make_dev(err) < 0)
        return -1;
    if ((size_t)snprintf(src, sizeof src, "/oldroot%s", console) >= sizeof src)
        return rx_error_set(err, ENAMETOOLONG, "path too long: %s", console);
    int fd = open("/newroot/dev/console", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return rx_error_errno(err, "cannot create /dev/console");
    close(fd);
    if (mount(src, "/newroot/dev/console", NULL, MS_BIND, NULL) < 0)
        return rx_error_errno(err, "cannot bind the console's pty (%s) on /dev/console", console);
    if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return rx_error_errno(err, "cannot mount /proc for the new pid namespace (a container "
                                   "that masks parts of the host's /proc forbids it)");
    if (mount_sys(err) < 0 || mount_tmpfs("/newroot/run", "mode=0755", err) < 0 ||
        mount_tmpfs("/newroot/tmp", "mode=1777", err) < 0)
        return -1;
    if (mkdir("/newroot/run/host", 0755) < 0)
        return rx_error_errno(err, "cannot create /run/host");
    if (write_text("/newroot/run/host/container-manager", "runix\n", err) < 0 ||
        copy_os_release("/newroot/run/host/os-release", err) < 0)
        return -1;
    if (chdir("/newroot") < 0)
        return rx_error_errno(err, "chdir /newroot");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return rx_error_errno(err, "pivot_root into the booted system's root failed");
    if (umount2(".", MNT_DETACH) < 0)
        return rx_error_errno(err, "cannot detach the host's root");
    if (chdir("/") < 0)
        return rx_error_errno(err, "chdir /");
    return 0;
}

/* /dev/console as the controlling terminal and fds 0, 1 and 2 of a new session. */
static int take_console(struct rx_error **err)
{
    setsid();
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return rx_error_errno(err, "cannot open /dev/console");
    if (ioctl(fd, TIOCSCTTY, 0) < 0)
        return rx_error_errno(err, "cannot make /dev/console the controlling terminal");
    for (int i = 0; i < 3; i++)
        if (dup2(fd, i) < 0)
            return rx_error_errno(err, "dup2");
    if (fd > 2)
        close(fd);
    return 0;
}

extern char **environ;

/* The init's environment: what systemd-nspawn gives, with container=runix. */
static void init_env(void)
{
    const char *term = getenv("TERM");
    char *t = xstrdup(term && *term ? term : "vt220");
    clearenv();
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    setenv("container", "runix", 1);
    setenv("TERM", t, 1);
    free(t);
}

/* pid 1 tells runix why it could not exec the init; the pipe closes on exec. */
static _Noreturn void fail_to(int fd, struct rx_error *e)
{
    const char *m = e && e->msg ? e->msg : "setup failed";
    if (write(fd, m, strlen(m)) < 0) {
        /* runix is gone */
    }
    _exit(127);
}

static _Noreturn void pid1(const struct boot_config *c, const char *console, int go, int report,
                           const sigset_t *old)
{
    struct rx_error *e = NULL;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    char b;
    /* runix writes the maps, then one byte; EOF: it failed or died. */
    if (read(go, &b, 1) != 1)
        _exit(127);
    close(go);
    if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
        rx_error_errno(&e, "cannot become root in the new user namespace");
        fail_to(report, e);
    }
    if (c->map == BOOT_MAP_SUBID)
        setgroups(0, NULL);
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
        rx_error_errno(&e, "mount in the new namespace failed (a security policy such as "
                           "AppArmor denies mounts in user namespaces)");
        fail_to(report, e);
    }
    if (sethostname(c->hostname, strlen(c->hostname)) < 0) {
        rx_error_errno(&e, "cannot set the host name '%s'", c->hostname);
        fail_to(report, e);
    }
    if (!c->host_network && loopback_up(&e) < 0)
        fail_to(report, e);
    if (build_root(c, console, &e) < 0 || take_console(&e) < 0)
        fail_to(report, e);
    /* Nothing of runix's reaches the init but the console (the report pipe closes on exec). */
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int s = 1; s < NSIG; s++)
        signal(s, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    init_env();
    execve(c->init, c->argv, environ);
    rx_error_errno(&e,
                   "cannot run the init '%s'; a NixOS system (system.build.toplevel) has "
                   "STOREPATH/init, another init is named with --init",
                   c->init);
    fail_to(report, e);
}

/* ---- runix, outside -------------------------------------------------------- */

struct relay {
    int master;
    bool in_open;  /* stdin still read */
    bool raw;      /* stdin is a terminal put in raw mode */
    struct termios saved;
};

static void relay_write(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the reader is gone: drop the output */
        buf += w;
        n -= (size_t)w;
    }
}

/* Copy what is readable from one fd to another; false at its end. */
static bool relay_once(int from, int to)
{
    char buf[8192];
    ssize_t r = read(from, buf, sizeof buf);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return true;
    if (r <= 0)
        return false;
    relay_write(to, buf, (size_t)r);
    return true;
}

static void copy_winsize(int master)
{
    struct winsize ws;
    if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
        ioctl(master, TIOCSWINSZ, &ws);
}

/* The console: a pty whose slave pid 1 binds on /dev/console; its name into name. */
static int open_console(struct relay *r, int *slave, char *name, size_t n, struct rx_error **err)
{
    r->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (r->master < 0)
        return rx_error_errno(err, "cannot open a pty for the console (/dev/ptmx)");
    if (grantpt(r->master) < 0 || unlockpt(r->master) < 0 || ptsname_r(r->master, name, n) != 0)
        return rx_error_errno(err, "cannot set up the console's pty");
    /* Held open by runix: the master reads no EOF while the init reopens the console. */
    *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (*slave < 0)
        return rx_error_errno(err, "cannot open the console's pty %s", name);
    r->in_open = true;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &r->saved) == 0) {
        tcsetattr(*slave, TCSANOW, &r->saved);
        copy_winsize(r->master);
        struct termios raw = r->saved;
        cfmakeraw(&raw);
        r->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    return 0;
}

static void close_console(struct relay *r, int slave)
{
    if (r->raw)
        tcsetattr(STDIN_FILENO, TCSADRAIN, &r->saved);
    if (slave >= 0)
        close(slave);
    if (r->master >= 0)
        close(r->master);
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Relay, pass stop requests on, until pid 1 has ended; its wait status. */
static int supervise(const struct boot_config *c, pid_t pid, struct relay *r, int sfd)
{
    long long deadline = -1;
    int st = 0;
    for (;;) {
        struct pollfd p[3] = {{sfd, POLLIN, 0},
                              {r->master, POLLIN, 0},
                              {r->in_open ? STDIN_FILENO : -1, POLLIN, 0}};
        int timeout = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            timeout = left > 0 ? (int)left : 0;
        }
        int n = poll(p, 3, timeout);
        if (n < 0 && errno != EINTR) {
            /* Nothing can be relayed or passed on any more: end it, and say how. */
            kill(pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
                ;
            break;
        }
        if (deadline >= 0 && now_ms() >= deadline) {
            kill(pid, SIGKILL);
            deadline = -1;
        }
        if (n <= 0)
            continue;
        if (p[1].revents)
            relay_once(r->master, STDOUT_FILENO);
        if (p[2].revents && !relay_once(STDIN_FILENO, r->master))
            r->in_open = false;
        struct signalfd_siginfo si;
        while (p[0].revents && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            int s = (int)si.ssi_signo;
            if (s == SIGWINCH) {
                copy_winsize(r->master);
            } else if (s != SIGCHLD && deadline < 0) {
                /* systemd's clean shutdown; an init without a handler never sees it */
                kill(pid, SIGRTMIN + 3);
                deadline = now_ms() + (long long)c->stop_timeout * 1000;
            }
        }
        if (waitpid(pid, &st, WNOHANG) == pid)
            break;
    }
    /* What the init wrote last. */
    int fl = fcntl(r->master, F_GETFL);
    if (fl >= 0 && fcntl(r->master, F_SETFL, fl | O_NONBLOCK) == 0)
        while (relay_once(r->master, STDOUT_FILENO)) {
            struct pollfd q = {r->master, POLLIN, 0};
            if (poll(&q, 1, 0) <= 0)
                break;
        }
    return st;
}

/* Read pid 1's report: "" once the init runs (the pipe closed on exec), else why not. */
static int read_setup(int fd, struct rx_error **err)
{
    char buf[1024];
    size_t have = 0;
    ssize_t r;
    while (have < sizeof buf - 1 && (r = read(fd, buf + have, sizeof buf - 1 - have)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        have += (size_t)r;
    }
    buf[have] = '\0';
    if (have)
        return rx_error_set(err, EPERM, "%s", buf);
    return 0;
}

/* The cgroups below dir: names of its subdirectories, NULL-terminated (NULL if none). */
static char **cgroup_children(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    char **v = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            v = xrealloc(v, (n + 2) * sizeof *v);
            v[n++] = xstrdup(e->d_name);
            v[n] = NULL;
        }
    closedir(d);
    return v;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* rmdir a cgroup and those below it, deepest first (each empty once its processes are gone). */
static void cgroup_remove(const char *dir)
{
    char **kids = cgroup_children(dir);
    for (size_t i = 0; kids && kids[i]; i++) {
        char sub[PATH_MAX];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", dir, kids[i]) < sizeof sub)
            cgroup_remove(sub);
    }
    free_strv(kids);
    rmdir(dir);
}

/* After the boot: the cgroups the booted system made below ours (all but those in before). */
static void cgroup_prune(const char *dir, char **before)
{
    char **now = cgroup_children(dir);
    for (size_t i = 0; now && now[i]; i++) {
        bool old = false;
        for (size_t k = 0; before && before[k] && !old; k++)
            old = strcmp(before[k], now[i]) == 0;
        char sub[PATH_MAX];
        if (!old && (size_t)snprintf(sub, sizeof sub, "%s/%s", dir, now[i]) < sizeof sub)
            cgroup_remove(sub);
    }
    free_strv(now);
}

static void reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

int boot_run(const struct boot_config *c, struct rx_error **err)
{
    struct relay r = {.master = -1};
    int slave = -1, go[2] = {-1, -1}, rep[2] = {-1, -1}, sfd = -1, ret = -1;
    char console[128], cg[PATH_MAX];
    bool own_cg = boot_cgroup_writable(cg, sizeof cg);
    char **cg_before = own_cg ? cgroup_children(cg) : NULL;
    sigset_t set, old;
    sigemptyset(&set);
    static const int caught[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGWINCH, SIGCHLD};
    for (size_t i = 0; i < sizeof caught / sizeof *caught; i++)
        sigaddset(&set, caught[i]);
    sigprocmask(SIG_BLOCK, &set, &old);
    if (open_console(&r, &slave, console, sizeof console, err) < 0)
        goto out;
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0 || pipe2(go, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        rx_error_errno(err, "cannot set up the boot");
        goto out;
    }
    unsigned long flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS |
                          CLONE_NEWIPC | CLONE_NEWCGROUP | (c->host_network ? 0 : CLONE_NEWNET);
    fflush(NULL);
    pid_t pid = (pid_t)syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid < 0) {
        char why[512];
        userns_unshare_reason(errno, why, sizeof why);
        rx_error_set(err, RX_EUNSUPPORTED, "%s", why);
        goto out;
    }
    if (pid == 0) {
        close(go[1]);
        close(rep[0]);
        pid1(c, console, go[0], rep[1], &old);
    }
    close(go[0]);
    close(rep[1]);
    go[0] = rep[1] = -1;
    if (write_maps(c, pid, err) < 0) {
        kill(pid, SIGKILL);
        reap(pid);
        goto out;
    }
    if (write(go[1], "1", 1) != 1) {
        rx_error_errno(err, "cannot start the init");
        kill(pid, SIGKILL);
        reap(pid);
        goto out;
    }
    if (read_setup(rep[0], err) < 0) {
        reap(pid);
        goto out;
    }
    int st = supervise(c, pid, &r, sfd);
    ret = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    /*
     * reboot(2) in a pid namespace ends its pid 1 as if by a signal:
     * SIGINT for a halt or power-off (systemd's clean shutdown), SIGHUP for
     * a reboot.  A system that shut down cleanly exits 0, as with nspawn.
     */
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGINT)
        ret = 0;
out:
    if (own_cg)
        cgroup_prune(cg, cg_before);
    free_strv(cg_before);
    close_console(&r, slave);
    int fds[] = {go[0], go[1], rep[0], rep[1], sfd};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Signals that arrived while blocked were handled; drop them before unblocking. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return ret;
}
