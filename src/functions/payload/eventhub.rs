//! Event Hubs trigger, `cardinality: many`: a batch of events from one partition plus index-aligned
//! metadata arrays.
//!
//! Docs: <https://learn.microsoft.com/azure/azure-functions/functions-bindings-event-hubs-trigger>.
//! Event bodies are never JSON-unwrapped: they are the producer's bytes. Only the *array* that holds them
//! may arrive wrapped in a string.
//!
//! Decoding is built for batches of any size the host can send (1,000 events of 64 KB and more): the
//! envelope is parsed borrowing from the request body, a string-wrapped array is unescaped once, and every
//! event body is a slice of one shared buffer, so at most two copies of the batch exist at any moment (the
//! request body is released before the bodies are built). Problems with one event (a `null` body) stay with
//! that event ([`EventData::defect`]); only an envelope that cannot be read at all is refused, with the body
//! handed back so it can be stored whole.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::lenient;
use super::PayloadError;
use crate::ingest::{SourceBatch, SourceEvent};

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
    /// The producer's bytes (base64-decoded under `binary`; the text as given when it is not base64, so
    /// a binding switched between `string` and `binary` still delivers usable bodies).
    pub body: Bytes,
    /// Why the host gave no usable body for this event (it is dead-lettered with this reason).
    pub defect: Option<String>,
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

/// An invocation body that can never become a batch, handed back with the reason so it can be stored.
#[derive(Debug)]
pub struct Refused {
    pub error: PayloadError,
    pub body: Bytes,
}

#[derive(Deserialize)]
struct RawInvocation<'a> {
    #[serde(rename = "Data", default, borrow)]
    data: HashMap<Cow<'a, str>, &'a RawValue>,
    #[serde(rename = "Metadata", default, borrow)]
    metadata: HashMap<Cow<'a, str>, &'a RawValue>,
}

/// Where the JSON text of the event array lives.
enum EventsText {
    /// A native array: a slice of the request body.
    Native(Bytes),
    /// A string-wrapped array, unescaped.
    Wrapped(String),
}

impl EventsText {
    fn as_bytes(&self) -> &[u8] {
        match self {
            EventsText::Native(bytes) => bytes,
            EventsText::Wrapped(text) => text.as_bytes(),
        }
    }
}

/// The envelope read and checked, before any event body is built.
struct Envelope {
    metadata: Map<String, Value>,
    events: EventsText,
}

fn read_envelope(body: &Bytes, binding: &str) -> Result<Envelope, PayloadError> {
    let raw: RawInvocation<'_> = serde_json::from_slice(body).map_err(|e| PayloadError::invalid("$", format!("not an invocation body: {e}")))?;
    let events = raw
        .data
        .get(binding)
        .or_else(|| raw.data.iter().find(|(k, _)| k.eq_ignore_ascii_case(binding)).map(|(_, v)| v))
        .ok_or_else(|| PayloadError::MissingBinding(binding.into()))?;
    let text = events.get();
    let events = match text.trim_start().as_bytes().first() {
        Some(b'[') => {
            // RawValue borrows from `body`, so its position in it is known without copying.
            let start = text.as_ptr() as usize - body.as_ptr() as usize;
            EventsText::Native(body.slice(start..start + text.len()))
        }
        Some(b'"') => {
            let unescaped: String = serde_json::from_str(text).map_err(|e| PayloadError::invalid(format!("Data.{binding}"), e.to_string()))?;
            if !unescaped.trim_start().starts_with('[') {
                return Err(PayloadError::invalid(format!("Data.{binding}"), "expected an array of events"));
            }
            EventsText::Wrapped(unescaped)
        }
        _ => return Err(PayloadError::invalid(format!("Data.{binding}"), "expected an array of events")),
    };
    let mut metadata = Map::new();
    for (key, value) in raw.metadata {
        let value: Value = serde_json::from_str(value.get()).map_err(|e| PayloadError::invalid(format!("Metadata.{key}"), e.to_string()))?;
        metadata.insert(key.into_owned(), value);
    }
    Ok(Envelope { metadata, events })
}

/// Index-aligned metadata arrays, checked against the number of events.
struct Aligned {
    sequence_numbers: Option<Vec<Value>>,
    offsets: Option<Vec<Value>>,
    enqueued: Option<Vec<Value>>,
    keys: Option<Vec<Value>>,
    properties: Option<Vec<Value>>,
    system: Option<Vec<Value>>,
}

