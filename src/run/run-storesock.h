/* The sandbox's narrow channel to the store: the protocol of $RUNIX_STORE_SOCKET (docs/store-socket.md). */
#pragma once
/*
 * One request per connection, one line each way:
 *
 *   client:  "realise /nix/store/<hash>-<name>\n"      (at most STORESOCK_REQUEST_MAX bytes)
 *   server:  "ok\n"  or  "refused <reason>\n"           then the server closes
 *
 * The server is the outer runix: it fetches and verifies the path and its
 * closure under its own caches and keys, makes them visible in the sandbox
 * (read-only) and only then answers "ok".
 */

#include <stdbool.h>
#include <stddef.h>

/* Where the socket is inside a sandbox. */
#define STORESOCK_PATH "/nix/var/runix/store.sock"
/* A request line, newline included. */
#define STORESOCK_REQUEST_MAX 512
/* An answer line, newline included. */
#define STORESOCK_ANSWER_MAX 1024
/* "/nix/store/" + 32 + "-" + 211 */
#define STORESOCK_STORE_PATH_MAX (11 + 32 + 1 + 211)

/*
 * Parse the first len bytes a client sent.  Returns 1 when more bytes are
 * needed (no newline yet, and fewer than STORESOCK_REQUEST_MAX), 0 with the
 * store path (NUL-terminated, STORESOCK_STORE_PATH_MAX + 1 bytes) in path,
 * or -1 with why set to a static reason.  Bytes after the newline are an
 * error: one request per connection.
 */
int storesock_parse(const char *buf, size_t len, char *path, const char **why);

/* Is s (len bytes) "/nix/store/<32 nix32 chars>-<valid name>" and nothing more? */
bool storesock_store_path_valid(const char *s, size_t len);

/*
 * Client side: ask the server at socket for path.  Returns 0 on "ok", 1 on
 * "refused" with the reason in why, -1 when the server could not be asked
 * or answered nonsense (why says so; errno is kept when it applies).
 */
int storesock_realise(const char *socket_path, const char *path, char *why, size_t whyn);
