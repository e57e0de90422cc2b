//! Which rollup rows answer a window: the window cut into whole days, hours and minutes, coarsest in the
//! middle, and the parts shorter than a minute at either end, which only raw rows can answer.
//!
//! No piece is coarser than the grain asked for: a time series by the hour reads whole hours and minutes
//! at most, so each piece's rows fall into exactly one of its buckets (minutes, hours, days and
//! Monday-started weeks all start on the boundaries of the finer grains).

use super::partial::{Dimension, Grain, RowKey};

/// What an answer from rollups reads: its window (`[from, to)` in microseconds), the coarsest grain that
/// may answer it (a time series by the hour cannot use whole days), the dimensions, and the ticker rows
/// must have (none: every ticker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub window: (i64, i64),
    pub coarsest: Grain,
    pub dimensions: Vec<Dimension>,
    pub ticker: Option<String>,
    pub detail: Detail,
}

/// What of a rollup row an answer reads. The rest is dropped as rows are read, so rows that differ only
/// there merge into one (a month of rows per ticker, source and day becomes one row per ticker for top
/// tickers): fewer rows held and folded, the same sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    /// Periods (a time series buckets by them).
    pub periods: bool,
    /// Tickers (top tickers groups by them).
    pub tickers: bool,
    /// Sources.
    pub sources: bool,
    /// Emotion counts and sums (the summary lists them); without them their columns are not read.
    pub emotions: bool,
}

impl Detail {
    pub const ALL: Detail = Detail { periods: true, tickers: true, sources: true, emotions: true };

    /// `key` without what this detail drops: periods become the epoch's day, tickers none, sources empty.
    pub fn coarsen(&self, key: &mut RowKey) {
        if !self.periods {
            key.grain = Grain::Day;
            key.period_start = 0;
        }
        if !self.tickers {
            key.ticker = None;
        }
        if !self.sources {
            key.source_system = String::new();
        }
    }
}

/// A part of a window and what answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The rollup rows of this grain, or raw rows for `None`.
    pub grain: Option<Grain>,
    /// `[from, to)` in microseconds since the epoch; for a grain, both on its boundaries.
    pub from: i64,
    pub to: i64,
}

/// `[from, to)` cut into pieces that tile it exactly, in time order, none empty and none of a grain
/// coarser than `coarsest`.
pub fn pieces(from: i64, to: i64, coarsest: Grain) -> Vec<Piece> {
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let grains: Vec<Grain> = [Grain::Day, Grain::Hour, Grain::Minute].into_iter().filter(|g| *g <= coarsest).collect();
    split(from, to, &grains, &mut out);
    out
}

/// [`pieces`] for a rollup state whose minute rows start at `minute_floor` (none: every minute has
/// them): whole minutes before the floor are raw pieces too. Hours and days are rolled up whatever their
/// age, so only the minute pieces at a window's edges (or a by-the-minute series) move, and raw pieces
/// stay at the edges: the pieces with a grain are one contiguous span.
pub fn pieces_from(from: i64, to: i64, coarsest: Grain, minute_floor: Option<i64>) -> Vec<Piece> {
    let Some(floor) = minute_floor else {
        return pieces(from, to, coarsest);
    };
    // Minute rows exist for the minutes starting at or after the floor. Taken from the next hour on (a
    // floor a rebuild sets is a day's start; one read from elsewhere may be anything): an edge's minutes
    // lie within one hour, so they are then all raw or all rolled up, and never leave a raw piece between
    // the hours and the minutes of the other side of it. Far past or future floors are clamped, so the
    // arithmetic cannot overflow.
    let bound = 1_i64 << 62;
    let floor = Grain::Hour.ceil(floor.clamp(-bound, bound));
    let mut out: Vec<Piece> = Vec::new();
    let mut push = |piece: Piece| match out.last_mut() {
        Some(last) if last.grain.is_none() && piece.grain.is_none() && last.to == piece.from => last.to = piece.to,
        _ => out.push(piece),
    };
    for piece in pieces(from, to, coarsest) {
        match piece.grain {
            Some(Grain::Minute) if piece.to <= floor => push(Piece { grain: None, ..piece }),
            Some(Grain::Minute) if piece.from < floor => {
                push(Piece { grain: None, from: piece.from, to: floor });
                push(Piece { grain: Some(Grain::Minute), from: floor, to: piece.to });
            }
            _ => push(piece),
        }
    }
    out
}

