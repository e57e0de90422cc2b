//! The integration contract: totality (never panics), ranges, determinism
//! (bit-identical output for the same input, across analyzers and threads),
//! sharing via `Arc`, and the documented defaults.

use std::sync::Arc;

use proptest::prelude::*;
use sentiment_enrich::{
    Analysis, AnalysisInput, Analyzer, SourceMetadata, ANALYZER_VERSION, INTENTS,
};

fn check_ranges(a: &Analysis) {
    assert!((-1.0..=1.0).contains(&a.sentiment_score), "{a:?}");
    assert!((0.0..=1.0).contains(&a.sentiment_magnitude), "{a:?}");
    assert!((0.0..=1.0).contains(&a.subjectivity_score), "{a:?}");
    assert!((0.0..=1.0).contains(&a.toxicity_score), "{a:?}");
    assert!((0.0..=1.0).contains(&a.influence_score), "{a:?}");
    assert_eq!(a.emotion_intensity_vector.len(), 9);
    assert!(
        a.emotion_intensity_vector
            .values()
            .all(|v| (0.0..=1.0).contains(v)),
        "{a:?}"
    );
    assert!(
        a.primary_emotion == "neutral"
            || a.emotion_intensity_vector.contains_key(&a.primary_emotion),
        "{a:?}"
    );
    assert!(
        a.aspect_based_sentiment
            .values()
            .all(|v| (-1.0..=1.0).contains(v)),
        "{a:?}"
    );
    // Every scored aspect is listed, and the list has no duplicates.
    for k in a.aspect_based_sentiment.keys() {
        assert!(a.aspect_target_identification.contains(k), "{a:?}");
    }
    let mut sorted = a.aspect_target_identification.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), a.aspect_target_identification.len());
    assert!(INTENTS.contains(&a.user_intent.as_str()), "{a:?}");
    for f in [
        a.sentiment_score,
        a.sentiment_magnitude,
        a.subjectivity_score,
        a.toxicity_score,
        a.influence_score,
    ] {
        // Rounded to 4 decimals.
        assert!(
            ((f64::from(f) * 1e4).round() / 1e4 - f64::from(f)).abs() < 1e-6,
            "{f}"
        );
    }
}

fn analyzer() -> &'static Analyzer {
    static A: std::sync::OnceLock<Analyzer> = std::sync::OnceLock::new();
    A.get_or_init(Analyzer::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    /// Any Unicode text, title, ticker and source: no panic, fields in range,
    /// and the same result twice.
    #[test]
    fn never_panics_and_is_deterministic(
        text in "\\PC{0,400}",
        title in proptest::option::of("\\PC{0,80}"),
        ticker in proptest::option::of("[A-Za-z$.]{0,6}"),
        source in "[a-zA-Z _]{0,12}",
        followers in proptest::option::of(any::<u64>()),
        likes in proptest::option::of(any::<u64>()),
        verified in proptest::option::of(any::<bool>()),
    ) {
        let meta = SourceMetadata { followers, likes, reposts: likes, replies: followers, verified };
        let input = AnalysisInput {
            text: &text,
            title: title.as_deref(),
            ticker: ticker.as_deref(),
            source_system: &source,
            source_metadata: Some(&meta),
        };
        let a = analyzer().analyze(&input);
        check_ranges(&a);
        prop_assert_eq!(a, analyzer().analyze(&input));
    }

    /// Finance-flavoured word salad reaches more rules than random Unicode.
    #[test]
    fn finance_word_salad_is_total(words in proptest::collection::vec(prop_oneof![
        Just("$AAPL"), Just("Apple"), Just("beats"), Just("estimates"), Just("not"), Just("but"),
        Just("guidance"), Just("cut"), Just("5%"), Just("$1.2 billion"), Just("?"), Just("!"),
        Just("/s"), Just("🚀"), Just("🙄"), Just("shares"), Just("plunge"), Just("CEO"), Just("\n"),
        Just("Great,"), Just("another"), Just("dividend"), Just("Best Buy"), Just("NASDAQ:"), Just("IT"),
        Just("ÉNORME"), Just("\u{0301}"), Just(";"), Just("\""), Just("shit"),
    ], 0..60)) {
        let text = words.join(" ");
        let a = analyzer().analyze(&AnalysisInput {
            text: &text, title: None, ticker: Some("AAPL"), source_system: "stocktwits", source_metadata: None,
        });
        check_ranges(&a);
    }
}

#[test]
fn empty_and_huge_inputs() {
    let a = analyzer();
    let empty = a.analyze(&AnalysisInput {
        text: "",
        title: None,
        ticker: None,
        source_system: "",
        source_metadata: None,
    });
    check_ranges(&empty);
    assert_eq!(empty.sentiment_score, 0.0);
    assert_eq!(empty.primary_emotion, "neutral");
    assert_eq!(empty.user_intent, "discussion");
    assert!(empty.entity_recognition.is_empty());

    let huge = "Apple beats estimates but guidance disappoints; shares fall 3% 🚀 ".repeat(20_000);
    let h = a.analyze(&AnalysisInput {
        text: &huge,
        title: None,
        ticker: None,
        source_system: "news",
        source_metadata: None,
    });
    check_ranges(&h);
    assert_eq!(h.aspect_target_identification, vec!["earnings", "guidance"]);
}

