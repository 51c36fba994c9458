#pragma once
/* Comparing words as users mistype them. */

#include <stddef.h>

/*
 * The edit distance of a and b, counting a swap of two neighbouring
 * characters as one edit (optimal string alignment), capped at cap: any
 * larger distance, and any string of 64 bytes or more, counts as cap.
 */
size_t edit_distance(const char *a, const char *b, size_t cap);
