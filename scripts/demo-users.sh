#!/usr/bin/env bash
# For the demo: sends one request per demo user (tokens in .demo/users.tsv, written by
# scripts/demo.sh) through the edge and prints which pool answered each, with the user's rollout
# bucket, then the count per pool. Usage: scripts/demo-users.sh [EDGE_URL]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EDGE=${1:-http://localhost:8787}
BR=$ROOT/target/debug/betaroute
POLICY=$ROOT/.demo/rollout.json
declare -A count=()
while IFS=$'\t' read -r sub token; do
  served=$(curl -s "$EDGE/hello" -H "Authorization: Bearer $token" | grep -o '"server": *"[a-z]*"' | grep -o '"[a-z]*"$' | tr -d '"')
  bucket=$("$BR" rollout --file "$POLICY" bucket "$sub" 2>/dev/null)
  printf '%-8s rollout bucket %4s  ->  %s\n' "$sub" "$bucket" "${served:-?}"
  count[${served:-?}]=$(( ${count[${served:-?}]:-0} + 1 ))
done < "$ROOT/.demo/users.tsv"
for pool in "${!count[@]}"; do printf '%s: %s of %s users\n' "$pool" "${count[$pool]}" "$(wc -l < "$ROOT/.demo/users.tsv")"; done
