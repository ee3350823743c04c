// The peer for the edge benchmark: a JavaScript worker doing betaroute's job with `jose`
// (verify the JWT against a local JWKS, strip the routing header, set it for beta, forward).
import { createLocalJWKSet, jwtVerify } from "jose";

let keySet;
export default {
  async fetch(request, env) {
    keySet ??= createLocalJWKSet(JSON.parse(env.JWT_KEYS));
    const headers = new Headers(request.headers);
    headers.delete("x-rikstv-beta");
    const auth = request.headers.get("authorization") ?? "";
    if (auth.startsWith("Bearer ")) {
      try {
        const { payload } = await jwtVerify(auth.slice(7), keySet, { clockTolerance: 60 });
        if (payload.beta) headers.set("x-rikstv-beta", "true");
      } catch {
        // A bad token never breaks the request.
      }
    }
    const url = new URL(request.url);
    return fetch(env.ORIGIN_URL + url.pathname + url.search, { method: request.method, headers, body: request.body, redirect: "manual" });
  },
};
