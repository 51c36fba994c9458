/* runix verify: check the store's paths against their registered NAR hashes, and repair them. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli-settings.h"
#include "cli.h"
#include "fetch.h"
#include "store-path.h"
#include "store-verify.h"
#include "store.h"
#include "util-fs.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

static const char verify_usage[] =
    "usage: runix verify [OPTIONS] [STOREPATH...]\n"
    "\n"
    "Check the store's paths (every valid path, or the ones given) against the\n"
    "database: serialise each as a NAR and compare its hash and size with the\n"
    "registered ones, as 'nix-store --verify --check-contents' does, and check what\n"
    "a NAR does not record but a store keeps canonical (no write bit, no setuid or\n"
    "setgid bit, mtime 1, every file the store owner's).  Paths are checked in\n"
    "parallel.  Prints one line per path with a problem, with the files it concerns\n"
    "below it, then a summary.\n"
    "\n"
    "When a cache is configured and reachable (and not --offline), the NAR of a\n"
    "corrupted path is downloaded (its narinfo must give the registered NarHash and\n"
    "be signed by a trusted key, or carry a signature the store registered for the\n"
    "path) and compared with the tree on disk, to name each file changed, deleted\n"
    "or added and each executable bit changed.\n"
    "\n"
    "      --repair              download corrupted and missing paths again and put\n"
    "                            them in place atomically; make paths with changed\n"
    "                            modes canonical again\n"
    "      --json                print one JSON document with every path checked\n"
    "  -j, --jobs N              check N paths at once (default: the CPUs it may use)\n"
    "      --offline             download nothing: no comparison, no repair from a\n"
    "                            cache\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "A repair holds the path's lock, and a kill at any moment leaves either the old\n"
    "tree or the new one in place, never a part of one.\n"
    "\n"
    "Exit status: 0 when every path is right (or was repaired), 1 when a problem was\n"
    "found and not repaired, or the store could not be read, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix verify\n"
    "  runix verify --repair\n"
    "  runix verify --json /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix verify --store /tmp/store --offline --jobs 1\n";

/* "runix verify: <message>"; returns EXIT_FAIL. */
static int fail(struct rx_error *err)
{
    cli_cmd_error("verify", "%s", err ? err->msg : "unknown error");
    rx_error_free(err);
    return EXIT_FAIL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the status line: a terminal only ---- */

struct progress {
    bool shown;
    bool color;      /* escape sequences allowed (NO_COLOR unset) */
    size_t shown_len; /* to blank the line without them */
};

/* Take the status line away. */
static void clear_progress(struct progress *p)
{
    if (!p->shown)
        return;
    if (p->color)
        fputs("\r\033[K", stderr);
    else
        fprintf(stderr, "\r%*s\r", (int)p->shown_len, "");
    fflush(stderr);
    p->shown = false;
}

/* Show one status line, replacing the last. */
static void status_line(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void status_line(struct progress *p, const char *fmt, ...)
{
    char line[STORE_PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    clear_progress(p);
    fputs(line, stderr);
    fflush(stderr);
    p->shown = true;
    p->shown_len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
}

static void show_progress(void *ctx, size_t done, size_t total, uint64_t bytes,
                          uint64_t bytes_total)
{
    status_line(ctx, "verifying %zu/%zu paths, %.1f/%.1f MiB", done, total,
                (double)bytes / (1024.0 * 1024.0), (double)bytes_total / (1024.0 * 1024.0));
}

/* ---- checking against a cache, and repairing ---- */

struct verify {
    struct store *st;
    struct fetch_opts fo;
    bool use_caches; /* caches configured, not --offline, and a work dir to download to */
    const char *no_cache; /* why not, when not */
    bool repair;
    struct progress *tty; /* or NULL: show what is being downloaded on stderr */
};

static const char *status_word(enum store_verify_status s)
{
    switch (s) {
    case STORE_VERIFY_OK:
        return "ok";
    case STORE_VERIFY_CORRUPTED:
        return "corrupted";
    case STORE_VERIFY_MISSING:
        return "missing";
    case STORE_VERIFY_NONCANONICAL:
        return "changed-mode";
    default:
        return "unknown";
    }
}

static void set_note(struct store_verify_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_note(struct store_verify_result *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *n = NULL;
    if (vasprintf(&n, fmt, ap) < 0)
        n = NULL;
    va_end(ap);
    free(r->note);
    r->note = n;
}

/* Is r's path right now?  (Checked again, leaving r's problems as they were found.) */
static bool right_now(struct verify *v, const struct store_verify_result *r,
                      enum store_verify_status *status)
{
    struct store_verify_result again = {.path = r->path,
                                        .want_hash = r->want_hash,
                                        .want_size = r->want_size};
    store_verify_one(v->st, &again, NULL);
    *status = again.status;
    store_verify_result_clear(&again);
    return *status == STORE_VERIFY_OK;
}

/* Check r's path again after a repair; r->repaired when it is right now. */
static void recheck(struct verify *v, struct store_verify_result *r)
{
    enum store_verify_status st;
    r->repaired = right_now(v, r, &st);
    if (!r->repaired)
        set_note(r, "still %s after the repair", status_word(st));
}

/*
 * Download r's right copy to the work dir as `name`: 0 when there, 1 when
 * no cache had it (r->note says why), -1 on a local error (r->note too).
 */
static int download(struct verify *v, struct store_verify_result *r, const char *name)
{
    struct rx_error *err = NULL;
    char **sigs = NULL;
    size_t nsigs = 0;
    int tmp = store_tmp_fd(v->st, &err);
    if (tmp < 0 || store_query_sigs(v->st, &r->path, &sigs, &nsigs, &err) < 0) {
        set_note(r, "%s", err ? err->msg : "cannot prepare the download");
        rx_error_free(err);
        return -1;
    }
    rm_rf_at(tmp, name, NULL);
    char *why = NULL;
    int ret = fetch_nar_into(&v->fo, &r->path, &r->want_hash, r->want_size,
                             (const char *const *)sigs, nsigs, tmp, name, &why, &err);
    if (ret < 0)
        set_note(r, "downloading it again failed: %s", err ? err->msg : "unknown error");
    else if (ret > 0)
        set_note(r, "no cache could provide the right copy: %s", why);
    rx_error_free(err);
    free(why);
    for (size_t i = 0; i < nsigs; i++)
        free(sigs[i]);
    free(sigs);
    return ret;
}

/* Detail r with a cache's copy and, with --repair, put that copy in place. */
static void handle(struct verify *v, struct store_verify_result *r)
{
    if (r->status == STORE_VERIFY_OK)
        return;
    bool need_copy = r->status != STORE_VERIFY_NONCANONICAL || (r->owner_wrong && geteuid() != 0);
    if (!need_copy) {
        if (!v->repair)
            return;
        struct rx_error *err = NULL;
        int lock = -1;
        if (store_lock_path(v->st, &r->path, true, &lock, &err) < 0 ||
            store_verify_fix_modes(v->st, &r->path, &err) < 0) {
            set_note(r, "cannot repair it: %s", err ? err->msg : "unknown error");
            rx_error_free(err);
        } else {
            recheck(v, r);
        }
        if (lock >= 0)
            store_unlock_path(v->st, &r->path, lock);
        return;
    }
    /* Without --repair, a copy is only of use to name what changed. */
    if (!v->repair && r->status != STORE_VERIFY_CORRUPTED)
        return;
    if (!v->use_caches) {
        set_note(r, "%s", v->no_cache);
        return;
    }
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(&r->path, base);
    _cleanup_free_ char *name = xasprintf("verify-%s", base);
    int lock = -1;
    struct rx_error *err = NULL;
    if (v->tty) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&r->path, full);
        status_line(v->tty, "%s %s ...", v->repair ? "repairing" : "comparing with a cache's copy:",
                    full);
    }
    if (v->repair && store_lock_path(v->st, &r->path, true, &lock, &err) < 0) {
        set_note(r, "cannot lock it: %s", err ? err->msg : "unknown error");
        rx_error_free(err);
        if (v->tty)
            clear_progress(v->tty);
        return;
    }
    /* Another process may have repaired it while we waited for the lock. */
    enum store_verify_status now;
    if (v->repair && right_now(v, r, &now)) {
        r->repaired = true;
    } else if (download(v, r, name) == 0) {
        if (r->status == STORE_VERIFY_CORRUPTED && store_verify_compare(v->st, r, name, &err) < 0) {
            set_note(r, "cannot compare it with the cache's copy: %s",
                     err ? err->msg : "unknown error");
            rx_error_clear(&err);
        }
        if (v->repair) {
            if (store_verify_swap(v->st, &r->path, name, &err) < 0) {
                set_note(r, "cannot repair it: %s", err ? err->msg : "unknown error");
                rx_error_clear(&err);
            } else {
                recheck(v, r);
            }
        }
        int tmp = store_tmp_fd(v->st, NULL);
        if (tmp >= 0)
            rm_rf_at(tmp, name, NULL);
    }
    if (lock >= 0)
        store_unlock_path(v->st, &r->path, lock);
    if (v->tty)
        clear_progress(v->tty);
}

/* ---- output ---- */

static const char *kind_words(enum store_problem_kind k)
{
    switch (k) {
    case STORE_PROBLEM_MODE:
    case STORE_PROBLEM_META:
        return "changed mode";
    default:
        return store_problem_kind_name(k);
    }
}

static void print_text(const struct store_verify_result *r)
{
    char full[STORE_PATH_MAX + 1];
    store_path_format(&r->path, full);
    if (r->status == STORE_VERIFY_MISSING) {
        printf("%s: missing: registered, but not on disk\n", full);
    } else if (r->status == STORE_VERIFY_CORRUPTED && r->hashed) {
        char want[HASH_STR_MAX], got[HASH_STR_MAX];
        hash_format(&r->want_hash, HASH_NIX32, want);
        hash_format(&r->got_hash, HASH_NIX32, got);
        if (r->got_size != r->want_size)
            printf("%s: corrupted: NAR hash differs (expected %s, got %s) and NAR size (expected "
                   "%" PRIu64 ", got %" PRIu64 ")\n",
                   full, want, got, r->want_size, r->got_size);
        else
            printf("%s: corrupted: NAR hash differs (expected %s, got %s)\n", full, want, got);
    } else if (r->status == STORE_VERIFY_CORRUPTED) {
        printf("%s: corrupted: it cannot be read as a NAR\n", full);
    } else {
        printf("%s: changed mode: %zu entr%s not canonical (the NAR is right)\n", full,
               r->nproblems, r->nproblems == 1 ? "y is" : "ies are");
    }
    for (size_t i = 0; i < r->nproblems; i++) {
        const struct store_problem *p = &r->problems[i];
        printf("  %s: %s%s%s\n", kind_words(p->kind), p->file[0] ? p->file : "(the path itself)",
               p->detail[0] ? ": " : "", p->detail);
    }
    if (r->status == STORE_VERIFY_CORRUPTED && !r->detailed && r->note)
        printf("  (cannot name the changed files: %s)\n", r->note);
    else if (r->note && !r->repaired)
        printf("  (%s)\n", r->note);
    if (r->repaired)
        printf("  repaired\n");
}

/* A JSON string of s; names in a NAR may be any bytes, and JSON wants UTF-8. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not UTF-8: each byte outside ASCII becomes U+FFFD. */
    size_t n = strlen(s);
    char *t = xmalloc(3 * n + 1), *q = t;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            *q++ = (char)*p;
        } else {
            memcpy(q, "\xef\xbf\xbd", 3);
            q += 3;
        }
    }
    *q = '\0';
    j = json_string(t);
    free(t);
    return j;
}

