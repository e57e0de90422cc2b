//! Request parameters, validated into types before any query is built: a value that reaches SQL is a
//! [`Ticker`], a [`Window`], a number or one of a fixed set of words, never the caller's raw string.
//!
//! Query strings arrive through the Functions host, which joins repeated keys with commas
//! (`?a=1&a=2` -> `a=1,2`), so a single-valued parameter holding a comma is rejected rather than split.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeZone, Utc};

/// A parameter the caller got wrong, with the parameter's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{parameter}`: {message}")]
pub struct ParamError {
    pub parameter: String,
    pub message: String,
}

impl ParamError {
    pub fn new(parameter: &str, message: impl Into<String>) -> Self {
        Self { parameter: parameter.to_string(), message: message.into() }
    }
}

/// A normalised ticker (see [`crate::schema::normalize_ticker`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Ticker(String);

impl Ticker {
    const MAX_LEN: usize = crate::schema::MAX_TICKER_LEN + 1;

    pub fn parse(parameter: &str, value: &str) -> Result<Self, ParamError> {
        let value = value.trim();
        if value.is_empty() || value.len() > Self::MAX_LEN {
            return Err(ParamError::new(parameter, format!("expected a ticker of 1 to {} characters", Self::MAX_LEN)));
        }
        crate::schema::normalize_ticker(value)
            .map(|ticker| Ticker(ticker.into_owned()))
            .ok_or_else(|| ParamError::new(parameter, format!("{value:?} is not a ticker (letters, digits and . / : -)")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A short label such as a source system or an entity type, cased the way ingestion stores it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Label(String);

impl Label {
    const MAX_LEN: usize = 64;

    /// `upper` decides how the stored values are written: source systems are lower-case, entity types
    /// upper-case. Any printable text up to the length stored values have is accepted: values are bound as
    /// parameters, never spliced into SQL.
    pub fn parse(parameter: &str, value: &str, upper: bool) -> Result<Self, ParamError> {
        let value = value.trim();
        let ok = !value.is_empty() && value.chars().count() <= Self::MAX_LEN && !value.chars().any(char::is_control);
        if !ok {
            return Err(ParamError::new(parameter, format!("expected 1 to {} printable characters", Self::MAX_LEN)));
        }
        Ok(Label(if upper { value.to_uppercase() } else { value.to_lowercase() }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub use crate::engine::Interval;

/// A bucket width by name: `minute`, `hour`, `day`, `week` (or `1m`, `1h`, `1d`, `1w`).
pub fn parse_interval(parameter: &str, value: &str) -> Result<Interval, ParamError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "minute" | "1m" => Ok(Interval::Minute),
        "hour" | "1h" => Ok(Interval::Hour),
        "day" | "1d" => Ok(Interval::Day),
        "week" | "1w" => Ok(Interval::Week),
        _ => Err(ParamError::new(parameter, format!("{value:?} is not one of minute, hour, day, week"))),
    }
}

/// A half-open UTC window `[from, to)` on `event_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    /// The seed's query methods all default to `days=30`.
    pub const DEFAULT_DAYS: i64 = 30;
    pub const MAX_DAYS: i64 = 366;

    /// Resolves `days` or `from`/`to`. A relative window ends at `now` rounded up to the next whole minute, so
    /// identical requests within a minute share a cache entry and `meta.window` says exactly what was covered.
    pub fn resolve(days: Option<&str>, from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> Result<Self, ParamError> {
        let end_of_minute = now.duration_trunc(Duration::minutes(1)).unwrap_or(now) + Duration::minutes(1);
        let window = match (days, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ParamError::new("days", "give either `days` or `from`/`to`, not both"));
            }
            (Some(days), None, None) => {
                let days = parse_int("days", days, 1, Self::MAX_DAYS)?;
                Window { from: end_of_minute - Duration::days(days), to: end_of_minute }
            }
            (None, from, to) => {
                let to = to.map(|v| parse_instant("to", v)).transpose()?.unwrap_or(end_of_minute);
                let from = from.map(|v| parse_instant("from", v)).transpose()?.unwrap_or(to - Duration::days(Self::DEFAULT_DAYS));
                Window { from, to }
            }
        };
        if window.from >= window.to {
            return Err(ParamError::new("from", "`from` must be earlier than `to`"));
        }
        if window.to - window.from > Duration::days(Self::MAX_DAYS) {
            return Err(ParamError::new("from", format!("the window may span at most {} days", Self::MAX_DAYS)));
        }
        Ok(window)
    }

    /// How many buckets of `interval` the window touches (an upper bound on time-series rows).
    pub fn buckets(&self, interval: Interval) -> i64 {
        let span = (self.to - self.from).num_seconds();
        let width = interval.duration().num_seconds();
        span / width + 2
    }
}

/// RFC 3339 with an offset (`2026-11-20T13:00:00Z`) or a date (`2026-11-20`, midnight UTC).
fn parse_instant(parameter: &str, value: &str) -> Result<DateTime<Utc>, ParamError> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        if let Some(midnight) = date.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&midnight));
        }
    }
    Err(ParamError::new(parameter, format!("{value:?} is neither RFC 3339 with an offset nor YYYY-MM-DD")))
}

