/*
 * Indexes of packages by name and by file (cli-byname.h), in nix-index's
 * database format (nixdb.h):
 *
 *   runix index update   download the nixpkgs index (and configured ones)
 *   runix index build    write one for store paths, from a cache
 *   runix locate         which packages have a file
 *   runix , PROGRAM      (the sidecar it reads: cli_index_side_ready)
 *   NAME#ATTR            (cli_byname_resolve, for run, shell and generate)
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli-byname.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "decompress.h"
#include "dist.h"
#include "fetch.h"
#include "nar-reader.h"
#include "narinfo.h"
#include "nixdb.h"
#include "store.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "util-text.h"

#include "banned.h"

#define LISTING_MAX (256u * 1024 * 1024)
#define DEFAULT_INDEX_BASE "https://github.com/nix-community/nix-index-database/releases/latest/download"

static int settings_fail(const char *cmd, struct rx_error *err)
{
    if (err && err->code == RX_EUSAGE) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return EXIT_USAGE;
    }
    return cli_fail(err);
}

/* ---- using an index ---- */

/* The configured URL of index `name`, or NULL. */
static const char *index_url_of(const struct cli_settings *s, const char *name, bool full,
                                char **owned)
{
    *owned = NULL;
    if (strcmp(name, CLI_DEFAULT_INDEX) == 0) {
        const char *env = getenv("RUNIX_INDEX_URL");
        if (env && *env)
            return env;
        if (s->index_url)
            return s->index_url;
        *owned = xasprintf("%s/index-%s%s", DEFAULT_INDEX_BASE, dist_host_system(),
                           full ? "" : "-small");
        return *owned;
    }
    size_t n = strlen(name);
    const char *found = NULL;
    for (size_t i = 0; i < s->index_urls.n; i++) /* the last one set wins */
        if (strncmp(s->index_urls.v[i], name, n) == 0 && s->index_urls.v[i][n] == ' ')
            found = s->index_urls.v[i] + n + 1;
    return found;
}

static void warn_if_old(const char *cmd, const char *name, const char *file)
{
    cli_index_warn_old(cmd, name, file);
}

/* Open index `name` for cmd; prints why not and returns an exit code. */
static int open_index(const char *cmd, const char *name, struct nixdb_reader **r, char **file_out)
{
    *r = NULL;
    _cleanup_free_ char *file = cli_index_file(name);
    if (!file) {
        cli_cmd_error(cmd, "cannot find the index: neither XDG_CACHE_HOME nor HOME is set");
        return EXIT_FAIL;
    }
    struct rx_error *err = NULL;
    if (nixdb_open(file, r, &err) < 0) {
        if (err->code == ENOENT) {
            if (strcmp(name, CLI_DEFAULT_INDEX) == 0)
                cli_cmd_error(cmd, "no index of nixpkgs yet (%s); download it with 'runix index "
                                   "update'",
                              file);
            else
                cli_cmd_error(cmd, "no index '%s' yet (%s); set index.%s.url in the config "
                                   "file and run 'runix index update %s'",
                              name, file, name, name);
        } else {
            cli_cmd_error(cmd, "%s; download it again with 'runix index update%s%s'", err->msg,
                          strcmp(name, CLI_DEFAULT_INDEX) ? " " : "",
                          strcmp(name, CLI_DEFAULT_INDEX) ? name : "");
        }
        rx_error_free(err);
        return EXIT_FAIL;
    }
    warn_if_old(cmd, name, file);
    if (file_out)
        *file_out = steal_pointer(&file);
    return EXIT_OK;
}

static int read_failed(const char *cmd, const char *name, struct rx_error *err)
{
    cli_cmd_error(cmd, "%s; download it again with 'runix index update%s%s'", err->msg,
                  strcmp(name, CLI_DEFAULT_INDEX) ? " " : "",
                  strcmp(name, CLI_DEFAULT_INDEX) ? name : "");
    rx_error_free(err);
    return EXIT_FAIL;
}

/*
 * Map the sidecar ext (".bins" or ".attrs", nixdb.h) of index name, making
 * both from the database when they are missing or stale.  Prints why not
 * and returns an exit code, as open_index().
 */
static int open_side(const char *cmd, const char *name, const char *ext, struct nixdb_side *side,
                     char **file_out)
{
    _cleanup_free_ char *file = cli_index_file(name);
    char id[64];
    if (!file || !cli_index_identity(file, id)) {
        struct nixdb_reader *r;
        int ret = open_index(cmd, name, &r, NULL); /* says why */
        nixdb_close(r);
        if (ret == EXIT_OK)
            cli_cmd_error(cmd, "the index '%s' is not a regular file", file);
        return EXIT_FAIL;
    }
    _cleanup_free_ char *path = xasprintf("%s%s", file, ext);
    struct rx_error *err = NULL;
    int r = nixdb_side_open(path, id, side, &err);
    if (r == 0) {
        _cleanup_free_ char *bins = xasprintf("%s.bins", file);
        _cleanup_free_ char *attrs = xasprintf("%s.attrs", file);
        if (nixdb_side_build(file, bins, attrs, id, &err) < 0)
            return read_failed(cmd, name, err);
        r = nixdb_side_open(path, id, side, &err);
    }
    if (r <= 0) {
        if (r == 0)
            rx_error_set(&err, RX_EFORMAT, "'%s' changed while it was read", file);
        return read_failed(cmd, name, err);
    }
    warn_if_old(cmd, name, file);
    if (file_out)
        *file_out = steal_pointer(&file);
    return EXIT_OK;
}

struct guess {
    char name[CLI_ATTR_MAX + 1];
    size_t d;
};

