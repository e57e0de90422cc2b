//! `entity_recognition`: tickers, company names, money amounts and
//! percentages.
//!
//! * `TICKER`: `$CASHTAG`s (any symbol), exchange-qualified symbols
//!   ("NASDAQ: AAPL"), the record's own ticker as a bare word, and bare
//!   upper-case words that are in the gazetteer and are not English words
//!   ([`COMMON_WORD_TICKERS`], and every 1–2 letter symbol). The entity text is
//!   the upper-case symbol without `$`.
//! * `ORG`: company names from `data/tickers.tsv` (pytickersymbols 1.17.10,
//!   1,120 US index constituents, MIT; names from Wikipedia) plus short forms
//!   derived by dropping legal suffixes ("Apple Inc." -> "Apple") and the
//!   project's [`EXTRA_ALIASES`] ("Google", "Facebook"). Case-sensitive, whole
//!   words, longest match. A derived one-word short form that is an everyday
//!   English word ("Target", "Ball") is only used if listed in
//!   [`KNOWN_BRANDS`]; otherwise the full name is required.
//! * `MONEY` ("$1.2 billion", "€300m") and `PERCENT` ("5%", "3.5 percent").
//!
//! Entities are listed in order of first mention without duplicates.
//! Limits: US-listed large/mid/small caps only; lower-case company names
//! ("apple") and companies outside the gazetteer are not found; an all-caps
//! text only yields cashtags and qualified tickers.

use std::collections::BTreeSet;
use std::ops::Range;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use regex::Regex;

use crate::text::FastMap;
use crate::Entity;

const TICKERS_TSV: &str = include_str!("../data/tickers.tsv");

/// Gazetteer symbols that are everyday English words or common acronyms in
/// posts ("DD" is due diligence, "DOW" the index); accepted only as
/// `$CASHTAG`, exchange-qualified, or when equal to the record's ticker.
const COMMON_WORD_TICKERS: &[&str] = &[
    "ALL", "AIR", "ARE", "ACT", "CAT", "EAT", "EYE", "FUN", "KEY", "LOW", "MAN", "MAC", "NOW",
    "OUT", "REX", "RUN", "TWO", "WAY", "YOU", "BOX", "CON", "DOC", "DOW", "FIX", "HAS", "JOE",
    "SEE", "SKY", "WOR", "SIG", "RES", "NEO", "HUM", "HAL", "LEG", "AIN", "AMP", "ICE", "IT",
    "WELL", "SPAR", "ARM", "WWW", "EXE", "TKO", "EPC", "GEO", "RAL", "CRK", "PEG", "FLEX", "HOPE",
    "REAL",
];

/// Aliases the gazetteer lacks: brand names and pre-rename names people still
/// use. (alias, symbol) — the symbol documents intent; only the alias is matched.
const EXTRA_ALIASES: &[(&str, &str)] = &[
    ("Google", "GOOGL"),
    ("Facebook", "META"),
    ("Meta", "META"),
    ("JPMorgan", "JPM"),
    ("JP Morgan", "JPM"),
    ("Goldman", "GS"),
    ("Berkshire", "BRK.B"),
    ("Disney", "DIS"),
    ("Exxon", "XOM"),
    ("Walmart", "WMT"),
    ("Nvidia", "NVDA"),
    ("GameStop", "GME"),
    ("Coca-Cola", "KO"),
    ("McDonald's", "MCD"),
    ("Starbucks", "SBUX"),
    ("Netflix", "NFLX"),
    ("Amazon", "AMZN"),
    ("Microsoft", "MSFT"),
    ("Tesla", "TSLA"),
    ("Boeing", "BA"),
    ("Intel", "INTC"),
    ("AMD", "AMD"),
    ("IBM", "IBM"),
    ("Pfizer", "PFE"),
    ("Moderna", "MRNA"),
    ("Palantir", "PLTR"),
    ("Salesforce", "CRM"),
    ("Wells Fargo", "WFC"),
    ("Bank of America", "BAC"),
    ("Morgan Stanley", "MS"),
    ("Citigroup", "C"),
    ("Citi", "C"),
    ("Chevron", "CVX"),
    ("Uber", "UBER"),
    ("Rivian", "RIVN"),
    ("Ford", "F"),
    ("GM", "GM"),
    ("Alibaba", "BABA"),
    ("Shopify", "SHOP"),
    ("Snowflake", "SNOW"),
    ("Zoom", "ZM"),
    ("PayPal", "PYPL"),
    ("Broadcom", "AVGO"),
    ("Qualcomm", "QCOM"),
    ("Oracle", "ORCL"),
    ("Adobe", "ADBE"),
    ("Costco", "COST"),
    ("Nike", "NKE"),
    ("AT&T", "T"),
    ("Verizon", "VZ"),
];

