# Shared helpers for integration tests.  Each test is a bash script that
# prints TAP.  $RUNIX is the binary under test; $RUNIX_TESTDATA the
# third-party vectors.  Real Nix (Debian's nix-bin) is the oracle.

set -u

: "${RUNIX:?RUNIX must point at the runix binary}"
: "${RUNIX_TESTDATA:?RUNIX_TESTDATA must point at the third-party vectors}"

export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nrequire-sigs = true\nbuild-users-group ='
export LC_ALL=C.UTF-8

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/runix-it.XXXXXX")
cleanup() {
  chmod -R u+w "$TEST_TMP" 2>/dev/null
  rm -rf "$TEST_TMP"
}
trap cleanup EXIT

_test_n=0
_test_failed=0

# ok DESCRIPTION COMMAND...: run the command; pass if it exits 0.
ok() {
  local desc=$1
  shift
  _test_n=$((_test_n + 1))
  local out
  if out=$("$@" 2>&1); then
    echo "ok $_test_n - $desc"
  else
    echo "not ok $_test_n - $desc"
    printf '%s\n' "$out" | sed 's/^/#   /' | head -n 40
    _test_failed=$((_test_failed + 1))
  fi
}

# fails DESCRIPTION EXPECTED_STATUS STDERR_SUBSTRING COMMAND...:
# pass if the command exits with EXPECTED_STATUS and its stderr contains the substring.
fails() {
  local desc=$1 want=$2 needle=$3
  shift 3
  _test_n=$((_test_n + 1))
  local err rc=0
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" -eq "$want" ] && [[ "$err" == *"$needle"* ]]; then
    echo "ok $_test_n - $desc"
  else
    echo "not ok $_test_n - $desc"
    echo "#   exit status $rc (wanted $want); stderr:"
    printf '%s\n' "$err" | sed 's/^/#   /' | head -n 20
    echo "#   (wanted stderr to contain '$needle')"
    _test_failed=$((_test_failed + 1))
  fi
}

# done_testing: print the plan and exit non-zero if anything failed.
done_testing() {
  echo "1..$_test_n"
  [ "$_test_failed" -eq 0 ]
}

# Real Nix must be present: these tests use it as the oracle.
need_nix() {
  local t
  for t in nix-store nix-hash nix; do
    if ! command -v "$t" >/dev/null; then
      echo "Bail out! '$t' (Debian package nix-bin) is required for this test"
      exit 1
    fi
  done
}

# fixture_build SCRIPT NAME WHAT: build (once, shared between test runs) a
# test closure and its caches with real Nix, by tests/fixtures/SCRIPT into
# NAME below the fixtures directory; sets FX to it.  WHAT names it in errors.
fixture_build() {
  local base=${RUNIX_FIXTURES:-${TMPDIR:-/tmp}/runix-fixtures}
  local here
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../fixtures" && pwd)
  mkdir -p "$base"
  if ! flock "$base/.lock" "$here/$1" "$base/$2" >"$TEST_TMP/fixtures.log" 2>&1; then
    echo "Bail out! building $3 with Nix failed:"
    sed 's/^/# /' "$TEST_TMP/fixtures.log" | tail -n 30
    exit 1
  fi
  FX=$base/$2
}
# fixtures: the test closure (see tests/fixtures/build.sh); sets FX.
fixtures() { fixture_build build.sh closure "the test closure"; }
# fixtures_aarch64: the aarch64 closure made from Debian's arm64 packages
# (see tests/fixtures/build-aarch64.sh); sets FX.
fixtures_aarch64() { fixture_build build-aarch64.sh closure-aarch64 "the aarch64 test closure"; }

# path_of ATTR: the store path of one attribute of the test closure.
path_of() { awk -v a="$1" '$1 == a { print $2 }' "$FX/paths"; }

# test_user: sets uid, gid and as_user (a command prefix) for running as an
# unprivileged user: as root (CI), nobody, a uid the host already has, so no
# user is added to it; otherwise the caller itself, with no prefix.
test_user() {
  if [ "$(id -u)" = 0 ]; then
    uid=$(id -u nobody 2>/dev/null || echo 65534)
    gid=$(id -g nobody 2>/dev/null || echo 65534)
    as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
  else
    uid=$(id -u)
    gid=$(id -g)
    as_user=()
  fi
}

