/* s3:// binary caches: their URLs, their credentials and S3's error answers. */
#include "config.h"
#include "s3.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util-buf.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

#define AWS_FILE_MAX (1024 * 1024)

void s3_cache_free(struct s3_cache *s)
{
    if (!s)
        return;
    free(s->bucket);
    free(s->region);
    free(s->endpoint);
    free(s->scheme);
    free(s->profile);
    free(s->base);
    if (s->secret_key)
        explicit_bzero(s->secret_key, strlen(s->secret_key));
    if (s->session_token)
        explicit_bzero(s->session_token, strlen(s->session_token));
    free(s->access_key);
    free(s->secret_key);
    free(s->session_token);
    free(s->cred_source);
    free(s);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A query value, percent-decoded; NULL when it decodes to a NUL or control character. */
static char *query_value(const char *v, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '%' && i + 2 < len + 0 && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
            c = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if ((unsigned char)c < ' ' || c == 0x7f) {
            free(out);
            return NULL;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return out;
}

static bool bucket_ok(const char *b)
{
    size_t n = strlen(b);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)b[i]) && b[i] != '.' && b[i] != '-' && b[i] != '_')
            return false;
    return true;
}

/* Can the bucket be a host name label of AWS's TLS certificate (*.s3.REGION.amazonaws.com)? */
static bool bucket_dns(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(islower((unsigned char)b[i]) || isdigit((unsigned char)b[i]) || b[i] == '-'))
            return false;
    return true;
}

