/* The protocol of $RUNIX_STORE_SOCKET: the request parser and a client. */
#include "config.h"

#include "run-storesock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Nix's base-32 alphabet (no e, o, u, t). */
static bool nix32_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z' && c != 'e' && c != 'o' && c != 'u' &&
                                      c != 't');
}

static bool name_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("+-._?=", c) != NULL;
}

bool storesock_store_path_valid(const char *s, size_t len)
{
    static const char dir[] = "/nix/store/";
    const size_t dl = sizeof dir - 1;
    if (len < dl + 32 + 2 || len > STORESOCK_STORE_PATH_MAX || memcmp(s, dir, dl) != 0)
        return false;
    for (size_t i = 0; i < 32; i++)
        if (!nix32_char(s[dl + i]))
            return false;
    if (s[dl + 32] != '-')
        return false;
    const char *name = s + dl + 33;
    size_t nl = len - dl - 33;
    if (name[0] == '.')
        return false; /* Nix refuses names that start with a dot */
    for (size_t i = 0; i < nl; i++)
        if (!name_char(name[i]))
            return false;
    return true;
}

int storesock_parse(const char *buf, size_t len, char *path, const char **why)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl) {
        if (len >= STORESOCK_REQUEST_MAX) {
            *why = "request too long (at most 512 bytes, newline included)";
            return -1;
        }
        return 1;
    }
    size_t ll = (size_t)(nl - buf);
    if (ll + 1 > STORESOCK_REQUEST_MAX) {
        *why = "request too long (at most 512 bytes, newline included)";
        return -1;
    }
    if (ll + 1 != len) {
        *why = "one request per connection";
        return -1;
    }
    if (ll > 0 && buf[ll - 1] == '\r')
        ll--;
    if (memchr(buf, '\0', ll)) {
        *why = "NUL byte in the request";
        return -1;
    }
    static const char verb[] = "realise ";
    const size_t vl = sizeof verb - 1;
    if (ll < vl || memcmp(buf, verb, vl) != 0) {
        *why = "unknown request (the only one is \"realise /nix/store/HASH-NAME\")";
        return -1;
    }
    const char *p = buf + vl;
    size_t pl = ll - vl;
    if (!storesock_store_path_valid(p, pl)) {
        *why = "not a store path name (/nix/store/HASH-NAME, nothing below it)";
        return -1;
    }
    memcpy(path, p, pl);
    path[pl] = '\0';
    return 0;
}

static int write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int storesock_realise(const char *socket_path, const char *path, char *why, size_t whyn)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(socket_path) >= sizeof a.sun_path) {
        snprintf(why, whyn, "socket path too long: %s", socket_path);
        return -1;
    }
    if (!storesock_store_path_valid(path, strlen(path))) {
        snprintf(why, whyn, "'%s' is not a store path name", path);
        return -1;
    }
    strcpy(a.sun_path, socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(why, whyn, "socket: %s", strerror(errno));
        return -1;
    }
    char req[STORESOCK_REQUEST_MAX + 1];
    int rl = snprintf(req, sizeof req, "realise %s\n", path);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || write_all(fd, req, (size_t)rl) < 0) {
        int e = errno;
        snprintf(why, whyn, "cannot ask %s: %s", socket_path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    char ans[STORESOCK_ANSWER_MAX + 1];
    size_t have = 0;
    while (have < STORESOCK_ANSWER_MAX) {
        ssize_t r = read(fd, ans + have, STORESOCK_ANSWER_MAX - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (memchr(ans, '\n', have))
            break;
    }
    close(fd);
    ans[have] = '\0';
    char *nl = strchr(ans, '\n');
    if (!nl) {
        snprintf(why, whyn, "%s closed the connection without an answer", socket_path);
        return -1;
    }
    *nl = '\0';
    if (strcmp(ans, "ok") == 0)
        return 0;
    if (strncmp(ans, "refused", 7) == 0 && (ans[7] == ' ' || ans[7] == '\0')) {
        snprintf(why, whyn, "%s", ans[7] ? ans + 8 : "no reason given");
        return 1;
    }
    snprintf(why, whyn, "%s answered nonsense", socket_path);
    return -1;
}
