/* Finding out whether the running runix is a bundle, and what it runs (cli-bundle.h). */
#include "config.h"
#include "cli-bundle.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "util-mem.h"

#include "banned.h"

const struct cli_bundle *cli_running_bundle;

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void bundle_trailer_encode(const struct bundle_trailer *t, unsigned char *out)
{
    put_le64(out, t->payload_off);
    put_le64(out + 8, t->manifest_off);
    put_le64(out + 16, t->manifest_len);
    memcpy(out + 24, t->sha256, 32);
    memcpy(out + 56, BUNDLE_MAGIC, 8);
}

void bundle_head_encode(uint64_t size, unsigned char *out)
{
    memcpy(out, BUNDLE_HEAD_MAGIC, 8);
    put_le64(out + 8, size);
}

/*
 * The running runix's mapped ELF header (GNU ld and lld define the symbol
 * when the header is in a loaded segment, as it is in every executable
 * they link), and from it where the file's ELF image ends: after the
 * section header table.  0 when that cannot be told.
 */
extern const Elf64_Ehdr __ehdr_start __attribute__((weak, visibility("hidden")));

static uint64_t elf_end(const Elf64_Ehdr *eh)
{
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shoff == 0)
        return 0;
    return eh->e_shoff + (uint64_t)eh->e_shnum * eh->e_shentsize;
}

static uint64_t image_end(void)
{
    const Elf64_Ehdr *eh = &__ehdr_start;
    return eh ? elf_end(eh) : 0;
}

/*
 * No trailer: is fd (of `size` bytes, its ELF image ending at `end`, or 0
 * when unknown) a bundle cut short?  Its head would be where the image
 * ends.  -1 with err when it is (or when the file ends before its own image
 * does); 0 when not, or when the image's end cannot be told.
 */
static int truncated(int fd, uint64_t size, uint64_t end, struct rx_error **err)
{
    Elf64_Ehdr eh;
    if (!end && pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh)
        end = elf_end(&eh);
    if (!end)
        return 0;
    if (end > size) /* cut inside its own image */
        return rx_error_set(err, RX_EFORMAT,
                            "this file is truncated: it ends (at %llu bytes) inside runix's "
                            "own ELF image",
                            (unsigned long long)size);
    unsigned char head[BUNDLE_HEAD_SIZE];
    if (size - end < sizeof head ||
        pread(fd, head, sizeof head, (off_t)end) != (ssize_t)sizeof head ||
        memcmp(head, BUNDLE_HEAD_MAGIC, 8) != 0)
        return 0;
    return rx_error_set(err, RX_EFORMAT,
                        "this bundle is truncated: it has %llu of its %llu bytes",
                        (unsigned long long)size, (unsigned long long)get_le64(head + 8));
}

int bundle_trailer_decode(const unsigned char *in, uint64_t size, struct bundle_trailer *t,
                          struct rx_error **err)
{
    if (memcmp(in + 56, BUNDLE_MAGIC, 8) != 0)
        return 0;
    t->payload_off = get_le64(in);
    t->manifest_off = get_le64(in + 8);
    t->manifest_len = get_le64(in + 16);
    memcpy(t->sha256, in + 24, 32);
    /* Each bound checked on its own, so that no sum can wrap. */
    if (size < BUNDLE_TRAILER_SIZE || t->manifest_len > BUNDLE_MANIFEST_MAX ||
        t->manifest_off > size - BUNDLE_TRAILER_SIZE ||
        t->manifest_len != size - BUNDLE_TRAILER_SIZE - t->manifest_off ||
        t->payload_off > t->manifest_off || t->payload_off == 0)
        return rx_error_set(err, RX_EFORMAT,
                            "the bundle's trailer does not fit its size (%llu bytes): the file "
                            "is truncated or damaged",
                            (unsigned long long)size);
    return 1;
}

void bundle_tag(const struct bundle_trailer *t, char out[BUNDLE_TAG_MAX])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "bundle-", 7);
    for (size_t i = 0; i < 16; i++) {
        out[7 + 2 * i] = hex[t->sha256[i] >> 4];
        out[8 + 2 * i] = hex[t->sha256[i] & 15];
    }
    out[7 + 32] = '\0';
}

void cli_bundle_release(struct cli_bundle *b)
{
    free(b->file);
    free(b->root);
    free(b->program);
    free(b->target);
    for (char **p = b->args; p && *p; p++)
        free(*p);
    free(b->args);
    for (char **p = b->env; p && *p; p++)
        free(*p);
    free(b->env);
    memset(b, 0, sizeof *b);
}

/* A JSON array of strings as a NULL-terminated array; NULL when it is not one. */
static char **strings(const json_t *a, bool env)
{
    if (!a)
        return xcalloc(1, sizeof(char *));
    if (!json_is_array(a))
        return NULL;
    size_t n = json_array_size(a);
    char **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(a, i));
        if (!s || (env && (!strchr(s, '=') || s[0] == '='))) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            return NULL;
        }
        v[i] = xstrdup(s);
    }
    return v;
}

