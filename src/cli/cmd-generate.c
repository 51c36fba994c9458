/*
 * runix generate: write a distributable for store paths (or, on a machine
 * with Nix, for installables it builds), after checking that the caches it
 * names have every path of the closure.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli-byname.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "dist.h"
#include "fetch.h"
#include "store.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

static const char generate_usage[] =
    "usage: runix generate [OPTIONS] STOREPATH|INSTALLABLE...\n"
    "\n"
    "Write a distributable (docs/distributable.md) that runs the first path's\n"
    "programs, for this system (or --system).  Store paths are taken as they are;\n"
    "NAME#ATTR is looked up in the index NAME ('runix index update'), with no\n"
    "evaluator, when there is one; anything else is built with 'nix build\n"
    "--no-link --json', so that needs Nix.  The closure is read from the caches'\n"
    "narinfos, which also checks that the caches have every path of it: the\n"
    "missing ones are listed and nothing is written.\n"
    "\n"
    "  -o, --output FILE         write FILE (mode 0755) instead of standard output\n"
    "      --name NAME           the tool's name (default: the first path's package)\n"
    "      --description TEXT    one line about it\n"
    "      --app NAME=PROGRAM    an app: PROGRAM is 'bin/x' in the first path or a\n"
    "                            program name in the closure (repeatable; the first\n"
    "                            is also 'default' unless one is called so)\n"
    "      --cache URL           a cache the file names (repeatable; default: the\n"
    "                            configured caches, not written into the file)\n"
    "      --key NAME:KEY        the public key of the --cache before it\n"
    "      --closure             list the whole closure, so a cold start asks for\n"
    "                            every narinfo at once\n"
    "      --embed-narinfos      also embed the signed narinfos (implies --closure)\n"
    "      --system SYSTEM       the system the paths are for (default: this one's)\n"
    "      --add-system SYSTEM   merge SYSTEM's paths into the existing -o FILE\n"
    "  -f, --file FILE           build installables from this Nix file (nix build -f)\n"
    "      --bootstrap URL       write a sh script instead, which downloads runix\n"
    "                            (a .tar.gz of an installed tree, or one binary) from\n"
    "                            URL when runix is not on PATH, checking its sha256\n"
    "      --bootstrap-sha256 HEX  that sha256 (default: URL is downloaded now to\n"
    "                            compute it)\n" CLI_SETTINGS_USAGE
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix generate -o jq.runix --app jq=bin/jq nixpkgs#jq\n"
    "  runix generate --cache https://cache.nixos.org \\\n"
    "      --key cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY= \\\n"
    "      --closure -o hello.runix /nix/store/...-hello-2.12.1\n"
    "  runix generate --add-system aarch64-linux -o jq.runix /nix/store/...-jq-1.7.1-bin\n";

enum { OPT_NAME = 0x300, OPT_DESC, OPT_APP, OPT_DCACHE, OPT_KEY, OPT_CLOSURE, OPT_EMBED,
       OPT_SYSTEM, OPT_ADD_SYSTEM, OPT_BOOTSTRAP, OPT_BOOTSTRAP_SHA };

struct gen_cache {
    char *url;
    struct strv keys;
};

struct gen {
    const char *output, *name, *description, *system, *nix_file;
    const char *bootstrap, *bootstrap_sha; /* --bootstrap URL, its sha256 (hex) */
    bool closure, embed, add_system;
    struct strv apps;
    struct gen_cache *caches;
    size_t ncaches;
    struct cli_settings s;
    /* what the dry run found */
    json_t *closure_paths; /* array */
    json_t *narinfos;      /* object */
};

