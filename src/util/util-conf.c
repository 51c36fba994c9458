/* Parsing configuration files in nix.conf syntax (see util-conf.h). */
#include "config.h"
#include "util-conf.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

static int parse_depth(const char *text, size_t len, const char *file, conf_setting_fn fn,
                       void *ctx, int depth, struct rx_error **err);

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static int file_depth(const char *path, bool optional, conf_setting_fn fn, void *ctx, int depth,
                      struct rx_error **err)
{
    if (depth > CONF_MAX_DEPTH)
        return rx_error_set(err, RX_EFORMAT, "'%s': includes nested too deeply", path);
    struct rx_buf b = RX_BUF_INIT(CONF_MAX_SIZE);
    struct rx_error *e = NULL;
    if (read_file(path, &b, &e) < 0) {
        if (optional && e->code == ENOENT) {
            rx_error_free(e);
            return 0;
        }
        rx_error_clear(err);
        if (err)
            *err = e;
        else
            rx_error_free(e);
        return -1;
    }
    if (b.len && memchr(b.data, '\0', b.len)) {
        rx_buf_release(&b);
        return rx_error_set(err, RX_EFORMAT, "'%s': contains a NUL byte", path);
    }
    int r = parse_depth(b.data ? b.data : "", b.len, path, fn, ctx, depth, err);
    rx_buf_release(&b);
    return r;
}

static int parse_depth(const char *text, size_t len, const char *file, conf_setting_fn fn,
                       void *ctx, int depth, struct rx_error **err)
{
    const char *end = text + len;
    unsigned lineno = 0;
    for (const char *p = text; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        lineno++;
        const char *hash = memchr(p, '#', (size_t)(le - p));
        const char *e = hash ? hash : le;
        while (p < e && is_blank(*p))
            p++;
        while (e > p && is_blank(e[-1]))
            e--;
        if (p < e) {
            _cleanup_free_ char *line = xstrndup(p, (size_t)(e - p));
            bool opt = strncmp(line, "!include", 8) == 0 && (is_blank(line[8]));
            if (opt || (strncmp(line, "include", 7) == 0 && is_blank(line[7]))) {
                const char *arg = line + (opt ? 8 : 7);
                while (is_blank(*arg))
                    arg++;
                _cleanup_free_ char *path = NULL;
                const char *slash = strrchr(file, '/');
                if (arg[0] == '/' || !slash)
                    path = xstrdup(arg);
                else
                    path = xasprintf("%.*s/%s", (int)(slash - file), file, arg);
                if (file_depth(path, opt, fn, ctx, depth + 1, err) < 0)
                    return rx_error_wrap(err, "%s:%u", file, lineno);
            } else {
                char *eq = strchr(line, '=');
                if (!eq)
                    return rx_error_set(err, RX_EFORMAT, "%s:%u: expected 'name = value'", file,
                                        lineno);
                char *ne = eq;
                while (ne > line && is_blank(ne[-1]))
                    ne--;
                *ne = '\0';
                char *v = eq + 1;
                while (is_blank(*v))
                    v++;
                if (line[0] == '\0' || strpbrk(line, " \t"))
                    return rx_error_set(err, RX_EFORMAT, "%s:%u: bad setting name", file,
                                        lineno);
                if (fn(ctx, line, v, file, lineno, err) < 0)
                    return -1;
            }
        }
        p = le + 1;
    }
    return 0;
}

int conf_parse(const char *text, size_t len, const char *file, conf_setting_fn fn, void *ctx,
               struct rx_error **err)
{
    return parse_depth(text, len, file, fn, ctx, 0, err);
}

int conf_parse_file(const char *path, int optional, conf_setting_fn fn, void *ctx,
                    struct rx_error **err)
{
    return file_depth(path, optional != 0, fn, ctx, 0, err);
}
