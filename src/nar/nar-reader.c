/* A streaming, push-style NAR parser (see nar-reader.h). */
#include "config.h"
#include "nar-reader.h"

#include <stdio.h>
#include <string.h>

#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* Where in the grammar we are: what the next token must be. */
enum gram {
    G_MAGIC,
    G_NODE_OPEN,    /* "(" */
    G_TYPE_KW,      /* "type" */
    G_TYPE_VAL,     /* "regular" | "symlink" | "directory" */
    G_REG_ATTR,     /* "executable" | "contents" */
    G_EXEC_VAL,     /* "" */
    G_CONTENTS_KW,  /* "contents" (after "executable") */
    G_CONTENTS,     /* the file's bytes, streamed */
    G_TARGET_KW,    /* "target" */
    G_TARGET,       /* the symlink target */
    G_NODE_CLOSE,   /* ")" */
    G_DIR_ENTRY,    /* "entry" | ")" */
    G_ENTRY_OPEN,   /* "(" */
    G_NAME_KW,      /* "name" */
    G_NAME,         /* the entry name */
    G_NODE_KW,      /* "node" */
    G_ENTRY_CLOSE,  /* ")" */
    G_DONE,
};

/* How the bytes of the current token are being consumed. */
enum tok {
    T_LEN,  /* the 8-byte little-endian length */
    T_STR,  /* a short string, collected in r->str */
    T_DATA, /* file contents, passed through */
    T_PAD,  /* zero padding to a multiple of 8 */
};

/* Longest keyword we ever expect ("nix-archive-1"). */
#define KEYWORD_MAX 16

struct frame {
    size_t prevlen;
    bool has_prev;
    char prev[NAR_NAME_MAX];
};

struct nar_reader {
    const struct nar_visitor *v;
    void *ctx;

    enum gram gram;
    enum tok tok;
    unsigned char lenbuf[8];
    size_t lenfill;
    uint64_t toklen;
    uint64_t tokdone;
    unsigned padleft;
    char str[NAR_TARGET_MAX + 1];

    /* The name of the node being read (an entry name), if not the root. */
    bool has_name;
    size_t namelen;
    char name[NAR_NAME_MAX];
    bool executable;

    struct frame *frames; /* owned; one per open directory */
    size_t depth;
    size_t frames_cap;

    uint64_t offset;
    bool failed;
};

struct nar_reader *nar_reader_new(const struct nar_visitor *v, void *ctx)
{
    struct nar_reader *r = xcalloc(1, sizeof *r);
    static const struct nar_visitor none;
    r->v = v ? v : &none;
    r->ctx = ctx;
    r->gram = G_MAGIC;
    r->tok = T_LEN;
    return r;
}

void nar_reader_free(struct nar_reader *r)
{
    if (!r)
        return;
    free(r->frames);
    free(r);
}

bool nar_reader_done(const struct nar_reader *r)
{
    return r->gram == G_DONE;
}

uint64_t nar_reader_offset(const struct nar_reader *r)
{
    return r->offset;
}

static int fail(struct nar_reader *r, struct rx_error **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct nar_reader *r, struct rx_error **err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = true;
    return rx_error_set(err, RX_EFORMAT, "invalid NAR: %s (at byte %llu)", msg,
                        (unsigned long long)r->offset);
}

/* Printable rendering of a short token for error messages. */
static void quote(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < outsz; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
        }
    }
    out[o] = '\0';
}

static const char *expected_text(enum gram g)
{
    switch (g) {
    case G_MAGIC: return "'" NAR_MAGIC "'";
    case G_NODE_OPEN:
    case G_ENTRY_OPEN: return "'('";
    case G_TYPE_KW: return "'type'";
    case G_TYPE_VAL: return "'regular', 'symlink' or 'directory'";
    case G_REG_ATTR: return "'executable' or 'contents'";
    case G_CONTENTS_KW: return "'contents'";
    case G_TARGET_KW: return "'target'";
    case G_NODE_CLOSE:
    case G_ENTRY_CLOSE: return "')'";
    case G_DIR_ENTRY: return "'entry' or ')'";
    case G_NAME_KW: return "'name'";
    case G_NODE_KW: return "'node'";
    default: return "nothing";
    }
}