static void on_plan(void *ctx, const struct fetch_plan_entry *e, size_t n)
{
    struct gen *g = ctx;
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&e[i].path, full);
        json_array_append_new(g->closure_paths, json_string(full));
        json_object_set_new(g->narinfos, full, json_string(e[i].narinfo));
    }
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* "nix build --no-link --json [-f FILE] ARG": its output paths. */
static int nix_build(const struct gen *g, const char *arg, struct store_path **paths,
                     size_t *n)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return cli_cmd_error("generate", "pipe: %s", strerror(errno)), EXIT_FAIL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        const char *av[10];
        size_t k = 0;
        av[k++] = "nix";
        av[k++] = "--extra-experimental-features";
        av[k++] = "nix-command flakes";
        av[k++] = "build";
        av[k++] = "--no-link";
        av[k++] = "--json";
        if (g->nix_file) {
            av[k++] = "-f";
            av[k++] = g->nix_file;
        }
        av[k++] = arg;
        av[k] = NULL;
        execvp("nix", (char **)av);
        fprintf(stderr, "%s generate: cannot run 'nix' (%s): '%s' is not a store path, and "
                        "building it needs Nix%s\n",
                cli_progname, strerror(errno), arg,
                strchr(arg, '#') ? " (or, for NAME#ATTR, an index: 'runix index update')" : "");
        _exit(127);
    }
    close(fds[1]);
    struct rx_buf b = RX_BUF_INIT(16 * 1024 * 1024);
    struct rx_error *err = NULL;
    int rr = read_fd(fds[0], "nix build", &b, &err);
    close(fds[0]);
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    rx_error_free(err);
    if (pid < 0 || rr < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rx_buf_release(&b);
        if (pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127)
            return EXIT_FAIL;
        return cli_cmd_error("generate", "'nix build %s' failed", arg), EXIT_FAIL;
    }
    /* [{"drvPath": ..., "outputs": {"out": "/nix/store/..."}}, ...] */
    json_error_t jerr;
    json_t *top = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
    rx_buf_release(&b);
    int ret = EXIT_OK;
    size_t i;
    json_t *build;
    if (!json_is_array(top) || json_array_size(top) == 0)
        ret = EXIT_FAIL;
    json_array_foreach(top, i, build) {
        json_t *outputs = json_object_get(build, "outputs");
        const char *name;
        json_t *v;
        if (!json_is_object(outputs))
            ret = EXIT_FAIL;
        json_object_foreach(outputs, name, v) {
            const char *p = json_string_value(v);
            *paths = xrealloc(*paths, (*n + 1) * sizeof **paths);
            if (!p || store_path_parse(p, strlen(p), &(*paths)[*n], NULL) < 0) {
                ret = EXIT_FAIL;
                continue;
            }
            (*n)++;
        }
    }
    json_decref(top);
    if (ret != EXIT_OK)
        cli_cmd_error("generate", "'nix build --json %s' printed what is not a list of builds "
                                  "with store paths",
                      arg);
    return ret;
}

/* Is there an index for NAME#ATTR (else Nix builds it, as any installable)? */
static bool have_index(const char *ref)
{
    _cleanup_free_ char *name = xstrndup(ref, strcspn(ref, "#"));
    _cleanup_free_ char *file = cli_index_file(name);
    return file && access(file, R_OK) == 0;
}

/* The closure from the caches' narinfos. */
static int walk(struct gen *g, const struct store_path *paths, size_t n)
{
    return cli_plan_closure("generate", &g->s, paths, n, on_plan, g);
}

/* "hello-2.12" -> "hello" */
static char *package_name(const char *name)
{
    for (const char *p = name; (p = strchr(p, '-')); p++)
        if (p[1] >= '0' && p[1] <= '9')
            return xstrndup(name, (size_t)(p - name));
    return xstrdup(name);
}

static json_t *system_entry(struct gen *g, const struct store_path *paths, size_t n)
{
    json_t *sys = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&paths[i], full);
        json_array_append_new(arr, json_string(full));
    }
    json_object_set_new(sys, "paths", arr);
    if (g->closure || g->embed) {
        size_t k = json_array_size(g->closure_paths);
        json_t **v = xcalloc(k + 1, sizeof *v);
        for (size_t i = 0; i < k; i++)
            v[i] = json_array_get(g->closure_paths, i);
        qsort(v, k, sizeof *v, cmp_json_str);
        json_t *cl = json_array();
        for (size_t i = 0; i < k; i++)
            json_array_append(cl, v[i]);
        free(v);
        json_object_set_new(sys, "closure", cl);
    }
    if (g->embed)
        json_object_set(sys, "narinfos", g->narinfos);
    return sys;
}

