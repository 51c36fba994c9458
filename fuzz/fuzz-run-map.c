/*
 * libFuzzer harness: the preload engine's view of files it does not control.
 * The input is written as a program in a small store tree, then prepared
 * for exec (shebang lines, ELF headers and program headers, interpreters in
 * the store) and used as a path to resolve in the mapped view.
 *
 * An input starting with the byte 0x01 does not give the file's bytes but
 * the ELF header fields, so that every offset and size the parser trusts
 * can be anything (see build_elf()).  A PT_INTERP that is read must then be
 * a NUL-terminated string found in the file.
 */
#include "config.h"

#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
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
    /* A loader a PT_INTERP may name (P "/ld"): exec preparation reads it for --argv0. */
    snprintf(l, sizeof l, "%s/ld", d);
    int fd = open(l, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0 || write(fd,
                        "\x7f"
                        "ELF --argv0",
                        12) != 12)
        abort();
    close(fd);
}

#define ELF_MODE 0x01
#define ELF_MAX 8192 /* -max_len in scripts/test.sh */
#define ELF_PHDRS 16

/* The next k (<= 8) bytes of the input as a little-endian number; 0 past its end. */
static uint64_t take(const uint8_t **d, size_t *n, unsigned k)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < k && *n; i++, (*d)++, (*n)--)
        v |= (uint64_t) * *d << (8 * i);
    return v;
}

/*
 * The file an ELF_MODE input stands for, into img (ELF_MAX bytes); its size.
 * After the mode byte:
 *   u8  flags: 1 = ELFCLASS32, 2 = e_phentsize from the input (else the right one),
 *       4 = e_phoff is 2^64 minus the number given
 *   u64 e_phoff, u16 e_phnum, u16 e_phentsize
 *   per program header (at most 16, and no more than e_phnum):
 *       u8 kind: 1 = PT_INTERP (else u32 p_type follows), 2 = p_offset and 4 = p_filesz
 *          are 2^64 minus the number given (so that small inputs reach the wrap)
 *       u64 p_offset, u64 p_filesz
 *   the rest: the file's bytes after the headers.
 * The header carries the fields as given (truncated to 32 bits for
 * ELFCLASS32); the program headers are written at e_phoff when they fit.
 */
static size_t build_elf(const uint8_t *d, size_t n, unsigned char *img)
{
    memset(img, 0, ELF_MAX);
    unsigned flags = (unsigned)take(&d, &n, 1);
    bool is32 = flags & 1;
    uint64_t phoff = take(&d, &n, 8);
    if (flags & 4)
        phoff = 0 - phoff;
    unsigned phnum = (unsigned)take(&d, &n, 2);
    unsigned phentsize = (unsigned)take(&d, &n, 2);
    size_t ehsize = is32 ? sizeof(Elf32_Ehdr) : sizeof(Elf64_Ehdr);
    size_t phsize = is32 ? sizeof(Elf32_Phdr) : sizeof(Elf64_Phdr);
    if (!(flags & 2))
        phentsize = (unsigned)phsize;
    unsigned char table[ELF_PHDRS * sizeof(Elf64_Phdr)];
    unsigned k = 0;
    for (; k < ELF_PHDRS && k < phnum && n; k++) {
        unsigned kind = (unsigned)take(&d, &n, 1);
        uint32_t type = kind & 1 ? PT_INTERP : (uint32_t)take(&d, &n, 4);
        uint64_t off = take(&d, &n, 8), size = take(&d, &n, 8);
        if (kind & 2)
            off = 0 - off;
        if (kind & 4)
            size = 0 - size;
        if (is32) {
            Elf32_Phdr ph = {
                .p_type = type, .p_offset = (Elf32_Off)off, .p_filesz = (Elf32_Word)size};
            memcpy(table + k * phsize, &ph, phsize);
        } else {
            Elf64_Phdr ph = {.p_type = type, .p_offset = off, .p_filesz = size};
            memcpy(table + k * phsize, &ph, phsize);
        }
    }
    /* The header of either class, with phoff cut to what it holds. */
#define PUT_EHDR(type, class)                                                                      \
    do {                                                                                           \
        type eh = {.e_type = ET_EXEC,                                                              \
                   .e_phoff = (__typeof__(eh.e_phoff))phoff,                                       \
                   .e_phnum = (__typeof__(eh.e_phnum))phnum,                                       \
                   .e_phentsize = (__typeof__(eh.e_phentsize))phentsize,                           \
                   .e_ehsize = (__typeof__(eh.e_ehsize))ehsize};                                   \
        memcpy(eh.e_ident, ELFMAG, SELFMAG);                                                       \
        eh.e_ident[EI_CLASS] = (class);                                                            \
        memcpy(img, &eh, sizeof eh);                                                               \
        phoff = eh.e_phoff;                                                                        \
    } while (0)
    if (is32)
        PUT_EHDR(Elf32_Ehdr, ELFCLASS32);
    else
        PUT_EHDR(Elf64_Ehdr, ELFCLASS64);
#undef PUT_EHDR
    size_t len = ehsize, tlen = k * phsize;
    if (phoff >= ehsize && phoff <= ELF_MAX && tlen <= ELF_MAX - phoff) {
        memcpy(img + phoff, table, tlen);
        len = phoff + tlen;
    }
    if (n > ELF_MAX - len)
        n = ELF_MAX - len;
    memcpy(img + len, d, n);
    return len + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!map.store_len)
        setup();
    static unsigned char img[ELF_MAX];
    const unsigned char *file = data;
    size_t flen = size;
    bool elf_mode = size > 0 && data[0] == ELF_MODE;
    if (elf_mode) {
        flen = build_elf(data + 1, size - 1, img);
        file = img;
    }
    int fd = open(prog, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (fd < 0)
        abort();
    if (write(fd, file, flen) != (ssize_t)flen)
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
    /* An interpreter that is read comes from the file, with its NUL. */
    char interp[PATH_MAX];
    if (rx_elf_interp(prog, interp, sizeof interp) == 0 && interp[0] &&
        !memmem(file, flen, interp, strlen(interp) + 1))
        abort();

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
