//! The Dremio SQL this crate sends, each statement built in one place and pinned by a golden test.
//!
//! Dremio binds no parameters over Flight SQL, so values become literals here and only here: text is quoted
//! with its quotes doubled (Dremio's string literals have no backslash escapes), numbers must be finite,
//! timestamps are written in UTC at Dremio's millisecond precision. Identifiers are always double-quoted.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use iceberg::spec::{PrimitiveType, Schema, Transform, Type, UnboundPartitionSpec};

use super::error::DremioError;

/// A dotted Dremio path (`source.folder.table`); a part containing dots or quotes is written in double
/// quotes in the settings (`lake."my.folder".t`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePath(Vec<String>);

impl TablePath {
    pub fn parse(text: &str) -> Result<Self, DremioError> {
        let bad = |why: &str| DremioError::Config(format!("Dremio path {text:?}: {why}"));
        let (mut parts, mut current, mut quoted, mut chars) = (Vec::new(), String::new(), false, text.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    chars.next();
                    current.push('"');
                }
                ('"', _) => quoted = !quoted,
                ('.', false) => parts.push(std::mem::take(&mut current)),
                (c, _) if c.is_control() => return Err(bad("control characters are not allowed")),
                (c, _) => current.push(c),
            }
        }
        if quoted {
            return Err(bad("unterminated quote"));
        }
        parts.push(current);
        if parts.iter().any(String::is_empty) {
            return Err(bad("empty part"));
        }
        Ok(Self(parts))
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The path with a last part replaced (a scratch table beside the real one).
    pub fn sibling(&self, name: &str) -> Self {
        let mut parts = self.0.clone();
        if let Some(last) = parts.last_mut() {
            *last = name.to_string();
        }
        Self(parts)
    }

    /// The path with `more` parts appended (a staged file under a source folder).
    pub fn join<'a>(&self, more: impl IntoIterator<Item = &'a str>) -> Self {
        let mut parts = self.0.clone();
        parts.extend(more.into_iter().map(str::to_string));
        Self(parts)
    }
}

impl std::fmt::Display for TablePath {
    /// As SQL: every part double-quoted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted: Vec<String> = self.0.iter().map(|p| ident(p)).collect();
        f.write_str(&quoted.join("."))
    }
}

/// A double-quoted identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A value written into SQL.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal<'a> {
    Text(&'a str),
    Double(f64),
    Timestamp(DateTime<Utc>),
}

impl Literal<'_> {
    pub fn render(&self) -> Result<String, DremioError> {
        Ok(match self {
            Literal::Text(s) => {
                if s.contains('\0') {
                    return Err(DremioError::Config("a text value contains a NUL character".into()));
                }
                format!("'{}'", s.replace('\'', "''"))
            }
            Literal::Double(x) if x.is_finite() => format!("CAST({x:?} AS DOUBLE)"),
            Literal::Double(x) => return Err(DremioError::Config(format!("{x} is not a finite number"))),
            Literal::Timestamp(t) => format!("TIMESTAMP '{}'", timestamp_text(t)),
        })
    }
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in UTC (Dremio's TIMESTAMP has milliseconds and no zone).
fn timestamp_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true).replace('T', " ").trim_end_matches('Z').to_string()
}