static json_t *build_file(struct gen *g, const struct store_path *paths, json_t *sys)
{
    json_t *top = json_object();
    char fmt[16];
    snprintf(fmt, sizeof fmt, "%d.%d", DIST_FORMAT_MAJOR, DIST_FORMAT_MINOR);
    json_object_set_new(top, "format", json_string(fmt));
    _cleanup_free_ char *pname = package_name(paths[0].name);
    json_object_set_new(top, "name", json_string(g->name ? g->name : pname));
    if (g->description)
        json_object_set_new(top, "description", json_string(g->description));
    json_t *systems = json_object();
    json_object_set_new(systems, g->system, sys);
    json_object_set_new(top, "systems", systems);
    if (g->apps.n) {
        json_t *apps = json_object();
        bool has_default = false;
        for (size_t i = 0; i < g->apps.n; i++)
            has_default |= strncmp(g->apps.v[i], "default=", 8) == 0;
        for (size_t i = 0; i < g->apps.n; i++) {
            const char *eq = strchr(g->apps.v[i], '=');
            _cleanup_free_ char *name = xstrndup(g->apps.v[i], (size_t)(eq - g->apps.v[i]));
            json_t *app = json_object();
            json_object_set_new(app, "program", json_string(eq + 1));
            json_object_set_new(apps, name, app);
            if (i == 0 && !has_default)
                json_object_set(apps, "default", app);
        }
        json_object_set_new(top, "apps", apps);
    }
    if (g->ncaches) {
        json_t *caches = json_array();
        for (size_t i = 0; i < g->ncaches; i++) {
            json_t *c = json_object();
            json_object_set_new(c, "url", json_string(g->caches[i].url));
            json_t *keys = json_array();
            for (size_t j = 0; j < g->caches[i].keys.n; j++)
                json_array_append_new(keys, json_string(g->caches[i].keys.v[j]));
            json_object_set_new(c, "keys", keys);
            json_array_append_new(caches, c);
        }
        json_object_set_new(top, "caches", caches);
    }
    return top;
}

/* --add-system: the existing file's JSON, with this system's entry set. */
static json_t *merge_into(const char *file, const char *system, json_t *sys)
{
    struct dist d;
    struct rx_error *err = NULL;
    if (dist_load(file, &d, &err) < 0) {
        cli_cmd_error("generate", "--add-system: %s", err->msg);
        rx_error_free(err);
        return NULL;
    }
    dist_release(&d);
    struct rx_buf b = RX_BUF_INIT(DIST_FILE_MAX);
    if (read_file(file, &b, &err) < 0) {
        cli_fail(err);
        return NULL;
    }
    const char *json = NULL;
    size_t jlen = 0;
    if (dist_payload(file, b.data, b.len, &json, &jlen, &err) < 0) { /* dist_load read it */
        rx_buf_release(&b);
        cli_fail(err);
        return NULL;
    }
    json_error_t jerr;
    json_t *top = json_loadb(json, jlen, 0, &jerr);
    rx_buf_release(&b);
    if (!top) {
        cli_cmd_error("generate", "--add-system: '%s': %s", file, jerr.text);
        return NULL;
    }
    json_object_set(json_object_get(top, "systems"), system, sys);
    return top;
}

/*
 * The self-bootstrapping form (docs/distributable.md): the JSON in a
 * here-document sh ignores, then a script that runs runix from PATH, or
 * downloads it from url (checking sha256) into the user's data directory.
 */
static char *bootstrap_text(const char *json, const char *url, const char *sha256)
{
    _cleanup_free_ char *q_url = sh_quote(url);
    return xasprintf(
        "#!/bin/sh\n"
        ": <<'RUNIX_JSON'\n"
        "%s\n"
        "RUNIX_JSON\n"
        "# A runix distributable: run by runix when it is on PATH; otherwise runix is\n"
        "# downloaded once (its sha256 checked) into the user's data directory.\n"
        "url=%s\n"
        "sha256=%s\n"
        "if command -v runix >/dev/null 2>&1; then exec runix run \"$0\" -- \"$@\"; fi\n"
        "top=\"${XDG_DATA_HOME:-$HOME/.local/share}/runix/bootstrap\"\n"
        "dir=\"$top/$sha256\"\n"
        "runix=$(find \"$dir\" -path '*/bin/runix' -type f 2>/dev/null | head -n 1)\n"
        "if [ -z \"$runix\" ]; then\n"
        "  mkdir -p \"$top\" || exit 1\n"
        "  tmp=$(mktemp \"$top/.download.XXXXXX\") || exit 1\n"
        "  if command -v curl >/dev/null 2>&1; then curl -fsSL -o \"$tmp\" \"$url\"\n"
        "  else wget -q -O \"$tmp\" \"$url\"; fi || {\n"
        "    rm -f \"$tmp\"; echo \"$0: cannot download runix from $url\" >&2; exit 1; }\n"
        "  sum=$( (sha256sum \"$tmp\" 2>/dev/null || shasum -a 256 \"$tmp\") | cut -d' ' -f1)\n"
        "  if [ \"$sum\" != \"$sha256\" ]; then\n"
        "    rm -f \"$tmp\"\n"
        "    echo \"$0: refusing the runix downloaded from $url: its sha256 is $sum, not $sha256\" >&2\n"
        "    exit 1\n"
        "  fi\n"
        "  new=$(mktemp -d \"$top/.unpack.XXXXXX\") || { rm -f \"$tmp\"; exit 1; }\n"
        "  if [ \"$(head -c 2 \"$tmp\" | od -An -tx1 | tr -d ' ')\" = 1f8b ]; then\n"
        "    tar -xzf \"$tmp\" -C \"$new\" || { rm -rf \"$tmp\" \"$new\"; exit 1; }\n"
        "  else\n"
        "    mkdir -p \"$new/bin\" && mv \"$tmp\" \"$new/bin/runix\" && chmod 755 \"$new/bin/runix\"\n"
        "  fi\n"
        "  rm -f \"$tmp\"\n"
        "  mv \"$new\" \"$dir\" 2>/dev/null || rm -rf \"$new\"\n"
        "  runix=$(find \"$dir\" -path '*/bin/runix' -type f | head -n 1)\n"
        "  [ -n \"$runix\" ] || { echo \"$0: no bin/runix in what $url gave\" >&2; exit 1; }\n"
        "fi\n"
        "exec \"$runix\" run \"$0\" -- \"$@\"\n",
        json, q_url, sha256);
}

