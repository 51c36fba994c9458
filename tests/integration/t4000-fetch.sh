#!/usr/bin/env bash
# runix fetch against caches made by real Nix (every compression), served
# over HTTP on loopback and as file:// URLs; real Nix checks the store.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")

# The oracle: real Nix accepts the store and sees exactly the closure, as
# it built it; the store is canonical, clean and keeps the signatures.
oracle() {
  local R=$1 P=$2 want=$3
  nix_oracle "$R" "$P" "$want" || return 1
  # Canonical: read-only and mtime 1 everywhere.
  if [ -n "$(find "$R/nix/store" -mindepth 1 -maxdepth 1 -name '*-*' ! -name '*.lock' -newermt @2)" ] ||
     [ -n "$(find "$R/nix/store" -mindepth 2 ! -type l -perm /0222)" ]; then
    echo "store paths are not canonical"
    return 1
  fi
  # Nothing left over in the work dir.
  if [ -n "$(ls -A "$R/nix/var/runix/tmp")" ]; then
    echo "leftovers in nix/var/runix/tmp: $(ls -A "$R/nix/var/runix/tmp")"
    return 1
  fi
  # Every path keeps its signatures.
  if [ -n "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" "select path from ValidPaths where sigs is null or sigs not like '%runix-test-1:%'")" ]; then
    echo "a path was registered without its signature"
    return 1
  fi
}

fetch() { "$RUNIX" fetch --trusted-key "$key" "$@"; }

for c in none xz zstd bzip2 br; do
  R=$TEST_TMP/store-$c
  out=$(fetch --store "$R" --cache "$HTTP/ok/cache-$c" "$top" 2>"$TEST_TMP/err")
  is "$out" "$top" "fetch over HTTP ($c): prints the top-level path"
  ok "fetch over HTTP ($c): real Nix verifies the store and sees the closure" oracle "$R" "$top" "$FX/closure"
done

# Every path of the closure was requested once, from the zstd cache, and
# its NAR once too.
n_nar=$(grep -c "^GET /ok/cache-zstd/nar/" "$HTTP_LOG")
is "$n_nar" "$(wc -l <"$FX/closure" | tr -d ' ')" "each NAR is downloaded exactly once"

# Small NARs are downloaded many at once, so a distant cache's latency is
# paid a few times, not once per path: from a cache that answers after
# 40 ms, more NARs are requested at once than the 2 per core (4 here)
# that big downloads are limited to.
R=$TEST_TMP/store-latency
: >"$HTTP_LOG"
fetch -q --store "$R" --cache "$HTTP/latency/cache-zstd" "$top" >/dev/null
most=$(sed -n 's/.* nars=\([0-9]*\)$/\1/p' "$HTTP_LOG" | sort -n | tail -1)
ok "small NARs are downloaded many at once (${most:-0} at most here)" test "${most:-0}" -ge 6
ok "  ...and real Nix verifies that store" oracle "$R" "$top" "$FX/closure"
# With one cache, the top-level narinfo is asked for while its nix-cache-info
# is on the way: the two are answered at the same time.
ok "  ...the first narinfo is asked for alongside nix-cache-info" \
  grep -q "^GET /latency/cache-zstd/nix-cache-info busy=2\$\|^GET /latency/cache-zstd/${top:11:32}.narinfo busy=2\$" "$HTTP_LOG"

# What a fetch learned of a host's connections is noted for the next one
# (~/.cache/runix/hosts): a host that had many open at once without a loss
# starts with that many, not with a few.  lead LOG: how many requests came
# in before the first answer (the leading lines whose busy=N counts every
# line so far), from a cache 300 ms away.
lead() { awk '{ n++; b = $NF; sub(/^busy=/, "", b) } b != n { exit } { k = n } END { print k + 0 }' "$1"; }
every=$(tr '\n' ' ' <"$FX/closure")
export XDG_CACHE_HOME=$TEST_TMP/xdg-cache
notes=$XDG_CACHE_HOME/runix/hosts
: >"$HTTP_LOG"
# shellcheck disable=SC2086
fetch -q --store "$TEST_TMP/store-notes1" --cache "$HTTP/far/cache-zstd" $every >/dev/null
cp "$HTTP_LOG" "$TEST_TMP/log1"
ok "a host not noted before starts with a few connections (4; $(lead "$TEST_TMP/log1") here)" \
  test "$(lead "$TEST_TMP/log1")" -le 4
