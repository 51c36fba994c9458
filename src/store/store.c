#include "config.h"
#include "store.h"
#include "store-index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "util-signal.h"

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

struct store {
    char *root; /* owned */
    int root_fd;
    int store_fd;
    int tmp_parent_fd; /* R/nix/var/runix/tmp */
    int tmp_fd;        /* our own work dir in it (locked), or -1 */
    char *tmp_name;    /* owned */
    unsigned trash_seq;
    sqlite3 *db;
    sqlite3_stmt *q_id;
    sqlite3_stmt *q_refs;
    sqlite3_stmt *ins_path;
    sqlite3_stmt *ins_ref;
};

static int db_error(struct store *s, struct rx_error **err, const char *what)
{
    return rx_error_set(err, RX_EFORMAT, "store database %s/nix/var/nix/db/db.sqlite: %s: %s",
                        s->root, what, sqlite3_errmsg(s->db));
}

static int mkdir_p_at(int dirfd, const char *rel, int *out_fd, struct rx_error **err)
{
    /* rel is a relative path of components; each is created if missing. */
    _cleanup_free_ char *copy = xstrdup(rel);
    int fd = dup(dirfd);
    if (fd < 0)
        return rx_error_errno(err, "dup");
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            close(fd);
            return rx_error_errno(err, "cannot create '%s'", rel);
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0)
            return rx_error_errno(err, "cannot open '%s' (it must be a directory, not a symlink)",
                                  rel);
        fd = next;
    }
    *out_fd = fd;
    return 0;
}

static int mkdir_p(const char *path, struct rx_error **err)
{
    _cleanup_free_ char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) < 0 && errno != EEXIST)
            return rx_error_errno(err, "cannot create '%s'", copy);
        *p = '/';
    }
    if (mkdir(copy, 0755) < 0 && errno != EEXIST)
        return rx_error_errno(err, "cannot create '%s'", copy);
    return 0;
}

static int db_exec(struct store *s, const char *sql, struct rx_error **err)
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

static int db_prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct rx_error **err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(s, err, "preparing a statement");
    return 0;
}

