//! Traefik's cases for `errors`, `buffering` and the circuit breaker's states
//! (`cases/errors.json`, `cases/buffering.json`, `cases/circuitBreaker.json`) run against the
//! pure logic.
