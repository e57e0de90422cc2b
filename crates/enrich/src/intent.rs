//! `user_intent`: what the author is doing, from a fixed vocabulary
//! ([`INTENTS`]) chosen by ordered rules (first match wins):
//!
//! 1. `question`: the text ends with `?` or opens with an advice request
//!    ("should I", "anyone know", "thoughts on").
//! 2. `news`: the source is a news outlet ([`NEWS_SOURCES`]) or the record has
//!    an article title; questions aside, wire copy is news even when it says
//!    "analysts expect" or "rating cut to sell".
//! 3. `hold`: holding cues ("holding", "hodl", "not selling", "diamond hands").
//!    Checked before sell so that "not selling" is a hold.
//! 4. `sell`: selling/shorting cues ("sold", "selling", "shorting", "puts",
//!    "taking profits", "get out").
//! 5. `buy`: buying cues ("bought", "buying", "loading up", "calls", "long",
//!    "buy the dip").
//! 6. `prediction`: forward-looking cues ("will", "going to", "price target",
//!    "by eoy", "mark my words").
//! 7. `complaint`: negative text (score <= -0.3) with a complaint cue
//!    ("why does", "ridiculous", "scam", "worst", "rigged", insults such as
//!    "crooks" or "incompetent") or first person.
//! 8. `news` again for social posts written like a report: no first-person
//!    word and a reporting verb ("reports", "announces", "said", "according to").
//! 9. otherwise `discussion`.
//!
//! Limits: cue words, not parsing: "I'd never buy this" is `buy`; multi-intent
//! posts get only the first rule's label.

use crate::text::{Kind, PhraseTable, Tokens};

/// The complete output vocabulary.
pub const INTENTS: &[&str] = &[
    "buy",
    "sell",
    "hold",
    "question",
    "news",
    "prediction",
    "complaint",
    "discussion",
];

/// `source_system` values (lower-cased) treated as news outlets.
pub(crate) const NEWS_SOURCES: &[&str] = &[
    "news",
    "reuters",
    "bloomberg",
    "wsj",
    "ft",
    "cnbc",
    "marketwatch",
    "dowjones",
    "dow jones",
    "ap",
    "afp",
    "barrons",
    "yahoo finance",
    "yahoo_finance",
    "benzinga",
    "seekingalpha",
    "seeking alpha",
    "businesswire",
    "prnewswire",
    "globenewswire",
    "rss",
    "press_release",
];

const QUESTION_OPENERS: &[&str] = &[
    "should i",
    "should we",
    "anyone know",
    "does anyone",
    "thoughts on",
    "is it time",
    "what do you",
    "any thoughts",
    "is now",
];
const HOLD: &[&str] = &[
    "holding",
    "hodl",
    "hodling",
    "not selling",
    "diamond hands",
    "still holding",
    "holding strong",
    "hold the line",
    "not gonna sell",
    "won't sell",
    "never selling",
    "hold",
];
const SELL: &[&str] = &[
    "sold",
    "selling",
    "sell",
    "shorting",
    "shorted",
    "short it",
    "going short",
    "buying puts",
    "bought puts",
    "puts",
    "taking profits",
    "took profits",
    "take profits",
    "get out",
    "got out",
    "exited",
    "exit",
    "dumped",
    "dumping",
    "trimmed",
    "trimming",
    "cut my losses",
    "stop loss",
];
const BUY: &[&str] = &[
    "bought",
    "buying",
    "buy",
    "loading up",
    "loaded up",
    "load up",
    "adding",
    "added",
    "calls",
    "going long",
    "long",
    "accumulating",
    "accumulate",
    "buy the dip",
    "btfd",
    "picked up",
    "doubled down",
    "yolo",
    "all in",
    "entry",
];
const PREDICTION: &[&str] = &[
    "will",
    "going to",
    "gonna",
    "price target",
    "by eoy",
    "by end of year",
    "mark my words",
    "next week",
    "next month",
    "heading to",
    "headed to",
    "expect",
    "i predict",
    "predict",
    "will hit",
    "to the moon",
    "soon",
];
const COMPLAINT: &[&str] = &[
    "why does",
    "why is",
    "ridiculous",
    "scam",
    "worst",
    "rigged",
    "terrible",
    "awful",
    "lost",
    "sick of",
    "tired of",
    "unacceptable",
    "joke",
    "disgrace",
    "customer service",
    // insults aimed at a company or its managers are complaints too
    "crooks",
    "idiots",
    "clowns",
    "incompetent",
    "useless",
    "pathetic",
    "garbage",
    "trash",
    "shitty",
    "disgusting",
];
const REPORTING: &[&str] = &[
    "reports",
    "reported",
    "announces",
    "announced",
    "said",
    "says",
    "according to",
    "files",
    "filed",
    "posts",
    "posted",
    "to acquire",
    "launches",
    "names",
    "sees",
];
const FIRST_PERSON: &[&str] = &[
    "i", "i'm", "im", "my", "me", "we", "our", "i've", "i'd", "i’m",
];