/// Derived one-word short forms that are also English words but are, in
/// finance text, almost always the company.
const KNOWN_BRANDS: &[&str] = &[
    "Apple",
    "Amazon",
    "Oracle",
    "Target",
    "Visa",
    "Ford",
    "Intel",
    "Alphabet",
    "Mastercard",
];

/// Everyday words the profanity model's vocabulary lacks because scikit-learn
/// drops them as English stop words; a company called "Now" or "Everything"
/// must not match them.
const COMMON_SHORT_WORDS: &[&str] = &[
    "now",
    "all",
    "one",
    "will",
    "well",
    "first",
    "next",
    "amount",
    "becoming",
    "everything",
    "together",
    "thick",
    "system",
    "interest",
    "fire",
    "found",
];

// ASCII word boundaries `(?-u:\b)` keep the regexes on the fast DFA engines
// (a Unicode `\b` falls back to a slower engine on non-ASCII text); every
// pattern ends in ASCII anyway.
const CASHTAG_RE: &str = r"\$([A-Za-z]{1,6}(?:\.[A-Za-z])?)(?-u:\b)";
const QUALIFIED_RE: &str =
    r"(?-u:\b)(?:NYSE|NASDAQ|Nasdaq|NYSE American|AMEX|OTC)\s*:\s*([A-Z]{1,5}(?:\.[A-Z])?)(?-u:\b)";
const MONEY_RE: &str = r"(?i)(?:US)?[$€£]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:trillion|billion|million|thousand|bn|mln|mn|tn|[kmb])(?-u:\b))?";
const PERCENT_RE: &str =
    r"(?i)[+-]?\d+(?:\.\d+)?\s?(?:%|percent(?-u:\b)|per cent(?-u:\b)|pct(?-u:\b))";

/// Legal-form suffixes dropped to derive a short form, tried repeatedly.
const SUFFIXES: &[&str] = &[
    ", Inc.",
    " Inc.",
    " Inc",
    ", Inc",
    " Incorporated",
    " Corporation",
    " Corp.",
    " Corp",
    " Company",
    " Companies",
    " Co.",
    " & Co.",
    " plc",
    " PLC",
    " Holdings",
    " Holding",
    " Group",
    " Ltd.",
    " Ltd",
    " Limited",
    " N.V.",
    " S.A.",
    " LLC",
    " L.P.",
    " Trust",
    " Technologies",
    " Technology",
    " Industries",
    " International",
    " Enterprises",
    ",",
];

/// The compiled recognisers.
pub(crate) struct Entities {
    symbols: FastMap<String, ()>,
    /// `None` only if the automaton could not be built (resource limits);
    /// then no company names are found.
    names: Option<DFA>,
    name_has_sentiment: Vec<bool>,
    /// Sorted first characters of all names: most word starts (lower-case
    /// words) can be skipped without running the automaton.
    name_first_chars: Vec<char>,
    /// The ASCII members of `name_first_chars` as a bit set, so the common
    /// case is one bit test instead of a binary search.
    name_first_ascii: u128,
    cashtag: Regex,
    qualified: Regex,
    money: Regex,
    percent: Regex,
}