/// A snapshot id (digits, optionally negative: Iceberg ids are any non-zero `long`) or an instant.
pub fn parse_as_of(parameter: &str, value: &str) -> Result<crate::engine::AsOf, ParamError> {
    let trimmed = value.trim();
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed
            .parse::<i64>()
            .ok()
            .filter(|id| *id != 0)
            .map(crate::engine::AsOf::Snapshot)
            .ok_or_else(|| ParamError::new(parameter, format!("{trimmed:?} is not a snapshot id")));
    }
    parse_instant(parameter, value)
        .map(crate::engine::AsOf::Time)
        .map_err(|_| ParamError::new(parameter, format!("expected a snapshot id or an instant (RFC 3339 or YYYY-MM-DD), got {value:?}")))
}

pub fn parse_int(parameter: &str, value: &str, min: i64, max: i64) -> Result<i64, ParamError> {
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ParamError::new(parameter, format!("expected an integer from {min} to {max}, got {value:?}"))),
    }
}

pub fn parse_unit_interval(parameter: &str, value: &str) -> Result<f64, ParamError> {
    match value.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ParamError::new(parameter, format!("expected a number from 0 to 1, got {value:?}"))),
    }
}

pub fn parse_score(parameter: &str, value: &str) -> Result<f64, ParamError> {
    match value.trim().parse::<f64>() {
        Ok(x) if (-1.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ParamError::new(parameter, format!("expected a number from -1 to 1, got {value:?}"))),
    }
}

/// Position after the last record of a page, in the records' order (`event_timestamp` desc, `message_id` desc).
/// Opaque to callers: base64url of `<event micros>:<message id>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub event_timestamp: DateTime<Utc>,
    pub message_id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}:{}", self.event_timestamp.timestamp_micros(), self.message_id))
    }

    pub fn parse(parameter: &str, value: &str) -> Result<Self, ParamError> {
        let invalid = || ParamError::new(parameter, "not a cursor returned by this API");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let event_timestamp = micros.parse().ok().and_then(DateTime::from_timestamp_micros).ok_or_else(invalid)?;
        if id.is_empty() || id.len() > crate::ingest::validate::MAX_ID_LEN {
            return Err(invalid());
        }
        Ok(Cursor { event_timestamp, message_id: id.to_string() })
    }
}

/// The query string as given, consumed parameter by parameter; whatever is left over is an unknown parameter
/// (a typo such as `tikcer` is an error, not a silently ignored filter).
#[derive(Debug, Default)]
pub struct RawParams(BTreeMap<String, String>);

