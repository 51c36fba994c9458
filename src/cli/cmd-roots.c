/* runix roots (list, add, remove) and runix list: what keeps the store's paths alive. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli-human.h"
#include "cli-settings.h"
#include "cli.h"
#include "store-graph.h"
#include "store-index.h"
#include "store-roots.h"
#include "store-usage.h"
#include "store.h"
#include "util-mem.h"

#include "banned.h"

static const char roots_usage[] =
    "usage: runix roots [OPTIONS] [--json]\n"
    "       runix roots add NAME STOREPATH...\n"
    "       runix roots remove NAME...\n"
    "\n"
    "List every root of the store: what keeps its paths from being collected.\n"
    "runix makes roots for what it runs (kind auto) and installs (installed);\n"
    "'roots add' makes manual ones; Nix's own roots (links in the store's\n"
    "gcroots/ and profiles/) are kind nix.  For each root: its name, kind, when it\n"
    "was last used, its closure size (the NAR sizes of every path it keeps), the\n"
    "size only it keeps (what removing it would let the collector free), and its\n"
    "targets; a target that is not valid in the store is marked 'not in the\n"
    "store'.  Sorted by kind, then name.\n"
    "\n"
    "On a terminal, a table with sizes in KiB/MiB/GiB and times as '3 days ago'.\n"
    "Otherwise one line per root, tab-separated: NAME, KIND, LAST USED (seconds\n"
    "since the epoch, '-' when unknown), CLOSURE and UNIQUE (bytes), then one\n"
    "field per target ('PATH (not in the store)' for an invalid one).  Tabs,\n"
    "newlines, backslashes and control characters in names are written as \\t,\n"
    "\\n, \\\\ and \\xHH.  --json prints {\"roots\": [...]} with the same data\n"
    "(last_used null when unknown).\n"
    "\n"
    "Commands:\n"
    "  add          make or replace the manual root NAME, keeping STOREPATH...\n"
    "  remove       remove manual or automatic roots by name\n"
    "\n"
    "Options:\n"
    "      --json                print JSON\n"
    "      --store DIR           the store root (default: $RUNIX_STORE, the config file's\n"
    "                            'store', or ~/.local/share/runix)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0, 1 when the store cannot be read, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix roots\n"
    "  runix roots --json\n"
    "  runix roots add hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix roots remove hello\n";

static const char roots_add_usage[] =
    "usage: runix roots add [--store DIR] NAME STOREPATH...\n"
    "\n"
    "Make the manual root NAME, which keeps STOREPATH... and their closures in\n"
    "the store until 'runix roots remove NAME': the collector ('runix gc', and\n"
    "Nix's on the same store) leaves them.  Each path must be valid in the store\n"
    "('runix fetch' it first).  A manual root of the same name is replaced (with a\n"
    "note on stderr).  Prints nothing on success.\n"
    "\n"
    "Exit status: 0, 1 when a path is not in the store or the root cannot be\n"
    "written, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix fetch /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix roots add hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

static const char roots_remove_usage[] =
    "usage: runix roots remove [--store DIR] NAME...\n"
    "\n"
    "Remove the manual and automatic roots named NAME... (as 'runix roots'\n"
    "shows them).  What they kept is then collectable, unless another root keeps\n"
    "it.  An installed tool's root is removed by 'runix uninstall NAME', and a\n"
    "root of Nix's by removing its link; both are refused here.\n"
    "\n"
    "Exit status: 0, 1 when a NAME is not a root that can be removed here (the\n"
    "others are still removed), 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix roots remove hello\n"
    "  runix roots remove /home/me/tools/jq.runix\n";

static const char list_usage[] =
    "usage: runix list [--all] [--json] [OPTIONS]\n"
    "       runix ls ...\n"
    "\n"
    "List the store's top-level paths (valid paths no other valid path\n"
    "references), or with --all every valid path, sorted by name (the part of the\n"
    "basename after the hash, then the hash).  For each: its NAR size, its\n"
    "closure size (top-level paths only), the roots that keep it alive ('-' for\n"
    "none: the collector may delete it), and its last use: the latest last use\n"
    "of those roots, else when it was registered (shown as 'registered ...').\n"
    "A summary line goes to stderr (unless --quiet): how many paths the store\n"
    "holds, their size, and how much of it no root keeps.\n"
    "\n"
    "On a terminal, a table.  Otherwise one line per path, tab-separated: PATH,\n"
    "NAR SIZE (bytes), CLOSURE SIZE (bytes, '-' for a path that is not\n"
    "top-level), LAST USED (seconds since the epoch), 'used' or 'registered'\n"
    "(what LAST USED is), then one field per root keeping it, or '-'.  Names are\n"
    "escaped as 'runix roots' says.  --json prints {\"paths\": [...], \"summary\":\n"
    "{...}} with the same data (each root as its kind and name).\n"
    "\n"
    "Options:\n"
    "  -a, --all                 every valid path, not only the top-level ones\n"
    "      --json                print JSON\n"
    "      --store DIR           the store root (default: $RUNIX_STORE, the config file's\n"
    "                            'store', or ~/.local/share/runix)\n"
    "  -q, --quiet               no summary line\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0, 1 when the store cannot be read, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix list\n"
    "  runix ls --all\n"
    "  runix list --json\n";

enum { OPT_JSON = 0x200 };

/* ---- formatting ------------------------------------------------------- */

