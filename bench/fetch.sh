#!/usr/bin/env bash
# Benchmark runix fetch against `nix copy` (real Nix, same cache, same
# machine) and against the lower bound of just decompressing every NAR
# with 2 parallel jobs, for an xz and a zstd cache served over HTTP on
# loopback, into a cold store each run.  Also reports runix's peak RSS.
# Then the xz cache from four kinds of server (see below), many small
# paths from the hardest of them, and the xz cache from an S3 server
# against the same files from a plain HTTP server.
#
#   bench/fetch.sh            RUNS=5 by default; BENCH_DIR keeps the caches
#                             (default /var/tmp/runix-bench); STORE_DIR is
#                             where the cold stores go (default /dev/shm)
#   BENCH_ONLY="ROW..." bench/fetch.sh   only those rows, of: xz zstd
#                             http1.0-backlog5 http1.1-keepalive https-h2
#                             latency-40ms many s3; RUNIX=FILE runs another build
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
STORE_DIR=${STORE_DIR:-/dev/shm}
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
[ -x build/runix ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
RUNIX=${RUNIX:-$PWD/build/runix}

mkdir -p "$BENCH_DIR"
multiarch=$(gcc -print-multiarch)
interp=$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
top=$(nix-build bench/closure.nix --argstr multiarch "$multiarch" --argstr interp "$interp" --no-out-link)
if [ "$(cat "$BENCH_DIR/top" 2>/dev/null)" != "$top" ]; then
  rm -rf "$BENCH_DIR"/cache-* "$BENCH_DIR"/key.*
  nix-store --generate-binary-cache-key runix-bench-1 "$BENCH_DIR/key.sec" "$BENCH_DIR/key.pub"
  for c in xz zstd; do
    echo "making the $c cache..." >&2
    nix copy --to "file://$BENCH_DIR/cache-$c?compression=$c" "$top"
    # The cache's copies are signed, not the host store's paths, which
    # other caches made from them (the tests' fixtures) would carry too.
    nix store sign --store "file://$BENCH_DIR/cache-$c" -r -k "$BENCH_DIR/key.sec" "$top"
  done
  echo "$top" > "$BENCH_DIR/top"
fi
key=$(cat "$BENCH_DIR/key.pub")
files=$(nix-store -qR "$top" | xargs -I{} find {} -type f | wc -l)
narsize=$(nix path-info -S "$top" | awk '{ print $2 }')
echo "closure: $(nix-store -qR "$top" | wc -l) paths, $files files, NarSize $((narsize / 1000000)) MB"

tmp=$(mktemp -d)
python3 tests/integration/lib/httpd.py "$BENCH_DIR" "$tmp/port" /dev/null &
httpd=$!
trap 'kill $httpd; rm -rf "$tmp" "$STORE_DIR"/runix-bench-*' EXIT
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
base=http://127.0.0.1:$(cat "$tmp/port")
url=$base/ok

# secs CMD...: wall time in seconds; the peak RSS in KiB of the children
# goes to $tmp/rss, their CPU time (user + system) in seconds to $tmp/cpu.
secs() {
  python3 - "$tmp" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
d = time.monotonic() - t
if r.returncode != 0:
    why = r.stderr.decode(errors="replace").strip().splitlines()[-5:]
    sys.exit(f"failed ({r.returncode}): {' '.join(sys.argv[2:])}\n  " + "\n  ".join(why))
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1] + "/rss", "w").write(f"{u.ru_maxrss}\n")
open(sys.argv[1] + "/cpu", "w").write(f"{u.ru_utime + u.ru_stime:.3f}\n")
print(f"{d:.3f}")
PY
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# The xz cache from an S3 server (s3rver behind the SigV4-checking front of
# the tests, the bucket filled by awscli, requests signed by runix) against
# the same files from the plain HTTP/1.1 keep-alive server, in the same
# round: what signing, S3's addressing and an S3 server's answers cost.
s3_row() {
  TEST_TMP=$tmp/s3
  mkdir -p "$TEST_TMP"
  cleanup() { :; }
  # shellcheck source=../tests/integration/lib/s3.sh
  . tests/integration/lib/s3.sh
  echo '[{"id": "AKIDRUNIXBENCH", "secret": "runix-bench-secret"}]' >"$TEST_TMP/keys.json"
  s3_start "$TEST_TMP/keys.json" us-east-1 -- bench
  trap 's3_stop; kill $httpd ${httpd10:-} 2>/dev/null; [ -s "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")"; rm -rf "$tmp" "$STORE_DIR"/runix-bench-*' EXIT
  export AWS_ACCESS_KEY_ID=AKIDRUNIXBENCH AWS_SECRET_ACCESS_KEY=runix-bench-secret
  "$S3_AWS" --endpoint-url "$S3_URL" --region us-east-1 s3 cp --recursive --quiet "$BENCH_DIR/cache-xz" s3://bench/
  local s3url="s3://bench?endpoint=${S3_URL#http://}&scheme=http" i s
  : >"$tmp/r-s3"; : >"$tmp/r-plain"
  for i in $(seq "$RUNS"); do
    s=$STORE_DIR/runix-bench-$i
    rm -rf "$s" "$s-p"
    secs "$RUNIX" fetch -q --store "$s" --cache "$s3url" --trusted-key "$key" "$top" >>"$tmp/r-s3"
    secs "$RUNIX" fetch -q --store "$s-p" --cache "$url/cache-xz" --trusted-key "$key" "$top" >>"$tmp/r-plain"
    chmod -R u+w "$s" "$s-p" 2>/dev/null; rm -rf "$s" "$s-p"
  done
  unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  local r p
  r=$(median <"$tmp/r-s3"); p=$(median <"$tmp/r-plain")
  echo "xz from S3 (SigV4-checking front + s3rver): runix fetch ${r}s, from plain HTTP ${p}s," \
    "S3 / plain HTTP = $(echo "scale=2; $r / $p" | bc) (target <= 1.1) (medians of $RUNS;" \
    "runs: $(paste -sd' ' "$tmp/r-s3") vs $(paste -sd' ' "$tmp/r-plain"))"
  s3_stop
}
# wanted ROW: whether BENCH_ONLY selects the row (all do without it).
wanted() { [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $1 "* ]]; }

for c in xz zstd; do
  wanted "$c" || continue
  case $c in xz) dec="xz -dc" ;; zstd) dec="zstd -qdc" ;; esac
  : >"$tmp/runix" ; : >"$tmp/nix" ; : >"$tmp/dec" ; : >"$tmp/rssall"
  : >"$tmp/runix-cpu" ; : >"$tmp/nix-cpu" ; : >"$tmp/dec-cpu"
  for i in $(seq "$RUNS"); do
    s=$STORE_DIR/runix-bench-$i
    rm -rf "$s" "$s-nix"; sync
    secs "$RUNIX" fetch -q --store "$s" --cache "$url/cache-$c" --trusted-key "$key" "$top" >>"$tmp/runix"
    cat "$tmp/rss" >>"$tmp/rssall"; cat "$tmp/cpu" >>"$tmp/runix-cpu"
    rm -rf "$tmp/xdg"; mkdir -p "$tmp/xdg"
    XDG_CACHE_HOME=$tmp/xdg secs nix copy --from "$url/cache-$c" --to "$s-nix" --option trusted-public-keys "$key" "$top" >>"$tmp/nix"
    cat "$tmp/cpu" >>"$tmp/nix-cpu"
    secs sh -c "ls $BENCH_DIR/cache-$c/nar/* | xargs -P2 -n1 $dec >/dev/null" >>"$tmp/dec"
    cat "$tmp/cpu" >>"$tmp/dec-cpu"
    chmod -R u+w "$s" "$s-nix" 2>/dev/null; rm -rf "$s" "$s-nix"
  done
  r=$(median <"$tmp/runix"); n=$(median <"$tmp/nix"); d=$(median <"$tmp/dec")
  rss=$(sort -n "$tmp/rssall" | tail -1)
  echo "$c: runix fetch ${r}s, nix copy ${n}s, ${dec%% *} -dc x2 ${d}s (medians of $RUNS)"
  rc=$(median <"$tmp/runix-cpu"); cores=$(nproc)
  echo "$c:   CPU time: runix ${rc}s (so at least $(echo "scale=3; $rc / $cores" | bc)s on $cores cores), nix copy $(median <"$tmp/nix-cpu")s, ${dec%% *} -dc $(median <"$tmp/dec-cpu")s"
  echo "$c:   runix / nix copy = $(echo "scale=2; $r / $n" | bc)   (target <= 0.5)"
  echo "$c:   runix / decompress lower bound = $(echo "scale=2; $r / $d" | bc)   (target <= 1.3)"
  echo "$c:   runix peak RSS $((rss / 1024)) MB   (target <= 64)"