#[test]
fn identical_across_analyzers_and_threads() {
    let texts = [
        "Apple beats earnings estimates, stock jumps 5%",
        "Great, another dividend cut. What could possibly go wrong 🙄",
        "$TSLA to the moon!!! 🚀 short squeeze, bears in shambles",
        "Netflix revenue rose but guidance disappointed; CEO resigns",
    ];
    let shared = Arc::new(Analyzer::new());
    let fresh = Analyzer::new();
    let expected: Vec<Analysis> = texts
        .iter()
        .map(|t| {
            fresh.analyze(&AnalysisInput {
                text: t,
                title: None,
                ticker: None,
                source_system: "twitter",
                source_metadata: None,
            })
        })
        .collect();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let a = Arc::clone(&shared);
            std::thread::spawn(move || {
                texts
                    .iter()
                    .map(|t| {
                        a.analyze(&AnalysisInput {
                            text: t,
                            title: None,
                            ticker: None,
                            source_system: "twitter",
                            source_metadata: None,
                        })
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        let got = h.join().expect("thread");
        for (g, e) in got.iter().zip(&expected) {
            // Bit-identical floats, not just approximately equal.
            assert_eq!(g.sentiment_score.to_bits(), e.sentiment_score.to_bits());
            assert_eq!(g, e);
        }
    }
}

#[test]
fn versioning_and_model_name() {
    assert_eq!(ANALYZER_VERSION, "rules-1.0.0");
    assert_eq!(
        analyzer().model_name(),
        "rules-1.0.0(vader-3.3.2,finance-1,pattern-en-1.3,empath-0.89,profanity-check-1.9.1,pytickersymbols-1.17.10)"
    );
}

#[test]
fn influence_default_without_metadata() {
    let a = analyzer();
    let r = a.analyze(&AnalysisInput {
        text: "x",
        title: None,
        ticker: None,
        source_system: "Reuters",
        source_metadata: None,
    });
    assert_eq!(r.influence_score, 0.9);
    let u = a.analyze(&AnalysisInput {
        text: "x",
        title: None,
        ticker: None,
        source_system: "unknown-blog",
        source_metadata: None,
    });
    assert_eq!(u.influence_score, 0.2);
}

/// One end-to-end example per field family, on the analyzer's public output.
#[test]
fn every_field_on_realistic_posts() {
    let a = analyzer();
    let run = |text: &str, source: &str| {
        a.analyze(&AnalysisInput {
            text,
            title: None,
            ticker: None,
            source_system: source,
            source_metadata: None,
        })
    };
    let r = run(
        "Apple beats earnings estimates, stock jumps 5% to $190",
        "reuters",
    );
    assert!(r.sentiment_score > 0.5 && r.sentiment_magnitude > 0.3);
    assert_eq!(r.aspect_target_identification, vec!["earnings"]);
    assert!(r.aspect_based_sentiment["earnings"] > 0.5);
    assert_eq!(r.user_intent, "news");
    assert!(r
        .entity_recognition
        .iter()
        .any(|e| e.text == "Apple" && e.entity_type == "ORG"));
    assert!(r
        .entity_recognition
        .iter()
        .any(|e| e.text == "5%" && e.entity_type == "PERCENT"));
    assert!(r
        .entity_recognition
        .iter()
        .any(|e| e.text == "$190" && e.entity_type == "MONEY"));
    assert!(!r.sarcasm_detection);
    assert!(r.toxicity_score < 0.1);

    let s = run(
        "Great, another guidance cut from $INTC. What could possibly go wrong 🙄",
        "twitter",
    );
    assert!(s.sarcasm_detection);
    assert!(s
        .entity_recognition
        .iter()
        .any(|e| e.text == "INTC" && e.entity_type == "TICKER"));

    let t = run(
        "This management team is full of crooks and idiots, what a shitty quarter",
        "reddit",
    );
    assert!(t.toxicity_score > 0.8, "{t:?}");
    assert_eq!(t.user_intent, "complaint");

    let f = run(
        "Panic selling everywhere, the market crash is a bloodbath",
        "stocktwits",
    );
    assert_eq!(f.primary_emotion, "fear");
    assert!(f.sentiment_score < -0.5);

    let g = run(
        "$GME to the moon 🚀🚀 tendies incoming, loading up on calls",
        "stocktwits",
    );
    assert_eq!(g.primary_emotion, "greed");
    assert_eq!(g.user_intent, "buy");

    let subj = run(
        "I think this is an absolutely amazing, beautiful company",
        "reddit",
    );
    assert!(subj.subjectivity_score > 0.6);
    assert!(
        run("Apple reported revenue of $90 billion on Thursday", "news").subjectivity_score < 0.2
    );

    let q = run("Should I sell my $NVDA before earnings?", "reddit");
    assert_eq!(q.user_intent, "question");

    let asp = run(
        "Revenue beat estimates, but guidance was cut and margins shrank",
        "news",
    );
    assert!(asp.aspect_based_sentiment["revenue"] > 0.0, "{asp:?}");
    assert!(asp.aspect_based_sentiment["guidance"] < 0.0, "{asp:?}");
}
