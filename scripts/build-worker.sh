#!/usr/bin/env bash
# Builds the edge worker into build/ (index.js + index_bg.wasm) with the pinned toolchain.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
worker-build --release
ls -l build/index_bg.wasm >&2 || true