done

# The xz cache from four kinds of server, each against `nix copy` from the
# same server in the same round: (a) HTTP/1.0 closing every connection,
# with a listen backlog of 5 (Python's http.server); (b) HTTP/1.1
# keep-alive; (c) HTTPS with HTTP/2 (nginx, self-signed; both are told to
# trust its certificate); (d) every answer 40 ms late, like a distant
# cache.  Nix keeps narinfos in ~/.cache/nix: each of its runs gets an
# empty one, as runix has none.
rm -f "$tmp/port10"
HTTPD_PROTOCOL=HTTP/1.0 HTTPD_BACKLOG=5 python3 tests/integration/lib/httpd.py "$BENCH_DIR" "$tmp/port10" /dev/null &
httpd10=$!
trap 'kill $httpd $httpd10; [ -s "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")"; rm -rf "$tmp" "$STORE_DIR"/runix-bench-*' EXIT
while [ ! -s "$tmp/port10" ]; do sleep 0.05; done
declare -A kind_url=([http1.0-backlog5]=http://127.0.0.1:$(cat "$tmp/port10")/ok/cache-xz
  [http1.1-keepalive]=$url/cache-xz [latency-40ms]=$base/latency/cache-xz)
kinds="http1.0-backlog5 http1.1-keepalive"
if command -v nginx >/dev/null; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$tmp/nginx.conf" <<EOF
daemon on; pid $tmp/nginx.pid; error_log $tmp/nginx.err; worker_processes 2;
$([ "$(id -u)" = 0 ] && echo "user root;")
events {}
http { access_log off; sendfile on; tcp_nodelay on; keepalive_requests 100000;
  client_body_temp_path $tmp/ngx-body; proxy_temp_path $tmp/ngx-proxy; fastcgi_temp_path $tmp/ngx-fcgi;
  uwsgi_temp_path $tmp/ngx-uwsgi; scgi_temp_path $tmp/ngx-scgi;
  server { listen 127.0.0.1:$port ssl http2; ssl_certificate $tmp/tls.crt; ssl_certificate_key $tmp/tls.key;
    root $BENCH_DIR; } }
