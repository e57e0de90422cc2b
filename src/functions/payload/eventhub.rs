//! Event Hubs trigger, `cardinality: many`: a batch of events from one partition plus index-aligned
//! metadata arrays.
//!
//! Docs: <https://learn.microsoft.com/azure/azure-functions/functions-bindings-event-hubs-trigger>.
//! Event bodies are never JSON-unwrapped: they are the producer's bytes. Only the *array* that holds them
//! may arrive wrapped in a string.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::lenient;
use super::{InvokeRequest, PayloadError};

/// How the binding hands event bodies over (`dataType` in function.json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventDataType {
    /// `"dataType": "string"`: each body is UTF-8 text.
    #[default]
    String,
    /// `"dataType": "binary"`: each body is base64.
    Binary,
}

/// `Metadata.PartitionContext` (extension 5.x+).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionContext {
    pub fully_qualified_namespace: Option<String>,
    pub event_hub_name: Option<String>,
    pub consumer_group: Option<String>,
    pub partition_id: String,
}

/// One event with its coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct EventData {
    pub body: Bytes,
    pub sequence_number: i64,
    pub offset: Option<String>,
    pub enqueued_time: Option<DateTime<Utc>>,
    pub partition_key: Option<String>,
    pub properties: Map<String, Value>,
}

/// A decoded batch.
#[derive(Debug, Clone, PartialEq)]
pub struct EventHubBatch {
    pub partition: PartitionContext,
    pub events: Vec<EventData>,
}

impl EventHubBatch {
    /// Stable id of the ordered stream this batch belongs to: what watermarks are keyed by.
    ///
    /// The consumer group is part of it: two consumer groups reading the same hub are different streams.
    pub fn source_id(&self, fallback_namespace: &str, fallback_hub: &str) -> String {
        let p = &self.partition;
        format!(
            "eventhubs://{}/{}/{}/{}",
            p.fully_qualified_namespace.as_deref().unwrap_or(fallback_namespace),
            p.event_hub_name.as_deref().unwrap_or(fallback_hub),
            p.consumer_group.as_deref().unwrap_or("$Default"),
            p.partition_id
        )
    }

    /// Decodes the batch bound to `binding` (the trigger's `name` in function.json).
    pub fn from_invocation(request: &InvokeRequest, binding: &str, data_type: EventDataType) -> Result<Self, PayloadError> {
        let raw_events = request.data.get(binding).ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
        let raw_events = lenient::array(raw_events)
            .ok_or_else(|| PayloadError::invalid(format!("Data.{binding}"), "expected an array of events"))?;
        let meta = &request.metadata;
        let partition = partition_context(meta)?;
        let aligned = |key: &str| -> Result<Option<Vec<Value>>, PayloadError> {
            match meta.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let items = lenient::array(v)
                        .ok_or_else(|| PayloadError::invalid(format!("Metadata.{key}"), "expected an array"))?;
                    if items.len() != raw_events.len() {
                        return Err(PayloadError::invalid(
                            format!("Metadata.{key}"),
                            format!("{} entries for {} events", items.len(), raw_events.len()),
                        ));
                    }
                    Ok(Some(items))
                }
            }
        };
        let sequence_numbers = aligned("SequenceNumberArray")?;
        let offsets = aligned("OffsetArray")?;
        let enqueued = aligned("EnqueuedTimeUtcArray")?;
        let keys = aligned("PartitionKeyArray")?;
        let properties = aligned("PropertiesArray")?;
        let system = aligned("SystemPropertiesArray")?;
        let at = |array: &Option<Vec<Value>>, i: usize| array.as_ref().map(|a| a[i].clone());
        let system_prop = |i: usize, key: &str| {
            at(&system, i).map(lenient::unwrap_json).and_then(|v| v.get(key).cloned())
        };
        let mut events = Vec::with_capacity(raw_events.len());
        for (i, raw) in raw_events.into_iter().enumerate() {
            let sequence_number = at(&sequence_numbers, i)
                .or_else(|| system_prop(i, "SequenceNumber"))
                .and_then(|v| lenient::i64(&v))
                .ok_or_else(|| PayloadError::invalid(format!("Metadata.SequenceNumberArray[{i}]"), "no sequence number for event"))?;
            events.push(EventData {
                body: body(raw, data_type).map_err(|detail| PayloadError::invalid(format!("Data.{binding}[{i}]"), detail))?,
                sequence_number,
                offset: at(&offsets, i).or_else(|| system_prop(i, "Offset")).and_then(|v| lenient::element_string(&v)),
                enqueued_time: at(&enqueued, i).or_else(|| system_prop(i, "EnqueuedTimeUtc")).and_then(|v| lenient::timestamp(&v)),
                partition_key: at(&keys, i).or_else(|| system_prop(i, "PartitionKey")).and_then(|v| lenient::element_string(&v)),
                properties: match at(&properties, i).map(lenient::unwrap_json) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            });
        }
        Ok(Self { partition, events })
    }
}

