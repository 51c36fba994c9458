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
#include "decompress.h"
#include "fetch-hosts.h"
#include "s3.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

/*
 * The connections to one host (scheme://authority), shared by the
 * narinfo requests of the multi handle and the download threads: at most
 * `limit` in use at once.  It starts at a few and grows by one for each
 * request that completes while others wait (doubling per round trip, as
 * TCP's slow start does), up to http-connections.  A connect that took a
 * second longer than the fastest one seen had its SYN dropped and sent
 * again: the server's listen backlog overflowed (Python's http.server has
 * 5) or the path is congested.  The limit then halves, and grows again by
 * one per `limit` completions.  A refused connection counts the same.
 * A server that keeps connections open gets the whole limit after its
 * first answer (see gate_note).
 * A host that an earlier fetch noted (fetch-hosts.h) starts at the
 * connections that fetch had open without a loss, not at a few: on a
 * distant server that saves the round trips of growing again.
 * Each kind of request may have half the connections whenever the other
 * kind wants more: narinfos keep the walk going while NARs download.
 * Over HTTP/2 the narinfo requests share one multiplexed connection and
 * are not limited here (libcurl keeps them on it).
 * A server that closes every connection is limited in the connections
 * that have not been answered yet, which are what fill its listen
 * backlog; one answering (a big NAR streaming for seconds) leaves room,
 * and all of them together stay within http-connections.
 * Such a server also pays for a connection per request, and one that
 * serves them in turn (a thread per connection under one lock, as
 * Python's http.server) answers more slowly the more it has at once.
 * So its limit also follows the time to the first answer, as TCP Vegas
 * follows round trips: with `base` the fastest answer seen and `now` the
 * fastest of the last few, n * (1 - base / now) of the n requests out are
 * waiting in the server's queue rather than being served.  Above
 * QUEUE_HIGH the limit comes down to those being served, plus one, and
 * then counts every connection in use, answered or not; at QUEUE_LOW or
 * more it holds; below it grows by one per `limit` answers.  A server that
 * serves requests side by side (a distant or a parallel one) answers as
 * fast with many out, so its limit still grows to http-connections.
 * Each kind of request has its own times (a NAR's first byte may come
 * later than a narinfo's).
 */
#define GATE_START 4
#define GATE_MIN 2
#define GATE_LOSS_S 0.8 /* Linux sends the first SYN again after 1 s */
#define GATE_PROBE_S 10.0
#define QUEUE_LOW 0.5
#define QUEUE_HIGH 1.5
#define QUEUE_WINDOW 8  /* answers that "now" is the fastest of */
#define QUEUE_SAMPLES 3 /* answers needed for a judgement */
/*
 * A connect that has not completed within four times the fastest one
 * seen (at least EARLY_MIN_MS, below the second after which Linux sends a
 * dropped SYN again) is given up and made again at once: the new SYN finds
 * room in the backlog that the dropped one did not, and the request does
 * not stall a second.  At most EARLY_TRIES times per request, then the
 * connect has its usual time (connect-timeout).
 */
#define EARLY_MIN_MS 100
#define EARLY_MAX_MS 900
#define EARLY_TRIES 2

enum gate_kind { GK_NARINFO, GK_NAR };

struct gate {
    struct gate *next;
    char *key;                    /* owned: scheme://authority */
    unsigned limit;               /* connections that may be in use now */
    unsigned max;                 /* http-connections */
    unsigned used[2], waiting[2]; /* by enum gate_kind */
    unsigned opening[2];          /* of used: not answered yet (still waiting for a status line) */
    bool closes;                  /* its first answer closed the connection (HTTP/1.0 and such) */
    bool told;                    /* an answer has said whether it closes */
    unsigned credit;              /* completions since the last growth, after a loss */
    unsigned cap;                 /* after a loss: one less than the limit that lost; 0 before */
    bool multiplexed;             /* HTTP/2: narinfo requests share one connection */
    bool probed;                  /* the first answer has told whether connections are kept */
    double rtt_min;               /* the fastest connect seen, s; < 0 before the first */
    double loss_at;               /* when the limit last halved (or cap last grew) */
    unsigned peak;                /* the most connections in use at once */
    unsigned noted;               /* what an earlier fetch noted of the host; 0 if nothing */
    bool lost;                    /* a loss was seen */
    bool answered;                /* a request completed */
    /* times to the first answer, s, by enum gate_kind (a server that closes connections) */
    double answer_min[2];                  /* the fastest seen; 0 before the first */
    double answer_last[2][QUEUE_WINDOW];   /* the last few, a ring */
    unsigned answers[2];                   /* how many seen */
    bool queued;                  /* the answer times said requests wait at the server */
    pthread_cond_t room;          /* signalled when a download thread waiting here may go */
};

/* A narinfo or nix-cache-info request on the multi handle. */
struct xfer {
    enum fetch_request kind;
    size_t idx; /* cache index or item index */
    char *url;  /* owned */
    CURL *easy; /* made when it leaves the queue (xfer_prepare) */
    struct gate *gate; /* NULL for file:// */
    bool slot;         /* holds one of gate's connections */
    unsigned early;    /* connects given up early (EARLY_TRIES) */
    long early_ms;     /* the early limit of the current attempt; 0 if none */
    bool queued;       /* waiting for one, not on the multi handle yet */
    double started;
    struct xfer *prev_q, *next_q; /* the queue of those waiting */
    struct rx_buf body;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    char *s3_what;               /* owned; for an s3:// cache, what its errors name */
    struct curl_slist *headers;  /* owned; the request's own headers */
    /* a narinfo answered before its cache's nix-cache-info: kept for later */
    bool held;
    CURLcode rc;
    long code;
    struct xfer *prev_all, *next_all; /* every live xfer */
};

struct fetch_http {
    CURLM *multi;
    struct xfer *xfers;           /* all live ones, held ones included */
    struct xfer *q_head, *q_tail; /* waiting for a connection, oldest first */
    unsigned queued;              /* how many: counted in f->active, not on the multi handle */
    CURLSH *share;                /* DNS answers and TLS sessions, for every handle */
    CURL *spare[MAX_ACTIVE_QUERIES]; /* handles of finished requests, for the next ones */
    unsigned nspare;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    /* the gates, one per host; gate_mu guards them and their fields */
    pthread_mutex_t gate_mu;
    struct gate *gates;
    bool no_wait; /* the download threads are being stopped: take no turns */
    /* for the "waiting for CACHE" report */
    double progress_at; /* a request finished or NAR bytes came */
    uint64_t bytes_seen;
    double reported_at;
    struct host_notes notes; /* what earlier fetches noted of hosts */
};

