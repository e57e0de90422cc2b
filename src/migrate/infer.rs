//! Which column holds which seed field, inferred from a file's names, types and a sample of its values,
//! with the file's rule (its mapping) deciding whatever it names.
//!
//! Every column is described once from the sample ([`Facts`]): whether its values read as instants (and
//! how precisely), as long free text, as tickers, labels, scores, URLs or unique ids. A field's candidates
//! are the columns whose type and values fit it; a name from the field's synonym table ranks a candidate,
//! and the seed's own name ranks first. The field goes to the one candidate of the best rank. When the
//! best rank holds two candidates, or a plainer column is named like the time while another holds full
//! instants, nothing is guessed: the file is reported with both ([`Tie`]) and a rule decides. An optional
//! field that only values (no name) could fill, and fill twice, is left empty and said so.
//!
//! Uses [`super::layout`] (the layout it fills and how values are read); nothing here reads files.

use std::collections::{BTreeMap, HashSet};

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema};

use super::layout::{epoch_micros_f64, is_text, label_score, parse_time, ticker_from_path, Layout, Mapping};

/// Rows of the first row group that inference reads.
pub const SAMPLE_ROWS: usize = 1_000;

/// Epoch numbers are instants only inside these years: a count or an id rarely lands in them in every row.
const PLAUSIBLE_FROM_MICROS: i64 = 946_684_800_000_000; // 2000-01-01
const PLAUSIBLE_UNTIL_MICROS: i64 = 4_102_444_800_000_000; // 2100-01-01

/// How a field got its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evidence {
    /// The file's rule (or `--mapping`) names the column or the value.
    Rule,
    /// A synonym of the field names the column, and its values fit.
    NameAndContent,
    /// Its values alone: the only column that fits.
    Content,
    /// From the file or folder name (tickers).
    Path,
    /// Generated from the file's content hash and the row number (message ids).
    Generated,
    /// Computed by enrichment (scores of files without any).
    Enrichment,
    /// The seed's default for migrated rows.
    Default,
    /// As recorded when the file's migration began (a resumed or finished file keeps its layout).
    Recorded,
}

/// Where one seed field comes from in a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Choice {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    /// The value every row gets, for fields no column fills.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub by: Evidence,
    /// How the column's values are read (`epoch seconds`, `rescaled from [-4, 4]`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_as: Option<String>,
}

/// A field two columns could fill equally well (or one column two ways): a rule must decide.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tie {
    pub field: String,
    pub candidates: Vec<String>,
    pub why: String,
}

/// A file's inferred layout, with the evidence for each field. Recorded with the file (and read back by a
/// resumed run), so its serialised form is what the layout is rebuilt from ([`Inferred::layout_of`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Inferred {
    #[serde(skip)]
    pub layout: Layout,
    /// Seed field -> where its values come from.
    pub fields: BTreeMap<String, Choice>,
    /// Legacy scores on VADER's lexicon scale, [-4, 4]: divided by 4.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub score_rescaled: bool,
    /// Fields a rule must decide; a file with any is not migrated.
    #[serde(default)]
    pub ties: Vec<Tie>,
    /// Required fields nothing fills; a file with any is not migrated.
    #[serde(default)]
    pub missing: Vec<String>,
    /// Columns left out, and why (pandas index columns, scores out of range, ...).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl Inferred {
    /// Whether the file can be migrated as inferred.
    pub fn is_decided(&self) -> bool {
        self.ties.is_empty() && self.missing.is_empty()
    }

    /// The layout over `schema` that the fields name (by column name), for a layout read back from its
    /// record; a named column the file lacks, or has twice, is an error.
    pub fn layout_of(&self, schema: &Schema) -> Result<Layout, String> {
        let mut layout = Layout { score_rescaled: self.score_rescaled, ..Layout::default() };
        for (field, choice) in &self.fields {
            let Some(column) = &choice.column else { continue };
            let mut found = schema.fields().iter().enumerate().filter(|(_, f)| f.name() == column).map(|(i, _)| i);
            match (found.next(), found.next()) {
                (Some(index), None) => set(&mut layout, field, index),
                (Some(_), Some(_)) => return Err(format!("two columns are named `{column}`")),
                (None, _) => return Err(format!("the layout names column `{column}` for {field}, which the file does not have")),
            }
        }
        Ok(layout)
    }

    /// Why not, in one line.
    pub fn undecided(&self) -> String {
        let ties = self.ties.iter().map(|t| format!("{} could be any of `{}` ({})", t.field, t.candidates.join("`, `"), t.why));
        let missing = self.missing.iter().map(|field| format!("no column holds {field}"));
        ties.chain(missing).collect::<Vec<_>>().join("; ")
    }
}

/// What the sample shows about one column.
#[derive(Debug, Clone, Default)]
struct Facts {
    name: String,
    non_null: usize,
    /// 2: instants (a timestamp type, epoch numbers, strings with a time of day); 1: dates only; 0: not a
    /// time.
    time_quality: u8,
    /// Epoch numbers: instants only when the name says time too.
    epoch: bool,
    /// No value in the sample: only the name and the type speak for the column.
    empty: bool,
    /// Numbers: the share of values beyond ±1 (a score on [-4, 4] has many).
    beyond_one: f64,
    time_read_as: Option<&'static str>,
    string: bool,
    /// Strings: the share of values that look like free text (several words), tickers, labels, URLs.
    prose: f64,
    tickers: f64,
    cashtags: f64,
    labels: f64,
    urls: f64,
    /// Every value distinct (and at least two).
    unique: bool,
    /// Strings of 6 to 128 bytes without whitespace.
    token_like: bool,
    integer: bool,
    float: bool,
    /// Numbers: the smallest and largest value.
    range: Option<(f64, f64)>,
}

