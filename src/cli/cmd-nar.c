/* runix nar: dump, restore, hash and list Nix archives. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "crypto-hash.h"
#include "nar-dump.h"
#include "nar-reader.h"
#include "nar-unpack.h"
#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"
#include "banned.h"

static const char nar_intro[] =
    "usage: runix nar COMMAND [ARGS...]\n"
    "\n"
    "Create, unpack, hash and list Nix archives (NAR).\n";

static const char nar_examples[] =
    "\n"
    "Examples:\n"
    "  runix nar hash /etc/skel\n"
    "  runix nar dump /etc/skel | runix nar ls -l -\n"
    "  runix help nar restore\n";

static const char dump_usage[] =
    "usage: runix nar dump PATH\n"
    "\n"
    "Write the NAR serialisation of PATH to standard output, byte for byte\n"
    "what 'nix-store --dump PATH' writes.  PATH is not followed if it is a\n"
    "symlink.\n"
    "\n"
    "Examples:\n"
    "  runix nar dump /etc/skel > skel.nar\n"
    "  runix nar dump /etc/skel | xz > skel.nar.xz\n";

static const char restore_usage[] =
    "usage: runix nar restore [--canonical] DIR\n"
    "\n"
    "Read a NAR from standard input and unpack it as DIR, which must not exist,\n"
    "like 'nix-store --restore DIR'.  The NAR is checked as it is read: a\n"
    "malformed, non-canonical or truncated archive is refused and DIR is\n"
    "removed again.\n"
    "\n"
    "  --canonical   give the result store permissions: files 0444 or 0555,\n"
    "                directories 0555, every mtime 1\n"
    "  -h, --help    show this help\n"
    "\n"
    "Examples:\n"
    "  runix nar dump /etc/skel | runix nar restore skel-copy\n"
    "  runix nar dump /etc/skel | xz | xz -dc | runix nar restore --canonical skel-store\n";

static const char hash_usage[] =
    "usage: runix nar hash [--base16|--base32|--sri] PATH\n"
    "\n"
    "Print the sha256 of PATH's NAR serialisation (its NarHash), as\n"
    "'sha256:<nix32>' by default.  The digest equals what\n"
    "'nix-hash --type sha256 --base32 PATH' prints.\n"
    "\n"
    "  --base16     print 'sha256:<hex>'\n"
    "  --base32     print 'sha256:<nix32>' (the default)\n"
    "  --sri        print 'sha256-<base64>'\n"
    "  --size       also print the NAR's size in bytes, after a tab\n"
    "  -h, --help   show this help\n"
    "\n"
    "Examples:\n"
    "  runix nar hash /etc/skel\n"
    "  runix nar hash --sri --size /etc/skel\n";

static const char ls_usage[] =
    "usage: runix nar ls [-l] NARFILE\n"
    "\n"
    "List every entry of the NAR in NARFILE ('-' for standard input), one path\n"
    "per line, as 'nix nar ls -R NARFILE /' does.  The whole archive is\n"
    "checked; a malformed one is an error.\n"
    "\n"
    "  -l, --long   show type, permissions and size, and symlink targets\n"
    "  -h, --help   show this help\n"
    "\n"
    "Examples:\n"
    "  runix nar dump /etc/skel > skel.nar && runix nar ls skel.nar\n"
    "  runix nar dump /etc/skel | runix nar ls -l -\n";

static bool want_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    }
    return false;
}

/* ---- dump ---- */

static int stdout_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)ctx;
    if (write_all(STDOUT_FILENO, data, len) < 0)
        return rx_error_errno(err, "cannot write to standard output");
    return 0;
}

static int cmd_nar_dump(int argc, char **argv)
{
    if (want_help(argc, argv))
        return cli_print_help(dump_usage);
    int first = (argc > 1 && strcmp(argv[1], "--") == 0) ? 2 : 1;
    if (argc - first != 1)
        return cli_usage_error("nar dump", "expected exactly one PATH");
    if (argv[first][0] == '-' && first == 1 && argv[first][1] != '\0')
        return cli_usage_error("nar dump", "unknown option '%s'", argv[first]);
    if (isatty(STDOUT_FILENO)) {
        cli_error("refusing to write a NAR to a terminal; redirect standard output");
        return EXIT_USAGE;
    }
    struct rx_error *err = NULL;
    if (nar_dump_path(argv[first], stdout_sink, NULL, &err) < 0) {
        rx_error_wrap(&err, "cannot dump '%s'", argv[first]);
        return cli_fail(err);
    }
    return EXIT_OK;
}

