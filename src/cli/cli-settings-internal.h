/* What cli-settings.c hands to the per-binary half of the settings resolution. */
#pragma once
/*
 * cli-settings.c reads the config file and resolves what both binaries use
 * (the store); cli_settings_resolve_core() then resolves the rest (CA file,
 * caches, trusted keys).  runix-core has the real one, in
 * cli-settings-core.c; the front's, in cli-front.c, does nothing: it only
 * runs programs, and runix-core checks caches and keys when it fetches.
 */

#include <stdbool.h>

#include "cli-settings.h"
#include "util-error.h"

/* What the config file says, before the environment and flags apply. */
struct cli_conf {
    char *path; /* owned: the config file, for messages; may be NULL */
    char *store;      /* as written */
    char *store_file; /* the file that set it (an include, maybe), which a relative one is in */
    char *ssl_cert_file;
    struct strv caches, extra_caches, keys, extra_keys;
    bool have_caches, have_keys;
    struct cli_settings *s;
};

/*
 * Read the config file ($RUNIX_CONFIG, else the XDG one) into c, whose
 * numeric settings go straight into s.  0, or -1 with err; either way
 * release c with cli_conf_release().
 */
int cli_conf_read(struct cli_conf *c, struct cli_settings *s, struct rx_error **err);
void cli_conf_release(struct cli_conf *c);

/*
 * path made absolute, once and for all: "~" and "~/..." (only with `tilde`)
 * start at $HOME; a relative path is taken against the directory base, or
 * the current directory when base is NULL.  Empty and "." components go;
 * ".." stays, for the kernel to follow as it would.  `what` names the
 * setting in errors.  Returns the path (free it), or NULL with err.
 */
char *cli_absolute_path(const char *path, const char *base, bool tilde, const char *what,
                        struct rx_error **err);

/*
 * ${env}/rel when env is set to an absolute path, else $HOME/home_rel/rel
 * (XDG base directories: cli_xdg_path("XDG_CONFIG_HOME", ".config", ...)).
 * NULL without either.  The caller frees it.
 */
char *cli_xdg_path(const char *env, const char *home_rel, const char *rel);

void cli_strv_push(struct strv *v, const char *s);
/* Split s at blanks and append each word. */
void cli_strv_push_words(struct strv *v, const char *s);
void cli_strv_clear(struct strv *v);

/* Resolve the settings only runix-core uses.  0, or -1 with err. */
int cli_settings_resolve_core(struct cli_settings *s, const struct cli_conf *c,
                              struct rx_error **err);
/* Free what cli_settings_resolve_core() set. */
void cli_settings_release_core(struct cli_settings *s);
