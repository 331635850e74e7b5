#!/usr/bin/env bash
# Benchmark harness behind `make bench`: runs each workload in C on goc
# (build/bench/bench_<workload>) and in Go (bench/go/gobench), alternately in
# fresh processes, takes the median of each figure per side, prints a
# table and writes bench/RESULTS.md. See the benchmark spec for the
# workloads and the file format.
#
# Usage: bench/run.sh [workload ...]
#   default: every workload that has a C binary in build/bench.
# Environment:
#   BENCH_RUNS     runs per side (default 7 for the noisy workloads, else 5)
#   BENCH_TIMEOUT  seconds per run (default 120)
#   BENCH_BUILD    build directory (default build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BENCH_BUILD:-$ROOT/build}
C_DIR=$BUILD_DIR/bench
GO_DIR=$ROOT/bench/go
GOBENCH=$GO_DIR/gobench
CALIBRATE=$C_DIR/calibrate
RESULTS=$ROOT/bench/RESULTS.md
TIMEOUT=${BENCH_TIMEOUT:-120}

# Canonical order of the table; unknown C workloads follow, sorted.
ORDER=(spawn pingpong chan_spsc chan_mpmc chan_unbuf_spsc select2 mutex
       sem workerpool workerpool_prof timers parked_mem ctx_cancel pipeline pipeline_buf
       rate_allow rate_allow_par echo_tcp baseline_rss yield http_hello)
# Workloads whose figures jump between speed levels: more runs. spawn
# (80 or 250 ns per goroutine), yield (14 or 28 ns) and echo_tcp jump
# from one process to the next as much as those the spec names.
NOISY=" mutex sem workerpool workerpool_prof chan_mpmc chan_spsc spawn yield echo_tcp "
# Figures where more is better: ratio is go/goc.
THROUGHPUT=" echo_tcp http_hello "

export GOMAXPROCS=2 GOC_MAXPROCS=2

FAILED=0
TMP=$(mktemp -d)
SERVER_PID="" # the http_hello server running now (see run_http)
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/goc" "$TMP/go"
: >"$TMP/figures" # "name unit" in order of first appearance
: >"$TMP/rows"    # finished table rows

log() { echo "bench: $*" >&2; }
fail() { log "FAILED: $*"; FAILED=1; }

# --- Go side -------------------------------------------------------------

# Go 1.19 and the golang.org/x packages the Go side imports, from Debian.
ensure_go() {
  command -v go >/dev/null 2>&1 &&
    [ -d /usr/share/gocode/src/golang.org/x/sync ] &&
    [ -d /usr/share/gocode/src/golang.org/x/time ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "install golang-go golang-golang-x-sync-dev golang-golang-x-time-dev (as root)"
    return 1
  fi
  log "installing golang-go, golang.org/x/sync and golang.org/x/time"
  apt-get update && apt-get install -y golang-go golang-golang-x-sync-dev \
    golang-golang-x-time-dev
}

# Builds the Go program; GOPATH is where Debian puts golang.org/x sources.
build_go() {
  ensure_go || return 1
  (cd "$GO_DIR" && GO111MODULE=off GOPATH=/usr/share/gocode \
    go build -o gobench .)
}

# wrk, the load generator of http_hello, from Debian.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "install wrk (as root)"
    return 1
  fi
  log "installing wrk"
  apt-get update && apt-get install -y wrk
}

# --- running and collecting ---------------------------------------------

runs_for() {
  if [ -n "${BENCH_RUNS:-}" ]; then
    echo "$BENCH_RUNS"
  elif [[ $NOISY == *" $1 "* ]]; then
    echo 7
  else
    echo 5
  fi
}

# Records the "name value unit" lines of file $2 for side $1 (goc or go).
collect() {
  local side=$1 out=$2 name value unit extra
  while read -r name value unit extra; do
    [ -z "$name" ] && continue
    if [ -n "$extra" ] || [ -z "$unit" ] ||
      ! [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] ||
      ! [[ $value =~ ^-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?$ ]]; then
      log "ignoring malformed line from $side: $name $value $unit $extra"
      continue
    fi
    echo "$value" >>"$TMP/$side/$name"
    if ! grep -qxF "$name $unit" "$TMP/figures"; then
      echo "$name $unit" >>"$TMP/figures"
    fi
  done <"$out"
}

