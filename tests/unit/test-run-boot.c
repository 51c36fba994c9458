/* runix boot's /etc/subuid and /etc/subgid reading: who matches, which ranges serve, hostile lines. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "run-boot.h"

/* A file holding text, in a fresh temporary directory; its path into out. */
static void write_tmp(char *out, size_t n, const char *text)
{
    char dir[] = "/tmp/runix-boot-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(out, n, "%s/subuid", dir);
    FILE *f = fopen(out, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_tmp(const char *path)
{
    unlink(path);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static void test_subid_by_name_and_id(void **state)
{
    (void)state;
    char path[256];
    unsigned long start = 0;
    write_tmp(path, sizeof path,
              "bob:100000:65536\n"
              "alice:200000:65536\n"
              "1001:300000:70000\n");
    assert_int_equal(boot_subid_lookup(path, "alice", 1000, &start), 1);
    assert_int_equal(start, 200000);
    assert_int_equal(boot_subid_lookup(path, "carol", 1001, &start), 1);
    assert_int_equal(start, 300000);
    assert_int_equal(boot_subid_lookup(path, NULL, 1001, &start), 1);
    assert_int_equal(boot_subid_lookup(path, "dave", 1002, &start), 0);
    /* A name is not a prefix match. */
    assert_int_equal(boot_subid_lookup(path, "ali", 1003, &start), 0);
    remove_tmp(path);
}

static void test_subid_needs_a_full_range(void **state)
{
    (void)state;
    char path[256];
    unsigned long start = 0;
    /* Too small first, then one that serves: the first that serves wins. */
    write_tmp(path, sizeof path,
              "alice:100000:1000\n"
              "alice:500000:65536\n");
    assert_int_equal(boot_subid_lookup(path, "alice", 1000, &start), 1);
    assert_int_equal(start, 500000);
    remove_tmp(path);
    write_tmp(path, sizeof path, "alice:100000:65534\n");
    assert_int_equal(boot_subid_lookup(path, "alice", 1000, &start), 0);
    remove_tmp(path);
}

static void test_subid_rejects_malformed(void **state)
{
    (void)state;
    char path[256];
    unsigned long start = 7;
    write_tmp(path, sizeof path,
              "alice:100000\n"
              "alice::65536\n"
              "alice:-5:65536\n"
              "alice:1x:65536\n"
              "alice:100000:65536x\n"
              "alice:0:65536\n"
              "alice:4294967295:65536\n"
              "alice:99999999999:65536\n"
              ":100000:65536\n"
              "alice 100000 65536\n");
    assert_int_equal(boot_subid_lookup(path, "alice", 1000, &start), 0);
    assert_int_equal(start, 7);
    remove_tmp(path);
    assert_int_equal(boot_subid_lookup("/nonexistent/subuid", "alice", 1000, &start), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subid_by_name_and_id),
        cmocka_unit_test(test_subid_needs_a_full_range),
        cmocka_unit_test(test_subid_rejects_malformed),
    };
    return cmocka_run_group_tests_name("run-boot", tests, NULL, NULL);
}
