/*
 * runix export: a closure as a root file system (--rootfs) or an OCI image
 * (--oci), for podman, docker and other OCI tools (export.h, docs/export.md).
 *
 * The closure is made complete in the store first, as runix run does.  The
 * output is built under a temporary name beside its final one and renamed
 * there at the end: an export cut short leaves no half image under that name.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli-progress.h"
#include "cli-settings.h"
#include "cli.h"
#include "export.h"
#include "fetch.h"
#include "store-path.h"
#include "store.h"
#include "util-fs.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

enum { OPT_ROOTFS = 0x300, OPT_OCI, OPT_ENTRY, OPT_LAYERS };

static const char export_usage[] =
    "usage: runix export --rootfs DIR [OPTIONS] STOREPATH...\n"
    "       runix export --oci DIR|FILE.tar [--layers per-path|one] [OPTIONS] STOREPATH...\n"
    "\n"
    "Write the closure of the store paths (fetched first if the store lacks part\n"
    "of it, as runix run does) as a root file system or an OCI image.  Either way\n"
    "it holds /nix/store/<each path> and /init, a symlink to the program to run:\n"
    "the first store path's only program in bin/ (or the one named after it), or\n"
    "--entry PROG.  Nothing else: no /etc, no shell, no /tmp.\n"
    "\n"
    "--rootfs DIR lays the closure out in DIR (absent or empty), files hard-linked\n"
    "from the store where it is on the same file system, copied otherwise.  Run it\n"
    "with 'podman run --read-only --rootfs DIR /init': read-only, since a program\n"
    "running as root could otherwise write to the store's files through the links.\n"
    "\n"
    "--oci DIR writes an OCI image layout there (oci-layout, index.json,\n"
    "blobs/sha256/; DIR absent or empty; tag 'latest').  --oci FILE.tar (a name\n"
    "ending in .tar, or an existing file) writes a docker-archive tarball for\n"
    "'docker load' or 'podman load', replacing FILE.  An image has one uncompressed\n"
    "layer per store path (the last one with /init; past 100 paths, the rest share\n"
    "the last layer), or one layer for all with --layers one; its Entrypoint is\n"
    "/init's target, its PATH the closure's bin/ directories.  The same closure\n"
    "always gives the same bytes and digests.  The image's digest is printed: a\n"
    "layout's manifest's, an archive's config's (the image ID podman shows).\n"
    "\n"
    "      --rootfs DIR          write a root file system into DIR\n"
    "      --oci DIR|FILE.tar    write an OCI image layout, or a docker archive\n"
    "      --entry PROG          the program /init points to: a path relative to the\n"
    "                            first store path (bin/hello), or a program name\n"
    "                            found in the bin/ of the closure\n"
    "      --layers per-path|one one layer per store path (default) or one in all\n"
    CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when the output is written, 1 when it could not be (nothing is\n"
    "left under its name), 2 for a bad command line.\n"
    "\n"
    "Examples:\n"
    "  runix export --rootfs /tmp/hello-root /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix export --oci /tmp/hello-oci /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix export --oci hello.tar --layers one /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix export --oci /tmp/hello-oci --entry bin/hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

enum export_kind { KIND_ROOTFS, KIND_LAYOUT, KIND_ARCHIVE };

struct export_ctx {
    struct cli_settings s;
    struct store *st;
    struct store_path *roots;
    size_t nroots;
    struct store_path *closure;
    size_t nclosure;
    char **bases; /* the closure's basenames */
    int store_fd;
};

static int export_fail(struct rx_error *err)
{
    cli_cmd_error("export", "%s", err ? err->msg : "unknown error");
    rx_error_free(err);
    return EXIT_FAIL;
}

/* 0 when the store holds the whole closure, 1 when it does not, -1 with err. */
static int have_closure(struct export_ctx *c, struct rx_error **err)
{
    free(c->closure);
    c->closure = NULL;
    int r = store_closure(c->st, c->roots, c->nroots, &c->closure, &c->nclosure, err);
    if (r != 0)
        return r;
    struct store_path *missing = NULL;
    size_t nmissing = 0;
    if (store_check_missing(c->st, c->roots, c->nroots, &missing, &nmissing, err) < 0)
        return -1;
    free(missing);
    return nmissing ? 1 : 0;
}

