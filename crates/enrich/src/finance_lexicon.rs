//! The project's finance overlay lexicon (`data/finance_lexicon.tsv`, version
//! [`FINANCE_LEXICON_VERSION`]) and its matcher.
//!
//! VADER is a general-purpose lexicon: "Apple beats estimates, stock jumps 5%"
//! scores 0.0 and "Tesla shares plunge" is nudged positive by "shares" (+1.2).
//! The overlay lists finance terms with the valence they should have in a
//! finance text; [`FinanceLexicon::matches`] finds them (longest phrase first,
//! with VADER-style negation) and reports, per match, the *difference* between
//! that target and what VADER already gives the same term, so the sentiment
//! module can add it to VADER's raw sum as if VADER had known the term.
//!
//! Limits: no stemming (inflections are listed), no booster/caps handling for
//! overlay terms, and a term's VADER base value is measured on the term alone,
//! so context effects inside VADER (a booster before "beating") are not
//! cancelled exactly. Everyday words (scope `ctx`) apply only when the text is
//! recognisably about finance, see [`FINANCE_ANCHORS`].

use std::ops::Range;

use crate::vader::SentimentIntensityAnalyzer;

use crate::text::{negated, FastMap, Tokens};

/// Version of `data/finance_lexicon.tsv` and the anchor list; goes into the
/// model name. Bump on any change to either.
pub const FINANCE_LEXICON_VERSION: &str = "finance-1";

const LEXICON_TSV: &str = include_str!("../data/finance_lexicon.tsv");

/// Words that make a text "about finance" without carrying sentiment. They
/// switch on the `ctx` overlay terms (so "stock jumps" counts but "the cat
/// jumps" does not). Kept short and specific: everyday words such as "money"
/// or "price" would switch the overlay on in ordinary tweets.
pub(crate) const FINANCE_ANCHORS: &[&str] = &[
    "stock",
    "stocks",
    "shares",
    "shareholders",
    "investors",
    "investor",
    "market",
    "markets",
    "earnings",
    "revenue",
    "revenues",
    "eps",
    "guidance",
    "quarter",
    "quarterly",
    "q1",
    "q2",
    "q3",
    "q4",
    "analyst",
    "analysts",
    "estimates",
    "consensus",
    "nasdaq",
    "nyse",
    "dow",
    "s&p",
    "etf",
    "ipo",
    "fed",
    "treasury",
    "yields",
    "bonds",
    "premarket",
    "pre-market",
    "after-hours",
    "traders",
    "valuation",
    "dividend",
    "buyback",
    "profit",
    "profits",
    "sales",
    "margins",
    "equities",
    "ceo",
    "cfo",
    "ebitda",
    "futures",
];

/// One lexicon pattern element.
#[derive(Debug, Clone, PartialEq)]
enum Pat {
    Word(String),
    /// A percentage: "5%", "-3.2%", or a number followed by "percent"/"pct".
    Pct,
    /// A plain number: "5,000", "12".
    Num,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Pattern elements after the first word.
    rest: Vec<Pat>,
    target: f64,
    /// target minus VADER's own value for the term.
    delta: f64,
    /// Scope `any`: applies everywhere and marks the text as finance.
    any: bool,
}

/// One overlay term found in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match {
    /// Token index range (into `Tokens::tokens`) covered by the term.
    pub first: usize,
    pub last: usize,
    /// Target valence after negation.
    pub target: f64,
    /// Correction to add to VADER's raw sum after negation.
    pub delta: f64,
    pub any: bool,
}

/// The parsed overlay lexicon.
pub(crate) struct FinanceLexicon {
    by_first: FastMap<String, Vec<Entry>>,
    anchors: FastMap<&'static str, ()>,
}

/// VADER's normalisation constant (compound = s / sqrt(s² + alpha)).
pub(crate) const VADER_ALPHA: f64 = 15.0;

/// Inverse of VADER's normalisation: the raw valence sum behind a compound.
pub(crate) fn vader_raw(compound: f64) -> f64 {
    let c = compound.clamp(-0.9999, 0.9999);
    c * VADER_ALPHA.sqrt() / (1.0 - c * c).sqrt()
}

