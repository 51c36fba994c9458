#!/usr/bin/env bash
# runix export: the test closure as a root file system and as OCI images,
# checked by real tools: skopeo reads the layout and the docker archive,
# umoci unpacks the layout, and real Nix hashes every store path of the
# unpacked trees against what the store registered; podman loads the
# archive and runs the image, the layout and the root file system.  The
# same closure gives the same bytes, twice and from a second store; bad
# input is refused with nothing written, and an export killed midway
# leaves nothing under the output's name.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
for t in skopeo umoci podman runc jq; do
  command -v "$t" >/dev/null || { echo "Bail out! '$t' is required (scripts/install-deps.sh)"; exit 1; }
done
fixtures
hello=$(path_of hello)
busybox=$(path_of busybox)
greeting=$(path_of greeting)
key=$(cat "$FX/key.pub")
web=$TEST_TMP/web
mkdir -p "$web"
cp -r "$FX/cache-zstd" "$FX/cache-xz" "$web/"
httpd_start "$web"
export HOME=$TEST_TMP/home XDG_CONFIG_HOME=$TEST_TMP/home/.config
mkdir -p "$HOME"
export RUNIX_STORE=$TEST_TMP/store RUNIX_CONFIG=/dev/null RUNIX_TRUSTED_KEYS=$key
export RUNIX_CACHES=$HTTP/ok/cache-zstd
R=$RUNIX_STORE
T=$TEST_TMP
base() { basename "$1"; }

# podman with its own storage, and what this machine's kernel lets it do:
# runc (crun refuses hybrid cgroup hierarchies) and limits within ours.
pod() {
  podman --root "$T/podman" --runroot "$T/podman-run" --storage-driver vfs "$@"
}
podrun() {
  pod run --rm --runtime runc --network none --ulimit nofile=1024:1024 \
    --ulimit nproc=1024:1024 "$@"
}
trap 'kill $HTTPD_PID 2>/dev/null; rm -f "/tmp/runix-t6200-$$"; pod rm -af >/dev/null 2>&1; pod rmi -af >/dev/null 2>&1; cleanup' EXIT

# same_trees ROOTFS PATH...: each store path under ROOTFS has the NAR hash
# the store registered for it (real Nix hashes both sides).
same_trees() {
  local root=$1 p want got
  shift
  for p in "$@"; do
    want=$(nix-store --store "$R" -q --hash "$p") || return 1
    got=sha256:$(nix-hash --type sha256 --base32 "$root$p") || return 1
    [ "$want" = "$got" ] || { echo "$p: $got, wanted $want"; return 1; }
  done
}

# --- an OCI layout, fetching the closure first ------------------------------
ok "export --oci DIR fetches the closure and writes a layout" \
  sh -c "'$RUNIX' export -q --oci '$T/img' '$hello' >'$T/img.digest'"
closure=$(nix-store --store "$R" -qR "$hello" | sort)
nclosure=$(wc -l <<<"$closure")
ok "the closure is in the store afterwards" test -d "$R$hello"
is "$(cat "$T/img/oci-layout")" '{"imageLayoutVersion":"1.0.0"}' "oci-layout"
is "$(jq -r '.manifests[0].digest' "$T/img/index.json")" "$(cat "$T/img.digest")" \
  "the digest printed is the manifest's in index.json"
ok "skopeo inspects the layout" sh -c "skopeo inspect oci:'$T/img':latest >'$T/inspect.json'"
is "$(jq -r '.Layers | length' "$T/inspect.json")" "$nclosure" "one layer per store path"
is "$(jq -r '.Labels["org.opencontainers.image.title"]' "$T/inspect.json")" \
  "${hello#*-}" "the title label is the store path's name"
is "$(jq -r '.Labels["dev.runix.store-paths"]' "$T/inspect.json")" "$hello" \
  "a label lists the store paths"
is "$(jq -r '.Created' "$T/inspect.json")" "1970-01-01T00:00:01Z" "created is fixed"
ok "skopeo reads the config" sh -c "skopeo inspect --config oci:'$T/img':latest >'$T/config.json'"
is "$(jq -r '.config.Entrypoint | join(" ")' "$T/config.json")" "$hello/bin/hello" \
  "the entry point is the program of the first path"
is "$(jq -r '.config.Env | join(" ")' "$T/config.json")" "PATH=$hello/bin" \
  "PATH is the closure's bin directories"
