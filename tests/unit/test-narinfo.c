#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "crypto-sig.h"
#include "narinfo.h"
#include "util-mem.h"

#define NIXOS_KEY "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
#define COMMUNITY_KEY "nix-community.cachix.org-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="
#define TEST1_KEY "test1:tLAEn+EeaBUJYqEpTd2yeerr7Ic6+0vWe+aXL/vYUpE="

static void keys(struct trusted_keys *tk, const char *k1, const char *k2)
{
    *tk = (struct trusted_keys)TRUSTED_KEYS_INIT;
    if (k1)
        assert_int_equal(trusted_keys_add(tk, k1, strlen(k1), NULL), 0);
    if (k2)
        assert_int_equal(trusted_keys_add(tk, k2, strlen(k2), NULL), 0);
}

static void load(const char *rel, struct narinfo *ni)
{
    size_t len;
    char *text = td_read_rel(rel, &len);
    struct rx_error *err = NULL;
    if (narinfo_parse(text, len, ni, &err) < 0)
        fail_msg("%s: %s", rel, err->msg);
    free(text);
}

/* Trusted with keys k1/k2?  Returns the verification result (0 or -1). */
static int verify_file(const char *rel, const char *k1, const char *k2)
{
    struct narinfo ni;
    struct trusted_keys tk;
    load(rel, &ni);
    keys(&tk, k1, k2);
    struct rx_error *err = NULL;
    int r = narinfo_verify(&ni, &tk, &err);
    if (r < 0) {
        assert_int_equal(err->code, RX_ESIG);
        rx_error_free(err);
    }
    trusted_keys_release(&tk);
    narinfo_release(&ni);
    return r;
}

/* The 978-entry cache.nixos.org corpus: all parse, print back byte for byte, and verify. */
static void test_narinfo_corpus_round_trip_and_verify(void **state)
{
    (void)state;
    size_t len;
    char *text = td_read_rel("narinfo/nix-compat/narinfo-corpus.txt", &len);
    struct trusted_keys tk;
    keys(&tk, NIXOS_KEY, NULL);
    size_t count = 0, bzip2 = 0, with_ca = 0;
    char *p = text, *end = text + len;
    while (p < end) {
        char *sep = strstr(p, "\n\n");
        size_t n = sep ? (size_t)(sep - p) + 1 : (size_t)(end - p);
        struct narinfo ni;
        struct rx_error *err = NULL;
        if (narinfo_parse(p, n, &ni, &err) < 0)
            fail_msg("corpus entry %zu: %s", count, err->msg);
        char *back = narinfo_format(&ni);
        if (strlen(back) != n || memcmp(back, p, n) != 0)
            fail_msg("corpus entry %zu does not round-trip:\n%.*s\n---\n%s", count, (int)n, p, back);
        if (narinfo_verify(&ni, &tk, &err) < 0)
            fail_msg("corpus entry %zu: %s", count, err->msg);
        bzip2 += strcmp(ni.compression, "bzip2") == 0;
        with_ca += ni.ca != NULL;
        free(back);
        narinfo_release(&ni);
        count++;
        p = sep ? sep + 2 : end;
    }
    assert_int_equal(count, 978);
    assert_int_equal(bzip2, 1);
    assert_int_equal(with_ca, 8);
    trusted_keys_release(&tk);
    free(text);
}

