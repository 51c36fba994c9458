#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test-helpers.h"

#include "util-buf.h"
#include "util-error.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

/*
 * getrandom() for this program: while `planted_calls` is positive, each call
 * fills the buffer with 0xab (and counts down), so the atomic writer's next
 * temporary names are known; then the kernel's again.
 */
static int planted_calls;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    if (planted_calls > 0) {
        planted_calls--;
        memset(buf, 0xab, len);
        return (ssize_t)len;
    }
    return syscall(SYS_getrandom, buf, len, flags);
}

static void test_util_write_atomic_not_following_planted_names(void **state)
{
    (void)state;
    char *dir = td_tmpdir();
    int dfd = td_open_dir(dir);
    /* Another user's file, and symlinks to it at the names the writer will try first:
     * the old predictable one and the next random one. */
    assert_int_equal(mkdirat(dfd, "theirs", 0755), 0);
    int fd = openat(dfd, "theirs/file", O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "mine\n", 5), 5);
    close(fd);
    char pidname[64];
    snprintf(pidname, sizeof pidname, "index.%ld.tmp", (long)getpid());
    assert_int_equal(symlinkat("theirs/file", dfd, pidname), 0);
    assert_int_equal(symlinkat("theirs/file", dfd, "index.abababababababab.tmp"), 0);

    planted_calls = 1;
    struct rx_error *err = NULL;
    if (write_file_atomic_at(dfd, "index", "new\n", false, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(planted_calls, 0);
    char *path = xasprintf("%s/theirs/file", dir);
    size_t len;
    char *text = td_read(path, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(text, "mine\n", 5); /* not followed, not truncated */
    free(text);
    free(path);
    path = xasprintf("%s/index", dir);
    text = td_read(path, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(text, "new\n", 4);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    free(text);
    free(path);
    /* The planted links are still there, untouched; no temporary file is left. */
    assert_int_equal(fstatat(dfd, pidname, &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(fstatat(dfd, "index.abababababababab.tmp", &st, AT_SYMLINK_NOFOLLOW), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *ls = xasprintf("test $(ls -A '%s' | wc -l) = 4", dir);
    assert_int_equal(system(ls), 0);
    free(ls);

    /* Every name taken: it gives up rather than use one. */
    planted_calls = 1000;
    assert_int_equal(write_file_atomic_at(dfd, "index", "newer\n", false, &err), -1);
    assert_non_null(strstr(err->msg, "cannot create a file beside 'index'"));
    rx_error_clear(&err);
    planted_calls = 0;
    td_tmpdir_free(dir, dfd);
}

static void test_util_buf_respects_limit(void **state)
{
    (void)state;
    struct rx_buf b = RX_BUF_INIT(10);
    assert_int_equal(rx_buf_append(&b, "hello", 5), 0);
    assert_int_equal(rx_buf_append(&b, "world", 5), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "helloworld");
    assert_int_equal(rx_buf_append(&b, "!", 1), -1);
    assert_int_equal(b.len, 10);
    assert_int_equal(rx_buf_append(&b, "", (size_t)-1), -1);
    rx_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    size_t n;
    char *s = rx_buf_detach(&b, &n);
    assert_int_equal(n, 0);
    assert_null(b.data);
    free(s);
    s = rx_buf_detach(&b, &n); /* an empty buffer gives "" */
    assert_string_equal(s, "");
    free(s);
}

static void test_util_error_wrap_chain(void **state)
{
    (void)state;
    struct rx_error *err = NULL;
    assert_int_equal(rx_error_set(&err, RX_EFORMAT, "bad %s", "thing"), -1);
    assert_int_equal(rx_error_wrap(&err, "reading '%s'", "x"), -1);
    assert_int_equal(rx_error_wrap(&err, "fetching"), -1);
    assert_string_equal(err->msg, "fetching: reading 'x': bad thing");
    assert_int_equal(err->code, RX_EFORMAT);
    /* A second set replaces the first without leaking. */
    errno = ENOENT;
    rx_error_errno(&err, "open '%s'", "y");
    assert_int_equal(err->code, ENOENT);
    assert_string_equal(err->msg, "open 'y': No such file or directory");
    rx_error_clear(&err);
    assert_null(err);
    /* NULL err is allowed everywhere. */
    assert_int_equal(rx_error_set(NULL, 1, "x"), -1);
    assert_int_equal(rx_error_wrap(NULL, "x"), -1);
}

static void test_util_rm_rf_read_only_tree(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    char *p = xasprintf("%s/t/a/b", tmp);
    char *mk = xasprintf("mkdir -p %s && touch %s/f && ln -s / %s/root && chmod -R a-w %s/t", p, p, p, tmp);
    assert_int_equal(system(mk), 0);
    int dfd = open(tmp, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(rm_rf_at(dfd, "t", NULL), 0);
    struct stat st;
    assert_int_equal(fstatat(dfd, "t", &st, AT_SYMLINK_NOFOLLOW), -1);
    /* Missing is fine; the symlink to / was removed, not followed. */
    assert_int_equal(rm_rf_at(dfd, "t", NULL), 0);
    assert_int_equal(stat("/", &st), 0);
    close(dfd);
    free(mk);
    free(p);
    td_rmtree(tmp);
    free(tmp);
}

static void test_util_read_file_limit(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    char *f = xasprintf("%s/f", tmp);
    int fd = open(f, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write_all(fd, "0123456789", 10), 0);
    close(fd);
    struct rx_buf b = RX_BUF_INIT(10);
    assert_int_equal(read_file(f, &b, NULL), 0);
    assert_string_equal(b.data, "0123456789");
    rx_buf_release(&b);
    struct rx_buf small = RX_BUF_INIT(9);
    struct rx_error *err = NULL;
    assert_int_equal(read_file(f, &small, &err), -1);
    assert_non_null(strstr(err->msg, "larger than 9 bytes"));
    rx_error_free(err);
    err = NULL;
    rx_buf_release(&small);
    assert_int_equal(read_file("/nonexistent/x", &small, &err), -1);
    assert_int_equal(err->code, ENOENT);
    rx_error_free(err);
    free(f);
    td_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_buf_respects_limit),
        cmocka_unit_test(test_util_error_wrap_chain),
        cmocka_unit_test(test_util_rm_rf_read_only_tree),
        cmocka_unit_test(test_util_read_file_limit),
        cmocka_unit_test(test_util_write_atomic_not_following_planted_names),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