impl Aligned {
    fn read(meta: &Map<String, Value>, events: usize) -> Result<Self, PayloadError> {
        let aligned = |key: &str| -> Result<Option<Vec<Value>>, PayloadError> {
            match meta.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let items = lenient::array(v).ok_or_else(|| PayloadError::invalid(format!("Metadata.{key}"), "expected an array"))?;
                    if items.len() != events {
                        return Err(PayloadError::invalid(format!("Metadata.{key}"), format!("{} entries for {events} events", items.len())));
                    }
                    Ok(Some(items))
                }
            }
        };
        Ok(Self {
            sequence_numbers: aligned("SequenceNumberArray")?,
            offsets: aligned("OffsetArray")?,
            enqueued: aligned("EnqueuedTimeUtcArray")?,
            keys: aligned("PartitionKeyArray")?,
            properties: aligned("PropertiesArray")?,
            system: aligned("SystemPropertiesArray")?,
        })
    }

    fn at(array: &Option<Vec<Value>>, i: usize) -> Option<&Value> {
        array.as_ref().map(|a| &a[i])
    }

    fn system_prop(&self, i: usize, key: &str) -> Option<Value> {
        Self::at(&self.system, i).map(|v| lenient::unwrap_json(v.clone())).and_then(|v| v.get(key).cloned())
    }

    fn value(&self, array: &Option<Vec<Value>>, i: usize, system_key: &str) -> Option<Value> {
        Self::at(array, i).cloned().or_else(|| self.system_prop(i, system_key))
    }

    /// Every event's sequence number: what exactly-once rests on, so one missing is an envelope problem.
    fn sequence_numbers(&self, events: usize) -> Result<Vec<i64>, PayloadError> {
        (0..events)
            .map(|i| {
                let path = format!("Metadata.SequenceNumberArray[{i}]");
                let seq = self
                    .value(&self.sequence_numbers, i, "SequenceNumber")
                    .and_then(|v| lenient::i64(&v))
                    .ok_or_else(|| PayloadError::invalid(path.clone(), "no sequence number for event"))?;
                if seq < 0 {
                    return Err(PayloadError::invalid(path, format!("negative sequence number {seq}")));
                }
                Ok(seq)
            })
            .collect()
    }
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

    /// The batch as the pipeline takes it: events of the stream [`EventHubBatch::source_id`] names.
    pub fn into_source_batch(self, fallback_namespace: &str, fallback_hub: &str, invocation_id: Option<String>) -> SourceBatch {
        SourceBatch {
            source: self.source_id(fallback_namespace, fallback_hub),
            invocation_id,
            events: self
                .events
                .into_iter()
                .map(|e| SourceEvent {
                    sequence_number: e.sequence_number,
                    offset: e.offset,
                    enqueued_time: e.enqueued_time,
                    partition_key: e.partition_key,
                    body: e.body,
                    defect: e.defect,
                })
                .collect(),
        }
    }

    /// Decodes the invocation body for `binding` (the trigger's `name` in function.json). Every check that
    /// can refuse the envelope happens before the body is released, so a refusal hands it back whole.
    pub fn from_body(body: Bytes, binding: &str, data_type: EventDataType) -> Result<Self, Refused> {
        let refuse = |error, body| Refused { error, body };
        let envelope = match read_envelope(&body, binding) {
            Ok(envelope) => envelope,
            Err(e) => return Err(refuse(e, body)),
        };
        let checked = (|| {
            let elements: Vec<&RawValue> = serde_json::from_slice(envelope.events.as_bytes())
                .map_err(|e| PayloadError::invalid(format!("Data.{binding}"), format!("expected an array of events: {e}")))?;
            let partition = partition_context(&envelope.metadata)?;
            let aligned = Aligned::read(&envelope.metadata, elements.len())?;
            let sequence_numbers = aligned.sequence_numbers(elements.len())?;
            Ok((elements.len(), partition, aligned, sequence_numbers))
        })();
        let (count, partition, aligned, sequence_numbers) = match checked {
            Ok(checked) => checked,
            Err(e) => return Err(refuse(e, body)),
        };
        // Nothing can refuse the envelope any more: release the request body before building event bodies.
        drop(body);
        let elements: Vec<&RawValue> = serde_json::from_slice(envelope.events.as_bytes()).unwrap_or_default();
        debug_assert_eq!(elements.len(), count);
        let bodies = Bodies::build(&elements, data_type);
        drop(elements);
        drop(envelope.events);
        let mut events = Vec::with_capacity(count);
        for (i, (body, defect)) in bodies.into_iter().enumerate() {
            events.push(EventData {
                body,
                defect,
                sequence_number: sequence_numbers[i],
                offset: aligned.value(&aligned.offsets, i, "Offset").and_then(|v| lenient::element_string(&v)),
                enqueued_time: aligned.value(&aligned.enqueued, i, "EnqueuedTimeUtc").and_then(|v| lenient::timestamp(&v)),
                partition_key: aligned.value(&aligned.keys, i, "PartitionKey").and_then(|v| lenient::element_string(&v)),
                properties: match Aligned::at(&aligned.properties, i).cloned().map(lenient::unwrap_json) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            });
        }
        Ok(Self { partition, events })
    }
}

