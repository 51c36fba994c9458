/* The fetcher's HTTP side, and the only libcurl user: requests, their outcome, backoff. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

#include "cache.h"
#include "util-buf.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

/* A narinfo or nix-cache-info request on the multi handle. */
struct xfer {
    enum fetch_request kind;
    size_t idx; /* cache index or item index */
    CURL *easy;
    struct rx_buf body;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    /* a narinfo answered before its cache's nix-cache-info: kept for later */
    bool held;
    CURLcode rc;
    long code;
    struct xfer *prev_all, *next_all; /* every live xfer */
};

struct fetch_http {
    CURLM *multi;
    struct xfer *xfers; /* all live ones, held ones included */
    CURLSH *share;      /* DNS answers and TLS sessions, for every handle */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

struct fetch_http_conn {
    CURL *easy;
};

static enum outcome classify(CURLcode rc, long code)
{
    switch (rc) {
    case CURLE_OK:
        return (code == 0 || (code >= 200 && code < 300)) ? OUT_OK : OUT_PERMANENT;
    case CURLE_HTTP_RETURNED_ERROR:
        if (code == 404 || code == 410 || code == 401 || code == 403 || code == 407)
            return OUT_NOT_FOUND;
        if (code == 408 || code == 429 ||
            (code >= 500 && code != 501 && code != 505 && code != 511))
            return OUT_TRANSIENT;
        return OUT_PERMANENT;
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
        return OUT_NOT_FOUND;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_LOGIN_DENIED:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
        return OUT_PERMANENT;
    default:
        return OUT_TRANSIENT;
    }
}

static char *describe(CURLcode rc, long code, const char *errbuf)
{
    if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && code >= 300))
        return xasprintf("HTTP status %ld", code);
    return xasprintf("%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

double fetch_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nix's backoff: 250 ms * 2^(attempt-1), times a random 1..1.41. */
double fetch_backoff_s(unsigned attempt)
{
    uint16_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = 0;
    double f = 1.0 + 0.41 * (double)r / 65535.0;
    return 0.25 * (double)(1u << (attempt > 10 ? 10 : attempt - 1)) * f;
}

/* Sleep for d seconds, or less when asked to stop. */
void fetch_pause_s(double d)
{
    double end = fetch_now_s() + d;
    for (double t = fetch_now_s(); t < end && !rx_interrupted; t = fetch_now_s()) {
        double step = end - t < 0.05 ? end - t : 0.05;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/*
 * Point e at url.  A redirect may leave an https:// URL only for another
 * https:// one: in cleartext, netrc credentials (which libcurl sends to a
 * redirect target on the same host) and the NAR could be read and changed.
 */
static void set_url(CURL *e, const char *url)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR,
                     strncmp(url, "https://", 8) == 0 ? "https" : "http,https");
}

/* The options every handle has: where it may go, how long it may stall, whom it trusts. */
static void setup_easy(CURL *e, const struct fetch_opts *o, CURLSH *share)
{
    if (share)
        curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "runix/" RUNIX_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     o->stalled_timeout > 0 ? o->stalled_timeout : (long)FETCH_DEFAULT_STALL);
    if (o->connect_timeout > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (o->netrc_file) {
        curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(e, CURLOPT_NETRC_FILE, o->netrc_file);
    }
}

/* ---- the shared DNS and TLS session cache ---- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h;
    (void)access;
    struct fetch_http *http = ctx;
    pthread_mutex_lock(&http->share_mu[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h;
    struct fetch_http *http = ctx;
    pthread_mutex_unlock(&http->share_mu[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

/*
 * Every connection, the download threads' included, looks a host up once
 * and resumes the TLS session an earlier one got, saving a round trip per
 * new connection to a distant cache.  (libcurl cannot share connections
 * themselves between threads.)
 */
static void share_start(struct fetch_http *http)
{
    for (size_t i = 0; i < ARRAY_SIZE(http->share_mu); i++)
        pthread_mutex_init(&http->share_mu[i], NULL);
    http->share = curl_share_init();
    if (!http->share)
        return;
    curl_share_setopt(http->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(http->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(http->share, CURLSHOPT_USERDATA, http);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

/* False when a handle still uses the share (libcurl refuses): it stays, and so must http. */
static bool share_end(struct fetch_http *http)
{
    if (http->share && curl_share_cleanup(http->share) != CURLSHE_OK)
        return false;
    http->share = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(http->share_mu); i++)
        pthread_mutex_destroy(&http->share_mu[i]);
    return true;
}

int fetch_http_start(struct fetch *f, struct rx_error **err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rx_error_set(err, ENOMEM, "cannot initialise libcurl");
    struct fetch_http *http = xcalloc(1, sizeof *http);
    share_start(http);
    http->multi = curl_multi_init();
    unsigned conns = f->o->http_connections ? f->o->http_connections : FETCH_DEFAULT_CONNECTIONS;
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    f->http = http;
    return 0;
}

/* ---- narinfo and nix-cache-info requests (main thread, curl multi) ---- */

static size_t buf_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    if (rx_buf_append(&x->body, data, n) < 0) {
        x->too_big = true;
        return 0;
    }
    return n;
}

void fetch_http_request(struct fetch *f, enum fetch_request kind, size_t idx, const char *url)
{
    struct fetch_http *http = f->http;
    struct xfer *x = xcalloc(1, sizeof *x);
    x->kind = kind;
    x->idx = idx;
    struct rx_buf b = RX_BUF_INIT(kind == REQ_NARINFO ? NARINFO_MAX : CACHE_INFO_MAX);
    x->body = b;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return;
    }
    setup_easy(x->easy, f->o, http->share);
    set_url(x->easy, url);
    /*
     * Over TLS, wait for the first connection to say whether it speaks
     * HTTP/2 and can carry every request; in cleartext only HTTP/1.1 is
     * used, and waiting would only hold the second request back.
     */
    curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT, strncmp(url, "https://", 8) == 0 ? 1L : 0L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, buf_cb);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_multi_add_handle(http->multi, x->easy);
    x->next_all = http->xfers;
    if (http->xfers)
        http->xfers->prev_all = x;
    http->xfers = x;
    f->active++;
    if (kind == REQ_CACHE_INFO)
        f->info_active++;
}