# Runs one process: run_one <side> <label> <command...>; collects its figures.
run_one() {
  local side=$1 label=$2 rc=0
  shift 2
  timeout "$TIMEOUT" "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo x >>"$TMP/$side/.failed" # marked on the workload's rows
    if [ "$rc" -eq 124 ]; then
      fail "$label ($side): timed out after ${TIMEOUT}s"
    else
      fail "$label ($side): exit status $rc"
    fi
    tail -n 5 "$TMP/err" | sed 's/^/    /' >&2
    return 0
  fi
  sed "s/^/  $side: /" "$TMP/out" >&2
  collect "$side" "$TMP/out"
}

# --- http_hello: a server loaded by wrk ------------------------------------

# wrk's figures, exact (its own printout rounds): requests, seconds, errors
# and latencies in microseconds.
write_wrk_report() {
  cat >"$TMP/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk_requests %d\n", summary.requests))
  io.write(string.format("wrk_seconds %.6f\n", summary.duration / 1e6))
  io.write(string.format("wrk_errors %d %d %d %d %d\n", e.connect, e.read,
                         e.write, e.status, e.timeout))
  io.write(string.format("wrk_lat avg %.1f\n", latency.mean))
  for _, p in ipairs({ 50, 75, 90, 99 }) do
    io.write(string.format("wrk_lat p%d %d\n", p, latency:percentile(p)))
  end
  io.write(string.format("wrk_lat max %d\n", latency.max))
end
LUA
}

# Asks the server at $1 for "/" once and checks the answer the spec gives.
check_hello() {
  local head body
  exec 3<>"/dev/tcp/${1%:*}/${1##*:}" || return 1
  printf 'GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$1" >&3
  timeout 5 cat <&3 >"$TMP/hello" || true
  exec 3<&-
  head=$(sed -n '1,/^\r$/p' "$TMP/hello")
  body=$(sed '1,/^\r$/d' "$TMP/hello")
  grep -q $'^HTTP/1.1 200 OK\r$' <<<"$head" &&
    grep -q $'^Date: .* GMT\r$' <<<"$head" &&
    grep -q $'^Content-Length: 14\r$' <<<"$head" &&
    grep -q $'^Content-Type: text/plain; charset=utf-8\r$' <<<"$head" &&
    [ "$body" = "Hello, World!" ]
}

# Turns the report of wrk in $1 into the figures of http_hello on stdout.
wrk_figures() {
  awk '
    $1 == "wrk_requests" { n = $2 }
    $1 == "wrk_seconds" { s = $2 }
    $1 == "wrk_errors" { bad = $2 + $3 + $4 + $5 + $6 } # any error fails
    $1 == "wrk_lat" { lat[$2] = $3 / 1000 }
    END {
      if (n == 0 || s == 0 || bad > 0) exit 1
      printf "http_hello %.1f req/s\n", n / s
      split("avg p50 p75 p90 p99 max", k, " ")
      for (i = 1; i <= 6; i++) printf "http_hello_%s %.2f ms\n", k[i], lat[k[i]]
    }' "$1"
}

# Stops the http_hello server, if one runs (also on any exit of the
# harness, from its trap); its exit status.
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  local rc=0
  wait "$SERVER_PID" 2>/dev/null || rc=$?
  SERVER_PID=""
  return $rc
}