/// Cue classes, in the order the rules test them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cue {
    Hold,
    Sell,
    Buy,
    Prediction,
    Complaint,
    Reporting,
    FirstPerson,
}

/// The compiled cue lists.
pub(crate) struct IntentRules {
    cues: PhraseTable<Cue>,
}

impl IntentRules {
    pub fn new() -> IntentRules {
        let lists: [(&[&str], Cue); 7] = [
            (HOLD, Cue::Hold),
            (SELL, Cue::Sell),
            (BUY, Cue::Buy),
            (PREDICTION, Cue::Prediction),
            (COMPLAINT, Cue::Complaint),
            (REPORTING, Cue::Reporting),
            (FIRST_PERSON, Cue::FirstPerson),
        ];
        // A phrase listed under two classes keeps the first (rule order), so
        // "not selling" is a hold cue and never a sell cue.
        let mut seen = std::collections::BTreeSet::new();
        let phrases = lists
            .iter()
            .flat_map(|(words, cue)| words.iter().map(move |w| (*w, *cue)))
            .filter(|(w, _)| seen.insert(*w));
        IntentRules {
            cues: PhraseTable::new(phrases),
        }
    }

    /// Picks the intent. `score` is the text's sentiment score.
    pub fn classify(
        &self,
        toks: &Tokens<'_>,
        source_system: &str,
        has_title: bool,
        score: f64,
    ) -> &'static str {
        let ends_with_question = toks
            .tokens
            .iter()
            .rev()
            .find(|t| t.kind != Kind::Symbol)
            .is_some_and(|t| t.lower == "?");
        let head: Vec<&str> = toks
            .tokens
            .iter()
            .filter(|t| t.kind == Kind::Word)
            .take(3)
            .map(|t| &*t.lower)
            .collect();
        let head = head.join(" ");
        if ends_with_question || QUESTION_OPENERS.iter().any(|q| head.starts_with(q)) {
            return "question";
        }
        let source = source_system.trim();
        if has_title || NEWS_SOURCES.iter().any(|s| s.eq_ignore_ascii_case(source)) {
            return "news";
        }
        let found = self.cues.find(toks);
        let has = |c: Cue| found.contains(&c);
        if has(Cue::Hold) {
            return "hold";
        }
        if has(Cue::Sell) {
            return "sell";
        }
        if has(Cue::Buy) {
            return "buy";
        }
        if has(Cue::Prediction) {
            return "prediction";
        }
        let first_person = has(Cue::FirstPerson);
        if score <= -0.3 && (has(Cue::Complaint) || first_person) {
            return "complaint";
        }
        if !first_person && has(Cue::Reporting) {
            return "news";
        }
        "discussion"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(text: &str, source: &str) -> &'static str {
        IntentRules::new().classify(&Tokens::new(text), source, false, 0.0)
    }

    #[test]
    fn vocabulary_is_closed() {
        for (t, s) in [
            ("Should I buy $TSLA here?", "twitter"),
            ("Apple raises dividend", "reuters"),
            ("", "twitter"),
            ("lol", "reddit"),
        ] {
            assert!(INTENTS.contains(&intent(t, s)));
        }
    }

    #[test]
    fn rules_in_order() {
        assert_eq!(intent("Should I buy $TSLA here", "twitter"), "question");
        assert_eq!(intent("Is NVDA overvalued?", "reddit"), "question");
        assert_eq!(intent("Goldman cuts Tesla to sell", "reuters"), "news");
        assert_eq!(
            intent("Not selling a single share, diamond hands", "reddit"),
            "hold"
        );
        assert_eq!(
            intent("Sold all my $AMC this morning", "stocktwits"),
            "sell"
        );
        assert_eq!(intent("Loading up on $AMD calls", "stocktwits"), "buy");
        assert_eq!(intent("$NVDA will hit 200 by EOY", "twitter"), "prediction");
        assert_eq!(
            intent("Microsoft announces new Surface lineup", "twitter"),
            "news"
        );
        assert_eq!(
            intent("Interesting chart on copper today", "twitter"),
            "discussion"
        );
    }

    #[test]
    fn complaint_needs_negative_score() {
        let t = Tokens::new("This broker is a scam, worst app ever");
        let rules = IntentRules::new();
        assert_eq!(rules.classify(&t, "reddit", false, -0.7), "complaint");
        assert_eq!(rules.classify(&t, "reddit", false, 0.2), "discussion");
    }
}
