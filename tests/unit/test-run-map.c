/*
 * The preload engine's path mapping (run-map.c) on a real directory tree:
 * prefix substitution, resolution of store symlinks in the mapped view
 * (absolute and relative targets, "..", chains, loops), and exec
 * preparation of scripts with store shebangs; and how the engine choice is
 * described to users.  And librunix-audit.so, the LD_AUDIT module, called
 * as the loader calls it: its la_objsearch() gives the resolver's answers,
 * also 60 directories deep from a thread with a small stack.  The module
 * reads its settings from /proc/self/environ, the environment the process
 * started with, so those cases run in a fresh copy of this program
 * (AUDIT_CHILD set) with RUNIX_STORE_DIR in its environment.
 */
#include "config.h"

#include <dlfcn.h>
#include <elf.h>
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

#include "run-engine.h"
#include "run-exec.h"
#include "run-next.h"
#include "util-mem.h"

#define A "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-1.0"
#define ENV "/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-env"
#define LOOP "/nix/store/llllllllllllllllllllllllllllllll-loop"
#define DEEP "/nix/store/dddddddddddddddddddddddddddddddd-deep"
#define DEEP_LINK "/nix/store/kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk-deep-link"

struct fx {
    char *dir;
    struct rx_map m;
};

static char *real(struct fx *f, const char *logical)
{
    return xasprintf("%s%s", f->m.store, logical + RX_STORE_LEN);
}

