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
 * No trailer: is fd (of `size` bytes) a bundle cut short?  Its head would be
 * where the ELF image ends, after the section header table.  -1 with err
 * when it is (or when the file ends before its own image does); 0 when
 * not, or when the image's end cannot be told.
 */
static int truncated(int fd, uint64_t size, struct rx_error **err)
{
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_shoff == 0)
        return 0;
    uint64_t end = eh.e_shoff + (uint64_t)eh.e_shnum * eh.e_shentsize;
    if (eh.e_shoff > size || end > size) /* cut inside its own image */
        return rx_error_set(err, RX_EFORMAT,
                            "this file is truncated: it ends (at %llu bytes) inside runix's "
                            "own ELF image",
                            (unsigned long long)size);
    unsigned char head[BUNDLE_HEAD_SIZE];
    if (end >= size || size - end < sizeof head ||
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

static int parse_manifest(struct cli_bundle *b, const char *text, size_t len,
                          struct rx_error **err)
{
    json_error_t je;
    json_t *m = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!m)
        return rx_error_set(err, RX_EFORMAT, "the bundle's manifest is not JSON: %s", je.text);
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
    } else {
        b->root = xstrdup(root);
        b->program = json_is_string(prog) ? xstrdup(json_string_value(prog)) : NULL;
        ret = 0;
    }
    json_decref(m);
    return ret;
}

int cli_bundle_detect(struct cli_bundle *b, struct rx_error **err)
{
    memset(b, 0, sizeof *b);
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    if (fstat(fd, &st) < 0 || st.st_size < BUNDLE_TRAILER_SIZE ||
        pread(fd, tr, sizeof tr, st.st_size - BUNDLE_TRAILER_SIZE) != (ssize_t)sizeof tr) {
        close(fd);
        return 0;
    }
    int r = bundle_trailer_decode(tr, (uint64_t)st.st_size, &b->t, err);
    if (r == 0)
        r = truncated(fd, (uint64_t)st.st_size, err);
    if (r <= 0) {
        close(fd);
        return r;
    }
    char *text = xmalloc(b->t.manifest_len + 1);
    ssize_t got = pread(fd, text, b->t.manifest_len, (off_t)b->t.manifest_off);
    int e = errno;
    close(fd);
    if (got != (ssize_t)b->t.manifest_len) {
        free(text);
        errno = got < 0 ? e : EIO;
        return rx_error_errno(err, "cannot read the bundle's manifest");
    }
    r = parse_manifest(b, text, b->t.manifest_len, err);
    free(text);
    char path[PATH_MAX];
    ssize_t n = r == 0 ? readlink("/proc/self/exe", path, sizeof path - 1) : -1;
    if (r == 0 && n <= 0) {
        rx_error_errno(err, "cannot tell where the bundle is (/proc/self/exe)");
        r = -1;
    }
    if (r < 0) {
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
