#!/usr/bin/env bash
# Benchmarks, each figure against a peer measured in the same run on the same machine:
#   1. edge bundle size (wasm and JS, raw and gzip), every algorithm enabled;
#   2. core, native and wasm: token verification per algorithm (and WebCrypto's), rule table
#      matching with 10 / 1,000 / 10,000 routers, and compiling 10,000;
#   3. origin router vs NGINX and HAProxy (Debian packages) doing the same job: header
#      X-RiksTV-Beta: true to one pool, everything else to another, keep-alive to the backend on
#      all three, the same NGINX backend, the same load; plus direct-to-backend for the floor;
#      then HTTP/2 (h2c), TLS termination (handshakes, HTTP/2 and HTTP/1.1 over TLS) and
#      WebSocket echo rows against NGINX;
#   4. the edge worker in workerd against a pass-through JS worker and a JS worker doing the same
#      job with `jose`, with no token and HS256/RS256/ES256/EdDSA tokens;
#   5. (restart) failed requests while one of two keep-alive backends is stopped and started
#      again mid-run, betaroute against NGINX (proxy_next_upstream's default).
# Usage: scripts/bench.sh [SECONDS_PER_RUN] (default 8). BENCH_ONLY="router edge" (any of bundle,
# core, router, edge, restart) runs only those sections. Needs 2+ cores: the load generator (wrk) and the
# backend on core 0, the proxy or workerd under test alone on core 1 (one worker each).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
DURATION=${1:-8}
ONLY=${BENCH_ONLY:-bundle core router edge restart}
want() { [[ " $ONLY " == *" $1 "* ]]; }
CONNS=32
WORK=$(mktemp -d)
# Every step may find nothing to stop; under set -e a failing one would end the trap (and the
# script) with status 1 after a successful run.
trap 'for p in $WORK/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done; pkill -f "betaroute serve --config $WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT

need=()
for tool in wrk nginx haproxy; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]/nginx/nginx-light}" >/dev/null
fi
scripts/install.sh >/dev/null

echo "# betaroute benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo

backend() {
cat > "$WORK/backend.conf" <<CONF
# Pinned to core 0 with the load generator, so the proxy under test has core 1 to itself and
# is what limits throughput (the direct run shows core 0 has room to spare).
worker_processes 1; worker_cpu_affinity 01; pid $WORK/backend.pid; error_log $WORK/backend-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:9401; location / { default_type application/json; return 200 '{"server":"backend","ok":true}'; } } }
CONF
nginx -c "$WORK/backend.conf"
}

section_bundle() {
echo "## 1. Edge bundle (every algorithm: HMAC in Rust, RSA/ECDSA/EdDSA via WebCrypto)"
scripts/build-worker.sh >/dev/null 2>&1
printf '| file | raw bytes | gzip -9 bytes |\n|---|---|---|\n'
for f in build/index_bg.wasm build/index.js; do
  printf '| %s | %s | %s |\n' "$f" "$(wc -c < "$f")" "$(gzip -9 -c "$f" | wc -c)"
done
echo "goal: wasm at most 200 KB gzip"
echo
}

