#!/usr/bin/env bash
# Installs everything betaroute needs to build, run and test, skipping what is already present at
# the pinned version. Safe to run again and again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

say() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

installed_version() { # crate binary -> prints installed version or nothing
  "$BETAROUTE_TOOLS/bin/$2" --version 2>/dev/null | awk '{print $NF}' || true
}

if [ "$(installed_version worker-build worker-build)" != "$WORKER_BUILD_VERSION" ]; then
  say "cargo install worker-build $WORKER_BUILD_VERSION (about 7 minutes on 2 cores)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --root "$BETAROUTE_TOOLS" --force
fi
if [ "$(installed_version wasm-bindgen-cli wasm-bindgen)" != "$WASM_BINDGEN_VERSION" ]; then
  # Not --locked: a locked dependency version is missing from the registry mirror (TOOLCHAIN.md).
  say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 5 minutes)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --root "$BETAROUTE_TOOLS" --force
fi

# npm ci only when node_modules does not match the lockfile.
stamp="$ROOT/node_modules/.betaroute-lock"
if [ ! -f "$stamp" ] || ! cmp -s "$ROOT/package-lock.json" "$stamp"; then
  say "npm ci"
  npm ci --no-audit --no-fund
  cp "$ROOT/package-lock.json" "$stamp"
fi

# scipy, for the statistics' reference values (scripts/stats_reference.py --check in test.sh).
SCIPY_VERSION=1.17.1
if [ "$(python3 -c 'import scipy; print(scipy.__version__)' 2>/dev/null)" != "$SCIPY_VERSION" ]; then
  say "pip install scipy $SCIPY_VERSION (a wheel, under a minute)"
  python3 -m pip install --user --quiet "scipy==$SCIPY_VERSION" 2>&1 | grep -v "running pip as the 'root' user" >&2 || true
  python3 -c 'import scipy' || { echo "scipy did not install" >&2; exit 1; }
fi

# Debian's chromium, which tests/dashboard.test.mjs drives through playwright-core (no browser
# download: `playwright install` cannot work offline).
if ! command -v chromium >/dev/null 2>&1; then
  say "apt-get install chromium (about a minute)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Debian's prometheus, which crates/router/tests/fleet.rs runs scraping two router replicas for
# `betaroute compare --prometheus` (about 10 s; nothing is started as a service here).
if ! command -v prometheus >/dev/null 2>&1; then
  say "apt-get install prometheus (about 10 s)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Debian's nghttp2-client: h2load for the HTTP/2 tests and benchmark rows (a few seconds).
if ! command -v h2load >/dev/null 2>&1; then
  say "apt-get install nghttp2-client (a few seconds)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nghttp2-client >/dev/null
fi

# PyPI's grpcio: the real gRPC server and client of crates/router/tests/grpc.rs (a wheel, seconds).
GRPCIO_VERSION=1.85.3
if [ "$(python3 -c 'import grpc; print(grpc.__version__)' 2>/dev/null)" != "$GRPCIO_VERSION" ]; then
  say "pip install grpcio $GRPCIO_VERSION (a wheel, seconds)"
  python3 -m pip install --user --quiet "grpcio==$GRPCIO_VERSION" 2>&1 | grep -v "running pip as the 'root' user" >&2 || true
  python3 -c 'import grpc' || { echo "grpcio did not install" >&2; exit 1; }
fi

# PyPI's sonora: the real gRPC-Web client of crates/router/tests/grpc_web.rs (pure Python). Its
# synchronous client needs only grpcio and urllib3 (the image has urllib3 2.x; the client works
# with it), so --no-deps keeps its aiohttp (asyncio client, unused) and its urllib3<2 pin out.
SONORA_VERSION=0.2.3
if [ "$(python3 -c 'from importlib.metadata import version; print(version("sonora"))' 2>/dev/null)" != "$SONORA_VERSION" ]; then
  say "pip install sonora $SONORA_VERSION (pure Python, seconds)"
  python3 -c 'import urllib3' 2>/dev/null || python3 -m pip install --user --quiet "urllib3==2.7.0" 2>&1 | grep -vi "running pip as the 'root' user" >&2 || true
  python3 -m pip install --user --quiet --no-deps "sonora==$SONORA_VERSION" 2>&1 | grep -vi "running pip as the 'root' user" >&2 || true
  python3 -c 'import sonora.client' || { echo "sonora did not install" >&2; exit 1; }
fi