static json_t *json_result(const struct store_verify_result *r)
{
    char full[STORE_PATH_MAX + 1], h[HASH_STR_MAX];
    store_path_format(&r->path, full);
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(full));
    json_object_set_new(o, "status", json_string(status_word(r->status)));
    hash_format(&r->want_hash, HASH_NIX32, h);
    json_object_set_new(o, "narHash", json_string(h));
    json_object_set_new(o, "narSize", json_integer((json_int_t)r->want_size));
    if (r->hashed) {
        hash_format(&r->got_hash, HASH_NIX32, h);
        json_object_set_new(o, "actualNarHash", json_string(h));
        json_object_set_new(o, "actualNarSize", json_integer((json_int_t)r->got_size));
    }
    json_t *probs = json_array();
    for (size_t i = 0; i < r->nproblems; i++) {
        json_t *p = json_object();
        json_object_set_new(p, "kind", json_string(store_problem_kind_name(r->problems[i].kind)));
        json_object_set_new(p, "file", json_text(r->problems[i].file));
        json_object_set_new(p, "detail", json_text(r->problems[i].detail));
        json_array_append_new(probs, p);
    }
    json_object_set_new(o, "problems", probs);
    json_object_set_new(o, "detailed", json_boolean(r->detailed));
    json_object_set_new(o, "repaired", json_boolean(r->repaired));
    if (r->note)
        json_object_set_new(o, "note", json_text(r->note));
    return o;
}