/// Replaces the placeholders `$1..$n` of `text` (SQL this crate wrote: no caller data, no `$` elsewhere)
/// by the rendered `values`.
pub fn inline(text: &str, values: &[Literal<'_>]) -> Result<String, DremioError> {
    let rendered = values.iter().map(Literal::render).collect::<Result<Vec<_>, _>>()?;
    let mut out = String::with_capacity(text.len() + rendered.iter().map(String::len).sum::<usize>());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits: String = rest[at + 1..].chars().take_while(char::is_ascii_digit).collect();
        let index: usize = digits.parse().map_err(|_| DremioError::Config(format!("a '$' without a placeholder number in {text:?}")))?;
        let value =
            index.checked_sub(1).and_then(|i| rendered.get(i)).ok_or_else(|| DremioError::Config(format!("placeholder ${index} has no value")))?;
        out.push_str(value);
        rest = &rest[at + 1 + digits.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `FROM` target of a query at a snapshot (`None`: the table as Dremio sees it now).
pub fn table_at(table: &TablePath, snapshot_id: Option<i64>) -> String {
    match snapshot_id {
        Some(id) => format!("{table} AT SNAPSHOT '{id}'"),
        None => table.to_string(),
    }
}

/// `TABLE(table_history('<path>'))`: the table's history as Dremio's metadata function gives it. The path
/// parsed without control characters, so the literal always renders.
fn history_source(table: &TablePath) -> String {
    format!("TABLE(table_history({}))", Literal::Text(&table.0.join(".")).render().unwrap_or_default())
}

/// The table's current snapshot: the newest entry of its history that is an ancestor of the current state
/// (after a rollback the newest snapshot is not the current one).
pub fn current_snapshot(table: &TablePath) -> String {
    format!("SELECT snapshot_id FROM {} WHERE is_current_ancestor = TRUE ORDER BY made_current_at DESC LIMIT 1", history_source(table))
}

/// Which snapshot a time-travel lookup wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotRef {
    Id(i64),
    /// The snapshot current at an instant.
    CurrentAt(DateTime<Utc>),
}

/// The snapshot `at` names, if the table's history has it.
pub fn snapshot_as_of(table: &TablePath, at: SnapshotRef) -> String {
    let history = history_source(table);
    match at {
        SnapshotRef::Id(id) => format!("SELECT snapshot_id FROM {history} WHERE snapshot_id = {id} LIMIT 1"),
        SnapshotRef::CurrentAt(at) => format!(
            "SELECT snapshot_id FROM {history} WHERE made_current_at <= {} ORDER BY made_current_at DESC LIMIT 1",
            Literal::Timestamp(at).render().unwrap_or_default()
        ),
    }
}

/// The table's history, newest first.
pub fn history(table: &TablePath) -> String {
    format!("SELECT snapshot_id, parent_id, made_current_at FROM {} ORDER BY made_current_at DESC LIMIT 1000", history_source(table))
}

/// The columns' Dremio types, in the table's order.
fn column_type(ty: &Type) -> Result<String, DremioError> {
    Ok(match ty {
        Type::Primitive(p) => match p {
            PrimitiveType::Boolean => "BOOLEAN".into(),
            PrimitiveType::Int => "INT".into(),
            PrimitiveType::Long => "BIGINT".into(),
            PrimitiveType::Float => "FLOAT".into(),
            PrimitiveType::Double => "DOUBLE".into(),
            PrimitiveType::Date => "DATE".into(),
            // Dremio writes TIMESTAMP columns as Iceberg timestamptz, which is what the seed's columns are.
            PrimitiveType::Timestamp | PrimitiveType::Timestamptz => "TIMESTAMP".into(),
            PrimitiveType::String => "VARCHAR".into(),
            PrimitiveType::Binary => "VARBINARY".into(),
            PrimitiveType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            other => return Err(DremioError::Config(format!("no Dremio column type for Iceberg {other}"))),
        },
        Type::List(list) => format!("ARRAY<{}>", column_type(&list.element_field.field_type)?),
        Type::Map(map) => format!("MAP<{}, {}>", column_type(&map.key_field.field_type)?, column_type(&map.value_field.field_type)?),
        Type::Struct(s) => {
            let fields = s
                .fields()
                .iter()
                .map(|f| Ok(format!("{}: {}", ident(&f.name), column_type(&f.field_type)?)))
                .collect::<Result<Vec<_>, DremioError>>()?;
            format!("STRUCT<{}>", fields.join(", "))
        }
    })
}

/// CREATE TABLE with `schema`'s columns (required ones NOT NULL) and `spec`'s partitioning.
///
/// Dremio assigns field ids itself, in declaration order; a table that must carry the seed's ids exactly is
/// created by this crate's own writer through a shared catalog instead (`docs/dremio.md`).
pub fn create_table(table: &TablePath, schema: &Schema, spec: &UnboundPartitionSpec) -> Result<String, DremioError> {
    let mut columns = Vec::new();
    for field in schema.as_struct().fields() {
        let null = if field.required { " NOT NULL" } else { "" };
        columns.push(format!("  {} {}{null}", ident(&field.name), column_type(&field.field_type)?));
    }
    let mut partitions = Vec::new();
    for field in spec.fields() {
        let source =
            schema.field_by_id(field.source_id).ok_or_else(|| DremioError::Config(format!("partition field {} has no source column", field.name)))?;
        let column = ident(&source.name);
        partitions.push(match field.transform {
            Transform::Identity => column,
            Transform::Day => format!("DAY({column})"),
            Transform::Hour => format!("HOUR({column})"),
            Transform::Month => format!("MONTH({column})"),
            Transform::Year => format!("YEAR({column})"),
            Transform::Bucket(n) => format!("BUCKET({n}, {column})"),
            Transform::Truncate(n) => format!("TRUNCATE({n}, {column})"),
            other => return Err(DremioError::Config(format!("Dremio cannot partition by {other}"))),
        });
    }
    let mut sql = format!("CREATE TABLE IF NOT EXISTS {table} (\n{}\n)", columns.join(",\n"));
    if !partitions.is_empty() {
        let _ = write!(sql, "\nPARTITION BY ({})", partitions.join(", "));
    }
    // Dremio's own default keeps every metadata file forever.
    sql.push_str(
        "\nTBLPROPERTIES ('write.parquet.compression-codec' = 'zstd', 'write.metadata.delete-after-commit.enabled' = 'true', \
         'write.metadata.previous-versions-max' = '50')",
    );
    Ok(sql)
}

/// A staged Parquet file (or folder) read by path through a Dremio filesystem source.
pub fn staged_parquet(path: &TablePath) -> String {
    format!("TABLE({path}(type => 'parquet'))")
}

/// The time range a MERGE compares against, so Dremio prunes to the partitions the batch touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Rows given as literals, as a MERGE source: `SELECT * FROM (VALUES (..), ..) AS v(<columns>)`.
pub fn values_source(columns: &[&str], rows: &[Vec<Literal<'_>>]) -> Result<String, DremioError> {
    let mut tuples = Vec::with_capacity(rows.len());
    for row in rows {
        let values = row.iter().map(Literal::render).collect::<Result<Vec<_>, _>>()?;
        tuples.push(format!("({})", values.join(", ")));
    }
    let names: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    Ok(format!("SELECT * FROM (VALUES {}) AS v({})", tuples.join(", "), names.join(", ")))
}

/// The insert-only MERGE of one batch (`source`: a select over the staged rows), keyed by `key`: a row
/// whose key the table already holds is not inserted again, so repeating the statement after an unknown
/// outcome adds nothing. Columns are listed (`INSERT *` would match by position). Insert-only merges
/// rewrite no data files.
pub fn merge_insert(
    table: &TablePath,
    source: &str,
    columns: &[&str],
    key: &str,
    range: Option<TimeRange>,
    time_column: &str,
) -> Result<String, DremioError> {
    let listed: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let from_staged: Vec<String> = columns.iter().map(|c| format!("s.{}", ident(c))).collect();
    let mut on = format!("t.{k} = s.{k}", k = ident(key));
    if let Some(range) = range {
        let (from, to) = (Literal::Timestamp(range.from).render()?, Literal::Timestamp(range.to).render()?);
        let _ = write!(on, " AND t.{ts} >= {from} AND t.{ts} <= {to}", ts = ident(time_column));
    }
    Ok(format!(
        "MERGE INTO {table} AS t USING ({source}) AS s ON ({on}) WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})",
        cols = listed.join(", "),
        values = from_staged.join(", "),
    ))
}

/// The MERGE source reading a staged Parquet file: its columns, listed.
pub fn staged_select(columns: &[&str], staged: &TablePath) -> String {
    let listed: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    format!("SELECT {} FROM {}", listed.join(", "), staged_parquet(staged))
}

/// How a table is kept compact and its history bounded by Dremio.
#[derive(Debug, Clone, PartialEq)]
pub struct DremioMaintenance {
    pub target_file_size_mb: u64,
    pub min_input_files: u32,
    /// Only partitions holding events at or after this instant are compacted (recent days are where
    /// ingestion leaves small files); `None`: the whole table.
    pub compact_since: Option<DateTime<Utc>>,
    pub expire_older_than: DateTime<Utc>,
    pub retain_last: u32,
}

/// OPTIMIZE (bin-pack) of the table, limited to recent partitions. Dremio 25's grammar wants `FOR PARTITIONS`
/// before the options; the predicate names the source column, not `day(...)`.
pub fn optimize(table: &TablePath, m: &DremioMaintenance, time_column: &str) -> Result<String, DremioError> {
    let mut sql = format!("OPTIMIZE TABLE {table} REWRITE DATA USING BIN_PACK");
    if let Some(since) = m.compact_since {
        let _ = write!(sql, " FOR PARTITIONS {} >= {}", ident(time_column), Literal::Timestamp(since).render()?);
    }
    let _ = write!(sql, " (TARGET_FILE_SIZE_MB = {}, MIN_INPUT_FILES = {})", m.target_file_size_mb.max(1), m.min_input_files.max(1));
    Ok(sql)
}

/// Snapshot expiry: VACUUM TABLE on filesystem, Glue and Hive sources; Nessie tables refuse it and are
/// vacuumed per catalog.
pub fn vacuum(table: &TablePath, m: &DremioMaintenance, nessie: bool) -> String {
    if nessie {
        let source = ident(&table.0[0]);
        format!("VACUUM CATALOG {source}")
    } else {
        format!(
            "VACUUM TABLE {table} EXPIRE SNAPSHOTS older_than = '{}' retain_last = {}",
            timestamp_text(&m.expire_older_than),
            m.retain_last.max(1)
        )
    }
}

/// Makes Dremio re-read a filesystem table's metadata after another writer committed to it.
pub fn refresh_metadata(table: &TablePath) -> String {
    format!("ALTER TABLE {table} REFRESH METADATA")
}

/// The table's columns without reading a row.
pub fn schema_probe(table: &TablePath) -> String {
    format!("SELECT * FROM {table} LIMIT 0")
}

pub fn drop_table(table: &TablePath) -> String {
    format!("DROP TABLE IF EXISTS {table}")
}

/// The rows of the rollup table (at `snapshot_id`) that answer `pieces` (those with a grain), of
/// `dimensions` and, when given, of `ticker`: the same filter the embedded engine's scan applies, with the
/// bucket partition column pruning files.
pub fn rollup_rows(
    rollup: &TablePath,
    snapshot_id: Option<i64>,
    pieces: &[crate::rollup::Piece],
    dimensions: &[crate::rollup::Dimension],
    ticker: Option<&str>,
) -> Result<String, DremioError> {
    use crate::rollup::table::column as r;
    let mut periods = Vec::new();
    for piece in pieces {
        let Some(grain) = piece.grain else { continue };
        let instant = |micros: i64| {
            DateTime::from_timestamp_micros(micros).ok_or_else(|| DremioError::Config(format!("{micros} is not a representable instant")))
        };
        let (first, last) = (grain.bucket(piece.from), grain.bucket(piece.to - 1));
        periods.push(format!(
            "({g} = {} AND {b} >= {} AND {b} <= {} AND {p} >= {} AND {p} < {})",
            Literal::Text(grain.as_str()).render()?,
            Literal::Text(&first).render()?,
            Literal::Text(&last).render()?,
            Literal::Timestamp(instant(piece.from)?).render()?,
            Literal::Timestamp(instant(piece.to)?).render()?,
            g = ident(r::GRAIN),
            b = ident(r::BUCKET),
            p = ident(r::PERIOD_START),
        ));
    }
    if periods.is_empty() {
        return Err(DremioError::Config("no whole minute, hour or day to read from the rollup".into()));
    }
    let kinds = dimensions.iter().map(|d| Literal::Text(d.as_str()).render()).collect::<Result<Vec<_>, _>>()?;
    let mut text = format!(
        "SELECT * FROM {} WHERE ({}) AND {} IN ({})",
        table_at(rollup, snapshot_id),
        periods.join(" OR "),
        ident(r::DIMENSION),
        kinds.join(", ")
    );
    if let Some(ticker) = ticker {
        let _ = write!(text, " AND {} = {}", ident(r::TICKER), Literal::Text(ticker).render()?);
    }
    Ok(text)
}

/// The aggregate reflections that match the API's questions, as `(name, statement)`: one on the records
/// table (per day, ticker, source, intent and primary emotion: what top tickers, summaries, daily series
/// and intents group by) and one on the rollup table beside it (its rows summed per period, ticker, source
/// and dimension: the answers' own reads).
pub fn aggregate_reflections(records: &TablePath, rollup: &TablePath) -> Vec<(&'static str, String)> {
    use crate::rollup::table::column as r;
    use crate::schema::column as c;
    let list = |names: &[&str]| names.iter().map(|n| ident(n)).collect::<Vec<_>>().join(", ");
    let measures = |pairs: &[(&str, &str)]| pairs.iter().map(|(n, m)| format!("{} ({m})", ident(n))).collect::<Vec<_>>().join(", ");
    let records_statement = format!(
        "ALTER TABLE {records} CREATE AGGREGATE REFLECTION \"sentiment_lake_daily\" USING DIMENSIONS ({}, {} BY DAY) MEASURES ({}) LOCALSORT BY ({})",
        list(&[c::TICKER, c::SOURCE_SYSTEM, c::USER_INTENT, c::PRIMARY_EMOTION]),
        ident(c::EVENT_TIMESTAMP),
        measures(&[(c::SENTIMENT_SCORE, "COUNT, SUM, MIN, MAX"), (c::SENTIMENT_MAGNITUDE, "COUNT, SUM")]),
        ident(c::TICKER),
    );
    let rollup_statement = format!(
        "ALTER TABLE {rollup} CREATE AGGREGATE REFLECTION \"sentiment_lake_rollup\" USING DIMENSIONS ({}) MEASURES ({}) PARTITION BY ({}) LOCALSORT BY ({})",
        list(&[r::GRAIN, r::BUCKET, r::PERIOD_START, r::TICKER, r::SOURCE_SYSTEM, r::DIMENSION, r::NAME, r::KIND]),
        measures(&[
            (r::COUNT, "SUM"),
            (r::SCORE_SUM, "SUM"),
            (r::SCORE_MIN, "MIN"),
            (r::SCORE_MAX, "MAX"),
            (r::POSITIVE, "SUM"),
            (r::NEGATIVE, "SUM"),
            (r::NEUTRAL, "SUM"),
            (r::MAGNITUDE_SUM, "SUM"),
            (r::MAGNITUDE_COUNT, "SUM"),
        ]),
        list(&[r::GRAIN]),
        list(&[r::DIMENSION, r::TICKER, r::PERIOD_START]),
    );
    vec![("sentiment_lake_daily", records_statement), ("sentiment_lake_rollup", rollup_statement)]
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn path() -> TablePath {
        TablePath::parse("nessie.sentiment.sentiment_records").unwrap()
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap() + chrono::Duration::microseconds(123_456)
    }

    #[test]
    fn paths_parse_quoted_parts_and_refuse_malformed_ones() {
        let p = TablePath::parse(r#"lake."my.folder"."odd""name""#).unwrap();
        assert_eq!(p.parts(), ["lake", "my.folder", "odd\"name"]);
        assert_eq!(p.to_string(), r#""lake"."my.folder"."odd""name""#);
        for bad in ["", "a..b", "a.", "\"open", "a.b\n"] {
            assert!(TablePath::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(path().sibling("scratch").to_string(), r#""nessie"."sentiment"."scratch""#);
    }

    #[test]
    fn literals_escape_quotes_and_refuse_what_cannot_be_written() {
        assert_eq!(Literal::Text("it's").render().unwrap(), "'it''s'");
        assert_eq!(Literal::Text(r"a\'; DROP TABLE x; --").render().unwrap(), r"'a\''; DROP TABLE x; --'");
        assert!(Literal::Text("nul\0").render().is_err());
        assert_eq!(Literal::Double(0.7).render().unwrap(), "CAST(0.7 AS DOUBLE)");
        assert_eq!(Literal::Double(-1e-7).render().unwrap(), "CAST(-1e-7 AS DOUBLE)");
        assert!(Literal::Double(f64::NAN).render().is_err() && Literal::Double(f64::INFINITY).render().is_err());
        assert_eq!(Literal::Timestamp(at(9, 30)).render().unwrap(), "TIMESTAMP '2026-03-02 09:30:00.123'");
    }

    #[test]
    fn placeholders_are_replaced_by_number_not_by_prefix() {
        let values: Vec<Literal<'_>> = (1..=11).map(|i| Literal::Double(i as f64)).collect();
        let sql = inline("a = $1 AND b = $11 AND c = $10", &values).unwrap();
        assert_eq!(sql, "a = CAST(1.0 AS DOUBLE) AND b = CAST(11.0 AS DOUBLE) AND c = CAST(10.0 AS DOUBLE)");
        assert!(inline("x = $3", &values[..2]).is_err());
        assert!(inline("x = $", &values).is_err());
        assert_eq!(inline("t = $1", &[Literal::Text("$2")]).unwrap(), "t = '$2'", "values are not scanned again");
    }

    #[test]
    fn golden_rollup_rows() {
        let rollup = path().sibling("sentiment_records_rollup");
        let micros = |h: u32| Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0).unwrap().timestamp_micros();
        let pieces = crate::rollup::pieces(micros(0) - 90_000_000, micros(5), crate::rollup::Grain::Hour);
        let text = rollup_rows(&rollup, Some(42), &pieces, &[crate::rollup::Dimension::Message], Some("O'X")).unwrap();
        assert_eq!(
            text,
            "SELECT * FROM \"nessie\".\"sentiment\".\"sentiment_records_rollup\" AT SNAPSHOT '42' WHERE \
             ((\"grain\" = 'minute' AND \"bucket\" >= '2026-03-01' AND \"bucket\" <= '2026-03-01' AND \"period_start\" >= TIMESTAMP '2026-03-01 23:59:00.000' AND \"period_start\" < TIMESTAMP '2026-03-02 00:00:00.000') \
             OR (\"grain\" = 'hour' AND \"bucket\" >= '2026-03' AND \"bucket\" <= '2026-03' AND \"period_start\" >= TIMESTAMP '2026-03-02 00:00:00.000' AND \"period_start\" < TIMESTAMP '2026-03-02 05:00:00.000')) \
             AND \"dimension\" IN ('message') AND \"ticker\" = 'O''X'"
        );
        assert!(rollup_rows(&rollup, None, &crate::rollup::pieces(0, 30_000_000, crate::rollup::Grain::Day), &[], None).is_err(), "raw rows only");
    }

    #[test]
    fn golden_aggregate_reflections() {
        let rollup = path().sibling("sentiment_records_rollup");
        let statements: Vec<String> = aggregate_reflections(&path(), &rollup).into_iter().map(|(_, s)| s).collect();
        assert_eq!(
            statements,
            [
                "ALTER TABLE \"nessie\".\"sentiment\".\"sentiment_records\" CREATE AGGREGATE REFLECTION \"sentiment_lake_daily\" USING DIMENSIONS (\"ticker\", \"source_system\", \"user_intent\", \"primary_emotion\", \"event_timestamp\" BY DAY) MEASURES (\"sentiment_score\" (COUNT, SUM, MIN, MAX), \"sentiment_magnitude\" (COUNT, SUM)) LOCALSORT BY (\"ticker\")",
                "ALTER TABLE \"nessie\".\"sentiment\".\"sentiment_records_rollup\" CREATE AGGREGATE REFLECTION \"sentiment_lake_rollup\" USING DIMENSIONS (\"grain\", \"bucket\", \"period_start\", \"ticker\", \"source_system\", \"dimension\", \"name\", \"kind\") MEASURES (\"count\" (SUM), \"score_sum_q64\" (SUM), \"score_min\" (MIN), \"score_max\" (MAX), \"positive\" (SUM), \"negative\" (SUM), \"neutral\" (SUM), \"magnitude_sum_q40\" (SUM), \"magnitude_count\" (SUM)) PARTITION BY (\"grain\") LOCALSORT BY (\"dimension\", \"ticker\", \"period_start\")",
            ]
        );
    }

    #[test]
    fn golden_current_snapshot_and_time_travel() {
        assert_eq!(
            current_snapshot(&path()),
            "SELECT snapshot_id FROM TABLE(table_history('nessie.sentiment.sentiment_records')) WHERE is_current_ancestor = TRUE ORDER BY made_current_at DESC LIMIT 1"
        );
        assert_eq!(table_at(&path(), Some(42)), r#""nessie"."sentiment"."sentiment_records" AT SNAPSHOT '42'"#);
        assert_eq!(table_at(&path(), None), r#""nessie"."sentiment"."sentiment_records""#);
        assert_eq!(
            snapshot_as_of(&path(), SnapshotRef::CurrentAt(at(9, 30))),
            "SELECT snapshot_id FROM TABLE(table_history('nessie.sentiment.sentiment_records')) WHERE made_current_at <= TIMESTAMP '2026-03-02 09:30:00.123' ORDER BY made_current_at DESC LIMIT 1"
        );
        assert_eq!(
            snapshot_as_of(&path(), SnapshotRef::Id(5)),
            "SELECT snapshot_id FROM TABLE(table_history('nessie.sentiment.sentiment_records')) WHERE snapshot_id = 5 LIMIT 1"
        );
        assert_eq!(
            history(&path()),
            "SELECT snapshot_id, parent_id, made_current_at FROM TABLE(table_history('nessie.sentiment.sentiment_records')) ORDER BY made_current_at DESC LIMIT 1000"
        );
    }

    #[test]
    fn golden_create_table_with_the_seed_schema_and_partitioning() {
        let sql = create_table(&path(), &crate::schema::sentiment_schema(), &crate::schema::default_partition_spec()).unwrap();
        let expected = r#"CREATE TABLE IF NOT EXISTS "nessie"."sentiment"."sentiment_records" (
  "message_id" VARCHAR NOT NULL,
  "event_timestamp" TIMESTAMP NOT NULL,
  "ingestion_timestamp" TIMESTAMP NOT NULL,
  "source_system" VARCHAR NOT NULL,
  "text_content" VARCHAR NOT NULL,
  "sentiment_score" FLOAT NOT NULL,
  "sentiment_magnitude" FLOAT NOT NULL,
  "primary_emotion" VARCHAR NOT NULL,
  "emotion_intensity_vector" MAP<VARCHAR, FLOAT>,
  "aspect_target_identification" ARRAY<VARCHAR>,
  "aspect_based_sentiment" MAP<VARCHAR, FLOAT>,
  "sarcasm_detection" BOOLEAN NOT NULL,
  "subjectivity_score" FLOAT NOT NULL,
  "toxicity_score" FLOAT NOT NULL,
  "entity_recognition" ARRAY<STRUCT<"text": VARCHAR, "type": VARCHAR>>,
  "user_intent" VARCHAR NOT NULL,
  "influence_score" FLOAT,
  "processing_version" VARCHAR NOT NULL,
  "ticker" VARCHAR,
  "article_title" VARCHAR,
  "source_url" VARCHAR,
  "model_name" VARCHAR
)
PARTITION BY (DAY("event_timestamp"), "ticker", "source_system")
TBLPROPERTIES ('write.parquet.compression-codec' = 'zstd', 'write.metadata.delete-after-commit.enabled' = 'true', 'write.metadata.previous-versions-max' = '50')"#;
        assert_eq!(sql, expected);
        let day_bucket = create_table(&path(), &crate::schema::sentiment_schema(), &crate::schema::Layout::DayBucket.partition_spec()).unwrap();
        assert!(day_bucket.contains(r#"PARTITION BY (DAY("event_timestamp"), BUCKET(8, "ticker"))"#), "{day_bucket}");
    }

    #[test]
    fn golden_merge_lists_columns_and_prunes_by_time() {
        let staged = TablePath::parse("lake._dremio_staging.sentiment_records.c0ffee.parquet").unwrap();
        let range = TimeRange { from: at(9, 0), to: at(10, 0) };
        let columns = ["message_id", "event_timestamp", "ticker"];
        let sql = merge_insert(&path(), &staged_select(&columns, &staged), &columns, "message_id", Some(range), "event_timestamp").unwrap();
        assert_eq!(
            sql,
            r#"MERGE INTO "nessie"."sentiment"."sentiment_records" AS t USING (SELECT "message_id", "event_timestamp", "ticker" FROM TABLE("lake"."_dremio_staging"."sentiment_records"."c0ffee"."parquet"(type => 'parquet'))) AS s ON (t."message_id" = s."message_id" AND t."event_timestamp" >= TIMESTAMP '2026-03-02 09:00:00.123' AND t."event_timestamp" <= TIMESTAMP '2026-03-02 10:00:00.123') WHEN NOT MATCHED THEN INSERT ("message_id", "event_timestamp", "ticker") VALUES (s."message_id", s."event_timestamp", s."ticker")"#
        );
    }

    #[test]
    fn golden_merge_from_literal_rows() {
        let rows = vec![vec![Literal::Text("doctor-1"), Literal::Timestamp(at(9, 0)), Literal::Double(1.5)]];
        let source = values_source(&["message_id", "event_timestamp", "score"], &rows).unwrap();
        assert_eq!(
            source,
            r#"SELECT * FROM (VALUES ('doctor-1', TIMESTAMP '2026-03-02 09:00:00.123', CAST(1.5 AS DOUBLE))) AS v("message_id", "event_timestamp", "score")"#
        );
        let merge =
            merge_insert(&path().sibling("scratch"), &source, &["message_id", "event_timestamp", "score"], "message_id", None, "event_timestamp")
                .unwrap();
        assert!(merge.starts_with(r#"MERGE INTO "nessie"."sentiment"."scratch" AS t USING (SELECT * FROM (VALUES"#), "{merge}");
        assert!(merge.ends_with(r#"ON (t."message_id" = s."message_id") WHEN NOT MATCHED THEN INSERT ("message_id", "event_timestamp", "score") VALUES (s."message_id", s."event_timestamp", s."score")"#), "{merge}");
    }

    #[test]
    fn golden_maintenance_statements() {
        let m = DremioMaintenance {
            target_file_size_mb: 128,
            min_input_files: 5,
            compact_since: Some(at(0, 0)),
            expire_older_than: at(0, 0),
            retain_last: 10,
        };
        assert_eq!(
            optimize(&path(), &m, "event_timestamp").unwrap(),
            r#"OPTIMIZE TABLE "nessie"."sentiment"."sentiment_records" REWRITE DATA USING BIN_PACK FOR PARTITIONS "event_timestamp" >= TIMESTAMP '2026-03-02 00:00:00.123' (TARGET_FILE_SIZE_MB = 128, MIN_INPUT_FILES = 5)"#
        );
        let whole = DremioMaintenance { compact_since: None, ..m.clone() };
        assert_eq!(
            optimize(&path(), &whole, "event_timestamp").unwrap(),
            r#"OPTIMIZE TABLE "nessie"."sentiment"."sentiment_records" REWRITE DATA USING BIN_PACK (TARGET_FILE_SIZE_MB = 128, MIN_INPUT_FILES = 5)"#
        );
        assert_eq!(
            vacuum(&path(), &m, false),
            r#"VACUUM TABLE "nessie"."sentiment"."sentiment_records" EXPIRE SNAPSHOTS older_than = '2026-03-02 00:00:00.123' retain_last = 10"#
        );
        assert_eq!(vacuum(&path(), &m, true), r#"VACUUM CATALOG "nessie""#);
        assert_eq!(refresh_metadata(&path()), r#"ALTER TABLE "nessie"."sentiment"."sentiment_records" REFRESH METADATA"#);
        assert_eq!(schema_probe(&path()), r#"SELECT * FROM "nessie"."sentiment"."sentiment_records" LIMIT 0"#);
        assert_eq!(drop_table(&path().sibling("s")), r#"DROP TABLE IF EXISTS "nessie"."sentiment"."s""#);
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips_through_a_literal(s in "[^\u{0}]{0,40}") {
            let lit = Literal::Text(&s).render().unwrap();
            proptest::prop_assert!(lit.starts_with('\'') && lit.ends_with('\''));
            let inner = &lit[1..lit.len() - 1];
            // Every quote inside is doubled, so the literal cannot end early.
            proptest::prop_assert!(!inner.replace("''", "").contains('\''));
            proptest::prop_assert_eq!(inner.replace("''", "'"), s);
        }

        #[test]
        fn quoted_paths_parse_back(parts in proptest::collection::vec("[a-zA-Z0-9_.\" ]{1,8}", 1..4)) {
            let path = TablePath(parts.clone());
            let parsed = TablePath::parse(&path.to_string()).unwrap();
            proptest::prop_assert_eq!(parsed.parts(), &parts[..]);
        }
    }
}
