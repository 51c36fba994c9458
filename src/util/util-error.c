/* Errors that carry context upward (see util-error.h). */
#include "config.h"
#include "util-error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util-mem.h"

#include "banned.h"

static int set_v(struct rx_error **err, int code, const char *suffix, const char *fmt,
                 va_list ap) __attribute__((format(printf, 4, 0)));

static int set_v(struct rx_error **err, int code, const char *suffix, const char *fmt,
                 va_list ap)
{
    if (!err)
        return -1;
    rx_error_clear(err);
    char *msg = xvasprintf(fmt, ap);
    if (suffix) {
        char *full = xasprintf("%s: %s", msg, suffix);
        free(msg);
        msg = full;
    }
    struct rx_error *e = xmalloc(sizeof *e);
    e->code = code;
    e->msg = msg;
    *err = e;
    return -1;
}

int rx_error_set(struct rx_error **err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_v(err, code, NULL, fmt, ap);
    va_end(ap);
    return -1;
}

int rx_error_errno(struct rx_error **err, const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    set_v(err, saved, strerror(saved), fmt, ap);
    va_end(ap);
    errno = saved;
    return -1;
}

int rx_error_wrap(struct rx_error **err, const char *fmt, ...)
{
    if (!err || !*err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    char *ctx = xvasprintf(fmt, ap);
    va_end(ap);
    char *full = xasprintf("%s: %s", ctx, (*err)->msg);
    free(ctx);
    free((*err)->msg);
    (*err)->msg = full;
    return -1;
}

void rx_error_free(struct rx_error *err)
{
    if (!err)
        return;
    free(err->msg);
    free(err);
}

void rx_error_clear(struct rx_error **err)
{
    if (err && *err) {
        rx_error_free(*err);
        *err = NULL;
    }
}

void rx_bug(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "runix: BUG: %s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}