/* ---- the command ---- */

/* Open the store: read-only unless a repair or a download needs its work dir. */
static int open_store(const char *root, bool write, struct store **st, bool *writable)
{
    struct rx_error *err = NULL;
    int r = store_open_readonly(root, st, &err);
    if (r < 0)
        return fail(err);
    if (r > 0) {
        cli_cmd_error("verify", "there is no store at '%s' to verify; fetch something into it "
                                "first ('runix fetch'), or name another with --store",
                      root);
        return EXIT_FAIL;
    }
    *writable = false;
    if (!write)
        return 0;
    struct store *rw = NULL;
    if (store_open(root, &rw, &err) == 0) {
        store_close(*st);
        *st = rw;
        *writable = true;
    } else {
        rx_error_free(err);
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"repair", no_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'J'},
        {"jobs", required_argument, NULL, 'j'},
        {"offline", no_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    bool repair = false, json = false, offline = false;
    unsigned jobs = 0;
    int c, ret = EXIT_FAIL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:j:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&s, c, optarg))
            continue;
        switch (c) {
        case 'r':
            repair = true;
            break;
        case 'J':
            json = true;
            break;
        case 'o':
            offline = true;
            break;
        case 'j': {
            char *end;
            errno = 0;
            unsigned long n = strtoul(optarg, &end, 10);
            if (errno || *end || end == optarg || optarg[0] == '-' || n < 1 || n > 1024) {
                cli_settings_release(&s);
                return cli_usage_error("verify", "--jobs wants a number from 1 to 1024, not '%s'",
                                       optarg);
            }
            jobs = (unsigned)n;
            break;
        }
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(verify_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("verify", c, argv, opts);
        }
    }
    size_t n = (size_t)(argc - optind);
    struct store_path *paths = xcalloc(n ? n : 1, sizeof *paths);
    struct store *st = NULL;
    struct store_verify_result *res = NULL;
    size_t nres = 0;
    struct rx_error *err = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *a = argv[optind + (int)i];
        const char *sub;
        if (store_path_parse_with_subpath(a, strlen(a), &paths[i], &sub, &err) < 0) {
            cli_usage_error("verify", "%s", err->msg);
            rx_error_free(err);
            ret = EXIT_USAGE;
            goto out;
        }
    }
    if (cli_settings_finish(&s, &err) < 0) {
        if (err && err->code == RX_EUSAGE) {
            cli_cmd_error("verify", "%s", err->msg);
            rx_error_free(err);
            ret = EXIT_USAGE;
        } else {
            ret = cli_fail(err);
        }
        goto out;
    }
    struct verify v = {.repair = repair};
    cli_settings_fetch_opts(&s, &v.fo);
    bool writable;
    bool want_caches = !offline && v.fo.ncaches > 0;
    if ((ret = open_store(s.store, repair || want_caches, &st, &writable)) != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    if (repair && !writable) {
        cli_cmd_error("verify", "cannot repair the store '%s': it is not yours to write; run "
                                "'runix verify' without --repair, or as its owner",
                      store_root(st));
        goto out;
    }
    v.st = st;
    v.use_caches = want_caches && writable;
    v.no_cache = offline         ? "no cache was asked (--offline)"
                 : !v.fo.ncaches ? "no cache is configured to compare with"
                                 : "the store is not writable by you, so no copy can be "
                                   "downloaded into it";

    struct progress prog = {.color = !getenv("NO_COLOR")};
    const char *term = getenv("TERM");
    bool tty = !s.quiet && isatty(STDERR_FILENO) && !(term && strcmp(term, "dumb") == 0);
    struct store_verify_events ev = {.ctx = &prog, .progress = show_progress};
    v.tty = tty ? &prog : NULL;
    rx_catch_interrupts();
    double t0 = now_s();
    int r = store_verify(st, n ? paths : NULL, n, jobs, tty ? &ev : NULL, &res, &nres, &err);
    clear_progress(&prog);
    if (r < 0) {
        if (err && err->code == RX_ENOTFOUND) {
            cli_cmd_error("verify", "%s; list the valid paths with 'nix path-info --store %s "
                                    "--all'",
                          err->msg, store_root(st));
            rx_error_free(err);
        } else {
            fail(err);
        }
        goto out;
    }
    size_t corrupted = 0, missing = 0, modes = 0, repaired = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < nres && !rx_interrupted; i++) {
        bytes += res[i].want_size;
        handle(&v, &res[i]);
    }
    double secs = now_s() - t0;
    json_t *all = json ? json_array() : NULL;
    for (size_t i = 0; i < nres; i++) {
        const struct store_verify_result *x = &res[i];
        corrupted += x->status == STORE_VERIFY_CORRUPTED;
        missing += x->status == STORE_VERIFY_MISSING;
        modes += x->status == STORE_VERIFY_NONCANONICAL;
        repaired += x->repaired;
        if (json)
            json_array_append_new(all, json_result(x));
        else if (x->status != STORE_VERIFY_OK)
            print_text(x);
    }
    size_t bad = corrupted + missing + modes;
    if (json) {
        json_t *doc = json_object();
        json_object_set_new(doc, "store", json_string(store_root(st)));
        json_object_set_new(doc, "paths", all);
        json_t *sum = json_object();
        json_object_set_new(sum, "paths", json_integer((json_int_t)nres));
        json_object_set_new(sum, "narBytes", json_integer((json_int_t)bytes));
        json_object_set_new(sum, "seconds", json_real(secs));
        json_object_set_new(sum, "corrupted", json_integer((json_int_t)corrupted));
        json_object_set_new(sum, "missing", json_integer((json_int_t)missing));
        json_object_set_new(sum, "changedMode", json_integer((json_int_t)modes));
        json_object_set_new(sum, "repaired", json_integer((json_int_t)repaired));
        json_object_set_new(doc, "summary", sum);
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(doc);
    } else {
        printf("verified %zu path%s (%.1f MiB) in %.2f s: %zu corrupted, %zu missing, %zu with "
               "changed modes",
               nres, nres == 1 ? "" : "s", (double)bytes / (1024.0 * 1024.0), secs, corrupted,
               missing, modes);
        if (repair)
            printf("; %zu repaired", repaired);
        putchar('\n');
    }
    int flushed = fflush(stdout);
    if (rx_interrupted)
        cli_cmd_error("verify", "interrupted: not every path was handled");
    else if (repair && repaired < bad)
        cli_cmd_error("verify", "%zu of %zu damaged path%s could not be repaired (see above)",
                      bad - repaired, bad, bad == 1 ? "" : "s");
    else if (!repair && bad)
        cli_cmd_error("verify", "%zu path%s %s damaged; run 'runix verify --repair' to fetch "
                                "%s again",
                      bad, bad == 1 ? "" : "s", bad == 1 ? "is" : "are", bad == 1 ? "it" : "them");
    ret = flushed == 0 && !rx_interrupted && repaired == bad ? EXIT_OK : EXIT_FAIL;
out:
    store_verify_results_free(res, nres);
    store_close(st);
    free(paths);
    cli_settings_release(&s);
    rx_die_of_interrupt();
    return ret;
}