/* Keep the 5 names closest to want in g (sorted by distance, each once). */
static void guess_add(struct guess *g, size_t *n, const char *want, const char *name)
{
    size_t wl = strlen(want);
    size_t d = edit_distance(want, name, 4);
    if (d > 2 && !(strlen(name) > wl && strncmp(name, want, wl) == 0 &&
                   (name[wl] == '.' || name[wl] == '-' || name[wl] == '_')))
        return;
    if (d > 3)
        d = 3;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(g[i].name, name) == 0)
            return;
    size_t at = *n;
    while (at > 0 && g[at - 1].d > d)
        at--;
    if (at >= 5)
        return;
    size_t last = *n < 5 ? *n : 4;
    memmove(&g[at + 1], &g[at], (last - at) * sizeof *g);
    snprintf(g[at].name, sizeof g[at].name, "%s", name);
    g[at].d = d;
    if (*n < 5)
        (*n)++;
}

/* How much a package's output is preferred for NAME#ATTR: bin, then out, then the rest. */
static int output_rank(const char *output)
{
    return strcmp(output, "bin") == 0 ? 0 : strcmp(output, "out") == 0 ? 1 : 2;
}

struct resolve {
    const char *attr, *output; /* output: wanted ("jq.bin"), or NULL: the best */
    int best_rank;
    struct store_path best;
    bool bad;
};

static bool system_field_ok(const char *sys)
{
    return !*sys || strcmp(sys, dist_host_system()) == 0;
}

/* An .attrs line: ATTR OUTPUT SYSTEM STOREPATH. */
static int on_attr(void *ctx, char **f, size_t n)
{
    struct resolve *r = ctx;
    struct store_path p;
    if (n != 4 || store_path_parse(f[3], strlen(f[3]), &p, NULL) < 0) {
        r->bad = true;
        return 1;
    }
    if (!system_field_ok(f[2]))
        return 0;
    int rank = r->output ? (strcmp(f[1], r->output) == 0 ? 0 : 99) : output_rank(f[1]);
    if (rank < r->best_rank) {
        r->best_rank = rank;
        r->best = p;
    }
    return 0;
}

struct guesses {
    struct guess g[5];
    size_t n;
    const char *want;
    char last[CLI_ATTR_MAX + 1];
};

static int on_guess(void *ctx, char **f, size_t n)
{
    struct guesses *g = ctx;
    if (n < 1 || strlen(f[0]) > CLI_ATTR_MAX || strcmp(f[0], g->last) == 0)
        return 0;
    snprintf(g->last, sizeof g->last, "%s", f[0]);
    guess_add(g->g, &g->n, g->want, f[0]);
    return 0;
}

int cli_byname_resolve(const char *cmd, const char *ref, struct store_path *out)
{
    const char *hash = strchr(ref, '#');
    _cleanup_free_ char *name = xstrndup(ref, (size_t)(hash - ref));
    const char *attr = hash + 1;
    struct nixdb_side side;
    int ret = open_side(cmd, name, ".attrs", &side, NULL);
    if (ret != EXIT_OK)
        return ret;
    struct resolve r = { .attr = attr, .best_rank = 99 };
    nixdb_side_find(&side, attr, true, on_attr, &r);
    /* "jq.bin": attribute jq, output bin, when no attribute is called "jq.bin". */
    const char *dot = strrchr(attr, '.');
    if (r.best_rank == 99 && !r.bad && dot) {
        _cleanup_free_ char *base = xstrndup(attr, (size_t)(dot - attr));
        r.output = dot + 1;
        nixdb_side_find(&side, base, true, on_attr, &r);
    }
    if (r.bad) {
        nixdb_side_close(&side);
        cli_cmd_error(cmd, "the sidecar of the index '%s' is damaged; run 'runix index update'",
                      name);
        return EXIT_FAIL;
    }
    if (r.best_rank < 99) {
        nixdb_side_close(&side);
        *out = r.best;
        return EXIT_OK;
    }
    struct guesses g = { .want = attr };
    nixdb_side_find(&side, "", false, on_guess, &g);
    nixdb_side_close(&side);
    if (g.n == 0) {
        cli_cmd_error(cmd, "'%s': the index '%s' has no top-level attribute '%s' for %s; "
                           "'runix locate' finds packages by their files",
                      ref, name, attr, dist_host_system());
    } else {
        cli_cmd_error(cmd, "'%s': the index '%s' has no top-level attribute '%s'; the closest "
                           "names:",
                      ref, name, attr);
        for (size_t i = 0; i < g.n; i++)
            fprintf(stderr, "  %s#%s\n", name, g.g[i].name);
    }
    return EXIT_FAIL;
}

/* ---- runix locate: reading the whole database (cmd-locate.c does the rest) ---- */

struct match {
    char *path;
    enum nixdb_type type;
    uint64_t size;
};

int cli_locate_scan(const char *name, struct cli_locate *lo, const regex_t *re)
{
    struct nixdb_reader *r;
    int ret = open_index("locate", name, &r, NULL);
    if (ret != EXIT_OK)
        return ret;
    struct match *pending = NULL;
    size_t npending = 0;
    struct nixdb_line l;
    struct rx_error *err = NULL;
    int k;
    while ((k = nixdb_next(r, &l, &err)) > 0) {
        if (l.kind == NIXDB_FILE) {
            long end = cli_locate_match_end(l.path, l.path_len, lo->pat, lo->plen, re);
            if (end < 0 || memchr(l.path + end, '/', l.path_len - (size_t)end))
                continue;
            pending = xrealloc(pending, (npending + 1) * sizeof *pending);
            pending[npending++] =
                (struct match){ xstrndup(l.path, l.path_len), l.type, l.size };
            continue;
        }
        if (npending == 0)
            continue;
        struct nixdb_package p;
        if (nixdb_package_parse(r, &l, &p, &err) < 0) {
            k = -1;
            break;
        }
        char full[STORE_PATH_MAX + 1];
        store_path_format(&p.path, full);
        for (size_t i = 0; i < npending; i++) {
            if (!lo->top || p.toplevel)
                cli_locate_print(lo, p.attr, p.output, p.toplevel, full, pending[i].path,
                                 (char)pending[i].type,
                                 pending[i].type == NIXDB_SYMLINK ? 0 : pending[i].size);
            free(pending[i].path);
        }
        npending = 0;
        nixdb_package_release(&p);
    }
    for (size_t i = 0; i < npending; i++)
        free(pending[i].path);
    free(pending);
    nixdb_close(r);
    if (k < 0)
        return read_failed("locate", name, err);
    return EXIT_OK;
}

