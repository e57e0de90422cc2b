//! sentiment-lake: the data tier of a real-time financial sentiment service.
//!
//! Sentiment records flow one way: trigger payload ([`functions::payload`]) -> source batch
//! ([`ingest::SourceBatch`]) -> validated Arrow rows and dead letters ([`ingest::ValidatedBatch`]) -> staged
//! segments -> one Iceberg commit per interval ([`lake::Lake::commit`]). The same binary is the Azure
//! Functions custom handler and a local CLI ([`cli`]).

#![forbid(unsafe_code)]
#![warn(rust_2018_idioms)]

pub mod app;
pub mod cache;
pub mod cli;
pub mod committer;
pub mod dremio;
pub mod engine;
pub mod enrich;
pub mod functions;
pub mod identity;
pub mod ingest;
pub mod lake;
pub mod maintain;
pub mod migrate;
pub mod observability;
pub mod quality;
pub mod query;
pub mod replica;
pub mod rollup;
pub mod schema;
pub mod storage;
pub mod synthetic;