/// Entities plus the byte spans of names/tickers (for toxicity masking).
pub(crate) struct Found {
    pub entities: Vec<Entity>,
    /// Spans of every ticker and company name.
    pub name_spans: Vec<Range<usize>>,
    /// Spans of company names only.
    pub org_spans: Vec<Range<usize>>,
    /// Spans of company names that contain a VADER sentiment word ("Best
    /// Buy", "Super Micro", "United Airlines"); hidden from VADER.
    pub sentiment_mask: Vec<Range<usize>>,
}

impl Entities {
    /// `is_common_word` tells whether a lower-cased word is everyday English
    /// (the analyzer passes the profanity model's 15k-word vocabulary);
    /// `has_sentiment` whether VADER scores a name as non-neutral.
    pub fn new(
        is_common_word: &dyn Fn(&str) -> bool,
        has_sentiment: &dyn Fn(&str) -> bool,
    ) -> Entities {
        let mut symbols = FastMap::default();
        let mut patterns: BTreeSet<String> = BTreeSet::new();
        for line in TICKERS_TSV.lines().filter(|l| !l.starts_with('#')) {
            let Some((sym, name)) = line.split_once('\t') else {
                continue;
            };
            symbols.insert(sym.to_string(), ());
            // Full names and derived short forms pass the same test: a single
            // word is kept only if it is no everyday word ("Box", "Ball") and
            // not all-caps ("NOW" from "NOW Inc", shouted in posts), unless
            // it is a known brand.
            let name = name.trim();
            let distinctive = |n: &str| {
                n.contains(' ')
                    || KNOWN_BRANDS.contains(&n)
                    || (!is_common_word(&n.to_lowercase())
                        && !COMMON_SHORT_WORDS.contains(&n.to_lowercase().as_str())
                        && n.chars().any(char::is_lowercase))
            };
            if name.len() >= 3 && distinctive(name) {
                patterns.insert(name.to_string());
            }
            if let Some(short) = short_form(name).filter(|s| distinctive(s)) {
                patterns.insert(short);
            }
        }
        for (alias, _) in EXTRA_ALIASES {
            patterns.insert((*alias).to_string());
        }
        // Patterns come from embedded data and are plain strings; building can
        // only fail on resource limits, in which case name matching is off.
        // Pattern ids follow the BTreeSet's order, so this Vec is indexed by id.
        let name_has_sentiment: Vec<bool> = patterns.iter().map(|p| has_sentiment(p)).collect();
        let name_first_chars: Vec<char> = {
            let mut v: Vec<char> = patterns.iter().filter_map(|p| p.chars().next()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let name_first_ascii = name_first_chars
            .iter()
            .filter(|c| c.is_ascii())
            .fold(0u128, |set, &c| set | 1u128 << (c as u32));
        // Names are matched case-sensitively and only where a word starts, so
        // the automaton runs anchored at those few positions instead of
        // scanning every byte; a DFA makes each anchored walk a few table
        // look-ups (~2,500 names keep it to a few MB).
        let names = DFA::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .start_kind(StartKind::Anchored)
            .build(&patterns)
            .ok();
        Entities {
            symbols,
            names,
            name_has_sentiment,
            name_first_chars,
            name_first_ascii,
            cashtag: re(CASHTAG_RE),
            qualified: re(QUALIFIED_RE),
            money: re(MONEY_RE),
            percent: re(PERCENT_RE),
        }
    }

    #[cfg(test)]
    pub fn symbol_count(&self) -> usize {
        self.symbols.len()
    }

    #[cfg(test)]
    pub fn pattern_count(&self) -> usize {
        self.names.as_ref().map_or(0, |d| d.patterns_len())
    }

    /// Finds entities in `text`. `record_ticker` (the record's own ticker) is
    /// accepted as a bare word even when short or an English word.
    pub fn find(&self, text: &str, record_ticker: Option<&str>) -> Found {
        // (start, end, text, type); sorted by start at the end.
        let mut hits: Vec<(usize, usize, String, &'static str)> = Vec::new();
        let mut name_spans = Vec::new();
        let mut org_spans = Vec::new();
        let mut sentiment_mask = Vec::new();
        // Cheap byte checks skip regex passes that cannot match.
        let has_currency = text.contains(['$', '€', '£']);
        let has_colon = text.contains(':');
        // Case variants of "percent", "per cent" and "pct" for the (?i) regex.
        let has_percent = text.contains('%')
            || [
                "ercent", "ERCENT", "er cent", "ER CENT", "pct", "Pct", "PCT",
            ]
            .iter()
            .any(|p| text.contains(p));
        for c in self
            .cashtag
            .captures_iter(if has_currency { text } else { "" })
        {
            let (Some(all), Some(sym)) = (c.get(0), c.get(1)) else {
                continue;
            };
            if text[..all.start()]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            // "$5B" style amounts are caught by MONEY; cashtags start with a letter.
            hits.push((
                all.start(),
                all.end(),
                sym.as_str().to_uppercase(),
                "TICKER",
            ));
            name_spans.push(all.range());
        }
        for c in self
            .qualified
            .captures_iter(if has_colon { text } else { "" })
        {
            let (Some(all), Some(sym)) = (c.get(0), c.get(1)) else {
                continue;
            };
            hits.push((all.start(), all.end(), sym.as_str().to_string(), "TICKER"));
            name_spans.push(all.range());
        }
        let shouting = is_shouting(text);
        for (start, end, pattern) in self.name_matches(text) {
            let Some(name) = text.get(start..end) else {
                continue;
            };
            if !is_word_boundary(text, start, end) {
                continue;
            }
            // In an all-caps text, all-caps names ("NOW Inc." -> "NOW") are just words.
            if shouting && !name.chars().any(char::is_lowercase) {
                continue;
            }
            hits.push((start, end, name.to_string(), "ORG"));
            name_spans.push(start..end);
            org_spans.push(start..end);
            if self
                .name_has_sentiment
                .get(pattern)
                .copied()
                .unwrap_or(false)
            {
                sentiment_mask.push(start..end);
            }
        }
        self.bare_tickers(text, shouting, record_ticker, &mut hits, &mut name_spans);
        for m in self.money.find_iter(if has_currency { text } else { "" }) {
            hits.push((m.start(), m.end(), m.as_str().to_string(), "MONEY"));
        }
        for m in self.percent.find_iter(if has_percent { text } else { "" }) {
            if text[..m.start()]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric)
            {
                continue;
            }
            hits.push((m.start(), m.end(), m.as_str().to_string(), "PERCENT"));
        }
        hits.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.3.cmp(b.3)));
        let mut entities: Vec<Entity> = Vec::with_capacity(hits.len());
        for (_, _, t, ty) in hits {
            // Entity lists are short; a scan beats hashing the strings.
            if !entities.iter().any(|e| e.text == t && e.entity_type == ty) {
                entities.push(Entity {
                    text: t,
                    entity_type: ty.to_string(),
                });
            }
        }
        Found {
            entities,
            name_spans,
            org_spans,
            sentiment_mask,
        }
    }