/* s with tabs, newlines, backslashes and control bytes escaped, for one text field. */
static void put_field(const char *s, FILE *f)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '\t')
            fputs("\\t", f);
        else if (*c == '\n')
            fputs("\\n", f);
        else if (*c == '\\')
            fputs("\\\\", f);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
}

/* The width put_field() gives s (bytes; names are mostly ASCII). */
static size_t field_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        w += *c == '\t' || *c == '\n' || *c == '\\' ? 2 : *c < 0x20 || *c == 0x7f ? 4 : 1;
    return w;
}

static void put_padded(const char *s, size_t width, FILE *f)
{
    put_field(s, f);
    for (size_t w = field_width(s); w < width; w++)
        fputc(' ', f);
}

/* ---- the store, its roots and what they keep ------------------------- */

struct view {
    struct cli_settings s;
    struct store *st; /* NULL: no store there yet */
    struct store_graph g;
    struct store_root *roots;
    size_t nroots;
    struct store_usage u;
    bool json, all, tty;
    int64_t now;
};

static void view_release(struct view *v)
{
    store_usage_release(&v->u);
    store_roots_free(v->roots, v->nroots);
    store_graph_release(&v->g);
    if (v->st)
        store_close(v->st);
    cli_settings_release(&v->s);
}

static int settings_error(const char *cmd, struct rx_error *err)
{
    if (err && err->code == RX_EUSAGE) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return EXIT_USAGE;
    }
    return cli_fail(err);
}

/*
 * Resolve the settings and read the store (read-only: nothing is made),
 * its graph and its roots, and what they keep.  A store that does not exist
 * yet is an empty one.  -1, or the exit code after saying why.
 */
static int view_load(struct view *v, const char *cmd, bool keepers)
{
    struct rx_error *err = NULL;
    if (cli_settings_finish(&v->s, &err) < 0)
        return settings_error(cmd, err);
    int r = store_open_readonly(v->s.store, &v->st, &err);
    if (r < 0)
        return cli_fail(err);
    if (r == 0) {
        if (store_graph_load(v->st, &v->g, &err) < 0)
            return cli_fail(err);
        char *real = NULL;
        int root_fd = store_root_open(store_root(v->st), &real, &err);
        free(real);
        if (root_fd < 0)
            return cli_fail(err);
        r = store_roots_scan(root_fd, store_root(v->st), &v->roots, &v->nroots, &err);
        close(root_fd);
        if (r < 0)
            return cli_fail(err);
    }
    store_usage_compute(&v->g, v->roots, v->nroots, keepers, &v->u);
    v->now = (int64_t)time(NULL);
    v->tty = !v->json && isatty(STDOUT_FILENO);
    return -1;
}

