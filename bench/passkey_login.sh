#!/usr/bin/env bash
# Benchmark complete passkey logins (WebAuthn, ES256, software authenticator in the driver) on
# SQLite and on PostgreSQL. See bench/README.md ("Passkey login").
#
# Usage: bench/passkey_login.sh
# Environment (all optional):
#   BENCH_DRIVER_DIR directory holding already built load drivers (skips their cargo build)
#   LATCH_BIN          use this latch binary instead of `cargo build --release -p latch`
#   BENCH_DBS          databases to run, in order         (default "sqlite postgres")
#   BENCH_LEVELS       concurrent users, comma-separated  (default 16,64)
#   BENCH_DURATION     seconds per concurrency level      (default 10)
#   BENCH_USERS        users registered with a passkey    (default 256; at least the largest level)
#   BENCH_COUNT        logins for the SQL statement count (default 20, 0 skips it)
#   BENCH_PG_HOST/PORT/USER  PostgreSQL server            (default 127.0.0.1 / 5432 / postgres, trust auth)
#   BENCH_PG_DB        database, dropped and created again (default latch_bench)
#   BENCH_OUT          output directory                   (default bench/out)
#   BENCH_KEEP=1       keep the temporary directories (config, SQLite database, server log)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBS="${BENCH_DBS:-sqlite postgres}"
LEVELS="${BENCH_LEVELS:-16,64}"
DURATION="${BENCH_DURATION:-10}"
USERS="${BENCH_USERS:-256}"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB="${BENCH_PG_DB:-latch_bench}"
COUNT="${BENCH_COUNT:-20}"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
log() { printf '[passkey-bench] %s\n' "$*" >&2; }
die() { printf '[passkey-bench] FAIL: %s\n' "$*" >&2; exit 1; }

[[ "$PG_HOST" == 127.0.0.1 || "$PG_HOST" == localhost ]] || die "BENCH_PG_HOST must be local (127.0.0.1)"
for db in $DBS; do
  [[ "$db" == sqlite || "$db" == postgres ]] || die "BENCH_DBS: unknown database $db (sqlite, postgres)"
done

# ---------------------------------------------------------------------------- tools
need_packages=()
command -v curl >/dev/null || need_packages+=(curl)
command -v jq >/dev/null || need_packages+=(jq)
command -v timeout >/dev/null || need_packages+=(coreutils)
if [[ " $DBS " == *" postgres "* ]]; then
  command -v psql >/dev/null || need_packages+=(postgresql-client)
