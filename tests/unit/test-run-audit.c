/*
 * librunix-audit.so, the LD_AUDIT module, called as the loader calls it:
 * la_objsearch() answers library names below /nix/store with the same real
 * path as the resolver (run-map.c), also for directories 60 levels deep and
 * from a thread with a small stack.
 *
 * The module reads its settings from /proc/self/environ, the environment
 * the process started with, so each case runs in a fresh copy of this
 * program (RX_TEST_AUDIT_CHILD set) with RUNIX_STORE_DIR in its environment.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-helpers.h"

#include "run-map.h"
#include "util-mem.h"

#define A "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-1.0"
#define ENV "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-env"
#define CHILD_VAR "RX_TEST_AUDIT_CHILD"
#define DEEP 60
#define SMALL_STACK (64 * 1024)

typedef char *(*objsearch_fn)(const char *, uintptr_t *, unsigned int);

/* ---- the child: the module in this process --------------------------------------- */

struct call {
    objsearch_fn fn;
    const char *name;
    char got[PATH_MAX];
};

static void *call_objsearch(void *arg)
{
    struct call *c = arg;
    uintptr_t cookie = 0;
    const char *r = c->fn(c->name, &cookie, LA_SER_ORIG);
    snprintf(c->got, sizeof c->got, "%s", r ? r : "(null)");
    return NULL;
}

/*
 * argv: MODULE NAME...: each name through la_objsearch in a thread with a
 * SMALL_STACK stack, compared with rx_resolve().  Exit 0 when all agree, 2
 * otherwise; a crash is a signal.
 */
static int child_main(int argc, char **argv)
{
    if (argc < 2)
        return 3;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 3;
    }
    objsearch_fn fn = (objsearch_fn)(uintptr_t)dlsym(h, "la_objsearch");
    if (!fn)
        return 3;
    struct rx_map m;
    if (rx_map_init(&m, getenv(RX_ENV_STORE), NULL, NULL, NULL) < 0)
        return 3;
    int bad = 0;
    for (int i = 2; i < argc; i++) {
        struct call c = {.fn = fn, .name = argv[i]};
        pthread_attr_t attr;
        pthread_t t;
        if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, SMALL_STACK) ||
            pthread_create(&t, &attr, call_objsearch, &c) || pthread_join(t, NULL))
            return 3;
        pthread_attr_destroy(&attr);
        char want[PATH_MAX];
        if (rx_resolve(&m, argv[i], true, want, sizeof want) < 0)
            snprintf(want, sizeof want, "%s", argv[i]);
        if (strcmp(c.got, want) != 0) {
            fprintf(stderr, "la_objsearch(%s) = %s, the resolver says %s\n", argv[i], c.got, want);
            bad = 1;
        }
    }
    return bad ? 2 : 0;
}

/* ---- the tests ----------------------------------------------------------------------- */

struct fx {
    char *dir;
    char *store;
    char module[PATH_MAX];
};

static char *real(struct fx *f, const char *logical)
{
    return xasprintf("%s%s", f->store, logical + RX_STORE_LEN);
}

