/* Parsing and signature checks of narinfo files. */
#pragma once
/*
 * narinfo files: what a binary cache says about one store path.
 *
 * The parser is strict where Nix is lax (nix-formats.md section 4):
 *  - every line is "Key: value\n"; the last line must end in '\n'; CR, NUL
 *    and other control characters are refused;
 *  - StorePath, URL, NarHash and a non-zero NarSize are mandatory;
 *  - single-valued fields may not repeat (Nix lets the last one win);
 *  - hashes must be sha256, in nix32, base16 or base64/SRI form;
 *  - every reference must be a valid store path basename, without repeats;
 *  - URL must be relative to the cache, without ".." segments, '#' or '%'
 *    (no percent-encoding: libcurl decodes it in file:// paths);
 *  - unknown fields are ignored;
 *  - the whole text is at most NARINFO_MAX bytes.
 * A missing Compression means bzip2 (Nix's old default), a missing
 * References line means no references, and "Deriver: unknown-deriver" means
 * no deriver.
 *
 * Deriver and CA are not covered by the signature: anyone on the way may
 * add or change them, and Nix aborts on a store whose database holds a CA
 * it cannot parse.  So they never make a narinfo invalid.  A Deriver that
 * is not a ".drv" store path basename, or a CA that is not one of the
 * forms Nix 2.8 accepts (text:sha256:<h>, fixed:[r:]<algo>:<h>) or does
 * not give StorePath with these References, is left out (has_deriver
 * false, ca NULL) and described in `dropped`, for the caller to warn.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto-hash.h"
#include "crypto-sig.h"
#include "store-path.h"
#include "util-error.h"

/* Real narinfos stay below 300 KiB even with thousands of references. */
#define NARINFO_MAX (1024 * 1024)

struct narinfo {
    struct store_path path;
    char *url;         /* owned */
    char *compression; /* owned; "bzip2" when the field is absent */
    bool has_file_hash;
    struct hash file_hash;
    bool has_file_size;
    uint64_t file_size;
    struct hash nar_hash;
    uint64_t nar_size;
    struct store_path *refs; /* owned; in file order */
    size_t nrefs;
    bool has_deriver;
    struct store_path deriver;
    char *system; /* owned, or NULL */
    char **sigs;  /* owned; the raw Sig values in file order */
    size_t nsigs;
    char *ca; /* owned, or NULL */
    char *dropped; /* owned, or NULL: which unsigned fields were dropped, and why */
};

#define NARINFO_INIT { 0 }

int narinfo_parse(const char *text, size_t len, struct narinfo *out, struct rx_error **err);
void narinfo_release(struct narinfo *ni);

/*
 * The signed fingerprint:
 *   1;<path>;sha256:<nix32 NarHash>;<NarSize>;<sorted full reference paths, ','-joined>
 * Returned string is owned by the caller.
 */
char *narinfo_fingerprint(const struct narinfo *ni);

/*
 * The narinfo as Nix writes it (fields in Nix's order, hashes in nix32).
 * Returned string is owned by the caller.
 */
char *narinfo_format(const struct narinfo *ni);

/*
 * Is the narinfo signed by a trusted key?  Returns 0 if at least one Sig
 * whose name is a trusted key's name verifies over the fingerprint.
 * Otherwise -1 with an RX_ESIG error that lists what was wrong with each
 * signature.  Malformed or untrusted Sig lines are skipped, not fatal.
 */
int narinfo_verify(const struct narinfo *ni, const struct trusted_keys *tk,
                   struct rx_error **err);