/* The sha256 of what url serves, in hex (--bootstrap without --bootstrap-sha256). */
static int url_sha256(struct gen *g, const char *url, char hex[65])
{
    struct fetch_opts o;
    cli_settings_fetch_opts(&g->s, &o);
    struct fetch_document doc = { .body = RX_BUF_INIT(512 * 1024 * 1024) };
    struct rx_error *err = NULL;
    int ret = EXIT_OK;
    if (fetch_document(url, &o, &doc, &err) < 0) {
        cli_cmd_error("generate", "--bootstrap: cannot download '%s': %s", url, err->msg);
        rx_error_free(err);
        ret = EXIT_FAIL;
    } else {
        struct hash h;
        sha256_buf(doc.body.data ? doc.body.data : "", doc.body.len, &h);
        hex_encode(h.bytes, 32, hex);
    }
    rx_buf_release(&doc.body);
    free(doc.etag);
    free(doc.last_modified);
    return ret;
}

static bool sha256_hex_valid(const char *s)
{
    if (strlen(s) != 64)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

static int write_out(struct gen *g, const char *output, json_t *top)
{
    char *json = json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    _cleanup_free_ char *text = NULL;
    if (g->bootstrap) {
        char hex[65];
        if (g->bootstrap_sha) {
            snprintf(hex, sizeof hex, "%s", g->bootstrap_sha);
        } else if (url_sha256(g, g->bootstrap, hex) != EXIT_OK) {
            free(json);
            return EXIT_FAIL;
        }
        text = bootstrap_text(json, g->bootstrap, hex);
    } else {
        text = xasprintf("#!/usr/bin/env runix\n%s\n", json);
    }
    free(json);
    /* What we write must read back: the same checks as every reader's. */
    struct dist d;
    struct rx_error *err = NULL;
    if (dist_parse(output ? output : "(output)", text, strlen(text), &d, &err) < 0) {
        cli_cmd_error("generate", "BUG: the file does not read back: %s", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    dist_release(&d);
    if (!output)
        return fputs(text, stdout) >= 0 && fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
    struct rx_error *werr = NULL;
    if (write_data_atomic_at(AT_FDCWD, output, text, strlen(text), 0755, false, &werr) < 0) {
        cli_cmd_error("generate", "cannot write '%s': %s", output, werr->msg);
        rx_error_free(werr);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_generate(int argc, char **argv)
{
    static const struct option opts[] = {
        CLI_SETTINGS_OPTIONS,
        {"output", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, OPT_NAME},
        {"description", required_argument, NULL, OPT_DESC},
        {"app", required_argument, NULL, OPT_APP},
        {"key", required_argument, NULL, OPT_KEY},
        {"closure", no_argument, NULL, OPT_CLOSURE},
        {"embed-narinfos", no_argument, NULL, OPT_EMBED},
        {"system", required_argument, NULL, OPT_SYSTEM},
        {"add-system", required_argument, NULL, OPT_ADD_SYSTEM},
        {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
        {"bootstrap-sha256", required_argument, NULL, OPT_BOOTSTRAP_SHA},
        {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct gen g = { .system = dist_host_system() };
    int o, ret = EXIT_USAGE;
    struct store_path *paths = NULL;
    size_t n = 0;
    json_t *top = NULL;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:o:f:qh", opts, NULL)) != -1) {
        if (o == OPT_CACHE) { /* --cache: a cache the file names (and the walk uses) */
            g.caches = xrealloc(g.caches, (g.ncaches + 1) * sizeof *g.caches);
            g.caches[g.ncaches++] = (struct gen_cache){ .url = optarg };
            cli_settings_option(&g.s, o, optarg);
            continue;
        }
        if (cli_settings_option(&g.s, o, optarg))
            continue;
        switch (o) {
        case 'o': g.output = optarg; break;
        case 'f': g.nix_file = optarg; break;
        case OPT_NAME: g.name = optarg; break;
        case OPT_DESC: g.description = optarg; break;
        case OPT_CLOSURE: g.closure = true; break;
        case OPT_EMBED: g.embed = true; break;
        case OPT_SYSTEM: g.system = optarg; break;
        case OPT_BOOTSTRAP: g.bootstrap = optarg; break;
        case OPT_BOOTSTRAP_SHA: g.bootstrap_sha = optarg; break;
        case OPT_ADD_SYSTEM:
            g.system = optarg;
            g.add_system = true;
            break;
        case OPT_APP: {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) {
                cli_usage_error("generate", "--app takes NAME=PROGRAM, not '%s'", optarg);
                goto out;
            }
            cli_strv_push(&g.apps, optarg);
            break;
        }
        case OPT_KEY:
            if (g.ncaches == 0) {
                cli_usage_error("generate", "--key '%s' must follow the --cache it signs", optarg);
                goto out;
            }
            cli_strv_push(&g.caches[g.ncaches - 1].keys, optarg);
            cli_settings_option(&g.s, OPT_TRUSTED_KEY, optarg);
            break;
        case 'h':
            ret = cli_print_help(generate_usage);
            goto out;
        default:
            ret = cli_option_error("generate", o, argv, opts);
            goto out;
        }
    }
    if (optind == argc) {
        cli_usage_error("generate", "expected at least one STOREPATH or INSTALLABLE");
        goto out;
    }
    if (g.bootstrap_sha && !sha256_hex_valid(g.bootstrap_sha)) {
        cli_usage_error("generate", "--bootstrap-sha256 takes 64 lower-case hex digits, not '%s'",
                        g.bootstrap_sha);
        goto out;
    }
    if (g.bootstrap && strncmp(g.bootstrap, "https://", 8) != 0 &&
        strncmp(g.bootstrap, "http://", 7) != 0) {
        cli_usage_error("generate", "--bootstrap takes an https:// or http:// URL, not '%s'",
                        g.bootstrap);
        goto out;
    }
    if (g.add_system && !g.output) {
        cli_usage_error("generate", "--add-system needs -o FILE, the file to add to");
        goto out;
    }
    struct rx_error *err = NULL;
    if (cli_settings_finish(&g.s, &err) < 0) {
        ret = err && err->code == RX_EUSAGE ? (cli_cmd_error("generate", "%s", err->msg),
                                                rx_error_free(err), EXIT_USAGE)
                                             : cli_fail(err);
        goto out;
    }
    ret = EXIT_FAIL;
    for (int i = optind; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, STORE_DIR "/", STORE_DIR_LEN + 1) == 0) {
            paths = xrealloc(paths, (n + 1) * sizeof *paths);
            const char *sub;
            if (store_path_parse_with_subpath(a, strlen(a), &paths[n], &sub, &err) < 0) {
                cli_usage_error("generate", "%s", err->msg);
                rx_error_free(err);
                ret = EXIT_USAGE;
                goto out;
            }
            n++;
        } else if (cli_byname_is_ref(a) && !g.nix_file && have_index(a)) {
            /* NAME#ATTR from the index NAME, with no evaluator */
            paths = xrealloc(paths, (n + 1) * sizeof *paths);
            if ((ret = cli_byname_resolve("generate", a, &paths[n])) != EXIT_OK)
                goto out;
            n++;
        } else if ((ret = nix_build(&g, a, &paths, &n)) != EXIT_OK) {
            goto out;
        }
    }
    g.closure_paths = json_array();
    g.narinfos = json_object();
    if ((ret = walk(&g, paths, n)) != EXIT_OK)
        goto out;
    json_t *sys = system_entry(&g, paths, n);
    top = g.add_system ? merge_into(g.output, g.system, sys) : build_file(&g, paths, sys);
    if (g.add_system)
        json_decref(sys);
    ret = top ? write_out(&g, g.output, top) : EXIT_FAIL;
out:
    json_decref(top);
    json_decref(g.closure_paths);
    json_decref(g.narinfos);
    for (size_t i = 0; i < g.ncaches; i++)
        cli_strv_clear(&g.caches[i].keys);
    free(g.caches);
    cli_strv_clear(&g.apps);
    cli_settings_release(&g.s);
    free(paths);
    return ret;
}
