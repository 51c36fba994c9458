/*
 * runix bundle: write one executable file that runs an app with no network
 * and no runix installed (cli-bundle.h, docs/bundle.md).
 *
 * The closure is walked in the caches (a dry run into a scratch store, as
 * runix generate does), so that every path comes with the narinfo its cache
 * signed; each NAR file is then copied from its cache, as it is served,
 * after the static runix for the target architecture.  The output appears
 * whole or not at all: it is written beside FILE and renamed over it.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli-bundle.h"
#include "cli-dist.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "fetch.h"
#include "narinfo.h"
#include "store-path.h"
#include "store.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

enum { OPT_ARCH = 0x300, OPT_RUNIX, OPT_TRUST };

static const char bundle_usage[] =
    "usage: runix bundle [OPTIONS] -o FILE STOREPATH[/bin/PROGRAM]\n"
    "       runix bundle [OPTIONS] -o FILE DISTRIBUTABLE[#APP]\n"
    "\n"
    "Write FILE: one executable that runs the program on a Linux machine with no\n"
    "network and no runix.  It holds a static runix for the target architecture,\n"
    "the closure's NARs as the caches serve them, with their signed narinfos, and\n"
    "the caches' public keys.  Its first run imports the NARs into the user's store\n"
    "(checked by signature and hash as a download is: the bundle's keys vouch for\n"
    "its own closure only, and are never added to the trusted keys); later runs\n"
    "start at once.  Paths already in the store are not imported again.  Run it as\n"
    "'./FILE ARGS...'; with RUNIX_AS_RUNIX=1 set, it is the runix inside instead.\n"
    "\n"
    "The closure comes from the caches (the user's, and a distributable's once\n"
    "trusted), checked against the trusted keys.  The static runix is --runix FILE,\n"
    "else $RUNIX_DIST_DIR/runix-ARCH-linux, else this runix when it is a static\n"
    "release binary for ARCH, else runix-ARCH-linux beside it or in ../lib/runix.\n"
    "\n"
    "  -o, --output FILE         the bundle to write (replaced whole, mode 0755)\n"
    "      --arch ARCH           x86_64 or aarch64 (default: this machine's)\n"
    "      --runix FILE          the static runix to put in the bundle\n"
    "      --trust               trust a distributable's own caches and keys, once\n"
    CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 when FILE is written, 1 when it could not be, 2 for a bad\n"
    "command line.\n"
    "\n"
    "Examples:\n"
    "  runix bundle -o hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n"
    "  runix bundle -o hello /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10/bin/hello\n"
    "  runix bundle -o tool --arch aarch64 ./tool.runix#cli\n"
    "  runix bundle -o hello --runix dist/runix-x86_64-linux /nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n";

struct arch {
    const char *name;   /* as --arch takes it */
    const char *system; /* Nix's */
    unsigned machine;   /* ELF e_machine */
};

static const struct arch arches[] = {
    {"x86_64", "x86_64-linux", EM_X86_64},
    {"aarch64", "aarch64-linux", EM_AARCH64},
};

static const struct arch *host_arch(void)
{
#if defined(__aarch64__)
    return &arches[1];
#else
    return &arches[0];
#endif
}

/* What an ELF file is; -1 with why when it is not a 64-bit little-endian ELF executable. */
struct elf_kind {
    unsigned machine;
    bool is_static; /* no program interpreter */
};

static int elf_probe(int fd, const char *file, struct elf_kind *k, struct rx_error **err)
{
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN))
        return rx_error_set(err, RX_EFORMAT, "'%s' is not a 64-bit Linux executable", file);
    k->machine = eh.e_machine;
    k->is_static = true;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 4096)
        return rx_error_set(err, RX_EFORMAT, "'%s' has a damaged ELF header", file);
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
            return rx_error_set(err, RX_EFORMAT, "'%s' has a damaged ELF header", file);
        if (ph.p_type == PT_INTERP)
            k->is_static = false;
    }
    return 0;
}

/* The runix to put in the bundle: its fd, and how many bytes of it are runix. */
struct runix_src {
    int fd;
    char *file; /* owned */
    uint64_t len;
    bool is_static;
};

/*
 * Try `file` as the runix for arch: 1 when it is one (src filled), 0 when it
 * does not exist (or, unless `must`, is not a static one for arch), -1 with
 * err when `must` and it cannot be used.
 */