struct fetch_http_conn {
    CURL *easy;
    struct fetch *f;
    struct curl_slist *headers; /* owned; the current request's own headers */
    bool signed_before;         /* the last request was signed (s3_setup) */
    bool s3_before;             /* the last request was to an s3:// cache */
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

/*
 * The failure of a transfer on e in words.  A timeout names the setting
 * that ran out: libcurl's own message ("Operation timed out after 8001
 * milliseconds") does not say which, nor what to change.
 */
static char *describe(CURL *e, const struct fetch_opts *o, bool nar, CURLcode rc, long code,
                      const char *errbuf)
{
    if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && code >= 300))
        return xasprintf("HTTP status %ld", code);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
        long total = o->narinfo_timeout > 0 ? o->narinfo_timeout : FETCH_DEFAULT_NARINFO_TIMEOUT;
        if (connected == 0 && o->connect_timeout > 0 && (nar || o->connect_timeout <= total))
            return xasprintf("no connection within %ld s (connect-timeout)", o->connect_timeout);
        if (!nar)
            return xasprintf("%s within %ld s (narinfo-timeout); raise narinfo-timeout in "
                             "runix.conf if the cache is just slow",
                             connected ? "no answer" : "no connection", total);
        if (connected)
            return xasprintf("stalled: no data for %ld s (stalled-download-timeout)",
                             o->stalled_timeout > 0 ? o->stalled_timeout
                                                    : (long)FETCH_DEFAULT_STALL);
    }
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

/* ---- s3:// caches: requests signed by libcurl's own SigV4 ---- */

/*
 * The SHA-256 of an empty body.  S3 wants the payload's hash in
 * x-amz-content-sha256 and checks it against the canonical request;
 * libcurl 7.88 hashes the (empty) body of a GET but does not send the
 * header, so it is sent here, and libcurl signs it with the other
 * headers given.
 */
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* What an s3:// cache's errors name: bucket, region, where the keys came from. */
static char *s3_what(const struct s3_cache *s)
{
    return xasprintf("bucket '%s', region %s, credentials: %s", s->bucket, s->region,
                     s->cred_source);
}

/*
 * Make e's request to url as its cache wants: for an s3:// cache with
 * credentials, signed with SigV4 (the key pair goes to libcurl as user
 * and password, never into a URL or the process list), with S3's error
 * documents read rather than dropped.  Any other url undoes that on a
 * handle that is used again.  Returns the header list, which must live
 * until the transfer ends, or NULL; *what is set for an s3:// cache.
 * signed_before (NULL for a new handle) says whether the handle's last
 * request was signed, and is updated.
 */