static void test_narinfo_net_tools_fields(void **state)
{
    (void)state;
    struct narinfo ni;
    load("narinfo/go-nix/net-tools.narinfo", &ni);
    assert_string_equal(ni.path.name, "net-tools-1.60_p20170221182432");
    assert_string_equal(ni.path.hash, "00bgd045z0d4icpbc2yyz4gx48ak44la");
    assert_string_equal(ni.url, "nar/1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar.xz");
    assert_string_equal(ni.compression, "xz");
    assert_true(ni.has_file_hash);
    assert_true(ni.has_file_size);
    assert_int_equal(ni.file_size, 114980);
    assert_int_equal(ni.nar_size, 464152);
    assert_int_equal(ni.nrefs, 1);
    assert_string_equal(ni.refs[0].name, "glibc-2.27");
    assert_true(ni.has_deriver);
    assert_int_equal(ni.nsigs, 2);
    char *fp = narinfo_fingerprint(&ni);
    assert_string_equal(fp, "1;/nix/store/00bgd045z0d4icpbc2yyz4gx48ak44la-net-tools-1.60_p20170221182432;"
                            "sha256:0lxjvvpr59c2mdram7ympy5ay741f180kv3349hvfc3f8nrmbqf6;464152;"
                            "/nix/store/7gx4kiv5m0i7d7qkixq2cwzbr10lvxwc-glibc-2.27");
    free(fp);
    narinfo_release(&ni);

    /* The hex FileHash is the same hash as the nix32 one. */
    struct narinfo hex;
    load("narinfo/go-nix/net-tools-base16-filehash.narinfo", &hex);
    load("narinfo/go-nix/net-tools.narinfo", &ni);
    assert_true(hash_equal(&hex.file_hash, &ni.file_hash));
    narinfo_release(&hex);
    narinfo_release(&ni);

    load("narinfo/go-nix/net-tools-unknown-deriver.narinfo", &ni);
    assert_false(ni.has_deriver);
    narinfo_release(&ni);
    load("narinfo/go-nix/net-tools-no-deriver.narinfo", &ni);
    assert_false(ni.has_deriver);
    narinfo_release(&ni);
    load("narinfo/go-nix/net-tools-no-file-fields.narinfo", &ni);
    assert_false(ni.has_file_hash);
    assert_false(ni.has_file_size);
    narinfo_release(&ni);
}

