//! Which rollup state answers which records snapshot.
//!
//! Every rollup snapshot names in its summary the records snapshot whose rows it holds, all of them and
//! nothing else ([`COVERS_PROPERTY`]). For a records snapshot `at`, the rollup's *base* is the newest
//! snapshot on the rollup's own lineage whose covered snapshot is `at` or one of `at`'s ancestors; the
//! records snapshots between the two are the *delta*, answered from their added files. The delta may hold
//! appends (rows added) and replaces (compaction, rows unchanged); anything else (an overwrite or delete by
//! another tool) cannot be followed file by file, and neither can a lineage broken by expiry: the rollup
//! must then be rebuilt from the live rows. A rollback of the records table needs nothing: the covered
//! snapshot of the newer rollup states is no longer an ancestor of `at`, so an older one is the base.
//!
//! A rollup snapshot may also have a *minute floor* ([`MINUTE_FLOOR_PROPERTY`]): it holds minute rows for
//! the minutes from the floor on, and hour and day rows for every period. History older than the rollup
//! (a migration's years of rows, each its own minute in every dimension) costs as many minute rows as raw
//! rows, so a rebuild rolls it up by the hour and day only; the minutes before the floor are answered from
//! raw rows ([`crate::rollup::pieces_from`]). A state with a floor names what it covers under its own key
//! ([`FLOORED_COVERS_PROPERTY`]), which versions from before floors do not know: they never take it for
//! a state with minute rows everywhere (they find an older state, or rebuild), and never commit on top of
//! it. A state under the old key has minute rows for every period; a floored state whose floor cannot be
//! read is trusted for no minute.

use std::collections::HashMap;

use iceberg::spec::{Operation, TableMetadata};

/// The summary key of a rollup snapshot naming the records snapshot it covers.
pub const COVERS_PROPERTY: &str = "sentiment-lake.rollup-covers";

/// The summary key of a rollup snapshot with a minute floor naming the records snapshot it covers.
pub const FLOORED_COVERS_PROPERTY: &str = "sentiment-lake.rollup-covers-floored";

/// The summary key of a rollup snapshot naming its minute floor (microseconds since the epoch).
pub const MINUTE_FLOOR_PROPERTY: &str = "sentiment-lake.rollup-minute-floor";

/// How many records snapshots one base search looks back through; a rollup further behind is rebuilt.
pub const MAX_LINEAGE: usize = 10_000;

/// The rollup state answering a records snapshot, and what it lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The rollup snapshot to read.
    pub rollup_snapshot: i64,
    /// The records snapshot it covers.
    pub covers: i64,
    /// Appends after `covers` up to the asked snapshot, oldest first: their added files are not rolled up.
    pub delta: Vec<i64>,
    /// The first minute it holds minute rows for (none: every minute).
    pub minute_floor: Option<i64>,
}

/// Why no rollup state answers a records snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Uncovered {
    #[error("the records table has no snapshot {0}")]
    UnknownSnapshot(i64),
    #[error("the rollup table covers no snapshot of this records snapshot's lineage (no rollups yet, or they are too far behind)")]
    NoBase,
    #[error("records snapshot {snapshot} is a {operation} (rows changed in place): rollups follow appends and compactions only")]
    NotFollowable { snapshot: i64, operation: String },
}

/// The records snapshot a rollup snapshot covers.
pub fn covered_by(snapshot: &iceberg::spec::Snapshot) -> Option<i64> {
    let properties = &snapshot.summary().additional_properties;
    properties.get(FLOORED_COVERS_PROPERTY).or_else(|| properties.get(COVERS_PROPERTY))?.parse().ok()
}

/// The minute floor of a rollup snapshot: none for a state under the old key (minute rows everywhere); a
/// floored state's floor that is missing or cannot be read as a time is taken as the end of time, so that
/// none of its minute rows answers anything.
pub fn minute_floor_of(snapshot: &iceberg::spec::Snapshot) -> Option<i64> {
    let properties = &snapshot.summary().additional_properties;
    properties.contains_key(FLOORED_COVERS_PROPERTY).then(|| properties.get(MINUTE_FLOOR_PROPERTY).and_then(|f| f.parse().ok()).unwrap_or(i64::MAX))
}