static void put_file(struct fx *f, const char *logical, const char *text, mode_t mode)
{
    char *p = real(f, logical);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    free(p);
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

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    f->dir = td_tmpdir();
    char *store = xasprintf("%s/nix/store", f->dir);
    assert_int_equal(rx_map_init(&f->m, store, NULL, NULL, NULL), 0);
    free(store);
    char *p = xasprintf("%s/nix", f->dir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    assert_int_equal(mkdir(f->m.store, 0755), 0);

    put_dir(f, A);
    put_dir(f, A "/bin");
    put_dir(f, A "/lib");
    put_file(f, A "/bin/prog", "#!" A "/bin/interp -x\necho hi\n", 0755);
    put_file(f, A "/bin/interp", "#!/bin/sh\n", 0755);
    put_file(f, A "/lib/libx.so", "not really", 0644);
    /* buildEnv style: absolute links into another store path, and relative ones. */
    put_dir(f, ENV);
    put_dir(f, ENV "/bin");
    put_link(f, ENV "/bin/prog", A "/bin/prog");
    put_link(f, ENV "/lib", A "/lib");
    put_link(f, ENV "/up", "../" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-a-1.0/bin");
    put_link(f, ENV "/chain", ENV "/bin/prog");
    put_link(f, ENV "/outside", "/etc");
    /* Loops. */
    put_dir(f, LOOP);
    put_link(f, LOOP "/a", LOOP "/b");
    put_link(f, LOOP "/b", LOOP "/a");
    put_link(f, LOOP "/self", "self");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    td_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void expect_resolve(struct fx *f, const char *path, bool follow, const char *want_logical)
{
    char out[PATH_MAX];
    int r = rx_resolve(&f->m, path, follow, out, sizeof out);
    if (r != 0)
        fail_msg("rx_resolve(%s) = %d", path, r);
    char *want = rx_is_store_path(want_logical) ? real(f, want_logical) : xstrdup(want_logical);
    if (strcmp(out, want) != 0)
        fail_msg("rx_resolve(%s): got %s, want %s", path, out, want);
    free(want);
}

static void test_store_prefix(void **state)
{
    struct fx *f = *state;
    assert_true(rx_is_store_path("/nix/store"));
    assert_true(rx_is_store_path(A "/bin"));
    assert_false(rx_is_store_path("/nix/storex/y"));
    assert_false(rx_is_store_path("/nix"));
    assert_false(rx_is_store_path("nix/store/x"));

    char out[PATH_MAX];
    assert_int_equal(rx_subst(&f->m, A "/bin/prog", out, sizeof out), 0);
    char *want = real(f, A "/bin/prog");
    assert_string_equal(out, want);
    /* and back */
    rx_unmap(&f->m, out);
    assert_string_equal(out, A "/bin/prog");
    free(want);
    assert_int_equal(rx_subst(&f->m, A "/bin/prog", out, f->m.store_len + 5), -ENAMETOOLONG);
    /* A path outside the real store is left alone. */
    snprintf(out, sizeof out, "/etc/passwd");
    rx_unmap(&f->m, out);
    assert_string_equal(out, "/etc/passwd");
}

static void test_resolve_symlinks(void **state)
{
    struct fx *f = *state;
    expect_resolve(f, A "/bin/prog", true, A "/bin/prog");
    /* An absolute store symlink is mapped again, as the kernel would in the view. */
    expect_resolve(f, ENV "/bin/prog", true, A "/bin/prog");
    /* ...but not the last component when not following. */
    expect_resolve(f, ENV "/bin/prog", false, ENV "/bin/prog");
    /* A symlinked directory in the middle of the path. */
    expect_resolve(f, ENV "/lib/libx.so", false, A "/lib/libx.so");
    /* A relative target, and a chain of links. */
    expect_resolve(f, ENV "/up/interp", true, A "/bin/interp");
    expect_resolve(f, ENV "/chain", true, A "/bin/prog");
    /* ".." applies to the resolved prefix (the link's target), like the kernel. */
    expect_resolve(f, ENV "/lib/../bin/prog", true, A "/bin/prog");
    expect_resolve(f, A "/bin/./../lib//libx.so", true, A "/lib/libx.so");
    /* Leaving the store: the kernel resolves the rest. */
    expect_resolve(f, ENV "/outside/hostname", true, "/etc/hostname");
    expect_resolve(f, "/usr/bin/env", true, "/usr/bin/env");
    /* A missing component is not an error here: the real call reports it. */
    expect_resolve(f, A "/nope/deeper/file", true, A "/nope/deeper/file");
    expect_resolve(f, ENV "/lib/nope", true, A "/lib/nope");
}

static void test_resolve_loops(void **state)
{
    struct fx *f = *state;
    char out[PATH_MAX];
    assert_int_equal(rx_resolve(&f->m, LOOP "/a", true, out, sizeof out), -ELOOP);
    assert_int_equal(rx_resolve(&f->m, LOOP "/self/x", true, out, sizeof out), -ELOOP);
    /* Not following the last component: no loop to find. */
    assert_int_equal(rx_resolve(&f->m, LOOP "/a", false, out, sizeof out), 0);
    /* Too long. */
    char *big = xmalloc(PATH_MAX + 16);
    memset(big, 'x', PATH_MAX + 15);
    memcpy(big, A "/", strlen(A "/"));
    big[PATH_MAX + 15] = '\0';
    assert_int_equal(rx_resolve(&f->m, big, true, out, sizeof out), -ENAMETOOLONG);
    free(big);
}

static void test_resolve_relative(void **state)
{
    struct fx *f = *state;
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    char *dir = real(f, ENV "/bin");
    assert_int_equal(chdir(dir), 0);
    char logical[PATH_MAX];
    assert_int_equal(rx_getcwd(&f->m, logical, sizeof logical), 0);
    assert_string_equal(logical, ENV "/bin");
    expect_resolve(f, "prog", true, A "/bin/prog");
    expect_resolve(f, "../lib/libx.so", true, A "/lib/libx.so");
    assert_int_equal(chdir(cwd), 0);
    free(dir);
}

static void test_exec_shebang(void **state)
{
    struct fx *f = *state;
    char *const argv[] = {(char *)"prog", (char *)"arg1", NULL};
    char *const envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
    struct rx_exec x;
    /* ENV/bin/prog -> A/bin/prog: "#!A/bin/interp -x", whose own interpreter is /bin/sh. */
    assert_int_equal(rx_exec_prepare(&f->m, ENV "/bin/prog", argv, envp, &x), 0);
    assert_string_equal(x.file, "/bin/sh");
    /* The kernel's order: interpreter, its argument, the script, the script's arguments. */
    assert_string_equal(x.argv[0], "/bin/sh");
    /* Scripts see logical paths, as written in the shebang and as executed. */
    assert_string_equal(x.argv[1], A "/bin/interp");
    assert_string_equal(x.argv[2], "-x");
    assert_string_equal(x.argv[3], ENV "/bin/prog");
    assert_string_equal(x.argv[4], "arg1");
    assert_null(x.argv[5]);
    assert_false(x.static_store_elf);
    rx_exec_free(&x);

    /* A loop of links is ELOOP, not a crash. */
    assert_int_equal(rx_exec_prepare(&f->m, LOOP "/a", argv, envp, &x), -ELOOP);

    /* An empty argv (argc 0) still gives a NULL-terminated one: interpreter, then script. */
    char *const none[] = {NULL};
    assert_int_equal(rx_exec_prepare(&f->m, A "/bin/interp", none, envp, &x), 0);
    assert_string_equal(x.argv[0], "/bin/sh");
    assert_string_equal(x.argv[1], A "/bin/interp");
    assert_null(x.argv[2]);
    rx_exec_free(&x);
}

/* /proc/self/exe and /proc/<our pid>/exe are the program's logical path; other numbers are not. */
static void test_exec_proc_self(void **state)
{
    struct fx *f = *state;
    char *const argv[] = {(char *)"self", NULL};
    char *const envp[] = {NULL};
    struct rx_exec x;
    char store[PATH_MAX];
    memcpy(store, f->m.store, f->m.store_len + 1);
    assert_int_equal(rx_map_init(&f->m, store, NULL, NULL, A "/bin/interp"), 0);
    char own[64];
    snprintf(own, sizeof own, "/proc/%ld/exe", (long)getpid());
    const char *self[] = {"/proc/self/exe", "/proc/thread-self/exe", own};
    for (size_t i = 0; i < sizeof self / sizeof self[0]; i++) {
        assert_int_equal(rx_exec_prepare(&f->m, self[i], argv, envp, &x), 0);
        /* A/bin/interp is a /bin/sh script. */
        assert_string_equal(x.file, "/bin/sh");
        assert_string_equal(x.argv[1], A "/bin/interp");
        rx_exec_free(&x);
    }
    /* Too many digits for a pid (and for a long): someone else's, or nobody's. */
    const char *other[] = {"/proc/1/exe", "/proc/77777777777777777777777777777777777777/exe",
                           "/proc/9999999999/exe", "/proc//exe", "/proc/12x/exe"};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        int r = rx_exec_prepare(&f->m, other[i], argv, envp, &x);
        if (r == 0) {
            assert_string_not_equal(x.file, "/bin/sh");
            rx_exec_free(&x);
        }
    }
    assert_int_equal(rx_map_init(&f->m, store, NULL, NULL, NULL), 0);
}

/* The one way to fill a map: trailing slashes go, and what does not fit leaves it empty. */
/* What -v says about the engine: the wording t5000 and users see. */
static void test_engine_choice_describe(void **state)
{
    (void)state;
    struct engine_choice c;
    struct rx_error *err = NULL;
    assert_int_equal(engine_enter(ENGINE_PRELOAD, "/nonexistent", "/nonexistent/nix/store", NULL,
                                  0, &c, &err),
                     0);
    assert_null(err);
    assert_int_equal(c.kind, ENGINE_PRELOAD);
    char *d = engine_choice_describe(&c);
    assert_string_equal(d, "preload");
    free(d);
    rx_error_set(&c.userns_why, RX_EUNSUPPORTED, "unshare(CLONE_NEWUSER) failed: EPERM");
    d = engine_choice_describe(&c);
    assert_string_equal(d, "preload (userns is not usable: unshare(CLONE_NEWUSER) failed: EPERM)");
    free(d);
    engine_choice_release(&c);
    assert_null(c.userns_why);
    c.kind = ENGINE_USERNS;
    d = engine_choice_describe(&c);
    assert_string_equal(d, "userns");
    free(d);
}

static void test_map_init_lengths(void **state)
{
    (void)state;
    struct rx_map m;
    assert_int_equal(rx_map_init(&m, "/s/nix/store//", "/l/p.so", NULL, ""), 0);
    assert_string_equal(m.store, "/s/nix/store");
    assert_int_equal(m.store_len, 12);
    assert_string_equal(rx_map_shim(&m), "/l/p.so");
    assert_string_equal(rx_map_audit(&m), "");
    assert_string_equal(rx_map_exe(&m), "");
    char *lng = xmalloc(PATH_MAX + 1);
    memset(lng, 'a', PATH_MAX);
    lng[0] = '/';
    lng[PATH_MAX] = '\0';
    assert_int_equal(rx_map_init(&m, "/s", NULL, lng, NULL), -ENAMETOOLONG);
    assert_int_equal(m.store_len, 0);
    assert_string_equal(m.store, "");
    lng[PATH_MAX - 1] = '\0'; /* PATH_MAX - 1 bytes and the NUL: fits */
    assert_int_equal(rx_map_init(&m, lng, NULL, NULL, NULL), 0);
    assert_int_equal(m.store_len, PATH_MAX - 1);
    /* Four of the longest that fit, each kept whole. */
    char *lng2 = xstrdup(lng), *lng3 = xstrdup(lng), *lng4 = xstrdup(lng);
    lng2[1] = 'b', lng3[1] = 'c', lng4[1] = 'd';
    assert_int_equal(rx_map_init(&m, lng, lng2, lng3, lng4), 0);
    assert_string_equal(m.store, lng);
    assert_string_equal(rx_map_shim(&m), lng2);
    assert_string_equal(rx_map_audit(&m), lng3);
    assert_string_equal(rx_map_exe(&m), lng4);
    free(lng2), free(lng3), free(lng4);
    free(lng);

    /* Short settings are packed at the front: the rest of the map is never written. */
    memset(&m, 0x5a, sizeof m);
    assert_int_equal(rx_map_init(&m, "/s/nix/store", "/l/p.so", "/l/a.so", "/nix/store/x"), 0);
    assert_string_equal(rx_map_exe(&m), "/nix/store/x");
    for (size_t i = 64; i < sizeof m.store; i++)
        if (m.store[i] != 0x5a)
            fail_msg("rx_map_init wrote byte %zu of the map", i);
}

static void test_elf_interp(void **state)
{
    (void)state;
    char interp[PATH_MAX];
    /* /bin/sh is a dynamically linked host program. */
    assert_int_equal(rx_elf_interp("/bin/sh", interp, sizeof interp), 0);
    assert_true(strncmp(interp, "/lib", 4) == 0);
    assert_non_null(strstr(interp, "ld-linux"));
    /* Not ELF. */
    assert_int_equal(rx_elf_interp("/etc/hostname", interp, sizeof interp), -1);
    assert_int_equal(rx_elf_interp("/nonexistent", interp, sizeof interp), -1);
}

/*
 * A 64-bit ELF file at path: the header, one PT_INTERP program header at
 * offset 64 with the given p_offset and p_filesz, and body (of len bytes) at
 * offset 120.
 */
static void put_elf64(const char *path, uint64_t p_offset, uint64_t p_filesz, const void *body,
                      size_t len)
{
    unsigned char img[512] = {0};
    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_phoff = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = 1;
    Elf64_Phdr ph = {.p_type = PT_INTERP, .p_offset = p_offset, .p_filesz = p_filesz};
    memcpy(img, &eh, sizeof eh);
    memcpy(img + sizeof eh, &ph, sizeof ph);
    size_t at = sizeof eh + sizeof ph;
    assert_true(len <= sizeof img - at);
    memcpy(img + at, body, len);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, img, at + len), (ssize_t)(at + len));
    close(fd);
}

