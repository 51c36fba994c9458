/* Sandboxed runs (Linux): namespaces, the file system view, capabilities, seccomp, the environment. */
#include "config.h"

#include "run-sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "run-engine-internal.h"
#include "run-proxy.h"
#include "run-storesock.h"
#include "util-mem.h"

#include "banned.h"

const char *const sandbox_default_env_deny[] = {
    "*_TOKEN",     "*_TOKEN_*",      "*_SECRET",        "*_SECRET_*",     "*_PASSWORD",
    "*_PASSWD",    "*_API_KEY",      "*_APIKEY",        "*_PRIVATE_KEY",  "*_CREDENTIALS",
    "AWS_*",       "AZURE_*",        "GOOGLE_APPLICATION_CREDENTIALS",   "SSH_AUTH_SOCK",
    "SSH_AGENT_PID", "GPG_AGENT_INFO", "KRB5CCNAME",     "DBUS_SESSION_BUS_ADDRESS",
    "XAUTHORITY",  "NETRC",          NULL,
};

/* ---- the policy ------------------------------------------------------------ */

void sandbox_policy_add_bind(struct sandbox_policy *p, enum sandbox_bind_kind k, const char *path)
{
    p->binds = xrealloc(p->binds, (p->nbinds + 1) * sizeof *p->binds);
    p->binds[p->nbinds].kind = k;
    p->binds[p->nbinds].path = xstrdup(path);
    p->nbinds++;
}

void sandbox_policy_add_str(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = xstrdup(s);
}

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void sandbox_policy_release(struct sandbox_policy *p)
{
    for (size_t i = 0; i < p->nbinds; i++)
        free(p->binds[i].path);
    free(p->binds);
    free_strs(p->setenv, p->nsetenv);
    free_strs(p->env_deny, p->nenv_deny);
    free_strs(p->env_keep, p->nenv_keep);
    for (size_t i = 0; i < p->nallow; i++)
        free(p->allow[i].host);
    free(p->allow);
    *p = (struct sandbox_policy)SANDBOX_POLICY_INIT;
}

/* One HOST[:PORT] of an allow-list into a; -1 if malformed. */
static int parse_allow(const char *s, size_t len, struct sandbox_allow *a)
{
    const char *end = s + len, *hs = s, *he, *colon = NULL;
    if (len && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb || rb == s + 1)
            return -1;
        hs = s + 1;
        he = rb;
        if (rb + 1 < end && rb[1] != ':')
            return -1;
        colon = rb + 1 < end ? rb + 1 : NULL;
        char v6[INET6_ADDRSTRLEN + 1];
        struct in6_addr in;
        if ((size_t)(he - hs) >= sizeof v6)
            return -1;
        memcpy(v6, hs, (size_t)(he - hs));
        v6[he - hs] = '\0';
        if (inet_pton(AF_INET6, v6, &in) != 1)
            return -1;
        char canon[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &in, canon, sizeof canon);
        a->host = xstrdup(canon);
    } else {
        colon = memchr(s, ':', len);
        he = colon ? colon : end;
        size_t hl = (size_t)(he - hs);
        if (hl == 0 || hl > 253)
            return -1;
        for (size_t i = 0; i < hl; i++) {
            unsigned char c = (unsigned char)hs[i];
            bool star = c == '*' && i == 0 && hl > 2 && hs[1] == '.';
            if (!(star || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
                return -1;
        }
        a->host = xstrndup(hs, hl);
        for (char *q = a->host; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
    }
    a->port = 0;
    if (colon) {
        long v = 0;
        const char *q = colon + 1;
        if (q == end)
            goto bad;
        for (; q < end; q++)
            if (*q < '0' || *q > '9' || (v = v * 10 + (*q - '0')) > 65535)
                goto bad;
        if (v == 0)
            goto bad;
        a->port = (int)v;
    }
    return 0;
bad:
    free(a->host);
    a->host = NULL;
    return -1;
}

int sandbox_net_parse(struct sandbox_policy *p, const char *s, struct rx_error **err)
{
    if (strcmp(s, "none") == 0 || strcmp(s, "host") == 0) {
        p->net = s[0] == 'n' ? SANDBOX_NET_NONE : SANDBOX_NET_HOST;
        return 0;
    }
    if (strncmp(s, "allow:", 6) != 0)
        return rx_error_set(err, RX_EUSAGE,
                            "unknown --network mode '%s' (none, host or allow:HOST[:PORT],...)", s);
    struct sandbox_allow *list = NULL;
    size_t n = 0;
    for (const char *q = s + 6;;) {
        const char *c = strchrnul(q, ',');
        struct sandbox_allow a;
        if (c == q || parse_allow(q, (size_t)(c - q), &a) < 0) {
            for (size_t i = 0; i < n; i++)
                free(list[i].host);
            free(list);
            return rx_error_set(err, RX_EUSAGE,
                                "bad allow-list entry '%.*s' in '%s' (HOST, HOST:PORT, *.DOMAIN, "
                                "an IP address or [IPv6]:PORT)",
                                (int)(c - q), q, s);
        }
        list = xrealloc(list, (n + 1) * sizeof *list);
        list[n++] = a;
        if (!*c)
            break;
        q = c + 1;
    }
    for (size_t i = 0; i < p->nallow; i++)
        free(p->allow[i].host);
    free(p->allow);
    p->allow = list;
    p->nallow = n;
    p->net = SANDBOX_NET_ALLOW;
    return 0;
}

int sandbox_cwd_parse(const char *s)
{
    if (strcmp(s, "rw") == 0)
        return SANDBOX_CWD_RW;
    if (strcmp(s, "ro") == 0)
        return SANDBOX_CWD_RO;
    if (strcmp(s, "none") == 0)
        return SANDBOX_CWD_NONE;
    return -1;
}

bool sandbox_env_match(const char *pattern, const char *name)
{
    size_t lp = strlen(pattern), ln = strlen(name);
    bool lead = lp > 0 && pattern[0] == '*';
    bool trail = lp > 1 && pattern[lp - 1] == '*';
    if (lp == 1 && lead)
        return true;
    const char *core = pattern + (lead ? 1 : 0);
    size_t lc = lp - (lead ? 1 : 0) - (trail ? 1 : 0);
    if (!lead && !trail)
        return strcmp(pattern, name) == 0;
    if (lead && trail) {
        if (lc > ln)
            return false;
        for (size_t i = 0; i + lc <= ln; i++)
            if (memcmp(name + i, core, lc) == 0)
                return true;
        return false;
    }
    if (lc > ln)
        return false;
    if (trail) /* PREFIX* */
        return memcmp(name, core, lc) == 0;
    return memcmp(name + ln - lc, core, lc) == 0; /* *SUFFIX */
}

static bool env_denied(const struct sandbox_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nenv_keep; i++)
        if (strcmp(p->env_keep[i], name) == 0)
            return false;
    for (size_t i = 0; sandbox_default_env_deny[i]; i++)
        if (sandbox_env_match(sandbox_default_env_deny[i], name))
            return true;
    for (size_t i = 0; i < p->nenv_deny; i++)
        if (sandbox_env_match(p->env_deny[i], name))
            return true;
    return false;
}

extern char **environ;

/* The entry of v (n entries) that sets name, or n. */
static size_t env_find(char **v, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(v[i], name, len) == 0 && v[i][len] == '=')
            return i;
    return n;
}

