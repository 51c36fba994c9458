/*
 * runix locate PATTERN: which packages of an index have a file matching
 * PATTERN.  A literal "…/NAME" pattern on a small index (nixdb.h) is
 * answered from its sidecar, which needs libc only: the front does it.
 * Everything else reads the whole database, in runix-core
 * (cli_locate_scan, in cmd-index.c).
 */
#include "config.h"

#include <getopt.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-byname.h"
#include "cli.h"
#include "nixdb.h"
#include "util-mem.h"

#include "banned.h"

#pragma weak cli_locate_scan
#pragma weak cli_index_side_ready

static const char locate_usage[] =
    "usage: runix locate [OPTIONS] PATTERN\n"
    "\n"
    "List the packages of the index that have a file whose path matches\n"
    "PATTERN, as nix-locate does: the attribute (in parentheses when the\n"
    "package is not top-level but in the closure of one), the size (bytes, or\n"
    "entries of a directory), the type (r file, x executable, d directory,\n"
    "s symlink) and the file's full path.  PATTERN is a part of the path\n"
    "('bin/jq'); it must match in the path's last component.\n"
    "\n"
    "      --top-level           only packages that are attributes themselves\n"
    "      --regex               PATTERN is a POSIX extended regular expression\n"
    "      --json                print a JSON array of matches instead\n"
    "      --index NAME          the index to search (default: nixpkgs)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when something matched, 1 when nothing did or the index\n"
    "cannot be read, 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix locate bin/jq\n"
    "  runix locate --top-level --json bin/rg\n"
    "  runix locate --regex 'lib/libssl\\.so\\.[0-9]+$'\n";

/* The end of pattern's last match in path, or -1. */
long cli_locate_match_end(const char *path, size_t len, const char *pat, size_t plen,
                          const regex_t *re)
{
    long end = -1;
    if (!re) {
        for (const char *p = path; (p = memmem(p, len - (size_t)(p - path), pat, plen)); p++)
            end = (long)(p - path) + (long)plen;
        return end;
    }
    regmatch_t m;
    size_t from = 0;
    while (from <= len && regexec(re, path + from, 1, &m, from ? REG_NOTBOL : 0) == 0) {
        end = (long)from + m.rm_eo;
        from += (size_t)(m.rm_eo > m.rm_so ? m.rm_eo : m.rm_so + 1);
    }
    return end;
}

static void size_commas(uint64_t v, char out[32])
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
}

void cli_locate_print(struct cli_locate *lo, const char *attr, const char *output, bool top,
                        const char *full, const char *path, char type, uint64_t size)
{
    lo->found++;
    if (lo->arr) {
        char t[2] = { type, 0 };
        json_array_append_new(lo->arr, json_pack("{s:s, s:s, s:b, s:I, s:s, s:s, s:s}", "attr",
                                                 attr, "output", output, "toplevel", top, "size",
                                                 (json_int_t)size, "type", t, "store_path", full,
                                                 "path", path));
        return;
    }
    _cleanup_free_ char *a = xasprintf(top ? "%s.%s" : "(%s.%s)", attr, output);
    char sz[32];
    size_commas(size, sz);
    printf("%-40s %14s %c %s%s\n", a, sz, type, full, path);
}

/* A .bins line (on_bin's fields) that the literal pattern may match. */
static int on_locate_bin(void *ctx, char **f, size_t n)
{
    struct cli_locate *lo = ctx;
    if (n != 9 || f[2][0] == '\0' || f[2][1] != '\0') {
        lo->bad = true;
        return 1;
    }
    size_t len = strlen(f[1]);
    long end = cli_locate_match_end(f[1], len, lo->pat, lo->plen, NULL);
    bool top = strcmp(f[4], "1") == 0;
    if (end < 0 || memchr(f[1] + end, '/', len - (size_t)end) || (lo->top && !top))
        return 0;
    cli_locate_print(lo, f[5], f[6], top, f[8], f[1], f[2][0], strtoull(f[3], NULL, 10));
    return 0;
}

