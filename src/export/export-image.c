/* OCI image layouts and docker archives of a closure (export.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_LAYER "application/vnd.oci.image.layer.v1.tar"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"
/* The one time an image states: the store's mtime. */
#define EXPORT_CREATED "1970-01-01T00:00:01Z"
#define LAYER_TMP "layer.tmp"

void export_digests_release(struct export_digests *d)
{
    free(d->layers);
    d->layers = NULL;
    d->nlayers = 0;
}

static void digest_hex(struct sha256_ctx *c, char out[65])
{
    struct hash h;
    sha256_final(c, &h);
    hex_encode(h.bytes, 32, out);
}

/* JSON as every export writes it: sorted keys, no spaces. */
static char *json_text(const json_t *j, struct rx_error **err)
{
    char *s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    if (!s)
        rx_error_set(err, ENOMEM, "cannot encode JSON");
    return s;
}

/* Write blob `text` under blobs/sha256/<hex>; hex and size out. */
static int write_blob(int blobs_fd, const char *text, char hex[65], uint64_t *size,
                      struct rx_error **err)
{
    size_t len = strlen(text);
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, text, len);
    digest_hex(&c, hex);
    *size = len;
    return write_data_atomic_at(blobs_fd, hex, text, len, 0444, false, err);
}

struct layer_sink {
    int fd;
    struct sha256_ctx sha;
};

static int layer_write(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct layer_sink *s = ctx;
    if (write_all(s->fd, data, len) < 0)
        return rx_error_errno(err, "cannot write a layer");
    sha256_update(&s->sha, data, len);
    return 0;
}

/* One layer: the paths bases[0..n), written as blobs/sha256/<hex>. */
static int write_layer(const struct export_image *im, int blobs_fd, size_t from, size_t n,
                       bool with_init, char hex[65], uint64_t *size, struct rx_error **err)
{
    struct layer_sink s = {.fd = -1};
    s.fd = openat(blobs_fd, LAYER_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s.fd < 0)
        return rx_error_errno(err, "cannot create a layer");
    sha256_init(&s.sha);
    struct tar_writer w;
    tar_writer_init(&w, layer_write, &s);
    int r = tar_add_dir(&w, "nix", 0755, err) < 0 || tar_add_dir(&w, "nix/store", 0755, err) < 0
                ? -1
                : 0;
    for (size_t i = from; r == 0 && i < from + n; i++)
        r = export_tar_path(&w, im->store_fd, im->bases[i], err);
    if (r == 0 && with_init)
        r = tar_add_symlink(&w, "init", im->entry, err);
    if (r == 0)
        r = tar_finish(&w, err);
    if (r == 0 && (fchmod(s.fd, 0444) < 0 || close(s.fd) < 0))
        r = rx_error_errno(err, "cannot write a layer");
    else if (r < 0)
        close(s.fd);
    if (r < 0)
        return -1;
    digest_hex(&s.sha, hex);
    *size = w.size;
    if (renameat(blobs_fd, LAYER_TMP, blobs_fd, hex) < 0)
        return rx_error_errno(err, "cannot write a layer");
    return 0;
}

static json_t *descriptor(const char *media_type, const char *hex, uint64_t size)
{
    char digest[80];
    snprintf(digest, sizeof digest, "sha256:%s", hex);
    return json_pack("{s:s,s:s,s:I}", "mediaType", media_type, "digest", digest, "size",
                     (json_int_t)size);
}

static json_t *config_json(const struct export_image *im, const struct export_digests *d)
{
    json_t *diff_ids = json_array();
    for (size_t i = 0; i < d->nlayers; i++) {
        char digest[80];
        snprintf(digest, sizeof digest, "sha256:%s", d->layers[i]);
        json_array_append_new(diff_ids, json_string(digest));
    }
    return json_pack("{s:s,s:s,s:s,s:{s:[s],s:[s],s:O},s:{s:s,s:o}}", "architecture", im->arch,
                     "os", "linux", "created", EXPORT_CREATED, "config", "Entrypoint", im->entry,
                     "Env", im->path_env, "Labels", im->labels, "rootfs", "type", "layers",
                     "diff_ids", diff_ids);
}

/* Write every layer; d->layers filled. */
static int write_layers(const struct export_image *im, int blobs_fd, struct export_digests *d,
                        uint64_t *sizes, struct rx_error **err)
{
    size_t nl = im->one_layer ? 1 : im->nbases;
    if (nl > EXPORT_MAX_LAYERS)
        nl = EXPORT_MAX_LAYERS;
    if (nl == 0)
        nl = 1;
    d->layers = xcalloc(nl, sizeof *d->layers);
    for (size_t i = 0; i < nl; i++) {
        bool last = i == nl - 1;
        size_t n = last ? im->nbases - i : 1;
        if (im->one_layer)
            n = im->nbases;
        if (write_layer(im, blobs_fd, i, n, last, d->layers[i], &sizes[i], err) < 0)
            return -1;
        d->nlayers++;
    }
    return 0;
}

