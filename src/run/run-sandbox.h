/* Sandboxed runs: a program that sees only its closure and what the policy allows. */
#pragma once
/*
 * The sandbox builds on the userns engine (Linux): new user, mount, pid,
 * ipc and uts namespaces, and a network namespace unless the policy allows
 * the host's network.  docs/sandbox.md states what it guarantees.
 *
 * Process layout after sandbox_enter():
 *
 *   runix (the caller)   stays outside: waits, forwards signals sent to it,
 *                        and reports how the program ended
 *     pid 1              the sandbox's init: reaps, forwards, dies with the
 *                        program (and with runix: PR_SET_PDEATHSIG), which
 *                        takes every process of the sandbox with it
 *       the program      returns from sandbox_enter() and execs (or calls
 *                        the policy's start, which execs)
 *
 * No file or directory is created on the host: the new root is a tmpfs that
 * exists only in the new mount namespace.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

enum sandbox_cwd {
    SANDBOX_CWD_RW,   /* the working directory, writable (default) */
    SANDBOX_CWD_RO,   /* read-only */
    SANDBOX_CWD_NONE, /* not in the view; the program starts in / */
};

enum sandbox_net {
    SANDBOX_NET_NONE, /* a network namespace with only loopback, up (default) */
    SANDBOX_NET_HOST, /* the host's network, and its resolv.conf */
    SANDBOX_NET_ALLOW, /* loopback only, and proxies to the allow-list (run-proxy.h) */
};

/* One entry of --network allow:...: an exact name, *.domain, or an IP literal. */
struct sandbox_allow {
    char *host; /* lower-case; "*.example.com" for a wildcard; an IPv6 literal without [] */
    int port;   /* 1..65535, or 0: 80 and 443 */
};

enum sandbox_bind_kind {
    SANDBOX_RO,
    SANDBOX_RW,
    SANDBOX_HIDE,
};

struct sandbox_bind {
    enum sandbox_bind_kind kind;
    char *path; /* as given; owned */
};

struct sandbox_policy {
    bool on;
    enum sandbox_cwd cwd;
    enum sandbox_net net;
    struct sandbox_bind *binds; /* in the order given; owned */
    size_t nbinds;
    struct sandbox_allow *allow; /* SANDBOX_NET_ALLOW; owned */
    size_t nallow;
    int log_fd; /* where the proxies log refusals (the CLI's stderr or --network-log) */
    bool allow_nested; /* new user namespaces (and mounts in them) are allowed */
    bool clearenv;     /* start from an empty environment */
    char **setenv;     /* NAME=VALUE, applied last; owned */
    size_t nsetenv;
    char **env_deny; /* more patterns to remove (NAME, PREFIX*, *SUFFIX, *MID*); owned */
    size_t nenv_deny;
    char **env_keep; /* names kept although a pattern matches; owned */
    size_t nenv_keep;
    /*
     * The store socket ($RUNIX_STORE_SOCKET, docs/store-socket.md): offered
     * when realise is set and no_store_socket is not.  realise runs in a
     * child of the caller, outside the sandbox, once per accepted request:
     * it fetches and verifies path (a valid store path name) and its
     * closure, and returns 0 with the closure's basenames (malloc'd, in
     * *names), or -1 with the reason in why.
     */
    bool no_store_socket;
    /* A directory shown read-only at /run/opengl-driver (run-enter.h), or NULL. */
    const char *gpu_dir;
    int (*realise)(void *ctx, const char *path, char ***names, size_t *n, char *why,
                   size_t whyn);
    void *realise_ctx;
    /*
     * The program's start, when set: the program's process calls it after
     * the setup, with err set when the setup failed (it then reports err
     * and returns an exit status), instead of returning from
     * sandbox_enter(); it execs, or returns the exit status of a failure.
     * The process shares pid 1's memory until it execs or exits (vfork),
     * which saves copying it: start may use the heap, but nothing it does
     * may be needed afterwards.
     */
    int (*start)(void *ctx, struct rx_error *err);
    void *start_ctx;
};
#define SANDBOX_POLICY_INIT { 0 }

/* The patterns removed from the environment by default, NULL-terminated. */
extern const char *const sandbox_default_env_deny[];

void sandbox_policy_add_bind(struct sandbox_policy *p, enum sandbox_bind_kind k, const char *path);
void sandbox_policy_add_str(char ***v, size_t *n, const char *s);
void sandbox_policy_release(struct sandbox_policy *p);

/*
 * "none", "host" or "allow:HOST[:PORT][,HOST[:PORT]...]" into p->net (and
 * p->allow).  HOST is a name, "*.name", an IPv4 literal or [IPv6].  Returns
 * 0, or -1 with the reason in err (code RX_EUSAGE).
 */
int sandbox_net_parse(struct sandbox_policy *p, const char *s, struct rx_error **err);
/* "rw" / "ro" / "none" -> value; -1 for anything else. */
int sandbox_cwd_parse(const char *s);

/* Does name match pattern (NAME, PREFIX*, *SUFFIX or *MID*)? */
bool sandbox_env_match(const char *pattern, const char *name);

/* s when it can be one field of /etc/passwd (not empty, no ':' or newline), else fallback. */
const char *passwd_field(const char *s, const char *fallback);

/*
 * The name of id in an /etc/passwd or /etc/group file (NAME:x:ID:...) into
 * out (n bytes): 0, or -1 when the file has no such entry, cannot be read,
 * or the name does not fit.  NIS compat lines (+, -) are not entries.
 */
int sandbox_etc_name(const char *path, unsigned long id, char *out, size_t n);

/* How the sandbox ended, in the caller. */
struct sandbox_end {
    int status; /* the program's wait status */
};

/*
 * Enter the sandbox.  store_dir is the runix store; paths are the basenames
 * of the closure (only they appear below /nix/store).  The process must be
 * single-threaded.
 *
 * Returns 0 in the program's process: every namespace, mount and filter is
 * in place, the environment filtered, the working directory entered; the
 * caller execs (and nothing else: the seccomp filter is installed).
 * Returns 1 in the caller once the program has ended, with end filled.
 * Returns -1 with the reason in err when the sandbox could not be set up;
 * then no program ran, and nothing was left behind (a network that cannot
 * be set up as asked is such a failure: the sandbox fails closed).
 */
int sandbox_enter(const struct sandbox_policy *p, const char *store_dir, const char *const *paths,
                  size_t npaths, struct sandbox_end *end, struct rx_error **err);

/*
 * Steps of the view that runix boot (run-boot.c) builds too, in a root
 * staged by userns_stage_root() (the host's root at /oldroot, the new one
 * at /newroot).
 *
 * bind_path: bind src on dst (made like src), nosuid and nodev, read-only
 * when ro.  make_dev: a tmpfs /newroot/dev with the host's null, zero, full,
 * random, urandom and tty bound in, a private devpts, /dev/shm and the
 * usual links.  write_text: create path (it must not exist) holding text.
 * loopback_up: bring lo up in a new network namespace.  Each returns 0, or
 * -1 with the reason in err.
 */
int bind_path(const char *src, const char *dst, bool ro, struct rx_error **err);
int make_dev(struct rx_error **err);
int write_text(const char *path, const char *text, struct rx_error **err);
int loopback_up(struct rx_error **err);
