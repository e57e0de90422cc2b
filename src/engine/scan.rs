//! The embedded engine's scan of one table snapshot: files planned once, then read by every DataFusion
//! partition at once, each with many files in flight.
//!
//! iceberg-datafusion 0.10.1's scan is one partition reading as many files at a time as there are cores:
//! over thousands of small files (the seed's day × ticker × source layout after a month of commits) each
//! file's open, footer and column reads wait in turn, about 1.3 ms a file. Here the planned files are dealt
//! round-robin to the session's partitions and each reads [`FILES_IN_FLIGHT`] at a time, so waiting on one
//! file overlaps with decoding others.

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DataFusionResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream};
use futures::{StreamExt, TryStreamExt};
use iceberg::expr::Predicate;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use iceberg_datafusion::physical_plan::convert_filters_to_predicate;

/// Files each partition reads at once.
pub const FILES_IN_FLIGHT: usize = 16;

fn iceberg_error(e: iceberg::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// One snapshot of an Iceberg table as a DataFusion table. Filters on 32-bit float columns stay with
/// DataFusion: iceberg-datafusion 0.10.1 turns every float literal into an Iceberg `double`, which iceberg
/// 0.10.1 cannot bind to a `float` column ("Can't convert datum from double type to float type"), so the
/// whole query would fail; scores are not partition columns, so only their statistics pruning is given up.
#[derive(Debug)]
pub struct SnapshotTable {
    table: Table,
    snapshot_id: Option<i64>,
    schema: SchemaRef,
    float_columns: HashSet<String>,
}

impl SnapshotTable {
    /// `snapshot_id` of `table` (its current snapshot for `None`).
    pub fn new(table: Table, snapshot_id: Option<i64>) -> Result<Self, iceberg::Error> {
        let metadata = table.metadata();
        let schema = match snapshot_id.and_then(|id| metadata.snapshot_by_id(id)) {
            Some(snapshot) => snapshot.schema(metadata)?,
            None => metadata.current_schema().clone(),
        };
        let schema = Arc::new(iceberg::arrow::schema_to_arrow_schema(&schema)?);
        let float_columns = schema.fields().iter().filter(|f| *f.data_type() == DataType::Float32).map(|f| f.name().clone()).collect();
        Ok(Self { table, snapshot_id, schema, float_columns })
    }

    fn pushable(&self, filter: &Expr) -> bool {
        filter.column_refs().iter().all(|c| !self.float_columns.contains(c.name()))
    }
}

#[async_trait]
impl TableProvider for SnapshotTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        let pushable: Vec<Expr> = filters.iter().filter(|f| self.pushable(f)).cloned().collect();
        let output = match projection {
            Some(projection) => Arc::new(self.schema.project(projection)?),
            None => self.schema.clone(),
        };
        let columns = projection.map(|p| p.iter().map(|i| self.schema.field(*i).name().clone()).collect());
        let partitions = state.config().target_partitions().max(1);
        Ok(Arc::new(ParallelScan {
            table: self.table.clone(),
            snapshot_id: self.snapshot_id,
            columns,
            predicate: convert_filters_to_predicate(&pushable),
            partitions,
            planned: Arc::new(tokio::sync::OnceCell::new()),
            properties: Arc::new(PlanProperties::new(
                EquivalenceProperties::new(output),
                Partitioning::UnknownPartitioning(partitions),
                EmissionType::Incremental,
                Boundedness::Bounded,
            )),
        }))
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DataFusionResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| if self.pushable(f) { TableProviderFilterPushDown::Inexact } else { TableProviderFilterPushDown::Unsupported })
            .collect())
    }
}

/// The files of one scan, planned by whichever partition starts first, read by all of them.
#[derive(Clone)]
struct ParallelScan {
    table: Table,
    snapshot_id: Option<i64>,
    /// Projected columns by name (all of them for `None`).
    columns: Option<Vec<String>>,
    predicate: Option<Predicate>,
    partitions: usize,
    planned: Arc<tokio::sync::OnceCell<Vec<FileScanTask>>>,
    properties: Arc<PlanProperties>,
}

impl fmt::Debug for ParallelScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParallelScan").field("snapshot_id", &self.snapshot_id).field("columns", &self.columns).finish_non_exhaustive()
    }
}

impl DisplayAs for ParallelScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IcebergParallelScan partitions:[{}] projection:[{}] predicate:[{}]",
            self.partitions,
            self.columns.as_ref().map_or(String::new(), |c| c.join(",")),
            self.predicate.as_ref().map_or(String::new(), |p| p.to_string())
        )
    }
}

impl ParallelScan {
    async fn plan(&self) -> Result<Vec<FileScanTask>, iceberg::Error> {
        let mut scan = match self.snapshot_id {
            Some(id) => self.table.scan().snapshot_id(id),
            None => self.table.scan(),
        };
        scan = match &self.columns {
            Some(columns) => scan.select(columns.clone()),
            None => scan.select_all(),
        };
        if let Some(predicate) = &self.predicate {
            scan = scan.with_filter(predicate.clone());
        }
        scan.build()?.plan_files().await?.try_collect().await
    }
}

impl ExecutionPlan for ParallelScan {
    fn name(&self) -> &str {
        "IcebergParallelScan"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DataFusionResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> DataFusionResult<SendableRecordBatchStream> {
        let this = self.clone();
        let batches = futures::stream::once(async move {
            let tasks = this.planned.get_or_try_init(|| this.plan()).await.map_err(iceberg_error)?;
            let mine: Vec<FileScanTask> = tasks.iter().skip(partition).step_by(this.partitions).cloned().collect();
            let reader = this.table.reader_builder().with_data_file_concurrency_limit(FILES_IN_FLIGHT).with_row_group_filtering_enabled(true).build();
            let stream = reader.read(futures::stream::iter(mine.into_iter().map(Ok)).boxed()).map_err(iceberg_error)?.stream();
            Ok::<_, DataFusionError>(stream.map_err(iceberg_error))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.properties.eq_properties.schema().clone(), batches)))
    }
}
