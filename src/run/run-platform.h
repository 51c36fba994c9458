/* The platform layer: the few operating-system facts the engines need that POSIX does not give. */
#pragma once
/*
 * One implementation per system, chosen by src/run/meson.build:
 * run-platform-linux.c reads /proc and ELF headers.  A port adds its own
 * run-platform-<system>.c (docs/macos.md) instead of #ifdefs here.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

/*
 * The absolute path of the running executable into out.  Returns 0, or -1
 * with the reason in err.
 */
int platform_self_exe(char *out, size_t outsz, struct rx_error **err);

/*
 * An id that changes with every boot of the machine, into out (NUL
 * terminated).  false when the system has none: then nothing is remembered
 * across runs.
 */
bool platform_boot_id(char *out, size_t outsz);

/*
 * Is the program at real (a host path) statically linked, so that it makes
 * no calls into the C library an interposing engine could see?  0 no, 1
 * yes, -1 unreadable or not a program of this system's format.
 */
int platform_is_static_program(const char *real);
