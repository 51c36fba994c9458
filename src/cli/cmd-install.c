/*
 * runix install, uninstall and upgrade: tools from distributables, as
 * launchers on PATH.
 *
 * An installed tool is a directory ${XDG_STATE_HOME:-~/.local/state}/runix/
 * installed/NAME/ holding "file" (the distributable, copied: a launcher
 * never needs the network once the closure is there), "ref" (what it was
 * installed from, for upgrade) and "launchers" (the paths written, one a
 * line).  A launcher is a sh script in the bin dir (--bin-dir, the config's
 * bin-dir, or ~/.local/bin) that runs one app of that copy.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-dist.h"
#include "cli-settings-internal.h"
#include "cli-settings.h"
#include "cli.h"
#include "store-index.h"
#include "store-roots.h"
#include "util-fs.h"
#include "util-install.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* Every launcher starts so; only such a file is ever replaced or removed. */
#define LAUNCHER_MARK "# runix launcher"

static char *installed_dir(void)
{
    return cli_xdg_path("XDG_STATE_HOME", ".local/state", "runix/installed");
}

static char *bin_dir(const char *flag, const struct cli_settings *s)
{
    if (flag)
        return xstrdup(flag);
    if (s->bin_dir && *s->bin_dir)
        return xstrdup(s->bin_dir);
    const char *home = getenv("HOME");
    return home && home[0] == '/' ? xasprintf("%s/.local/bin", home) : NULL;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    return write_data_atomic_at(AT_FDCWD, path, data, len, mode, false, NULL);
}

/*
 * Whether path is a launcher runix wrote; if so and owner is not NULL,
 * *owner is the tool it was written for (malloc'd).
 */
static bool launcher_of(const char *path, char **owner)
{
    char head[512];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    ssize_t n = read_retry(fd, head, sizeof head - 1);
    close(fd);
    if (n <= 0)
        return false;
    head[n] = '\0';
    const char *mark = strstr(head, "\n" LAUNCHER_MARK);
    if (!mark)
        return false;
    if (owner) {
        static const char pre[] = "\n" LAUNCHER_MARK " for '";
        const char *name = strncmp(mark, pre, sizeof pre - 1) == 0 ? mark + sizeof pre - 1 : NULL;
        const char *end = name ? strstr(name, "' (app '") : NULL;
        *owner = end ? xstrndup(name, (size_t)(end - name)) : xstrdup("");
    }
    return true;
}

/* Whether path is the launcher of the tool name. */
static bool is_launcher_for(const char *path, const char *name)
{
    _cleanup_free_ char *owner = NULL;
    return launcher_of(path, &owner) && strcmp(owner, name) == 0;
}

static bool on_path(const char *dir)
{
    const char *path = getenv("PATH");
    size_t n = strlen(dir);
    for (const char *p = path; p && *p;) {
        size_t len = strcspn(p, ":");
        if (len == n && strncmp(p, dir, n) == 0)
            return true;
        p += len;
        p += *p == ':';
    }
    return false;
}

/* The launchers' names: the tool's name for the default app, else the app's. */
static char *launcher_name(const char *tool, const char *app)
{
    return xstrdup(strcmp(app, "default") == 0 ? tool : app);
}

/* Whether the launcher path may be written for the tool name; says why not. */
static bool may_write_launcher(const char *path, const char *name)
{
    struct stat st;
    _cleanup_free_ char *owner = NULL;
    if (lstat(path, &st) < 0)
        return true;
    if (!launcher_of(path, &owner)) {
        cli_cmd_error("install",
                      "'%s' exists and is not a runix launcher: not replaced "
                      "(choose another name with --as)",
                      path);
        return false;
    }
    if (strcmp(owner, name) != 0) {
        cli_cmd_error("install",
                      "'%s' is the launcher of the installed tool '%s': not "
                      "replaced (choose another name with --as, or run 'runix "
                      "uninstall %s' first)",
                      path, owner, owner);
        return false;
    }
    return true;
}

