#!/usr/bin/env bash
# End-to-end echo comparison: sansock (examples/echo-server) against tokio-tungstenite
# and fastwebsockets echo servers (benches/examples/echo-*.rs), all on a current-thread
# tokio runtime pinned to one core, driven by benches/examples/loadgen.rs pinned to the
# other core.
#
#   benches/compare.sh                      # the full matrix (takes a while)
#   SIZES="16 1024" CONNS="1 100" SECS=2 ROUNDS=1 IDLE=1000 benches/compare.sh   # a quick look
#
# For every message size × connection count, the servers run interleaved round by round
# (A B C, A B C, …) so that drift of the machine hits all of them alike; each cell shows
# the median over the rounds of msgs/s, MB/s (payload, both directions), p50/p99
# round-trip latency, and the ratios against sansock (of the medians, and the lowest and
# highest ratio of single rounds, to show how much the machine moves them). "LG!" marks
# a cell where the load generator used ≥ 95% of its core: there it, not the server, may
# be the limit.
# Then each server's RSS growth with $IDLE idle connections, per connection.
#
# Environment: SIZES, CONNS, SECS (measured seconds per run), WARMUP, ROUNDS, IDLE,
# HOLD (seconds the idle connections stay), SERVER_CPU / LOAD_CPU (core numbers),
# OUT (directory for raw results, default target/compare).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SIZES=${SIZES:-"16 1024 65536 1048576"}
CONNS=${CONNS:-"1 100 1000"}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-2}
IDLE=${IDLE:-10000}
HOLD=${HOLD:-600}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-target/compare}
mkdir -p "$OUT"

echo "== building (release)" >&2
cargo build --release -q -p sansock-examples --example echo-server
cargo build --release -q -p sansock-benches --example loadgen --example echo-tungstenite --example echo-fastwebsockets
BIN=target/release/examples

NAMES=(sansock tungstenite fastwebsockets)
declare -A PORT=([sansock]=9101 [tungstenite]=9102 [fastwebsockets]=9103)
declare -A CMD=(
  [sansock]="$BIN/echo-server --listen 127.0.0.1:9101"
  [tungstenite]="$BIN/echo-tungstenite --listen 127.0.0.1:9102"
  [fastwebsockets]="$BIN/echo-fastwebsockets --listen 127.0.0.1:9103"
)

# 10,000 connections need more descriptors than the usual default on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null || true; }
trap cleanup EXIT

start_server() { # name
  local name=$1
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" ${CMD[$name]} 2>"$OUT/$name.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT[$name]}") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "server $name did not start" >&2
  return 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