static int try_runix(const char *file, const struct arch *arch, bool must, struct runix_src *src,
                     struct rx_error **err)
{
    _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        if (!must && errno == ENOENT)
            return 0;
        return rx_error_errno(err, "cannot read '%s'", file);
    }
    if (!S_ISREG(st.st_mode))
        return must ? rx_error_set(err, RX_EFORMAT, "'%s' is not a regular file", file) : 0;
    struct elf_kind k = {0};
    struct rx_error *e = NULL;
    if (elf_probe(fd, file, &k, &e) < 0) {
        if (!must)
            return rx_error_free(e), 0;
        *err = e;
        return -1;
    }
    if (k.machine != arch->machine) {
        if (!must)
            return 0;
        return rx_error_set(err, RX_EFORMAT, "'%s' is not a runix for %s", file, arch->name);
    }
    if (!k.is_static && !must)
        return 0;
    /* A bundle's runix is the part before its payload. */
    uint64_t len = (uint64_t)st.st_size;
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    struct bundle_trailer t;
    if (st.st_size >= BUNDLE_TRAILER_SIZE &&
        pread(fd, tr, sizeof tr, st.st_size - BUNDLE_TRAILER_SIZE) == (ssize_t)sizeof tr &&
        bundle_trailer_decode(tr, (uint64_t)st.st_size, &t, NULL) > 0)
        len = t.payload_off;
    src->fd = fd;
    fd = -1;
    src->file = xstrdup(file);
    src->len = len;
    src->is_static = k.is_static;
    return 1;
}

static int find_runix(const char *given, const struct arch *arch, struct runix_src *src,
                      struct rx_error **err)
{
    if (given)
        return try_runix(given, arch, true, src, err) < 0 ? -1 : 0;
    _cleanup_free_ char *name = xasprintf("runix-%s-linux", arch->name);
    const char *dist = getenv("RUNIX_DIST_DIR");
    if (dist && *dist) {
        _cleanup_free_ char *f = xasprintf("%s/%s", dist, name);
        int r = try_runix(f, arch, true, src, err);
        if (r < 0 || (r > 0 && !src->is_static)) {
            if (r > 0)
                rx_error_set(err, RX_EFORMAT, "'%s' is not statically linked", f);
            return -1;
        }
        return 0;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        int r = try_runix(self, arch, false, src, err);
        if (r != 0)
            return r < 0 ? -1 : 0;
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            const char *rels[] = {"", "/../lib/runix"};
            for (size_t i = 0; i < ARRAY_SIZE(rels); i++) {
                _cleanup_free_ char *f = xasprintf("%s%s/%s", self, rels[i], name);
                if ((r = try_runix(f, arch, false, src, err)) != 0)
                    return r < 0 ? -1 : 0;
            }
        }
    }
    return rx_error_set(err, RX_ENOTFOUND,
                        "no static runix for %s: give one with --runix FILE, set "
                        "RUNIX_DIST_DIR to the directory of %s (scripts/release.sh builds it "
                        "in dist/), or run a release build of runix",
                        arch->name, name);
}

struct bundle_ctx {
    struct cli_settings s;
    json_t *paths;  /* the manifest's "paths" */
    struct fetch_plan_entry *plan; /* copies; narinfo and cache_url owned */
    size_t nplan;
    int out;        /* the output file */
    uint64_t pos;   /* bytes written to it */
    struct sha256_ctx sha;
    uint64_t got;
};

static void on_plan(void *ctx, const struct fetch_plan_entry *e, size_t n)
{
    struct bundle_ctx *b = ctx;
    b->plan = xcalloc(n ? n : 1, sizeof *b->plan);
    for (size_t i = 0; i < n; i++) {
        b->plan[i] = e[i];
        b->plan[i].narinfo = xstrdup(e[i].narinfo);
        b->plan[i].cache_url = xstrdup(e[i].cache_url);
        b->plan[i].refs = NULL;
        b->plan[i].nrefs = 0;
    }
    b->nplan = n;
}

