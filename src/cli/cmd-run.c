/*
 * runix run and runix shell: make sure the closures are in the store, set
 * up a view in which /nix/store is the runix store, and exec the program.
 *
 * runix stays single-threaded until the exec: downloads (which use threads)
 * happen in a child process, because the kernel refuses a new user
 * namespace to a multi-threaded process.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-bundle.h"
#include "cli-byname.h"
#include "cli-dist.h"
#include "cli-run.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "run-engine.h"
#include "run-enter.h"
#include "run-sandbox-policy.h"
#include "run-sandbox.h"
#include "run-storesock.h"
#include "store-path.h"
#include "store-index.h"
#include "store-roots.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

/* Indexes are runix-core's: the front has no cli_byname_resolve(). */
#pragma weak cli_byname_resolve

/* Shells report these when a command cannot be found or run. */
enum { EXIT_NOT_EXECUTABLE = 126, EXIT_NOT_FOUND = 127 };

enum {
    OPT_ENGINE = 0x200,
    OPT_OFFLINE,
    OPT_COMMAND,
    OPT_LIST,
    OPT_TRUST,
    OPT_SANDBOX,
    OPT_CWD,
    OPT_RO,
    OPT_RW,
    OPT_HIDE,
    OPT_NETWORK,
    OPT_ALLOW_NESTED,
    OPT_NO_STORE_SOCKET,
    OPT_CLEARENV,
    OPT_SETENV,
    OPT_ENV_DENY,
    OPT_ENV_KEEP,
    OPT_NETWORK_LOG,
    OPT_NO_SANDBOX,
    OPT_GPU,
};

#define RUN_OPTIONS_USAGE                                                                     \
    "      --engine ENGINE       auto (default), userns or preload; also $RUNIX_ENGINE\n"   \
    "      --offline             never use the network; fail if a path is missing\n"        \
    "  -v, --verbose             say which engine runs the program\n"                     \
    "      --trust               trust a distributable's own caches and keys for this run\n"   \
    "      --gpu                 show the host's GPU libraries at /run/opengl-driver/lib\n" \
    "                            (docs/enter.md; the userns engine only)\n"               \
    "\n"                                                                                     \
    "Sandbox (docs/sandbox.md; the userns engine only):\n"                                   \
    "      --sandbox             the program sees its closure (read-only), the working\n"   \
    "                            directory, a private /tmp, /dev and /proc, nothing else\n" \
    "      --no-sandbox          run without the sandbox a distributable's app asks for\n" \
    "      --cwd MODE            the working directory: rw (default), ro or none\n"        \
    "      --ro PATH             let the program read PATH too (repeatable)\n"            \
    "      --rw PATH             let the program read and write PATH (repeatable)\n"      \
    "      --hide PATH           remove PATH from an allowed tree (repeatable)\n"         \
    "      --network MODE        none (default: loopback only), host, or\n"               \
    "                            allow:HOST[:PORT],... (HTTP and SOCKS5 proxies that\n"  \
    "                            reach only those; *.DOMAIN and IP literals too)\n"      \
    "      --network-log FILE    log the proxies' refusals there, not on stderr\n"       \
    "      --allow-nested        let the program create user namespaces (bwrap, nix)\n"   \
    "      --no-store-socket     no $RUNIX_STORE_SOCKET (docs/store-socket.md) inside\n"  \
    "      --clearenv            start from an empty environment\n"                       \
    "      --setenv NAME=VALUE   set a variable in the sandbox (repeatable)\n"            \
    "      --env-deny PATTERN    also remove NAME, PREFIX*, *SUFFIX or *MID* variables\n" \
    "      --env-keep NAME       keep NAME although a pattern removes it\n"

static const char run_usage[] =
    "usage: runix run [OPTIONS] STOREPATH [CMD] [ARGS...]\n"
    "       runix run [OPTIONS] STOREPATH/bin/PROGRAM [ARGS...]\n"
    "       runix run [OPTIONS] STOREPATH -- [ARGS...]\n"
    "       runix run [OPTIONS] FILE[#APP] [ARGS...]\n"
    "       runix run --list FILE\n"
    "\n"
    "Fetch STOREPATH's closure if it is not in the store yet, then run a program\n"
    "from it so that the program sees the runix store at /nix/store.\n"
    "\n"
    "Which program: STOREPATH/bin/PROGRAM (or any file inside the store path)\n"
    "runs that file.  CMD is looked up in STOREPATH/bin, then in the bin/ of the\n"
    "rest of the closure, then in PATH.  Without CMD (or after '--'), the only\n"
    "program in STOREPATH/bin, or the one named like the package.\n"
    "\n"
    "runix's options go before STOREPATH.  Everything after STOREPATH (or after\n"
    "CMD) is the program's, options included: 'runix run P hello --version'\n"
    "prints hello's version, not runix's.  An argument after STOREPATH that\n"
    "begins with '-' is not a CMD: it goes to the default program, as all ARGS\n"
    "after '--' do.\n"
    "\n"
    "FILE is a distributable (docs/distributable.md), a local file, an https://\n"
    "URL or github:OWNER/REPO[/REF][?file=PATH]: it names the store paths for\n"
    "each system, its apps and its caches.  APP picks one of its apps (default:\n"
    "'default'); ARGS come after the app's own arguments.  A distributable runs\n"
    "directly too ('./tool.runix ARGS'), through its first line.\n"
    "An app may ask for a sandbox: it then runs sandboxed with no option; the\n"
    "sandbox options restrict it further, and widen it only as given (each\n"
    "widening is said on stderr); --no-sandbox drops it.\n"
    "\n"
    "What runs is kept from garbage collection: the run makes (or refreshes) the\n"
    "GC root auto/NAME, NAME being the store path's basename, the file's absolute\n"
    "name or the reference as given (without #APP); an installed tool's launcher\n"
    "refreshes its installed root instead.  The program holds its closure locked\n"
    "while it runs, so no collection removes it.\n"
    "\n" RUN_OPTIONS_USAGE CLI_SETTINGS_USAGE
    "      --list                list a distributable's apps, systems and caches\n"
    "  -h, --help                show this help\n"
    "\n"
    "Engines: userns uses an unprivileged user and mount namespace (everything\n"
    "works); preload maps paths in libc calls with librunix-preload.so, for\n"
    "machines without user namespaces (static programs see the host's\n"
    "/nix/store there).  auto picks userns when it works here, else preload.\n"
    "'runix doctor' tells which work and why not.\n"
    "\n"
    "Exit status: the program's own; 128+N when it dies of signal N; 126 or 127\n"
    "when it cannot be run or found; 1 when runix itself fails, 2 for a bad\n"
    "command line.\n"
    "\n"
    "Examples:\n"
    "  runix run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10 -- --greeting=hi\n"
    "  runix run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10/bin/hello --version\n"
    "  runix run /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10 hello --help\n"
    "  runix run -v --engine preload /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

static const char shell_usage[] =
    "usage: runix shell [OPTIONS] STOREPATH... [--command CMD [ARGS...]]\n"
    "\n"
    "Fetch the closures if needed, then start $SHELL (or CMD) with every\n"
    "STOREPATH's bin/ at the front of PATH, in the same view as 'runix run'.\n"
    "Each STOREPATH is kept by the GC root auto/<its basename>, as 'runix run'\n"
    "keeps it.\n"
    "\n" RUN_OPTIONS_USAGE CLI_SETTINGS_USAGE
    "  -c, --command CMD ARGS... run this instead of $SHELL (ends the options)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix shell /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix shell /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10 --command hello -g hi\n";

