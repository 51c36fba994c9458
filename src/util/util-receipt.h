/* The install receipt: what install.sh put where, read back by runix self. */
#pragma once
/*
 * install.sh writes the receipt to ${XDG_DATA_HOME:-~/.local/share}/runix/
 * receipt; runix self update rewrites it and runix self uninstall removes
 * what it lists.  A text file, one "key value" per line, '#' comments:
 *
 *     runix-receipt 1
 *     version 0.1.0
 *     arch x86_64
 *     base-url https://example.org/runix/releases/latest
 *     binary /home/u/.local/bin/runix
 *     sha256 <64 lower-case hex digits: the binary's>
 *     file /home/u/.local/share/man/man1/runix.1
 *
 * The first line that is not a comment names the format; "file" repeats
 * (every other file installed beside the binary); unknown keys are skipped,
 * so that a newer installer may add some.  Paths are absolute and normal:
 * no ".", ".." or empty component, no control characters, since uninstall
 * removes them.  The file is the user's own, but it is still checked as
 * outside data: a damaged receipt must not make uninstall remove the wrong
 * thing.
 */

#include <stddef.h>

#include "util-error.h"

#define RECEIPT_FORMAT 1
/* Larger is not a receipt. */
#define RECEIPT_MAX_SIZE (64 * 1024)
#define RECEIPT_MAX_FILES 64

struct receipt {
    unsigned format;
    char *version;  /* owned, or NULL */
    char *arch;     /* owned, or NULL */
    char *base_url; /* owned, or NULL */
    char *binary;   /* owned; never NULL in a parsed receipt */
    char *sha256;   /* owned, or NULL: 64 lower-case hex digits */
    char **files;   /* owned, each owned */
    size_t nfiles;
};

#define RECEIPT_INIT { 0 }

/*
 * Parse len bytes of text (NUL bytes refused).  0 with *r filled, or -1
 * with err: RX_EUNSUPPORTED for a receipt in a format other than
 * RECEIPT_FORMAT (r->format says which), RX_EFORMAT for anything else that
 * is not a receipt of this format (a file from before the format line
 * existed among them), naming the line.  *r is released on failure, except
 * for r->format.
 */
int receipt_parse(const char *text, size_t len, struct receipt *r, struct rx_error **err);

/* Read and parse the file at path: RX_ENOTFOUND when there is none. */
int receipt_load(const char *path, struct receipt *r, struct rx_error **err);

/* The text of r in this format (malloc'd); r must be valid. */
char *receipt_format(const struct receipt *r);

/* Is p an absolute path without ".", ".." or empty components nor control characters? */
int receipt_path_ok(const char *p);

void receipt_release(struct receipt *r);

/*
 * The sha256 that a SHA256SUMS text (sha256sum's output: "<64 hex digits>
 * <space><space or '*'><name>" per line) gives for name, into out (65
 * bytes, lower-case).  0 when found; 1 when name is not listed; -1 with err
 * (RX_EFORMAT) for a line that is not of that form or a name listed twice
 * with different sums.
 */
int sha256sums_find(const char *text, size_t len, const char *name, char out[65],
                    struct rx_error **err);
