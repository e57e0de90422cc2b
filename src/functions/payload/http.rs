//! HTTP trigger as the host sends it when request forwarding is off (`Data.req`). With
//! `enableForwardingHttpRequest` (what this project's host.json sets) the host forwards the raw request
//! instead and this type is not used; it exists so that a function app configured without forwarding still
//! gets a clear answer rather than a parse failure.

use std::collections::BTreeMap;

use serde_json::Value;

use super::lenient;
use super::{InvokeRequest, PayloadError};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct HttpTriggerRequest {
    pub url: String,
    pub method: String,
    pub query: BTreeMap<String, String>,
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: Option<String>,
}

impl HttpTriggerRequest {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Result<Self, PayloadError> {
        let raw = request.data.get(binding).ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
        let Value::Object(req) = lenient::unwrap_json(raw.clone()) else {
            return Err(PayloadError::invalid(format!("Data.{binding}"), "expected a request object"));
        };
        let field = |key: &str| req.get(key).and_then(lenient::string);
        // Older hosts send Query as a JSON string ("{}"), newer ones as an object.
        let query = match req.get("Query").map(|q| lenient::unwrap_json(q.clone())) {
            Some(Value::Object(map)) => map.iter().filter_map(|(k, v)| Some((k.clone(), lenient::string(v)?))).collect(),
            _ => BTreeMap::new(),
        };
        let headers = match req.get("Headers").map(|h| lenient::unwrap_json(h.clone())) {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let values = lenient::array(v)
                        .map_or_else(|| lenient::string(v).into_iter().collect(), |items| items.iter().filter_map(lenient::string).collect());
                    (k.to_ascii_lowercase(), values)
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Self {
            url: field("Url").ok_or_else(|| PayloadError::invalid(format!("Data.{binding}.Url"), "missing"))?,
            method: field("Method").unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
            query,
            headers,
            body: req.get("Body").and_then(|b| match b {
                Value::String(s) => Some(s.clone()),
                Value::Null => None,
                other => Some(other.to_string()),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::payload::fixtures;

    #[test]
    fn parses_object_and_string_query_forms() {
        let request = fixtures::load("http-trigger.json");
        let req = HttpTriggerRequest::from_invocation(&request, "req").unwrap();
        assert_eq!(req.method, "GET");
        assert_eq!(req.query.get("ticker").map(String::as_str), Some("AAPL"));
        assert_eq!(req.headers.get("accept").unwrap(), &vec!["application/json".to_string()]);
        let mut legacy = request.clone();
        legacy.data.get_mut("req").unwrap()["Query"] = Value::String("{\"days\":\"7\"}".into());
        let req = HttpTriggerRequest::from_invocation(&legacy, "req").unwrap();
        assert_eq!(req.query.get("days").map(String::as_str), Some("7"));
    }
}
