/* The allow-list proxies of a sandbox: parse one request, check it, connect, relay. */
#include "config.h"

#include "run-proxy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util-mem.h"

#include "banned.h"

#define HEAD_MAX 16384 /* an HTTP request head larger than this is refused */
#define IO_TIMEOUT_MS 30000

static int log_fd(const struct sandbox_policy *p)
{
    return p->log_fd > 2 ? p->log_fd : 2;
}

static void say(const struct sandbox_policy *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct sandbox_policy *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    if (write(log_fd(p), line, (size_t)n) < 0) {
        /* nowhere left to say it */
    }
}

/* ---- the allow-list -------------------------------------------------------- */

static bool host_match(const char *pattern, const char *host)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        size_t lp = strlen(pattern + 1), lh = strlen(host); /* ".example.com" */
        return lh > lp && strcasecmp(host + lh - lp, pattern + 1) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

static bool port_match(int want, int port)
{
    return want ? want == port : (port == 80 || port == 443);
}

bool proxy_allowed(const struct sandbox_policy *p, const char *host, int port)
{
    for (size_t i = 0; i < p->nallow; i++)
        if (host_match(p->allow[i].host, host) && port_match(p->allow[i].port, port))
            return true;
    return false;
}

/* Is the address listed as a literal (with a port that matches)? */
static bool literal_listed(const struct sandbox_policy *p, const char *addr, int port)
{
    for (size_t i = 0; i < p->nallow; i++)
        if (strcmp(p->allow[i].host, addr) == 0 && port_match(p->allow[i].port, port))
            return true;
    return false;
}

/* Loopback, private, link-local, unspecified, multicast or otherwise not the internet. */
static bool special_address(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        uint32_t a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        unsigned b0 = a >> 24, b1 = (a >> 16) & 0xff;
        return b0 == 0 || b0 == 10 || b0 == 127 || (b0 == 169 && b1 == 254) ||
               (b0 == 172 && (b1 & 0xf0) == 16) || (b0 == 192 && b1 == 168) ||
               (b0 == 100 && (b1 & 0xc0) == 64) || b0 >= 224;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            struct sockaddr_in v4 = {.sin_family = AF_INET};
            memcpy(&v4.sin_addr, a->s6_addr + 12, 4);
            return special_address((const struct sockaddr *)&v4);
        }
        return IN6_IS_ADDR_LOOPBACK(a) || IN6_IS_ADDR_UNSPECIFIED(a) || IN6_IS_ADDR_LINKLOCAL(a) ||
               IN6_IS_ADDR_SITELOCAL(a) || IN6_IS_ADDR_MULTICAST(a) || (a->s6_addr[0] & 0xfe) == 0xfc;
    }
    return true;
}

/*
 * Resolve and connect to host:port as the policy allows.  Returns the
 * connected socket, or -1 after logging why (in *why too, for the client).
 */
