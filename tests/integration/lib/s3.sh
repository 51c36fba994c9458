# An S3 server on loopback that checks SigV4 signatures, for the tests and
# bench/fetch.sh: s3rver (from the npm registry, at the versions pinned in
# lib/s3rver/package-lock.json) behind lib/s3front.py, which checks each
# request as S3 does and passes it on unsigned.  Needs node and npm,
# Debian's awscli and python3-botocore (scripts/install-deps.sh).
#
# Source after libtest.sh (or with TEST_TMP set).  s3_start KEYS REGION
# [FRONT-ARGS...] [-- BUCKET...] starts both (the server with the buckets
# named after "--" made, empty) and sets S3_URL (the front's
# http://127.0.0.1:PORT), S3_LOG (one "METHOD PATH STATUS CODE KEYID"
# line per request) and S3_CTL (the front's control file, see
# s3front.py).  s3_front VAR NAME [FRONT-ARGS...] starts another front on
# the same server and sets VAR to its URL.  s3_stop ends what s3_start started.

S3_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Debian's interpreter and client, where a user's own (pyenv, pip) may come first in PATH.
S3_PY=/usr/bin/python3
[ -x "$S3_PY" ] || S3_PY=python3
S3_AWS=/usr/bin/aws
[ -x "$S3_AWS" ] || S3_AWS=aws

# s3rver's modules, installed once per package-lock into the fixtures directory.
s3_modules() {
  local base=${RUNIX_FIXTURES:-${TMPDIR:-/tmp}/runix-fixtures}
  local sum dir
  sum=$(sha256sum "$S3_LIB/s3rver/package-lock.json" | cut -c1-16)
  dir=$base/s3rver-$sum
  mkdir -p "$base"
  if ! [ -e "$dir/.done" ]; then
    if ! flock "$base/.lock-s3rver" bash -c '
        set -e
        [ -e "$1/.done" ] && exit 0
        rm -rf "$1"; mkdir -p "$1"
        cp "$2/package.json" "$2/package-lock.json" "$1/"
        cd "$1" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
        touch "$1/.done"' _ "$dir" "$S3_LIB/s3rver" >"$TEST_TMP/npm.log" 2>&1; then
      echo "Bail out! installing s3rver from the npm registry failed:"
      sed 's/^/# /' "$TEST_TMP/npm.log" | tail -n 20
      exit 1
    fi
  fi
  S3RVER=$dir/node_modules/s3rver/bin/s3rver.js
}

_s3_wait_file() {
  local i
  for i in $(seq 200); do
    [ -s "$1" ] && return 0
    sleep 0.05
  done
  return 1
}

s3_front() {
  local var=$1 name=$2
  shift 2
  rm -f "$TEST_TMP/s3front-$name.port"
  "$S3_PY" "$S3_LIB/s3front.py" --backend "$S3_BACKEND_PORT" --port-file "$TEST_TMP/s3front-$name.port" \
    --log "$S3_LOG" --keys "$S3_KEYS" --control "$S3_CTL" "$@" >/dev/null 2>>"$TEST_TMP/s3front.err" &
  S3_PIDS="$S3_PIDS $!"
  if ! _s3_wait_file "$TEST_TMP/s3front-$name.port"; then
    echo "Bail out! the S3 front did not start: $(tail -n 5 "$TEST_TMP/s3front.err")"
    exit 1
  fi
  printf -v "$var" 'http://127.0.0.1:%s' "$(cat "$TEST_TMP/s3front-$name.port")"
}

s3_start() {
  S3_KEYS=$1
  local region=$2
  shift 2
  local front=() buckets=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do front+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local b
  for b in "$@"; do buckets+=(--configure-bucket "$b"); done
  s3_modules
  mkdir -p "$TEST_TMP/s3data"
  S3_LOG=$TEST_TMP/s3.log
  S3_CTL=$TEST_TMP/s3ctl.json
  : >"$S3_LOG"
  echo '{}' >"$S3_CTL"
  : >"$TEST_TMP/s3rver.out"
  node "$S3RVER" -d "$TEST_TMP/s3data" -a 127.0.0.1 -p 0 --silent --no-vhost-buckets \
    ${buckets[@]+"${buckets[@]}"} >"$TEST_TMP/s3rver.out" 2>&1 &
  S3_PIDS=$!
  local i
  S3_BACKEND_PORT=
  for i in $(seq 200); do
    S3_BACKEND_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TEST_TMP/s3rver.out")
    [ -n "$S3_BACKEND_PORT" ] && break
    sleep 0.05
  done
  if [ -z "$S3_BACKEND_PORT" ]; then
    echo "Bail out! s3rver did not start: $(tail -n 5 "$TEST_TMP/s3rver.out")"
    exit 1
  fi
  s3_front S3_URL main --region "$region" ${front[@]+"${front[@]}"}
  trap 's3_stop; cleanup' EXIT
}

s3_stop() {
  local p
  for p in $S3_PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $S3_PIDS; do wait "$p" 2>/dev/null || true; done
  S3_PIDS=
}
