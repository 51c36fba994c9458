/* runix self: the installed runix itself (info, update, uninstall), its man page and completions. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "dist.h"
#include "fetch.h"
#include "store-gc.h"
#include "store.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "util-receipt.h"

#include "banned.h"

extern char **environ;

/* The completion scripts, built into runix from completions/ (self-embed.c). */
extern const char runix_completion_bash[];
extern const char runix_completion_zsh[];
extern const char runix_completion_fish[];

/* The help texts of commands are at most this long. */
#define HELP_MAX (256 * 1024)
/* A release's SHA256SUMS and VERSION are small. */
#define SUMS_MAX (64 * 1024)
/* How long the new binary may take to answer --version. */
#define VERSION_TIMEOUT_MS 30000

/* ---- where things are ---- */

static char *receipt_path(void)
{
    return cli_xdg_path("XDG_DATA_HOME", ".local/share", "runix/receipt");
}

/* "x86_64" or "aarch64", the names release files use; NULL elsewhere. */
static const char *host_arch(void)
{
    static struct utsname u;
    if (uname(&u) < 0)
        return NULL;
    if (strcmp(u.machine, "x86_64") == 0 || strcmp(u.machine, "amd64") == 0)
        return "x86_64";
    if (strcmp(u.machine, "aarch64") == 0 || strcmp(u.machine, "arm64") == 0)
        return "aarch64";
    return NULL;
}

/*
 * Where install.sh puts runix and its other files without --prefix; what
 * uninstall removes when there is no receipt it can read.  NULL entries
 * (no HOME) are skipped.
 */
static void known_locations(char *out[5])
{
    const char *home = getenv("HOME");
    out[0] = home && home[0] == '/' ? xasprintf("%s/.local/bin/runix", home) : NULL;
    out[1] = cli_xdg_path("XDG_DATA_HOME", ".local/share", "man/man1/runix.1");
    out[2] = cli_xdg_path("XDG_DATA_HOME", ".local/share", "bash-completion/completions/runix");
    out[3] = cli_xdg_path("XDG_DATA_HOME", ".local/share", "zsh/site-functions/_runix");
    out[4] = cli_xdg_path("XDG_DATA_HOME", ".local/share", "fish/vendor_completions.d/runix.fish");
}

/* The base URL of releases: $RUNIX_INSTALL_URL, else the receipt's, else the default. */
static const char *base_url(const char *flag, const struct receipt *r)
{
    const char *e = getenv("RUNIX_INSTALL_URL");
    if (flag && *flag)
        return flag;
    if (e && *e)
        return e;
    if (r && r->base_url)
        return r->base_url;
    return RUNIX_RELEASE_URL;
}

/* ---- running a program and reading what it prints ---- */

/*
 * Run argv[0] (a path) with argv and the environment, stdout into out (at
 * most out->max bytes), stderr to /dev/null unless keep_stderr; kill it after
 * timeout_ms.  Returns the wait status, or -1 with errno when it could not
 * be started or read.
 */