/// Event bodies as slices of one buffer.
struct Bodies;

impl Bodies {
    fn build(elements: &[&RawValue], data_type: EventDataType) -> Vec<(Bytes, Option<String>)> {
        let capacity: usize = elements.iter().map(|e| e.get().len()).sum();
        let mut buffer: Vec<u8> = Vec::with_capacity(capacity);
        let mut spans = Vec::with_capacity(elements.len());
        for element in elements {
            let start = buffer.len();
            let text = element.get();
            let defect = match text.as_bytes().first() {
                Some(b'"') => {
                    // Already validated as a JSON string by the array parse.
                    let value: Cow<'_, str> = serde_json::from_str(text).unwrap_or(Cow::Borrowed(""));
                    let decoded = data_type == EventDataType::Binary && lenient::base64_into(&value, &mut buffer);
                    if !decoded {
                        buffer.extend_from_slice(value.as_bytes());
                    }
                    None
                }
                Some(b'n') => Some("event body is null".to_string()),
                // Without dataType the host Json.NET-deserialises bodies into objects; keep their JSON text.
                _ => {
                    buffer.extend_from_slice(text.as_bytes());
                    None
                }
            };
            spans.push((start, buffer.len(), defect));
        }
        let buffer = Bytes::from(buffer);
        spans.into_iter().map(|(start, end, defect)| (buffer.slice(start..end), defect)).collect()
    }
}

