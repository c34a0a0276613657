#!/usr/bin/env bash
# Runs the fuzz targets, one after another, SECONDS each (default 60):
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]
#   bash fuzz/run.sh build      # the instrumented build only
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The toolchain is
# stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags. The
# instrumented build goes to fuzz/target; the corpus each run grows goes to
# fuzz/corpus/TARGET (not committed; the committed seeds are in
# fuzz/seeds/TARGET); crashes go to fuzz/artifacts/TARGET and each run's
# log to fuzz/artifacts/logs/TARGET.log. Prints one line per target
# (executions, coverage, features, seconds) and exits 1 if any target
# crashed, timed out or ran out of memory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

secs=${1:-60}
shift || true
build_only=false
[ "$secs" != build ] || build_only=true
all=(design package api_bodies node_filter bootaction bootaction_pipeline)
targets=("${@:-${all[@]}}")

# Longest input per target (the targets ignore longer ones anyway).
declare -A max_len=(
  [design]=32768 [package]=16384 [api_bodies]=8192 [node_filter]=8192
  [bootaction]=8192 [bootaction_pipeline]=4096
)
declare -A dict=(
  [design]=design.dict [bootaction]=design.dict [bootaction_pipeline]=design.dict
  [api_bodies]=json.dict [node_filter]=json.dict
)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi
export RUSTC_BOOTSTRAP=1
# No sanitizer: the host forbids unsafe code, and the C it links (sqlite,
# ring) is not instrumented by cargo-fuzz anyway. Overflow checks and debug
# assertions are on (fuzz/Cargo.toml's release profile).
# Build once, then run the binaries: `cargo fuzz run` would check the build
# again before each target.
# The drivers the host embeds are built (wasm32-wasip2, by host/build.rs)
# into fuzz/target/wasm, not the tests' target/wasm: CI runs this build
# while the tests build and run theirs.
export DRYDOCK_WASM_TARGET_DIR="$root/fuzz/target/wasm"
nice -n "${FUZZ_NICE:-10}" cargo fuzz build --sanitizer none --target-dir fuzz/target
"$build_only" && exit 0
bin=fuzz/target/$(rustc -vV | sed -n "s/^host: //p")/release

mkdir -p fuzz/artifacts/logs
failed=()
for t in "${targets[@]}"; do
  [ -n "${max_len[$t]:-}" ] || { echo "unknown target $t (known: ${all[*]})" >&2; exit 2; }
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  args=(-max_total_time="$secs" -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048
    -print_final_stats=1 -artifact_prefix="$root/fuzz/artifacts/$t/")
  [ -z "${dict[$t]:-}" ] || args+=(-dict="$root/fuzz/dicts/${dict[$t]}")
  log="fuzz/artifacts/logs/$t.log"
  status=0
  nice -n 10 "$bin/$t" "${args[@]}" "$root/fuzz/corpus/$t" "$root/fuzz/seeds/$t" \
    >"$log" 2>&1 || status=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 || true)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  took=$(sed -n 's/^stat::slowest_unit_time_sec: *//p' "$log" | tail -n1)
  cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
  ft=$(echo "$done_line" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
  if [ "$status" -eq 0 ]; then
    echo "$t: ok, ${runs:-?} executions in ${secs}s, cov ${cov:-?}, ft ${ft:-?}, slowest input ${took:-?}s"
  else
    failed+=("$t")
    echo "$t: FAILED (exit $status) after ${runs:-?} executions; see $log and fuzz/artifacts/$t/"
    grep -E '^(==[0-9]+== ERROR|thread .* panicked|SUMMARY|Test unit written)' "$log" | head -n 5 || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
