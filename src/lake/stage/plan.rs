//! Which staged entries one commit pass takes: a pure function of the listing, the committed watermarks and
//! the clock, so its rules can be tested exhaustively.
//!
//! - A source's watermark advances only through *contiguous* ranges: from `watermark + 1`, each entry must
//!   start at or before the end of the ranges taken so far plus one. An entry missing from this listing
//!   (not yet visible, or being written) therefore holds its successors back instead of being skipped and
//!   later dropped as "already committed".
//! - A gap that persists longer than the grace period is real (events expired from the hub before they
//!   were delivered, or a checkpoint moved past a failed batch): it is bridged and counted, so no source
//!   stalls forever.
//! - Entries wholly at or below the watermark are obsolete (redeliveries of committed batches, or left
//!   behind by a crash after the commit) and are deleted unread.
//! - A range a rollback took out ([`Awaiting`]) is never bridged, however old the gap: only a replay brings
//!   it back. Entries staged before the rollback count for nothing inside it (obsolete when they lie wholly
//!   inside, their rows inside it dropped otherwise), and for a source the rollback target had never seen, the
//!   source starts only where the replay does.
//! - A pass is bounded by bytes and entries; the oldest data goes first, and a source with more than one
//!   pass' worth is split oldest-first (its later ranges follow in the next pass, still contiguous).

use std::time::Duration;

use chrono::{DateTime, Utc};

use std::collections::BTreeMap;

use super::ledger::{Awaiting, Watermarks};
use super::staging::{Listing, StagedEntry};

/// Bounds of one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassBounds {
    /// Staged bytes read into one pass (at least one entry is always taken).
    pub max_bytes: u64,
    pub max_entries: usize,
    /// How long a gap in a source's sequence numbers may persist before it is bridged.
    pub gap_grace: Duration,
}

/// The entries of one source taken into a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePass {
    pub source: String,
    pub key: String,
    /// The committed watermark the pass starts from.
    pub committed: Option<i64>,
    /// The watermark once the pass lands: the end of the contiguous ranges taken.
    pub through: i64,
    /// Taken entries, in sequence order.
    pub entries: Vec<StagedEntry>,
    /// Gaps bridged on the way (inclusive ranges of sequence numbers nobody staged).
    pub gaps: Vec<(i64, i64)>,
    /// Entries staged before a rollback that reach past its range: path -> the sequence number at or
    /// below which their rows were rolled back (dropped when they are read).
    pub floors: BTreeMap<String, i64>,
}

/// What one pass does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassPlan {
    pub sources: Vec<SourcePass>,
    /// Entries wholly covered by the committed watermark: delete without reading.
    pub obsolete: Vec<StagedEntry>,
    /// Entries left for a later pass because the bounds were reached.
    pub deferred: usize,
    /// Entries waiting behind a gap that is still within its grace period.
    pub waiting: usize,
    /// Entries in directories whose source is unknown (no descriptor yet).
    pub unnamed: usize,
    /// Entries held back until a replay brings a rolled-back range (see [`Awaiting`]).
    pub awaiting_replay: usize,
}

impl PassPlan {
    pub fn bytes(&self) -> u64 {
        self.sources.iter().flat_map(|s| &s.entries).map(|e| e.size).sum()
    }

    pub fn entries(&self) -> usize {
        self.sources.iter().map(|s| s.entries.len()).sum()
    }
}

/// Which rows of a planned entry count, by sequence number: those above the source's committed
/// `watermark` and above the entry's rollback `floor`, each sequence number once per source (`seen` holds
/// the ones an earlier entry of the pass already gave). The commit and the answers that include staged
/// rows ([`crate::lake::tail`]) select with this one rule.
pub fn rows_taken(
    sequence_numbers: &[i64],
    watermark: Option<i64>,
    floor: Option<i64>,
    seen: &mut std::collections::HashSet<i64>,
) -> arrow_array::BooleanArray {
    let above = watermark.unwrap_or(i64::MIN).max(floor.unwrap_or(i64::MIN));
    sequence_numbers.iter().map(|&seq| Some(seq > above && seen.insert(seq))).collect()
}

