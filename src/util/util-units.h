#pragma once
/* Sizes and durations as users write them on command lines and in runix.conf. */

#include <stdint.h>

#include "util-error.h"

/*
 * A size: a decimal number of bytes, or one followed by K, M, G or T
 * (binary: 1K = 1024), optionally with "iB" or "B" after the letter
 * ("500M", "2G", "1024", "1.5G").  0 with *out, or -1 (RX_EUSAGE) naming
 * `what` and the accepted forms.
 */
int parse_size(const char *s, const char *what, uint64_t *out, struct rx_error **err);

/*
 * A duration: a number followed by s, m, h, d or w (seconds, minutes, hours,
 * days, weeks: "45s", "90m", "12h", "30d", "2w"); a bare number is seconds.
 * 0 with *out in seconds, or -1 (RX_EUSAGE).
 */
int parse_duration(const char *s, const char *what, int64_t *out, struct rx_error **err);

/* bytes as "12.3 MiB" (or "512 bytes") in buf. */
const char *format_size(uint64_t bytes, char buf[static 32]);
