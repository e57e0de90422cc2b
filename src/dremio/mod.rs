//! Dremio over Arrow Flight SQL: the connection ([`FlightSqlClient`]), the statements this crate sends
//! ([`sql`]), and the settings both need.
//!
//! Every statement goes as a Flight SQL `CommandStatementQuery`: Dremio (25.x, CE 26.0) answers every `DoPut`
//! path (updates, ingest, parameter binding) with UNIMPLEMENTED, plans in `GetFlightInfo` and executes only
//! when the `DoGet` stream is read. So DML is a query whose one-row result is its acknowledgement, values are
//! written into the SQL as escaped literals ([`sql::Literal`]), and a statement that is planned but never read
//! has not run.
//!
//! The client and the statements depend only on the schema: the query engine and maintenance use them.
//! The writer ([`writer`], `--writer dremio`) is one of the lake's writers of staged entries: it uses the
//! lake's committer parts, and the lake knows it only as a [`crate::lake::commit::StagedWriter`].

mod breaker;
mod client;
mod config;
mod error;
pub mod sql;
mod writer;

pub use self::breaker::{BreakerState, CircuitBreaker};
pub use self::client::{FlightSqlClient, StatementKind};
pub use self::config::{DremioAuth, DremioConfig};
pub use self::error::DremioError;
pub use self::writer::{rows_inserted, DremioWriter, DREMIO_STAGING_DIR};