fn share(hits: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        hits as f64 / of as f64
    }
}

fn looks_like_ticker(value: &str) -> bool {
    let value = value.strip_prefix('$').unwrap_or(value);
    let (head, tail) = value.split_once(['.', '-']).unwrap_or((value, ""));
    (1..=6).contains(&head.len()) && head.bytes().all(|b| b.is_ascii_uppercase()) && tail.len() <= 2 && tail.bytes().all(|b| b.is_ascii_uppercase())
}

fn facts(name: &str, column: &ArrayRef) -> Facts {
    let mut facts = Facts { name: name.to_ascii_lowercase(), non_null: column.len() - column.null_count(), ..Facts::default() };
    facts.empty = facts.non_null == 0;
    let data_type = column.data_type();
    facts.integer = data_type.is_integer();
    facts.float = data_type.is_floating();
    if matches!(data_type, DataType::Timestamp(..)) {
        (facts.time_quality, facts.time_read_as) = (2, Some("timestamp"));
    } else if matches!(data_type, DataType::Date32 | DataType::Date64) {
        (facts.time_quality, facts.time_read_as) = (1, Some("date (midnight UTC)"));
    }
    if facts.integer || facts.float {
        if let Ok(numbers) = arrow_cast::cast(column, &DataType::Float64) {
            let values: Vec<f64> = numbers.as_primitive::<Float64Type>().iter().flatten().filter(|v| v.is_finite()).collect();
            facts.range = values.iter().fold(None, |range, &v| Some(range.map_or((v, v), |(lo, hi): (f64, f64)| (lo.min(v), hi.max(v)))));
            let instants =
                values.iter().filter(|&&v| epoch_micros_f64(v).is_some_and(|t| (PLAUSIBLE_FROM_MICROS..PLAUSIBLE_UNTIL_MICROS).contains(&t))).count();
            if !values.is_empty() && share(instants, values.len()) >= 0.95 {
                (facts.time_quality, facts.time_read_as, facts.epoch) = (2, Some("epoch seconds, ms, µs or ns (by magnitude)"), true);
            }
            facts.beyond_one = share(values.iter().filter(|v| v.abs() > 1.0).count(), values.len());
            if facts.integer {
                let distinct: HashSet<u64> = values.iter().map(|v| v.to_bits()).collect();
                facts.unique = values.len() >= 2 && distinct.len() == values.len() && values.len() == column.len();
            }
        }
    }
    if is_text(data_type) {
        facts.string = true;
        let Ok(strings) = arrow_cast::cast(column, &DataType::Utf8) else { return facts };
        let values: Vec<&str> = strings.as_string::<i32>().iter().flatten().collect();
        let n = values.len();
        let count = |test: &dyn Fn(&str) -> bool| values.iter().filter(|v| test(v)).count();
        let (mut instants, mut dates) = (0, 0);
        for value in &values {
            if parse_time(value).is_some() {
                instants += 1;
                dates += usize::from(value.trim().len() <= 10);
            }
        }
        if n > 0 && share(instants, n) >= 0.9 {
            (facts.time_quality, facts.time_read_as) =
                if dates == instants { (1, Some("date strings (midnight UTC)")) } else { (2, Some("instant strings (UTC unless they name a zone)")) };
        }
        facts.prose = share(count(&|v| v.trim().contains(char::is_whitespace) && v.len() >= 12), n);
        facts.tickers = share(count(&looks_like_ticker), n);
        facts.cashtags = share(count(&|v| v.starts_with('$') && looks_like_ticker(v)), n);
        facts.labels = share(count(&|v| label_score(v).is_some()), n);
        facts.urls = share(count(&|v| v.starts_with("http://") || v.starts_with("https://")), n);
        let distinct: HashSet<&str> = values.iter().copied().collect();
        facts.unique = n >= 2 && distinct.len() == n && n == column.len();
        facts.token_like = n > 0 && values.iter().all(|v| (6..=128).contains(&v.len()) && !v.contains(char::is_whitespace));
    }
    facts
}