static void put_dir(struct fx *f, const char *logical)
{
    char *p = real(f, logical);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static void put_link(struct fx *f, const char *logical, const char *target)
{
    char *p = real(f, logical);
    assert_int_equal(symlink(target, p), 0);
    free(p);
}

static void put_file(struct fx *f, const char *logical)
{
    char *p = real(f, logical);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    close(fd);
    free(p);
}

/* The module of this build: next to runix, two levels above this test program. */
static void find_module(struct fx *f)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    *strrchr(self, '/') = '\0';
    char *m = xasprintf("%s/../../librunix-audit.so", self);
    assert_true(strlen(m) < sizeof f->module);
    memcpy(f->module, m, strlen(m) + 1);
    free(m);
    if (access(f->module, R_OK) != 0)
        fail_msg("the audit module is not built: '%s'", f->module);
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    f->dir = td_tmpdir();
    f->store = xasprintf("%s/nix/store", f->dir);
    char *p = xasprintf("%s/nix", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    assert_int_equal(mkdir(f->store, 0755), 0);
    find_module(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    td_rmtree(f->dir);
    free(f->dir);
    free(f->store);
    free(f);
    return 0;
}

/* Run the child on names (NULL-terminated); its exit status, or 128 + the signal. */
static int run_child(struct fx *f, const char *const names[])
{
    size_t n = 0;
    while (names[n])
        n++;
    char **argv = xcalloc(n + 3, sizeof *argv);
    argv[0] = (char *)"test-run-audit";
    argv[1] = f->module;
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = (char *)names[i];
    char *store_var = xasprintf("%s=%s", RX_ENV_STORE, f->store);
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_var = xasprintf("ASAN_OPTIONS=%s", asan ? asan : "");
    char *envp[] = {store_var, (char *)CHILD_VAR "=1", asan_var, NULL};
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    free(argv);
    free(store_var);
    free(asan_var);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * A library 60 directories below a store path, looked up from a thread
 * with a 64 KiB stack: each level of the directory walk used to be a
 * recursive call with a PATH_MAX buffer, about 5 KiB of stack a level.
 */
static void test_audit_deep_directory_small_stack(void **state)
{
    struct fx *f = *state;
    char logical[PATH_MAX];
    size_t l = (size_t)snprintf(logical, sizeof logical, "%s", A);
    put_dir(f, logical);
    for (int i = 0; i < DEEP; i++) {
        l += (size_t)snprintf(logical + l, sizeof logical - l, "/d");
        put_dir(f, logical);
    }
    snprintf(logical + l, sizeof logical - l, "/libdeep.so");
    put_file(f, logical);
    /* The same depth behind a symlinked store path, and a missing library down there. */
    put_link(f, ENV, A);
    char via_env[PATH_MAX], missing[PATH_MAX];
    snprintf(via_env, sizeof via_env, "%s%s", ENV, logical + strlen(A));
    snprintf(missing, sizeof missing, "%s", logical);
    memcpy(missing + strlen(missing) - strlen("libdeep.so"), "libnone.so", strlen("libnone.so"));
    const char *names[] = {logical, via_env, missing, NULL};
    int r = run_child(f, names);
    if (r != 0)
        fail_msg("the audit module failed (status %d)", r);
}

/* Symlinked directories, "." and "..", missing parts, loops: the resolver's answer. */
static void test_audit_matches_resolver(void **state)
{
    struct fx *f = *state;
    put_dir(f, A);
    put_dir(f, A "/lib");
    put_dir(f, A "/lib/sub");
    put_file(f, A "/lib/libx.so");
    put_file(f, A "/lib/sub/liby.so");
    put_link(f, A "/lib/liblink.so", "libx.so");
    put_dir(f, ENV);
    put_link(f, ENV "/lib", A "/lib");
    put_link(f, ENV "/rel", "../aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-1.0/lib/sub");
    put_link(f, ENV "/loop", ENV "/loop");
    put_link(f, ENV "/out", "/usr/lib");
    const char *names[] = {
        A "/lib/libx.so",      ENV "/lib/libx.so",      ENV "/lib/sub/liby.so",
        ENV "/rel/liby.so",    ENV "/rel/../libx.so",   A "/lib/./sub/liby.so",
        A "/lib/liblink.so",   ENV "/lib/liblink.so",   A "/nope/libz.so",
        ENV "/nope/deep/x.so", ENV "/loop/libx.so",     ENV "/out/libc.so.6",
        A "//lib//libx.so",    A "/lib/sub/../libx.so", NULL,
    };
    int r = run_child(f, names);
    if (r != 0)
        fail_msg("the audit module and the resolver disagree (status %d)", r);
}

int main(int argc, char **argv)
{
    if (getenv(CHILD_VAR))
        return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_deep_directory_small_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_matches_resolver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