static void xfer_free(struct fetch *f, struct xfer *x)
{
    struct fetch_http *http = f->http;
    if (!x->held) {
        curl_multi_remove_handle(http->multi, x->easy);
        f->active--;
        if (x->kind == REQ_CACHE_INFO)
            f->info_active--;
    }
    if (x->prev_all)
        x->prev_all->next_all = x->next_all;
    else
        http->xfers = x->next_all;
    if (x->next_all)
        x->next_all->prev_all = x->prev_all;
    curl_easy_cleanup(x->easy);
    rx_buf_release(&x->body);
    free(x);
}

void fetch_http_end(struct fetch *f)
{
    struct fetch_http *http = f->http;
    if (!http)
        return;
    /* Requests still in flight or held (after an error). */
    while (http->xfers)
        xfer_free(f, http->xfers);
    curl_multi_cleanup(http->multi);
    if (share_end(http)) {
        free(http);
        f->http = NULL;
    }
}

/* Hand a finished request to the walk, then free it. */
static void xfer_done(struct fetch *f, struct xfer *x, CURLcode rc, long code,
                      struct rx_error **fatal)
{
    struct http_reply r = {
        .outcome = x->too_big ? OUT_PERMANENT : classify(rc, code),
        .too_big = x->too_big,
        .body = x->body.data ? x->body.data : "",
        .len = x->body.len,
    };
    _cleanup_free_ char *why = NULL;
    if (r.outcome != OUT_OK && r.outcome != OUT_NOT_FOUND)
        r.why = why = describe(rc, code, x->errbuf);
    if (x->kind == REQ_CACHE_INFO)
        fetch_cache_info_done(f, x->idx, &r);
    else
        fetch_narinfo_done(f, x->idx, &r, fatal);
    xfer_free(f, x);
}

