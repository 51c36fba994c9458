/* runix narinfo: verify, fingerprint and sign narinfo files. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli-settings.h"
#include "cli.h"
#include "crypto-sig.h"
#include "narinfo.h"
#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"
#include "banned.h"

static const char narinfo_intro[] =
    "usage: runix narinfo COMMAND [ARGS...]\n"
    "\n"
    "Check narinfo files, the per-path metadata of Nix binary caches.\n";

static const char narinfo_examples[] =
    "\n"
    "Examples:\n"
    "  curl -s https://cache.nixos.org/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9.narinfo | runix narinfo verify -\n"
    "  runix help narinfo sign\n";

static const char verify_usage[] =
    "usage: runix narinfo verify [--trusted-key NAME:KEY]... FILE\n"
    "\n"
    "Parse the narinfo in FILE ('-' for standard input) and check that at least\n"
    "one of its signatures is by a trusted key and verifies.  Prints 'ok' and\n"
    "exits 0 if so; otherwise prints the reason and exits 1.\n"
    "\n"
    "The trusted keys are those 'runix fetch' trusts: $RUNIX_TRUSTED_KEYS, else\n"
    "the config file's trusted-public-keys and extra-trusted-public-keys, else\n"
    "the cache.nixos.org key.\n"
    "\n"
    "  -k, --trusted-key NAME:KEY   trust this public key too (repeatable)\n"
    "  -h, --help                   show this help\n"
    "\n"
    "Examples:\n"
    "  curl -s https://cache.nixos.org/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9.narinfo | runix narinfo verify -\n"
    "  runix narinfo verify -k \"$(cat key.pub)\" signed.narinfo\n";

static const char fingerprint_usage[] =
    "usage: runix narinfo fingerprint FILE\n"
    "\n"
    "Print the exact string that the signatures of the narinfo in FILE ('-' for\n"
    "standard input) sign.\n"
    "\n"
    "Examples:\n"
    "  curl -s https://cache.nixos.org/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9.narinfo | runix narinfo fingerprint -\n";

static const char sign_usage[] =
    "usage: runix narinfo sign --key-file FILE NARINFO\n"
    "\n"
    "Sign the narinfo in NARINFO ('-' for standard input) with the secret key in\n"
    "FILE (as written by nix-store --generate-binary-cache-key) and print it with\n"
    "the new Sig line; an older signature by the same key name is replaced.\n"
    "\n"
    "  -k, --key-file FILE   the secret key\n"
    "  -h, --help            show this help\n"
    "\n"
    "Examples:\n"
    "  nix-store --generate-binary-cache-key my-cache-1 key.sec key.pub\n"
    "  curl -s https://cache.nixos.org/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9.narinfo > hello.narinfo\n"
    "  runix narinfo sign -k key.sec hello.narinfo > signed.narinfo\n";

static int load(const char *file, struct narinfo *ni, struct rx_error **err)
{
    struct rx_buf b = RX_BUF_INIT(NARINFO_MAX);
    int r = strcmp(file, "-") == 0 ? read_fd(STDIN_FILENO, "standard input", &b, err)
                                   : read_file(file, &b, err);
    if (r == 0 && narinfo_parse(b.data ? b.data : "", b.len, ni, err) < 0)
        r = rx_error_wrap(err, "'%s'", file);
    rx_buf_release(&b);
    return r;
}

static int cmd_narinfo_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"trusted-key", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct cli_settings s = {0};
    struct rx_error *err = NULL;
    int c, ret;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, ":k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            cli_settings_option(&s, OPT_TRUSTED_KEY, optarg);
            break;
        case 'h':
            cli_settings_release(&s);
            return cli_print_help(verify_usage);
        default:
            cli_settings_release(&s);
            return cli_option_error("narinfo verify", c, argv, opts);
        }
    }
    if (argc - optind != 1) {
        cli_settings_release(&s);
        return cli_usage_error("narinfo verify", "expected exactly one FILE");
    }
    /* The keys 'runix fetch' trusts, with -k on top. */
    if (cli_settings_finish_keys(&s, &err) < 0) {
        ret = err && err->code == RX_EUSAGE ? EXIT_USAGE : EXIT_FAIL;
        cli_cmd_error("narinfo verify", "%s", err ? err->msg : "unknown error");
        rx_error_free(err);
        cli_settings_release(&s);
        return ret;
    }

    struct narinfo ni;
    ret = load(argv[optind], &ni, &err);
    if (ret == 0) {
        ret = narinfo_verify(&ni, &s.keys, &err);
        narinfo_release(&ni);
    }
    cli_settings_release(&s);
    if (ret < 0)
        return cli_fail(err);
    printf("ok\n");
    return EXIT_OK;
}