static int unexpected(struct nar_reader *r, struct rx_error **err)
{
    if (r->gram == G_MAGIC)
        return fail(r, err, "not a Nix archive (bad magic)");
    if (r->toklen > KEYWORD_MAX)
        return fail(r, err, "expected %s, got a %llu-byte token", expected_text(r->gram),
                    (unsigned long long)r->toklen);
    char q[KEYWORD_MAX * 4 + 8];
    quote(r->str, (size_t)r->toklen, q, sizeof q);
    return fail(r, err, "expected %s, got '%s'", expected_text(r->gram), q);
}

static bool is(const struct nar_reader *r, const char *kw)
{
    size_t n = strlen(kw);
    return r->toklen == n && memcmp(r->str, kw, n) == 0;
}

static int push_frame(struct nar_reader *r, struct rx_error **err)
{
    if (r->depth >= NAR_MAX_DEPTH)
        return fail(r, err, "directories nested deeper than %d levels", NAR_MAX_DEPTH);
    if (r->depth == r->frames_cap) {
        r->frames_cap = r->frames_cap ? r->frames_cap * 2 : 16;
        r->frames = xrealloc(r->frames, r->frames_cap * sizeof *r->frames);
    }
    struct frame *f = &r->frames[r->depth++];
    f->has_prev = false;
    f->prevlen = 0;
    return 0;
}

static const char *node_name(const struct nar_reader *r, size_t *len)
{
    *len = r->has_name ? r->namelen : 0;
    return r->has_name ? r->name : NULL;
}

/* A node (file, symlink or directory) has just been closed. */
static void node_closed(struct nar_reader *r)
{
    r->gram = r->depth == 0 ? G_DONE : G_ENTRY_CLOSE;
}

static int check_name(struct nar_reader *r, struct rx_error **err)
{
    const char *s = r->str;
    size_t n = (size_t)r->toklen;
    char q[NAR_NAME_MAX * 4 + 8];
    if (n == 0)
        return fail(r, err, "invalid file name '' (empty)");
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return fail(r, err, "invalid file name '%.*s'", (int)n, s);
    if (memchr(s, '/', n) || memchr(s, '\0', n)) {
        quote(s, n, q, sizeof q);
        return fail(r, err, "invalid file name '%s' (contains '/' or NUL)", q);
    }
    struct frame *f = &r->frames[r->depth - 1];
    if (f->has_prev) {
        size_t m = f->prevlen < n ? f->prevlen : n;
        int c = memcmp(f->prev, s, m);
        if (c > 0 || (c == 0 && f->prevlen >= n)) {
            quote(s, n, q, sizeof q);
            return fail(r, err, "directory entries are not sorted or are duplicated (at '%s')", q);
        }
    }
    memcpy(f->prev, s, n);
    f->prevlen = n;
    f->has_prev = true;
    memcpy(r->name, s, n);
    r->namelen = n;
    r->has_name = true;
    return 0;
}

/* The states in which the token must be one keyword, and the state after it. */
static const struct {
    const char *kw;
    enum gram next;
} keyword_step[] = {
    [G_MAGIC] = {NAR_MAGIC, G_NODE_OPEN},
    [G_NODE_OPEN] = {"(", G_TYPE_KW},
    [G_TYPE_KW] = {"type", G_TYPE_VAL},
    [G_CONTENTS_KW] = {"contents", G_CONTENTS},
    [G_TARGET_KW] = {"target", G_TARGET},
    [G_ENTRY_OPEN] = {"(", G_NAME_KW},
    [G_NAME_KW] = {"name", G_NAME},
    [G_NODE_KW] = {"node", G_NODE_OPEN},
    [G_ENTRY_CLOSE] = {")", G_DIR_ENTRY},
};

