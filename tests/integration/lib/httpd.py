#!/usr/bin/env python3
"""A binary-cache HTTP server for the integration tests, on 127.0.0.1 only.

    httpd.py ROOT PORTFILE LOGFILE

Serves files under ROOT with HTTP/1.1 keep-alive and writes the port it
bound to PORTFILE.  Every request is appended to LOGFILE as "METHOD PATH".
The first path component may select a fault, applied to the rest of the
path (e.g. /fail500x2/cache-xz/nar/...):

    /ok/...          serve normally
    /fail500x2/...   answer 500 to the first two requests of each path
    /truncate/...    .nar* files: announce the full length, send half, close
    /stall/...       .nar* files: send half, then stop sending (keep the socket)
    /slow/...        .nar* files: send in 64 KiB pieces, 20 ms apart
    /truncate-once/... .nar* files: the first request of each path is cut off
                     after half the body; later ones are served in full
    /truncate-once-norange/... the same, from a server without Range support
    /cut-once/...    as truncate-once, for every file of 64 KiB or more (a
                     release's binaries), NAR or not
    /truncate-once-gzip/... .nar* files: sent gzip-encoded (Content-Encoding)
                     to clients that accept it, Range requests counting in the
                     encoded bytes, the first request of each path cut off
    /latency/...     every answer waits 40 ms first, like a distant server;
                     requests are logged with " busy=N", the number of
                     requests being answered at that moment, this one
                     included, and NAR requests also with " nars=N", the
                     number of those that are NAR requests
    /far/...         the same with 300 ms, for tests that must see what a
                     client sends before its first answer on a busy machine
    /serial/...      every answer first takes 3 ms under one lock shared by
                     all requests, as a server that serves one at a time (a
                     thread per connection under one interpreter lock);
                     logged with " busy=N" as /latency/ is, N counting
                     those waiting for the lock
    /etag/...        serve normally, with an ETag (the file's mtime and size);
                     a matching If-None-Match gets 304 Not Modified; requests
                     are logged with " inm" when they carry If-None-Match
    /gate/...        .nar* files: held until the file named by $HTTPD_GATE
                     exists (at most 60 s), then sent after a random pause
                     of up to 200 ms, so that concurrent clients first take
                     what they want and then finish in a shuffled order;
                     other files after a random pause of up to 20 ms
    /encoded/...     a file X is sent as the bytes of X.zst, X.xz or X.br when
                     one exists, with Content-Encoding zstd, xz or br whatever
                     the client accepts (as S3 serves pre-compressed uploads)
    /silent/...      read the request, then never answer (the connection
                     stays open until the client gives up)
"Range: bytes=N-" is honoured (206) in the modes ok, fail500x2 and
truncate-once, and logged as "GET PATH range=N".  A request with basic
credentials is logged with " auth=USER".

HTTPD_LOG_TIME=1 begins each log line with the time it was read (seconds
of the monotonic clock), for benchmarks that look at a client's timeline.

HTTPD_PROTOCOL=HTTP/1.0 makes it close the connection after every answer,
as a plain HTTP/1.0 server does, and HTTPD_BACKLOG=N gives its listening
socket a backlog of N connections (default 128; Python's http.server has 5).

With HTTPD_TLS_CERT and HTTPD_TLS_KEY set (PEM files), it serves HTTPS;
requests on a connection that resumed an earlier TLS session are logged
with " tls-resumed".
"""
import base64
import gzip
import http.server
import os
import random
import socketserver
import ssl
import sys
import threading
import time