/* ---- runix , PROGRAM: the sidecar it reads ---- */

int cli_index_side_ready(const char *cmd, const char *name)
{
    struct nixdb_side side;
    int r = open_side(cmd, name, ".bins", &side, NULL);
    if (r == EXIT_OK)
        nixdb_side_close(&side);
    return r;
}

/* ---- runix index update ---- */

static const char update_usage[] =
    "usage: runix index update [OPTIONS] [NAME...]\n"
    "\n"
    "Download the index of nixpkgs for this system (and every index configured\n"
    "as index.NAME.url, or only the NAMEs given) into ~/.cache/runix/index/,\n"
    "replacing the old one at once when the whole new one is there.  A copy\n"
    "downloaded before is revalidated (ETag): an unchanged index is not\n"
    "downloaded again.\n"
    "\n"
    "Where from: $RUNIX_INDEX_URL, else the config file's index-url, else\n"
    "nix-index-database's latest small index (programs only, about 1 MB):\n"
    "  " DEFAULT_INDEX_BASE "/index-SYSTEM-small\n"
    "With index-sha256 set in the config file, the nixpkgs index must have that\n"
    "sha256 (hex, nix32 or SRI), or it is refused.\n"
    "\n"
    "      --full                the full index (every file, about 30 MB), for\n"
    "                            'runix locate' of any file\n"
    CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix index update\n"
    "  runix index update --full\n"
    "  RUNIX_INDEX_URL=https://cache.example.com/index runix index update\n";

struct download {
    int fd;
    struct sha256_ctx sha;
    uint64_t bytes;
    bool tty;
    double last_shown;
    const char *name;
};

/* The full index of nixpkgs is about 30 MB: more than this is not an index. */
#define INDEX_DOWNLOAD_MAX (2ull * 1024 * 1024 * 1024)

static int download_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct download *d = ctx;
    if (d->bytes + len > INDEX_DOWNLOAD_MAX)
        return rx_error_set(err, RX_EFORMAT, "larger than %llu bytes",
                            (unsigned long long)INDEX_DOWNLOAD_MAX);
    if (write_all(d->fd, data, len) < 0)
        return rx_error_errno(err, "write");
    sha256_update(&d->sha, data, len);
    d->bytes += len;
    return 0;
}

static void download_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct download *d = ctx;
    if (!d->tty)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    if (now - d->last_shown < 0.1)
        return;
    d->last_shown = now;
    if (total)
        fprintf(stderr, "\rdownloading the index '%s': %.1f of %.1f MiB ", d->name,
                (double)done / 1048576.0, (double)total / 1048576.0);
    else
        fprintf(stderr, "\rdownloading the index '%s': %.1f MiB ", d->name,
                (double)done / 1048576.0);
}

/* meta: "url U\netag E\nlast-modified L\n" */
static void meta_read(const char *file, char **url, char **etag, char **lm)
{
    *url = *etag = *lm = NULL;
    struct rx_buf b = RX_BUF_INIT(64 * 1024);
    if (read_file(file, &b, NULL) == 0 && b.data) {
        for (char *line = b.data; *line;) {
            char *nl = strchr(line, '\n');
            if (!nl)
                break;
            *nl = '\0';
            if (strncmp(line, "url ", 4) == 0)
                *url = xstrdup(line + 4);
            else if (strncmp(line, "etag ", 5) == 0)
                *etag = xstrdup(line + 5);
            else if (strncmp(line, "last-modified ", 14) == 0)
                *lm = xstrdup(line + 14);
            line = nl + 1;
        }
    }
    rx_buf_release(&b);
}

static bool header_ok(const char *v)
{
    for (; v && *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return v != NULL;
}

/* Read the whole database once: a broken one is refused before it replaces a good one. */
static int check_database(const char *file, const char *label, struct rx_error **err)
{
    struct nixdb_reader *r;
    if (nixdb_open(file, &r, err) < 0)
        return rx_error_wrap(err, "%s", label);
    struct nixdb_line l;
    int k;
    bool checked_one = false;
    while ((k = nixdb_next(r, &l, err)) > 0) {
        if (l.kind == NIXDB_PACKAGE && !checked_one) { /* the JSON's shape, once */
            struct nixdb_package p;
            if (nixdb_package_parse(r, &l, &p, err) < 0) {
                k = -1;
                break;
            }
            nixdb_package_release(&p);
            checked_one = true;
        }
    }
    nixdb_close(r);
    return k < 0 ? rx_error_wrap(err, "%s", label) : 0;
}

static int file_sha256(const char *file, struct hash *h)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct sha256_ctx c;
    sha256_init(&c);
    char buf[65536];
    ssize_t n;
    while ((n = read_retry(fd, buf, sizeof buf)) > 0)
        sha256_update(&c, buf, (size_t)n);
    close(fd);
    if (n < 0)
        return -1;
    sha256_final(&c, h);
    return 0;
}

