/*
 * Trusting a distributable's own caches and keys (runix-core only: it needs
 * the resolved settings and sha256).
 *
 * Every distributable shares the one store, so a key that comes from a file
 * is a key anyone who writes such a file controls.  It is used only once
 * the user has said yes for this very content (a changed file asks again),
 * and only for the command that read the file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "cli-dist.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "crypto-sig.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* ${XDG_CONFIG_HOME:-~/.config}/runix/trusted: one file per trusted content hash. */
static char *trust_dir(void)
{
    return cli_xdg_path("XDG_CONFIG_HOME", ".config", "runix/trusted");
}

static void content_hash(const struct cli_dist *cd, char hex[65])
{
    struct hash h;
    sha256_buf(cd->raw, cd->rawlen, &h);
    hex_encode(h.bytes, 32, hex);
}

static bool trusted_before(const struct cli_dist *cd)
{
    _cleanup_free_ char *dir = trust_dir();
    if (!dir)
        return false;
    char hex[65];
    content_hash(cd, hex);
    _cleanup_free_ char *f = xasprintf("%s/%s", dir, hex);
    struct stat st;
    return lstat(f, &st) == 0 && S_ISREG(st.st_mode);
}

static int remember(const struct cli_dist *cd, struct rx_error **err)
{
    _cleanup_free_ char *dir = trust_dir();
    if (!dir)
        return rx_error_set(err, RX_ENOTFOUND, "cannot remember the trust: HOME is not set");
    if (mkdir_p_mode(dir, 0700, err) < 0)
        return -1;
    char hex[65];
    content_hash(cd, hex);
    _cleanup_free_ char *f = xasprintf("%s/%s", dir, hex);
    _cleanup_free_ char *text = xasprintf("name %s\nfile %s\n", cd->d.name, cd->label);
    if (write_data_atomic_at(AT_FDCWD, f, text, strlen(text), 0600, false, err) < 0)
        return -1;
    return 0;
}

static bool have_cache(const struct cli_settings *s, const char *url)
{
    struct cache c = {0};
    if (cache_init(&c, url, 0, NULL) < 0)
        return false;
    bool found = false;
    for (size_t i = 0; i < s->ncaches && !found; i++)
        found = strcmp(s->caches[i].url, c.url) == 0;
    cache_release(&c);
    return found;
}

static bool have_key(const struct cli_settings *s, const char *text)
{
    struct public_key k;
    if (public_key_parse(text, strlen(text), &k, NULL) < 0)
        return false;
    const struct public_key *t = trusted_keys_find(&s->keys, k.name);
    return t && memcmp(t->key, k.key, sizeof k.key) == 0;
}

/* Does the file name anything the user does not already use? */
static bool needs_trust(const struct cli_dist *cd, const struct cli_settings *s)
{
    for (size_t i = 0; i < cd->d.ncaches; i++) {
        const struct dist_cache *c = &cd->d.caches[i];
        if (!have_cache(s, c->url))
            return true;
        for (size_t j = 0; j < c->nkeys; j++)
            if (!have_key(s, c->keys[j]))
                return true;
    }
    return false;
}

static void describe(const struct cli_dist *cd, FILE *out)
{
    fprintf(out, "'%s' (%s) asks to fetch from:\n", cd->label, cd->d.name);
    for (size_t i = 0; i < cd->d.ncaches; i++) {
        const struct dist_cache *c = &cd->d.caches[i];
        fprintf(out, "  %s\n", c->url);
        for (size_t j = 0; j < c->nkeys; j++)
            fprintf(out, "    signed by %s\n", c->keys[j]);
    }
    for (size_t i = 0; i < cd->d.napps; i++) {
        const struct dist_app *a = &cd->d.apps[i];
        if (!a->sandbox || !a->sandbox->enable)
            continue;
        fprintf(out, "  app '%s' runs sandboxed, as the file asks:\n", a->name);
        cli_dist_sandbox_print(a->sandbox, out, "    ");
    }
}

/* Ask on the terminal; true for yes. */
static bool ask(const struct cli_dist *cd)
{
    describe(cd, stderr);
    fprintf(stderr, "Trust these caches and keys for this file's programs? [y/N] ");
    fflush(stderr);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return false;
    return line[0] == 'y' || line[0] == 'Y';
}

