/*
 * libFuzzer harness: the preload engine's view of files it does not control.
 * The input is written as a program in a small store tree, then prepared
 * for exec (shebang lines, ELF headers and program headers, interpreters in
 * the store) and used as a path to resolve in the mapped view.
 */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run-exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define P "/nix/store/ffffffffffffffffffffffffffffffff-fuzz"

static struct rx_map map;
static char prog[PATH_MAX];

static void setup(void)
{
    char tmpl[] = "/tmp/runix-fuzz-XXXXXX";
    if (!mkdtemp(tmpl))
        abort();
    char store[PATH_MAX];
    snprintf(store, sizeof store, "%s/nix/store", tmpl);
    if (rx_map_init(&map, store, NULL, NULL, NULL) < 0)
        abort();
    char d[PATH_MAX];
    snprintf(d, sizeof d, "%s/nix", tmpl);
    mkdir(d, 0755);
    mkdir(map.store, 0755);
    snprintf(d, sizeof d, "%s%s", map.store, &P[RX_STORE_LEN]);
    mkdir(d, 0755);
    snprintf(prog, sizeof prog, "%s/prog", d);
    /* Links the inputs may name: a loop, a link out of the store, one to the program. */
    char l[PATH_MAX];
    snprintf(l, sizeof l, "%s/loop", d);
    if (symlink(P "/loop", l) < 0)
        abort();
    snprintf(l, sizeof l, "%s/etc", d);
    if (symlink("/etc", l) < 0)
        abort();
    snprintf(l, sizeof l, "%s/link", d);
    if (symlink("prog", l) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!map.store_len)
        setup();
    int fd = open(prog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0)
        abort();
    if (write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);

    char *const argv[] = {(char *)"prog", (char *)"a", NULL};
    char *const envp[] = {(char *)"PATH=/bin", (char *)"LD_LIBRARY_PATH=/x", NULL};
    struct rx_exec x;
    if (rx_exec_prepare(&map, P "/link", argv, envp, &x) == 0) {
        if (!x.file || !x.argv || !x.argv[0])
            abort();
        rx_exec_free(&x);
    }
    char interp[PATH_MAX];
    rx_elf_interp(prog, interp, sizeof interp);

    /* The input as a path, in and below the store. */
    char path[PATH_MAX], out[PATH_MAX];
    size_t n = size < 512 ? size : 512;
    memcpy(path, P "/", sizeof P);
    memcpy(path + sizeof P, data, n);
    path[sizeof P + n] = '\0';
    {
        if (rx_resolve(&map, path, true, out, sizeof out) == 0 && strlen(out) >= sizeof out)
            abort();
        rx_resolve(&map, path + sizeof P, false, out, sizeof out);
    }
    return 0;
}