section_core() {
echo "## 2. Core, native and wasm (wasm32-wasip1 under Node's V8, the engine workerd embeds)"
rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1 >/dev/null
cargo build -q --release -p betaroute-router
cargo build -q --release -p betaroute-core --example corebench
cargo build -q --release --target wasm32-wasip1 -p betaroute-core --example corebench
local vec="$WORK/vectors"; mkdir -p "$vec"
for alg in HS256 HS384 HS512 RS256 RS384 RS512 PS256 ES256 EdDSA; do
  target/release/betaroute keys generate --alg "$alg" --kid "k-$alg" --private "$vec/$alg.key" --public "$vec/$alg.jwks.json" >/dev/null
  target/release/betaroute token mint --key "$vec/$alg.key" --beta --exp 1h > "$vec/$alg.token"
done
target/release/examples/corebench "$vec" | sed 's/^/native /' > "$WORK/core.txt"
node --no-warnings bench/wasi.mjs target/wasm32-wasip1/release/examples/corebench.wasm "$vec" | sed 's/^/wasm /' >> "$WORK/core.txt"
node bench/webcrypto.mjs "$vec" >> "$WORK/core.txt"
echo
echo "Token verification (signature + claims), µs per token:"
echo
printf '| alg | native | wasm | wasm / native | WebCrypto (Node) |\n|---|---|---|---|---|\n'
for alg in HS256 HS384 HS512 RS256 RS384 RS512 PS256 ES256 EdDSA; do
  awk -v alg="$alg" '
    $1 == "native" && $2 == "verify" && $3 == alg {n = $4}
    $1 == "wasm" && $2 == "verify" && $3 == alg {w = $4}
    $1 == "webcrypto" && $2 == alg {c = $3}
    END {printf "| %s | %.1f | %.1f | %.1fx | %s |\n", alg, n/1000, w/1000, w/n, c ? sprintf("%.1f", c/1000) : "-"}' "$WORK/core.txt"
done
echo
echo "The edge checks HMAC in wasm (the column above) and hands RSA, ECDSA and EdDSA to workerd's"
echo "WebCrypto, which runs natively in-thread; Node's WebCrypto runs each check on its thread pool,"
echo "so its column overstates the cost. Native RSA uses the rsa crate (num-bigint-dig Montgomery"
echo "multiplication is most of it), which only the CLI uses."
echo
echo "Rule table, ns per lookup:"
echo
printf '| routers | native | wasm |\n|---|---|---|\n'
for n in 10 1000 10000; do
  awk -v n="$n" '$2 == "lookup" && $3 == n {v[$1] = $4} END {printf "| %s | %.1f | %.1f |\n", n, v["native"], v["wasm"]}' "$WORK/core.txt"
done
awk '$2 == "lookup" && $3 == 10 {a[$1] = $4} $2 == "lookup" && $3 == 10000 {b[$1] = $4} $2 == "compile10000" {c[$1] = $3}
  END {printf "\nratio 10,000 / 10 routers: native %.2f, wasm %.2f (goal: at most 2.00)\ncompile 10,000 routers (parse + index): native %.1f ms, wasm %.1f ms\n", b["native"]/a["native"], b["wasm"]/a["wasm"], c["native"], c["wasm"]}' "$WORK/core.txt"
echo
}