cpu_ticks() { # pid → utime+stime in clock ticks
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

rss_kib() { # pid
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

RESULTS=$OUT/echo.tsv
: >"$RESULTS"
for size in $SIZES; do
  for conns in $CONNS; do
    for round in $(seq "$ROUNDS"); do
      for name in "${NAMES[@]}"; do
        start_server "$name"
        t0=$(cpu_ticks "$SERVER_PID")
        line=$(taskset -c "$LOAD_CPU" "$BIN/loadgen" --url "ws://127.0.0.1:${PORT[$name]}" \
          --conns "$conns" --size "$size" --secs "$SECS" --warmup "$WARMUP" 2>"$OUT/loadgen.err") || {
          echo "loadgen failed against $name ($size B, $conns conns): $(tail -n 3 "$OUT/loadgen.err")" >&2
          line="msgs=0 secs=1 msgs_per_s=0 mb_per_s=0 p50_us=0 p99_us=0 cpu=0"
        }
        t1=$(cpu_ticks "$SERVER_PID")
        stop_server
        # Server CPU share over the whole run (warm-up and teardown included).
        srv=$(awk -v d=$((t1 - t0)) -v s="$SECS" -v w="$WARMUP" 'BEGIN { printf "%.2f", d / 100 / (s + w) }')
        printf '%s\t%s\t%s\t%s\t%s srv_cpu=%s\n' "$size" "$conns" "$name" "$round" "$line" "$srv" >>"$RESULTS"
        printf '%8s B %5s conns  round %s  %-15s %s srv_cpu=%s\n' "$size" "$conns" "$round" "$name" "$line" "$srv" >&2
      done
    done
  done
done

IDLE_RESULTS=$OUT/idle.tsv
: >"$IDLE_RESULTS"
if [[ $IDLE -gt 0 ]]; then
  for name in "${NAMES[@]}"; do
    start_server "$name"
    sleep 0.5
    before=$(rss_kib "$SERVER_PID")
    taskset -c "$LOAD_CPU" "$BIN/loadgen" --url "ws://127.0.0.1:${PORT[$name]}" --idle "$IDLE" --hold "$HOLD" \
      >"$OUT/idle-$name.out" 2>&1 &
    lg=$!
    for _ in $(seq 1200); do
      grep -q '^open' "$OUT/idle-$name.out" 2>/dev/null && break
      kill -0 "$lg" 2>/dev/null || break
      sleep 0.1
    done
    sleep 1
    after=$(rss_kib "$SERVER_PID")
    opened=$(awk '/^open/ { print $2 }' "$OUT/idle-$name.out")
    kill "$lg" 2>/dev/null || true
    wait "$lg" 2>/dev/null || true
    stop_server
    printf '%s\t%s\t%s\t%s\n' "$name" "${opened:-0}" "$before" "$after" >>"$IDLE_RESULTS"
    echo "idle: $name ${opened:-0} connections, RSS ${before} → ${after} KiB" >&2
  done
fi

python3 - "$RESULTS" "$IDLE_RESULTS" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    size, conns, name, rnd, rest = line.rstrip("\n").split("\t")
    kv = dict(x.split("=") for x in rest.split())
    rows.setdefault((int(size), int(conns)), {}).setdefault(name, []).append(kv)
names = ["sansock", "tungstenite", "fastwebsockets"]
def med(runs, key):
    return statistics.median(float(r[key]) for r in runs)
def fmt_size(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"
print()
print("| size | conns | server | msgs/s | MB/s | p50 µs | p99 µs | vs sansock (msgs/s) | round by round | loadgen CPU | server CPU |")
print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for (size, conns) in sorted(rows):
    cell = rows[(size, conns)]
    base = med(cell["sansock"], "msgs_per_s") if "sansock" in cell else 0
    for name in names:
        if name not in cell:
            continue
        runs = cell[name]
        m = med(runs, "msgs_per_s")
        ratio = "1.00" if name == "sansock" else (f"sansock {base / m:.2f}×" if m else "–")
        # The ratio of each interleaved round on its own: how far the machine's drift
        # moves it (the median column is what the table reports).
        paired = [float(a["msgs_per_s"]) / float(b["msgs_per_s"])
                  for a, b in zip(cell.get("sansock", []), runs) if float(b["msgs_per_s"])]
        spread = "" if name == "sansock" or not paired else f"{min(paired):.2f}–{max(paired):.2f}"
        lg = med(runs, "cpu")
        flag = " LG!" if lg >= 0.95 else ""
        print(f"| {fmt_size(size)} | {conns} | {name} | {m:,.0f} | {med(runs, 'mb_per_s'):,.1f} | "
              f"{med(runs, 'p50_us'):,.0f} | {med(runs, 'p99_us'):,.0f} | {ratio} | {spread} | {lg:.2f}{flag} | {med(runs, 'srv_cpu'):.2f} |")
idle = [l.rstrip("\n").split("\t") for l in open(sys.argv[2]) if l.strip()]
if idle:
    print()
    print("| server | idle connections | RSS before | RSS after | per connection |")
    print("|---|---:|---:|---:|---:|")
    for name, n, before, after in idle:
        n, before, after = int(n), int(before), int(after)
        per = f"{(after - before) * 1024 / n / 1024:.1f} KiB" if n else "–"
        print(f"| {name} | {n:,} | {before / 1024:.1f} MiB | {after / 1024:.1f} MiB | {per} |")
EOF
