#!/usr/bin/env bash
# Benchmark GET /sessions/whoami (session token and session cookie) against GET /health/alive
# on one Latch server with SQLite. See bench/README.md.
#
# Usage: bench/whoami.sh
# Environment (all optional):
#   LATCH_BIN         use this latch binary instead of `cargo build --release -p latch`
#   WRK_THREADS       wrk threads            (default 2)
#   WRK_CONNECTIONS   wrk connections        (default 64)
#   WRK_DURATION      duration of each run   (default 10s)
#   WRK_WARMUP        unreported warm-up run (default 3s, 0 to skip)
#   BENCH_SESSIONS    sessions of each kind (token, cookie) to rotate over (default 16)
#   BENCH_OUT         output directory       (default bench/out)
#   BENCH_KEEP=1      keep the temporary directory (config, database, server log)
#   BENCH_WHOAMI_CACHE=false  every whoami reads the database (the cache-miss path)
#   BENCH_PIN=1       server (and the floor server) on CPU 0, wrk on CPU 1
#   BENCH_SEED=N      seed N identities with sessions by direct SQL (bench/seed.py) and rotate
#                     the token run over their N tokens (e.g. 100000)
#   FLOOR_BIN         use this latch-bench-floor binary instead of building bench/floor
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LUA="$ROOT/bench/whoami.lua"
THREADS="${WRK_THREADS:-2}"
CONNS="${WRK_CONNECTIONS:-64}"
DURATION="${WRK_DURATION:-10s}"
WARMUP="${WRK_WARMUP:-3s}"
SESSIONS="${BENCH_SESSIONS:-16}"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
PASSWORD="bench-Passw0rd-$RANDOM$RANDOM-long-enough"