static struct curl_slist *s3_setup(CURL *e, const struct fetch_opts *o, const char *url,
                                   char **what, bool *signed_before)
{
    const struct cache *c = cache_find_s3(o->caches, o->ncaches, url);
    *what = NULL;
    /* A handle that never made a signed request is left exactly as it is. */
    bool was = signed_before && *signed_before;
    if (signed_before)
        *signed_before = c && c->s3->access_key;
    if (!c && !was)
        return NULL;
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, NULL);
    curl_easy_setopt(e, CURLOPT_USERNAME, NULL);
    curl_easy_setopt(e, CURLOPT_PASSWORD, NULL);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
    if (!c)
        return NULL;
    const struct s3_cache *s = c->s3;
    *what = s3_what(s);
    if (!s->access_key)
        return NULL;
    _cleanup_free_ char *provider = s3_sigv4_provider(s);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, provider);
    curl_easy_setopt(e, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(e, CURLOPT_PASSWORD, s->secret_key);
    struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: " EMPTY_SHA256);
    if (h && s->session_token) {
        _cleanup_free_ char *t = xasprintf("x-amz-security-token: %s", s->session_token);
        struct curl_slist *more = curl_slist_append(h, t);
        explicit_bzero(t, strlen(t));
        if (!more) {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    return h;
}

/*
 * What S3's answer `code` (>= 300) with its error document body means:
 * a missing key (404, or 403 AccessDenied to whom may not list the
 * bucket) is not found; SlowDown and other 5xx are retried; anything
 * else (a wrong key or secret, clock skew, a missing session token, the
 * wrong region) is named with S3's own code and message.
 */
static enum outcome s3_outcome(const char *what, long code, const char *body, size_t len,
                               char **why)
{
    char ecode[64], msg[512];
    bool doc = s3_error_parse(body, len, ecode, sizeof ecode, msg, sizeof msg);
    *why = NULL;
    if (s3_error_is_missing(code, doc ? ecode : NULL))
        return OUT_NOT_FOUND;
    enum outcome out = classify(CURLE_HTTP_RETURNED_ERROR, code);
    if (out == OUT_NOT_FOUND)
        out = OUT_PERMANENT;
    if (doc && (strcmp(ecode, "RequestTimeout") == 0 || strcmp(ecode, "SlowDown") == 0))
        out = OUT_TRANSIENT;
    const char *hint = doc ? s3_error_hint(ecode) : NULL;
    if (doc)
        *why = xasprintf("S3 answered HTTP %ld %s: %s (%s)%s%s", code, ecode,
                         msg[0] ? msg : "no message", what, hint ? "; " : "", hint ? hint : "");
    else
        *why = xasprintf("S3 answered HTTP %ld (%s)", code, what);
    return out;
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

/* ---- the connections per host ---- */

/* The gate of url's host, made on first use; NULL for file:// (f's gate_mu held). */
static struct gate *gate_find(struct fetch *f, const char *url)
{
    struct fetch_http *http = f->http;
    const char *p = strstr(url, "://");
    if (!p || strncmp(url, "file:", 5) == 0)
        return NULL;
    size_t n = (size_t)(p + 3 - url) + strcspn(p + 3, "/?#");
    for (struct gate *g = http->gates; g; g = g->next)
        if (strlen(g->key) == n && memcmp(g->key, url, n) == 0)
            return g;
    struct gate *g = xcalloc(1, sizeof *g);
    g->key = xstrndup(url, n);
    g->max = f->o->http_connections ? f->o->http_connections : FETCH_DEFAULT_CONNECTIONS;
    g->limit = g->max < GATE_START ? g->max : GATE_START;
    char key[HOST_KEY_MAX + 1];
    if (host_key(g->key, key) == 0)
        g->noted = host_notes_get(&http->notes, key, (int64_t)time(NULL));
    if (g->noted)
        g->limit = g->noted > g->max ? g->max : g->noted < GATE_MIN ? GATE_MIN : g->noted;
    g->rtt_min = -1;
    g->loss_at = -1e9;
    pthread_cond_init(&g->room, NULL);
    g->next = http->gates;
    http->gates = g;
    return g;
}

static struct gate *gate_for(struct fetch *f, const char *url)
{
    pthread_mutex_lock(&f->http->gate_mu);
    struct gate *g = gate_find(f, url);
    pthread_mutex_unlock(&f->http->gate_mu);
    return g;
}

/*
 * The connections that count toward g's limit, by kind: for a server that
 * closes every connection, those not answered yet, until its answer times
 * have shown a queue (see QUEUE_HIGH); else all those in use.
 */
static const unsigned *gate_busy(const struct gate *g)
{
    return g->closes && !g->queued ? g->opening : g->used;
}

/* May a request of kind k take a connection now?  gate_mu held. */
static bool gate_room(const struct gate *g, enum gate_kind k)
{
    const unsigned *busy = gate_busy(g);
    if (busy[GK_NARINFO] + busy[GK_NAR] >= g->limit ||
        g->used[GK_NARINFO] + g->used[GK_NAR] >= g->max)
        return false;
    enum gate_kind o = k == GK_NAR ? GK_NARINFO : GK_NAR;
    /* Past its half only while the other kind has all it wants. */
    return busy[k] < (g->limit + 1) / 2 || g->waiting[o] == 0;
}

/*
 * Wake one download thread waiting at g if one may go now (gate_mu held).
 * One, not all: with dozens waiting for each freed connection, waking
 * them all costs more CPU than the small downloads themselves.  The one
 * woken wakes the next if there is room for more.
 */
static void gate_wake(struct gate *g)
{
    if (g->waiting[GK_NAR] > 0 && gate_room(g, GK_NAR))
        pthread_cond_signal(&g->room);
}

/* Whether the server of e's answer left the connection open for more requests. */
static bool keeps_connection(CURL *e)
{
    long version = 0;
    if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) != CURLE_OK ||
        version < CURL_HTTP_VERSION_1_1)
        return false;
    struct curl_header *h = NULL;
    if (curl_easy_header(e, "Connection", 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h &&
        strcasestr(h->value, "close"))
        return false;
    return true;
}

/* Count the connections in use now toward g's peak; gate_mu held. */
static void gate_peak(struct gate *g)
{
    const unsigned *busy = gate_busy(g);
    unsigned n = busy[GK_NARINFO] + busy[GK_NAR];
    if (n > g->peak)
        g->peak = n;
}

/*
 * How long a new connection to g's host may take before it is made again
 * (after `tries` such), or 0 for its usual time; gate_mu held.
 */
static long early_connect_ms(const struct gate *g, unsigned tries)
{
    if (!g || tries >= EARLY_TRIES || g->rtt_min < 0)
        return 0; /* nothing to go by yet */
    long ms = (long)(g->rtt_min * 4 * 1000) + EARLY_MIN_MS;
    return ms > EARLY_MAX_MS ? 0 : ms;
}

/* Did e give up a connect at the early limit (and nothing else)? */
static bool early_gave_up(CURL *e, CURLcode rc, long limit_ms)
{
    if (rc != CURLE_OPERATION_TIMEDOUT || limit_ms <= 0)
        return false;
    curl_off_t connect = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    return connect == 0 && total < 1000000; /* every other limit is a second or more */
}

/* The connect limit for the next request on e: early, or the usual one. */
static void set_connect_limit(CURL *e, const struct fetch_opts *o, long early_ms)
{
    long usual = o->connect_timeout > 0 ? o->connect_timeout * 1000 : 0;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, early_ms > 0 ? early_ms : usual);
}

/*
 * How many requests wait in the queue of g's host (see QUEUE_HIGH), by
 * the time t (s) to the first answer of one of kind k, with n out at once;
 * < 0 while too few were seen since the limit last came down for a queue.
 */
static double gate_queue(struct gate *g, enum gate_kind k, double t, unsigned n)
{
    if (t <= 0)
        return -1;
    if (g->answer_min[k] == 0 || t < g->answer_min[k])
        g->answer_min[k] = t;
    g->answer_last[k][g->answers[k] % QUEUE_WINDOW] = t;
    if (++g->answers[k] < QUEUE_SAMPLES)
        return -1;
    unsigned have = g->answers[k] < QUEUE_WINDOW ? g->answers[k] : QUEUE_WINDOW;
    double now = t;
    for (unsigned i = 0; i < have; i++)
        if (g->answer_last[k][i] < now)
            now = g->answer_last[k][i];
    return n * (1 - g->answer_min[k] / now);
}

/* What a finished transfer of kind k says about g's host; gate_mu held. */
static void gate_note(struct gate *g, enum gate_kind k, CURL *e, CURLcode rc)
{
    long conns = 0;
    curl_off_t connect = 0, lookup = 0, total = 0;
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(e, CURLINFO_NAMELOOKUP_TIME_T, &lookup);
    curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
    double t = conns > 0 && connect > 0 ? (double)(connect - lookup) / 1e6 : -1;
    double now = fetch_now_s();
    bool loss = rc == CURLE_COULDNT_CONNECT ||
                (t >= 0 && t > (g->rtt_min >= 0 ? g->rtt_min : 0) + GATE_LOSS_S) ||
                (rc == CURLE_OPERATION_TIMEDOUT && conns == 0 && total < 1000000);
    g->answered = true;
    g->lost |= loss;
    if (rc == CURLE_OK && !g->told) {
        g->told = true;
        g->closes = !keeps_connection(e);
    }
    if (t >= 0 && (g->rtt_min < 0 || t < g->rtt_min))
        g->rtt_min = t;
    if (loss) {
        /*
         * Only a connection begun after the last halving tells of the
         * limit now: the others were of the burst that caused it.
         */
        if (now - (double)total / 1e6 > g->loss_at) {
            g->cap = g->limit > GATE_MIN ? g->limit - 1 : GATE_MIN;
            g->limit = g->limit / 2 < GATE_MIN ? GATE_MIN : g->limit / 2;
            g->loss_at = now;
        }
        g->credit = 0;
        return;
    }
    /* Some time without a loss: probe above the limit that failed. */
    if (g->cap && now - g->loss_at > GATE_PROBE_S) {
        g->cap++;
        g->loss_at = now;
    }
    if (rc == CURLE_OK && g->closes) {
        curl_off_t first = 0;
        curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first);
        /* This one was still out when its answer came. */
        unsigned out = g->opening[GK_NARINFO] + g->opening[GK_NAR] + 1;
        double q = gate_queue(g, k, (double)first / 1e6, out);
        if (q > QUEUE_HIGH) {
            /*
             * Down to those the server was serving (and one more), and
             * then nothing more until new answers tell of the new limit.
             */
            unsigned served = (unsigned)(out - q + 1.5);
            unsigned to = served < g->limit ? served : g->limit - 1;
            g->limit = to < GATE_MIN ? GATE_MIN : to;
            g->queued = true;
            g->answers[GK_NARINFO] = g->answers[GK_NAR] = 0;
            return;
        }
        if (q >= QUEUE_LOW || (q < 0 && g->queued))
            return;
    }
    unsigned top = g->cap && g->cap < g->max ? g->cap : g->max;
    if (rc != CURLE_OK || g->limit >= top)
        return;
    /*
     * A server that keeps its connections open (HTTP/1.1 or later, no
     * "Connection: close") is built to serve many at once, and each
     * connection is opened once: the first answer without a loss takes the
     * limit to the top.  A server that closes every connection gets one
     * more per answer, so that its listen backlog is never flooded.
     */
    if (!g->cap && !g->probed) {
        g->probed = true;
        if (keeps_connection(e)) {
            g->limit = top;
            return;
        }
    }
    /* Grow only when more was wanted than the limit allowed. */
    if (g->waiting[GK_NARINFO] + g->waiting[GK_NAR] == 0)
        return;
    /* After a loss or a queue, by one per `limit` answers. */
    if ((!g->cap && !g->queued) || ++g->credit >= g->limit) {
        g->limit++;
        g->credit = 0;
    }
}

/*
 * A download thread's turn at g's host (at once when the threads are being
 * stopped), with the early connect limit after `early` such in *early_ms.
 */
static void gate_enter_nar(struct fetch *f, struct gate *g, unsigned early, long *early_ms)
{
    struct fetch_http *http = f->http;
    pthread_mutex_lock(&http->gate_mu);
    g->waiting[GK_NAR]++;
    while (!gate_room(g, GK_NAR) && !http->no_wait && !rx_interrupted) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g->room, &http->gate_mu, &ts);
    }
    g->waiting[GK_NAR]--;
    g->used[GK_NAR]++;
    g->opening[GK_NAR]++;
    gate_peak(g);
    gate_wake(g);
    *early_ms = early_connect_ms(g, early);
    pthread_mutex_unlock(&http->gate_mu);
}

