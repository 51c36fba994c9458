/*
 * runix-core's half of bundles (cli-bundle.h): reading a bundle's manifest
 * whole, and laying its NARs out as a binary cache for the import.
 *
 * The import is an ordinary fetch (fetch.h) from a file:// cache in a
 * private temporary directory that holds the narinfos and NAR files of the
 * paths the store lacks, copied out of the bundle.  Each narinfo's
 * signature and each NAR file's FileHash are checked while it is laid out,
 * so that a damaged bundle is refused before any of it is imported; then
 * the fetch gives its paths every check a download gets: the narinfo's signature by one of the bundle's keys, the
 * FileHash and FileSize, the NarHash and NarSize, and the atomic install.
 * The bundle's keys are used for that fetch and that tagged closure index
 * only; they are never written anywhere.
 */
#include "config.h"
#include "cli-bundle-core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "crypto-hash.h"
#include "narinfo.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

void bundle_manifest_release(struct bundle_manifest *m)
{
    free(m->roots);
    for (size_t i = 0; i < m->npaths; i++)
        free(m->paths[i].narinfo);
    free(m->paths);
    trusted_keys_release(&m->keys);
    memset(m, 0, sizeof *m);
}

static int bad(struct rx_error **err, const char *file, const char *what)
{
    return rx_error_set(err, RX_EFORMAT, "'%s' is a damaged bundle: %s; download it again", file,
                        what);
}

static int parse_paths(const char *file, const json_t *arr, const struct bundle_trailer *t,
                       struct bundle_manifest *m, struct rx_error **err)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return bad(err, file, "its manifest lists no paths");
    m->npaths = json_array_size(arr);
    m->paths = xcalloc(m->npaths, sizeof *m->paths);
    for (size_t i = 0; i < m->npaths; i++) {
        const json_t *e = json_array_get(arr, i);
        const char *path = json_string_value(json_object_get(e, "path"));
        const char *ni = json_string_value(json_object_get(e, "narinfo"));
        const json_t *off = json_object_get(e, "offset"), *size = json_object_get(e, "size");
        struct bundle_entry *be = &m->paths[i];
        if (!path || !ni || !json_is_integer(off) || !json_is_integer(size) ||
            store_path_parse(path, strlen(path), &be->path, NULL) < 0)
            return bad(err, file, "a path of its manifest lacks a field");
        json_int_t o = json_integer_value(off), n = json_integer_value(size);
        /* The NAR file lies inside the payload, before the manifest. */
        if (o < 0 || n < 0 || (uint64_t)o < t->payload_off || (uint64_t)o > t->manifest_off ||
            (uint64_t)n > t->manifest_off - (uint64_t)o)
            return bad(err, file, "a NAR's place in it lies outside its payload");
        be->offset = (uint64_t)o;
        be->size = (uint64_t)n;
        be->narinfo = xstrdup(ni);
    }
    return 0;
}