struct run_ctx {
    const char *cmd; /* "run" or "shell" */
    struct cli_settings s;
    enum engine_kind engine;
    struct sandbox_policy sandbox;
    bool sandbox_opts; /* a sandbox option was given */
    unsigned sandbox_set; /* SANDBOX_SET_*: what the command line gave (run-sandbox-policy.h) */
    bool offline, verbose, gpu;
    struct store_path *roots;
    size_t nroots;
    char *root;      /* the store root, canonical; NULL while it does not exist */
    char *store_dir; /* <root>/nix/store */
    struct store_path *closure;
    size_t nclosure;
    bool is_dist, trust;
    struct cli_dist dist; /* when is_dist */
    int fail;             /* parse_root's exit code, when not a usage error */
    /*
     * The root that keeps what runs: one "auto" root per store path, named
     * by its basename (!root_name), or the distributable's root_kind/root_name.
     */
    enum store_root_kind root_kind;
    char root_name[STORE_ROOT_NAME_MAX + 1]; /* encoded; "" for a store path run */
    char *root_ref;                          /* what root_name encodes */
    int *locks; /* the closure indexes, open and locked shared (store-index.h) */
    size_t nlocks;
    bool in_sandbox; /* realised through $RUNIX_STORE_SOCKET: the view is there already */
};

static void unlock_closures(struct run_ctx *c)
{
    for (size_t i = 0; i < c->nlocks; i++)
        close(c->locks[i]);
    free(c->locks);
    c->locks = NULL;
    c->nlocks = 0;
}

static void ctx_release(struct run_ctx *c)
{
    unlock_closures(c);
    free(c->root_ref);
    free(c->root);
    free(c->roots);
    free(c->closure);
    free(c->store_dir);
    cli_settings_release(&c->s);
    cli_dist_release(&c->dist);
    if (c->sandbox.log_fd > 2)
        close(c->sandbox.log_fd);
    sandbox_policy_release(&c->sandbox);
}

/* A sandbox path from the command line: ~/ is $HOME, a relative one is below the cwd. */
static char *sandbox_path(const char *arg)
{
    const char *home = getenv("HOME");
    if ((strcmp(arg, "~") == 0 || strncmp(arg, "~/", 2) == 0) && home && *home == '/')
        return xasprintf("%s%s", home, arg + 1);
    if (arg[0] == '/')
        return xstrdup(arg);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return xstrdup(arg);
    return xasprintf("%s/%s", cwd, arg);
}

static int sandbox_option(struct run_ctx *c, int opt, const char *arg)
{
    struct sandbox_policy *p = &c->sandbox;
    switch (opt) {
    case OPT_SANDBOX:
        p->on = true;
        return 1;
    case OPT_NO_SANDBOX:
        c->sandbox_set |= SANDBOX_SET_OFF;
        return 1;
    case OPT_CWD: {
        int m = sandbox_cwd_parse(arg);
        if (m < 0) {
            cli_usage_error(c->cmd, "unknown --cwd mode '%s' (rw, ro or none)", arg);
            return -1;
        }
        p->cwd = (enum sandbox_cwd)m;
        c->sandbox_set |= SANDBOX_SET_CWD;
        break;
    }
    case OPT_RO:
    case OPT_RW:
    case OPT_HIDE: {
        if (!*arg) {
            cli_usage_error(c->cmd, "an empty path for --%s",
                            opt == OPT_RO ? "ro" : opt == OPT_RW ? "rw" : "hide");
            return -1;
        }
        _cleanup_free_ char *path = sandbox_path(arg);
        sandbox_policy_add_bind(p, opt == OPT_RO ? SANDBOX_RO : opt == OPT_RW ? SANDBOX_RW
                                                                             : SANDBOX_HIDE,
                                path);
        break;
    }
    case OPT_NETWORK: {
        struct rx_error *err = NULL;
        if (sandbox_net_parse(p, arg, &err) < 0) {
            cli_usage_error(c->cmd, "%s", err->msg);
            rx_error_free(err);
            return -1;
        }
        c->sandbox_set |= SANDBOX_SET_NET;
        break;
    }
    case OPT_NETWORK_LOG: {
        if (p->log_fd > 2)
            close(p->log_fd);
        p->log_fd = open(arg, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
        if (p->log_fd < 0) {
            cli_usage_error(c->cmd, "cannot open --network-log '%s': %s", arg, strerror(errno));
            p->log_fd = 0;
            return -1;
        }
        break;
    }
    case OPT_ALLOW_NESTED:
        p->allow_nested = true;
        break;
    case OPT_NO_STORE_SOCKET:
        p->no_store_socket = true;
        break;
    case OPT_CLEARENV:
        p->clearenv = true;
        break;
    case OPT_SETENV: {
        const char *eq = strchr(arg, '=');
        if (!eq || eq == arg) {
            cli_usage_error(c->cmd, "--setenv takes NAME=VALUE, not '%s'", arg);
            return -1;
        }
        sandbox_policy_add_str(&p->setenv, &p->nsetenv, arg);
        break;
    }
    case OPT_ENV_DENY:
    case OPT_ENV_KEEP:
        if (!*arg || strchr(arg, '=')) {
            cli_usage_error(c->cmd, "--%s takes a variable name or pattern, not '%s'",
                            opt == OPT_ENV_DENY ? "env-deny" : "env-keep", arg);
            return -1;
        }
        if (opt == OPT_ENV_DENY)
            sandbox_policy_add_str(&p->env_deny, &p->nenv_deny, arg);
        else
            sandbox_policy_add_str(&p->env_keep, &p->nenv_keep, arg);
        break;
    default:
        return 0;
    }
    c->sandbox_opts = true;
    return 1;
}

/* Options shared by run and shell; returns 1 if taken, 0 if not, -1 on a bad value. */
static int run_option(struct run_ctx *c, int opt, const char *arg)
{
    if (cli_settings_option(&c->s, opt, arg))
        return 1;
    int t = sandbox_option(c, opt, arg);
    if (t != 0)
        return t;
    switch (opt) {
    case OPT_ENGINE: {
        int k = engine_parse(arg);
        if (k < 0) {
            cli_usage_error(c->cmd, "unknown engine '%s' (auto, userns or preload)", arg);
            return -1;
        }
        c->engine = (enum engine_kind)k;
        return 1;
    }
    case OPT_OFFLINE:
        c->offline = true;
        return 1;
    case 'v':
        c->verbose = true;
        return 1;
    case OPT_TRUST:
        c->trust = true;
        return 1;
    case OPT_GPU:
        c->gpu = true;
        return 1;
    }
    return 0;
}

static int settings_fail(const char *cmd, struct rx_error *err)
{
    if (err && err->code == RX_EUSAGE) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return EXIT_USAGE;
    }
    return cli_fail(err);
}