/* The first answer on a download thread's connection to g: it is not opening any more. */
static void gate_answered(struct fetch *f, struct gate *g)
{
    struct fetch_http *http = f->http;
    pthread_mutex_lock(&http->gate_mu);
    g->opening[GK_NAR]--;
    bool wake_main = g->closes && g->waiting[GK_NARINFO] > 0;
    gate_wake(g);
    pthread_mutex_unlock(&http->gate_mu);
    if (wake_main)
        curl_multi_wakeup(http->multi);
}

/* A connection of g given back (still opening, or answered); the other side may take it. */
static void gate_leave(struct fetch *f, struct gate *g, enum gate_kind k, bool opening, CURL *e,
                       CURLcode rc)
{
    struct fetch_http *http = f->http;
    pthread_mutex_lock(&http->gate_mu);
    g->used[k]--;
    if (opening)
        g->opening[k]--;
    gate_note(g, k, e, rc);
    bool wake_main = k == GK_NAR && g->waiting[GK_NARINFO] > 0;
    gate_wake(g);
    pthread_mutex_unlock(&http->gate_mu);
    if (wake_main)
        curl_multi_wakeup(http->multi);
}

void fetch_http_stop_waiting(struct fetch *f)
{
    if (!f->http)
        return;
    pthread_mutex_lock(&f->http->gate_mu);
    f->http->no_wait = true;
    for (struct gate *g = f->http->gates; g; g = g->next)
        pthread_cond_broadcast(&g->room);
    pthread_mutex_unlock(&f->http->gate_mu);
}

/*
 * Note what this fetch learned of each host it used: after a loss, the
 * limit it came down to; else the most connections it had open (or what an
 * earlier fetch noted, if more, or the limit a server that keeps its
 * connections was given), at least the usual start.
 */
static void gates_note(const struct fetch *f, struct fetch_http *http)
{
    if (!f->o->host_notes || f->o->dry_run)
        return;
    struct host_notes news = { 0 };
    int64_t now = (int64_t)time(NULL);
    for (const struct gate *g = http->gates; g; g = g->next) {
        char key[HOST_KEY_MAX + 1];
        if (!g->answered || host_key(g->key, key) < 0)
            continue;
        unsigned n = g->peak > g->noted ? g->peak : g->noted;
        n = n < GATE_START ? GATE_START : n;
        /* One that keeps connections gets the whole limit after its first answer anyway. */
        if (g->told && !g->closes && g->limit > n)
            n = g->limit;
        if (g->lost || g->queued)
            n = g->limit;
        host_notes_set(&news, key, n > g->max ? g->max : n, now);
    }
    if (news.n)
        (void)host_notes_save(f->o->host_notes, &news, now); /* a hint: never an error */
    host_notes_release(&news);
}

static void gates_free(struct fetch_http *http)
{
    while (http->gates) {
        struct gate *g = http->gates;
        http->gates = g->next;
        free(g->key);
        pthread_cond_destroy(&g->room);
        free(g);
    }
    pthread_mutex_destroy(&http->gate_mu);
}

int fetch_http_start(struct fetch *f, struct rx_error **err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return rx_error_set(err, ENOMEM, "cannot initialise libcurl");
    struct fetch_http *http = xcalloc(1, sizeof *http);
    share_start(http);
    pthread_mutex_init(&http->gate_mu, NULL);
    http->multi = curl_multi_init();
    unsigned conns = f->o->http_connections ? f->o->http_connections : FETCH_DEFAULT_CONNECTIONS;
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    /*
     * Keep every idle keep-alive connection for the next request (by
     * default libcurl keeps 4 per handle added, and handles come and go).
     */
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, (long)conns);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    http->progress_at = fetch_now_s();
    if (f->o->host_notes && !f->o->dry_run)
        host_notes_load(&http->notes, f->o->host_notes);
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

/*
 * A handle of a finished request, reset, or a new one: a new handle costs
 * allocations and a resolver of its own, for every one of hundreds of
 * narinfo requests.
 */
static CURL *easy_take(struct fetch_http *http)
{
    return http->nspare ? http->spare[--http->nspare] : curl_easy_init();
}

