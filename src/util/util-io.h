#pragma once
/* Small, EINTR-safe I/O helpers. */

#include <stddef.h>
#include <sys/types.h>

#include "util-buf.h"
#include "util-error.h"

/* Write all n bytes; returns 0 or -1 with errno set. */
int write_all(int fd, const void *p, size_t n);

/* read() that retries on EINTR. */
ssize_t read_retry(int fd, void *p, size_t n);

/*
 * Read the whole file at `path` (or fd if path is NULL) into b, failing with
 * a clear error if it is larger than b->max.
 */
int read_file(const char *path, struct rx_buf *b, struct rx_error **err);
int read_fd(int fd, const char *what, struct rx_buf *b, struct rx_error **err);