/* "runix-core fetch" with the settings given on our command line, for the roots. */
static char **fetch_argv(const struct run_ctx *c, char *core, char (**full)[STORE_PATH_MAX + 1])
{
    const struct cli_settings *s = &c->s;
    size_t n = 9 + 2 * (s->flag_caches.n + s->flag_extra_caches.n + s->flag_keys.n) + 7 +
               c->nroots;
    char **av = xcalloc(n + 1, sizeof *av);
    size_t k = 0;
    av[k++] = core;
    av[k++] = (char *)"fetch";
    /* The store as resolved here (cli-settings.h), not resolved again. */
    av[k++] = (char *)"--store";
    av[k++] = s->store;
    const struct {
        const char *flag;
        const struct strv *v;
    } lists[] = {{"--cache", &s->flag_caches},
                 {"--extra-cache", &s->flag_extra_caches},
                 {"--trusted-key", &s->flag_keys}};
    for (size_t l = 0; l < ARRAY_SIZE(lists); l++) {
        for (size_t i = 0; i < lists[l].v->n; i++) {
            av[k++] = (char *)lists[l].flag;
            av[k++] = lists[l].v->v[i];
        }
    }
    if (s->insecure)
        av[k++] = (char *)"--insecure-no-verify";
    if (s->quiet)
        av[k++] = (char *)"--quiet";
    if (c->offline)
        av[k++] = (char *)"--offline";
    if (c->trust)
        av[k++] = (char *)"--trust";
    if (cli_running_bundle) { /* the closure comes from the bundle, and only from it */
        av[k++] = (char *)"--bundle";
        av[k++] = cli_running_bundle->file;
    }
    if (c->is_dist && strcmp(c->dist.label, c->dist.file) != 0) {
        av[k++] = (char *)"--dist-label";
        av[k++] = c->dist.label;
    }
    /* The root, made in the process that registers the paths, before it does. */
    if (!c->root_name[0]) {
        av[k++] = (char *)"--auto-root-each";
    } else {
        av[k++] = (char *)(c->root_kind == STORE_ROOT_INSTALLED ? "--installed-root"
                                                                : "--auto-root");
        av[k++] = c->root_ref;
    }
    av[k++] = (char *)"--";
    *full = xcalloc(c->nroots, sizeof **full);
    if (c->is_dist) { /* runix-core reads the file itself, and checks its caches and keys */
        av[k++] = c->dist.file;
        av[k] = NULL;
        return av;
    }
    for (size_t i = 0; i < c->nroots; i++) {
        store_path_format(&c->roots[i], (*full)[i]);
        av[k++] = (*full)[i];
    }
    av[k] = NULL;
    return av;
}

/*
 * Wait for the fetch child.  Stop signals go to it too (Ctrl-C reaches it
 * anyway): it keeps what is complete and dies of the signal, and so do we
 * then, before the program starts.
 */
static int wait_fetch(pid_t pid, const char *core, struct rx_error **err)
{
    rx_catch_interrupts();
    int status, passed = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            rx_error_errno(err, "waitpid");
            rx_release_interrupts();
            return -1;
        }
        if (rx_interrupted && rx_interrupted != passed) {
            passed = rx_interrupted;
            kill(pid, passed);
        }
    }
    rx_die_of_interrupt();
    rx_release_interrupts();
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == EXIT_FAIL || WEXITSTATUS(status) == EXIT_USAGE))
        return WEXITSTATUS(status); /* it said why */
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return rx_error_set(err, RX_ENET, "could not fetch the closure (%s failed)", core);
    return 0;
}

/*
 * Download what is missing with "runix-core fetch", in a child process: this
 * one stays single-threaded and does not load the network libraries.
 */
static int fetch_in_child(struct run_ctx *c, struct rx_error **err)
{
    char core[PATH_MAX];
    if (cli_core_path(core, sizeof core, err) < 0)
        return rx_error_wrap(err, "cannot fetch the closure");
    char(*full)[STORE_PATH_MAX + 1];
    char **av = fetch_argv(c, core, &full);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* fetch prints the paths on stdout at the end: not the program's output. */
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (null >= 0)
            dup2(null, STDOUT_FILENO);
        /* A bundle's runix-core is the bundle itself: it must fetch, not run the app. */
        setenv("RUNIX_AS_RUNIX", "1", 1);
        execv(core, av);
        fprintf(stderr, "%s: cannot run %s: %s\n", cli_progname, core, strerror(errno));
        _exit(EXIT_FAIL);
    }
    int e = errno;
    free(av);
    free(full);
    if (pid < 0) {
        errno = e;
        return rx_error_errno(err, "fork");
    }
    return wait_fetch(pid, core, err);
}

static int cmp_path(const void *a, const void *b)
{
    return store_path_cmp(a, b);
}

/*
 * Make or refresh the root of what runs (a no-op, in a few syscalls, when it
 * is there and was used less than a minute ago).  A store the user cannot
 * write gets none; a failure is a warning: the program runs all the same.
 */
static void use_roots(const struct run_ctx *c, int root_fd)
{
    struct rx_error *err = NULL;
    int r = 0;
    if (c->root_name[0]) {
        r = store_root_use(root_fd, c->root, c->root_kind, c->root_name, c->roots, c->nroots,
                           &err);
    } else {
        for (size_t i = 0; i < c->nroots && r == 0; i++) {
            char base[STORE_BASENAME_MAX + 1];
            store_path_basename(&c->roots[i], base);
            r = store_root_use(root_fd, c->root, STORE_ROOT_AUTO, base, &c->roots[i], 1, &err);
        }
    }
    if (r < 0) {
        cli_error("warning: cannot keep a GC root for what runs: %s; until one can be made, "
                  "a collection may remove it",
                  err->msg);
        rx_error_free(err);
    }
}

/*
 * Is every root's closure complete?  Read from the closure indexes that
 * runix fetch writes (store-index.h): a warm start opens no database.
 * Returns 1 when it is, 0 when the database must tell, and -1 with an error
 * when the store is not safe to use (store.h): nothing of it may run.  With
 * `roots`, the roots of what runs are made or refreshed (use_roots()).
 */
static int closure_complete(struct run_ctx *c, bool roots, struct rx_error **err)
{
    unlock_closures(c);
    free(c->root);
    c->root = NULL;
    free(c->closure);
    c->closure = NULL;
    c->nclosure = 0;
    struct rx_error *e = NULL;
    _cleanup_close_ int root_fd = store_root_open(c->s.store, &c->root, &e);
    if (root_fd < 0) {
        if (e->code != EPERM) { /* no store yet: runix-core makes one */
            rx_error_clear(&e);
            return 0;
        }
        *err = e;
        return -1;
    }
    c->locks = xcalloc(c->nroots, sizeof *c->locks);
    for (size_t i = 0; i < c->nroots; i++) {
        struct store_path *cl;
        size_t n;
        /* A distributable's closure has its own index: its keys may vouch for it.
         * Locked: no collector removes the closure while the program runs. */
        const char *tag = c->is_dist             ? c->dist.tag
                          : cli_running_bundle ? cli_running_bundle->tag
                                               : NULL;
        int r = store_index_read_locked(root_fd, c->root, tag,
                                        &c->roots[i], &cl, &n, &c->locks[c->nlocks], err);
        if (r != 0) {
            unlock_closures(c);
            return r < 0 ? -1 : 0;
        }
        c->nlocks++;
        c->closure = xrealloc(c->closure, (c->nclosure + n) * sizeof *c->closure);
        memcpy(c->closure + c->nclosure, cl, n * sizeof *cl);
        c->nclosure += n;
        free(cl);
    }
    if (c->nroots > 1) { /* closures overlap: each path once */
        qsort(c->closure, c->nclosure, sizeof *c->closure, cmp_path);
        size_t k = 0;
        for (size_t i = 0; i < c->nclosure; i++)
            if (k == 0 || store_path_cmp(&c->closure[k - 1], &c->closure[i]) != 0)
                c->closure[k++] = c->closure[i];
        c->nclosure = k;
    }
    free(c->store_dir);
    c->store_dir = xasprintf("%s/nix/store", c->root);
    if (roots)
        use_roots(c, root_fd);
    return 1;
}