static int write_launchers(const char *name, const char *dir, const struct cli_dist *cd,
                           const char *only_app, const char *bindir, struct strv *written)
{
    char front[PATH_MAX];
    struct rx_error *err = NULL;
    const char *runix = "runix";
    if (rx_install_find(RX_INSTALL_FRONT, front, sizeof front, &err) == 0)
        runix = front;
    rx_error_clear(&err);
    if (mkdir_p_mode(bindir, 0755, NULL) < 0) {
        cli_cmd_error("install", "cannot create '%s': %s", bindir, strerror(errno));
        return EXIT_FAIL;
    }
    size_t napps = cd->d.napps ? cd->d.napps : 1;
    /* Every name is checked before any launcher is written. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < napps; i++) {
            const char *app = cd->d.napps ? cd->d.apps[i].name : "default";
            if (only_app && strcmp(app, only_app) != 0)
                continue;
            _cleanup_free_ char *lname = only_app ? xstrdup(name) : launcher_name(name, app);
            _cleanup_free_ char *path = xasprintf("%s/%s", bindir, lname);
            if (pass == 0) {
                if (!may_write_launcher(path, name))
                    return EXIT_FAIL;
                continue;
            }
            _cleanup_free_ char *target = xasprintf("%s/file#%s", dir, app);
            _cleanup_free_ char *q_runix = sh_quote(runix), *q_target = sh_quote(target);
            _cleanup_free_ char *text =
                xasprintf("#!/bin/sh\n" LAUNCHER_MARK " for '%s' (app '%s'); 'runix uninstall %s' "
                          "removes it.\nexec %s run %s -- \"$@\"\n",
                          name, app, name, q_runix, q_target);
            if (write_file(path, text, strlen(text), 0755) < 0) {
                cli_cmd_error("install", "cannot write '%s': %s", path, strerror(errno));
                return EXIT_FAIL;
            }
            cli_strv_push(written, path);
        }
    }
    return EXIT_OK;
}

/*
 * runix fetch, in this process: the closure of the copy, trusted or not,
 * kept by the installed root `tool` (made before the paths are registered;
 * an upgrade moves it to the new paths, keeping the old until then).
 */
static int fetch_file(const char *file, const char *label, bool trust, const char *tool)
{
    char *av[10];
    int k = 0;
    av[k++] = (char *)"fetch";
    av[k++] = (char *)"--quiet";
    if (trust)
        av[k++] = (char *)"--trust";
    if (tool) {
        av[k++] = (char *)"--installed-root";
        av[k++] = (char *)tool;
    }
    av[k++] = (char *)"--dist-label";
    av[k++] = (char *)label;
    av[k++] = (char *)"--";
    av[k++] = (char *)file;
    av[k] = NULL;
    int out = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fflush(stdout);
    if (null >= 0)
        dup2(null, STDOUT_FILENO);
    int r = cmd_fetch(k, av);
    fflush(stdout);
    if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        close(out);
    }
    if (null >= 0)
        close(null);
    return r;
}

/* Resolve ref to a local file (downloading remote ones). */
static int local_copy(const char *cmd, const char *ref, char **local)
{
    if (cli_dist_is_remote(ref))
        return cli_ref_resolve(cmd, ref, false, local);
    *local = xstrdup(ref);
    return EXIT_OK;
}

static const char install_usage[] =
    "usage: runix install [OPTIONS] FILE|URL|github:OWNER/REPO[#APP]\n"
    "       runix install --list\n"
    "\n"
    "Install a distributable's apps as commands: fetch its closure, keep a copy\n"
    "of the file, and write a launcher into the bin dir for each app (the default\n"
    "app's is named like the tool), or for the one named.  Launchers start the\n"
    "tool without the network once the closure is in the store.\n"
    "\n"
    "      --as NAME             the tool's (and default launcher's) name\n"
    "      --bin-dir DIR         where launchers go (default: the config's bin-dir,\n"
    "                            or ~/.local/bin)\n"
    "      --trust               trust the file's own caches and keys\n"
    "      --list                list what is installed\n"
    "  -h, --help                show this help\n"
    "\n"
    "Examples:\n"
    "  runix install ./jq.runix\n"
    "  runix install github:alice/tools#yq --as yq\n"
    "  runix install --list\n"
    "  runix uninstall jq\n";