static int finish_output(int ret)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write the output: %s", strerror(errno));
        return EXIT_FAIL;
    }
    return ret;
}

/* ---- runix roots ------------------------------------------------------ */

/*
 * s as a JSON string.  Names are bytes (file names, decoded), and JSON
 * strings are UTF-8: a name that is not UTF-8 has its bytes above 0x7f
 * written as "\xHH", so the output stays valid JSON.
 */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t len = strlen(s);
    _cleanup_free_ char *esc = xmalloc(4 * len + 1);
    size_t o = 0;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x80) {
            esc[o++] = (char)*c;
        } else {
            snprintf(esc + o, 5, "\\x%02x", *c);
            o += 4;
        }
    }
    esc[o] = '\0';
    return json_string(esc);
}

static json_t *roots_json(const struct view *v)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < v->nroots; i++) {
        const struct store_root *r = &v->roots[i];
        json_t *o = json_object();
        json_t *targets = json_array(), *gone = json_array();
        for (size_t t = 0; t < r->ntargets; t++) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&r->targets[t], full);
            json_array_append_new(targets, json_string(full));
            if (store_graph_find(&v->g, &r->targets[t]) < 0)
                json_array_append_new(gone, json_string(full));
        }
        json_object_set_new(o, "name", jstr(r->name));
        json_object_set_new(o, "kind", json_string(store_root_kind_name(r->kind)));
        json_object_set_new(o, "where", jstr(r->where));
        json_object_set_new(o, "targets", targets);
        json_object_set_new(o, "not_in_store", gone);
        json_object_set_new(o, "last_used",
                            r->last_used > 0 ? json_integer(r->last_used) : json_null());
        json_object_set_new(o, "closure_size", json_integer((json_int_t)v->u.roots[i].closure_bytes));
        json_object_set_new(o, "closure_paths", json_integer((json_int_t)v->u.roots[i].closure_paths));
        json_object_set_new(o, "unique_size", json_integer((json_int_t)v->u.roots[i].unique_bytes));
        json_object_set_new(o, "unique_paths", json_integer((json_int_t)v->u.roots[i].unique_paths));
        json_array_append_new(arr, o);
    }
    json_t *top = json_object();
    json_object_set_new(top, "roots", arr);
    return top;
}

static int put_json(json_t *top)
{
    int r = json_dumpf(top, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII);
    json_decref(top);
    fputc('\n', stdout);
    return r < 0 ? EXIT_FAIL : EXIT_OK;
}

static void roots_table(const struct view *v)
{
    size_t wname = 4;
    for (size_t i = 0; i < v->nroots; i++) {
        size_t w = field_width(v->roots[i].name);
        if (w > wname)
            wname = w;
    }
    if (wname > 48)
        wname = 48;
    printf("%-*s  %-9s  %-16s  %10s  %10s  %s\n", (int)wname, "NAME", "KIND", "LAST USED",
           "CLOSURE", "UNIQUE", "TARGETS");
    for (size_t i = 0; i < v->nroots; i++) {
        const struct store_root *r = &v->roots[i];
        char ago[64], cs[32], us[32];
        cli_human_ago(v->now, r->last_used, ago, sizeof ago);
        cli_human_size(v->u.roots[i].closure_bytes, cs, sizeof cs);
        cli_human_size(v->u.roots[i].unique_bytes, us, sizeof us);
        put_padded(r->name, wname, stdout);
        printf("  %-9s  %-16s  %10s  %10s", store_root_kind_name(r->kind), ago, cs, us);
        for (size_t t = 0; t < r->ntargets; t++) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&r->targets[t], full);
            if (t > 0)
                printf("\n%*s", (int)(wname + 2 + 9 + 2 + 16 + 2 + 10 + 2 + 10), "");
            printf("  %s%s", full,
                   store_graph_find(&v->g, &r->targets[t]) < 0 ? " (not in the store)" : "");
        }
        fputc('\n', stdout);
    }
}