/// The summary keys of a rollup snapshot holding the rows of records snapshot `covers`, minute rows from
/// `minute_floor` on: every commit to the rollup table writes both.
pub fn state_summary(covers: i64, minute_floor: Option<i64>) -> HashMap<String, String> {
    match minute_floor {
        None => HashMap::from([(COVERS_PROPERTY.to_string(), covers.to_string())]),
        Some(floor) => {
            HashMap::from([(FLOORED_COVERS_PROPERTY.to_string(), covers.to_string()), (MINUTE_FLOOR_PROPERTY.to_string(), floor.to_string())])
        }
    }
}

/// The rollup state answering records snapshot `at` ([`Base`]).
pub fn base(records: &TableMetadata, rollup: &TableMetadata, at: i64) -> Result<Base, Uncovered> {
    records.snapshot_by_id(at).ok_or(Uncovered::UnknownSnapshot(at))?;
    // `at` and its ancestors, newest first, as far as the table still knows them.
    let mut lineage = Vec::new();
    let mut position = HashMap::new();
    let mut next = Some(at);
    while let Some(id) = next.filter(|_| lineage.len() < MAX_LINEAGE) {
        let Some(snapshot) = records.snapshot_by_id(id) else { break };
        position.insert(id, lineage.len());
        lineage.push(snapshot);
        next = snapshot.parent_snapshot_id();
    }
    let mut rollup_next = rollup.current_snapshot_id();
    let mut seen = 0;
    while let Some(id) = rollup_next.filter(|_| seen < MAX_LINEAGE) {
        seen += 1;
        let Some(snapshot) = rollup.snapshot_by_id(id) else { break };
        if let Some(index) = covered_by(snapshot).and_then(|covers| position.get(&covers).copied()) {
            let mut delta = Vec::new();
            for newer in lineage[..index].iter().rev() {
                match newer.summary().operation {
                    Operation::Append => delta.push(newer.snapshot_id()),
                    Operation::Replace => {}
                    ref other => {
                        return Err(Uncovered::NotFollowable { snapshot: newer.snapshot_id(), operation: other.as_str().to_string() });
                    }
                }
            }
            return Ok(Base { rollup_snapshot: id, covers: lineage[index].snapshot_id(), delta, minute_floor: minute_floor_of(snapshot) });
        }
        rollup_next = snapshot.parent_snapshot_id();
    }
    Err(Uncovered::NoBase)
}

#[cfg(test)]
mod tests {
    use super::*;
    use iceberg::spec::{FormatVersion, NestedField, PrimitiveType, Schema, Snapshot, Summary, TableMetadataBuilder, Type};

    fn metadata(snapshots: &[(i64, Option<i64>, Operation, Option<i64>)], current: Option<i64>) -> TableMetadata {
        let schema = Schema::builder().with_fields(vec![NestedField::optional(1, "x", Type::Primitive(PrimitiveType::Int)).into()]).build().unwrap();
        let mut builder = TableMetadataBuilder::new(
            schema,
            iceberg::spec::PartitionSpec::unpartition_spec(),
            iceberg::spec::SortOrder::unsorted_order(),
            "memory:///t".to_string(),
            FormatVersion::V2,
            Default::default(),
        )
        .unwrap()
        .build()
        .unwrap()
        .metadata
        .into_builder(None);
        for (seq, (id, parent, operation, covers)) in snapshots.iter().enumerate() {
            let mut properties = HashMap::new();
            if let Some(covers) = covers {
                properties.insert(COVERS_PROPERTY.to_string(), covers.to_string());
            }
            let snapshot = Snapshot::builder()
                .with_snapshot_id(*id)
                .with_parent_snapshot_id(*parent)
                .with_sequence_number(seq as i64 + 1)
                .with_timestamp_ms(chrono::Utc::now().timestamp_millis() + 1_000 + seq as i64)
                .with_manifest_list(format!("memory:///t/{id}.avro"))
                .with_summary(Summary { operation: operation.clone(), additional_properties: properties })
                .with_schema_id(0)
                .build();
            builder = builder.add_snapshot(snapshot).unwrap();
        }
        if let Some(current) = current {
            let main = iceberg::spec::SnapshotReference::new(current, iceberg::spec::SnapshotRetention::branch(None, None, None));
            builder = builder.set_ref("main", main).unwrap();
        }
        builder.build().unwrap().metadata
    }

