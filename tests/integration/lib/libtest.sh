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
