/* The front's half of running by name (cli-byname.h): names, files, what ',' remembered. */
#include "config.h"
#include "cli-byname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli-settings-internal.h"
#include "cli.h"
#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

bool cli_index_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

bool cli_program_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 255 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

bool cli_byname_is_ref(const char *arg)
{
    const char *hash = strchr(arg, '#');
    if (!hash || hash == arg || (size_t)(hash - arg) > 64)
        return false;
    for (const char *p = arg; p < hash; p++)
        if (!name_char(*p))
            return false;
    const char *attr = hash + 1;
    size_t n = strlen(attr);
    if (n == 0 || n > CLI_ATTR_MAX || attr[0] == '.' || attr[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = attr[i];
        if (!name_char(c) && c != '.' && c != '\'' && c != '+')
            return false;
    }
    /* A distributable "FILE#APP" in the current directory is that. */
    _cleanup_free_ char *file = xstrndup(arg, (size_t)(hash - arg));
    struct stat st;
    return stat(file, &st) != 0;
}

char *cli_index_file(const char *name)
{
    _cleanup_free_ char *rel = xasprintf("runix/index/%s/files", name);
    return cli_xdg_path("XDG_CACHE_HOME", ".cache", rel);
}

char *cli_comma_state_file(const char *prog)
{
    _cleanup_free_ char *rel = xasprintf("runix/comma/%s", prog);
    return cli_xdg_path("XDG_STATE_HOME", ".local/state", rel);
}

bool cli_index_identity(const char *file, char id[64])
{
    struct stat st;
    if (!file || stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return false;
    snprintf(id, 64, "%llu %llu %llu %lld %ld", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
             (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
    return true;
}

bool cli_comma_recall(const char *prog, char *attr, struct store_path *path, bool *index_same)
{
    *index_same = false;
    attr[0] = '\0';
    if (!cli_program_name_valid(prog))
        return false;
    _cleanup_free_ char *f = cli_comma_state_file(prog);
    if (!f)
        return false;
    struct rx_buf b = RX_BUF_INIT(4096);
    if (read_file(f, &b, NULL) < 0 || !b.data) {
        rx_buf_release(&b);
        return false;
    }
    /* "attr A\npath P\nindex ID\n" */
    bool have_path = false;
    _cleanup_free_ char *index = NULL;
    for (char *line = b.data; *line;) {
        char *nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        size_t len = (size_t)(nl - line);
        if (strncmp(line, "attr ", 5) == 0 && len - 5 <= CLI_ATTR_MAX)
            snprintf(attr, CLI_ATTR_MAX + 1, "%s", line + 5);
        else if (strncmp(line, "path ", 5) == 0)
            have_path = store_path_parse(line + 5, strlen(line + 5), path, NULL) == 0;
        else if (strncmp(line, "index ", 6) == 0)
            index = xstrdup(line + 6);
        line = nl + 1;
    }
    rx_buf_release(&b);
    if (!have_path || !attr[0])
        return false;
    _cleanup_free_ char *db = cli_index_file(CLI_DEFAULT_INDEX);
    char id[64];
    *index_same = index && cli_index_identity(db, id) && strcmp(id, index) == 0;
    return true;
}

void cli_index_warn_old(const char *cmd, const char *name, const char *file)
{
    struct stat st;
    if (!file || stat(file, &st) != 0)
        return;
    long long days = ((long long)time(NULL) - (long long)st.st_mtim.tv_sec) / 86400;
    if (days > 30)
        cli_cmd_error(cmd, "warning: the index '%s' is %lld days old; run 'runix index update'",
                      name, days);
}