/* Expected trust outcomes from the vectors README, one by one. */
static void test_narinfo_trust_outcomes(void **state)
{
    (void)state;
    static const struct {
        const char *file, *k1, *k2;
        int expect; /* 0 trusted, -1 not */
    } v[] = {
        {"go-nix/net-tools.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/net-tools-base16-filehash.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/net-tools-unknown-deriver.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/net-tools-no-file-fields.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/net-tools-no-deriver.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/net-tools-uncompressed.narinfo", NIXOS_KEY, NULL, -1},
        {"go-nix/net-tools-uncompressed-no-filehash.narinfo", NIXOS_KEY, NULL, -1},
        {"go-nix/curl-multirefs.narinfo", NIXOS_KEY, NULL, 0},
        {"go-nix/curl-multirefs.narinfo", TEST1_KEY, NULL, 0},
        {"go-nix/big.narinfo", NIXOS_KEY, NULL, 0},
        /* References out of byte order: like Nix, the fingerprint sorts them. */
        {"nix-compat/gcc-3.4.6-references-out-of-order.narinfo", NIXOS_KEY, NULL, -1},
        {"nix-compat/texlive-hyphenex-ca-fixed-sha1.narinfo", NIXOS_KEY, NULL, 0},
        {"nix-compat/digikam-no-compression-field.narinfo", NIXOS_KEY, NULL, 0},
        {"nix-compat/perl-HTTP-Cookies-narhash-hex.narinfo", NIXOS_KEY, NULL, 0},
        {"nix-compat/perl-HTTP-Cookies-unsigned-mixed.narinfo", NIXOS_KEY, NULL, -1},
        {"zombiezen-go-nix/hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"zombiezen-go-nix/hello-minimal-no-compression-field.narinfo", NIXOS_KEY, NULL, -1},
        {"zombiezen-go-nix/hello-minimal-compression-none.narinfo", NIXOS_KEY, NULL, -1},
        {"ncps/n5glp21rsz314qssw9fbvfswgy3kc68f-hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/3acqrvb06vw0w3s9fa3wci433snbi2bg-hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/1q8w6gl1ll0mwfkqc3c2yx005s6wwfrl-hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/1gxz5nfzfnhyxjdyzi04r86sh61y4i00-hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/jiwdym6f9w6v5jcbqf5wn7fmg11v5q0j-hello-2.12.1.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/6lwdzpbig6zz8678blcqr5f5q1caxjw2-hello-2.12.narinfo", NIXOS_KEY, NULL, 0},
        {"ncps/yj1wxm9hh8610iyzqnz75kvs6xl8j3my-source.narinfo", NIXOS_KEY, NULL, -1},
        {"ncps/yj1wxm9hh8610iyzqnz75kvs6xl8j3my-source.narinfo", COMMUNITY_KEY, NULL, 0},
        {"ncps/yj1wxm9hh8610iyzqnz75kvs6xl8j3my-source.narinfo", NIXOS_KEY, COMMUNITY_KEY, 0},
        /* The right key bytes under another name are not trusted. */
        {"go-nix/net-tools.narinfo", "cache.nixos.org-2:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=", NULL, -1},
        {"go-nix/net-tools.narinfo", NULL, NULL, -1},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        char *rel = xasprintf("narinfo/%s", v[i].file);
        int r = verify_file(rel, v[i].k1, v[i].k2);
        if (r != v[i].expect)
            fail_msg("%s with %s: expected %s", rel, v[i].k1 ? v[i].k1 : "no key",
                     v[i].expect == 0 ? "trusted" : "untrusted");
        free(rel);
    }
}

static void test_narinfo_field_details(void **state)
{
    (void)state;
    struct narinfo ni;
    /* A missing Compression means bzip2. */
    load("narinfo/nix-compat/digikam-no-compression-field.narinfo", &ni);
    assert_string_equal(ni.compression, "bzip2");
    assert_non_null(ni.system);
    assert_string_equal(ni.system, "i686-linux");
    narinfo_release(&ni);
    load("narinfo/zombiezen-go-nix/hello-minimal-no-compression-field.narinfo", &ni);
    assert_string_equal(ni.compression, "bzip2");
    assert_int_equal(ni.nsigs, 0);
    narinfo_release(&ni);
    load("narinfo/zombiezen-go-nix/hello-minimal-compression-none.narinfo", &ni);
    assert_string_equal(ni.compression, "none");
    assert_false(ni.has_file_hash);
    narinfo_release(&ni);
    /* CA with sha1 and an empty References line with a trailing space. */
    load("narinfo/nix-compat/texlive-hyphenex-ca-fixed-sha1.narinfo", &ni);
    assert_string_equal(ni.ca, "fixed:r:sha1:1ak1ymbmsfx7z8kh09jzkr3a4dvkrfjw");
    assert_int_equal(ni.nrefs, 0);
    char *fp = narinfo_fingerprint(&ni);
    assert_int_equal(fp[strlen(fp) - 1], ';');
    free(fp);
    narinfo_release(&ni);
    /* Hex NarHash goes into the fingerprint as nix32. */
    load("narinfo/nix-compat/perl-HTTP-Cookies-narhash-hex.narinfo", &ni);
    fp = narinfo_fingerprint(&ni);
    assert_non_null(strstr(fp, ";sha256:1wsgz5cbawm6ifh59ccixw4n717wng5n6wp4sxyav0ad78lzvbb0;45840;"));
    free(fp);
    narinfo_release(&ni);
    /* The curl fingerprint is exactly the vector file. */
    load("narinfo/go-nix/curl-multirefs.narinfo", &ni);
    fp = narinfo_fingerprint(&ni);
    size_t len;
    char *want = td_read_rel("signatures/curl-7.82.0-bin.fingerprint", &len);
    assert_int_equal(strlen(fp), len);
    assert_memory_equal(fp, want, len);
    assert_int_equal(ni.nrefs, 4);
    free(want);
    free(fp);
    narinfo_release(&ni);
    /* A URL with a query string; FileHash = NarHash for Compression: none. */
    load("narinfo/ncps/jiwdym6f9w6v5jcbqf5wn7fmg11v5q0j-hello-2.12.1.narinfo", &ni);
    assert_non_null(strchr(ni.url, '?'));
    assert_true(hash_equal(&ni.file_hash, &ni.nar_hash));
    narinfo_release(&ni);
    /* zstd, hex FileHash, no References and no Deriver lines. */
    load("narinfo/ncps/yj1wxm9hh8610iyzqnz75kvs6xl8j3my-source.narinfo", &ni);
    assert_string_equal(ni.compression, "zstd");
    assert_int_equal(ni.nrefs, 0);
    assert_false(ni.has_deriver);
    fp = narinfo_fingerprint(&ni);
    assert_non_null(strstr(fp, ";2440;"));
    assert_int_equal(fp[strlen(fp) - 1], ';');
    free(fp);
    narinfo_release(&ni);
    load("narinfo/ncps/6lwdzpbig6zz8678blcqr5f5q1caxjw2-hello-2.12.narinfo", &ni);
    assert_false(ni.has_deriver);
    assert_int_equal(ni.nsigs, 2);
    narinfo_release(&ni);
    /* 200 KB References line. */
    load("narinfo/go-nix/big.narinfo", &ni);
    assert_true(ni.nrefs > 1000);
    assert_int_equal(ni.nar_size, 157853408);
    assert_string_equal(ni.compression, "none");
    narinfo_release(&ni);
}

/* Malformed sizes from zgo are refused. */
static void test_narinfo_rejects_bad_sizes(void **state)
{
    (void)state;
    const char *files[] = {
        "narinfo/zombiezen-go-nix/hello-negative-narsize.narinfo",
        "narinfo/zombiezen-go-nix/hello-zero-narsize.narinfo",
        "narinfo/zombiezen-go-nix/hello-negative-filesize.narinfo",
    };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        size_t len;
        char *text = td_read_rel(files[i], &len);
        struct narinfo ni;
        struct rx_error *err = NULL;
        if (narinfo_parse(text, len, &ni, &err) == 0)
            fail_msg("%s accepted", files[i]);
        assert_int_equal(err->code, RX_EFORMAT);
        assert_non_null(strstr(err->msg, "Size"));
        rx_error_free(err);
        free(text);
    }
}