/* The closure, each path with its cache's narinfo: a dry run into a scratch store. */
static int walk(struct bundle_ctx *b, const struct store_path *roots, size_t n)
{
    const char *tmpdir = getenv("TMPDIR");
    _cleanup_free_ char *dir = xasprintf("%s/runix-bundle-walk.XXXXXX",
                                         tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir))
        return cli_cmd_error("bundle", "cannot make a scratch directory: %s", strerror(errno)),
               -1;
    struct store *st = NULL;
    struct rx_error *err = NULL;
    int ret = 0;
    if (store_open(dir, &st, &err) < 0) {
        cli_fail(err);
        ret = -1;
    } else {
        struct fetch_opts fo;
        cli_settings_fetch_opts(&b->s, &fo);
        struct fetch_events ev = {.ctx = b, .dry_run = on_plan};
        fo.events = &ev;
        fo.dry_run = true;
        if (fetch_closure(st, &fo, roots, n, &err) < 0) {
            cli_cmd_error("bundle", "%s", err->msg);
            rx_error_free(err);
            cli_cmd_error("bundle", "the caches do not have the whole closure: nothing written");
            ret = -1;
        }
        store_close(st);
    }
    if (rm_rf_at(AT_FDCWD, dir, NULL) < 0)
        cli_cmd_error("bundle", "warning: cannot remove '%s'", dir);
    return ret;
}

static int sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct bundle_ctx *b = ctx;
    if (write_all(b->out, data, len) < 0)
        return rx_error_errno(err, "cannot write the bundle");
    sha256_update(&b->sha, data, len);
    b->pos += len;
    b->got += len;
    return 0;
}

/* Append path e's NAR file, as its cache serves it, and its manifest entry. */
static int add_nar(struct bundle_ctx *b, const struct fetch_plan_entry *e, struct rx_error **err)
{
    struct narinfo ni = NARINFO_INIT;
    char full[STORE_PATH_MAX + 1];
    store_path_format(&e->path, full);
    if (narinfo_parse(e->narinfo, strlen(e->narinfo), &ni, err) < 0)
        return rx_error_wrap(err, "narinfo of '%s'", full);
    const struct cache *c = NULL;
    for (size_t i = 0; i < b->s.ncaches && !c; i++)
        if (strcmp(b->s.caches[i].url, e->cache_url) == 0)
            c = &b->s.caches[i];
    int r = -1;
    _cleanup_free_ char *url = NULL;
    if (!c) {
        rx_error_set(err, RX_ENOTFOUND, "'%s' came from %s, which is not configured", full,
                     e->cache_url);
        goto out;
    }
    url = cache_file_url(c, ni.url);
    struct fetch_opts fo;
    cli_settings_fetch_opts(&b->s, &fo);
    struct fetch_stream fs = {.sink = sink, .ctx = b};
    uint64_t start = b->pos;
    b->got = 0;
    sha256_init(&b->sha);
    r = fetch_stream(url, &fo, &fs, err);
    fetch_stream_release(&fs);
    if (r < 0) {
        rx_error_wrap(err, "cannot download the NAR of '%s'", full);
        goto out;
    }
    struct hash h;
    sha256_final(&b->sha, &h);
    r = -1;
    if ((ni.has_file_size && ni.file_size != b->got) ||
        (ni.has_file_hash && ni.file_hash.algo == h.algo && !hash_equal(&ni.file_hash, &h))) {
        rx_error_set(err, RX_EHASH, "the NAR file of '%s' from %s does not match its narinfo's "
                                    "FileHash or FileSize", full, e->cache_url);
        goto out;
    }
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(full));
    json_object_set_new(o, "narinfo", json_string(e->narinfo));
    json_object_set_new(o, "offset", json_integer((json_int_t)start));
    json_object_set_new(o, "size", json_integer((json_int_t)b->got));
    json_array_append_new(b->paths, o);
    r = 0;
out:
    narinfo_release(&ni);
    return r;
}

/* The keys in force that sign a narinfo of the closure: what the bundle carries. */
static json_t *used_keys(const struct bundle_ctx *b)
{
    json_t *keys = json_array();
    for (size_t k = 0; k < b->s.keys.n; k++) {
        struct trusted_keys one = {&b->s.keys.keys[k], 1};
        bool used = false;
        for (size_t i = 0; i < b->nplan && !used; i++) {
            struct narinfo ni = NARINFO_INIT;
            if (narinfo_parse(b->plan[i].narinfo, strlen(b->plan[i].narinfo), &ni, NULL) == 0)
                used = narinfo_verify(&ni, &one, NULL) == 0;
            narinfo_release(&ni);
        }
        if (used) {
            char s[SIG_STR_MAX];
            public_key_format(&b->s.keys.keys[k], s);
            json_array_append_new(keys, json_string(s));
        }
    }
    return keys;
}