/// VADER's normalisation of a raw valence sum into [-1, 1].
pub(crate) fn vader_normalize(raw: f64) -> f64 {
    let x = raw / (raw * raw + VADER_ALPHA).sqrt();
    x.clamp(-1.0, 1.0)
}

impl FinanceLexicon {
    /// Parses the embedded lexicon. Malformed lines are skipped (a unit test
    /// checks none are), so construction cannot panic.
    pub fn new(vader: &SentimentIntensityAnalyzer) -> FinanceLexicon {
        let mut by_first: FastMap<String, Vec<Entry>> = FastMap::default();
        for line in LEXICON_TSV.lines() {
            let Some((term, target, any)) = parse_line(line) else {
                continue;
            };
            let mut words = term.split(' ').filter(|w| !w.is_empty());
            let Some(first) = words.next() else { continue };
            let rest: Vec<Pat> = words
                .map(|w| match w {
                    "<pct>" => Pat::Pct,
                    "<num>" => Pat::Num,
                    _ => Pat::Word(w.to_string()),
                })
                .collect();
            // What VADER gives the term on its own; placeholders probed as numbers.
            let probe = term.replace("<pct>", "5%").replace("<num>", "500");
            let base = vader_raw(vader.polarity_scores(&probe).compound);
            by_first.entry(first.to_string()).or_default().push(Entry {
                rest,
                target,
                delta: target - base,
                any,
            });
        }
        // Longest pattern first so "beats estimates" wins over "beats".
        for entries in by_first.values_mut() {
            entries.sort_by_key(|e| std::cmp::Reverse(e.rest.len()));
        }
        FinanceLexicon {
            by_first,
            anchors: FINANCE_ANCHORS.iter().map(|a| (*a, ())).collect(),
        }
    }

    /// Number of terms loaded.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_first.values().map(Vec::len).sum()
    }

    /// Whether a lower-cased word is a finance anchor.
    pub fn is_anchor(&self, lower: &str) -> bool {
        self.anchors.contains_key(lower)
    }

    /// Finds overlay terms. `finance_hint` says the caller already knows the
    /// text is about finance (a ticker was recognised, or the record has one);
    /// otherwise a `ctx` term needs an `any` term or an anchor anywhere in the
    /// text, or a company name (`org_spans`) at most two words before it
    /// ("Tesla slumps"). A company name alone elsewhere is not enough, as
    /// ordinary tweets mention brands ("Come on Microsoft ... this fall").
    pub fn matches(
        &self,
        toks: &Tokens<'_>,
        finance_hint: bool,
        org_spans: &[Range<usize>],
    ) -> Vec<Match> {
        let t = &toks.tokens;
        let words = &toks.words;
        let mut found = Vec::new();
        let mut is_finance = finance_hint;
        let mut w = 0;
        while w < words.len() {
            let i = words[w];
            if self.is_anchor(&t[i].lower) {
                is_finance = true;
            }
            let mut consumed = 1;
            if let Some(entries) = self.by_first.get(&*t[i].lower) {
                for e in entries {
                    if let Some(n) = match_rest(toks, words, w, &e.rest) {
                        let sign = if negated(t, i, 3) { -0.74 } else { 1.0 };
                        found.push(Match {
                            first: i,
                            last: words[w + n - 1],
                            target: e.target * sign,
                            delta: e.delta * sign,
                            any: e.any,
                        });
                        is_finance |= e.any;
                        consumed = n;
                        break;
                    }
                }
            }
            w += consumed;
        }
        if !is_finance {
            found.retain(|m| m.any || follows_org(toks, m.first, org_spans));
        }
        found
    }
}

/// Whether a company name ends at most two words before token `first`.
fn follows_org(toks: &Tokens<'_>, first: usize, org_spans: &[Range<usize>]) -> bool {
    let start = toks.tokens[first].span.start;
    org_spans.iter().any(|org| {
        org.end <= start
            && toks
                .tokens
                .iter()
                .filter(|t| t.is_word() && t.span.start >= org.end && t.span.end <= start)
                .count()
                <= 2
    })
}

