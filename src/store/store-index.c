#include "config.h"
#include "store-index.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-mem.h"

#include "banned.h"

/* An index larger than this is not ours: 1 MiB is ~14,000 paths. */
#define INDEX_MAX (1u << 20)

static char *read_small_file(int dirfd, const char *name, size_t *len)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (unsigned long long)sb.st_size > INDEX_MAX)
        return NULL;
    size_t want = (size_t)sb.st_size;
    char *buf = xmalloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            return NULL;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    *len = got;
    return buf;
}

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
    size_t len;
    _cleanup_free_ char *text = read_small_file(dfd, base, &len);
    if (!text || text[len - 1] != '\n')
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