    /// Leftmost-longest, non-overlapping name matches starting at word starts
    /// (an alphanumeric char not preceded by one), as (start, end, pattern).
    fn name_matches<'h>(
        &'h self,
        text: &'h str,
    ) -> impl Iterator<Item = (usize, usize, usize)> + 'h {
        let mut next_free = 0usize;
        let mut prev_alnum = false;
        text.char_indices().filter_map(move |(i, c)| {
            let word_start = c.is_alphanumeric() && !prev_alnum;
            prev_alnum = c.is_alphanumeric();
            if !word_start || i < next_free || !self.may_start_name(c) {
                return None;
            }
            let (end, pattern) = self.longest_name_at(text.as_bytes(), i)?;
            next_free = end;
            Some((i, end, pattern))
        })
    }

    fn may_start_name(&self, c: char) -> bool {
        if c.is_ascii() {
            self.name_first_ascii & (1u128 << (c as u32)) != 0
        } else {
            self.name_first_chars.binary_search(&c).is_ok()
        }
    }

    /// Longest name starting exactly at byte `start`: a plain walk of the
    /// anchored DFA until it dies (the library's search entry points cost
    /// more per call than the few bytes walked here).
    fn longest_name_at(&self, hay: &[u8], start: usize) -> Option<(usize, usize)> {
        let dfa = self.names.as_ref()?;
        let mut sid = dfa.start_state(Anchored::Yes).ok()?;
        let mut best = None;
        for (at, &b) in hay.iter().enumerate().skip(start) {
            sid = dfa.next_state(Anchored::Yes, sid, b);
            if dfa.is_special(sid) {
                if dfa.is_dead(sid) {
                    break;
                }
                if dfa.is_match(sid) {
                    best = Some((at + 1, dfa.match_pattern(sid, 0).as_usize()));
                }
            }
        }
        best
    }

    fn bare_tickers(
        &self,
        text: &str,
        shouting: bool,
        record_ticker: Option<&str>,
        hits: &mut Vec<(usize, usize, String, &'static str)>,
        spans: &mut Vec<Range<usize>>,
    ) {
        let record = record_ticker.map(|t| t.trim().trim_start_matches('$').to_uppercase());
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if !bytes[i].is_ascii_uppercase() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_uppercase() || bytes[i] == b'.') {
                i += 1;
            }
            let word = text[start..i].trim_end_matches('.');
            let end = start + word.len();
            let before_ok =
                start == 0 || !is_word_byte(bytes[start - 1]) && bytes[start - 1] != b'$';
            let after_ok = end >= bytes.len() || !is_word_byte(bytes[end]);
            if !(before_ok && after_ok) || word.is_empty() {
                continue;
            }
            let is_record = record.as_deref() == Some(word);
            let plausible = !shouting
                && word.len() >= 3
                && self.symbols.contains_key(word)
                && !COMMON_WORD_TICKERS.contains(&word);
            if is_record || plausible {
                hits.push((start, end, word.to_string(), "TICKER"));
                spans.push(start..end);
            }
        }
    }
}