fn partition_context(meta: &Map<String, Value>) -> Result<PartitionContext, PayloadError> {
    let context = meta.get("PartitionContext").map(|v| lenient::unwrap_json(v.clone()));
    let fields: BTreeMap<String, Value> = match context {
        Some(Value::Object(map)) => map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
        _ => BTreeMap::new(),
    };
    let get = |key: &str| fields.get(key).and_then(lenient::string);
    let partition_id = get("partitionid").ok_or_else(|| {
        PayloadError::invalid("Metadata.PartitionContext.PartitionId", "missing: cannot key exactly-once watermarks without it")
    })?;
    Ok(PartitionContext {
        fully_qualified_namespace: get("fullyqualifiednamespace"),
        event_hub_name: get("eventhubname").or_else(|| get("eventhubpath")),
        consumer_group: get("consumergroup").or_else(|| get("consumergroupname")),
        partition_id,
    })
}

fn body(raw: Value, data_type: EventDataType) -> Result<Bytes, String> {
    match (raw, data_type) {
        (Value::String(text), EventDataType::String) => Ok(Bytes::from(text)),
        (Value::String(text), EventDataType::Binary) => {
            lenient::base64_bytes(&text).map(Bytes::from).ok_or_else(|| "binary event body is not base64".to_string())
        }
        // Without dataType the host Json.NET-deserialises bodies into objects; keep their JSON text.
        (Value::Null, _) => Err("event body is null".to_string()),
        (other, _) => Ok(Bytes::from(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::functions::payload::fixtures;

    /// Builds an invocation body the way the host does (`wrapped`: arrays as JSON strings) or natively.
    fn envelope(bodies: &[String], seqs: &[i64], keys: &[Option<String>], wrapped: bool) -> InvokeRequest {
        let encode = |v: Value| if wrapped { Value::String(v.to_string()) } else { v };
        let offsets: Vec<String> = seqs.iter().map(|s| (s * 512).to_string()).collect();
        let body = json!({
            "Data": {"events": encode(json!(bodies))},
            "Metadata": {
                "PartitionContext": {"PartitionId": "5", "EventHubName": "h", "ConsumerGroup": "cg", "FullyQualifiedNamespace": "ns"},
                "SequenceNumberArray": encode(json!(seqs)),
                "OffsetArray": encode(json!(offsets)),
                "PartitionKeyArray": encode(json!(keys)),
                "EnqueuedTimeUtcArray": encode(json!(vec!["2025-01-01T00:00:00.5"; seqs.len()])),
            }
        });
        serde_json::from_value(body).unwrap()
    }

    proptest! {
        /// Any batch (bodies of any text, including JSON-looking strings, quotes and numbers) parses back to
        /// exactly its events, whether the host wrapped the arrays or not. Bodies are never unwrapped.
        #[test]
        fn wrapped_and_native_envelopes_parse_to_the_same_events(
            events in prop::collection::vec((".{0,30}", any::<i64>(), prop::option::of("[a-z0-9\"]{0,6}")), 0..12),
            wrapped in any::<bool>(),
        ) {
            let bodies: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
            let seqs: Vec<i64> = events.iter().map(|e| e.1 / 1024).collect();
            let keys: Vec<Option<String>> = events.iter().map(|e| e.2.clone()).collect();
            let batch = EventHubBatch::from_invocation(&envelope(&bodies, &seqs, &keys, wrapped), "events", EventDataType::String).unwrap();
            prop_assert_eq!(batch.events.len(), bodies.len());
            for (i, event) in batch.events.iter().enumerate() {
                prop_assert_eq!(&event.body[..], bodies[i].as_bytes());
                prop_assert_eq!(event.sequence_number, seqs[i]);
                prop_assert_eq!(event.offset.clone(), Some((seqs[i] * 512).to_string()));
                prop_assert_eq!(event.partition_key.as_deref(), keys[i].as_deref());
                prop_assert_eq!(event.enqueued_time.map(|t| t.timestamp_millis()), Some(1_735_689_600_500));
            }
            prop_assert_eq!(batch.source_id("x", "y"), "eventhubs://ns/h/cg/5");
        }

        /// Arbitrary JSON in any binding or metadata slot is an error or a batch, never a panic.
        #[test]
        fn arbitrary_envelopes_never_panic(data in ".{0,64}", meta in ".{0,64}") {
            let request = InvokeRequest {
                data: serde_json::Map::from_iter([("events".to_string(), Value::String(data))]),
                metadata: serde_json::Map::from_iter([
                    ("SequenceNumberArray".to_string(), Value::String(meta.clone())),
                    ("PartitionContext".to_string(), Value::String(meta)),
                ]),
            };
            let _ = EventHubBatch::from_invocation(&request, "events", EventDataType::String);
            let _ = EventHubBatch::from_invocation(&request, "events", EventDataType::Binary);
        }
    }

    #[test]
    fn string_wrapped_batch_from_the_host() {
        let request = fixtures::load("eventhub-batch-string.json");
        let batch = EventHubBatch::from_invocation(&request, "events", EventDataType::String).unwrap();
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.partition.partition_id, "3");
        assert_eq!(batch.source_id("ns", "hub"), "eventhubs://sentiment-ns.servicebus.windows.net/sentiment-events/$Default/3");
        let first = &batch.events[0];
        assert_eq!(first.sequence_number, 1001);
        assert_eq!(first.offset.as_deref(), Some("4294967296"));
        assert_eq!(first.enqueued_time.unwrap().to_rfc3339(), "2025-03-03T14:30:00.123+00:00");
        assert!(std::str::from_utf8(&first.body).unwrap().starts_with("{\"message_id\":\"tw-1001\""));
        assert_eq!(batch.events[1].properties.get("source").and_then(Value::as_str), Some("svc-a"));
        assert_eq!(batch.events[2].partition_key.as_deref(), Some("AAPL"));
    }

    #[test]
    fn native_arrays_and_system_properties_fallback() {
        let request = fixtures::load("eventhub-batch-native.json");
        let batch = EventHubBatch::from_invocation(&request, "events", EventDataType::String).unwrap();
        assert_eq!(batch.events.iter().map(|e| e.sequence_number).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(batch.events[1].offset.as_deref(), Some("2048"));
        // No dataType: the host handed over an object; its JSON text is kept as the body.
        assert!(batch.events[0].body.starts_with(b"{"));
    }

    #[test]
    fn binary_bodies_are_base64_decoded() {
        let request = fixtures::load("eventhub-batch-binary.json");
        let batch = EventHubBatch::from_invocation(&request, "events", EventDataType::Binary).unwrap();
        assert_eq!(&batch.events[0].body[..], b"{\"message_id\":\"bin-1\"}");
        assert_eq!(&batch.events[1].body[..], &[0xff, 0x00, 0x10]);
    }

    #[test]
    fn broken_envelopes_are_errors_not_panics() {
        for (name, path) in [
            ("eventhub-batch-misaligned.json", "Metadata.SequenceNumberArray"),
            ("eventhub-batch-no-partition.json", "Metadata.PartitionContext.PartitionId"),
        ] {
            let request = fixtures::load(name);
            match EventHubBatch::from_invocation(&request, "events", EventDataType::String) {
                Err(PayloadError::Invalid { path: p, .. }) => assert_eq!(p, path, "{name}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        let empty = InvokeRequest::default();
        assert_eq!(
            EventHubBatch::from_invocation(&empty, "events", EventDataType::String),
            Err(PayloadError::MissingBinding("events".into()))
        );
    }
}