/* Make the sidecars now, so that the first lookup does not (nixdb.h). */
static void make_sidecars(const char *cmd, const char *file)
{
    char id[64];
    _cleanup_free_ char *bins = xasprintf("%s.bins", file);
    _cleanup_free_ char *attrs = xasprintf("%s.attrs", file);
    struct rx_error *err = NULL;
    if (cli_index_identity(file, id) && nixdb_side_build(file, bins, attrs, id, &err) < 0) {
        cli_cmd_error(cmd, "warning: %s", err->msg);
        rx_error_free(err);
    }
}

static int update_one(struct cli_settings *s, const char *name, bool full)
{
    const char *cmd = "index update";
    _cleanup_free_ char *owned = NULL;
    const char *url = index_url_of(s, name, full, &owned);
    if (!url) {
        cli_cmd_error(cmd, "no URL for the index '%s': set index.%s.url in the config file",
                      name, name);
        return EXIT_FAIL;
    }
    struct hash pin;
    bool pinned = false;
    if (strcmp(name, CLI_DEFAULT_INDEX) == 0 && s->index_sha256) {
        enum hash_algo sha = HASH_SHA256;
        const char *v = s->index_sha256;
        if (hash_parse(v, strlen(v), &sha, &pin, NULL) < 0 &&
            hash_parse_digest(v, strlen(v), HASH_SHA256, &pin) < 0) {
            cli_cmd_error(cmd, "%s: index-sha256 '%s' is not a sha256 (hex, nix32 or SRI)",
                          s->index_config ? s->index_config : "config", v);
            return EXIT_USAGE;
        }
        pinned = true;
    }
    _cleanup_free_ char *file = cli_index_file(name);
    if (!file) {
        cli_cmd_error(cmd, "cannot keep the index: neither XDG_CACHE_HOME nor HOME is set");
        return EXIT_FAIL;
    }
    _cleanup_free_ char *dir = xstrndup(file, (size_t)(strrchr(file, '/') - file));
    _cleanup_free_ char *metaf = xasprintf("%s/meta", dir);
    struct rx_error *err = NULL;
    if (mkdir_p_mode(dir, 0700, &err) < 0) {
        cli_cmd_error(cmd, "cannot make '%s': %s", dir, err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    _cleanup_free_ char *old_url = NULL, *etag = NULL, *lm = NULL;
    meta_read(metaf, &old_url, &etag, &lm);
    bool have = old_url && strcmp(old_url, url) == 0 && access(file, R_OK) == 0;
    _cleanup_free_ char *tmp = xasprintf("%s/.files.XXXXXX", dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        cli_cmd_error(cmd, "cannot write in '%s': %s", dir, strerror(errno));
        return EXIT_FAIL;
    }
    struct fetch_opts fo;
    cli_settings_fetch_opts(s, &fo);
    struct download d = { .fd = fd, .tty = !s->quiet && isatty(STDERR_FILENO), .name = name };
    sha256_init(&d.sha);
    _cleanup_free_ char *shown = cache_url_redact(url);
    struct fetch_stream fs = { .sink = download_sink, .progress = download_progress, .ctx = &d,
                               .etag = have ? etag : NULL, .last_modified = have ? lm : NULL };
    int r = fetch_stream(url, &fo, &fs, &err);
    if (d.tty && d.last_shown > 0)
        fputs("\r\033[K", stderr);
    bool ok = r == 0 && fsync(fd) == 0;
    close(fd);
    int ret = EXIT_OK;
    if (!ok) {
        cli_cmd_error(cmd, "cannot download the index '%s' from %s: %s%s", name, shown,
                      err ? err->msg : strerror(errno),
                      err && err->code == RX_ENOTFOUND ? " (no such file there; check index-url)"
                                                        : "");
        rx_error_free(err);
        ret = EXIT_FAIL;
    } else if (fs.not_modified) {
        struct hash h;
        if (pinned && (file_sha256(file, &h) < 0 || !hash_equal(&h, &pin))) {
            cli_cmd_error(cmd, "the index '%s' (%s) does not have the sha256 that index-sha256 "
                               "pins in %s, and %s says it has not changed; remove %s and run "
                               "'runix index update' again, or fix the pin",
                          name, file, s->index_config, shown, file);
            ret = EXIT_FAIL;
        } else {
            utimensat(AT_FDCWD, file, NULL, 0); /* it is as fresh as a new download */
            make_sidecars(cmd, file);
            if (!s->quiet)
                cli_cmd_error(cmd, "the index '%s' is up to date (%s)", name, shown);
        }
    } else {
        struct hash h;
        sha256_final(&d.sha, &h);
        if (pinned && !hash_equal(&h, &pin)) {
            char got[HASH_STR_MAX], want[HASH_STR_MAX];
            hash_format(&h, HASH_NIX32, got);
            hash_format(&pin, HASH_NIX32, want);
            cli_cmd_error(cmd, "refusing the index downloaded from %s: its sha256 is %s, but "
                               "index-sha256 in %s pins %s; nothing replaced",
                          shown, got, s->index_config, want);
            ret = EXIT_FAIL;
        } else if (check_database(tmp, shown, &err) < 0) {
            cli_cmd_error(cmd, "refusing the index downloaded from %s: %s; nothing replaced",
                          shown, err->msg);
            rx_error_free(err);
            ret = EXIT_FAIL;
        } else if (chmod(tmp, 0644) < 0 || rename(tmp, file) < 0) {
            cli_cmd_error(cmd, "cannot put the index in place as '%s': %s", file,
                          strerror(errno));
            ret = EXIT_FAIL;
        } else {
            const char *et = header_ok(fs.resp_etag) ? fs.resp_etag : NULL;
            const char *l = header_ok(fs.resp_last_modified) ? fs.resp_last_modified : NULL;
            _cleanup_free_ char *meta = xasprintf(
                "url %s\n%s%s%s%s%s%s", url, et ? "etag " : "", et ? et : "", et ? "\n" : "",
                l ? "last-modified " : "", l ? l : "", l ? "\n" : "");
            if (write_data_atomic_at(AT_FDCWD, metaf, meta, strlen(meta), 0600, false, &err) < 0) {
                cli_cmd_error(cmd, "warning: cannot write '%s': %s", metaf, err->msg);
                rx_error_free(err);
            }
            make_sidecars(cmd, file);
            if (!s->quiet)
                cli_cmd_error(cmd, "downloaded the index '%s' (%.1f MiB) from %s", name,
                              (double)d.bytes / 1048576.0, shown);
        }
    }
    unlink(tmp);
    fetch_stream_release(&fs);
    return ret;
}

static int cmd_index_update(int argc, char **argv)
{
    enum { OPT_FULL = 0x300 };
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS, {"full", no_argument, NULL, OPT_FULL},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct cli_settings s = { 0 };
    bool full = false;
    int o, ret = EXIT_USAGE;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (o == 'h') {
            ret = cli_print_help(update_usage);
            goto out;
        }
        if (o == OPT_FULL)
            full = true;
        else if (!cli_settings_option(&s, o, optarg)) {
            ret = cli_option_error("index update", o, argv, opts);
            goto out;
        }
    }
    for (int i = optind; i < argc; i++)
        if (!cli_index_name_valid(argv[i])) {
            ret = cli_usage_error("index update", "'%s' is not an index name", argv[i]);
            goto out;
        }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        ret = settings_fail("index update", err);
        goto out;
    }
    ret = EXIT_OK;
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            int r = update_one(&s, argv[i], full);
            if (r != EXIT_OK)
                ret = r;
        }
    } else {
        ret = update_one(&s, CLI_DEFAULT_INDEX, full);
        for (size_t i = 0; i < s.index_urls.n; i++) {
            _cleanup_free_ char *n = xstrndup(s.index_urls.v[i], strcspn(s.index_urls.v[i], " "));
            if (!cli_index_name_valid(n) || strcmp(n, CLI_DEFAULT_INDEX) == 0)
                continue;
            bool later = false; /* set again further down: updated there */
            for (size_t j = i + 1; j < s.index_urls.n; j++)
                later |= strncmp(s.index_urls.v[j], n, strlen(n)) == 0 &&
                         s.index_urls.v[j][strlen(n)] == ' ';
            if (later)
                continue;
            int r = update_one(&s, n, full);
            if (r != EXIT_OK)
                ret = r;
        }
    }