static int capture(char *const argv[], struct rx_buf *out, bool keep_stderr, int timeout_ms)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!keep_stderr)
        posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        errno = rc;
        return -1;
    }
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool killed = false;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (spent >= timeout_ms) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int n = poll(&pfd, 1, (int)(timeout_ms - spent));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[8192];
        ssize_t k = read(p[0], buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (rx_buf_append(out, buf, (size_t)k) < 0) {
            kill(pid, SIGKILL);
            killed = true;
            break;
        }
    }
    close(p[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (killed && !WIFSIGNALED(status))
        return -1;
    return status;
}

static void describe_status(int status, char *buf, size_t n)
{
    if (status < 0)
        snprintf(buf, n, "could not run it: %s", strerror(errno));
    else if (WIFEXITED(status))
        snprintf(buf, n, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, n, "wait status %d", status);
}

/* ---- runix self info ---- */

static const char info_usage[] =
    "usage: runix self info\n"
    "\n"
    "Say which runix this is and how it was installed: its version, architecture\n"
    "and file, and what the install receipt (written by install.sh) lists: the\n"
    "installed binary and its sha256, the other files, the release URL that\n"
    "'runix self update' uses.  Also where the store and the config file are.\n"
    "\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix self info\n";

static int self_info(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(info_usage);
    if (argc >= 2)
        return cli_usage_error("self info", "unexpected argument '%s'", argv[1]);
    const char *arch = host_arch();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    printf("version: %s\n", RUNIX_VERSION);
    printf("arch: %s\n", arch ? arch : "unsupported by the release files");
    printf("running: %s\n", n > 0 ? exe : "(unknown)");
    _cleanup_free_ char *rp = receipt_path();
    struct receipt r = RECEIPT_INIT;
    struct rx_error *err = NULL;
    bool have = rp && receipt_load(rp, &r, &err) == 0;
    if (!rp) {
        printf("receipt: none (neither XDG_DATA_HOME nor HOME is set)\n");
    } else if (!have && err && err->code == RX_ENOTFOUND) {
        printf("receipt: none at %s (runix was not installed by install.sh)\n", rp);
    } else if (!have) {
        printf("receipt: %s: not readable by this runix (%s); 'runix self uninstall' falls "
               "back on the usual locations\n",
               rp, err ? err->msg : "unknown error");
    } else {
        printf("receipt: %s\n", rp);
        printf("installed: %s\n", r.binary);
        printf("installed version: %s\n", r.version ? r.version : "(not recorded)");
        printf("installed sha256: %s\n", r.sha256 ? r.sha256 : "(not recorded)");
        for (size_t i = 0; i < r.nfiles; i++)
            printf("file: %s\n", r.files[i]);
    }
    rx_error_free(err);
    err = NULL;
    printf("release url: %s\n", base_url(NULL, have ? &r : NULL));
    receipt_release(&r);

    struct cli_settings s = {0};
    if (cli_settings_finish(&s, &err) == 0) {
        printf("store: %s\n", s.store);
    } else {
        printf("store: unknown (%s)\n", err->msg);
        rx_error_free(err);
    }
    cli_settings_release(&s);
    const char *cf = getenv("RUNIX_CONFIG");
    _cleanup_free_ char *conf = cf && *cf ? xstrdup(cf)
                                          : cli_xdg_path("XDG_CONFIG_HOME", ".config",
                                                         "runix/runix.conf");
    printf("config: %s\n", conf ? conf : "none (no HOME, XDG_CONFIG_HOME or RUNIX_CONFIG)");
    return EXIT_OK;
}

/* ---- runix self update ---- */

static const char update_usage[] =
    "usage: runix self update [OPTIONS]\n"
    "\n"
    "Replace the runix that install.sh installed (the binary its receipt names) with\n"
    "the release's: download SHA256SUMS and the binary for this architecture,\n"
    "check the binary's sha256, put it in place with one rename, and keep the old\n"
    "binary until the new one has answered '--version' in its place; if it does\n"
    "not, the old one is put back.  Nothing is downloaded again when the release's\n"
    "sha256 is the installed one.\n"
    "\n"
    "The release URL is --url, else $RUNIX_INSTALL_URL, else the receipt's.\n"
    "\n"
    "      --url URL             the release directory (holding SHA256SUMS and\n"
    "                            runix-ARCH-linux)\n"
    "  -f, --force               download and install even when up to date\n"
    "  -q, --quiet               show no progress, only errors\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when runix is the release's (updated or already), 1 when the\n"
    "update failed or was refused (the old runix stays), 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix self update\n"
    "  runix self update --url https://example.org/runix/releases/0.2.0\n";

/* One file from the release directory, whole, into b. */
static int get_small(const struct fetch_opts *fo, const char *base, const char *name,
                     struct rx_buf *b, struct rx_error **err);

static int buf_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    if (rx_buf_append(ctx, data, len) < 0)
        return rx_error_set(err, RX_EFORMAT, "larger than %d bytes", SUMS_MAX);
    return 0;
}

static int get_small(const struct fetch_opts *fo, const char *base, const char *name,
                     struct rx_buf *b, struct rx_error **err)
{
    _cleanup_free_ char *url = xasprintf("%s/%s", base, name);
    struct fetch_stream fs = {.sink = buf_sink, .ctx = b, .timeout_s = 120};
    int r = fetch_stream(url, fo, &fs, err);
    fetch_stream_release(&fs);
    return r;
}

struct download {
    int fd;
    struct sha256_ctx sha;
    bool tty;
    const char *name;
    uint64_t shown;
};

static int file_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct download *d = ctx;
    sha256_update(&d->sha, data, len);
    if (write_all(d->fd, data, len) < 0)
        return rx_error_errno(err, "cannot write the download");
    return 0;
}

static void file_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct download *d = ctx;
    if (!d->tty || done - d->shown < 256 * 1024)
        return;
    d->shown = done;
    if (total)
        fprintf(stderr, "\rdownloading %s: %3u%%", d->name, (unsigned)(done * 100 / total));
    else
        fprintf(stderr, "\rdownloading %s: %llu KiB", d->name,
                (unsigned long long)(done / 1024));
}

/* The version "runix --version" printed ("runix 0.1.0\n"), or NULL. */
static char *version_of(const struct rx_buf *out)
{
    if (!out->data || strncmp(out->data, "runix ", 6) != 0)
        return NULL;
    size_t n = strcspn(out->data + 6, " \t\r\n");
    return n ? xstrndup(out->data + 6, n) : NULL;
}

/*
 * Write the man page and completions the receipt lists again, from the new
 * binary (they may have changed with it).  A file the new binary cannot
 * make stays as it was, with a warning.
 */
