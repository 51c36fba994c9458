#pragma once
/*
 * The store's private state and the helpers its files share: store-db.c
 * (open, schema), store-register.c (queries, registration), store-lock.c,
 * store-install.c (work dirs, install, leftovers), store-closure.c,
 * store-repair.c and store-verify.c.
 * Everyone else goes through store.h.
 */

/* Set for store_lib alone (src/meson.build), so no other module can reach in. */
#ifndef RX_STORE_INTERNAL
#error "store-internal.h is private to src/store; use store.h"
#endif

#include <stdbool.h>

#include <sqlite3.h>

#include "store.h"
#include "util-error.h"

struct store {
    char *root; /* owned */
    int root_fd;
    int store_fd;
    int tmp_parent_fd; /* R/nix/var/runix/tmp */
    int tmp_fd;        /* our own work dir in it (locked), or -1 */
    char *tmp_name;    /* owned */
    unsigned trash_seq;
    int gc_lock_fd; /* R/nix/var/runix/gc.lock, held shared (exclusive while collecting), or -1 */
    bool readonly; /* opened by store_open_readonly() or store_new_empty() */
    sqlite3 *db;
    sqlite3_stmt *q_id;     /* select id of a path */
    sqlite3_stmt *q_refs;   /* select the references of an id */
    sqlite3_stmt *ins_path; /* read-write stores only */
    sqlite3_stmt *ins_ref;  /* read-write stores only */
};

/* An error naming the database and SQLite's message; returns -1. */
int store_db_error(struct store *s, struct rx_error **err, const char *what);
/* Run SQL that returns no rows. */
int store_db_exec(struct store *s, const char *sql, struct rx_error **err);
int store_db_prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct rx_error **err);

/*
 * Lock the work dir `name` in parent (flock).  Returns its fd, -2 if another
 * process holds it and !wait, -1 with errno set on error.
 */
int store_lock_dir(int parent, const char *name, bool wait);

/*
 * flock(fd, op), retried on EINTR unless a signal asked runix to stop.
 * 0, or -1 with errno (EWOULDBLOCK with LOCK_NB when another holds it).
 */
int store_flock(int fd, int op);

/* Remove the work dirs of processes that died; errors are ignored. */
void store_tmp_clean_stale(struct store *s);