out:
    cli_settings_release(&s);
    return ret;
}

/* ---- runix index build ---- */

static const char build_usage[] =
    "usage: runix index build -o FILE [OPTIONS] STOREPATH...\n"
    "\n"
    "Write an index (a nix-index database, which nix-locate reads too) of the\n"
    "closures of the STOREPATHs, from the cache's file listings (<hash>.ls) or,\n"
    "for paths without one, from their NARs (checked against the NarHash of\n"
    "the signed narinfo).  The STOREPATHs are top-level packages, named by\n"
    "--attr or by their name without the version; the rest of their closures\n"
    "is listed under the first of them that needs it.  Publish FILE next to\n"
    "the cache and point index.NAME.url at it for 'runix run NAME#ATTR'.\n"
    "\n"
    "  -o, --output FILE         the database to write (replaced at once)\n"
    "      --attr NAME=STOREPATH  the attribute name of a STOREPATH (repeatable)\n"
    "      --system SYSTEM       the system the paths are for (default: this one's)\n"
    "      --filter-prefix PREFIX  only files whose path starts with PREFIX, as\n"
    "                            nix-index's (the small index has '/bin/')\n"
    "      --compression LEVEL   zstd level, 1 to 22 (default: 19)\n"
    CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix index build -o index --cache https://cache.example.com \\\n"
    "      --trusted-key cache.example.com-1:... /nix/store/...-tool-1.0\n"
    "  runix index build -o index-small --filter-prefix /bin/ \\\n"
    "      --attr jq=/nix/store/...-jq-1.7.1-bin /nix/store/...-jq-1.7.1-bin\n";

struct plan_item {
    struct store_path path;
    char *narinfo;
    char *cache_url;
    struct store_path *refs;
    size_t nrefs;
    int root; /* the root whose closure lists it, or -1 */
};

struct builder {
    struct plan_item *items;
    size_t n;
};

static void on_plan(void *ctx, const struct fetch_plan_entry *e, size_t n)
{
    struct builder *b = ctx;
    b->items = xrealloc(b->items, (b->n + n) * sizeof *b->items);
    for (size_t i = 0; i < n; i++) {
        struct plan_item *it = &b->items[b->n++];
        it->path = e[i].path;
        it->narinfo = xstrdup(e[i].narinfo);
        it->cache_url = xstrdup(e[i].cache_url);
        it->nrefs = e[i].nrefs;
        it->refs = xcalloc(e[i].nrefs + 1, sizeof *it->refs);
        if (e[i].nrefs)
            memcpy(it->refs, e[i].refs, e[i].nrefs * sizeof *it->refs);
        it->root = -1;
    }
}

static int cmp_item(const void *a, const void *b)
{
    return store_path_cmp(&((const struct plan_item *)a)->path,
                           &((const struct plan_item *)b)->path);
}

static struct plan_item *find_item(struct builder *b, const struct store_path *p)
{
    struct plan_item key = { .path = *p };
    return bsearch(&key, b->items, b->n, sizeof *b->items, cmp_item);
}