# One run of http_hello for side $1: start its server on a free port,
# check one answer, warm up with wrk for 3 s, measure for 10 s, stop it.
# Every step's failure marks the run failed and the batch goes on.
run_http() {
  local side=$1 label=$2 addr="" i rc=0 cmd
  if [ "$side" = goc ]; then
    cmd=("$C_DIR/bench_http_hello" -addr 127.0.0.1:0 -serve-for 60)
  else
    cmd=("$GOBENCH" -mode http -addr 127.0.0.1:0 -serve-for 60s)
  fi
  rm -f "$TMP/hello" "$TMP/wrk" "$TMP/out"
  "${cmd[@]}" >/dev/null 2>"$TMP/server.err" &
  SERVER_PID=$!
  for ((i = 0; i < 100; i++)); do
    addr=$(sed -n 's/^http_hello: listening on //p' "$TMP/server.err")
    [ -n "$addr" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$addr" ]; then
    log "$label ($side): the server never said where it listens"
    rc=1
  elif ! check_hello "$addr"; then
    log "$label ($side): wrong answer to GET /:"
    if [ -f "$TMP/hello" ]; then sed 's/^/    /' "$TMP/hello" >&2; fi
    rc=1
  elif ! wrk -t2 -c256 -d3s "http://$addr/" >/dev/null 2>&1 ||
    ! wrk -t2 -c256 -d10s --latency -s "$TMP/report.lua" "http://$addr/" \
      >"$TMP/wrk" 2>&1; then
    log "$label ($side): wrk failed"
    rc=1
  elif ! wrk_figures "$TMP/wrk" >"$TMP/out"; then
    log "$label ($side): wrk saw errors or no requests"
    rc=1
  fi
  stop_server || rc=1
  if [ $rc -ne 0 ]; then
    echo x >>"$TMP/$side/.failed"
    fail "$label ($side)"
    for f in "$TMP/server.err" "$TMP/wrk"; do
      if [ -f "$f" ]; then tail -n 5 "$f" | sed 's/^/    /' >&2; fi
    done
    return 0
  fi
  sed "s/^/  $side: /" "$TMP/out" >&2
  collect "$side" "$TMP/out"
}

# run_side <side> <workload> <run number> <1 if the side exists>
run_side() {
  [ "$4" -eq 1 ] || return 0
  if [ "$2" = http_hello ]; then
    run_http "$1" "$2 #$3"
  elif [ "$1" = goc ]; then
    run_one goc "$2 #$3" "$C_DIR/bench_$2"
  else
    run_one go "$2 #$3" "$GOBENCH" -w "$2"
  fi
}

go_supports() {
  [ -n "$GO_LIST" ] && grep -qx "$1" <<<"$GO_LIST"
}

# Runs one workload: C and Go alternately, or whichever side exists.
run_workload() {
  local w=$1 runs has_c=0 has_go=0 i
  if [ -x "$C_DIR/bench_$w" ]; then has_c=1; fi
  if go_supports "$w"; then has_go=1; fi
  if [ $has_c -eq 0 ] && [ $has_go -eq 0 ]; then
    fail "$w: no C binary ($C_DIR/bench_$w) and no Go counterpart"
    return 0
  fi
  if [ $has_c -eq 0 ]; then log "$w: no C binary, running the Go side only"; fi
  runs=$(runs_for "$w")
  log "$w: $runs run(s) per side"
  # Sides take turns going first (ABBA), so that what one process leaves
  # behind (TIME_WAIT sockets, a warm page cache) does not always fall on
  # the same side.
  for ((i = 1; i <= runs; i++)); do
    if ((i % 2)); then
      run_side goc "$w" "$i" $has_c
      run_side go "$w" "$i" $has_go
    else
      run_side go "$w" "$i" $has_go
      run_side goc "$w" "$i" $has_c
    fi
  done
  emit_rows "$runs"
}

# --- medians and rows ----------------------------------------------------

# Median of the values in file $1 (one decimal), or "-" when there are none.
median() {
  [ -s "$1" ] || { echo -; return 0; }
  sort -g "$1" | awk '{ v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
          printf "%.1f\n", m }'
}

# ratio <name> <unit> <goc> <go>: goc/go, or go/goc for throughputs.
ratio() {
  local name=$1 unit=$2 c=$3 g=$4
  if [ "$c" = - ] || [ "$g" = - ]; then echo -; return 0; fi
  if [[ $THROUGHPUT == *" $name "* ]] || [[ $unit == */s ]]; then
    awk -v a="$g" -v b="$c" 'BEGIN { if (b == 0) print "-"; else printf "%.2f\n", a / b }'
  else
    awk -v a="$c" -v b="$g" 'BEGIN { if (b == 0) print "-"; else printf "%.2f\n", a / b }'
  fi
}

# A cell: the median, marked with the failed runs of that side, if any.
cell() {
  local value=$1 side=$2 runs=$3 failed=0
  if [ -f "$TMP/$side/.failed" ]; then
    failed=$(wc -l <"$TMP/$side/.failed")
  fi
  if [ "$failed" -gt 0 ]; then
    echo "$value ($failed of $runs runs failed)"
  else
    echo "$value"
  fi
}