int export_oci_layout(const struct export_image *im, int out_fd, struct export_digests *d,
                      struct rx_error **err)
{
    *d = (struct export_digests){0};
    if (mkdirat(out_fd, "blobs", 0755) < 0 || mkdirat(out_fd, "blobs/sha256", 0755) < 0)
        return rx_error_errno(err, "cannot create 'blobs/sha256'");
    _cleanup_close_ int blobs_fd =
        openat(out_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (blobs_fd < 0)
        return rx_error_errno(err, "cannot open 'blobs/sha256'");
    uint64_t sizes[EXPORT_MAX_LAYERS];
    if (write_layers(im, blobs_fd, d, sizes, err) < 0)
        return -1;
    int r = -1;
    char *text = NULL;
    json_t *config = config_json(im, d), *layers = json_array(), *manifest = NULL, *index = NULL;
    if (!config || !(text = json_text(config, err)) ||
        write_blob(blobs_fd, text, d->config, &d->config_size, err) < 0)
        goto out;
    for (size_t i = 0; i < d->nlayers; i++)
        json_array_append_new(layers, descriptor(MT_LAYER, d->layers[i], sizes[i]));
    manifest =
        json_pack("{s:i,s:s,s:o,s:O}", "schemaVersion", 2, "mediaType", MT_MANIFEST, "config",
                  descriptor(MT_CONFIG, d->config, d->config_size), "layers", layers);
    free(text);
    if (!manifest || !(text = json_text(manifest, err)) ||
        write_blob(blobs_fd, text, d->manifest, &d->manifest_size, err) < 0)
        goto out;
    json_t *desc = descriptor(MT_MANIFEST, d->manifest, d->manifest_size);
    json_object_set_new(desc, "annotations",
                        json_pack("{s:s}", "org.opencontainers.image.ref.name", im->ref_name));
    index =
        json_pack("{s:i,s:s,s:[o]}", "schemaVersion", 2, "mediaType", MT_INDEX, "manifests", desc);
    free(text);
    if (!index || !(text = json_text(index, err)) ||
        write_file_atomic_at(out_fd, "index.json", text, false, err) < 0 ||
        write_file_atomic_at(out_fd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", false,
                             err) < 0)
        goto out;
    r = 0;
out:
    if (r < 0 && err && !*err)
        rx_error_set(err, ENOMEM, "cannot encode the image's JSON");
    free(text);
    json_decref(config);
    json_decref(layers);
    json_decref(manifest);
    json_decref(index);
    return r;
}

struct fd_sink {
    int fd;
};

static int fd_write(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct fd_sink *s = ctx;
    if (write_all(s->fd, data, len) < 0)
        return rx_error_errno(err, "cannot write the archive");
    return 0;
}

/* Copy blobs/sha256/<hex> of the layout into the archive as `name`. */
static int add_blob(struct tar_writer *w, int layout_fd, const char *hex, const char *name,
                    struct rx_error **err)
{
    _cleanup_free_ char *rel = xasprintf("blobs/sha256/%s", hex);
    _cleanup_close_ int fd = openat(layout_fd, rel, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return rx_error_errno(err, "cannot read '%s'", rel);
    return tar_add_file_fd(w, name, 0644, (uint64_t)st.st_size, fd, err);
}

int export_docker_archive(int layout_fd, const struct export_digests *d, const char *repo_tag,
                          int out, struct rx_error **err)
{
    struct fd_sink s = {out};
    struct tar_writer w;
    tar_writer_init(&w, fd_write, &s);
    _cleanup_free_ char *config_name = xasprintf("%s.json", d->config);
    if (add_blob(&w, layout_fd, d->config, config_name, err) < 0)
        return -1;
    json_t *layers = json_array();
    for (size_t i = 0; i < d->nlayers; i++) {
        _cleanup_free_ char *name = xasprintf("%s/layer.tar", d->layers[i]);
        json_array_append_new(layers, json_string(name));
        if (tar_add_dir(&w, d->layers[i], 0755, err) < 0 ||
            add_blob(&w, layout_fd, d->layers[i], name, err) < 0) {
            json_decref(layers);
            return -1;
        }
    }
    /* "name:tag" -> {"name": {"tag": <top layer>}} */
    const char *colon = strrchr(repo_tag, ':');
    _cleanup_free_ char *repo = xstrndup(repo_tag, (size_t)(colon - repo_tag));
    json_t *manifest = json_pack("[{s:s,s:[s],s:o}]", "Config", config_name, "RepoTags", repo_tag,
                                 "Layers", layers);
    json_t *repos = json_pack("{s:{s:s}}", repo, colon + 1, d->layers[d->nlayers - 1]);
    char *mtext = manifest ? json_text(manifest, err) : NULL;
    char *rtext = repos ? json_text(repos, err) : NULL;
    int r = -1;
    if (mtext && rtext &&
        tar_add_file_data(&w, "manifest.json", 0644, mtext, strlen(mtext), err) == 0 &&
        tar_add_file_data(&w, "repositories", 0644, rtext, strlen(rtext), err) == 0 &&
        tar_finish(&w, err) == 0)
        r = 0;
    if (r < 0 && err && !*err)
        rx_error_set(err, ENOMEM, "cannot encode the archive's JSON");
    free(mtext);
    free(rtext);
    json_decref(manifest);
    json_decref(repos);
    return r;
}
