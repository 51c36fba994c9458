/* Sizes and times for people (see cli-human.h). */
#include "config.h"
#include "cli-human.h"

#include <inttypes.h>
#include <stdio.h>

#include "util-mem.h"

#include "banned.h"

/* "512 B", "3.4 KiB", "12.0 MiB", "1.2 GiB". */
void cli_human_size(uint64_t n, char *out, size_t outsz)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB"};
    if (n < 1024) {
        snprintf(out, outsz, "%" PRIu64 " B", n);
        return;
    }
    double v = (double)n / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024.0;
        u++;
    }
    snprintf(out, outsz, "%.1f %s", v, units[u]);
}

/* "just now", "5 minutes ago", "3 days ago", "never" (t 0). */
void cli_human_ago(int64_t now, int64_t t, char *out, size_t outsz)
{
    if (t <= 0) {
        snprintf(out, outsz, "never");
        return;
    }
    int64_t d = now - t;
    static const struct {
        int64_t secs;
        const char *unit;
    } steps[] = {
        {365 * 86400, "year"}, {30 * 86400, "month"}, {7 * 86400, "week"},
        {86400, "day"},        {3600, "hour"},        {60, "minute"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
        /* Weeks and months only once there are two or more of them. */
        int64_t min = i < 3 ? 2 * steps[i].secs : steps[i].secs;
        if (d >= min) {
            int64_t k = d / steps[i].secs;
            snprintf(out, outsz, "%" PRId64 " %s%s ago", k, steps[i].unit, k == 1 ? "" : "s");
            return;
        }
    }
    snprintf(out, outsz, "just now");
}