/*
 * The root a distributable's run keeps its paths under: the installed root
 * NAME when the file is an installed copy (cmd-install.c:
 * <state>/runix/installed/NAME/file, what launchers run), else an automatic
 * one named by the file's absolute, symlink-free name, or by the remote
 * reference as typed, without "#APP".
 */
static int name_dist_root(struct run_ctx *c)
{
    struct rx_error *err = NULL;
    _cleanup_free_ char *ref = NULL;
    c->root_kind = STORE_ROOT_AUTO;
    if (cli_dist_is_remote(c->dist.label)) {
        const char *hash = strrchr(c->dist.label, '#');
        ref = hash ? xstrndup(c->dist.label, (size_t)(hash - c->dist.label))
                   : xstrdup(c->dist.label);
    } else {
        ref = realpath(c->dist.file, NULL);
        if (!ref)
            ref = xstrdup(c->dist.file);
        const char *slash = strrchr(ref, '/');
        if (slash && strcmp(slash, "/file") == 0 && slash > ref) {
            _cleanup_free_ char *top = cli_xdg_path("XDG_STATE_HOME", ".local/state",
                                                    "runix/installed");
            _cleanup_free_ char *real_top = top ? realpath(top, NULL) : NULL;
            const char *name = slash;
            while (name > ref && name[-1] != '/')
                name--;
            size_t tl = real_top ? strlen(real_top) : 0;
            if (real_top && name > ref && (size_t)(name - 1 - ref) == tl &&
                strncmp(ref, real_top, tl) == 0 && name < slash) {
                char *tool = xstrndup(name, (size_t)(slash - name));
                free(ref);
                ref = tool;
                c->root_kind = STORE_ROOT_INSTALLED;
            }
        }
    }
    if (store_root_name_encode(ref, c->root_name, &err) < 0)
        return cli_fail(err), -1;
    c->root_ref = ref;
    ref = NULL;
    return 0;
}

/* Can the sandbox run here as asked?  EXIT_OK, or the usage error said. */
static int sandbox_check(struct run_ctx *c)
{
    if (c->gpu && c->engine == ENGINE_PRELOAD)
        return cli_usage_error(c->cmd, "--gpu needs the userns engine, not preload");
    if (!c->sandbox.on) {
        if (c->sandbox_opts)
            return cli_usage_error(c->cmd, "sandbox options need --sandbox");
        return EXIT_OK;
    }
    if (c->engine == ENGINE_PRELOAD)
        return cli_usage_error(c->cmd, "--sandbox needs the userns engine, not preload "
                                       "(an interposed library cannot confine a program)");
    return EXIT_OK;
}

/*
 * Inside a sandbox (docs/store-socket.md): the runix outside realises each
 * root through the store socket, and then the closure is at /nix/store
 * itself, read-only, so the program runs as it is, in no namespace of ours.
 */
static int prepare_in_sandbox(struct run_ctx *c, const char *sock)
{
    if (c->gpu)
        return cli_usage_error(c->cmd, "--gpu inside a sandbox: give it to the runix that "
                                       "made the sandbox");
    for (size_t i = 0; i < c->nroots; i++) {
        char full[STORE_PATH_MAX + 1], why[STORESOCK_ANSWER_MAX + 256];
        store_path_format(&c->roots[i], full);
        int r = storesock_realise(sock, full, why, sizeof why);
        if (r > 0) {
            cli_cmd_error(c->cmd, "the store socket refused %s: %s", full, why);
            return EXIT_FAIL;
        }
        if (r < 0) {
            cli_cmd_error(c->cmd, "cannot realise %s through the store socket "
                                  "($RUNIX_STORE_SOCKET): %s",
                          full, why);
            return EXIT_FAIL;
        }
    }
    free(c->store_dir);
    c->store_dir = xstrdup(STORE_DIR);
    free(c->closure);
    c->closure = xcalloc(c->nroots, sizeof *c->closure);
    memcpy(c->closure, c->roots, c->nroots * sizeof *c->closure);
    c->nclosure = c->nroots;
    c->in_sandbox = true;
    return EXIT_OK;
}

static int complete_closures(struct run_ctx *c);

/* Make the closures complete (fetching in a child if needed), remember them. */
static int prepare(struct run_ctx *c)
{
    struct rx_error *err = NULL;
    /* In a sandbox the store is read-only: the runix outside realises store paths. */
    const char *sock = getenv("RUNIX_STORE_SOCKET");
    if (sock && *sock && !c->is_dist && !c->sandbox.on)
        return prepare_in_sandbox(c, sock);
    if (cli_settings_finish(&c->s, &err) < 0)
        return settings_fail(c->cmd, err);
    if (c->engine == ENGINE_AUTO) {
        const char *e = getenv("RUNIX_ENGINE");
        if (e && *e) {
            int k = engine_parse(e);
            if (k < 0) {
                cli_error("RUNIX_ENGINE=%s: unknown engine (auto, userns or preload)", e);
                return EXIT_USAGE;
            }
            c->engine = (enum engine_kind)k;
        }
    }
    int sc = sandbox_check(c);
    if (sc != EXIT_OK)
        return sc;
    if (c->is_dist && name_dist_root(c) < 0)
        return EXIT_FAIL;
    return complete_closures(c);
}

/* The closures of c->roots complete: read from their indexes, else fetched in a child. */
static int complete_closures(struct run_ctx *c)
{
    struct rx_error *err = NULL;
    int ok = closure_complete(c, true, &err);
    if (ok != 0)
        return ok > 0 ? EXIT_OK : cli_fail(err);
    /* runix-core checks the database (and with --offline, only that), fetches
     * what is missing, and writes the indexes. */
    int r = fetch_in_child(c, &err);
    if (r < 0)
        return cli_fail(err);
    if (r > 0)
        return r; /* EXIT_FAIL, or EXIT_USAGE for a bad option's value */
    ok = closure_complete(c, false, &err); /* the fetch made the roots */
    if (ok != 0)
        return ok > 0 ? EXIT_OK : cli_fail(err);
    cli_error("the closure is still incomplete after fetching (store %s)", c->s.store);
    return EXIT_FAIL;
}

/* Programs in <path>/bin, sorted, in a NULL-terminated array. */
static char **list_bin(const struct run_ctx *c, const struct store_path *p, size_t *n)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    _cleanup_free_ char *dir = xasprintf("%s/%s/bin", c->store_dir, base);
    *n = 0;
    struct dirent **ents = NULL;
    int k = scandir(dir, &ents, NULL, alphasort);
    if (k < 0)
        return NULL;
    char **out = xcalloc((size_t)k + 1, sizeof *out);
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    for (int i = 0; i < k; i++) {
        if (ents[i]->d_name[0] != '.') {
            _cleanup_free_ char *lp = xasprintf("%s/bin/%s", full, ents[i]->d_name);
            if (engine_is_program(c->store_dir, lp))
                out[(*n)++] = xstrdup(ents[i]->d_name);
        }
        free(ents[i]);
    }
    free(ents);
    return out;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* "hello-2.12" -> "hello": the name up to the first '-' that starts a version. */
static char *package_name(const char *name)
{
    const char *p = name;
    while ((p = strchr(p, '-'))) {
        if (p[1] >= '0' && p[1] <= '9')
            return xstrndup(name, (size_t)(p - name));
        p++;
    }
    return xstrdup(name);
}

