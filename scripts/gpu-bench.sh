#!/usr/bin/env bash
# One command for a machine with a hardware GPU (issue 11): builds `mnfn` in release, then runs
# `mnfn info`, `mnfn bench --backend both --profile`, `mnfn check-golden --backend gpu` on every
# golden in tests/goldens and a short `mnfn predict-gen --backend gpu`, and writes one markdown
# report with the machine (adapter, CPU model and ISA), each step's output and pass/fail.
# Within 10 minutes on a discrete GPU; on lavapipe (software Vulkan, correctness only) set
# MNFN_GPU_BENCH_QUICK=1 for settings small enough to finish in a few minutes.
#
# Usage: scripts/gpu-bench.sh [REPORT.md]   (default gpu-bench-report.md)
# Environment: MNFN_GPU_BENCH_QUICK=1 shrinks every setting; MNFN_BIN=path uses that binary
# instead of building one; CARGO_TARGET_DIR is honoured.
# Exit status: 0 when every step passed, 1 otherwise (the report is written either way).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

report=${1:-gpu-bench-report.md}
case $report in /*) ;; *) report="$root/$report" ;; esac

if [[ ${MNFN_GPU_BENCH_QUICK:-0} == 1 ]]; then
  mode="quick (MNFN_GPU_BENCH_QUICK=1)"
  bench_args=(--batches 2 --seconds 0.2)
  predict_args=(--generate 20 --epochs 1 --models monomial)
else
  mode="full"
  bench_args=(--batches 8,64,256 --seconds 2)
  predict_args=(--generate 200 --epochs 5 --models monomial,hnp)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

summary=""
details=""
failed=0

# step NAME COMMAND...: runs COMMAND, records its exit status, time and output.
step() {
  local name=$1
  shift
  # The command as shown: `mnfn` for the binary's path, long golden lists cut short.
  local shown="$*"
  shown=${shown//"$mnfn"/mnfn}
  ((${#shown} > 160)) && shown="${shown:0:160} ..."
  echo "== $name: $shown" >&2
  local t0=$SECONDS status
  "$@" >"$work/out" 2>&1
  status=$?
  local secs=$((SECONDS - t0)) result=pass
  if ((status != 0)); then
    result="FAIL (exit $status)"
    failed=1
  fi
  echo "   $result in ${secs} s" >&2
  summary+="| $name | $result | $secs |"$'\n'
  details+=$'\n'"## $name"$'\n\n'"\`$shown\` ($result, $secs s)"$'\n\n'"\`\`\`"$'\n'
  details+="$(cat "$work/out")"$'\n'"\`\`\`"$'\n'
  return "$status"
}

if [[ -n ${MNFN_BIN:-} ]]; then
  mnfn=$MNFN_BIN
  step "build" "$mnfn" --version
else
  target=${CARGO_TARGET_DIR:-target}
  case $target in /*) ;; *) target="$root/$target" ;; esac
  mnfn="$target/release/mnfn"
  step "build" cargo build --release --quiet
fi

if ((failed == 0)); then
  step "mnfn info" "$mnfn" info
  step "mnfn bench" "$mnfn" bench --backend both --profile "${bench_args[@]}"
  step "mnfn check-golden" "$mnfn" check-golden --backend gpu tests/goldens/*.safetensors
  step "mnfn predict-gen" "$mnfn" predict-gen --backend gpu "${predict_args[@]}" \
    --cache "$work/cache" --out "$work/predict-gen"
fi

cpu_model=$(grep -m1 -E '^(model name|Model|Hardware)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- |
  sed 's/^ *//')
isa=$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | tr ' ' '\n' |
  grep -E '^(sse4_2|avx|avx2|fma|f16c|avx512[a-z_0-9]*|amx[a-z_0-9]*|neon|asimd|sve[0-9]*)$' |
  sort -u | tr '\n' ' ')
adapter=$("$mnfn" info 2>/dev/null | sed -n 's/^chosen: //p')
# The checkout's commit, marked when it has uncommitted changes or when the binary came from
# elsewhere (MNFN_BIN): then the numbers are that binary's, whatever the checkout holds.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit+=" with uncommitted changes"
[[ -n ${MNFN_BIN:-} ]] && commit+=" (the checkout's; the binary run is MNFN_BIN=$MNFN_BIN)"

{
  echo "# GPU benchmark report"
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "- commit: $commit"
  echo "- adapter: ${adapter:-none found}"
  echo "- CPU: ${cpu_model:-unknown} ($(nproc 2>/dev/null || echo '?') threads)"
  echo "- ISA: ${isa:-unknown}"
  echo "- settings: $mode"
  echo
  echo "Numbers from a software adapter (lavapipe, llvmpipe) show correctness only, not speed."
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---|"
  printf '%s' "$summary"
  printf '%s' "$details"
} >"$report"
echo "report: $report" >&2
exit "$failed"