ok "every blob is named by its sha256" sh -c "cd '$T/img/blobs/sha256' && for f in *; do
  [ \"\$(sha256sum \"\$f\" | cut -d' ' -f1)\" = \"\$f\" ] || exit 1; done"

ok "umoci unpacks the layout" umoci unpack --rootless --image "$T/img:latest" "$T/bundle"
ok "the unpacked store paths have the registered NAR hashes" same_trees "$T/bundle/rootfs" $closure
is "$(ls "$T/bundle/rootfs/nix/store" | sort)" "$(for p in $closure; do base "$p"; done)" \
  "the unpacked store holds the closure and nothing else"
is "$(ls -A "$T/bundle/rootfs" | tr '\n' ' ')" "init nix " "the root holds /init and /nix only"
is "$(readlink "$T/bundle/rootfs/init")" "$hello/bin/hello" "/init points to the program"
is "$(jq -r '.process.args | join(" ")' "$T/bundle/config.json")" "$hello/bin/hello" \
  "umoci's runtime config runs the entry point"
ok "the unpacked program runs from its store path in a chroot" \
  sh -c "chroot '$T/bundle/rootfs' /init | grep -q 'hello from a store library'"

# --- one layer, several paths, --entry ---------------------------------------
ok "--layers one" sh -c "'$RUNIX' export -q --oci '$T/one' --layers one '$hello' >/dev/null"
ok "skopeo inspects it" sh -c "skopeo inspect oci:'$T/one':latest >'$T/one.json'"
is "$(jq -r '.Layers | length' "$T/one.json")" 1 "it has one layer"
ok "umoci unpacks it" umoci unpack --rootless --image "$T/one:latest" "$T/one-bundle"
ok "its store paths have the registered NAR hashes" same_trees "$T/one-bundle/rootfs" $closure
ok "two store paths, --entry by program name" \
  sh -c "'$RUNIX' export -q --oci '$T/two' --entry ls '$hello' '$busybox' >/dev/null"
ok "skopeo reads its config" sh -c "skopeo inspect --config oci:'$T/two':latest >'$T/two.json'"
is "$(jq -r '.config.Entrypoint[0]' "$T/two.json")" "$busybox/bin/ls" \
  "--entry NAME is found in the closure's bin/"
is "$(jq -r '.config.Env[0]' "$T/two.json")" "PATH=$hello/bin:$busybox/bin" \
  "PATH has both roots' bin directories"
is "$(jq -r '.config.Labels["dev.runix.store-paths"]' "$T/two.json")" "$hello $busybox" \
  "the label lists both store paths"
ok "--entry bin/PROG relative to the first path" \
  sh -c "'$RUNIX' export -q --oci '$T/three' --entry bin/busybox '$busybox' >/dev/null &&
         skopeo inspect --config oci:'$T/three':latest | jq -e '.config.Entrypoint[0] == \"$busybox/bin/busybox\"'"

ok "--oci NAME.tar/ (a trailing slash) is a layout" \
  sh -c "'$RUNIX' export -q --oci '$T/dir.tar/' '$hello' >/dev/null && test -f '$T/dir.tar/index.json'"

# --- a docker archive ----------------------------------------------------------
ok "export --oci FILE.tar writes a docker archive" \
  sh -c "'$RUNIX' export -q --oci '$T/hello.tar' '$hello' >'$T/tar.digest'"
ok "skopeo inspects the archive" sh -c "skopeo inspect docker-archive:'$T/hello.tar' >'$T/tar.json'"
is "$(jq -r '.Layers | length' "$T/tar.json")" "$nclosure" "the archive has one layer per path"
is "$(jq -r '.Layers | join(" ")' "$T/tar.json")" "$(jq -r '.Layers | join(" ")' "$T/inspect.json")" \
  "the archive's layers are the layout's"
is "$(tar -xOf "$T/hello.tar" manifest.json | jq -r '.[0].RepoTags[0]')" "hello:latest" \
  "manifest.json tags it hello:latest"
podload() { pod load -i "$1" | grep -q 'Loaded image: localhost/hello:latest'; }
ok "podman loads the archive" podload "$T/hello.tar"
is "$(pod images --no-trunc --format '{{.ID}}' localhost/hello:latest)" \
  "$(cat "$T/tar.digest")" "the digest printed is the image ID podman shows"
is "$(podrun localhost/hello:latest 2>&1)" "hello from a store library, world" \
  "podman runs the loaded image"
# podman names the image after the layout's path, which must be lower-case.
lc=/tmp/runix-t6200-$$
ln -sfn "$T/img" "$lc"
is "$(podrun "oci:$lc:latest" 2>&1 | tail -n 1)" "hello from a store library, world" \
  "podman runs the layout"

# --- a root file system -----------------------------------------------------
ok "export --rootfs DIR" "$RUNIX" export -q --rootfs "$T/root" "$hello"
ok "its store paths have the registered NAR hashes" same_trees "$T/root" $closure
is "$(readlink "$T/root/init")" "$hello/bin/hello" "its /init points to the program"
f=$(cd "$R$hello" && find . -type f | head -n 1)
is "$(stat -c %i "$T/root$hello/$f")" "$(stat -c %i "$R$hello/$f")" \
  "files are hard links to the store's on the same file system"
ok "the store is intact" verified "$R"
is "$(podrun --read-only --rootfs "$T/root" /init 2>&1)" "hello from a store library, world" \
  "podman runs the root file system"
mkdir "$T/empty"
ok "--rootfs DIR/ (a trailing slash)" "$RUNIX" export -q --rootfs "$T/slash/" "$hello"
is "$(ls -A "$T/slash" | tr '\n' ' ')" "init nix " "is DIR"
ok "an empty DIR is fine" "$RUNIX" export -q --rootfs "$T/empty" --entry bin/busybox "$busybox"
is "$(readlink "$T/empty/init")" "$busybox/bin/busybox" "its /init is the --entry"
is "$(chroot "$T/empty" "$busybox/bin/busybox" echo hi 2>&1)" "hi" "its program runs in a chroot"
if [ "$(stat -c %d /dev/shm)" != "$(stat -c %d "$R")" ]; then
  ok "a root file system on another file system gets copies" \
    sh -c "'$RUNIX' export --rootfs /dev/shm/runix-t6200.$$ '$hello' 2>&1 | grep -q 'files copied'"
  ok "the copies have the registered NAR hashes" same_trees /dev/shm/runix-t6200.$$ $closure
  chmod -R u+w /dev/shm/runix-t6200.$$ && rm -rf /dev/shm/runix-t6200.$$
fi

# --- reproducible ----------------------------------------------------------------
ok "a second export of the layout" sh -c "'$RUNIX' export -q --oci '$T/img2' '$hello' >'$T/img2.digest'"
is "$(cat "$T/img2.digest")" "$(cat "$T/img.digest")" "gives the same manifest digest"
ok "and the same files" diff -r "$T/img" "$T/img2"
ok "a second archive" sh -c "'$RUNIX' export -q --oci '$T/again.tar' '$hello' >/dev/null"
ok "is byte for byte the first" cmp "$T/hello.tar" "$T/again.tar"
ok "an export from a second store, fetched from another cache" \
  sh -c "RUNIX_STORE='$T/store2' RUNIX_CACHES='$HTTP/ok/cache-xz' '$RUNIX' export -q --oci '$T/other.tar' '$hello' >'$T/other.digest'"
ok "is byte for byte the same" cmp "$T/hello.tar" "$T/other.tar"
is "$(cat "$T/other.digest")" "$(cat "$T/tar.digest")" "and has the same digest"

# --- refused ----------------------------------------------------------------------
missing=/nix/store/00000000000000000000000000000000-missing-1.0
fails "a path no cache has" 1 "$missing" "$RUNIX" export -q --oci "$T/no" "$missing"
ok "leaves nothing" sh -c "! ls -d '$T'/no* 2>/dev/null"
fails "a non-empty --rootfs DIR" 1 "is not empty" "$RUNIX" export --rootfs "$T/root" "$hello"
fails "a non-empty --oci DIR" 1 "is not empty" "$RUNIX" export --oci "$T/img" "$hello"
fails "a path with no program" 1 "choose the program with --entry" \
  "$RUNIX" export --oci "$T/no" "$greeting"
fails "an --entry not in the closure" 1 "no program 'nosuch'" \
  "$RUNIX" export --oci "$T/no" --entry nosuch "$hello"
fails "a bad --layers" 2 "unknown --layers 'two'" "$RUNIX" export --oci "$T/no" --layers two "$hello"
fails "--layers with --rootfs" 2 "--layers is for --oci" \
  "$RUNIX" export --rootfs "$T/no" --layers one "$hello"
fails "no STOREPATH" 2 "expected at least one STOREPATH" "$RUNIX" export --oci "$T/no"
fails "no output" 2 "expected --rootfs DIR or --oci" "$RUNIX" export "$hello"
fails "both outputs" 2 "not both" "$RUNIX" export --rootfs "$T/no" --oci "$T/no2" "$hello"
fails "not a store path" 2 "" "$RUNIX" export --oci "$T/no" /usr/bin
ok "nothing was written for any of them" sh -c "! ls -d '$T'/no* 2>/dev/null"

# Killed midway (the file size limit's SIGXFSZ, while a layer is written).
rc=0
(ulimit -f 64; exec "$RUNIX" export -q --oci "$T/cut" "$hello") >/dev/null 2>&1 || rc=$?
is "$rc" 153 "an export killed while writing a layer dies of SIGXFSZ"
ok "it left no image under the final name" test ! -e "$T/cut"
rc=0
(ulimit -f 2000; exec "$RUNIX" export -q --oci "$T/cut.tar" "$hello") >/dev/null 2>&1 || rc=$?
is "$rc" 153 "an archive export killed midway dies of SIGXFSZ"
ok "it left no archive under the final name" test ! -e "$T/cut.tar"
# Stopped by SIGTERM while it writes (the largest closure of the fixtures,
# fetched first): it removes what it had written and dies of the signal.
python=$(path_of python)
ok "the python closure is fetched" "$RUNIX" fetch -q "$python"
"$RUNIX" export -q --oci "$T/term.tar" --entry python3 "$python" >/dev/null 2>&1 &
pid=$!
for i in $(seq 1000); do
  compgen -G "$T/term.tar.tmp-*" >/dev/null && break
  sleep 0.01
done
kill -TERM $pid
rc=0
wait $pid || rc=$?
is "$rc" 143 "an export stopped by SIGTERM dies of it"
is "$(ls -d "$T"/term* 2>/dev/null)" "" "and leaves nothing behind, under any name"
ok "a later export to the same names works" \
  sh -c "'$RUNIX' export -q --oci '$T/cut' '$hello' && '$RUNIX' export -q --oci '$T/cut.tar' '$hello'"
ok "the store is still valid" verified "$R"

done_testing