EOF
  if nginx -c "$tmp/nginx.conf" -p "$tmp" 2>"$tmp/nginx.out"; then
    kind_url[https-h2]=https://127.0.0.1:$port/cache-xz
    kinds="$kinds https-h2"
  else
    echo "(nginx did not start: $(cat "$tmp/nginx.out"); skipping HTTPS/HTTP2)"
  fi
else
  echo "(no nginx: skipping HTTPS/HTTP2; apt-get install nginx-light)"
fi
kinds="$kinds latency-40ms"
sel=
for k in $kinds; do wanted "$k" && sel="$sel $k"; done
kinds=$sel
[ -s "$tmp/tls.crt" ] && export NIX_SSL_CERT_FILE=$tmp/tls.crt # trusted by both
for k in $kinds; do : >"$tmp/r-$k"; : >"$tmp/n-$k"; : >"$tmp/c-$k"; done
for i in $(seq "$RUNS"); do
  for k in $kinds; do
    s=$STORE_DIR/runix-bench-$i
    rm -rf "$s" "$s-nix" "$tmp/xdg"; mkdir -p "$tmp/xdg"
    secs "$RUNIX" fetch -q --store "$s" --cache "${kind_url[$k]}" --trusted-key "$key" "$top" >>"$tmp/r-$k"
    echo "$(cat "$tmp/cpu") $(tail -1 "$tmp/r-$k")" >>"$tmp/c-$k"
    XDG_CACHE_HOME=$tmp/xdg secs nix copy --from "${kind_url[$k]}" --to "$s-nix" \
      --option trusted-public-keys "$key" "$top" >>"$tmp/n-$k"
    chmod -R u+w "$s" "$s-nix" 2>/dev/null; rm -rf "$s" "$s-nix"
  done
done
for k in $kinds; do
  r=$(median <"$tmp/r-$k"); n=$(median <"$tmp/n-$k")
  cores=$(awk '{ printf "%.2f\n", $1 / $2 }' "$tmp/c-$k" | median)
  echo "xz from $k: runix fetch ${r}s, nix copy ${n}s, ratio $(echo "scale=2; $r / $n" | bc)" \
    "(target <= 0.7), runix cores busy $cores (medians of $RUNS; runs: $(paste -sd' ' "$tmp/r-$k") vs $(paste -sd' ' "$tmp/n-$k"))"
done

# Many small paths (2,000, uncompressed) from the HTTP/1.0 server with a
# backlog of 5: thousands of connections, opened as fast as it takes them.
many_row() {
LC=$BENCH_DIR/large-2000
python3 tests/integration/lib/make-large-cache.py "$LC" 2000 >/dev/null
lurl=http://127.0.0.1:$(cat "$tmp/port10")/ok/large-2000
: >"$tmp/r-many"; : >"$tmp/n-many"
for i in $(seq "$RUNS"); do
  s=$STORE_DIR/runix-bench-$i
  rm -rf "$s" "$s-nix" "$tmp/xdg"; mkdir -p "$tmp/xdg"
  secs "$RUNIX" fetch -q --store "$s" --cache "$lurl" --trusted-key "$(cat "$LC/key.pub")" "$(cat "$LC/top")" >>"$tmp/r-many"
  XDG_CACHE_HOME=$tmp/xdg secs nix copy --from "$lurl" --to "$s-nix" \
    --option trusted-public-keys "$(cat "$LC/key.pub")" "$(cat "$LC/top")" >>"$tmp/n-many"
  chmod -R u+w "$s" "$s-nix" 2>/dev/null; rm -rf "$s" "$s-nix"
done
r=$(median <"$tmp/r-many"); n=$(median <"$tmp/n-many")
echo "2,000 small paths from http1.0-backlog5: runix fetch ${r}s, nix copy ${n}s, ratio $(echo "scale=2; $r / $n" | bc) (medians of $RUNS)"
}
if wanted many; then many_row; fi
if wanted s3; then s3_row; fi
