/* runix boot (Linux): a closure's init as pid 1 of new namespaces, the store shared read-only. */
#pragma once
/*
 * Process layout:
 *
 *   runix (the caller)   stays outside: writes the id maps, relays between
 *                        its terminal and the console's pty, turns SIGTERM
 *                        and SIGINT into SIGRTMIN+3 for pid 1 (SIGKILL after
 *                        the stop timeout), and reports how pid 1 ended
 *     pid 1              builds the root, then execs the init; every
 *                        process of the namespace dies with it, and it dies
 *                        with runix (PR_SET_PDEATHSIG)
 *
 * The root is a tmpfs that exists only in the new mount namespace: nothing
 * is created on the host.  docs/boot.md states what it holds.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "util-error.h"

enum boot_map {
    BOOT_MAP_AUTO,   /* subid when the tools and ranges are there, else single */
    BOOT_MAP_SINGLE, /* 0 -> the user, nothing else */
    BOOT_MAP_SUBID,  /* 0 -> the user, 1..65535 -> the subordinate range (newuidmap) */
};

/* Ids mapped besides 0 with BOOT_MAP_SUBID. */
#define BOOT_SUBID_COUNT 65535UL

struct boot_config {
    const char *store_dir; /* the runix store on the host */
    const char *init;      /* the init's path as pid 1 sees it (below /nix/store) */
    char *const *argv;     /* its argv, NULL-terminated; argv[0] is init */
    const char *hostname;
    bool host_network;
    enum boot_map map;     /* SINGLE or SUBID, as boot_map_resolve() chose */
    unsigned long subuid, subgid; /* the ranges' first ids, for SUBID */
    unsigned stop_timeout;        /* seconds from SIGRTMIN+3 to SIGKILL */
};

/*
 * The first id of a range of at least BOOT_SUBID_COUNT ids that file (in
 * /etc/subuid's format: NAME-or-ID:START:COUNT per line) gives to the user
 * named user (or NULL) with id id, into *start.  1 if there is one, 0 if
 * not (the file missing too).
 */
int boot_subid_lookup(const char *file, const char *user, unsigned long id, unsigned long *start);

/*
 * Choose the id mapping: *map is AUTO, SINGLE or SUBID on the way in, SINGLE
 * or SUBID on the way out (with c->subuid and c->subgid set).  For AUTO
 * without newuidmap/newgidmap or a range, *why says what is missing.
 * Returns 0, or -1 with err when SUBID was asked for and cannot be had.
 */
int boot_map_resolve(struct boot_config *c, enum boot_map *map, char *why, size_t whyn,
                     struct rx_error **err);

/*
 * May the user write the cgroup runix runs in (in the cgroup2 hierarchy)?
 * It is the root of the booted system's /sys/fs/cgroup, and systemd needs
 * to create cgroups below it.  path gets the cgroup's directory (or what is
 * missing).
 */
bool boot_cgroup_writable(char *path, size_t n);

/*
 * Boot: returns pid 1's exit status (128+N when a signal ended it) once it
 * has ended and every process of the namespace with it, or -1 with the
 * reason in err when the namespaces or the root could not be set up (then
 * no init ran and nothing was left behind).  The process must be
 * single-threaded.
 */
int boot_run(const struct boot_config *c, struct rx_error **err);