/// Matches `rest` against the words after `words[w]`; returns the number of
/// word tokens consumed (including the first) on success. A phrase never
/// crosses a sentence boundary.
fn match_rest(toks: &Tokens<'_>, words: &[usize], w: usize, rest: &[Pat]) -> Option<usize> {
    let t = &toks.tokens;
    let sentence = t[words[w]].sentence;
    let mut k = w + 1;
    for p in rest {
        let &i = words.get(k)?;
        if t[i].sentence != sentence {
            return None;
        }
        match p {
            Pat::Word(s) => {
                if t[i].lower != *s {
                    return None;
                }
                k += 1;
            }
            Pat::Num => {
                if !is_number(&t[i].lower) {
                    return None;
                }
                k += 1;
            }
            Pat::Pct => {
                let lw = &t[i].lower;
                if lw.ends_with('%') && lw.chars().any(|c| c.is_ascii_digit()) {
                    k += 1;
                } else if is_number(lw)
                    && words
                        .get(k + 1)
                        .is_some_and(|&j| matches!(&*t[j].lower, "percent" | "pct"))
                {
                    k += 2;
                } else {
                    return None;
                }
            }
        }
    }
    Some(k - w)
}

fn is_number(s: &str) -> bool {
    let s = s.trim_start_matches(['+', '-']);
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
}

fn parse_line(line: &str) -> Option<(&str, f64, bool)> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let mut cols = line.split('\t');
    let term = cols.next()?.trim();
    let target: f64 = cols.next()?.trim().parse().ok()?;
    let any = match cols.next()?.trim() {
        "any" => true,
        "ctx" => false,
        _ => return None,
    };
    (!term.is_empty() && target.is_finite()).then_some((term, target, any))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex() -> (SentimentIntensityAnalyzer, FinanceLexicon) {
        let v = SentimentIntensityAnalyzer::new();
        let l = FinanceLexicon::new(&v);
        (v, l)
    }

    #[test]
    fn every_data_line_parses() {
        let data_lines = LEXICON_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .count();
        let (_, l) = lex();
        assert_eq!(l.len(), data_lines);
        assert!(l.len() >= 350, "lexicon unexpectedly small: {}", l.len());
    }

    #[test]
    fn raw_and_normalize_are_inverse() {
        for c in [-0.95, -0.3, 0.0, 0.42, 0.9] {
            assert!((vader_normalize(vader_raw(c)) - c).abs() < 1e-9);
        }
    }

    #[test]
    fn longest_phrase_and_percent() {
        let (_, l) = lex();
        let t = Tokens::new("Apple beats estimates, stock up 5 percent, to cut 1,200 jobs");
        let m = l.matches(&t, false, &[]);
        assert_eq!(m.len(), 3, "{m:?}");
        assert_eq!(m[0].target, 2.6);
        assert_eq!(m[1].target, 1.6);
        assert_eq!(m[2].target, -2.0);
    }

    #[test]
    fn negation_flips_and_dampens() {
        let (_, l) = lex();
        let t = Tokens::new("Nvidia did not beat estimates");
        let m = l.matches(&t, false, &[]);
        assert_eq!(m.len(), 1);
        assert!((m[0].target + 2.6 * 0.74).abs() < 1e-9);
    }

    #[test]
    fn ctx_terms_need_finance_context() {
        let (_, l) = lex();
        assert!(l
            .matches(&Tokens::new("I miss you and the cat jumps"), false, &[])
            .is_empty());
        assert_eq!(
            l.matches(&Tokens::new("the stock jumps"), false, &[]).len(),
            1
        );
        assert_eq!(l.matches(&Tokens::new("it jumps"), true, &[]).len(), 1);
        // A company name right before the verb counts, far away does not.
        let tesla = std::slice::from_ref(&(0..5));
        assert_eq!(
            l.matches(&Tokens::new("Tesla slumps"), false, tesla).len(),
            1
        );
        assert!(l
            .matches(
                &Tokens::new("Tesla, tell me what I buy this fall"),
                false,
                tesla
            )
            .is_empty());
    }

    #[test]
    fn neutraliser_cancels_vader_value() {
        let (_, l) = lex();
        let m = l.matches(&Tokens::new("shares plunge"), false, &[]);
        // "shares" is +1.2 in VADER; the overlay removes it.
        assert!((m[0].delta + 1.2).abs() < 1e-3, "{m:?}");
        assert_eq!(m[0].target, 0.0);
    }
}