static int list_installed(void)
{
    _cleanup_free_ char *dir = installed_dir();
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        printf("nothing installed\n");
        return EXIT_OK;
    }
    struct dirent **ents;
    int n = scandir(dir, &ents, NULL, alphasort);
    closedir(d);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            _cleanup_free_ char *reff = xasprintf("%s/%s/ref", dir, ents[i]->d_name);
            _cleanup_free_ char *lf = xasprintf("%s/%s/launchers", dir, ents[i]->d_name);
            struct rx_buf r = RX_BUF_INIT(64 * 1024), l = RX_BUF_INIT(1024 * 1024);
            read_file(reff, &r, NULL);
            read_file(lf, &l, NULL);
            printf("%s  from %.*s\n", ents[i]->d_name, (int)strcspn(r.data ? r.data : "", "\n"),
                   r.data ? r.data : "?");
            for (char *p = l.data; p && *p;) {
                size_t len = strcspn(p, "\n");
                printf("  %.*s\n", (int)len, p);
                p += len;
                p += *p == '\n';
            }
            rx_buf_release(&r);
            rx_buf_release(&l);
        }
        free(ents[i]);
    }
    free(ents);
    return EXIT_OK;
}

/*
 * Remove the installed root of tool from the store in s, if there is one.
 * A store that is not there (or not ours to write) has none to remove.
 */