ROOT, PORTFILE, LOGFILE = sys.argv[1], sys.argv[2], sys.argv[3]
LOG_TIME = os.environ.get("HTTPD_LOG_TIME") == "1"
counts = {}
gzipped = {}  # path -> its gzip-encoded bytes (truncate-once-gzip)
lock = threading.Lock()
serial_lock = threading.Lock()  # /serial/: one answer at a time
nars_active = 0
all_active = 0


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = os.environ.get("HTTPD_PROTOCOL", "HTTP/1.1")
    disable_nagle_algorithm = True  # as nginx does (tcp_nodelay on)

    def log_message(self, fmt, *args):
        pass

    def do_HEAD(self):
        self.do_GET(head=True)

    def do_GET(self, head=False):
        global nars_active, all_active
        self.latency = self.path.startswith(("/latency/", "/far/", "/serial/"))
        self.latency_nar = self.latency and "/nar/" in self.path
        self.counted = False
        try:
            self.answer(head)
        finally:
            if self.counted:
                with lock:
                    all_active -= self.latency
                    nars_active -= self.latency_nar

    def answer(self, head):
        global nars_active, all_active
        rng = self.headers.get("Range", "")
        # Counted and logged at once, so that the log's order is the
        # order of the counts (line N of a burst says busy=N).
        with lock, open(LOGFILE, "a") as log:
            all_active += self.latency
            nars_active += self.latency_nar
            self.counted = True
            extra = f" range={rng[6:-1]}" if rng.startswith("bytes=") and rng.endswith("-") else ""
            if self.latency:
                extra += f" busy={all_active}"
            if self.latency_nar:
                extra += f" nars={nars_active}"
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                user = base64.b64decode(auth[6:]).decode(errors="replace").split(":", 1)[0]
                extra += f" auth={user}"
            if getattr(self.connection, "session_reused", False):
                extra += " tls-resumed"
            if self.headers.get("If-None-Match"):
                extra += " inm"
            stamp = f"{time.monotonic():.4f} " if LOG_TIME else ""
            log.write(f"{stamp}{'HEAD' if head else 'GET'} {self.path}{extra}\n")
        parts = self.path.split("?")[0].lstrip("/").split("/", 1)
        if len(parts) != 2:
            return self.send_error(404)
        mode, rel = parts
        if mode == "silent":
            time.sleep(3600)
            return
        if mode == "redirect":
            return redirect(self, rel)
        if mode in ("latency", "far"):
            time.sleep(0.04 if mode == "latency" else 0.3)
            mode = "ok"
        if mode == "serial":
            with serial_lock:
                time.sleep(0.003)
            mode = "ok"
        if mode == "gate":
            if "/nar/" in "/" + rel:
                gate = os.environ.get("HTTPD_GATE", "")
                end = time.monotonic() + 60
                while gate and not os.path.exists(gate) and time.monotonic() < end:
                    time.sleep(0.01)
                time.sleep(random.random() * 0.2)
            else:
                time.sleep(random.random() * 0.02)
            mode = "ok"
        path = os.path.realpath(os.path.join(ROOT, rel))
        if mode == "encoded":
            for ext, enc in ((".zst", "zstd"), (".xz", "xz"), (".br", "br")):
                if path.startswith(os.path.realpath(ROOT) + os.sep) and os.path.isfile(path + ext):
                    with open(path + ext, "rb") as f:
                        data = f.read()
                    self.send_response(200)
                    self.send_header("Content-Encoding", enc)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if not head:
                        self.wfile.write(data)
                    return
            mode = "ok"
        if not path.startswith(os.path.realpath(ROOT) + os.sep) or not os.path.isfile(path):
            return self.send_error(404)
        if mode == "fail500x2":
            with lock:
                counts[rel] = counts.get(rel, 0) + 1
                n = counts[rel]
            if n <= 2:
                return self.send_error(500)
        etag = None
        if mode == "etag":
            st = os.stat(path)
            etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            mode = "ok"
        is_nar = "/nar/" in "/" + rel
        size = os.path.getsize(path)
        if mode == "cut-once":  # any file of 64 KiB or more, as truncate-once does NARs
            mode, is_nar = "truncate-once", size >= 65536
        first = False
        if mode == "truncate-once-gzip" and is_nar and "gzip" in self.headers.get("Accept-Encoding", ""):
            return self.answer_gzip(path, rel, rng)
        if mode == "truncate-once-gzip":
            mode = "ok"
        if mode in ("truncate-once", "truncate-once-norange"):
            with lock:
                counts[mode, rel] = counts.get((mode, rel), 0) + 1
                first = counts[mode, rel] == 1
        start = 0
        if mode in ("ok", "fail500x2", "truncate-once") and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= size:
                return self.send_error(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        if head:
            return
        if mode in ("ok", "fail500x2") or not is_nar or (mode.startswith("truncate-once") and not first):
            self.wfile.flush()
            with open(path, "rb") as f:
                self.connection.sendfile(f, offset=start)  # without holding the GIL
            return
        with open(path, "rb") as f:
            data = f.read()
        if is_nar and mode in ("truncate", "truncate-once", "truncate-once-norange"):
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if is_nar and mode == "stall":
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            time.sleep(3600)
            return
        if is_nar and mode == "slow":
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i : i + 65536])
                self.wfile.flush()
                time.sleep(0.02)
            return
        self.wfile.write(data)

    def answer_gzip(self, path, rel, rng):
        # Compressed once, quickly: the client's stall limit (1 s in the
        # tests) runs while the first byte is awaited.
        body = gzipped.get(path)
        if body is None:
            with open(path, "rb") as f:
                body = gzipped[path] = gzip.compress(f.read(), compresslevel=1, mtime=0)
        with lock:
            counts["gzip", rel] = counts.get(("gzip", rel), 0) + 1
            first = counts["gzip", rel] == 1
        start = 0
        if rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(body):
                return self.send_error(416)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if first:
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body[start:])


# /redirect/... : every request is answered "302 Found" with Location
# $HTTPD_REDIRECT_BASE/ok/..., e.g. from an https server to a cleartext one.
def redirect(handler, rel):
    handler.send_response(302)
    handler.send_header("Location", os.environ["HTTPD_REDIRECT_BASE"] + "/ok/" + rel)
    handler.send_header("Content-Length", "0")
    handler.end_headers()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = int(os.environ.get("HTTPD_BACKLOG", "128"))  # many connections open at once

    def handle_error(self, request, client_address):
        pass  # clients that hang up (timeouts, kill -9) are part of the tests


srv = Server(("127.0.0.1", 0), Handler)
if os.environ.get("HTTPD_TLS_CERT"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.environ["HTTPD_TLS_CERT"], os.environ["HTTPD_TLS_KEY"])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
srv.serve_forever()