static int add_to_settings(const char *cmd, const struct cli_dist *cd, struct cli_settings *s)
{
    for (size_t i = 0; i < cd->d.ncaches; i++) {
        const struct dist_cache *c = &cd->d.caches[i];
        struct rx_error *err = NULL;
        if (!have_cache(s, c->url)) {
            s->caches = xrealloc(s->caches, (s->ncaches + 1) * sizeof *s->caches);
            memset(&s->caches[s->ncaches], 0, sizeof *s->caches);
            if (cache_init(&s->caches[s->ncaches], c->url, s->ncaches, &err) < 0) {
                cli_cmd_error(cmd, "'%s': cache '%s': %s", cd->label, c->url, err->msg);
                rx_error_free(err);
                return EXIT_FAIL;
            }
            s->ncaches++;
        }
        for (size_t j = 0; j < c->nkeys; j++) {
            if (have_key(s, c->keys[j]))
                continue;
            if (trusted_keys_add(&s->keys, c->keys[j], strlen(c->keys[j]), &err) < 0) {
                cli_cmd_error(cmd, "'%s': key '%s': %s", cd->label, c->keys[j], err->msg);
                rx_error_free(err);
                return EXIT_FAIL;
            }
        }
    }
    return EXIT_OK;
}

int cli_dist_trust(const char *cmd, const struct cli_dist *cd, struct cli_settings *s, bool trust)
{
    if (!needs_trust(cd, s))
        return EXIT_OK;
    if (!trust && !trusted_before(cd)) {
        if (!isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) {
            cli_cmd_error(cmd, "'%s' brings caches or keys you have not trusted; to trust "
                               "them, run 'runix trust %s' (or pass --trust for one run)",
                          cd->label, cd->label);
            describe(cd, stderr);
            return EXIT_FAIL;
        }
        if (!ask(cd)) {
            cli_cmd_error(cmd, "not trusted: nothing fetched for '%s'", cd->label);
            return EXIT_FAIL;
        }
        struct rx_error *err = NULL;
        if (remember(cd, &err) < 0) {
            cli_cmd_error(cmd, "warning: %s", err->msg);
            rx_error_free(err);
        }
    }
    return add_to_settings(cmd, cd, s);
}

static const char trust_usage[] =
    "usage: runix trust FILE|URL|github:OWNER/REPO...\n"
    "       runix trust --remove FILE...\n"
    "\n"
    "Trust the caches and keys that a distributable brings, for that file's own\n"
    "programs, so that running it needs no prompt and no --trust.  The trust is\n"
    "for the file's exact content: a changed file asks again.  Records are kept\n"
    "in ~/.config/runix/trusted.\n"
    "\n"
    "  -r, --remove              forget the trust in these files\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix run --list ./tool.runix     see what the file would fetch from\n"
    "  runix trust ./tool.runix\n"
    "  ./tool.runix --version\n";

int cmd_trust(int argc, char **argv)
{
    static const struct option opts[] = {
        {"remove", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool remove_it = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:rh", opts, NULL)) != -1) {
        if (o == 'h')
            return cli_print_help(trust_usage);
        if (o != 'r')
            return cli_option_error("trust", o, argv, opts);
        remove_it = true;
    }
    if (optind == argc)
        return cli_usage_error("trust", "expected a distributable FILE");
    int ret = EXIT_OK;
    for (int i = optind; i < argc; i++) {
        struct cli_dist cd;
        _cleanup_free_ char *local = NULL;
        int r = EXIT_OK;
        if (cli_dist_is_remote(argv[i]))
            r = cli_ref_resolve("trust", argv[i], false, &local);
        if (r != EXIT_OK) {
            ret = r;
            continue;
        }
        r = cli_dist_open_as("trust", local ? local : argv[i], local ? argv[i] : NULL, true, &cd);
        if (r != EXIT_OK) {
            cli_dist_release(&cd);
            ret = r;
            continue;
        }
        struct rx_error *err = NULL;
        if (remove_it) {
            _cleanup_free_ char *dir = trust_dir();
            char hex[65];
            content_hash(&cd, hex);
            _cleanup_free_ char *f = dir ? xasprintf("%s/%s", dir, hex) : NULL;
            if (f && unlink(f) < 0 && errno != ENOENT) {
                cli_cmd_error("trust", "cannot remove '%s': %s", f, strerror(errno));
                ret = EXIT_FAIL;
            }
        } else if (remember(&cd, &err) < 0) {
            cli_cmd_error("trust", "%s", err->msg);
            rx_error_free(err);
            ret = EXIT_FAIL;
        } else {
            describe(&cd, stdout);
            printf("trusted: '%s' (sha256 of its content)\n", cd.label);
        }
        cli_dist_release(&cd);
    }
    return ret;
}
