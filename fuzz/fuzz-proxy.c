/*
 * libFuzzer harness: the sandbox proxies' request parsing (HTTP CONNECT and
 * absolute-form requests, SOCKS5), fed what a sandboxed program could send.
 * The first byte picks the proxy; the rest arrives on a socket whose writing
 * end is then shut, as from a client that hangs up.  The allow-list names
 * only 127.0.0.1:1 and [::1]:1, literals where nothing listens: no name is
 * ever resolved and nothing leaves the machine.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "run-proxy.h"
#include "run-sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 60000)
        return 0;
    static struct sandbox_policy p = SANDBOX_POLICY_INIT;
    static int log = -1;
    if (log < 0) {
        if (sandbox_net_parse(&p, "allow:127.0.0.1:1,[::1]:1", NULL) < 0)
            abort();
        log = open("/dev/null", O_WRONLY | O_CLOEXEC);
        p.log_fd = log;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    size_t off = 1;
    while (off < size) {
        ssize_t w = write(sv[0], data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    proxy_serve(&p, (data[0] & 1) ? PROXY_SOCKS : PROXY_HTTP, sv[1]);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
