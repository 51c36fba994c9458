#pragma once
/*
 * A growable byte buffer with a hard size limit, for data that comes from
 * outside (a narinfo, a config file).  Appending past `max` fails instead of
 * growing without bound.
 *
 * Invariant: data[len] == '\0' whenever data != NULL, so the contents can be
 * used as a C string when they hold no NUL.
 */

#include <stdbool.h>
#include <stddef.h>

struct rx_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* append fails with -1 once len would exceed this */
};

#define RX_BUF_INIT(limit) { NULL, 0, 0, (limit) }

/* Append n bytes; returns 0, or -1 (and appends nothing) past the limit. */
int rx_buf_append(struct rx_buf *b, const void *p, size_t n) __attribute__((warn_unused_result));

/* Drop the contents but keep the allocation. */
void rx_buf_reset(struct rx_buf *b);

/* Free the contents; the buffer can be reused. */
void rx_buf_release(struct rx_buf *b);

/* Take the contents (NUL-terminated, never NULL); the buffer is left empty. */
char *rx_buf_detach(struct rx_buf *b, size_t *len);

/* text in single quotes for sh ('it'\''s'); the caller frees it. */
char *sh_quote(const char *text);
