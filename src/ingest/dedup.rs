//! Rows the records table already holds, by id: `migrate --dedup-ids` skips them before staging (overlapping
//! re-exports, legacy files holding rows the live writer also sent), and `dead-letters replay` before
//! committing (an event that reached the table as a row another way: a redelivery judged under newer rules,
//! a restored snapshot).
//!
//! A row is held when the table's current snapshot has a row with the same `source_system` and
//! `message_id` for the same ticker and UTC day: the partitions the row would land in, which are the only
//! ones the check reads (a scan filtered on ticker and time, pruned by the table's partitions and file
//! statistics). Rows the table gains after the check (another writer committing the same ids meanwhile)
//! are not caught; the migration commits after each file so that the next file's check sees it.

use std::collections::{HashMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::Array;
use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use iceberg::expr::{Predicate, Reference};
use iceberg::spec::Datum;
use serde_json::Value;

use crate::lake::{Lake, LakeError, TableKind};
use crate::schema::column;

/// What identifies a row for the check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub ticker: Option<String>,
    pub day: NaiveDate,
    pub source_system: String,
    pub message_id: String,
}

impl RowKey {
    /// The key of a migrated record; `None` for one without an id, a source or a readable time (which
    /// validation refuses anyway: it is dead-lettered, never skipped).
    pub fn of(record: &Value) -> Option<Self> {
        let text = |field: &str| record.get(field).and_then(Value::as_str);
        let at = DateTime::parse_from_rfc3339(text(column::EVENT_TIMESTAMP)?).ok()?.with_timezone(&Utc);
        Some(Self {
            ticker: text(column::TICKER).map(str::to_string),
            day: at.date_naive(),
            source_system: text(column::SOURCE_SYSTEM)?.to_string(),
            message_id: text(column::MESSAGE_ID)?.to_string(),
        })
    }
}

impl RowKey {
    /// The keys of validated rows (the records table's Arrow schema), one per row.
    pub fn of_rows(rows: &arrow_array::RecordBatch) -> Vec<Option<Self>> {
        let column = |name: &str| rows.column_by_name(name);
        let (Some(ids), Some(sources), Some(times)) = (column(column::MESSAGE_ID), column(column::SOURCE_SYSTEM), column(column::EVENT_TIMESTAMP))
        else {
            return vec![None; rows.num_rows()];
        };
        let (Some(ids), Some(sources), Some(times)) =
            (ids.as_string_opt::<i32>(), sources.as_string_opt::<i32>(), times.as_primitive_opt::<TimestampMicrosecondType>())
        else {
            return vec![None; rows.num_rows()];
        };
        let tickers = column(column::TICKER).and_then(|t| t.as_string_opt::<i32>());
        (0..rows.num_rows())
            .map(|row| {
                let at = DateTime::from_timestamp_micros(times.value(row))?;
                Some(Self {
                    ticker: tickers.filter(|t| t.is_valid(row)).map(|t| t.value(row).to_string()),
                    day: at.date_naive(),
                    source_system: sources.value(row).to_string(),
                    message_id: ids.value(row).to_string(),
                })
            })
            .collect()
    }
}

