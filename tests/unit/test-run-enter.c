/*
 * runix enter's files (run-enter.h): nix.conf written, rewritten and left to
 * the user; the ids of /etc/passwd; the targets of the GPU links.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "run-enter.h"
#include "test-helpers.h"
#include "util-mem.h"

static char *conf_of(const char *root)
{
    _cleanup_free_ char *path = xasprintf("%s/nix/etc/nix/nix.conf", root);
    return td_read(path, NULL);
}

static void test_nix_conf_written_and_kept(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    assert_int_equal(enter_write_nix_conf(root, true, "https://a https://b", "k:1 j:2", NULL), 0);
    char *c = conf_of(root);
    assert_non_null(strstr(c, "\nbuild-users-group =\n"));
    assert_non_null(strstr(c, "\nsandbox = true\n"));
    assert_non_null(strstr(c, "\nsubstituters = https://a https://b\n"));
    assert_non_null(strstr(c, "\ntrusted-public-keys = k:1 j:2\n"));
    free(c);
    /* Ours: written again with what holds now. */
    assert_int_equal(enter_write_nix_conf(root, false, "", "", NULL), 0);
    c = conf_of(root);
    assert_non_null(strstr(c, "\nsandbox = false\n"));
    assert_non_null(strstr(c, "\nsubstituters = \n"));
    free(c);
    /* The user's (no first line of ours): left alone. */
    _cleanup_free_ char *path = xasprintf("%s/nix/etc/nix/nix.conf", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("sandbox = relaxed\n", f);
    fclose(f);
    assert_int_equal(enter_write_nix_conf(root, true, "x", "y", NULL), 0);
    c = conf_of(root);
    assert_string_equal(c, "sandbox = relaxed\n");
    free(c);
    td_tmpdir_free(root, -1);
}

static void test_has_id(void **state)
{
    (void)state;
    const char *pw = "root:x:0:0:root:/root:/bin/bash\n"
                     "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                     "odd:x:12x:1::/:/bin/sh\n"
                     "short:x\n"
                     "last:x:1000:1000::/home/last:/bin/sh";
    assert_true(enter_has_id(pw, 0));
    assert_true(enter_has_id(pw, 65534));
    assert_true(enter_has_id(pw, 1000)); /* no final newline */
    assert_false(enter_has_id(pw, 12));   /* not a number */
    assert_false(enter_has_id(pw, 4242));
    assert_false(enter_has_id(pw, 1));    /* a gid is not a uid */
    assert_false(enter_has_id("", 0));
    assert_false(enter_has_id("a:b\n:0\n", 0));
}

static void count_target(void *ctx, const char *target)
{
    (void)target;
    ++*(int *)ctx;
}

static void test_gpu_targets(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    _cleanup_free_ char *lib = xasprintf("%s/%s/lib", root, ENTER_DRIVER_DIR);
    _cleanup_free_ char *icd = xasprintf("%s/%s/share/vulkan/icd.d", root, ENTER_DRIVER_DIR);
    _cleanup_free_ char *cmd = xasprintf("mkdir -p '%s' '%s'", lib, icd);
    assert_int_equal(system(cmd), 0);
    _cleanup_free_ char *a = xasprintf("%s/libGL.so.1", lib);
    _cleanup_free_ char *b = xasprintf("%s/relative", lib);
    _cleanup_free_ char *j = xasprintf("%s/nvidia.json", icd);
    _cleanup_free_ char *plain = xasprintf("%s/not-a-link", lib);
    assert_int_equal(symlink("/usr/lib/libGL.so.1.7.0", a), 0);
    assert_int_equal(symlink("libGL.so.1", b), 0); /* not absolute: not a host file */
    assert_int_equal(symlink("/usr/share/nvidia.json", j), 0);
    FILE *f = fopen(plain, "w");
    assert_non_null(f);
    fclose(f);
    int n = 0;
    enter_gpu_each_target(root, count_target, &n);
    assert_int_equal(n, 2);
    td_tmpdir_free(root, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nix_conf_written_and_kept),
        cmocka_unit_test(test_has_id),
        cmocka_unit_test(test_gpu_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
