#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60): the rule parser, the token verification
# path, the JWKS parser, the router's configuration readers, the Consul tags build and the
# rollout policy with its patterns. A crash in one target does not
# stop the others: every target runs, and the crashes are listed at the end (exit 1 if any).
# Crashes land in fuzz/artifacts/TARGET/; the inputs libFuzzer finds interesting accumulate in
# fuzz/corpus/ (not committed), seeded from the small committed corpus in fuzz/seeds/.
# FUZZ_TARGETS="token jwks" picks targets.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
SECONDS_PER_TARGET=${1:-60}
TARGETS=${FUZZ_TARGETS:-rule_parser token jwks router_config consul_tags rollout}
CARGO_FUZZ_VERSION=0.13.2

if [ "$("$BETAROUTE_TOOLS/bin/cargo-fuzz" --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$BETAROUTE_TOOLS" --force || exit 2
fi
# cargo fuzz passes nightly-only flags (-Zsanitizer=address); the stable compiler accepts them
# with RUSTC_BOOTSTRAP. libFuzzer itself is C++, built by the libfuzzer-sys crate.
export RUSTC_BOOTSTRAP=1
cd "$ROOT/fuzz" || exit 2
failed=()
for target in $TARGETS; do
  mkdir -p "corpus/$target" "artifacts/$target"
  echo "==> fuzz $target for ${SECONDS_PER_TARGET}s" >&2
  log="artifacts/$target/last-run.log"
  # -fork keeps fuzzing past a crash (each crash is saved), so one bug does not hide the next.
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -rss_limit_mb=2048 \
    -fork=1 -ignore_crashes=1 -artifact_prefix="artifacts/$target/" > "$log" 2>&1
  status=$?
  grep -a -E "^error|INFO: fuzzed|ERROR|==[0-9]+==|Done" "$log" | tail -20 >&2
  # Fork mode reports progress as "#RUNS: cov: ..."; the last one is the total.
  runs=$(grep -a -oE "^#[0-9]+" "$log" | tail -1 | tr -d '#')
  crashes=$(find "artifacts/$target" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \) | sort)
  echo "==> $target: ${runs:-?} runs; crashes: ${crashes:-none}" >&2
  [ -n "$crashes" ] && failed+=("$target: $crashes")
  # A target that did not build or run is a failure too, not "no crashes".
  [ -z "$crashes" ] && { [ "$status" -ne 0 ] || [ -z "$runs" ]; } && failed+=("$target: did not run (exit $status), see $log")
done
echo >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzzing: no crashes in $TARGETS" >&2