static void refresh_files(const struct receipt *r, bool quiet)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        const char *f = r->files[i], *base = strrchr(f, '/') + 1;
        const char *a1 = "completion", *a2 = NULL;
        if (strcmp(base, "runix.1") == 0)
            a1 = "man";
        else if (strcmp(base, "_runix") == 0)
            a2 = "zsh";
        else if (strcmp(base, "runix.fish") == 0)
            a2 = "fish";
        else if (strcmp(base, "runix") == 0 && strstr(f, "/bash-completion/"))
            a2 = "bash";
        else
            continue;
        char *argv[] = {r->binary, (char *)"self", (char *)a1, (char *)a2, NULL};
        struct rx_buf out = RX_BUF_INIT(HELP_MAX);
        struct rx_error *err = NULL;
        int st = capture(argv, &out, false, VERSION_TIMEOUT_MS);
        if (st != 0 || !out.data) {
            if (!quiet)
                cli_cmd_error("self update", "warning: kept %s: the new runix cannot write it", f);
        } else if (write_file_atomic_at(AT_FDCWD, f, out.data, false, &err) < 0) {
            cli_cmd_error("self update", "warning: %s", err->msg);
            rx_error_free(err);
        }
        rx_buf_release(&out);
    }
}

static int self_update(int argc, char **argv)
{
    enum { OPT_URL = 0x200 };
    static const struct option opts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"force", no_argument, NULL, 'f'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "self update";
    const char *url_flag = NULL;
    bool force = false, quiet = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:fqh", opts, NULL)) != -1) {
        switch (c) {
        case OPT_URL:
            url_flag = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            return cli_print_help(update_usage);
        default:
            return cli_option_error(cmd, c, argv, opts);
        }
    }
    if (optind < argc)
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);

    _cleanup_free_ char *rp = receipt_path();
    if (!rp) {
        cli_cmd_error(cmd, "cannot find the receipt: neither XDG_DATA_HOME nor HOME is set");
        return EXIT_FAIL;
    }
    struct receipt r = RECEIPT_INIT;
    struct rx_error *err = NULL;
    if (receipt_load(rp, &r, &err) < 0) {
        if (err->code == RX_ENOTFOUND)
            cli_cmd_error(cmd, "there is no receipt at %s, so this runix was not installed by "
                               "install.sh; update it the way it was installed, or install "
                               "runix with install.sh",
                          rp);
        else
            cli_cmd_error(cmd, "%s; run install.sh again to replace runix and its receipt",
                          err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    int ret = EXIT_FAIL;
    const char *arch = host_arch();
    _cleanup_free_ char *asset = arch ? xasprintf("runix-%s-linux", arch) : NULL;
    _cleanup_free_ char *base = xstrdup(base_url(url_flag, &r));
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        base[--bl] = '\0';
    _cleanup_free_ char *dir = xstrndup(r.binary, (size_t)(strrchr(r.binary, '/') - r.binary));
    if (!*dir) {
        free(dir);
        dir = xstrdup("/");
    }
    _cleanup_free_ char *tmp = xasprintf("%s/.runix-update.XXXXXX", dir);
    _cleanup_free_ char *old = xasprintf("%s/.runix-old.%ld", dir, (long)getpid());
    struct rx_buf sums = RX_BUF_INIT(SUMS_MAX), vers = RX_BUF_INIT(SUMS_MAX);
    struct rx_buf out = RX_BUF_INIT(4096);
    struct cli_settings s = {0};
    int fd = -1;
    bool tmp_made = false;
    char want[65];
    _cleanup_free_ char *shown = NULL, *release_version = NULL, *url = NULL;
    _cleanup_free_ char *new_version = NULL, *text = NULL;
    s.quiet = quiet;
    if (!arch) {
        cli_cmd_error(cmd, "there is no release file for this machine's architecture; runix "
                           "releases are for x86_64 and aarch64");
        goto out;
    }
    if (cli_settings_finish(&s, &err) < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        goto out;
    }
    struct fetch_opts fo;
    cli_settings_fetch_opts(&s, &fo);
    shown = cache_url_redact(base);
    if (get_small(&fo, base, "SHA256SUMS", &sums, &err) < 0) {
        cli_cmd_error(cmd, "cannot download %s/SHA256SUMS: %s; nothing changed", shown,
                      err->msg);
        goto out;
    }
    int found = sha256sums_find(sums.data ? sums.data : "", sums.len, asset, want, &err);
    if (found < 0) {
        cli_cmd_error(cmd, "%s/SHA256SUMS: %s; nothing changed", shown, err->msg);
        goto out;
    }
    if (found > 0) {
        cli_cmd_error(cmd, "%s/SHA256SUMS does not list %s: that release has no runix for "
                           "%s; nothing changed",
                      shown, asset, arch);
        goto out;
    }
    /* VERSION is optional: a release without one is named by its binary's --version. */
    if (get_small(&fo, base, "VERSION", &vers, &err) == 0 && vers.data) {
        size_t n = strcspn(vers.data, " \t\r\n");
        bool word = n > 0 && n < 64;
        for (size_t i = 0; word && i < n; i++)
            word = (unsigned char)vers.data[i] > 0x20 && vers.data[i] != 0x7f;
        if (word)
            release_version = xstrndup(vers.data, n);
    }
    rx_error_clear(&err);
    if (!force && r.sha256 && strcmp(r.sha256, want) == 0 && access(r.binary, X_OK) == 0) {
        if (!quiet)
            fprintf(stderr, "runix is up to date: %s is the release's (%s%s)\n", r.binary,
                    release_version ? "version " : "sha256 ",
                    release_version ? release_version : want);
        ret = EXIT_OK;
        goto out;
    }

    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        cli_cmd_error(cmd, "cannot write in %s: %s; nothing changed", dir, strerror(errno));
        goto out;
    }
    tmp_made = true;
    struct download d = {.fd = fd, .tty = !quiet && isatty(STDERR_FILENO), .name = asset};
    sha256_init(&d.sha);
    url = xasprintf("%s/%s", base, asset);
    struct fetch_stream fs = {.sink = file_sink, .progress = file_progress, .ctx = &d};
    int fr = fetch_stream(url, &fo, &fs, &err);
    fetch_stream_release(&fs);
    if (d.shown)
        fputs("\r\033[K", stderr);
    if (fr < 0) {
        cli_cmd_error(cmd, "cannot download %s/%s: %s; nothing changed", shown, asset, err->msg);
        goto out;
    }
    struct hash h;
    sha256_final(&d.sha, &h);
    char got[HASH_STR_MAX];
    hash_format(&h, HASH_BASE16, got);
    const char *got_hex = strchr(got, ':') ? strchr(got, ':') + 1 : got;
    if (strcmp(got_hex, want) != 0) {
        cli_cmd_error(cmd, "refusing %s/%s: its sha256 is %s, but SHA256SUMS says %s; "
                           "nothing changed",
                      shown, asset, got_hex, want);
        goto out;
    }
    if (fchmod(fd, 0755 & ~cli_umask) < 0 || fsync(fd) < 0) {
        cli_cmd_error(cmd, "cannot write %s: %s; nothing changed", tmp, strerror(errno));
        goto out;
    }
    close(fd);
    fd = -1;

    /* Keep the old binary under another name until the new one has run in its place. */
    bool kept = false, present = access(r.binary, F_OK) == 0;
    if (present) {
        if (link(r.binary, old) == 0) {
            kept = true;
        } else if (rename(r.binary, old) == 0) {
            kept = true;
        } else {
            cli_cmd_error(cmd, "cannot keep the old runix as %s: %s; nothing changed", old,
                          strerror(errno));
            goto out;
        }
    }
    if (rename(tmp, r.binary) < 0) {
        cli_cmd_error(cmd, "cannot put the new runix at %s: %s", r.binary, strerror(errno));
        if (kept && access(r.binary, F_OK) != 0)
            rename(old, r.binary);
        else if (kept)
            unlink(old);
        goto out;
    }
    tmp_made = false;
    char *const vargv[] = {r.binary, (char *)"--version", NULL};
    int st = capture(vargv, &out, false, VERSION_TIMEOUT_MS);
    new_version = st == 0 ? version_of(&out) : NULL;
    if (!new_version) {
        char why[128];
        if (st == 0)
            snprintf(why, sizeof why, "it printed no 'runix VERSION' line");
        else
            describe_status(st, why, sizeof why);
        if (kept && rename(old, r.binary) == 0)
            cli_cmd_error(cmd, "the new runix does not run here ('%s --version': %s); the old "
                               "one is back in place",
                          r.binary, why);
        else
            cli_cmd_error(cmd, "the new runix does not run here ('%s --version': %s), and the "
                               "old one could not be put back: run install.sh again",
                          r.binary, why);
        goto out;
    }
    if (kept)
        unlink(old);
    free(r.version);
    r.version = xstrdup(new_version);
    free(r.sha256);
    r.sha256 = xstrdup(want);
    free(r.arch);
    r.arch = xstrdup(arch);
    if (url_flag) {
        free(r.base_url);
        r.base_url = xstrdup(base);
    }
    text = receipt_format(&r);
    if (write_file_atomic_at(AT_FDCWD, rp, text, true, &err) < 0) {
        cli_cmd_error(cmd, "runix is updated, but its receipt is not: %s", err->msg);
        goto out;
    }
    refresh_files(&r, quiet);
    if (!quiet)
        fprintf(stderr, "updated %s to runix %s\n", r.binary, r.version);
    ret = EXIT_OK;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    rx_error_free(err);
    rx_buf_release(&sums);
    rx_buf_release(&vers);
    rx_buf_release(&out);
    cli_settings_release(&s);
    receipt_release(&r);
    return ret;
}

