//! Catalogs: where the lake's tables are found, and how a new table state is published on them.
//!
//! Owns the SQL catalog with its sign-in renewed ([`sql`]) and its TLS settings ([`tls`]), the REST
//! catalog's client ([`rest`]), the SQL compare-and-swap and the leases beside it ([`swap`]), and the
//! publish step ([`publish`]): a [`crate::lake::table::Change`] written as the table's next state and
//! swapped in, or refused.
//!
//! Uses [`crate::lake::table`] (the state to publish) and [`crate::lake::error`]; the commit, history and
//! the lake's door use it.

mod publish;
mod rest;
mod sql;
mod swap;
pub mod tls;

pub use self::publish::{commit, Outcome, Publisher};
pub use self::rest::{RestSettings, Secret};
pub use self::sql::{CatalogAuth, CatalogType, MetadataPointer, RenewingCatalog};
pub(crate) use self::sql::{CatalogSettings, RestEndpoint};
