#include "config.h"
#include "test-helpers.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util-fs.h"
#include "util-mem.h"

char *td_path(const char *rel)
{
    const char *dir = getenv("RUNIX_TESTDATA");
    if (!dir || !*dir)
        fail_msg("RUNIX_TESTDATA is not set: the tests need ../shared/testdata");
    return xasprintf("%s/%s", dir, rel);
}

char *td_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open test file '%s'", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap + 1);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *td_read_rel(const char *rel, size_t *len)
{
    char *p = td_path(rel);
    char *s = td_read(p, len);
    free(p);
    return s;
}

char ***td_tsv(const char *rel)
{
    size_t len;
    char *text = td_read_rel(rel, &len);
    char ***rows = xcalloc(1, sizeof *rows);
    size_t nrows = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char **fields = xcalloc(1, sizeof *fields);
        size_t nf = 0;
        char *p = line;
        for (;;) {
            char *tab = strchr(p, '\t');
            fields = xrealloc(fields, (nf + 2) * sizeof *fields);
            fields[nf++] = xstrndup(p, tab ? (size_t)(tab - p) : strlen(p));
            fields[nf] = NULL;
            if (!tab)
                break;
            p = tab + 1;
        }
        rows = xrealloc(rows, (nrows + 2) * sizeof *rows);
        rows[nrows++] = fields;
        rows[nrows] = NULL;
    }
    free(text);
    return rows;
}

void td_rows_free(char ***rows)
{
    for (size_t i = 0; rows[i]; i++) {
        for (size_t j = 0; rows[i][j]; j++)
            free(rows[i][j]);
        free(rows[i]);
    }
    free(rows);
}

char *td_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *t = xasprintf("%s/runix-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(t))
        fail_msg("mkdtemp failed");
    return t;
}

void td_rmtree(const char *dir)
{
    rm_rf_at(AT_FDCWD, dir, NULL);
}

int td_open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        fail_msg("cannot open '%s': %s", dir, strerror(errno));
    return fd;
}

void td_tmpdir_free(char *dir, int fd)
{
    if (fd >= 0)
        close(fd);
    td_rmtree(dir);
    free(dir);
}