# Turns the figures collected so far into table rows, then forgets them:
# emit_rows <runs per side>.
emit_rows() {
  local name unit c g
  while read -r name unit; do
    c=$(median "$TMP/goc/$name")
    g=$(median "$TMP/go/$name")
    echo "| $name | $(cell "$c" goc "$1") | $(cell "$g" go "$1") |" \
      "$(ratio "$name" "$unit" "$c" "$g") | $unit |" >>"$TMP/rows"
    rm -f "$TMP/goc/$name" "$TMP/go/$name"
  done <"$TMP/figures"
  : >"$TMP/figures"
  rm -f "$TMP/goc/.failed" "$TMP/go/.failed"
}

# Runs the calibration program once; its rows are labelled with $1.
calibrate() {
  local when=$1 name value unit
  if [ ! -x "$CALIBRATE" ]; then
    log "no calibration program at $CALIBRATE; skipping"
    return 0
  fi
  if ! timeout "$TIMEOUT" "$CALIBRATE" >"$TMP/calib" 2>"$TMP/err"; then
    fail "calibrate ($when)"
    return 0
  fi
  while read -r name value unit; do
    if [ -n "$name" ]; then
      echo "| $name ($when) | $value | - | - | $unit |" >>"$TMP/rows"
    fi
  done <"$TMP/calib"
}

# --- report ----------------------------------------------------------------

default_workloads() {
  local w f
  for w in "${ORDER[@]}"; do
    if [ -x "$C_DIR/bench_$w" ]; then echo "$w"; fi
  done
  for f in "$C_DIR"/bench_*; do
    [ -x "$f" ] || continue
    w=${f##*/bench_}
    if [[ " ${ORDER[*]} " != *" $w "* ]]; then echo "$w"; fi
  done
  return 0
}

machine_header() {
  local cpu cores
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  cores=$(grep -c '^processor' /proc/cpuinfo)
  echo "# Benchmark results"
  echo
  echo "- Machine: ${cpu:-unknown CPU}, $cores cores"
  echo "- Go: ${GO_VERSION:-not available}"
  echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- Kernel: $(uname -sr)"
  echo "- Runs: goc and Go alternately in fresh processes, GOMAXPROCS=2," \
    "GOC_MAXPROCS=2; medians of ${BENCH_RUNS:-5 (7 for mutex, sem, workerpool, chan_mpmc, chan_spsc, spawn, yield, echo_tcp)} runs per side."
  echo
  echo "ratio = goc/go (go/goc for throughputs), so below 1 means goc is better."
  echo "calib_* rows: fixed arithmetic on 1 and 2 threads, and a cache-line round trip between two threads (xcore), before and after the batch."
  echo
}

write_results() {
  {
    machine_header
    echo "| workload | goc | go | ratio | unit |"
    echo "|---|---:|---:|---:|---|"
    cat "$TMP/rows"
  } >"$TMP/results.md"
  cat "$TMP/results.md"
  cp "$TMP/results.md" "$RESULTS"
  log "wrote $RESULTS"
}

main() {
  local workloads=("$@") w
  if [ ${#workloads[@]} -eq 0 ]; then
    mapfile -t workloads < <(default_workloads)
  fi
  if [ ${#workloads[@]} -eq 0 ]; then
    log "no C benchmarks in $C_DIR (build first) and none named"
    exit 1
  fi

  GO_LIST="" GO_VERSION=""
  if build_go; then
    GO_LIST=$("$GOBENCH" -list) || fail "gobench -list"
    GO_VERSION=$(go version)
  else
    fail "building the Go side; running the C side only"
  fi

  if [[ " ${workloads[*]} " == *" http_hello "* ]]; then
    ensure_wrk || fail "installing wrk"
    write_wrk_report
  fi
  calibrate before
  for w in "${workloads[@]}"; do
    run_workload "$w"
  done
  calibrate after

  write_results
  if [ $FAILED -ne 0 ]; then
    log "some runs failed (see above)"
    exit 1
  fi
}

main "$@"
