/* The next definition of a libc function, from the loaded objects' dynamic symbol tables. */
#include "config.h"

#include "run-next.h"

#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "banned.h"

struct search {
    const void *self;
    const char *name;
    bool past_self;
    void *found;
};

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static uint32_t sysv_hash(const char *s)
{
    uint32_t h = 0;
    for (; *s; s++) {
        h = (h << 4) + (unsigned char)*s;
        uint32_t g = h & 0xf0000000u;
        if (g)
            h ^= g >> 24;
        h &= ~g;
    }
    return h;
}

/* The dynamic section's addresses: relocated in place by the loader on most systems, not on all. */
static uintptr_t dyn_addr(uintptr_t base, uintptr_t p)
{
    return p < base ? p + base : p;
}

struct table {
    uintptr_t base;
    const ElfW(Sym) * sym;
    const char *str;
    const ElfW(Half) * versym;
};

/* Symbol idx if it defines name as a function in its default version, else NULL. */
static void *match(const struct table *t, uint32_t idx, const char *name, bool *stop)
{
    const ElfW(Sym) *s = &t->sym[idx];
    if (s->st_shndx == SHN_UNDEF || strcmp(t->str + s->st_name, name) != 0)
        return NULL;
    if (t->versym && (t->versym[idx] & 0x8000))
        return NULL; /* an old version (name@V, not name@@V): dlsym skips it */
    if (ELF64_ST_TYPE(s->st_info) != STT_FUNC) {
        *stop = true; /* an IFUNC or something odd: dlsym knows what to do */
        return NULL;
    }
    return (void *)(t->base + s->st_value);
}

static void *lookup(const struct dl_phdr_info *info, const char *name, bool *stop)
{
    const ElfW(Dyn) *dyn = NULL;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
    if (!dyn)
        return NULL;
    struct table t = {.base = info->dlpi_addr};
    const uint32_t *gnu = NULL, *sysv = NULL;
    for (; dyn->d_tag != DT_NULL; dyn++) {
        uintptr_t p = dyn_addr(t.base, dyn->d_un.d_ptr);
        switch (dyn->d_tag) {
        case DT_SYMTAB:
            t.sym = (const ElfW(Sym) *)p;
            break;
        case DT_STRTAB:
            t.str = (const char *)p;
            break;
        case DT_VERSYM:
            t.versym = (const ElfW(Half) *)p;
            break;
        case DT_GNU_HASH:
            gnu = (const uint32_t *)p;
            break;
        case DT_HASH:
            sysv = (const uint32_t *)p;
            break;
        }
    }
    if (!t.sym || !t.str)
        return NULL;
    void *r;
    if (gnu) {
        uint32_t nbuckets = gnu[0], symoffset = gnu[1], bloom_size = gnu[2];
        if (nbuckets == 0)
            return NULL;
        const uint32_t *buckets = (const uint32_t *)((const ElfW(Addr) *)&gnu[4] + bloom_size);
        const uint32_t *chain = buckets + nbuckets;
        uint32_t h = gnu_hash(name);
        uint32_t idx = buckets[h % nbuckets];
        if (idx < symoffset)
            return NULL;
        for (;; idx++) {
            uint32_t ch = chain[idx - symoffset];
            if ((ch | 1) == (h | 1) && (r = match(&t, idx, name, stop)))
                return r;
            if (*stop || (ch & 1))
                return NULL;
        }
    }
    if (sysv) {
        uint32_t nbucket = sysv[0];
        if (nbucket == 0)
            return NULL;
        const uint32_t *bucket = &sysv[2], *chain = bucket + nbucket;
        for (uint32_t idx = bucket[sysv_hash(name) % nbucket]; idx != STN_UNDEF; idx = chain[idx]) {
            if ((r = match(&t, idx, name, stop)))
                return r;
            if (*stop)
                return NULL;
        }
        return NULL;
    }
    *stop = true; /* no table this reads */
    return NULL;
}

static bool contains(const struct dl_phdr_info *info, const void *addr)
{
    uintptr_t a = (uintptr_t)addr;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a >= start && a - start < ph->p_memsz)
            return true;
    }
    return false;
}

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct search *s = data;
    if (!s->past_self) {
        s->past_self = contains(info, s->self);
        return 0;
    }
    bool stop = false;
    s->found = lookup(info, s->name, &stop);
    return s->found || stop;
}

void *rx_next_symbol(const void *self, const char *name)
{
    struct search s = {self, name, false, NULL};
    dl_iterate_phdr(visit, &s);
    return s.found;
}
