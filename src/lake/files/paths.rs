//! Data file locations with partition values escaped the way Iceberg's reference implementation does
//! (Java `PartitionSpec.partitionToPath`: `URLEncoder.encode` of the field name and of the value's human
//! string). iceberg-rust 0.10.1 joins raw values into the path, so a ticker `A/../../X` would write
//! `data/ticker=A/../../X/...`, outside the table; escaped, it is the single segment `ticker=A%2F..%2F..%2FX`.
//! Readers never parse these paths (manifests list every file), so escaping changes nothing for them.

use iceberg::spec::{PartitionKey, TableMetadata};
use iceberg::writer::file_writer::location_generator::{DefaultLocationGenerator, LocationGenerator};

/// `application/x-www-form-urlencoded`, which is what `java.net.URLEncoder` produces: letters, digits and
/// `.-*_` stay, space becomes `+`, everything else `%XX` of its UTF-8 bytes. `/` and `%` are always
/// escaped, so the result is one path segment and never `.` or `..` by itself once joined with `name=`.
pub fn escape(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `name=value/name=value` for a partition key, escaped.
pub fn partition_path(key: &PartitionKey) -> String {
    let Ok(partition_type) = key.spec().partition_type(key.schema()) else {
        // Unreachable for keys built from the table's own spec and schema; a flat, escaped fallback keeps
        // even that case inside the data directory.
        return escape(&key.to_path());
    };
    key.spec()
        .fields()
        .iter()
        .zip(partition_type.fields())
        .enumerate()
        .map(|(i, (field, output))| {
            let value = key.data()[i].as_ref();
            format!("{}={}", escape(&field.name), escape(&field.transform.to_human_string(&output.field_type, value)))
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The table's data location (honouring `write.data.path`) with escaped partition directories.
#[derive(Debug, Clone)]
pub struct EscapedLocationGenerator {
    data_location: String,
}

impl EscapedLocationGenerator {
    pub fn new(metadata: &TableMetadata) -> iceberg::Result<Self> {
        // The default generator knows where data goes; only its partition segment is replaced.
        let probe = DefaultLocationGenerator::new(metadata)?.generate_location(None, "");
        Ok(Self { data_location: probe.trim_end_matches('/').to_string() })
    }
}

impl LocationGenerator for EscapedLocationGenerator {
    fn generate_location(&self, partition_key: Option<&PartitionKey>, file_name: &str) -> String {
        match partition_key.filter(|key| !key.spec().is_unpartitioned()) {
            Some(key) => format!("{}/{}/{file_name}", self.data_location, partition_path(key)),
            None => format!("{}/{file_name}", self.data_location),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use iceberg::spec::{Literal, Struct};
    use proptest::prelude::*;

    use super::*;
    use crate::schema::{default_partition_spec, sentiment_schema};

    fn key(ticker: &str, source: &str) -> PartitionKey {
        let schema = Arc::new(sentiment_schema());
        let spec = default_partition_spec().bind(schema.as_ref().clone()).unwrap();
        let data = Struct::from_iter([Some(Literal::date(20_150)), Some(Literal::string(ticker)), Some(Literal::string(source))]);
        PartitionKey::new(spec, schema, data)
    }

    #[test]
    fn values_are_escaped_like_javas_url_encoder() {
        assert_eq!(escape("BRK.B"), "BRK.B");
        assert_eq!(escape("A/../../../../X"), "A%2F..%2F..%2F..%2F..%2FX");
        assert_eq!(escape("yahoo finance"), "yahoo+finance");
        assert_eq!(escape("100%"), "100%25");
        assert_eq!(escape("é"), "%C3%A9");
        assert_eq!(partition_path(&key("A/../X", "news")), "event_timestamp_day=2025-03-03/ticker=A%2F..%2FX/source_system=news");
    }

    proptest! {
        /// Whatever the values, the partition path has exactly one segment per field, none of which is `.`
        /// or `..`, so a file can only land below the data directory.
        #[test]
        fn no_value_leaves_the_data_directory(ticker in "\\PC{0,24}", source in "\\PC{0,24}") {
            let path = partition_path(&key(&ticker, &source));
            let segments: Vec<&str> = path.split('/').collect();
            prop_assert_eq!(segments.len(), 3);
            for segment in segments {
                prop_assert!(segment != "." && segment != ".." && !segment.is_empty());
                prop_assert!(!segment.contains('\\'));
            }
        }
    }
}