log() { printf '[whoami-bench] %s\n' "$*" >&2; }
die() { printf '[whoami-bench] FAIL: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------- tools
# `wrk --version` prints "wrk <version> ..." and exits with status 1.
wrk_ok() { local v; v="$(wrk --version 2>&1 || true)"; [[ "$v" == wrk\ * ]]; }
need_packages=()
wrk_ok || need_packages+=(wrk)
command -v curl >/dev/null || need_packages+=(curl)
command -v jq >/dev/null || need_packages+=(jq)
if ((${#need_packages[@]})); then
  log "installing ${need_packages[*]} with apt-get"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get install -y "${need_packages[@]}" >/dev/null ||
    { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need_packages[@]}" >/dev/null; } ||
    die "could not install ${need_packages[*]}"
fi
wrk_ok || die "wrk is not usable"

if [[ -n "${LATCH_BIN:-}" ]]; then
  BIN="$LATCH_BIN"
else
  log "building latch (release)"
  (cd "$ROOT" && cargo build --release -p latch --quiet) || die "cargo build failed"
  TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  BIN="$TARGET_DIR/release/latch"
fi
[[ -x "$BIN" ]] || die "no latch binary at $BIN"
if [[ -n "${FLOOR_BIN:-}" ]]; then
  FLOOR="$FLOOR_BIN"
else
  log "building the floor server bench/floor (release)"
  (cd "$ROOT" && cargo build --release -p latch-bench-floor --quiet) || die "cargo build of bench/floor failed"
  TARGET_DIR="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
  FLOOR="$TARGET_DIR/release/latch-bench-floor"
fi
[[ -x "$FLOOR" ]] || die "no floor server binary at $FLOOR"

# ---------------------------------------------------------------------------- server
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))  # below the kernel's ephemeral range (32768+): an outgoing connection's local port there makes bind fail
    if port_is_free "$p" && [[ "$p" != "${PUBLIC_PORT:-}" ]]; then echo "$p"; return; fi
  done
  die "no free port found"
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/latch-bench.XXXXXX")"
SERVER_PID=""
FLOOR_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$FLOOR_PID" ]]; then kill -TERM "$FLOOR_PID" 2>/dev/null || true; wait "$FLOOR_PID" 2>/dev/null || true; fi
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      log "server did not stop within 5 s; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ "${BENCH_KEEP:-}" == 1 || $rc -ne 0 ]]; then
    log "kept $TMP (config, database, server.log)"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PUBLIC_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
PUBLIC="http://127.0.0.1:$PUBLIC_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"
cp "$ROOT/examples/identity.schema.json" "$TMP/identity.schema.json"
cat >"$TMP/latch.yml" <<YAML
dsn: sqlite://$TMP/latch.sqlite?_fk=true&mode=rwc
log:
  level: warning
serve:
  public:
    base_url: $PUBLIC/
    host: 127.0.0.1
    port: $PUBLIC_PORT
  admin:
    base_url: $ADMIN/
    host: 127.0.0.1
    port: $ADMIN_PORT
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file://$TMP/identity.schema.json
secrets:
  cookie:
    - bench-cookie-secret-$RANDOM$RANDOM$RANDOM-0123456789abcdef
# One client IP creates every session: the benchmark turns Latch's rate limits off.
# BENCH_WHOAMI_CACHE=false measures the database path (every whoami reads the session).
latch:
  rate_limits:
    enabled: false
  cache:
    whoami:
      enabled: ${BENCH_WHOAMI_CACHE:-true}
YAML

log "migrating $TMP/latch.sqlite"
"$BIN" migrate sql --yes -c "$TMP/latch.yml" >"$TMP/migrate.log" 2>&1 ||
  { cat "$TMP/migrate.log" >&2; die "latch migrate sql failed"; }

SEED="${BENCH_SEED:-0}"
if ((SEED > 0)); then
  log "seeding $SEED identities with sessions (bench/seed.py)"
  python3 "$ROOT/bench/seed.py" --dsn "sqlite://$TMP/latch.sqlite" --identities "$SEED" --tokens "$TMP/seed_tokens.txt" ||
    die "seeding failed"
fi

log "starting $BIN (public $PUBLIC, admin $ADMIN)"
# BENCH_PIN=1: the server on CPU 0 and wrk on CPU 1 (the issue's "1 core" rows).
PIN_SERVER=()
PIN_WRK=()
if [[ "${BENCH_PIN:-}" == 1 ]]; then PIN_SERVER=(taskset -c 0); PIN_WRK=(taskset -c 1); fi
"${PIN_SERVER[@]}" "$BIN" serve -c "$TMP/latch.yml" --dev >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 1 300); do
  if curl -fsS -o /dev/null --max-time 1 "$ADMIN/health/ready" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 1 "$PUBLIC/health/ready" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log" >&2; die "server exited during startup"; }
  if ((i == 300)); then cat "$TMP/server.log" >&2; die "server not ready after 30 s"; fi
  sleep 0.1
done

FLOOR_PORT="$(free_port)"
"${PIN_SERVER[@]}" "$FLOOR" "$FLOOR_PORT" >"$TMP/floor.log" 2>&1 &
FLOOR_PID=$!
for i in $(seq 1 100); do
  curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$FLOOR_PORT/health/alive" 2>/dev/null && break
  if ((i == 100)); then cat "$TMP/floor.log" >&2; die "floor server not ready"; fi
  sleep 0.1
done

kib() { awk '$1 == "'"$1"':" {print $2}' "/proc/$SERVER_PID/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
RSS_START="$(kib VmRSS)"

# ---------------------------------------------------------------------------- sessions
CURL=(curl -sS --max-time 20 -H 'Accept: application/json')
TOKENS="$TMP/tokens.txt"
COOKIES="$TMP/cookies.txt"
: >"$TOKENS"
: >"$COOKIES"
log "creating $SESSIONS identities with a token session and a cookie session each (argon2id, takes a while)"
for i in $(seq 1 "$SESSIONS"); do
  email="u$i@bench.test"
  body="$(jq -nc --arg e "$email" --arg p "$PASSWORD" \
    '{schema_id: "default", traits: {email: $e}, credentials: {password: {config: {password: $p}}}}')"
  code="$("${CURL[@]}" -o "$TMP/resp.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "$body" "$ADMIN/admin/identities")"
  [[ "$code" == 201 ]] || { cat "$TMP/resp.json" >&2; die "creating identity $email answered $code"; }

  # Native (API) login: the session token.
  action="$("${CURL[@]}" "$PUBLIC/self-service/login/api" | jq -er .ui.action)" || die "no login flow"
  login="$(jq -nc --arg e "$email" --arg p "$PASSWORD" '{method: "password", identifier: $e, password: $p}')"
  "${CURL[@]}" -H 'Content-Type: application/json' -d "$login" "$action" >"$TMP/resp.json"
  jq -er '.session_token | select(startswith("ory_st_"))' "$TMP/resp.json" >>"$TOKENS" ||
    { cat "$TMP/resp.json" >&2; die "API login of $email returned no session token"; }

  # Browser login: the session cookie.
  jar="$TMP/jar.txt"
  rm -f "$jar"
  "${CURL[@]}" -c "$jar" "$PUBLIC/self-service/login/browser" >"$TMP/flow.json"
  action="$(jq -er .ui.action "$TMP/flow.json")" || { cat "$TMP/flow.json" >&2; die "no browser login flow"; }
  csrf="$(jq -er '.ui.nodes[] | select(.attributes.name == "csrf_token") | .attributes.value' "$TMP/flow.json")" ||
    die "browser login flow has no csrf_token node"
  login="$(jq -nc --arg e "$email" --arg p "$PASSWORD" --arg c "$csrf" \
    '{method: "password", identifier: $e, password: $p, csrf_token: $c}')"
  code="$("${CURL[@]}" -b "$jar" -c "$jar" -o "$TMP/resp.json" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d "$login" "$action")"
  [[ "$code" == 200 ]] || { cat "$TMP/resp.json" >&2; die "browser login of $email answered $code"; }
  awk -F'\t' '$6 == "ory_kratos_session" {print $7}' "$jar" | tail -n1 | grep . >>"$COOKIES" ||
    die "browser login of $email set no ory_kratos_session cookie"
done

# Every credential must work before we measure anything.
while read -r t; do
  code="$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Session-Token: $t" "$PUBLIC/sessions/whoami")"
  [[ "$code" == 200 ]] || die "whoami with a fresh session token answered $code"
