//! `influence_score`: how far a record is likely to reach, from its source and
//! engagement metadata. Not derivable from text.
//!
//! `influence = clamp(0.45·source + 0.30·audience + 0.20·engagement + 0.05·verified)`
//! where
//! * `source` is the prior of [`SOURCE_PRIOR`] (wire services highest, social
//!   lowest; [`DEFAULT_SOURCE_PRIOR`] for unknown sources);
//! * `audience = min(1, log10(1 + followers) / 7)` (10 million followers = 1);
//! * `engagement = min(1, log10(1 + likes + 2·reposts + replies) / 5)`
//!   (100,000 weighted interactions = 1; reposts spread further than likes);
//! * `verified` is 1 for a verified account.
//!
//! Documented default: when the record has no metadata at all, or metadata
//! whose fields are all `None`, the score is the source prior alone (not the
//! weighted formula), so a Reuters headline is 0.9 and an anonymous
//! unknown-source text 0.2. Limits: the priors are a project judgement,
//! not measured reach.

use crate::SourceMetadata;

/// Source reputation/reach priors in [0, 1], by lower-cased `source_system`.
pub(crate) const SOURCE_PRIOR: &[(&str, f64)] = &[
    ("reuters", 0.9),
    ("bloomberg", 0.9),
    ("dowjones", 0.85),
    ("dow jones", 0.85),
    ("wsj", 0.85),
    ("ft", 0.85),
    ("ap", 0.85),
    ("cnbc", 0.75),
    ("marketwatch", 0.7),
    ("barrons", 0.7),
    ("yahoo finance", 0.6),
    ("yahoo_finance", 0.6),
    ("news", 0.6),
    ("businesswire", 0.55),
    ("prnewswire", 0.55),
    ("globenewswire", 0.55),
    ("benzinga", 0.5),
    ("seekingalpha", 0.45),
    ("seeking alpha", 0.45),
    ("twitter", 0.3),
    ("x", 0.3),
    ("stocktwits", 0.25),
    ("reddit", 0.25),
    ("forum", 0.2),
];

/// Prior for a source not in [`SOURCE_PRIOR`].
pub(crate) const DEFAULT_SOURCE_PRIOR: f64 = 0.2;

pub(crate) fn source_prior(source_system: &str) -> f64 {
    let s = source_system.trim();
    SOURCE_PRIOR
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(s))
        .map_or(DEFAULT_SOURCE_PRIOR, |(_, v)| *v)
}

pub(crate) fn score(source_system: &str, meta: Option<&SourceMetadata>) -> f64 {
    let prior = source_prior(source_system);
    let Some(m) = meta.filter(|m| **m != SourceMetadata::default()) else {
        return prior;
    };
    let log_scale = |x: u64, decades: f64| ((1.0 + x as f64).log10() / decades).clamp(0.0, 1.0);
    let audience = m.followers.map_or(0.0, |f| log_scale(f, 7.0));
    let interactions = m
        .likes
        .unwrap_or(0)
        .saturating_add(m.reposts.unwrap_or(0).saturating_mul(2))
        .saturating_add(m.replies.unwrap_or(0));
    let engagement = log_scale(interactions, 5.0);
    let verified = if m.verified == Some(true) { 1.0 } else { 0.0 };
    (0.45 * prior + 0.30 * audience + 0.20 * engagement + 0.05 * verified).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_source_prior() {
        assert_eq!(score("Reuters", None), 0.9);
        assert_eq!(score("twitter", Some(&SourceMetadata::default())), 0.3);
        assert_eq!(score("somewhere", None), DEFAULT_SOURCE_PRIOR);
    }

    #[test]
    fn engagement_raises_and_saturates() {
        let small = SourceMetadata {
            followers: Some(10),
            likes: Some(1),
            ..Default::default()
        };
        let big = SourceMetadata {
            followers: Some(50_000_000),
            likes: Some(u64::MAX),
            reposts: Some(u64::MAX),
            replies: Some(u64::MAX),
            verified: Some(true),
        };
        let s = score("twitter", Some(&small));
        let b = score("twitter", Some(&big));
        assert!(s < b && b <= 1.0, "{s} {b}");
        assert!((b - (0.45 * 0.3 + 0.30 + 0.20 + 0.05)).abs() < 1e-12);
    }
}