/* Make the closure complete in the store, fetching what it lacks; EXIT_OK with c->closure. */
static int fetch_missing(struct export_ctx *c)
{
    struct rx_error *err = NULL;
    int r = store_open_readonly(c->s.store, &c->st, &err);
    if (r < 0)
        return export_fail(err);
    if (r == 0 && (r = have_closure(c, &err)) <= 0)
        return r < 0 ? export_fail(err) : EXIT_OK;
    store_close(c->st);
    c->st = NULL;
    if (store_open(c->s.store, &c->st, &err) < 0)
        return export_fail(err);
    struct fetch_opts fo;
    struct cli_progress progress;
    cli_settings_fetch_opts(&c->s, &fo);
    cli_progress_init(&progress, c->s.quiet);
    fo.events = &progress.events;
    /* Stopped, the fetch keeps what is complete and removes the rest; then we die of it. */
    rx_catch_interrupts();
    r = fetch_closure(c->st, &fo, c->roots, c->nroots, &err);
    if (r < 0) {
        cli_progress_clear(&progress);
        export_fail(err);
        rx_die_of_interrupt();
        return EXIT_FAIL;
    }
    cli_progress_finish(&progress);
    if ((r = have_closure(c, &err)) != 0) {
        if (r > 0)
            cli_cmd_error("export", "the closure is still incomplete after fetching (store %s)",
                          c->s.store);
        return r < 0 ? export_fail(err) : EXIT_FAIL;
    }
    return EXIT_OK;
}

/* Is base/rel in the store a program (a regular file, or a symlink, with an x bit)? */
static bool is_program(const struct export_ctx *c, const char *base, const char *rel)
{
    _cleanup_free_ char *p = xasprintf("%s/%s", base, rel);
    struct stat st;
    return fstatat(c->store_fd, p, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           (S_ISLNK(st.st_mode) || (S_ISREG(st.st_mode) && (st.st_mode & 0111)));
}

/* The first store path's one program, or the one named after it; NULL after saying why. */
static char *default_entry(const struct export_ctx *c, const char *base)
{
    _cleanup_free_ char *bin = xasprintf("%s/bin", base);
    _cleanup_close_ int fd = openat(c->store_fd, bin, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_free_ char *pname = store_name_package(c->roots[0].name);
    char *only = NULL, *named = NULL;
    size_t n = 0;
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d)
        fd = -1;
    for (struct dirent *e; d && (e = readdir(d));) {
        _cleanup_free_ char *rel = xasprintf("bin/%s", e->d_name);
        if (e->d_name[0] == '.' || !is_program(c, base, rel))
            continue;
        n++;
        if (!only)
            only = xstrdup(e->d_name);
        if (strcmp(e->d_name, pname) == 0)
            named = xstrdup(e->d_name);
    }
    if (d)
        closedir(d);
    char *found = NULL;
    if (n == 1 || named)
        found = xasprintf("bin/%s", named ? named : only);
    else
        cli_cmd_error("export", "/nix/store/%s has %s in bin/; choose the program with "
                                "--entry PROG",
                      base, n ? "several programs and none is named after it" : "no programs");
    free(only);
    free(named);
    return found;
}

/* The program /init points to, "/nix/store/<base>/<rel>"; NULL after saying why. */
static char *resolve_entry(const struct export_ctx *c, const char *entry)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(&c->roots[0], base);
    if (!entry) {
        _cleanup_free_ char *rel = default_entry(c, base);
        return rel ? xasprintf(STORE_DIR "/%s/%s", base, rel) : NULL;
    }
    if (strchr(entry, '/')) {
        while (*entry == '/')
            entry++;
        if (strstr(entry, "..") || !is_program(c, base, entry)) {
            cli_cmd_error("export", "no program '%s' in %s/%s; give a path relative to the "
                                    "first store path (bin/NAME) or a program name",
                          entry, STORE_DIR, base);
            return NULL;
        }
        return xasprintf(STORE_DIR "/%s/%s", base, entry);
    }
    _cleanup_free_ char *rel = xasprintf("bin/%s", entry);
    for (size_t pass = 0; pass < 2; pass++) {
        const struct store_path *v = pass == 0 ? c->roots : c->closure;
        size_t n = pass == 0 ? c->nroots : c->nclosure;
        for (size_t i = 0; i < n; i++) {
            store_path_basename(&v[i], base);
            if (is_program(c, base, rel))
                return xasprintf(STORE_DIR "/%s/%s", base, rel);
        }
    }
    cli_cmd_error("export", "no program '%s' in the bin/ of the closure; give a path relative to "
                            "the first store path with --entry bin/NAME",
                  entry);
    return NULL;
}

