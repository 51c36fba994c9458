/* Opening a store: its layout, its database and Nix's schema (see store.h). */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store-index.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define SCHEMA_VERSION "10"
/* Nix waits an hour for a busy database; so do we. */
#define BUSY_TIMEOUT_MS (60 * 60 * 1000)

/* Nix 2.8's schema.sql, byte for byte in meaning (nix-formats.md 7.2). */
static const char schema_sql[] =
    "create table if not exists ValidPaths (\n"
    "    id               integer primary key autoincrement not null,\n"
    "    path             text unique not null,\n"
    "    hash             text not null,\n"
    "    registrationTime integer not null,\n"
    "    deriver          text,\n"
    "    narSize          integer,\n"
    "    ultimate         integer,\n"
    "    sigs             text,\n"
    "    ca               text\n"
    ");\n"
    "create table if not exists Refs (\n"
    "    referrer  integer not null,\n"
    "    reference integer not null,\n"
    "    primary key (referrer, reference),\n"
    "    foreign key (referrer) references ValidPaths(id) on delete cascade,\n"
    "    foreign key (reference) references ValidPaths(id) on delete restrict\n"
    ");\n"
    "create index if not exists IndexReferrer on Refs(referrer);\n"
    "create index if not exists IndexReference on Refs(reference);\n"
    "create trigger if not exists DeleteSelfRefs before delete on ValidPaths\n"
    "  begin\n"
    "    delete from Refs where referrer = old.id and reference = old.id;\n"
    "  end;\n"
    "create table if not exists DerivationOutputs (\n"
    "    drv  integer not null,\n"
    "    id   text not null,\n"
    "    path text not null,\n"
    "    primary key (drv, id),\n"
    "    foreign key (drv) references ValidPaths(id) on delete cascade\n"
    ");\n"
    "create index if not exists IndexDerivationOutputs on DerivationOutputs(path);\n";

int store_db_error(struct store *s, struct rx_error **err, const char *what)
{
    return rx_error_set(err, RX_EFORMAT, "store database %s/nix/var/nix/db/db.sqlite: %s: %s",
                        s->root, what, sqlite3_errmsg(s->db));
}