noted=$(sed -n "s|^${HTTP}[[:space:]]\([0-9]*\) [0-9]*\$|\1|p" "$notes" 2>/dev/null)
ok "  ...and the fetch notes how many it had open at once (${noted:-none})" test "${noted:-0}" -ge 6
printf 'http://user:pw@%s 3 1\n' "${HTTP#http://}" >>"$notes"
fetch -q --store "$TEST_TMP/store-notes0" --cache "http://user:pw@${HTTP#http://}/far/cache-zstd" "$(path_of hello)" >/dev/null
ok "  ...never with a URL's credentials" bash -c '! grep -q "user\|pw" "$1"' _ "$notes"
: >"$HTTP_LOG"
# shellcheck disable=SC2086
fetch -q --store "$TEST_TMP/store-notes2" --cache "$HTTP/far/cache-zstd" $every >/dev/null
cp "$HTTP_LOG" "$TEST_TMP/log2"
ok "a noted host starts with as many connections ($(lead "$TEST_TMP/log2") before the first answer, against $(lead "$TEST_TMP/log1"))" \
  test "$(lead "$TEST_TMP/log2")" -ge 6
ok "  ...and real Nix verifies that store" oracle "$TEST_TMP/store-notes2" "$top" "$FX/closure"
# A note that is not one (garbage, an absurd number) is ignored, not an error.
printf '%s 999999 %s\nnot a note\n\0\377\n' "$HTTP" "$(date +%s)" >"$notes"
: >"$HTTP_LOG"
# shellcheck disable=SC2086
ok "a damaged notes file is ignored" fetch -q --store "$TEST_TMP/store-notes3" --cache "$HTTP/far/cache-zstd" $every
cp "$HTTP_LOG" "$TEST_TMP/log3"
ok "  ...the host starting with a few connections again" test "$(lead "$TEST_TMP/log3")" -le 4
ok "  ...and the file is rewritten with this fetch's note only" \
  bash -c '[ "$(wc -l <"$1")" = 1 ] && grep -q "^$2 [0-9]* [0-9]*\$" "$1"' _ "$notes" "$HTTP"
unset XDG_CACHE_HOME

# An HTTP/1.0 server that closes every connection, with a listen backlog
# of 1: every request is a new connection, and connects that come too
# fast have their SYN dropped.  The fetch still completes (a dropped SYN is
# made again soon rather than a second later), and its connections stay
# few: the server's note says how many it had opening at once.
rm -f "$TEST_TMP/port10"
HTTPD_PROTOCOL=HTTP/1.0 HTTPD_BACKLOG=1 python3 "$(dirname "$0")/lib/httpd.py" "$FX" "$TEST_TMP/port10" "$TEST_TMP/log10" &
httpd10=$!
for _ in $(seq 100); do [ -s "$TEST_TMP/port10" ] && break; sleep 0.05; done
http10=http://127.0.0.1:$(cat "$TEST_TMP/port10")
export XDG_CACHE_HOME=$TEST_TMP/xdg-cache10
start=$(date +%s)
# shellcheck disable=SC2086
ok "an HTTP/1.0 server with a listen backlog of 1: every path is fetched" \
  fetch -q --store "$TEST_TMP/store-http10" --cache "$http10/ok/cache-xz" $every
ok "  ...in a few seconds ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -le 20
ok "  ...and real Nix verifies that store" oracle "$TEST_TMP/store-http10" "$top" "$FX/closure"
n10=$(sed -n "s|^${http10}[[:space:]]\([0-9]*\) [0-9]*\$|\1|p" "$XDG_CACHE_HOME/runix/hosts")
ok "  ...with few connections opening at once (${n10:-none} noted)" test "${n10:-99}" -le 12
unset XDG_CACHE_HOME
kill "$httpd10"

