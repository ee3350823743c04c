#!/usr/bin/env bash
# Runs the whole system locally: a main and a beta backend, the origin router (`betaroute serve`
# with demo/betaroute.toml) in front of them, and the edge worker in `wrangler dev` on the real
# wrangler.toml in front of the router. Prints a beta and a regular token and curl lines to try.
# Ctrl-C stops everything it started.
#
# DEMO_CONSUL=1: the router reads its routing from Consul's catalog instead of demo/dynamic.yaml
# (a fake Consul, scripts/fake_consul.py, on 127.0.0.1:8500; the backends register there with
# Traefik tags, as the streaming team's autoscaling groups do).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"

# Fixed ports (demo/betaroute.toml and demo/dynamic.yaml name them).
MAIN_PORT=9001
BETA_PORT=9002
ROUTER_PORT=8080
ADMIN_PORT=8082
EDGE_PORT=${DEMO_EDGE_PORT:-8787}
CONSUL_PORT=8500
CONSUL_MODE=${DEMO_CONSUL:-}
ROUTER_CONFIG=demo/betaroute.toml
[ -n "$CONSUL_MODE" ] && ROUTER_CONFIG=demo/betaroute-consul.toml
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

ports=("$MAIN_PORT" "$BETA_PORT" "$ROUTER_PORT" "$ADMIN_PORT" "$EDGE_PORT")
[ -n "$CONSUL_MODE" ] && ports+=("$CONSUL_PORT")
for port in "${ports[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use: stop what uses it (the demo needs $MAIN_PORT, $BETA_PORT, $ROUTER_PORT, $ADMIN_PORT and $EDGE_PORT)" >&2
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
# Ten customers without the beta claim, for the percentage rollout (scripts/demo-users.sh).
: > "$DEMO/users.tsv"
for i in $(seq 1 10); do
  printf 'user-%s\t%s\n' "$i" "$("$BR" token mint --key "$DEMO/private.jwk.json" --sub "user-$i" --exp 12h)" >> "$DEMO/users.tsv"
done
# The rollout policy starts at 50 %; it lives in the edge's KV namespace (BETAROUTE_POLICY).
rm -f "$DEMO/rollout.json"
"$BR" rollout --file "$DEMO/rollout.json" set percent 50 2>/dev/null
# The demo's wrangler configuration: the real one with a local KV namespace for the policy, and
# without the [build] section (the worker is built once here, so wrangler dev starts in seconds).
bash scripts/build-worker.sh >"$DEMO/build.log" 2>&1 || { cat "$DEMO/build.log" >&2; exit 1; }
sed -e 's|^main = "build/index.js"|main = "../build/index.js"|' -e 's|^directory = "./www"|directory = "../www"|' \
  -e '/^\[build\]/,/^command/d' wrangler.toml > "$DEMO/wrangler.toml"
cat >> "$DEMO/wrangler.toml" <<'TOML'

[[kv_namespaces]]
binding = "BETAROUTE_POLICY"
id = "betaroute-demo"
TOML
KV_PUT="npx wrangler kv key put policy --binding BETAROUTE_POLICY --local -c .demo/wrangler.toml --path .demo/rollout.json"
(cd "$ROOT" && $KV_PUT >"$DEMO/kv.log" 2>&1) || { cat "$DEMO/kv.log" >&2; exit 1; }