static int dial(const struct sandbox_policy *p, const char *what, const char *host, int port,
                const char **why)
{
    if (!proxy_allowed(p, host, port)) {
        say(p, "runix: sandbox: refused %s %s:%d (not in the allow-list)", what, host, port);
        *why = "not in the allow-list";
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int r = getaddrinfo(host, portstr, &hints, &res);
    if (r != 0) {
        say(p, "runix: sandbox: refused %s %s:%d (cannot resolve: %s)", what, host, port,
            gai_strerror(r));
        *why = "cannot resolve";
        return -1;
    }
    int fd = -1, cerr = 0;
    bool special = false;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        char addr[INET6_ADDRSTRLEN] = "";
        const void *in = ai->ai_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        inet_ntop(ai->ai_family, in, addr, sizeof addr);
        if (special_address(ai->ai_addr) && !literal_listed(p, addr, port)) {
            special = true;
            continue;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            cerr = errno;
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0 && special) {
        say(p, "runix: sandbox: refused %s %s:%d (a private or loopback address; list it as "
               "a literal to allow it)",
            what, host, port);
        *why = "private or loopback address";
    } else if (fd < 0) {
        say(p, "runix: sandbox: %s %s:%d failed: %s", what, host, port,
            cerr ? strerror(cerr) : "no address");
        *why = "cannot connect";
    }
    return fd;
}

/* ---- relaying -------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void relay(int a, int b)
{
    char buf[65536];
    struct pollfd pfd[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    bool open_a = true, open_b = true;
    while (open_a || open_b) {
        pfd[0].events = open_a ? POLLIN : 0;
        pfd[1].events = open_b ? POLLIN : 0;
        int n = poll(pfd, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;
        for (int i = 0; i < 2; i++) {
            if (!pfd[i].revents)
                continue;
            int from = i == 0 ? a : b, to = i == 0 ? b : a;
            ssize_t r = read(from, buf, sizeof buf);
            if (r <= 0) {
                shutdown(to, SHUT_WR);
                if (i == 0)
                    open_a = false;
                else
                    open_b = false;
                continue;
            }
            if (write_all(to, buf, (size_t)r) < 0)
                return;
        }
    }
}

/* Read exactly n bytes, with a timeout; 0 or -1. */
static int read_n(int fd, void *buf, size_t n)
{
    char *b = buf;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
            return -1;
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

/* "host:port", "[v6]:port" or "host" (port = def) into host/port; -1 if malformed. */
static int split_authority(const char *s, size_t len, char *host, size_t hsz, int *port, int def)
{
    const char *end = s + len, *colon = NULL, *hs = s, *he;
    if (len > 0 && s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb)
            return -1;
        hs = s + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return -1;
            colon = rb + 1;
        }
    } else {
        colon = memchr(s, ':', len);
        he = colon ? colon : end;
    }
    size_t hl = (size_t)(he - hs);
    if (hl == 0 || hl >= hsz)
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hs[i];
        if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == ':'))
            return -1;
        host[i] = (char)tolower(c);
    }
    host[hl] = '\0';
    *port = def;
    if (colon) {
        long v = 0;
        const char *q = colon + 1;
        if (q == end)
            return -1;
        for (; q < end; q++) {
            if (!isdigit((unsigned char)*q) || (v = v * 10 + (*q - '0')) > 65535)
                return -1;
        }
        if (v == 0)
            return -1;
        *port = (int)v;
    }
    return 0;
}

static void http_answer(int fd, int code, const char *reason, const char *why)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     "Content-Length: %zu\r\n\r\nrunix sandbox: %s\n",
                     code, reason, strlen(why) + 15, why);
    if (n > 0)
        write_all(fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

static void serve_http(const struct sandbox_policy *p, int fd)
{
    char head[HEAD_MAX + 1];
    size_t have = 0;
    char *eoh = NULL;
    while (!eoh) {
        if (have == HEAD_MAX) {
            http_answer(fd, 431, "Request Header Fields Too Large", "request head too large");
            return;
        }
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, IO_TIMEOUT_MS) <= 0)
            return;
        ssize_t r = read(fd, head + have, HEAD_MAX - have);
        if (r <= 0)
            return;
        have += (size_t)r;
        head[have] = '\0';
        eoh = memmem(head, have, "\r\n\r\n", 4);
    }
    char *eol = memchr(head, '\r', have);
    char *sp1 = memchr(head, ' ', (size_t)(eol - head));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2) {
        http_answer(fd, 400, "Bad Request", "malformed request line");
        return;
    }
    size_t mlen = (size_t)(sp1 - head);
    const char *target = sp1 + 1;
    size_t tlen = (size_t)(sp2 - target);
    char host[256];
    int port;
    if (mlen == 7 && memcmp(head, "CONNECT", 7) == 0) {
        if (split_authority(target, tlen, host, sizeof host, &port, 0) < 0 || port == 0) {
            http_answer(fd, 400, "Bad Request", "CONNECT needs HOST:PORT");
            return;
        }
        const char *why;
        int up = dial(p, "CONNECT", host, port, &why);
        if (up < 0) {
            http_answer(fd, 403, "Forbidden", why);
            return;
        }
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        if (write_all(fd, ok, sizeof ok - 1) == 0) {
            /* Bytes the client sent after the head already belong to the tunnel. */
            size_t used = (size_t)(eoh + 4 - head);
            if (have > used && write_all(up, head + used, have - used) < 0) {
                close(up);
                return;
            }
            relay(fd, up);
        }
        close(up);
        return;
    }
    /* method http://authority/path: the request goes on in origin form. */
    if (tlen < 8 || strncasecmp(target, "http://", 7) != 0) {
        http_answer(fd, 400, "Bad Request", "only CONNECT and http:// requests go through this proxy");
        return;
    }
    const char *auth = target + 7, *tend = target + tlen;
    const char *slash = memchr(auth, '/', (size_t)(tend - auth));
    const char *aend = slash ? slash : tend;
    if (split_authority(auth, (size_t)(aend - auth), host, sizeof host, &port, 80) < 0) {
        http_answer(fd, 400, "Bad Request", "malformed URL");
        return;
    }
    char what[32];
    snprintf(what, sizeof what, "%.*s", (int)(mlen < 16 ? mlen : 16), head);
    const char *why;
    int up = dial(p, what, host, port, &why);
    if (up < 0) {
        http_answer(fd, 403, "Forbidden", why);
        return;
    }
    if (write_all(up, head, mlen + 1) < 0 ||
        write_all(up, slash ? slash : "/", slash ? (size_t)(tend - slash) : 1) < 0 ||
        write_all(up, sp2, have - (size_t)(sp2 - head)) < 0) {
        close(up);
        return;
    }
    relay(fd, up);
    close(up);
}