int bundle_manifest_read(const char *file, struct bundle_manifest *m, int *fd_out,
                         struct rx_error **err)
{
    memset(m, 0, sizeof *m);
    _cleanup_close_ int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return rx_error_errno(err, "cannot read the bundle '%s'", file);
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    if (st.st_size < BUNDLE_TRAILER_SIZE ||
        pread(fd, tr, sizeof tr, st.st_size - BUNDLE_TRAILER_SIZE) != (ssize_t)sizeof tr)
        return bad(err, file, "it is too short to have a trailer");
    struct rx_error *e = NULL;
    int r = bundle_trailer_decode(tr, (uint64_t)st.st_size, &m->t, &e);
    if (r == 0)
        return rx_error_set(err, RX_EFORMAT, "'%s' is not a runix bundle (no trailer)", file);
    if (r < 0) {
        bad(err, file, e->msg);
        rx_error_free(e);
        return -1;
    }
    _cleanup_free_ char *text = xmalloc(m->t.manifest_len + 1);
    if (pread(fd, text, m->t.manifest_len, (off_t)m->t.manifest_off) !=
        (ssize_t)m->t.manifest_len)
        return bad(err, file, "its manifest cannot be read whole");
    struct hash h;
    sha256_buf(text, m->t.manifest_len, &h);
    if (memcmp(h.bytes, m->t.sha256, 32) != 0)
        return bad(err, file, "its manifest does not match the checksum in its trailer");
    /* Two documents: the app, then the keys and paths (cli-bundle.h). */
    json_error_t je;
    json_t *j = json_loadb(text, m->t.manifest_len,
                           JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK, &je);
    if (!j)
        return bad(err, file, "its manifest is not JSON");
    size_t used = (size_t)je.position;
    json_t *rest = used <= m->t.manifest_len
                       ? json_loadb(text + used, m->t.manifest_len - used,
                                    JSON_REJECT_DUPLICATES, &je)
                       : NULL;
    r = -1;
    const json_t *roots = json_object_get(j, "roots"), *keys = json_object_get(rest, "keys");
    if (!rest) {
        bad(err, file, "its manifest lacks its list of paths");
        goto out;
    }
    if (!json_is_array(roots) || json_array_size(roots) == 0 || !json_is_array(keys)) {
        bad(err, file, "its manifest has no roots or no keys");
        goto out;
    }
    m->nroots = json_array_size(roots);
    m->roots = xcalloc(m->nroots, sizeof *m->roots);
    for (size_t i = 0; i < m->nroots; i++) {
        const char *p = json_string_value(json_array_get(roots, i));
        if (!p || store_path_parse(p, strlen(p), &m->roots[i], NULL) < 0) {
            bad(err, file, "a root of its manifest is not a store path");
            goto out;
        }
    }
    for (size_t i = 0; i < json_array_size(keys); i++) {
        const char *k = json_string_value(json_array_get(keys, i));
        if (!k || trusted_keys_add(&m->keys, k, strlen(k), NULL) < 0) {
            bad(err, file, "a key of its manifest is not a public key");
            goto out;
        }
    }
    if (parse_paths(file, json_object_get(rest, "paths"), &m->t, m, err) < 0)
        goto out;
    bundle_tag(&m->t, m->tag);
    if (fd_out) {
        *fd_out = fd;
        fd = -1;
    }
    r = 0;
out:
    json_decref(j);
    json_decref(rest);
    if (r < 0)
        bundle_manifest_release(m);
    return r;
}

/*
 * Copy len bytes at off of in into the new file dir_fd/rel, hashing them
 * into *h (SHA-256).
 */