done <"$TOKENS"
while read -r c; do
  code="$(curl -sS -o /dev/null -w '%{http_code}' -H "Cookie: ory_kratos_session=$c" "$PUBLIC/sessions/whoami")"
  [[ "$code" == 200 ]] || die "whoami with a fresh session cookie answered $code"
done <"$COOKIES"
if ((SEED > 0)); then
  for t in $(head -n 3 "$TMP/seed_tokens.txt") $(tail -n 3 "$TMP/seed_tokens.txt"); do
    code="$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Session-Token: $t" "$PUBLIC/sessions/whoami")"
    [[ "$code" == 200 ]] || die "whoami with a seeded session token answered $code"
  done
  TOKENS="$TMP/seed_tokens.txt"
fi
log "$(wc -l <"$TOKENS") session tokens, $(wc -l <"$COOKIES") session cookies, all answer 200"

# ---------------------------------------------------------------------------- load
# Server-side count of answers on a route with a status other than 200 (catches 3xx too,
# which wrk does not count as errors).
non200() {
  curl -fsS --max-time 5 "$ADMIN/admin/metrics/prometheus" |
    awk -v r="$1" 'index($0, "latch_http_requests_total{") == 1 && index($0, "route=\"" r "\"") &&
      index($0, "listener=\"public\"") && !index($0, "status=\"200\"") {n += $NF} END {print n + 0}'
}

run_wrk() { # base path mode file duration
  "${PIN_WRK[@]}" wrk -t"$THREADS" -c"$CONNS" -d"$5" --latency -s "$LUA" "$1$2" -- "$3" "${4:-}" ory_kratos_session
}

if [[ "$WARMUP" != 0 && "$WARMUP" != 0s ]]; then
  log "warm-up ($WARMUP, not reported)"
  run_wrk "$PUBLIC" /sessions/whoami token "$TOKENS" "$WARMUP" >/dev/null
  sleep 1
fi