/*
 * Program headers are the file's word: a PT_INTERP whose p_offset is near
 * 2^64 (so that p_offset + p_filesz wraps to a small number), beyond the
 * file, or above INT64_MAX, or whose size is wrong, is refused, never read
 * from outside the header buffer.
 */
static void test_elf_interp_hostile_offsets(void **state)
{
    struct fx *f = *state;
    static const char ld[] = A "/lib/ld.so";
    char *path = real(f, A "/bin/elf");
    char interp[PATH_MAX];
    const uint64_t body = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);

    /* The control: a well-formed one is read. */
    put_elf64(path, body, sizeof ld, ld, sizeof ld);
    assert_int_equal(rx_elf_interp(path, interp, sizeof interp), 0);
    assert_string_equal(interp, ld);

    const struct {
        uint64_t off, size;
    } bad[] = {
        {UINT64_MAX - 15, 32},     /* wraps to 16: inside the header buffer */
        {UINT64_MAX, 2},           /* wraps to 1 */
        {UINT64_MAX - 511, 1024},  /* wraps to 512 */
        {(uint64_t)INT64_MAX, 16}, /* a negative offset for pread */
        {(uint64_t)1 << 40, 16},   /* beyond the end of the file */
        {body, 0},                 /* empty */
        {body, 1},                 /* the kernel wants at least 2 bytes */
        {body, PATH_MAX + 1},      /* too long */
        {body, sizeof ld - 1},     /* not NUL-terminated */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_elf64(path, bad[i].off, bad[i].size, ld, sizeof ld);
        memset(interp, 'x', sizeof interp);
        if (rx_elf_interp(path, interp, sizeof interp) != -1)
            fail_msg("p_offset %#llx p_filesz %llu: not refused", (unsigned long long)bad[i].off,
                     (unsigned long long)bad[i].size);
        assert_string_equal(interp, "");
    }

    /* Exec preparation leaves such a program to the kernel (which refuses it too). */
    put_elf64(path, UINT64_MAX - 15, 32, ld, sizeof ld);
    char *const argv[] = {(char *)"elf", NULL};
    char *const envp[] = {NULL};
    struct rx_exec x;
    assert_int_equal(rx_exec_prepare(&f->m, A "/bin/elf", argv, envp, &x), 0);
    assert_string_equal(x.file, path);
    assert_false(x.static_store_elf);
    rx_exec_free(&x);
    free(path);
}