/* Read db/schema: sets *fresh when it is missing; refuses another version. */
static int read_schema(struct store *s, int dbdir, bool *fresh, struct rx_error **err)
{
    *fresh = false;
    int fd = openat(dbdir, "schema", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            return rx_error_errno(err, "cannot open '%s/nix/var/nix/db/schema'", s->root);
        *fresh = true;
        return 0;
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
    _cleanup_close_ int l =
        openat(s->root_fd, "nix/var/runix/init.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
    if (db_exec(s, "pragma journal_mode = wal;", err) < 0 || db_exec(s, "begin immediate;", err) < 0)
        return -1;
    if (db_exec(s, schema_sql, err) < 0 || db_exec(s, "commit;", err) < 0) {
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
    if (db_prepare(s, "pragma journal_mode", &st, err) < 0)
        return -1;
    bool wal = sqlite3_step(st) == SQLITE_ROW &&
               sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") == 0;
    sqlite3_finalize(st);
    return wal ? 0 : db_exec(s, "pragma journal_mode = wal;", err);
}

static int open_db(struct store *s, struct rx_error **err)
{
    _cleanup_close_ int dbdir = -1;
    if (mkdir_p_at(s->root_fd, "nix/var/nix/db", &dbdir, err) < 0)
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
    if (db_exec(s, "pragma foreign_keys = 1; pragma synchronous = normal;", err) < 0)
        return -1;
    if (fresh ? create_db(s, dbdir, err) < 0 : ensure_wal(s, err) < 0)
        return -1;

    sqlite3_stmt *st;
    if (db_prepare(s,
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

    if (db_prepare(s, "select id from ValidPaths where path = ?", &s->q_id, err) < 0 ||
        db_prepare(s,
                   "select p.path from Refs r join ValidPaths p on p.id = r.reference "
                   "where r.referrer = ?",
                   &s->q_refs, err) < 0 ||
        db_prepare(s,
                   "insert into ValidPaths (path, hash, registrationTime, deriver, narSize, "
                   "ultimate, sigs, ca) values (?, ?, ?, ?, ?, null, ?, ?)",
                   &s->ins_path, err) < 0 ||
        db_prepare(s,
                   "insert or replace into Refs (referrer, reference) values (?, "
                   "(select id from ValidPaths where path = ?))",
                   &s->ins_ref, err) < 0)
        return -1;
    return 0;
}

static void clean_stale_tmp(struct store *s);

int store_open(const char *root, struct store **out, struct rx_error **err)
{
    if (!root || !*root)
        return rx_error_set(err, RX_EUSAGE, "empty store root");
    if (mkdir_p(root, err) < 0)
        return rx_error_wrap(err, "store root");

    struct store *s = xcalloc(1, sizeof *s);
    s->root_fd = s->store_fd = s->tmp_parent_fd = s->tmp_fd = -1;
    char *real = realpath(root, NULL);
    if (!real) {
        rx_error_errno(err, "cannot resolve store root '%s'", root);
        goto fail;
    }
    s->root = real;
    s->root_fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->root_fd < 0) {
        rx_error_errno(err, "cannot open store root '%s'", real);
        goto fail;
    }
    if (mkdir_p_at(s->root_fd, "nix/store", &s->store_fd, err) < 0 ||
        mkdir_p_at(s->root_fd, "nix/var/runix/tmp", &s->tmp_parent_fd, err) < 0) {
        rx_error_wrap(err, "store '%s'", real);
        goto fail;
    }
    int gc = -1;
    if (mkdir_p_at(s->root_fd, "nix/var/nix/gcroots", &gc, err) < 0) {
        rx_error_wrap(err, "store '%s'", real);
        goto fail;
    }
    close(gc);
    /* Work dirs of runs that died (kill -9): gone as soon as anyone opens the store,
     * even a run that has nothing to download. */
    clean_stale_tmp(s);
    if (open_db(s, err) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    store_close(s);
    return -1;
}

int store_open_readonly(const char *root, struct store **out, struct rx_error **err)
{
    *out = NULL;
    char *real = root && *root ? realpath(root, NULL) : NULL;
    if (!real)
        return 1;
    struct store *s = xcalloc(1, sizeof *s);
    s->root_fd = s->store_fd = s->tmp_parent_fd = s->tmp_fd = -1;
    s->root = real;
    _cleanup_free_ char *schema = xasprintf("%s/nix/var/nix/db/schema", real);
    _cleanup_free_ char *path = xasprintf("%s/nix/var/nix/db/db.sqlite", real);
    if (access(schema, R_OK) < 0 ||
        sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        store_close(s);
        return 1;
    }
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (db_prepare(s, "select id from ValidPaths where path = ?", &s->q_id, err) < 0 ||
        db_prepare(s,
                   "select p.path from Refs r join ValidPaths p on p.id = r.reference "
                   "where r.referrer = ?",
                   &s->q_refs, err) < 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
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

/* The ValidPaths id of p, 0 if not valid, -1 on error. */
static sqlite3_int64 query_id(struct store *s, const struct store_path *p, struct rx_error **err)
{
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    sqlite3_reset(s->q_id);
    sqlite3_bind_text(s->q_id, 1, full, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(s->q_id);
    sqlite3_int64 id = 0;
    if (r == SQLITE_ROW)
        id = sqlite3_column_int64(s->q_id, 0);
    else if (r != SQLITE_DONE)
        id = db_error(s, err, "querying a path");
    sqlite3_reset(s->q_id);
    return id;
}

int store_is_valid(struct store *s, const struct store_path *p, struct rx_error **err)
{
    sqlite3_int64 id = query_id(s, p, err);
    return id < 0 ? -1 : id > 0;
}

int store_query_references(struct store *s, const struct store_path *p, struct store_path **refs,
                           size_t *nrefs, struct rx_error **err)
{
    *refs = NULL;
    *nrefs = 0;
    sqlite3_int64 id = query_id(s, p, err);
    if (id < 0)
        return -1;
    if (id == 0) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(p, full);
        return rx_error_set(err, RX_ENOTFOUND, "'%s' is not valid in store '%s'", full, s->root);
    }
    sqlite3_reset(s->q_refs);
    sqlite3_bind_int64(s->q_refs, 1, id);
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(s->q_refs)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(s->q_refs, 0);
        struct store_path sp;
        if (!t || store_path_parse(t, strlen(t), &sp, err) < 0) {
            sqlite3_reset(s->q_refs);
            free(*refs);
            *refs = NULL;
            *nrefs = 0;
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        if (*nrefs == cap) {
            cap = cap ? 2 * cap : 8;
            *refs = xrealloc(*refs, cap * sizeof **refs);
        }
        (*refs)[(*nrefs)++] = sp;
    }
    sqlite3_reset(s->q_refs);
    if (r != SQLITE_DONE) {
        free(*refs);
        *refs = NULL;
        *nrefs = 0;
        return db_error(s, err, "querying references");
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Signatures joined by spaces, sorted and without repeats, as Nix stores them. */
static char *join_sigs(const char *const *sigs, size_t n)
{
    if (n == 0)
        return NULL;
    const char **v = xmalloc(n * sizeof *v);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        v[i] = sigs[i];
        len += strlen(sigs[i]) + 1;
    }
    qsort(v, n, sizeof *v, cmp_str);
    char *out = xmalloc(len + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(v[i], v[i - 1]) == 0)
            continue;
        if (o != out)
            *o++ = ' ';
        size_t l = strlen(v[i]);
        memcpy(o, v[i], l);
        o += l;
    }
    *o = '\0';
    free(v);
    return out;
}

static int step_done(struct store *s, sqlite3_stmt *st, const char *what, struct rx_error **err)
{
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_DONE)
        return db_error(s, err, what);
    return 0;
}

static int insert_path(struct store *s, const struct store_info *in, time_t now,
                       struct rx_error **err)
{
    char full[STORE_PATH_MAX + 1], drv[STORE_PATH_MAX + 1], hex[2 * SHA256_SIZE + 1];
    char hashstr[8 + sizeof hex];
    store_path_format(&in->path, full);
    hex_encode(in->nar_hash.bytes, SHA256_SIZE, hex);
    snprintf(hashstr, sizeof hashstr, "sha256:%s", hex);
    _cleanup_free_ char *sigs = join_sigs(in->sigs, in->nsigs);

    sqlite3_stmt *st = s->ins_path;
    sqlite3_bind_text(st, 1, full, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, hashstr, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)now);
    if (in->deriver) {
        store_path_format(in->deriver, drv);
        sqlite3_bind_text(st, 4, drv, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, 4);
    }
    sqlite3_bind_int64(st, 5, (sqlite3_int64)in->nar_size);
    if (sigs)
        sqlite3_bind_text(st, 6, sigs, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 6);
    if (in->ca)
        sqlite3_bind_text(st, 7, in->ca, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 7);
    int r = step_done(s, st, "registering a path", err);
    sqlite3_clear_bindings(st);
    return r < 0 ? rx_error_wrap(err, "'%s'", full) : 0;
}

int store_register(struct store *s, const struct store_info *infos, size_t n,
                   struct rx_error **err)
{
    if (n == 0)
        return 0;
    bool *skip = xcalloc(n, sizeof *skip);
    time_t now = time(NULL);
    if (db_exec(s, "begin immediate;", err) < 0) {
        free(skip);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        char base[STORE_BASENAME_MAX + 1];
        store_path_basename(&infos[i].path, base);
        struct stat st;
        if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rx_error_errno(err, "cannot register '%s': not in '%s/nix/store'", base, s->root);
            goto fail;
        }
        sqlite3_int64 id = query_id(s, &infos[i].path, err);
        if (id < 0)
            goto fail;
        if (id > 0) {
            skip[i] = true;
            continue;
        }
        if (insert_path(s, &infos[i], now, err) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (skip[i])
            continue;
        char full[STORE_PATH_MAX + 1], ref[STORE_PATH_MAX + 1];
        store_path_format(&infos[i].path, full);
        sqlite3_int64 id = query_id(s, &infos[i].path, err);
        if (id <= 0)
            goto fail;
        for (size_t j = 0; j < infos[i].nrefs; j++) {
            store_path_format(&infos[i].refs[j], ref);
            sqlite3_bind_int64(s->ins_ref, 1, id);
            sqlite3_bind_text(s->ins_ref, 2, ref, -1, SQLITE_TRANSIENT);
            if (step_done(s, s->ins_ref, "registering a reference", err) < 0) {
                rx_error_wrap(err, "'%s' -> '%s' (the reference must be valid first)", full, ref);
                goto fail;
            }
        }
    }
    if (db_exec(s, "commit;", err) < 0)
        goto fail;
    free(skip);
    return 0;
fail:
    sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
    free(skip);
    return -1;
}

int store_lock_path(struct store *s, const struct store_path *p, bool wait, int *fd,
                    struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1], lock[STORE_BASENAME_MAX + 8];
    store_path_basename(p, base);
    snprintf(lock, sizeof lock, "%s.lock", base);
    for (;;) {
        int l = openat(s->store_fd, lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l < 0)
            return rx_error_errno(err, "cannot open lock '%s/nix/store/%s'", s->root, lock);
        int r;
        while ((r = flock(l, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR &&
               !rx_interrupted)
            ;
        if (r < 0) {
            int e = errno;
            close(l);
            if (e == EWOULDBLOCK)
                return 0;
            errno = e;
            return rx_error_errno(err, "cannot lock '%s/nix/store/%s'", s->root, lock);
        }
        /* The holder before us may have deleted the file: then lock anew. */
        struct stat st;
        if (fstat(l, &st) < 0) {
            close(l);
            return rx_error_errno(err, "cannot stat lock '%s'", lock);
        }
        if (st.st_nlink > 0) {
            *fd = l;
            return 1;
        }
        close(l);
    }
}

void store_unlock_path(struct store *s, const struct store_path *p, int fd)
{
    char base[STORE_BASENAME_MAX + 1], lock[STORE_BASENAME_MAX + 8];
    store_path_basename(p, base);
    snprintf(lock, sizeof lock, "%s.lock", base);
    unlinkat(s->store_fd, lock, 0);
    close(fd);
}

/* Lock a work dir; returns its fd, -2 if someone else holds it, -1 on error. */
static int lock_dir(int parent, const char *name, bool wait)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r;
    while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR &&
           !rx_interrupted)
        ;
    if (r < 0) {
        close(fd);
        return errno == EWOULDBLOCK ? -2 : -1;
    }
    return fd;
}

static void clean_stale_tmp(struct store *s)
{
    int fd = dup(s->tmp_parent_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int l = lock_dir(s->tmp_parent_fd, e->d_name, false);
        if (l == -1 && errno == ENOTDIR) {
            unlinkat(s->tmp_parent_fd, e->d_name, 0);
            continue;
        }
        if (l < 0)
            continue;
        /* Its owner is gone: nobody else can be using it. */
        rm_rf_at(s->tmp_parent_fd, e->d_name, NULL);
        close(l);
    }
    closedir(d);
}

int store_tmp_fd(struct store *s, struct rx_error **err)
{
    if (s->tmp_fd >= 0)
        return s->tmp_fd;
    for (int tries = 0; tries < 100; tries++) {
        uint32_t rnd;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
            rnd = (uint32_t)time(NULL) ^ (uint32_t)tries;
        char name[64];
        snprintf(name, sizeof name, "%ld-%08x", (long)getpid(), rnd);
        if (mkdirat(s->tmp_parent_fd, name, 0700) < 0) {
            if (errno == EEXIST)
                continue;
            return rx_error_errno(err, "cannot create a work dir in '%s/nix/var/runix/tmp'",
                                  s->root);
        }
        int fd = lock_dir(s->tmp_parent_fd, name, true);
        if (fd < 0)
            continue; /* removed by a cleaner between mkdir and lock */
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
            close(fd);
            continue;
        }
        s->tmp_fd = fd;
        s->tmp_name = xstrdup(name);
        return fd;
    }
    return rx_error_set(err, EEXIST, "cannot create a work dir in '%s/nix/var/runix/tmp'",
                        s->root);
}

int store_install(struct store *s, const char *name, const struct store_path *p,
                  struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    if (renameat(s->tmp_fd, name, s->store_fd, base) < 0)
        return rx_error_errno(err, "cannot move '%s' into '%s/nix/store'", base, s->root);
    return 0;
}

int store_remove_invalid(struct store *s, const struct store_path *p, struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return rx_error_errno(err, "cannot stat '%s/nix/store/%s'", s->root, base);
    }
    if (store_tmp_fd(s, err) < 0)
        return -1;
    /* Move it out of nix/store first, so it vanishes in one step. */
    char trash[64];
    snprintf(trash, sizeof trash, "trash-%u", s->trash_seq++);
    if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IWUSR))
        fchmodat(s->store_fd, base, 0755, 0);
    if (renameat(s->store_fd, base, s->tmp_fd, trash) < 0)
        return rx_error_errno(err, "cannot remove incomplete '%s/nix/store/%s'", s->root, base);
    return rm_rf_at(s->tmp_fd, trash, err);
}