/* name=value into v: the entry for name replaced, or appended (v has room for one more). */
static void env_put(char **v, size_t *n, const char *name, size_t len, const char *value)
{
    char *e = xasprintf("%.*s=%s", (int)len, name, value);
    size_t i = env_find(v, *n, name, len);
    if (i < *n) {
        free(v[i]);
        v[i] = e;
    } else {
        v[(*n)++] = e;
    }
}

static void env_drop(char **v, size_t *n, const char *name)
{
    size_t i = env_find(v, *n, name, strlen(name));
    if (i == *n)
        return;
    free(v[i]);
    memmove(v + i, v + i + 1, (*n - i) * sizeof *v); /* the NULL too */
    (*n)--;
}

/*
 * The environment the policy allows, NULL-terminated and owned, built in
 * runix before any fork: the program's process only points environ at it.
 * There, every page the filtering wrote would be a copy-on-write fault of
 * the pages it shares with runix.
 */
static char **env_build(const struct sandbox_policy *p, bool store_on)
{
    size_t cap = p->nsetenv + 2, n = 0;
    for (char **e = environ; !p->clearenv && e && *e; e++)
        cap++;
    char **v = xcalloc(cap + 1, sizeof *v);
    for (char **e = environ; !p->clearenv && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq) {
            char *name = xstrndup(*e, (size_t)(eq - *e));
            bool denied = env_denied(p, name);
            free(name);
            if (denied)
                continue;
        }
        v[n++] = xstrdup(*e);
    }
    /* The host's temporary directory is not in the view; the private /tmp is. */
    if (!p->clearenv && env_find(v, n, "TMPDIR", 6) < n)
        env_put(v, &n, "TMPDIR", 6, "/tmp");
    for (size_t i = 0; i < p->nsetenv; i++) {
        const char *eq = strchr(p->setenv[i], '=');
        if (eq)
            env_put(v, &n, p->setenv[i], (size_t)(eq - p->setenv[i]), eq + 1);
    }
    /* --clearenv: only what --setenv gives (RUNIX_STORE_SOCKET=... names the socket too). */
    if (store_on && !p->clearenv)
        env_put(v, &n, "RUNIX_STORE_SOCKET", 18, STORESOCK_PATH);
    else if (!store_on)
        env_drop(v, &n, "RUNIX_STORE_SOCKET"); /* an outer sandbox's: not reachable from here */
    return v;
}

static void env_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* ---- the seccomp filter ---------------------------------------------------- */

#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

#define MAX_FILTER 160

struct filter {
    struct sock_filter f[MAX_FILTER];
    unsigned short n;
};

static void emit(struct filter *b, unsigned short code, unsigned char jt, unsigned char jf,
                 unsigned int k)
{
    if (b->n >= MAX_FILTER)
        BUG("seccomp filter longer than %d instructions", MAX_FILTER);
    b->f[b->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

/* nr -> errno e; the number is in the accumulator. */
static void deny(struct filter *b, long nr, int e)
{
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (unsigned int)nr);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | (unsigned int)e);
}

/* nr with bit in its argument arg set -> EPERM; else allowed. */
static void deny_flag(struct filter *b, long nr, int arg, unsigned int bit)
{
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (unsigned int)nr);
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(arg));
    emit(b, BPF_JMP | BPF_JSET | BPF_K, 0, 1, bit);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
}

/*
 * What a sandboxed program has no business doing.  Refused with EPERM (so
 * programs see an ordinary failure), except clone3, whose flags live in
 * memory a filter cannot read: ENOSYS makes the C library fall back to
 * clone, whose flags it can.  Other architectures' system calls (i386 on
 * x86_64) kill the process: their numbers mean other calls.
 */
static int build_filter(struct filter *b, bool nested, struct rx_error **err)
{
#ifndef SANDBOX_AUDIT_ARCH
    (void)b, (void)nested;
    return rx_error_set(err, RX_EUNSUPPORTED,
                        "no seccomp filter for this architecture; the sandbox refuses to run "
                        "without one");
#else
    (void)err;
    b->n = 0;
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, SANDBOX_AUDIT_ARCH);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_KILL_PROCESS);
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
    /* x32 numbers: the same calls under other numbers, which the checks below would miss. */
    emit(b, BPF_JMP | BPF_JGE | BPF_K, 0, 1, 0x40000000u);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | ENOSYS);
#endif
    /* TIOCSTI and TIOCLINUX push input into the terminal: commands for the shell outside. */
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 0, 5, SYS_ioctl);
    emit(b, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(1));
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 2, 0, TIOCSTI);
    emit(b, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, TIOCLINUX);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ERRNO | EPERM);
    if (!nested) {
        deny_flag(b, SYS_unshare, 0, CLONE_NEWUSER);
        deny_flag(b, SYS_clone, 0, CLONE_NEWUSER);
#ifdef SYS_clone3
        deny(b, SYS_clone3, ENOSYS);
#endif
        static const long mounts[] = {
            SYS_mount, SYS_umount2, SYS_pivot_root, SYS_setns,
#ifdef SYS_open_tree
            SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
#endif
#ifdef SYS_mount_setattr
            SYS_mount_setattr,
#endif
        };
        for (size_t i = 0; i < sizeof mounts / sizeof *mounts; i++)
            deny(b, mounts[i], EPERM);
    }
    static const long never[] = {
        SYS_keyctl, SYS_add_key, SYS_request_key, SYS_init_module, SYS_finit_module,
        SYS_delete_module, SYS_reboot, SYS_kexec_load,
#ifdef SYS_kexec_file_load
        SYS_kexec_file_load,
#endif
        SYS_swapon, SYS_swapoff, SYS_acct, SYS_bpf, SYS_userfaultfd, SYS_perf_event_open,
        SYS_open_by_handle_at, SYS_quotactl, SYS_lookup_dcookie, SYS_syslog,
#ifdef SYS_iopl
        SYS_iopl, SYS_ioperm,
#endif
    };
    for (size_t i = 0; i < sizeof never / sizeof *never; i++)
        deny(b, never[i], EPERM);
    emit(b, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    return 0;
#endif
}

/* In the program's process, last: no capabilities, no new privileges, the filter. */
static int lock_down(const struct sandbox_policy *p, struct rx_error **err)
{
    struct filter b;
    if (build_filter(&b, p->allow_nested, err) < 0)
        return -1;
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
            break; /* past the last capability this kernel knows */
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capset, &hdr, data) < 0)
        return rx_error_errno(err, "cannot drop the capabilities");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return rx_error_errno(err, "cannot set no_new_privs");
    struct sock_fprog prog = {b.n, b.f};
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
        return rx_error_errno(err, "cannot install the seccomp filter");
    return 0;
}

/* ---- the view -------------------------------------------------------------- */

/* What is read on the host before any namespace: paths resolved, the user's names. */
struct plan {
    const struct sandbox_policy *p;
    const char *store_dir;
    const char *const *paths;
    size_t npaths;
    char *cwd;                /* real path, or NULL (none, or unknown) */
    char **real;              /* the binds' real paths (NULL: does not exist); owned */
    char *resolv;             /* the host's resolv.conf, resolved, or NULL */
    char *passwd, *group;     /* the generated lines */
    char **env;               /* the program's environment (env_build); owned */
    int listen_http, listen_socks; /* in pid 1, SANDBOX_NET_ALLOW: the proxies' ports inside */
    int port_http, port_socks;
    bool store_on;                 /* the store socket (run-storesock.h) */
    int listen_store, store_ctl;   /* in pid 1: its listener, and the channel to runix */
};