static bool region_ok(const char *r)
{
    if (!*r || strlen(r) > 64)
        return false;
    for (const char *p = r; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return false;
    return true;
}

/* host, host:port, [v6]:port: the characters of an authority without user info. */
static bool endpoint_ok(const char *e)
{
    if (!*e || strlen(e) > 255)
        return false;
    for (const char *p = e; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_:[]", *p))
            return false;
    return true;
}

static int set_param(struct s3_cache *s, const char *k, size_t klen, const char *v, size_t vlen,
                     const char *shown, struct rx_error **err)
{
    char **slot = NULL;
    if (klen == 6 && memcmp(k, "region", 6) == 0)
        slot = &s->region;
    else if (klen == 8 && memcmp(k, "endpoint", 8) == 0)
        slot = &s->endpoint;
    else if (klen == 6 && memcmp(k, "scheme", 6) == 0)
        slot = &s->scheme;
    else if (klen == 7 && memcmp(k, "profile", 7) == 0)
        slot = &s->profile;
    else
        return 0; /* priority is cache.c's; Nix's other settings do not change reading */
    char *val = query_value(v, vlen);
    if (!val)
        return rx_error_set(err, RX_EUSAGE, "cache '%s': %.*s= has a control character", shown,
                            (int)klen, k);
    free(*slot);
    *slot = val;
    return 0;
}

static int parse_url(struct s3_cache *s, const char *url, const char *shown,
                     struct rx_error **err)
{
    const char *b = url + 5;
    size_t blen = strcspn(b, "/?#");
    if (b[blen] == '/' && b[blen + 1] != '\0' && b[blen + 1] != '?')
        return rx_error_set(err, RX_EUSAGE,
                            "cache '%s': an s3:// URL names a bucket only, not a path in it "
                            "(s3://BUCKET?region=...)", shown);
    if (b[blen] == '#' || strchr(b, '#'))
        return rx_error_set(err, RX_EUSAGE, "cache '%s': URL has a fragment", shown);
    s->bucket = xstrndup(b, blen);
    if (!bucket_ok(s->bucket))
        return rx_error_set(err, RX_EUSAGE,
                            "cache '%s': '%s' is not a bucket name (letters, digits, '.', '-' "
                            "and '_', at most 255)", shown, s->bucket);
    const char *q = strchr(b, '?');
    for (const char *p = q ? q + 1 : ""; *p;) {
        size_t plen = strcspn(p, "&");
        const char *eq = memchr(p, '=', plen);
        if (eq && set_param(s, p, (size_t)(eq - p), eq + 1, plen - (size_t)(eq + 1 - p), shown,
                            err) < 0)
            return -1;
        p += plen + (p[plen] == '&');
    }
    if (!s->region)
        s->region = xstrdup("us-east-1");
    if (!region_ok(s->region))
        return rx_error_set(err, RX_EUSAGE, "cache '%s': '%s' is not a region name", shown,
                            s->region);
    if (s->endpoint) {
        /* Written as a URL, the endpoint brings its scheme. */
        const char *e = s->endpoint;
        const char *sch = NULL;
        if (strncasecmp(e, "https://", 8) == 0)
            sch = "https", e += 8;
        else if (strncasecmp(e, "http://", 7) == 0)
            sch = "http", e += 7;
        size_t elen = strlen(e);
        while (elen > 0 && e[elen - 1] == '/')
            elen--;
        char *host = xstrndup(e, elen);
        free(s->endpoint);
        s->endpoint = host;
        if (!endpoint_ok(s->endpoint))
            return rx_error_set(err, RX_EUSAGE,
                                "cache '%s': endpoint '%s' is not HOST or HOST:PORT", shown,
                                s->endpoint);
        if (sch && !s->scheme)
            s->scheme = xstrdup(sch);
    }
    if (!s->scheme)
        s->scheme = xstrdup("https");
    if (strcmp(s->scheme, "https") != 0 && strcmp(s->scheme, "http") != 0)
        return rx_error_set(err, RX_EUSAGE, "cache '%s': scheme is '%s', not https or http",
                            shown, s->scheme);
    if (s->profile && (!*s->profile || strlen(s->profile) > 128 || strpbrk(s->profile, "[]")))
        return rx_error_set(err, RX_EUSAGE, "cache '%s': '%s' is not a profile name", shown,
                            s->profile);
    if (s->endpoint)
        s->base = xasprintf("%s://%s/%s", s->scheme, s->endpoint, s->bucket);
    else if (bucket_dns(s->bucket))
        s->base = xasprintf("%s://%s.s3.%s.amazonaws.com", s->scheme, s->bucket, s->region);
    else
        s->base = xasprintf("%s://s3.%s.amazonaws.com/%s", s->scheme, s->region, s->bucket);
    return 0;
}

/* ---- the shared credentials and config files ---- */

static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

static bool span_is(const char *b, const char *e, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(e - b) == n && strncasecmp(b, s, n) == 0;
}

static void take(char **slot, const char *b, const char *e)
{
    free(*slot);
    *slot = xstrndup(b, (size_t)(e - b));
}

int s3_profile_parse(const char *text, size_t len, const char *name, bool config, char **akid,
                     char **secret, char **token)
{
    *akid = *secret = *token = NULL;
    bool found = false, in = false;
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end;
        const char *b = line, *e = le;
        /* An indented line belongs to a nested setting ("s3 =\n  addressing_style = ..."). */
        bool indented = b < e && (*b == ' ' || *b == '\t');
        line = le + 1;
        trim(&b, &e);
        if (b == e || *b == '#' || *b == ';')
            continue;
        if (*b == '[') {
            in = false;
            if (e[-1] != ']' || e - b < 2)
                continue;
            const char *nb = b + 1, *ne = e - 1;
            trim(&nb, &ne);
            if (config && !span_is(nb, ne, "default")) {
                if ((size_t)(ne - nb) < 8 || strncmp(nb, "profile", 7) != 0 ||
                    !isspace((unsigned char)nb[7]))
                    continue;
                nb += 8;
                trim(&nb, &ne);
            }
            if ((size_t)(ne - nb) == strlen(name) && memcmp(nb, name, (size_t)(ne - nb)) == 0)
                in = found = true;
            continue;
        }
        if (!in || indented)
            continue;
        const char *eq = memchr(b, '=', (size_t)(e - b));
        if (!eq)
            continue;
        const char *kb = b, *ke = eq, *vb = eq + 1, *ve = e;
        trim(&kb, &ke);
        trim(&vb, &ve);
        if (vb == ve)
            continue;
        if (span_is(kb, ke, "aws_access_key_id"))
            take(akid, vb, ve);
        else if (span_is(kb, ke, "aws_secret_access_key"))
            take(secret, vb, ve);
        else if (span_is(kb, ke, "aws_session_token"))
            take(token, vb, ve);
    }
    return found ? 1 : 0;
}

/* Has the value any character that cannot go into a header or a user:password? */
static bool cred_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            return false;
    return *v != '\0';
}

static char *aws_file(const char *env, const char *rel)
{
    const char *v = getenv(env);
    if (v && *v)
        return xstrdup(v);
    const char *home = getenv("HOME");
    if (!home || !*home)
        return NULL;
    return xasprintf("%s/.aws/%s", home, rel);
}