static void easy_give(struct fetch_http *http, CURL *e)
{
    if (!e)
        return;
    if (http->nspare < ARRAY_SIZE(http->spare)) {
        curl_easy_reset(e);
        http->spare[http->nspare++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* The handle of x, set up as it leaves the queue; false when libcurl has none to give. */
static bool xfer_prepare(struct fetch *f, struct xfer *x)
{
    struct fetch_http *http = f->http;
    x->easy = easy_take(http);
    if (!x->easy)
        return false;
    setup_easy(x->easy, f->o, http->share);
    set_url(x->easy, x->url);
    x->headers = s3_setup(x->easy, f->o, x->url, &x->s3_what, NULL);
    if (x->s3_what)
        curl_easy_setopt(x->easy, CURLOPT_FAILONERROR, 0L);
    /*
     * Over TLS, wait for the first connection to say whether it speaks
     * HTTP/2 and can carry every request; in cleartext only HTTP/1.1 is
     * used, and waiting would only hold the second request back.
     */
    curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT, strncmp(x->url, "https://", 8) == 0 ? 1L : 0L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, buf_cb);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    /* The whole request, connecting included: a cache that never answers fails soon. */
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT,
                     f->o->narinfo_timeout > 0 ? f->o->narinfo_timeout
                                               : (long)FETCH_DEFAULT_NARINFO_TIMEOUT);
    return true;
}

void fetch_http_request(struct fetch *f, enum fetch_request kind, size_t idx, const char *url)
{
    struct fetch_http *http = f->http;
    struct xfer *x = xcalloc(1, sizeof *x);
    x->kind = kind;
    x->idx = idx;
    struct rx_buf b = RX_BUF_INIT(kind == REQ_NARINFO ? NARINFO_MAX : CACHE_INFO_MAX);
    x->body = b;
    x->url = xstrdup(url);
    x->gate = gate_for(f, url);
    x->queued = true;
    http->queued++;
    if (kind == REQ_CACHE_INFO && http->q_head) {
        /* First: a cache's NARs wait for its nix-cache-info, not its narinfos. */
        x->next_q = http->q_head;
        http->q_head->prev_q = x;
        http->q_head = x;
    } else {
        if (http->q_tail) {
            http->q_tail->next_q = x;
            x->prev_q = http->q_tail;
        } else {
            http->q_head = x;
        }
        http->q_tail = x;
    }
    if (x->gate) {
        pthread_mutex_lock(&http->gate_mu);
        x->gate->waiting[GK_NARINFO]++;
        pthread_mutex_unlock(&http->gate_mu);
    }
    x->next_all = http->xfers;
    if (http->xfers)
        http->xfers->prev_all = x;
    http->xfers = x;
    f->active++;
    if (kind == REQ_CACHE_INFO)
        f->info_active++;
}

/* Back to the head of the queue, x having been on the multi handle (it stays in f->active). */
static void requeue_front(struct fetch *f, struct xfer *x)
{
    struct fetch_http *http = f->http;
    pthread_mutex_lock(&http->gate_mu);
    x->queued = true;
    http->queued++;
    x->prev_q = NULL;
    x->next_q = http->q_head;
    if (http->q_head)
        http->q_head->prev_q = x;
    else
        http->q_tail = x;
    http->q_head = x;
    if (x->gate)
        x->gate->waiting[GK_NARINFO]++;
    pthread_mutex_unlock(&http->gate_mu);
}

static void unqueue(struct fetch_http *http, struct xfer *x)
{
    if (x->prev_q)
        x->prev_q->next_q = x->next_q;
    else
        http->q_head = x->next_q;
    if (x->next_q)
        x->next_q->prev_q = x->prev_q;
    else
        http->q_tail = x->prev_q;
    x->prev_q = x->next_q = NULL;
    x->queued = false;
    http->queued--;
    if (x->gate) {
        x->gate->waiting[GK_NARINFO]--;
        gate_wake(x->gate); /* the NARs may have more than half now */
    }
}

/* Put the queued requests on the multi handle as their hosts have room, in queue order. */
static void pump(struct fetch *f)
{
    struct fetch_http *http = f->http;
    if (!http->q_head)
        return;
    pthread_mutex_lock(&http->gate_mu);
    for (struct xfer *x = http->q_head, *next; x; x = next) {
        next = x->next_q;
        struct gate *g = x->gate;
        if (g && !g->multiplexed && !gate_room(g, GK_NARINFO))
            continue;
        if (!x->easy && !xfer_prepare(f, x))
            continue; /* out of memory: tried again on the next turn */
        if (g && !g->multiplexed) {
            g->used[GK_NARINFO]++;
            g->opening[GK_NARINFO]++;
            gate_peak(g);
            x->slot = true;
        }
        unqueue(http, x);
        x->started = fetch_now_s();
        x->early_ms = early_connect_ms(g, x->early);
        set_connect_limit(x->easy, f->o, x->early_ms);
        curl_multi_add_handle(http->multi, x->easy);
    }
    pthread_mutex_unlock(&http->gate_mu);
}

/* The request has finished (or is dropped): its connection goes back. */
static void xfer_leave(struct fetch *f, struct xfer *x, CURLcode rc)
{
    struct fetch_http *http = f->http;
    if (!x->gate)
        return;
    pthread_mutex_lock(&http->gate_mu);
    long version = 0;
    if (rc == CURLE_OK && curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
        version == CURL_HTTP_VERSION_2_0)
        x->gate->multiplexed = true;
    if (x->slot) {
        x->gate->used[GK_NARINFO]--;
        x->gate->opening[GK_NARINFO]--;
        x->slot = false;
        gate_note(x->gate, GK_NARINFO, x->easy, rc);
        gate_wake(x->gate);
    }
    pthread_mutex_unlock(&http->gate_mu);
}

static void xfer_free(struct fetch *f, struct xfer *x)
{
    struct fetch_http *http = f->http;
    if (x->queued) {
        pthread_mutex_lock(&http->gate_mu);
        unqueue(http, x);
        pthread_mutex_unlock(&http->gate_mu);
        f->active--;
        if (x->kind == REQ_CACHE_INFO)
            f->info_active--;
    } else if (!x->held) {
        curl_multi_remove_handle(http->multi, x->easy);
        xfer_leave(f, x, CURLE_ABORTED_BY_CALLBACK);
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
    easy_give(http, x->easy);
    curl_slist_free_all(x->headers);
    free(x->s3_what);
    free(x->url);
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
    while (http->nspare)
        curl_easy_cleanup(http->spare[--http->nspare]);
    curl_multi_cleanup(http->multi);
    gates_note(f, http);
    if (share_end(http)) {
        gates_free(http);
        host_notes_release(&http->notes);
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
    if (x->s3_what && rc == CURLE_OK && code >= 300) {
        r.outcome = s3_outcome(x->s3_what, code, r.body, r.len, &why);
        r.why = why;
    } else if (r.outcome != OUT_OK && r.outcome != OUT_NOT_FOUND) {
        r.why = why = describe(x->easy, f->o, false, rc, code, x->errbuf);
    }
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
        http->progress_at = fetch_now_s();
        xfer_leave(f, x, rc);
        if (early_gave_up(x->easy, rc, x->early_ms)) {
            /* Its SYN was dropped: asked again at once, ahead of the others. */
            curl_multi_remove_handle(http->multi, x->easy);
            x->early++;
            requeue_front(f, x);
            continue;
        }
        if (x->kind == REQ_NARINFO && f->infos_pending) {
            /* Its cache is not known to be usable yet: keep it (see fetch_closure). */
            curl_multi_remove_handle(http->multi, x->easy);
            f->active--;
            x->held = true;
            x->rc = rc;
            x->code = code;
            continue;
        }
        curl_multi_remove_handle(http->multi, x->easy);
        x->held = true; /* off the multi handle: xfer_free only frees it */
        f->active--;
        if (x->kind == REQ_CACHE_INFO)
            f->info_active--;
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

/*
 * Nothing has come for a second: say which cache is being waited for,
 * once a second (the oldest request in flight is the one most overdue).
 */
static void report_stall(struct fetch *f)
{
    struct fetch_http *http = f->http;
    double now = fetch_now_s();
    uint64_t bytes = atomic_load(&f->bytes_done);
    if (bytes != http->bytes_seen || f->active == 0) {
        http->bytes_seen = bytes;
        http->progress_at = now;
        return;
    }
    if (now - http->progress_at < 1.0 || now - http->reported_at < 1.0)
        return;
    const struct xfer *oldest = NULL;
    for (const struct xfer *x = http->xfers; x; x = x->next_all)
        if (!x->held && !x->queued && (!oldest || x->started < oldest->started))
            oldest = x;
    if (!oldest)
        return;
    size_t cache = oldest->kind == REQ_CACHE_INFO ? oldest->idx : f->items[oldest->idx].cache;
    if (cache >= f->o->ncaches)
        return;
    http->reported_at = now;
    fetch_report_cache_wait(f, f->o->caches[cache].url, (unsigned)(now - oldest->started));
}

int fetch_http_wait(struct fetch *f, int timeout_ms, struct rx_error **err)
{
    CURLM *multi = f->http->multi;
    if (rx_interrupted)
        return rx_error_set(err, EINTR, "interrupted");
    pump(f);
    report_stall(f);
    /* Wake up in time to say, a second into a silence, what is awaited. */
    if (f->active > 0 && timeout_ms > 250)
        timeout_ms = 250;
    int running;
    if (curl_multi_perform(multi, &running) != CURLM_OK)
        return rx_error_set(err, RX_ENET, "libcurl multi interface failed");
    /* A transfer finished already: collect it before waiting for more. */
    if ((unsigned)running < f->active - f->http->queued)
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
    c->f = f;
    return c;
}

void fetch_http_conn_free(struct fetch_http_conn *c)
{
    if (c) {
        curl_easy_cleanup(c->easy);
        curl_slist_free_all(c->headers);
    }
    free(c);
}

struct get_ctx {
    fetch_body_fn fn;
    void *ctx;
    struct fetch *f;
    struct gate *gate;  /* or NULL */
    bool answered;      /* a status line came: the gate knows */
    bool encoded;
    CURL *easy;
    bool s3;               /* an error's body is S3's error document, not the file */
    struct rx_buf err_doc; /* that document */
};

static size_t body_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct get_ctx *g = ctx;
    size_t n = size * nmemb;
    if (g->s3) {
        long code = 0;
        curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 300) {
            if (rx_buf_append(&g->err_doc, data, n) < 0) {
                /* past its cap the rest is dropped: S3's documents are small */
            }
            return n;
        }
    }
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
        if (g->gate && !g->answered) {
            g->answered = true;
            gate_answered(g->f, g->gate);
        }
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
    struct get_ctx g = {.fn = fn, .ctx = ctx, .easy = e, .err_doc = RX_BUF_INIT(16 * 1024)};
    char errbuf[CURL_ERROR_SIZE] = "";
    set_url(e, url);
    curl_slist_free_all(c->headers);
    _cleanup_free_ char *what = NULL;
    c->headers = s3_setup(e, c->f->o, url, &what, &c->signed_before);
    g.s3 = what != NULL;
    if (g.s3 || c->s3_before)
        curl_easy_setopt(e, CURLOPT_FAILONERROR, g.s3 ? 0L : 1L);
    c->s3_before = g.s3;
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &g);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &g);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
    /* Resuming asks for the rest only; libcurl fails with CURLE_RANGE_ERROR unless
     * the server answers 206 from exactly that offset. */
    curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)from);
    struct gate *gate = gate_for(c->f, url);
    CURLcode rc;
    g.f = c->f;
    g.gate = gate;
    for (unsigned early = 0;; early++) {
        long early_ms = 0;
        if (gate)
            gate_enter_nar(c->f, gate, early, &early_ms);
        g.answered = false;
        set_connect_limit(e, c->f->o, early_ms);
        rc = curl_easy_perform(e);
        if (gate)
            gate_leave(c->f, gate, GK_NAR, !g.answered, e, rc);
        /* A dropped SYN: again at once (nothing was received). */
        if (!early_gave_up(e, rc, early_ms) || rx_interrupted)
            break;
    }
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    /* The buffer and the context are ours only for this call. */
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    *res = (struct http_get_result){
        .outcome = rc == CURLE_OK ? OUT_OK : classify(rc, code),
        .range_refused = rc == CURLE_RANGE_ERROR,
        .encoded = g.encoded,
        .why = rc == CURLE_OK ? NULL : describe(e, c->f->o, true, rc, code, errbuf),
    };
    if (g.s3 && rc == CURLE_OK && code >= 300) {
        res->outcome = s3_outcome(what, code, g.err_doc.data ? g.err_doc.data : "",
                                  g.err_doc.len, &res->why);
        if (!res->why)
            res->why = xasprintf("HTTP status %ld", code);
    }
    rx_buf_release(&g.err_doc);
}