/* ---- restore ---- */

static int cmd_nar_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"canonical", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct nar_unpack_opts uo = {.canonical = false, .umask = cli_umask, .helper_thread = true};
    int c;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            uo.canonical = true;
            break;
        case 'h':
            return cli_print_help(restore_usage);
        default:
            return cli_option_error("nar restore", c, argv, opts);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("nar restore", "expected exactly one DIR");
    if (isatty(STDIN_FILENO)) {
        cli_error("refusing to read a NAR from a terminal; redirect standard input");
        return EXIT_USAGE;
    }

    const char *dir = argv[optind];
    _cleanup_free_ char *copy1 = xstrdup(dir);
    _cleanup_free_ char *copy2 = xstrdup(dir);
    const char *parent = dirname(copy1);
    const char *base = basename(copy2);
    if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
        cli_error("cannot restore into '%s': name a new directory", dir);
        return EXIT_USAGE;
    }
    _cleanup_close_ int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) {
        cli_error("cannot open directory '%s': %s", parent, strerror(errno));
        return EXIT_FAIL;
    }
    struct stat st;
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        cli_error("cannot restore into '%s': it already exists", dir);
        return EXIT_FAIL;
    }
    struct rx_error *err = NULL;
    if (nar_unpack_fd(STDIN_FILENO, pfd, base, &uo, &err) < 0) {
        rx_error_wrap(&err, "cannot restore '%s'", dir);
        return cli_fail(err);
    }
    return EXIT_OK;
}

/* ---- hash ---- */

static int cmd_nar_hash(int argc, char **argv)
{
    static const struct option opts[] = {
        {"base16", no_argument, NULL, '6'},
        {"base32", no_argument, NULL, '3'},
        {"sri", no_argument, NULL, 's'},
        {"size", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum hash_encoding enc = HASH_NIX32;
    bool show_size = false;
    int c;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (c) {
        case '6':
            enc = HASH_BASE16;
            break;
        case '3':
            enc = HASH_NIX32;
            break;
        case 's':
            enc = HASH_SRI;
            break;
        case 'S':
            show_size = true;
            break;
        case 'h':
            return cli_print_help(hash_usage);
        default:
            return cli_option_error("nar hash", c, argv, opts);
        }
    }
    if (argc - optind < 1)
        return cli_usage_error("nar hash", "expected a PATH");
    int ret = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct rx_error *err = NULL;
        struct hash h;
        uint64_t size;
        if (nar_hash_path(argv[i], &h, &size, &err) < 0) {
            rx_error_wrap(&err, "cannot hash '%s'", argv[i]);
            ret = cli_fail(err);
            continue;
        }
        char s[HASH_STR_MAX];
        hash_format(&h, enc, s);
        if (show_size)
            printf("%s\t%" PRIu64 "\n", s, size);
        else
            printf("%s\n", s);
    }
    if (fflush(stdout) != 0) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return EXIT_FAIL;
    }
    return ret;
}

/* ---- ls ---- */

struct ls_state {
    bool long_format;
    struct rx_buf path; /* "./a/b" of the current node */
    size_t *marks;      /* path lengths to return to at each directory end */
    size_t nmarks, marks_cap;
    FILE *out;
};

static int ls_enter(struct ls_state *s, const char *name, size_t n)
{
    if (s->nmarks == s->marks_cap) {
        s->marks_cap = s->marks_cap ? 2 * s->marks_cap : 16;
        s->marks = xrealloc(s->marks, s->marks_cap * sizeof *s->marks);
    }
    s->marks[s->nmarks++] = s->path.len;
    if (!name)
        return 0;
    if (rx_buf_append(&s->path, "/", 1) < 0 || rx_buf_append(&s->path, name, n) < 0)
        return -1;
    return 0;
}

static void ls_leave(struct ls_state *s)
{
    s->path.len = s->marks[--s->nmarks];
    if (s->path.data)
        s->path.data[s->path.len] = '\0';
}

