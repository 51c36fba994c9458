#!/usr/bin/env bash
# A closure of 5,000 paths fetches under `ulimit -n 1024` (soft and hard
# limit): the fds a fetch holds do not grow with the closure.  The cache is
# generated (tiny paths, signed narinfos) and kept between runs, keyed by
# the generator.
. "$(dirname "$0")/lib/libtest.sh"
need_nix

n=5000
LC=${RUNIX_FIXTURES:-${TMPDIR:-/tmp}/runix-fixtures}/large-$n
mkdir -p "${LC%/*}"
if ! python3 "$(dirname "$0")/lib/make-large-cache.py" "$LC" "$n" >"$TEST_TMP/gen.log" 2>&1; then
  echo "Bail out! generating the large cache failed:"
  sed 's/^/# /' "$TEST_TMP/gen.log" | tail -n 20
  exit 1
fi
httpd_start "$LC/.."
key=$(cat "$LC/key.pub")
top=$(cat "$LC/top")
url=$HTTP/ok/${LC##*/}

R=$TEST_TMP/store
ok "a closure of $n paths fetches with at most 1024 open files" \
  bash -c 'ulimit -n 1024 && exec "$@"' _ "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$url" "$top"
is "$(nix path-info --store "$R" -r "$top" | sort)" "$(cat "$LC/closure")" "  ...all of it registered"
is "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" \
  'select count(*) from Refs where reference not in (select id from ValidPaths)')" 0 \
  "  ...with every reference registered"
ok "  ...and Nix finds every path whole" \
  bash -c 'out=$(nix-store --store "$1" --verify --check-contents 2>&1) || { echo "$out"; exit 1; }
           ! grep -qiE "warning|error|modified|disappeared" <<<"$out" || { echo "$out"; exit 1; }' _ "$R"
is "$(ls "$R/nix/store" | grep -c '\.lock$')" 0 "  ...leaving no lock behind"
is "$(grep -c '/nar/' "$HTTP_LOG")" "$n" "  ...having downloaded each NAR once"

# Two fetches at once into one store, under the same limit, share the work.
R=$TEST_TMP/store2
: >"$HTTP_LOG"
pids=()
for i in 1 2; do
  bash -c 'ulimit -n 1024 && exec "$@"' _ timeout 300 "$RUNIX" fetch -q --trusted-key "$key" --store "$R" \
    --cache "$url" "$top" >/dev/null 2>"$TEST_TMP/c$i.err" &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=$((failed + 1)); sed 's/^/# /' "$TEST_TMP/c$((i + 1)).err" | tail -5; }
done
is "$failed" 0 "two concurrent fetches of it both succeed"
is "$(nix path-info --store "$R" -r "$top" | wc -l | tr -d ' ')" "$n" "  ...registering all of it"
is "$(grep '/nar/' "$HTTP_LOG" | sort | uniq -d | wc -l | tr -d ' ')" 0 "  ...downloading no NAR twice"

done_testing
