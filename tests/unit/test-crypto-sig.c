#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "crypto-hash.h"
#include "crypto-sig.h"
#include "util-mem.h"

/* Unescape the "\n" the signature-strings file uses for a real newline. */
static char *unescape(const char *s)
{
    char *out = xmalloc(strlen(s) + 1);
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1] == 'n') {
            out[o++] = '\n';
            i++;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

static void test_sig_public_keys_vectors(void **state)
{
    (void)state;
    char ***rows = td_tsv("signatures/public-keys.tsv");
    size_t n = 0;
    for (size_t i = 0; rows[i]; i++, n++) {
        struct public_key k;
        struct rx_error *err = NULL;
        int r = public_key_parse(rows[i][1], strlen(rows[i][1]), &k, &err);
        if (strcmp(rows[i][0], "valid") == 0) {
            if (r != 0)
                fail_msg("key '%s' rejected: %s", rows[i][1], err->msg);
            char back[SIG_STR_MAX];
            public_key_format(&k, back);
            assert_string_equal(back, rows[i][1]);
        } else {
            if (r == 0)
                fail_msg("key '%s' accepted but must be rejected", rows[i][1]);
            assert_int_equal(err->code, RX_EFORMAT);
            rx_error_free(err);
        }
    }
    assert_true(n >= 10);
    td_rows_free(rows);
}

static void test_sig_secret_keys_derive_public(void **state)
{
    (void)state;
    char ***rows = td_tsv("signatures/secret-keys.tsv");
    size_t n = 0;
    for (size_t i = 0; rows[i]; i++, n++) {
        struct secret_key sk;
        struct public_key pk;
        assert_int_equal(secret_key_parse(rows[i][0], strlen(rows[i][0]), &sk, NULL), 0);
        secret_key_public(&sk, &pk);
        char s[SIG_STR_MAX];
        public_key_format(&pk, s);
        assert_string_equal(s, rows[i][1]);
    }
    assert_int_equal(n, 3);
    td_rows_free(rows);
}

static void test_sig_signature_strings(void **state)
{
    (void)state;
    char ***rows = td_tsv("signatures/signature-strings.tsv");
    size_t n = 0;
    for (size_t i = 0; rows[i]; i++, n++) {
        char *s = unescape(rows[i][1]);
        struct signature sig;
        int r = signature_parse(s, strlen(s), &sig, NULL);
        if (strcmp(rows[i][0], "valid") == 0) {
            assert_int_equal(r, 0);
            char back[SIG_STR_MAX];
            signature_format(&sig, back);
            assert_string_equal(back, s);
        } else if (r == 0) {
            fail_msg("signature '%s' accepted but must be rejected", rows[i][1]);
        }
        free(s);
    }
    assert_true(n >= 7);
    td_rows_free(rows);
}

/* verify.tsv: a trust check by name (the key is the only trusted one). */
static void test_sig_verify_vectors(void **state)
{
    (void)state;
    size_t fplen;
    char *fp = td_read_rel("signatures/curl-7.82.0-bin.fingerprint", &fplen);
    char ***rows = td_tsv("signatures/verify.tsv");
    size_t n = 0;
    for (size_t i = 0; rows[i]; i++, n++) {
        const char *expect = rows[i][0], *key = rows[i][1], *sigs = rows[i][2], *msg = rows[i][3];
        size_t mlen = 0;
        if (strcmp(msg, "CURL") == 0)
            mlen = fplen;
        else if (strcmp(msg, "CURL[0..5]") == 0)
            mlen = 5;
        else
            fail_msg("unknown message '%s'", msg);
        struct trusted_keys tk = TRUSTED_KEYS_INIT;
        assert_int_equal(trusted_keys_add(&tk, key, strlen(key), NULL), 0);
        struct signature sig;
        bool ok = signature_parse(sigs, strlen(sigs), &sig, NULL) == 0 &&
                  trusted_keys_verify(&tk, &sig, fp, mlen);
        if (ok != (strcmp(expect, "verifies") == 0))
            fail_msg("row %zu: expected %s", i, expect);
        trusted_keys_release(&tk);
    }
    assert_true(n >= 8);
    td_rows_free(rows);
    free(fp);
}

/* A raw Ed25519 check ignores names; the trust check above does not. */
static void test_sig_raw_check_ignores_name(void **state)
{
    (void)state;
    size_t fplen;
    char *fp = td_read_rel("signatures/curl-7.82.0-bin.fingerprint", &fplen);
    const char *key = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
    const char *s = "cache.nixos.org-2:TsTTb3WGTZKphvYdBHXwo6weVILmTytUjLB+vcX89fOjjRicCHmKA4RCPMVLkj6TMJ4GMX3HPVWRdD1hkeKZBQ==";
    struct public_key k;
    struct signature sig;
    assert_int_equal(public_key_parse(key, strlen(key), &k, NULL), 0);
    assert_int_equal(signature_parse(s, strlen(s), &sig, NULL), 0);
    assert_true(signature_verify_raw(&sig, &k, fp, fplen));
    struct trusted_keys tk = TRUSTED_KEYS_INIT;
    assert_int_equal(trusted_keys_add(&tk, key, strlen(key), NULL), 0);
    assert_false(trusted_keys_verify(&tk, &sig, fp, fplen));
    trusted_keys_release(&tk);
    free(fp);
}

static void parse_kv_hex(const char *text, const char *key, unsigned char *out, size_t n)
{
    const char *p = strstr(text, key);
    assert_non_null(p);
    p += strlen(key);
    assert_int_equal(hex_decode(p, 2 * n, out, n), 0);
}

/* RFC 8032 7.1 TEST SHA(abc): signing is deterministic and verifies. */
static void test_sig_rfc8032_vector(void **state)
{
    (void)state;
    char *t = td_read_rel("signatures/rfc8032-test1.txt", NULL);
    unsigned char seed[32], pub[32], msg[64], want[64];
    parse_kv_hex(t, "seed=", seed, 32);
    parse_kv_hex(t, "public=", pub, 32);
    parse_kv_hex(t, "message=", msg, 64);
    parse_kv_hex(t, "signature=", want, 64);
    struct secret_key sk;
    snprintf(sk.name, sizeof sk.name, "rfc8032");
    memcpy(sk.key, seed, 32);
    memcpy(sk.key + 32, pub, 32);
    struct public_key pk;
    secret_key_public(&sk, &pk);
    assert_memory_equal(pk.key, pub, 32);
    struct signature sig;
    signature_sign(&sk, msg, 64, &sig);
    assert_memory_equal(sig.sig, want, 64);
    assert_true(signature_verify_raw(&sig, &pk, msg, 64));
    msg[0] ^= 1;
    assert_false(signature_verify_raw(&sig, &pk, msg, 64));
    free(t);
}

/* Signing the curl fingerprint with the published test1 key gives its known Sig. */
static void test_sig_sign_reproduces_test1(void **state)
{
    (void)state;
    size_t fplen;
    char *fp = td_read_rel("signatures/curl-7.82.0-bin.fingerprint", &fplen);
    const char *sks = "test1:jbX9NxZp8WB/coK8k7yLf0gNYmBbIbCrOFwgJgI7OV+0sASf4R5oFQlioSlN3bJ56uvshzr7S9Z75pcv+9hSkQ==";
    struct secret_key sk;
    assert_int_equal(secret_key_parse(sks, strlen(sks), &sk, NULL), 0);
    struct signature sig;
    signature_sign(&sk, fp, fplen, &sig);
    char s[SIG_STR_MAX];
    signature_format(&sig, s);
    assert_string_equal(s, "test1:519iiVLx/c4Rdt5DNt6Y2Jm6hcWE9+XY69ygiWSZCNGVcmOcyL64uVAJ3cV8vaTusIZdbTnYo9Y7vDNeTmmMBQ==");
    free(fp);
}

static void test_sig_trusted_keys_first_name_wins(void **state)
{
    (void)state;
    struct trusted_keys tk = TRUSTED_KEYS_INIT;
    const char *a = "k-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
    const char *b = "k-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs=";
    assert_int_equal(trusted_keys_add(&tk, a, strlen(a), NULL), 0);
    assert_int_equal(trusted_keys_add(&tk, b, strlen(b), NULL), 0);
    assert_int_equal(tk.n, 1);
    assert_int_equal(trusted_keys_find(&tk, "k-1")->key[0], 0xe8);
    assert_null(trusted_keys_find(&tk, "k-2"));
    struct rx_error *err = NULL;
    assert_int_equal(trusted_keys_add(&tk, "nocolon", 7, &err), -1);
    assert_non_null(strstr(err->msg, "nocolon"));
    rx_error_free(err);
    trusted_keys_release(&tk);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sig_public_keys_vectors),
        cmocka_unit_test(test_sig_secret_keys_derive_public),
        cmocka_unit_test(test_sig_signature_strings),
        cmocka_unit_test(test_sig_verify_vectors),
        cmocka_unit_test(test_sig_raw_check_ignores_name),
        cmocka_unit_test(test_sig_rfc8032_vector),
        cmocka_unit_test(test_sig_sign_reproduces_test1),
        cmocka_unit_test(test_sig_trusted_keys_first_name_wins),
    };
    return cmocka_run_group_tests_name("crypto-sig", tests, NULL, NULL);
}
