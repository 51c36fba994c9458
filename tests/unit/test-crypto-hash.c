#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "crypto-hash.h"
#include "util-mem.h"

static void hex_to_bytes(const char *hex, unsigned char *out, size_t *n)
{
    *n = strlen(hex) / 2;
    assert_int_equal(hex_decode(hex, strlen(hex), out, *n), 0);
}

/* base32/vectors.tsv: valid rows decode to hex and encode back; invalid rows fail. */
static void test_nix32_third_party_vectors(void **state)
{
    (void)state;
    char ***rows = td_tsv("base32/vectors.tsv");
    int valid = 0, invalid = 0;
    for (size_t i = 0; rows[i]; i++) {
        const char *expect = rows[i][0], *s = rows[i][1], *hex = rows[i][2];
        unsigned char out[128];
        size_t n;
        if (strcmp(expect, "valid") == 0) {
            unsigned char want[128];
            size_t wn;
            hex_to_bytes(hex, want, &wn);
            assert_int_equal(nix32_decode(s, strlen(s), out, sizeof out, &n), 0);
            assert_int_equal(n, wn);
            assert_memory_equal(out, want, n);
            char enc[256];
            nix32_encode(want, wn, enc);
            assert_string_equal(enc, s);
            valid++;
        } else {
            assert_string_equal(expect, "invalid");
            if (nix32_decode(s, strlen(s), out, sizeof out, &n) == 0)
                fail_msg("nix32 '%s' decoded but must be rejected", s);
            invalid++;
        }
    }
    assert_true(valid >= 10);
    assert_true(invalid >= 8);
    td_rows_free(rows);
}

/* nix-formats.md 1.2: bit order and boundaries. */
static void test_nix32_bit_order_and_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *hex, *nix32;
    } v[] = {
        {"000102030405060708090a0b0c0d0e0f10111213", "2c91240g1q6hq2qa1440f1h50h1h4080"},
        {"ff00000000000000000000000000000000000000", "0000000000000000000000000000007z"},
        {"00000000000000000000000000000000000000ff", "zw000000000000000000000000000000"},
        {"0001020304", "0h1h4080"},
        {"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
         "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        unsigned char b[64], d[64];
        size_t n, dn;
        hex_to_bytes(v[i].hex, b, &n);
        char enc[128];
        nix32_encode(b, n, enc);
        assert_string_equal(enc, v[i].nix32);
        assert_int_equal(nix32_decode(enc, strlen(enc), d, sizeof d, &dn), 0);
        assert_int_equal(dn, n);
        assert_memory_equal(b, d, n);
    }
    unsigned char out[64];
    size_t n;
    /* sha256: first char carries one bit, so only 0 and 1 are legal there. */
    char s[53];
    memset(s, '0', 52);
    s[52] = '\0';
    s[0] = '2';
    assert_int_equal(nix32_decode(s, 52, out, sizeof out, &n), -1);
    s[0] = 'z';
    assert_int_equal(nix32_decode(s, 52, out, sizeof out, &n), -1);
    memset(s, 'z', 52);
    s[0] = '1';
    assert_int_equal(nix32_decode(s, 52, out, sizeof out, &n), 0);
    assert_int_equal(n, 32);
    for (int i = 0; i < 32; i++)
        assert_int_equal(out[i], 0xff);
    /* sha1: 32 chars, no surplus bits. */
    char s1[33];
    memset(s1, '0', 32);
    s1[32] = '\0';
    s1[0] = '8';
    assert_int_equal(nix32_decode(s1, 32, out, sizeof out, &n), 0);
    assert_int_equal(n, 20);
    assert_int_equal(out[19], 0x40);
    for (int i = 0; i < 19; i++)
        assert_int_equal(out[i], 0);
    memset(s1, 'z', 32);
    s1[0] = '7';
    assert_int_equal(nix32_decode(s1, 32, out, sizeof out, &n), 0);
    assert_int_equal(out[19], 0x3f);
    assert_int_equal(out[0], 0xff);
    /* 51 characters is no hash length; NUL inside is not a digit. */
    struct hash h;
    assert_int_equal(hash_parse_digest(s, 51, HASH_SHA256, &h), -1);
    assert_int_equal(nix32_decode("0\0", 2, out, sizeof out, &n), -1);
    /* Output buffer too small is refused, not overflowed. */
    assert_int_equal(nix32_decode("0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", 52, out,
                                  16, &n),
                     -1);
}