void fetch_http_collect(struct fetch *f, struct rx_error **fatal)
{
    struct fetch_http *http = f->http;
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(http->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (x->kind == REQ_NARINFO && f->infos_pending) {
            /* Its cache is not known to be usable yet: keep it (see fetch_closure). */
            curl_multi_remove_handle(http->multi, x->easy);
            f->active--;
            x->held = true;
            x->rc = rc;
            x->code = code;
            continue;
        }
        xfer_done(f, x, rc, code, fatal);
    }
}

int fetch_http_take_held(struct fetch *f, struct rx_error **err)
{
    struct rx_error *fatal = NULL;
    for (struct xfer *x = f->http->xfers, *next; x; x = next) {
        next = x->next_all;
        if (!x->held)
            continue;
        if (!fatal)
            xfer_done(f, x, x->rc, x->code, &fatal);
        else
            xfer_free(f, x);
    }
    return fatal ? fetch_pass_error(fatal, err) : 0;
}

int fetch_http_wait(struct fetch *f, int timeout_ms, struct rx_error **err)
{
    CURLM *multi = f->http->multi;
    if (rx_interrupted)
        return rx_error_set(err, EINTR, "interrupted");
    int running;
    if (curl_multi_perform(multi, &running) != CURLM_OK)
        return rx_error_set(err, RX_ENET, "libcurl multi interface failed");
    /* A transfer finished already: collect it before waiting for more. */
    if ((unsigned)running < f->active)
        return 0;
    if (curl_multi_poll(multi, NULL, 0, timeout_ms, NULL) != CURLM_OK ||
        curl_multi_perform(multi, &running) != CURLM_OK)
        return rx_error_set(err, RX_ENET, "libcurl multi interface failed");
    return 0;
}

void fetch_http_wakeup(struct fetch *f)
{
    curl_multi_wakeup(f->http->multi);
}

/* ---- NAR downloads (worker threads, one easy handle each) ---- */

/* Stops a download that waits for data when we are asked to stop. */
static int stop_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    (void)ctx;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return rx_interrupted != 0;
}

struct fetch_http_conn *fetch_http_conn_new(struct fetch *f)
{
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    setup_easy(e, f->o, f->http->share);
    /* Fewer, larger callbacks for the NAR pipeline. */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, stop_cb);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    struct fetch_http_conn *c = xcalloc(1, sizeof *c);
    c->easy = e;
    return c;
}

void fetch_http_conn_free(struct fetch_http_conn *c)
{
    if (c)
        curl_easy_cleanup(c->easy);
    free(c);
}

struct get_ctx {
    fetch_body_fn fn;
    void *ctx;
    bool encoded;
};

static size_t body_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct get_ctx *g = ctx;
    size_t n = size * nmemb;
    return g->fn(g->ctx, data, n) ? n : 0;
}

/*
 * Notes a Content-Encoding (libcurl decodes it): a Range request counts in
 * the encoded bytes, so such a download cannot be resumed from what we hold.
 */
static size_t header_cb(char *line, size_t size, size_t nmemb, void *ctx)
{
    struct get_ctx *g = ctx;
    size_t n = size * nmemb;
    static const char name[] = "content-encoding:";
    if (n > 5 && memcmp(line, "HTTP/", 5) == 0) {
        g->encoded = false; /* a new response (after a redirect) */
    } else if (n > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        const char *v = line + sizeof name - 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(end - v);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl > 0 && !(vl == 8 && strncasecmp(v, "identity", 8) == 0))
            g->encoded = true;
    }
    return n;
}

void fetch_http_get(struct fetch_http_conn *c, const char *url, uint64_t from, fetch_body_fn fn,
                    void *ctx, struct http_get_result *res)
{
    CURL *e = c->easy;
    struct get_ctx g = {.fn = fn, .ctx = ctx};
    char errbuf[CURL_ERROR_SIZE] = "";
    set_url(e, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &g);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    /* Resuming asks for the rest only; libcurl fails with CURLE_RANGE_ERROR unless
     * the server answers 206 from exactly that offset. */
    curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)from);
    CURLcode rc = curl_easy_perform(e);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    /* The buffer and the context are ours only for this call. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    *res = (struct http_get_result){
        .outcome = rc == CURLE_OK ? OUT_OK : classify(rc, code),
        .range_refused = rc == CURLE_RANGE_ERROR,
        .encoded = g.encoded,
        .why = rc == CURLE_OK ? NULL : describe(rc, code, errbuf),
    };
}

/* ---- runix doctor's question ---- */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

