#pragma once
/*
 * Distributables: one small file naming what to fetch and run, per system
 * (docs/distributable.md describes the format; docs/distributable.schema.json
 * is its JSON Schema).
 *
 *     #!/usr/bin/env runix
 *     {"format": "1.0", "name": "hello",
 *      "systems": {"x86_64-linux": {"paths": ["/nix/store/...-hello-2.12.1"]}},
 *      "apps": {"default": {"program": "bin/hello"}},
 *      "caches": [{"url": "https://cache.nixos.org",
 *                  "keys": ["cache.nixos.org-1:6NCH..."]}]}
 *
 * The same JSON may instead sit in a POSIX sh script, between a line
 * ": <<'RUNIX_JSON'" and a line "RUNIX_JSON" (a here-document the shell
 * ignores): that is the self-bootstrapping form.
 *
 * Everything in the file is hostile until dist_parse() has checked it:
 * errors name the file, the place in the JSON ("systems.x86_64-linux.paths[0]")
 * and what was expected.  Unknown fields are ignored, so that files written
 * for a later minor version still run; an unknown major version is refused.
 * A sandbox policy is the exception: an unknown field there is refused, as
 * ignoring it could run the program with less confinement than it asks for.
 *
 * This module uses jansson and the store path parser only, so that the
 * front (a warm run) can read a distributable without loading more.
 */

#include <stdbool.h>
#include <stddef.h>

#include "store-path.h"
#include "util-error.h"

#define DIST_FORMAT_MAJOR 1
#define DIST_FORMAT_MINOR 0
/* Embedded narinfos of large closures stay well below this. */
#define DIST_FILE_MAX (64u * 1024 * 1024)

/* The systems a distributable may name, as Nix spells them. */
extern const char *const dist_known_systems[];

/*
 * An app's sandbox policy ("sandbox" in the file), as written: paths keep
 * their "~" and "$PWD", the network its text.  Checked by dist_parse();
 * run-sandbox-policy.h turns it into a sandbox_policy.
 */
struct dist_sandbox {
    bool enable;    /* "enable" (default true) */
    char *cwd;      /* owned: "rw", "ro", "none", or NULL (rw) */
    char *network;  /* owned: "none", "host", "allow:...", or NULL (none) */
    char **ro, **rw, **hide; /* owned: "/abs", "~/x" or "$PWD/x" */
    size_t nro, nrw, nhide;
    bool clearenv;  /* env.clear */
    char **setenv;  /* owned: env.set as "NAME=VALUE", sorted */
    size_t nsetenv;
    char **keep, **deny; /* owned: env.keep names, env.deny patterns */
    size_t nkeep, ndeny;
};

struct dist_app {
    char *name;    /* owned */
    char *program; /* owned; "bin/x" (has a '/': relative to the main path) or "x" */
    char **args;   /* owned; default arguments, before the user's */
    size_t nargs;
    char **env; /* owned; "KEY=VALUE", sorted by key */
    size_t nenv;
    struct dist_sandbox *sandbox; /* owned, or NULL: the file asks for none */
};

struct dist_cache {
    char *url;   /* owned */
    char **keys; /* owned; "name:base64" public keys */
    size_t nkeys;
};

struct dist_narinfo {
    struct store_path path;
    char *text; /* owned; as the cache serves it, signatures included */
};

struct dist_system {
    char *system;             /* owned; "x86_64-linux" */
    struct store_path *paths; /* owned; what to fetch, the main path first */
    size_t npaths;
    struct store_path *closure; /* owned, sorted; NULL when the file gives none */
    size_t nclosure;
    struct dist_narinfo *narinfos; /* owned, sorted by path; may be empty */
    size_t nnarinfos;
};

struct dist {
    unsigned format_major, format_minor;
    char *name;        /* owned */
    char *description; /* owned, or NULL */
    struct dist_system *systems; /* owned */
    size_t nsystems;
    struct dist_app *apps; /* owned; sorted by name */
    size_t napps;
    struct dist_cache *caches; /* owned; in file order */
    size_t ncaches;
};

#define DIST_INIT { 0 }

/*
 * Does this look like a distributable?  `head` is the start of a file (at
 * least its first line, when it is short): true when it starts with "#!"
 * and its first line names runix, or it is a sh script carrying a payload.
 */
bool dist_sniff(const char *head, size_t len);

/*
 * Parse the whole file `text` (len bytes).  `label` names the file in
 * errors.  On failure *out is left released.
 */
int dist_parse(const char *label, const char *text, size_t len, struct dist *out,
               struct rx_error **err);

/* Where the JSON is in the file text (after the first line, or in the sh form's here-document). */
int dist_payload(const char *label, const char *text, size_t len, const char **json,
                 size_t *jlen, struct rx_error **err);

/* Read and parse a file (at most DIST_FILE_MAX bytes). */
int dist_load(const char *file, struct dist *out, struct rx_error **err);

void dist_release(struct dist *d);

/* The system runix runs as here ("x86_64-linux"), fixed at build time. */
const char *dist_host_system(void);

/*
 * The entry for `system`, or NULL with an RX_ENOTFOUND error that names
 * the systems the file does list.
 */
const struct dist_system *dist_system_find(const struct dist *d, const char *label,
                                           const char *system, struct rx_error **err);

/*
 * The app called `name` (NULL or "": "default").  NULL with an error naming
 * the apps there are when there is no such app.  A file without apps has an
 * implicit default app with no program (run's own choice of program).
 */
const struct dist_app *dist_app_find(const struct dist *d, const char *label, const char *name,
                                     struct rx_error **err);

/* The narinfo text embedded for path, or NULL. */
const char *dist_narinfo_find(const struct dist_system *s, const struct store_path *path);
