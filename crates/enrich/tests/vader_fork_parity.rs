//! The vendored VADER fork (`src/vader`, speed patches only) must return
//! exactly what the `vader-parity` 0.1.0 crate returns. The crate is the
//! oracle; it is itself verified against Python vaderSentiment 3.3.2.
//!
//! The fork is private; `sentiment_enrich::__vader_scores` is a hidden test
//! hook that returns its four scores.

use proptest::prelude::*;
use vader_parity::SentimentIntensityAnalyzer;

fn assert_same(oracle: &SentimentIntensityAnalyzer, text: &str) {
    let want = oracle.polarity_scores(text);
    let got = sentiment_enrich::__vader_scores(text);
    assert_eq!(
        got,
        (want.neg, want.neu, want.pos, want.compound),
        "text: {text:?}"
    );
}

#[test]
fn evaluation_sets_and_edge_cases() {
    let oracle = SentimentIntensityAnalyzer::new();
    for data in [
        include_str!("../data/eval/finance_headlines.tsv"),
        include_str!("../data/eval/finance_headlines_holdout.tsv"),
    ] {
        for line in data.lines().filter(|l| !l.starts_with('#')) {
            if let Some(text) = line.rsplit('\t').next() {
                assert_same(&oracle, text);
            }
        }
    }
    for text in [
        "",
        "VADER is smart, handsome, and funny.",
        "VADER is VERY SMART, handsome, and FUNNY!!!",
        "The book was kind of good.",
        "At least it isn't a horrible book.",
        "Today only kinda sux! But I'll get by, lol",
        "Make sure you :) or :D today!",
        "Catch utf-8 emoji such as 💘 and 💋 and 😁",
        "Not bad at all",
        "ΣΊΣΥΦΟΣ is GREAT; ÉNORME succès!! 🚀🙄",
        "the shit, bad ass, kiss of death, yeah right",
        "\u{0130}stanbul ǅ ǈ İ ß ﬁ",
    ] {
        assert_same(&oracle, text);
    }
}

/// Every single-char emoji key must be non-ASCII for the fork's ASCII fast
/// path in `translate_emojis` to be exact.
#[test]
fn ascii_chars_are_not_emoji_keys() {
    let oracle = SentimentIntensityAnalyzer::new();
    for b in 0u8..128 {
        let c = char::from(b);
        let text = format!("good {c} bad {c}{c} ok");
        assert_same(&oracle, &text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_matches_oracle(text in "\\PC{0,120}") {
        let oracle = SentimentIntensityAnalyzer::new();
        assert_same(&oracle, &text);
    }

    #[test]
    fn random_ascii_words_match_oracle(words in proptest::collection::vec(
        prop_oneof![
            Just("good"), Just("GOOD"), Just("not"), Just("but"), Just("very"), Just("!"),
            Just("?"), Just("kind of"), Just("never"), Just(":)"), Just("bad"), Just("Great"),
            Just("least"), Just("no"), Just("sux"), Just("LOL"), Just("the shit"), Just("😁"),
        ],
        0..25,
    )) {
        let oracle = SentimentIntensityAnalyzer::new();
        assert_same(&oracle, &words.join(" "));
    }
}

/// All 23,703 human-rated sentences of the VADER paper, when fetched (see
/// scripts/fetch-vader-ground-truth.sh). Without the variable this test only
/// says so: the always-on tests above already pin parity, and
/// tests/vader_ground_truth.rs is the one that fails loudly without data.
#[test]
fn ground_truth_corpora_match_oracle() {
    let Some(dir) = std::env::var_os("VADER_GROUND_TRUTH_DIR") else {
        println!("VADER_GROUND_TRUTH_DIR unset: ground-truth parity sweep not run");
        return;
    };
    let oracle = SentimentIntensityAnalyzer::new();
    let mut n = 0;
    for name in [
        "tweets_GroundTruth.txt",
        "nytEditorialSnippets_GroundTruth.txt",
        "movieReviewSnippets_GroundTruth.txt",
        "amazonReviewSnippets_GroundTruth.txt",
    ] {
        let path = std::path::Path::new(&dir).join(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Some(text) = line.trim_end_matches('\r').splitn(3, '\t').nth(2) {
                assert_same(&oracle, text);
                n += 1;
            }
        }
    }
    println!("fork == vader-parity on {n} ground-truth sentences");
    assert!(n > 23_000);
}