/// Cuts `[from, to)` into the whole periods of `grains[0]` it holds and recurses into what is left at
/// either end with the finer grains; raw once none is left.
fn split(from: i64, to: i64, grains: &[Grain], out: &mut Vec<Piece>) {
    if from >= to {
        return;
    }
    let Some((&grain, finer)) = grains.split_first() else {
        out.push(Piece { grain: None, from, to });
        return;
    };
    let (inner_from, inner_to) = (grain.ceil(from), grain.start(to));
    if inner_from >= inner_to {
        split(from, to, finer, out);
        return;
    }
    split(from, inner_from, finer, out);
    out.push(Piece { grain: Some(grain), from: inner_from, to: inner_to });
    split(inner_to, to, finer, out);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MINUTE: i64 = 60_000_000;
    const DAY: i64 = 24 * 60 * MINUTE;

    #[test]
    fn a_month_of_whole_minutes_needs_no_raw_rows() {
        let from = 20_000 * DAY + 13 * 60 * MINUTE + 7 * MINUTE;
        let to = from + 30 * DAY;
        let got = pieces(from, to, Grain::Day);
        assert!(got.iter().all(|p| p.grain.is_some()), "{got:?}");
        assert_eq!(got.iter().filter(|p| p.grain == Some(Grain::Day)).count(), 1);
        assert_eq!(got.len(), 5, "minutes, hours, days, hours, minutes: {got:?}");
        let hourly = pieces(from, to, Grain::Hour);
        assert_eq!(hourly.len(), 3, "minutes, hours, minutes: {hourly:?}");
        assert!(pieces(from, to, Grain::Minute).iter().all(|p| p.grain == Some(Grain::Minute)));
    }

    proptest! {
        #[test]
        fn pieces_tile_the_window_on_their_grains(from in -3 * DAY..40 * DAY, len in 0i64..35 * DAY, jitter in 0i64..MINUTE, coarsest in 0usize..3) {
            let (from, to) = (from + jitter, from + len);
            let coarsest = Grain::ALL[coarsest];
            let got = pieces(from, to, coarsest);
            let mut at = from;
            for piece in &got {
                prop_assert!(piece.from < piece.to, "empty piece {piece:?}");
                prop_assert_eq!(piece.from, at, "pieces leave no gap and do not overlap");
                if let Some(grain) = piece.grain {
                    prop_assert!(grain <= coarsest);
                    prop_assert_eq!(grain.start(piece.from), piece.from);
                    prop_assert_eq!(grain.start(piece.to), piece.to);
                } else {
                    prop_assert!(piece.to - piece.from < 2 * MINUTE, "raw rows only at the edges: {piece:?}");
                }
                at = piece.to;
            }
            prop_assert_eq!(at, to.max(from));
            prop_assert!(got.iter().filter(|p| p.grain.is_none()).count() <= 2);
        }

        #[test]
        fn pieces_from_a_floor_read_no_minute_before_it(
            from in -3 * DAY..40 * DAY, len in 0i64..35 * DAY, jitter in 0i64..MINUTE, coarsest in 0usize..3, floor in -5 * DAY..45 * DAY,
        ) {
            let (from, to) = (from + jitter, from + len);
            let coarsest = Grain::ALL[coarsest];
            let got = pieces_from(from, to, coarsest, Some(floor));
            let mut at = from;
            for piece in &got {
                prop_assert!(piece.from < piece.to, "empty piece {piece:?}");
                prop_assert_eq!(piece.from, at, "pieces leave no gap and do not overlap");
                if piece.grain == Some(Grain::Minute) {
                    prop_assert!(piece.from >= floor, "a minute piece before the floor: {piece:?}");
                }
                if let Some(grain) = piece.grain {
                    prop_assert_eq!(grain.start(piece.from), piece.from);
                    prop_assert_eq!(grain.start(piece.to), piece.to);
                }
                at = piece.to;
            }
            prop_assert_eq!(at, to.max(from));
            prop_assert!(got.iter().filter(|p| p.grain.is_none()).count() <= 2, "raw pieces only at either edge: {got:?}");
            let grained: Vec<&Piece> = got.iter().filter(|p| p.grain.is_some()).collect();
            prop_assert!(grained.windows(2).all(|w| w[0].to == w[1].from), "the pieces with a grain are one span: {got:?}");
            // Hours and days are the same as without a floor.
            let coarse = |ps: &[Piece]| ps.iter().filter(|p| p.grain.is_some_and(|g| g != Grain::Minute)).copied().collect::<Vec<_>>();
            prop_assert_eq!(coarse(&got), coarse(&pieces(from, to, coarsest)));
            prop_assert_eq!(pieces_from(from, to, coarsest, None), pieces(from, to, coarsest));
        }
    }

    #[test]
    fn a_floor_inside_an_edges_minutes_leaves_no_raw_piece_between_grains() {
        // Hours 10:00-14:00, then minutes 14:00-14:40; a floor at 14:20 would cut those minutes into raw
        // and rolled-up halves, leaving raw rows inside the rolled-up span (read twice with the delta).
        let (from, floor) = (20_000 * DAY + 10 * 60 * MINUTE, 20_000 * DAY + (14 * 60 + 20) * MINUTE);
        let got = pieces_from(from, from + (4 * 60 + 40) * MINUTE, Grain::Day, Some(floor));
        let grained: Vec<&Piece> = got.iter().filter(|p| p.grain.is_some()).collect();
        assert!(grained.windows(2).all(|w| w[0].to == w[1].from), "{got:?}");
        assert_eq!(got.last().map(|p| p.grain), Some(None), "the minutes after 14:00 are raw, at the edge: {got:?}");
        for floor in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1] {
            let got = pieces_from(from, from + 90 * MINUTE, Grain::Minute, Some(floor));
            assert_eq!(got.first().map(|p| p.from), Some(from));
        }
    }

    #[test]
    fn a_floor_that_is_not_a_time_leaves_every_minute_raw() {
        let from = 20_000 * DAY + 7 * MINUTE;
        let got = pieces_from(from, from + 10 * MINUTE, Grain::Minute, Some(i64::MAX));
        assert_eq!(got, vec![Piece { grain: None, from, to: from + 10 * MINUTE }]);
    }
}