#define GOOD                                                                                       \
    "StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0\n"                          \
    "URL: nar/0zhmvh5c022f7icvdgfvrbrc77igqjf5560315v1xg0bsk9asj7m.nar.xz\n"                         \
    "Compression: xz\n"                                                                            \
    "FileHash: sha256:0zhmvh5c022f7icvdgfvrbrc77igqjf5560315v1xg0bsk9asj7m\n"                        \
    "FileSize: 448\n"                                                                              \
    "NarHash: sha256:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig\n"                         \
    "NarSize: 2384\n"                                                                              \
    "References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35 "                                   \
    "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0 s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0\n" \
    "Deriver: ka0p4bka00wgpsw3l54avbiwsx996npx-spec-app-1.0.drv\n"                                 \
    "Sig: runix-test-1:JFu/HkRFJQUBZpctKK6caxEbcLuk6NMfB1krCHJmACKTZkWTbmE4sP9KYJ6TBkH1JXe79AId4uJYvvCqTTycAA==\n"

#define SPEC_KEY "runix-test-1:MNGq39/Xf0JUAee/+WDxm56wvdVFy5nfXtV2gIJXoYs="

/* Replace the first occurrence of `from` in GOOD by `to`. */
static char *variant(const char *from, const char *to)
{
    const char *g = GOOD;
    const char *at = strstr(g, from);
    assert_non_null(at);
    return xasprintf("%.*s%s%s", (int)(at - g), g, to, at + strlen(from));
}