static int cmd_narinfo_fingerprint(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return cli_print_help(fingerprint_usage);
    if (argc != 2)
        return cli_usage_error("narinfo fingerprint", "expected exactly one FILE");
    struct rx_error *err = NULL;
    struct narinfo ni;
    if (load(argv[1], &ni, &err) < 0)
        return cli_fail(err);
    char *fp = narinfo_fingerprint(&ni);
    printf("%s\n", fp);
    free(fp);
    narinfo_release(&ni);
    return EXIT_OK;
}

static int cmd_narinfo_sign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key-file", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key_file = NULL;
    int c;
    optind = 0; /* 0, not 1: glibc then reads this optstring's ordering ("+", "-") afresh */
    while ((c = getopt_long(argc, argv, ":k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key_file = optarg;
            break;
        case 'h':
            return cli_print_help(sign_usage);
        default:
            return cli_option_error("narinfo sign", c, argv, opts);
        }
    }
    if (!key_file)
        return cli_usage_error("narinfo sign", "--key-file is required");
    if (argc - optind != 1)
        return cli_usage_error("narinfo sign", "expected exactly one NARINFO");

    struct rx_error *err = NULL;
    struct rx_buf kb = RX_BUF_INIT(4096);
    struct secret_key sk;
    if (read_file(key_file, &kb, &err) < 0)
        return cli_fail(err);
    size_t klen = kb.len;
    while (klen > 0 && (kb.data[klen - 1] == '\n' || kb.data[klen - 1] == '\r'))
        klen--;
    int r = secret_key_parse(kb.data ? kb.data : "", klen, &sk, &err);
    /* The .pub half of nix-store --generate-binary-cache-key's pair, by mistake. */
    struct public_key pk;
    bool is_public = r < 0 && public_key_parse(kb.data ? kb.data : "", klen, &pk, NULL) == 0;
    sodium_memzero(kb.data, kb.len);
    rx_buf_release(&kb);
    if (is_public) {
        rx_error_free(err);
        cli_cmd_error("narinfo sign", "'%s' is a public key; sign with the secret key file",
                      key_file);
        return EXIT_FAIL;
    }
    if (r < 0) {
        rx_error_wrap(&err, "'%s'", key_file);
        return cli_fail(err);
    }

    struct narinfo ni;
    if (load(argv[optind], &ni, &err) < 0) {
        sodium_memzero(&sk, sizeof sk);
        return cli_fail(err);
    }
    _cleanup_free_ char *fp = narinfo_fingerprint(&ni);
    struct signature sig;
    signature_sign(&sk, fp, strlen(fp), &sig);
    sodium_memzero(&sk, sizeof sk);
    char sigstr[SIG_STR_MAX];
    signature_format(&sig, sigstr);

    /* Keep other keys' signatures; replace this key's. */
    size_t namelen = strlen(sig.name), k = 0;
    for (size_t i = 0; i < ni.nsigs; i++) {
        if (strncmp(ni.sigs[i], sig.name, namelen) == 0 && ni.sigs[i][namelen] == ':')
            free(ni.sigs[i]);
        else
            ni.sigs[k++] = ni.sigs[i];
    }
    ni.sigs = xrealloc(ni.sigs, (k + 1) * sizeof *ni.sigs);
    ni.sigs[k++] = xstrdup(sigstr);
    ni.nsigs = k;
    _cleanup_free_ char *text = narinfo_format(&ni);
    narinfo_release(&ni);
    fputs(text, stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static const struct cli_command narinfo_commands[] = {
    {"verify", cmd_narinfo_verify, "check a narinfo's signatures against trusted keys"},
    {"fingerprint", cmd_narinfo_fingerprint, "print the string a narinfo's signatures sign"},
    {"sign", cmd_narinfo_sign, "add a signature to a narinfo with a secret key"},
};

int cmd_narinfo(int argc, char **argv)
{
    return cli_dispatch("runix narinfo", narinfo_intro, narinfo_examples, narinfo_commands,
                        ARRAY_SIZE(narinfo_commands), argc, argv);
}