static void plan_release(struct plan *pl)
{
    free(pl->cwd);
    for (size_t i = 0; pl->real && i < pl->p->nbinds; i++)
        free(pl->real[i]);
    free(pl->real);
    free(pl->resolv);
    free(pl->passwd);
    free(pl->group);
    env_free(pl->env);
}

/* Does a field of /etc/passwd stay one field? */
const char *passwd_field(const char *s, const char *fallback)
{
    if (!s || !*s || strpbrk(s, ":\n"))
        return fallback;
    return s;
}

/* Files larger than this are not read for a name (sandbox_etc_name): NSS answers. */
#define ETC_FILE_MAX (1 << 20)

/*
 * What NSS's files module reads, without loading nsswitch.conf and asking
 * nscd first (a quarter of a millisecond); an id that only another source
 * (LDAP, sssd) knows falls back to getpwuid()/getgrgid().
 */
int sandbox_etc_name(const char *path, unsigned long id, char *out, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct stat st;
    char *buf = NULL;
    ssize_t len = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size < ETC_FILE_MAX) {
        buf = xmalloc((size_t)st.st_size + 1);
        len = read(fd, buf, (size_t)st.st_size);
    }
    close(fd);
    int ret = -1;
    for (char *line = buf, *end; len > 0 && line < buf + len; line = end + 1) {
        end = memchr(line, '\n', (size_t)(buf + len - line));
        if (!end)
            end = buf + len;
        *end = '\0';
        char *c1 = strchr(line, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c1 == line || line[0] == '+' || line[0] == '-')
            continue; /* not an entry, or a NIS compat one */
        char *idend;
        errno = 0;
        unsigned long v = strtoul(c2 + 1, &idend, 10);
        if (errno || idend == c2 + 1 || *idend != ':' || c2[1] == '-' || v != id)
            continue;
        if ((size_t)(c1 - line) < n) {
            memcpy(out, line, (size_t)(c1 - line));
            out[c1 - line] = '\0';
            ret = 0;
        }
        break;
    }
    free(buf);
    return ret;
}

static int plan_make(struct plan *pl, const struct sandbox_policy *p, const char *store_dir,
                     const char *const *paths, size_t npaths, struct rx_error **err)
{
    *pl = (struct plan){.p = p, .store_dir = store_dir, .paths = paths, .npaths = npaths,
                        .listen_http = -1, .listen_socks = -1,
                        .store_on = p->realise && !p->no_store_socket, .listen_store = -1,
                        .store_ctl = -1};
    if (p->cwd != SANDBOX_CWD_NONE) {
        char buf[PATH_MAX];
        if (getcwd(buf, sizeof buf))
            pl->cwd = realpath(buf, NULL);
    }
    pl->real = xcalloc(p->nbinds + 1, sizeof *pl->real);
    for (size_t i = 0; i < p->nbinds; i++) {
        const char *path = p->binds[i].path;
        if (path[0] != '/')
            return rx_error_set(err, RX_EUSAGE, "sandbox path '%s' is not absolute", path);
        pl->real[i] = realpath(path, NULL);
        if (!pl->real[i] && p->binds[i].kind != SANDBOX_HIDE)
            return rx_error_errno(err, "cannot allow '%s' in the sandbox", path);
        if (pl->real[i] && strcmp(pl->real[i], "/") == 0 && p->binds[i].kind != SANDBOX_HIDE)
            return rx_error_set(err, RX_EUSAGE,
                                "'%s' is the whole file system; name the directories the "
                                "program needs",
                                path);
    }
    if (p->net == SANDBOX_NET_HOST)
        pl->resolv = realpath("/etc/resolv.conf", NULL);
    uid_t uid = getuid();
    gid_t gid = getgid();
    char uname[256], gnamebuf[256];
    const char *uname_p = uname, *gname_p = gnamebuf;
    if (sandbox_etc_name("/etc/passwd", uid, uname, sizeof uname) < 0) {
        struct passwd *pw = getpwuid(uid);
        uname_p = pw ? pw->pw_name : getenv("USER");
    }
    const char *user = passwd_field(uname_p, "user");
    if (sandbox_etc_name("/etc/group", gid, gnamebuf, sizeof gnamebuf) < 0) {
        struct group *gr = getgrgid(gid);
        gname_p = gr ? gr->gr_name : NULL;
    }
    const char *home = passwd_field(getenv("HOME"), "/");
    const char *gname = passwd_field(gname_p, user);
    /* The user, and the overflow ids files on the host show as. */
    pl->passwd = xasprintf("%s:x:%u:%u:%s:%s:/bin/sh\n%s", user, (unsigned)uid, (unsigned)gid,
                           user, home,
                           uid == 65534 ? "" : "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n");
    pl->group = xasprintf("%s:x:%u:\n%s", gname, (unsigned)gid,
                          gid == 65534 ? "" : "nogroup:x:65534:\n");
    pl->env = env_build(p, pl->store_on);
    return 0;
}

/* mkdir -p of path's directories (and path itself when dir); path is absolute. */
static int make_parents(const char *path, bool dir)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof buf, "%s", path) >= sizeof buf)
        return -ENAMETOOLONG;
    for (char *s = buf + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            if (c == '\0' && !dir)
                break;
            *s = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return -errno;
            *s = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

/* A mount point at dst for src: a directory or an empty file like it. */
static int make_mount_point(const char *src, const char *dst, struct rx_error **err)
{
    struct stat st;
    if (stat(src, &st) < 0)
        return rx_error_errno(err, "cannot read '%s'", src);
    int e = make_parents(dst, S_ISDIR(st.st_mode));
    if (e < 0) {
        errno = -e;
        return rx_error_errno(err, "cannot create '%s' in the sandbox", dst);
    }
    if (!S_ISDIR(st.st_mode)) {
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0 && errno != EEXIST)
            return rx_error_errno(err, "cannot create '%s' in the sandbox", dst);
        if (fd >= 0)
            close(fd);
    }
    return 0;
}

#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

struct rx_mount_attr {
    uint64_t attr_set, attr_clr, propagation, userns_fd;
};

/*
 * Bind src on dst, with every mount below it nosuid, nodev and (ro) read-only.
 * mount_setattr (Linux 5.12) does that for the whole tree at once; without it,
 * only src itself is bound, without the mounts below it, so that none stays
 * writable.
 */
int bind_path(const char *src, const char *dst, bool ro, struct rx_error **err)
{
    if (make_mount_point(src, dst, err) < 0)
        return -1;
#ifdef SYS_mount_setattr
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0)
        return rx_error_errno(err, "cannot bind '%s' in the sandbox", src);
    struct rx_mount_attr a = {MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0),
                              0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, dst, AT_RECURSIVE, &a, sizeof a) == 0)
        return 0;
    if (errno != ENOSYS)
        return rx_error_errno(err, "cannot make '%s' %s in the sandbox", dst,
                              ro ? "read-only" : "nosuid");
    if (umount2(dst, MNT_DETACH) < 0)
        return rx_error_errno(err, "cannot undo the bind of '%s'", dst);
#endif
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
        return rx_error_errno(err, "cannot bind '%s' in the sandbox", src);
    unsigned long f = MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | userns_locked_flags(src);
    if (mount(NULL, dst, NULL, f | (ro ? MS_RDONLY : 0), NULL) < 0)
        return rx_error_errno(err, "cannot make '%s' %s in the sandbox", dst,
                              ro ? "read-only" : "nosuid");
    return 0;
}