/// Plans the next pass over `listing`.
pub fn next_pass(listing: &Listing, committed: &Watermarks, awaiting: &Awaiting, bounds: PassBounds, now: DateTime<Utc>) -> PassPlan {
    let mut plan = PassPlan::default();
    let grace = chrono::Duration::from_std(bounds.gap_grace).unwrap_or(chrono::Duration::MAX);
    // Oldest data first: sources ordered by their oldest entry.
    let mut keys: Vec<(&String, &Vec<StagedEntry>)> = listing.by_key.iter().collect();
    keys.sort_by_key(|(key, entries)| (entries.iter().map(|e| e.staged_at).min(), *key));
    let (mut bytes, mut count, mut full) = (0u64, 0usize, false);
    for (key, entries) in keys {
        let Some(source) = listing.sources.get(key) else {
            plan.unnamed += entries.len();
            continue;
        };
        let watermark = committed.get(source);
        let awaited = awaiting.get(source);
        // (entry, the first sequence number it brings: past a rollback's range when staged before it)
        let mut ranged: Vec<(&StagedEntry, i64)> = Vec::with_capacity(entries.len());
        let mut floors = BTreeMap::new();
        for entry in entries {
            let Some((first, last)) = entry.range else {
                continue;
            };
            let stale = awaited.filter(|a| entry.staged_id().is_some_and(|id| a.staged_before(&id)));
            let useful_from = match stale {
                Some(a) if last <= a.through => {
                    plan.obsolete.push(entry.clone());
                    continue;
                }
                Some(a) if first <= a.through => {
                    floors.insert(entry.path.clone(), a.through);
                    a.through + 1
                }
                _ => first,
            };
            if watermark.is_some_and(|w| last <= w) {
                plan.obsolete.push(entry.clone());
            } else {
                ranged.push((entry, useful_from));
            }
        }
        ranged.sort_by(|(a, fa), (b, fb)| (fa, a.range, &a.path).cmp(&(fb, b.range, &b.path)));
        let mut pass = SourcePass {
            source: source.clone(),
            key: key.clone(),
            committed: watermark,
            through: i64::MIN,
            entries: Vec::new(),
            gaps: Vec::new(),
            floors: BTreeMap::new(),
        };
        let mut reached = watermark;
        for (i, (entry, first)) in ranged.iter().enumerate() {
            let (_, last) = entry.range.expect("ranged entries only");
            let first = *first;
            if full {
                plan.deferred += ranged.len() - i;
                break;
            }
            match (reached, awaited) {
                (Some(end), _) if first > end.saturating_add(1) => {
                    let gap = (end + 1, first - 1);
                    let rolled_back = awaited.is_some_and(|a| gap.0 <= a.through && a.after.is_none_or(|after| gap.1 > after));
                    if rolled_back {
                        plan.awaiting_replay += ranged.len() - i;
                        break;
                    }
                    if now - entry.staged_at < grace {
                        plan.waiting += ranged.len() - i;
                        break;
                    }
                    pass.gaps.push(gap);
                }
                // A source the rollback target never saw starts where its replay does, not above it.
                (None, Some(a)) if first > a.through => {
                    plan.awaiting_replay += ranged.len() - i;
                    break;
                }
                _ => {}
            }
            let taken_any = count > 0;
            if taken_any && (bytes + entry.size > bounds.max_bytes || count + 1 > bounds.max_entries) {
                full = true;
                plan.deferred += ranged.len() - i;
                break;
            }
            bytes += entry.size;
            count += 1;
            reached = Some(reached.map_or(last, |end| end.max(last)));
            if let Some(floor) = floors.get(&entry.path) {
                pass.floors.insert(entry.path.clone(), *floor);
            }
            pass.entries.push((*entry).clone());
        }
        if let Some(end) = reached.filter(|_| !pass.entries.is_empty()) {
            pass.through = end;
            plan.sources.push(pass);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::lake::stage::EntryKind;

    fn t(seconds_ago: i64) -> DateTime<Utc> {
        now() - chrono::Duration::seconds(seconds_ago)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap()
    }

    fn entry(key: &str, first: i64, last: i64, size: u64, age: i64) -> StagedEntry {
        StagedEntry {
            path: format!("_staging/t/{key}/{first}_{last}_x.parquet"),
            key: key.into(),
            kind: EntryKind::Rows,
            range: Some((first, last)),
            size,
            staged_at: t(age),
        }
    }

    fn listing(entries: Vec<StagedEntry>) -> Listing {
        let mut listing = Listing::default();
        for e in entries {
            listing.sources.insert(e.key.clone(), format!("src-{}", e.key));
            listing.by_key.entry(e.key.clone()).or_default().push(e);
        }
        listing
    }

    fn bounds() -> PassBounds {
        PassBounds { max_bytes: 1_000, max_entries: 100, gap_grace: Duration::from_secs(300) }
    }

    fn ranges(pass: &SourcePass) -> Vec<(i64, i64)> {
        pass.entries.iter().map(|e| e.range.unwrap()).collect()
    }

    #[test]
    fn a_missing_range_holds_its_successors_back_until_the_grace_period_ends() {
        let mut w = Watermarks::default();
        w.advance("src-a", 100);
        let l = listing(vec![entry("a", 201, 300, 10, 10), entry("a", 101, 150, 10, 10)]);
        let plan = next_pass(&l, &w, &Awaiting::default(), bounds(), now());
        assert_eq!(ranges(&plan.sources[0]), vec![(101, 150)], "151..=200 is not listed: 201.. waits");
        assert_eq!((plan.sources[0].through, plan.waiting), (150, 1));

        let l = listing(vec![entry("a", 201, 300, 10, 301), entry("a", 101, 150, 10, 400)]);
        let plan = next_pass(&l, &w, &Awaiting::default(), bounds(), now());
        assert_eq!(ranges(&plan.sources[0]), vec![(101, 150), (201, 300)], "a gap older than the grace is bridged");
        assert_eq!(plan.sources[0].gaps, vec![(151, 200)]);
        assert_eq!(plan.sources[0].through, 300);
    }

    #[test]
    fn overlaps_chain_and_covered_entries_are_obsolete() {
        let mut w = Watermarks::default();
        w.advance("src-a", 100);
        let l = listing(vec![entry("a", 1, 100, 10, 5), entry("a", 51, 150, 10, 5), entry("a", 120, 180, 10, 5), entry("a", 181, 181, 10, 5)]);
        let plan = next_pass(&l, &w, &Awaiting::default(), bounds(), now());
        assert_eq!(plan.obsolete.iter().map(|e| e.range.unwrap()).collect::<Vec<_>>(), vec![(1, 100)]);
        assert_eq!(ranges(&plan.sources[0]), vec![(51, 150), (120, 180), (181, 181)]);
        assert_eq!(plan.sources[0].through, 181);
    }

    #[test]
    fn rows_above_the_watermark_and_floor_are_taken_once() {
        let mut seen = std::collections::HashSet::new();
        let taken = |mask: arrow_array::BooleanArray| mask.iter().map(Option::unwrap).collect::<Vec<_>>();
        assert_eq!(taken(rows_taken(&[4, 5, 6, 7], Some(5), None, &mut seen)), vec![false, false, true, true]);
        assert_eq!(taken(rows_taken(&[6, 7, 8], Some(5), None, &mut seen)), vec![false, false, true], "6 and 7 came with the first entry");
        assert_eq!(taken(rows_taken(&[9, 10, 11], None, Some(10), &mut seen)), vec![false, false, true], "at or below a rollback's floor");
        assert_eq!(taken(rows_taken(&[1, 2], None, None, &mut std::collections::HashSet::new())), vec![true, true], "a new source");
    }

    #[test]
    fn a_new_source_starts_at_its_first_listed_range() {
        let l = listing(vec![entry("b", 7, 9, 10, 1), entry("b", 10, 12, 10, 1)]);
        let plan = next_pass(&l, &Watermarks::default(), &Awaiting::default(), bounds(), now());
        assert_eq!((plan.sources[0].committed, plan.sources[0].through), (None, 12));
    }

    #[test]
    fn bounds_split_oldest_first_and_always_take_one_entry() {
        let l = listing(vec![entry("old", 1, 10, 600, 100), entry("old", 11, 20, 600, 90), entry("new", 1, 5, 10, 1)]);
        let plan = next_pass(&l, &Watermarks::default(), &Awaiting::default(), bounds(), now());
        assert_eq!(plan.sources.len(), 1);
        assert_eq!(ranges(&plan.sources[0]), vec![(1, 10)], "the oldest source's oldest range first");
        assert_eq!(plan.deferred, 2);
        let huge = listing(vec![entry("x", 1, 10, 50_000, 1)]);
        assert_eq!(
            next_pass(&huge, &Watermarks::default(), &Awaiting::default(), bounds(), now()).entries(),
            1,
            "larger than the bound, still progress"
        );
    }

    #[test]
    fn keys_without_a_known_source_are_left_alone() {
        let mut l = listing(vec![entry("a", 1, 2, 1, 1)]);
        l.sources.clear();
        let plan = next_pass(&l, &Watermarks::default(), &Awaiting::default(), bounds(), now());
        assert!(plan.sources.is_empty());
        assert_eq!(plan.unnamed, 1);
    }

    fn awaiting(after: Option<i64>, through: i64, rolled_back_at: uuid::Uuid) -> Awaiting {
        let mut awaiting = Awaiting::default();
        let awaited = crate::lake::Awaited { after, through, rolled_back_at: rolled_back_at.to_string(), to_snapshot: 1, at: now() };
        awaiting.record("src-a", awaited);
        awaiting
    }

    /// An entry named with a UUIDv7 of `millis` (its staging time).
    fn named(key: &str, first: i64, last: i64, millis: u64) -> StagedEntry {
        let id = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, millis / 1000, (millis % 1000) as u32 * 1_000_000));
        StagedEntry { path: format!("_staging/t/{key}/{first}_{last}_{id}.arrow"), ..entry(key, first, last, 10, 10_000) }
    }

    fn rollback_at(millis: u64) -> uuid::Uuid {
        uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, millis / 1000, (millis % 1000) as u32 * 1_000_000))
    }

    #[test]
    fn a_rolled_back_range_is_never_bridged_and_stale_entries_count_for_nothing_in_it() {
        let mut w = Watermarks::default();
        w.advance("src-a", 100);
        let awaited = awaiting(Some(100), 200, rollback_at(5_000));
        // Staged long ago (far past the grace), after the rollback: the live stream above the range.
        let live = listing(vec![named("a", 201, 300, 6_000)]);
        let plan = next_pass(&live, &w, &awaited, bounds(), now());
        assert!(plan.sources.is_empty(), "201.. waits for the replay");
        assert_eq!(plan.awaiting_replay, 1);
        // Before the rollback: a redelivery inside the range (obsolete), a batch straddling its end (kept, from 201).
        let stale = listing(vec![named("a", 150, 160, 4_000), named("a", 190, 210, 4_000), named("a", 101, 200, 6_000)]);
        let plan = next_pass(&stale, &w, &awaited, bounds(), now());
        assert_eq!(plan.obsolete.iter().map(|e| e.range.unwrap()).collect::<Vec<_>>(), vec![(150, 160)]);
        let pass = &plan.sources[0];
        assert_eq!(ranges(pass), vec![(101, 200), (190, 210)]);
        assert_eq!(pass.floors.values().copied().collect::<Vec<_>>(), vec![200], "the straddling batch's rows up to 200 are the rollback's");
        assert_eq!(pass.through, 210);
    }

    #[test]
    fn a_source_the_target_never_saw_starts_where_its_replay_does() {
        let awaited = awaiting(None, 200, rollback_at(5_000));
        let plan = next_pass(&listing(vec![named("a", 201, 300, 6_000)]), &Watermarks::default(), &awaited, bounds(), now());
        assert!(plan.sources.is_empty() && plan.awaiting_replay == 1);
        let plan =
            next_pass(&listing(vec![named("a", 1, 200, 6_000), named("a", 201, 300, 6_000)]), &Watermarks::default(), &awaited, bounds(), now());
        assert_eq!(plan.sources[0].through, 300);
    }

    proptest! {
        /// Whatever is staged before and after a rollback, in any order and age: the watermark reaches past
        /// the awaited range only through entries staged after the rollback that cover it without a gap, and
        /// no row inside the range comes from an entry staged before it.
        #[test]
        fn an_awaited_range_is_crossed_only_by_its_replay(
            entries in prop::collection::vec((1i64..300, 0i64..40, any::<bool>()), 1..12),
            after in 0i64..100,
            span in 1i64..100,
        ) {
            let through = after + span;
            let awaited = awaiting(Some(after), through, rollback_at(5_000));
            let shown: Vec<StagedEntry> = entries.iter().map(|&(first, len, late)| named("a", first, first + len, if late { 6_000 } else { 4_000 })).collect();
            let mut w = Watermarks::default();
            w.advance("src-a", after);
            let plan = next_pass(&listing(shown), &w, &awaited, PassBounds { gap_grace: Duration::ZERO, ..bounds() }, now());
            for pass in &plan.sources {
                let mut reached = after;
                for e in &pass.entries {
                    let (first, last) = e.range.unwrap();
                    let late = e.staged_id().unwrap() > rollback_at(5_000);
                    let from = if late { first } else { through + 1 };
                    if reached < through {
                        prop_assert!(late || from > through, "a stale entry counted inside the range: {:?}", e.range);
                        prop_assert!(from <= reached + 1, "the range was bridged at {} by {:?}", reached, e.range);
                    }
                    if !late {
                        prop_assert!(pass.floors.get(&e.path).is_none_or(|f| *f == through) && (last <= through || pass.floors.contains_key(&e.path) || first > through));
                    }
                    reached = reached.max(last);
                }
            }
        }
    }

    proptest! {
        /// Whatever subset of a source's ranges is listed, in any order: the pass takes a contiguous run
        /// starting right after the watermark, never passes a missing range that is within its grace, and
        /// every listed entry is taken, obsolete, waiting or deferred.
        #[test]
        fn passes_never_skip_a_range_that_may_still_appear(
            cuts in prop::collection::btree_set(1i64..400, 1..20),
            visible in prop::collection::vec(any::<bool>(), 20),
            watermark in prop::option::of(0i64..200),
            max_bytes in 1u64..200,
        ) {
            let mut bounds_list = vec![1i64];
            bounds_list.extend(cuts.iter().copied().filter(|&c| c > 1));
            bounds_list.push(401);
            let all: Vec<(i64, i64)> = bounds_list.windows(2).map(|w| (w[0], w[1] - 1)).collect();
            let shown: Vec<StagedEntry> = all.iter().enumerate().filter(|(i, _)| visible[i % visible.len()])
                .map(|(_, &(a, b))| entry("s", a, b, 10, 1)).collect();
            let mut w = Watermarks::default();
            if let Some(wm) = watermark { w.advance("src-s", wm); }
            let b = PassBounds { max_bytes, max_entries: 1000, gap_grace: Duration::from_secs(300) };
            let plan = next_pass(&listing(shown.clone()), &w, &Awaiting::default(), b, now());
            let taken: Vec<(i64, i64)> = plan.sources.iter().flat_map(ranges).collect();
            prop_assert_eq!(taken.len() + plan.obsolete.len() + plan.waiting + plan.deferred + plan.awaiting_replay, shown.len());
            let mut reached = watermark;
            for &(a, last) in &taken {
                if let Some(end) = reached { prop_assert!(a <= end + 1, "{:?} after {:?}", (a, last), reached); }
                reached = Some(reached.map_or(last, |e| e.max(last)));
            }
            for o in &plan.obsolete { prop_assert!(o.range.unwrap().1 <= watermark.unwrap()); }
        }
    }
}
