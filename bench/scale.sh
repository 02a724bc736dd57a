#!/usr/bin/env bash
# Does Latch slow down with more identities? The same four measurements on a database seeded
# with 10k and with 1M identities (bench/seed.py), printed side by side with their ratio
# beside the issue-15 target (within 10 %). See bench/README.md ("Scale").
#
# Measured for each size, on a fresh database each:
#   - whoami by token with the cache off (every request reads the database), wrk over a random
#     sample of the seeded sessions;
#   - password login (native flow, two requests), the driver over seeded identities that carry
#     a password credential (argon2id with a light cost, see below, so the database's share shows);
#   - code login end to end with real SMTP (bench/driver), for users it creates in the seeded
#     database;
#   - the admin identity list filtered by credentials_identifier, wrk over seeded addresses.
#
# Usage: bench/scale.sh
# Environment (all optional):
#   BENCH_DRIVER_DIR directory holding already built load drivers (skips their cargo build)
#   LATCH_BIN        use this latch binary instead of `cargo build --release -p latch`
#   BENCH_DBS        databases, in order                 (default "sqlite"; add postgres)
#   BENCH_SIZES      identity counts                     (default "10000 1000000")
#   BENCH_DURATION   seconds per measurement             (default 10)
#   BENCH_CONNS      concurrent connections / users      (default 8: latency, not saturation)
#   BENCH_VACUUM=1   PostgreSQL: VACUUM ANALYZE after seeding, before measuring
#   BENCH_PIN=1      server on CPU 0, load generators on CPU 1
#   BENCH_PG_HOST/PORT/USER, BENCH_PG_DB (default latch_bench_scale; dropped and created again)
#   BENCH_OUT        output directory                    (default bench/out)
#   BENCH_KEEP=1     keep the temporary directories
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBS="${BENCH_DBS:-sqlite}"
SIZES="${BENCH_SIZES:-10000 1000000}"
DURATION="${BENCH_DURATION:-10}"
CONNS="${BENCH_CONNS:-8}"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB="${BENCH_PG_DB:-latch_bench_scale}"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
PASSWORD="bench-scale-Passw0rd-long-enough"
SAMPLE=20000

log() { printf '[scale-bench] %s\n' "$*" >&2; }
die() { printf '[scale-bench] FAIL: %s\n' "$*" >&2; exit 1; }

[[ "$PG_HOST" == 127.0.0.1 || "$PG_HOST" == localhost ]] || die "BENCH_PG_HOST must be local (127.0.0.1)"
for db in $DBS; do
  [[ "$db" == sqlite || "$db" == postgres ]] || die "BENCH_DBS: unknown database $db (sqlite, postgres)"