fi
if ((${#need_packages[@]})); then
  log "installing ${need_packages[*]} with apt-get"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get install -y "${need_packages[@]}" >/dev/null ||
    { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need_packages[@]}" >/dev/null; } ||
    die "could not install ${need_packages[*]}"
fi

# Two separate builds, so that the driver's dependency features never change the server's.
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
  log "building the load driver ($DRIVER_PROFILE)"
  (cd "$ROOT" && cargo build --profile "$DRIVER_PROFILE" -p latch-bench-driver --bin latch-bench-passkey --quiet) ||
    die "cargo build -p latch-bench-driver failed"
fi
DRIVER="$DRIVER_DIR/latch-bench-passkey"

# ---------------------------------------------------------------------------- helpers
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
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server did not stop within 5 s; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
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
    if [[ "${BENCH_KEEP:-}" == 1 || $rc -ne 0 ]]; then
      log "kept $t (config, database, server.log, driver.log)"
    else
      rm -rf "$t"
    fi
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

levels_count=$(tr ',' '\n' <<<"$LEVELS" | grep -c .)
# Users are registered, then every level runs DURATION seconds: bound the driver.
DRIVER_LIMIT=$((levels_count * (DURATION + 30) + 600))

mkdir -p "$OUT"
ROWS="$OUT/passkey_login.rows.tmp"
: >"$ROWS"
declare -A RSS_START RSS_END LOAD

# ---------------------------------------------------------------------------- one database
run_db() {
  local db="$1" mode="${2:-load}" tmp dsn public_port admin_port public admin
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/latch-passkey-bench-$db.XXXXXX")"
  TMPS+=("$tmp")
  public_port="$(free_port)"
  admin_port="$(free_port)"
  public="http://127.0.0.1:$public_port"
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

  cp "$ROOT/examples/identity.schema.json" "$tmp/identity.schema.json"
  # The relying party is latch.test: the authenticator signs for https://latch.test, which
  # Latch checks against passkey.config.rp.origins, whatever host the request went to.
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
    passkey:
      enabled: true
      config:
        rp:
          id: latch.test
          display_name: Latch bench
          origins:
            - https://latch.test
  flows:
    registration:
      after:
        passkey:
          hooks:
            - hook: session
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file://$tmp/identity.schema.json
# One client IP drives every login: the benchmark turns Latch's rate limits off.
latch:
  rate_limits:
    enabled: false
secrets:
  cookie:
    - bench-cookie-secret-$RANDOM$RANDOM$RANDOM-0123456789abcdef
YAML

  log "$db: migrating"
  "$BIN" migrate sql --yes -c "$tmp/latch.yml" >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; die "latch migrate sql failed on $db"; }

  log "$db: starting $BIN (public $public, admin $admin)"
  if [[ "$mode" == count ]]; then
    LATCH_COUNT_SQL_STATEMENTS=1 "$BIN" serve -c "$tmp/latch.yml" --dev >"$tmp/server.log" 2>&1 &
  else
    "$BIN" serve -c "$tmp/latch.yml" --dev >"$tmp/server.log" 2>&1 &
  fi
  SERVER_PID=$!
  for i in $(seq 1 300); do
    if curl -fsS -o /dev/null --max-time 1 "$admin/health/ready" 2>/dev/null &&
      curl -fsS -o /dev/null --max-time 1 "$public/health/ready" 2>/dev/null; then
      break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$tmp/server.log" >&2; die "server exited during startup"; }
    if ((i == 300)); then cat "$tmp/server.log" >&2; die "server not ready after 30 s"; fi
    sleep 0.1
  done
  LOAD[$db]="$(cut -d' ' -f1-3 /proc/loadavg)"
  RSS_START[$db]="$(awk '$1 == "VmRSS:" {printf "%.1f MiB", $2 / 1024}' "/proc/$SERVER_PID/status")"

  if [[ "$mode" == count ]]; then
    log "$db: counting SQL statements over $COUNT sequential passkey logins"
    timeout --signal=TERM --kill-after=10 600 "$DRIVER" --label "$db" --public "$public" --admin "$admin" \
      --users 4 --levels 1 --statements "$COUNT" >>"$COUNT_ROWS" 2> >(tee "$tmp/driver.log" >&2) ||
      die "the statement count failed on $db"
    stop_server
    return
  fi
  log "$db: driver: $USERS users, levels $LEVELS, ${DURATION}s each"
  if ! timeout --signal=TERM --kill-after=10 "$DRIVER_LIMIT" "$DRIVER" \
    --label "$db" --public "$public" --users "$USERS" --levels "$LEVELS" --duration "$DURATION" \
    --server-pid "$SERVER_PID" >>"$ROWS" 2> >(tee "$tmp/driver.log" >&2); then
    tail -n 20 "$tmp/server.log" >&2 || true
    die "the driver failed on $db (details above; server log in $tmp/server.log)"
  fi
  RSS_END[$db]="$(awk '$1 == "VmRSS:" {r = $2} $1 == "VmHWM:" {h = $2} END {printf "%.1f MiB (peak %.1f MiB)", r / 1024, h / 1024}' "/proc/$SERVER_PID/status")"
  if grep -qiE '"level":"(ERROR|WARN)' "$tmp/server.log"; then
    log "$db: the server logged warnings or errors:"
    grep -iE '"level":"(ERROR|WARN)' "$tmp/server.log" | sort | uniq -c | sort -rn | head -n 5 >&2
  fi
  stop_server
}

COUNT_ROWS="$OUT/passkey_login.count.tmp"
: >"$COUNT_ROWS"
for db in $DBS; do
  run_db "$db"
  if ((COUNT > 0)); then run_db "$db" count; fi
done

# ---------------------------------------------------------------------------- report
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
version="$("$BIN" version 2>/dev/null | head -n1 || true)"
memory=""
loads=""
for db in $DBS; do
  memory+="$db ${RSS_START[$db]} after start, ${RSS_END[$db]} at the end; "
  loads+="$db ${LOAD[$db]}; "
done
# Every level's logins/s beside the target.
targets="| database | concurrency | logins/s | target | |
|---|---:|---:|---|---|
$(awk -F'|' 'NF > 5 && $2 !~ /database|---/ {gsub(/[ *]/, "", $5); printf "| %s | %s | %s | >= 2,000/s | %s |\n", $2, $3, $5, ($5 + 0 >= 2000) ? "met" : "NOT met"}' "$ROWS")"
table="$(awk 'NR <= 2 || !/^\| database |^\|---/' "$ROWS")"
report="# Latch passkey-login benchmark

- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $version
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr); the driver (software authenticator, ES256) and PostgreSQL run on the same machine; load average before each run: $loads
- load: $USERS users, each registered once with a passkey through the native registration flow; each level runs ${DURATION}s of complete native passkey logins (create flow, sign the challenge, submit; 200 with a session token); log.level warning, rate limits off
- server RSS: $memory

$table

$targets
$(if [[ -s "$COUNT_ROWS" ]]; then printf '\nSQL statements per passkey login (server with LATCH_COUNT_SQL_STATEMENTS=1, logins one at a time):\n\n| database | create flow | submit | both |\n|---|---:|---:|---:|\n'; cat "$COUNT_ROWS"; fi)

Server CPU per login = the Latch process's CPU time over the level divided by its logins (PostgreSQL's own processes not included). Driver CPU in % of one core.
"
printf '%s\n' "$report" >"$OUT/passkey_login.md"
rm -f "$ROWS" "$COUNT_ROWS"
echo
printf '%s\n' "$report"
echo "markdown: $OUT/passkey_login.md"
