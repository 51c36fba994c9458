/* nix-index databases ("files"): reading them as a stream, and writing them. */
#pragma once
/*
 * The format nix-index writes (docs/nix-index-format.md):
 *
 *   "NIXI", a little-endian u64 format version (1), then one zstd stream of
 *   frcode lines: META '\0' DIFF SUFFIX '\n'.
 *
 * DIFF (one signed byte, or 0x80 and a big-endian i16) changes the length
 * of the prefix the path shares with the previous line's path; SUFFIX is
 * the rest of the path.  A file line's META is "<size>r", "<size>x"
 * (executable), "<entries>d" or "<target>s"; each package's file lines are
 * followed by its package line, META "p" and the path a JSON object:
 *
 *   {"store_dir":"/nix/store","hash":"...","name":"...",
 *    "origin":{"attr":"jq","output":"bin","toplevel":true,"system":"x86_64-linux"}}
 *
 * The reader decompresses in fixed-size pieces and decodes one line at a
 * time: memory is the zstd window (at most 2^NIXDB_WINDOW_LOG_MAX bytes)
 * and two buffers of NIXDB_LINE_MAX bytes, whatever the file's size.
 * Anything that does not follow the format is refused with the file's name
 * and the decompressed offset: bad magic, another version, a truncated or
 * corrupt zstd stream, a line longer than NIXDB_LINE_MAX, a shared prefix
 * longer than the previous path, file lines without a package line after
 * them, and (when parsed) a package line whose store path does not parse.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-path.h"
#include "util-error.h"

#define NIXDB_MAGIC "NIXI"
#define NIXDB_VERSION 1
/* The header: magic and version. */
#define NIXDB_HEADER_LEN 12
/*
 * The longest line (metadata or path) runix accepts.  nix-index itself has
 * no limit; real paths and package lines are far shorter (a NAR name is at
 * most 255 bytes, Linux paths 4096).
 */
#define NIXDB_LINE_MAX (64 * 1024)
/* nix-index compresses at level 22, whose window is 2^27 bytes. */
#define NIXDB_WINDOW_LOG_MAX 27

enum nixdb_type {
    NIXDB_REGULAR = 'r',
    NIXDB_EXECUTABLE = 'x',
    NIXDB_DIRECTORY = 'd',
    NIXDB_SYMLINK = 's',
};

enum nixdb_kind {
    NIXDB_FILE,
    NIXDB_PACKAGE,
};

/*
 * One decoded line.  The pointers are into the reader's buffers and valid
 * until the next nixdb_next().  For a file: path (starting with '/', or
 * empty for the package's root), type, size (bytes, or directory entries;
 * 0 for a symlink) and, for a symlink, target.  For a package: json and
 * json_len; nixdb_package_parse() reads it.
 */
struct nixdb_line {
    enum nixdb_kind kind;
    const char *path;
    size_t path_len;
    enum nixdb_type type;
    uint64_t size;
    const char *target;
    size_t target_len;
    const char *json;
    size_t json_len;
    uint64_t offset; /* where the line starts in the decompressed stream */
};

/* A package line, parsed. */
struct nixdb_package {
    struct store_path path;
    char *attr;   /* owned */
    char *output; /* owned */
    char *system; /* owned, or NULL (nix-index writes null when unknown) */
    bool toplevel;
};

struct nixdb_reader;

/*
 * Open the database `file`, checking its header.  0, or -1 with err naming
 * the file (code ENOENT when it does not exist, RX_EFORMAT when it is not
 * a database runix reads).
 */
int nixdb_open(const char *file, struct nixdb_reader **out, struct rx_error **err);
/* The same for len bytes at data (not copied: they must outlive the reader); name is for messages. */
int nixdb_open_mem(const void *data, size_t len, const char *name, struct nixdb_reader **out,
                   struct rx_error **err);
void nixdb_close(struct nixdb_reader *r);

/*
 * The next line: 1 with *line filled, 0 at the end of a complete database,
 * -1 with err.  Errors are sticky.
 */
int nixdb_next(struct nixdb_reader *r, struct nixdb_line *line, struct rx_error **err);

/*
 * Parse a package line's JSON (line->json) of the reader's database.  The
 * store path must parse (store-path.h) in /nix/store; attr and output must
 * be strings, toplevel a boolean, system a string or null.  0, or -1 with
 * err naming the file and the line's offset.
 */
int nixdb_package_parse(const struct nixdb_reader *r, const struct nixdb_line *line,
                        struct nixdb_package *p, struct rx_error **err);
void nixdb_package_release(struct nixdb_package *p);

/*
 * Does the package line's JSON name attribute attr (exactly, as
 * "attr":"<attr>")?  A quick test before nixdb_package_parse(), which
 * tells for sure: true may be wrong, false is not (for attribute names
 * without characters JSON escapes).
 */
bool nixdb_line_may_have_attr(const struct nixdb_line *line, const char *attr, size_t len);

/* ---- writing ---- */