RSS_IDLE="$(kib VmRSS)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$OUT"
declare -A RPS P50 P99 P999 BEFORE AFTER HWM BAD
# 0 is the floor server (bench/floor: bare axum), 1-3 are Latch.
NAMES=("floor: bare axum /health/alive" "GET /health/alive" "GET /sessions/whoami (X-Session-Token)" "GET /sessions/whoami (cookie)")
BASES=("http://127.0.0.1:$FLOOR_PORT" "$PUBLIC" "$PUBLIC" "$PUBLIC")
PATHS=(/health/alive /health/alive /sessions/whoami /sessions/whoami)
MODES=(plain plain token cookie)
FILES=("" "" "$TOKENS" "$COOKIES")
failed=""
rm -f "$OUT/whoami.wrk.txt.tmp"
for k in 0 1 2 3; do
  name="${NAMES[$k]}"
  BEFORE[$k]="$(kib VmRSS)"
  bad_before="$(non200 "${PATHS[$k]}")"
  log "wrk -t$THREADS -c$CONNS -d$DURATION $name"
  raw="$(run_wrk "${BASES[$k]}" "${PATHS[$k]}" "${MODES[$k]}" "${FILES[$k]}" "$DURATION")"
  AFTER[$k]="$(kib VmRSS)"
  HWM[$k]="$(kib VmHWM)"
  printf '### %s\n%s\n\n' "$name" "$raw" >>"$OUT/whoami.wrk.txt.tmp"
  line="$(grep '^WRK_RESULT' <<<"$raw")" || { echo "$raw" >&2; die "wrk printed no result for $name"; }
  field() { sed -E "s/.* $1=([^ ]+).*/\1/" <<<"$line"; }
  RPS[$k]="$(field rps)"
  P50[$k]="$(field p50_us)"
  P99[$k]="$(field p99_us)"
  P999[$k]="$(field p999_us)"
  server_bad=$(($(non200 "${PATHS[$k]}") - bad_before))
  if ((k == 0)); then server_bad=0; fi
  wrk_bad="$(field non2xx)"
  sock=$(($(field connect_err) + $(field read_err) + $(field write_err) + $(field timeouts)))
  BAD[$k]="$wrk_bad/$server_bad/$sock"
  if ((wrk_bad > 0 || server_bad > 0 || sock > 0)); then
    failed+="$name: $wrk_bad responses >= 400 (wrk), $server_bad non-200 answers (server), $sock socket errors/timeouts; "
  fi
  if ((k < 3)); then sleep 1; fi
done
mv "$OUT/whoami.wrk.txt.tmp" "$OUT/whoami.wrk.txt"
sleep 5
RSS_AFTER_IDLE="$(kib VmRSS)"

# ---------------------------------------------------------------------------- report
ms() { awk -v u="$1" 'BEGIN {printf "%.2f ms", u / 1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f %%", 100 * a / b}'; }
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
version="$("$BIN" version 2>/dev/null | head -n1 || true)"
CACHE="${BENCH_WHOAMI_CACHE:-true}"

table="| endpoint | requests/s | p50 | p99 | p99.9 | vs floor | vs Latch /health/alive | RSS before | RSS after | peak RSS (VmHWM) | errors wrk/server/socket |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for k in 0 1 2 3; do
  if ((k == 0)); then rss="| – | – | – |"; else rss="| $(mib "${BEFORE[$k]}") | $(mib "${AFTER[$k]}") | $(mib "${HWM[$k]}") |"; fi
  table+="
| ${NAMES[$k]} | ${RPS[$k]} | $(ms "${P50[$k]}") | $(ms "${P99[$k]}") | $(ms "${P999[$k]}") | $(ratio "${RPS[$k]}" "${RPS[0]}") | $(ratio "${RPS[$k]}" "${RPS[1]}") $rss ${BAD[$k]} |"
done

