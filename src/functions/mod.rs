//! The Azure Functions custom-handler edge: an axum router that speaks the host's invocation protocol.
//!
//! Routes are the function names (the host POSTs to `/<FunctionName>`), the forwarded HTTP query API
//! (`/api/sentiment/...`, see [`api`]), plus `GET /` for the host's readiness probe and operational endpoints. Error policy, in one place ([`outcome`]):
//! - bad *events* are dead-lettered and the invocation succeeds (Event Hubs checkpoints regardless of the
//!   reply, so a failure would not protect them anyway);
//! - an unreadable *envelope* or unavailable storage answers 500 after logging to stderr, so the
//!   function's retry policy (unbounded, see `functions/IngestEvents/function.json`) holds the partition
//!   until it can be processed: stalling beats losing data.

pub mod api;
pub mod outcome;
pub mod payload;
pub mod routes;
pub mod sizing;

pub use routes::{app, AppState};