int fetch_cache_probe(const struct cache *c, const struct fetch_opts *o, struct rx_error **err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rx_error_set(err, RX_ENET, "cannot initialise libcurl");
    CURL *h = curl_easy_init();
    if (!h)
        return rx_error_set(err, RX_ENET, "cannot initialise libcurl");
    _cleanup_free_ char *u = cache_file_url(c, "nix-cache-info");
    char errbuf[CURL_ERROR_SIZE] = "";
    set_url(h, u);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
    if (o->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    if (o->netrc_file) {
        curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(h, CURLOPT_NETRC_FILE, o->netrc_file);
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (rc != CURLE_OK)
        ret = rx_error_set(err, RX_ENET, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (strncmp(c->url, "file:", 5) != 0 && code != 200)
        ret = rx_error_set(err, RX_ENET, "nix-cache-info: HTTP %ld", code);
    curl_easy_cleanup(h);
    return ret;
}

struct doc_ctx {
    struct rx_buf *body;
    bool too_big;
    char *etag, *last_modified;
};

static size_t doc_body(char *p, size_t size, size_t n, void *ctx)
{
    struct doc_ctx *d = ctx;
    if (rx_buf_append(d->body, p, size * n) < 0) {
        d->too_big = true;
        return 0;
    }
    return size * n;
}

/* A header line's value, without the CR LF, if the line is "name: value". */
static char *header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n + 1 || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    return xstrndup(v, (size_t)(end - v));
}

static size_t doc_header(char *line, size_t size, size_t n, void *ctx)
{
    struct doc_ctx *d = ctx;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response, after a redirect */
        free(d->etag);
        free(d->last_modified);
        d->etag = d->last_modified = NULL;
        rx_buf_reset(d->body);
    }
    char *v;
    if ((v = header_value(line, len, "ETag"))) {
        free(d->etag);
        d->etag = v;
    } else if ((v = header_value(line, len, "Last-Modified"))) {
        free(d->last_modified);
        d->last_modified = v;
    }
    return len;
}

int fetch_document(const char *url, const struct fetch_opts *o, struct fetch_document *doc,
                   struct rx_error **err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rx_error_set(err, RX_ENET, "cannot initialise libcurl");
    CURL *h = curl_easy_init();
    if (!h)
        return rx_error_set(err, RX_ENET, "cannot initialise libcurl");
    struct doc_ctx d = { .body = &doc->body };
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    if (doc->etag) {
        _cleanup_free_ char *hd = xasprintf("If-None-Match: %s", doc->etag);
        headers = curl_slist_append(headers, hd);
    }
    if (doc->last_modified) {
        _cleanup_free_ char *hd = xasprintf("If-Modified-Since: %s", doc->last_modified);
        headers = curl_slist_append(headers, hd);
    }
    set_url(h, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, doc_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, doc_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &d);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    if (o->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    if (o->netrc_file) {
        curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(h, CURLOPT_NETRC_FILE, o->netrc_file);
    }
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (d.too_big)
        ret = rx_error_set(err, RX_EFORMAT, "larger than %zu bytes", doc->body.max);
    else if (rc != CURLE_OK)
        ret = rx_error_set(err, RX_ENET, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (code == 304 && (doc->etag || doc->last_modified))
        doc->not_modified = true;
    else if (code != 200)
        ret = rx_error_set(err, code == 404 ? RX_ENOTFOUND : RX_ENET, "HTTP %ld", code);
    if (ret == 0 && !doc->not_modified) {
        free(doc->etag);
        free(doc->last_modified);
        doc->etag = d.etag;
        doc->last_modified = d.last_modified;
    } else {
        free(d.etag);
        free(d.last_modified);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ret;
}