/* Over path in the view (dst): an empty directory or file that nobody may open. */
static int hide(const char *dst, struct rx_error **err)
{
    struct stat st;
    if (lstat(dst, &st) < 0)
        return 0; /* not in the view: nothing to hide */
    if (S_ISDIR(st.st_mode)) {
        if (mount("tmpfs", dst, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=000,size=4k") < 0)
            return rx_error_errno(err, "cannot hide '%s'", dst);
        return 0;
    }
    if (S_ISLNK(st.st_mode))
        return rx_error_set(err, RX_EUSAGE, "cannot hide '%s': it is a symbolic link", dst);
    if (mount("/hidden", dst, NULL, MS_BIND, NULL) < 0 ||
        mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
            0)
        return rx_error_errno(err, "cannot hide '%s'", dst);
    return 0;
}

int write_text(const char *path, const char *text, struct rx_error **err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return rx_error_errno(err, "cannot create '%s' in the sandbox", path);
    size_t n = strlen(text);
    ssize_t w = write(fd, text, n);
    close(fd);
    if (w != (ssize_t)n)
        return rx_error_errno(err, "cannot write '%s' in the sandbox", path);
    return 0;
}

int make_dev(struct rx_error **err)
{
    if (mount("tmpfs", "/newroot/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0)
        return rx_error_errno(err, "cannot mount /dev in the sandbox");
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++) {
        char src[64], dst[64];
        snprintf(src, sizeof src, "/oldroot/dev/%s", nodes[i]);
        snprintf(dst, sizeof dst, "/newroot/dev/%s", nodes[i]);
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0)
            return rx_error_errno(err, "cannot create %s in the sandbox", dst + 8);
        close(fd);
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return rx_error_errno(err, "cannot bind /dev/%s in the sandbox", nodes[i]);
    }
    if (mkdir("/newroot/dev/pts", 0755) < 0 || mkdir("/newroot/dev/shm", 01777) < 0)
        return rx_error_errno(err, "cannot create /dev/pts in the sandbox");
    if (mount("devpts", "/newroot/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=620") < 0)
        return rx_error_errno(err, "cannot mount a private devpts in the sandbox");
    if (mount("tmpfs", "/newroot/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        return rx_error_errno(err, "cannot mount /dev/shm in the sandbox");
    static const char *const links[][2] = {
        {"pts/ptmx", "ptmx"},          {"/proc/self/fd", "fd"},     {"/proc/self/fd/0", "stdin"},
        {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
    };
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        char dst[64];
        snprintf(dst, sizeof dst, "/newroot/dev/%s", links[i][1]);
        if (symlink(links[i][0], dst) < 0)
            return rx_error_errno(err, "cannot create /dev/%s in the sandbox", links[i][1]);
    }
    return 0;
}

/* path below /newroot into out. */
static int in_new(char *out, size_t n, const char *path, struct rx_error **err)
{
    if ((size_t)snprintf(out, n, "/newroot%s", path) >= n)
        return rx_error_set(err, ENAMETOOLONG, "path too long: %s", path);
    return 0;
}

static int in_old(char *out, size_t n, const char *path, struct rx_error **err)
{
    if ((size_t)snprintf(out, n, "/oldroot%s", path) >= n)
        return rx_error_set(err, ENAMETOOLONG, "path too long: %s", path);
    return 0;
}

/*
 * Each closure path read-only, nosuid and nodev: one mount_setattr over the
 * whole /newroot/nix/store (Linux 5.12), else one remount per path.
 */
static int closure_read_only(const struct plan *pl, struct rx_error **err)
{
#ifdef SYS_mount_setattr
    struct rx_mount_attr a = {MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0};
    if (syscall(SYS_mount_setattr, AT_FDCWD, "/newroot/nix/store", AT_RECURSIVE, &a, sizeof a) == 0)
        return 0;
    if (errno != ENOSYS)
        return rx_error_errno(err, "cannot make the sandbox's store read-only");
#endif
    unsigned long flags =
        MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | userns_locked_flags(pl->store_dir);
    for (size_t i = 0; i < pl->npaths; i++) {
        char dst[PATH_MAX];
        struct stat st;
        snprintf(dst, sizeof dst, "/newroot/nix/store/%s", pl->paths[i]);
        if (lstat(dst, &st) == 0 && S_ISLNK(st.st_mode))
            continue;
        if (mount(NULL, dst, NULL, flags, NULL) < 0)
            return rx_error_errno(err, "cannot bind '%s' in the sandbox", pl->paths[i]);
    }
    return 0;
}

static int bind_closure(const struct plan *pl, struct rx_error **err)
{
    for (size_t i = 0; i < pl->npaths; i++) {
        char src[PATH_MAX], dst[PATH_MAX];
        if ((size_t)snprintf(src, sizeof src, "/oldroot%s/%s", pl->store_dir, pl->paths[i]) >=
                sizeof src ||
            (size_t)snprintf(dst, sizeof dst, "/newroot/nix/store/%s", pl->paths[i]) >= sizeof dst)
            return rx_error_set(err, ENAMETOOLONG, "store path too long: %s", pl->paths[i]);
        struct stat st;
        if (lstat(src, &st) < 0)
            return rx_error_errno(err, "closure path '%s' is not in the store", pl->paths[i]);
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(src, target, sizeof target - 1);
            if (n < 0)
                return rx_error_errno(err, "cannot read '%s'", src);
            target[n] = '\0';
            if (symlink(target, dst) < 0)
                return rx_error_errno(err, "cannot create '%s'", dst);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(dst, 0555) < 0)
                return rx_error_errno(err, "cannot create '%s'", dst);
        } else {
            int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
            if (fd < 0)
                return rx_error_errno(err, "cannot create '%s'", dst);
            close(fd);
        }
        if (mount(src, dst, NULL, MS_BIND, NULL) < 0)
            return rx_error_errno(err, "cannot bind '%s' in the sandbox", pl->paths[i]);
    }
    return closure_read_only(pl, err);
}

/* In pid 1: build the new root and enter it. */
static int build_view(struct plan *pl, struct rx_error **err)
{
    const struct sandbox_policy *p = pl->p;
    if (userns_stage_root("the sandbox's root", err) < 0)
        return -1;
    /* Now / is the staging tmpfs and the host's root is /oldroot. */
    int fd = open("/hidden", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0)
        return rx_error_errno(err, "cannot create the file that hides files");
    close(fd);
    if (mount("tmpfs", "/newroot", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return rx_error_errno(err, "cannot mount the sandbox's root");
    static const char *const dirs[] = {"/newroot/nix", "/newroot/nix/store", "/newroot/etc",
                                       "/newroot/tmp", "/newroot/dev", "/newroot/proc"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (mkdir(dirs[i], 0755) < 0)
            return rx_error_errno(err, "cannot create %s", dirs[i] + 8);
    /*
     * /nix/store is a tmpfs of its own: one mount_setattr makes all of it
     * read-only, and with the store socket pid 1 can open it up briefly.
     */
    if (mount("tmpfs", "/newroot/nix/store", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0)
        return rx_error_errno(err, "cannot mount the sandbox's /nix/store");
    if (pl->store_on &&
        (mkdir("/newroot/nix/var", 0755) < 0 || mkdir("/newroot/nix/var/runix", 0755) < 0))
        return rx_error_errno(err, "cannot prepare the sandbox's store for the store socket");
    if (bind_closure(pl, err) < 0)
        return -1;
    if (mount("tmpfs", "/newroot/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
        return rx_error_errno(err, "cannot mount the sandbox's /tmp");
    if (make_dev(err) < 0)
        return -1;
    if (write_text("/newroot/etc/passwd", pl->passwd, err) < 0 ||
        write_text("/newroot/etc/group", pl->group, err) < 0 ||
        write_text("/newroot/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", err) < 0)
        return -1;
    char src[PATH_MAX], dst[PATH_MAX];
    if (pl->resolv) {
        if (in_old(src, sizeof src, pl->resolv, err) < 0 ||
            bind_path(src, "/newroot/etc/resolv.conf", true, err) < 0)
            return -1;
    }
    if (pl->cwd && strcmp(pl->cwd, "/") != 0) {
        if (in_old(src, sizeof src, pl->cwd, err) < 0 || in_new(dst, sizeof dst, pl->cwd, err) < 0 ||
            bind_path(src, dst, p->cwd == SANDBOX_CWD_RO, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->nbinds; i++) {
        if (p->binds[i].kind == SANDBOX_HIDE || !pl->real[i])
            continue;
        if (in_old(src, sizeof src, pl->real[i], err) < 0 ||
            in_new(dst, sizeof dst, pl->real[i], err) < 0 ||
            bind_path(src, dst, p->binds[i].kind == SANDBOX_RO, err) < 0)
            return -1;
    }
    for (size_t i = 0; i < p->nbinds; i++) {
        if (p->binds[i].kind != SANDBOX_HIDE)
            continue;
        /* The path as given and as resolved: both name it in the view. */
        const char *names[2] = {p->binds[i].path, pl->real[i]};
        for (int k = 0; k < 2; k++) {
            if (!names[k] || (k == 1 && strcmp(names[0], names[1]) == 0))
                continue;
            if (in_new(dst, sizeof dst, names[k], err) < 0 || hide(dst, err) < 0)
                return -1;
        }
    }
    if (p->gpu_dir && (in_old(src, sizeof src, p->gpu_dir, err) < 0 ||
                       bind_path(src, "/newroot/run/opengl-driver", true, err) < 0))
        return -1;
    if (mount("proc", "/newroot/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return rx_error_errno(err, "cannot mount /proc for the sandbox's pid namespace (a "
                                   "container that masks parts of the host's /proc forbids it)");

    /* Enter it; the staging tmpfs with the host's root is stacked on top, then detached. */
    if (chdir("/newroot") < 0)
        return rx_error_errno(err, "chdir /newroot");
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return rx_error_errno(err, "pivot_root into the sandbox failed");
    if (umount2(".", MNT_DETACH) < 0)
        return rx_error_errno(err, "cannot detach the host's root");
    if (chdir("/") < 0)
        return rx_error_errno(err, "chdir /");
    if (pl->store_on) {
        struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = STORESOCK_PATH};
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 16) < 0) {
            int e = errno;
            if (l >= 0)
                close(l);
            errno = e;
            return rx_error_errno(err, "cannot listen on the store socket %s", STORESOCK_PATH);
        }
        pl->listen_store = l;
    }
    if (mount(NULL, "/nix/store", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              "mode=0755") < 0)
        return rx_error_errno(err, "cannot make the sandbox's store read-only");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, "mode=0755") < 0 ||
        mount(NULL, "/dev", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, "mode=0755") < 0)
        return rx_error_errno(err, "cannot make the sandbox's root read-only");
    return 0;
}

/* loopback up in the new network namespace: without it, even local servers fail. */
int loopback_up(struct rx_error **err)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return rx_error_errno(err, "no network for the sandbox: cannot open a socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int r = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (r == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        r = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    int e = errno;
    close(s);
    if (r < 0) {
        errno = e;
        return rx_error_errno(err, "cannot bring up loopback in the sandbox's network namespace "
                                   "(a kernel or AppArmor policy forbids it); refusing to run "
                                   "without network isolation");
    }
    return 0;
}

/* A TCP listener on 127.0.0.1 (port chosen by the kernel) in the sandbox's network. */
static int listen_local(int *port, struct rx_error **err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return rx_error_errno(err, "cannot open the proxy's socket in the sandbox");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return rx_error_errno(err, "cannot listen on 127.0.0.1 in the sandbox");
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* pid 1: hand an accepted connection over to runix, outside, tagged with its kind. */
static void hand_over(int listener, int ctl, char kind)
{
    int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0)
        return;
    int flags = fcntl(c, F_GETFL);
    if (flags >= 0)
        fcntl(c, F_SETFL, flags & ~O_NONBLOCK);
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {&kind, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &c, sizeof c);
    while (sendmsg(ctl, &m, MSG_NOSIGNAL) < 0 && errno == EINTR)
        ;
    close(c);
}

/* runix: take one connection from pid 1; -1 when the channel is closed. */
static int take_over(int ctl, char *kind)
{
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {kind, 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(ctl, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (r <= 0)
        return r == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : -2;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(sizeof(int)))
        return -2;
    int fd;
    memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    return fd;
}

/* ---- the store socket ------------------------------------------------------ */

/* Requests served at once; more are refused as busy. */
#define STORE_SERVERS 8

/* Reap what has ended: pid 1 (its status into *init_st) and the store servers' slots. */
static void reap(pid_t init, int *init_st, bool *init_done, pid_t kids[STORE_SERVERS])
{
    int st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
        if (w == init) {
            *init_st = st;
            *init_done = true;
        }
        for (size_t i = 0; i < STORE_SERVERS; i++)
            if (kids[i] == w)
                kids[i] = 0;
    }
}
/* Store paths made visible per message from runix to pid 1. */
#define STORE_BATCH 32
/* How long a client has to send its request. */
#define STORE_REQUEST_SECONDS 10

static void store_answer(int fd, const char *what, const char *why)
{
    char line[STORESOCK_ANSWER_MAX];
    int n = snprintf(line, sizeof line, "%s%s%s", what, why ? " " : "", why ? why : "");
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' '; /* one line, whatever a reason says */
    line[n++] = '\n';
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        /* the client is gone, or does not read: nothing to do */
    }
}

/*
 * After a refusal: read what the client still sends (for a second at most),
 * so that closing does not reset the connection before it reads the answer.
 */
static void store_drain(int fd)
{
    shutdown(fd, SHUT_WR);
    char buf[4096];
    size_t total = 0;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 1000L - ((now.tv_sec - t0.tv_sec) * 1000L +
                             (now.tv_nsec - t0.tv_nsec) / 1000000L);
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || total > (1u << 20) || poll(&pf, 1, (int)left) <= 0)
            return;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return;
        if (n > 0)
            total += (size_t)n;
    }
}

/* runix: one message to pid 1, with the client's connection first among fds. */
static int store_send(int sctl, const char *msg, size_t len, const int *fds, size_t nfds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * (1 + STORE_BATCH))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {(void *)msg, len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = CMSG_SPACE(sizeof(int) * nfds)};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    ssize_t r;
    while ((r = sendmsg(sctl, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return r < 0 ? -1 : 0;
}

/* Read the request within the time allowed; 0 with path, or -1 with why. */
static int store_read(int fd, char *path, const char **why)
{
    char buf[STORESOCK_REQUEST_MAX];
    size_t have = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = STORE_REQUEST_SECONDS * 1000L - ((now.tv_sec - t0.tv_sec) * 1000L +
                                                     (now.tv_nsec - t0.tv_nsec) / 1000000L);
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
            *why = "no complete request in time (one line, within 10 seconds)";
            return -1;
        }
        ssize_t n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            *why = "incomplete request (it ends with a newline)";
            return -1;
        }
        have += (size_t)n;
        int r = storesock_parse(buf, have, path, why);
        if (r <= 0)
            return r;
    }
}

/*
 * runix, in a child per connection: read and check the request, realise the
 * path through the policy's callback, hand the closure's mounts to pid 1,
 * which answers "ok" once they are in place.
 */
static void store_serve(const struct sandbox_policy *p, const char *store_dir, int sctl, int fd)
{
    char path[STORESOCK_STORE_PATH_MAX + 1];
    const char *why = NULL;
    if (store_read(fd, path, &why) < 0) {
        store_answer(fd, "refused", why);
        store_drain(fd);
        return;
    }
    /* A copy: the callback may replace the caller's state that store_dir points into. */
    char sdir[PATH_MAX];
    if ((size_t)snprintf(sdir, sizeof sdir, "%s", store_dir) >= sizeof sdir) {
        store_answer(fd, "refused", "the store's directory name is too long");
        return;
    }
    store_dir = sdir;
    char **names = NULL;
    size_t nn = 0;
    char reason[STORESOCK_ANSWER_MAX - 16] = "";
    if (p->realise(p->realise_ctx, path, &names, &nn, reason, sizeof reason) < 0) {
        store_answer(fd, "refused", reason[0] ? reason : "the path could not be realised");
        store_drain(fd);
        return;
    }
    char msg[1 + STORE_BATCH * (STORESOCK_STORE_PATH_MAX + 1) + PATH_MAX];
    int fds[1 + STORE_BATCH];
    size_t len = 1, k = 0;
    /* Cloning mounts needs a mount namespace of runix's user namespace: runix's is the host's. */
    int ret = unshare(CLONE_NEWNS);
    msg[0] = 'M';
    fds[0] = fd;
    for (size_t i = 0; i <= nn && ret == 0; i++) {
        bool last = i == nn;
        if (!last && strlen(names[i]) > STORESOCK_STORE_PATH_MAX - 11) {
            ret = -1;
            break;
        }
        if (k > 0 && (last || k == STORE_BATCH)) {
            ret = store_send(sctl, msg, len, fds, 1 + k);
            for (size_t j = 0; j < k; j++)
                close(fds[1 + j]);
            len = 1;
            k = 0;
        }
        if (last || ret < 0)
            break;
        char src[PATH_MAX];
        struct stat st;
        if ((size_t)snprintf(src, sizeof src, "%s/%s", store_dir, names[i]) >= sizeof src ||
            lstat(src, &st) < 0) {
            ret = -1;
            break;
        }
        size_t nl = strlen(names[i]) + 1;
        if (S_ISLNK(st.st_mode)) {
            char l[1 + STORESOCK_STORE_PATH_MAX + 1 + PATH_MAX];
            l[0] = 'L';
            memcpy(l + 1, names[i], nl);
            ssize_t t = readlink(src, l + 1 + nl, PATH_MAX - 1);
            if (t < 0) {
                ret = -1;
                break;
            }
            ret = store_send(sctl, l, 1 + nl + (size_t)t, fds, 1);
            continue;
        }
        int m = (int)syscall(SYS_open_tree, AT_FDCWD, src,
                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
        struct mount_attr ma = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                                            MOUNT_ATTR_NODEV};
        if (m < 0 || syscall(SYS_mount_setattr, m, "", AT_EMPTY_PATH, &ma, sizeof ma) < 0) {
            if (m >= 0)
                close(m);
            ret = -1;
            break;
        }
        memcpy(msg + len, names[i], nl);
        len += nl;
        fds[1 + k++] = m;
    }
    for (size_t j = 0; j < k; j++)
        close(fds[1 + j]);
    int e = errno;
    for (size_t i = 0; i < nn; i++)
        free(names[i]);
    free(names);
    if (ret < 0) {
        char r[256];
        snprintf(r, sizeof r, "cannot make the closure visible in the sandbox: %s", strerror(e));
        store_answer(fd, "refused", r);
        return;
    }
    static const char done = 'D';
    if (store_send(sctl, &done, 1, fds, 1) < 0)
        store_answer(fd, "refused", "the sandbox is gone");
}

/* pid 1: put one store path in /nix/store from a mount of it; 0, or -1 with errno. */
static int store_attach(const char *dst, int m, const struct stat *store, bool *open_rw)
{
    struct stat st;
    if (lstat(dst, &st) == 0) {
        if (st.st_dev != store->st_dev || S_ISLNK(st.st_mode))
            return 0; /* already there */
        errno = EEXIST;
        return -1;
    }
    if (!*open_rw) {
        if (mount(NULL, "/nix/store", NULL, MS_REMOUNT | MS_NOSUID | MS_NODEV, "mode=0755") < 0)
            return -1;
        *open_rw = true;
    }
    if (m < 0)
        return 0;
    if (fstat(m, &st) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        if (mkdir(dst, 0555) < 0)
            return -1;
    } else {
        int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (fd < 0)
            return -1;
        close(fd);
    }
    if (syscall(SYS_move_mount, m, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) {
        int e = errno;
        if (S_ISDIR(st.st_mode))
            rmdir(dst);
        else
            unlink(dst);
        errno = e;
        return -1;
    }
    return 0;
}

/* pid 1: one message from runix's store server; -1 when runix is gone. */
static int store_apply(int sctl)
{
    char buf[1 + STORE_BATCH * (STORESOCK_STORE_PATH_MAX + 1) + PATH_MAX + 1];
    union {
        char c[CMSG_SPACE(sizeof(int) * (1 + STORE_BATCH))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {buf, sizeof buf - 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.c,
                       .msg_controllen = sizeof u.c};
    ssize_t r = recvmsg(sctl, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (r == 0)
        return -1;
    if (r < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    buf[r] = '\0';
    int fds[1 + STORE_BATCH];
    size_t nfds = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n && nfds < 1 + STORE_BATCH; i++)
            memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
    }
    if (nfds == 0)
        return 0;
    int client = fds[0];
    struct stat store;
    bool open_rw = false, failed = false;
    char dst[PATH_MAX], reason[PATH_MAX + 128] = "";
    if (stat("/nix/store", &store) < 0) {
        failed = true;
        snprintf(reason, sizeof reason, "cannot see the sandbox's store: %s", strerror(errno));
    } else if (buf[0] == 'M') {
        size_t off = 1, i = 1;
        while (!failed && off < (size_t)r && i < nfds) {
            const char *name = buf + off;
            size_t nl = strlen(name);
            off += nl + 1;
            bool too_long = nl > STORESOCK_STORE_PATH_MAX - 11;
            snprintf(dst, sizeof dst, "/nix/store/%.*s", (int)(too_long ? 0 : nl), name);
            if (too_long || !storesock_store_path_valid(dst, strlen(dst)) ||
                store_attach(dst, fds[i], &store, &open_rw) < 0) {
                failed = true;
                snprintf(reason, sizeof reason, "cannot make %s visible in the sandbox: %s", dst,
                         strerror(errno));
            }
            i++;
        }
    } else if (buf[0] == 'L') {
        const char *name = buf + 1;
        size_t nl = strlen(name);
        const char *target = name + nl + 1;
        snprintf(dst, sizeof dst, "/nix/store/%.*s",
                 (int)(nl > STORESOCK_STORE_PATH_MAX ? STORESOCK_STORE_PATH_MAX : nl), name);
        if ((size_t)r < 1 + nl + 1 || !storesock_store_path_valid(dst, strlen(dst)) ||
            store_attach(dst, -1, &store, &open_rw) < 0 ||
            (open_rw && symlink(target, dst) < 0)) {
            failed = true;
            snprintf(reason, sizeof reason, "cannot make %s visible in the sandbox: %s", dst,
                     strerror(errno));
        }
    } else if (buf[0] == 'D') {
        store_answer(client, "ok", NULL);
    }
    if (open_rw &&
        mount(NULL, "/nix/store", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              "mode=0755") < 0) {
        /* Never leave the store writable: the program dies with the sandbox. */
        _exit(127);
    }
    if (failed) {
        store_answer(client, "refused", reason);
        shutdown(client, SHUT_RDWR); /* the later "ok" goes nowhere */
    }
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    return 0;
}

/* ---- the processes --------------------------------------------------------- */

/* Signals that runix and pid 1 pass on when someone sends them. */
static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM};

static void forward_set(sigset_t *s)
{
    sigemptyset(s);
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
        sigaddset(s, forwarded[i]);
}

/* pid 1 tells runix what happened: 'E' and a message, or 'S' and the wait status. */
static _Noreturn void child_fail(int fd, struct rx_error *err)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "E%s", err && err->msg ? err->msg : "sandbox setup failed");
    if (n > (int)sizeof buf - 1)
        n = (int)sizeof buf - 1;
    if (write(fd, buf, (size_t)n) < 0) {
        /* runix is gone: nobody to tell */
    }
    _exit(127);
}

/* pid 1 after the setup: reap everything, pass on signals from outside, end with the program. */
static _Noreturn void init_loop(const struct plan *pl, pid_t prog, int report, int ctl)
{
    sigset_t set;
    forward_set(&set);
    sigaddset(&set, SIGCHLD);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        _exit(127);
    struct pollfd pfd[5] = {{sfd, POLLIN, 0}, {pl->listen_http, POLLIN, 0},
                            {pl->listen_socks, POLLIN, 0}, {pl->listen_store, POLLIN, 0},
                            {pl->store_ctl, POLLIN, 0}};
    for (;;) {
        if (poll(pfd, 5, -1) < 0)
            continue;
        if (pfd[1].revents)
            hand_over(pl->listen_http, ctl, PROXY_HTTP);
        if (pfd[2].revents)
            hand_over(pl->listen_socks, ctl, PROXY_SOCKS);
        if (pfd[3].revents)
            hand_over(pl->listen_store, pl->store_ctl, 'R');
        if (pfd[4].revents && store_apply(pl->store_ctl) < 0)
            pfd[4].fd = -1; /* runix is gone; PDEATHSIG follows */
        if (!pfd[0].revents)
            continue;
        struct signalfd_siginfo si;
        bool child = false;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGCHLD) {
                child = true;
                continue;
            }
            /* From outside the namespace (runix passing it on): the sender's pid is 0 here. */
            if ((si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE) && si.ssi_pid == 0)
                kill(prog, (int)si.ssi_signo);
        }
        if (!child)
            continue;
        int st;
        pid_t pid;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            if (pid != prog)
                continue;
            char buf[1 + sizeof st];
            buf[0] = 'S';
            memcpy(buf + 1, &st, sizeof st);
            if (write(report, buf, sizeof buf) < 0) {
                /* runix is gone */
            }
            _exit(0); /* every other process of the namespace dies with pid 1 */
        }
    }
}

