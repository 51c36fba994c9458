/* Offline bundles: one executable file holding runix and a closure (docs/bundle.md). */
#pragma once
/*
 * A bundle is a static runix with a payload appended after its ELF image:
 *
 *   [runix][head][NAR files, as their cache serves them][manifest (JSON)][trailer]
 *
 * The head (BUNDLE_HEAD_SIZE bytes at payload_off) is BUNDLE_HEAD_MAGIC and
 * the u64 size of the whole bundle: a bundle cut short has lost its trailer,
 * but runix still finds the head where its own ELF image ends (the end of
 * its section header table) and says the file is truncated, rather than
 * acting as a plain runix.
 *
 * The trailer is the last BUNDLE_TRAILER_SIZE bytes of the file, all
 * integers little-endian:
 *
 *   u64 payload_off   where the payload begins (the size of runix)
 *   u64 manifest_off  where the manifest begins
 *   u64 manifest_len  its length; manifest_off + manifest_len + 64 = file size
 *   u8  sha256[32]    SHA-256 of the manifest
 *   u8  magic[8]      BUNDLE_MAGIC
 *
 * The manifest is two JSON documents, one after the other: the app (its
 * root store paths, program, arguments and environment), which every run
 * reads, usually from a prefix of the manifest; then the public keys of its
 * caches and, for every path of the closure, its narinfo (as the cache
 * signed it) and where its NAR file lies in the payload, which only the
 * import reads.
 *
 * Every start of runix finds out whether it is a bundle (cli_bundle_detect())
 * with one stat of /proc/self/exe: a file exactly as long as the ELF image
 * that runs (known from the mapped ELF header) is not one.  Only a longer
 * file is opened and its trailer read (and, without one, its head).  This half is linked into
 * the front too, and uses only libc and jansson.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util-error.h"

#define BUNDLE_MAGIC "RXBUNDL1"
#define BUNDLE_TRAILER_SIZE 64
#define BUNDLE_HEAD_MAGIC "RXBUNDH1"
#define BUNDLE_HEAD_SIZE 16
#define BUNDLE_FORMAT 1
/* A manifest of 100 000 paths with their narinfos stays well below this. */
#define BUNDLE_MANIFEST_MAX (256u * 1024 * 1024)
/* "bundle-" and 32 hex digits of the manifest's SHA-256. */
#define BUNDLE_TAG_MAX 48

struct bundle_trailer {
    uint64_t payload_off, manifest_off, manifest_len;
    unsigned char sha256[32];
};

/* Encode t into out[BUNDLE_TRAILER_SIZE]. */
void bundle_trailer_encode(const struct bundle_trailer *t, unsigned char *out);
/* Encode the head of a bundle of `size` bytes into out[BUNDLE_HEAD_SIZE]. */
void bundle_head_encode(uint64_t size, unsigned char *out);

/*
 * Decode the trailer of a file of `size` bytes from its last
 * BUNDLE_TRAILER_SIZE bytes: 1 when it is a bundle's, with t filled; 0
 * when the magic is not there (not a bundle); -1 with err (RX_EFORMAT)
 * when the magic is there but the offsets do not fit the file.
 */
int bundle_trailer_decode(const unsigned char *in, uint64_t size, struct bundle_trailer *t,
                          struct rx_error **err);

/* "bundle-<hex>": the tag of the closure indexes a bundle's import writes (store-index.h). */
void bundle_tag(const struct bundle_trailer *t, char out[BUNDLE_TAG_MAX]);

/* What a bundle runs: read from its manifest. */
struct cli_bundle {
    char *file; /* owned: the bundle's path, for the import in a child */
    struct bundle_trailer t;
    char tag[BUNDLE_TAG_MAX];
    char *root;    /* owned: the main store path, "/nix/store/..." */
    char *program; /* owned, or NULL: "bin/x" (relative to root) or "x" (in bin/) */
    char **args;   /* owned, NULL-terminated: before the user's */
    char **env;    /* owned, NULL-terminated: "KEY=VALUE" */
    char *target;  /* owned, or NULL: "ROOT/PROGRAM", made by cli_bundle_argv() */
};

/* The bundle that is running, or NULL (set by main()). */
extern const struct cli_bundle *cli_running_bundle;

/*
 * Is the running binary a bundle?  0 when it is not (or /proc is not
 * there); 1 when it is, with b filled from its trailer and manifest (the
 * manifest's checksum is runix-core's to check, at the import); -1 with
 * err when it looks like one but its trailer or manifest is damaged.
 */
int cli_bundle_detect(struct cli_bundle *b, struct rx_error **err);

void cli_bundle_release(struct cli_bundle *b);

/*
 * Parse the manifest's first document (the app) from text[0..len), which
 * may go on after it, into b's root, program, args and env; *used (when
 * not NULL) gets the document's length.  -1 with err (RX_EFORMAT).
 */
int bundle_app_parse(const char *text, size_t len, struct cli_bundle *b, size_t *used,
                     struct rx_error **err);

/*
 * The command line a bundle's run is: "runix run ROOT..." (cmd-run.c takes the rest from cli_running_bundle)
 * with the app's arguments, then argv[1..argc) (owned array; its strings
 * are b's and argv's).  Sets the app's environment.
 */
char **cli_bundle_argv(struct cli_bundle *b, int argc, char **argv, int *out_argc);