static void ls_print(struct ls_state *s, const char *mode, uint64_t size, const char *target,
                     size_t tlen)
{
    /* nix prints the root of a one-node NAR as an empty path. */
    const char *p = s->path.len > 1 ? s->path.data : "";
    if (s->long_format) {
        fprintf(s->out, "%s %20" PRIu64 " %s", mode, size, p);
        if (target)
            fprintf(s->out, " -> %.*s", (int)tlen, target);
        fputc('\n', s->out);
    } else {
        fprintf(s->out, "%s\n", p);
    }
}

static int ls_dir_begin(void *ctx, const char *name, size_t n, struct rx_error **err)
{
    struct ls_state *s = ctx;
    if (ls_enter(s, name, n) < 0)
        return rx_error_set(err, RX_EFORMAT, "path too long");
    if (name)
        ls_print(s, "dr-xr-xr-x", 0, NULL, 0);
    return 0;
}

static int ls_dir_end(void *ctx, struct rx_error **err)
{
    (void)err;
    ls_leave(ctx);
    return 0;
}

static int ls_file_begin(void *ctx, const char *name, size_t n, bool exec, uint64_t size,
                         uint64_t offset, struct rx_error **err)
{
    struct ls_state *s = ctx;
    (void)offset;
    if (ls_enter(s, name, n) < 0)
        return rx_error_set(err, RX_EFORMAT, "path too long");
    ls_print(s, exec ? "-r-xr-xr-x" : "-r--r--r--", size, NULL, 0);
    ls_leave(s);
    return 0;
}

static int ls_symlink(void *ctx, const char *name, size_t n, const char *t, size_t tl,
                      struct rx_error **err)
{
    struct ls_state *s = ctx;
    if (ls_enter(s, name, n) < 0)
        return rx_error_set(err, RX_EFORMAT, "path too long");
    ls_print(s, "lrwxrwxrwx", 0, t, tl);
    ls_leave(s);
    return 0;
}

static const struct nar_visitor ls_visitor = {
    .directory_begin = ls_dir_begin,
    .directory_end = ls_dir_end,
    .file_begin = ls_file_begin,
    .symlink = ls_symlink,
};

static int cmd_nar_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"long", no_argument, NULL, 'l'},
        {"recursive", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct ls_state s = {.long_format = false, .path = RX_BUF_INIT(1 << 20), .out = stdout};
    int c;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, "+:lRh", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            s.long_format = true;
            break;
        case 'R':
            break; /* always recursive */
        case 'h':
            return cli_print_help(ls_usage);
        default:
            return cli_option_error("nar ls", c, argv, opts);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error("nar ls", "expected exactly one NARFILE");
    const char *file = argv[optind];
    _cleanup_close_ int fd = -1;
    int in = STDIN_FILENO;
    if (strcmp(file, "-") != 0) {
        fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_error("cannot open '%s': %s", file, strerror(errno));
            return EXIT_FAIL;
        }
        in = fd;
    }
    int r = rx_buf_append(&s.path, ".", 1);
    (void)r;

    struct rx_error *err = NULL;
    struct nar_reader *rd = nar_reader_new(&ls_visitor, &s);
    int ret = nar_reader_read_fd(rd, in, &err);
    nar_reader_free(rd);
    rx_buf_release(&s.path);
    free(s.marks);
    if (fflush(stdout) != 0 && ret == 0)
        ret = rx_error_errno(&err, "cannot write to standard output");
    if (ret < 0) {
        rx_error_wrap(&err, "'%s'", file);
        return cli_fail(err);
    }
    return EXIT_OK;
}

static const struct cli_command nar_commands[] = {
    {"dump", cmd_nar_dump, "write the NAR of a path to standard output"},
    {"restore", cmd_nar_restore, "unpack a NAR from standard input into a directory"},
    {"hash", cmd_nar_hash, "print the NAR hash (sha256) of a path"},
    {"ls", cmd_nar_ls, "list the contents of a NAR file"},
};

int cmd_nar(int argc, char **argv)
{
    return cli_dispatch("runix nar", nar_intro, nar_examples, nar_commands, ARRAY_SIZE(nar_commands), argc,
                        argv);
}
