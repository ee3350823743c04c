#!/usr/bin/env bash
# Runs the whole system locally: a demo origin, and the edge worker in `wrangler dev` on the real
# wrangler.toml in front of it. Prints a beta and a regular token and curl lines to try.
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

ORIGIN_PORT=${DEMO_ORIGIN_PORT:-8080}
EDGE_PORT=${DEMO_EDGE_PORT:-8787}
DEMO=$ROOT/.demo
mkdir -p "$DEMO"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo stopped" >&2
}
trap cleanup INT TERM EXIT

for port in "$ORIGIN_PORT" "$EDGE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use: stop what uses it, or set DEMO_ORIGIN_PORT / DEMO_EDGE_PORT" >&2
    exit 1
  fi
done

scripts/install.sh
cargo build -q -p betaroute-router
BR=$ROOT/target/debug/betaroute

# A fresh ES256 key pair for this demo; the public JWKS is the edge's JWT_KEYS.
"$BR" keys generate --alg ES256 --kid demo-es256 --private "$DEMO/private.jwk.json" --public "$DEMO/jwks.json"
printf "JWT_KEYS='%s'\n" "$(tr -d '\n ' < "$DEMO/jwks.json")" > "$DEMO/.env"
BETA_TOKEN=$("$BR" token mint --key "$DEMO/private.jwk.json" --sub beta-tester --beta --exp 12h)
REGULAR_TOKEN=$("$BR" token mint --key "$DEMO/private.jwk.json" --sub paying-customer --exp 12h)

setsid node scripts/demo-origin.mjs main "$ORIGIN_PORT" > "$DEMO/origin.log" 2>&1 &
pids+=($!)

echo "starting wrangler dev (it builds the worker first: about 30 s; log in .demo/wrangler.log)" >&2
setsid wrangler dev --ip 127.0.0.1 --port "$EDGE_PORT" --show-interactive-dev-session=false \
  --env-file "$DEMO/.env" --var "ORIGIN_URL:http://127.0.0.1:$ORIGIN_PORT" > "$DEMO/wrangler.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 240); do
  grep -q "Ready on http" "$DEMO/wrangler.log" 2>/dev/null && break
  if ! kill -0 "${pids[1]}" 2>/dev/null; then cat "$DEMO/wrangler.log" >&2; exit 1; fi
  sleep 1
done
grep -q "Ready on http" "$DEMO/wrangler.log" || { cat "$DEMO/wrangler.log" >&2; exit 1; }

EDGE=http://127.0.0.1:$EDGE_PORT
cat <<MSG

betaroute is running:
  edge (wrangler dev)  $EDGE
  demo origin          http://127.0.0.1:$ORIGIN_PORT  (answers JSON echoing the headers it received)

Beta token (sub beta-tester, "beta": true):
  BETA=$BETA_TOKEN

Regular token (sub paying-customer):
  REGULAR=$REGULAR_TOKEN

Try (the origin's answer shows the headers it received):
  # beta token: the origin sees "X-RiksTV-Beta": "true"
  curl -s $EDGE/hello -H "Authorization: Bearer $BETA_TOKEN"
  # regular token: no X-RiksTV-Beta at the origin
  curl -s $EDGE/hello -H "Authorization: Bearer $REGULAR_TOKEN"
  # forged header without a token: removed before the origin
  curl -s $EDGE/hello -H "X-RiksTV-Beta: true" -H "x_rikstv_beta: true"
  # why is this token beta (or not)?
  curl -s $EDGE/_betaroute/api/decision -H "Authorization: Bearer $BETA_TOKEN"
  # the page for testers
  open $EDGE/_betaroute/

Verify a token offline:  target/debug/betaroute token verify --keys .demo/jwks.json "\$BETA"
Edge log (one JSON line per request): .demo/wrangler.log
Press Ctrl-C to stop.
MSG

tail -n 0 -f "$DEMO/wrangler.log" | grep --line-buffered '"betaroute"' &
pids+=($!)
wait "${pids[1]}"