/*
 * A static store program is started from where it really is, by the kernel:
 * no loader in front, argv as given, and the view's variables still in the
 * environment for the host programs it may start.
 */
static void test_exec_static(void **state)
{
    struct fx *f = *state;
    char *path = real(f, A "/bin/static");
    static const char body[] = "no interpreter";
    put_elf64(path, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), sizeof body, body, sizeof body);
    /* The one program header becomes a PT_LOAD: no PT_INTERP, a static program. */
    Elf64_Word load = PT_LOAD;
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &load, sizeof load, sizeof(Elf64_Ehdr)), (ssize_t)sizeof load);
    close(fd);
    put_link(f, ENV "/bin/static", A "/bin/static");
    char store[PATH_MAX];
    memcpy(store, f->m.store, f->m.store_len + 1);
    assert_int_equal(rx_map_init(&f->m, store, "/l/librunix-preload.so", "/l/librunix-audit.so",
                                 NULL),
                     0);
    char *const argv[] = {(char *)"static", (char *)"arg", NULL};
    char *const envp[] = {(char *)"PATH=/usr/bin", NULL};
    struct rx_exec x;
    assert_int_equal(rx_exec_prepare(&f->m, ENV "/bin/static", argv, envp, &x), 0);
    assert_true(x.static_store_elf);
    assert_string_equal(x.file, path);
    assert_string_equal(x.argv[0], "static");
    assert_string_equal(x.argv[1], "arg");
    assert_null(x.argv[2]);
    assert_string_equal(rx_envp_get(x.envp, "LD_PRELOAD"), "/l/librunix-preload.so");
    assert_string_equal(rx_envp_get(x.envp, RX_ENV_STORE), store);
    assert_null(rx_envp_get(x.envp, RX_ENV_EXE));
    rx_exec_free(&x);
    assert_int_equal(rx_map_init(&f->m, store, NULL, NULL, NULL), 0);
    free(path);
}