# A server that closes every connection and answers one request at a time
# (/serial/): more connections only make each answer wait longer.  Once
# the answer times show that queue, the fetch keeps few requests out
# (without it, they grow to http-connections, 25; with it, 3 to 6 here).
LC=$TEST_TMP/serial-root/large
python3 "$(dirname "$0")/lib/make-large-cache.py" "$LC" 150 >/dev/null
rm -f "$TEST_TMP/port11"
HTTPD_PROTOCOL=HTTP/1.0 python3 "$(dirname "$0")/lib/httpd.py" "$TEST_TMP/serial-root" "$TEST_TMP/port11" "$TEST_TMP/log11" &
httpd11=$!
for _ in $(seq 100); do [ -s "$TEST_TMP/port11" ] && break; sleep 0.05; done
export XDG_CACHE_HOME=$TEST_TMP/xdg-cache11
ok "a server that answers one request at a time: every path is fetched" \
  "$RUNIX" fetch -q --store "$TEST_TMP/store-serial" --trusted-key "$(cat "$LC/key.pub")" \
  --cache "http://127.0.0.1:$(cat "$TEST_TMP/port11")/serial/large" "$(cat "$LC/top")"
is "$(sqlite3 "$TEST_TMP/store-serial/nix/var/nix/db/db.sqlite" 'select count(*) from ValidPaths')" 150 \
  "  ...all 150 of them"
busy=$(sed -n 's/.* busy=\([0-9]*\).*/\1/p' "$TEST_TMP/log11" | tail -n 200 | sort -n | tail -n 1)
ok "  ...with at most 12 requests at the server at once in its last 200 (${busy:-none} seen)" \
  test "${busy:-99}" -le 12
unset XDG_CACHE_HOME
kill "$httpd11"

# A second fetch asks nothing: the closure is already valid.
: >"$HTTP_LOG"
out=$(fetch --store "$TEST_TMP/store-xz" --cache "$HTTP/ok/cache-xz" "$top" 2>&1)
is "$(wc -l <"$HTTP_LOG" | tr -d ' ')" "0" "a warm fetch makes no request at all"
is "$out" "$top" "a warm fetch still prints the path"

# Part of the closure present: only the rest is requested.
R=$TEST_TMP/store-part
fetch --store "$R" --cache "file://$FX/cache-none" "$(path_of hello)" >/dev/null 2>&1
: >"$HTTP_LOG"
fetch --store "$R" --cache "$HTTP/ok/cache-xz" "$top" >/dev/null 2>&1
hello_hash=$(basename "$(path_of hello)" | cut -c1-32)
glibc_hash=$(basename "$(path_of glibc)" | cut -c1-32)
ok "paths already valid are not requested again" \
  bash -c "! grep -qE '/($hello_hash|$glibc_hash)\\.narinfo' '$HTTP_LOG'"
ok "a store filled in two steps passes the oracle" oracle "$R" "$top" "$FX/closure"

# file:// caches, with and without a trailing slash.
for url in "file://$FX/cache-zstd" "file://$FX/cache-bzip2/"; do
  R=$TEST_TMP/store-file-$RANDOM
  ok "fetch from $url" fetch -q --store "$R" --cache "$url" "$top"
  ok "fetch from $url: oracle" oracle "$R" "$top" "$FX/closure"
done

# A file inside a store path names that path.
R=$TEST_TMP/store-sub
out=$(fetch -q --store "$R" --cache "$HTTP/ok/cache-zstd" "$(path_of hello)/bin/hello")
is "$out" "$(path_of hello)" "a path inside a store path fetches that store path"

# --dry-run lists what is missing with sizes, and changes nothing.
R=$TEST_TMP/store-dry
fetch -q --store "$R" --cache "$HTTP/ok/cache-xz" "$(path_of glibc)" >/dev/null
out=$(fetch --dry-run --store "$R" --cache "$HTTP/ok/cache-xz" "$(path_of hello)")
ok "--dry-run names the missing paths" grep -q "$(path_of libgreet)" <<<"$out"
ok "--dry-run does not list valid paths" bash -c "! grep -q '$(path_of glibc)' <<<'$out'"
n_missing=$(nix-store -qR "$(path_of hello)" | grep -vc "$(path_of glibc)")
ok "--dry-run gives the count and sizes" \
  grep -qE "^$n_missing paths to fetch \\([0-9.]+ [KM]?i?B download, [0-9.]+ [KM]?i?B unpacked\\):" <<<"$out"
is "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select count(*) from ValidPaths')" "1" "--dry-run registers nothing"

