/* The allow-list proxies of a sandbox: HTTP (CONNECT and absolute-form requests) and SOCKS5. */
#pragma once
/*
 * The proxies run outside the sandbox's network namespace, in runix's
 * process (one short-lived child per connection).  Inside, pid 1 listens on
 * 127.0.0.1 and hands each accepted connection, as a file descriptor, over
 * a Unix socket pair to runix (SCM_RIGHTS); nothing inside can reach the
 * host's network otherwise.  The proxy reads the request, checks the
 * destination against the allow-list, resolves the name itself, refuses
 * private and loopback addresses that are not listed as literals, connects
 * and relays.  Refusals are logged as one line each on the policy's log_fd.
 */

#include <stdbool.h>

#include "run-sandbox.h"

enum proxy_kind {
    PROXY_HTTP = 'H',
    PROXY_SOCKS = 'S',
};

/* Does host:port pass the allow-list (names only; addresses are checked after resolving)? */
bool proxy_allowed(const struct sandbox_policy *p, const char *host, int port);

/*
 * Serve one client connection (fd) of the given kind to its end, then
 * return.  Runs in a child of runix that exits afterwards.
 */
void proxy_serve(const struct sandbox_policy *p, enum proxy_kind kind, int fd);
