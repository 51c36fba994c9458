/* The next definition of a libc function after the preload library's own, without libdl. */
#pragma once
/*
 * What dlsym(RTLD_NEXT, name) gives, found by walking the loaded objects
 * (dl_iterate_phdr, in libc since glibc 2.2.5) and their dynamic symbol
 * tables.  dlsym itself was in libdl.so.2 before glibc 2.34, and a library
 * that needs it makes the loader open, map and relocate libdl in every
 * program the preload engine starts: a cost at each exec that this avoids.
 * Linked into librunix-preload.so (and runix, for the tests).
 */

/*
 * The first definition of the function name (its default version, as dlsym
 * picks it) in an object loaded after the one containing self, or NULL:
 * none, or one this does not read (an IFUNC, an object without a symbol
 * hash table), when the caller should ask dlsym.
 */
void *rx_next_symbol(const void *self, const char *name);
