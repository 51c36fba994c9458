#!/usr/bin/env bash
# Distributables: the JSON Schema in docs/ agrees with runix's own checks on
# every example in tests/dist, and the schema itself is a valid schema.
. "$(dirname "$0")/lib/libtest.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)

# Debian's python3, which has python3-jsonschema (scripts/install-deps.sh).
py=/usr/bin/python3
if ! "$py" -c 'import jsonschema' 2>/dev/null; then
  echo "Bail out! python3-jsonschema (Debian) is required for this test"
  exit 1
fi

out=$("$py" - "$src/docs/distributable.schema.json" "$src/tests/dist" <<'PY' 2>&1
import json, sys, jsonschema
schema_file, d = sys.argv[1], sys.argv[2]
schema = json.load(open(schema_file))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
def payload(text):
    lines = text.split("\n")
    if len(lines) > 1 and lines[1] == ": <<'RUNIX_JSON'":
        return "\n".join(lines[2:lines.index("RUNIX_JSON")])
    return "\n".join(lines[1:])
n = 0
for row in open(d + "/expect.tsv"):
    if row.startswith("#") or not row.strip():
        continue
    name, want, _ = row.rstrip("\n").split("\t")
    if want == "skip":
        continue
    try:
        doc = json.loads(payload(open(d + "/" + name).read()))
        errs = list(v.iter_errors(doc))
    except ValueError as e:
        errs = [e]
    got = "invalid" if errs else "valid"
    if got != want:
        print("%s: the schema says %s, expected %s: %s" % (name, got, want, errs[:1]))
        sys.exit(1)
    n += 1
print("checked %d files" % n)
PY
)
rc=$?
is "$rc" 0 "the JSON Schema agrees with tests/dist/expect.tsv ($out)"
case $out in "checked "[3-9][0-9]*) ok "the schema checked the examples" true ;; *) ok "the schema checked the examples" false ;; esac

done_testing
