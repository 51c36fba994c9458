#!/usr/bin/env python3
"""A SigV4-checking front for an S3 server, for the integration tests; 127.0.0.1 only.

    s3front.py --backend PORT --port-file FILE --log FILE --keys FILE
               [--region R] [--control FILE] [--anonymous]

S3 servers made for tests (s3rver) look the access key id up but do not
check the signature.  This front does what S3 does with a request before
it reaches a bucket, and then passes it on, unsigned, to the server on
127.0.0.1:PORT:

  - Authorization must be AWS4-HMAC-SHA256 with a known access key id
    (InvalidAccessKeyId), the front's region (AuthorizationHeaderMalformed)
    and service s3; host and every x-amz-* header sent must be signed;
    x-amz-date must be within 15 minutes (RequestTimeTooSkewed);
    x-amz-content-sha256 must be there (InvalidRequest) and match a signed
    body (XAmzContentSHA256Mismatch); a key that has a session token needs
    it in x-amz-security-token (InvalidAccessKeyId when missing,
    InvalidToken when wrong); and the signature, recomputed with botocore
    from the secret key, must match (SignatureDoesNotMatch).
  - A request without Authorization is refused (AccessDenied) unless
    --anonymous.

--keys is a JSON list of {"id": ..., "secret": ..., "token": ...} (token
optional).  --control names a JSON file read again whenever it changes:

    {"missing": 403}            a missing object is 403 AccessDenied, as S3
                                answers to whom may not list the bucket
    {"slowdown": {"SUB": N}}    the first N requests whose path contains SUB
                                get 503 SlowDown
    {"skew": SECONDS}           the front's clock runs that far ahead
    {"truncate": {"SUB": N}}    the first N answers whose path contains SUB
                                announce the whole length, send half of it
                                and close the connection

Every request is appended to --log as "METHOD PATH STATUS CODE KEYID",
followed by " range=R" when it asked for a Range.
"""
import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
from datetime import datetime, timezone
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ARGS = None
KEYS = {}
CONTROL = {"mtime": None, "data": {}, "slowdown": {}, "truncate": {}}
LOCK = threading.Lock()
LOCAL = threading.local()
AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$")
HOP = {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256",
       "expect", "connection", "keep-alive", "transfer-encoding", "host", "proxy-connection"}


class Verifier(S3SigV4Auth):
    """botocore's S3 signer, taking the payload hash the client declared."""

    def payload(self, request):
        return request.headers["X-Amz-Content-SHA256"]