static void roots_lines(const struct view *v)
{
    for (size_t i = 0; i < v->nroots; i++) {
        const struct store_root *r = &v->roots[i];
        put_field(r->name, stdout);
        printf("\t%s\t", store_root_kind_name(r->kind));
        if (r->last_used > 0)
            printf("%" PRId64, r->last_used);
        else
            fputc('-', stdout);
        printf("\t%" PRIu64 "\t%" PRIu64, v->u.roots[i].closure_bytes,
               v->u.roots[i].unique_bytes);
        for (size_t t = 0; t < r->ntargets; t++) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&r->targets[t], full);
            printf("\t%s%s", full,
                   store_graph_find(&v->g, &r->targets[t]) < 0 ? " (not in the store)" : "");
        }
        fputc('\n', stdout);
    }
}

static int roots_show(struct view *v)
{
    int ret = view_load(v, "roots", false);
    if (ret >= 0)
        return ret;
    if (v->json)
        return finish_output(put_json(roots_json(v)));
    if (v->tty)
        roots_table(v);
    else
        roots_lines(v);
    return finish_output(EXIT_OK);
}

/* Parse the shared options of argv (a subcommand's); -1 to go on, else the exit code. */
static int sub_options(const char *cmd, const char *usage, int argc, char **argv,
                       struct cli_settings *s)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(s, o, optarg))
            continue;
        if (o == 'h')
            return cli_print_help(usage);
        return cli_option_error(cmd, o, argv, opts);
    }
    return -1;
}

