#!/usr/bin/env bash
# Benchmark `latch import identities`: identities per second through the CLI and the batch
# endpoint, with pre-hashed passwords and with plaintext passwords (hashed with argon2id by the
# server), on SQLite and on PostgreSQL. See bench/README.md ("Import").
#
# Usage: bench/import.sh
# Environment (all optional):
#   LATCH_BIN        use this latch binary instead of `cargo build --release -p latch`
#   BENCH_DBS        databases to run, in order              (default "sqlite postgres")
#   BENCH_HASHED     identities with pre-hashed passwords     (default 20000)
#   BENCH_PLAINTEXT  identities with plaintext passwords      (default 400)
#   BENCH_PG_HOST/PORT/USER  PostgreSQL server                (default 127.0.0.1 / 5432 / postgres, trust auth)
#   BENCH_OUT        output directory                         (default bench/out)
#   BENCH_KEEP=1     keep the temporary directories (config, SQLite database, server log, input files)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBS="${BENCH_DBS:-sqlite postgres}"
HASHED="${BENCH_HASHED:-20000}"
PLAINTEXT="${BENCH_PLAINTEXT:-400}"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB=latch_bench_import
OUT="${BENCH_OUT:-$ROOT/bench/out}"

log() { printf '[import-bench] %s\n' "$*" >&2; }
die() { printf '[import-bench] FAIL: %s\n' "$*" >&2; exit 1; }

[[ "$PG_HOST" == 127.0.0.1 || "$PG_HOST" == localhost ]] || die "BENCH_PG_HOST must be local (127.0.0.1)"
for db in $DBS; do
  [[ "$db" == sqlite || "$db" == postgres ]] || die "BENCH_DBS: unknown database $db (sqlite, postgres)"
done
command -v curl >/dev/null || die "curl is needed"
command -v jq >/dev/null || die "jq is needed"
command -v python3 >/dev/null || die "python3 is needed (it writes the input files)"

TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
if [[ -n "${LATCH_BIN:-}" ]]; then
  BIN="$LATCH_BIN"
else
  log "building latch (release)"
  (cd "$ROOT" && cargo build --release -p latch --quiet) || die "cargo build -p latch failed"
  BIN="$TARGET_DIR/release/latch"
fi
[[ -x "$BIN" ]] || die "no latch binary at $BIN"

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
TAKEN=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))  # below the kernel's ephemeral range (32768+): an outgoing connection's local port there makes bind fail
    if [[ "$TAKEN" != *" $p "* ]] && port_is_free "$p"; then TAKEN+="$p "; echo "$p"; return; fi
  done
  die "no free port found"
}
PSQL=(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -v ON_ERROR_STOP=1 -q -X)

SERVER_PID=""
TMPS=()
PG_CREATED=""
stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  local rc=$?
  stop_server
  if [[ -n "$PG_CREATED" && "${BENCH_KEEP:-}" != 1 ]]; then
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  for t in "${TMPS[@]}"; do
    if [[ "${BENCH_KEEP:-}" == 1 || $rc -ne 0 ]]; then log "kept $t"; else rm -rf "$t"; fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Input files: distinct salted sha256 and pbkdf2-sha256 hashes (one in ten), or plaintext.
write_inputs() {
  python3 - "$1" "$HASHED" "$PLAINTEXT" <<'PY'
import base64, hashlib, json, os, sys
out, hashed, plain = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
b64 = lambda b: base64.b64encode(b).decode()
raw = lambda b: b64(b).rstrip("=")
def person(email, cfg):
    return {"schema_id": "default", "traits": {"email": email}, "credentials": {"password": {"config": cfg}}}
rows = []
for i in range(hashed):
    pw, salt = f"password {i}".encode(), os.urandom(16)
    if i % 10 == 0:
        h = hashlib.pbkdf2_hmac("sha256", pw, salt, 1000)
        hp = f"$pbkdf2-sha256$i=1000,l=32${raw(salt)}${raw(h)}"
    else:
        h = hashlib.sha256(salt + pw).digest()
        hp = f"$sha256$pf={b64(b'{SALT}{PASSWORD}')}${b64(salt)}${b64(h)}"
    rows.append(person(f"hashed-{i}@bench.test", {"hashed_password": hp}))
json.dump(rows, open(f"{out}/hashed.json", "w"))
json.dump([person(f"plain-{i}@bench.test", {"password": f"plaintext password {i}"}) for i in range(plain)],
          open(f"{out}/plaintext.json", "w"))
PY
}