/// One seed field: its synonyms by rank, and how well a column's values fit it (0: not at all).
struct Field {
    name: &'static str,
    synonyms: &'static [&'static [&'static str]],
    fit: fn(&Facts) -> u8,
    /// The least fit a column needs without a synonym for a name (`None`: only named columns).
    fit_without_name: Option<u8>,
    /// A better fit outranks a name (time: a named date beside an unnamed full instant is a tie).
    fit_outranks_name: bool,
    required: bool,
}

/// Whether a name says time without being a synonym (`trade_ts`, `created_epoch`, `posted_unix`).
fn sounds_like_time(name: &str) -> bool {
    name.split(['_', '-', '.', ' ']).any(|part| matches!(part, "ts" | "time" | "timestamp" | "date" | "datetime" | "epoch" | "unix" | "utc" | "at"))
}

fn fits_time(f: &Facts) -> u8 {
    match () {
        // A named column with nothing in the sample: its name and a type that can hold times decide.
        _ if f.empty && (f.string || f.integer || f.float) => 1,
        _ => f.time_quality,
    }
}

fn fits_text(f: &Facts) -> u8 {
    match () {
        _ if !f.string || f.time_quality > 0 || f.urls >= 0.5 || f.labels >= 0.5 => 0,
        _ if f.prose >= 0.5 && f.tickers < 0.5 => 2,
        _ => 1,
    }
}

fn fits_ticker(f: &Facts) -> u8 {
    match () {
        _ if !f.string || f.labels >= 0.5 => 0,
        _ if f.cashtags >= 0.95 => 3,
        _ if f.tickers >= 0.95 => 2,
        _ => 1,
    }
}

/// Numbers within [-4, 4] (the range is the footer's over every row group where it records one): within
/// [-1, 1] as they are, beyond it on VADER's lexicon scale ([`score_scale`] decides). Only a named column
/// is a score: a float in range is as often a change or a ratio.
fn fits_score(f: &Facts) -> u8 {
    match f.range {
        Some((lo, hi)) if lo >= -4.0 && hi <= 4.0 => 1,
        None if f.empty && (f.integer || f.float) => 1,
        _ => 0,
    }
}

/// 2: nine in ten values are labels; 1: half of them (enough for a column named like a label).
fn fits_label(f: &Facts) -> u8 {
    match () {
        _ if !f.string => 0,
        _ if f.labels >= 0.9 => 2,
        _ if f.labels >= 0.5 => 1,
        _ => 0,
    }
}

/// Strings or integers, and only by name: distinct values are as often authors, counts or prices, and an id
/// taken wrongly would make `--dedup-ids` skip rows. 2 when distinct in the sample (1 is still used: the
/// ids are the file's).
fn fits_id(f: &Facts) -> u8 {
    match () {
        _ if !(f.string || f.integer) => 0,
        _ if f.unique => 2,
        _ => 1,
    }
}

fn fits_string(f: &Facts) -> u8 {
    u8::from(f.string)
}

fn fits_url(f: &Facts) -> u8 {
    match () {
        _ if !f.string => 0,
        _ if f.urls >= 0.9 => 2,
        _ => 1,
    }
}

/// In the order they are decided: a column taken by one field is no candidate for the next.
const FIELDS: &[Field] = &[
    Field {
        name: "event_timestamp",
        synonyms: &[
            &["event_timestamp"],
            &[
                "timestamp",
                "created_at",
                "created_utc",
                "posted_at",
                "published_at",
                "datetime",
                "ts",
                "time",
                "event_time",
                "created",
                "published",
                "posted",
                "date_time",
                "timestamp_utc",
                "created_time",
                "publish_time",
                "published_utc",
            ],
            &["date", "day"],
        ],
        fit: fits_time,
        fit_without_name: Some(1),
        fit_outranks_name: true,
        required: true,
    },
    Field {
        name: "text_content",
        synonyms: &[
            &["text_content"],
            &["text", "content", "body", "message", "tweet", "post", "comment", "full_text", "msg", "selftext", "tweet_text", "news"],
            &["headline", "title", "summary", "description"],
        ],
        fit: fits_text,
        fit_without_name: Some(2),
        fit_outranks_name: false,
        required: true,
    },
    Field {
        name: "message_id",
        synonyms: &[
            &["message_id"],
            &["id", "uuid", "record_id", "tweet_id", "post_id", "msg_id", "guid", "_id", "status_id", "comment_id", "news_id", "article_id"],
        ],
        fit: fits_id,
        fit_without_name: None,
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "ticker",
        synonyms: &[&["ticker"], &["symbol", "stock", "ticker_symbol", "cashtag", "sym", "instrument", "stock_symbol", "tickers"]],
        fit: fits_ticker,
        // Plain upper-case words are exchanges and codes as often as tickers: only cashtags ($AAPL) fill
        // the ticker without a name.
        fit_without_name: Some(3),
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "sentiment_score",
        synonyms: &[
            &["sentiment_score"],
            &[
                "sentiment",
                "compound",
                "polarity",
                "score",
                "sentiment_polarity",
                "vader",
                "vader_score",
                "vader_compound",
                "compound_score",
                "polarity_score",
                "sentiment_value",
            ],
        ],
        fit: fits_score,
        fit_without_name: None,
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "sentiment_label",
        synonyms: &[&["sentiment_label"], &["label", "sentiment", "sentiment_class", "classification", "polarity_label", "stance"]],
        fit: fits_label,
        fit_without_name: Some(2),
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "source_system",
        synonyms: &[&["source_system"], &["source", "platform", "site", "origin", "channel", "network"]],
        fit: fits_string,
        fit_without_name: None,
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "model_name",
        synonyms: &[&["model_name"], &["model", "model_version", "analyzer", "classifier"]],
        fit: fits_string,
        fit_without_name: None,
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "source_url",
        synonyms: &[&["source_url"], &["url", "link", "permalink", "href", "article_url"]],
        fit: fits_url,
        fit_without_name: Some(2),
        fit_outranks_name: false,
        required: false,
    },
    Field {
        name: "article_title",
        synonyms: &[&["article_title"], &["title", "headline"]],
        fit: fits_string,
        fit_without_name: None,
        fit_outranks_name: false,
        required: false,
    },
];

/// The rank of `name` among a field's synonyms (0 is the seed's own name).
fn rank(field: &Field, name: &str) -> Option<usize> {
    field.synonyms.iter().position(|tier| tier.contains(&name))
}

/// Named like a field other than `field`: no candidate for `field` by values alone.
fn named_for_another(field: &Field, name: &str) -> bool {
    FIELDS.iter().any(|other| other.name != field.name && rank(other, name).is_some())
}

struct Candidate {
    column: usize,
    rank: Option<usize>,
    fit: u8,
}

/// The column of `field` among `candidates`, or a tie.
fn decide(field: &Field, candidates: &[Candidate], schema: &Schema) -> Result<Option<(usize, Evidence)>, Tie> {
    let name = |c: &Candidate| schema.field(c.column).name().clone();
    let tie =
        |tied: Vec<&Candidate>, why: &str| Tie { field: field.name.into(), candidates: tied.into_iter().map(name).collect(), why: why.to_string() };
    let best_rank = candidates.iter().filter_map(|c| c.rank).min();
    if let Some(best_rank) = best_rank {
        let ranked: Vec<&Candidate> = candidates.iter().filter(|c| c.rank == Some(best_rank)).collect();
        let best_fit = ranked.iter().map(|c| c.fit).max().unwrap_or_default();
        let top: Vec<&Candidate> = ranked.into_iter().filter(|c| c.fit == best_fit).collect();
        if top.len() > 1 {
            return Err(tie(top, "named alike, values alike"));
        }
        let chosen = top[0];
        if field.fit_outranks_name && best_rank > 0 {
            let finer: Vec<&Candidate> = candidates.iter().filter(|c| c.fit > chosen.fit).collect();
            if !finer.is_empty() {
                let mut tied = vec![chosen];
                tied.extend(finer);
                return Err(tie(tied, "one is named like it, another holds finer values"));
            }
        }
        return Ok(Some((chosen.column, Evidence::NameAndContent)));
    }
    let Some(least) = field.fit_without_name else { return Ok(None) };
    let fitting: Vec<&Candidate> = candidates.iter().filter(|c| c.fit >= least).collect();
    match fitting.len() {
        0 => Ok(None),
        1 => Ok(Some((fitting[0].column, Evidence::Content))),
        _ => Err(tie(fitting, "no name decides between columns that fit by their values")),
    }
}

/// What a file says about itself beyond its sample: its path (tickers in file and folder names) and the
/// range of its numeric columns over every row group, from the footer's statistics.
#[derive(Debug, Clone, Default)]
pub struct FileFacts<'a> {
    pub path: &'a str,
    pub ranges: std::collections::HashMap<String, (f64, f64)>,
}

