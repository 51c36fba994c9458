/* Closure indexes: reading and writing them (see store-index.h). */
#include "config.h"
#include "store-index.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* An index larger than this is not ours: 1 MiB is ~14,000 paths. */
#define INDEX_MAX (1u << 20)

int store_index_read(const char *root, const struct store_path *p, struct store_path **out,
                     size_t *n)
{
    *out = NULL;
    *n = 0;
    _cleanup_free_ char *dir = xasprintf("%s/" STORE_INDEX_DIR, root);
    _cleanup_free_ char *sdir = xasprintf("%s/nix/store", root);
    _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    _cleanup_close_ int sfd = open(sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || sfd < 0)
        return 1;
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    _cleanup_close_ int fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct rx_buf b = RX_BUF_INIT(INDEX_MAX);
    if (fd < 0 || read_fd(fd, base, &b, NULL) < 0 || b.len == 0) {
        rx_buf_release(&b);
        return 1;
    }
    size_t len;
    _cleanup_free_ char *text = rx_buf_detach(&b, &len);
    if (memchr(text, '\0', len) || text[len - 1] != '\n')
        return 1;

    struct store_path *v = NULL;
    size_t count = 0, cap = 0;
    bool has_root = false;
    char *line = text;
    char *nl = strchr(line, '\n');
    *nl = '\0';
    if (strcmp(line, STORE_INDEX_HEADER) != 0)
        return 1;
    for (line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        struct store_path sp;
        struct stat sb;
        if (store_path_parse_basename(line, (size_t)(nl - line), &sp, NULL) < 0 ||
            fstatat(sfd, line, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            free(v);
            return 1;
        }
        has_root |= store_path_cmp(&sp, p) == 0;
        if (count == cap) {
            cap = cap ? 2 * cap : 32;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[count++] = sp;
    }
    if (!has_root) {
        free(v);
        return 1;
    }
    *out = v;
    *n = count;
    return 0;
}

int store_index_save(int root_fd, const struct store_path *p, const struct store_path *closure,
                     size_t n, struct rx_error **err)
{
    /* Basenames are at most STORE_BASENAME_MAX bytes: the size is known. */
    size_t cap = sizeof STORE_INDEX_HEADER + 1 + n * (STORE_BASENAME_MAX + 1) + 1, k = 0;
    _cleanup_free_ char *text = xmalloc(cap);
    k += (size_t)snprintf(text, cap, "%s\n", STORE_INDEX_HEADER);
    for (size_t i = 0; i < n; i++) {
        store_path_basename(&closure[i], text + k);
        k += strlen(text + k);
        text[k++] = '\n';
    }
    text[k] = '\0';
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    _cleanup_close_ int dfd = -1;
    if (mkdir_p_at(root_fd, STORE_INDEX_DIR, &dfd, err) < 0 ||
        write_file_atomic_at(dfd, base, text, true, err) < 0)
        return rx_error_wrap(err, "closure index of %s", base);
    return 0;
}
