//! The replay ledger: which dead letters have been brought back into the records table.
//!
//! A dead letter is named by its source and sequence number (the dead-letter table holds each once). A
//! replay commits its rows and the dead letters they came from in one compare-and-swap: the records table's
//! property [`REPLAYED_PROPERTY`] holds the whole set after it, as ranges per source, and the new
//! snapshot's summary what that commit added ([`REPLAYED_ADDED_SUMMARY`]). A set, not a watermark: a replay may take some of a source's dead letters (`--rule`, `--since`)
//! and leave the others, which a later fix may bring back.
//!
//! Ranges stay few because a replay closes the gaps between its dead letters where no other dead letter of
//! the source lies ([`Replayed::insert_closing`]): a gap holds only rows that were committed normally and
//! never can be dead letters, as everything below a source's watermark has been judged already.
//!
//! A rollback takes out what the replays it rolls back added (their summaries say;
//! `crate::lake::history::rollback`): their rows are gone, so those dead letters are replayable again. The
//! set otherwise only grows, so where a rolled-back summary cannot be read the set is kept whole: a dead
//! letter then stays unreplayable rather than landing twice. An event that reached the table as a row
//! another way (redelivered after a rollback and judged under newer rules) is caught by its id before a
//! replay commits (`crate::ingest::replay`).

use std::collections::BTreeMap;

use iceberg::spec::TableMetadata;

use crate::lake::error::LakeError;

/// Table property holding the replayed set.
pub const REPLAYED_PROPERTY: &str = "sentiment-lake.replayed";

/// Snapshot summary key: what a replay commit added to the set.
pub const REPLAYED_ADDED_SUMMARY: &str = "sentiment-lake.replayed-added";

/// `source -> sorted, disjoint, non-adjacent inclusive ranges` of sequence numbers replayed (or given back
/// to redelivery by a rollback).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Replayed(BTreeMap<String, Vec<(i64, i64)>>);

impl Replayed {
    /// The set a table's properties hold (empty when none was ever committed).
    pub fn of(table: &str, metadata: &TableMetadata) -> Result<Self, LakeError> {
        match metadata.properties().get(REPLAYED_PROPERTY) {
            None => Ok(Self::default()),
            Some(text) => Self::parse(table, text),
        }
    }

    fn parse(table: &str, text: &str) -> Result<Self, LakeError> {
        let parsed: Self = serde_json::from_str(text)
            .map_err(|e| LakeError::Ledger { table: table.to_string(), detail: format!("the `{REPLAYED_PROPERTY}` property cannot be read: {e}") })?;
        if parsed.0.values().any(|ranges| ranges.iter().any(|(a, b)| a > b) || ranges.windows(2).any(|w| w[0].1 >= w[1].0)) {
            return Err(LakeError::Ledger { table: table.to_string(), detail: format!("the `{REPLAYED_PROPERTY}` property holds unordered ranges") });
        }
        Ok(parsed)
    }

    /// What a replay commit's snapshot added to the set (`None`: not a replay commit).
    pub fn added_by(table: &str, snapshot: &iceberg::spec::Snapshot) -> Result<Option<Self>, LakeError> {
        snapshot.summary().additional_properties.get(REPLAYED_ADDED_SUMMARY).map(|text| Self::parse(table, text)).transpose()
    }

    pub fn contains(&self, source: &str, sequence_number: i64) -> bool {
        let Some(ranges) = self.0.get(source) else { return false };
        let at = ranges.partition_point(|(_, last)| *last < sequence_number);
        ranges.get(at).is_some_and(|(first, _)| *first <= sequence_number)
    }

    /// Adds `first..=last` of `source`, merged with the ranges it overlaps or touches.
    pub fn insert_range(&mut self, source: &str, first: i64, last: i64) {
        let ranges = self.0.entry(source.to_string()).or_default();
        let (mut first, mut last) = (first.min(last), first.max(last));
        let start = ranges.partition_point(|(_, end)| end.saturating_add(1) < first);
        let mut end = start;
        while end < ranges.len() && ranges[end].0 <= last.saturating_add(1) {
            first = first.min(ranges[end].0);
            last = last.max(ranges[end].1);
            end += 1;
        }
        ranges.splice(start..end, [(first, last)]);
    }