/* Is there a root kind/name? */
static bool root_exists(int root_fd, enum store_root_kind kind, const char *name)
{
    _cleanup_free_ char *rel = xasprintf(STORE_ROOTS_DIR "/%s/%s", store_root_kind_name(kind), name);
    struct stat sb;
    return fstatat(root_fd, rel, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

static int roots_add(int argc, char **argv)
{
    struct cli_settings s = {0};
    struct store *st = NULL;
    struct store_path *paths = NULL;
    int root_fd = -1;
    int ret = sub_options("roots add", roots_add_usage, argc, argv, &s);
    if (ret >= 0)
        goto out;
    if (argc - optind < 2) {
        ret = cli_usage_error("roots add", "%s",
                              argc - optind < 1 ? "expected a NAME and store paths"
                                                : "expected store paths after NAME");
        goto out;
    }
    const char *ref = argv[optind];
    char name[STORE_ROOT_NAME_MAX + 1];
    struct rx_error *err = NULL;
    if (store_root_name_encode(ref, name, &err) < 0) {
        ret = cli_usage_error("roots add", "%s", err->msg);
        rx_error_free(err);
        goto out;
    }
    size_t n = (size_t)(argc - optind - 1);
    paths = xcalloc(n, sizeof *paths);
    for (size_t i = 0; i < n; i++) {
        const char *a = argv[optind + 1 + i];
        if (store_path_parse(a, strlen(a), &paths[i], &err) < 0) {
            ret = cli_usage_error("roots add", "%s", err->msg);
            rx_error_free(err);
            goto out;
        }
    }
    if (cli_settings_finish(&s, &err) < 0) {
        ret = settings_error("roots add", err);
        goto out;
    }
    int r = store_open_readonly(s.store, &st, &err);
    if (r < 0) {
        ret = cli_fail(err);
        goto out;
    }
    char full[STORE_PATH_MAX + 1];
    if (r > 0) {
        store_path_format(&paths[0], full);
        cli_cmd_error("roots add", "there is no store at '%s' yet, so %s is not in it; run "
                      "'runix fetch %s' first", s.store, full, full);
        ret = EXIT_FAIL;
        goto out;
    }
    ret = EXIT_OK;
    for (size_t i = 0; i < n; i++) {
        int valid = store_is_valid(st, &paths[i], &err);
        if (valid < 0) {
            ret = cli_fail(err);
            goto out;
        }
        if (!valid) {
            store_path_format(&paths[i], full);
            cli_cmd_error("roots add", "%s is not in the store at '%s'; run 'runix fetch %s' "
                          "first", full, store_root(st), full);
            ret = EXIT_FAIL;
        }
    }
    if (ret != EXIT_OK)
        goto out;
    char *real = NULL;
    root_fd = store_root_open(store_root(st), &real, &err);
    free(real);
    if (root_fd < 0) {
        ret = cli_fail(err);
        goto out;
    }
    if (root_exists(root_fd, STORE_ROOT_MANUAL, name))
        fprintf(stderr, "runix roots add: note: replacing the manual root '%s'\n", ref);
    if (store_root_set(root_fd, store_root(st), STORE_ROOT_MANUAL, name, paths, n, &err) < 0) {
        ret = cli_fail(err);
        goto out;
    }
    /* Another process may have unregistered a path between the check and the root. */
    for (size_t i = 0; i < n; i++) {
        int valid = store_is_valid(st, &paths[i], &err);
        if (valid <= 0) {
            if (valid < 0)
                rx_error_clear(&err);
            store_path_format(&paths[i], full);
            cli_cmd_error("roots add", "%s was removed from the store while the root was made; "
                          "run 'runix fetch %s' (the root '%s' keeps it from now on)", full,
                          full, ref);
            ret = EXIT_FAIL;
        }
    }
out:
    if (root_fd >= 0)
        close(root_fd);
    if (st)
        store_close(st);
    free(paths);
    cli_settings_release(&s);
    return ret;
}

/* The Nix root ref names (its link relative to the store root, or R/link, or the link's name). */
static const struct store_root *nix_root_named(const struct store_root *roots, size_t n,
                                               const char *root, const char *ref)
{
    size_t rl = strlen(root);
    for (size_t i = 0; i < n; i++) {
        if (roots[i].kind != STORE_ROOT_NIX)
            continue;
        const char *w = roots[i].where;
        const char *base = strrchr(w, '/');
        base = base ? base + 1 : w;
        if (strcmp(ref, w) == 0 || strcmp(ref, base) == 0 ||
            (strncmp(ref, root, rl) == 0 && ref[rl] == '/' && strcmp(ref + rl + 1, w) == 0))
            return &roots[i];
    }
    return NULL;
}

static int roots_remove(int argc, char **argv)
{
    struct cli_settings s = {0};
    struct store_root *roots = NULL;
    size_t nroots = 0;
    bool scanned = false;
    int root_fd = -1;
    char *real = NULL;
    int ret = sub_options("roots remove", roots_remove_usage, argc, argv, &s);
    if (ret >= 0)
        goto out;
    if (optind >= argc) {
        ret = cli_usage_error("roots remove", "expected the NAME of a root");
        goto out;
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        ret = settings_error("roots remove", err);
        goto out;
    }
    root_fd = store_root_open(s.store, &real, &err);
    if (root_fd < 0) {
        if (err->code != ENOENT) {
            ret = cli_fail(err);
            goto out;
        }
        rx_error_clear(&err);
    }
    ret = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        const char *ref = argv[i];
        char name[STORE_ROOT_NAME_MAX + 1];
        if (store_root_name_encode(ref, name, &err) < 0) {
            cli_cmd_error("roots remove", "%s", err->msg);
            rx_error_clear(&err);
            ret = EXIT_FAIL;
            continue;
        }
        if (root_fd < 0) {
            cli_cmd_error("roots remove", "there is no root named '%s': there is no store at "
                          "'%s'", ref, s.store);
            ret = EXIT_FAIL;
            continue;
        }
        bool removed = false, failed = false;
        static const enum store_root_kind kinds[] = {STORE_ROOT_MANUAL, STORE_ROOT_AUTO};
        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
            int r = store_root_remove(root_fd, real, kinds[k], name, &err);
            if (r < 0) {
                cli_cmd_error("roots remove", "%s", err->msg);
                rx_error_clear(&err);
                failed = true;
            } else if (r == 0) {
                removed = true;
            }
        }
        if (failed) {
            ret = EXIT_FAIL;
            continue;
        }
        if (removed)
            continue;
        ret = EXIT_FAIL;
        if (root_exists(root_fd, STORE_ROOT_INSTALLED, name)) {
            cli_cmd_error("roots remove", "'%s' is an installed tool's root; use 'runix "
                          "uninstall %s' to remove it", ref, ref);
            continue;
        }
        if (!scanned) {
            scanned = true;
            if (store_roots_scan(root_fd, real, &roots, &nroots, &err) < 0)
                rx_error_clear(&err);
        }
        const struct store_root *nix = nix_root_named(roots, nroots, real, ref);
        if (nix)
            cli_cmd_error("roots remove", "'%s' is a root of Nix's, not runix's; remove the "
                          "link '%s/%s' to remove it", ref, real, nix->where);
        else
            cli_cmd_error("roots remove", "there is no root named '%s' (see 'runix roots')",
                          ref);
    }
out:
    store_roots_free(roots, nroots);
    if (root_fd >= 0)
        close(root_fd);
    free(real);
    cli_settings_release(&s);
    return ret;
}

