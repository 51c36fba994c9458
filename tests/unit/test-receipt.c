#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "util-error.h"
#include "util-mem.h"
#include "util-receipt.h"

static const char good[] =
    "# written by install.sh\n"
    "runix-receipt 1\n"
    "version 0.1.0\n"
    "arch x86_64\n"
    "base-url http://127.0.0.1:8080/r1\n"
    "binary /home/u/.local/bin/runix\n"
    "sha256 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
    "file /home/u/.local/share/man/man1/runix.1\n"
    "  file   /home/u/.local/share/bash-completion/completions/runix  \r\n"
    "installed-at 2026-01-01\n" /* a key of a newer installer: skipped */
    "\n";

/* Parse text; expect failure with code and a message containing needle. */
static void parse_fails(const char *text, int code, const char *needle)
{
    struct receipt r;
    struct rx_error *err = NULL;
    assert_int_equal(receipt_parse(text, strlen(text), &r, &err), -1);
    assert_non_null(err);
    if (err->code != code || !strstr(err->msg, needle))
        fail_msg("'%s': got code %d, '%s'; wanted %d, '%s'", text, err->code, err->msg, code,
                 needle);
    assert_null(r.binary);
    assert_int_equal(r.nfiles, 0);
    rx_error_free(err);
}

static void test_receipt_parse_good(void **state)
{
    (void)state;
    struct receipt r;
    assert_int_equal(receipt_parse(good, strlen(good), &r, NULL), 0);
    assert_int_equal(r.format, 1);
    assert_string_equal(r.version, "0.1.0");
    assert_string_equal(r.arch, "x86_64");
    assert_string_equal(r.base_url, "http://127.0.0.1:8080/r1");
    assert_string_equal(r.binary, "/home/u/.local/bin/runix");
    assert_string_equal(r.sha256,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_int_equal(r.nfiles, 2);
    assert_string_equal(r.files[0], "/home/u/.local/share/man/man1/runix.1");
    assert_string_equal(r.files[1], "/home/u/.local/share/bash-completion/completions/runix");

    /* What receipt_format() writes reads back the same. */
    char *text = receipt_format(&r);
    struct receipt again;
    assert_int_equal(receipt_parse(text, strlen(text), &again, NULL), 0);
    assert_string_equal(again.binary, r.binary);
    assert_string_equal(again.sha256, r.sha256);
    assert_string_equal(again.base_url, r.base_url);
    assert_int_equal(again.nfiles, 2);
    assert_string_equal(again.files[1], r.files[1]);
    char *text2 = receipt_format(&again);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    receipt_release(&again);
    receipt_release(&r);

    /* Only the binary is needed. */
    const char *min = "runix-receipt 1\nbinary /opt/runix/bin/runix";
    assert_int_equal(receipt_parse(min, strlen(min), &r, NULL), 0);
    assert_null(r.version);
    assert_null(r.sha256);
    receipt_release(&r);
}

static void test_receipt_parse_other_formats(void **state)
{
    (void)state;
    /* A newer format: RX_EUNSUPPORTED, and which format it is. */
    const char *newer = "runix-receipt 2\nbinary /x/runix\n";
    struct receipt r;
    struct rx_error *err = NULL;
    assert_int_equal(receipt_parse(newer, strlen(newer), &r, &err), -1);
    assert_int_equal(err->code, RX_EUNSUPPORTED);
    assert_int_equal(r.format, 2);
    assert_non_null(strstr(err->msg, "format 2"));
    rx_error_free(err);
    /* Not this format at all: a key=value file, an empty one. */
    parse_fails("binary=/home/u/.local/bin/runix\nversion=0.0.1\n", RX_EFORMAT,
                "line 1: expected 'runix-receipt FORMAT'");
    parse_fails("", RX_EFORMAT, "no 'runix-receipt FORMAT' line");
    parse_fails("# only a comment\n\n", RX_EFORMAT, "no 'runix-receipt FORMAT' line");
    parse_fails("runix-receipt x\n", RX_EFORMAT, "bad receipt format 'x'");
    parse_fails("runix-receipt 0\n", RX_EFORMAT, "bad receipt format '0'");
    parse_fails("runix-receipt 99999999999999999999\n", RX_EFORMAT, "bad receipt format");
}

static void test_receipt_parse_hostile(void **state)
{
    (void)state;
    /* uninstall removes what the receipt lists: only clean absolute paths. */
    parse_fails("runix-receipt 1\nbinary relative/runix\n", RX_EFORMAT, "line 2: 'binary' needs");
    parse_fails("runix-receipt 1\nbinary /home/u/../../etc/passwd\n", RX_EFORMAT, "'binary'");
    parse_fails("runix-receipt 1\nbinary /x/runix\nfile /home/u/./a\n", RX_EFORMAT,
                "line 3: 'file'");
    parse_fails("runix-receipt 1\nbinary /x/runix\nfile /home//a\n", RX_EFORMAT, "'file'");
    parse_fails("runix-receipt 1\nbinary /x/runix\nfile /\n", RX_EFORMAT, "'file'");
    parse_fails("runix-receipt 1\nbinary /x/runix\nfile \n", RX_EFORMAT, "'file'");
    parse_fails("runix-receipt 1\nbinary /x/ru\033nix\n", RX_EFORMAT, "'binary'");
    parse_fails("runix-receipt 1\nbinary /x/runix\nbinary /y/runix\n", RX_EFORMAT,
                "line 3: 'binary' is given twice");
    parse_fails("runix-receipt 1\nversion 1\nversion 2\nbinary /x\n", RX_EFORMAT,
                "'version' is given twice");
    parse_fails("runix-receipt 1\nversion two words\nbinary /x\n", RX_EFORMAT,
                "'version' needs one word");
    parse_fails("runix-receipt 1\nbinary /x\nsha256 abc\n", RX_EFORMAT, "64 lower-case hex");
    parse_fails("runix-receipt 1\nbinary /x\nsha256 "
                "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
                RX_EFORMAT, "64 lower-case hex");
    parse_fails("runix-receipt 1\nversion 1\n", RX_EFORMAT, "no 'binary' line");
    /* A NUL byte, and more files than a receipt holds. */
    struct receipt r;
    struct rx_error *err = NULL;
    const char nul[] = "runix-receipt 1\nbinary /x\0/y\n";
    assert_int_equal(receipt_parse(nul, sizeof nul - 1, &r, &err), -1);
    assert_non_null(strstr(err->msg, "NUL"));
    rx_error_free(err);
    err = NULL;
    char *many = xstrdup("runix-receipt 1\nbinary /x\n");
    for (int i = 0; i <= RECEIPT_MAX_FILES; i++) {
        char *next = xasprintf("%sfile /f/%d\n", many, i);
        free(many);
        many = next;
    }
    assert_int_equal(receipt_parse(many, strlen(many), &r, &err), -1);
    assert_non_null(strstr(err->msg, "more than 64 files"));
    rx_error_free(err);
    free(many);
    assert_int_equal(receipt_path_ok("/a/b"), 1);
    assert_int_equal(receipt_path_ok("/a/b/"), 0);
    assert_int_equal(receipt_path_ok("/a/.."), 0);
    assert_int_equal(receipt_path_ok("/a/..b"), 1);
    assert_int_equal(receipt_path_ok(NULL), 0);
}

static void test_receipt_load_missing(void **state)
{
    (void)state;
    struct receipt r;
    struct rx_error *err = NULL;
    assert_int_equal(receipt_load("/nonexistent/receipt", &r, &err), -1);
    assert_int_equal(err->code, RX_ENOTFOUND);
    rx_error_free(err);
}

static void test_sha256sums_find(void **state)
{
    (void)state;
    const char *sums =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  runix-aarch64-linux\n"
        "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB *runix-x86_64-linux\r\n"
        "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc  install.sh";
    char out[65];
    assert_int_equal(sha256sums_find(sums, strlen(sums), "runix-x86_64-linux", out, NULL), 0);
    assert_string_equal(out, "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    assert_int_equal(sha256sums_find(sums, strlen(sums), "install.sh", out, NULL), 0);
    assert_int_equal(out[0], 'c');
    /* A name is matched whole, never as a prefix or suffix. */
    assert_int_equal(sha256sums_find(sums, strlen(sums), "runix-x86_64", out, NULL), 1);
    assert_int_equal(sha256sums_find(sums, strlen(sums), "linux", out, NULL), 1);
    struct rx_error *err = NULL;
    const char *bad = "not a sum line\n";
    assert_int_equal(sha256sums_find(bad, strlen(bad), "x", out, &err), -1);
    assert_non_null(strstr(err->msg, "line 1"));
    rx_error_free(err);
    err = NULL;
    const char *twice =
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa  x\n"
        "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb  x\n";
    assert_int_equal(sha256sums_find(twice, strlen(twice), "x", out, &err), -1);
    assert_non_null(strstr(err->msg, "twice"));
    rx_error_free(err);
    assert_int_equal(sha256sums_find("", 0, "x", out, NULL), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_receipt_parse_good),
        cmocka_unit_test(test_receipt_parse_other_formats),
        cmocka_unit_test(test_receipt_parse_hostile),
        cmocka_unit_test(test_receipt_load_missing),
        cmocka_unit_test(test_sha256sums_find),
    };
    return cmocka_run_group_tests_name("receipt", tests, NULL, NULL);
}