# Progress: one plain line per path off a TTY; nothing with --quiet.
R=$TEST_TMP/store-lines
fetch --store "$R" --cache "$HTTP/ok/cache-xz" "$(path_of hello)" 2>"$TEST_TMP/lines" >/dev/null
is "$(grep -c '^fetched /nix/store/' "$TEST_TMP/lines")" "$(nix-store -qR "$(path_of hello)" | wc -l)" \
  "off a TTY: one line per fetched path"
R=$TEST_TMP/store-quiet
fetch -q --store "$R" --cache "$HTTP/ok/cache-xz" "$(path_of hello)" 2>"$TEST_TMP/quiet" >/dev/null
is "$(cat "$TEST_TMP/quiet")" "" "--quiet prints nothing on success"
R=$TEST_TMP/store-tty
script -qec "$RUNIX fetch --trusted-key '$key' --store '$R' --cache '$HTTP/slow/cache-none' '$(path_of hello)'" /dev/null >"$TEST_TMP/tty"
ok "on a TTY: a status line with paths, bytes and rate" grep -q 'fetching: [0-9]*/[0-9]* paths, .*/s' "$TEST_TMP/tty"
ok "on a TTY: the status line is cleared at the end, for the summary" grep -q $'\r\033\[Kfetched [0-9]* paths, ' "$TEST_TMP/tty"

# Store location: --store, then RUNIX_STORE, then the config file, then XDG_DATA_HOME.
cfg=$TEST_TMP/cfg
mkdir -p "$cfg/runix"
printf 'store = %s\nsubstituters = %s\ntrusted-public-keys = %s\n' \
  "$TEST_TMP/store-conf" "$HTTP/ok/cache-zstd" "$key" >"$cfg/runix/runix.conf"
XDG_CONFIG_HOME=$cfg "$RUNIX" fetch -q "$(path_of greeting)" >/dev/null
ok "the config file sets store, substituters and trusted-public-keys" \
  test -d "$TEST_TMP/store-conf$(path_of greeting)"
XDG_CONFIG_HOME=$cfg RUNIX_STORE=$TEST_TMP/store-env "$RUNIX" fetch -q "$(path_of greeting)" >/dev/null
ok "RUNIX_STORE overrides the config file" test -d "$TEST_TMP/store-env$(path_of greeting)"
XDG_CONFIG_HOME=$TEST_TMP/none XDG_DATA_HOME=$TEST_TMP/data RUNIX_CACHES="$HTTP/ok/cache-zstd" \
  RUNIX_TRUSTED_KEYS="$key" "$RUNIX" fetch -q "$(path_of greeting)" >/dev/null
ok "default store under XDG_DATA_HOME; RUNIX_CACHES and RUNIX_TRUSTED_KEYS" \
  test -d "$TEST_TMP/data/runix$(path_of greeting)"
fails "without the test key, the cache.nixos.org key alone refuses the cache" 1 "no valid signature by a trusted key" \
  env XDG_CONFIG_HOME=$TEST_TMP/none "$RUNIX" fetch -q --store "$TEST_TMP/store-nokey" \
  --cache "$HTTP/ok/cache-zstd" "$(path_of greeting)"
printf 'bogus-setting = 1\n' >"$cfg/runix/runix.conf"
fails "an unknown setting is warned about" 0 "unknown setting 'bogus-setting'" \
  env XDG_CONFIG_HOME=$cfg "$RUNIX" fetch -q --store "$TEST_TMP/store-conf" "$(path_of greeting)"
printf 'http-connections = lots\n' >"$cfg/runix/runix.conf"
fails "a bad value names the file and line (a usage error: exit 2)" 2 "runix.conf:1: 'http-connections' must be a number" \
  env XDG_CONFIG_HOME=$cfg "$RUNIX" fetch -q --store "$TEST_TMP/store-conf" "$(path_of greeting)"

# Cache order: by Priority (lower first), then as given; 404 means "ask the next".
mkdir -p "$TEST_TMP/web/low" "$TEST_TMP/web/high"
cp -r "$FX/cache-zstd/." "$TEST_TMP/web/low/"
printf 'StoreDir: /nix/store\nPriority: 10\n' >"$TEST_TMP/web/low/nix-cache-info"
printf 'StoreDir: /nix/store\nPriority: 50\n' >"$TEST_TMP/web/high/nix-cache-info"
kill $HTTPD_PID
httpd_start "$TEST_TMP/web"
R=$TEST_TMP/store-prio
ok "a cache without the path (404) is skipped" \
  fetch -q --store "$R" --cache "$HTTP/ok/high" --cache "$HTTP/ok/low" "$(path_of greeting)"
