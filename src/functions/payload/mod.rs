//! Wire types of the Azure Functions custom-handler protocol: the invocation envelope and the payloads of
//! the Event Hubs, Event Grid, timer and HTTP triggers. Serde and tolerant decoding only; no behaviour.
//!
//! The host encodes values inconsistently (see `shared/reference/azure-functions.md` §1.4): strings and
//! arrays arrive as *strings containing JSON*, byte arrays as base64, `DateTime`s without offset or
//! fractional seconds. [`lenient`] undoes that; each trigger type accepts both the wrapped and the plain
//! form, because the host's behaviour differs between versions and cardinalities.

pub mod eventgrid;
pub mod eventhub;
pub mod http;
pub mod lenient;
pub mod timer;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The body the host POSTs to `/<FunctionName>`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeRequest {
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl InvokeRequest {
    /// `Metadata.sys`, present on every invocation.
    pub fn sys(&self) -> Option<SysMetadata> {
        let value = lenient::unwrap_json(self.metadata.get("sys")?.clone());
        serde_json::from_value(value).ok()
    }
}

/// `Metadata.sys`: which function the host thinks it invoked and when.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SysMetadata {
    #[serde(default)]
    pub method_name: Option<String>,
    #[serde(default)]
    pub utc_now: Option<String>,
    #[serde(default)]
    pub rand_guid: Option<String>,
}

/// The body the handler answers with. Must be `application/json` and 2xx, or the host drops it whole.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Option<Value>,
}

/// Why an invocation payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("binding `{0}` is missing from Data")]
    MissingBinding(String),
    #[error("`{path}`: {detail}")]
    Invalid { path: String, detail: String },
}

impl PayloadError {
    pub(crate) fn invalid(path: impl Into<String>, detail: impl Into<String>) -> Self {
        PayloadError::Invalid { path: path.into(), detail: detail.into() }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    /// Loads `testdata/payloads/<name>` (recorded or host-encoding-derived invocation bodies).
    pub fn load(name: &str) -> super::InvokeRequest {
        let path = format!("{}/testdata/payloads/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}