/* The program run runs without CMD; NULL after printing why. */
static char *default_program(const struct run_ctx *c)
{
    const struct store_path *p = &c->roots[0];
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    size_t n;
    char **progs = list_bin(c, p, &n);
    char *found = NULL;
    if (n == 1) {
        found = xasprintf("%s/bin/%s", full, progs[0]);
    } else if (n > 1) {
        _cleanup_free_ char *pname = package_name(p->name);
        for (size_t i = 0; i < n && !found; i++)
            if (strcmp(progs[i], pname) == 0)
                found = xasprintf("%s/bin/%s", full, progs[i]);
        if (!found) {
            fprintf(stderr, "%s: %s has several programs and none is called '%s'; name one:\n",
                    cli_progname, full, pname);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "  runix run %s %s\n", full, progs[i]);
        }
    } else {
        cli_error("%s has no programs in bin/; name the command to run, for example "
                  "'runix run %s CMD'",
                  full, full);
    }
    free_strv(progs);
    return found;
}

/*
 * Look cmd up: STOREPATH/bin, the closure's bin/, then (with use_path) PATH.
 * NULL if not found.
 */
static char *find_program(const struct run_ctx *c, const char *cmd, bool use_path)
{
    if (strchr(cmd, '/'))
        return xstrdup(cmd);
    char full[STORE_PATH_MAX + 1];
    for (size_t i = 0; i < c->nroots; i++) {
        store_path_format(&c->roots[i], full);
        char *lp = xasprintf("%s/bin/%s", full, cmd);
        if (engine_is_program(c->store_dir, lp))
            return lp;
        free(lp);
    }
    for (size_t i = 0; i < c->nclosure; i++) {
        store_path_format(&c->closure[i], full);
        char *lp = xasprintf("%s/bin/%s", full, cmd);
        if (engine_is_program(c->store_dir, lp))
            return lp;
        free(lp);
    }
    const char *path = getenv("PATH");
    if (!path || !use_path)
        return NULL;
    for (const char *p = path;;) {
        const char *q = strchrnul(p, ':');
        _cleanup_free_ char *dir = q > p ? xstrndup(p, (size_t)(q - p)) : xstrdup(".");
        char *cand = xasprintf("%s/%s", dir, cmd);
        struct stat sb;
        if (access(cand, X_OK) == 0 && stat(cand, &sb) == 0 && S_ISREG(sb.st_mode))
            return cand;
        free(cand);
        if (!*q)
            break;
        p = q + 1;
    }
    return NULL;
}

/* PATH with the roots' bin/ directories in front. */
static void prefix_path(const struct run_ctx *c)
{
    struct {
        char *s;
        size_t len;
    } acc = {xstrdup(""), 0};
    for (size_t i = 0; i < c->nroots; i++) {
        char full[STORE_PATH_MAX + 1], base[STORE_BASENAME_MAX + 1];
        store_path_format(&c->roots[i], full);
        store_path_basename(&c->roots[i], base);
        _cleanup_free_ char *real = xasprintf("%s/%s/bin", c->store_dir, base);
        struct stat sb;
        if (stat(real, &sb) < 0 || !S_ISDIR(sb.st_mode))
            continue;
        char *next = xasprintf("%s%s%s/bin", acc.s, acc.len ? ":" : "", full);
        free(acc.s);
        acc.s = next;
        acc.len = strlen(next);
    }
    if (acc.len) {
        const char *old = getenv("PATH");
        _cleanup_free_ char *v =
            old && *old ? xasprintf("%s:%s", acc.s, old) : xasprintf("%s", acc.s);
        setenv("PATH", v, 1);
    }
    free(acc.s);
}

int cli_run_with(const char *cmd, struct cli_settings *s, const struct store_path *roots,
                 size_t n, bool offline)
{
    struct run_ctx c = {.cmd = cmd, .s = *s, .offline = offline, .nroots = n};
    c.roots = xcalloc(n ? n : 1, sizeof *c.roots);
    memcpy(c.roots, roots, n * sizeof *roots);
    int ret = complete_closures(&c);
    if (ret == EXIT_OK) {
        prefix_path(&c);
        /* The closures' locks go with the program, as a run's do. */
        for (size_t i = 0; i < c.nlocks; i++)
            fcntl(c.locks[i], F_SETFD, 0);
        free(c.locks);
        c.locks = NULL;
        c.nlocks = 0;
    }
    memset(&c.s, 0, sizeof c.s); /* the caller's */
    ctx_release(&c);
    return ret;
}

/* What the engine says, with -v, about how it runs this program. */
static void run_notice(const char *msg)
{
    fprintf(stderr, "%s: %s\n", cli_progname, msg);
}

/*
 * runix's exit after a sandboxed program ended: its status, or the same
 * death by signal (without a core file of runix's own), as a plain run gives
 * its caller.
 */
static int sandbox_exit(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (!WIFSIGNALED(status))
        return EXIT_FAIL;
    int sig = WTERMSIG(status);
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    fflush(NULL);
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    return 128 + sig; /* a signal that does not kill */
}

/*
 * The store socket's request (run-sandbox.h), in a child of runix outside
 * the sandbox: fetch path as the run's own roots were fetched (its caches,
 * keys and trust), then read its closure.  The fetch's messages go to our
 * stderr as usual; its last line is the reason of a refusal.
 */
static int realise_for_sandbox(void *ctx, const char *path, char ***names, size_t *n, char *why,
                               size_t whyn)
{
    struct run_ctx *c = ctx;
    struct store_path sp;
    struct rx_error *err = NULL;
    if (store_path_parse(path, strlen(path), &sp, &err) < 0) {
        snprintf(why, whyn, "%s", err->msg);
        rx_error_free(err);
        return -1;
    }
    /* This process only serves the request: the run's roots become this path. */
    free(c->roots);
    c->roots = xcalloc(1, sizeof *c->roots);
    c->roots[0] = sp;
    c->nroots = 1;
    c->is_dist = false;
    c->root_name[0] = '\0';
    c->s.quiet = true;
    int log = memfd_create("runix-realise", MFD_CLOEXEC);
    int saved = log >= 0 ? dup(STDERR_FILENO) : -1;
    if (saved >= 0)
        dup2(log, STDERR_FILENO);
    int r = fetch_in_child(c, &err);
    if (saved >= 0) {
        dup2(saved, STDERR_FILENO);
        close(saved);
    }
    char text[4096] = "";
    if (log >= 0) {
        ssize_t k = pread(log, text, sizeof text - 1, 0);
        text[k > 0 ? k : 0] = '\0';
        close(log);
        if (k > 0)
            fputs(text, stderr);
    }
    if (r != 0) {
        char *end = text + strlen(text);
        while (end > text && end[-1] == '\n')
            *--end = '\0';
        char *line = strrchr(text, '\n');
        line = line ? line + 1 : text;
        const char *prefix = strstr(line, ": ");
        snprintf(why, whyn, "%s", err ? err->msg : *line ? (prefix ? prefix + 2 : line)
                                                       : "the fetch failed");
        rx_error_free(err);
        return -1;
    }
    if (closure_complete(c, false, &err) <= 0) {
        snprintf(why, whyn, "%s", err ? err->msg : "its closure is incomplete after the fetch");
        rx_error_free(err);
        return -1;
    }
    *names = xcalloc(c->nclosure + 1, sizeof **names);
    for (size_t i = 0; i < c->nclosure; i++) {
        (*names)[i] = xcalloc(1, STORE_BASENAME_MAX + 1);
        store_path_basename(&c->closure[i], (*names)[i]);
    }
    *n = c->nclosure;
    return 0;
}