first=$(grep narinfo "$HTTP_LOG" | head -1)
ok "the cache with the lower Priority number is asked first" grep -q '/ok/low/' <<<"$first"
: >"$HTTP_LOG"
R=$TEST_TMP/store-prio2
fetch -q --store "$R" --cache "$HTTP/ok/low?priority=60" --cache "$HTTP/ok/high" "$(path_of greeting)" >/dev/null
first=$(grep narinfo "$HTTP_LOG" | head -1)
ok "?priority= in the URL overrides nix-cache-info" grep -q '/ok/high/' <<<"$first"

fails "a path in no cache names every cache asked" 1 "$HTTP/ok/high: not found" \
  fetch -q --store "$TEST_TMP/store-missing" --cache "$HTTP/ok/high" --cache "$HTTP/ok/low" \
  /nix/store/00000000000000000000000000000000-missing
fails "  ...including the second one" 1 "$HTTP/ok/low: not found" \
  fetch -q --store "$TEST_TMP/store-missing" --cache "$HTTP/ok/high" --cache "$HTTP/ok/low" \
  /nix/store/00000000000000000000000000000000-missing

# HTTPS, with the CA certificates given the ways Nix takes them: ssl-cert-file in
# the config file, NIX_SSL_CERT_FILE or SSL_CERT_FILE.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TEST_TMP/tls.key" -out "$TEST_TMP/tls.crt" 2>/dev/null
kill $HTTPD_PID
HTTPD_TLS_CERT=$TEST_TMP/tls.crt HTTPD_TLS_KEY=$TEST_TMP/tls.key httpd_start "$FX"
HTTPS=https://${HTTP#http://}
mkdir -p "$TEST_TMP/tlsconf"
printf 'ssl-cert-file = %s\n' "$TEST_TMP/tls.crt" >"$TEST_TMP/tlsconf/runix.conf"
R=$TEST_TMP/store-https
: >"$HTTP_LOG"
ok "fetch from an https:// cache whose CA is ssl-cert-file in the config (before the environment)" \
  env NIX_SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt RUNIX_CONFIG="$TEST_TMP/tlsconf/runix.conf" "$RUNIX" fetch -q --store "$R" \
  --cache "$HTTPS/ok/cache-xz" --trusted-key "$key" "$top"
ok "  ...and real Nix accepts the store" oracle "$R" "$top" "$FX/closure"
# The download threads' connections resume the TLS session of an earlier one.
ok "  ...with later connections resuming an earlier TLS session" grep -q ' tls-resumed$' "$HTTP_LOG"
ok "SSL_CERT_FILE names the CA too" env -u NIX_SSL_CERT_FILE SSL_CERT_FILE="$TEST_TMP/tls.crt" "$RUNIX" fetch -q \
  --store "$TEST_TMP/store-https2" --cache "$HTTPS/ok/cache-zstd" --trusted-key "$key" "$(path_of hello)"
ok "NIX_SSL_CERT_FILE names the CA too, before SSL_CERT_FILE" \
  env NIX_SSL_CERT_FILE="$TEST_TMP/tls.crt" SSL_CERT_FILE=/nonexistent "$RUNIX" fetch -q \
  --store "$TEST_TMP/store-https3" --cache "$HTTPS/ok/cache-zstd" --trusted-key "$key" "$(path_of hello)"
fails "a certificate nobody vouches for is refused, naming the cache" 1 "'$HTTPS/ok/cache-zstd/nix-cache-info': SSL certificate problem" \
  env -u SSL_CERT_FILE -u NIX_SSL_CERT_FILE "$RUNIX" fetch -q --store "$TEST_TMP/store-https4" \
  --cache "$HTTPS/ok/cache-zstd" --trusted-key "$key" "$(path_of hello)"