/* The value of "type": a node begins. */
static int type_done(struct nar_reader *r, struct rx_error **err)
{
    const struct nar_visitor *v = r->v;
    if (is(r, "regular")) {
        r->executable = false;
        r->gram = G_REG_ATTR;
    } else if (is(r, "symlink")) {
        r->gram = G_TARGET_KW;
    } else if (is(r, "directory")) {
        size_t nl;
        const char *name = node_name(r, &nl);
        if (v->directory_begin && v->directory_begin(r->ctx, name, nl, err) < 0)
            return r->failed = true, -1;
        if (push_frame(r, err) < 0)
            return -1;
        r->has_name = false;
        r->gram = G_DIR_ENTRY;
    } else {
        return unexpected(r, err);
    }
    return 0;
}

static int target_done(struct nar_reader *r, struct rx_error **err)
{
    const struct nar_visitor *v = r->v;
    if (r->toklen == 0)
        return fail(r, err, "symlink has an empty target");
    if (memchr(r->str, '\0', (size_t)r->toklen))
        return fail(r, err, "symlink target contains NUL");
    size_t nl;
    const char *name = node_name(r, &nl);
    if (v->symlink && v->symlink(r->ctx, name, nl, r->str, (size_t)r->toklen, err) < 0)
        return r->failed = true, -1;
    r->gram = G_NODE_CLOSE;
    return 0;
}

/* In a directory: another entry, or its end. */
static int dir_entry_done(struct nar_reader *r, struct rx_error **err)
{
    const struct nar_visitor *v = r->v;
    if (is(r, "entry")) {
        r->gram = G_ENTRY_OPEN;
    } else if (is(r, ")")) {
        if (v->directory_end && v->directory_end(r->ctx, err) < 0)
            return r->failed = true, -1;
        r->depth--;
        node_closed(r);
    } else {
        return unexpected(r, err);
    }
    return 0;
}

/* A whole string token (and its padding) has been read. */
static int token_done(struct nar_reader *r, struct rx_error **err)
{
    const struct nar_visitor *v = r->v;

    r->tok = T_LEN;
    if (r->gram < ARRAY_SIZE(keyword_step) && keyword_step[r->gram].kw) {
        if (!is(r, keyword_step[r->gram].kw))
            return unexpected(r, err);
        r->gram = keyword_step[r->gram].next;
        return 0;
    }
    switch (r->gram) {
    case G_TYPE_VAL:
        return type_done(r, err);
    case G_REG_ATTR:
        if (is(r, "executable")) {
            r->executable = true;
            r->gram = G_EXEC_VAL;
        } else if (is(r, "contents")) {
            r->gram = G_CONTENTS;
        } else {
            return unexpected(r, err);
        }
        return 0;
    case G_EXEC_VAL:
        r->gram = G_CONTENTS_KW; /* length 0 was checked when it was read */
        return 0;
    case G_CONTENTS:
        if (v->file_end && v->file_end(r->ctx, err) < 0)
            return r->failed = true, -1;
        r->gram = G_NODE_CLOSE;
        return 0;
    case G_TARGET:
        return target_done(r, err);
    case G_NODE_CLOSE:
        if (!is(r, ")"))
            return unexpected(r, err);
        node_closed(r);
        return 0;
    case G_DIR_ENTRY:
        return dir_entry_done(r, err);
    case G_NAME:
        if (check_name(r, err) < 0)
            return -1;
        r->gram = G_NODE_KW;
        return 0;
    default:
        break;
    }
    return fail(r, err, "internal parser state error");
}

static int start_padding(struct nar_reader *r, struct rx_error **err)
{
    r->padleft = (unsigned)((8 - r->toklen % 8) % 8);
    if (r->padleft == 0)
        return token_done(r, err);
    r->tok = T_PAD;
    return 0;
}