/* In the view: exec prog (see launch()); returns the exit status of the failure. */
static int exec_program(struct run_ctx *c, struct engine_choice *engine, const char *prog,
                        char **argv)
{
    struct rx_error *err = NULL;
    if (engine->warning)
        cli_error("warning: %s", engine->warning);
    if (c->verbose && !c->sandbox.on && !c->in_sandbox) {
        _cleanup_free_ char *what = engine_choice_describe(engine);
        fprintf(stderr, "%s: engine: %s\n", cli_progname, what);
        engine->notice = run_notice;
    }
    /* The closures' locks go with the program: they last as long as it does. */
    for (size_t i = 0; i < c->nlocks; i++)
        fcntl(c->locks[i], F_SETFD, 0);
    engine_exec(engine, c->store_dir, prog, argv, &err);
    engine_choice_release(engine);
    if (!err)
        BUG("engine_exec returned without an error");
    int code = err->code;
    cli_error("%s", err->msg);
    rx_error_free(err);
    if (code == RX_EUNSUPPORTED)
        return EXIT_NOT_EXECUTABLE;
    if (code >= RX_EBASE)
        return EXIT_FAIL;
    return code == ENOENT ? EXIT_NOT_FOUND : EXIT_NOT_EXECUTABLE;
}

/* What the sandbox's program process runs (run-sandbox.h, start). */
struct sandbox_start {
    struct run_ctx *c;
    const char *prog;
    char **argv;
};

static int start_in_sandbox(void *ctx, struct rx_error *err)
{
    struct sandbox_start *s = ctx;
    if (err)
        return cli_fail(err);
    struct engine_choice engine = ENGINE_CHOICE_INIT;
    engine.kind = ENGINE_USERNS;
    return exec_program(s->c, &engine, s->prog, s->argv);
}

/* --gpu: gather the host's GPU libraries; the directory to show, or NULL after saying why. */
static char *gpu_prepare(const struct run_ctx *c)
{
    struct rx_error *err = NULL;
    size_t n;
    if (enter_gpu_fill(c->root, getenv("RUNIX_LD_CACHE"), &n, &err) < 0) {
        rx_error_wrap(&err, "--gpu");
        cli_fail(err);
        return NULL;
    }
    if (n == 0)
        cli_error("warning: --gpu: the host's loader cache lists no GPU libraries");
    return xasprintf("%s/%s", c->root, ENTER_DRIVER_DIR);
}

/* The sandbox shows each file the driver's links name. */
static void gpu_allow(void *ctx, const char *target)
{
    struct sandbox_policy *p = ctx;
    for (size_t i = 0; i < p->nbinds; i++)
        if (strcmp(p->binds[i].path, target) == 0)
            return; /* several links name one file */
    sandbox_policy_add_bind(p, SANDBOX_RO, target);
}

/* In the userns engine's view: the driver at /run/opengl-driver.  EXIT_OK or after saying why. */
static int gpu_show(const struct engine_choice *e, const char *dir)
{
    struct rx_error *err = NULL;
    if (e->kind != ENGINE_USERNS) {
        cli_error("--gpu needs the userns engine, and this run has the preload engine (see "
                  "'runix doctor')");
        return EXIT_FAIL;
    }
    if (enter_bind_driver(dir, &err) < 0)
        return rx_error_wrap(&err, "--gpu"), cli_fail(err);
    return EXIT_OK;
}

/*
 * Enter the view and exec.  prog is a path (logical, or a host path), or
 * NULL: look argv[0] up in PATH inside the view.
 */
static int launch(struct run_ctx *c, const char *prog, char **argv)
{
    char (*bases)[STORE_BASENAME_MAX + 1] = xcalloc(c->nclosure + 1, sizeof *bases);
    const char **names = xcalloc(c->nclosure + 1, sizeof *names);
    for (size_t i = 0; i < c->nclosure; i++) {
        store_path_basename(&c->closure[i], bases[i]);
        names[i] = bases[i];
    }
    struct engine_choice engine;
    struct rx_error *err = NULL;
    int r;
    _cleanup_free_ char *gpu_dir = c->gpu ? gpu_prepare(c) : NULL;
    if (c->gpu && !gpu_dir) {
        free(names);
        free(bases);
        return EXIT_FAIL;
    }
    if (c->sandbox.on && gpu_dir) {
        c->sandbox.gpu_dir = gpu_dir;
        enter_gpu_each_target(c->root, gpu_allow, &c->sandbox);
    }
    if (c->in_sandbox) {
        free(names);
        free(bases);
        engine = (struct engine_choice)ENGINE_CHOICE_INIT;
        engine.kind = ENGINE_USERNS; /* the sandbox's view: /nix/store is the store */
    } else if (c->sandbox.on) {
        struct sandbox_end end = {0};
        struct sandbox_start start = {c, prog, argv};
        c->sandbox.realise = realise_for_sandbox;
        c->sandbox.realise_ctx = c;
        c->sandbox.start = start_in_sandbox;
        c->sandbox.start_ctx = &start;
        r = sandbox_enter(&c->sandbox, c->store_dir, names, c->nclosure, &end, &err);
        free(names);
        free(bases);
        if (r < 0)
            return cli_fail(err);
        if (r > 0)
            return sandbox_exit(end.status);
        engine = (struct engine_choice)ENGINE_CHOICE_INIT;
        engine.kind = ENGINE_USERNS;
    } else {
        r = engine_enter(c->engine, c->root, c->store_dir, names, c->nclosure, &engine, &err);
        free(names);
        free(bases);
        if (r < 0)
            return cli_fail(err);
        if (gpu_dir && (r = gpu_show(&engine, gpu_dir)) != EXIT_OK) {
            engine_choice_release(&engine);
            return r;
        }
    }
    return exec_program(c, &engine, prog, argv);
}

static int parse_root(struct run_ctx *c, const char *arg, const char **sub)
{
    struct rx_error *err = NULL;
    c->roots = xrealloc(c->roots, (c->nroots + 1) * sizeof *c->roots);
    if (cli_byname_is_ref(arg)) { /* NAME#ATTR: runix-core's (the front handed it over) */
        if (!cli_byname_resolve ||
            (c->fail = cli_byname_resolve(c->cmd, arg, &c->roots[c->nroots])) != EXIT_OK)
            return -1;
        *sub = "";
        c->nroots++;
        return 0;
    }
    if (store_path_parse_with_subpath(arg, strlen(arg), &c->roots[c->nroots], sub, &err) < 0) {
        cli_usage_error(c->cmd, "%s", err->msg);
        rx_error_free(err);
        return -1;
    }
    c->nroots++;
    return 0;
}

#define RUN_LONG_OPTIONS                                                                      \
    CLI_SETTINGS_OPTIONS, {"engine", required_argument, NULL, OPT_ENGINE},                    \
        {"offline", no_argument, NULL, OPT_OFFLINE}, {"verbose", no_argument, NULL, 'v'},     \
        {"trust", no_argument, NULL, OPT_TRUST}, {"help", no_argument, NULL, 'h'},            \
        {"sandbox", no_argument, NULL, OPT_SANDBOX}, {"cwd", required_argument, NULL, OPT_CWD}, \
        {"ro", required_argument, NULL, OPT_RO}, {"rw", required_argument, NULL, OPT_RW},      \
        {"hide", required_argument, NULL, OPT_HIDE},                                          \
        {"network", required_argument, NULL, OPT_NETWORK},                                    \
        {"allow-nested", no_argument, NULL, OPT_ALLOW_NESTED},                                \
        {"no-store-socket", no_argument, NULL, OPT_NO_STORE_SOCKET},                          \
        {"clearenv", no_argument, NULL, OPT_CLEARENV},                                        \
        {"setenv", required_argument, NULL, OPT_SETENV},                                      \
        {"env-deny", required_argument, NULL, OPT_ENV_DENY},                                  \
        {"env-keep", required_argument, NULL, OPT_ENV_KEEP},                                  \
        {"network-log", required_argument, NULL, OPT_NETWORK_LOG},                            \
        {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},                                    \
        {"gpu", no_argument, NULL, OPT_GPU}