/* ---- runix self uninstall ---- */

static const char uninstall_usage[] =
    "usage: runix self uninstall [OPTIONS]\n"
    "\n"
    "Remove runix: the binary and the other files that install.sh's receipt lists,\n"
    "then the receipt.  Without a receipt this runix can read (none, or one from\n"
    "another version) it removes what is at the places install.sh uses by default\n"
    "(~/.local/bin/runix, the man page and completions under ~/.local/share) and\n"
    "says so.  The store, the config directory and runix's cache stay unless you\n"
    "confirm on a terminal or give --all.\n"
    "\n"
    "  -a, --all                 also remove the store, the config directory and\n"
    "                            runix's cache, without asking\n"
    "      --keep-data           keep them, without asking\n"
    "      --store DIR           the store to remove with --all\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when runix is removed, 1 when something could not be removed\n"
    "(it says what), 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix self uninstall\n"
    "  runix self uninstall --all\n";

/* Remove the file p (never a directory); say so.  0, or -1 after saying why. */
static int remove_file(const char *p, unsigned *removed)
{
    struct stat sb;
    if (lstat(p, &sb) < 0)
        return errno == ENOENT ? 0 : (cli_cmd_error("self uninstall", "cannot look at %s: %s",
                                                    p, strerror(errno)),
                                      -1);
    if (S_ISDIR(sb.st_mode)) {
        cli_cmd_error("self uninstall", "not removing %s: it is a directory", p);
        return -1;
    }
    if (unlink(p) < 0) {
        cli_cmd_error("self uninstall", "cannot remove %s: %s", p, strerror(errno));
        return -1;
    }
    fprintf(stderr, "removed %s\n", p);
    (*removed)++;
    return 0;
}