int store_clean_leftovers(struct store *s, struct rx_error **err)
{
    int fd = dup(s->store_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return rx_error_errno(err, "cannot list '%s/nix/store'", s->root);
    }
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct store_path p;
        size_t len = strlen(e->d_name);
        /* Lock files are named like store paths plus ".lock"; Nix skips them too. */
        if (e->d_name[0] == '.' || (len > 5 && strcmp(e->d_name + len - 5, ".lock") == 0) ||
            store_path_parse_basename(e->d_name, len, &p, NULL) < 0)
            continue;
        int v = store_is_valid(s, &p, err);
        if (v != 0) {
            if (v < 0) {
                ret = -1;
                break;
            }
            continue;
        }
        int lfd;
        int l = store_lock_path(s, &p, false, &lfd, err);
        if (l < 0) {
            ret = -1;
            break;
        }
        if (l == 0)
            continue; /* someone is creating it right now */
        v = store_is_valid(s, &p, err);
        if (v == 0 && store_remove_invalid(s, &p, err) < 0)
            v = -1;
        store_unlock_path(s, &p, lfd);
        if (v < 0) {
            ret = -1;
            break;
        }
    }
    closedir(d);
    return ret;
}

int store_closure(struct store *s, const struct store_path *roots, size_t n,
                  struct store_path **out, size_t *nout, struct rx_error **err)
{
    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < n; i++) {
        int v = store_is_valid(s, &roots[i], err);
        if (v <= 0)
            return v < 0 ? -1 : 1;
    }
    /* Valid paths' references are valid: one recursive query gives the closure. */
    static const char head[] = "with recursive c(id) as (select id from ValidPaths where path in (";
    static const char tail[] = ") union select reference from Refs join c on referrer = c.id) "
                               "select path from ValidPaths where id in (select id from c) "
                               "order by path";
    _cleanup_free_ char *sql = xmalloc(sizeof head + 2 * n + sizeof tail);
    size_t k = 0;
    memcpy(sql, head, sizeof head - 1);
    k = sizeof head - 1;
    for (size_t i = 0; i < n; i++) {
        if (i)
            sql[k++] = ',';
        sql[k++] = '?';
    }
    memcpy(sql + k, tail, sizeof tail);
    sqlite3_stmt *st;
    if (db_prepare(s, sql, &st, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&roots[i], full);
        sqlite3_bind_text(st, (int)i + 1, full, -1, SQLITE_TRANSIENT);
    }
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        struct store_path sp;
        if (!t || store_path_parse(t, strlen(t), &sp, err) < 0) {
            sqlite3_finalize(st);
            free(*out);
            *out = NULL;
            *nout = 0;
            return rx_error_wrap(err, "store database of '%s'", s->root);
        }
        if (*nout == cap) {
            cap = cap ? 2 * cap : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        (*out)[(*nout)++] = sp;
    }
    if (r != SQLITE_DONE) {
        db_error(s, err, "computing a closure");
        sqlite3_finalize(st);
        free(*out);
        *out = NULL;
        *nout = 0;
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

int store_index_write(struct store *s, const struct store_path *p, struct rx_error **err)
{
    struct store_path *cl;
    size_t n;
    int r = store_closure(s, p, 1, &cl, &n, err);
    if (r != 0) {
        if (r > 0) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(p, full);
            rx_error_set(err, RX_ENOTFOUND, "%s is not valid in the store", full);
        }
        return -1;
    }
    /* Basenames are at most STORE_BASENAME_MAX bytes: the size is known. */
    size_t cap = sizeof STORE_INDEX_HEADER + 1 + n * (STORE_BASENAME_MAX + 1) + 1, k = 0;
    _cleanup_free_ char *text = xmalloc(cap);
    k += (size_t)snprintf(text, cap, "%s\n", STORE_INDEX_HEADER);
    for (size_t i = 0; i < n; i++) {
        store_path_basename(&cl[i], text + k);
        k += strlen(text + k);
        text[k++] = '\n';
    }
    text[k] = '\0';
    free(cl);
    int dfd = -1;
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    r = mkdir_p_at(s->root_fd, STORE_INDEX_DIR, &dfd, err);
    if (r == 0)
        r = write_file_atomic_at(dfd, base, text, true, err);
    if (dfd >= 0)
        close(dfd);
    return r < 0 ? rx_error_wrap(err, "closure index of %s", base) : 0;
}

int store_stats(struct store *s, uint64_t *npaths, uint64_t *nar_bytes, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (db_prepare(s, "select count(*), coalesce(sum(narSize), 0) from ValidPaths", &st, err) < 0)
        return -1;
    int r = sqlite3_step(st);
    if (r != SQLITE_ROW) {
        db_error(s, err, "counting paths");
        sqlite3_finalize(st);
        return -1;
    }
    *npaths = (uint64_t)sqlite3_column_int64(st, 0);
    *nar_bytes = (uint64_t)sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return 0;
}
