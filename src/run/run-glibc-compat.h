/*
 * Included first into every file of the preload library (src/run/meson.build):
 * it is loaded into programs of any glibc, nixpkgs' and the host's, so it
 * asks for no symbol version newer than the architecture's first (x86_64
 * GLIBC_2.2.5, aarch64 GLIBC_2.17), but for getauxval (glibc 2.16, 2012),
 * which the AT_SECURE check needs (preload.c).  memcpy got a new version in
 * glibc 2.14 (x86_64) that only drops the overlap tolerance the old one
 * had; the old one does all we need.  The release test checks the versions
 * with objdump -T.
 */
#pragma once

#if defined(__x86_64__)
__asm__(".symver memcpy,memcpy@GLIBC_2.2.5");
#endif
