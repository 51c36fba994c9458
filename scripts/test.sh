#!/usr/bin/env bash
# Build runix and run the whole test suite, as CI does:
#   0. the release files, dist/ (scripts/release.sh; t0030 checks them);
#   1. the unit and integration tests (real Nix as the oracle);
#   2. the same tests built with AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. each libFuzzer harness for $RUNIX_FUZZ_SECONDS (default 20) seconds.
# Ends with one line "N passed, N failed"; exits non-zero if anything failed.
set -uo pipefail

cd "$(dirname "$0")/.."
root=$PWD
fuzz_seconds=${RUNIX_FUZZ_SECONDS:-20}
testdata=${RUNIX_TESTDATA:-$root/../shared/testdata}

if [ ! -f "$testdata/README.md" ]; then
  echo "error: the test vectors are missing: expected '$testdata' (../shared/testdata beside the source tree)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

scripts/install-deps.sh --with-tests || { echo "0 passed, 1 failed"; exit 1; }

results=$(mktemp)
trap 'rm -f "$results"' EXIT
step_failed() { echo "FAIL $1" >> "$results"; }

setup() { # setup DIR [meson options...]
  local dir=$1
  shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" -Dtestdata="$testdata" "$@" >/dev/null
  else
    meson setup "$dir" -Dtestdata="$testdata" "$@" >/dev/null
  fi
}

run_suite() { # run_suite BUILD_DIR LABEL
  local dir=$1 label=$2
  echo "== $label"
  meson test -C "$dir" --print-errorlogs --num-processes 2 2>&1 | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout):' || true
  python3 - "$dir/meson-logs/testlog.json" "$label" >> "$results" <<'PY'
import json, re, sys
path, label = sys.argv[1], sys.argv[2]
for line in open(path):
    t = json.loads(line)
    out = t.get("stdout") or ""
    oks = len(re.findall(r"^ok \d+", out, re.M))
    bad = len(re.findall(r"^not ok \d+", out, re.M))
    if t["result"] not in ("OK", "EXPECTEDFAIL") and bad == 0:
        bad = 1  # crashed, timed out or skipped: a failure in CI
    for _ in range(oks):
        print("PASS %s: %s" % (label, t["name"]))
    for _ in range(bad):
        print("FAIL %s: %s" % (label, t["name"]))
    if bad:
        # What failed, with its diagnostics, so that a CI log says why.
        shown, inside = [], False
        for l in out.splitlines():
            if l.startswith(("not ok", "Bail out")):
                inside = True
            elif not l.startswith("#"):
                inside = False
            if inside:
                shown.append(l)
        if not shown:
            shown = out.splitlines()[-15:] + (t.get("stderr") or "").splitlines()[-15:]
        sys.stderr.write("-- %s: %s (%s)\n" % (label, t["name"], t["result"]))
        for l in shown[:60]:
            sys.stderr.write("   %s\n" % l)
PY
}

# 0. The release files (dist/), which t0030 checks.
echo "== release build"
release_start=$(date +%s)
mkdir -p build-release
if scripts/release.sh --arch all --out dist > build-release/release.log 2>&1; then
  echo "ok - release files built in $(( $(date +%s) - release_start ))s: $(cd dist && ls | tr '\n' ' ')"
  echo "PASS release build" >> "$results"
else
  echo "not ok - release build failed:"; tail -30 build-release/release.log; step_failed "release build"
fi

# 1. The plain build and every test.
if setup build && ninja -C build >/dev/null; then
  run_suite build "tests"
else
  echo "== build failed"; ninja -C build | tail -50; step_failed "build"
fi

# 2. Sanitizers.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false && ninja -C build-asan >/dev/null; then
  run_suite build-asan "asan+ubsan"
else
  echo "== sanitizer build failed"; step_failed "asan build"
fi