int cmd_roots(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct view v = {0};
    int o;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering afresh */
    while ((o = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&v.s, o, optarg))
            continue;
        if (o == OPT_JSON) {
            v.json = true;
            continue;
        }
        cli_settings_release(&v.s);
        if (o == 'h')
            return cli_print_help(roots_usage);
        return cli_option_error("roots", o, argv, opts);
    }
    if (optind < argc) {
        const char *sub = argv[optind];
        int (*fn)(int, char **) = strcmp(sub, "add") == 0      ? roots_add
                                  : strcmp(sub, "remove") == 0 ? roots_remove
                                                               : NULL;
        if (!fn) {
            cli_settings_release(&v.s);
            return cli_usage_error("roots", "'%s' is not a roots command (add, remove)", sub);
        }
        if (v.json) {
            cli_settings_release(&v.s);
            return cli_usage_error("roots", "--json is for listing roots, not 'roots %s'", sub);
        }
        /* The options before the subcommand count too: hand them on after it. */
        int nargc = 0;
        _cleanup_free_ char **nargv = xcalloc((size_t)argc + 1, sizeof *nargv);
        nargv[nargc++] = argv[optind];
        for (int i = 1; i < optind; i++)
            nargv[nargc++] = argv[i];
        for (int i = optind + 1; i < argc; i++)
            nargv[nargc++] = argv[i];
        cli_settings_release(&v.s);
        return finish_output(fn(nargc, nargv));
    }
    int ret = roots_show(&v);
    view_release(&v);
    return ret;
}

/* ---- runix list ------------------------------------------------------- */

/* By name, then hash: what a user looks for is the name. */
static const struct store_graph *sort_graph;

static int cmp_by_name(const void *a, const void *b)
{
    const struct store_path *x = &sort_graph->nodes[*(const uint32_t *)a].path;
    const struct store_path *y = &sort_graph->nodes[*(const uint32_t *)b].path;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->hash, y->hash);
}

/*
 * The graph's sizes and edges in arrays of their own: walking many closures
 * then touches a few small arrays instead of every node's whole record.
 */
struct walk {
    uint64_t *size;
    const uint32_t **refs;
    uint32_t *nrefs;
    uint32_t *seen; /* == stamp: reached by the current walk */
    uint32_t *stack;
};

static void walk_init(struct walk *w, const struct store_graph *g)
{
    w->size = xmalloc((g->n + 1) * sizeof *w->size);
    w->refs = xmalloc((g->n + 1) * sizeof *w->refs);
    w->nrefs = xmalloc((g->n + 1) * sizeof *w->nrefs);
    w->seen = xcalloc(g->n + 1, sizeof *w->seen);
    w->stack = xmalloc((g->n + 1) * sizeof *w->stack);
    for (size_t i = 0; i < g->n; i++) {
        w->size[i] = g->nodes[i].nar_size;
        w->refs[i] = g->nodes[i].refs;
        w->nrefs[i] = g->nodes[i].nrefs;
    }
}

