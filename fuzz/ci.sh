#!/usr/bin/env bash
# Run every fuzz target for N seconds (default 30) and fail on the first crash.
#
#   fuzz/ci.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. The checked-in
# seed corpora (fuzz/corpus/<target>) are read, never written: new inputs go to a
# scratch directory, so the repository stays small. A crash leaves its input in
# fuzz/artifacts/<target>/ and the command to reproduce it in the log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
SECS=${1:-30}
[[ $# -gt 0 ]] && shift
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}

rustup toolchain list | grep -q "^$TOOLCHAIN" || rustup toolchain install "$TOOLCHAIN" --profile minimal
cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || mapfile -t targets < <(cargo "+$TOOLCHAIN" fuzz list)

cargo "+$TOOLCHAIN" fuzz build
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "corpus/$t"
  log="$scratch/$t.log"
  echo "== fuzz $t for ${SECS}s"
  # -rss_limit_mb: well above what the targets need, below what the machine has.
  if cargo "+$TOOLCHAIN" fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' || true)
    echo "   ok: ${execs:-?} runs, ${cov:-cov: ?}"
  else
    echo "   FAILED: $t"
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact_prefix' "$log" | head -20 || true
    tail -n 30 "$log"
    failed+=("$t")
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "fuzz: ${#failed[@]} target(s) crashed: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${SECS}s each, no crash"