/* Print the JSON array, if any; the exit code. */
static int locate_done(struct cli_locate *lo, bool json, bool top, const char *name,
                       const char *pat)
{
    if (json) {
        char *text = json_dumps(lo->arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        puts(text);
        free(text);
        json_decref(lo->arr);
    }
    if (fflush(stdout) != 0)
        return EXIT_FAIL;
    if (lo->found == 0) {
        cli_cmd_error("locate", "no %spackage in the index '%s' has a file matching '%s'",
                      top ? "top-level " : "", name, pat);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_locate(int argc, char **argv)
{
    enum { OPT_TOP = 0x300, OPT_JSON, OPT_REGEX, OPT_INDEX };
    static const struct option opts[] = {
        {"top-level", no_argument, NULL, OPT_TOP}, {"json", no_argument, NULL, OPT_JSON},
        {"regex", no_argument, NULL, OPT_REGEX},   {"index", required_argument, NULL, OPT_INDEX},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    bool top = false, json = false, use_re = false;
    const char *name = CLI_DEFAULT_INDEX;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_TOP: top = true; break;
        case OPT_JSON: json = true; break;
        case OPT_REGEX: use_re = true; break;
        case OPT_INDEX: name = optarg; break;
        case 'h': return cli_print_help(locate_usage);
        default: return cli_option_error("locate", o, argv, opts);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("locate", optind == argc ? "expected a PATTERN" :
                                                          "expected one PATTERN");
    if (!cli_index_name_valid(name))
        return cli_usage_error("locate", "'%s' is not an index name", name);
    const char *pat = argv[optind];
    size_t plen = strlen(pat);
    if (plen == 0)
        return cli_usage_error("locate", "the PATTERN is empty");
    regex_t re;
    if (use_re) {
        int rc = regcomp(&re, pat, REG_EXTENDED);
        if (rc != 0) {
            char msg[256];
            regerror(rc, &re, msg, sizeof msg);
            return cli_usage_error("locate", "bad --regex '%s': %s", pat, msg);
        }
    }
    /*
     * A literal pattern ending in "/NAME...": the match's last component
     * starts with NAME, so the sorted .bins has every candidate, when it
     * has every entry (a small index).  Reading it needs libc only: the
     * front answers, while it is fresh.
     */
    struct cli_locate lo = { .pat = pat, .plen = plen, .top = top,
                             .arr = json ? json_array() : NULL };
    const char *slash = strrchr(pat, '/');
    int ret = EXIT_OK;
    bool scan = true;
    if (!use_re && slash && slash[1]) {
        if (cli_index_side_ready && (ret = cli_index_side_ready("locate", name)) != EXIT_OK)
            goto out;
        _cleanup_free_ char *file = cli_index_file(name);
        _cleanup_free_ char *bins = file ? xasprintf("%s.bins", file) : NULL;
        char id[64];
        struct nixdb_side side;
        struct rx_error *err = NULL;
        int r = bins && cli_index_identity(file, id) ? nixdb_side_open(bins, id, &side, &err) : 0;
        if (r < 0) {
            ret = cli_fail(err);
            goto out;
        }
        if (r > 0) {
            if (!cli_index_side_ready)
                cli_index_warn_old("locate", name, file);
            if (side.small && side.complete) {
                scan = false;
                if (nixdb_side_find(&side, slash + 1, false, on_locate_bin, &lo) < 0 || lo.bad) {
                    cli_cmd_error("locate", "cannot read '%s'; run 'runix index update'", bins);
                    ret = EXIT_FAIL;
                }
            }
            nixdb_side_close(&side);
        }
    }
    if (scan && !cli_locate_scan) { /* decompressing the database is runix-core's */
        json_decref(lo.arr);
        if (use_re)
            regfree(&re);
        _cleanup_free_ char **av = xcalloc((size_t)argc + 2, sizeof *av);
        av[0] = (char *)cli_progname;
        for (int k = 0; k < argc; k++)
            av[k + 1] = argv[k];
        return cli_run_core_command(NULL, argc, argv, av);
    }
    if (scan)
        ret = cli_locate_scan(name, &lo, use_re ? &re : NULL);
out:
    if (use_re)
        regfree(&re);
    if (ret != EXIT_OK) {
        json_decref(lo.arr);
        return ret;
    }
    return locate_done(&lo, json, top, name, pat);
}