/* The length of the next token has been read. */
static int length_done(struct nar_reader *r, struct rx_error **err)
{
    uint64_t len = r->toklen;
    r->tokdone = 0;

    if (r->gram == G_CONTENTS) {
        size_t nl;
        const char *name = node_name(r, &nl);
        /* Contents start right after the 8-byte length. */
        if (r->v->file_begin &&
            r->v->file_begin(r->ctx, name, nl, r->executable, len, r->offset, err) < 0)
            return r->failed = true, -1;
        r->tok = T_DATA;
        return len == 0 ? start_padding(r, err) : 0;
    }

    uint64_t cap;
    switch (r->gram) {
    case G_NAME:
        cap = NAR_NAME_MAX;
        if (len > cap)
            return fail(r, err, "file name longer than %d bytes", NAR_NAME_MAX);
        break;
    case G_TARGET:
        cap = NAR_TARGET_MAX;
        if (len > cap)
            return fail(r, err, "symlink target longer than %d bytes", NAR_TARGET_MAX);
        break;
    case G_EXEC_VAL:
        if (len != 0)
            return fail(r, err, "executable marker has a non-empty value");
        cap = 0;
        break;
    default:
        cap = KEYWORD_MAX;
        if (len > cap)
            return unexpected(r, err);
        break;
    }
    r->tok = T_STR;
    return len == 0 ? start_padding(r, err) : 0;
}

int nar_reader_feed(struct nar_reader *r, const void *data, size_t n, struct rx_error **err)
{
    const unsigned char *p = data;

    if (r->failed)
        return rx_error_set(err, RX_EFORMAT, "invalid NAR: reading continued after an error");
    while (n > 0) {
        size_t take;
        switch (r->tok) {
        case T_LEN:
            if (r->gram == G_DONE)
                return fail(r, err, "unexpected data after the end of the archive");
            take = 8 - r->lenfill;
            if (take > n)
                take = n;
            memcpy(r->lenbuf + r->lenfill, p, take);
            r->lenfill += take;
            r->offset += take;
            p += take;
            n -= take;
            if (r->lenfill == 8) {
                uint64_t len = 0;
                for (int i = 7; i >= 0; i--)
                    len = len << 8 | r->lenbuf[i];
                r->lenfill = 0;
                r->toklen = len;
                if (length_done(r, err) < 0)
                    return -1;
            }
            break;
        case T_STR:
            take = (size_t)(r->toklen - r->tokdone);
            if (take > n)
                take = n;
            memcpy(r->str + r->tokdone, p, take);
            r->tokdone += take;
            r->offset += take;
            p += take;
            n -= take;
            if (r->tokdone == r->toklen && start_padding(r, err) < 0)
                return -1;
            break;
        case T_DATA:
            take = r->toklen - r->tokdone > n ? n : (size_t)(r->toklen - r->tokdone);
            if (r->v->file_data && r->v->file_data(r->ctx, p, take, err) < 0)
                return r->failed = true, -1;
            r->tokdone += take;
            r->offset += take;
            p += take;
            n -= take;
            if (r->tokdone == r->toklen && start_padding(r, err) < 0)
                return -1;
            break;
        case T_PAD:
            if (*p != 0)
                return fail(r, err, "non-zero padding");
            r->offset++;
            p++;
            n--;
            if (--r->padleft == 0 && token_done(r, err) < 0)
                return -1;
            break;
        }
    }
    return 0;
}

int nar_reader_finish(struct nar_reader *r, struct rx_error **err)
{
    if (r->failed)
        return rx_error_set(err, RX_EFORMAT, "invalid NAR: reading continued after an error");
    if (r->gram != G_DONE)
        return fail(r, err, "unexpected end of input (truncated archive)");
    return 0;
}

int nar_reader_read_fd(struct nar_reader *r, int fd, struct rx_error **err)
{
    size_t bufsz = 1 << 18;
    _cleanup_free_ char *buf = xmalloc(bufsz);
    for (;;) {
        ssize_t n = read_retry(fd, buf, bufsz);
        if (n < 0)
            return rx_error_errno(err, "cannot read NAR");
        if (n == 0)
            return nar_reader_finish(r, err);
        if (nar_reader_feed(r, buf, (size_t)n, err) < 0)
            return -1;
    }
}