setsid node scripts/demo-origin.mjs main "$MAIN_PORT" > "$DEMO/main.log" 2>&1 &
pids+=($!)
setsid node scripts/demo-origin.mjs beta "$BETA_PORT" > "$DEMO/beta.log" 2>&1 &
pids+=($!)
if [ -n "$CONSUL_MODE" ]; then
  setsid python3 scripts/fake_consul.py --listen "127.0.0.1:$CONSUL_PORT" --no-consul-service > "$DEMO/consul.out" 2> "$DEMO/consul.log" &
  pids+=($!)
  for _ in $(seq 1 50); do grep -q listening "$DEMO/consul.out" 2>/dev/null && break; sleep 0.1; done
  # What each autoscaling group's instances register: the service, its port, a health check
  # and the Traefik tags that route it.
  register() { # id name port rule
    curl -sf -X PUT "http://127.0.0.1:$CONSUL_PORT/v1/agent/service/register" -d "{
      \"ID\": \"$1\", \"Name\": \"$2\", \"Address\": \"127.0.0.1\", \"Port\": $3,
      \"Tags\": [\"traefik.enable=true\", \"traefik.http.routers.$2.rule=$4\"],
      \"Check\": {\"CheckID\": \"service:$1\", \"TTL\": \"24h\", \"Status\": \"passing\"}}" >/dev/null
  }
  register api-main-1 api-main "$MAIN_PORT" 'Host(`localhost`) || Host(`api.example.com`)'
  register api-beta-1 api-beta "$BETA_PORT" '(Host(`localhost`) || Host(`api.example.com`)) \u0026\u0026 Header(`X-RiksTV-Beta`, `true`)'
fi
setsid "$BR" serve --config "$ROUTER_CONFIG" > "$DEMO/router.log" 2>&1 &
pids+=($!)
ROUTER_PID=$!

echo "starting wrangler dev (log in .demo/wrangler.log)" >&2
setsid wrangler dev -c "$DEMO/wrangler.toml" --ip 127.0.0.1 --port "$EDGE_PORT" --show-interactive-dev-session=false \
  --env-file "$DEMO/.env" --var "ORIGIN_URL:http://127.0.0.1:$ROUTER_PORT" --var "POLICY_CACHE_SECONDS:1" --var "CONSOLE_PATH:/hello" > "$DEMO/wrangler.log" 2>&1 &
pids+=($!)
WRANGLER_PID=$!

for _ in $(seq 1 240); do
  grep -q "Ready on http" "$DEMO/wrangler.log" 2>/dev/null && break
  if ! kill -0 "$WRANGLER_PID" 2>/dev/null; then cat "$DEMO/wrangler.log" >&2; exit 1; fi
  if ! kill -0 "$ROUTER_PID" 2>/dev/null; then cat "$DEMO/router.log" >&2; exit 1; fi
  sleep 1
done
grep -q "Ready on http" "$DEMO/wrangler.log" || { cat "$DEMO/wrangler.log" >&2; exit 1; }

EDGE=http://localhost:$EDGE_PORT
ROUTING_FROM="demo/betaroute.toml, demo/dynamic.yaml (edit it: it reloads)"
CONSUL_LINES=""
if [ -n "$CONSUL_MODE" ]; then
  ROUTING_FROM="demo/betaroute-consul.toml: routers from the tags in (fake) Consul at http://127.0.0.1:$CONSUL_PORT"
  CONSUL_LINES="
Consul mode: routing follows the catalog at once.
  # what Consul holds, and what the router made of it (Traefik's API)
  curl -s http://127.0.0.1:$CONSUL_PORT/v1/catalog/services
  curl -s http://127.0.0.1:$ADMIN_PORT/api/http/routers
  # the beta instance's health check fails (beta users land on main), then passes again
  curl -s -X PUT http://127.0.0.1:$CONSUL_PORT/v1/agent/check/fail/service:api-beta-1
  curl -s -X PUT http://127.0.0.1:$CONSUL_PORT/v1/agent/check/pass/service:api-beta-1
  # the beta group scales in to nothing: beta users land on main, nothing fails
  curl -s -X PUT http://127.0.0.1:$CONSUL_PORT/v1/agent/service/deregister/api-beta-1
  # provider health (up, last change, errors)
  curl -s http://127.0.0.1:$ADMIN_PORT/api/providers
  # the kill switch in Consul KV (cohortsKey): every replica sends beta users to main
  curl -s -X PUT http://127.0.0.1:$CONSUL_PORT/v1/kv/betaroute/cohorts/beta/enabled -d false
  curl -s -X DELETE http://127.0.0.1:$CONSUL_PORT/v1/kv/betaroute/cohorts/beta/enabled
"
fi
cat <<MSG

