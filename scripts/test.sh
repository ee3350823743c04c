#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests, the wasm32 build of the core, the worker
# build, and the tests in tests/ that run the built worker in workerd (Miniflare) and the real
# `wrangler dev` against real servers on loopback. Installs what is missing first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }

step "install pinned tools (skipped when present)"
scripts/install.sh

step "the fake Consul the router's Consul tests run against"
python3 scripts/test_fake_consul.py

step "the statistics' reference values are what scipy computes"
python3 scripts/stats_reference.py --check

step "cargo test --workspace"
cargo test --workspace

step "core builds for wasm32 with every algorithm"
cargo build -p betaroute-core --target wasm32-unknown-unknown --all-features

step "betaroute CLI (used by the tests below)"
cargo build -p betaroute-router

step "edge worker build (worker-build --release)"
scripts/build-worker.sh
printf 'edge wasm: %s bytes, %s bytes gzip -9\n' "$(wc -c < build/index_bg.wasm)" "$(gzip -9 -c build/index_bg.wasm | wc -c)" >&2

step "edge tests in workerd and wrangler dev"
node --test tests/*.test.mjs
