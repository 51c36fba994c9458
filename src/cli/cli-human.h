/* Sizes and times as a person reads them, for tables and reports on a terminal. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* "512 B", "3.4 KiB", "12.0 MiB", "1.2 GiB" (units of 1024). */
void cli_human_size(uint64_t n, char *out, size_t outsz);

/*
 * How long before now t was: "just now", "5 minutes ago", "1 hour ago",
 * "3 days ago", "2 weeks ago", "4 months ago", "2 years ago"; "never" for
 * t <= 0 (unknown), "just now" for a t after now (a clock set back).
 */
void cli_human_ago(int64_t now, int64_t t, char *out, size_t outsz);