done
wrk_ok() { local v; v="$(wrk --version 2>&1 || true)"; [[ "$v" == wrk\ * ]]; }
need_packages=()
wrk_ok || need_packages+=(wrk)
command -v curl >/dev/null || need_packages+=(curl)
command -v jq >/dev/null || need_packages+=(jq)
if [[ " $DBS " == *" postgres "* ]]; then command -v psql >/dev/null || need_packages+=(postgresql-client); fi
if ((${#need_packages[@]})); then
  log "installing ${need_packages[*]} with apt-get"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get install -y "${need_packages[@]}" >/dev/null ||
    { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need_packages[@]}" >/dev/null; } ||
    die "could not install ${need_packages[*]}"
fi

TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
if [[ -n "${LATCH_BIN:-}" ]]; then
  BIN="$LATCH_BIN"
else
  log "building latch (release)"
  (cd "$ROOT" && cargo build --release -p latch --quiet) || die "cargo build -p latch failed"
  BIN="$TARGET_DIR/release/latch"
fi
[[ -x "$BIN" ]] || die "no latch binary at $BIN"
# The drivers (and the floor server) build with BENCH_DRIVER_PROFILE (release; "dev" for a quick check).
DRIVER_PROFILE="${BENCH_DRIVER_PROFILE:-release}"
DRIVER_DIR="$TARGET_DIR/$([[ "$DRIVER_PROFILE" == dev ]] && echo debug || echo "$DRIVER_PROFILE")"
if [[ -n "${BENCH_DRIVER_DIR:-}" ]]; then
  DRIVER_DIR="$BENCH_DRIVER_DIR"
  log "using the load drivers in $DRIVER_DIR"
else
  log "building the load drivers ($DRIVER_PROFILE)"
  (cd "$ROOT" && cargo build --profile "$DRIVER_PROFILE" -p latch-bench-driver --quiet) || die "cargo build -p latch-bench-driver failed"
fi
CODE_DRIVER="$DRIVER_DIR/latch-bench-driver"
LOGIN_DRIVER="$DRIVER_DIR/latch-bench-passkey"

PIN_SERVER=()
PIN_LOAD=()
if [[ "${BENCH_PIN:-}" == 1 ]]; then PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); fi

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
mkdir -p "$OUT"

# Results: R[db,size,measure] = "rate|p50_ms|p99_ms".
declare -A R

wrk_result() { # base path-or-url mode file -> "rate|p50|p99"
  local raw line
  raw="$("${PIN_LOAD[@]}" wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$ROOT/bench/whoami.lua" "$1$2" -- "$3" "$4" 2>&1)" ||
    die "wrk failed: $raw"
  line="$(grep '^WRK_RESULT' <<<"$raw")" || die "wrk printed no result: $raw"
  f() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
  (($(f non2xx) == 0)) || die "wrk saw $(f non2xx) error answers on $2"
  echo "$(f rps)|$(awk -v u="$(f p50_us)" 'BEGIN {printf "%.2f", u / 1000}')|$(awk -v u="$(f p99_us)" 'BEGIN {printf "%.2f", u / 1000}')"
}

run_size() {
  local db="$1" n="$2" tmp dsn public_port admin_port smtp_port public admin
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/latch-scale-$db.XXXXXX")"
  TMPS+=("$tmp")
  public_port="$(free_port)"; admin_port="$(free_port)"; smtp_port="$(free_port)"
  public="http://127.0.0.1:$public_port"; admin="http://127.0.0.1:$admin_port"
  if [[ "$db" == postgres ]]; then
    "${PSQL[@]}" -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $PG_DB" >/dev/null
    PG_CREATED=1
    dsn="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB?sslmode=disable"
  else
    dsn="sqlite://$tmp/latch.sqlite?_fk=true&mode=rwc"
  fi
  cp "$ROOT/examples/identity.schema.json" "$tmp/identity.schema.json"
  cat >"$tmp/latch.yml" <<YAML
dsn: $dsn
log:
  level: warning
serve:
  public:
    base_url: $public/
    host: 127.0.0.1
    port: $public_port
  admin:
    base_url: $admin/
    host: 127.0.0.1
    port: $admin_port
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  methods:
    code:
      enabled: true
      passwordless_enabled: true
    password:
      config:
        haveibeenpwned_enabled: false
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file://$tmp/identity.schema.json
courier:
  smtp:
    connection_uri: smtp://127.0.0.1:$smtp_port/?disable_starttls=true
    from_address: no-reply@bench.test
  worker:
    pull_wait: 10ms
# A light argon2id so that a password login's database work is not lost in hashing noise.
hashers:
  argon2:
    memory: 8MB
    iterations: 1
    parallelism: 1
latch:
  rate_limits:
    enabled: false
  cache:
    whoami:
      enabled: false
secrets:
  cookie:
    - bench-cookie-secret-$RANDOM$RANDOM$RANDOM-0123456789abcdef
YAML
  "$BIN" migrate sql --yes -c "$tmp/latch.yml" >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; die "latch migrate sql failed on $db"; }
  "${PIN_SERVER[@]}" "$BIN" serve -c "$tmp/latch.yml" --dev >"$tmp/server.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$admin/health/ready" 2>/dev/null &&
      curl -fsS -o /dev/null --max-time 1 "$public/health/ready" 2>/dev/null && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$tmp/server.log" >&2; die "server exited during startup"; }
    ((i < 300)) || die "server not ready after 30 s"
    sleep 0.1
  done

  # The stored password hash every seeded identity gets: made by this server.
  local id hash
  id="$(curl -fsS -H 'Content-Type: application/json' -d "{\"schema_id\":\"default\",\"traits\":{\"email\":\"hash-source@bench.test\"},\"credentials\":{\"password\":{\"config\":{\"password\":\"$PASSWORD\"}}}}" \
    "$admin/admin/identities" | jq -er .id)" || die "could not create the hash source identity"
  hash="$(curl -fsS "$admin/admin/identities/$id?include_credential=password" | jq -er .credentials.password.config.hashed_password)" ||
    die "could not read the stored password hash"
  log "$db, $n identities: seeding"
  python3 "$ROOT/bench/seed.py" --dsn "${dsn%%\?*}" --identities "$n" --password-hash "$hash" --tokens "$tmp/tokens.all" >&2 ||
    die "seeding failed"
  # A production database is not measured minutes after a bulk load: BENCH_VACUUM=1 runs
  # VACUUM ANALYZE on PostgreSQL (visibility map, hint bits, statistics) before measuring.
  if [[ "${BENCH_VACUUM:-0}" == 1 && "$db" == postgres ]]; then
    log "$db, $n identities: VACUUM ANALYZE"
    psql -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -c "VACUUM ANALYZE" >&2 || die "VACUUM ANALYZE failed"
  fi
  shuf -n "$SAMPLE" "$tmp/tokens.all" >"$tmp/tokens.txt"
  sed -E 's/^ory_st_seed([0-9]+)$/\/admin\/identities?credentials_identifier=s\1%40seed.test/' "$tmp/tokens.txt" >"$tmp/paths.txt"
  head -n 512 "$tmp/tokens.txt" | sed -E 's/^ory_st_seed([0-9]+)$/s\1@seed.test/' >"$tmp/identifiers.txt"
  # Every kind of request must work on seeded rows before anything is measured.
  local t1 p1
  t1="$(head -n1 "$tmp/tokens.txt")"; p1="$(head -n1 "$tmp/paths.txt")"
  [[ "$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Session-Token: $t1" "$public/sessions/whoami")" == 200 ]] ||
    die "whoami with a seeded token does not answer 200"
  [[ "$(curl -fsS "$admin$p1" | jq length)" == 1 ]] || die "the admin list does not find a seeded identifier"

  log "$db, $n: whoami, cache off"
  R[$db,$n,whoami]="$(wrk_result "$public" /sessions/whoami token "$tmp/tokens.txt")"
  log "$db, $n: admin list by credentials_identifier"
  R[$db,$n,list]="$(wrk_result "$admin" "" path "$tmp/paths.txt")"
  log "$db, $n: password login"
  local row
  row="$("${PIN_LOAD[@]}" timeout 300 "$LOGIN_DRIVER" --label "$db" --public "$public" --password "$PASSWORD" \
    --identifiers "$tmp/identifiers.txt" --levels "$CONNS" --duration "$DURATION" 2>"$tmp/login.log" | tail -n1)" ||
    { cat "$tmp/login.log" >&2; die "password logins failed"; }
  R[$db,$n,password]="$(awk -F'|' '{r = $5; gsub(/[ *]/, "", r); split($9, t, "/"); printf "%s|%.2f|%.2f", r, t[1], t[2]}' <<<"$row")"
  log "$db, $n: code login"
  row="$("${PIN_LOAD[@]}" timeout 600 "$CODE_DRIVER" --label "$db" --public "$public" --admin "$admin" \
    --smtp-listen "127.0.0.1:$smtp_port" --users 256 --levels "$CONNS" --duration "$DURATION" 2>"$tmp/code.log" | tail -n1)" ||
    { cat "$tmp/code.log" >&2; die "code logins failed"; }
  R[$db,$n,code]="$(awk -F'|' '{r = $6; gsub(/[ *]/, "", r); split($11, t, "/"); printf "%s|%.2f|%.2f", r, t[1], t[2]}' <<<"$row")"
  stop_server
  if [[ "$db" == postgres ]]; then "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null; fi
  rm -f "$tmp/tokens.all"
}

for db in $DBS; do
  for n in $SIZES; do run_size "$db" "$n"; done
done

# ---------------------------------------------------------------------------- report
read -r -a SZ <<<"$SIZES"
small="${SZ[0]}"; large="${SZ[${#SZ[@]} - 1]}"
NAMES=(whoami password code list)
declare -A LABEL=([whoami]="whoami by token, cache off (wrk)" [password]="password login, native, 2 requests"
  [code]="code login end to end (SMTP)" [list]="admin list ?credentials_identifier= (wrk)")
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
table="| database | measure | $small: req or logins/s | p50 ms | p99 ms | $large: req or logins/s | p50 ms | p99 ms | p50 latency $large / $small | target | |
|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
for db in $DBS; do
  for m in "${NAMES[@]}"; do
    IFS='|' read -r r1 a1 b1 <<<"${R[$db,$small,$m]}"
    IFS='|' read -r r2 a2 b2 <<<"${R[$db,$large,$m]}"
    ratio="$(awk -v a="$a2" -v b="$a1" 'BEGIN {printf "%.2f", a / b}')"
    ok="$(awk -v r="$ratio" 'BEGIN {print (r <= 1.10) ? "met" : "NOT met"}')"
    table+="
| $db | ${LABEL[$m]} | $r1 | $a1 | $b1 | $r2 | $a2 | $b2 | $ratio | <= 1.10 | $ok |"
  done
done
report="# Latch scale benchmark: $small vs $large identities

- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}; load average at the end $(cut -d' ' -f1-3 /proc/loadavg); pinned: ${BENCH_PIN:-0}
- each size on a fresh database seeded by bench/seed.py (every identity: address, code and password credential, one session); $CONNS connections / concurrent users, ${DURATION}s per measurement; whoami cache off, rate limits off, argon2id 8 MB / 1 iteration

$table

Target (issue 15): login and whoami latency within 10 % between 10k and 1M identities.
"
printf '%s\n' "$report" >"$OUT/scale.md"
echo
printf '%s\n' "$report"
echo "markdown: $OUT/scale.md"
