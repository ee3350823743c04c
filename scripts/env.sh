# Sourced by the other scripts: where betaroute's pinned tools live and how to find them.
# Tools are installed once per machine into a cache the project owns (outside the work tree, so
# fresh clones and CI on the same machine reuse them); override with BETAROUTE_TOOLS.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BETAROUTE_TOOLS=${BETAROUTE_TOOLS:-$HOME/.cache/betaroute/tools}

# Pinned versions. WASM_BINDGEN_VERSION must equal the wasm-bindgen pin in Cargo.toml.
WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130

export PATH="$BETAROUTE_TOOLS/bin:$HOME/.cargo/bin:$ROOT/node_modules/.bin:$PATH"
# worker-build never looks at PATH: without these it tries to download from GitHub (TOOLCHAIN.md).
export WASM_BINDGEN_BIN="$BETAROUTE_TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/binaryen/bin/wasm-opt"
if [ -x "$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild" ]; then
  export ESBUILD_BIN="$ROOT/node_modules/@esbuild/linux-x64/bin/esbuild"
fi
export WRANGLER_SEND_METRICS=false
export CLOUDFLARE_CF_FETCH_ENABLED=false
export XDG_CONFIG_HOME=${XDG_CONFIG_HOME:-$HOME/.config}
# A backtrace on every worker-build message is noise.
unset RUST_BACKTRACE