fn partition_context(meta: &Map<String, Value>) -> Result<PartitionContext, PayloadError> {
    let context = meta.get("PartitionContext").map(|v| lenient::unwrap_json(v.clone()));
    let fields: BTreeMap<String, Value> = match context {
        Some(Value::Object(map)) => map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
        _ => BTreeMap::new(),
    };
    let get = |key: &str| fields.get(key).and_then(lenient::string);
    let partition_id = get("partitionid")
        .ok_or_else(|| PayloadError::invalid("Metadata.PartitionContext.PartitionId", "missing: cannot key exactly-once watermarks without it"))?;
    Ok(PartitionContext {
        fully_qualified_namespace: get("fullyqualifiednamespace"),
        event_hub_name: get("eventhubname").or_else(|| get("eventhubpath")),
        consumer_group: get("consumergroup").or_else(|| get("consumergroupname")),
        partition_id,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn fixture(name: &str) -> Bytes {
        let path = format!("{}/testdata/payloads/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    fn decode(body: Value, data_type: EventDataType) -> Result<EventHubBatch, PayloadError> {
        EventHubBatch::from_body(Bytes::from(body.to_string()), "events", data_type).map_err(|r| r.error)
    }

    /// Builds an invocation body the way the host does (`wrapped`: arrays as JSON strings) or natively.
    fn envelope(bodies: &[String], seqs: &[i64], keys: &[Option<String>], wrapped: bool) -> Value {
        let encode = |v: Value| {
            if wrapped {
                Value::String(v.to_string())
            } else {
                v
            }
        };
        let offsets: Vec<String> = seqs.iter().map(|s| (s * 512).to_string()).collect();
        json!({
            "Data": {"events": encode(json!(bodies))},
            "Metadata": {
                "PartitionContext": {"PartitionId": "5", "EventHubName": "h", "ConsumerGroup": "cg", "FullyQualifiedNamespace": "ns"},
                "SequenceNumberArray": encode(json!(seqs)),
                "OffsetArray": encode(json!(offsets)),
                "PartitionKeyArray": encode(json!(keys)),
                "EnqueuedTimeUtcArray": encode(json!(vec!["2025-01-01T00:00:00.5"; seqs.len()])),
            }
        })
    }

    proptest! {
        /// Any batch (bodies of any text, including JSON-looking strings, quotes and numbers) parses back to
        /// exactly its events, whether the host wrapped the arrays or not. Bodies are never unwrapped.
        #[test]
        fn wrapped_and_native_envelopes_parse_to_the_same_events(
            events in prop::collection::vec((".{0,30}", 0i64..i64::MAX, prop::option::of("[a-z0-9\"]{0,6}")), 0..12),
            wrapped in any::<bool>(),
        ) {
            let bodies: Vec<String> = events.iter().map(|e| e.0.clone()).collect();
            let seqs: Vec<i64> = events.iter().map(|e| e.1 / 1024).collect();
            let keys: Vec<Option<String>> = events.iter().map(|e| e.2.clone()).collect();
            let batch = decode(envelope(&bodies, &seqs, &keys, wrapped), EventDataType::String).unwrap();
            prop_assert_eq!(batch.events.len(), bodies.len());
            for (i, event) in batch.events.iter().enumerate() {
                prop_assert_eq!(&event.body[..], bodies[i].as_bytes());
                prop_assert_eq!(event.defect.as_deref(), None);
                prop_assert_eq!(event.sequence_number, seqs[i]);
                prop_assert_eq!(event.offset.clone(), Some((seqs[i] * 512).to_string()));
                prop_assert_eq!(event.partition_key.as_deref(), keys[i].as_deref());
                prop_assert_eq!(event.enqueued_time.map(|t| t.timestamp_millis()), Some(1_735_689_600_500));
            }
            prop_assert_eq!(batch.source_id("x", "y"), "eventhubs://ns/h/cg/5");
        }

        /// Arbitrary bytes, and arbitrary JSON in any binding or metadata slot, are an error that hands the
        /// body back untouched, or a batch; never a panic.
        #[test]
        fn arbitrary_envelopes_never_panic(data in ".{0,64}", meta in ".{0,64}", raw in prop::collection::vec(any::<u8>(), 0..64)) {
            let body = json!({"Data": {"events": data}, "Metadata": {"SequenceNumberArray": meta.clone(), "PartitionContext": meta}});
            for data_type in [EventDataType::String, EventDataType::Binary] {
                let _ = decode(body.clone(), data_type);
                if let Err(refused) = EventHubBatch::from_body(Bytes::from(raw.clone()), "events", data_type) {
                    prop_assert_eq!(&refused.body[..], &raw[..]);
                }
            }
        }
    }

    #[test]
    fn string_wrapped_batch_from_the_host() {
        let batch = EventHubBatch::from_body(fixture("eventhub-batch-string.json"), "events", EventDataType::String).unwrap();
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
        let batch = EventHubBatch::from_body(fixture("eventhub-batch-native.json"), "events", EventDataType::String).unwrap();
        assert_eq!(batch.events.iter().map(|e| e.sequence_number).collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(batch.events[1].offset.as_deref(), Some("2048"));
        // No dataType: the host handed over an object; its JSON text is kept as the body.
        assert!(batch.events[0].body.starts_with(b"{"));
    }

    #[test]
    fn binary_bodies_are_base64_decoded_and_text_passes_through() {
        let batch = EventHubBatch::from_body(fixture("eventhub-batch-binary.json"), "events", EventDataType::Binary).unwrap();
        assert_eq!(&batch.events[0].body[..], b"{\"message_id\":\"bin-1\"}");
        assert_eq!(&batch.events[1].body[..], &[0xff, 0x00, 0x10]);
        // A binding switched to binary while producers send JSON text: the text is the body.
        let body = json!({
            "Data": {"events": ["{\"a\":1}", "not base64 !"]},
            "Metadata": {"PartitionContext": {"PartitionId": "0"}, "SequenceNumberArray": [1, 2]}
        });
        let batch = decode(body, EventDataType::Binary).unwrap();
        assert_eq!(&batch.events[0].body[..], b"{\"a\":1}");
        assert_eq!(&batch.events[1].body[..], b"not base64 !");
    }

    /// One bad event is that event's problem: the rest of the batch is delivered.
    #[test]
    fn a_null_event_is_a_defect_not_a_broken_envelope() {
        let body = json!({
            "Data": {"events": "[\"{\\\"a\\\":1}\", null, \"x\"]"},
            "Metadata": {"PartitionContext": {"PartitionId": "0"}, "SequenceNumberArray": "[10, 11, 12]"}
        });
        let batch = decode(body, EventDataType::String).unwrap();
        let defects: Vec<Option<&str>> = batch.events.iter().map(|e| e.defect.as_deref()).collect();
        assert_eq!(defects, vec![None, Some("event body is null"), None]);
        assert_eq!(&batch.events[0].body[..], b"{\"a\":1}");
        assert_eq!(&batch.events[2].body[..], b"x");
    }

    #[test]
    fn broken_envelopes_are_refused_with_their_body() {
        for (name, path) in [
            ("eventhub-batch-misaligned.json", "Metadata.SequenceNumberArray"),
            ("eventhub-batch-no-partition.json", "Metadata.PartitionContext.PartitionId"),
        ] {
            let body = fixture(name);
            match EventHubBatch::from_body(body.clone(), "events", EventDataType::String) {
                Err(Refused { error: PayloadError::Invalid { path: p, .. }, body: back }) => {
                    assert_eq!(p, path, "{name}");
                    assert_eq!(back, body, "{name}: the whole body comes back");
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(decode(json!({"Data": {}}), EventDataType::String), Err(PayloadError::MissingBinding(_))));
        let negative = json!({"Data": {"events": ["{}"]}, "Metadata": {"PartitionContext": {"PartitionId": "0"}, "SequenceNumberArray": [-1]}});
        assert!(matches!(decode(negative, EventDataType::String), Err(PayloadError::Invalid { .. })));
        assert!(EventHubBatch::from_body(Bytes::from_static(b"{not json"), "events", EventDataType::String).is_err());
    }
}