int store_db_exec(struct store *s, const char *sql, struct rx_error **err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        rx_error_set(err, RX_EFORMAT, "store database %s/nix/var/nix/db/db.sqlite: %s", s->root,
                     msg ? msg : sqlite3_errmsg(s->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_db_prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct rx_error **err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_db_error(s, err, "preparing a statement");
    return 0;
}

/* "belongs to uid U, mode M", for messages about rel under the root. */
static void describe(int root_fd, const char *rel, char *out, size_t n)
{
    struct stat st;
    if (fstatat(root_fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
        snprintf(out, n, "belongs to uid %u, mode %04o", (unsigned)st.st_uid,
                 (unsigned)(st.st_mode & 07777));
    else
        snprintf(out, n, "cannot be made");
}

/* The statements of the queries, which read-only stores have too. */
static int prepare_queries(struct store *s, struct rx_error **err)
{
    if (store_db_prepare(s, "select id from ValidPaths where path = ?", &s->q_id, err) < 0)
        return -1;
    return store_db_prepare(s,
                            "select p.path from Refs r join ValidPaths p on p.id = r.reference "
                            "where r.referrer = ?",
                            &s->q_refs, err);
}

/* Read db/schema: sets *fresh when it is missing; refuses another version. */
static int read_schema(struct store *s, int dbdir, bool *fresh, struct rx_error **err)
{
    *fresh = false;
    int fd = openat(dbdir, "schema", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno != ENOENT)
            return rx_error_errno(err, "cannot open '%s/nix/var/nix/db/schema'", s->root);
        *fresh = true;
        return 0;
    }
    if (store_check_fd(fd, s->root, "nix/var/nix/db/schema", err) < 0) {
        close(fd);
        return -1;
    }
    struct rx_buf b = RX_BUF_INIT(64);
    int r = read_fd(fd, "schema", &b, err);
    close(fd);
    if (r < 0)
        return rx_error_wrap(err, "store '%s'", s->root);
    if (b.len != 2 || memcmp(b.data, SCHEMA_VERSION, 2) != 0)
        r = rx_error_set(err, RX_EUNSUPPORTED,
                         "store '%s' has database schema version '%.*s', but runix only "
                         "supports version " SCHEMA_VERSION,
                         s->root, (int)(b.len > 16 ? 16 : b.len), b.data ? b.data : "");
    rx_buf_release(&b);
    return r;
}

/*
 * Create the database of a new store.  Processes that open the same new
 * store at once take turns (switching to WAL needs the database to
 * themselves), and only the first one creates it.
 */
static int create_db(struct store *s, int dbdir, struct rx_error **err)
{
    _cleanup_close_ int l = openat(s->root_fd, "nix/var/runix/init.lock",
                                   O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (l < 0)
        return rx_error_errno(err, "cannot open '%s/nix/var/runix/init.lock'", s->root);
    int r;
    while ((r = flock(l, LOCK_EX)) < 0 && errno == EINTR)
        ;
    if (r < 0)
        return rx_error_errno(err, "cannot lock '%s/nix/var/runix/init.lock'", s->root);
    bool fresh;
    if (read_schema(s, dbdir, &fresh, err) < 0)
        return -1;
    if (!fresh)
        return 0; /* another process made it while we waited */
    if (store_db_exec(s, "pragma journal_mode = wal;", err) < 0 ||
        store_db_exec(s, "begin immediate;", err) < 0)
        return -1;
    if (store_db_exec(s, schema_sql, err) < 0 || store_db_exec(s, "commit;", err) < 0) {
        sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
        return -1;
    }
    if (write_file_atomic_at(dbdir, "schema", SCHEMA_VERSION, true, err) < 0)
        return rx_error_wrap(err, "store '%s'", s->root);
    return 0;
}

/* WAL as Nix uses it; switched only when needed, since switching needs the db alone. */
static int ensure_wal(struct store *s, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "pragma journal_mode", &st, err) < 0)
        return -1;
    bool wal = sqlite3_step(st) == SQLITE_ROW &&
               sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return wal ? 0 : store_db_exec(s, "pragma journal_mode = wal;", err);
}

/* Hand e over to err (or free it). */
static void pass_error(struct rx_error *e, struct rx_error **err)
{
    if (err) {
        rx_error_clear(err);
        *err = e;
    } else {
        rx_error_free(e);
    }
}

/* The error for a store that cannot be written where it must be; returns -1. */
static int not_writable(struct store *s, const char *rel, int e, struct rx_error **err)
{
    if (e == EROFS)
        return rx_error_set(err, EROFS,
                            "the store '%s' is on a read-only file system ('%s/%s'); use "
                            "--store DIR for a store of your own",
                            s->root, s->root, rel);
    /* The nearest directory that exists is the one that refused. */
    char where[PATH_MAX], what[64];
    snprintf(where, sizeof where, "%s", rel);
    struct stat st;
    while (fstatat(s->root_fd, where, &st, AT_SYMLINK_NOFOLLOW) < 0 && strcmp(where, ".") != 0) {
        char *slash = strrchr(where, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(where, sizeof where, ".");
    }
    describe(s->root_fd, where, what, sizeof what);
    bool top = strcmp(where, ".") == 0;
    return rx_error_set(err, EACCES,
                        "the store '%s' is not writable by you (uid %u): '%s%s%s' %s; use "
                        "--store DIR for a store of your own",
                        s->root, (unsigned)geteuid(), s->root, top ? "" : "/", top ? "" : where,
                        what);
}

/* 0 if this process may write in the directory open as fd (rel under the root). */
static int check_writable(struct store *s, int fd, const char *rel, struct rx_error **err)
{
    if (faccessat(fd, ".", W_OK, AT_EACCESS) == 0)
        return 0;
    if (errno != EACCES && errno != EROFS && errno != EPERM)
        return rx_error_errno(err, "cannot check '%s/%s'", s->root, rel);
    return not_writable(s, rel, errno == EROFS ? EROFS : EACCES, err);
}

/* The database file, if there is one yet, is checked like the directories. */
static int check_db_file(struct store *s, int dbdir, struct rx_error **err)
{
    _cleanup_close_ int fd = openat(dbdir, "db.sqlite", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0
                               : rx_error_errno(err, "cannot open '%s/nix/var/nix/db/db.sqlite'",
                                                s->root);
    return store_check_fd(fd, s->root, "nix/var/nix/db/db.sqlite", err);
}

static int open_db(struct store *s, struct rx_error **err)
{
    _cleanup_close_ int dbdir = store_dir_open(s->root_fd, s->root, "nix/var/nix/db", true, err);
    if (dbdir < 0 || check_db_file(s, dbdir, err) < 0 ||
        check_writable(s, dbdir, "nix/var/nix/db", err) < 0)
        return -1;

    /* The schema file decides, as in Nix: missing means a new store. */
    bool fresh;
    if (read_schema(s, dbdir, &fresh, err) < 0)
        return -1;

    _cleanup_free_ char *path = xasprintf("%s/nix/var/nix/db/db.sqlite", s->root);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rx_error_set(err, RX_EFORMAT, "cannot open store database '%s': %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return -1;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (store_db_exec(s, "pragma foreign_keys = 1; pragma synchronous = normal;", err) < 0)
        return -1;
    if (fresh ? create_db(s, dbdir, err) < 0 : ensure_wal(s, err) < 0)
        return -1;

    sqlite3_stmt *st;
    if (store_db_prepare(s,
                         "select count(*) from sqlite_master where type = 'table' and "
                         "name in ('ValidPaths', 'Refs')",
                         &st, err) < 0)
        return -1;
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (n != 2)
        return rx_error_set(err, RX_EFORMAT,
                            "store database '%s' lacks the ValidPaths and Refs tables; "
                            "it is not a Nix store database",
                            path);

    if (prepare_queries(s, err) < 0 ||
        store_db_prepare(s,
                         "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, "
                         "ultimate, sigs, ca) values (?, ?, ?, ?, ?, null, ?, ?)",
                         &s->ins_path, err) < 0 ||
        store_db_prepare(s,
                         "insert or replace into Refs (referrer, reference) values (?, "
                         "(select id from ValidPaths where path = ?))",
                         &s->ins_ref, err) < 0)
        return -1;
    return 0;
}

/* store_dir_open(create), where a directory that cannot be made means a store not ours. */
static int open_dir_rw(struct store *s, const char *rel, struct rx_error **err)
{
    struct rx_error *e = NULL;
    int fd = store_dir_open(s->root_fd, s->root, rel, true, &e);
    if (fd >= 0)
        return fd;
    if (e->code == EACCES || e->code == EROFS) {
        int code = e->code;
        rx_error_free(e);
        return not_writable(s, rel, code, err);
    }
    pass_error(e, err);
    return -1;
}

/*
 * Hold the gc lock shared for as long as the store is open (store.h): the
 * collector takes it exclusively, so nothing this process writes into the
 * store is collected before it is rooted, and no path is deleted under it.
 */
static int lock_gc_shared(struct store *s, struct rx_error **err)
{
    s->gc_lock_fd =
        openat(s->root_fd, STORE_GC_LOCK, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (s->gc_lock_fd < 0)
        return rx_error_errno(err, "cannot open '%s/" STORE_GC_LOCK "'", s->root);
    if (store_flock(s->gc_lock_fd, LOCK_SH | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK) {
        fprintf(stderr, "runix: waiting for garbage collection to finish in %s\n", s->root);
        if (store_flock(s->gc_lock_fd, LOCK_SH) == 0)
            return 0;
    }
    return rx_error_errno(err, "cannot lock '%s/" STORE_GC_LOCK "'", s->root);
}

int store_open(const char *root, struct store **out, struct rx_error **err)
{
    if (!root || !*root)
        return rx_error_set(err, RX_EUSAGE, "empty store root");
    /* A new root is made 0755 (less the umask), which store_root_open() accepts. */
    if (mkdir_p(root, err) < 0)
        return rx_error_wrap(err, "store root");

    struct store *s = xcalloc(1, sizeof *s);
    s->root_fd = s->store_fd = s->tmp_parent_fd = s->tmp_fd = s->gc_lock_fd = -1;
    s->root_fd = store_root_open(root, &s->root, err);
    if (s->root_fd < 0)
        goto fail;
    s->store_fd = open_dir_rw(s, "nix/store", err);
    if (s->store_fd < 0)
        goto fail;
    s->tmp_parent_fd = open_dir_rw(s, "nix/var/runix/tmp", err);
    if (s->tmp_parent_fd < 0)
        goto fail;
    int gc = open_dir_rw(s, "nix/var/nix/gcroots", err);
    if (gc < 0)
        goto fail;
    close(gc);
    /* A store someone else made for us to read (root's, prefetched) is said to be one. */
    if (check_writable(s, s->store_fd, "nix/store", err) < 0 ||
        check_writable(s, s->tmp_parent_fd, "nix/var/runix/tmp", err) < 0)
        goto fail;
    if (lock_gc_shared(s, err) < 0)
        goto fail;
    /* Work dirs of runs that died (kill -9): gone as soon as anyone opens the store,
     * even a run that has nothing to download. */
    store_tmp_clean_stale(s);
    if (open_db(s, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

/*
 * A URI for SQLite naming the file at path: every byte but the unreserved
 * ones and '/' percent-encoded, so '?', '#' and '%' in a root stay names.
 */
static char *file_uri(const char *path, const char *query)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(path);
    char *u = xmalloc(sizeof "file:" + 3 * n + 1 + strlen(query));
    char *o = u;
    memcpy(o, "file:", 5);
    o += 5;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '/' || *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o++ = '?';
    memcpy(o, query, strlen(query) + 1); /* sized above */
    return u;
}

/*
 * Open the database to read it, creating nothing.  A WAL database's
 * readers share its -wal and -shm files, and even a read-only connection
 * creates them when they are missing (and leaves them behind); one that
 * cannot write the directory cannot create them at all, and fails
 * (sqlite.org/wal.html, "Read-Only Databases").  So:
 *
 *  - when db.sqlite-wal exists, another connection is open or was: read
 *    through it with the usual locks (mode=ro), which sees what it has
 *    committed;
 *  - when it does not, nobody is connected and everything committed is in
 *    db.sqlite itself: read that file alone (immutable=1: no locks, no -wal
 *    or -shm), as Nix opens a read-only store.  A writer that connects in
 *    the meantime appends to a new -wal and leaves db.sqlite alone until it
 *    checkpoints (at 1,000 pages or when it closes); the queries here take
 *    milliseconds;
 *  - and when mode=ro cannot open the -shm file (it is missing and the
 *    directory not ours), the same, without what the -wal holds.
 */
static int open_db_readonly(struct store *s, int dbdir, struct rx_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/nix/var/nix/db/db.sqlite", s->root);
    struct stat st;
    bool wal = fstatat(dbdir, "db.sqlite-wal", &st, AT_SYMLINK_NOFOLLOW) == 0;
    int r = SQLITE_CANTOPEN;
    if (wal) {
        _cleanup_free_ char *uri = file_uri(path, "mode=ro");
        r = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
        if (r == SQLITE_OK)
            r = sqlite3_exec(s->db, "select count(*) from sqlite_master", NULL, NULL, NULL);
        if (r != SQLITE_OK) {
            sqlite3_close(s->db);
            s->db = NULL;
        }
    }
    if (r != SQLITE_OK) {
        _cleanup_free_ char *uri = file_uri(path, "immutable=1");
        r = sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    }
    if (r != SQLITE_OK)
        return rx_error_set(err, RX_EFORMAT, "cannot open store database '%s': %s", path,
                            s->db ? sqlite3_errmsg(s->db) : "out of memory");
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *q;
    if (store_db_prepare(s,
                         "select count(*) from sqlite_master where type = 'table' and "
                         "name in ('ValidPaths', 'Refs')",
                         &q, err) < 0)
        return -1;
    int n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    sqlite3_finalize(q);
    if (n != 2)
        return rx_error_set(err, RX_EFORMAT,
                            "store database '%s' lacks the ValidPaths and Refs tables; "
                            "it is not a Nix store database",
                            path);
    return prepare_queries(s, err);
}

int store_open_readonly(const char *root, struct store **out, struct rx_error **err)
{
    *out = NULL;
    if (!root || !*root)
        return rx_error_set(err, RX_EUSAGE, "empty store root");
    struct store *s = xcalloc(1, sizeof *s);
    s->root_fd = s->store_fd = s->tmp_parent_fd = s->tmp_fd = s->gc_lock_fd = -1;
    s->readonly = true;
    struct rx_error *e = NULL;
    _cleanup_close_ int dbdir = -1;
    bool fresh = true;
    s->root_fd = store_root_open(root, &s->root, &e);
    if (s->root_fd >= 0)
        s->store_fd = store_dir_open(s->root_fd, s->root, "nix/store", false, &e);
    if (s->store_fd >= 0)
        dbdir = store_dir_open(s->root_fd, s->root, "nix/var/nix/db", false, &e);
    if (dbdir >= 0 && check_db_file(s, dbdir, &e) == 0)
        read_schema(s, dbdir, &fresh, &e);
    if (e) {
        store_close(s);
        /* Nothing there yet is no error; anything else (unsafe, unreadable) is. */
        if (e->code == ENOENT || e->code == ENOTDIR) {
            rx_error_free(e);
            return 1;
        }
        pass_error(e, err);
        return -1;
    }
    if (fresh || faccessat(dbdir, "db.sqlite", F_OK, AT_EACCESS) < 0) {
        store_close(s);
        return 1; /* the schema file decides, as in store_open(); no database, no paths */
    }
    if (open_db_readonly(s, dbdir, err) < 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

struct store *store_new_empty(const char *root)
{
    struct store *s = xcalloc(1, sizeof *s);
    s->root_fd = s->store_fd = s->tmp_parent_fd = s->tmp_fd = s->gc_lock_fd = -1;
    s->readonly = true;
    s->root = xstrdup(root);
    if (sqlite3_open_v2(":memory:", &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL) != SQLITE_OK ||
        prepare_queries(s, NULL) < 0)
        BUG("cannot make an empty in-memory store: %s", s->db ? sqlite3_errmsg(s->db) : "");
    return s;
}

bool store_writable(const struct store *s)
{
    if (!s->readonly)
        return true;
    if (s->root_fd < 0)
        return false;
    /* The deepest of the directories runix writes in that exists decides. */
    static const char *const dirs[] = {"nix/var/runix/closures", "nix/var/runix", "nix/var", "nix",
                                       "."};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        if (faccessat(s->root_fd, dirs[i], W_OK, AT_EACCESS) == 0)
            return true;
        if (errno != ENOENT)
            return false;
    }
    return false;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->q_id);
    sqlite3_finalize(s->q_refs);
    sqlite3_finalize(s->ins_path);
    sqlite3_finalize(s->ins_ref);
    if (s->db)
        sqlite3_close(s->db);
    if (s->tmp_fd >= 0) {
        /* Still locked by us, so nobody else touches it. */
        rm_rf_at(s->tmp_parent_fd, s->tmp_name, NULL);
        close(s->tmp_fd);
    }
    free(s->tmp_name);
    if (s->gc_lock_fd >= 0)
        close(s->gc_lock_fd);
    for (int *fd = &s->root_fd; fd <= &s->tmp_parent_fd; fd++)
        if (*fd >= 0)
            close(*fd);
    free(s->root);
    free(s);
}

const char *store_root(const struct store *s)
{
    return s->root;
}

int store_dir_fd(const struct store *s)
{
    return s->store_fd;
}