mkdir -p "$OUT"
ROWS=()

run_db() {
  local db="$1" tmp dsn public_port admin_port admin
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/latch-import-bench-$db.XXXXXX")"
  TMPS+=("$tmp")
  public_port="$(free_port)"
  admin_port="$(free_port)"
  admin="http://127.0.0.1:$admin_port"
  if [[ "$db" == postgres ]]; then
    "${PSQL[@]}" -d postgres -c 'select 1' >/dev/null 2>&1 ||
      die "PostgreSQL does not answer on $PG_HOST:$PG_PORT as $PG_USER (trust auth); start it or set BENCH_DBS=sqlite"
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
    PG_CREATED=1
    dsn="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable"
  else
    dsn="sqlite://$tmp/latch.sqlite?_fk=true&mode=rwc"
  fi
  cat >"$tmp/identity.schema.json" <<'JSON'
{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "properties": {
    "traits": {
      "type": "object",
      "properties": {
        "email": {
          "type": "string",
          "format": "email",
          "ory.sh/kratos": {
            "credentials": {"password": {"identifier": true}, "code": {"identifier": true, "via": "email"}},
            "verification": {"via": "email"},
            "recovery": {"via": "email"}
          }
        }
      },
      "required": ["email"],
      "additionalProperties": false
    }
  }
}
JSON
  # Default hashers (argon2id, Latch's OWASP parameters) and hashing limits; the import
  # only talks to the admin API, which has no rate limits.
  cat >"$tmp/latch.yml" <<YAML
dsn: $dsn
log:
  level: warning
serve:
  public:
    base_url: http://127.0.0.1:$public_port/
    host: 127.0.0.1
    port: $public_port
  admin:
    base_url: $admin/
    host: 127.0.0.1
    port: $admin_port
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file://$tmp/identity.schema.json
secrets:
  cookie:
    - bench-cookie-secret-$RANDOM$RANDOM$RANDOM-0123456789abcdef
YAML
  "$BIN" migrate sql --yes -c "$tmp/latch.yml" >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; die "latch migrate sql failed on $db"; }
  "$BIN" serve -c "$tmp/latch.yml" --dev >"$tmp/server.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$admin/health/ready" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$tmp/server.log" >&2; die "server exited during startup"; }
    ((i == 300)) && die "server not ready after 30 s"
    sleep 0.1
  done
  log "$db: writing $HASHED pre-hashed and $PLAINTEXT plaintext identities"
  write_inputs "$tmp"
  local kind file n summary created failed secs rate
  for kind in hashed plaintext; do
    file="$tmp/$kind.json"
    n=$([[ $kind == hashed ]] && echo "$HASHED" || echo "$PLAINTEXT")
    log "$db: importing $n identities ($kind)"
    summary="$("$BIN" import identities "$file" -e "$admin" --format json 2>"$tmp/import-$kind.log")" ||
      { tail -n 5 "$tmp/import-$kind.log" >&2; die "the $kind import reported failures on $db"; }
    created="$(jq -r .created <<<"$summary")"
    failed="$(jq -r .failed <<<"$summary")"
    secs="$(jq -r .seconds <<<"$summary")"
    [[ "$created" == "$n" && "$failed" == 0 ]] || die "$db/$kind: created $created of $n, $failed failed"
    rate="$(awk -v n="$n" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
    ROWS+=("| $db | $kind | $n | $secs | $rate |")
  done
  stop_server
}

for db in $DBS; do run_db "$db"; done

{
  echo "latch import identities, $(nproc) CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo
  echo "| database | passwords | identities | seconds | identities/s |"
  echo "|---|---|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
} | tee "$OUT/import.md"
