//! Traefik's response-side forwardAuth cases (`cases/forwardAuth.json`) run against the pure
//! logic.