static int copy_out(int in, uint64_t off, uint64_t len, int dir_fd, const char *rel,
                    struct hash *h, struct rx_error **err)
{
    _cleanup_close_ int out = openat(dir_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return rx_error_errno(err, "cannot write '%s'", rel);
    struct sha256_ctx sha;
    sha256_init(&sha);
    enum { BUF = 1 << 17 };
    _cleanup_free_ char *buf = xmalloc(BUF);
    uint64_t pos = off, left = len;
    while (left > 0) {
        size_t want = left < BUF ? (size_t)left : BUF;
        ssize_t n = pread(in, buf, want, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return rx_error_errno(err, "cannot read the bundle");
        }
        sha256_update(&sha, buf, (size_t)n);
        if (write_all(out, buf, (size_t)n) < 0)
            return rx_error_errno(err, "cannot write '%s'", rel);
        pos += (uint64_t)n;
        left -= (uint64_t)n;
    }
    sha256_final(&sha, h);
    return 0;
}

/*
 * Lay out entry e as <hash>.narinfo and its URL in dir_fd, once its
 * narinfo is signed by one of keys and its NAR file matches the FileSize
 * and FileHash.
 */
static int lay_out(int in, const struct bundle_entry *e, const struct trusted_keys *keys,
                   int dir_fd, struct rx_error **err)
{
    struct narinfo ni = NARINFO_INIT;
    char full[STORE_PATH_MAX + 1];
    store_path_format(&e->path, full);
    if (narinfo_parse(e->narinfo, strlen(e->narinfo), &ni, err) < 0)
        return rx_error_wrap(err, "the bundle's narinfo of '%s'", full);
    int r = -1;
    _cleanup_free_ char *name = xasprintf("%s.narinfo", e->path.hash);
    if (store_path_cmp(&ni.path, &e->path) != 0) {
        rx_error_set(err, RX_EFORMAT, "the bundle's narinfo of '%s' is for another path", full);
    } else if (narinfo_verify(&ni, keys, err) < 0) {
        /* Checked here, before anything is imported: a bundle is taken whole or not at all. */
        rx_error_wrap(err, "the bundle's narinfo of '%s' is not signed by its keys; the bundle "
                           "is damaged or forged, and nothing of it was imported",
                      full);
    } else if ((ni.has_file_size && ni.file_size != e->size) ||
               (!ni.has_file_size && e->size == 0)) {
        rx_error_set(err, RX_EFORMAT, "the bundle's NAR file of '%s' is not the size its narinfo "
                                      "gives; the bundle is damaged, and nothing of it was imported",
                     full);
    } else if (write_data_atomic_at(dir_fd, name, e->narinfo, strlen(e->narinfo), 0600, false,
                                    err) < 0) {
        rx_error_wrap(err, "cannot lay out the bundle");
    } else {
        /* The URL is relative and without "..": narinfo_parse() saw to it. */
        _cleanup_free_ char *dir = xstrdup(ni.url);
        char *slash = strrchr(dir, '/');
        if (slash) {
            *slash = '\0';
            int sub = -1;
            if (mkdir_p_at(dir_fd, dir, &sub, err) < 0)
                goto out;
            close(sub);
        }
        /* Two paths may share a NAR file (the same URL): the first one serves both. */
        struct stat st;
        struct hash h;
        if (fstatat(dir_fd, ni.url, &st, AT_SYMLINK_NOFOLLOW) == 0)
            r = 0;
        else if ((r = copy_out(in, e->offset, e->size, dir_fd, ni.url, &h, err)) == 0 &&
                 ni.has_file_hash && ni.file_hash.algo == h.algo &&
                 !hash_equal(&ni.file_hash, &h))
            r = rx_error_set(err, RX_EHASH,
                             "the bundle's NAR file of '%s' does not match its FileHash; the "
                             "bundle is damaged, and nothing of it was imported",
                             full);
    }
out:
    narinfo_release(&ni);
    return r;
}

/* The private directory, made on first need. */
static int make_dir(struct bundle_cache *bc, int *dir_fd, struct rx_error **err)
{
    const char *tmp = getenv("TMPDIR");
    bc->dir = xasprintf("%s/runix-bundle.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(bc->dir)) {
        rx_error_errno(err, "cannot make a directory for the bundle's import in '%s'",
                       tmp && *tmp ? tmp : "/tmp");
        free(bc->dir);
        bc->dir = NULL;
        return -1;
    }
    *dir_fd = open(bc->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*dir_fd < 0)
        return rx_error_errno(err, "cannot open '%s'", bc->dir);
    return write_data_atomic_at(*dir_fd, "nix-cache-info", "StoreDir: /nix/store\n", 21, 0600,
                                false, err);
}

int bundle_import_prepare(const struct bundle_manifest *m, int bundle_fd, struct store *st,
                          struct bundle_cache *bc, struct rx_error **err)
{
    memset(bc, 0, sizeof *bc);
    _cleanup_close_ int dir_fd = -1;
    for (size_t i = 0; i < m->npaths; i++) {
        int v = store_is_valid(st, &m->paths[i].path, err);
        if (v < 0)
            return -1;
        if (v > 0) /* already in the store: not imported again */
            continue;
        if (!bc->dir && make_dir(bc, &dir_fd, err) < 0)
            return -1;
        if (lay_out(bundle_fd, &m->paths[i], &m->keys, dir_fd, err) < 0)
            return -1;
        bc->nlaid++;
    }
    if (!bc->dir) /* everything is there: the fetch only checks and writes the index */
        return 0;
    _cleanup_free_ char *url = xasprintf("file://%s", bc->dir);
    if (cache_init(&bc->cache, url, 0, err) < 0)
        return -1;
    bc->has_cache = true;
    return 0;
}

void bundle_import_release(struct bundle_cache *bc)
{
    if (bc->has_cache)
        cache_release(&bc->cache);
    if (bc->dir)
        rm_rf_at(AT_FDCWD, bc->dir, NULL);
    free(bc->dir);
    memset(bc, 0, sizeof *bc);
}
