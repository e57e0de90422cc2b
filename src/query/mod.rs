//! The query service: the questions the API answers ([`Query`]), validated from request parameters
//! ([`params`]), computed by a [`crate::engine::QueryEngine`] ([`plan`]), for aggregates from partials where the
//! rollup covers the snapshot ([`fold`]), and cached per table snapshot
//! ([`service`]).

pub mod answer;
mod fold;
pub mod params;
mod plan;
mod question;
mod service;

pub use self::plan::{Computed, RollupUse};
pub use self::question::{limits, Query, QueryKind, Reading};
pub use self::service::{Answer, CacheStatus, QueryError, QueryService, QueryServiceConfig};
