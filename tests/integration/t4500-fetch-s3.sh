#!/usr/bin/env bash
# s3:// caches: a cache made by real Nix, put in buckets by the real AWS
# client (Debian's awscli), served by an S3 server behind a front that
# checks SigV4 signatures as S3 does (lib/s3.sh); runix signs with
# libcurl's SigV4 from the standard credential chain.  Real Nix checks the
# store.
. "$(dirname "$0")/lib/libtest.sh"
. "$(dirname "$0")/lib/s3.sh"
need_nix
fixtures

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
top_hash=${top:11:32}
top_nar=$(sed -n 's/^URL: //p' "$FX/cache-xz/$top_hash.narinfo")
# A path without references, for the checks that need not fetch the whole closure.
leaf=$(path_of greeting)

# Nothing of the user's own AWS setup.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE \
  AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_REGION AWS_DEFAULT_REGION
export HOME=$TEST_TMP/home
mkdir -p "$HOME"

REGION=eu-west-1
ID=AKIDRUNIXTEST0001
SECRET=runix-test-secret-0001
TID=ASIARUNIXTEMP0001
TSECRET=runix-temp-secret-0001
TOKEN=runix-session-token-0001
cat >"$TEST_TMP/keys.json" <<EOF
[{"id": "$ID", "secret": "$SECRET"}, {"id": "$TID", "secret": "$TSECRET", "token": "$TOKEN"}]
EOF
s3_start "$TEST_TMP/keys.json" "$REGION" -- empty
EP=${S3_URL#http://}

aws_ok() { AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET "$S3_AWS" --endpoint-url "$S3_URL" --region "$REGION" "$@"; }
logged() { grep -c "$1" "$S3_LOG" || true; }

# ---- the front, proved with the real client ----
ok "awscli with the right keys makes a bucket" aws_ok s3 mb s3://cache
ok "awscli with the right keys uploads the cache Nix made" \
  aws_ok s3 cp --recursive --quiet "$FX/cache-xz" s3://cache/
printf 'StoreDir: /nix/store\nPriority: 10\n' >"$TEST_TMP/nix-cache-info"
ok "  ...and a bucket holding only a nix-cache-info" aws_ok s3 cp --quiet "$TEST_TMP/nix-cache-info" s3://empty/nix-cache-info
# The front itself does not change with the build: proved once, in the
# plain suite (RUNIX_SANITIZE is set for the sanitizer build's).
if [ "${RUNIX_SANITIZE:-none}" = none ]; then
  aws_ok s3 cp --quiet "s3://cache/$top_hash.narinfo" "$TEST_TMP/back.narinfo"
  ok "awscli with the right keys reads the bucket back" cmp "$TEST_TMP/back.narinfo" "$FX/cache-xz/$top_hash.narinfo"
  : >"$S3_LOG"
  fails "awscli with a wrong secret is refused" 254 "SignatureDoesNotMatch" \
    env AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=not-the-secret "$S3_AWS" --endpoint-url "$S3_URL" --region "$REGION" s3 ls s3://cache/
  : >"$S3_LOG"
  AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET "$S3_AWS" --endpoint-url "$S3_URL" --region us-west-2 \
    s3 ls s3://cache/ >/dev/null 2>&1
  # (botocore then asks again in the region the error names, as it does with S3.)
  is "$(awk '$3 == 400 && $4 == "AuthorizationHeaderMalformed"' "$S3_LOG" | wc -l | tr -d ' ')" 1 \
    "awscli signing for a wrong region is refused (AuthorizationHeaderMalformed)"
  fails "awscli with a temporary key but no session token is refused" 254 "InvalidAccessKeyId" \
    env AWS_ACCESS_KEY_ID=$TID AWS_SECRET_ACCESS_KEY=$TSECRET "$S3_AWS" --endpoint-url "$S3_URL" --region "$REGION" s3 ls s3://cache/
  fails "awscli with a wrong session token is refused" 254 "InvalidToken" \
    env AWS_ACCESS_KEY_ID=$TID AWS_SECRET_ACCESS_KEY=$TSECRET AWS_SESSION_TOKEN=wrong "$S3_AWS" --endpoint-url "$S3_URL" --region "$REGION" s3 ls s3://cache/
  ok "awscli with the temporary key and its session token is accepted" \
    env AWS_ACCESS_KEY_ID=$TID AWS_SECRET_ACCESS_KEY=$TSECRET AWS_SESSION_TOKEN=$TOKEN "$S3_AWS" --endpoint-url "$S3_URL" --region "$REGION" s3 ls s3://cache/
fi
is "$(curl -s -o /dev/null -w '%{http_code}' "$S3_URL/cache/nix-cache-info")" 403 "an unsigned request is refused"

# ---- runix ----
oracle() { nix_oracle "$1" "$top" "$FX/closure"; }
# Nothing was installed: no store path, no registration.
nothing_in() {
  [ -z "$(ls -A "$1/nix/store" 2>/dev/null | grep -v '\.lock$')" ] &&
    { ! [ -e "$1/nix/var/nix/db/db.sqlite" ] || [ "$(sqlite3 "$1/nix/var/nix/db/db.sqlite" 'select count(*) from ValidPaths')" = 0 ]; }
}
fetch() { "$RUNIX" fetch -q --trusted-key "$key" "$@"; }
# (Nix's default priority: the fixture's nix-cache-info sets none.)
C="s3://cache?region=$REGION&endpoint=$EP&scheme=http&priority=50"

R=$TEST_TMP/store-env
: >"$S3_LOG"
out=$(AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET fetch --store "$R" --cache "$C" "$top" 2>"$TEST_TMP/err")
is "$out" "$top" "fetch from s3:// with keys from the environment prints the top-level path"
ok "  ...real Nix verifies the store and sees the closure" oracle "$R"
is "$(awk '$5 != "'$ID'" || $3 != 200' "$S3_LOG" | head -3)" "" "  ...every request was signed with the key and accepted"
is "$(logged ' /cache/nar/')" "$(wc -l <"$FX/closure" | tr -d ' ')" "  ...each NAR downloaded once"

# A profile in the shared credentials file, named by profile=; as in Nix,
# the environment's keys are then not used.
mkdir -p "$TEST_TMP/aws"
cat >"$TEST_TMP/aws/credentials" <<EOF
# comment
[default]
aws_access_key_id = WRONGDEFAULT
aws_secret_access_key = wrong

[ci]
aws_access_key_id = $ID
aws_secret_access_key = $SECRET
EOF
R=$TEST_TMP/store-profile
: >"$S3_LOG"
out=$(AWS_ACCESS_KEY_ID=BOGUS AWS_SECRET_ACCESS_KEY=bogus AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/aws/credentials \
  fetch --store "$R" --cache "$C&profile=ci" "$leaf" 2>"$TEST_TMP/err")
is "$out" "$leaf" "fetch with profile=ci from AWS_SHARED_CREDENTIALS_FILE"
is "$(awk '$5 != "'$ID'" || $3 != 200' "$S3_LOG" | head -3)" "" "  ...every request was signed with the profile's key"

# AWS_PROFILE, from the config file's [profile NAME], with a session token.
cat >"$TEST_TMP/aws/config" <<EOF
[default]
region = us-east-1
[profile temp]
region = $REGION
aws_access_key_id=$TID
aws_secret_access_key=$TSECRET
aws_session_token=$TOKEN
s3 =
  addressing_style = path
EOF
R=$TEST_TMP/store-token
: >"$S3_LOG"
out=$(AWS_PROFILE=temp AWS_CONFIG_FILE=$TEST_TMP/aws/config AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/none \
  fetch --store "$R" --cache "$C" "$top" 2>"$TEST_TMP/err")
is "$out" "$top" "fetch with AWS_PROFILE from AWS_CONFIG_FILE, a temporary key and its session token"
ok "  ...real Nix verifies the store" oracle "$R"
is "$(awk '$5 != "'$TID'" || $3 != 200' "$S3_LOG" | head -3)" "" "  ...every request was signed with the temporary key"

# The session token from the environment; without it the temporary key is refused.
R=$TEST_TMP/store-envtoken
out=$(AWS_ACCESS_KEY_ID=$TID AWS_SECRET_ACCESS_KEY=$TSECRET AWS_SESSION_TOKEN=$TOKEN \
  fetch --store "$R" --cache "$C" "$leaf" 2>"$TEST_TMP/err")
is "$out" "$leaf" "fetch with AWS_SESSION_TOKEN from the environment"
R=$TEST_TMP/store-notoken
fails "a temporary key without its session token is refused with S3's message" 1 \
  "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records." \
  env AWS_ACCESS_KEY_ID=$TID AWS_SECRET_ACCESS_KEY=$TSECRET "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$C" "$top"
ok "  ...and nothing is installed" nothing_in "$R"

# ~/.aws/credentials' default profile, found through HOME.
mkdir -p "$HOME/.aws"
printf '[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n' "$ID" "$SECRET" >"$HOME/.aws/credentials"
R=$TEST_TMP/store-home
out=$(fetch --store "$R" --cache "$C" "$leaf" 2>"$TEST_TMP/err")
is "$out" "$leaf" "fetch with the default profile of ~/.aws/credentials"
rm -rf "$HOME/.aws"

# A wrong secret: S3's code and message, the bucket and region, what to do; nothing installed.
R=$TEST_TMP/store-wrong
AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=wrong-secret-0001 "$RUNIX" fetch -q --trusted-key "$key" \
  --store "$R" --cache "$C" "$top" >/dev/null 2>"$TEST_TMP/err"
rc=$?
is "$rc" 1 "a wrong secret fails the fetch"
ok "  ...with S3's code and message" grep -q "SignatureDoesNotMatch: The request signature we calculated does not match" "$TEST_TMP/err"
ok "  ...naming the bucket and region and what to check" grep -q "bucket 'cache', region $REGION.*check the secret access key" "$TEST_TMP/err"
ok "  ...and nothing is installed" nothing_in "$R"
ok "  ...and the secret is shown nowhere" bash -c "! grep -q wrong-secret-0001 '$TEST_TMP/err'"

# A profile named but nowhere to be found.
fails "a missing profile names the files looked in" 2 "AWS profile 'nope' is in neither" \
  env AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/aws/credentials "$RUNIX" fetch --trusted-key "$key" \
  --store "$TEST_TMP/store-x" --cache "$C&profile=nope" "$top"

# Clock skew: S3's RequestTimeTooSkewed, and the hint to check the clock.
echo '{"skew": 3600}' >"$S3_CTL"
rc=0
AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET "$RUNIX" fetch -q --trusted-key "$key" \
  --store "$TEST_TMP/store-skew" --cache "$C" "$top" >/dev/null 2>"$TEST_TMP/err" || rc=$?
is "$rc" 1 "a clock an hour off fails the fetch"
ok "  ...with S3's RequestTimeTooSkewed" grep -q "RequestTimeTooSkewed: The difference between the request time" "$TEST_TMP/err"
ok "  ...saying to check the clock" grep -q "check this machine's clock" "$TEST_TMP/err"
echo '{}' >"$S3_CTL"

# A missing narinfo, answered 404 and then 403 AccessDenied (S3's answer to
# whom may not list the bucket), falls through to the next cache.
E="s3://empty?region=$REGION&endpoint=$EP&scheme=http"
for missing in 404 403; do
  echo "{\"missing\": $missing}" >"$S3_CTL"
  R=$TEST_TMP/store-missing-$missing
  : >"$S3_LOG"
  want=$top
  [ $missing = 404 ] && want=$leaf
  out=$(AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET fetch --store "$R" --cache "$E" --cache "$C" "$want" 2>"$TEST_TMP/err")
  is "$out" "$want" "narinfos missing from the first bucket ($missing) are taken from the next"
  is "$(grep -c "^GET /empty/${want:11:32}.narinfo $missing " "$S3_LOG")" 1 "  ...the first bucket answered $missing"
  [ $missing = 404 ] || ok "  ...real Nix verifies the store" oracle "$R"
done
echo '{}' >"$S3_CTL"

# 503 SlowDown is retried, for a narinfo and for a NAR.
echo "{\"slowdown\": {\"$top_hash.narinfo\": 2, \"$top_nar\": 2}}" >"$S3_CTL"
R=$TEST_TMP/store-slow
: >"$S3_LOG"
out=$(AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET fetch --store "$R" --cache "$C" "$top" 2>"$TEST_TMP/err")
is "$out" "$top" "a fetch through 503 SlowDown answers succeeds"
is "$(grep -c "^GET /cache/$top_hash.narinfo 503 SlowDown" "$S3_LOG") $(grep -c "^GET /cache/$top_hash.narinfo 200" "$S3_LOG")" \
  "2 1" "  ...the narinfo was asked for again after each SlowDown"
is "$(grep -c "^GET /cache/$top_nar 503 SlowDown" "$S3_LOG") $(grep -c "^GET /cache/$top_nar 20[06]" "$S3_LOG")" \
  "2 1" "  ...and so was the NAR"
ok "  ...real Nix verifies the store" oracle "$R"
echo '{}' >"$S3_CTL"

# A NAR cut off halfway is resumed with a Range request, signed as any other.
py=$(path_of python)
py_nar=$(sed -n 's/^URL: //p' "$FX/cache-xz/${py:11:32}.narinfo")
echo "{\"truncate\": {\"$py_nar\": 1}}" >"$S3_CTL"
R=$TEST_TMP/store-resume
: >"$S3_LOG"
out=$(AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=$SECRET fetch --store "$R" --cache "$C" "$top" 2>"$TEST_TMP/err")
is "$out" "$top" "a NAR cut off halfway is fetched"
ok "  ...resumed with a signed Range request that S3 accepted" \
  grep -q "^GET /cache/$py_nar 206 - $ID range=bytes=[1-9]" "$S3_LOG"
ok "  ...real Nix verifies the store" oracle "$R"
echo '{}' >"$S3_CTL"

# A public bucket: no credentials anywhere, unsigned requests.
s3_front ANON anon --region "$REGION" --anonymous
R=$TEST_TMP/store-anon
: >"$S3_LOG"
out=$(fetch --store "$R" --cache "s3://cache?region=$REGION&endpoint=${ANON#http://}&scheme=http" "$leaf" 2>"$TEST_TMP/err")
is "$out" "$leaf" "fetch from a public bucket without credentials"
is "$(awk '$5 != "-"' "$S3_LOG" | head -3)" "" "  ...with unsigned requests"

# runix doctor: where the credentials came from, and whether a signed request succeeds.
out=$(AWS_SHARED_CREDENTIALS_FILE=$TEST_TMP/aws/credentials "$RUNIX" --store "$TEST_TMP/store-env" doctor --cache "$C&profile=ci" 2>&1)
ok "doctor names the profile and file the keys came from" grep -q "credentials: profile 'ci' in $TEST_TMP/aws/credentials" <<<"$out"
ok "  ...and says the signed request succeeds" grep -q "signed request for nix-cache-info: answers" <<<"$out"
out=$(AWS_ACCESS_KEY_ID=$ID AWS_SECRET_ACCESS_KEY=wrong-secret-0002 "$RUNIX" --store "$TEST_TMP/store-env" doctor --cache "$C" 2>&1)
rc=$?
is "$rc" 1 "doctor with a wrong secret reports a problem"
ok "  ...naming the environment and S3's refusal" bash -c 'grep -q "credentials: environment (AWS_ACCESS_KEY_ID" <<<"$1" && grep -q "signed request for nix-cache-info: fails: .*SignatureDoesNotMatch" <<<"$1"' _ "$out"
ok "  ...without showing the secret" bash -c '! grep -q wrong-secret-0002 <<<"$1"' _ "$out"

done_testing