/* ---- runix doctor's question ---- */

/*
 * A handle for one request on its own (not on the multi handle): url, the
 * protocols allowed, o's connect timeout (5 s when unset), CA file and
 * netrc, a whole-request limit of timeout_s, errors into errbuf.
 */
static CURL *single_easy(const char *url, const char *protocols, const struct fetch_opts *o,
                         long timeout_s, char *errbuf, struct rx_error **err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rx_error_set(err, RX_ENET, "cannot initialise libcurl");
        return NULL;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        rx_error_set(err, RX_ENET, "cannot initialise libcurl");
        return NULL;
    }
    set_url(h, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout > 0 ? o->connect_timeout : 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
    if (o->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
    if (o->netrc_file) {
        curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(h, CURLOPT_NETRC_FILE, o->netrc_file);
    }
    return h;
}

/* single_easy for a file of a cache, signed for an s3:// one (s3_setup); free with cache_easy_free. */
static CURL *cache_easy(const char *url, const struct fetch_opts *o, long timeout_s, char *errbuf,
                        char **what, struct rx_error **err)
{
    *what = NULL;
    CURL *h = single_easy(url, "http,https,file", o, timeout_s, errbuf, err);
    if (!h)
        return NULL;
    struct curl_slist *hd = s3_setup(h, o, url, what, NULL);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)hd);
    return h;
}

static void cache_easy_free(CURL *h)
{
    struct curl_slist *hd = NULL;
    curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&hd);
    curl_easy_cleanup(h);
    curl_slist_free_all(hd);
}

static size_t probe_body(char *p, size_t size, size_t n, void *ctx)
{
    if (rx_buf_append(ctx, p, size * n) < 0) {
        /* only an error document is read, and only its start matters */
    }
    return size * n;
}