static int remove_root(const struct cli_settings *s, const char *tool)
{
    struct rx_error *err = NULL;
    char name[STORE_ROOT_NAME_MAX + 1];
    if (store_root_name_encode(tool, name, &err) < 0)
        return cli_fail(err);
    _cleanup_free_ char *root = NULL;
    _cleanup_close_ int root_fd = store_root_open(s->store, &root, &err);
    if (root_fd < 0) {
        if (err->code == ENOENT) {
            rx_error_free(err);
            return EXIT_OK;
        }
        return cli_fail(err);
    }
    if (store_root_remove(root_fd, root, STORE_ROOT_INSTALLED, name, &err) < 0) {
        cli_cmd_error("uninstall", "%s; remove it by hand, or leave it: it only keeps the "
                                   "tool's closure in the store",
                      err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

int cmd_install(int argc, char **argv)
{
    enum { OPT_AS = 0x400, OPT_BIN, OPT_TRUST_I, OPT_LIST_I };
    static const struct option opts[] = {
        {"as", required_argument, NULL, OPT_AS},
        {"bin-dir", required_argument, NULL, OPT_BIN},
        {"trust", no_argument, NULL, OPT_TRUST_I},
        {"list", no_argument, NULL, OPT_LIST_I},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *as = NULL, *bin_flag = NULL;
    bool trust = false, list = false;
    int o;
    optind = 0;
    while ((o = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
        switch (o) {
        case OPT_AS: as = optarg; break;
        case OPT_BIN: bin_flag = optarg; break;
        case OPT_TRUST_I: trust = true; break;
        case OPT_LIST_I: list = true; break;
        case 'h': return cli_print_help(install_usage);
        default: return cli_option_error("install", o, argv, opts);
        }
    }
    if (list)
        return list_installed();
    if (optind + 1 != argc)
        return cli_usage_error("install", "expected one FILE, URL or github: reference");
    const char *ref = argv[optind];
    struct cli_settings s = { 0 };
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return cli_fail(err);
    }
    _cleanup_free_ char *local = NULL, *bindir = bin_dir(bin_flag, &s);
    _cleanup_free_ char *top = installed_dir();
    _cleanup_free_ char *dir = NULL, *copy = NULL, *ref_text = NULL, *reff = NULL, *lf = NULL;
    struct cli_dist cd = { 0 };
    struct strv written = { 0 };
    bool fresh = false;
    const char *tool = NULL;
    int ret = local_copy("install", ref, &local);
    if (ret == EXIT_OK)
        ret = cli_dist_open_as("install", local, cli_dist_is_remote(ref) ? ref : NULL, false, &cd);
    if (ret != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    if (!bindir || !top) {
        cli_cmd_error("install", "HOME is not set: name the bin dir with --bin-dir");
        goto out;
    }
    const char *name = as ? as : (cd.app_name ? cd.app_name : cd.d.name);
    dir = xasprintf("%s/%s", top, name);
    copy = xasprintf("%s/file", dir);
    struct stat before;
    fresh = lstat(dir, &before) < 0; /* a failed install leaves no root of its own */
    tool = name;
    /* The closure first: nothing is installed that cannot run. */
    if ((ret = fetch_file(cd.file, cd.label, trust, name)) != EXIT_OK)
        goto out;
    ret = EXIT_FAIL;
    if (cli_dist_is_remote(ref)) {
        ref_text = xasprintf("%s\n", ref);
    } else {
        char real[PATH_MAX];
        ref_text = xasprintf("%s\n", realpath(cd.file, real) ? real : cd.file);
    }
    if (mkdir_p_mode(dir, 0700, NULL) < 0 || write_file(copy, cd.raw, cd.rawlen, 0644) < 0) {
        cli_cmd_error("install", "cannot keep the file in '%s': %s", dir, strerror(errno));
        goto out;
    }
    /* The copy is the file now: fetch once more so its own closure index exists. */
    if ((ret = fetch_file(copy, cd.label, true, name)) != EXIT_OK)
        goto out;
    reff = xasprintf("%s/ref", dir);
    if (write_file(reff, ref_text, strlen(ref_text), 0644) < 0) {
        cli_cmd_error("install", "cannot write '%s': %s", reff, strerror(errno));
        ret = EXIT_FAIL;
        goto out;
    }
    if ((ret = write_launchers(name, dir, &cd, cd.app_name, bindir, &written)) != EXIT_OK)
        goto out;
    struct rx_buf lb = RX_BUF_INIT((size_t)-1);
    for (size_t i = 0; i < written.n; i++) {
        int r = rx_buf_append(&lb, written.v[i], strlen(written.v[i]));
        r |= rx_buf_append(&lb, "\n", 1);
        (void)r;
        printf("installed %s\n", written.v[i]);
    }
    lf = xasprintf("%s/launchers", dir);
    if (write_file(lf, lb.data ? lb.data : "", lb.len, 0644) < 0)
        cli_cmd_error("install", "warning: cannot write '%s': %s", lf, strerror(errno));
    rx_buf_release(&lb);
    if (!on_path(bindir))
        cli_cmd_error("install", "warning: '%s' is not on PATH; add this line to ~/.profile: "
                                 "export PATH=\"%s:$PATH\"",
                      bindir, bindir);
    ret = EXIT_OK;
out:
    if (ret != EXIT_OK && fresh && tool)
        remove_root(&s, tool);
    cli_strv_clear(&written);
    cli_dist_release(&cd);
    cli_settings_release(&s);
    return ret;
}

static const char uninstall_usage[] =
    "usage: runix uninstall NAME...\n"
    "\n"
    "Remove an installed tool's launchers, its record and its GC root.  Its\n"
    "closure stays in the store until a collection finds nothing else keeps it.\n"
    "\n"
    "Examples:\n"
    "  runix install --list\n"
    "  runix uninstall jq\n";

int cmd_uninstall(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(uninstall_usage);
    if (argc < 2)
        return cli_usage_error("uninstall", "expected the NAME of an installed tool");
    _cleanup_free_ char *top = installed_dir();
    struct cli_settings s = { 0 };
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return cli_fail(err);
    }
    int ret = EXIT_OK;
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        _cleanup_free_ char *dir = top ? xasprintf("%s/%s", top, name) : NULL;
        struct stat st;
        if (!dir || strchr(name, '/') || name[0] == '.' || lstat(dir, &st) < 0) {
            cli_cmd_error("uninstall", "'%s' is not installed (see 'runix install --list')", name);
            ret = EXIT_FAIL;
            continue;
        }
        _cleanup_free_ char *lf = xasprintf("%s/launchers", dir);
        struct rx_buf l = RX_BUF_INIT(1024 * 1024);
        read_file(lf, &l, NULL);
        for (char *p = l.data; p && *p;) {
            size_t len = strcspn(p, "\n");
            _cleanup_free_ char *path = xstrndup(p, len);
            if (is_launcher_for(path, name) && unlink(path) == 0)
                printf("removed %s\n", path);
            p += len;
            p += *p == '\n';
        }
        rx_buf_release(&l);
        if (rm_rf_at(AT_FDCWD, dir, NULL) < 0) {
            cli_cmd_error("uninstall", "cannot remove '%s'", dir);
            ret = EXIT_FAIL;
        } else if (remove_root(&s, name) != EXIT_OK) {
            ret = EXIT_FAIL;
        }
    }
    cli_settings_release(&s);
    return ret;
}

static const char upgrade_usage[] =
    "usage: runix upgrade [NAME...]\n"
    "\n"
    "Download installed tools' references again (all, or those named), and when a\n"
    "file changed, show what changed, fetch the new closure, then switch the\n"
    "launchers to it.  The old closure is kept until the new one is complete.\n"
    "\n"
    "Examples:\n"
    "  runix upgrade\n"
    "  runix upgrade jq\n";

/* The store paths of this system's entry, one a line. */
static char *paths_text(const struct cli_dist *cd)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    for (size_t i = 0; cd->sys && i < cd->sys->npaths; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&cd->sys->paths[i], full);
        int r = rx_buf_append(&b, full, strlen(full));
        r |= rx_buf_append(&b, "\n", 1);
        (void)r;
    }
    return rx_buf_detach(&b, NULL);
}

static bool has_line(const char *text, const char *line, size_t len)
{
    for (const char *p = text; *p; p += strcspn(p, "\n") + 1)
        if (strcspn(p, "\n") == len && strncmp(p, line, len) == 0)
            return true;
    return false;
}

/*
 * Keep the old paths and the new under the installed root of tool while an
 * upgrade fetches the new ones: until the copy is switched, launchers run
 * the old.  The fetch of the new copy then leaves only the new.
 */
static int hold_both(const struct cli_settings *s, const char *tool, const struct cli_dist *old,
                     const struct cli_dist *new)
{
    struct rx_error *err = NULL;
    char name[STORE_ROOT_NAME_MAX + 1];
    if (store_root_name_encode(tool, name, &err) < 0)
        return cli_fail(err);
    size_t n = 0;
    _cleanup_free_ struct store_path *paths =
        xcalloc(old->sys->npaths + new->sys->npaths, sizeof *paths);
    memcpy(paths, old->sys->paths, old->sys->npaths * sizeof *paths);
    n += old->sys->npaths;
    for (size_t i = 0; i < new->sys->npaths; i++) {
        size_t j = 0;
        while (j < n && store_path_cmp(&paths[j], &new->sys->paths[i]) != 0)
            j++;
        if (j == n)
            paths[n++] = new->sys->paths[i];
    }
    _cleanup_free_ char *root = NULL;
    _cleanup_close_ int root_fd = store_root_open(s->store, &root, &err);
    if (root_fd < 0 && err->code == ENOENT) { /* no store: nothing in it to keep */
        rx_error_free(err);
        return EXIT_OK;
    }
    if (root_fd < 0 || store_root_set(root_fd, root, STORE_ROOT_INSTALLED, name, paths, n,
                                      &err) < 0) {
        cli_cmd_error("upgrade", "%s", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int upgrade_one(const struct cli_settings *s, const char *top, const char *name)
{
    _cleanup_free_ char *dir = xasprintf("%s/%s", top, name);
    _cleanup_free_ char *reff = xasprintf("%s/ref", dir), *copy = xasprintf("%s/file", dir);
    struct rx_buf r = RX_BUF_INIT(64 * 1024);
    struct rx_error *err = NULL;
    if (read_file(reff, &r, &err) < 0) {
        cli_cmd_error("upgrade", "'%s' is not installed: %s", name, err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    _cleanup_free_ char *ref = xstrndup(r.data ? r.data : "", strcspn(r.data ? r.data : "", "\n"));
    rx_buf_release(&r);
    _cleanup_free_ char *local = NULL, *a = NULL, *b = NULL;
    struct cli_dist old = { 0 }, new = { 0 };
    int ret = local_copy("upgrade", ref, &local);
    if (ret == EXIT_OK)
        ret = cli_dist_open_as("upgrade", copy, name, false, &old);
    if (ret == EXIT_OK)
        ret = cli_dist_open_as("upgrade", local, ref, false, &new);
    if (ret != EXIT_OK)
        goto out;
    if (old.rawlen == new.rawlen && memcmp(old.raw, new.raw, old.rawlen) == 0) {
        printf("%s: up to date\n", name);
        goto out;
    }
    a = paths_text(&old);
    b = paths_text(&new);
    printf("%s: %s changed\n", name, ref);
    for (char *p = a; *p; p += strcspn(p, "\n") + 1)
        if (!has_line(b, p, strcspn(p, "\n")))
            printf("  - %.*s\n", (int)strcspn(p, "\n"), p);
    for (char *p = b; *p; p += strcspn(p, "\n") + 1)
        if (!has_line(a, p, strcspn(p, "\n")))
            printf("  + %.*s\n", (int)strcspn(p, "\n"), p);
    /* The new closure first; the old copy (and so its closure) stays until then. */
    if ((ret = hold_both(s, name, &old, &new)) != EXIT_OK ||
        (ret = fetch_file(new.file, new.label, false, NULL)) != EXIT_OK)
        goto out;
    if (write_file(copy, new.raw, new.rawlen, 0644) < 0) {
        cli_cmd_error("upgrade", "cannot write '%s': %s", copy, strerror(errno));
        ret = EXIT_FAIL;
        goto out;
    }
    ret = fetch_file(copy, new.label, true, name);
    if (ret == EXIT_OK)
        printf("%s: upgraded\n", name);
out:
    cli_dist_release(&old);
    cli_dist_release(&new);
    return ret;
}

int cmd_upgrade(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(upgrade_usage);
    _cleanup_free_ char *top = installed_dir();
    if (!top)
        return cli_cmd_error("upgrade", "HOME is not set"), EXIT_FAIL;
    struct cli_settings s = { 0 };
    struct rx_error *err = NULL;
    if (cli_settings_finish(&s, &err) < 0) {
        cli_settings_release(&s);
        return cli_fail(err);
    }
    int ret = EXIT_OK;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (upgrade_one(&s, top, argv[i]) != EXIT_OK)
                ret = EXIT_FAIL;
        cli_settings_release(&s);
        return ret;
    }
    struct dirent **ents;
    int n = scandir(top, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.' && upgrade_one(&s, top, ents[i]->d_name) != EXIT_OK)
            ret = EXIT_FAIL;
        free(ents[i]);
    }
    if (n > 0)
        free(ents);
    else
        printf("nothing installed\n");
    cli_settings_release(&s);
    return ret;
}
