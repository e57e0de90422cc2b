//! Single-core throughput of `Analyzer::analyze`.
//!
//! ```text
//! CARGO_TARGET_DIR=target cargo run --release --example bench            # default 20,000 texts per size
//! CARGO_TARGET_DIR=target cargo run --release --example bench -- 50000
//! ```
//!
//! Texts are built deterministically from the project's finance headline set
//! (data/eval/finance_headlines.tsv) plus social-media style sentences,
//! concatenated to about 300 bytes ("short", a typical post or headline plus
//! lead) and about 1,000 bytes ("1 KB", a short article body). One thread,
//! one analyzer. Two rates are printed: per wall-clock second, and per
//! second of CPU time the thread actually got (Linux `/proc/thread-self/schedstat`),
//! which is the per-core figure and stays meaningful on a busy machine.

use std::hint::black_box;
use std::time::Instant;

use sentiment_enrich::{AnalysisInput, Analyzer, SourceMetadata};

const HEADLINES: &str = include_str!("../data/eval/finance_headlines.tsv");

const SOCIAL: &[&str] = &[
    "lol $GME to the moon 🚀🚀 bears are getting crushed today!!!",
    "Should I sell my $AAPL before earnings? Feels overvalued at 30x.",
    "Great, another guidance cut. What could possibly go wrong 🙄",
    "Loading up on calls, this dip is a gift.",
    "Management has no clue; worst capital allocation I have ever seen.",
    "Revenue beat but margins were weak and the CEO sounded nervous on the call.",
];

fn corpus(target_len: usize, n: usize) -> Vec<String> {
    let sentences: Vec<&str> = HEADLINES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit('\t').next())
        .chain(SOCIAL.iter().copied())
        .collect();
    let mut out = Vec::with_capacity(n);
    let mut k = 0usize;
    for _ in 0..n {
        let mut t = String::with_capacity(target_len + 200);
        while t.len() < target_len {
            // A fixed stride walks the sentence pool in a varied but reproducible order.
            t.push_str(sentences[k % sentences.len()]);
            t.push_str(". ");
            k = k.wrapping_add(7919);
        }
        // Cut at a char boundary at or before target_len (the pool has emoji).
        let mut cut = target_len.min(t.len());
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        t.truncate(cut);
        out.push(t);
    }
    out
}

fn run(analyzer: &Analyzer, label: &str, texts: &[String]) {
    let meta = SourceMetadata {
        followers: Some(1200),
        likes: Some(15),
        ..Default::default()
    };
    // Warm-up pass so first-touch page faults are not timed.
    for t in texts.iter().take(500) {
        black_box(analyzer.analyze(&input(t, &meta)));
    }
    let cpu0 = thread_cpu_secs();
    let start = Instant::now();
    for t in texts {
        black_box(analyzer.analyze(&input(t, &meta)));
    }
    let secs = start.elapsed().as_secs_f64();
    let avg_len = texts.iter().map(String::len).sum::<usize>() as f64 / texts.len() as f64;
    let n = texts.len() as f64;
    let cpu = match (cpu0, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => format!("{:.0} texts/s per CPU-second", n / (b - a)),
        _ => "CPU time unavailable".to_string(),
    };
    println!(
        "{label:>6}: {} texts, avg {avg_len:.0} bytes, {secs:.3} s wall, {:.0} texts/s wall, {cpu}, {:.1} MB/s wall",
        texts.len(),
        n / secs,
        n * avg_len / secs / 1e6
    );
}

/// Plain VADER on the same texts, as the reference point: the analyzer runs
/// VADER once per text plus once per clause that carries an aspect.
fn run_vader(label: &str, texts: &[String]) {
    let vader = vader_parity::SentimentIntensityAnalyzer::new();
    let cpu0 = thread_cpu_secs();
    let start = Instant::now();
    for t in texts {
        black_box(vader.polarity_scores(t));
    }
    let secs = start.elapsed().as_secs_f64();
    let n = texts.len() as f64;
    let cpu = match (cpu0, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => format!("{:.0} per CPU-second", n / (b - a)),
        _ => String::new(),
    };
    println!(
        "{label:>6}: vader-parity crate alone {:.0} texts/s wall, {cpu}",
        n / secs
    );
}

/// CPU time consumed by this thread so far (Linux only).
fn thread_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn input<'a>(t: &'a str, meta: &'a SourceMetadata) -> AnalysisInput<'a> {
    AnalysisInput {
        text: t,
        title: None,
        ticker: Some("AAPL"),
        source_system: "twitter",
        source_metadata: Some(meta),
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let start = Instant::now();
    let analyzer = Analyzer::new();
    println!(
        "Analyzer::new: {:.1} ms ({})",
        start.elapsed().as_secs_f64() * 1e3,
        analyzer.model_name()
    );
    let headline = corpus(100, n);
    let short = corpus(300, n);
    let long = corpus(1000, n / 2);
    run(&analyzer, "100B", &headline);
    run(&analyzer, "short", &short);
    run_vader("short", &short);
    run(&analyzer, "1KB", &long);
    run_vader("1KB", &long);
}
