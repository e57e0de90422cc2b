//! The lake's tables: which one ([`TableKind`]), what the writer fills it with ([`TableTarget`]), and
//! the door to one of them in its catalog ([`TableHandle`]).

use arrow_schema::SchemaRef;
use iceberg::spec::{Schema, UnboundPartitionSpec};
use iceberg::table::Table;
use iceberg::{Catalog, TableIdent};

use crate::lake::catalog::{self, Outcome, RenewingCatalog};
use crate::lake::error::LakeError;
use crate::lake::stage::StagingArea;
use crate::lake::table::Change;

/// Which of the lake's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Records,
    DeadLetters,
    /// The records' aggregates per minute, hour and day (`crate::rollup`), kept by [`crate::lake::rollup`].
    Rollup,
    /// One row per commit and source profiling what it committed (`crate::quality`).
    Quality,
}

/// One table the lake writes: identity, the schema its rows are built in and the spec it is created with.
#[derive(Debug, Clone)]
pub struct TableTarget {
    pub ident: TableIdent,
    pub name: String,
    pub schema: Schema,
    pub arrow_schema: SchemaRef,
    pub partition_spec: UnboundPartitionSpec,
    /// Rows are sorted by these columns within each data file (prunes time and ticker filters well).
    pub sort_columns: &'static [&'static str],
    /// Where its entries are staged: its own area, whoever else shares the warehouse.
    pub staging: StagingArea,
    /// Table properties it is created with, and set on an existing table that lacks them.
    pub properties: &'static [(&'static str, &'static str)],
    /// What its commit passes profile the committed rows as (`None`: not profiled).
    pub profiled: Option<crate::quality::Profiled>,
}

/// One of the lake's tables in its catalog: loaded, and changed by the catalog's compare-and-swap.
#[derive(Clone, Copy)]
pub struct TableHandle<'a> {
    pub catalog: &'a RenewingCatalog,
    pub target: &'a TableTarget,
}

impl TableHandle<'_> {
    pub async fn load(&self) -> Result<Table, LakeError> {
        let ident = &self.target.ident;
        self.catalog.load_table(ident).await.map_err(LakeError::iceberg(format!("loading {ident}")))
    }

    /// Commits `change` on top of exactly `table` (as loaded): the catalog publishes it, or refuses it when
    /// another commit landed first ([`Outcome::Conflict`]).
    pub async fn commit(&self, table: &Table, change: Change) -> Result<Outcome, LakeError> {
        let (_, publisher) = self.catalog.current().await?;
        catalog::commit(&publisher, table, change).await
    }
}