static json_t *str_array(char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

/* Copy the runix, the NARs, the manifest and the trailer into b->out. */
static int write_bundle(struct bundle_ctx *b, const struct runix_src *src, json_t *manifest,
                        json_t *keys, struct rx_error **err)
{
    loff_t in = 0;
    uint64_t left = src->len;
    while (left > 0) {
        ssize_t n = copy_file_range(src->fd, &in, b->out, NULL, left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        left -= (uint64_t)n;
    }
    char buf[1 << 16];
    while (left > 0) {
        ssize_t n = pread(src->fd, buf, left < sizeof buf ? (size_t)left : sizeof buf, in);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return rx_error_errno(err, "cannot read '%s'", src->file);
        }
        if (write_all(b->out, buf, (size_t)n) < 0)
            return rx_error_errno(err, "cannot write the bundle");
        in += n;
        left -= (uint64_t)n;
    }
    /* The head, its size filled in at the end. */
    unsigned char head[BUNDLE_HEAD_SIZE];
    bundle_head_encode(0, head);
    if (lseek(b->out, (off_t)src->len, SEEK_SET) < 0 || write_all(b->out, head, sizeof head) < 0)
        return rx_error_errno(err, "cannot write the bundle");
    b->pos = src->len + sizeof head;
    for (size_t i = 0; i < b->nplan; i++)
        if (add_nar(b, &b->plan[i], err) < 0)
            return -1;
    /* The app first, what every run reads; then what only the import does. */
    json_t *rest = json_pack("{s:O,s:O}", "keys", keys, "paths", b->paths);
    _cleanup_free_ char *app = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
    _cleanup_free_ char *tail = rest ? json_dumps(rest, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(rest);
    if (!app || !tail)
        return rx_error_set(err, ENOMEM, "cannot write the manifest");
    _cleanup_free_ char *text = xasprintf("%s\n%s\n", app, tail);
    struct bundle_trailer t = {.payload_off = src->len, .manifest_off = b->pos,
                               .manifest_len = strlen(text)};
    struct hash h;
    sha256_buf(text, t.manifest_len, &h);
    memcpy(t.sha256, h.bytes, 32);
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    bundle_trailer_encode(&t, tr);
    b->pos += t.manifest_len + sizeof tr;
    bundle_head_encode(b->pos, head);
    if (write_all(b->out, text, t.manifest_len) < 0 || write_all(b->out, tr, sizeof tr) < 0 ||
        pwrite(b->out, head, sizeof head, (off_t)src->len) != (ssize_t)sizeof head ||
        fchmod(b->out, 0755 & ~cli_umask) < 0 || fsync(b->out) < 0)
        return rx_error_errno(err, "cannot write the bundle");
    return 0;
}

int cmd_bundle(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"output", required_argument, NULL, 'o'},
        {"arch", required_argument, NULL, OPT_ARCH},
        {"runix", required_argument, NULL, OPT_RUNIX},
        {"trust", no_argument, NULL, OPT_TRUST},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct bundle_ctx b = {.out = -1};
    const char *output = NULL, *runix_file = NULL;
    const struct arch *arch = host_arch();
    bool trust = false;
    int c, ret = EXIT_FAIL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:o:qh", opts, NULL)) != -1) {
        if (cli_settings_option(&b.s, c, optarg))
            continue;
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case OPT_ARCH:
            arch = NULL;
            for (size_t i = 0; i < ARRAY_SIZE(arches) && !arch; i++)
                if (strcmp(optarg, arches[i].name) == 0 || strcmp(optarg, arches[i].system) == 0)
                    arch = &arches[i];
            if (!arch) {
                cli_settings_release(&b.s);
                return cli_usage_error("bundle", "unknown architecture '%s' (x86_64 or "
                                                 "aarch64)", optarg);
            }
            break;
        case OPT_RUNIX:
            runix_file = optarg;
            break;
        case OPT_TRUST:
            trust = true;
            break;
        case 'h':
            cli_settings_release(&b.s);
            return cli_print_help(bundle_usage);
        default:
            cli_settings_release(&b.s);
            return cli_option_error("bundle", c, argv, opts);
        }
    }
    if (!output || !*output || optind != argc - 1) {
        cli_settings_release(&b.s);
        return cli_usage_error("bundle", !output || !*output ? "expected -o FILE"
                                                             : "expected one STOREPATH or "
                                                               "DISTRIBUTABLE");
    }
    const char *ref = argv[optind];
    struct cli_dist cd = {0};
    struct runix_src src = {.fd = -1};
    struct rx_error *err = NULL;
    struct store_path *roots = NULL;
    size_t nroots = 0;
    _cleanup_free_ char *tmp = NULL;
    json_t *manifest = json_object(), *keys = NULL;
    b.paths = json_array();
    json_object_set_new(manifest, "runix-bundle", json_integer(BUNDLE_FORMAT));
    json_object_set_new(manifest, "system", json_string(arch->system));
    json_object_set_new(manifest, "label", json_string(ref));

    if (cli_dist_is_ref(ref)) {
        if (cli_dist_is_remote(ref)) {
            ret = cli_usage_error("bundle", "download the distributable first: a bundle is "
                                            "made from a local file");
            goto out;
        }
        if ((ret = cli_dist_open("bundle", ref, true, &cd)) != EXIT_OK)
            goto out;
        ret = EXIT_FAIL;
        const struct dist_system *sys = dist_system_find(&cd.d, cd.label, arch->system, &err);
        if (!sys) {
            cli_cmd_error("bundle", "%s", err->msg);
            rx_error_free(err);
            goto out;
        }
        nroots = sys->npaths;
        roots = xcalloc(nroots, sizeof *roots);
        memcpy(roots, sys->paths, nroots * sizeof *roots);
        const struct dist_app *app = cd.app;
        json_object_set_new(manifest, "program",
                            app->program ? json_string(app->program) : json_null());
        json_object_set_new(manifest, "args", str_array(app->args, app->nargs));
        json_object_set_new(manifest, "env", str_array(app->env, app->nenv));
    } else {
        const char *sub = "";
        nroots = 1;
        roots = xcalloc(1, sizeof *roots);
        if (store_path_parse_with_subpath(ref, strlen(ref), &roots[0], &sub, &err) < 0) {
            ret = cli_usage_error("bundle", "%s", err->msg);
            rx_error_free(err);
            goto out;
        }
        while (*sub == '/')
            sub++;
        json_object_set_new(manifest, "program", *sub ? json_string(sub) : json_null());
    }
    json_t *jroots = json_array();
    for (size_t i = 0; i < nroots; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&roots[i], full);
        json_array_append_new(jroots, json_string(full));
    }
    json_object_set_new(manifest, "roots", jroots);

    if (cli_settings_finish(&b.s, &err) < 0) {
        ret = err && err->code == RX_EUSAGE ? (cli_cmd_error("bundle", "%s", err->msg),
                                               rx_error_free(err), EXIT_USAGE)
                                            : cli_fail(err);
        goto out;
    }
    if (cd.raw && (ret = cli_dist_trust("bundle", &cd, &b.s, trust)) != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    if (find_runix(runix_file, arch, &src, &err) < 0) {
        cli_cmd_error("bundle", "%s", err->msg);
        rx_error_free(err);
        goto out;
    }
    if (!src.is_static)
        cli_cmd_error("bundle", "warning: '%s' is dynamically linked: the bundle runs only "
                                "where its libraries and runix's other parts are",
                      src.file);
    if (walk(&b, roots, nroots) < 0)
        goto out;
    keys = used_keys(&b);
    if (json_array_size(keys) == 0) {
        cli_cmd_error("bundle", "no trusted key signs the closure's narinfos: a bundle "
                                "carries signed paths only");
        goto out;
    }

    tmp = xasprintf("%s.XXXXXX", output);
    b.out = mkostemp(tmp, O_CLOEXEC);
    if (b.out < 0) {
        cli_cmd_error("bundle", "cannot write '%s': %s", output, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    if (write_bundle(&b, &src, manifest, keys, &err) < 0 || rename(tmp, output) < 0) {
        if (!err)
            rx_error_errno(&err, "cannot rename '%s' to '%s'", tmp, output);
        unlink(tmp);
        cli_cmd_error("bundle", "%s; nothing written", err->msg);
        rx_error_free(err);
        goto out;
    }
    if (!b.s.quiet)
        fprintf(stderr, "runix bundle: wrote %s (%s, %zu paths, %llu bytes)\n", output,
                arch->system, b.nplan, (unsigned long long)b.pos);
    ret = EXIT_OK;
out:
    if (b.out >= 0)
        close(b.out);
    if (src.fd >= 0)
        close(src.fd);
    free(src.file);
    for (size_t i = 0; i < b.nplan; i++) {
        free((char *)b.plan[i].narinfo);
        free((char *)b.plan[i].cache_url);
    }
    free(b.plan);
    free(roots);
    json_decref(b.paths);
    json_decref(keys);
    json_decref(manifest);
    cli_dist_release(&cd);
    cli_settings_release(&b.s);
    return ret;
}