# Store helpers; each reads the store at $R.
# db SQL: run SQL on the store's database.
db() { sqlite3 "$R/nix/var/nix/db/db.sqlite" "$@"; }
# registered: every path the database holds, sorted.
registered() { db "select path from ValidPaths order by path"; }
# verified STORE: real Nix finds nothing wrong with the store, and the
# database's references all lead to registered paths.
verified() {
  local out rc=0
  out=$(nix-store --store "$1" --verify --check-contents 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qiE 'error|modified|disappeared|not all' <<<"$out"; then
    echo "nix-store --verify --check-contents ($rc): $out"
    return 1
  fi
  local dangling
  dangling=$(sqlite3 "$1/nix/var/nix/db/db.sqlite" "select count(*) from Refs where
    referrer not in (select id from ValidPaths) or reference not in (select id from ValidPaths)")
  [ "$dangling" = 0 ] || { echo "$dangling Refs rows name unregistered paths"; return 1; }
}
# nix_oracle STORE PATH CLOSURE-FILE: real Nix accepts STORE
# (nix-store --verify --check-contents rehashes every path against its
# registered NarHash), finds in it exactly the closure of PATH listed in
# CLOSURE-FILE, and each path's NarHash, NarSize and references there are
# those of the path real Nix built in its own store.
nix_oracle() {
  local R=$1 P=$2 want=$3 out rc=0
  out=$(nix-store --store "$R" --verify --check-contents 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qiE 'warning|error|modified|disappeared' <<<"$out"; then
    echo "nix-store --verify --check-contents failed ($rc): $out"
    return 1
  fi
  nix path-info --store "$R" --json -r "$P" >"$TEST_TMP/oracle.got" 2>&1 &&
    nix path-info --json -r "$P" >"$TEST_TMP/oracle.want" 2>&1 ||
    { echo "nix path-info failed:"; cat "$TEST_TMP/oracle.got" "$TEST_TMP/oracle.want" 2>/dev/null; return 1; }
  python3 - "$TEST_TMP/oracle.got" "$TEST_TMP/oracle.want" "$want" <<'PY'
import json, sys
def info(f):
    return {i["path"]: (i["narHash"], i["narSize"], sorted(i.get("references", [])))
            for i in json.load(open(f))}
got, built = info(sys.argv[1]), info(sys.argv[2])
want = sorted(l.strip() for l in open(sys.argv[3]) if l.strip())
if sorted(got) != want:
    sys.exit("nix path-info -r lists:\n  %s\nwanted:\n  %s" % ("\n  ".join(sorted(got)), "\n  ".join(want)))
for p in want:
    if got[p] != built.get(p):
        sys.exit("%s: registered as %s, real Nix built %s" % (p, got[p], built.get(p)))
PY
}
# mkroot KIND NAME PATH...: a runix root, laid out as store_root_set() lays it out.
mkroot() {
  local d=$R/nix/var/nix/gcroots/runix/$1/$2 p
  mkdir -p "$d"
  for p in "${@:3}"; do ln -sfn "$p" "$d/$(basename "$p")"; done
}

# httpd_start ROOT: serve ROOT on 127.0.0.1; sets HTTP (base URL) and
# HTTP_LOG (one "GET /path" line per request).  Stopped on exit.
httpd_start() {
  local root=$1
  HTTP_LOG=$TEST_TMP/httpd.log
  : >"$HTTP_LOG"
  rm -f "$TEST_TMP/httpd.port"
  python3 "$(dirname "${BASH_SOURCE[0]}")/httpd.py" "$root" "$TEST_TMP/httpd.port" "$HTTP_LOG" &
  HTTPD_PID=$!
  local i
  for i in $(seq 100); do
    [ -s "$TEST_TMP/httpd.port" ] && break
    sleep 0.05
  done
  if ! [ -s "$TEST_TMP/httpd.port" ]; then
    echo "Bail out! the test HTTP server did not start"
    exit 1
  fi
  HTTP=http://127.0.0.1:$(cat "$TEST_TMP/httpd.port")
  trap 'kill $HTTPD_PID 2>/dev/null; cleanup' EXIT
}

# is TEXT WANTED DESCRIPTION: pass if TEXT equals WANTED.
is() {
  _test_n=$((_test_n + 1))
  if [ "$1" = "$2" ]; then
    echo "ok $_test_n - $3"
  else
    echo "not ok $_test_n - $3"
    echo "#   got:    $(printf '%s' "$1" | head -c 600 | tr '\n' '|')"
    echo "#   wanted: $(printf '%s' "$2" | head -c 600 | tr '\n' '|')"
    _test_failed=$((_test_failed + 1))
  fi
}