/* ---- SOCKS5 (RFC 1928), CONNECT without authentication --------------------- */

static void serve_socks(const struct sandbox_policy *p, int fd)
{
    unsigned char b[262];
    static const unsigned char refuse_method[2] = {5, 0xff};
    if (read_n(fd, b, 2) < 0 || b[0] != 5 || b[1] == 0 || read_n(fd, b + 2, b[1]) < 0)
        return;
    if (!memchr(b + 2, 0, b[1])) {
        write_all(fd, refuse_method, 2);
        return;
    }
    static const unsigned char no_auth[2] = {5, 0};
    if (write_all(fd, no_auth, 2) < 0 || read_n(fd, b, 4) < 0 || b[0] != 5)
        return;
    unsigned char reply[10] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    if (b[1] != 1) { /* only CONNECT */
        reply[1] = 7;
        write_all(fd, reply, sizeof reply);
        return;
    }
    char host[256];
    unsigned char atyp = b[3];
    if (atyp == 1) {
        if (read_n(fd, b, 4) < 0)
            return;
        inet_ntop(AF_INET, b, host, sizeof host);
    } else if (atyp == 4) {
        if (read_n(fd, b, 16) < 0)
            return;
        inet_ntop(AF_INET6, b, host, sizeof host);
    } else if (atyp == 3) {
        if (read_n(fd, b, 1) < 0)
            return;
        size_t n = b[0];
        if (n == 0 || read_n(fd, host, n) < 0)
            return;
        host[n] = '\0';
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)host[i];
            if (!(isalnum(c) || c == '-' || c == '.' || c == '_')) {
                reply[1] = 4;
                write_all(fd, reply, sizeof reply);
                return;
            }
            host[i] = (char)tolower(c);
        }
    } else {
        reply[1] = 8;
        write_all(fd, reply, sizeof reply);
        return;
    }
    unsigned char pb[2];
    if (read_n(fd, pb, 2) < 0)
        return;
    int port = pb[0] << 8 | pb[1];
    const char *why;
    int up = port ? dial(p, "SOCKS CONNECT", host, port, &why) : -1;
    if (up < 0) {
        reply[1] = 2; /* connection not allowed by ruleset */
        write_all(fd, reply, sizeof reply);
        return;
    }
    if (write_all(fd, reply, sizeof reply) == 0)
        relay(fd, up);
    close(up);
}

void proxy_serve(const struct sandbox_policy *p, enum proxy_kind kind, int fd)
{
    if (kind == PROXY_HTTP)
        serve_http(p, fd);
    else if (kind == PROXY_SOCKS)
        serve_socks(p, fd);
}
