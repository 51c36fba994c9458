/* A growable byte buffer with a hard size limit (see util-buf.h). */
#include "config.h"
#include "util-buf.h"

#include <string.h>

#include "util-mem.h"

#include "banned.h"

int rx_buf_append(struct rx_buf *b, const void *p, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

void rx_buf_reset(struct rx_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void rx_buf_release(struct rx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *rx_buf_detach(struct rx_buf *b, size_t *len)
{
    char *p = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

char *sh_quote(const char *text)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    int r = rx_buf_append(&b, "'", 1);
    for (const char *p = text; *p; p++)
        r |= *p == '\'' ? rx_buf_append(&b, "'\\''", 4) : rx_buf_append(&b, p, 1);
    r |= rx_buf_append(&b, "'", 1);
    (void)r; /* the buffer has no limit */
    return rx_buf_detach(&b, NULL);
}
