/* Bundles: the trailer's bounds, the tag, and the manifest's app document. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "cli-bundle.h"
#include "util-error.h"

#include "banned.h"

static void encode(uint64_t po, uint64_t mo, uint64_t ml, unsigned char *out)
{
    struct bundle_trailer t = {.payload_off = po, .manifest_off = mo, .manifest_len = ml};
    for (int i = 0; i < 32; i++)
        t.sha256[i] = (unsigned char)i;
    bundle_trailer_encode(&t, out);
}

static void test_bundle_trailer_round_trip(void **state)
{
    (void)state;
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    encode(1000, 5000, 300, tr);
    struct bundle_trailer t;
    struct rx_error *err = NULL;
    assert_int_equal(bundle_trailer_decode(tr, 5000 + 300 + 64, &t, &err), 1);
    assert_int_equal(t.payload_off, 1000);
    assert_int_equal(t.manifest_off, 5000);
    assert_int_equal(t.manifest_len, 300);
    assert_int_equal(t.sha256[31], 31);
    assert_memory_equal(tr + 56, BUNDLE_MAGIC, 8);
}

static void test_bundle_trailer_without_magic_is_no_bundle(void **state)
{
    (void)state;
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    encode(1000, 5000, 300, tr);
    tr[63] ^= 1;
    struct bundle_trailer t;
    struct rx_error *err = NULL;
    assert_int_equal(bundle_trailer_decode(tr, 5364, &t, &err), 0);
    assert_null(err);
}

static void test_bundle_trailer_rejects_bounds(void **state)
{
    (void)state;
    const struct {
        uint64_t po, mo, ml, size;
    } cases[] = {
        {1000, 5000, 300, 5363},                 /* one byte short */
        {1000, 5000, 300, 5365},                 /* one byte long */
        {6000, 5000, 300, 5364},                 /* payload after the manifest */
        {0, 5000, 300, 5364},                    /* no runix before the payload */
        {1000, UINT64_MAX - 10, 300, 5364},      /* an offset past the end */
        {1000, 5000, UINT64_MAX - 4000, 5364},   /* a length that would wrap */
        {1000, 0, BUNDLE_MANIFEST_MAX + 1ull, BUNDLE_MANIFEST_MAX + 65ull}, /* too big */
        {1000, 5000, 300, 10},                   /* smaller than a trailer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char tr[BUNDLE_TRAILER_SIZE];
        encode(cases[i].po, cases[i].mo, cases[i].ml, tr);
        struct bundle_trailer t;
        struct rx_error *err = NULL;
        assert_int_equal(bundle_trailer_decode(tr, cases[i].size, &t, &err), -1);
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "truncated or damaged"));
        rx_error_free(err);
    }
}

static void test_bundle_tag_names_the_checksum(void **state)
{
    (void)state;
    struct bundle_trailer t = {0};
    t.sha256[0] = 0xab;
    t.sha256[15] = 0x01;
    t.sha256[16] = 0xff; /* past the tag's 16 bytes */
    char tag[BUNDLE_TAG_MAX];
    bundle_tag(&t, tag);
    assert_string_equal(tag, "bundle-ab000000000000000000000000000001");
}

#define ROOT "/nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-hello-2.12"

static int parse(const char *text, struct cli_bundle *b, size_t *used)
{
    struct rx_error *err = NULL;
    memset(b, 0, sizeof *b);
    int r = bundle_app_parse(text, strlen(text), b, used, &err);
    if (r < 0) {
        assert_non_null(err);
        rx_error_free(err);
    }
    return r;
}

static void test_bundle_app_parse_takes_the_first_document(void **state)
{
    (void)state;
    const char *text = "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"program\":\"bin/hello\","
                       "\"args\":[\"-g\",\"hi\"],\"env\":[\"A=b=c\"]}\n{\"paths\":[]}\n";
    struct cli_bundle b;
    size_t used = 0;
    assert_int_equal(parse(text, &b, &used), 0);
    assert_string_equal(b.root, ROOT);
    assert_string_equal(b.program, "bin/hello");
    assert_string_equal(b.args[0], "-g");
    assert_string_equal(b.args[1], "hi");
    assert_null(b.args[2]);
    assert_string_equal(b.env[0], "A=b=c");
    assert_null(b.env[1]);
    assert_memory_equal(text + used, "\n{\"paths\"", 9);
    cli_bundle_release(&b);

    assert_int_equal(parse("{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"program\":null}", &b,
                           NULL),
                     0);
    assert_null(b.program);
    assert_null(b.args[0]);
    cli_bundle_release(&b);
}

static void test_bundle_app_parse_rejects_bad_apps(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"runix-bundle\":2,\"roots\":[\"" ROOT "\"]}",
        "{\"runix-bundle\":1,\"roots\":[]}",
        "{\"runix-bundle\":1,\"roots\":[\"/usr/bin\"]}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "/bin\"]}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"program\":\"/bin/sh\"}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"program\":\"../../bin/sh\"}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"program\":\"\"}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"env\":[\"NOEQUALS\"]}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"env\":[\"=x\"]}",
        "{\"runix-bundle\":1,\"roots\":[\"" ROOT "\"],\"args\":[1]}",
        "{\"runix-bundle\":1,\"runix-bundle\":1,\"roots\":[\"" ROOT "\"]}",
        "[1]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cli_bundle b;
        assert_int_equal(parse(bad[i], &b, NULL), -1);
        cli_bundle_release(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle_trailer_round_trip),
        cmocka_unit_test(test_bundle_trailer_without_magic_is_no_bundle),
        cmocka_unit_test(test_bundle_trailer_rejects_bounds),
        cmocka_unit_test(test_bundle_tag_names_the_checksum),
        cmocka_unit_test(test_bundle_app_parse_takes_the_first_document),
        cmocka_unit_test(test_bundle_app_parse_rejects_bad_apps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