impl RawParams {
    pub fn parse(query: Option<&str>) -> Result<Self, ParamError> {
        let mut params = BTreeMap::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            if params.insert(key.to_string(), value.to_string()).is_some() {
                return Err(ParamError::new(&key, "given more than once"));
            }
        }
        Ok(RawParams(params))
    }

    /// Takes a single-valued parameter: empty means absent, a comma means several values were sent.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ParamError> {
        match self.0.remove(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Ok(None),
            Some(v) if v.contains(',') => Err(ParamError::new(name, "takes one value")),
            Some(v) => Ok(Some(v)),
        }
    }

    pub fn require(&mut self, name: &str) -> Result<String, ParamError> {
        self.take(name)?.ok_or_else(|| ParamError::new(name, "is required"))
    }

    /// Fails on the first parameter nobody took. `ignored` names parameters the platform adds (the
    /// Functions key travels as `code`).
    pub fn finish(self, ignored: &[&str]) -> Result<(), ParamError> {
        match self.0.keys().find(|k| !ignored.contains(&k.as_str())) {
            Some(unknown) => Err(ParamError::new(unknown, "is not a parameter of this endpoint")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod as_of_tests {
    use super::*;
    use crate::engine::AsOf;

    #[test]
    fn as_of_is_a_snapshot_id_or_an_instant() {
        assert_eq!(parse_as_of("as_of", "4400772247769915409").unwrap(), AsOf::Snapshot(4_400_772_247_769_915_409));
        assert_eq!(parse_as_of("as_of", "-12").unwrap(), AsOf::Snapshot(-12));
        let t = parse_as_of("as_of", "2026-11-20T13:00:00+01:00").unwrap();
        assert_eq!(t, AsOf::Time(DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap().with_timezone(&Utc)));
        assert!(matches!(parse_as_of("as_of", "2026-11-20").unwrap(), AsOf::Time(_)));
        for bad in ["", "0", "99999999999999999999", "yesterday", "12a", "-"] {
            let e = parse_as_of("as_of", bad).unwrap_err();
            assert_eq!(e.parameter, "as_of", "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn as_of_never_panics(value in ".{0,40}") {
            let _ = parse_as_of("as_of", &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:17:42.5Z").unwrap().with_timezone(&Utc)
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn relative_windows_end_at_the_next_whole_minute() {
        let w = Window::resolve(Some("2"), None, None, now()).unwrap();
        assert_eq!(w.to, at("2026-11-25T10:18:00Z"));
        assert_eq!(w.from, at("2026-11-23T10:18:00Z"));
        let default = Window::resolve(None, None, None, now()).unwrap();
        assert_eq!(default.to - default.from, Duration::days(30), "the seed's query methods default to days=30");
    }

    #[test]
    fn explicit_windows_accept_offsets_and_dates() {
        let w = Window::resolve(None, Some("2026-11-20"), Some("2026-11-21T01:00:00+01:00"), now()).unwrap();
        assert_eq!(w.from, at("2026-11-20T00:00:00Z"));
        assert_eq!(w.to, at("2026-11-21T00:00:00Z"));
        let only_from = Window::resolve(None, Some("2026-11-24T00:00:00Z"), None, now()).unwrap();
        assert_eq!(only_from.to, at("2026-11-25T10:18:00Z"));
    }

    #[test]
    fn bad_windows_name_the_parameter() {
        let cases = [
            (Some("0"), None, None, "days"),
            (Some("367"), None, None, "days"),
            (Some("7"), Some("2026-11-20"), None, "days"),
            (None, Some("2026-11-20T00:00:00"), None, "from"),
            (None, Some("2026-11-21"), Some("2026-11-20"), "from"),
            (None, Some("2024-01-01"), Some("2026-01-01"), "from"),
            (None, None, Some("yesterday"), "to"),
        ];
        for (days, from, to, parameter) in cases {
            let err = Window::resolve(days, from, to, now()).unwrap_err();
            assert_eq!(err.parameter, parameter, "{days:?} {from:?} {to:?}: {err}");
        }
    }

    #[test]
    fn tickers_are_normalised_and_checked() {
        assert_eq!(Ticker::parse("ticker", " $aapl ").unwrap().as_str(), "AAPL");
        assert_eq!(Ticker::parse("ticker", "BRK.B").unwrap().as_str(), "BRK.B");
        assert_eq!(Ticker::parse("ticker", "BTC/USD").unwrap().as_str(), "BTC/USD");
        for bad in ["", "AAPL'--", "A B", "ÄPL", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"] {
            assert!(Ticker::parse("ticker", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn raw_params_reject_repeats_commas_and_unknown_names() {
        let mut p = RawParams::parse(Some("ticker=AAPL&days=3&code=secret")).unwrap();
        assert_eq!(p.take("ticker").unwrap().as_deref(), Some("AAPL"));
        assert_eq!(p.take("days").unwrap().as_deref(), Some("3"));
        p.finish(&["code"]).unwrap();

        assert_eq!(RawParams::parse(Some("a=1&a=2")).unwrap_err().parameter, "a");
        assert_eq!(RawParams::parse(Some("ticker=AAPL,MSFT")).unwrap().take("ticker").unwrap_err().parameter, "ticker");
        let mut typo = RawParams::parse(Some("tikcer=AAPL")).unwrap();
        assert_eq!(typo.take("ticker").unwrap(), None);
        assert_eq!(typo.finish(&[]).unwrap_err().parameter, "tikcer");
    }

    #[test]
    fn intervals_accept_names_and_short_forms() {
        assert_eq!(parse_interval("interval", "HOUR").unwrap(), Interval::Hour);
        assert_eq!(parse_interval("interval", "1w").unwrap(), Interval::Week);
        assert!(parse_interval("interval", "5m").is_err());
    }

    proptest! {
        #[test]
        fn cursors_round_trip(micros in -8_000_000_000_000_000i64..8_000_000_000_000_000, id in "[ -~]{1,64}") {
            let cursor = Cursor { event_timestamp: DateTime::from_timestamp_micros(micros).unwrap(), message_id: id };
            prop_assert_eq!(Cursor::parse("cursor", &cursor.encode()).unwrap(), cursor);
        }

        #[test]
        fn arbitrary_cursor_strings_never_panic(s in ".{0,80}") {
            let _ = Cursor::parse("cursor", &s);
        }

        #[test]
        fn accepted_windows_are_ordered_and_bounded(days in proptest::option::of("[0-9]{1,4}"),
                                                   from in proptest::option::of("2026-1[01]-[0-3][0-9]"),
                                                   to in proptest::option::of("2026-1[01]-[0-3][0-9]")) {
            if let Ok(w) = Window::resolve(days.as_deref(), from.as_deref(), to.as_deref(), now()) {
                prop_assert!(w.from < w.to);
                prop_assert!(w.to - w.from <= Duration::days(Window::MAX_DAYS));
            }
        }
    }
}
