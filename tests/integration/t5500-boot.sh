#!/usr/bin/env bash
# runix boot: a closure's init as pid 1, the store shared read-only.
#
# The closures (tests/fixtures/boot.nix, built by real Nix): an init, a
# busybox script, that reports what pid 1 sees, stops on SIGRTMIN+3 or
# ignores it, and switches users; and Debian's own systemd, booted to
# multi-user.target and shut down cleanly.  runix runs as an unprivileged user
# (nobody) in a mount namespace in which the host's /nix/store, where Nix
# built the closure, is hidden under an empty tmpfs: runix fetches it from
# a file:// cache into its own store.  The test runs as root (as in CI): it
# gives the user a range in /etc/subuid and /etc/subgid (restored at the
# end) for newuidmap, which is set-uid root, and a cgroup of its own (removed
# at the end) delegated to it, as systemd inside needs.
. "$(dirname "$0")/lib/libtest.sh"

if [ "$(id -u)" != 0 ]; then
  echo "Bail out! t5500 needs root, as CI has: it edits /etc/subuid and hides /nix/store"
  exit 1
fi
for t in newuidmap newgidmap setpriv unshare; do
  command -v "$t" >/dev/null || { echo "Bail out! '$t' is required (Debian's uidmap, util-linux)"; exit 1; }
done

fixture_build build-boot.sh boot "the boot closure"
BFX=$FX
chmod 755 "$(dirname "$BFX")" "$BFX"
top=$(cat "$BFX/top")
top_systemd=$(cat "$BFX/top-systemd")
bb_path=$(nix-store -qR "$top" | grep -- '-busybox-static-')

uid=$(id -u nobody)
gid=$(id -g nobody)
user=$(id -un nobody)
chmod 755 "$TEST_TMP"
home=$TEST_TMP/home
mkdir -p "$home"
chown "$uid:$gid" "$home"

# /etc/subuid and /etc/subgid: kept as they were, restored at the end.
for f in subuid subgid; do
  if [ -e /etc/$f ]; then cp -p /etc/$f "$TEST_TMP/$f.saved"; fi
done
restore_subids() {
  for f in subuid subgid; do
    if [ -e "$TEST_TMP/$f.saved" ]; then cp -p "$TEST_TMP/$f.saved" /etc/$f; else rm -f /etc/$f; fi
  done
}
trap 'restore_subids; cleanup' EXIT
# set_subids yes|no: a range for the user (and nobody else's changed), or none.
set_subids() {
  for f in subuid subgid; do
    { [ -e "$TEST_TMP/$f.saved" ] && grep -v "^$user:" "$TEST_TMP/$f.saved"; } >"$TEST_TMP/$f.new"
    [ "$1" = no ] || echo "$user:$([ $f = subuid ] && echo 200000 || echo 300000):65536" >>"$TEST_TMP/$f.new"
    install -m 644 "$TEST_TMP/$f.new" /etc/$f
  done
}
set_subids no

# A cgroup for the user, below the test's own in the cgroup2 hierarchy: each boot runs in it.
cg2=$(awk '{ for (i = 7; i <= NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
  /proc/self/mountinfo | head -n 1)
if [ -z "$cg2" ]; then # a host with cgroup v1 only still has the cgroup2 hierarchy: mount it
  mkdir -p "$TEST_TMP/cgroup2" && mount -t cgroup2 none "$TEST_TMP/cgroup2" && cg2=$TEST_TMP/cgroup2
fi
RXCG=$cg2$(sed -n 's/^0:://p' /proc/self/cgroup | sed 's|^/$||')/runix-t5500-$$
if ! mkdir "$RXCG" || ! chown "$uid:$gid" "$RXCG" "$RXCG/cgroup.procs" "$RXCG/cgroup.threads" \
  "$RXCG/cgroup.subtree_control"; then
  echo "Bail out! cannot make a cgroup for the user at $RXCG (a writable cgroup2 hierarchy is needed)"
  exit 1
fi
export RXCG
trap 'restore_subids; find "$RXCG" -depth -type d -exec rmdir {} + 2>/dev/null
  ! mountpoint -q "$TEST_TMP/cgroup2" || umount "$TEST_TMP/cgroup2"; cleanup' EXIT

