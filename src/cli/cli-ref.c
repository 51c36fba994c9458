/*
 * Remote references to distributables (runix-core only: it downloads):
 *
 *   https://host/path/tool.runix[#APP]
 *   github:OWNER/REPO[/REF][?file=PATH][#APP]
 *
 * A github: reference is the file PATH (default.runix) of the repository at
 * REF (HEAD), from GitHub's raw-file host: $RUNIX_GITHUB_URL, the config's
 * github-url, or https://raw.githubusercontent.com, laid out as
 * OWNER/REPO/REF/PATH.
 *
 * Downloads are kept in ${XDG_CACHE_HOME:-~/.cache}/runix/refs/<sha256 of
 * the URL>/ (the file, and "meta": URL, validators, when fetched), and
 * revalidated with If-None-Match / If-Modified-Since on each use; a github:
 * reference pinned to a full commit id never changes, so it is not asked
 * again.  The download runs in a child process, so that the caller stays
 * single-threaded (runix run enters a user namespace after this).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli-dist.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "fetch.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define DEFAULT_GITHUB_URL "https://raw.githubusercontent.com"

struct ref {
    char *url;  /* owned */
    char *app;  /* owned, or NULL */
    bool pinned; /* never changes: no revalidation */
};

static void ref_release(struct ref *r)
{
    free(r->url);
    free(r->app);
}