class Refused(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def control():
    with LOCK:
        path = ARGS.control
        try:
            m = os.stat(path).st_mtime_ns if path else None
        except FileNotFoundError:
            m = None
        if m != CONTROL["mtime"]:
            CONTROL["mtime"] = m
            data = {}
            if m is not None:
                with open(path) as f:
                    data = json.load(f)
            CONTROL["data"] = data
            CONTROL["slowdown"] = dict(data.get("slowdown", {}))
            CONTROL["truncate"] = dict(data.get("truncate", {}))
        return CONTROL["data"]


def take(kind, path):
    control()
    with LOCK:
        for sub, n in CONTROL[kind].items():
            if sub in path and n > 0:
                CONTROL[kind][sub] = n - 1
                return True
    return False


def verify(h, body):
    """The access key id of a request S3 would accept, or None when anonymous; else Refused."""
    auth = h.headers.get("Authorization")
    if auth is None:
        if ARGS.anonymous:
            return None
        raise Refused(403, "AccessDenied", "Access Denied")
    m = AUTH_RE.match(auth.strip())
    if not m:
        raise Refused(400, "AuthorizationHeaderMalformed", "The authorization header is malformed.")
    akid, day, region, service, signed, sig = m.groups()
    key = KEYS.get(akid)
    if key is None:
        raise Refused(403, "InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist in our records.",
                      AWSAccessKeyId=akid)
    if region != ARGS.region:
        raise Refused(400, "AuthorizationHeaderMalformed",
                      f"The authorization header is malformed; the region '{region}' is wrong; "
                      f"expecting '{ARGS.region}'", Region=ARGS.region)
    if service != "s3":
        raise Refused(400, "AuthorizationHeaderMalformed",
                      f"The authorization header is malformed; incorrect service '{service}'. "
                      "This endpoint belongs to 's3'.")
    names = signed.split(";")
    for name in h.headers.keys():
        n = name.lower()
        if (n == "host" or n.startswith("x-amz-")) and n not in names:
            raise Refused(403, "AccessDenied",
                          f"There were headers present in the request which were not signed: {n}")
    amzdate = h.headers.get("X-Amz-Date", "")
    try:
        t = datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise Refused(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    if amzdate[:8] != day:
        raise Refused(403, "SignatureDoesNotMatch", "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP")
    now = time.time() + float(control().get("skew", 0))
    if abs(now - t) > 900:
        raise Refused(403, "RequestTimeTooSkewed",
                      "The difference between the request time and the current time is too large.",
                      RequestTime=amzdate,
                      ServerTime=datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    payload = h.headers.get("X-Amz-Content-SHA256")
    if payload is None:
        raise Refused(400, "InvalidRequest",
                      "Missing required header for this request: x-amz-content-sha256")
    if payload != "UNSIGNED-PAYLOAD" and not payload.startswith("STREAMING-") and \
            payload != hashlib.sha256(body).hexdigest():
        raise Refused(400, "XAmzContentSHA256Mismatch",
                      "The provided 'x-amz-content-sha256' header does not match what was computed.")
    token = h.headers.get("X-Amz-Security-Token")
    if key.get("token") and token is None:
        raise Refused(403, "InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist in our records.",
                      AWSAccessKeyId=akid)
    if token is not None and token != key.get("token"):
        raise Refused(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    headers = {}
    for n in names:
        values = h.headers.get_all(n)
        if values is None:
            raise Refused(403, "SignatureDoesNotMatch",
                          f"Signed header '{n}' is not in the request.")
        headers[n] = ",".join(values)
    req = AWSRequest(method=h.command, url="http://" + h.headers.get("Host", "") + h.path,
                     headers=headers)
    req.context["timestamp"] = amzdate
    signer = Verifier(Credentials(akid, key["secret"], key.get("token")), "s3", region)
    canonical = signer.canonical_request(req)
    want = signer.signature(signer.string_to_sign(req, canonical), req)
    if not hmac.compare_digest(want, sig):
        raise Refused(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your key and signing method.",
                      AWSAccessKeyId=akid, CanonicalRequest=canonical)
    return akid


def backend():
    c = getattr(LOCAL, "conn", None)
    if c is None:
        c = LOCAL.conn = http.client.HTTPConnection("127.0.0.1", ARGS.backend, timeout=60)
    return c


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def log(self, status, code, akid):
        rng = self.headers.get("Range")
        with LOCK, open(ARGS.log, "a") as f:
            f.write(f"{self.command} {self.path} {status} {code or '-'} {akid or '-'}"
                    f"{' range=' + rng if rng else ''}\n")

    def error(self, status, code, message, akid=None, **extra):
        bucket = self.path.lstrip("/").split("/", 1)[0].split("?", 1)[0]
        more = "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in extra.items())
        doc = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
               f"<Message>{escape(message)}</Message><BucketName>{escape(bucket)}</BucketName>"
               f"{more}<RequestId>0</RequestId></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(doc)
        self.log(status, code, akid)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        body = self.body()
        try:
            akid = verify(self, body)
        except Refused as r:
            return self.error(r.status, r.code, r.message, **r.extra)
        if take("slowdown", self.path):
            return self.error(503, "SlowDown", "Please reduce your request rate.", akid)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            c = backend()
            try:
                c.request(self.command, self.path, body=body or None, headers=headers)
                resp = c.getresponse()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                LOCAL.conn = None
                if attempt == 2:
                    return self.error(500, "InternalError", "The backend did not answer.", akid)
        if resp.status == 404 and control().get("missing") == 403 and self.command in ("GET", "HEAD"):
            resp.read()
            return self.error(403, "AccessDenied", "Access Denied", akid)
        self.send_response(resp.status)
        length = resp.getheader("Content-Length")
        data = None
        if length is None and self.command != "HEAD":
            data = resp.read()
            length = str(len(data))
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", length)
        self.end_headers()
        if self.command == "GET" and resp.status in (200, 206) and length and \
                take("truncate", self.path):
            self.wfile.write(resp.read(int(length) // 2) if data is None else data[:int(length) // 2])
            self.wfile.flush()
            self.close_connection = True
            c.close()
            LOCAL.conn = None
            self.log(resp.status, "Truncated", akid)
            return
        if data is not None:
            self.wfile.write(data)
        elif self.command != "HEAD":
            while True:
                chunk = resp.read(256 * 1024)
                if not chunk:
                    break
                self.wfile.write(chunk)
        else:
            resp.read()
        self.log(resp.status, None, akid)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--backend", type=int, required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--keys", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--control")
    p.add_argument("--anonymous", action="store_true")
    ARGS = p.parse_args()
    with open(ARGS.keys) as f:
        for k in json.load(f):
            KEYS[k["id"]] = k
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = ARGS.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, ARGS.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