betaroute is running:
  edge (wrangler dev)        $EDGE
  origin router (betaroute)  http://127.0.0.1:$ROUTER_PORT   config: $ROUTING_FROM
  router admin               http://127.0.0.1:$ADMIN_PORT/metrics  /api/http/routers  /api/http/services  /api/overview
  backends                   main http://127.0.0.1:$MAIN_PORT   beta http://127.0.0.1:$BETA_PORT
                             (each answers JSON naming itself and echoing the headers it received)

Beta token (sub beta-tester, "beta": true):
  BETA=$BETA_TOKEN

Regular token (sub paying-customer):
  REGULAR=$REGULAR_TOKEN

Try it:
  # beta token: answered by "server": "beta", which received "X-RiksTV-Beta": "true"
  curl -s $EDGE/hello -H "Authorization: Bearer $BETA_TOKEN"
  # regular token: answered by "server": "main", no X-RiksTV-Beta
  curl -s $EDGE/hello -H "Authorization: Bearer $REGULAR_TOKEN"
  # forged header without a token: removed at the edge, answered by main
  curl -s $EDGE/hello -H "X-RiksTV-Beta: true" -H "x_rikstv_beta: true"
  # why is this token beta (or not)?
  curl -s $EDGE/_betaroute/api/decision -H "Authorization: Bearer $BETA_TOKEN"
  # the tester console: am I beta and why (paste \$BETA), and Compare: /hello as you and as an
  # anonymous user, which pool answered each (X-BetaRoute-Served-By) and how fast
  open $EDGE/_betaroute/
  # beta and main side by side: request counts and latency histograms by cohort
  curl -s http://127.0.0.1:$ADMIN_PORT/metrics | grep cohort
  # the judge: beta against main, a verdict every 10 s (send some traffic first: scripts/demo-users.sh)
  open http://127.0.0.1:$ADMIN_PORT/dashboard
  target/debug/betaroute compare --admin http://127.0.0.1:$ADMIN_PORT
  # TLS and HTTP/2 (ALPN) straight to the router, on its plain port too: "server": "main"
  curl -sk --http2 -w ' (HTTP/%{http_version})\n' https://localhost:$ROUTER_PORT/hello
  # which router would take a request, without sending it
  target/debug/betaroute route explain --config demo/betaroute.toml -H "X-RiksTV-Beta: true" http://localhost/hello

Rollout (the policy in .demo/rollout.json, published to the edge's local KV; edges read it within 1 s here):
  # 50 % of the ten demo customers are on beta, by a sticky hash of their subject (no beta claim)
  scripts/demo-users.sh $EDGE
  # 20 %: only users already in beta stay, none joins
  target/debug/betaroute rollout --file .demo/rollout.json set percent 20 && $KV_PUT
  # the kill switch at the edge: nobody is beta (the beta tester too), without a deploy
  target/debug/betaroute rollout --file .demo/rollout.json kill && $KV_PUT
  curl -s $EDGE/_betaroute/api/decision -H "Authorization: Bearer $BETA_TOKEN"
  # and back on
  target/debug/betaroute rollout --file .demo/rollout.json resume && $KV_PUT
  # the kill switch at the router, this replica, at once (the token is demo/admin-token)
  curl -s -X PUT http://127.0.0.1:$ADMIN_PORT/api/cohorts/beta -H "Authorization: Bearer \$(cat demo/admin-token)" -d '{"enabled": false}'
  curl -s -X DELETE http://127.0.0.1:$ADMIN_PORT/api/cohorts/beta -H "Authorization: Bearer \$(cat demo/admin-token)"
$CONSUL_LINES
Verify a token offline:  target/debug/betaroute token verify --keys .demo/jwks.json "\$BETA"
Logs: .demo/wrangler.log (edge, one JSON line per request), .demo/access.log (router), .demo/router.log
Press Ctrl-C to stop.
MSG

tail -n 0 -f "$DEMO/wrangler.log" | grep --line-buffered '"betaroute"' &
pids+=($!)
wait "$WRANGLER_PID"