/* Remove the directory tree at p (read-only parts too); say so.  0, or -1 after saying why. */
static int remove_tree(const char *p)
{
    struct stat sb;
    if (lstat(p, &sb) < 0)
        return 0;
    struct rx_error *err = NULL;
    if (rm_rf_at(AT_FDCWD, p, &err) < 0) {
        cli_cmd_error("self uninstall", "cannot remove %s: %s", p, err->msg);
        rx_error_free(err);
        return -1;
    }
    fprintf(stderr, "removed %s\n", p);
    return 0;
}

static bool ask(const char *store, const char *conf, const char *cache)
{
    fprintf(stderr,
            "Also remove runix's data, for good?\n"
            "  the store:  %s\n"
            "  the config: %s\n"
            "  the cache:  %s\n"
            "Remove them? [y/N] ",
            store, conf ? conf : "(none)", cache ? cache : "(none)");
    fflush(stderr);
    char line[256];
    if (!fgets(line, sizeof line, stdin))
        return false;
    return line[0] == 'y' || line[0] == 'Y';
}

/* Remove the store at root (when there is one): 0, or -1 after saying why. */
static int destroy_store(const char *root)
{
    const char *cmd = "self uninstall";
    struct rx_error *err = NULL;
    struct store *ro = NULL;
    int r = store_open_readonly(root, &ro, &err);
    store_close(ro);
    if (r > 0)
        return 0;
    struct store *st = NULL;
    if (r < 0 || store_open(root, &st, &err) < 0) {
        cli_cmd_error(cmd, "cannot open the store %s to remove it: %s", root, err->msg);
        rx_error_free(err);
        return -1;
    }
    char *why = NULL;
    int ret = -1;
    r = store_destroy_check(st, &why, &err);
    if (r < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
    } else if (r > 0) {
        cli_cmd_error(cmd, "not removing the store %s: %s", root, why);
        free(why);
    } else if (store_destroy(st, &err) < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
    } else {
        fprintf(stderr, "removed the store %s\n", root);
        ret = 0;
    }
    store_close(st);
    return ret;
}

