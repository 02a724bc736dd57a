#!/usr/bin/env bash
# Benchmark passwordless login by one-time email code, end to end with real SMTP, on SQLite and
# on PostgreSQL. See bench/README.md ("Code login").
#
# Usage: bench/code_login.sh
# Environment (all optional):
#   BENCH_DRIVER_DIR directory holding already built load drivers (skips their cargo build)
#   LATCH_BIN          use this latch binary instead of `cargo build --release -p latch`
#   BENCH_DBS          databases to run, in order         (default "sqlite postgres")
#   BENCH_LEVELS       concurrent users, comma-separated  (default 16,64)
#   BENCH_DURATION     seconds per concurrency level      (default 10)
#   BENCH_USERS        identities created and rotated over (default 1024; at least the largest level)
#   BENCH_MAX_LOGINS   cap on logins per level            (default 200000)
#   BENCH_PULL_WAIT    courier.worker.pull_wait           (default 10ms)
#   BENCH_PULL_COUNT   courier.worker.pull_count          (default 10, Latch's default)
#   BENCH_SINK_QUICKACK=1  diagnostic: the SMTP sink ACKs at once (TCP_QUICKACK), see bench/README.md
#   BENCH_PG_HOST/PORT/USER  PostgreSQL server            (default 127.0.0.1 / 5432 / postgres, trust auth)
#   BENCH_OUT          output directory                   (default bench/out)
#   BENCH_KEEP=1       keep the temporary directories (config, SQLite database, server log)
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DBS="${BENCH_DBS:-sqlite postgres}"
LEVELS="${BENCH_LEVELS:-16,64}"
DURATION="${BENCH_DURATION:-10}"
USERS="${BENCH_USERS:-1024}"
MAX_LOGINS="${BENCH_MAX_LOGINS:-200000}"
PULL_WAIT="${BENCH_PULL_WAIT:-10ms}"
PULL_COUNT="${BENCH_PULL_COUNT:-10}"
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}"
PG_PORT="${BENCH_PG_PORT:-5432}"
PG_USER="${BENCH_PG_USER:-postgres}"
PG_DB="${BENCH_PG_DB:-latch_bench}"
COUNT="${BENCH_COUNT:-20}"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
QUICKACK=false
SINK_NOTE="the sink ACKs like any Linux SMTP server (delayed ACKs)"
if [[ "${BENCH_SINK_QUICKACK:-}" == 1 ]]; then
  QUICKACK=true
  SINK_NOTE="DIAGNOSTIC: the sink ACKs every segment at once (TCP_QUICKACK), which hides the courier's 40 ms Nagle stall"
fi

log() { printf '[code-login-bench] %s\n' "$*" >&2; }
die() { printf '[code-login-bench] FAIL: %s\n' "$*" >&2; exit 1; }

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
  (cd "$ROOT" && cargo build --profile "$DRIVER_PROFILE" -p latch-bench-driver --quiet) || die "cargo build -p latch-bench-driver failed"
fi
DRIVER="$DRIVER_DIR/latch-bench-driver"

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
# Users are created, each logged in once, then every level runs DURATION seconds: bound the driver.
DRIVER_LIMIT=$((levels_count * (DURATION + 30) + 600))

mkdir -p "$OUT"
ROWS="$OUT/code_login.rows.tmp"
: >"$ROWS"
declare -A RSS_START RSS_END LOAD

# ---------------------------------------------------------------------------- one database
run_db() {
  local db="$1" mode="${2:-load}" label tmp dsn public_port admin_port smtp_port public admin pull_wait="$PULL_WAIT"
  label="$db"
  # Counting statements: no idle polls between the counter readings (mail still wakes the worker).
  local limits=false
  if [[ "$mode" == count* ]]; then pull_wait=1h; fi
  # count-limits: the same count with Latch's default rate limits on, to show their upserts.
  if [[ "$mode" == count-limits ]]; then limits=true; label="$db, default rate limits on"; fi
  if [[ "$QUICKACK" == true ]]; then label="$db (quickack sink)"; fi
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/latch-code-bench-$db.XXXXXX")"
  TMPS+=("$tmp")
  public_port="$(free_port)"
  admin_port="$(free_port)"
  smtp_port="$(free_port)"
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

  cp "$ROOT/bench/code_login.schema.json" "$tmp/identity.schema.json"
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
    pull_wait: $pull_wait
    pull_count: $PULL_COUNT
# One client IP drives every login: the benchmark turns Latch's rate limits off.
latch:
  rate_limits:
    enabled: $limits
secrets:
  cookie:
    - bench-cookie-secret-$RANDOM$RANDOM$RANDOM-0123456789abcdef
YAML

  log "$db: migrating"
  "$BIN" migrate sql --yes -c "$tmp/latch.yml" >"$tmp/migrate.log" 2>&1 ||
    { cat "$tmp/migrate.log" >&2; die "latch migrate sql failed on $db"; }

  log "$db: starting $BIN (public $public, admin $admin, SMTP sink 127.0.0.1:$smtp_port)"
  if [[ "$mode" == count* ]]; then
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

  if [[ "$mode" == count* ]]; then
    log "$db: counting SQL statements over $COUNT sequential logins"
    timeout --signal=TERM --kill-after=10 600 "$DRIVER" --label "$label" --public "$public" --admin "$admin" \
      --smtp-listen "127.0.0.1:$smtp_port" --users 32 --levels 1 --count-statements "$COUNT" \
      >>"$COUNT_ROWS" 2> >(tee "$tmp/driver.log" >&2) || die "the statement count failed on $db"
    stop_server
    return
  fi
  log "$db: driver: $USERS users, levels $LEVELS, ${DURATION}s each"
  if ! timeout --signal=TERM --kill-after=10 "$DRIVER_LIMIT" "$DRIVER" \
    --label "$label" --sink-quickack "$QUICKACK" --public "$public" --admin "$admin" --smtp-listen "127.0.0.1:$smtp_port" \
    --users "$USERS" --levels "$LEVELS" --duration "$DURATION" --max-logins "$MAX_LOGINS" \
    --server-pid "$SERVER_PID" >>"$ROWS" 2> >(tee "$tmp/driver.log" >&2); then
    tail -n 20 "$tmp/server.log" >&2 || true
    die "the driver failed on $db (details above; server log in $tmp/server.log)"
  fi
  RSS_END[$db]="$(awk '$1 == "VmRSS:" {printf "%.1f MiB", $2 / 1024}' "/proc/$SERVER_PID/status")"
  curl -fsS --max-time 5 "$admin/admin/metrics/prometheus" >"$OUT/code_login.$db.metrics.txt" 2>/dev/null || true
  if grep -qiE '"level":"(ERROR|WARN)' "$tmp/server.log"; then
    log "$db: the server logged warnings or errors:"
    grep -iE '"level":"(ERROR|WARN)' "$tmp/server.log" | sort | uniq -c | sort -rn | head -n 5 >&2
  fi
  stop_server
}