    #[test]
    fn a_floored_state_is_named_under_a_key_older_versions_do_not_read() {
        let snapshot = |summary: HashMap<String, String>| {
            Snapshot::builder()
                .with_snapshot_id(1)
                .with_sequence_number(1)
                .with_timestamp_ms(0)
                .with_manifest_list("memory:///t/1.avro")
                .with_summary(Summary { operation: Operation::Append, additional_properties: summary })
                .with_schema_id(0)
                .build()
        };
        let floored = snapshot(state_summary(7, Some(1_000)));
        assert!(!floored.summary().additional_properties.contains_key(COVERS_PROPERTY), "what versions before floors read");
        assert_eq!((covered_by(&floored), minute_floor_of(&floored)), (Some(7), Some(1_000)));
        let plain = snapshot(state_summary(7, None));
        assert_eq!((covered_by(&plain), minute_floor_of(&plain)), (Some(7), None));
        let unreadable = snapshot(HashMap::from([
            (FLOORED_COVERS_PROPERTY.to_string(), "7".to_string()),
            (MINUTE_FLOOR_PROPERTY.to_string(), "soon".to_string()),
        ]));
        assert_eq!(minute_floor_of(&unreadable), Some(i64::MAX), "no minute row of it answers");
        let missing = snapshot(HashMap::from([(FLOORED_COVERS_PROPERTY.to_string(), "7".to_string())]));
        assert_eq!(minute_floor_of(&missing), Some(i64::MAX));
    }

    #[test]
    fn the_delta_holds_the_appends_after_the_covered_snapshot() {
        let records = metadata(
            &[
                (1, None, Operation::Append, None),
                (2, Some(1), Operation::Append, None),
                (3, Some(2), Operation::Replace, None),
                (4, Some(3), Operation::Append, None),
            ],
            Some(4),
        );
        let rollup = metadata(&[(10, None, Operation::Append, Some(1))], Some(10));
        assert_eq!(base(&records, &rollup, 4), Ok(Base { rollup_snapshot: 10, covers: 1, delta: vec![2, 4], minute_floor: None }));
        assert_eq!(base(&records, &rollup, 1), Ok(Base { rollup_snapshot: 10, covers: 1, delta: vec![], minute_floor: None }));
    }

    #[test]
    fn after_a_rollback_an_older_rollup_state_is_the_base() {
        // Records 1 <- 2 <- 3, rolled back to 2 and then 4 appended on it; rollups covered 1, then 3.
        let records = metadata(
            &[
                (1, None, Operation::Append, None),
                (2, Some(1), Operation::Append, None),
                (3, Some(2), Operation::Append, None),
                (4, Some(2), Operation::Append, None),
            ],
            Some(4),
        );
        let rollup = metadata(&[(10, None, Operation::Append, Some(1)), (11, Some(10), Operation::Append, Some(3))], Some(11));
        assert_eq!(base(&records, &rollup, 4), Ok(Base { rollup_snapshot: 10, covers: 1, delta: vec![2, 4], minute_floor: None }));
        assert_eq!(
            base(&records, &rollup, 3),
            Ok(Base { rollup_snapshot: 11, covers: 3, delta: vec![], minute_floor: None }),
            "as of before the rollback"
        );
    }

    #[test]
    fn what_cannot_be_followed_says_why() {
        let records = metadata(&[(1, None, Operation::Append, None), (2, Some(1), Operation::Overwrite, None)], Some(2));
        let rollup = metadata(&[(10, None, Operation::Append, Some(1))], Some(10));
        assert!(matches!(base(&records, &rollup, 2), Err(Uncovered::NotFollowable { snapshot: 2, .. })));
        let empty = metadata(&[], None);
        assert_eq!(base(&records, &empty, 1), Err(Uncovered::NoBase));
        assert_eq!(base(&records, &rollup, 99), Err(Uncovered::UnknownSnapshot(99)));
    }
}