# 3. Fuzzing with libFuzzer (clang), seeded with the test vectors.
echo "== fuzzing, ${fuzz_seconds}s per harness"
if CC=clang setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined -Db_lundef=false \
   && ninja -C build-fuzz >/dev/null; then
  seeds=$(mktemp -d)
  mkdir -p "$seeds/nar" "$seeds/narinfo" "$seeds/nix32" "$seeds/decompress" "$seeds/config" "$seeds/dist"
  cp tests/dist/*.runix tests/dist/*.sh "$seeds/dist/"
  find "$testdata/nar" -name '*.nar' -size -64k -exec cp {} "$seeds/nar/" \;
  find "$testdata/narinfo" -name '*.narinfo' -size -16k -exec cp {} "$seeds/narinfo/" \;
  cut -f2 "$testdata/base32/vectors.tsv" | grep -v '^#' | split -l 1 - "$seeds/nix32/v"
  # Decompression seeds: a method byte (none xz zstd bzip2 br = 0..4), then a stream.
  i=0
  for f in $(find "$testdata/nar" -name '*.nar' -size -16k | head -n 8); do
    { printf '\x00'; cat "$f"; } > "$seeds/decompress/none$i"
    { printf '\x06'; xz -c "$f"; } > "$seeds/decompress/xz$i"
    { printf '\x07'; zstd -qc "$f"; } > "$seeds/decompress/zstd$i"
    { printf '\x08'; bzip2 -c "$f"; } > "$seeds/decompress/bzip2$i"
    i=$((i + 1))
  done
  mkdir -p "$seeds/runmap"
  printf '#!/nix/store/ffffffffffffffffffffffffffffffff-fuzz/link -x\n' > "$seeds/runmap/self"
  printf '#! /bin/sh\necho\n' > "$seeds/runmap/sh"
  printf 'etc/../loop/x' > "$seeds/runmap/path"
  head -c 4096 /bin/sh > "$seeds/runmap/elf"
  # ELF header fields (fuzz/fuzz-run-map.c, build_elf): 64- and 32-bit, one PT_INTERP naming the store loader.
  ld=/nix/store/ffffffffffffffffffffffffffffffff-fuzz/ld
  printf '\x01\x00\x40\0\0\0\0\0\0\0\x01\0\0\0\x01\x78\0\0\0\0\0\0\0\x34\0\0\0\0\0\0\0%s\0' "$ld" > "$seeds/runmap/elf64-fields"
  printf '\x01\x01\x34\0\0\0\0\0\0\0\x01\0\0\0\x01\x54\0\0\0\0\0\0\0\x34\0\0\0\0\0\0\0%s\0' "$ld" > "$seeds/runmap/elf32-fields"
  # p_offset 2^64 - 16 with p_filesz 32: the sum wraps to 16, inside the header.
  printf '\x01\x00\x40\0\0\0\0\0\0\0\x01\0\0\0\x03\x10\0\0\0\0\0\0\0\x20\0\0\0\0\0\0\0%s\0' "$ld" > "$seeds/runmap/elf64-wrap"
  printf 'substituters = https://cache.nixos.org file:///srv/c?priority=3\n# c\ninclude x\n' > "$seeds/config/a"
  printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n' > "$seeds/config/b"
  # s3:// URLs, AWS credentials and config files, S3's error documents (fuzz/fuzz-s3.c).
  mkdir -p "$seeds/s3"
  printf 'nix?region=eu-west-1&endpoint=http%%3A%%2F%%2F127.0.0.1:9000&scheme=http&profile=ci&priority=3' > "$seeds/s3/url"
  printf 'P[default]\naws_access_key_id = A\n[ci]\naws_access_key_id=B\naws_secret_access_key = s\naws_session_token=t\n' > "$seeds/s3/creds"
  printf 'C[profile ci]\ns3 =\n  addressing_style = path\naws_access_key_id=B\n' > "$seeds/s3/config"
  printf 'E<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>a &amp;lt; b &amp;amp;</Message></Error>' > "$seeds/s3/error"
  # nix-index databases (fuzz/fuzz-index.c): frcode lines ('F'), a whole file, a listing ('L').
  mkdir -p "$seeds/index"
  pkg='{"store_dir":"/nix/store","hash":"0i2jd68mp5g6h2sa5k9c85rb80sn8hi9","name":"hello-2.10","origin":{"attr":"hello","output":"out","toplevel":true,"system":"x86_64-linux"}}'
  lines="2d\0\0\n1d\0\0/bin\n5x\0\004/hello\n/x/s\0\001s\np\0\373$pkg\n"
  printf "F$lines" > "$seeds/index/lines"
  { printf 'NIXI\1\0\0\0\0\0\0\0'; printf "$lines" | zstd -qc; } > "$seeds/index/db"
  # Bundles (fuzz/fuzz-bundle.c): the file's size (u64), a trailer, then a manifest's app document.
  mkdir -p "$seeds/bundle"
  { printf '\x50\x01\0\0\0\0\0\0\x00\x01\0\0\0\0\0\0\x00\x01\0\0\0\0\0\0\x10\0\0\0\0\0\0\0'
    head -c 40 /dev/zero
    printf '{"runix-bundle":1,"roots":["/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10"],"program":"bin/hello","args":["a"],"env":["K=V"]}\n{"paths":[]}\n'
  } > "$seeds/bundle/app"
  printf 'L{"version":1,"root":{"type":"directory","entries":{"bin":{"type":"directory","entries":{"a":{"type":"regular","size":3,"executable":true},"b":{"type":"symlink","target":"a"}}}}}}' > "$seeds/index/ls"
  # The install receipt and SHA256SUMS (fuzz-receipt.c): a small line parser.
  mkdir -p "$seeds/receipt"
  printf 'runix-receipt 1\nversion 0.1.0\nbinary /home/u/.local/bin/runix\nfile /home/u/x\nsha256 %064d\n' 0 > "$seeds/receipt/a"
  printf '%064d  runix-x86_64-linux\n%064d *install.sh\n' 1 2 > "$seeds/receipt/sums"
  # Sandbox proxy requests (fuzz/fuzz-proxy.c): the first byte picks HTTP (even) or SOCKS5 (odd).
  mkdir -p "$seeds/proxy"
  printf 'HCONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\n\r\n' > "$seeds/proxy/connect"
  printf 'HGET http://a.invalid:8080/p HTTP/1.1\r\n\r\n' > "$seeds/proxy/get"
  printf 'S\5\1\0\5\1\0\3\11a.invalid\0\120' > "$seeds/proxy/socks"
  # Store socket requests (fuzz/fuzz-store-socket.c): one line each.
  mkdir -p "$seeds/storesock"
  printf 'realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-hello-2.12\n' > "$seeds/storesock/ok"
  printf 'realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-hello-2.12/bin\r\n' > "$seeds/storesock/sub"
  # name:seeds:max_len[:seconds, for a small parser that needs less than $fuzz_seconds]
  for f in nar-reader:nar:65536 narinfo:narinfo:16384 nix32:nix32:256 \
           decompress:decompress:65536 config:config:4096 run-map:runmap:8192 dist:dist:16384 \
           index:index:16384 receipt:receipt:4096:20 proxy:proxy:16384 store-socket:storesock:1024:10 bundle:bundle:8192:15 s3:s3:4096; do
    IFS=: read -r name seed maxlen secs <<< "$f"
    secs=${secs:-$fuzz_seconds}
    [ "$secs" -gt "$fuzz_seconds" ] && secs=$fuzz_seconds
    log=build-fuzz/fuzz-$name.log
    if build-fuzz/fuzz/fuzz-$name -max_total_time="$secs" -max_len="$maxlen" \
         -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$seeds/$seed" > "$log" 2>&1; then
      echo "ok - fuzz-$name: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs"
      echo "PASS fuzz-$name" >> "$results"
    else
      echo "not ok - fuzz-$name found a problem:"; tail -40 "$log"
      step_failed "fuzz-$name"
    fi
  done
  rm -rf "$seeds"
else
  echo "== fuzz build failed"; step_failed "fuzz build"
fi

passed=$(grep -c '^PASS' "$results")
failed=$(grep -c '^FAIL' "$results")
if [ "$failed" -gt 0 ]; then
  echo "== failures:"
  grep '^FAIL' "$results" | sort | uniq -c
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