/* Append ":/nix/store/<base>/bin" to *acc when that is a directory. */
static void add_bin(const struct export_ctx *c, const char *base, char **acc)
{
    _cleanup_free_ char *bin = xasprintf("%s/bin", base);
    struct stat st;
    if (fstatat(c->store_fd, bin, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
        return;
    char *next = xasprintf("%s%s" STORE_DIR "/%s", *acc, (*acc)[5] ? ":" : "", bin);
    free(*acc);
    *acc = next;
}

/* "PATH=" the closure's bin/ directories: the roots' first, in the order given. */
static char *path_env(const struct export_ctx *c)
{
    char *acc = xstrdup("PATH=");
    char base[STORE_BASENAME_MAX + 1];
    for (size_t i = 0; i < c->nroots; i++) {
        store_path_basename(&c->roots[i], base);
        add_bin(c, base, &acc);
    }
    for (size_t i = 0; i < c->nclosure; i++) {
        bool root = false;
        for (size_t j = 0; j < c->nroots && !root; j++)
            root = store_path_cmp(&c->closure[i], &c->roots[j]) == 0;
        if (!root)
            add_bin(c, c->bases[i], &acc);
    }
    return acc;
}

/* The image's name for docker: the first path's name, as a repository name may be. */
static char *repo_name(const struct store_path *p)
{
    _cleanup_free_ char *n = store_name_package(p->name);
    char *out = xstrdup(n);
    for (char *q = out; *q; q++) {
        if (*q >= 'A' && *q <= 'Z')
            *q = (char)(*q - 'A' + 'a');
        else if (!((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '.' ||
                   *q == '_' || *q == '-'))
            *q = '_';
    }
    if (!((out[0] >= 'a' && out[0] <= 'z') || (out[0] >= '0' && out[0] <= '9'))) {
        free(out);
        out = xstrdup("runix-export");
    }
    return out;
}

static json_t *labels(const struct export_ctx *c)
{
    char *roots = xstrdup("");
    for (size_t i = 0; i < c->nroots; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&c->roots[i], full);
        char *next = xasprintf("%s%s%s", roots, i ? " " : "", full);
        free(roots);
        roots = next;
    }
    json_t *l = json_pack("{s:s,s:s}", "org.opencontainers.image.title", c->roots[0].name,
                          "dev.runix.store-paths", roots);
    free(roots);
    return l;
}

/*
 * Where the output may go: 0 when dest is absent or an empty directory (a
 * file, for an archive), after saying why not otherwise.  *kind is made
 * KIND_ARCHIVE for an existing file or a name ending in ".tar", unless is_dir
 * (the name was given with a trailing slash).
 */
static int check_dest(const char *dest, bool is_dir, enum export_kind *kind)
{
    struct stat st;
    size_t len = strlen(dest);
    bool exists = lstat(dest, &st) == 0;
    if (!exists && errno != ENOENT) {
        cli_cmd_error("export", "cannot use '%s': %s", dest, strerror(errno));
        return -1;
    }
    if (*kind == KIND_LAYOUT && !is_dir &&
        ((exists && S_ISREG(st.st_mode)) ||
         (!exists && len > 4 && strcmp(dest + len - 4, ".tar") == 0)))
        *kind = KIND_ARCHIVE;
    if (!exists)
        return 0;
    if (*kind == KIND_ARCHIVE) {
        if (S_ISREG(st.st_mode))
            return 0;
        cli_cmd_error("export", "cannot write '%s': it exists and is not a file", dest);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_cmd_error("export", "cannot write into '%s': it exists and is not a directory",
                      dest);
        return -1;
    }
    DIR *d = opendir(dest);
    size_t n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    if (!d || n) {
        cli_cmd_error("export", "'%s' is %s; give a new or empty directory", dest,
                      d ? "not empty" : "not readable");
        return -1;
    }
    return 0;
}

/* A new directory beside dest: "<dest>.tmp-XXXXXX"; NULL after saying why. */
static char *temp_beside(const char *dest)
{
    char *tmp = xasprintf("%s.tmp-XXXXXX", dest);
    if (!mkdtemp(tmp)) {
        cli_cmd_error("export", "cannot create a directory beside '%s': %s", dest,
                      strerror(errno));
        free(tmp);
        return NULL;
    }
    return tmp;
}

static int write_rootfs(struct export_ctx *c, const char *dir, const char *entry,
                        struct rx_error **err)
{
    _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    size_t ncopied = 0;
    if (fd < 0)
        return rx_error_errno(err, "cannot open '%s'", dir);
    if (export_rootfs(c->store_fd, c->bases, c->nclosure, fd, &ncopied, err) < 0)
        return -1;
    if (symlinkat(entry, fd, "init") < 0 || fchmod(fd, 0755 & ~cli_umask) < 0)
        return rx_error_errno(err, "cannot create '%s/init'", dir);
    if (ncopied && !c->s.quiet)
        fprintf(stderr, "runix export: %zu files copied (the store is on another file system "
                        "or not yours to link)\n", ncopied);
    return 0;
}

static int write_archive(const char *layout, const struct export_digests *d, const char *tag,
                         const char *dest, struct rx_error **err)
{
    _cleanup_close_ int lfd = open(layout, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lfd < 0)
        return rx_error_errno(err, "cannot open '%s'", layout);
    _cleanup_free_ char *tmp = xasprintf("%s.tmp-XXXXXX", dest);
    int out = mkostemp(tmp, O_CLOEXEC);
    if (out < 0)
        return rx_error_errno(err, "cannot write '%s'", dest);
    int r = export_docker_archive(lfd, d, tag, out, err);
    if (r == 0 && rx_interrupted)
        r = rx_error_set(err, EINTR, "interrupted");
    if (r == 0 && (fchmod(out, 0644 & ~cli_umask) < 0 || fsync(out) < 0))
        r = rx_error_errno(err, "cannot write '%s'", tmp);
    close(out);
    if (r == 0 && rename(tmp, dest) < 0)
        r = rx_error_errno(err, "cannot rename '%s' to '%s'", tmp, dest);
    if (r < 0)
        unlink(tmp);
    return r;
}

/* Build the output under a temporary name, then rename it to dest. */
static int write_output(struct export_ctx *c, enum export_kind kind, const char *dest,
                        const char *entry, bool one_layer)
{
    rx_catch_interrupts();
    _cleanup_free_ char *tmp = temp_beside(dest);
    if (!tmp) {
        rx_die_of_interrupt();
        return EXIT_FAIL;
    }
    struct rx_error *err = NULL;
    struct export_digests d = {0};
    _cleanup_free_ char *penv = path_env(c);
    _cleanup_free_ char *repo = repo_name(&c->roots[0]);
    _cleanup_free_ char *tag = xasprintf("%s:latest", repo);
    json_t *lab = labels(c);
    struct export_image im = {
        .store_fd = c->store_fd, .bases = c->bases, .nbases = c->nclosure,
        .one_layer = one_layer, .entry = entry, .path_env = penv, .labels = lab,
#if defined(__aarch64__)
        .arch = "arm64",
#else
        .arch = "amd64",
#endif
        .ref_name = "latest",
    };
    int r;
    if (kind == KIND_ROOTFS) {
        r = write_rootfs(c, tmp, entry, &err);
    } else {
        _cleanup_close_ int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        r = fd < 0 ? rx_error_errno(&err, "cannot open '%s'", tmp)
                   : export_oci_layout(&im, fd, &d, &err);
        if (r == 0 && kind == KIND_LAYOUT && fchmod(fd, 0755 & ~cli_umask) < 0)
            r = rx_error_errno(&err, "cannot set the mode of '%s'", tmp);
        if (r == 0 && kind == KIND_ARCHIVE)
            r = write_archive(tmp, &d, tag, dest, &err);
    }
    if (r == 0 && rx_interrupted)
        r = rx_error_set(&err, EINTR, "interrupted");
    if (r == 0 && kind != KIND_ARCHIVE && rename(tmp, dest) < 0)
        r = rx_error_errno(&err, "cannot rename '%s' to '%s'", tmp, dest);
    if (r < 0 || kind == KIND_ARCHIVE) {
        struct rx_error *e2 = NULL;
        if (rm_rf_at(AT_FDCWD, tmp, &e2) < 0) {
            cli_cmd_error("export", "warning: cannot remove '%s': %s", tmp, e2->msg);
            rx_error_free(e2);
        }
    }
    json_decref(lab);
    int ret = EXIT_OK;
    if (r < 0) {
        cli_cmd_error("export", "%s; nothing written to '%s'", err->msg, dest);
        rx_error_free(err);
        ret = EXIT_FAIL;
    } else if (!c->s.quiet) {
        if (kind == KIND_ROOTFS)
            fprintf(stderr, "runix export: wrote %s (%zu paths)\n", dest, c->nclosure);
        else
            fprintf(stderr, "runix export: wrote %s (%zu paths, %zu layers, manifest "
                            "sha256:%s)\n", dest, c->nclosure, d.nlayers, d.manifest);
    }
    /* A layout is named by its manifest's digest, a loaded archive by its config's (its ID). */
    if (ret == EXIT_OK && kind != KIND_ROOTFS)
        printf("sha256:%s\n", kind == KIND_LAYOUT ? d.manifest : d.config);
    export_digests_release(&d);
    rx_release_interrupts();
    rx_die_of_interrupt();
    return ret;
}

static void ctx_release(struct export_ctx *c)
{
    for (size_t i = 0; c->bases && i < c->nclosure; i++)
        free(c->bases[i]);
    free(c->bases);
    free(c->closure);
    free(c->roots);
    if (c->store_fd >= 0)
        close(c->store_fd);
    store_close(c->st);
    cli_settings_release(&c->s);
}

/* Parse the STOREPATH arguments into c->roots; EXIT_OK or EXIT_USAGE. */
static int parse_roots(struct export_ctx *c, int argc, char **argv)
{
    c->nroots = (size_t)argc;
    c->roots = xcalloc(c->nroots, sizeof *c->roots);
    for (int i = 0; i < argc; i++) {
        struct rx_error *err = NULL;
        if (store_path_parse(argv[i], strlen(argv[i]), &c->roots[i], &err) < 0) {
            int r = cli_usage_error("export", "%s", err->msg);
            rx_error_free(err);
            return r;
        }
    }
    return EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"rootfs", required_argument, NULL, OPT_ROOTFS},
        {"oci", required_argument, NULL, OPT_OCI},
        {"entry", required_argument, NULL, OPT_ENTRY},
        {"layers", required_argument, NULL, OPT_LAYERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct export_ctx c = {.store_fd = -1};
    const char *rootfs = NULL, *oci = NULL, *entry_arg = NULL, *layers = NULL;
    int opt, ret;
    optind = 0;
    while ((opt = getopt_long(argc, argv, "+:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&c.s, opt, optarg))
            continue;
        switch (opt) {
        case OPT_ROOTFS:
            rootfs = optarg;
            break;
        case OPT_OCI:
            oci = optarg;
            break;
        case OPT_ENTRY:
            entry_arg = optarg;
            break;
        case OPT_LAYERS:
            layers = optarg;
            break;
        case 'h':
            cli_settings_release(&c.s);
            return cli_print_help(export_usage);
        default:
            cli_settings_release(&c.s);
            return cli_option_error("export", opt, argv, opts);
        }
    }
    if (!rootfs == !oci)
        ret = cli_usage_error("export", rootfs ? "give --rootfs DIR or --oci DIR|FILE, not both"
                                               : "expected --rootfs DIR or --oci DIR|FILE");
    else if (layers && rootfs)
        ret = cli_usage_error("export", "--layers is for --oci images");
    else if (layers && strcmp(layers, "per-path") != 0 && strcmp(layers, "one") != 0)
        ret = cli_usage_error("export", "unknown --layers '%s' (per-path or one)", layers);
    else if (!*(rootfs ? rootfs : oci))
        ret = cli_usage_error("export", "the output's name is empty");
    else if (optind >= argc)
        ret = cli_usage_error("export", "expected at least one STOREPATH");
    else
        ret = parse_roots(&c, argc - optind, argv + optind);
    if (ret != EXIT_OK) {
        ctx_release(&c);
        return ret;
    }
    /* "DIR/" is DIR, and for --oci says it is to be a directory. */
    _cleanup_free_ char *dest = xstrdup(rootfs ? rootfs : oci);
    size_t dlen = strlen(dest);
    bool slash = dlen > 1 && dest[dlen - 1] == '/';
    while (dlen > 1 && dest[dlen - 1] == '/')
        dest[--dlen] = '\0';
    enum export_kind kind = rootfs ? KIND_ROOTFS : KIND_LAYOUT;
    struct rx_error *err = NULL;
    _cleanup_free_ char *entry = NULL;
    ret = EXIT_FAIL;
    if (cli_settings_finish(&c.s, &err) < 0) {
        ret = err->code == RX_EUSAGE ? (cli_cmd_error("export", "%s", err->msg),
                                        rx_error_free(err), EXIT_USAGE)
                                     : export_fail(err);
        goto out;
    }
    if (check_dest(dest, slash, &kind) < 0 || (ret = fetch_missing(&c)) != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    c.store_fd = openat(store_dir_fd(c.st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.store_fd < 0) {
        cli_cmd_error("export", "cannot open '%s/nix/store': %s", store_root(c.st),
                      strerror(errno));
        goto out;
    }
    c.bases = xcalloc(c.nclosure, sizeof *c.bases);
    for (size_t i = 0; i < c.nclosure; i++) {
        c.bases[i] = xmalloc(STORE_BASENAME_MAX + 1);
        store_path_basename(&c.closure[i], c.bases[i]);
    }
    if (!(entry = resolve_entry(&c, entry_arg)))
        goto out;
    ret = write_output(&c, kind, dest, entry, layers && strcmp(layers, "one") == 0);
out:
    ctx_release(&c);
    return ret;
}