    /// Adds the sorted `sequence_numbers` of `source`, each run joined across the gaps in which
    /// `others` (the source's other dead letters, sorted, not replayed) has nothing and `avoid` no range
    /// (what a concurrent rollback made replayable again since `others` was listed).
    pub fn insert_closing(&mut self, source: &str, sequence_numbers: &[i64], others: &[i64], avoid: &Replayed) {
        let avoided = avoid.0.get(source).map(Vec::as_slice).unwrap_or_default();
        let mut run: Option<(i64, i64)> = None;
        for &n in sequence_numbers {
            let closable = |last: i64| !has_between(others, last, n) && !avoided.iter().any(|(a, b)| *a < n.max(last) && *b > n.min(last));
            run = match run {
                Some((first, last)) if closable(last) => Some((first, n.max(last))),
                Some((first, last)) => {
                    self.insert_range(source, first, last);
                    Some((n, n))
                }
                None => Some((n, n)),
            };
        }
        if let Some((first, last)) = run {
            self.insert_range(source, first, last);
        }
    }

    /// What `self` holds and `other` does not.
    pub fn difference(&self, other: &Replayed) -> Replayed {
        let mut out = Replayed::default();
        for (source, ranges) in &self.0 {
            let theirs = other.0.get(source).map(Vec::as_slice).unwrap_or_default();
            for &(first, last) in ranges {
                // The part of `first..=last` not yet known to be covered; `None` once covered to its end.
                let mut from = Some(first);
                for &(a, b) in theirs.iter().filter(|(a, b)| *b >= first && *a <= last) {
                    let Some(start) = from else { break };
                    if a > start {
                        out.insert_range(source, start, a - 1);
                    }
                    from = (b < last).then(|| start.max(b + 1));
                }
                if let Some(start) = from {
                    out.insert_range(source, start, last);
                }
            }
        }
        out
    }

    /// Takes out everything `other` holds.
    pub fn remove_all(&mut self, other: &Replayed) {
        *self = self.difference(other);
    }

    /// Ranges held, over all sources (what bounds the property's size).
    pub fn ranges(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }

    pub fn to_property(&self) -> String {
        serde_json::to_string(&self.0).expect("ranges always serialise")
    }
}

