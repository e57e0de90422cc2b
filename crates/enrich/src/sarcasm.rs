//! `sarcasm_detection`: documented rules, default `false`.
//!
//! No permissively licensed sarcasm lexicon or model exists in the package
//! registries, so this is a short rule list aimed at the patterns of finance
//! posts. The text is sarcastic when any rule fires:
//!
//! 1. an explicit marker: `/s`, `#sarcasm`, `#not`, or one of the emoji in
//!    [`SARCASM_EMOJI`] (eye-roll, upside-down face, smirk, clown);
//! 2. a stock phrase from [`SARCASM_PHRASES`] ("yeah right", "what could
//!    possibly go wrong", "said no one ever"), matched over words so
//!    punctuation in between ("Yeah, right") does not matter;
//! 3. praise followed by a loss: a sentence that opens with a praise word
//!    ([`PRAISE`], e.g. "Great," / "Love how") and contains a negative finance
//!    overlay term ("Great, another dividend cut");
//! 4. a scare-quoted praise word (`"genius" management`).
//!
//! Limits: precision-oriented and low recall; irony without these surface
//! cues (deadpan understatement, context-dependent jokes) is missed. The
//! rule only flags; it does not change `sentiment_score`.

use crate::finance_lexicon::Match;
use crate::text::{Kind, PhraseTable, Tokens};

const SARCASM_EMOJI: &[&str] = &["🙄", "🙃", "😏", "🤡"];

const SARCASM_PHRASES: &[&str] = &[
    "yeah right",
    "yeah sure",
    "oh great",
    "oh wonderful",
    "oh joy",
    "what could possibly go wrong",
    "what could go wrong",
    "said no one ever",
    "said nobody ever",
    "just what we needed",
    "sure because",
    "totally not",
    "because that worked so well",
    "nothing to see here",
    "slow clap",
];

/// Words that, opening a sentence, set up ironic praise. Rule 3 also requires
/// a negative finance term, so plain "Great quarter!" is not flagged.
const PRAISE: &[&str] = &[
    "great",
    "wonderful",
    "fantastic",
    "awesome",
    "perfect",
    "brilliant",
    "lovely",
    "nice",
    "amazing",
    "terrific",
    "yay",
    "congrats",
    "congratulations",
    "genius",
    "love",
    "loving",
    "thanks",
    "stellar",
    "outstanding",
];

/// Praise words that read as irony when scare-quoted.
const QUOTED_PRAISE: &[&str] = &[
    "great",
    "amazing",
    "strong",
    "solid",
    "record",
    "stellar",
    "genius",
    "brilliant",
    "visionary",
    "innovative",
    "growth",
    "guidance",
    "profitable",
    "best",
    "smart",
    "safe",
];

/// The compiled phrase list.
pub(crate) struct SarcasmRules {
    phrases: PhraseTable<()>,
}

impl SarcasmRules {
    pub fn new() -> SarcasmRules {
        SarcasmRules {
            phrases: PhraseTable::new(SARCASM_PHRASES.iter().map(|p| (*p, ()))),
        }
    }

    pub fn detect(&self, toks: &Tokens<'_>, overlay: &[Match]) -> bool {
        explicit_marker(toks)
            || !self.phrases.find(toks).is_empty()
            || praise_then_loss(toks, overlay)
            || scare_quotes(toks)
    }
}

fn explicit_marker(toks: &Tokens<'_>) -> bool {
    let t = &toks.tokens;
    t.iter().any(|x| SARCASM_EMOJI.contains(&&*x.lower))
        || t.windows(2).any(|w| {
            let tag = matches!(&*w[1].lower, "sarcasm" | "not") && w[0].lower == "#";
            // "/s" must be a token of its own: "/s" at the end or before a space.
            let slash_s = w[0].lower == "/"
                && w[1].lower == "s"
                && w[0].span.end == w[1].span.start
                && !toks.text[w[1].span.end..].starts_with(|c: char| c.is_alphanumeric());
            (tag && w[0].span.end == w[1].span.start) || slash_s
        })
}

fn praise_then_loss(toks: &Tokens<'_>, overlay: &[Match]) -> bool {
    if !overlay.iter().any(|m| m.target < 0.0) {
        return false;
    }
    let t = &toks.tokens;
    let mut opens_with_praise = vec![false; toks.sentences.len()];
    let mut seen_word = vec![false; toks.sentences.len()];
    for (i, x) in t.iter().enumerate() {
        let s = x.sentence;
        if x.kind != Kind::Word || s >= seen_word.len() || seen_word[s] {
            continue;
        }
        seen_word[s] = true;
        if PRAISE.contains(&&*x.lower) {
            // "Great," / "Great!" / "Love how" / "Great, another"
            let next = t.get(i + 1);
            opens_with_praise[s] = next.is_some_and(|n| {
                matches!(
                    &*n.lower,
                    "," | "!" | "." | "how" | "that" | "another" | "more"
                )
            });
        }
    }
    overlay.iter().any(|m| {
        m.target < 0.0
            && opens_with_praise
                .get(t[m.first].sentence)
                .copied()
                .unwrap_or(false)
    })
}

fn scare_quotes(toks: &Tokens<'_>) -> bool {
    let is_quote = |s: &str| matches!(s, "\"" | "“" | "”" | "'" | "‘" | "’");
    toks.tokens.windows(3).any(|w| {
        is_quote(&w[0].lower)
            && is_quote(&w[2].lower)
            && w[1].kind == Kind::Word
            && QUOTED_PRAISE.contains(&&*w[1].lower)
            && w[0].span.end == w[1].span.start
            && w[1].span.end == w[2].span.start
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sentiment::SentimentModel;

    fn sarcastic(text: &str) -> bool {
        let m = SentimentModel::new();
        let t = Tokens::new(text);
        let o = m.lexicon.matches(&t, true, &[]);
        SarcasmRules::new().detect(&t, &o)
    }

    #[test]
    fn explicit_markers() {
        assert!(sarcastic("Best CEO ever /s"));
        assert!(sarcastic("Love this stock #sarcasm"));
        assert!(sarcastic("Another record quarter 🙄"));
        assert!(!sarcastic("Moved files to /srv and /sbin"));
    }

    #[test]
    fn phrases_and_praise_then_loss() {
        assert!(sarcastic("Yeah, right, guidance is totally achievable"));
        assert!(sarcastic("Great, another dividend cut."));
        assert!(sarcastic("Love how $TSLA tanks every time I buy"));
        assert!(!sarcastic("Great quarter, revenue beat estimates"));
    }

    #[test]
    fn scare_quotes_on_praise() {
        assert!(sarcastic("Another \"stellar\" quarter from management"));
        assert!(!sarcastic("The CEO said \"we delivered\" on Tuesday"));
    }

    #[test]
    fn plain_news_is_not_sarcastic() {
        assert!(!sarcastic(
            "Apple shares fell 3% after the company cut its outlook"
        ));
        assert!(!sarcastic(""));
    }
}