/* Downloading is runix-core's: the front has no cli_ref_resolve(). */
#pragma weak cli_ref_resolve

/* The front hands a run of a remote reference to runix-core, whole. */
static int run_in_core(int argc, char **argv)
{
    _cleanup_free_ char **av = xcalloc((size_t)argc + 2, sizeof *av);
    av[0] = (char *)cli_progname;
    for (int i = 0; i < argc; i++)
        av[i + 1] = argv[i];
    return cli_run_core_command(NULL, argc, argv, av);
}

/* A distributable's roots: its paths for this system. */
static int open_dist(struct run_ctx *c, const char *ref, bool list)
{
    _cleanup_free_ char *local = NULL;
    const char *label = NULL;
    if (cli_dist_is_remote(ref)) {
        int r = cli_ref_resolve("run", ref, c->offline, &local);
        if (r != EXIT_OK)
            return r;
        label = ref;
        ref = local;
    }
    int r = cli_dist_open_as("run", ref, label, list, &c->dist);
    if (r != EXIT_OK)
        return r;
    c->is_dist = true;
    if (list)
        return EXIT_OK;
    c->nroots = c->dist.sys->npaths;
    c->roots = xcalloc(c->nroots, sizeof *c->roots);
    memcpy(c->roots, c->dist.sys->paths, c->nroots * sizeof *c->roots);
    return EXIT_OK;
}

/*
 * The sandbox that the distributable's app asks for, combined with the
 * command line's options (run-sandbox-policy.h): what widens it is said.
 */
static int dist_sandbox(struct run_ctx *c)
{
    const struct dist_app *app = c->dist.app;
    const struct dist_sandbox *sb = app->sandbox;
    if (!sb || !sb->enable)
        return EXIT_OK;
    struct sandbox_policy f = SANDBOX_POLICY_INIT, out;
    struct rx_error *err = NULL;
    char pwd[PATH_MAX];
    const char *home = getenv("HOME"), *cwd = getcwd(pwd, sizeof pwd) ? pwd : NULL;
    f.on = true;
    if (sb->cwd)
        f.cwd = (enum sandbox_cwd)sandbox_cwd_parse(sb->cwd);
    if (sb->network && sandbox_net_parse(&f, sb->network, &err) < 0)
        goto bad;
    const struct {
        enum sandbox_bind_kind kind;
        char **v;
        size_t n;
    } lists[] = {{SANDBOX_RO, sb->ro, sb->nro}, {SANDBOX_RW, sb->rw, sb->nrw},
                 {SANDBOX_HIDE, sb->hide, sb->nhide}};
    for (size_t l = 0; l < sizeof lists / sizeof *lists; l++) {
        for (size_t i = 0; i < lists[l].n; i++) {
            char *path = sandbox_path_expand(lists[l].v[i], home, cwd, &err);
            if (!path)
                goto bad;
            sandbox_policy_add_bind(&f, lists[l].kind, path);
            free(path);
        }
    }
    f.clearenv = sb->clearenv;
    for (size_t i = 0; i < sb->nsetenv; i++)
        sandbox_policy_add_str(&f.setenv, &f.nsetenv, sb->setenv[i]);
    for (size_t i = 0; i < sb->nkeep; i++)
        sandbox_policy_add_str(&f.env_keep, &f.nenv_keep, sb->keep[i]);
    for (size_t i = 0; i < sb->ndeny; i++)
        sandbox_policy_add_str(&f.env_deny, &f.nenv_deny, sb->deny[i]);
    char **notes = NULL;
    size_t nnotes = 0;
    sandbox_policy_merge(&f, &c->sandbox, c->sandbox_set, &out, &notes, &nnotes);
    for (size_t i = 0; i < nnotes; i++) {
        cli_cmd_error(c->cmd, "widening the sandbox that app '%s' of '%s' asks for: %s",
                      app->name, c->dist.label, notes[i]);
        free(notes[i]);
    }
    free(notes);
    sandbox_policy_release(&f);
    sandbox_policy_release(&c->sandbox); /* out has its log_fd */
    c->sandbox = out;
    return EXIT_OK;
bad:
    cli_cmd_error(c->cmd, "the sandbox policy of app '%s' of '%s': %s", app->name,
                  c->dist.label, err->msg);
    rx_error_free(err);
    sandbox_policy_release(&f);
    return EXIT_USAGE;
}

/* The program of the distributable's app; NULL after saying why. */
static char *dist_program(struct run_ctx *c, int *ret)
{
    const struct dist_app *app = c->dist.app;
    if (!app->program) {
        char *p = default_program(c);
        *ret = EXIT_FAIL;
        return p;
    }
    char full[STORE_PATH_MAX + 1];
    store_path_format(&c->roots[0], full);
    if (strchr(app->program, '/')) {
        char *p = xasprintf("%s/%s", full, app->program);
        if (!engine_is_program(c->store_dir, p)) {
            cli_cmd_error("run", "app '%s' of '%s': '%s' is not a program in %s", app->name,
                          c->dist.label, app->program, full);
            free(p);
            *ret = EXIT_NOT_FOUND;
            return NULL;
        }
        return p;
    }
    char *p = find_program(c, app->program, false);
    if (!p) {
        cli_cmd_error("run", "app '%s' of '%s': no program '%s' in the bin/ of its closure",
                      app->name, c->dist.label, app->program);
        *ret = EXIT_NOT_FOUND;
    }
    return p;
}

