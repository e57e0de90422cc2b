//! `aspect_target_identification` and `aspect_based_sentiment`: the project's
//! finance aspect taxonomy ([`ASPECTS`]) with clause-level scores.
//!
//! An aspect is found when one of its cue words or phrases occurs (lower-case,
//! whole words, longest cue first). Aspects are listed in first-mention order
//! without duplicates. Each mention is scored on its *clause*: the sentence
//! cut at `;`, `:` and contrast words ("but", "while", "although", ...), so
//! "revenue beat but guidance disappointed" gives revenue > 0 and guidance
//! < 0. The clause score is the sentiment module's lexicon-only clause score
//! (VADER lexicon + finance overlay, with negation); a text that is a single
//! clause reuses the full `sentiment_score`. An aspect's score is the mean
//! over its mentions.
//!
//! Limits: cue lists are hand-written and English-only; a clause mentioning
//! two aspects gives both the same score; co-reference ("it", "the company")
//! is not resolved.

use std::collections::BTreeMap;

use crate::text::{PhraseTable, Tokens};

/// Aspect name -> cue words/phrases. Names are stable output values
/// (snake_case); cues are lower-case and space-separated.
pub(crate) const ASPECTS: &[(&str, &[&str])] = &[
    (
        "earnings",
        &[
            "earnings",
            "eps",
            "profit",
            "profits",
            "net income",
            "quarterly results",
            "results",
            "bottom line",
            "per share",
            "loss per share",
            "net loss",
            "quarterly loss",
            "annual profit",
            "beats estimates",
            "beat estimates",
            "tops estimates",
            "misses estimates",
            "profit estimates",
            "loss",
            "wider loss",
            "writedown",
        ],
    ),
    (
        "revenue",
        &[
            "revenue",
            "revenues",
            "sales",
            "top line",
            "top-line",
            "bookings",
            "billings",
            "same-store sales",
            "comparable sales",
            "turnover",
            "subscribers",
            "subscriber",
            "subscriber growth",
            "subscriptions",
            "merchandise volume",
            "gmv",
            "outflows",
            "inflows",
            "assets under management",
        ],
    ),
    (
        "guidance",
        &[
            "guidance",
            "outlook",
            "forecast",
            "forecasts",
            "full-year forecast",
            "projections",
            "profit warning",
            "warns",
            "sees",
            "expects",
            "growth target",
            // A metric followed by a forecast word is guidance about that metric,
            // not a report of it ("cuts profit forecast" is guidance only).
            "profit forecast",
            "profit outlook",
            "profit guidance",
            "revenue forecast",
            "revenue outlook",
            "revenue guidance",
            "sales forecast",
            "sales outlook",
            "earnings forecast",
            "earnings outlook",
            "earnings guidance",
            "margin outlook",
            "margin guidance",
            "margin forecast",
            "bookings forecast",
            "billings forecast",
            "production forecast",
            "spending forecast",
        ],
    ),
    (
        "margins",
        &[
            "margin",
            "margins",
            "gross margin",
            "operating margin",
            "costs",
            "cost cuts",
            "cost-cutting",
            "expenses",
            "profitability",
        ],
    ),
    (
        "management",
        &[
            "ceo",
            "cfo",
            "chief executive",
            "chief financial officer",
            "management",
            "board",
            "chairman",
            "founder",
            "executive",
            "executives",
            "leadership",
            "steps down",
            "resigns",
            "appointed",
            "appoints",
            "succession",
            "names new",
            "president",
            "chief operating officer",
            "head of",
        ],
    ),
    (
        "product",
        &[
            // Launches, recalls, trials and quality problems; not "chip demand" or
            // "cloud services" growth, which are revenue stories.
            "product",
            "products",
            "launch",
            "launches",
            "iphone",
            "drug",
            "vaccine",
            "trial",
            "deliveries",
            "recall",
            "recalls",
            "device",
            "devices",
            "vehicles",
            "app",
            "lineup",
            "debut",
            "defect",
            "outage",
        ],
    ),
    (
        "valuation",
        &[
            "valuation",
            "overvalued",
            "undervalued",
            "p/e",
            "multiple",
            "multiples",
            "market cap",
            "market value",
            "cheap",
            "expensive",
            "priced in",
            "fair value",
            "price-to-earnings",
        ],
    ),
    (
        "analyst_rating",
        &[
            "upgrade",
            "upgrades",
            "upgraded",
            "downgrade",
            "downgrades",
            "downgraded",
            "price target",
            "rating",
            "overweight",
            "underweight",
            "outperform",
            "underperform",
            "analyst",
            "analysts",
            "initiates coverage",
            "buy rating",
            "sell rating",
        ],
    ),
    (
        "shareholder_returns",
        &[
            "dividend",
            "dividends",
            "buyback",
            "buybacks",
            "share repurchase",
            "repurchase",
            "payout",
            "special dividend",
            "dividend yield",
        ],
    ),
    (
        "mergers_acquisitions",
        &[
            "merger",
            "acquisition",
            "acquire",
            "acquires",
            "acquired",
            "takeover",
            "deal",
            "buyout",
            "spin-off",
            "spinoff",
            "agrees to buy",
            "offer to buy",
            "deal to buy",
            "takeover bid",
            "split into",
            "break up",
        ],
    ),
    (
        "legal_regulatory",
        &[
            "lawsuit",
            "sued",
            "probe",
            "investigation",
            "sec",
            "ftc",
            "doj",
            "antitrust",
            "regulator",
            "regulators",
            "fined",
            "settlement",
            "fraud",
            "subpoena",
            "court",
            "ruling",
            "fda",
            "approval",
            "judge",
            "illegally",
            "monopoly",
            "monopolized",
            "auditor",
            "auditor resigns",
            "accounting",
        ],
    ),
    (
        "debt_financing",
        &[
            "debt",
            "debt rating",
            "bonds",
            "credit rating",
            "default",
            "bankruptcy",
            "chapter 11",
            "loan",
            "loans",
            "refinancing",
            "liquidity",
            "cash burn",
            "offering",
            "convertible",
        ],
    ),
    (
        "workforce",
        &[
            "layoffs",
            "layoff",
            "job cuts",
            "jobs",
            "workers",
            "employees",
            "strike",
            "union",
            "hiring",
            "headcount",
            "staff",
            "workforce",
        ],
    ),
    (
        "macro",
        &[
            "inflation",
            "interest rates",
            "rate hike",
            "rate cut",
            "fed",
            "recession",
            "tariffs",
            "tariff",
            "economy",
            "gdp",
            "unemployment",
            "yields",
            "oil prices",
            "payrolls",
        ],
    ),
];

