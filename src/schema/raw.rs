//! The producer's record: the JSON shape of a sentiment event, typed but not yet checked against any rule.
//!
//! It lives beside the schema because every path into the table starts from it: ingestion decodes event
//! bodies into it, enrichment fills its missing analysis fields, validation turns it into a
//! [`super::SentimentRecord`] or a list of violations.
//!
//! Strings borrow from the event body wherever the JSON holds them without escapes (almost always), so a
//! record costs a few allocations instead of one per string: decoding is most of what staging spends.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer};

/// A string of an event body: borrowed from the body when the JSON spells it without escapes, owned
/// otherwise. (`Cow<str>`'s own `Deserialize` always copies, which is why this type exists.)
#[derive(Debug, Default, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn into_cow(self) -> Cow<'a, str> {
        self.0
    }
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(value: &'a str) -> Self {
        Self(Cow::Borrowed(value))
    }
}

impl From<String> for Text<'_> {
    fn from(value: String) -> Self {
        Self(Cow::Owned(value))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: serde::de::Error>(self, value: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(value)))
            }

            fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value.to_string())))
            }

            fn visit_string<E: serde::de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(value)))
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

/// A JSON object of numbers (`emotion_intensity_vector`, `aspect_based_sentiment`) in the order the body
/// lists it, duplicates included: a handful of entries is cheaper in a vector than in a tree, and
/// validation orders them and keeps a key's last value, as a JSON object means.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RawFloatMap<'a>(pub Vec<(Text<'a>, f64)>);

impl<'a> FromIterator<(Text<'a>, f64)> for RawFloatMap<'a> {
    fn from_iter<I: IntoIterator<Item = (Text<'a>, f64)>>(entries: I) -> Self {
        Self(entries.into_iter().collect())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawFloatMap<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFloatMap<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of numbers")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8).min(16));
                while let Some(entry) = map.next_entry::<Text<'de>, f64>()? {
                    entries.push(entry);
                }
                Ok(RawFloatMap(entries))
            }
        }

        deserializer.deserialize_map(Visitor)
    }
}

/// A named entity as the producer sent it (`entity_recognition` element).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RawEntity<'a> {
    #[serde(borrow)]
    pub text: Text<'a>,
    #[serde(rename = "type", borrow)]
    pub entity_type: Text<'a>,
}

/// Every field is optional here; validation decides which are required, so that a record missing three
/// fields reports all three. Field names are the table's (the seed's) column names.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RawRecord<'a> {
    #[serde(borrow)]
    pub message_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub event_timestamp: Option<Text<'a>>,
    #[serde(borrow)]
    pub ingestion_timestamp: Option<Text<'a>>,
    #[serde(borrow)]
    pub source_system: Option<Text<'a>>,
    #[serde(borrow)]
    pub text_content: Option<Text<'a>>,
    pub sentiment_score: Option<f64>,
    pub sentiment_magnitude: Option<f64>,
    #[serde(borrow)]
    pub primary_emotion: Option<Text<'a>>,
    #[serde(borrow)]
    pub emotion_intensity_vector: Option<RawFloatMap<'a>>,
    #[serde(borrow)]
    pub aspect_target_identification: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    pub aspect_based_sentiment: Option<RawFloatMap<'a>>,
    pub sarcasm_detection: Option<bool>,
    pub subjectivity_score: Option<f64>,
    pub toxicity_score: Option<f64>,
    #[serde(borrow)]
    pub entity_recognition: Option<Vec<RawEntity<'a>>>,
    #[serde(borrow)]
    pub user_intent: Option<Text<'a>>,
    pub influence_score: Option<f64>,
    #[serde(borrow)]
    pub processing_version: Option<Text<'a>>,
    #[serde(borrow)]
    pub ticker: Option<Text<'a>>,
    #[serde(borrow)]
    pub article_title: Option<Text<'a>>,
    #[serde(borrow)]
    pub source_url: Option<Text<'a>>,
    #[serde(borrow)]
    pub model_name: Option<Text<'a>>,
    /// Input only (not a column): engagement figures that inform `influence_score` when it is computed.
    pub source_metadata: Option<RawSourceMetadata>,
}

/// Optional author/engagement figures a producer may attach to an event.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RawSourceMetadata {
    pub followers: Option<u64>,
    pub likes: Option<u64>,
    pub reposts: Option<u64>,
    pub replies: Option<u64>,
    pub verified: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_borrow_from_the_body_unless_escaped() {
        let body = r#"{"message_id":"m-1","text_content":"say \"hi\"","emotion_intensity_vector":{"joy":0.5},"entity_recognition":[{"text":"Apple","type":"ORG"}]}"#;
        let raw: RawRecord<'_> = serde_json::from_str(body).unwrap();
        assert!(matches!(raw.message_id.as_ref().unwrap().0, Cow::Borrowed("m-1")));
        assert!(matches!(raw.text_content.as_ref().unwrap().0, Cow::Owned(ref s) if s == "say \"hi\""));
        let (key, _) = &raw.emotion_intensity_vector.as_ref().unwrap().0[0];
        assert!(matches!(key.0, Cow::Borrowed("joy")));
        assert!(matches!(raw.entity_recognition.as_ref().unwrap()[0].entity_type.0, Cow::Borrowed("ORG")));
    }

    #[test]
    fn maps_keep_the_bodys_order_and_duplicates_for_validation_to_resolve() {
        let raw: RawRecord<'_> = serde_json::from_str(r#"{"aspect_based_sentiment":{"eps":0.1,"capex":0.3,"eps":-0.2}}"#).unwrap();
        let entries = raw.aspect_based_sentiment.unwrap().0;
        assert_eq!(entries, vec![(Text::from("eps"), 0.1), (Text::from("capex"), 0.3), (Text::from("eps"), -0.2)]);
        assert!(serde_json::from_str::<RawRecord<'_>>(r#"{"aspect_based_sentiment":{"eps":"up"}}"#).is_err());
    }
}