/// Infers where each seed field of a file comes from: `schema`, `sample` (its first rows), what the
/// footer says (`file`), and the `rule` that applies to it.
pub fn infer(schema: &Schema, sample: &RecordBatch, file: &FileFacts<'_>, rule: &Mapping) -> Result<Inferred, String> {
    let mut inferred = Inferred::default();
    let mut taken: HashSet<usize> = HashSet::new();
    let mut described: Vec<Facts> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| if i < sample.num_columns() { facts(f.name(), sample.column(i)) } else { Facts::default() })
        .collect();
    for (facts, field) in described.iter_mut().zip(schema.fields()) {
        if let (Some((lo, hi)), Some(&(footer_lo, footer_hi))) = (facts.range, file.ranges.get(field.name())) {
            facts.range = Some((lo.min(footer_lo), hi.max(footer_hi)));
        }
    }
    let mut by_rule: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (field, column) in rule.named_columns() {
        let mut found = schema.fields().iter().enumerate().filter(|(_, f)| f.name() == &column).map(|(i, _)| i);
        let index = match (found.next(), found.next()) {
            (Some(index), None) => index,
            (Some(_), Some(_)) => return Err(format!("the rule names column `{column}` for {field}, and the file has two of that name")),
            (None, _) => return Err(format!("the rule names column `{column}` for {field}, which the file does not have")),
        };
        let spec = FIELDS.iter().find(|f| f.name == field).expect("rules name seed fields");
        let data_type = schema.field(index).data_type();
        if !holds(spec, data_type) {
            return Err(format!("the rule names column `{column}` for {field}, but it holds {data_type}, which cannot be read as {field}"));
        }
        by_rule.insert(field, index);
        taken.insert(index);
    }
    let mut names: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for field in schema.fields() {
        *names.entry(field.name().as_str()).or_default() += 1;
    }
    for (index, field) in schema.fields().iter().enumerate() {
        if taken.contains(&index) {
            continue;
        }
        if field.name().starts_with("__index_level_") {
            taken.insert(index);
            inferred.notes.push(format!("`{}` is the pandas index of the writer's frame: row labels, not data, left out", field.name()));
        } else if names[field.name().as_str()] > 1 {
            taken.insert(index);
            inferred.notes.push(format!("two columns are named `{}`: neither is used unless renamed", field.name()));
        }
    }
    let mut unfit: Vec<(usize, &'static str)> = Vec::new();
    for field in FIELDS {
        let chosen = if let Some(&column) = by_rule.get(field.name) {
            Some((column, Evidence::Rule))
        } else {
            let mut candidates = Vec::new();
            let mut named_unfit = Vec::new();
            for (column, facts) in described.iter().enumerate() {
                if taken.contains(&column) {
                    continue;
                }
                let rank = rank(field, &facts.name);
                let fit = if rank.is_some() { (field.fit)(facts) } else { fits_by_values(field, facts) };
                if rank.is_some() && fit == 0 && facts.non_null > 0 {
                    unfit.push((column, field.name));
                    named_unfit.push(column);
                }
                if fit > 0 && (rank.is_some() || !named_for_another(field, &facts.name)) {
                    candidates.push(Candidate { column, rank, fit });
                }
            }
            match decide(field, &candidates, schema) {
                // A required field taken by values alone beside a column named like it whose values do not
                // read: which one is meant is not for inference to say.
                Ok(Some((column, Evidence::Content))) if field.required && !named_unfit.is_empty() => {
                    let mut tied: Vec<String> = named_unfit.iter().map(|&c| schema.field(c).name().clone()).collect();
                    tied.push(schema.field(column).name().clone());
                    let why = "the column named like it does not read as one; another does by its values".to_string();
                    inferred.ties.push(Tie { field: field.name.into(), candidates: tied, why });
                    None
                }
                Ok(chosen) => chosen,
                Err(tie) if field.required || candidates.iter().any(|c| c.rank.is_some()) => {
                    inferred.ties.push(tie);
                    None
                }
                Err(tie) => {
                    inferred.notes.push(format!("{} left empty: `{}` fit it alike and no name decides", tie.field, tie.candidates.join("`, `")));
                    None
                }
            }
        };
        let Some((column, by)) = chosen else { continue };
        taken.insert(column);
        let facts = &described[column];
        let name = schema.field(column).name().clone();
        if field.name == "sentiment_score" {
            match score_scale(facts, rule.defaults.score_range) {
                Ok(rescaled) => inferred.score_rescaled = rescaled,
                Err(why) => {
                    inferred.ties.push(Tie { field: field.name.into(), candidates: vec![name], why });
                    continue;
                }
            }
        }
        let read_as = read_as(field.name, facts, inferred.score_rescaled);
        inferred.fields.insert(field.name.into(), Choice { column: Some(name), value: None, by, read_as });
    }
    for (column, field) in unfit.into_iter().filter(|(column, _)| !taken.contains(column)) {
        inferred.notes.push(format!("`{}` is named like {field} but its values do not fit it: not used", schema.field(column).name()));
    }
    if inferred.fields.contains_key("sentiment_score") && inferred.fields.contains_key("sentiment_label") {
        inferred.notes.push("both a score and a label: the score is used, the label where the score is null".into());
    }
    for field in FIELDS.iter().filter(|f| f.required) {
        if !inferred.fields.contains_key(field.name) && !inferred.ties.iter().any(|t| t.field == field.name) {
            inferred.missing.push(field.name.into());
        }
    }
    inferred.layout = inferred.layout_of(schema)?;
    fill_the_rest(&mut inferred, file.path, rule);
    Ok(inferred)
}

