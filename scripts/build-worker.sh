#!/usr/bin/env bash
# Builds the edge worker into build/ (index.js + index_bg.wasm) with the pinned toolchain:
# worker-build (cargo, wasm-bindgen, esbuild), then wasm-opt -O. worker-build's own wasm-opt step
# is off (Cargo.toml's package.metadata): it always passes --debuginfo, which keeps the function
# names section, 30 KB of a bundle capped at 200 KB gzip. BETAROUTE_WASM_NAMES=1 keeps the names
# (traces then name wasm functions) for debugging.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
worker-build --release
names=()
[ "${BETAROUTE_WASM_NAMES:-}" = 1 ] && names=(--debuginfo)
# The features worker-build enables for wasm-opt, so nothing newer than workerd reads is emitted.
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.opt.wasm -O \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int \
  --enable-bulk-memory --enable-multivalue --enable-reference-types --enable-exception-handling \
  "${names[@]}"
mv build/index_bg.opt.wasm build/index_bg.wasm
ls -l build/index_bg.wasm >&2 || true
