#!/usr/bin/env bash
# Hostile caches: every bad narinfo, NAR or server behaviour is refused with
# a clear error, leaves nothing of the bad path in the store, and leaves the
# rest of the store as it was.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures

key=$(cat "$FX/key.pub")
hash_of() { basename "$1" | cut -c1-32; }
victim=$(path_of greeting) # a leaf: no references
vh=$(hash_of "$victim")

web=$TEST_TMP/web
mkdir -p "$web"
export RUNIX_CONFIG=$TEST_TMP/runix.conf
printf 'download-attempts = 2\nstalled-download-timeout = 1\n' >"$RUNIX_CONFIG"

# mkcache NAME BASE: a cache holding only the victim, copied from cache-BASE.
mkcache() {
  local d=$web/$1 b=$FX/cache-$2
  mkdir -p "$d/nar"
  cp "$b/nix-cache-info" "$d/"
  cp "$b/$vh.narinfo" "$d/"
  cp "$b/$(sed -n 's/^URL: //p' "$b/$vh.narinfo")" "$d/nar/"
}
# resign NAME: sign NAME's victim narinfo again with the test key (after an edit).
resign() {
  local f=$web/$1/$vh.narinfo
  "$RUNIX" narinfo sign -k "$FX/key.sec" <(grep -v '^Sig:' "$f") >"$f.new" && mv "$f.new" "$f"
}

# A NAR of a directory holding one entry named $1 (which no valid NAR has).
evil_nar() {
  python3 - "$1" <<'PY'
import struct, sys
def s(b):
    return struct.pack('<Q', len(b)) + b + b'\0' * ((8 - len(b) % 8) % 8)
name = sys.argv[1].encode()
out = s(b'nix-archive-1') + s(b'(') + s(b'type') + s(b'directory')
out += s(b'entry') + s(b'(') + s(b'name') + s(name) + s(b'node')
out += s(b'(') + s(b'type') + s(b'regular') + s(b'contents') + s(b'pwned\n') + s(b')') + s(b')')
out += s(b')')
sys.stdout.buffer.write(out)
PY
}
# mknar NAME COMMAND...: the victim's narinfo pointing at the NAR COMMAND
# writes, with correct hashes and sizes and a valid signature.
mknar() {
  local d=$web/$1
  mkdir -p "$d/nar"
  cp "$FX/cache-none/nix-cache-info" "$d/"
  "${@:2}" >"$d/nar/evil.nar"
  local h size
  h=$(sha256sum "$d/nar/evil.nar" | cut -d' ' -f1)
  size=$(stat -c %s "$d/nar/evil.nar")
  sed -e "s|^URL: .*|URL: nar/evil.nar|" -e "s|^FileHash: .*|FileHash: sha256:$h|" \
      -e "s|^NarHash: .*|NarHash: sha256:$h|" -e "s|^FileSize: .*|FileSize: $size|" \
      -e "s|^NarSize: .*|NarSize: $size|" "$FX/cache-none/$vh.narinfo" >"$d/$vh.narinfo"
  resign "$1"
}
# mkevil NAME ENTRY: the same for an evil NAR.
mkevil() { mknar "$1" evil_nar "$2"; }

# A NAR of 256 nested directories, each also holding a file; the narinfo
# (signed, hashes right) says it is the victim.
deep_nar() {
  python3 - <<'PY'
import struct, sys
def s(b):
    return struct.pack('<Q', len(b)) + b + b'\0' * ((8 - len(b) % 8) % 8)
def t(*ws):
    return b''.join(s(w.encode()) for w in ws)
out = t('nix-archive-1', '(', 'type', 'directory')
for _ in range(255):
    out += t('entry', '(', 'name', 'd', 'node', '(', 'type', 'directory')
for _ in range(255):
    out += t(')', ')', 'entry', '(', 'name', 'f', 'node', '(', 'type', 'regular', 'contents', 'x', ')', ')')
out += t(')')
sys.stdout.buffer.write(out)
PY
}
mknar deep deep_nar