static void test_hash_parse_forms(void **state)
{
    (void)state;
    const enum hash_algo sha256 = HASH_SHA256;
    struct hash h, ref;
    struct rx_error *err = NULL;
    sha256_buf("", 0, &ref);
    const char *forms[] = {
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",
        "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    };
    for (size_t i = 0; i < ARRAY_SIZE(forms); i++) {
        assert_int_equal(hash_parse(forms[i], strlen(forms[i]), &sha256, &h, &err), 0);
        assert_true(hash_equal(&h, &ref));
    }
    const char *bad[] = {
        "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73",       /* no prefix */
        "sha256:0MDQA9W1P6CMLI6976V4WI0SW9R4P5PRKJ7LZFD1877WK11C9C73", /* upper nix32 */
        "sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c7",  /* 51 chars */
        "sha256:2mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73", /* top bits */
        "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",          /* no padding */
        "md4:e3b0",
        "sha1:a9993e364706816aba3e25717850c26c9cd0d89d", /* wrong algorithm */
        "sha256:",
        "",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (hash_parse(bad[i], strlen(bad[i]), &sha256, &h, &err) == 0)
            fail_msg("'%s' parsed but must be rejected", bad[i]);
        assert_non_null(err);
        assert_int_equal(err->code, RX_EFORMAT);
        rx_error_clear(&err);
    }
    /* 1mdqa9... decodes with bit 255 set. */
    const char *top = "sha256:1mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73";
    assert_int_equal(hash_parse(top, strlen(top), &sha256, &h, NULL), 0);
    assert_int_equal(h.bytes[30], 0xb8);
    assert_int_equal(h.bytes[31], 0xd5);
    /* Any algorithm accepted when none is wanted; sha1 from a CA field. */
    const char *sha1 = "sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjw";
    assert_int_equal(hash_parse(sha1, strlen(sha1), NULL, &h, NULL), 0);
    assert_int_equal(h.algo, HASH_SHA1);
    assert_int_equal(h.bytes[0], 0x5c);
}

static void test_hash_format_and_sha256(void **state)
{
    (void)state;
    static const struct {
        const char *in, *nix32;
    } v[] = {
        {"abc", "sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"},
        {"hello world\n", "sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct hash h;
        sha256_buf(v[i].in, strlen(v[i].in), &h);
        char s[HASH_STR_MAX];
        hash_format(&h, HASH_NIX32, s);
        assert_string_equal(s, v[i].nix32);
    }
    /* Streaming in pieces gives the same digest as one call. */
    struct sha256_ctx c;
    struct hash a, b;
    sha256_init(&c);
    sha256_update(&c, "hello ", 6);
    sha256_update(&c, "world\n", 6);
    sha256_final(&c, &a);
    sha256_buf("hello world\n", 12, &b);
    assert_true(hash_equal(&a, &b));
    char s[HASH_STR_MAX];
    hash_format(&a, HASH_BASE16, s);
    assert_string_equal(s, "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447");
    struct hash e;
    sha256_buf("", 0, &e);
    hash_format(&e, HASH_SRI, s);
    assert_string_equal(s, "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    hash_format(&e, HASH_BASE64, s);
    assert_string_equal(s, "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

static void test_hex_and_base64_strict(void **state)
{
    (void)state;
    unsigned char b[4];
    assert_int_equal(hex_decode("0aFf", 4, b, 2), 0);
    assert_int_equal(b[0], 0x0a);
    assert_int_equal(b[1], 0xff);
    assert_int_equal(hex_decode("0g", 2, b, 1), -1);
    assert_int_equal(hex_decode("0a0", 3, b, 2), -1);
    unsigned char k[32];
    assert_int_equal(base64_decode_exact("6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", 44, k, 32), 0);
    assert_int_equal(base64_decode_exact("6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY", 43, k, 32), -1);
    assert_int_equal(base64_decode_exact("6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShj*=", 44, k, 32), -1);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nix32_third_party_vectors),
        cmocka_unit_test(test_nix32_bit_order_and_boundaries),
        cmocka_unit_test(test_hash_parse_forms),
        cmocka_unit_test(test_hash_format_and_sha256),
        cmocka_unit_test(test_hex_and_base64_strict),
    };
    return cmocka_run_group_tests_name("crypto-hash", tests, NULL, NULL);
}