/* Mark every path of root's closure not marked yet with root. */
static void mark_closure(struct builder *b, struct plan_item *start, int root)
{
    struct plan_item **stack = xcalloc(b->n + 1, sizeof *stack);
    size_t top = 0;
    if (start->root < 0) {
        start->root = root;
        stack[top++] = start;
    }
    while (top > 0) {
        struct plan_item *it = stack[--top];
        for (size_t i = 0; i < it->nrefs; i++) {
            struct plan_item *r = find_item(b, &it->refs[i]);
            if (r && r->root < 0) {
                r->root = root;
                stack[top++] = r;
            }
        }
    }
    free(stack);
}

/* The dry run of a fetch: every path of the closures, with its narinfo and cache. */
static int plan_closure(struct cli_settings *s, const struct store_path *roots, size_t n,
                        struct builder *b)
{
    return cli_plan_closure("index build", s, roots, n, on_plan, b);
}

static int buf_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    if (rx_buf_append(ctx, data, len) < 0)
        return rx_error_set(err, RX_EFORMAT, "larger than %u bytes", LISTING_MAX);
    return 0;
}

/* What a NAR's visitor builds: the tree, and where it is inside it. */
struct nar_tree {
    struct nixdb_tree *root;
    struct nixdb_tree *stack[NAR_MAX_DEPTH + 2];
    size_t depth;
    struct sha256_ctx sha;
    uint64_t size;
    struct nar_reader *reader;
};

static struct nixdb_tree *nar_node(struct nar_tree *t, const char *name, size_t len)
{
    if (!name)
        return t->root;
    return nixdb_tree_add(t->stack[t->depth - 1], name, len);
}

static int nt_dir_begin(void *ctx, const char *name, size_t len, struct rx_error **err)
{
    (void)err;
    struct nar_tree *t = ctx;
    struct nixdb_tree *n = nar_node(t, name, len);
    n->type = NIXDB_DIRECTORY;
    t->stack[t->depth++] = n;
    return 0;
}

static int nt_dir_end(void *ctx, struct rx_error **err)
{
    (void)err;
    struct nar_tree *t = ctx;
    t->depth--;
    return 0;
}

static int nt_file(void *ctx, const char *name, size_t len, bool executable, uint64_t size,
                   uint64_t offset, struct rx_error **err)
{
    (void)offset;
    (void)err;
    struct nixdb_tree *n = nar_node(ctx, name, len);
    n->type = executable ? NIXDB_EXECUTABLE : NIXDB_REGULAR;
    n->size = size;
    return 0;
}

static int nt_symlink(void *ctx, const char *name, size_t len, const char *target, size_t tlen,
                      struct rx_error **err)
{
    (void)err;
    struct nixdb_tree *n = nar_node(ctx, name, len);
    n->type = NIXDB_SYMLINK;
    n->target = xstrndup(target, tlen);
    return 0;
}

static int nar_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct nar_tree *t = ctx;
    sha256_update(&t->sha, data, len);
    t->size += len;
    return nar_reader_feed(t->reader, data, len, err);
}

static int decomp_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    return decompressor_feed(ctx, data, len, err);
}

/* The tree of the NAR of it, from cache c. */
static int tree_from_nar(const struct cache *c, const struct fetch_opts *fo,
                         const struct plan_item *it, struct nixdb_tree *tree,
                         struct rx_error **err)
{
    struct narinfo ni = NARINFO_INIT;
    if (narinfo_parse(it->narinfo, strlen(it->narinfo), &ni, err) < 0)
        return -1;
    static const struct nar_visitor v = { .directory_begin = nt_dir_begin,
                                          .directory_end = nt_dir_end,
                                          .file_begin = nt_file,
                                          .symlink = nt_symlink };
    struct nar_tree t = { .root = tree };
    sha256_init(&t.sha);
    t.reader = nar_reader_new(&v, &t);
    struct decompressor *d = decompressor_new(ni.compression, nar_sink, &t, err);
    int ret = -1;
    if (d && !cache_file_resolves_inside(c, ni.url)) {
        rx_error_set(err, RX_EFORMAT, "its NAR '%s' resolves outside the cache", ni.url);
    } else if (d) {
        _cleanup_free_ char *url = cache_file_url(c, ni.url);
        struct fetch_stream fs = { .sink = decomp_sink, .ctx = d };
        if (fetch_stream(url, fo, &fs, err) == 0 && decompressor_finish(d, err) == 0 &&
            nar_reader_finish(t.reader, err) == 0) {
            struct hash h;
            sha256_final(&t.sha, &h);
            if (!hash_equal(&h, &ni.nar_hash) || t.size != ni.nar_size)
                rx_error_set(err, RX_EHASH, "its NAR does not have the NarHash and NarSize of "
                                            "its narinfo");
            else
                ret = 0;
        } else {
            rx_error_wrap(err, "NAR %s", ni.url);
        }
        fetch_stream_release(&fs);
        decompressor_free(d);
    }
    nar_reader_free(t.reader);
    narinfo_release(&ni);
    return ret;
}