# Every number beside its issue-15 target: "measure | now | target | verdict".
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {ok = (op == ">=") ? (v >= t) : (v < t); print ok ? "met" : "NOT met"}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
TGT=()
add() { TGT+=("| $1 | $2 | $3 | $4 |"); }
alive_floor="$(pct "${RPS[1]}" "${RPS[0]}")"
add "/health/alive vs bare axum floor (same run)" "$alive_floor %" ">= 90 %" "$(verdict "$alive_floor" ">=" 90)"
if [[ "$CACHE" == true ]]; then
  tok_alive="$(pct "${RPS[2]}" "${RPS[1]}")"
  add "whoami by token, cached, vs /health/alive (issue: pinned, BENCH_PIN=1)" "$tok_alive %" ">= 90 %" "$(verdict "$tok_alive" ">=" 90)"
  cookie_tok="$(pct "${RPS[3]}" "${RPS[2]}")"
  add "whoami by cookie, cached, vs token" "$cookie_tok %" ">= 90 %" "$(verdict "$cookie_tok" ">=" 90)"
  p99c="$(awk -v u="${P99[3]}" 'BEGIN {printf "%.2f", u / 1000}')"
  add "whoami by cookie p99 at $CONNS connections" "$p99c ms" "< 2 ms" "$(verdict "$p99c" "<" 2)"
else
  add "whoami cache miss, by token, req/s ($(wc -l <"$TOKENS") sessions rotated; issue: 100k live sessions, 1 core)" "${RPS[2]}" ">= 30000" "$(verdict "${RPS[2]}" ">=" 30000)"
  add "whoami cache miss, by cookie, req/s" "${RPS[3]}" ">= 30000" "$(verdict "${RPS[3]}" ">=" 30000)"
fi
idle_mib="$(awk -v k="$RSS_AFTER_IDLE" 'BEGIN {printf "%.1f", k / 1024}')"
peak_mib="$(awk -v k="${HWM[3]}" 'BEGIN {printf "%.1f", k / 1024}')"
add "server RSS idle 5 s after the load" "$idle_mib MiB" "< 40 MiB" "$(verdict "$idle_mib" "<" 40)"
add "server peak RSS (VmHWM, includes argon2id while creating sessions)" "$peak_mib MiB" "< 100 MiB" "$(verdict "$peak_mib" "<" 100)"
targets="| measure | now | target (issue 15) | |
|---|---:|---|---|"
for l in "${TGT[@]}"; do targets+="
$l"; done

report="# Latch whoami benchmark

- date: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, $version
- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr); wrk runs on the same machine; load average before the runs: $LOAD_BEFORE
- load: wrk -t$THREADS -c$CONNS -d$DURATION per endpoint, rotating over $(wc -l <"$TOKENS") session tokens / $(wc -l <"$COOKIES") cookies, SQLite (WAL), log.level warning; seeded identities: $SEED
- server RSS: $(mib "$RSS_START") after start, $(mib "$RSS_IDLE") idle after creating sessions and warm-up, $(mib "$RSS_AFTER_IDLE") idle 5 s after the load
- whoami cache: $CACHE; server and floor pinned to CPU 0 and wrk to CPU 1: ${BENCH_PIN:-0}

$table

$targets

Errors: responses with status >= 400 counted by wrk / non-200 answers counted by the server's metrics / socket errors and timeouts.
"
printf '%s\n' "$report" >"$OUT/whoami.md"

echo
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}; load average before the runs $LOAD_BEFORE; commit $commit"
echo "whoami cache: $CACHE; pinned: ${BENCH_PIN:-0}; seeded identities: $SEED; RSS after start $(mib "$RSS_START"), idle before load $(mib "$RSS_IDLE")"
echo
fmt='%-40s %10s %9s %9s %9s %9s %11s %11s %11s %8s\n'
# shellcheck disable=SC2059
printf "$fmt" endpoint req/s p50 p99 "vs floor" "vs alive" "RSS before" "RSS after" "peak RSS" errors
for k in 0 1 2 3; do
  # shellcheck disable=SC2059
  printf "$fmt" "${NAMES[$k]}" "${RPS[$k]}" "$(ms "${P50[$k]}")" "$(ms "${P99[$k]}")" \
    "$(ratio "${RPS[$k]}" "${RPS[0]}")" "$(ratio "${RPS[$k]}" "${RPS[1]}")" "$(mib "${BEFORE[$k]}")" "$(mib "${AFTER[$k]}")" "$(mib "${HWM[$k]}")" "${BAD[$k]}"
done
echo
echo "Targets:"
printf '%s\n' "$targets"
echo "markdown: $OUT/whoami.md, raw wrk output: $OUT/whoami.wrk.txt"

[[ -z "$failed" ]] || die "non-200 answers during the load, the numbers are not valid: $failed"
