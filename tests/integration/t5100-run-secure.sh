#!/usr/bin/env bash
# runix and runix-core refuse to run set-user-ID, set-group-ID or with file
# capabilities (AT_SECURE): everything they read (RUNIX_* variables, the
# store and the caches, the program to run) is the caller's to choose, so a
# privileged copy would be privilege escalation for any user.  Copies of the
# built binaries are made privileged as root and run as nobody.
. "$(dirname "$0")/lib/libtest.sh"

if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP making a set-user-ID or capability copy needs root"
  exit 0
fi
uid=$(id -u nobody 2>/dev/null || echo 65534)
gid=$(id -g nobody 2>/dev/null || echo 65534)
as_nobody=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
core=$(dirname "$RUNIX")/runix-core
chmod 755 "$TEST_TMP"
env_user=(env -i PATH=/usr/bin:/bin HOME="$TEST_TMP" LC_ALL=C.UTF-8
  RUNIX_STORE="$TEST_TMP/store" ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")

# privileged KIND SRC DST: copy SRC to DST and make it privileged: suid, sgid or caps.
privileged() {
  cp "$2" "$3"
  chown 0:0 "$3"
  case $1 in
  suid) chmod 4755 "$3" ;;
  sgid) chmod 2755 "$3" ;;
  caps) chmod 755 "$3" && setcap cap_net_bind_service+ep "$3" ;;
  esac
}

# raised FILE: 1 if FILE (a copy of cat) runs as nobody with more than nobody's
# privileges, as the kernel's AT_SECURE means: another effective uid or gid, or
# permitted capabilities (from /proc/self/status, which any process may read).
raised() {
  "${as_nobody[@]}" "$1" /proc/self/status | awk '
    $1 == "Uid:" && $2 != $3 { r = 1 }
    $1 == "Gid:" && $2 != $3 { r = 1 }
    $1 == "CapPrm:" && $2 !~ /^0+$/ { r = 1 }
    END { print r ? 1 : 0 }'
}

# The control: unprivileged copies run as nobody.
cp "$RUNIX" "$TEST_TMP/runix-plain"
ok "an unprivileged copy runs as nobody" "${as_nobody[@]}" "${env_user[@]}" "$TEST_TMP/runix-plain" --version

kinds=(suid sgid)
if command -v setcap >/dev/null; then
  kinds+=(caps)
else
  echo "# setcap (libcap2-bin) is missing: file capabilities are not tested"
fi
for kind in "${kinds[@]}"; do
  if ! privileged "$kind" /bin/cat "$TEST_TMP/cat-$kind" 2>"$TEST_TMP/err"; then
    echo "# $kind: cannot make a privileged copy here: $(cat "$TEST_TMP/err")"
    continue
  fi
  # The control: the kernel really raises such a copy's privileges here (no nosuid mount).
  secure=$(raised "$TEST_TMP/cat-$kind")
  is "$secure" 1 "$kind: a privileged copy of cat runs with raised privileges"
  [ "$secure" = 1 ] || continue
  for bin in runix runix-core; do
    src=$RUNIX
    [ "$bin" = runix-core ] && src=$core
    dst=$TEST_TMP/$bin-$kind
    privileged "$kind" "$src" "$dst"
    fails "$kind: $bin --version refuses" 1 "refusing to run set-user-ID, set-group-ID or with file capabilities" \
      "${as_nobody[@]}" "${env_user[@]}" "$dst" --version
    fails "$kind: $bin with a command refuses, before reading settings" 1 "refusing to run set-user-ID" \
      "${as_nobody[@]}" "${env_user[@]}" RUNIX_STORE=/root/store "$dst" doctor
  done
  # Nothing of the refused runs was written.
  is "$(ls "$TEST_TMP/store" 2>/dev/null | wc -l)" 0 "$kind: no store was created"
done

done_testing