/* The tree from the cache's listing: 1, 0 when it has none, -1. */
static int tree_from_listing(const struct cache *c, const struct fetch_opts *fo,
                             const struct plan_item *it, struct nixdb_tree *tree,
                             struct rx_error **err)
{
    char rel[STORE_HASH_LEN + 8];
    snprintf(rel, sizeof rel, "%s.ls", it->path.hash);
    if (!cache_file_resolves_inside(c, rel))
        return rx_error_set(err, RX_EFORMAT, "'%s' resolves outside the cache", rel);
    _cleanup_free_ char *url = cache_file_url(c, rel);
    struct rx_buf body = RX_BUF_INIT(LISTING_MAX);
    /* Listings are uploaded compressed and served so whatever is asked (S3): xz too. */
    struct fetch_stream fs = { .sink = buf_sink, .ctx = &body, .raw_encodings = "zstd, br, xz" };
    struct rx_error *e = NULL;
    int ret = -1;
    if (fetch_stream(url, fo, &fs, &e) < 0) {
        if (e->code == RX_ENOTFOUND) {
            rx_error_free(e);
            ret = 0;
        } else {
            *err = e;
            rx_error_wrap(err, "%s", rel);
        }
        goto out;
    }
    const char *enc = fs.content_encoding;
    if (enc && strcasecmp(enc, "identity") != 0 && strcasecmp(enc, "none") != 0) {
        if (!decompress_supported(enc)) {
            rx_error_set(err, RX_EUNSUPPORTED, "%s: unsupported Content-Encoding '%s'", rel, enc);
            goto out;
        }
        struct rx_buf plain = RX_BUF_INIT(LISTING_MAX);
        struct decompressor *d = decompressor_new(enc, buf_sink, &plain, err);
        if (!d || decompressor_feed(d, body.data, body.len, err) < 0 ||
            decompressor_finish(d, err) < 0) {
            decompressor_free(d);
            rx_buf_release(&plain);
            rx_error_wrap(err, "%s (Content-Encoding: %s)", rel, enc);
            goto out;
        }
        decompressor_free(d);
        rx_buf_release(&body);
        body = plain;
    }
    if (nixdb_tree_from_listing(body.data ? body.data : "", body.len, tree, err) < 0) {
        rx_error_wrap(err, "%s", rel);
        goto out;
    }
    ret = 1;
out:
    fetch_stream_release(&fs);
    rx_buf_release(&body);
    return ret;
}

/* "jq-1.7.1-bin" -> attribute "jq", output "bin"; "hello-2.12" -> "hello", "out". */
static void name_parts(const char *name, char **attr, char **output)
{
    static const char *const outputs[] = { "bin", "dev", "lib", "man", "doc", "info", "out",
                                           "static", "debug", "devdoc" };
    size_t n = strlen(name);
    *output = xstrdup("out");
    const char *last = strrchr(name, '-');
    if (last && last != name) {
        for (size_t i = 0; i < ARRAY_SIZE(outputs); i++)
            if (strcmp(last + 1, outputs[i]) == 0) {
                free(*output);
                *output = xstrdup(outputs[i]);
                n = (size_t)(last - name);
                break;
            }
    }
    for (const char *p = name; (p = memchr(p, '-', n - (size_t)(p - name))); p++)
        if (p[1] >= '0' && p[1] <= '9') {
            n = (size_t)(p - name);
            break;
        }
    *attr = xstrndup(name, n);
}