/// The positions of `keys` whose rows the table's current snapshot holds.
pub async fn held(lake: &Lake, keys: &[Option<RowKey>]) -> Result<HashSet<usize>, LakeError> {
    let mut wanted: HashMap<&RowKey, Vec<usize>> = HashMap::new();
    for (position, key) in keys.iter().enumerate() {
        if let Some(key) = key {
            wanted.entry(key).or_default().push(position);
        }
    }
    let mut found = HashSet::new();
    let Some(filter) = partitions_of(wanted.keys().copied()) else { return Ok(found) };
    let table = lake.load(TableKind::Records).await?;
    if table.metadata().current_snapshot_id().is_none() {
        return Ok(found);
    }
    let scan = table
        .scan()
        .select([column::MESSAGE_ID, column::SOURCE_SYSTEM, column::TICKER, column::EVENT_TIMESTAMP])
        .with_filter(filter)
        .build()
        .map_err(LakeError::iceberg("planning the id check"))?;
    let mut batches = scan.to_arrow().await.map_err(LakeError::iceberg("reading the table for the id check"))?;
    while let Some(batch) = batches.try_next().await.map_err(LakeError::iceberg("reading the table for the id check"))? {
        let (ids, sources, tickers) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>(), batch.column(2).as_string::<i32>());
        let times = batch.column(3).as_primitive::<TimestampMicrosecondType>();
        for row in 0..batch.num_rows() {
            let Some(at) = DateTime::from_timestamp_micros(times.value(row)) else { continue };
            let key = RowKey {
                ticker: (!tickers.is_null(row)).then(|| tickers.value(row).to_string()),
                day: at.date_naive(),
                source_system: sources.value(row).to_string(),
                message_id: ids.value(row).to_string(),
            };
            if let Some(positions) = wanted.get(&key) {
                found.extend(positions.iter().copied());
            }
        }
    }
    Ok(found)
}

/// A filter on the tickers and days of `keys` (`None` without keys): the partitions their rows would land in.
fn partitions_of<'a>(keys: impl Iterator<Item = &'a RowKey>) -> Option<Predicate> {
    let (mut tickers, mut without_ticker, mut days) = (HashSet::new(), false, None::<(NaiveDate, NaiveDate)>);
    for key in keys {
        match &key.ticker {
            Some(ticker) => {
                tickers.insert(ticker.as_str());
            }
            None => without_ticker = true,
        }
        days = Some(days.map_or((key.day, key.day), |(first, last)| (first.min(key.day), last.max(key.day))));
    }
    let (first, last) = days?;
    let micros = |day: NaiveDate| day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros());
    let time = Reference::new(column::EVENT_TIMESTAMP);
    let mut filter = time.clone().greater_than_or_equal_to(Datum::timestamptz_micros(micros(first)?));
    if let Some(end) = last.succ_opt().and_then(micros) {
        filter = filter.and(time.less_than(Datum::timestamptz_micros(end)));
    }
    let ticker = Reference::new(column::TICKER);
    let by_ticker = match (tickers.is_empty(), without_ticker) {
        (false, false) => ticker.is_in(tickers.into_iter().map(Datum::string)),
        (false, true) => ticker.clone().is_in(tickers.into_iter().map(Datum::string)).or(ticker.is_null()),
        (true, _) => ticker.is_null(),
    };
    Some(filter.and(by_ticker))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_keyed_by_its_utc_day() {
        let record = serde_json::json!({"message_id": "m", "source_system": "x", "ticker": "AAPL", "event_timestamp": "2024-03-01T23:30:00-02:00"});
        let key = RowKey::of(&record).unwrap();
        assert_eq!(key.day, NaiveDate::from_ymd_opt(2024, 3, 2).unwrap());
        assert_eq!(key.ticker.as_deref(), Some("AAPL"));
        assert!(RowKey::of(&serde_json::json!({"message_id": "m", "source_system": "x", "event_timestamp": "yesterday"})).is_none());
    }

    #[test]
    fn the_filter_covers_every_day_and_ticker_and_rows_without_one() {
        let key = |ticker: Option<&str>, day: u32| RowKey {
            ticker: ticker.map(str::to_string),
            day: NaiveDate::from_ymd_opt(2024, 1, day).unwrap(),
            source_system: "x".into(),
            message_id: "m".into(),
        };
        let keys = [key(Some("MSFT"), 3), key(None, 1), key(Some("AAPL"), 2)];
        let filter = partitions_of(keys.iter()).unwrap().to_string();
        for wanted in ["2024-01-01", "2024-01-04", "MSFT", "AAPL", "IS NULL"] {
            assert!(filter.contains(wanted), "{wanted} in {filter}");
        }
        assert!(partitions_of(std::iter::empty()).is_none());
    }
}