/*
 * rx_next_symbol() finds what dlsym(RTLD_NEXT) finds, for every function
 * the preload library calls through, including those with older versions
 * beside the default one (realpath@GLIBC_2.2.5 and realpath@@GLIBC_2.3).
 */
static void test_next_symbol_is_dlsym(void **state)
{
    (void)state;
    static const char *const names[] = {"fopen",   "fopen64",    "freopen",     "freopen64",
                                        "opendir", "realpath",   "fchmodat",    "execvpe",
                                        "posix_spawn", "posix_spawnp", "getcwd", "readdir",
                                        /* more with old versions beside the default */
                                        "pthread_cond_wait", "nftw", "regexec", "glob",
                                        "sched_getaffinity", "timer_create"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *want = dlsym(RTLD_NEXT, names[i]);
        assert_non_null(want);
        void *got = rx_next_symbol((const void *)test_next_symbol_is_dlsym, names[i]);
        if (got != want)
            fail_msg("rx_next_symbol(%s) = %p, dlsym = %p", names[i], got, want);
    }
    assert_null(rx_next_symbol((const void *)test_next_symbol_is_dlsym, "rx_no_such_function"));
}

/* ---- librunix-audit.so ---------------------------------------------------------------- */

#define AUDIT_CHILD "RX_TEST_AUDIT_CHILD"
#define AUDIT_STACK (64 * 1024)
#define AUDIT_DEPTH 60

