#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60): the rule parser, the token verification
# path, the JWKS parser and the router's configuration loader. Crashes land in fuzz/artifacts/;
# the inputs libFuzzer finds interesting accumulate in fuzz/corpus/ (not committed), seeded from
# the small committed corpus in fuzz/seeds/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
SECONDS_PER_TARGET=${1:-60}
CARGO_FUZZ_VERSION=0.13.2

if [ "$("$BETAROUTE_TOOLS/bin/cargo-fuzz" --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$BETAROUTE_TOOLS" --force
fi
# cargo fuzz passes nightly-only flags (-Zsanitizer=address); the stable compiler accepts them
# with RUSTC_BOOTSTRAP. libFuzzer itself is C++, built by the libfuzzer-sys crate.
export RUSTC_BOOTSTRAP=1
cd "$ROOT/fuzz"
for target in rule_parser token jwks router_config; do
  mkdir -p "corpus/$target"
  echo "==> fuzz $target for ${SECONDS_PER_TARGET}s" >&2
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 -rss_limit_mb=2048
done