static void walk_release(struct walk *w)
{
    free(w->size);
    free(w->refs);
    free(w->nrefs);
    free(w->seen);
    free(w->stack);
}

/* The NAR sizes of node i's closure; stamp is new for each call. */
static uint64_t closure_bytes(struct walk *w, uint32_t i, uint32_t stamp)
{
    uint64_t sum = 0;
    size_t top = 0;
    w->seen[i] = stamp;
    w->stack[top++] = i;
    while (top) {
        uint32_t v = w->stack[--top];
        sum += w->size[v];
        const uint32_t *refs = w->refs[v];
        for (uint32_t k = 0; k < w->nrefs[v]; k++)
            if (w->seen[refs[k]] != stamp) {
                w->seen[refs[k]] = stamp;
                w->stack[top++] = refs[k];
            }
    }
    return sum;
}

struct list_row {
    uint32_t node;
    bool top;
    uint64_t closure; /* top-level ones */
    int64_t last;     /* the roots' last use, else the registration time */
    bool used;        /* last is a root's last use */
};

static void list_rows(const struct view *v, struct list_row **out, size_t *nout)
{
    const struct store_graph *g = &v->g;
    size_t n = 0;
    _cleanup_free_ uint32_t *ix = xmalloc((g->n + 1) * sizeof *ix);
    for (size_t i = 0; i < g->n; i++)
        if (v->all || g->nodes[i].nreferrers == 0)
            ix[n++] = (uint32_t)i;
    sort_graph = g;
    if (n)
        qsort(ix, n, sizeof *ix, cmp_by_name);
    struct walk w;
    walk_init(&w, g);
    struct list_row *rows = xcalloc(n + 1, sizeof *rows);
    uint32_t stamp = 0;
    for (size_t k = 0; k < n; k++) {
        uint32_t i = ix[k];
        struct list_row *r = &rows[k];
        r->node = i;
        r->top = g->nodes[i].nreferrers == 0;
        if (r->top)
            r->closure = closure_bytes(&w, i, ++stamp);
        r->used = v->u.last_used[i] > 0;
        r->last = r->used ? v->u.last_used[i] : g->nodes[i].registered;
    }
    walk_release(&w);
    *out = rows;
    *nout = n;
}

static void list_json(const struct view *v, const struct list_row *rows, size_t n)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < n; k++) {
        const struct list_row *r = &rows[k];
        const struct store_graph_node *node = &v->g.nodes[r->node];
        char full[STORE_PATH_MAX + 1];
        store_path_format(&node->path, full);
        json_t *o = json_object();
        json_object_set_new(o, "path", json_string(full));
        json_object_set_new(o, "nar_size", json_integer((json_int_t)node->nar_size));
        json_object_set_new(o, "top_level", json_boolean(r->top));
        if (r->top)
            json_object_set_new(o, "closure_size", json_integer((json_int_t)r->closure));
        json_t *keep = json_array();
        for (size_t j = v->u.kept_at[r->node]; j < v->u.kept_at[r->node + 1]; j++) {
            const struct store_root *root = &v->roots[v->u.kept[j]];
            json_t *ro = json_object();
            json_object_set_new(ro, "kind", json_string(store_root_kind_name(root->kind)));
            json_object_set_new(ro, "name", jstr(root->name));
            json_array_append_new(keep, ro);
        }
        json_object_set_new(o, "roots", keep);
        json_object_set_new(o, "last_used", r->used ? json_integer(r->last) : json_null());
        json_object_set_new(o, "registered", json_integer(node->registered));
        json_array_append_new(arr, o);
    }
    json_t *sum = json_object();
    json_object_set_new(sum, "paths", json_integer((json_int_t)v->u.paths));
    json_object_set_new(sum, "size", json_integer((json_int_t)v->u.bytes));
    json_object_set_new(sum, "dead_paths", json_integer((json_int_t)v->u.dead_paths));
    json_object_set_new(sum, "dead_size", json_integer((json_int_t)v->u.dead_bytes));
    json_t *top = json_object();
    json_object_set_new(top, "paths", arr);
    json_object_set_new(top, "summary", sum);
    put_json(top);
}