int fetch_cache_probe(const struct cache *c, const struct fetch_opts *o, struct rx_error **err)
{
    _cleanup_free_ char *u = cache_file_url(c, "nix-cache-info");
    char errbuf[CURL_ERROR_SIZE] = "";
    _cleanup_free_ char *what = NULL;
    /* A cache of its own, for an s3:// one: o need not list it. */
    struct fetch_opts one = *o;
    one.caches = (struct cache *)c;
    one.ncaches = 1;
    CURL *h = cache_easy(u, &one, 15L, errbuf, &what, err);
    if (!h)
        return -1;
    struct rx_buf body = RX_BUF_INIT(CACHE_INFO_MAX);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, probe_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    int ret = 0;
    if (rc != CURLE_OK) {
        ret = rx_error_set(err, RX_ENET, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (what && code >= 300) {
        _cleanup_free_ char *why = NULL;
        if (s3_outcome(what, code, body.data ? body.data : "", body.len, &why) == OUT_NOT_FOUND)
            ret = rx_error_set(err, RX_ENOTFOUND, "no nix-cache-info in the bucket (HTTP %ld)",
                               code);
        else
            ret = rx_error_set(err, RX_ENET, "nix-cache-info: %s", why);
    } else if (strncmp(c->url, "file:", 5) != 0 && code != 200) {
        ret = rx_error_set(err, RX_ENET, "nix-cache-info: HTTP %ld", code);
    }
    rx_buf_release(&body);
    cache_easy_free(h);
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
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = single_easy(url, "http,https", o, 60L, errbuf, err);
    if (!h)
        return -1;
    struct doc_ctx d = { .body = &doc->body };
    struct curl_slist *headers = NULL;
    if (doc->etag) {
        _cleanup_free_ char *hd = xasprintf("If-None-Match: %s", doc->etag);
        headers = curl_slist_append(headers, hd);
    }
    if (doc->last_modified) {
        _cleanup_free_ char *hd = xasprintf("If-Modified-Since: %s", doc->last_modified);
        headers = curl_slist_append(headers, hd);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, doc_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, doc_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &d);
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

int fetch_vouch(const struct fetch_opts *o, const struct store_path *p, const struct hash *nar_hash,
                char **sig, char **why, struct rx_error **err)
{
    *sig = NULL;
    *why = NULL;
    char rel[STORE_HASH_LEN + 16];
    snprintf(rel, sizeof rel, "%s.narinfo", p->hash);
    for (size_t i = 0; i < o->ncaches && !*sig && !*why; i++) {
        _cleanup_free_ char *url = cache_file_url(&o->caches[i], rel);
        char errbuf[CURL_ERROR_SIZE] = "";
        _cleanup_free_ char *what = NULL;
        CURL *h = cache_easy(url, o, 30L, errbuf, &what, err);
        if (!h)
            return -1;
        struct rx_buf body = RX_BUF_INIT(NARINFO_MAX);
        struct doc_ctx d = { .body = &body };
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, doc_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        CURLcode rc = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        cache_easy_free(h);
        struct narinfo ni = NARINFO_INIT;
        bool file = strncmp(o->caches[i].url, "file:", 5) == 0;
        if (rc == CURLE_OK && (file || code == 200) && !d.too_big &&
            narinfo_parse(body.data ? body.data : "", body.len, &ni, NULL) == 0 &&
            store_path_cmp(&ni.path, p) == 0) {
            _cleanup_free_ char *fp = narinfo_fingerprint(&ni);
            for (size_t k = 0; k < ni.nsigs; k++) {
                struct signature s;
                if (signature_parse(ni.sigs[k], strlen(ni.sigs[k]), &s, NULL) < 0 ||
                    !trusted_keys_verify(o->keys, &s, fp, strlen(fp)))
                    continue;
                /* Signed by a key in force: it says what the path is. */
                if (hash_equal(&ni.nar_hash, nar_hash))
                    *sig = xstrdup(ni.sigs[k]);
                else
                    *why = xasprintf("%s says it has other contents (another NarHash), signed "
                                     "by '%s'",
                                     o->caches[i].url, s.name);
                break;
            }
        }
        narinfo_release(&ni);
        rx_buf_release(&body);
    }
    return 0;
}

/* ---- runix verify --repair: one NAR, checked against what the store registered ---- */

/* Does a signature of ni vouch for it: a key of o's, or one the store registered for the path? */
static bool narinfo_vouched(const struct fetch_opts *o, const struct narinfo *ni,
                            const char *const *sigs, size_t nsigs)
{
    if (o->no_verify)
        return true;
    _cleanup_free_ char *fp = narinfo_fingerprint(ni);
    for (size_t k = 0; k < ni->nsigs; k++) {
        for (size_t j = 0; j < nsigs; j++)
            if (strcmp(ni->sigs[k], sigs[j]) == 0)
                return true;
        struct signature sg;
        if (signature_parse(ni->sigs[k], strlen(ni->sigs[k]), &sg, NULL) == 0 &&
            trusted_keys_verify(o->keys, &sg, fp, strlen(fp)))
            return true;
    }
    return false;
}

/* GET a cache's narinfo of p; 0 with it in *ni, else -1 with why in *why. */
static int get_narinfo(const struct fetch_opts *o, struct cache *c,
                       const struct store_path *p, struct narinfo *ni, char **why,
                       struct rx_error **err)
{
    char rel[STORE_HASH_LEN + 16];
    snprintf(rel, sizeof rel, "%s.narinfo", p->hash);
    _cleanup_free_ char *url = cache_file_url(c, rel);
    char errbuf[CURL_ERROR_SIZE] = "";
    long timeout = o->narinfo_timeout > 0 ? o->narinfo_timeout : FETCH_DEFAULT_NARINFO_TIMEOUT;
    _cleanup_free_ char *what = NULL;
    CURL *h = cache_easy(url, o, timeout, errbuf, &what, err);
    if (!h)
        return -1;
    struct rx_buf body = RX_BUF_INIT(NARINFO_MAX);
    struct doc_ctx d = {.body = &body};
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, doc_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    cache_easy_free(h);
    bool file = strncmp(c->url, "file:", 5) == 0;
    struct rx_error *pe = NULL;
    int ret = -1;
    /* A cache that cannot be reached is not asked again for the next paths. */
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_COULDNT_RESOLVE_PROXY || rc == CURLE_OPERATION_TIMEDOUT) {
        free(c->why);
        c->why = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    if (rc != CURLE_OK && file && rc == CURLE_FILE_COULDNT_READ_FILE)
        *why = xstrdup("no narinfo");
    else if (rc != CURLE_OK)
        *why = xstrdup(errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (!file && code != 200)
        *why = code == 404 ? xstrdup("no narinfo") : xasprintf("narinfo: HTTP %ld", code);
    else if (d.too_big)
        *why = xstrdup("narinfo too large");
    else if (narinfo_parse(body.data ? body.data : "", body.len, ni, &pe) < 0)
        *why = xasprintf("bad narinfo: %s", pe ? pe->msg : "unreadable");
    else if (store_path_cmp(&ni->path, p) != 0)
        *why = xstrdup("its narinfo is of another path");
    else
        ret = 0;
    rx_error_free(pe);
    rx_buf_release(&body);
    if (ret < 0 && *why == NULL)
        *why = xstrdup("no narinfo");
    return ret == 0 ? 0 : 1;
}

struct one_nar {
    struct nar_pipeline p;
};

static size_t one_nar_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct one_nar *d = ctx;
    size_t n = size * nmemb;
    if (rx_interrupted || nar_pipeline_feed(&d->p, data, n) < 0)
        return 0;
    return d->p.complete ? 0 : n;
}

/* Download ni's NAR from c into dir_fd/name; the outcome, why in *why unless OUT_OK. */
static enum outcome get_nar(const struct fetch_opts *o, const struct cache *c,
                            const struct narinfo *ni, int dir_fd, const char *name, char **why,
                            struct rx_error **err)
{
    if (!cache_rel_inside(ni->url) || !cache_file_resolves_inside(c, ni->url)) {
        *why = xasprintf("URL '%s' is not inside the cache", ni->url);
        return OUT_PERMANENT;
    }
    struct nar_expect w = {0};
    snprintf(w.compression, sizeof w.compression, "%s", ni->compression);
    w.has_file_hash = ni->has_file_hash;
    w.file_hash = ni->file_hash;
    w.has_file_size = ni->has_file_size;
    w.file_size = ni->file_size;
    w.nar_hash = ni->nar_hash;
    w.nar_size = ni->nar_size;
    w.file_is_nar = strcmp(w.compression, "none") == 0 && w.has_file_hash &&
                    hash_equal(&w.file_hash, &w.nar_hash);
    struct nar_unpack_opts uo = {.canonical = true, .umask = o->umask, .root_writable = true};
    _cleanup_free_ char *url = cache_file_url(c, ni->url);
    _cleanup_free_ char *shown = cache_url_redact(url);
    unsigned attempts = o->attempts ? o->attempts : FETCH_DEFAULT_ATTEMPTS;
    long stall = o->stalled_timeout > 0 ? o->stalled_timeout : FETCH_DEFAULT_STALL;
    struct decompressor *dec = NULL;
    enum outcome out = OUT_PERMANENT;
    for (unsigned attempt = 1;; attempt++) {
        rm_rf_at(dir_fd, name, NULL);
        struct one_nar d;
        struct rx_error *pe = NULL;
        if (nar_pipeline_start(&d.p, &w, dir_fd, name, &uo, &dec, &pe) < 0) {
            *why = xasprintf("%s: %s", shown, pe ? pe->msg : "cannot decode it");
            rx_error_free(pe);
            nar_pipeline_release(&d.p, true);
            break;
        }
        char errbuf[CURL_ERROR_SIZE] = "";
        _cleanup_free_ char *what = NULL;
        CURL *h = cache_easy(url, o, 0L, errbuf, &what, err);
        if (!h) {
            nar_pipeline_release(&d.p, true);
            out = OUT_LOCAL;
            break;
        }
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, one_nar_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall);
        curl_easy_setopt(h, CURLOPT_BUFFERSIZE, 256L * 1024);
        CURLcode rc = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        bool file = strncmp(c->url, "file:", 5) == 0;
        struct rx_error *fe = NULL;
        if (d.p.err) {
            out = nar_pipeline_outcome(&d.p);
            *why = xasprintf("%s: %s", shown, d.p.err->msg);
        } else if (rc != CURLE_OK && !d.p.complete) {
            out = classify(rc, code);
            if (out == OUT_NOT_FOUND)
                out = OUT_PERMANENT; /* the narinfo said it was there */
            _cleanup_free_ char *how = describe(h, o, true, rc, code, errbuf);
            *why = xasprintf("%s: %s", shown, how);
        } else if (!file && code != 200) {
            out = OUT_PERMANENT;
            *why = xasprintf("%s: HTTP %ld", shown, code);
        } else {
            out = nar_pipeline_finish(&d.p, &fe);
            if (out != OUT_OK)
                *why = xasprintf("%s: %s", shown, fe ? fe->msg : "download failed");
        }
        cache_easy_free(h);
        if (out == OUT_LOCAL && fe) {
            rx_error_set(err, fe->code, "%s", fe->msg);
        } else if (out == OUT_LOCAL && d.p.err) {
            rx_error_set(err, d.p.err->code, "%s", d.p.err->msg);
        }
        rx_error_free(fe);
        nar_pipeline_release(&d.p, out != OUT_OK);
        if (out != OUT_TRANSIENT || attempt >= attempts || rx_interrupted)
            break;
        free(*why);
        *why = NULL;
        fetch_pause_s(fetch_backoff_s(attempt));
    }
    decompressor_free(dec);
    return out;
}

int fetch_nar_into(const struct fetch_opts *o, const struct store_path *p,
                   const struct hash *nar_hash, uint64_t nar_size, const char *const *sigs,
                   size_t nsigs, int dir_fd, const char *name, char **why, struct rx_error **err)
{
    *why = NULL;
    char *answers = NULL; /* "cache: answer; cache: answer" */
    int ret = 1;
    for (size_t i = 0; ret == 1 && i < o->ncaches && !rx_interrupted; i++) {
        struct cache *c = &o->caches[i];
        struct narinfo ni = NARINFO_INIT;
        char *what = NULL;
        int r = c->why ? 1 : get_narinfo(o, c, p, &ni, &what, err);
        if (c->why && !what)
            what = xstrdup(c->why);
        if (r < 0) {
            ret = -1;
        } else if (r > 0) {
            /* what says why */
        } else if (!narinfo_vouched(o, &ni, sigs, nsigs)) {
            what = xstrdup("its narinfo is not signed by a trusted key");
        } else if (!hash_equal(&ni.nar_hash, nar_hash) || ni.nar_size != nar_size) {
            char got[HASH_STR_MAX], want[HASH_STR_MAX];
            hash_format(&ni.nar_hash, HASH_NIX32, got);
            hash_format(nar_hash, HASH_NIX32, want);
            what = xasprintf("it has other contents (NarHash %s, but the store registered %s)",
                             got, want);
        } else {
            enum outcome out = get_nar(o, c, &ni, dir_fd, name, &what, err);
            if (out == OUT_OK)
                ret = 0;
            else if (out == OUT_LOCAL)
                ret = -1;
        }
        if (ret == 1 && what) {
            char *more = xasprintf("%s%s%s: %s", answers ? answers : "", answers ? "; " : "",
                                   c->url, what);
            free(answers);
            answers = more;
        }
        free(what);
        narinfo_release(&ni);
    }
    if (ret == 1)
        *why = answers ? steal_pointer(&answers) : xstrdup("no cache is configured");
    if (ret == 1 && rx_interrupted)
        ret = rx_error_set(err, EINTR, "interrupted");
    free(answers);
    return ret;
}

/* ---- one streamed file: fetch_stream() ---- */

struct stream_ctx {
    struct fetch_stream *s;
    struct rx_error *sink_err;
    long code; /* of the response whose headers came last */
};

static size_t stream_header(char *line, size_t size, size_t n, void *ctx)
{
    struct stream_ctx *c = ctx;
    struct fetch_stream *s = c->s;
    size_t len = size * n;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new response, after a redirect */
        free(s->resp_etag);
        free(s->resp_last_modified);
        free(s->content_encoding);
        s->resp_etag = s->resp_last_modified = s->content_encoding = NULL;
    }
    char *v;
    if ((v = header_value(line, len, "ETag"))) {
        free(s->resp_etag);
        s->resp_etag = v;
    } else if ((v = header_value(line, len, "Last-Modified"))) {
        free(s->resp_last_modified);
        s->resp_last_modified = v;
    } else if ((v = header_value(line, len, "Content-Encoding"))) {
        free(s->content_encoding);
        s->content_encoding = v;
    }
    return len;
}

static size_t stream_body(char *p, size_t size, size_t n, void *ctx)
{
    struct stream_ctx *c = ctx;
    if (c->s->sink(c->s->ctx, p, size * n, &c->sink_err) < 0)
        return 0;
    return size * n;
}

static int stream_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)ultotal;
    (void)ulnow;
    struct stream_ctx *c = ctx;
    if (c->s->progress && dlnow > 0)
        c->s->progress(c->s->ctx, (uint64_t)dlnow, dltotal > 0 ? (uint64_t)dltotal : 0);
    return rx_interrupted ? 1 : 0;
}