/* A file entry as nix-index writes it: path "" (the root) or "/a/b". */
struct nixdb_file {
    char *path; /* owned */
    enum nixdb_type type;
    uint64_t size;
    char *target; /* owned, symlinks only */
};

/*
 * A file tree (a NAR's or a .ls listing's), from which nixdb_tree_list()
 * makes the entries in nix-index's order.
 */
struct nixdb_tree {
    char *name; /* owned; NULL for the root */
    enum nixdb_type type;
    uint64_t size;
    char *target; /* owned, symlinks only */
    struct nixdb_tree *children; /* owned, directories only */
    size_t nchildren;
};

void nixdb_tree_release(struct nixdb_tree *t);
/* A child of directory t (appended; returned pointer valid until the next add). */
struct nixdb_tree *nixdb_tree_add(struct nixdb_tree *t, const char *name, size_t len);

/*
 * Parse a .ls listing ({"version":1,"root":{...}}, nix-formats.md 6.5)
 * into root.  Names must be valid NAR names.  0, or -1 with err.
 */
int nixdb_tree_from_listing(const char *json, size_t len, struct nixdb_tree *root,
                            struct rx_error **err);

/*
 * The entries of tree t whose path starts with prefix, in the order
 * nix-index writes them (a depth-first walk that visits a directory before
 * its entries, and the entries in decreasing byte order).  Entries whose
 * path holds a newline, which the format cannot carry, are left out.
 */
void nixdb_tree_list(const struct nixdb_tree *t, const char *prefix, struct nixdb_file **files,
                     size_t *n);
void nixdb_files_free(struct nixdb_file *files, size_t n);

struct nixdb_writer;

/* A writer to fd (which it does not close), compressing at zstd level `level`. */
struct nixdb_writer *nixdb_writer_new(int fd, const char *name, int level, struct rx_error **err);
/*
 * Add a package: its files (in order) then its package line.  A package
 * without files is not written, as nix-index does not write one.
 */
int nixdb_writer_add(struct nixdb_writer *w, const struct nixdb_package *p,
                     const struct nixdb_file *files, size_t n, struct rx_error **err);
/* End the zstd stream and write what is left.  0, or -1 with err. */
int nixdb_writer_finish(struct nixdb_writer *w, struct rx_error **err);
void nixdb_writer_free(struct nixdb_writer *w);

/* ---- sidecars: what lookups by program and by attribute read instead ---- */

/*
 * Decompressing a whole database takes longer than a lookup may (the small
 * index of nixpkgs is 20 MB decompressed), so runix keeps two sorted text
 * files beside it, made in one pass over the database and tied to it by
 * its identity (device, inode, size, mtime: a new database makes them
 * stale):
 *
 *   <db>.bins   "BASENAME\tPATH\tTYPE\tSIZE\tTOPLEVEL\tATTR\tOUTPUT\tSYSTEM\tSTOREPATH"
 *               for every file entry under /bin/ (TOPLEVEL 1 or 0, SYSTEM
 *               empty when unknown), sorted by line
 *   <db>.attrs  "ATTR\tOUTPUT\tSYSTEM\tSTOREPATH" for every top-level
 *               package, sorted by line
 *
 * after a header line "runix index sidecar 1 <small|full> <complete|partial>
 * <identity>".  "small" says that every entry of the database is under
 * /bin/ (so .bins has them all); "partial" that some entry could not be
 * written (a field with a control character) and a lookup must read the
 * database itself.  A lookup bisects the file with a few reads of
 * NIXDB_SIDE_CHUNK bytes (not a mapping: the kernel may map far more of a
 * file than is touched), in microseconds.
 */
#define NIXDB_SIDE_CHUNK 16384
#define NIXDB_SIDE_MAGIC "runix index sidecar 1 "
struct nixdb_side {
    int fd;
    uint64_t len;
    uint64_t body; /* where the lines start */
    bool small, complete;
    char *chunk; /* NIXDB_SIDE_CHUNK bytes of the file, from chunk_off */
    uint64_t chunk_off;
    size_t chunk_len;
};

/*
 * Read db and write both sidecars (atomically), tied to identity.  0, or -1
 * with err.  (nixdb-side-build.c; the rest of the sidecar code,
 * nixdb-side.c, needs libc only.)
 */
int nixdb_side_build(const char *db, const char *bins, const char *attrs, const char *identity,
                     struct rx_error **err);
/* Open file if it is a sidecar of identity: 1, 0 when missing or stale, -1 with err. */
int nixdb_side_open(const char *file, const char *identity, struct nixdb_side *s,
                    struct rx_error **err);
void nixdb_side_close(struct nixdb_side *s);
/*
 * Call fn with the fields of each line whose first field is key (exact) or
 * starts with it; fn returns 0 to go on, 1 to stop, -1 for an error.
 * fields[] point into a copy that lives during the call.
 */
typedef int (*nixdb_side_fn)(void *ctx, char **fields, size_t n);
int nixdb_side_find(struct nixdb_side *s, const char *key, bool exact, nixdb_side_fn fn,
                    void *ctx);