static bool github_part_valid(const char *s, size_t n)
{
    if (n == 0 || n > 100 || (n <= 2 && s[0] == '.'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

static bool is_commit(const char *s, size_t n)
{
    if (n != 40)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A repository file path: relative, no "." or ".." parts, no '?' or '#'. */
static bool file_part_valid(const char *s)
{
    if (!*s || *s == '/' || strlen(s) > 1024 || strpbrk(s, "?#%\\"))
        return false;
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

static int parse_ref(const char *cmd, const char *arg, const struct cli_settings *s, struct ref *r)
{
    memset(r, 0, sizeof *r);
    _cleanup_free_ char *ref = xstrdup(arg);
    char *hash = strchr(ref, '#');
    if (hash) {
        *hash = '\0';
        if (hash[1])
            r->app = xstrdup(hash + 1);
    }
    if (strncmp(ref, "https://", 8) == 0 || strncmp(ref, "http://", 7) == 0) {
        r->url = xstrdup(ref);
        return EXIT_OK;
    }
    /* github:OWNER/REPO[/REF][?file=PATH] */
    const char *p = ref + strlen("github:");
    char *query = strchr(ref, '?');
    const char *file = "default.runix";
    if (query) {
        *query = '\0';
        if (strncmp(query + 1, "file=", 5) != 0 || !file_part_valid(query + 6)) {
            cli_cmd_error(cmd, "'%s': expected '?file=PATH' with a relative path in the "
                               "repository",
                          arg);
            return EXIT_USAGE;
        }
        file = query + 6;
    }
    const char *slash1 = strchr(p, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    const char *rev = slash2 ? slash2 + 1 : "HEAD";
    size_t repo_len = slash2 ? (size_t)(slash2 - slash1 - 1) : (slash1 ? strlen(slash1 + 1) : 0);
    if (!slash1 || !github_part_valid(p, (size_t)(slash1 - p)) ||
        !github_part_valid(slash1 + 1, repo_len) || !*rev || strpbrk(rev, "?#%\\") ||
        strstr(rev, "..")) {
        cli_cmd_error(cmd, "'%s': expected github:OWNER/REPO[/REF][?file=PATH][#APP]", arg);
        return EXIT_USAGE;
    }
    const char *base = getenv("RUNIX_GITHUB_URL");
    if (!base || !*base)
        base = s->github_url && *s->github_url ? s->github_url : DEFAULT_GITHUB_URL;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    r->url = xasprintf("%.*s/%.*s/%.*s/%s/%s", (int)blen, base, (int)(slash1 - p), p,
                       (int)repo_len, slash1 + 1, rev, file);
    r->pinned = is_commit(rev, strlen(rev));
    return EXIT_OK;
}

static char *cache_dir(const char *url)
{
    char *top = cli_xdg_path("XDG_CACHE_HOME", ".cache", "runix/refs");
    if (!top)
        return NULL;
    struct hash h;
    sha256_buf(url, strlen(url), &h);
    char hex[65];
    hex_encode(h.bytes, 32, hex);
    char *dir = xasprintf("%s/%s", top, hex);
    free(top);
    return dir;
}

/* meta: "url U\netag E\nlast-modified L\nfetched T\n" (the last three optional). */
struct meta {
    char *url, *etag, *last_modified;
    long long fetched;
};

static void meta_release(struct meta *m)
{
    free(m->url);
    free(m->etag);
    free(m->last_modified);
}

/* Read dir/meta into m (release it whatever this returns); true if it names a URL. */
static bool meta_read(const char *dir, struct meta *m)
{
    memset(m, 0, sizeof *m);
    _cleanup_free_ char *f = xasprintf("%s/meta", dir);
    struct rx_buf b = RX_BUF_INIT(64 * 1024);
    if (read_file(f, &b, NULL) < 0 || !b.data) {
        rx_buf_release(&b);
        return false;
    }
    for (char *line = b.data; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        if (strncmp(line, "url ", 4) == 0)
            m->url = xstrdup(line + 4);
        else if (strncmp(line, "etag ", 5) == 0)
            m->etag = xstrdup(line + 5);
        else if (strncmp(line, "last-modified ", 14) == 0)
            m->last_modified = xstrdup(line + 14);
        else if (strncmp(line, "fetched ", 8) == 0)
            m->fetched = atoll(line + 8);
        line = nl + 1;
    }
    rx_buf_release(&b);
    return m->url != NULL;
}

/* Write name in dir atomically (a temporary file, then rename). */
static int write_atomic(const char *dir, const char *name, const char *data, size_t len)
{
    _cleanup_free_ char *f = xasprintf("%s/%s", dir, name);
    return write_data_atomic_at(AT_FDCWD, f, data, len, 0600, false, NULL);
}

static bool valid_header_value(const char *v)
{
    for (; v && *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return false;
    return true;
}

/* In the child: download or revalidate url into dir.  Returns an exit code. */
static int download(const char *cmd, const char *label, const struct ref *r, const char *dir,
                    struct cli_settings *s)
{
    struct meta m;
    bool have = meta_read(dir, &m) && strcmp(m.url, r->url) == 0;
    _cleanup_free_ char *file = xasprintf("%s/file", dir);
    if (have && access(file, R_OK) != 0)
        have = false;
    struct fetch_opts o;
    cli_settings_fetch_opts(s, &o);
    struct fetch_document doc = { .body = RX_BUF_INIT(DIST_FILE_MAX) };
    if (have) {
        doc.etag = m.etag ? xstrdup(m.etag) : NULL;
        doc.last_modified = m.last_modified ? xstrdup(m.last_modified) : NULL;
    }
    struct rx_error *err = NULL;
    int ret = EXIT_OK;
    if (fetch_document(r->url, &o, &doc, &err) < 0) {
        if (have) {
            cli_cmd_error(cmd, "warning: cannot revalidate '%s' (%s); using the copy fetched "
                               "before",
                          label, err->msg);
        } else {
            cli_cmd_error(cmd, "cannot download '%s': %s%s", label, err->msg,
                          err->code == RX_ENOTFOUND ? " (no such file there)" : "");
            ret = EXIT_FAIL;
        }
        rx_error_free(err);
    } else if (!doc.not_modified) {
        const char *etag = valid_header_value(doc.etag) ? doc.etag : NULL;
        const char *lm = valid_header_value(doc.last_modified) ? doc.last_modified : NULL;
        _cleanup_free_ char *meta =
            xasprintf("url %s\n%s%s%s%s%s%sfetched %lld\n", r->url, etag ? "etag " : "",
                      etag ? etag : "", etag ? "\n" : "", lm ? "last-modified " : "", lm ? lm : "",
                      lm ? "\n" : "", (long long)time(NULL));
        if (mkdir_p_mode(dir, 0700, NULL) < 0 || write_atomic(dir, "file", doc.body.data ? doc.body.data : "",
                                            doc.body.len) < 0 ||
            write_atomic(dir, "meta", meta, strlen(meta)) < 0) {
            cli_cmd_error(cmd, "cannot keep the download of '%s' in '%s': %s", label, dir,
                          strerror(errno));
            ret = EXIT_FAIL;
        }
    }
    rx_buf_release(&doc.body);
    free(doc.etag);
    free(doc.last_modified);
    meta_release(&m);
    return ret;
}

static void say_age(const char *cmd, const char *label, long long fetched)
{
    long long age = (long long)time(NULL) - fetched;
    if (age < 0)
        age = 0;
    if (age < 120)
        cli_cmd_error(cmd, "using the copy of '%s' fetched %lld s ago (offline)", label, age);
    else if (age < 2 * 3600)
        cli_cmd_error(cmd, "using the copy of '%s' fetched %lld min ago (offline)", label, age / 60);
    else if (age < 2 * 86400)
        cli_cmd_error(cmd, "using the copy of '%s' fetched %lld h ago (offline)", label,
                      age / 3600);
    else
        cli_cmd_error(cmd, "using the copy of '%s' fetched %lld days ago (offline)", label,
                      age / 86400);
}

int cli_ref_resolve(const char *cmd, const char *arg, bool offline, char **local)
{
    *local = NULL;
    struct cli_settings s = { 0 };
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        cli_settings_release(&s);
        return EXIT_USAGE;
    }
    struct ref r;
    int ret = parse_ref(cmd, arg, &s, &r);
    _cleanup_free_ char *dir = ret == EXIT_OK ? cache_dir(r.url) : NULL;
    if (ret == EXIT_OK && !dir) {
        cli_cmd_error(cmd, "cannot keep downloads: neither XDG_CACHE_HOME nor HOME is set");
        ret = EXIT_FAIL;
    }
    struct meta m = { 0 };
    bool have = ret == EXIT_OK && meta_read(dir, &m) && strcmp(m.url, r.url) == 0;
    _cleanup_free_ char *file = dir ? xasprintf("%s/file", dir) : NULL;
    if (have && access(file, R_OK) != 0)
        have = false;
    if (ret == EXIT_OK && offline) {
        if (!have) {
            cli_cmd_error(cmd, "'%s' was never downloaded and --offline forbids it now", arg);
            ret = EXIT_FAIL;
        } else {
            say_age(cmd, arg, m.fetched);
        }
    } else if (ret == EXIT_OK && !(have && r.pinned)) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(download(cmd, arg, &r, dir, &s));
        int status;
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (pid < 0 || !WIFEXITED(status))
            ret = EXIT_FAIL;
        else
            ret = WEXITSTATUS(status);
    }
    if (ret == EXIT_OK)
        *local = xasprintf("%s/file%s%s", dir, r.app ? "#" : "", r.app ? r.app : "");
    meta_release(&m);
    ref_release(&r);
    cli_settings_release(&s);
    return ret;
}