section_router() {
echo "## 3. Origin router vs NGINX and HAProxy (wrk -t1 -c$CONNS -d${DURATION}s, X-RiksTV-Beta: true)"
cargo build -q --release -p betaroute-router
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1; worker_cpu_affinity 10; pid $WORK/nginx.pid; error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream main { server 127.0.0.1:9401; keepalive 64; keepalive_requests 1000000; }
  upstream beta { server 127.0.0.1:9401; keepalive 64; keepalive_requests 1000000; }
  map \$http_x_rikstv_beta \$pool { default main; "true" beta; }
  server { listen 127.0.0.1:9402; location / { proxy_pass http://\$pool; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
  # The typical chain (headers + stripPrefix + rateLimit + basicAuth), as NGINX writes it.
  limit_req_zone \$binary_remote_addr zone=chain:1m rate=1000000r/s;
  server { listen 127.0.0.1:9406;
    location /api/ { auth_basic "bench"; auth_basic_user_file $WORK/htpasswd; limit_req zone=chain burst=1000000 nodelay;
      add_header X-Frame-Options DENY; add_header X-Content-Type-Options nosniff; add_header X-Custom-Response yes;
      proxy_set_header X-Script-Name bench; rewrite ^/api(/.*)\$ \$1 break;
      proxy_pass http://\$pool; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
  # HTTP/2 with prior knowledge (h2c) to clients, HTTP/1.1 to the backend, as betaroute does.
  server { listen 127.0.0.1:9407 http2; location / { proxy_pass http://\$pool; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
  # TLS termination (TLS 1.3, P-256 certificate, ALPN h2 and http/1.1), the same routing.
  server { listen 127.0.0.1:9408 ssl http2; ssl_certificate $WORK/tls.pem; ssl_certificate_key $WORK/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache off; ssl_session_tickets off;
    location / { proxy_pass http://\$pool; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } }
  # WebSocket, as NGINX's documentation proxies it (proxy_http_version 1.1, the Upgrade map).
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server { listen 127.0.0.1:9409; location / { proxy_pass http://127.0.0.1:9410; proxy_http_version 1.1;
    proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade; proxy_read_timeout 1h; } } }
CONF
# One certificate for both (P-256, for api.example.com and 127.0.0.1).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/tls.key" -out "$WORK/tls.pem" \
  -subj /CN=api.example.com -addext "subjectAltName=DNS:api.example.com,IP:127.0.0.1" -days 2 2>/dev/null
# bench:bench, {SHA} for both: the comparison is of the chain, not of password hashing (NGINX
# would run MD5-crypt or bcrypt on every request; betaroute remembers verified credentials).
echo 'bench:{SHA}5cicUp3MubQnFvTZEY1hB5yIPZ4=' > "$WORK/htpasswd"
cat > "$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
  cpu-map 1/1 1
  pidfile $WORK/haproxy.pid
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend web
  bind 127.0.0.1:9403
  acl is_beta req.hdr(x-rikstv-beta) -m str true
  use_backend beta if is_beta
  default_backend main
backend main
  http-reuse always
  server b1 127.0.0.1:9401
backend beta
  http-reuse always
  server b1 127.0.0.1:9401
CONF
cat > "$WORK/betaroute.toml" <<CONF
[entryPoints.web]
address = "127.0.0.1:9404"
[providers.file]
filename = "dynamic.yaml"
[admin]
address = "127.0.0.1:9405"
CONF
cat > "$WORK/dynamic.yaml" <<'CONF'
http:
  routers:
    main: {rule: "Host(`api.example.com`)", service: main}
    beta: {rule: "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: beta}
    chain: {rule: "Host(`chain.example.com`)", service: beta, middlewares: [hdr, strip, limit, auth]}
    ws: {rule: "PathPrefix(`/ws`)", service: ws}
    main-tls: {rule: "Host(`api.example.com`)", service: main, tls: {}}
    beta-tls: {rule: "Host(`api.example.com`) && Header(`X-RiksTV-Beta`, `true`)", service: beta, tls: {}}
  middlewares:
    hdr: {headers: {frameDeny: true, contentTypeNosniff: true, customRequestHeaders: {X-Script-Name: bench}, customResponseHeaders: {X-Custom-Response: "yes"}}}
    strip: {stripPrefix: {prefixes: [/api]}}
    limit: {rateLimit: {average: 1000000, burst: 1000000}}
    auth: {basicAuth: {users: ["bench:{SHA}5cicUp3MubQnFvTZEY1hB5yIPZ4="]}}
  services:
    main: {loadBalancer: {servers: [{url: "http://127.0.0.1:9401"}]}}
    beta: {loadBalancer: {servers: [{url: "http://127.0.0.1:9401"}]}}
    ws: {loadBalancer: {servers: [{url: "http://127.0.0.1:9410"}]}}
CONF
# TLS on the same port (betaroute tells TLS from plain HTTP by the first byte, as Traefik).
cat >> "$WORK/dynamic.yaml" <<CONF
tls:
  certificates: [{certFile: "$WORK/tls.pem", keyFile: "$WORK/tls.key"}]
  options: {default: {disableSessionTickets: true}}
CONF
nginx -c "$WORK/nginx.conf"
haproxy -D -f "$WORK/haproxy.cfg"
taskset -c 1 target/release/betaroute serve --config "$WORK/betaroute.toml" --threads 1 > /dev/null 2>&1 &
echo $! > "$WORK/betaroute.pid"
sleep 1
worker_of() { pgrep -P "$(cat "$1")" | head -1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

once() { # PORT PID [PATH [HOST]] -> "rps p50_ms p99_ms cpu_us_per_request" for one wrk run
  local port=$1 pid=$2 path=${3:-/} host=${4:-api.example.com} t0 out t1
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t1 -c$CONNS -d${DURATION}s --latency -H "Host: $host" -H "X-RiksTV-Beta: true" -H "Authorization: Basic YmVuY2g6YmVuY2g=" "http://127.0.0.1:$port$path" 2>/dev/null)
  t1=$(cpu_ticks "$pid")
  echo "$out" | awk -v t0="$t0" -v t1="$t1" -v hz="$(getconf CLK_TCK)" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /requests in/ {n=$1} /Requests\/sec/ {rps=$2} / 50%/ {p50=ms($2)} / 99%/ {p99=ms($2)}
    END {printf "%s %.3f %.3f %.1f\n", rps, p50, p99, (t1-t0)/hz*1e6/n}'
}
medians() { # lines of "rps p50 p99 cpu" on stdin -> the median of each column
  local runs col out=""
  runs=$(cat)
  for col in 1 2 3 4; do out+="$(printf '%s\n' "$runs" | cut -d' ' -f$col | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}') "; done
  echo "$out"
}
# Targets in interleaved rounds: this VM's speed drifts by 20% and more over a few minutes, and a
# target always measured last was measured on a slower machine (seen: betaroute 60k req/s first,
# 49k last, same process).
targets=("direct backend|9401|$(worker_of "$WORK/backend.pid")|/" "NGINX|9402|$(worker_of "$WORK/nginx.pid")|/"
  "HAProxy|9403|$(cat "$WORK/haproxy.pid")|/" "betaroute|9404|$(cat "$WORK/betaroute.pid")|/"
  "hyper alone: betaroute admin /ping, no proxying|9405|$(cat "$WORK/betaroute.pid")|/ping"
  "NGINX, chain (headers, rewrite, limit_req, auth_basic)|9406|$(worker_of "$WORK/nginx.pid")|/api/x|chain.example.com"
  "betaroute, chain (headers, stripPrefix, rateLimit, basicAuth)|9404|$(cat "$WORK/betaroute.pid")|/api/x|chain.example.com")
declare -A runs=()
for _ in 1 2 3; do
  for t in "${targets[@]}"; do
    IFS='|' read -r name port pid path host <<< "$t"
    runs[$name]+="$(once "$port" "$pid" "$path" "$host")"$'\n'
  done
done
read -r n_rps n_p50 n_p99 n_cpu <<< "$(printf '%s' "${runs[NGINX]}" | medians)"
printf '| target | req/s | vs NGINX | p50 ms | p99 ms | p99 vs NGINX | CPU µs/request |\n|---|---|---|---|---|---|---|\n'
for t in "${targets[@]}"; do
  IFS='|' read -r name port pid path <<< "$t"
  read -r rps p50 p99 cpu <<< "$(printf '%s' "${runs[$name]}" | medians)"
  printf '| %s | %.0f | %.2fx | %s | %s | %.2fx | %s |\n' "$name" "$rps" "$(awk -v a="$rps" -v b="$n_rps" 'BEGIN{print a/b}')" "$p50" "$p99" "$(awk -v a="$p99" -v b="$n_p99" 'BEGIN{print a/b}')" "$cpu"
done
echo "(medians of 3 interleaved rounds per column; \"hyper alone\" is betaroute's own admin /ping: hyper serving a constant, the floor of one HTTP/1 exchange, of which a proxy does two)"
read -r nc_rps _ nc_p99 _ <<< "$(printf '%s' "${runs[NGINX, chain (headers, rewrite, limit_req, auth_basic)]}" | medians)"
read -r bc_rps _ bc_p99 _ <<< "$(printf '%s' "${runs[betaroute, chain (headers, stripPrefix, rateLimit, basicAuth)]}" | medians)"
awk -v a="$bc_rps" -v b="$nc_rps" -v c="$bc_p99" -v d="$nc_p99" 'BEGIN {printf "chain: betaroute %.2fx NGINX req/s, p99 %.2fx\n", a/b, c/d}'
echo "goal: betaroute at least NGINX's req/s, p99 no worse (without middlewares and with the chain)"
echo
echo "### HTTP/2 (h2c) to the proxy, HTTP/1.1 to the backend: h2load -c10 -m10 (100 streams over 10 connections) -D${DURATION}s"
h2once() { # PORT -> "rps mean_ms" for one h2load run
  taskset -c 0 h2load -c10 -m10 -t1 -D "$DURATION" -H ':authority: api.example.com' -H 'x-rikstv-beta: true' "http://127.0.0.1:$1/" 2>/dev/null |
    awk '/^finished in/ {rps=$4} /^time for request:/ {m=$6; if (m ~ /us$/) m=m/1000; else if (m ~ /ms$/) m=m+0; else m=m*1000}
      /^status codes:/ {ok=$3} END {printf "%s %.3f %s\n", rps, m, ok}'
}
declare -A h2=()
for _ in 1 2 3; do
  for t in "NGINX (http2)|9407" "betaroute|9404"; do
    IFS='|' read -r name port <<< "$t"
    h2[$name]+="$(h2once "$port")"$'\n'
  done
done
med() { cut -d' ' -f"$1" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
n2=$(printf '%s' "${h2[NGINX (http2)]}" | med 1)
printf '| target | req/s | vs NGINX | mean ms per request | 2xx in the median run |\n|---|---|---|---|---|\n'
for name in "NGINX (http2)" "betaroute"; do
  r=$(printf '%s' "${h2[$name]}" | med 1); m=$(printf '%s' "${h2[$name]}" | med 2)
  ok=$(printf '%s' "${h2[$name]}" | awk -v r="$r" '$1 == r {print $3; exit}')
  printf '| %s | %.0f | %.2fx | %s | %s |\n' "$name" "$r" "$(awk -v a="$r" -v b="$n2" 'BEGIN{print a/b}')" "$m" "$ok"
done
echo "goal: betaroute at least NGINX's HTTP/2 req/s"
echo
echo "### TLS termination (TLS 1.3, ECDSA P-256, no session resumption), HTTP/1.1 to the backend"
# Full handshakes: h2load with as many clients as requests opens a new connection (a full
# handshake, no resumption) for each; 1000 at a time, from one client thread on core 0.
hsonce() { # PORT -> handshakes (each with one request) per second for one run
  taskset -c 0 h2load -n 1000 -c 1000 -m1 -t1 -H ':authority: api.example.com' "https://127.0.0.1:$1/" 2>/dev/null |
    awk '/^finished in/ {print $4 + 0} /^status codes:/ {ok=$3} END {if (ok < 1000) print "short"}' | head -1
}
tlsonce() { # PORT -> "rps mean_ms 2xx" for one h2load run over TLS (ALPN h2)
  taskset -c 0 h2load -c10 -m10 -t1 -D "$DURATION" -H ':authority: api.example.com' -H 'x-rikstv-beta: true' "https://127.0.0.1:$1/" 2>/dev/null |
    awk '/^finished in/ {rps=$4} /^time for request:/ {m=$6; if (m ~ /us$/) m=m/1000; else if (m ~ /ms$/) m=m+0; else m=m*1000}
      /^status codes:/ {ok=$3} END {printf "%s %.3f %s\n", rps, m, ok}'
}
tls1once() { # PORT -> req/s for one wrk run over TLS (HTTP/1.1 keep-alive)
  taskset -c 0 wrk -t1 -c$CONNS -d${DURATION}s -H "Host: api.example.com" -H "X-RiksTV-Beta: true" "https://127.0.0.1:$1/" 2>/dev/null |
    awk '/Requests\/sec/ {print $2}'
}
declare -A hs=() tl=() t1=()
for _ in 1 2 3; do
  for t in "NGINX|9408" "betaroute|9404"; do
    IFS='|' read -r name port <<< "$t"
    hs[$name]+="$(hsonce "$port")"$'\n'
    tl[$name]+="$(tlsonce "$port")"$'\n'
    t1[$name]+="$(tls1once "$port")"$'\n'
  done
done
nh=$(printf '%s' "${hs[NGINX]}" | med 1); nt=$(printf '%s' "${tl[NGINX]}" | med 1); n1=$(printf '%s' "${t1[NGINX]}" | med 1)
printf '| target | full handshakes/s | vs NGINX | HTTP/2 over TLS req/s (h2load -c10 -m10) | vs NGINX | 2xx | HTTP/1.1 over TLS req/s (wrk -c%s) | vs NGINX |\n|---|---|---|---|---|---|---|---|\n' "$CONNS"
for name in NGINX betaroute; do
  h=$(printf '%s' "${hs[$name]}" | med 1); r=$(printf '%s' "${tl[$name]}" | med 1); w=$(printf '%s' "${t1[$name]}" | med 1)
  ok=$(printf '%s' "${tl[$name]}" | awk -v r="$r" '$1 == r {print $3; exit}')
  printf '| %s | %.0f | %.2fx | %.0f | %.2fx | %s | %.0f | %.2fx |\n' "$name" "$h" "$(awk -v a="$h" -v b="$nh" 'BEGIN{print a/b}')" \
    "$r" "$(awk -v a="$r" -v b="$nt" 'BEGIN{print a/b}')" "$ok" "$w" "$(awk -v a="$w" -v b="$n1" 'BEGIN{print a/b}')"
done
echo "(medians of 3 interleaved rounds; handshakes: h2load, 1000 clients with one request each, TLS 1.3, no resumption; the client runs on core 0 and does its half of each handshake)"
echo "goal: betaroute at least NGINX's handshakes/s and TLS req/s"
echo
echo "### WebSocket echo (npm ws on core 0: 32 connections, one 64-byte message in flight each, -D${DURATION}s)"
taskset -c 0 node bench/ws.mjs serve 9410 & echo $! > "$WORK/ws.pid"
sleep 1
wsonce() { # PORT PID -> "msgs_per_s p99_ms cpu_us_per_message" (no PID: no CPU figure)
  local t0 out t1
  [ -n "$2" ] && t0=$(cpu_ticks "$2")
  out=$(taskset -c 0 node bench/ws.mjs load "ws://127.0.0.1:$1/ws" "$DURATION" 32 64)
  [ -n "$2" ] && t1=$(cpu_ticks "$2")
  # The CPU figure spans the warm-up second too: per message of the whole run.
  echo "$out" | awk -v t0="${t0:-0}" -v t1="${t1:-0}" -v hz="$(getconf CLK_TCK)" -v d="$DURATION" \
    '{cpu = (t1 > t0) ? (t1 - t0) / hz * 1e6 / ($1 * (d + 1)) : 0; printf "%s %s %.1f\n", $1, $2, cpu}'
}
declare -A wsr=()
ws_targets=("direct echo server|9410|" "NGINX|9409|$(worker_of "$WORK/nginx.pid")" "betaroute|9404|$(cat "$WORK/betaroute.pid")")
for _ in 1 2 3; do
  for t in "${ws_targets[@]}"; do
    IFS='|' read -r name port pid <<< "$t"
    wsr[$name]+="$(wsonce "$port" "$pid")"$'\n'
  done
done
nw=$(printf '%s' "${wsr[NGINX]}" | med 1); dw=$(printf '%s' "${wsr[direct echo server]}" | med 1)
printf '| target | messages/s | vs NGINX | vs direct | p99 ms | proxy CPU µs/message |\n|---|---|---|---|---|---|\n'
for t in "${ws_targets[@]}"; do
  IFS='|' read -r name port pid <<< "$t"
  m=$(printf '%s' "${wsr[$name]}" | med 1); p=$(printf '%s' "${wsr[$name]}" | med 2); c=$(printf '%s' "${wsr[$name]}" | med 3)
  printf '| %s | %.0f | %.2fx | %.2fx | %s | %s |\n' "$name" "$m" "$(awk -v a="$m" -v b="$nw" 'BEGIN{print a/b}')" "$(awk -v a="$m" -v b="$dw" 'BEGIN{print a/b}')" "$p" "$([ -n "$pid" ] && echo "$c" || echo -)"
done
echo "(medians of 3 interleaved rounds; the client and the echo server share core 0, the proxy has core 1)"
echo "goal: betaroute at least NGINX's messages/s"
echo
}

section_edge() {
echo "## 4. Edge through workerd (Miniflare's socket), wrk -t1 -c16 -d${DURATION}s, NGINX origin"
# Miniflare echoes the "+log" worker's log lines: keep the table only.
# workerd (started by Node) on core 1, wrk on core 0 with the backend.
taskset -c 1 node bench/edge.mjs http://127.0.0.1:9401 "$DURATION" | grep -v '^{"'
}

section_restart() {
echo "## 5. A backend stopped and started again mid-run (wrk -t1 -c$CONNS -d${DURATION}s, two keep-alive backends)"
cargo build -q --release -p betaroute-router
for n in 1 2; do
cat > "$WORK/pool$n.conf" <<CONF
worker_processes 1; pid $WORK/pool$n.pid; error_log $WORK/pool$n-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:942$n; location / { default_type application/json; return 200 '{"server":"pool$n"}'; } } }
CONF
nginx -c "$WORK/pool$n.conf"
done
cat > "$WORK/nginx-pool.conf" <<CONF
worker_processes 1; pid $WORK/nginx-pool.pid; error_log $WORK/nginx-pool-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream pool { server 127.0.0.1:9421; server 127.0.0.1:9422; keepalive 64; }
  server { listen 127.0.0.1:9423; location / { proxy_pass http://pool; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
nginx -c "$WORK/nginx-pool.conf"
cat > "$WORK/restart.toml" <<CONF
[entryPoints.web]
address = "127.0.0.1:9424"
[providers.file]
filename = "restart.yaml"
CONF
cat > "$WORK/restart.yaml" <<'CONF'
http:
  routers:
    r: {rule: "Host(`api.example.com`)", service: pool}
  services:
    pool: {loadBalancer: {servers: [{url: "http://127.0.0.1:9421"}, {url: "http://127.0.0.1:9422"}]}}
CONF
target/release/betaroute serve --config "$WORK/restart.toml" --threads 1 > /dev/null 2>&1 &
echo $! > "$WORK/betaroute-restart.pid"
sleep 1
round() { # PORT -> failed requests (non-2xx answers and socket errors) while pool2 restarts
  local port=$1 out
  taskset -c 0 wrk -t1 -c$CONNS -d${DURATION}s -H "Host: api.example.com" "http://127.0.0.1:$port/" > "$WORK/wrk.out" 2>&1 &
  local w=$!
  sleep "$(awk -v d="$DURATION" 'BEGIN{print d/3}')"
  kill -TERM "$(cat "$WORK/pool2.pid")"; sleep "$(awk -v d="$DURATION" 'BEGIN{print d/3}')"
  nginx -c "$WORK/pool2.conf"
  wait "$w"
  out=$(cat "$WORK/wrk.out")
  echo "$out" | awk '/requests in/ {n=$1} /Non-2xx/ {bad+=$NF} /Socket errors/ {gsub(",", ""); bad+=$4+$6+$8+$10} END {printf "%d of %d\n", bad, n}'
}
printf '| proxy | round 1 | round 2 | round 3 |\n|---|---|---|---|\n'
for t in "NGINX (proxy_next_upstream default)|9423" "betaroute|9424"; do
  IFS='|' read -r name port <<< "$t"
  r=()
  for _ in 1 2 3; do r+=("$(round "$port")"); sleep 1; done
  printf '| %s | %s | %s | %s |\n' "$name" "${r[0]}" "${r[1]}" "${r[2]}"
done
echo "failed requests (non-2xx answers plus socket errors) of all requests; goal: betaroute 0 as NGINX"
echo
}

if want router || want edge; then backend; fi
for s in bundle core router edge restart; do
  if want "$s" && declare -F "section_$s" >/dev/null; then "section_$s"; fi
done