static int self_uninstall(int argc, char **argv)
{
    enum { OPT_KEEP = 0x200 };
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"keep-data", no_argument, NULL, OPT_KEEP},
        {"store", required_argument, NULL, OPT_STORE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "self uninstall";
    bool all = false, keep = false;
    struct cli_settings s = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:ah", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
        case OPT_KEEP:
            keep = true;
            break;
        case OPT_STORE:
            cli_settings_option(&s, c, optarg);
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(uninstall_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error(cmd, c, argv, opts);
        }
    }
    if (optind < argc) {
        cli_settings_release(&s);
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if (all && keep) {
        cli_settings_release(&s);
        return cli_usage_error(cmd, "--all and --keep-data contradict each other");
    }
    int ret = EXIT_OK;
    struct rx_error *err = NULL;

    /* The data first: when the store cannot go, runix stays, to be run again. */
    _cleanup_free_ char *data = cli_xdg_path("XDG_DATA_HOME", ".local/share", "runix");
    _cleanup_free_ char *confdir = cli_xdg_path("XDG_CONFIG_HOME", ".config", "runix");
    _cleanup_free_ char *cachedir = cli_xdg_path("XDG_CACHE_HOME", ".cache", "runix");
    if (cli_settings_finish(&s, &err) < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_clear(&err);
        if (all) {
            cli_settings_release(&s);
            return EXIT_FAIL;
        }
    }
    /* Is there any data to keep or remove? */
    _cleanup_free_ char *store_nix = s.store ? xasprintf("%s/nix", s.store) : NULL;
    bool have_store = store_nix && access(store_nix, F_OK) == 0;
    bool have_data = have_store || (confdir && access(confdir, F_OK) == 0) ||
                     (cachedir && access(cachedir, F_OK) == 0);
    bool remove_data = all;
    if (!all && !keep && have_data && isatty(STDIN_FILENO))
        remove_data = ask(s.store, confdir, cachedir);
    if (remove_data) {
        if (destroy_store(s.store) < 0) {
            cli_cmd_error(cmd, "runix stays installed; stop what uses the store and run "
                               "'runix self uninstall --all' again");
            cli_settings_release(&s);
            return EXIT_FAIL;
        }
        if ((confdir && remove_tree(confdir) < 0) || (cachedir && remove_tree(cachedir) < 0))
            ret = EXIT_FAIL;
    }

    _cleanup_free_ char *rp = receipt_path();
    struct receipt r = RECEIPT_INIT;
    unsigned removed = 0;
    if (rp && receipt_load(rp, &r, &err) == 0) {
        /* Only the names install.sh writes: a damaged receipt removes nothing else. */
        static const char *const names[] = {"runix", "runix.1", "_runix", "runix.fish"};
        for (size_t i = 0; i <= r.nfiles; i++) {
            const char *f = i == 0 ? r.binary : r.files[i - 1], *base = strrchr(f, '/') + 1;
            bool known = false;
            for (size_t k = 0; k < ARRAY_SIZE(names); k++)
                known |= strcmp(base, names[k]) == 0;
            if (!known)
                cli_cmd_error(cmd, "not removing %s, which the receipt lists: install.sh "
                                   "installs no file of that name",
                              f);
            else if (remove_file(f, &removed) < 0)
                ret = EXIT_FAIL;
        }
    } else {
        if (!rp)
            fprintf(stderr, "no receipt (neither XDG_DATA_HOME nor HOME is set); ");
        else if (err && err->code == RX_ENOTFOUND)
            fprintf(stderr, "no receipt at %s; ", rp);
        else
            fprintf(stderr, "%s: this runix cannot read it; ", err ? err->msg : rp);
        fprintf(stderr, "removing runix from the places install.sh uses\n");
        char *known[5];
        known_locations(known);
        for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
            if (known[i] && remove_file(known[i], &removed) < 0)
                ret = EXIT_FAIL;
            free(known[i]);
        }
    }
    rx_error_clear(&err);
    if (rp && ret == EXIT_OK && remove_file(rp, &removed) < 0)
        ret = EXIT_FAIL;
    if (remove_data && data && ret == EXIT_OK) {
        /* The receipt and the engine files extracted there are gone with it. */
        if (remove_tree(data) < 0)
            ret = EXIT_FAIL;
    }
    if (removed == 0)
        fprintf(stderr, "nothing of runix's was installed there\n");
    if (!remove_data && have_data) {
        fprintf(stderr, "kept the store %s", s.store);
        if (confdir)
            fprintf(stderr, " and the config %s", confdir);
        fprintf(stderr, "; remove them with 'chmod -R u+w %s && rm -rf %s%s%s'\n", s.store,
                s.store, confdir ? " " : "", confdir ? confdir : "");
    }
    receipt_release(&r);
    cli_settings_release(&s);
    return ret;
}

/* ---- runix self man ---- */

static const char man_usage[] =
    "usage: runix self man\n"
    "\n"
    "Print the manual page runix(1), in roff: made from the same text as '--help'\n"
    "of runix and of every command.\n"
    "\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix self man > ~/.local/share/man/man1/runix.1\n"
    "  runix self man | man -l -\n";

/* text as roff inside .nf/.fi: backslashes escaped, no line taken as a request. */
static void roff_block(FILE *f, const char *text)
{
    fputs(".nf\n", f);
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, "\n");
        if (p[0] == '.' || p[0] == '\'')
            fputs("\\&", f);
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '\\')
                fputs("\\e", f);
            else if (p[i] == '-')
                fputs("\\-", f);
            else
                fputc(p[i], f);
        }
        fputc('\n', f);
        p += n;
        if (*p)
            p++;
    }
    fputs(".fi\n", f);
}

/* The names under "Commands:" in a group's help (but "help"), into v. */
static void help_commands(const char *help, struct strv *v)
{
    const char *p = strstr(help, "\nCommands:\n");
    if (!p)
        return;
    p += strlen("\nCommands:\n");
    while (p[0] == ' ' && p[1] == ' ' && p[2] != ' ') {
        size_t n = strcspn(p + 2, " \n");
        if (n && !(n == 4 && strncmp(p + 2, "help", 4) == 0)) {
            _cleanup_free_ char *name = xstrndup(p + 2, n);
            cli_strv_push(v, name);
        }
        p = strchr(p, '\n');
        if (!p)
            break;
        p++;
    }
}

/*
 * The --help text of runix (a NULL), of command a, or of a's subcommand b,
 * as they print it: the command's function is called here, with stdout
 * going to a temporary file.
 */
