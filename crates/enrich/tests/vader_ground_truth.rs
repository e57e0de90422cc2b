//! Accuracy on the VADER paper's human-rated corpora (Hutto & Gilbert,
//! ICWSM-14), fetched from the vaderSentiment 3.3.2 sdist by
//! `scripts/fetch-vader-ground-truth.sh` (never committed: the texts come from
//! Twitter and the NYT).
//!
//! Run:
//! ```text
//! scripts/fetch-vader-ground-truth.sh .vader-gt
//! VADER_GROUND_TRUTH_DIR=.vader-gt cargo test --release --test vader_ground_truth -- --nocapture
//! ```
//! The test fails (it does not skip) when the variable or files are missing.
//! Floors: tweets r >= 0.87 (VADER's published figure; the finance overlay
//! must not pull general text below it), NYT r >= 0.50 (VADER measures 0.503),
//! Amazon and movie snippets no worse than plain VADER.

use std::path::PathBuf;

use sentiment_enrich::{AnalysisInput, Analyzer};
use vader_parity::SentimentIntensityAnalyzer;

fn ground_truth_dir() -> PathBuf {
    match std::env::var_os("VADER_GROUND_TRUTH_DIR") {
        Some(d) => PathBuf::from(d),
        None => panic!(
            "VADER_GROUND_TRUTH_DIR is not set. Run `scripts/fetch-vader-ground-truth.sh DIR` \
             and then `VADER_GROUND_TRUTH_DIR=DIR cargo test --release --test vader_ground_truth`"
        ),
    }
}

/// (human mean / 4, text) rows of a `*_GroundTruth.txt` file.
fn load(name: &str) -> Vec<(f64, String)> {
    let path = ground_truth_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}. Run `scripts/fetch-vader-ground-truth.sh {}` first",
            path.display(),
            ground_truth_dir().display()
        )
    });
    let text = String::from_utf8_lossy(&bytes);
    let rows: Vec<(f64, String)> = text
        .lines()
        .filter_map(|l| {
            let mut c = l.trim_end_matches('\r').splitn(3, '\t');
            let _id = c.next()?;
            let mean: f64 = c.next()?.trim().parse().ok()?;
            Some((mean / 4.0, c.next()?.to_string()))
        })
        .collect();
    assert!(
        rows.len() > 1000,
        "{} has only {} rows",
        path.display(),
        rows.len()
    );
    rows
}

fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx).powi(2);
        syy += (y - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

/// (r of this crate, r of plain VADER, rows whose score differs from VADER).
fn evaluate(file: &str, source: &str) -> (f64, f64, usize, usize) {
    let rows = load(file);
    let analyzer = Analyzer::new();
    let vader = SentimentIntensityAnalyzer::new();
    let gold: Vec<f64> = rows.iter().map(|r| r.0).collect();
    let mut ours = Vec::with_capacity(rows.len());
    let mut plain = Vec::with_capacity(rows.len());
    let mut changed = 0;
    for (_, text) in &rows {
        let a = analyzer.analyze(&AnalysisInput {
            text,
            title: None,
            ticker: None,
            source_system: source,
            source_metadata: None,
        });
        let v = vader.polarity_scores(text).compound;
        if (f64::from(a.sentiment_score) - v).abs() > 1e-4 {
            changed += 1;
        }
        ours.push(f64::from(a.sentiment_score));
        plain.push(v);
    }
    (
        pearson(&ours, &gold),
        pearson(&plain, &gold),
        changed,
        rows.len(),
    )
}

#[test]
fn tweets_pearson_at_least_vader_published() {
    let (r, r_vader, changed, n) = evaluate("tweets_GroundTruth.txt", "twitter");
    println!(
        "tweets: n={n} r={r:.4} (plain VADER r={r_vader:.4}); score differs from plain VADER on {changed}"
    );
    assert!(
        r >= 0.87,
        "tweets Pearson r {r:.4} < 0.87 (plain VADER {r_vader:.4})"
    );
}

#[test]
fn nyt_pearson_floor() {
    let (r, r_vader, changed, n) = evaluate("nytEditorialSnippets_GroundTruth.txt", "news");
    println!("nyt: n={n} r={r:.4} (plain VADER r={r_vader:.4}); score differs from plain VADER on {changed}");
    assert!(
        r >= 0.50,
        "NYT Pearson r {r:.4} < 0.50 (plain VADER {r_vader:.4})"
    );
}

/// Amazon and movie-review snippets: reported for information; the overlay
/// must not make them worse than plain VADER (by more than rounding noise).
#[test]
fn reviews_not_worse_than_vader() {
    for (file, source) in [
        ("amazonReviewSnippets_GroundTruth.txt", "reviews"),
        ("movieReviewSnippets_GroundTruth.txt", "reviews"),
    ] {
        let (r, r_vader, changed, n) = evaluate(file, source);
        println!("{file}: n={n} r={r:.4} (plain VADER r={r_vader:.4}); score differs from plain VADER on {changed}");
        assert!(
            r >= r_vader - 0.005,
            "{file}: r {r:.4} vs VADER {r_vader:.4}"
        );
    }
}
