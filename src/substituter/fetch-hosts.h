#pragma once
/*
 * What earlier fetches learned of each cache host's connections: how many
 * could be open at once without a dropped SYN (as Linux keeps a TCP
 * window per destination in tcp_metrics).  A fetch starts a host it knows
 * at that many instead of a few, which saves a round trip or two on a
 * distant server; one it does not know starts at a few and grows.
 *
 * The file (${XDG_CACHE_HOME:-~/.cache}/runix/hosts) has one line per host:
 *   scheme://host[:port] CONNECTIONS UNIX-TIME
 * Credentials in a URL are never written.  Notes older than a week are not
 * used, lines that do not parse are skipped: the file is a hint, never an
 * error, and a fetch that cannot read or write it goes on without it.
 */

#include <stddef.h>
#include <stdint.h>

#define HOST_KEY_MAX 300
#define HOST_NOTES_MAX 256                 /* hosts kept, the most recent */
#define HOST_NOTE_TTL_S (7 * 24 * 3600)    /* a note older than this is not used */

struct host_note {
    char key[HOST_KEY_MAX + 1]; /* scheme://host[:port], lower case */
    unsigned conns;
    int64_t when;
};

struct host_notes {
    struct host_note *v;
    size_t n;
};

/*
 * The key of a URL's host: "scheme://host[:port]" with any "user:pass@"
 * dropped and letters lowered; 0, or -1 when the URL has no "://" or the key
 * would be longer than HOST_KEY_MAX or has bytes outside printable ASCII.
 */
int host_key(const char *url, char key[HOST_KEY_MAX + 1]);

/* Read the notes of text[0..len) into h (empty first); bad lines are skipped. */
void host_notes_parse(struct host_notes *h, const char *text, size_t len);
/* The same from a file; a missing or unreadable one gives no notes. */
void host_notes_load(struct host_notes *h, const char *file);

/* The connections noted for key no earlier than now - HOST_NOTE_TTL_S; 0 if none. */
unsigned host_notes_get(const struct host_notes *h, const char *key, int64_t now);
/* Note conns for key at now, replacing an older note of it. */
void host_notes_set(struct host_notes *h, const char *key, unsigned conns, int64_t now);

/* The file's text: the most recent HOST_NOTES_MAX notes of the last month (free it). */
char *host_notes_format(const struct host_notes *h, int64_t now);

/*
 * Merge news (notes of this fetch) into the file as it is now, written
 * atomically (creating its directory).  -1 with errno on failure.
 */
int host_notes_save(const char *file, const struct host_notes *news, int64_t now);

void host_notes_release(struct host_notes *h);
