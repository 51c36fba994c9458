#pragma once
/*
 * Errors that carry context upward.
 *
 * A function that can fail returns -1 (or NULL) and, when the caller passed
 * a non-NULL `struct rx_error **err`, stores a newly allocated error there.
 * Callers add context with rx_error_wrap() on the way up; only the command
 * layer prints the final message.  The message follows the house wording:
 * lower-case, no trailing full stop, the problem first.
 *
 *     if (nar_reader_feed(r, buf, n, err) < 0)
 *         return rx_error_wrap(err, "restoring '%s'", dir);
 *
 * produces "restoring 'x': non-zero padding at offset 120".
 */

#include <stdarg.h>

enum rx_code {
    /* Values below RX_EBASE are errno values. */
    RX_EBASE = 10000,
    RX_EFORMAT,   /* malformed input: NAR, narinfo, key, hash string */
    RX_EHASH,     /* a hash or size did not match */
    RX_ESIG,      /* no trusted signature */
    RX_ENOTFOUND, /* the thing asked for does not exist */
    RX_ENET,      /* network */
    RX_EUSAGE,    /* bad command line */
    RX_EUNSUPPORTED,
};

struct rx_error {
    int code;
    char *msg; /* owned */
};

/*
 * Store a new error in *err (if err is not NULL; an existing error there is
 * freed first).  Always returns -1 so that callers can `return
 * rx_error_set(...)`.
 */
int rx_error_set(struct rx_error **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like rx_error_set() with code = errno and ": strerror(errno)" appended. */
int rx_error_errno(struct rx_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the message in *err with "context: ".  Returns -1. */
int rx_error_wrap(struct rx_error **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void rx_error_free(struct rx_error *err);

/*
 * A broken invariant inside runix (never bad input, which gets an rx_error):
 * prints "runix: BUG: file:line: message" on stderr and aborts, as git's
 * BUG() does.  The one place below the command layer that writes to stderr,
 * since there is no caller left to tell.
 */
#define BUG(...) rx_bug(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void rx_bug(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Free *err and set it to NULL. */
void rx_error_clear(struct rx_error **err);