/// Whether sorted `values` hold one strictly between `a` and `b`.
fn has_between(values: &[i64], a: i64, b: i64) -> bool {
    let (low, high) = (a.min(b), a.max(b));
    let at = values.partition_point(|v| *v <= low);
    values.get(at).is_some_and(|v| *v < high)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn members(set: &Replayed, source: &str) -> BTreeSet<i64> {
        (0..64).filter(|n| set.contains(source, *n)).collect()
    }

    fn well_formed(set: &Replayed) -> bool {
        set.0.values().all(|ranges| !ranges.is_empty() && ranges.iter().all(|(a, b)| a <= b) && ranges.windows(2).all(|w| w[0].1 + 1 < w[1].0))
    }

    proptest! {
        /// Against a plain set of numbers: inserting ranges, closing runs and taking differences hold
        /// exactly the members they should, in sorted, disjoint, non-adjacent ranges; closing never covers a
        /// dead letter left out.
        #[test]
        fn ranges_behave_as_a_set(
            inserts in prop::collection::vec((0i64..60, 0i64..4), 0..8),
            replayed in prop::collection::btree_set(0i64..60, 0..12),
            others in prop::collection::btree_set(0i64..60, 0..6),
            removed in prop::collection::vec((0i64..60, 0i64..6), 0..4),
        ) {
            let mut set = Replayed::default();
            let mut model = BTreeSet::new();
            for (first, len) in &inserts {
                set.insert_range("s", *first, first + len);
                model.extend(*first..=first + len);
            }
            prop_assert_eq!(members(&set, "s"), model.clone());
            let others: Vec<i64> = others.difference(&replayed).copied().filter(|n| !model.contains(n)).collect();
            let numbers: Vec<i64> = replayed.iter().copied().collect();
            set.insert_closing("s", &numbers, &others, &Replayed::default());
            prop_assert!(well_formed(&set));
            let now = members(&set, "s");
            prop_assert!(replayed.iter().all(|n| now.contains(n)));
            prop_assert!(model.iter().all(|n| now.contains(n)));
            prop_assert!(others.iter().all(|n| !now.contains(n)), "closed over a dead letter left out");
            let mut taken = Replayed::default();
            let mut taken_model = BTreeSet::new();
            for (first, len) in &removed {
                taken.insert_range("s", *first, first + len);
                taken_model.extend(*first..=first + len);
            }
            let left = set.difference(&taken);
            prop_assert!(well_formed(&left));
            prop_assert_eq!(members(&left, "s"), now.difference(&taken_model).copied().collect::<BTreeSet<_>>());
        }
    }

    #[test]
    fn ranges_merge_when_they_overlap_or_touch() {
        let mut set = Replayed::default();
        set.insert_range("s", 10, 12);
        set.insert_range("s", 20, 20);
        set.insert_range("s", 13, 14);
        assert_eq!(set.0["s"], vec![(10, 14), (20, 20)]);
        set.insert_range("s", 5, 25);
        assert_eq!(set.0["s"], vec![(5, 25)]);
        set.insert_range("s", 30, 27);
        assert_eq!(set.0["s"], vec![(5, 25), (27, 30)]);
        assert!(set.contains("s", 5) && set.contains("s", 25) && set.contains("s", 28));
        assert!(!set.contains("s", 26) && !set.contains("s", 4) && !set.contains("s", 31) && !set.contains("t", 5));
    }

    #[test]
    fn closing_joins_only_across_gaps_without_other_dead_letters() {
        let mut set = Replayed::default();
        // Dead letters at 3, 8, 12, 40, 41 and 90; 40 still fails.
        set.insert_closing("s", &[3, 8, 12, 41, 90], &[40], &Replayed::default());
        assert_eq!(set.0["s"], vec![(3, 12), (41, 90)]);
        assert!(!set.contains("s", 40), "a dead letter not replayed stays replayable");
        set.insert_closing("s", &[40], &[], &Replayed::default());
        assert_eq!(set.0["s"], vec![(3, 12), (40, 90)]);
        assert_eq!(set.ranges(), 2);
        let mut avoid = Replayed::default();
        avoid.insert_range("s", 200, 201);
        set.insert_closing("s", &[150, 300], &[], &avoid);
        assert!(!set.contains("s", 200) && !set.contains("s", 250), "no range closes over what a rollback reopened");
        set.insert_closing("s", &[300, 310], &[], &avoid);
        assert!(set.contains("s", 305), "a gap without reopened ranges still closes");
    }

    #[test]
    fn the_property_round_trips_and_refuses_disorder() {
        let mut set = Replayed::default();
        set.insert_closing("eventhubs://ns/hub/$Default/0", &[1, 2, 7], &[5], &Replayed::default());
        let parsed = Replayed::parse("t", &set.to_property()).unwrap();
        assert_eq!(parsed, set);
        assert!(Replayed::parse("t", r#"{"s":[[5,9],[7,12]]}"#).is_err());
        assert!(Replayed::parse("t", r#"{"s":[[9,5]]}"#).is_err());
        assert!(Replayed::parse("t", "not json").is_err());
    }

    #[test]
    fn difference_takes_out_exactly_the_other_ranges() {
        let mut set = Replayed::default();
        set.insert_range("s", 1, 20);
        set.insert_range("t", 5, 5);
        let mut other = Replayed::default();
        other.insert_range("s", 3, 4);
        other.insert_range("s", 10, 25);
        other.insert_range("u", 1, 1);
        let left = set.difference(&other);
        assert_eq!(left.0["s"], vec![(1, 2), (5, 9)]);
        assert_eq!(left.0["t"], vec![(5, 5)]);
        set.remove_all(&set.clone());
        assert_eq!(set.ranges(), 0);
        let mut max = Replayed::default();
        max.insert_range("s", i64::MAX - 1, i64::MAX);
        assert_eq!(max.difference(&max).ranges(), 0);
    }

    #[test]
    fn has_between_is_strict() {
        assert!(!has_between(&[5], 5, 9));
        assert!(!has_between(&[9], 5, 9));
        assert!(has_between(&[7], 5, 9));
        assert!(has_between(&[7], 9, 5));
        assert!(!has_between(&[], 1, 100));
    }
}
