//! Tokenisation, sentence and clause splitting shared by every field.
//!
//! The analyzer tokenises each text exactly once ([`Tokens::new`]) and every
//! field reads the same token stream, so the field rules agree on what a
//! "word" is and the cost stays one pass. Tokens keep byte offsets into the
//! original text (for entity spans and masking) plus a lower-cased copy (for
//! lexicon look-ups).
//!
//! Limits: English-oriented. A word is a run of alphanumerics that may carry
//! inner `'` `’` `-` `.` `,` when a further alphanumeric follows (so "don't",
//! "year-over-year", "1,000.5" and "U.S" stay whole), an optional leading `$`
//! (cashtags and amounts) and an optional trailing `%`. Emoji and other
//! symbols are single-character [`Kind::Symbol`] tokens. Sentence splitting is
//! punctuation based (no abbreviation list), which is good enough for
//! headlines and posts but splits "Inc. said" into two sentences.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// What a token is; rules mostly look at [`Kind::Word`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    /// `!`, `?`, `.`, `,`, `;`, `:` and similar ASCII punctuation.
    Punct,
    /// Anything else that is not whitespace: emoji, `/`, `#`, `@`, ...
    Symbol,
}

/// One token of the text.
#[derive(Debug, Clone)]
pub(crate) struct Token<'t> {
    /// Byte range in the original text.
    pub span: Range<usize>,
    /// Lower-cased text; borrowed from the input when already lower-case
    /// (most words), owned otherwise (lower-casing may change byte length).
    pub lower: Cow<'t, str>,
    pub kind: Kind,
    /// Index of the sentence the token belongs to.
    pub sentence: usize,
    /// Index of the clause (sub-sentence unit, see [`is_clause_break`]).
    pub clause: usize,
}

impl Token<'_> {
    pub fn is_word(&self) -> bool {
        self.kind == Kind::Word
    }
}

/// A tokenised text with sentence and clause boundaries.
#[derive(Debug)]
pub(crate) struct Tokens<'t> {
    pub text: &'t str,
    pub tokens: Vec<Token<'t>>,
    /// Indices (into `tokens`) of the word tokens, for the phrase matchers.
    pub words: Vec<usize>,
    /// Byte range of each sentence, in order.
    pub sentences: Vec<Range<usize>>,
    /// Byte range of each clause, in order.
    pub clauses: Vec<Range<usize>>,
}

/// Words that open a new clause: the sentiment of "revenue beat but guidance
/// disappointed" must be scored per side, so aspects get their own clause.
const CLAUSE_WORDS: &[&str] = &[
    "but", "while", "whereas", "although", "though", "however", "yet", "despite",
];

fn is_clause_break(lower: &str) -> bool {
    CLAUSE_WORDS.contains(&lower)
}