static void test_narinfo_spec_example(void **state)
{
    (void)state;
    struct narinfo ni;
    struct rx_error *err = NULL;
    assert_int_equal(narinfo_parse(GOOD, strlen(GOOD), &ni, &err), 0);
    char *fp = narinfo_fingerprint(&ni);
    assert_string_equal(fp, "1;/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0;"
                            "sha256:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig;2384;"
                            "/nix/store/4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35,"
                            "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0,"
                            "/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0");
    free(fp);
    struct trusted_keys tk;
    keys(&tk, SPEC_KEY, NULL);
    assert_int_equal(narinfo_verify(&ni, &tk, NULL), 0);
    narinfo_release(&ni);

    /* A changed NarSize, NarHash byte or reference breaks the signature. */
    const char *changes[][2] = {
        {"NarSize: 2384", "NarSize: 2385"},
        {"NarHash: sha256:038z", "NarHash: sha256:039z"},
        {"75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0", "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.1"},
        {"StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0", "StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.1"},
        {"Sig: runix-test-1:JFu/", "Sig: runix-test-1:JFv/"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(changes); i++) {
        char *t = variant(changes[i][0], changes[i][1]);
        assert_int_equal(narinfo_parse(t, strlen(t), &ni, NULL), 0);
        assert_int_equal(narinfo_verify(&ni, &tk, &err), -1);
        assert_int_equal(err->code, RX_ESIG);
        assert_non_null(strstr(err->msg, "runix-test-1"));
        rx_error_clear(&err);
        narinfo_release(&ni);
        free(t);
    }
    /* A valid signature still counts next to a malformed and an unknown one. */
    char *extra = variant("Sig: ", "Sig: bogus\nSig: other-1:JFu/HkRFJQUBZpctKK6caxEbcLuk6NMfB1krCHJmACKTZkWTbmE4sP9KYJ6TBkH1JXe79AId4uJYvvCqTTycAA==\nSig: ");
    assert_int_equal(narinfo_parse(extra, strlen(extra), &ni, NULL), 0);
    assert_int_equal(narinfo_verify(&ni, &tk, NULL), 0);
    narinfo_release(&ni);
    free(extra);
    trusted_keys_release(&tk);
}

static void test_narinfo_rejects_malformed(void **state)
{
    (void)state;
    const char *cases[][3] = {
        /* from, to, expected message part */
        {"NarSize: 2384\n", "NarSize: 2384\nNarSize: 2384\n", "more than once"},
        {"URL: ", "URL: nar/x\nURL: ", "more than once"},
        {"Compression: xz\n", "Compression: xz\nCompression: xz\n", "more than once"},
        {"References: ", "References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35\nReferences: ", "more than once"},
        {"StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0\n", "", "'StorePath'"},
        {"URL: nar/0zhmvh5c022f7icvdgfvrbrc77igqjf5560315v1xg0bsk9asj7m.nar.xz\n", "", "'URL'"},
        {"NarHash: sha256:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig\n", "", "'NarHash'"},
        {"NarSize: 2384\n", "", "'NarSize'"},
        {"NarSize: 2384", "NarSize: 0", "NarSize"},
        {"NarSize: 2384", "NarSize: 18446744073709551616", "NarSize"},
        {"NarSize: 2384", "NarSize: +2384", "NarSize"},
        {"NarSize: 2384", "NarSize: 2384 ", "NarSize"},
        {"FileSize: 448", "FileSize: 4a8", "FileSize"},
        {"NarHash: sha256:", "NarHash: ", "NarHash"},
        {"NarHash: sha256:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig", "NarHash: sha1:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig", "NarHash"},
        {"NarHash: sha256:038z", "NarHash: sha256:038e", "NarHash"},
        {"FileHash: sha256:0zhm", "FileHash: sha256:0zhmm", "FileHash"},
        {"References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "References: /nix/store/4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "References"},
        {"References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "twice"},
        {"References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "References: busybox", "References"},
        {"References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busybox-1.35", "References: 4ql6p95vgan4hhpkqp9yaycg2wvm94lc-busy box", "References"},
        {"StorePath: /nix/store/", "StorePath: /gnu/store/", "StorePath"},
        {"StorePath: /nix", "StorePath:  /nix", "StorePath"},
        {"StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0", "StorePath: /nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0/bin", "StorePath"},
        {"URL: nar/", "URL: ../", "URL"},
        {"URL: nar/", "URL: nar/../../", "URL"},
        {"URL: nar/", "URL: /etc/", "URL"},
        {"URL: nar/", "URL: https://evil.example/nar/", "URL"},
        {"URL: nar/0zhm", "URL: nar/#0zhm", "URL"},
        {"URL: nar/", "URL: nar/%2e%2e/%2e%2e/", "URL"},
        {"URL: nar/", "URL: nar/%2E%2E/", "URL"},
        {"Compression: xz", "Compression: x z", "Compression"},
        {"\n", "\r\n", "control character"},
        {"NarSize: 2384", "NarSize:2384", "no space after"},
        {"NarSize: 2384\n", "NarSize: 2384\nno colon here\n", "not 'Key: value'"},
        {"NarSize: 2384", "NarSize: 23\t84", "control character"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *t = variant(cases[i][0], cases[i][1]);
        struct narinfo ni;
        struct rx_error *err = NULL;
        if (narinfo_parse(t, strlen(t), &ni, &err) == 0)
            fail_msg("case %zu accepted:\n%s", i, t);
        assert_int_equal(err->code, RX_EFORMAT);
        if (!strstr(err->msg, cases[i][2]))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err->msg, cases[i][2]);
        rx_error_free(err);
        free(t);
    }
    /* No final newline, NUL inside, oversize, empty. */
    struct narinfo ni;
    struct rx_error *err = NULL;
    assert_int_equal(narinfo_parse(GOOD, strlen(GOOD) - 1, &ni, &err), -1);
    assert_non_null(strstr(err->msg, "newline"));
    rx_error_clear(&err);
    char *nul = xstrdup(GOOD);
    nul[5] = '\0';
    assert_int_equal(narinfo_parse(nul, strlen(GOOD), &ni, &err), -1);
    rx_error_clear(&err);
    free(nul);
    assert_int_equal(narinfo_parse("", 0, &ni, &err), -1);
    rx_error_clear(&err);
    char *huge = xmalloc(NARINFO_MAX + 2);
    memset(huge, 'a', NARINFO_MAX + 1);
    huge[NARINFO_MAX] = '\n';
    assert_int_equal(narinfo_parse(huge, NARINFO_MAX + 1, &ni, &err), -1);
    assert_non_null(strstr(err->msg, "larger than"));
    rx_error_clear(&err);
    free(huge);
    /* Unknown fields are ignored; a missing References line means none. */
    char *t = variant("NarSize: 2384\n", "NarSize: 2384\nFoo: bar\nX-Whatever: 1\n");
    assert_int_equal(narinfo_parse(t, strlen(t), &ni, NULL), 0);
    narinfo_release(&ni);
    free(t);
    t = variant("References: ", "X-References: ");
    assert_int_equal(narinfo_parse(t, strlen(t), &ni, NULL), 0);
    assert_int_equal(ni.nrefs, 0);
    narinfo_release(&ni);
    free(t);
}

/* A minimal narinfo for `path` with `refs` and extra lines `extra`. */
static int parse_ca_case(const char *path, const char *refs, const char *extra,
                         struct narinfo *ni)
{
    _cleanup_free_ char *t = xasprintf(
        "StorePath: /nix/store/%s\nURL: nar/x.nar\nCompression: none\n"
        "NarHash: sha256:038z2wjqbv7m590kpphhqz42xk3hrnb2ly08ys1zg96611bic8ig\n"
        "NarSize: 120\nReferences: %s\n%s",
        path, refs, extra);
    struct rx_error *err = NULL;
    int r = narinfo_parse(t, strlen(t), ni, &err);
    if (r < 0)
        fail_msg("'%s': %s", extra, err->msg);
    return r;
}

static void ca_kept(const char *path, const char *refs, const char *ca)
{
    struct narinfo ni;
    _cleanup_free_ char *line = xasprintf("CA: %s\n", ca);
    parse_ca_case(path, refs, line, &ni);
    if (!ni.ca || strcmp(ni.ca, ca) != 0 || ni.dropped)
        fail_msg("CA '%s' of '%s' was dropped: %s", ca, path, ni.dropped ? ni.dropped : "?");
    narinfo_release(&ni);
}

static void ca_dropped(const char *path, const char *refs, const char *ca, const char *why)
{
    struct narinfo ni;
    _cleanup_free_ char *line = xasprintf("CA: %s\n", ca);
    parse_ca_case(path, refs, line, &ni);
    if (ni.ca)
        fail_msg("CA '%s' of '%s' was kept", ca, path);
    if (!ni.dropped || !strstr(ni.dropped, "'CA'") || !strstr(ni.dropped, why))
        fail_msg("CA '%s': note '%s' lacks '%s'", ca, ni.dropped ? ni.dropped : "", why);
    narinfo_release(&ni);
}

/* The paths and content addresses are what Nix 2.8 made (nix-store --add, --add-fixed). */
static void test_narinfo_checks_unsigned_ca_and_deriver(void **state)
{
    (void)state;
    const char *src = "xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f";
    const char *flat = "1p9q0bz6f22dyxh4lw8xs08p4201vyq4-f";
    const char *sha1 = "jq1d30ypzhhw6hhml61xjfndy39pcysv-f";
    const char *t = "bx0kc66p03368r5plk2sji4a39h20ymp-t.txt";
    const char *u = "0bvm8zgs1pfrbzy7j4zlh1m9y035qwbi-u.txt";
    ca_kept(src, "", "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw");
    ca_kept(flat, "", "fixed:sha256:00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq");
    ca_kept(sha1, "", "fixed:r:sha1:wz60bbf44cw7nswp1wv8vcsyfg155sqd");
    ca_kept(t, "", "text:sha256:193s6bfb4ncbr0d3rpb177cac43b2z2h3afxi7grcswgci346hwg");
    ca_kept(t, "", "text:sha256:8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4");
    ca_kept(u, t, "text:sha256:0pmqm56p0zmpbh8f0k9xbg037raikxicjq8sr5cr19amwhrgwbbb");

    ca_dropped(src, "", "not-a-content-address", "not a content address");
    ca_dropped(src, "", "", "not a content address");
    ca_dropped(src, "", "fixed:r:sha256:", "not a hash");
    ca_dropped(src, "", "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dq",
               "not a hash");
    ca_dropped(src, "", "fixed:r:blake3:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
               "unknown hash algorithm");
    ca_dropped(src, "", "fixed:q:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
               "unknown hash algorithm");
    ca_dropped(t, "", "text:sha1:wz60bbf44cw7nswp1wv8vcsyfg155sqd", "must use sha256");
    /* Well-formed, but for another path, or other references. */
    ca_dropped(flat, "", "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
               "does not match");
    ca_dropped(src, t, "fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw",
               "does not match");
    ca_dropped(u, "", "text:sha256:0pmqm56p0zmpbh8f0k9xbg037raikxicjq8sr5cr19amwhrgwbbb",
               "does not match");
    ca_dropped(t, t, "text:sha256:193s6bfb4ncbr0d3rpb177cac43b2z2h3afxi7grcswgci346hwg",
               "refer to itself");
    ca_dropped(flat, t, "fixed:sha256:00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq",
               "no references");

    /* Deriver: a bad one is dropped too, and the narinfo stays valid. */
    struct narinfo ni;
    parse_ca_case(src, "", "Deriver: /nix/store/ka0p4bka00wgpsw3l54avbiwsx996npx-f.drv\n", &ni);
    assert_false(ni.has_deriver);
    assert_non_null(strstr(ni.dropped, "'Deriver'"));
    narinfo_release(&ni);
    parse_ca_case(src, "", "Deriver: ka0p4bka00wgpsw3l54avbiwsx996npx-f\n", &ni);
    assert_false(ni.has_deriver);
    assert_non_null(strstr(ni.dropped, "not a derivation"));
    narinfo_release(&ni);
    parse_ca_case(src, "", "Deriver: ka0p4bka00wgpsw3l54avbiwsx996npx-f.drv\nCA: x\n", &ni);
    assert_true(ni.has_deriver);
    assert_string_equal(ni.deriver.name, "f.drv");
    assert_null(strstr(ni.dropped, "'Deriver'"));
    assert_non_null(strstr(ni.dropped, "'CA'"));
    narinfo_release(&ni);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_narinfo_corpus_round_trip_and_verify),
        cmocka_unit_test(test_narinfo_net_tools_fields),
        cmocka_unit_test(test_narinfo_trust_outcomes),
        cmocka_unit_test(test_narinfo_field_details),
        cmocka_unit_test(test_narinfo_rejects_bad_sizes),
        cmocka_unit_test(test_narinfo_spec_example),
        cmocka_unit_test(test_narinfo_rejects_malformed),
        cmocka_unit_test(test_narinfo_checks_unsigned_ca_and_deriver),
    };
    return cmocka_run_group_tests_name("narinfo", tests, NULL, NULL);
}