is "$(ls "$TEST_TMP/store-https4/nix/store" 2>/dev/null | grep -vc '\.lock$')" 0 "  ...and nothing is installed"
fails "an unreadable CA file is named" 1 "CA certificate file '$TEST_TMP/nope.crt'" \
  env -u NIX_SSL_CERT_FILE SSL_CERT_FILE="$TEST_TMP/nope.crt" "$RUNIX" fetch -q --store "$TEST_TMP/store-https5" \
  --cache "$HTTPS/ok/cache-zstd" "$(path_of hello)"

# Memory stays bounded whatever the size of a NAR: a path holding one
# 200 MiB file, from an xz cache (8 MiB dictionary, as Nix's default
# preset) and a zstd one, each fetched in well under 64 MiB.
bigp=/nix/store/5xq7k2n0a9g3b8c1d4f6h8j0l2m4p6r8-big-file-1.0
for c in xz zstd; do mkdir -p "$TEST_TMP/big-$c/nar"; cp "$FX/cache-$c/nix-cache-info" "$TEST_TMP/big-$c/"; done
read -r narhash narsize < <(python3 - "$TEST_TMP" <<'PY'
import hashlib, struct, subprocess, sys
d = sys.argv[1]
def s(b):
    return struct.pack('<Q', len(b)) + b + b'\0' * ((8 - len(b) % 8) % 8)
size = 200 << 20
outs = [open(d + "/big-xz/nar/big.nar.xz", "wb"), open(d + "/big-zstd/nar/big.nar.zst", "wb")]
procs = [subprocess.Popen(["xz", "--lzma2=preset=1,dict=8MiB", "-T1", "-c"], stdin=subprocess.PIPE, stdout=outs[0]),
         subprocess.Popen(["zstd", "-q", "-3", "-c"], stdin=subprocess.PIPE, stdout=outs[1])]
h, n = hashlib.sha256(), 0
def w(b):
    global n
    h.update(b)
    n += len(b)
    for p in procs:
        p.stdin.write(b)
w(s(b'nix-archive-1') + s(b'(') + s(b'type') + s(b'directory') + s(b'entry') + s(b'(') +
  s(b'name') + s(b'big') + s(b'node') + s(b'(') + s(b'type') + s(b'regular') + s(b'contents') +
  struct.pack('<Q', size))
chunk = ((b'runix ' * 11 + b'\n') * 16384)[:1 << 20]
for _ in range(size >> 20):
    w(chunk)
w(s(b')') + s(b')') + s(b')'))
for p in procs:
    p.stdin.close()
    p.wait()
print(h.hexdigest(), n)
PY
)
for c in xz zstd; do
  f=$(ls "$TEST_TMP/big-$c/nar")
  printf 'StorePath: %s\nURL: nar/%s\nCompression: %s\nFileHash: sha256:%s\nFileSize: %s\nNarHash: sha256:%s\nNarSize: %s\nReferences: \n' \
    "$bigp" "$f" "$c" "$(sha256sum "$TEST_TMP/big-$c/nar/$f" | cut -d' ' -f1)" "$(stat -c %s "$TEST_TMP/big-$c/nar/$f")" \
    "$narhash" "$narsize" >"$TEST_TMP/big.narinfo"
  "$RUNIX" narinfo sign -k "$FX/key.sec" "$TEST_TMP/big.narinfo" >"$TEST_TMP/big-$c/${bigp:11:32}.narinfo"
  R=$TEST_TMP/store-big-$c
  rss=$(python3 -c 'import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024 if r == 0 else "failed")' \
    "$RUNIX" fetch -q --store "$R" --cache "file://$TEST_TMP/big-$c" --trusted-key "$key" "$bigp")
  ok "a 200 MiB file from a $c cache is fetched with a peak RSS under 64 MiB ($rss MiB)" \
    test "$rss" != failed -a "${rss%failed}" -lt 64
  is "$(stat -c %s "$R$bigp/big")" $((200 << 20)) "  ...whole"
  ok "  ...and real Nix finds its contents valid" nix-store --store "$R" --verify --check-contents
  chmod -R u+w "$R" && rm -rf "$R"
done

fails "a bad store path is a usage error" 2 "fetch" fetch --store "$TEST_TMP/x" /usr/bin/env
fails "an unsupported cache URL is refused" 2 "unsupported URL" \
  fetch --store "$TEST_TMP/x" --cache ftp://example.org "$top"

done_testing
