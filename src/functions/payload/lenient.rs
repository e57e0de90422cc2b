//! Undoing the host's value encodings.

use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;

/// How many layers of string-wrapping are undone. The host wraps once; twice covers a producer that also
/// sent JSON-in-a-string. Deeper is data, not encoding.
const MAX_UNWRAP: usize = 2;

/// If `value` is a string holding a JSON array, object or quoted string, returns the parsed value
/// (repeatedly, bounded); otherwise `value`.
///
/// Bare scalars are deliberately left alone: an id such as `"4e77"` or `"0012"` is text that happens to
/// parse as a number, and unwrapping it would corrupt it. Numeric and boolean readers accept strings instead.
pub fn unwrap_json(mut value: Value) -> Value {
    for _ in 0..MAX_UNWRAP {
        let Value::String(text) = &value else { break };
        if !text.trim_start().starts_with(['[', '{', '"']) {
            break;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(parsed) => value = parsed,
            Err(_) => break,
        }
    }
    value
}

/// An array, given natively or wrapped in a string.
pub fn array(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items.clone()),
        Value::String(_) => match unwrap_json(value.clone()) {
            Value::Array(items) => Some(items),
            _ => None,
        },
        _ => None,
    }
}

/// A top-level string scalar, given plainly or JSON-quoted (`"\"abc\""`). `null` is `None`.
pub fn string(value: &Value) -> Option<String> {
    element_string(&unwrap_json(value.clone()))
}

/// A string inside an array the host already encoded as a whole: taken as it is, because unwrapping again
/// would corrupt values that merely look quoted (a partition key `"abc"` with its quotes).
pub fn element_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An integer, given as a number or as a string holding one.
pub fn i64(value: &Value) -> Option<i64> {
    match unwrap_json(value.clone()) {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A bool, given natively or as a string.
pub fn bool(value: &Value) -> Option<bool> {
    match unwrap_json(value.clone()) {
        Value::Bool(b) => Some(b),
        Value::String(s) => s.trim().to_ascii_lowercase().parse().ok(),
        _ => None,
    }
}

/// A host timestamp: RFC 3339 if it has an offset, otherwise a naive ISO or invariant-culture time read as
/// UTC (the host serialises `DateTime` with `Kind=Unspecified`, dropping the `Z`).
pub fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let text = string(value)?;
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|naive| naive.and_utc())
}

/// Bytes from a base64 string (standard alphabet, padding optional).
pub fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    base64_into(text, &mut out).then_some(out)
}

/// Appends the bytes of a base64 string (standard alphabet, padding optional) to `out`; on failure `out`
/// is left as it was and `false` returned.
pub fn base64_into(text: &str, out: &mut Vec<u8>) -> bool {
    let engine = base64::engine::general_purpose::STANDARD_NO_PAD;
    let before = out.len();
    match engine.decode_vec(text.trim().trim_end_matches('='), out) {
        Ok(()) => true,
        Err(_) => {
            out.truncate(before);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn unwraps_double_encoded_values() {
        assert_eq!(unwrap_json(json!("\"stringTest\"")), json!("stringTest"));
        assert_eq!(unwrap_json(json!("[1,2]")), json!([1, 2]));
        assert_eq!(unwrap_json(json!("hello")), json!("hello"));
        assert_eq!(i64(&json!("4")), Some(4));
        assert_eq!(string(&json!("\"4e77\"")), Some("4e77".into()));
        assert_eq!(string(&json!("4e77")), Some("4e77".into()));
        assert_eq!(string(&json!("0012")), Some("0012".into()));
        assert_eq!(array(&json!("[null,\"k\"]")), Some(vec![Value::Null, json!("k")]));
        assert_eq!(bool(&json!("true")), Some(true));
    }

    #[test]
    fn host_timestamps_with_and_without_offsets() {
        let expected = "2025-01-01T00:00:00.123Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(timestamp(&json!("2025-01-01T00:00:00.123")), Some(expected));
        assert_eq!(timestamp(&json!("\"2025-01-01T00:00:00.123Z\"")), Some(expected));
        assert_eq!(timestamp(&json!("2025-01-01T02:00:00.123+02:00")), Some(expected));
        assert_eq!(timestamp(&json!("10/12/2023 20:13:49")).unwrap().to_rfc3339(), "2023-10-12T20:13:49+00:00");
        assert_eq!(timestamp(&json!("yesterday")), None);
    }

    proptest! {
        /// Wrapping any JSON value in a string once is undone exactly.
        #[test]
        fn wrapping_once_round_trips(n in any::<i64>(), s in "[a-z]{0,8}", b in any::<bool>()) {
            let original = json!({"n": n, "s": s, "b": b, "a": [n, s]});
            let wrapped = Value::String(original.to_string());
            prop_assert_eq!(unwrap_json(wrapped), original);
        }

        /// Arbitrary strings never panic and never unwrap more than twice.
        #[test]
        fn arbitrary_strings_never_panic(text in ".{0,40}") {
            let _ = unwrap_json(Value::String(text.clone()));
            let _ = timestamp(&Value::String(text.clone()));
            let _ = base64_bytes(&text);
        }
    }
}