# wrong NarHash / NarSize (correctly signed, so only the NAR check can catch them)
mkcache narhash xz
other=$(sed -n 's/^NarHash: //p' "$FX/cache-xz/$(hash_of "$(path_of glibc)").narinfo")
sed -i "s|^NarHash: .*|NarHash: $other|" "$web/narhash/$vh.narinfo"; resign narhash
mkcache narsize-big xz
sed -i -E 's/^NarSize: ([0-9]+)/echo "NarSize: $((\1 + 8))"/e' "$web/narsize-big/$vh.narinfo"; resign narsize-big
mkcache narsize-small xz
sed -i -E 's/^NarSize: ([0-9]+)/echo "NarSize: $((\1 - 8))"/e' "$web/narsize-small/$vh.narinfo"; resign narsize-small
mkcache filehash xz
sed -i "s|^FileHash: .*|FileHash: $other|" "$web/filehash/$vh.narinfo"; resign filehash
mkcache filehash-none none
sed -i "s|^FileHash: .*|FileHash: $other|" "$web/filehash-none/$vh.narinfo"; resign filehash-none
# signatures
mkcache badsig none
# (its first character changed: A to B, anything else to A, whatever the key)
sed -i -E '/^Sig:/ { s/^(Sig: [^:]*:)A/\1B/; t; s/^(Sig: [^:]*:)./\1A/ }' "$web/badsig/$vh.narinfo"
mkcache untrusted none
nix-store --generate-binary-cache-key runix-test-1 "$TEST_TMP/other.sec" "$TEST_TMP/other.pub"
sed -i '/^Sig:/d' "$web/untrusted/$vh.narinfo"
"$RUNIX" narinfo sign -k "$TEST_TMP/other.sec" "$web/untrusted/$vh.narinfo" >"$TEST_TMP/u" && mv "$TEST_TMP/u" "$web/untrusted/$vh.narinfo"
mkcache nosig none
sed -i '/^Sig:/d' "$web/nosig/$vh.narinfo"
# a validly signed narinfo of another path, served under the victim's hash
mkcache wrongpath none
cp "$FX/cache-none/$(hash_of "$(path_of libgreet)").narinfo" "$web/wrongpath/$vh.narinfo"
# references that are not store paths
mkcache badrefs none
sed -i 's|^References:.*|References: ../../etc/passwd|' "$web/badrefs/$vh.narinfo"
# runix signs only what it can parse: the fingerprint is signed with openssl.
sign_fingerprint() { # NARINFO: replace its Sig with the test key's over Nix's fingerprint
  local f=$1 fp sig
  fp=$(awk -F': ' '/^StorePath:/ { p = $2 } /^NarHash:/ { h = $2 } /^NarSize:/ { s = $2 }
    /^References:/ { n = split($2, r, " "); for (i = 1; i <= n; i++) refs = refs (i > 1 ? "," : "") "/nix/store/" r[i] }
    END { printf "1;%s;%s;%s;%s", p, h, s, refs }' "$f")
  { printf '\x30\x2e\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04\x22\x04\x20' # PKCS#8 Ed25519 prefix
    cut -d: -f2 "$FX/key.sec" | base64 -d | head -c 32; } >"$TEST_TMP/key.der" &&
    printf %s "$fp" >"$TEST_TMP/fp" &&
    sig=$(openssl pkeyutl -sign -rawin -keyform DER -inkey "$TEST_TMP/key.der" -in "$TEST_TMP/fp" | base64 -w0) &&
    [ -n "$sig" ] && sed -i '/^Sig:/d' "$f" && echo "Sig: $(cut -d: -f1 "$FX/key.sec"):$sig" >>"$f"
}
signs_as_nix() { # the victim's narinfo signed again is what Nix wrote (Ed25519 is deterministic)
  cp "$FX/cache-none/$vh.narinfo" "$TEST_TMP/resigned.narinfo" &&
    sign_fingerprint "$TEST_TMP/resigned.narinfo" &&
    cmp <(sort "$TEST_TMP/resigned.narinfo") <(sort "$FX/cache-none/$vh.narinfo")
}
ok "a fingerprint signed with openssl carries Nix's signature" signs_as_nix
ok "the narinfo whose references are not store paths is signed again" sign_fingerprint "$web/badrefs/$vh.narinfo"
# NARs with '..' and '/' in an entry name
mkevil dotdot ..
mkevil slash a/b
# another store dir
mkcache gnu none
printf 'StoreDir: /gnu/store\n' >"$web/gnu/nix-cache-info"
# the good cache, for the store's other contents and for fallbacks
cp -r "$FX/cache-xz" "$web/good"

httpd_start "$web"

R=$TEST_TMP/store
"$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/good" "$(path_of hello)" >/dev/null
before=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select path, hash from ValidPaths order by path')
if [ -n "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" "select path from ValidPaths where path = '$victim'")" ]; then
  # hello's closure includes the victim; use a store without it.
  R=$TEST_TMP/store2
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/good" "$(path_of dash)" >/dev/null
  before=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select path, hash from ValidPaths order by path')
fi

# untouched: nothing of the victim anywhere, the rest exactly as before.
untouched() {
  if [ -e "$R$victim" ] || [ -e "$R$victim.lock" ]; then
    echo "$victim (or its lock) is in the store"; return 1
  fi
  if [ -n "$(ls -A "$R/nix/var/runix/tmp")" ]; then
    echo "leftovers: $(ls -A "$R/nix/var/runix/tmp")"; return 1
  fi
  local now
  now=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select path, hash from ValidPaths order by path')
  if [ "$now" != "$before" ]; then
    echo "the database changed:"; echo "$now"; return 1
  fi
  local out
  out=$(nix-store --store "$R" --verify --check-contents 2>&1) || { echo "$out"; return 1; }
  if grep -qiE 'warning|error|modified' <<<"$out"; then echo "$out"; return 1; fi
}

refused() { # DESCRIPTION CACHE MESSAGE [MODE]
  local desc=$1 cache=$2 msg=$3 mode=${4:-ok}
  fails "$desc: refused" 1 "$msg" \
    "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/$mode/$cache" "$victim"
  ok "$desc: nothing left, the rest unaffected" untouched
}

refused "wrong NarHash" narhash "NarHash mismatch"
refused "NarSize too large" narsize-big "but NarSize is"
refused "NarSize too small" narsize-small "larger than its NarSize"
refused "wrong FileHash" filehash "FileHash mismatch"
refused "wrong FileHash on an uncompressed NAR (where it must equal NarHash)" filehash-none "FileHash mismatch"
refused "a corrupted signature" badsig "no valid signature by a trusted key"
refused "a signature by an untrusted key of the same name" untrusted "no valid signature by a trusted key"
refused "no signature" nosig "is not signed"
refused "a narinfo for another path" wrongpath "narinfo is for '$(path_of libgreet)', not the path asked for"
refused "references that are not store paths" badrefs "invalid narinfo"
refused "a NAR entry named '..'" dotdot "invalid NAR: invalid file name '..'"
refused "a NAR entry with '/' in its name" slash "invalid NAR: invalid file name 'a/b'"
refused "a truncated body" good "cannot fetch '$victim'" truncate
refused "a stalled server" good "downloading '$HTTP/stall/good/nar/" stall
refused "a cache whose StoreDir is /gnu/store" gnu "is for store dir '/gnu/store', not /nix/store"

fails "the error names the NAR URL" 1 "$HTTP/truncate/good/nar/" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/truncate/good" "$victim"

# What went wrong, said once, with the path and the URL: neither "no cache
# could provide it" nor a warning followed by the same error.
said_once() { # OUTPUT URL WHAT
  [[ $1 == *"cannot fetch '$victim': downloading '$2/nar/"*"$3"* && $1 != *"no cache could"* &&
    $(grep -cF "$3" <<<"$1") == 1 && $1 != *warning:* ]] || { printf '%s\n' "$1"; return 1; }
}
out=$("$RUNIX" fetch --trusted-key "$key" --store "$R" --cache "$HTTP/stall/good" "$victim" 2>&1)
ok "a stalled download is reported as such, once" \
  said_once "$out" "$HTTP/stall/good" "stalled: no data for 1 s (stalled-download-timeout)"
out=$("$RUNIX" fetch --trusted-key "$key" --store "$R" --cache "$HTTP/ok/narhash" "$victim" 2>&1)
ok "a NAR that does not match its NarHash is reported as such, once" \
  said_once "$out" "$HTTP/ok/narhash" "NarHash mismatch"
# A missing reference names the path that needs it.
cp -r "$FX/cache-xz" "$web/nodep" && rm "$web/nodep/$vh.narinfo"
fails "a reference missing from the cache names the path that needs it" 1 \
  "cannot fetch '$victim' (a reference of '$(path_of hello)'): no cache could provide it" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-nodep" --cache "$HTTP/ok/nodep" "$(path_of hello)"

# A server that accepts connections and reads requests but never answers.
silent=$HTTP/silent/good
elapsed_below() { # T0 SECONDS
  python3 -c 'import sys, time; d = time.time() - float(sys.argv[1]); sys.exit(d >= float(sys.argv[2]) and f"took {d:.1f} s")' "$@"
}
printf 'narinfo-timeout = 1\ndownload-attempts = 2\n' >"$TEST_TMP/silent.conf"
t0=$(date +%s.%N)
out=$(env RUNIX_CONFIG="$TEST_TMP/silent.conf" "$RUNIX" fetch --trusted-key "$key" --store "$TEST_TMP/s-silent" \
  --cache "$silent" "$victim" 2>&1)
rc=$?
ok "a cache that never answers (narinfo-timeout = 1, 2 attempts): fails within a few seconds" elapsed_below "$t0" 6
is "$rc" 1 "  ...with exit status 1"
ok "  ...naming the cache and the limit" \
  grep -qF "cannot read '$silent/nix-cache-info': no answer within 1 s (narinfo-timeout)" <<<"$out"
is "$(grep -c "no answer within" <<<"$out")" 1 "  ...once (no warning before the error)"
: >"$TEST_TMP/defaults.conf"
t0=$(date +%s.%N)
fails "with the default settings it fails too, retries included" 1 "no answer within 8 s (narinfo-timeout)" \
  env RUNIX_CONFIG="$TEST_TMP/defaults.conf" "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-silent" \
  --cache "$silent" "$victim"
ok "  ...within a minute" elapsed_below "$t0" 60
printf 'narinfo-timeout = 3\ndownload-attempts = 1\n' >"$TEST_TMP/silent3.conf"
script -qfec "env RUNIX_CONFIG='$TEST_TMP/silent3.conf' '$RUNIX' fetch --trusted-key '$key' --store '$TEST_TMP/s-silent' --cache '$silent' '$victim'" \
  /dev/null >"$TEST_TMP/tty.out" 2>&1
ok "on a terminal, 'waiting for CACHE' shows within a second" grep -qF "waiting for $silent (1 s)" "$TEST_TMP/tty.out"

# A file:// cache whose narinfo URL climbs out of it with percent-encoding
# (libcurl decodes a file:// path): the genuine NAR, kept outside the cache.
esc=$TEST_TMP/esc
mkcache escape none
mkdir -p "$esc/outside" && mv "$web/escape/nar/"* "$esc/outside/"
mkdir -p "$esc/cache" && mv "$web/escape" "$esc/cache/c"
sed -i -E 's|^URL: nar/(.*)|URL: nar/%2e%2e/%2e%2e/%2e%2e/outside/\1|' "$esc/cache/c/$vh.narinfo"
ok "the escaping narinfo is signed again" sign_fingerprint "$esc/cache/c/$vh.narinfo"
mkdir -p "$esc/cache/c/nar"
fails "a file:// narinfo URL with '%2e%2e' segments: refused" 1 "is not a relative path inside the cache" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "file://$esc/cache/c" "$victim"
ok "  ...nothing left, the rest unaffected" untouched
# The same NAR reached through a symbolic link in a file:// cache that
# points out of it: refused before it is read.
mkdir -p "$esc/linked/nar"
cp "$esc/cache/c/nix-cache-info" "$FX/cache-none/$vh.narinfo" "$esc/linked/"
nar=$(sed -n 's/^URL: //p' "$FX/cache-none/$vh.narinfo")
ln -s "$esc/outside/${nar#nar/}" "$esc/linked/$nar"
fails "a file:// cache whose NAR is a link out of it: refused" 1 "is not inside the cache" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "file://$esc/linked" "$victim"
ok "  ...nothing left, the rest unaffected" untouched
rm "$esc/linked/$nar" && cp "$esc/outside/${nar#nar/}" "$esc/linked/$nar"
ok "  ...while the same cache with the NAR itself is used" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-linked" --cache "file://$esc/linked" "$victim"

# An https:// cache that redirects to http://: not followed (netrc
# credentials and the NAR would travel in clear text).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TEST_TMP/tls.key" -out "$TEST_TMP/tls.crt" 2>/dev/null
: >"$TEST_TMP/tls.log"
HTTPD_TLS_CERT=$TEST_TMP/tls.crt HTTPD_TLS_KEY=$TEST_TMP/tls.key HTTPD_REDIRECT_BASE=$HTTP \
  python3 "$(dirname "$0")/lib/httpd.py" "$web" "$TEST_TMP/tls.port" "$TEST_TMP/tls.log" &
TLS_PID=$!
trap 'kill $HTTPD_PID $TLS_PID 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do [ -s "$TEST_TMP/tls.port" ] && break; sleep 0.05; done
HTTPS=https://127.0.0.1:$(cat "$TEST_TMP/tls.port")
printf 'machine 127.0.0.1 login runix password s3cret\n' >"$TEST_TMP/netrc"
printf 'ssl-cert-file = %s\nnetrc-file = %s\n' "$TEST_TMP/tls.crt" "$TEST_TMP/netrc" >"$TEST_TMP/tls.conf"
: >"$HTTP_LOG.before-redirect" && cp "$HTTP_LOG" "$HTTP_LOG.before-redirect"
fails "an https:// cache redirecting to http://: not followed" 1 "$HTTPS/redirect/good" \
  env RUNIX_CONFIG="$TEST_TMP/tls.conf" "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-redir" \
  --cache "$HTTPS/redirect/good" "$victim"
ok "  ...the https server was asked" grep -q "GET /redirect/good/" "$TEST_TMP/tls.log"
is "$(diff "$HTTP_LOG.before-redirect" "$HTTP_LOG" | grep -c '^>')" 0 "  ...and the http:// server never was"

# CA and Deriver are outside the signed fingerprint: whoever is on the way may
# add a bad one to a genuine narinfo.  It is dropped with a warning, and real
# Nix can still read the store.
mkcache badca none
sed -i '/^CA:/d' "$web/badca/$vh.narinfo"
echo "CA: not-a-content-address" >>"$web/badca/$vh.narinfo"
mkcache wrongca none
sed -i '/^CA:/d' "$web/wrongca/$vh.narinfo"
echo "CA: fixed:r:sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw" >>"$web/wrongca/$vh.narinfo"
mkcache baddrv none
sed -i '/^Deriver:/d' "$web/baddrv/$vh.narinfo"
echo "Deriver: ../../etc/passwd.drv" >>"$web/baddrv/$vh.narinfo"
for c in badca wrongca baddrv; do
  field=CA column=ca
  [ $c = baddrv ] && field=Deriver column=deriver
  fails "an unsigned bad $field ($c): the path is fetched, with a warning" 0 "unsigned field '$field' (" \
    "$RUNIX" fetch --trusted-key "$key" --store "$TEST_TMP/s-$c" --cache "$HTTP/ok/$c" "$victim"
  is "$(sqlite3 "$TEST_TMP/s-$c/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths where path = '$victim' and $column is null")" 1 \
    "  ...and registered without it"
  ok "  ...and real Nix reads the store (nix path-info)" \
    nix --extra-experimental-features nix-command path-info --store "$TEST_TMP/s-$c" --json "$victim"
  ok "  ...and verifies it" nix-store --store "$TEST_TMP/s-$c" --verify --check-contents
done

# A NAR 256 directories deep, with far fewer fds than that: the unpacker
# keeps only a few open, so the fetch neither fails "in the store" nor
# leaves the next cache unasked.
ok "a NAR 256 directories deep unpacks with 'ulimit -n 100'" \
  bash -c 'ulimit -n 100 && exec "$@"' _ "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-deep" \
  --cache "$HTTP/ok/deep" --cache "$HTTP/ok/good" "$victim"
ok "  ...and real Nix finds it valid" nix-store --store "$TEST_TMP/s-deep" --verify-path "$victim"
ok "  ...with the tree the cache sent" test -e "$TEST_TMP/s-deep$victim$(printf '/d%.0s' $(seq 255))"

# Credentials in a cache URL are sent, and shown in no message.
cred=http://runix:s3cret@${HTTP#http://}
for c in narhash badca; do
  out=$("$RUNIX" fetch --trusted-key "$key" --store "$TEST_TMP/s-cred-$c" --cache "$cred/ok/$c" "$victim" 2>&1)
  ok "messages about a cache with credentials ($c) name it without them" \
    bash -c '[[ $1 == *"$2/ok/$3"* && $1 != *s3cret* ]] || { printf "%s\n" "$1"; exit 1; }' _ "$out" "$HTTP" "$c"
done
out=$("$RUNIX" doctor --store "$TEST_TMP/s-cred-doctor" --cache "$cred/ok/good" 2>&1)
ok "  ...and doctor shows it without them" \
  bash -c '[[ $1 == *"$2/ok/good: answers"* && $1 != *s3cret* ]] || { printf "%s\n" "$1"; exit 1; }' _ "$out" "$HTTP"
ok "  ...but asks it with them" grep -q '^GET /ok/good/nix-cache-info auth=runix$' "$HTTP_LOG"
out=$("$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-cred-bad" --cache "$cred/ok/good#x" "$victim" 2>&1)
ok "  ...and so do errors about the URL itself" \
  bash -c '[[ $1 == *"$2/ok/good#x"* && $1 != *s3cret* ]] || { printf "%s\n" "$1"; exit 1; }' _ "$out" "$HTTP"

# Without a FileSize, a NAR followed by 32 MiB of xz stream padding (sent
# in 64 KiB pieces 20 ms apart: 10 seconds in all): the download stops soon
# after the NAR, which is installed.
mkcache padded xz
sed -i '/^FileSize:/d; /^FileHash:/d' "$web/padded/$vh.narinfo"; resign padded
head -c $((32 << 20)) /dev/zero >>"$web/padded/$(sed -n 's/^URL: //p' "$web/padded/$vh.narinfo")"
ok "a NAR followed by endless padding: fetched without waiting for the padding" \
  timeout 5 "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-padded" --cache "$HTTP/slow/padded" "$victim"
ok "  ...and real Nix finds it valid" nix-store --store "$TEST_TMP/s-padded" --verify-path "$victim"

# 500 twice, then success: retried, and it works.
: >"$TEST_TMP/empty.conf"
ok "a server that answers 500 twice then succeeds (5 attempts by default)" \
  env RUNIX_CONFIG="$TEST_TMP/empty.conf" "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s500" --cache "$HTTP/fail500x2/good" "$(path_of hello)"
is "$(grep -c "GET /fail500x2/good/$(hash_of "$(path_of hello)").narinfo" "$HTTP_LOG")" "3" \
  "the narinfo was asked for three times"

# A connection cut off in the middle of a NAR: the next attempt asks for the
# rest only (a Range request) and the pipeline carries on from there.
cp -r "$FX/cache-xz" "$web/xz"
py=$(path_of python)
pynar=$(sed -n 's/^URL: //p' "$web/xz/$(hash_of "$py").narinfo")
ok "a NAR cut off halfway is resumed" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-resume" --cache "$HTTP/truncate-once/xz" "$py"
ok "  ...with a Range request for the rest" \
  grep -q "GET /truncate-once/xz/$pynar range=[1-9]" "$HTTP_LOG"
ok "  ...and real Nix finds the whole closure valid" \
  nix-store --store "$TEST_TMP/s-resume" --verify --check-contents
ok "a server without Range support: the path is fetched again from the start" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-norange" --cache "$HTTP/truncate-once-norange/xz" "$py"
is "$(grep -c "GET /truncate-once-norange/xz/$pynar" "$HTTP_LOG")" 3 \
  "  ...after one resume attempt that the server answered in full (not counted as an attempt)"
# Sent with a Content-Encoding (which libcurl decodes), the bytes held are not
# the server's bytes: a cut-off download starts over instead of resuming.
ok "a NAR cut off halfway while sent gzip-encoded is fetched again from the start" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/s-gzip" --cache "$HTTP/truncate-once-gzip/xz" "$py"
is "$(grep "GET /truncate-once-gzip/xz/$pynar" "$HTTP_LOG" | grep -c range=)" 0 "  ...without a Range request"
ok "  ...and real Nix finds the whole closure valid" \
  nix-store --store "$TEST_TMP/s-gzip" --verify --check-contents

# A bad cache first, a good one after: the good one provides the path.
for bad in narhash badsig dotdot; do
  ok "after '$bad' fails, the next cache is used" \
    "$RUNIX" fetch -q --trusted-key "$key" --store "$TEST_TMP/fb-$bad" --cache "$HTTP/ok/$bad" \
    --cache "$HTTP/ok/good" "$victim"
  ok "  ...and the path is valid" nix-store --store "$TEST_TMP/fb-$bad" --verify-path "$victim"
done

# --insecure-no-verify accepts an unsigned narinfo, loudly.
fails "--insecure-no-verify warns" 0 "signatures are NOT checked" \
  "$RUNIX" fetch --insecure-no-verify --store "$TEST_TMP/insecure" --cache "$HTTP/ok/nosig" "$victim"

# A newer schema is refused; a database that is not Nix's too.
mkdir -p "$TEST_TMP/s11/nix/var/nix/db" && printf 11 >"$TEST_TMP/s11/nix/var/nix/db/schema"
fails "a store with schema version 11 is refused" 1 "schema version '11'" \
  "$RUNIX" fetch -q --store "$TEST_TMP/s11" --cache "$HTTP/ok/good" "$victim"

# Signed narinfos whose references form a cycle (greeting -> libgreet ->
# greeting): no valid store holds one, so neither is registered; what they
# reference is, and the store stays valid.
cp -r "$FX/cache-none" "$web/cycle"
lg=$(path_of libgreet)
sed -i "s|^References:.*|References: $(basename "$lg")|" "$web/cycle/$vh.narinfo"
sed -i "s|^References:.*|& $(basename "$victim")|" "$web/cycle/$(hash_of "$lg").narinfo"
for f in "$web/cycle/$vh.narinfo" "$web/cycle/$(hash_of "$lg").narinfo"; do
  "$RUNIX" narinfo sign -k "$FX/key.sec" <(grep -v '^Sig:' "$f") >"$f.new" && mv "$f.new" "$f"
done
R=$TEST_TMP/store-cycle
fails "narinfos whose references form a cycle are refused" 1 "its references lead back to it" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cycle" "$lg"
ok "  ...and neither path of the cycle is in the store" \
  bash -c "[ ! -e '$R$lg' ] && [ ! -e '$R$victim' ] && [ -z \"\$(sqlite3 '$R/nix/var/nix/db/db.sqlite' \"select path from ValidPaths where path in ('$lg', '$victim')\")\" ]"
ok "  ...while what they reference is, and the store is valid" \
  bash -c "nix-store --store '$R' --verify-path '$(path_of glibc)' && nix-store --store '$R' --verify --check-contents"

# A store that runs out of space: one error naming the path, the file and
# the store, at once (no other cache can help), with nothing half-written
# left and what was registered still valid.  The store is a 12 MiB tmpfs,
# mounted in a mount namespace of its own.
full=$TEST_TMP/full
mkdir -p "$full"
cat >"$TEST_TMP/enospc.sh" <<'EOF'
dir=$1 out=$2
mount -t tmpfs -o size=12m tmpfs "$dir" || { echo "cannot mount a tmpfs" >"$out.err"; exit 0; }
"$RUNIX" fetch -q --trusted-key "$KEY" --store "$dir/s" --cache "$CACHE" "$TOP" >/dev/null 2>"$out.err"
echo $? >"$out.rc"
ls -A "$dir/s/nix/var/runix/tmp" >"$out.tmp"
ls "$dir/s/nix/store" | grep '\.lock$' >"$out.locks"
sqlite3 "$dir/s/nix/var/nix/db/db.sqlite" 'select count(*) from ValidPaths' >"$out.valid"
nix-store --store "$dir/s" --verify --check-contents >"$out.verify" 2>&1
echo $? >>"$out.verify"
EOF
# As root a mount namespace is enough; otherwise (or if root may not mount)
# one inside a user namespace.
for ns in "unshare -m" "unshare -rm"; do
  KEY=$key CACHE=$HTTP/ok/good TOP=$(cat "$FX/top") $ns bash "$TEST_TMP/enospc.sh" "$full" "$TEST_TMP/enospc"
  [ -e "$TEST_TMP/enospc.rc" ] && break
done
is "$(cat "$TEST_TMP/enospc.rc" 2>/dev/null)" 1 "a store that runs out of space: the fetch fails"
ok "  ...saying so once, naming the file and the store, and what to do" \
  grep -q "cannot fetch '/nix/store/.*': cannot write file '.*': No space left on device (in the store $full/s; free some space there" "$TEST_TMP/enospc.err"
is "$(grep -c 'cannot fetch' "$TEST_TMP/enospc.err")" 1 "  ...for one path only, without trying other caches"
is "$(cat "$TEST_TMP/enospc.tmp" "$TEST_TMP/enospc.locks")" "" "  ...leaving no work dir and no lock behind"
ok "  ...with the paths registered before it complete" \
  bash -c "test \"\$(tail -n 1 '$TEST_TMP/enospc.verify')\" = 0 && ! grep -qiE 'warning: (path|not all)|error|modified' '$TEST_TMP/enospc.verify'"

done_testing