boot_env=(PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME="$home" LC_ALL=C.UTF-8 TERM=dumb
  RUNIX_STORE="$home/store" RUNIX_CACHES="file://$BFX/cache"
  RUNIX_TRUSTED_KEYS="$(cat "$BFX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
# as_user CMD...: CMD as the user, with the host's store hidden (in a mount namespace of its own).
in_view='{ [ -z "$RXCG" ] || echo $$ >"$RXCG/cgroup.procs"; } && mount -t tmpfs -o ro none /nix/store && exec "$@"'
as_user() {
  unshare -m sh -c "$in_view" sh \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i "${boot_env[@]}" "$@"
}
# b ARGS...: runix boot ARGS as the user, stdin /dev/null; output with the pty's CRs removed.
b() { as_user "$RUNIX" boot -q "$@" </dev/null 2>"$TEST_TMP/err" | tr -d '\r'; return "${PIPESTATUS[0]}"; }
# b_bg OUT ARGS...: the same in the background; $bg is runix's pid (every step execs).
b_bg() {
  local out=$1
  shift
  unshare -m sh -c "$in_view" sh \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups env -i "${boot_env[@]}" \
    "$RUNIX" boot -q "$@" </dev/null >"$out" 2>&1 &
  bg=$!
}
# wait_ready FILE [TEXT [TENTHS]]: until FILE has TEXT (ready), at most TENTHS/10 s.
wait_ready() {
  for _ in $(seq "${3:-100}"); do
    grep -q "${2:-ready}" "$1" && return 0
    sleep 0.1
  done
  return 1
}
# What the user has on the host: processes and files in the usual temporary places.
# (Only names with runix in them: other tests, in their own runix-it.* directories, and
# other programs run by the same user at the same time make files there too.)
ours='runix boot|boot-test-1\.0|sleep 31337|debian-systemd|lib/systemd/'
leftovers() {
  pgrep -u "$uid" -af "$ours" || true
  find /tmp /var/tmp /dev/shm /run -maxdepth 2 -user "$uid" -newer "$TEST_TMP/marker" \
    -name '*runix*' ! -path '*/runix-it.*' 2>/dev/null || true
}
touch "$TEST_TMP/marker"

is "$(as_user sh -c 'ls /nix/store | wc -l')" 0 "control: the host store is hidden from the user"
before=$(leftovers)
# The host's mounts of what runix boot uses (other tests mount other things meanwhile).
our_mounts() { grep -e ' /nix' -e " $home" -e ' /sys/fs/cgroup' -e ' /dev' /proc/self/mountinfo; }
mounts_before=$(our_mounts)

# Bad arguments.
fails "no STOREPATH: usage error" 2 "expected a STOREPATH" "$RUNIX" boot
fails "--map takes auto, single or subid" 2 "unknown --map mode 'two'" "$RUNIX" boot --map two "$top"
fails "--network takes none or host" 2 "unknown --network mode 'allow:x'" \
  "$RUNIX" boot --network allow:x "$top"
fails "--stop-timeout takes seconds" 2 "bad --stop-timeout '1.5'" \
  "$RUNIX" boot --stop-timeout 1.5 "$top"
fails "a bad --hostname" 2 "bad --hostname 'a b'" "$RUNIX" boot --hostname 'a b' "$top"
fails "--init outside the store" 2 "--init takes a path below STOREPATH" \
  "$RUNIX" boot --init /bin/sh "$top"
fails "--init with .." 2 "--init takes a path below STOREPATH" "$RUNIX" boot --init ../x "$top"
fails "init arguments need --" 2 "unexpected argument 'check'" "$RUNIX" boot "$top" check
fails "an unknown option" 2 "unknown option '--bogus'" "$RUNIX" boot --bogus "$top"
fails "not a store path" 2 "runix boot:" "$RUNIX" boot /tmp/not-a-store-path
is "$("$RUNIX" boot --help | grep -c '^Examples:')" 1 "--help has an Examples section"

# A store path without init: fetched, then a clear error and nothing run.
fails "a STOREPATH without init says so" 1 \
  "cannot run the init '$bb_path/init'" as_user "$RUNIX" boot -q "$bb_path"

# The environment pid 1 sees, and its exit status.
out=$(b "$top" -- check 42)
is "$?" 42 "runix exits with the init's exit status"
os_id=$(grep '^ID=' /etc/os-release || grep '^ID=' /usr/lib/os-release)
for want in pid=1 uid=0 proc=yes sys=yes sys-ro=ro, store-ro=ro, store-write=no store-has=yes \
  dev=yes run=yes tmp=yes null=yes console=yes console-dev=yes tty=/dev/console \
  hostname=boot-test-1.0 container=runix manager=runix "os-release=$os_id" etc=0 \
  "args=check 42"; do
  is "$(printf '%s\n' "$out" | grep -F -x -- "$want" || printf '%s\n' "$out" | grep "^${want%%=*}=")" \
    "$want" "inside: $want"
done
grep -q "only uid and gid 0 (you) exist inside" "$TEST_TMP/err"
is "$?" 0 "without a subordinate range: a warning on stderr"
out=$(b --hostname box --network host "$top" -- check 0)
is "$?" 0 "--hostname and --network host: boots"
is "$(printf '%s\n' "$out" | grep -E '^(hostname|sys-ro|pid)=' | tr '\n' ' ')" \
  "pid=1 sys-ro=ro, hostname=box " "--hostname names the host; /sys is read-only with the host's network too"

# The clean stop: SIGTERM to runix is SIGRTMIN+3 to pid 1, which exits 0.
b_bg "$TEST_TMP/stop.out" "$top" -- stop
ok "the init that traps SIGRTMIN+3 is up" wait_ready "$TEST_TMP/stop.out"
kill -TERM "$bg"
wait "$bg"
is "$?" 0 "SIGTERM: the init stops cleanly and runix exits 0"
is "$(tr -d '\r' <"$TEST_TMP/stop.out" | grep -c '^stopping$')" 1 "the init saw SIGRTMIN+3"

# The timeout: an init without a handler is killed after --stop-timeout.
b_bg "$TEST_TMP/ignore.out" --stop-timeout 1 "$top" -- ignore
ok "the init that ignores SIGRTMIN+3 is up" wait_ready "$TEST_TMP/ignore.out"
start=$(date +%s%N)
kill -INT "$bg"
wait "$bg"
is "$?" 137 "SIGINT, then after the timeout SIGKILL: 128+9"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
ok "killed after about a second (${ms} ms)" test "$ms" -ge 900 -a "$ms" -lt 8000
is "$(pgrep -u "$uid" -f 'sleep 31337' | wc -l)" 0 "the init's children died with it"

# runix killed: pid 1 dies with it (PR_SET_PDEATHSIG), and everything in it.
b_bg "$TEST_TMP/kill.out" "$top" -- ignore
ok "an init is up" wait_ready "$TEST_TMP/kill.out"
kill -KILL "$bg"
wait "$bg" 2>/dev/null
for _ in $(seq 50); do pgrep -u "$uid" -f "$ours" >/dev/null || break; sleep 0.1; done
is "$(pgrep -u "$uid" -af "$ours")" "" "runix killed: no process of the boot is left"

# A terminal: raw while the system runs (its keys go to the console), as it was after.
# boot-as-user ARGS...: runix boot ARGS as the user, from a script script(1) runs.
{
  echo '#!/usr/bin/env bash'
  declare -p uid gid in_view boot_env RUNIX
  echo 'exec unshare -m sh -c "$in_view" sh setpriv --reuid="$uid" --regid="$gid" --clear-groups \'
  echo '  env -i "${boot_env[@]}" "$RUNIX" boot -q "$@"'
} >"$TEST_TMP/boot-as-user"
# on-tty DIR CMD...: the terminal's settings before and after CMD, its output and status.
printf '%s\n' '#!/bin/sh' 'dir=$1' 'shift' 'stty -g >"$dir/tty.before"' \
  'exec 3<&0' '"$@" <&3 >"$dir/tty.out" 2>&1 &' 'sleep 1' 'stty -a >"$dir/tty.during"' 'wait $!' \
  'echo "$?" >"$dir/tty.rc"' 'stty -g >"$dir/tty.after"' >"$TEST_TMP/on-tty"
chmod 755 "$TEST_TMP/boot-as-user" "$TEST_TMP/on-tty"
{ sleep 2; printf 'hello console\n'; sleep 3; } |
  script -qec "$TEST_TMP/on-tty $TEST_TMP $TEST_TMP/boot-as-user $top -- read" /dev/null >/dev/null
is "$(cat "$TEST_TMP/tty.rc")" 0 "on a terminal: the init ran and exited 0"
is "$(tr -d '\r' <"$TEST_TMP/tty.out" | grep '^got=')" "got=hello console" \
  "what is typed on runix's terminal reaches the init's console"
ok "the terminal's settings are as they were" cmp "$TEST_TMP/tty.before" "$TEST_TMP/tty.after"
is "$(grep -o -w -e -icanon -e -echo -e -isig "$TEST_TMP/tty.during" | tr '\n' ' ')" \
  "-isig -icanon -echo " "while it runs, the terminal is raw"
ok "  ...and it was not before" bash -c "stty -a -F /dev/null 2>/dev/null; ! grep -q -- -icanon <(script -qec 'stty -a' /dev/null)"

# One id: 0 only; switching users fails, as the warning says.
out=$(b "$top" -- users)
is "$(printf '%s\n' "$out" | grep -E '^(uid_map|gid_map|as-1000)=' | tr '\n' ' ')" \
  "uid_map=0 $uid 1, gid_map=0 $gid 1, as-1000=failed " "one-id mapping: only 0, su fails"
grep -q "units with User=" "$TEST_TMP/err"
is "$?" 0 "the warning names the units that will fail"
fails "--map subid without a range fails" 1 "runix boot: --map subid: /etc/subuid and /etc/subgid give $user no range" \
  as_user "$RUNIX" boot -q --map subid "$top" -- users

# Subordinate ids: 65536 ids through newuidmap, and su to uid 1000 works.
set_subids yes
out=$(b "$top" -- users)
is "$(printf '%s\n' "$out" | grep -E '^(uid_map|gid_map|as-1000)=' | tr '\n' ' ')" \
  "uid_map=0 $uid 1,1 200000 65535, gid_map=0 $gid 1,1 300000 65535, as-1000=1000 " \
  "subid mapping: 0 is the user, 1.. the range; su to uid 1000 works"
is "$(cat "$TEST_TMP/err")" "" "no warning with a range (and in a delegated cgroup)"
cp "$TEST_TMP/err" "$TEST_TMP/err.deleg"
out=$(b --map single "$top" -- users)
is "$(printf '%s\n' "$out" | grep '^uid_map=')" "uid_map=0 $uid 1," "--map single forces one id"
set_subids no

# A cgroup the user cannot write: systemd could not boot, and runix says so.
RXCG='' b "$top" -- check 0 >/dev/null
grep -q "is not yours to write, so systemd will stop" "$TEST_TMP/err"
is "$?" 0 "outside a delegated cgroup: a warning that systemd will not boot"
grep -q "not yours to write" "$TEST_TMP/err.deleg" 2>/dev/null
is "$?" 1 "in the delegated cgroup: no such warning"

# Debian's systemd as pid 1: multi-user.target, then SIGTERM: a clean halt.
b_bg "$TEST_TMP/systemd.out" "$top_systemd" -- --unit=multi-user.target
ok "systemd reaches multi-user.target" wait_ready "$TEST_TMP/systemd.out" \
  "Reached target multi-user.target" 600
ok "systemd detected a container" grep -q "Detected virtualization container-other" "$TEST_TMP/systemd.out"
kill -TERM "$bg"
wait "$bg"
is "$?" 0 "SIGTERM: systemd halts cleanly (pid 1 ends by SIGINT, reboot(2) in a pid namespace) and runix exits 0"
ok "systemd went through shutdown.target" grep -q "Reached target shutdown.target" "$TEST_TMP/systemd.out"
is "$(find "$RXCG" -mindepth 1 -type d | wc -l)" 0 "the cgroups systemd made are gone"
[ "$(grep -c . "$RXCG/cgroup.procs")" = 0 ]
is "$?" 0 "no process is left in the cgroup"

# Nothing left on the host: no process, no file, no mount.
is "$(leftovers)" "$before" "no process or file of the user is left on the host"
is "$(our_mounts)" "$mounts_before" "no mount is left"

done_testing