int run_with_closure(const char *cmd, struct cli_settings *s, bool offline, const char *target,
                     int (*fn)(void *arg, const char *store_dir, const char *base), void *arg)
{
    struct run_ctx c = {.cmd = cmd, .s = *s, .offline = offline};
    *s = (struct cli_settings){0};
    const char *sub = "";
    int ret = EXIT_USAGE;
    if (parse_root(&c, target, &sub) < 0) {
        ret = c.fail ? c.fail : EXIT_USAGE;
        goto out;
    }
    if (*sub && strcmp(sub, "/") != 0) {
        ret = cli_usage_error(cmd, "'%s' is a file below a store path; name the store path", target);
        goto out;
    }
    if ((ret = prepare(&c)) != EXIT_OK)
        goto out;
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(&c.roots[0], base);
    ret = fn(arg, c.store_dir, base);
out:
    ctx_release(&c);
    return ret;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        RUN_LONG_OPTIONS, {"list", no_argument, NULL, OPT_LIST}, {NULL, 0, NULL, 0}};
    struct run_ctx c = {.cmd = "run"};
    _cleanup_free_ char *prog = NULL;
    int o, ret = EXIT_USAGE;
    bool list = false;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((o = getopt_long(argc, argv, "+:qvh", opts, NULL)) != -1) {
        if (o == 'h') {
            ctx_release(&c);
            return cli_print_help(run_usage);
        }
        if (o == OPT_LIST) {
            list = true;
            continue;
        }
        int t = run_option(&c, o, optarg);
        if (t < 0)
            goto out;
        if (t == 0) {
            cli_option_error("run", o, argv, opts);
            goto out;
        }
    }
    if ((c.sandbox_set & SANDBOX_SET_OFF) && (c.sandbox.on || c.sandbox_opts)) {
        cli_usage_error("run", "--no-sandbox takes no other sandbox option");
        goto out;
    }
    if (optind == argc) {
        cli_usage_error("run", list ? "expected a distributable FILE" :
                                      "expected a STOREPATH or a distributable FILE");
        goto out;
    }
    const char *target = argv[optind++];
    const char *sub = "";
    if ((cli_dist_is_remote(target) && !cli_ref_resolve) ||
        (cli_byname_is_ref(target) && !cli_byname_resolve)) {
        ctx_release(&c);
        return run_in_core(argc, argv);
    }
    if (cli_dist_is_ref(target) && !cli_byname_is_ref(target)) {
        if ((ret = open_dist(&c, target, list)) != EXIT_OK)
            goto out;
        if (list) {
            cli_dist_list(&c.dist, stdout);
            ret = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
            goto out;
        }
        if ((ret = dist_sandbox(&c)) != EXIT_OK)
            goto out;
    } else if (list) {
        ret = cli_usage_error("run", "--list takes a distributable FILE, not a store path");
        goto out;
    } else if (parse_root(&c, target, &sub) < 0) {
        ret = c.fail ? c.fail : EXIT_USAGE;
        goto out;
    }
    /* After STOREPATH: "--" or an option means the default program's arguments follow. */
    bool default_prog = false;
    if (optind < argc && strcmp(argv[optind], "--") == 0) {
        optind++;
        default_prog = true;
    } else if (optind < argc && argv[optind][0] == '-') {
        default_prog = true;
    }
    if ((ret = prepare(&c)) != EXIT_OK) {
        if (ret == EXIT_FAIL && cli_byname_is_ref(target))
            cli_cmd_error("run", "'%s' is %s/%s-%s in the index; if no cache above has it, "
                                 "name one with --cache, or run 'runix index update'",
                          target, STORE_DIR, c.roots[0].hash, c.roots[0].name);
        goto out;
    }

    char full[STORE_PATH_MAX + 1];
    store_path_format(&c.roots[0], full);
    const char *argv0;
    const struct dist_app *app = c.is_dist ? c.dist.app : NULL;
    if (app) {
        prog = dist_program(&c, &ret);
        if (!prog)
            goto out;
        argv0 = prog;
        for (size_t i = 0; i < app->nenv; i++) {
            const char *eq = strchr(app->env[i], '=');
            _cleanup_free_ char *name = xstrndup(app->env[i], (size_t)(eq - app->env[i]));
            setenv(name, eq + 1, 1);
        }
    } else if (*sub && strcmp(sub, "/") != 0) {
        prog = xasprintf("%s%s", full, sub); /* a file inside the path */
        argv0 = prog;
    } else if (optind < argc && !default_prog) {
        argv0 = argv[optind++];
        prog = find_program(&c, argv0, true);
        if (!prog) {
            cli_error("%s: command not found in %s/bin, the rest of its closure, or PATH", argv0,
                      full);
            ret = EXIT_NOT_FOUND;
            goto out;
        }
    } else {
        prog = default_program(&c);
        if (!prog) {
            ret = EXIT_FAIL;
            goto out;
        }
        argv0 = prog;
    }
    /* The program's argv: argv0, the app's arguments, then the rest. */
    size_t nfixed = app ? app->nargs : 0;
    size_t nargs = (size_t)(argc - optind);
    char **pargv = xcalloc(nfixed + nargs + 2, sizeof *pargv);
    pargv[0] = (char *)argv0;
    for (size_t i = 0; i < nfixed; i++)
        pargv[1 + i] = app->args[i];
    for (size_t i = 0; i < nargs; i++)
        pargv[1 + nfixed + i] = argv[optind + (int)i];
    prefix_path(&c);
    ret = launch(&c, prog, pargv);
    free(pargv);
out:
    ctx_release(&c);
    return ret;
}

int cmd_shell(int argc, char **argv)
{
    static const struct option opts[] = {
        RUN_LONG_OPTIONS, {"command", no_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
    struct run_ctx c = {.cmd = "shell"};
    int ret = EXIT_USAGE;
    int first_cmd = -1;
    char *shell_prog = NULL;
    for (int i = 1; i < argc && !cli_byname_resolve; i++) { /* NAME#ATTR: runix-core's */
        if (strcmp(argv[i], "--command") == 0 || strcmp(argv[i], "-c") == 0)
            break;
        if (cli_byname_is_ref(argv[i])) {
            ctx_release(&c);
            return run_in_core(argc, argv);
        }
    }
    /* Options and paths may mix; --command (or -c) ends both. */
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    for (;;) {
        int o = getopt_long(argc, argv, "-:qvhc", opts, NULL);
        if (o == -1)
            break;
        if (o == 'h') {
            ctx_release(&c);
            return cli_print_help(shell_usage);
        }
        if (o == 'c') {
            first_cmd = optind;
            break;
        }
        if (o == 1) {
            const char *sub;
            if (parse_root(&c, optarg, &sub) < 0) {
                ret = c.fail ? c.fail : EXIT_USAGE;
                goto out;
            }
            continue;
        }
        int t = run_option(&c, o, optarg);
        if (t < 0)
            goto out;
        if (t == 0) {
            cli_option_error("shell", o, argv, opts);
            goto out;
        }
    }
    if (first_cmd < 0)
        for (int i = optind; i < argc; i++) {
            const char *sub;
            if (parse_root(&c, argv[i], &sub) < 0) {
                ret = c.fail ? c.fail : EXIT_USAGE;
                goto out;
            }
        }
    if (c.nroots == 0) {
        cli_usage_error("shell", "expected at least one STOREPATH");
        goto out;
    }
    if (first_cmd >= 0 && first_cmd >= argc) {
        cli_usage_error("shell", "--command needs a command");
        goto out;
    }
    if ((ret = prepare(&c)) != EXIT_OK)
        goto out;
    prefix_path(&c);
    char **pargv;
    if (first_cmd >= 0) {
        pargv = argv + first_cmd;
    } else {
        static char *sh[2];
        const char *shell = getenv("SHELL");
        sh[0] = (char *)(shell && *shell ? shell : "/bin/sh");
        if (c.sandbox.on || c.in_sandbox) {
            /* The host's shell is not in the sandbox: the closure's. */
            const char *base = strrchr(sh[0], '/');
            const char *names[] = {base ? base + 1 : sh[0], "sh", "bash", "dash"};
            char *own = NULL;
            for (size_t i = 0; i < sizeof names / sizeof *names && !own; i++)
                if (*names[i])
                    own = find_program(&c, names[i], false);
            if (!own) {
                cli_cmd_error("shell", "no shell (sh, bash, dash) in the closure, and the "
                                       "host's is not in the sandbox; add one or name --command");
                ret = EXIT_NOT_FOUND;
                goto out;
            }
            free(shell_prog);
            shell_prog = own;
            sh[0] = own;
        }
        pargv = sh;
    }
    ret = launch(&c, strchr(pargv[0], '/') ? pargv[0] : NULL, pargv);
out:
    free(shell_prog);
    ctx_release(&c);
    return ret;
}
