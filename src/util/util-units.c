/* Sizes and durations (see util-units.h). */
#include "config.h"
#include "util-units.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "banned.h"

/* The number at the start of s, as a double and as an exact integer when it is one. */
static int leading_number(const char *s, double *d, const char **end)
{
    if (!(*s >= '0' && *s <= '9'))
        return -1;
    char *e;
    errno = 0;
    *d = strtod(s, &e);
    if (errno || e == s || !isfinite(*d) || *d < 0)
        return -1;
    *end = e;
    return 0;
}

int parse_size(const char *s, const char *what, uint64_t *out, struct rx_error **err)
{
    double d;
    const char *e;
    if (*s && strspn(s, "0123456789") == strlen(s)) {
        /* Plain byte counts stay exact beyond a double's 53 bits. */
        errno = 0;
        unsigned long long n = strtoull(s, NULL, 10);
        if (errno == 0) {
            *out = n;
            return 0;
        }
    } else if (leading_number(s, &d, &e) == 0) {
        uint64_t mult = 1;
        switch (*e) {
        case 'k': case 'K': mult = 1ULL << 10; e++; break;
        case 'm': case 'M': mult = 1ULL << 20; e++; break;
        case 'g': case 'G': mult = 1ULL << 30; e++; break;
        case 't': case 'T': mult = 1ULL << 40; e++; break;
        default: break;
        }
        if (mult > 1 && strcmp(e, "iB") == 0)
            e += 2;
        else if (mult > 1 && strcmp(e, "B") == 0)
            e++;
        double v = d * (double)mult;
        if (*e == '\0' && v < 18446744073709549568.0) {
            *out = (uint64_t)v;
            return 0;
        }
    }
    return rx_error_set(err, RX_EUSAGE,
                        "%s: '%s' is not a size; write bytes (1024) or a number with K, M, G "
                        "or T (500M, 2G)",
                        what, s);
}

int parse_duration(const char *s, const char *what, int64_t *out, struct rx_error **err)
{
    double d;
    const char *e;
    if (leading_number(s, &d, &e) == 0) {
        double mult = 0;
        if (e[0] == '\0' || strcmp(e, "s") == 0)
            mult = 1;
        else if (strcmp(e, "m") == 0)
            mult = 60;
        else if (strcmp(e, "h") == 0)
            mult = 3600;
        else if (strcmp(e, "d") == 0)
            mult = 86400;
        else if (strcmp(e, "w") == 0)
            mult = 7 * 86400;
        if (mult > 0 && d * mult < 9.0e18) {
            *out = (int64_t)(d * mult);
            return 0;
        }
    }
    return rx_error_set(err, RX_EUSAGE,
                        "%s: '%s' is not a duration; write a number with s, m, h, d or w "
                        "(45s, 90m, 12h, 30d, 2w)",
                        what, s);
}

const char *format_size(uint64_t bytes, char buf[static 32])
{
    if (bytes < 1024)
        snprintf(buf, 32, "%llu bytes", (unsigned long long)bytes);
    else if (bytes < (1ULL << 20))
        snprintf(buf, 32, "%.1f KiB", (double)bytes / 1024.0);
    else if (bytes < (1ULL << 30))
        snprintf(buf, 32, "%.1f MiB", (double)bytes / (double)(1ULL << 20));
    else
        snprintf(buf, 32, "%.2f GiB", (double)bytes / (double)(1ULL << 30));
    return buf;
}