/// Mostly upper-case text (headline caps, shouting), where every word looks
/// like a ticker.
fn is_shouting(text: &str) -> bool {
    let (mut letters, mut upper) = (0usize, 0usize);
    if text.is_ascii() {
        // Same counts as the char loop below (ASCII letters are exactly the
        // ASCII alphabetic chars), branch-free so it vectorises.
        for &b in text.as_bytes() {
            letters += usize::from(b.is_ascii_alphabetic());
            upper += usize::from(b.is_ascii_uppercase());
        }
        return letters >= 12 && upper * 10 > letters * 6;
    }
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        upper += usize::from(c.is_uppercase());
    }
    letters >= 12 && upper * 10 > letters * 6
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn is_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric())
}

/// "Apple Inc." -> "Apple"; "The Home Depot" -> "Home Depot". None when the
/// short form equals the name or is too short to be safe.
fn short_form(name: &str) -> Option<String> {
    let mut s = name.trim();
    if let Some(p) = s.find(" (") {
        s = &s[..p];
    }
    s = s.strip_prefix("The ").unwrap_or(s);
    loop {
        let before = s;
        for suf in SUFFIXES {
            if let Some(rest) = s.strip_suffix(suf) {
                s = rest.trim_end();
            }
        }
        if s == before {
            break;
        }
    }
    (s != name && s.chars().count() >= 3).then(|| s.to_string())
}

