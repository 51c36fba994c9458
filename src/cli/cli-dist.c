/*
 * Distributables on the command line.  This file is in the front: reading
 * a distributable costs jansson and the store path parser, nothing more.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-dist.h"
#include "cli.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

bool cli_dist_is_ref(const char *arg)
{
    return strncmp(arg, STORE_DIR "/", STORE_DIR_LEN + 1) != 0;
}

bool cli_dist_is_remote(const char *arg)
{
    return strncmp(arg, "https://", 8) == 0 || strncmp(arg, "http://", 7) == 0 ||
           strncmp(arg, "github:", 7) == 0;
}

bool cli_dist_file_sniff(const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return false;
    struct stat st;
    char head[512];
    ssize_t n = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        n = read_retry(fd, head, sizeof head);
    close(fd);
    return n > 0 && dist_sniff(head, (size_t)n);
}

/*
 * "FILE#APP": the file is the whole argument when it exists (a '#' may be
 * part of a file name), else the part before the last '#'.
 */
static void split_ref(const char *ref, char **file, char **app)
{
    struct stat st;
    const char *hash = strrchr(ref, '#');
    if (!hash || stat(ref, &st) == 0) {
        *file = xstrdup(ref);
        *app = NULL;
        return;
    }
    *file = xstrndup(ref, (size_t)(hash - ref));
    *app = hash[1] ? xstrdup(hash + 1) : NULL;
}

int cli_dist_open(const char *cmd, const char *ref, bool any_system, struct cli_dist *out)
{
    return cli_dist_open_as(cmd, ref, NULL, any_system, out);
}

int cli_dist_open_as(const char *cmd, const char *ref, const char *label, bool any_system,
                     struct cli_dist *out)
{
    memset(out, 0, sizeof *out);
    split_ref(ref, &out->file, &out->app_name);
    out->label = xstrdup(label ? label : out->file);
    struct rx_error *err = NULL;
    struct rx_buf b = RX_BUF_INIT(DIST_FILE_MAX);
    struct stat st, after;
    int fd = open(out->file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rx_error_errno(&err, "cannot open '%s'", out->file);
    } else if (fstat(fd, &st) < 0) {
        rx_error_errno(&err, "cannot read '%s'", out->file);
    } else if (!S_ISREG(st.st_mode)) {
        rx_error_set(&err, RX_EFORMAT, "'%s' is not a regular file; expected a distributable",
                     out->file);
    } else if (read_fd(fd, out->file, &b, &err) == 0) {
        if (fstat(fd, &after) < 0 || after.st_ctim.tv_sec != st.st_ctim.tv_sec ||
            after.st_ctim.tv_nsec != st.st_ctim.tv_nsec || after.st_size != st.st_size) {
            rx_error_set(&err, RX_EFORMAT, "'%s' changed while it was read; try again",
                         out->file);
        } else {
            /* The file itself, unchanged since: what a closure index for it is tagged with. */
            snprintf(out->tag, sizeof out->tag, "dist-%llx-%llx-%llx.%lx-%llx",
                     (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                     (unsigned long long)st.st_ctim.tv_sec, (unsigned long)st.st_ctim.tv_nsec,
                     (unsigned long long)st.st_size);
            out->raw = rx_buf_detach(&b, &out->rawlen);
            if (!dist_sniff(out->raw, out->rawlen)) {
                close(fd);
                cli_cmd_error(cmd, "'%s' is neither a store path (/nix/store/...) nor a "
                                   "distributable (a file whose first line runs runix)",
                              out->label);
                return EXIT_USAGE;
            }
            dist_parse(out->label, out->raw, out->rawlen, &out->d, &err);
        }
    }
    if (fd >= 0)
        close(fd);
    rx_buf_release(&b);
    if (err) {
        int code = err->code == ENOENT ? EXIT_USAGE : EXIT_FAIL;
        if (err->code == ENOENT)
            cli_cmd_error(cmd, "'%s': no such file; expected a store path (/nix/store/...) or "
                               "a distributable file",
                          out->file);
        else
            cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return code;
    }
    out->sys = dist_system_find(&out->d, out->label, dist_host_system(), &err);
    if (!out->sys && !any_system) {
        cli_cmd_error(cmd, "%s", err->msg);
        rx_error_free(err);
        return EXIT_FAIL;
    }
    rx_error_clear(&err);
    out->app = dist_app_find(&out->d, out->label, out->app_name, &err);
    if (!out->app) {
        cli_cmd_error(cmd, "%s; list them with 'runix run --list %s'", err->msg, out->label);
        rx_error_free(err);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static void print_list(FILE *out, const char *what, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s%s%s", i ? ", " : "; ", i ? "" : what, i ? "" : " ", v[i]);
}

void cli_dist_sandbox_print(const struct dist_sandbox *sb, FILE *out, const char *indent)
{
    if (!sb)
        return;
    if (!sb->enable) {
        fprintf(out, "%ssandbox: off\n", indent);
        return;
    }
    fprintf(out, "%ssandbox: cwd %s, network %s", indent, sb->cwd ? sb->cwd : "rw",
            sb->network ? sb->network : "none");
    print_list(out, "ro", sb->ro, sb->nro);
    print_list(out, "rw", sb->rw, sb->nrw);
    print_list(out, "hide", sb->hide, sb->nhide);
    if (sb->clearenv)
        fprintf(out, "; env cleared");
    for (size_t i = 0; i < sb->nsetenv; i++) {
        const char *eq = strchr(sb->setenv[i], '=');
        fprintf(out, "%s%.*s", i ? ", " : "; env set ", (int)(eq - sb->setenv[i]), sb->setenv[i]);
    }
    print_list(out, "env keep", sb->keep, sb->nkeep);
    print_list(out, "env deny", sb->deny, sb->ndeny);
    fputc('\n', out);
}

void cli_dist_list(const struct cli_dist *cd, FILE *out)
{
    const struct dist *d = &cd->d;
    fprintf(out, "%s%s%s\n", d->name, d->description ? ": " : "",
            d->description ? d->description : "");
    fprintf(out, "apps:\n");
    if (d->napps == 0)
        fprintf(out, "  default  (the main path's program)\n");
    for (size_t i = 0; i < d->napps; i++) {
        const struct dist_app *a = &d->apps[i];
        fprintf(out, "  %s  %s", a->name, a->program);
        for (size_t j = 0; j < a->nargs; j++)
            fprintf(out, " %s", a->args[j]);
        fputc('\n', out);
        cli_dist_sandbox_print(a->sandbox, out, "    ");
    }
    fprintf(out, "systems:\n");
    const char *here = dist_host_system();
    for (size_t i = 0; i < d->nsystems; i++) {
        const struct dist_system *s = &d->systems[i];
        char main_path[STORE_PATH_MAX + 1];
        store_path_format(&s->paths[0], main_path);
        fprintf(out, "  %s  %s%s\n", s->system, main_path,
                strcmp(s->system, here) == 0 ? "  (this machine)" : "");
    }
    if (d->ncaches) {
        fprintf(out, "caches:\n");
        for (size_t i = 0; i < d->ncaches; i++) {
            fprintf(out, "  %s", d->caches[i].url);
            for (size_t j = 0; j < d->caches[i].nkeys; j++)
                fprintf(out, "%s%s", j ? ", " : "  keys: ", d->caches[i].keys[j]);
            fputc('\n', out);
        }
    }
}

void cli_dist_release(struct cli_dist *cd)
{
    free(cd->file);
    free(cd->label);
    free(cd->app_name);
    free(cd->raw);
    dist_release(&cd->d);
    memset(cd, 0, sizeof *cd);
}