static int help_of(const char *a, const char *b, struct rx_buf *out)
{
    rx_buf_reset(out);
    size_t n;
    const struct cli_command *tab = cli_command_table(&n), *cmd = NULL;
    for (size_t i = 0; a && i < n && !cmd; i++)
        if (strcmp(tab[i].name, a) == 0)
            cmd = &tab[i];
    if (a && (!cmd || !cmd->fn)) {
        cli_cmd_error("self man", "no command '%s' in this binary", a);
        return -1;
    }
    FILE *tmp = tmpfile();
    if (!tmp) {
        cli_cmd_error("self man", "cannot make a temporary file: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    if (saved < 0 || dup2(fileno(tmp), STDOUT_FILENO) < 0) {
        cli_cmd_error("self man", "cannot redirect the help: %s", strerror(errno));
        if (saved >= 0)
            close(saved);
        fclose(tmp);
        return -1;
    }
    int r = EXIT_OK;
    if (!cmd) {
        cli_print_main_help();
    } else {
        char *argv[4];
        int argc = 0;
        argv[argc++] = (char *)a;
        if (b)
            argv[argc++] = (char *)b;
        argv[argc++] = (char *)"--help";
        argv[argc] = NULL;
        r = cmd->fn(argc, argv);
    }
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    struct rx_error *err = NULL;
    rewind(tmp);
    int rd = read_fd(fileno(tmp), "the help", out, &err);
    fclose(tmp);
    if (r != EXIT_OK || rd < 0 || !out->data) {
        cli_cmd_error("self man", "'runix%s%s%s%s --help' failed%s%s", a ? " " : "", a ? a : "",
                      b ? " " : "", b ? b : "", err ? ": " : "", err ? err->msg : "");
        rx_error_free(err);
        return -1;
    }
    return 0;
}

static int self_man(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(man_usage);
    if (argc >= 2)
        return cli_usage_error("self man", "unexpected argument '%s'", argv[1]);
    struct rx_buf h = RX_BUF_INIT(HELP_MAX), sub = RX_BUF_INIT(HELP_MAX);
    struct strv cmds = {0};
    int ret = EXIT_FAIL;
    FILE *f = stdout;
    _cleanup_free_ char *syn = NULL;
    if (help_of(NULL, NULL, &h) < 0)
        goto out;
    fprintf(f, ".\\\" runix(1), made by 'runix self man' from the commands' --help.\n");
    fprintf(f, ".TH RUNIX 1 \"\" \"runix %s\" \"User Commands\"\n", RUNIX_VERSION);
    fprintf(f, ".SH NAME\nrunix \\- run software from Nix binary caches without installing "
               "Nix and without root\n");
    fprintf(f, ".SH SYNOPSIS\n");
    /* The usage lines: the help's first paragraph. */
    const char *end = strstr(h.data, "\n\n");
    syn = xstrndup(h.data, end ? (size_t)(end - h.data) : strlen(h.data));
    roff_block(f, syn);
    fprintf(f, ".SH DESCRIPTION\n");
    roff_block(f, end ? end + 2 : "");
    help_commands(h.data, &cmds);
    fprintf(f, ".SH COMMANDS\n");
    fprintf(f, "Each command's help, as 'runix COMMAND \\-\\-help' prints it.\n");
    for (size_t i = 0; i < cmds.n; i++) {
        if (help_of(cmds.v[i], NULL, &h) < 0)
            goto out;
        fprintf(f, ".SS runix %s\n", cmds.v[i]);
        roff_block(f, h.data);
        struct strv subs = {0};
        help_commands(h.data, &subs);
        for (size_t j = 0; j < subs.n; j++) {
            if (help_of(cmds.v[i], subs.v[j], &sub) < 0) {
                cli_strv_clear(&subs);
                goto out;
            }
            fprintf(f, ".SS runix %s %s\n", cmds.v[i], subs.v[j]);
            roff_block(f, sub.data);
        }
        cli_strv_clear(&subs);
    }
    fprintf(f, ".SH FILES\n"
               ".TP\n.I ~/.config/runix/runix.conf\nthe config file ($XDG_CONFIG_HOME, or "
               "$RUNIX_CONFIG)\n"
               ".TP\n.I ~/.local/share/runix\nthe store's root ($XDG_DATA_HOME, $RUNIX_STORE)\n"
               ".TP\n.I ~/.local/share/runix/receipt\nwhat install.sh installed, for "
               "'runix self update' and 'runix self uninstall'\n"
               ".TP\n.I ~/.cache/runix\ndownloads, indexes and what fetches learned of cache hosts "
               "($XDG_CACHE_HOME)\n");
    fprintf(f, ".SH SEE ALSO\n.BR nix (1)\n");
    ret = fflush(f) == 0 ? EXIT_OK : EXIT_FAIL;
out:
    cli_strv_clear(&cmds);
    rx_buf_release(&h);
    rx_buf_release(&sub);
    return ret;
}

/* ---- runix self completion ---- */

static const char completion_usage[] =
    "usage: runix self completion SHELL\n"
    "\n"
    "Print the completion script for SHELL (bash, zsh or fish): commands, their\n"
    "options, store paths from the store and a distributable's apps.  install.sh\n"
    "installs them; by hand:\n"
    "\n"
    "  bash: ~/.local/share/bash-completion/completions/runix\n"
    "  zsh:  a file _runix in a directory of $fpath\n"
    "  fish: ~/.config/fish/completions/runix.fish\n"
    "\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix self completion bash > ~/.local/share/bash-completion/completions/runix\n"
    "  source <(runix self completion bash)\n";

static int self_completion(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(completion_usage);
    if (argc != 2)
        return cli_usage_error("self completion", "expected one SHELL: bash, zsh or fish");
    const char *text = strcmp(argv[1], "bash") == 0   ? runix_completion_bash
                       : strcmp(argv[1], "zsh") == 0  ? runix_completion_zsh
                       : strcmp(argv[1], "fish") == 0 ? runix_completion_fish
                                                      : NULL;
    if (!text)
        return cli_usage_error("self completion", "unknown shell '%s': bash, zsh or fish",
                               argv[1]);
    fputs(text, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

/* ---- runix self complete: what the completion scripts ask ---- */

static const char complete_usage[] =
    "usage: runix self complete paths [--store DIR] [PREFIX]\n"
    "       runix self complete apps FILE\n"
    "\n"
    "For the completion scripts: print the store's paths (/nix/store/...) that\n"
    "begin with PREFIX, or a distributable's app names, one a line.  Prints\n"
    "nothing when there is no store or FILE is not a distributable.\n"
    "\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix self complete paths /nix/store/0i2\n"
    "  runix self complete apps jq.runix\n";

static int complete_paths(int argc, char **argv)
{
    struct cli_settings s = {0};
    const char *prefix = "";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            cli_settings_option(&s, OPT_STORE, argv[++i]);
        else if (strncmp(argv[i], "--store=", 8) == 0)
            cli_settings_option(&s, OPT_STORE, argv[i] + 8);
        else
            prefix = argv[i];
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        rx_error_free(err);
        cli_settings_release(&s);
        return EXIT_OK;
    }
    _cleanup_free_ char *dir = xasprintf("%s/nix/store", s.store);
    cli_settings_release(&s);
    DIR *d = opendir(dir);
    if (!d)
        return EXIT_OK;
    size_t plen = strlen(prefix);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *p = xasprintf("/nix/store/%s", e->d_name);
        if (strncmp(p, prefix, plen) == 0)
            printf("%s\n", p);
    }
    closedir(d);
    return EXIT_OK;
}

static int self_complete(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(complete_usage);
    /* A global --store comes before the kind ("runix --store DIR self complete paths"). */
    int k = 1;
    while (k < argc && (strcmp(argv[k], "--store") == 0 || strncmp(argv[k], "--store=", 8) == 0))
        k += strcmp(argv[k], "--store") == 0 ? 2 : 1;
    if (k < argc && strcmp(argv[k], "paths") == 0) {
        /* complete_paths reads every argument but the first: the kind goes first. */
        char **av = xcalloc((size_t)argc + 1, sizeof *av);
        int n = 0;
        av[n++] = argv[k];
        for (int i = 1; i < argc; i++)
            if (i != k)
                av[n++] = argv[i];
        int r = complete_paths(n, av);
        free(av);
        return r;
    }
    if (k == 1 && argc == 3 && strcmp(argv[1], "apps") == 0) {
        struct dist d = DIST_INIT;
        struct rx_error *err = NULL;
        if (dist_load(argv[2], &d, &err) < 0) {
            rx_error_free(err);
            return EXIT_OK;
        }
        for (size_t i = 0; i < d.napps; i++)
            printf("%s\n", d.apps[i].name);
        dist_release(&d);
        return EXIT_OK;
    }
    return cli_usage_error("self complete", "expected 'paths [PREFIX]' or 'apps FILE'");
}

/* ---- the group ---- */

static const char self_intro[] =
    "usage: runix self COMMAND [ARGS...]\n"
    "\n"
    "Look after runix itself, as install.sh installed it: say what is installed,\n"
    "update it to the latest release, or remove it.\n";

static const char self_examples[] =
    "\n"
    "Examples:\n"
    "  runix self info\n"
    "  runix self update\n"
    "  runix self uninstall --all\n";

static const struct cli_command self_commands[] = {
    {"info", self_info, "say which runix this is, and what install.sh installed", 0},
    {"update", self_update, "replace runix with the latest release's, verified", 0},
    {"uninstall", self_uninstall, "remove runix, and on request its store and config", 0},
    {"man", self_man, "print the manual page runix(1)", 0},
    {"completion", self_completion, "print the completion script for bash, zsh or fish", 0},
    {"complete", self_complete, "list store paths or apps, for the completion scripts", 0},
};

int cmd_self(int argc, char **argv)
{
    return cli_dispatch("runix self", self_intro, self_examples, self_commands,
                        ARRAY_SIZE(self_commands), argc, argv);
}