/// Phrases that contain a cue word but name no aspect ("wealth management" is
/// a business line, not the company's management). Matched like cues, so the
/// longest-match rule lets them shadow the shorter cue.
const NON_ASPECT_PHRASES: &[&str] = &[
    "wealth management",
    "asset management",
    "data management",
    "risk management",
    "cash management",
    "investor day",
];

/// Compiled cue table: each cue maps to its aspect index, or to `None` for
/// [`NON_ASPECT_PHRASES`]. Those are inserted first so that, at equal length,
/// they win over an aspect cue.
pub(crate) struct Aspects {
    cues: PhraseTable<Option<usize>>,
}

/// One aspect mention: aspect index and the clause index of the mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mention {
    pub aspect: usize,
    pub clause: usize,
}

impl Aspects {
    pub fn new() -> Aspects {
        let non_aspects = NON_ASPECT_PHRASES.iter().map(|c| (*c, None));
        let aspects = ASPECTS
            .iter()
            .enumerate()
            .flat_map(|(i, (_, cues))| cues.iter().map(move |c| (*c, Some(i))));
        Aspects {
            cues: PhraseTable::new(non_aspects.chain(aspects)),
        }
    }

    /// All mentions in token order.
    pub fn mentions(&self, toks: &Tokens<'_>) -> Vec<Mention> {
        self.cues
            .find_at(toks)
            .into_iter()
            .filter_map(|(i, aspect)| {
                Some(Mention {
                    aspect: aspect?,
                    clause: toks.tokens[i].clause,
                })
            })
            .collect()
    }
}

/// Aspect names in first-mention order, without duplicates.
pub(crate) fn targets(mentions: &[Mention]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in mentions {
        let name = ASPECTS[m.aspect].0;
        if !out.iter().any(|x| x == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// Mean clause score per aspect. `clause_score(c)` is the score of clause `c`.
pub(crate) fn scores(
    mentions: &[Mention],
    clause_score: impl Fn(usize) -> f64,
) -> BTreeMap<String, f64> {
    let mut sums: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
    for m in mentions {
        let s = clause_score(m.clause);
        let e = sums.entry(ASPECTS[m.aspect].0).or_insert((0.0, 0.0));
        e.0 += s;
        e.1 += 1.0;
    }
    sums.into_iter()
        .map(|(k, (s, n))| (k.to_string(), (s / n).clamp(-1.0, 1.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        targets(&Aspects::new().mentions(&Tokens::new(text)))
    }

    #[test]
    fn first_mention_order_no_duplicates() {
        assert_eq!(
            found("Revenue rose but guidance was cut; revenue growth slowed as the CEO resigned"),
            vec!["revenue", "guidance", "management"]
        );
    }

    #[test]
    fn longest_cue_wins() {
        // "price target" is an analyst action, "profit warning" guidance.
        assert_eq!(
            found("Jefferies raises price target"),
            vec!["analyst_rating"]
        );
        assert_eq!(found("Profit warning from BASF"), vec!["guidance"]);
        assert_eq!(found("Target cuts profit forecast"), vec!["guidance"]);
        assert!(found("BNY expands wealth management arm").is_empty());
    }

    #[test]
    fn scores_average_per_aspect_by_clause() {
        let t = Tokens::new("Revenue rose, but guidance fell; revenue slipped");
        let m = Aspects::new().mentions(&t);
        let s = scores(&m, |c| [0.5, -0.4, -0.1][c]);
        assert_eq!(s["revenue"], 0.2);
        assert_eq!(s["guidance"], -0.4);
    }

    #[test]
    fn every_aspect_has_cues() {
        assert!(ASPECTS.len() >= 12);
        assert!(ASPECTS.iter().all(|(_, c)| !c.is_empty()));
    }
}