static void list_text(const struct view *v, const struct list_row *rows, size_t n)
{
    size_t wpath = 4;
    for (size_t k = 0; k < n; k++) {
        size_t w = STORE_DIR_LEN + 1 + STORE_HASH_LEN + 1 + strlen(v->g.nodes[rows[k].node].path.name);
        if (w > wpath)
            wpath = w;
    }
    if (v->tty)
        printf("%-*s  %10s  %10s  %-27s  %s\n", (int)wpath, "PATH", "SIZE", "CLOSURE",
               "LAST USED", "ROOTS");
    for (size_t k = 0; k < n; k++) {
        const struct list_row *r = &rows[k];
        const struct store_graph_node *node = &v->g.nodes[r->node];
        char full[STORE_PATH_MAX + 1];
        store_path_format(&node->path, full);
        size_t a = v->u.kept_at[r->node], b = v->u.kept_at[r->node + 1];
        if (v->tty) {
            char ns[32], cs[32], ago[64], last[80];
            cli_human_size(node->nar_size, ns, sizeof ns);
            if (r->top)
                cli_human_size(r->closure, cs, sizeof cs);
            else
                snprintf(cs, sizeof cs, "-");
            cli_human_ago(v->now, r->last, ago, sizeof ago);
            snprintf(last, sizeof last, "%s%s", r->used ? "" : "registered ", ago);
            printf("%-*s  %10s  %10s  %-27s  ", (int)wpath, full, ns, cs, last);
            if (a == b)
                fputc('-', stdout);
            for (size_t j = a; j < b && j < a + 3; j++) {
                if (j > a)
                    fputs(", ", stdout);
                put_field(v->roots[v->u.kept[j]].name, stdout);
            }
            if (b - a > 3)
                printf(" and %zu more", b - a - 3);
        } else {
            printf("%s\t%" PRIu64 "\t", full, node->nar_size);
            if (r->top)
                printf("%" PRIu64, r->closure);
            else
                fputc('-', stdout);
            printf("\t%" PRId64 "\t%s", r->last, r->used ? "used" : "registered");
            if (a == b)
                fputs("\t-", stdout);
            for (size_t j = a; j < b; j++) {
                fputc('\t', stdout);
                put_field(v->roots[v->u.kept[j]].name, stdout);
            }
        }
        fputc('\n', stdout);
    }
}

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct view v = {0};
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:aqh", opts, NULL)) != -1) {
        if (cli_settings_option(&v.s, o, optarg))
            continue;
        if (o == 'a') {
            v.all = true;
            continue;
        }
        if (o == OPT_JSON) {
            v.json = true;
            continue;
        }
        cli_settings_release(&v.s);
        if (o == 'h')
            return cli_print_help(list_usage);
        return cli_option_error("list", o, argv, opts);
    }
    if (optind != argc) {
        cli_settings_release(&v.s);
        return cli_usage_error("list", "unexpected argument '%s'", argv[optind]);
    }
    int ret = view_load(&v, "list", true);
    if (ret < 0) {
        struct list_row *rows;
        size_t n;
        list_rows(&v, &rows, &n);
        if (v.json)
            list_json(&v, rows, n);
        else
            list_text(&v, rows, n);
        free(rows);
        ret = finish_output(EXIT_OK);
        if (ret == EXIT_OK && !v.s.quiet) {
            char total[32], dead[32];
            cli_human_size(v.u.bytes, total, sizeof total);
            cli_human_size(v.u.dead_bytes, dead, sizeof dead);
            fprintf(stderr, "%zu path%s, %s; %zu of them (%s) kept by no root, which "
                    "'runix gc' would delete\n", v.u.paths, v.u.paths == 1 ? "" : "s", total,
                    v.u.dead_paths, dead);
        }
    }
    view_release(&v);
    return ret;
}