impl<'t> Tokens<'t> {
    pub fn new(text: &'t str) -> Tokens<'t> {
        let raw = lex(text);
        let mut tokens = Vec::with_capacity(raw.len());
        let mut sentences = Vec::new();
        let mut clauses = Vec::new();
        let mut sent_start: Option<usize> = None;
        let mut clause_start: Option<usize> = None;
        let mut last_end = 0usize;
        let mut sentence = 0usize;
        let mut clause = 0usize;
        for (i, (span, kind)) in raw.iter().enumerate() {
            let s = &text[span.clone()];
            let lower = if s.is_ascii() {
                if s.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(s.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(s)
                }
            } else if s
                .chars()
                .any(|c| !c.is_lowercase() && c.to_lowercase().ne(std::iter::once(c)))
            {
                Cow::Owned(s.to_lowercase())
            } else {
                Cow::Borrowed(s)
            };
            // A clause word starts a new clause (the word belongs to the new one).
            if *kind == Kind::Word && is_clause_break(&lower) {
                if let Some(cs) = clause_start.take() {
                    clauses.push(cs..last_end);
                    clause += 1;
                }
            }
            // A newline between tokens ends the sentence (posts often lack periods).
            if let Some(ss) = sent_start {
                // A byte scan: the gap is usually one byte, too short to
                // pay for setting up a `str` pattern search.
                if text.as_bytes()[last_end..span.start].contains(&b'\n') {
                    sentences.push(ss..last_end);
                    sentence += 1;
                    sent_start = None;
                    if let Some(cs) = clause_start.take() {
                        clauses.push(cs..last_end);
                        clause += 1;
                    }
                }
            }
            if sent_start.is_none() {
                sent_start = Some(span.start);
            }
            if clause_start.is_none() {
                clause_start = Some(span.start);
            }
            tokens.push(Token {
                span: span.clone(),
                lower,
                kind: *kind,
                sentence,
                clause,
            });
            last_end = span.end;
            let ends_sentence = *kind == Kind::Punct && matches!(s, "." | "!" | "?")
                // Runs like "?!" or "..." end the sentence once, at the last mark.
                && !matches!(raw.get(i + 1), Some((next, Kind::Punct)) if matches!(&text[next.clone()], "." | "!" | "?"));
            let ends_clause = *kind == Kind::Punct && matches!(s, ";" | ":");
            if ends_sentence {
                if let Some(ss) = sent_start.take() {
                    sentences.push(ss..last_end);
                    sentence += 1;
                }
            }
            if ends_sentence || ends_clause {
                if let Some(cs) = clause_start.take() {
                    clauses.push(cs..last_end);
                    clause += 1;
                }
            }
        }
        if let Some(ss) = sent_start {
            sentences.push(ss..last_end);
        }
        if let Some(cs) = clause_start {
            clauses.push(cs..last_end);
        }
        let words = (0..tokens.len()).filter(|&i| tokens[i].is_word()).collect();
        Tokens {
            text,
            tokens,
            words,
            sentences,
            clauses,
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits into (span, kind). Never panics: every index used is a char boundary
/// obtained from `char_indices`.
fn lex(text: &str) -> Vec<(Range<usize>, Kind)> {
    if text.is_ascii() {
        // Byte i is char i: no char table needed (most inputs).
        let b = text.as_bytes();
        lex_with(b.len(), text.len(), |i| char::from(b[i]), |i| i)
    } else {
        let chars: Vec<(usize, char)> = text.char_indices().collect();
        lex_with(chars.len(), text.len(), |i| chars[i].1, |i| chars[i].0)
    }
}

/// The lexer over `n` chars: `ch(i)` is char i, `pos(i)` its byte offset.
fn lex_with(
    n: usize,
    text_len: usize,
    ch: impl Fn(usize) -> char,
    pos: impl Fn(usize) -> usize,
) -> Vec<(Range<usize>, Kind)> {
    let end_of = |i: usize| if i < n { pos(i) } else { text_len };
    let mut out = Vec::with_capacity(n / 4 + 1);
    let mut i = 0;
    while i < n {
        let c = ch(i);
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let starts_word = is_word_char(c) || (c == '$' && i + 1 < n && is_word_char(ch(i + 1)));
        if starts_word {
            let start = i;
            i += 1;
            while i < n {
                let d = ch(i);
                if is_word_char(d) {
                    i += 1;
                } else if matches!(d, '\'' | '’' | '-' | '.' | ',' | '&')
                    && i + 1 < n
                    && is_word_char(ch(i + 1))
                    // "1,000" and "3.5" keep their comma/point; "up,down" splits.
                    && (d != ',' || (ch(i - 1).is_ascii_digit() && ch(i + 1).is_ascii_digit()))
                {
                    i += 2;
                } else {
                    break;
                }
            }
            if i < n && ch(i) == '%' {
                i += 1;
            }
            out.push((end_of(start)..end_of(i), Kind::Word));
            continue;
        }
        let kind = if c.is_ascii_punctuation() && !matches!(c, '#' | '@' | '/' | '$' | '%') {
            Kind::Punct
        } else {
            Kind::Symbol
        };
        out.push((pos(i)..end_of(i + 1), kind));
        i += 1;
    }
    out
}

/// Words that negate the next few words. Shared by the finance overlay,
/// emotions and aspects so "no guidance cut" is read the same everywhere.
pub(crate) fn is_negator(lower: &str) -> bool {
    matches!(
        lower,
        "not" | "no" | "never" | "without" | "nor" | "neither" | "none" | "nothing" | "cannot"
    ) || lower.ends_with("n't")
        || lower.ends_with("n’t")
}

/// Whether one of the `window` word tokens before `i` (within its clause) is a
/// negator. VADER looks back three tokens; the same window is used here.
pub(crate) fn negated(tokens: &[Token<'_>], i: usize, window: usize) -> bool {
    let clause = tokens[i].clause;
    tokens[..i]
        .iter()
        .rev()
        .filter(|t| t.is_word())
        .take(window)
        .take_while(|t| t.clause == clause)
        .any(|t| is_negator(&t.lower))
}

/// FxHash (the rustc hasher): much faster than SipHash for the short words
/// looked up per token, and deterministic. HashDoS resistance is not needed:
/// the maps are built from embedded data and only read with text tokens, and
/// no output depends on iteration order.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        // The 1-7 trailing bytes (most words end here) go in as one word, not
        // one multiply per byte. Different tails can share a word (the 4-7
        // byte reads overlap); that costs a probe, never a wrong answer.
        match *chunks.remainder() {
            [] => {}
            // 1-3 bytes: the bytes themselves plus the length.
            [a] => self.add(u64::from(a) | 1 << 32),
            [a, b] => self.add(u64::from(a) | u64::from(b) << 8 | 2 << 32),
            [a, b, c] => self.add(u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16 | 3 << 32),
            // 4-7 bytes: the first and the last four (they may overlap).
            ref rest => {
                let n = rest.len();
                let lo = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                let hi = u32::from_le_bytes([rest[n - 4], rest[n - 3], rest[n - 2], rest[n - 1]]);
                self.add(u64::from(lo) | u64::from(hi) << 32);
            }
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The final multiply leaves the low bits (hashbrown's bucket index)
        // depending only on low input bits; rotating brings the well-mixed
        // high bits down (as rustc-hash 2 does).
        self.hash.rotate_left(26)
    }
}

/// HashMap with [`FxHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A table of word phrases (lower-case, space-separated) matched over the
/// word tokens of a text: longest phrase first at each position (equal lengths
/// in insertion order), matches do not overlap and never cross a sentence
/// boundary. Used for the cue lists of intent, sarcasm and aspects, where one
/// hash look-up per token replaces a substring search per cue.
pub(crate) struct PhraseTable<T> {
    by_first: FastMap<String, Vec<(Vec<String>, T)>>,
}

impl<T: Copy> PhraseTable<T> {
    pub fn new<'p>(phrases: impl IntoIterator<Item = (&'p str, T)>) -> PhraseTable<T> {
        let mut by_first: FastMap<String, Vec<(Vec<String>, T)>> = FastMap::default();
        for (p, v) in phrases {
            let mut words = p.split(' ').filter(|w| !w.is_empty());
            let Some(first) = words.next() else { continue };
            by_first
                .entry(first.to_string())
                .or_default()
                .push((words.map(str::to_string).collect(), v));
        }
        for entries in by_first.values_mut() {
            entries.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
        }
        PhraseTable { by_first }
    }

    /// Values of all matches, in text order.
    pub fn find(&self, toks: &Tokens<'_>) -> Vec<T> {
        self.find_at(toks).into_iter().map(|(_, v)| v).collect()
    }

    /// Matches in text order, each with the index (into `toks.tokens`) of its
    /// first token.
    pub fn find_at(&self, toks: &Tokens<'_>) -> Vec<(usize, T)> {
        let t = &toks.tokens;
        let words = &toks.words;
        let mut out = Vec::new();
        let mut w = 0;
        while w < words.len() {
            let i = words[w];
            let mut consumed = 1;
            if let Some(entries) = self.by_first.get(&*t[i].lower) {
                for (rest, v) in entries {
                    let ok = rest.iter().enumerate().all(|(k, s)| {
                        words
                            .get(w + 1 + k)
                            .is_some_and(|&j| t[j].lower == *s && t[j].sentence == t[i].sentence)
                    });
                    if ok {
                        out.push((i, *v));
                        consumed = 1 + rest.len();
                        break;
                    }
                }
            }
            w += consumed;
        }
        out
    }
}

/// Rounds to 4 decimals so outputs are stable across platforms and runs.
pub(crate) fn round4(x: f64) -> f32 {
    if !x.is_finite() {
        return 0.0;
    }
    ((x * 10_000.0).round() / 10_000.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(t: &str) -> Vec<String> {
        Tokens::new(t)
            .tokens
            .iter()
            .filter(|t| t.is_word())
            .map(|t| t.lower.to_string())
            .collect()
    }

    #[test]
    fn keeps_finance_tokens_whole() {
        assert_eq!(
            words("$AAPL up 5.2% on year-over-year growth; don't sell 1,000 shares"),
            vec![
                "$aapl",
                "up",
                "5.2%",
                "on",
                "year-over-year",
                "growth",
                "don't",
                "sell",
                "1,000",
                "shares"
            ]
        );
        assert_eq!(words("up,down"), vec!["up", "down"]);
        assert_eq!(words("AT&T"), vec!["at&t"]);
    }

    #[test]
    fn splits_sentences_and_clauses() {
        let t = Tokens::new("Revenue beat, but guidance fell. Shares slid!? Ok\nnext");
        assert_eq!(t.sentences.len(), 4);
        assert_eq!(&t.text[t.sentences[1].clone()], "Shares slid!?");
        assert_eq!(&t.text[t.clauses[0].clone()], "Revenue beat,");
        assert_eq!(&t.text[t.clauses[1].clone()], "but guidance fell.");
    }

    #[test]
    fn negation_window_stays_in_clause() {
        let t = Tokens::new("not a big deal but shares fell");
        let fell = t.tokens.iter().position(|x| x.lower == "fell").unwrap();
        assert!(!negated(&t.tokens, fell, 3));
        let big = t.tokens.iter().position(|x| x.lower == "big").unwrap();
        assert!(negated(&t.tokens, big, 3));
    }

    #[test]
    fn phrase_table_longest_first_within_sentence() {
        let table = PhraseTable::new([("buy", 1), ("buy the dip", 2), ("dip", 3)]);
        assert_eq!(
            table.find(&Tokens::new("Buy the dip. Buy. The dip")),
            vec![2, 1, 3]
        );
    }

    #[test]
    fn fx_hasher_is_deterministic() {
        let mut a = FxHasher::default();
        let mut b = FxHasher::default();
        a.write(b"earnings beat");
        b.write(b"earnings beat");
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn ascii_fast_path_matches_general_path() {
        for t in [
            "$AAPL up 5.2% on year-over-year growth; don't sell 1,000 shares!?",
            "a,b 1,2 x.y 'q' -- $ $1 %5 #tag @user /s",
            "",
        ] {
            let chars: Vec<(usize, char)> = t.char_indices().collect();
            let general = lex_with(chars.len(), t.len(), |i| chars[i].1, |i| chars[i].0);
            assert_eq!(lex(t), general, "{t}");
        }
    }

    #[test]
    fn odd_unicode_and_empty() {
        assert!(Tokens::new("").tokens.is_empty());
        let t = Tokens::new("İ🚀\u{0301}$ %");
        assert!(!t.tokens.is_empty());
        assert_eq!(round4(f64::NAN), 0.0);
        assert_eq!(round4(0.123_456), 0.1235);
    }
}