/// Whether a column of `data_type` can be read as `field` at all (what a rule may name).
fn holds(field: &Field, data_type: &DataType) -> bool {
    match field.name {
        "event_timestamp" => {
            matches!(data_type, DataType::Timestamp(..) | DataType::Date32 | DataType::Date64) || data_type.is_numeric() || is_text(data_type)
        }
        "sentiment_score" => data_type.is_numeric(),
        "message_id" => data_type.is_integer() || is_text(data_type),
        _ => is_text(data_type),
    }
}

/// Whether the legacy scores are on VADER's lexicon scale ([-4, 4], divided by 4) or already in [-1, 1]:
/// the rule's `score_range` says so, or the values do. Values beyond ±1 in only a few rows could be
/// outliers of [-1, 1] or a quiet [-4, 4]: a rule decides.
fn score_scale(facts: &Facts, rule_range: Option<u8>) -> Result<bool, String> {
    match (rule_range, facts.range) {
        (Some(range), _) => Ok(range == 4),
        (None, Some((lo, hi))) if lo >= -1.0 && hi <= 1.0 => Ok(false),
        (None, Some(_)) if facts.beyond_one >= 0.1 => Ok(true),
        (None, Some((lo, hi))) => Err(format!(
            "its values span [{lo}, {hi}] but lie beyond ±1 in {:.1} % of the sample: [-1, 1] with outliers, or [-4, 4]? a rule's `defaults.score_range` (1 or 4) decides",
            facts.beyond_one * 100.0
        )),
        (None, None) => Ok(false),
    }
}

/// A column without a synonym for a name fits `field` only by its values, and only well enough.
fn fits_by_values(field: &Field, facts: &Facts) -> u8 {
    if facts.empty || (field.name == "event_timestamp" && facts.epoch && !sounds_like_time(&facts.name)) {
        return 0;
    }
    match field.fit_without_name {
        Some(least) if (field.fit)(facts) >= least => (field.fit)(facts),
        _ => 0,
    }
}