/* In the program's process, after the fork from pid 1. */
static int program_setup(const struct plan *pl, const sigset_t *old, struct rx_error **err)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
        signal(forwarded[i], SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigprocmask(SIG_SETMASK, old, NULL);
    if (!pl->cwd || chdir(pl->cwd) < 0) {
        if (chdir("/") < 0)
            return rx_error_errno(err, "chdir /");
    }
    environ = pl->env;
    if (pl->p->net == SANDBOX_NET_ALLOW) {
        char http[64], socks[64];
        snprintf(http, sizeof http, "http://127.0.0.1:%d", pl->port_http);
        snprintf(socks, sizeof socks, "socks5h://127.0.0.1:%d", pl->port_socks);
        static const char *const hv[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"};
        for (size_t i = 0; i < 4; i++)
            setenv(hv[i], http, 1);
        setenv("ALL_PROXY", socks, 1);
        setenv("all_proxy", socks, 1);
        unsetenv("NO_PROXY");
        unsetenv("no_proxy");
    }
    return lock_down(pl->p, err);
}

/* In the program's process: pid 1's own descriptors are not the program's. */
static void close_pid1_fds(const struct plan *pl, int report, int ctl)
{
    const int fds[] = {report, ctl, pl->listen_http, pl->listen_socks, pl->listen_store,
                       pl->store_ctl};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/*
 * The program's process when the policy has a start function: vforked from
 * pid 1, so it shares pid 1's memory until it execs.  Only the policy's
 * start runs after the setup; nothing returns into pid 1's frames.
 */
static _Noreturn void program_start(const struct plan *pl, const sigset_t *old, int report,
                                    int ctl)
{
    close_pid1_fds(pl, report, ctl);
    struct rx_error *e = NULL;
    int r = program_setup(pl, old, &e);
    _exit(pl->p->start(pl->p->start_ctx, r < 0 ? e : NULL));
}

static int read_report(int fd, struct sandbox_end *end, struct rx_error **err, bool *reported)
{
    char buf[1024];
    size_t have = 0;
    ssize_t r;
    while (have < sizeof buf - 1 && (r = read(fd, buf + have, sizeof buf - 1 - have)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        have += (size_t)r;
    }
    buf[have] = '\0';
    *reported = false;
    if (have >= 1 + sizeof end->status && buf[0] == 'S') {
        memcpy(&end->status, buf + 1, sizeof end->status);
        *reported = true;
        return 0;
    }
    if (have > 1 && buf[0] == 'E')
        return rx_error_set(err, EPERM, "sandbox: %s", buf + 1);
    return 0;
}

/* runix, outside: pass on signals sent to it, serve the proxies, until pid 1 reports. */
static int supervise(const struct sandbox_policy *p, const char *store_dir, pid_t init,
                     int report, int ctl, int sctl, struct sandbox_end *end,
                     struct rx_error **err)
{
    pid_t store_kids[STORE_SERVERS] = {0};
    sigset_t set, old;
    forward_set(&set);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    struct pollfd pfd[4] = {{report, POLLIN, 0}, {sfd, POLLIN, 0}, {ctl, POLLIN, 0},
                            {sctl, POLLIN, 0}};
    int init_st = 0;
    bool init_done = false;
    for (;;) {
        int n = poll(pfd, 4, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        if (pfd[0].revents)
            break;
        struct signalfd_siginfo si;
        while (pfd[1].revents && sfd >= 0 && read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            /* The terminal's own signals (SI_KERNEL) reached the program already. */
            if (si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE)
                kill(init, (int)si.ssi_signo);
        }
        if (ctl >= 0 && pfd[2].revents) {
            char kind = 0;
            int fd = take_over(ctl, &kind);
            if (fd == -1) {
                pfd[2].fd = -1;
            } else if (fd >= 0) {
                pid_t h = fork();
                if (h == 0) {
                    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                    close(report);
                    close(ctl);
                    proxy_serve(p, (enum proxy_kind)kind, fd);
                    _exit(0);
                }
                close(fd);
            }
        }
        if (sctl >= 0 && pfd[3].revents) {
            char kind = 0;
            int fd = take_over(sctl, &kind);
            if (fd == -1) {
                pfd[3].fd = -1;
            } else if (fd >= 0) {
                reap(init, &init_st, &init_done, store_kids);
                size_t slot = 0;
                while (slot < STORE_SERVERS && store_kids[slot] > 0)
                    slot++;
                if (slot == STORE_SERVERS) {
                    static const char busy[] = "refused busy: too many requests at once\n";
                    if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                        /* the client is gone */
                    }
                    /* What it sent already, without waiting: closing must not reset the answer. */
                    shutdown(fd, SHUT_WR);
                    char junk[STORESOCK_REQUEST_MAX];
                    while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
                        ;
                } else {
                    pid_t h = fork();
                    if (h == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
                        close(report);
                        if (ctl >= 0)
                            close(ctl);
                        sigprocmask(SIG_SETMASK, &old, NULL);
                        store_serve(p, store_dir, sctl, fd);
                        _exit(0);
                    }
                    if (h > 0)
                        store_kids[slot] = h;
                }
                close(fd);
            }
        }
        /* Reap the proxies' children; pid 1 too, should it end without a word. */
        reap(init, &init_st, &init_done, store_kids);
    }
    bool reported;
    int r = read_report(report, end, err, &reported);
    /*
     * Reap every child, not just pid 1: the proxies' children live in the
     * sandbox's pid namespace, and pid 1's exit waits until they are reaped.
     */
    while (!init_done) {
        int st;
        pid_t w = waitpid(-1, &st, 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        if (w == init) {
            init_st = st;
            init_done = true;
        }
    }
    if (r == 0 && !reported) {
        /* pid 1 died without a word: killed from outside. */
        end->status = init_st;
    }
    if (sfd >= 0)
        close(sfd);
    /* Signals that arrived while blocked were passed on; drop them before unblocking. */
    struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) > 0)
        ;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return r < 0 ? -1 : 1;
}

int sandbox_enter(const struct sandbox_policy *p, const char *store_dir, const char *const *paths,
                  size_t npaths, struct sandbox_end *end, struct rx_error **err)
{
    struct plan pl;
    int ret = -1;
    if (plan_make(&pl, p, store_dir, paths, npaths, err) < 0)
        goto out;
    {
        struct filter probe;
        if (build_filter(&probe, p->allow_nested, err) < 0)
            goto out;
    }
    uid_t uid = getuid();
    gid_t gid = getgid();
    /*
     * runix itself only enters a new user namespace: pid 1 makes the mount,
     * ipc and uts namespaces.  A mount namespace of runix's own would be one
     * more copy of the host's mounts, and tearing it down at the exit waits
     * for an RCU grace period (milliseconds on a busy machine).
     */
    if (unshare(CLONE_NEWUSER) < 0) {
        char why[512];
        userns_unshare_reason(errno, why, sizeof why);
        rx_error_set(err, RX_EUNSUPPORTED, "sandbox: %s", why);
        goto out;
    }
    {
        char why[512];
        if (userns_write_ids(uid, gid, why, sizeof why) < 0) {
            rx_error_set(err, EPERM, "sandbox: %s", why);
            goto out;
        }
    }
    int rep[2], alive[2], ctl[2] = {-1, -1}, sctl[2] = {-1, -1};
    if (pl.store_on && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sctl) < 0) {
        rx_error_errno(err, "sandbox: socketpair");
        goto out;
    }
    if (p->net == SANDBOX_NET_ALLOW &&
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
        rx_error_errno(err, "sandbox: socketpair");
        goto out;
    }
    if (pipe2(rep, O_CLOEXEC) < 0) {
        rx_error_errno(err, "sandbox: pipe");
        goto out;
    }
    if (pipe2(alive, O_CLOEXEC) < 0) {
        close(rep[0]);
        close(rep[1]);
        rx_error_errno(err, "sandbox: pipe");
        goto out;
    }
    fflush(NULL);
    /*
     * Only pid 1 goes into the new pid namespace (clone, not unshare, which
     * would put every later child of runix there too): runix's own children
     * (the proxies, a sanitizer's helper at exit) are created after pid 1
     * is gone, which a namespace whose init has exited refuses.
     */
    pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
    if (init < 0) {
        rx_error_errno(err, "sandbox: fork");
        close(rep[0]);
        close(rep[1]);
        close(alive[0]);
        close(alive[1]);
        goto out;
    }
    if (init > 0) {
        close(rep[1]);
        close(alive[0]);
        if (ctl[1] >= 0)
            close(ctl[1]);
        if (sctl[1] >= 0)
            close(sctl[1]);
        ret = supervise(p, store_dir, init, rep[0], ctl[0], sctl[0], end, err);
        close(rep[0]);
        close(alive[1]);
        if (ctl[0] >= 0)
            close(ctl[0]);
        if (sctl[0] >= 0)
            close(sctl[0]);
        goto out;
    }

    /* pid 1 of the new pid namespace. */
    close(rep[0]);
    close(alive[1]);
    if (ctl[0] >= 0)
        close(ctl[0]);
    if (sctl[0] >= 0)
        close(sctl[0]);
    pl.store_ctl = sctl[1];
    struct rx_error *e = NULL;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct pollfd a = {alive[0], POLLIN, 0};
    if (poll(&a, 1, 0) > 0) /* runix died before PDEATHSIG was set */
        _exit(127);
    close(alive[0]);
    /* The program cannot attach to its parent or read its memory. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    if (p->net != SANDBOX_NET_HOST) {
        if (unshare(CLONE_NEWNET) < 0) {
            rx_error_errno(&e, "cannot create a network namespace; refusing to run with the "
                               "host's network");
            child_fail(rep[1], e);
        }
        if (loopback_up(&e) < 0)
            child_fail(rep[1], e);
    }
    if (p->net == SANDBOX_NET_ALLOW &&
        ((pl.listen_http = listen_local(&pl.port_http, &e)) < 0 ||
         (pl.listen_socks = listen_local(&pl.port_socks, &e)) < 0))
        child_fail(rep[1], e);
    /* A mount namespace of its own: pivot_root moves the root of every process in one. */
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0) {
        rx_error_errno(&e, "cannot create the sandbox's mount namespace");
        child_fail(rep[1], e);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0) {
        rx_error_errno(&e, "cannot keep the sandbox's mounts from the host (a security policy "
                           "such as AppArmor may deny mounts in user namespaces)");
        child_fail(rep[1], e);
    }
    sethostname("sandbox", 7);
    if (build_view(&pl, &e) < 0)
        child_fail(rep[1], e);
    sigset_t set, old;
    forward_set(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    /* With a start function, vfork: the program's process need not copy pid 1's memory. */
    pid_t prog = p->start ? vfork() : fork();
    if (prog < 0) {
        rx_error_errno(&e, "fork");
        child_fail(rep[1], e);
    }
    if (prog == 0 && p->start)
        program_start(&pl, &old, rep[1], ctl[1]);
    if (prog == 0) {
        close_pid1_fds(&pl, rep[1], ctl[1]);
        if (program_setup(&pl, &old, &e) < 0) {
            /* Too late to tell runix through the pipe: the usual stderr message of a failed run. */
            if (err)
                *err = e;
            else
                rx_error_free(e);
            plan_release(&pl);
            return -1;
        }
        pl.env = NULL; /* environ now: the caller execs with it */
        plan_release(&pl);
        return 0;
    }
    init_loop(&pl, prog, rep[1], ctl[1]);
out:
    plan_release(&pl);
    return ret;
}
