// The whole edge suite again with LOG_REQUESTS=false: without a request log the edge hands the
// origin's fetch promise straight back (no continuation), a different code path to cover.
process.env.BETAROUTE_TEST_LOG_REQUESTS = "false";
await import("./edge.test.mjs");
await import("./streaming.test.mjs");