fn read_as(field: &str, facts: &Facts, score_rescaled: bool) -> Option<String> {
    match field {
        "event_timestamp" if facts.empty => Some("no value in the sample: read by its type".into()),
        "event_timestamp" => facts.time_read_as.map(str::to_string),
        "sentiment_score" if score_rescaled => Some("rescaled from [-4, 4] to [-1, 1]".into()),
        "sentiment_label" => Some("positive/bullish 0.5, negative/bearish -0.5, neutral 0".into()),
        "ticker" if facts.cashtags >= 0.95 => Some("cashtags, `$` dropped".into()),
        _ => None,
    }
}

fn set(layout: &mut Layout, field: &str, column: usize) {
    let slot = match field {
        "message_id" => &mut layout.message_id,
        "event_timestamp" => &mut layout.timestamp,
        "text_content" => &mut layout.text,
        "ticker" => &mut layout.ticker,
        "sentiment_score" => &mut layout.score,
        "sentiment_label" => &mut layout.label,
        "source_system" => &mut layout.source,
        "model_name" => &mut layout.model,
        "source_url" => &mut layout.url,
        "article_title" => &mut layout.title,
        _ => return,
    };
    *slot = Some(column);
}

/// Fields no column fills: from the rule's defaults, the file's name, or generated.
fn fill_the_rest(inferred: &mut Inferred, path: &str, rule: &Mapping) {
    let fields = &mut inferred.fields;
    let value = |value: String, by: Evidence| Choice { column: None, value: Some(value), by, read_as: None };
    if !fields.contains_key("ticker") {
        if let Some(ticker) = &rule.defaults.ticker {
            fields.insert("ticker".into(), value(ticker.clone(), Evidence::Rule));
        } else if let Some(ticker) = ticker_from_path(path) {
            fields.insert("ticker".into(), value(ticker, Evidence::Path));
        }
    }
    if !fields.contains_key("source_system") {
        match &rule.defaults.source_system {
            Some(source) => fields.insert("source_system".into(), value(source.clone(), Evidence::Rule)),
            None => fields.insert("source_system".into(), value("legacy".into(), Evidence::Default)),
        };
    }
    fields.entry("message_id".into()).or_insert_with(|| Choice {
        column: None,
        value: None,
        by: Evidence::Generated,
        read_as: Some("legacy-<content hash>-<row number>".into()),
    });
    if !fields.contains_key("sentiment_score") && !fields.contains_key("sentiment_label") {
        fields.insert("sentiment_score".into(), Choice { column: None, value: None, by: Evidence::Enrichment, read_as: None });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::Field as ArrowField;

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<ArrowField> = columns.iter().map(|(name, array)| ArrowField::new(*name, array.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    fn infer_batch(batch: &RecordBatch, path: &str) -> Inferred {
        infer(&batch.schema(), batch, &FileFacts { path, ..FileFacts::default() }, &Mapping::default()).unwrap()
    }

    fn texts(n: usize) -> ArrayRef {
        Arc::new(StringArray::from((0..n).map(|i| format!("shares rally after strong earnings, post {i}")).collect::<Vec<_>>()))
    }

    fn column<'a>(inferred: &'a Inferred, field: &str) -> Option<&'a str> {
        inferred.fields.get(field).and_then(|c| c.column.as_deref())
    }

    #[test]
    fn times_are_found_by_type_and_values_whatever_their_names() {
        let n = 50;
        let micros: Vec<i64> = (0..n).map(|i| 1_672_531_200_000_000 + i * 60_000_000).collect();
        for (name, times) in [
            ("ts", Arc::new(TimestampMicrosecondArray::from(micros.clone())) as ArrayRef),
            ("created_utc", Arc::new(Int64Array::from(micros.iter().map(|m| m / 1_000_000).collect::<Vec<_>>())) as ArrayRef),
            ("happened_at", Arc::new(Float64Array::from(micros.iter().map(|&m| m as f64 / 1e6).collect::<Vec<_>>())) as ArrayRef),
            (
                "stamp",
                Arc::new(StringArray::from(
                    micros.iter().map(|&m| format!("{}", chrono::DateTime::from_timestamp_micros(m).unwrap())).collect::<Vec<_>>(),
                )),
            ),
        ] {
            let b = batch(vec![(name, times), ("body", texts(n as usize)), ("compound", Arc::new(Float64Array::from(vec![0.1; n as usize])))]);
            let inferred = infer_batch(&b, "export.parquet");
            assert!(inferred.is_decided(), "{name}: {}", inferred.undecided());
            assert_eq!(column(&inferred, "event_timestamp"), Some(name), "{inferred:?}");
            assert_eq!((column(&inferred, "text_content"), column(&inferred, "sentiment_score")), (Some("body"), Some("compound")));
        }
    }

    #[test]
    fn two_times_alike_are_a_tie_that_a_rule_decides() {
        let times = || Arc::new(TimestampMicrosecondArray::from(vec![1_672_531_200_000_000; 10]).with_timezone("UTC")) as ArrayRef;
        let b = batch(vec![("opened", times()), ("closed", times()), ("text", texts(10))]);
        let inferred = infer_batch(&b, "x.parquet");
        assert!(!inferred.is_decided());
        assert_eq!(inferred.ties[0].candidates, ["opened", "closed"]);
        let rule = Mapping::parse(r#"{"columns": {"event_timestamp": "closed"}}"#).unwrap();
        let decided = infer(&b.schema(), &b, &FileFacts { path: "x.parquet", ..FileFacts::default() }, &rule).unwrap();
        assert!(decided.is_decided(), "{}", decided.undecided());
        assert_eq!(decided.fields["event_timestamp"].by, Evidence::Rule);
        assert_eq!(decided.layout.timestamp, Some(1));
        // A name decides between a creation and an update time; a named date beside an unnamed instant is
        // a tie (the date would lose the time of day).
        let b = batch(vec![("updated_at", times()), ("created_at", times()), ("text", texts(10))]);
        assert_eq!(column(&infer_batch(&b, "x"), "event_timestamp"), Some("created_at"));
        let dates = Arc::new(StringArray::from(vec!["2023-01-01"; 10])) as ArrayRef;
        let b = batch(vec![("date", dates.clone()), ("seen", times()), ("text", texts(10))]);
        assert_eq!(infer_batch(&b, "x").ties[0].candidates, ["date", "seen"]);
        let b = batch(vec![("date", dates), ("text", texts(10))]);
        let only_a_date = infer_batch(&b, "x");
        assert_eq!(column(&only_a_date, "event_timestamp"), Some("date"));
        assert_eq!(only_a_date.fields["event_timestamp"].read_as.as_deref(), Some("date strings (midnight UTC)"));
    }

    #[test]
    fn scores_labels_ids_and_tickers_by_values() {
        let n = 20;
        let b = batch(vec![
            ("__index_level_0__", Arc::new(StringArray::from((0..n).map(|i| format!("row-{i:06}")).collect::<Vec<_>>())) as ArrayRef),
            ("uid", Arc::new(StringArray::from((0..n).map(|i| format!("t3_abc{i:04}")).collect::<Vec<_>>()))),
            ("posted", Arc::new(Int64Array::from(vec![1_700_000_000_000; n]))),
            ("message", texts(n)),
            ("vader", Arc::new(Float64Array::from((0..n).map(|i| (i as f64 - 10.0) / 3.0).collect::<Vec<_>>()))),
            ("tags", Arc::new(StringArray::from(vec!["$TSLA"; n]))),
            ("mood", Arc::new(StringArray::from(vec!["Bullish"; n]))),
        ]);
        let inferred = infer_batch(&b, "x.parquet");
        assert!(inferred.is_decided(), "{}", inferred.undecided());
        assert_eq!(inferred.fields["message_id"].by, Evidence::Generated, "distinct values alone make no id");
        assert_eq!(column(&inferred, "event_timestamp"), Some("posted"));
        assert_eq!(column(&inferred, "ticker"), Some("tags"));
        assert_eq!(column(&inferred, "sentiment_score"), Some("vader"));
        assert!(inferred.layout.score_rescaled, "values beyond 1 in most rows, within 4: VADER's lexicon scale");
        assert_eq!(column(&inferred, "sentiment_label"), Some("mood"));
        assert!(inferred.notes.iter().any(|n| n.contains("__index_level_0__")), "{:?}", inferred.notes);
        // Without names, plain upper-case words are not taken for tickers, and the file name gives one.
        let b = batch(vec![
            ("ts", Arc::new(Int64Array::from(vec![1_700_000_000; n])) as ArrayRef),
            ("body", texts(n)),
            ("exchange", Arc::new(StringArray::from(vec!["NASDAQ"; n]))),
        ]);
        let inferred = infer_batch(&b, "AMD_2019.parquet");
        assert_eq!(inferred.fields["ticker"], Choice { column: None, value: Some("AMD".into()), by: Evidence::Path, read_as: None });
        assert_eq!(inferred.fields["message_id"].by, Evidence::Generated);
        assert_eq!(inferred.fields["sentiment_score"].by, Evidence::Enrichment);
    }

    #[test]
    fn numbers_are_times_or_scores_only_when_names_say_so_and_doubts_go_to_a_rule() {
        let n = 40;
        let epochs = |from: i64| Arc::new(Int64Array::from((0..n).map(|i| from + i).collect::<Vec<_>>())) as ArrayRef;
        // An id that happens to be a plausible epoch is no time; one whose name says time is.
        let b = batch(vec![("user_id", epochs(1_234_567_890)), ("body", texts(n as usize))]);
        assert_eq!(infer_batch(&b, "x").missing, ["event_timestamp"]);
        let b = batch(vec![("user_id", epochs(1_234_567_890)), ("trade_ts", epochs(1_600_000_000)), ("body", texts(n as usize))]);
        assert_eq!(column(&infer_batch(&b, "x"), "event_timestamp"), Some("trade_ts"));
        // Two columns that fit by values alone: a tie, whatever their fits.
        let b = batch(vec![
            ("opened_ts", epochs(1_600_000_000)),
            ("seen", Arc::new(StringArray::from(vec!["2021-01-01"; n as usize]))),
            ("body", texts(n as usize)),
        ]);
        assert_eq!(infer_batch(&b, "x").ties[0].candidates, ["opened_ts", "seen"]);
        // A column named like the time that does not parse, beside one that does by its values: a rule decides.
        let b = batch(vec![
            ("created_at", Arc::new(StringArray::from(vec!["Wed Oct 10 20:19:24 +0000 2018"; n as usize])) as ArrayRef),
            ("fetched_ts", epochs(1_600_000_000)),
            ("body", texts(n as usize)),
        ]);
        assert_eq!(infer_batch(&b, "x").ties[0].candidates, ["created_at", "fetched_ts"]);
        // A score beyond ±1 in a few rows only: outliers of [-1, 1], or [-4, 4]? A rule's score_range says.
        let mostly_small: Vec<f64> = (0..n).map(|i| if i == 3 { 1.2 } else { (i % 9 - 4) as f64 / 5.0 }).collect();
        let b = batch(vec![("ts", epochs(1_600_000_000)), ("body", texts(n as usize)), ("compound", Arc::new(Float64Array::from(mostly_small)))]);
        let doubt = infer_batch(&b, "x");
        assert_eq!((doubt.ties[0].field.as_str(), doubt.ties[0].candidates.clone()), ("sentiment_score", vec!["compound".to_string()]));
        let rule = Mapping::parse(r#"{"defaults": {"score_range": 1}}"#).unwrap();
        let decided = infer(&b.schema(), &b, &FileFacts::default(), &rule).unwrap();
        assert!(decided.is_decided() && !decided.score_rescaled, "{}", decided.undecided());
        assert!(Mapping::parse(r#"{"defaults": {"score_range": 2}}"#).unwrap_err().contains("1 or 4"));
        // The footer's range over every row group counts, not only the sample's.
        let b = batch(vec![
            ("ts", epochs(1_600_000_000)),
            ("body", texts(n as usize)),
            ("compound", Arc::new(Float64Array::from(vec![0.5; n as usize]))),
        ]);
        let facts = FileFacts { path: "x", ranges: [("compound".to_string(), (-3.5, 3.9))].into() };
        assert!(!infer(&b.schema(), &b, &facts, &Mapping::default()).unwrap().is_decided(), "beyond ±1 later in the file");
        // Unnamed floats in range are no score.
        let b = batch(vec![
            ("ts", epochs(1_600_000_000)),
            ("body", texts(n as usize)),
            ("pct_change", Arc::new(Float64Array::from(vec![-0.05; n as usize]))),
        ]);
        assert_eq!(infer_batch(&b, "x").fields["sentiment_score"].by, Evidence::Enrichment);
    }

    #[test]
    fn empty_samples_duplicate_names_and_rules_naming_unreadable_columns() {
        let empty = batch(vec![
            ("created_at", Arc::new(StringArray::from(Vec::<Option<&str>>::new())) as ArrayRef),
            ("text", Arc::new(StringArray::from(Vec::<&str>::new()))),
        ]);
        let inferred = infer_batch(&empty, "x");
        assert!(inferred.is_decided(), "named columns of types that can hold them: {}", inferred.undecided());
        let nulls = batch(vec![("created_at", Arc::new(StringArray::from(vec![None::<&str>; 5])) as ArrayRef), ("text", texts(5))]);
        assert_eq!(column(&infer_batch(&nulls, "x"), "event_timestamp"), Some("created_at"));
        let times = Arc::new(TimestampMicrosecondArray::from(vec![1_672_531_200_000_000; 3])) as ArrayRef;
        let twice = batch(vec![("ts", times.clone()), ("ts", times), ("text", texts(3))]);
        let inferred = infer_batch(&twice, "x");
        assert_eq!(inferred.missing, ["event_timestamp"], "neither of two columns of one name");
        assert!(inferred.notes.iter().any(|n| n.contains("two columns are named `ts`")));
        let rule = Mapping::parse(r#"{"columns": {"event_timestamp": "ts"}}"#).unwrap();
        assert!(infer(&twice.schema(), &twice, &FileFacts::default(), &rule).unwrap_err().contains("two of that name"));
        let numbers = batch(vec![("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef), ("text", texts(3))]);
        let rule = Mapping::parse(r#"{"columns": {"text_content": "n"}}"#).unwrap();
        assert!(infer(&numbers.schema(), &numbers, &FileFacts::default(), &rule).unwrap_err().contains("cannot be read as text_content"));
    }

    #[test]
    fn a_recorded_layout_names_its_columns_again() {
        let times = Arc::new(TimestampMicrosecondArray::from(vec![1_672_531_200_000_000; 3])) as ArrayRef;
        let b = batch(vec![("body", texts(3)), ("ts", times), ("vader", Arc::new(Float64Array::from(vec![-3.0, 2.5, 3.5])))]);
        let inferred = infer_batch(&b, "x");
        let recorded: Inferred = serde_json::from_value(serde_json::to_value(&inferred).unwrap()).unwrap();
        assert_eq!(recorded.layout_of(&b.schema()).unwrap(), inferred.layout);
        assert!(recorded.score_rescaled);
        let other = batch(vec![("body", texts(3))]);
        assert!(recorded.layout_of(&other.schema()).unwrap_err().contains("`ts`"));
    }

    #[test]
    fn a_file_without_text_or_time_says_so() {
        let b = batch(vec![("count", Arc::new(Int64Array::from(vec![3; 5])) as ArrayRef), ("word", Arc::new(StringArray::from(vec!["up"; 5])))]);
        let inferred = infer_batch(&b, "x");
        assert_eq!(inferred.missing, ["event_timestamp", "text_content"]);
        assert!(inferred.undecided().contains("no column holds event_timestamp"));
        let rule = Mapping::parse(r#"{"columns": {"text_content": "nope"}}"#).unwrap();
        assert!(infer(&b.schema(), &b, &FileFacts { path: "x", ..FileFacts::default() }, &rule).unwrap_err().contains("`nope`"));
    }
}