fn re(pattern: &str) -> Regex {
    // The patterns are compile-time constants covered by unit tests; a
    // pattern that fails to build falls back to one that never matches.
    Regex::new(pattern).unwrap_or_else(|_| never_regex())
}

fn never_regex() -> Regex {
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("constant regex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ents() -> Entities {
        let common = ["target", "ball", "match", "apple", "dollar"];
        Entities::new(&|w: &str| common.contains(&w), &|n: &str| {
            n.contains("Best")
        })
    }

    fn find(text: &str, ticker: Option<&str>) -> Vec<(String, String)> {
        ents()
            .find(text, ticker)
            .entities
            .into_iter()
            .map(|e| (e.text, e.entity_type))
            .collect()
    }

    fn e(t: &str, ty: &str) -> (String, String) {
        (t.to_string(), ty.to_string())
    }

    #[test]
    fn regexes_compile_with_enabled_features() {
        // `re` falls back to a never-matching regex; make sure none does.
        for p in [CASHTAG_RE, QUALIFIED_RE, MONEY_RE, PERCENT_RE] {
            assert!(Regex::new(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn gazetteer_loads() {
        let x = ents();
        assert_eq!(x.symbol_count(), 1120);
        assert!(x.pattern_count() > 1500);
    }

    #[test]
    fn cashtags_names_money_percent() {
        assert_eq!(
            find(
                "$aapl: Apple Inc. beats, stock up 5% after $1.2 billion buyback; $AAPL again",
                None
            ),
            vec![
                e("AAPL", "TICKER"),
                e("Apple Inc.", "ORG"),
                e("5%", "PERCENT"),
                e("$1.2 billion", "MONEY")
            ]
        );
    }

    #[test]
    fn short_forms_and_aliases() {
        let f = find("Microsoft and Google rally; Home Depot slips", None);
        assert!(f.contains(&e("Microsoft", "ORG")), "{f:?}");
        assert!(f.contains(&e("Google", "ORG")));
        assert!(f.contains(&e("Home Depot", "ORG")));
        assert_eq!(
            short_form("The Home Depot, Inc."),
            Some("Home Depot".to_string())
        );
    }

    #[test]
    fn percent_forms() {
        let f = find("Sales rose 3 Percent, margin +1.5 pct, EPS up 4%", None);
        assert!(f.contains(&e("3 Percent", "PERCENT")), "{f:?}");
        assert!(f.contains(&e("+1.5 pct", "PERCENT")), "{f:?}");
        assert!(f.contains(&e("4%", "PERCENT")), "{f:?}");
    }

    #[test]
    fn common_words_are_not_tickers() {
        assert!(find("IT IS NOW ALL OR NOTHING FOR THE BULLS", None).is_empty());
        assert!(find("Is it now time to buy? ARE you sure", None).is_empty());
        assert_eq!(find("F shares rose", Some("F")), vec![e("F", "TICKER")]);
        assert_eq!(
            find("Buying more NVDA and $T", None),
            vec![e("NVDA", "TICKER"), e("T", "TICKER")]
        );
        assert_eq!(find("(NYSE: KEY) rose", None), vec![e("KEY", "TICKER")]);
    }

    #[test]
    fn sentiment_bearing_names_are_masked() {
        let f = ents().find("Best Buy shares fall", None);
        assert_eq!(f.sentiment_mask, vec![0..8]);
        assert!(ents()
            .find("Apple shares fall", None)
            .sentiment_mask
            .is_empty());
    }

    #[test]
    fn ambiguous_names_need_full_form() {
        // "Ball" (Ball Corporation) is an everyday word; "Apple" is a known brand.
        assert!(find("He threw the Ball", None).is_empty());
        // "NOW Inc" must not turn a shouted word into a company.
        assert!(find("I want it NOW please", None).is_empty());
        assert_eq!(find("Apple rallies", None), vec![e("Apple", "ORG")]);
    }
}