int bundle_app_parse(const char *text, size_t len, struct cli_bundle *b, size_t *used,
                     struct rx_error **err)
{
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    if (!m)
        return rx_error_set(err, RX_EFORMAT, "the bundle's manifest is not JSON: %s", je.text);
    if (used)
        *used = (size_t)je.position;
    int ret = -1;
    json_t *fmt = json_object_get(m, "runix-bundle");
    json_t *roots = json_object_get(m, "roots");
    const char *root = json_string_value(json_array_get(roots, 0));
    json_t *prog = json_object_get(m, "program");
    if (!json_is_integer(fmt) || json_integer_value(fmt) != BUNDLE_FORMAT) {
        rx_error_set(err, RX_EFORMAT, "the bundle's format is not %d: it needs another runix",
                     BUNDLE_FORMAT);
    } else if (!root || strncmp(root, "/nix/store/", 11) != 0 || strchr(root + 11, '/')) {
        rx_error_set(err, RX_EFORMAT, "the bundle's manifest names no root store path");
    } else if (prog && !json_is_null(prog) &&
               (!json_is_string(prog) || !*json_string_value(prog) ||
                json_string_value(prog)[0] == '/' || strstr(json_string_value(prog), ".."))) {
        rx_error_set(err, RX_EFORMAT, "the bundle's program is not a relative path or a name");
    } else if (!(b->args = strings(json_object_get(m, "args"), false)) ||
               !(b->env = strings(json_object_get(m, "env"), true))) {
        rx_error_set(err, RX_EFORMAT, "the bundle's args or env are not lists of strings");
    } else if (!json_is_array(roots) || json_array_size(roots) > 1024) {
        rx_error_set(err, RX_EFORMAT, "the bundle's roots are not a list of store paths");
    } else {
        b->root = xstrdup(root);
        b->program = json_is_string(prog) ? xstrdup(json_string_value(prog)) : NULL;
        ret = 0;
    }
    json_decref(m);
    return ret;
}

/* The manifest's first document, from a prefix of it when that is enough. */
static int read_app(int fd, struct cli_bundle *b, struct rx_error **err)
{
    enum { PREFIX = 4096 }; /* an app document is a few hundred bytes */
    uint64_t want = b->t.manifest_len < PREFIX ? b->t.manifest_len : PREFIX;
    for (;;) {
        char *text = xmalloc(want + 1);
        ssize_t got = pread(fd, text, want, (off_t)b->t.manifest_off);
        if (got != (ssize_t)want) {
            free(text);
            if (got >= 0)
                errno = EIO;
            return rx_error_errno(err, "cannot read the bundle's manifest");
        }
        struct rx_error *e = NULL;
        int r = bundle_app_parse(text, want, b, NULL, &e);
        free(text);
        if (r == 0 || want == b->t.manifest_len) {
            if (r < 0)
                *err = e;
            return r;
        }
        rx_error_free(e);
        want = b->t.manifest_len;
    }
}

int cli_bundle_detect(struct cli_bundle *b, struct rx_error **err)
{
    memset(b, 0, sizeof *b);
    /*
     * The common case in one syscall: a file exactly as long as the ELF
     * image this process runs is a plain runix.
     */
    struct stat st;
    if (stat("/proc/self/exe", &st) < 0)
        return 0;
    uint64_t end = image_end(), size = (uint64_t)st.st_size;
    if (end && size == end)
        return 0;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size < BUNDLE_TRAILER_SIZE ||
        pread(fd, tr, sizeof tr, st.st_size - BUNDLE_TRAILER_SIZE) != (ssize_t)sizeof tr) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    size = (uint64_t)st.st_size;
    int r = bundle_trailer_decode(tr, size, &b->t, err);
    if (r == 0)
        r = truncated(fd, size, end, err);
    if (r > 0 && read_app(fd, b, err) < 0)
        r = -1;
    close(fd);
    if (r <= 0) {
        cli_bundle_release(b);
        return r;
    }
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) {
        rx_error_errno(err, "cannot tell where the bundle is (/proc/self/exe)");
        cli_bundle_release(b);
        return -1;
    }
    path[n] = '\0';
    b->file = xstrdup(path);
    bundle_tag(&b->t, b->tag);
    return 1;
}

char **cli_bundle_argv(struct cli_bundle *b, int argc, char **argv, int *out_argc)
{
    size_t nargs = 0;
    while (b->args[nargs])
        nargs++;
    for (char **e = b->env; *e; e++) {
        const char *eq = strchr(*e, '=');
        _cleanup_free_ char *name = xstrndup(*e, (size_t)(eq - *e));
        setenv(name, eq + 1, 1);
    }
    char **av = xcalloc(nargs + (size_t)argc + 8, sizeof *av);
    int k = 0;
    av[k++] = argv[0];
    av[k++] = (char *)"run";
    if (b->program && strchr(b->program, '/')) {
        /* "ROOT/bin/x": that file runs, everything after it is its. */
        free(b->target);
        b->target = xasprintf("%s/%s", b->root, b->program);
        av[k++] = b->target;
    } else {
        av[k++] = b->root;
        av[k++] = b->program ? b->program : (char *)"--";
    }
    for (size_t i = 0; i < nargs; i++)
        av[k++] = b->args[i];
    for (int i = 1; i < argc; i++)
        av[k++] = argv[i];
    av[k] = NULL;
    *out_argc = k;
    return av;
}