typedef char *(*objsearch_fn)(const char *, uintptr_t *, unsigned int);

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
 * AUDIT_STACK stack, compared with rx_resolve().  Exit 0 when all agree, 2
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
        if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, AUDIT_STACK) ||
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

/*
 * Run the child on names (NULL-terminated) with the module of this build (next to runix,
 * two levels above this program); its exit status, or 128 + the signal.
 */
static int audit_run(struct fx *f, const char *const names[])
{
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(sl > 0);
    self[sl] = '\0';
    *strrchr(self, '/') = '\0';
    char *module = xasprintf("%s/../../librunix-audit.so", self);
    if (access(module, R_OK) != 0)
        fail_msg("the audit module is not built: '%s'", module);
    size_t n = 0;
    while (names[n])
        n++;
    char **argv = xcalloc(n + 3, sizeof *argv);
    argv[0] = (char *)"test-run-map";
    argv[1] = module;
    for (size_t i = 0; i < n; i++)
        argv[2 + i] = (char *)names[i];
    char *store_var = xasprintf("%s=%s", RX_ENV_STORE, f->m.store);
    const char *asan = getenv("ASAN_OPTIONS");
    char *asan_var = xasprintf("ASAN_OPTIONS=%s", asan ? asan : "");
    char *envp[] = {store_var, (char *)AUDIT_CHILD "=1", asan_var, NULL};
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
    free(module);
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
    size_t l = (size_t)snprintf(logical, sizeof logical, "%s", DEEP);
    put_dir(f, logical);
    for (int i = 0; i < AUDIT_DEPTH; i++) {
        l += (size_t)snprintf(logical + l, sizeof logical - l, "/d");
        put_dir(f, logical);
    }
    snprintf(logical + l, sizeof logical - l, "/libdeep.so");
    put_file(f, logical, "", 0644);
    /* The same depth behind a symlinked store path, and a missing library down there. */
    put_link(f, DEEP_LINK, DEEP);
    char *via_link = xasprintf("%s%s", DEEP_LINK, logical + strlen(DEEP));
    char *missing = xstrdup(logical);
    memcpy(missing + strlen(missing) - strlen("libdeep.so"), "libnone.so", strlen("libnone.so"));
    const char *names[] = {logical, via_link, missing, NULL};
    int r = audit_run(f, names);
    free(via_link);
    free(missing);
    if (r != 0)
        fail_msg("the audit module failed (status %d)", r);
}

/* Linked directories, "." and "..", missing parts, loops, leaving the store: as the resolver. */
static void test_audit_matches_resolver(void **state)
{
    struct fx *f = *state;
    put_link(f, A "/lib/liblink.so", "libx.so");
    const char *names[] = {
        A "/lib/libx.so",     ENV "/lib/libx.so",      ENV "/lib/liblink.so",
        ENV "/up/interp",     ENV "/lib/../bin/prog",  A "/bin/./../lib//libx.so",
        A "//lib//libx.so",   ENV "/outside/hostname", A "/nope/deeper/file",
        ENV "/lib/nope",      LOOP "/a/x",             LOOP "/self/x",
        ENV "/chain/x",       A "/lib/liblink.so",     NULL,
    };
    int r = audit_run(f, names);
    if (r != 0)
        fail_msg("the audit module and the resolver disagree (status %d)", r);
}

int main(int argc, char **argv)
{
    if (getenv(AUDIT_CHILD))
        return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_symlinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_loops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_relative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_shebang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_proc_self, setup, teardown),
        cmocka_unit_test(test_elf_interp),
        cmocka_unit_test_setup_teardown(test_elf_interp_hostile_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_static, setup, teardown),
        cmocka_unit_test(test_next_symbol_is_dlsym),
        cmocka_unit_test(test_map_init_lengths),
        cmocka_unit_test(test_engine_choice_describe),
        cmocka_unit_test_setup_teardown(test_audit_deep_directory_small_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_matches_resolver, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