/* Look profile up in path: 1 found (keys set, maybe incomplete), 0 not, -1 with err. */
static int profile_from(const char *path, const char *profile, bool config, char **akid,
                        char **secret, char **token, struct rx_error **err)
{
    *akid = *secret = *token = NULL;
    if (!path)
        return 0;
    struct rx_buf b = RX_BUF_INIT(AWS_FILE_MAX);
    struct rx_error *e = NULL;
    if (read_file(path, &b, &e) < 0) {
        bool absent = e && (e->code == ENOENT || e->code == ENOTDIR);
        rx_buf_release(&b);
        if (absent) {
            rx_error_free(e);
            return 0;
        }
        rx_error_set(err, e ? e->code : EIO, "%s", e ? e->msg : path);
        rx_error_free(e);
        return -1;
    }
    int r = s3_profile_parse(b.data ? b.data : "", b.len, profile, config, akid, secret, token);
    if (b.data)
        explicit_bzero(b.data, b.len);
    rx_buf_release(&b);
    return r;
}

static int load_credentials(struct s3_cache *s, const char *shown, struct rx_error **err)
{
    if (!s->profile) {
        const char *id = getenv("AWS_ACCESS_KEY_ID");
        const char *key = getenv("AWS_SECRET_ACCESS_KEY");
        const char *tok = getenv("AWS_SESSION_TOKEN");
        bool have_id = id && *id, have_key = key && *key;
        if (have_id != have_key)
            return rx_error_set(err, RX_EUSAGE,
                                "cache '%s': %s is set but %s is not; set both, or neither to "
                                "use a profile", shown,
                                have_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                have_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
        if (have_id) {
            if (!cred_ok(id) || !cred_ok(key) || (tok && *tok && !cred_ok(tok)))
                return rx_error_set(err, RX_EUSAGE,
                                    "cache '%s': the AWS_* credentials in the environment have "
                                    "a control character", shown);
            s->access_key = xstrdup(id);
            s->secret_key = xstrdup(key);
            if (tok && *tok)
                s->session_token = xstrdup(tok);
            s->cred_source = xstrdup(tok && *tok ? "environment (AWS_ACCESS_KEY_ID, "
                                                   "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)"
                                                 : "environment (AWS_ACCESS_KEY_ID, "
                                                   "AWS_SECRET_ACCESS_KEY)");
            return 0;
        }
    }
    const char *env_profile = getenv("AWS_PROFILE");
    const char *profile = s->profile ? s->profile
                                     : (env_profile && *env_profile ? env_profile : "default");
    bool named = s->profile || (env_profile && *env_profile);
    _cleanup_free_ char *cred_file = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
    _cleanup_free_ char *conf_file = aws_file("AWS_CONFIG_FILE", "config");
    const char *files[2] = {cred_file, conf_file};
    const char *incomplete = NULL;
    for (int i = 0; i < 2; i++) {
        char *id = NULL, *key = NULL, *tok = NULL;
        struct rx_error *e = NULL;
        int r = profile_from(files[i], profile, i == 1, &id, &key, &tok, &e);
        if (r < 0) {
            rx_error_set(err, RX_EUSAGE, "cache '%s': cannot read AWS credentials: %s", shown,
                         e->msg);
            rx_error_free(e);
            return -1;
        }
        if (r > 0 && id && key) {
            bool ok = cred_ok(id) && cred_ok(key) && (!tok || cred_ok(tok));
            if (ok) {
                s->access_key = id;
                s->secret_key = key;
                s->session_token = tok;
                s->cred_source = xasprintf("profile '%s' in %s%s", profile, files[i],
                                           tok ? " (with a session token)" : "");
                return 0;
            }
        }
        if (r > 0 && !incomplete)
            incomplete = files[i];
        free(id);
        if (key)
            explicit_bzero(key, strlen(key));
        free(key);
        if (tok)
            explicit_bzero(tok, strlen(tok));
        free(tok);
    }
    if (incomplete)
        return rx_error_set(err, RX_EUSAGE,
                            "cache '%s': profile '%s' in %s has no aws_access_key_id and "
                            "aws_secret_access_key (runix reads static keys and session "
                            "tokens; get them with 'aws configure export-credentials')",
                            shown, profile, incomplete);
    if (named)
        return rx_error_set(err, RX_EUSAGE,
                            "cache '%s': AWS profile '%s' is in neither %s nor %s; add it "
                            "there, or set AWS_SHARED_CREDENTIALS_FILE or AWS_CONFIG_FILE",
                            shown, profile, cred_file ? cred_file : "~/.aws/credentials",
                            conf_file ? conf_file : "~/.aws/config");
    s->cred_source = xstrdup("none found (requests are not signed: the bucket must allow "
                             "anonymous reads)");
    return 0;
}

int s3_cache_new(const char *url, const char *shown, struct s3_cache **out,
                 struct rx_error **err)
{
    *out = NULL;
    if (strncmp(url, "s3://", 5) != 0)
        return rx_error_set(err, RX_EUSAGE, "cache '%s': not an s3:// URL", shown);
    struct s3_cache *s = xcalloc(1, sizeof *s);
    if (parse_url(s, url, shown, err) < 0 || load_credentials(s, shown, err) < 0) {
        s3_cache_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

char *s3_cache_url(const struct s3_cache *s)
{
    const char *names[] = {"region", "endpoint", "scheme", "profile"};
    const char *vals[] = {strcmp(s->region, "us-east-1") ? s->region : NULL, s->endpoint,
                          strcmp(s->scheme, "https") ? s->scheme : NULL, s->profile};
    char *url = xasprintf("s3://%s", s->bucket);
    char sep = '?';
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (!vals[i])
            continue;
        char *more = xasprintf("%s%c%s=%s", url, sep, names[i], vals[i]);
        free(url);
        url = more;
        sep = '&';
    }
    return url;
}

char *s3_sigv4_provider(const struct s3_cache *s)
{
    return xasprintf("aws:amz:%s:s3", s->region);
}

/* ---- S3's error documents ---- */

/* The text of the first <tag>...</tag> in body, decoded into out. */
static bool element(const char *body, size_t len, const char *tag, char *out, size_t size)
{
    char open[32], close[32];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    size_t ol = strlen(open), cl = strlen(close);
    const char *end = body + len;
    const char *p = NULL;
    for (const char *q = body; q + ol <= end; q++)
        if (memcmp(q, open, ol) == 0) {
            p = q + ol;
            break;
        }
    if (!p || size == 0)
        return false;
    const char *e = NULL;
    for (const char *q = p; q + cl <= end; q++)
        if (memcmp(q, close, cl) == 0) {
            e = q;
            break;
        }
    if (!e)
        return false;
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t n = 0;
    for (const char *q = p; q < e && n + 1 < size;) {
        char c = *q++;
        if (c == '&') {
            for (size_t i = 0; i < ARRAY_SIZE(ents); i++) {
                size_t el = strlen(ents[i].ent) - 1;
                if ((size_t)(e - q) >= el && memcmp(q, ents[i].ent + 1, el) == 0) {
                    c = ents[i].c;
                    q += el;
                    break;
                }
            }
        }
        if ((unsigned char)c < ' ' || c == 0x7f)
            c = ' ';
        out[n++] = c;
    }
    out[n] = '\0';
    return true;
}

bool s3_error_parse(const char *body, size_t len, char *code, size_t code_size, char *msg,
                    size_t msg_size)
{
    if (code_size)
        code[0] = '\0';
    if (msg_size)
        msg[0] = '\0';
    if (!body || len == 0)
        return false;
    if (!element(body, len, "Code", code, code_size) || code[0] == '\0')
        return false;
    for (const char *p = code; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_') {
            code[0] = '\0';
            return false;
        }
    element(body, len, "Message", msg, msg_size);
    return true;
}

bool s3_error_is_missing(long status, const char *code)
{
    if (status == 404 || status == 410)
        return true;
    return status == 403 && (!code || !*code || strcmp(code, "AccessDenied") == 0);
}

const char *s3_error_hint(const char *code)
{
    if (!code)
        return NULL;
    if (strcmp(code, "SignatureDoesNotMatch") == 0)
        return "check the secret access key";
    if (strcmp(code, "InvalidAccessKeyId") == 0)
        return "check the access key id, and that a temporary key comes with its session token";
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return "check this machine's clock";
    if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "TokenRefreshRequired") == 0)
        return "get new temporary credentials";
    if (strcmp(code, "InvalidToken") == 0)
        return "check the session token";
    if (strcmp(code, "AuthorizationHeaderMalformed") == 0)
        return "check the region= of the cache URL";
    if (strcmp(code, "PermanentRedirect") == 0 || strcmp(code, "IllegalLocationConstraintException") == 0)
        return "the bucket is in another region: set region= in the cache URL";
    if (strcmp(code, "NoSuchBucket") == 0)
        return "check the bucket name and the endpoint";
    return NULL;
}