COUNT_ROWS="$OUT/code_login.count.tmp"
: >"$COUNT_ROWS"
for db in $DBS; do
  run_db "$db"
  if ((COUNT > 0)); then run_db "$db" count; run_db "$db" count-limits; fi
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
table="| database | phase | concurrent users | completed logins | logins/s | create flow p50 / p99 ms | send code p50 / p99 ms | code arrives by SMTP p50 / p99 ms | verify p50 / p99 ms | total p50 / p99 ms | mail latency p50 / p99 ms | courier per mail: SMTP / between mails, mean ms | server CPU | driver CPU | server RSS after / peak | errors |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(cat "$ROWS")
$(if [[ -s "$COUNT_ROWS" ]]; then printf '\nSQL statements per returning user'"'"'s code login (server with LATCH_COUNT_SQL_STATEMENTS=1, logins one at a time; the courier share is what ran between the send-code answer and the mail):\n\n| database | logins | create flow | send code | courier (per mail) | verify | the three requests | all |\n|---|---:|---:|---:|---:|---:|---:|---:|\n'; cat "$COUNT_ROWS"; fi)"
# Every number beside its issue-15 target (returning users' phases).
targets="| database | concurrent users | measure | now | target | |
|---|---:|---|---:|---|---|
$(awk -F'|' 'NF > 10 && $3 ~ /returning/ {
  db = $2; c = $4; rate = $6; gsub(/[ *]/, "", rate); rate += 0; gsub(/ /, "", c)
  split($12, m, "/"); p99 = m[2] + 0
  cpu = $14; gsub(/[ %]/, "", cpu)
  per = (rate > 0 && cpu != "") ? cpu / 100 * 1000 / rate : -1
  printf "|%s| %s | completed logins/s | %s | >= 1,000 | %s |\n", db, c, rate, (rate >= 1000) ? "met" : "NOT met"
  printf "|%s| %s | mail latency p99 | %.1f ms | < 100 ms | %s |\n", db, c, p99, (p99 < 100) ? "met" : "NOT met"
  printf "|%s| %s | server CPU per login | %.2f ms | <= 1 ms | %s |\n", db, c, per, (per >= 0 && per <= 1) ? "met" : "NOT met"
}' "$ROWS")
$(if [[ -s "$COUNT_ROWS" ]]; then awk -F'|' 'NF > 8 {v = $8; if (!match(v, /[0-9]+(\.[0-9]+)?/)) next; v = substr(v, RSTART, RLENGTH); printf "|%s| 1 | SQL statements, three requests | %s | <= 12 | %s |\n", $2, v, (v + 0 <= 12) ? "met" : "NOT met"}' "$COUNT_ROWS"; fi)"
report="# Latch code-login benchmark

- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $version
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr); the driver (one thread) and PostgreSQL run on the same machine; load average before each run: $loads
- load: $USERS identities; every user logs in once (first login), then each level runs ${DURATION}s with returning users; courier.worker.pull_wait $PULL_WAIT, pull_count $PULL_COUNT; SMTP on loopback without TLS, $SINK_NOTE; log.level warning
- server RSS: $memory

$table

Targets (issue 15, on 2 cores, server unpinned):

$targets

Steps: create flow = GET /self-service/login/api; send code = POST {method: code, identifier} until its 400 sent_email answer;
code arrives by SMTP = further wait after that answer until the mail is at the sink; verify = POST with the code until 200 with a session token.
Mail latency = from submitting the identifier until the mail reached the sink. Courier per mail, as the sink sees it:
SMTP = from the first command of a mail to the answer to its DATA; between mails = from that answer to the courier's next command
(its bookkeeping between two mails while mail is queued; pauses over 50 ms are idle time and left out); 1000 / (SMTP + between) is the most mails per second one courier worker can send. CPU is in % of one core ($(nproc) cores = $(($(nproc) * 100)) %).
"
printf '%s\n' "$report" >"$OUT/code_login.md"
rm -f "$ROWS" "$COUNT_ROWS"
echo
printf '%s\n' "$report"
echo "markdown: $OUT/code_login.md, server metrics: $OUT/code_login.<db>.metrics.txt"