static int cmd_index_build(int argc, char **argv)
{
    enum { OPT_ATTR = 0x300, OPT_SYSTEM, OPT_FILTER, OPT_LEVEL };
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"output", required_argument, NULL, 'o'},
        {"attr", required_argument, NULL, OPT_ATTR},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"filter-prefix", required_argument, NULL, OPT_FILTER},
        {"compression", required_argument, NULL, OPT_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = "index build";
    struct cli_settings s = { 0 };
    struct strv attrs = { 0 };
    const char *output = NULL, *system = dist_host_system(), *prefix = "";
    long level = 19;
    struct store_path *roots = NULL;
    size_t nroots = 0;
    struct builder b = { 0 };
    int o, ret = EXIT_USAGE, fd = -1;
    _cleanup_free_ char *tmp = NULL, *dir = NULL;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:o:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, o, optarg))
            continue;
        switch (o) {
        case 'o': output = optarg; break;
        case OPT_SYSTEM: system = optarg; break;
        case OPT_FILTER: prefix = optarg; break;
        case OPT_LEVEL: {
            char *end;
            level = strtol(optarg, &end, 10);
            if (*end || end == optarg || level < 1 || level > 22) {
                cli_usage_error(cmd, "--compression takes a level from 1 to 22, not '%s'", optarg);
                goto out;
            }
            break;
        }
        case OPT_ATTR: {
            const char *eq = strchr(optarg, '=');
            struct store_path p;
            if (!eq || eq == optarg || (size_t)(eq - optarg) > CLI_ATTR_MAX ||
                store_path_parse(eq + 1, strlen(eq + 1), &p, NULL) < 0) {
                cli_usage_error(cmd, "--attr takes NAME=STOREPATH, not '%s'", optarg);
                goto out;
            }
            cli_strv_push(&attrs, optarg);
            break;
        }
        case 'h':
            ret = cli_print_help(build_usage);
            goto out;
        default:
            ret = cli_option_error(cmd, o, argv, opts);
            goto out;
        }
    }
    if (!output) {
        cli_usage_error(cmd, "expected -o FILE, the database to write");
        goto out;
    }
    if (optind == argc) {
        cli_usage_error(cmd, "expected at least one STOREPATH");
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        struct rx_error *e = NULL;
        roots = xrealloc(roots, (nroots + 1) * sizeof *roots);
        if (store_path_parse(argv[i], strlen(argv[i]), &roots[nroots], &e) < 0) {
            cli_usage_error(cmd, "%s", e->msg);
            rx_error_free(e);
            goto out;
        }
        nroots++;
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        ret = settings_fail(cmd, err);
        goto out;
    }
    ret = EXIT_FAIL;
    if ((ret = plan_closure(&s, roots, nroots, &b)) != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    qsort(b.items, b.n, sizeof *b.items, cmp_item);
    for (size_t i = 0; i < nroots; i++) {
        struct plan_item *it = find_item(&b, &roots[i]);
        if (it)
            mark_closure(&b, it, (int)i);
    }
    /* The roots' names. */
    char **root_attr = xcalloc(nroots, sizeof *root_attr);
    char **root_out = xcalloc(nroots, sizeof *root_out);
    for (size_t i = 0; i < nroots; i++) {
        name_parts(roots[i].name, &root_attr[i], &root_out[i]);
        char full[STORE_PATH_MAX + 1];
        store_path_format(&roots[i], full);
        for (size_t k = 0; k < attrs.n; k++) {
            const char *eq = strchr(attrs.v[k], '=');
            if (strcmp(eq + 1, full) == 0) {
                free(root_attr[i]);
                root_attr[i] = xstrndup(attrs.v[k], (size_t)(eq - attrs.v[k]));
            }
        }
    }
    dir = strrchr(output, '/') ? xstrndup(output, (size_t)(strrchr(output, '/') - output))
                               : xstrdup(".");
    tmp = xasprintf("%s/.%s.XXXXXX", dir, strrchr(output, '/') ? strrchr(output, '/') + 1 : output);
    fd = mkostemp(tmp, O_CLOEXEC);
    struct nixdb_writer *w = NULL;
    if (fd < 0) {
        cli_cmd_error(cmd, "cannot write in '%s': %s", dir, strerror(errno));
    } else if ((w = nixdb_writer_new(fd, output, (int)level, &err))) {
        struct fetch_opts fo;
        cli_settings_fetch_opts(&s, &fo);
        size_t from_ls = 0, from_nar = 0, entries = 0, written = 0;
        ret = EXIT_OK;
        for (size_t i = 0; i < b.n && ret == EXIT_OK; i++) {
            struct plan_item *it = &b.items[i];
            const struct cache *c = NULL;
            for (size_t k = 0; k < s.ncaches && !c; k++)
                if (strcmp(s.caches[k].url, it->cache_url) == 0)
                    c = &s.caches[k];
            struct nixdb_tree tree = { 0 };
            int got = c ? tree_from_listing(c, &fo, it, &tree, &err) : -1;
            if (got == 0) {
                got = tree_from_nar(c, &fo, it, &tree, &err);
                from_nar++;
            } else if (got > 0) {
                from_ls++;
            }
            if (got < 0) {
                char full[STORE_PATH_MAX + 1];
                store_path_format(&it->path, full);
                cli_cmd_error(cmd, "cannot list %s from %s: %s", full, it->cache_url,
                              err ? err->msg : "no such cache");
                rx_error_free(err);
                err = NULL;
                ret = EXIT_FAIL;
                nixdb_tree_release(&tree);
                break;
            }
            struct nixdb_file *files;
            size_t nf;
            nixdb_tree_list(&tree, prefix, &files, &nf);
            nixdb_tree_release(&tree);
            int root = it->root >= 0 ? it->root : 0;
            bool is_root = false;
            for (size_t k = 0; k < nroots; k++)
                if (store_path_cmp(&roots[k], &it->path) == 0) {
                    is_root = true;
                    root = (int)k;
                }
            struct nixdb_package p = { .path = it->path,
                                       .attr = root_attr[root],
                                       .output = root_out[root],
                                       .system = (char *)system,
                                       .toplevel = is_root };
            if (nixdb_writer_add(w, &p, files, nf, &err) < 0) {
                ret = cli_fail(err);
                err = NULL;
            }
            entries += nf;
            written += nf > 0;
            nixdb_files_free(files, nf);
        }
        if (ret == EXIT_OK && nixdb_writer_finish(w, &err) < 0)
            ret = cli_fail(err);
        else if (ret == EXIT_OK && (fsync(fd) < 0 || fchmod(fd, 0644) < 0 ||
                                    rename(tmp, output) < 0)) {
            cli_cmd_error(cmd, "cannot write '%s': %s", output, strerror(errno));
            ret = EXIT_FAIL;
        } else if (ret == EXIT_OK && !s.quiet) {
            cli_cmd_error(cmd, "wrote %s: %zu packages, %zu entries (%zu paths listed from .ls "
                               "files, %zu from NARs)",
                          output, written, entries, from_ls, from_nar);
        }
        nixdb_writer_free(w);
    } else {
        ret = cli_fail(err);
    }
    for (size_t i = 0; i < nroots; i++) {
        free(root_attr[i]);
        free(root_out[i]);
    }
    free(root_attr);
    free(root_out);
out:
    if (fd >= 0) {
        close(fd);
        if (ret != EXIT_OK)
            unlink(tmp);
    }
    for (size_t i = 0; i < b.n; i++) {
        free(b.items[i].narinfo);
        free(b.items[i].cache_url);
        free(b.items[i].refs);
    }
    free(b.items);
    free(roots);
    cli_strv_clear(&attrs);
    cli_settings_release(&s);
    return ret;
}

/* ---- runix index ---- */

static const char index_intro[] =
    "usage: runix index COMMAND [ARGS...]\n"
    "\n"
    "Indexes of packages by attribute name and by file, in nix-index's database\n"
    "format: what 'runix run nixpkgs#ATTR', 'runix , PROGRAM' and 'runix locate'\n"
    "read, with no Nix evaluator.  They are kept in ~/.cache/runix/index/.\n";

static const char index_examples[] =
    "\n"
    "Examples:\n"
    "  runix index update\n"
    "  runix index build -o index --cache https://cache.example.com /nix/store/...-tool-1.0\n";

int cmd_index(int argc, char **argv)
{
    static const struct cli_command subs[] = {
        {"update", cmd_index_update, "download the nixpkgs index (and configured ones)", 0},
        {"build", cmd_index_build, "write an index of store paths' closures from a cache", 0},
    };
    return cli_dispatch("runix index", index_intro, index_examples, subs, ARRAY_SIZE(subs), argc,
                        argv);
}