int fetch_stream(const char *url, const struct fetch_opts *o, struct fetch_stream *s,
                 struct rx_error **err)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h = single_easy(url, "http,https,file", o, s->timeout_s, errbuf, err);
    if (!h)
        return -1;
    struct stream_ctx c = { .s = s };
    /* A file of an s3:// cache (runix index build) is asked for signed. */
    _cleanup_free_ char *what = NULL;
    struct curl_slist *headers = s3_setup(h, o, url, &what, NULL);
    if (s->etag) {
        _cleanup_free_ char *hd = xasprintf("If-None-Match: %s", s->etag);
        headers = curl_slist_append(headers, hd);
    }
    if (s->last_modified) {
        _cleanup_free_ char *hd = xasprintf("If-Modified-Since: %s", s->last_modified);
        headers = curl_slist_append(headers, hd);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, s->raw_encodings ? s->raw_encodings : "");
    if (s->raw_encodings)
        curl_easy_setopt(h, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "runix/" RUNIX_VERSION);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                     o->stalled_timeout > 0 ? o->stalled_timeout : (long)FETCH_DEFAULT_STALL);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, stream_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, stream_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &c);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    /* Errors come back as codes, so that a body is never taken for the file. */
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    bool file = strncmp(url, "file:", 5) == 0;
    int ret = 0;
    if (c.sink_err) {
        if (err) {
            rx_error_free(*err);
            *err = c.sink_err;
        } else {
            rx_error_free(c.sink_err);
        }
        ret = -1;
    } else if (rc == CURLE_FILE_COULDNT_READ_FILE ||
               (rc == CURLE_HTTP_RETURNED_ERROR && (code == 404 || code == 403 || code == 410))) {
        ret = rx_error_set(err, RX_ENOTFOUND, "%s", file ? "no such file" : errbuf);
    } else if (rc != CURLE_OK) {
        ret = rx_error_set(err, RX_ENET, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else if (code == 304 && (s->etag || s->last_modified)) {
        s->not_modified = true;
    } else if (!file && code != 200) {
        ret = rx_error_set(err, RX_ENET, "HTTP %ld", code);
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    return ret;
}

void fetch_stream_release(struct fetch_stream *s)
{
    free(s->resp_etag);
    free(s->resp_last_modified);
    free(s->content_encoding);
    s->resp_etag = s->resp_last_modified = s->content_encoding = NULL;
}
