#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: repeatable whatever else the
# machine does (wrk numbers are not). See bench/README.md.
#
# Usage: bench/callgrind.sh [CASE ...]     (default: floor alive token cookie miss)
#   floor   GET /health/alive on bench/floor (bare axum)
#   alive   GET /health/alive on Latch
#   token   GET /sessions/whoami with X-Session-Token, cache on (one token)
#   cookie  GET /sessions/whoami with the session cookie, cache on (one cookie)
#   miss    GET /sessions/whoami with X-Session-Token, cache off, rotating over CALLGRIND_SEED
#           seeded sessions (every request reads the database)
# Environment (all optional):
#   LATCH_BIN / FLOOR_BIN   binaries (default: target-rel/release or target/release of this tree)
#   CALLGRIND_REQUESTS      counted requests per case (default 20000)
#   CALLGRIND_WARMUP        uncounted requests before (default 2000)
#   CALLGRIND_SEED          seeded sessions for "miss" (default 100000)
#   CALLGRIND_OUT           where callgrind.out.<case> and <case>.top.txt go (default bench/out/callgrind)
#
# Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; instrumentation is
# switched on (callgrind_control -i on) only around the counted requests, which one client
# sends one after another on one keep-alive connection. Instructions per request = all
# instructions of the server process while on, divided by the count.
set -Eeuo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
N="${CALLGRIND_REQUESTS:-20000}"
WARM="${CALLGRIND_WARMUP:-2000}"
SEED="${CALLGRIND_SEED:-100000}"
OUT="${CALLGRIND_OUT:-$ROOT/bench/out/callgrind}"
CASES=("$@")
((${#CASES[@]})) || CASES=(floor alive token cookie miss)
PASSWORD="bench-Passw0rd-$RANDOM$RANDOM-long-enough"

log() { printf '[callgrind] %s\n' "$*" >&2; }
die() { printf '[callgrind] FAIL: %s\n' "$*" >&2; exit 1; }

pick() { for f in "$@"; do if [[ -x "$f" ]]; then echo "$f"; return; fi; done; }
BIN="${LATCH_BIN:-$(pick "$ROOT/target-rel/release/latch" "$ROOT/target/release/latch")}"
FLOOR="${FLOOR_BIN:-$(pick "$ROOT/target-rel/release/latch-bench-floor" "$ROOT/target/release/latch-bench-floor")}"
[[ -x "$BIN" ]] || die "no latch binary (set LATCH_BIN)"
for t in valgrind callgrind_control callgrind_annotate curl jq python3; do
  command -v "$t" >/dev/null || die "$t is missing"
done
mkdir -p "$OUT"

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    if port_is_free "$p" && [[ "$p" != "${PUBLIC_PORT:-}" ]]; then echo "$p"; return; fi
  done
  die "no free port found"
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/latch-callgrind.XXXXXX")"
PID=""
stop() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  [[ -z "$PID" ]] || wait "$PID" 2>/dev/null || true
  PID=""
}
cleanup() {
  local rc=$?
  stop
  if [[ "${BENCH_KEEP:-}" == 1 || $rc -ne 0 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # url seconds
  for _ in $(seq 1 $(($2 * 10))); do
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || die "server exited during startup (see $TMP)"
    sleep 0.1
  done
  die "$1 not ready after $2 s"
}

# One client, one keep-alive connection, requests one after another; every answer must be 200.
cat >"$TMP/load.py" <<'PY'
import http.client, sys
host, port, path, mode, file, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
values = [l.strip() for l in open(file) if l.strip()] if file != "-" else [""]
conn = http.client.HTTPConnection(host, port)
for i in range(n):
    h = {"Accept": "application/json"}
    v = values[i % len(values)]
    if mode == "token":
        h["X-Session-Token"] = v
    elif mode == "cookie":
        h["Cookie"] = "ory_kratos_session=" + v
    conn.request("GET", path, headers=h)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"request {i}: {r.status}")
PY

PUBLIC_PORT="$(free_port)"
ADMIN_PORT="$(free_port)"
PUBLIC="http://127.0.0.1:$PUBLIC_PORT"
ADMIN="http://127.0.0.1:$ADMIN_PORT"
cp "$ROOT/examples/identity.schema.json" "$TMP/identity.schema.json"
config() { # cache-enabled
  cat <<YAML
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
    - callgrind-cookie-secret-0123456789abcdef
latch:
  rate_limits:
    enabled: false
  cache:
    whoami:
      enabled: $1
YAML
}
config true >"$TMP/on.yml"
config false >"$TMP/off.yml"

needs_latch=0
for c in "${CASES[@]}"; do [[ "$c" == floor ]] || needs_latch=1; done
if ((needs_latch)); then
  "$BIN" migrate sql --yes -c "$TMP/on.yml" >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log" >&2; die "migrate failed"; }
  if [[ " ${CASES[*]} " == *" miss "* ]]; then
    log "seeding $SEED sessions"
    python3 "$ROOT/bench/seed.py" --dsn "sqlite://$TMP/latch.sqlite" --identities "$SEED" --tokens "$TMP/seed_tokens.txt" 2>/dev/null
  fi
  # One identity logged in twice (natively, not under valgrind): a token and a cookie.
  "$BIN" serve -c "$TMP/on.yml" --dev >"$TMP/setup.log" 2>&1 &
  PID=$!
  wait_ready "$ADMIN/health/ready" 30
  CURL=(curl -sS --max-time 20 -H 'Accept: application/json')
  body="$(jq -nc --arg p "$PASSWORD" '{schema_id: "default", traits: {email: "cg@bench.test"}, credentials: {password: {config: {password: $p}}}}')"
  "${CURL[@]}" -f -o /dev/null -H 'Content-Type: application/json' -d "$body" "$ADMIN/admin/identities" || die "create identity"
  action="$("${CURL[@]}" "$PUBLIC/self-service/login/api" | jq -er .ui.action)"
  login="$(jq -nc --arg p "$PASSWORD" '{method: "password", identifier: "cg@bench.test", password: $p}')"
  "${CURL[@]}" -H 'Content-Type: application/json' -d "$login" "$action" | jq -er .session_token >"$TMP/token.txt"
  jar="$TMP/jar.txt"
  "${CURL[@]}" -c "$jar" "$PUBLIC/self-service/login/browser" >"$TMP/flow.json"
  action="$(jq -er .ui.action "$TMP/flow.json")"
  csrf="$(jq -er '.ui.nodes[] | select(.attributes.name == "csrf_token") | .attributes.value' "$TMP/flow.json")"
  login="$(jq -nc --arg p "$PASSWORD" --arg c "$csrf" '{method: "password", identifier: "cg@bench.test", password: $p, csrf_token: $c}')"
  "${CURL[@]}" -f -b "$jar" -c "$jar" -o /dev/null -H 'Content-Type: application/json' -d "$login" "$action" || die "browser login"
  awk -F'\t' '$6 == "ory_kratos_session" {print $7}' "$jar" | tail -n1 | grep . >"$TMP/cookie.txt" || die "no session cookie"
  stop
fi

printf '| case | requests | instructions | instructions/request |\n|---|---:|---:|---:|\n' >"$OUT/summary.md"
for c in "${CASES[@]}"; do
  file="$OUT/callgrind.out.$c"
  rm -f "$file"
  vg=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$file")
  case "$c" in
    floor) [[ -x "$FLOOR" ]] || die "no floor binary (set FLOOR_BIN)"
      port="$(free_port)"; "${vg[@]}" "$FLOOR" "$port" >"$TMP/$c.log" 2>&1 & PID=$!
      url_port=$port; path=/health/alive; mode=plain; values=-; ready="http://127.0.0.1:$port/health/alive" ;;
    alive) cfg=on; path=/health/alive; mode=plain; values=- ;;
    token) cfg=on; path=/sessions/whoami; mode=token; values="$TMP/token.txt" ;;
    cookie) cfg=on; path=/sessions/whoami; mode=cookie; values="$TMP/cookie.txt" ;;
    miss) cfg=off; path=/sessions/whoami; mode=token; values="$TMP/seed_tokens.txt" ;;
    *) die "unknown case $c" ;;
  esac
  if [[ "$c" != floor ]]; then
    "${vg[@]}" "$BIN" serve -c "$TMP/$cfg.yml" --dev >"$TMP/$c.log" 2>&1 &
    PID=$!
    url_port=$PUBLIC_PORT; ready="$ADMIN/health/ready"
  fi
  wait_ready "$ready" 300
  log "$c: $WARM warm-up requests, then $N counted"
  python3 "$TMP/load.py" 127.0.0.1 "$url_port" "$path" "$mode" "$values" "$WARM" || die "$c warm-up"
  callgrind_control -i on "$PID" >/dev/null
  python3 "$TMP/load.py" 127.0.0.1 "$url_port" "$path" "$mode" "$values" "$N" || die "$c load"
  callgrind_control -i off "$PID" >/dev/null
  stop
  # With instrumentation switched on late, "summary:" can read 0; "totals:" is the sum.
  total="$(awk '/^totals:/ {t = $2} /^summary:/ {s = $2} END {print (t ? t : s)}' "$file")"
  per=$((total / N))
  log "$c: $total instructions, $per per request"
  printf '| %s | %s | %s | %s |\n' "$c" "$N" "$total" "$per" >>"$OUT/summary.md"
  callgrind_annotate --inclusive=no "$file" 2>/dev/null | head -60 >"$OUT/$c.top.txt" || true
  callgrind_annotate --inclusive=yes "$file" 2>/dev/null | head -80 >"$OUT/$c.incl.txt" || true
done
cat "$OUT/summary.md"
