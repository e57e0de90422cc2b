//! Fills missing analysis fields of incoming records with the rule-based analyzer (`crates/enrich`).
//!
//! Only absent fields are filled: a producer's own analysis is never overwritten. When the score itself is
//! computed here, `processing_version` and `model_name` are set to this analyzer's, replacing whatever the
//! producer sent: provenance follows the score, so every row says where its headline number came from. Runs on raw records before validation, so enriched values are
//! checked by the same rules as everyone else's.

use std::sync::{Arc, LazyLock};

use sentiment_enrich::{AnalysisInput, Analyzer, SourceMetadata, ANALYZER_VERSION};

use crate::schema::{RawEntity, RawRecord, Text};

/// What to do with records that arrive without analysis fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IncompletePolicy {
    /// Compute every missing analysis field from the text.
    #[default]
    Enrich,
    /// Refuse records missing a required analysis field (error class `incomplete`); optional analysis
    /// fields a producer left out stay null.
    DeadLetter,
}

/// The analyzer, built once per process (its lexicons take a few milliseconds to index).
#[derive(Clone)]
pub struct Enricher {
    analyzer: Arc<Analyzer>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher").field("model", &self.analyzer.model_name()).finish()
    }
}

impl Default for Enricher {
    fn default() -> Self {
        static SHARED: LazyLock<Arc<Analyzer>> = LazyLock::new(|| Arc::new(Analyzer::new()));
        Self { analyzer: SHARED.clone() }
    }
}

impl Enricher {
    pub fn model_name(&self) -> &str {
        self.analyzer.model_name()
    }

    /// Fills the record's missing analysis fields; returns whether anything was filled. A record without
    /// text is left alone (validation refuses it).
    pub fn fill_missing(&self, raw: &mut RawRecord<'_>) -> bool {
        if !needs_enrichment(raw) {
            return false;
        }
        let Some(text) = raw.text_content.as_deref() else {
            return false;
        };
        let metadata = raw.source_metadata.as_ref().map(|m| SourceMetadata {
            followers: m.followers,
            likes: m.likes,
            reposts: m.reposts,
            replies: m.replies,
            verified: m.verified,
        });
        let analysis = self.analyzer.analyze(&AnalysisInput {
            text,
            title: raw.article_title.as_deref(),
            ticker: raw.ticker.as_deref(),
            source_system: raw.source_system.as_deref().unwrap_or_default(),
            source_metadata: metadata.as_ref(),
        });
        if raw.sentiment_score.is_none() {
            raw.processing_version = Some(Text::from(ANALYZER_VERSION));
            raw.model_name = Some(Text::from(self.analyzer.model_name().to_string()));
        }
        let widen = |m: std::collections::BTreeMap<String, f32>| m.into_iter().map(|(k, v)| (Text::from(k), f64::from(v))).collect();
        raw.sentiment_score.get_or_insert(f64::from(analysis.sentiment_score));
        raw.sentiment_magnitude.get_or_insert(f64::from(analysis.sentiment_magnitude));
        raw.primary_emotion.get_or_insert(Text::from(analysis.primary_emotion));
        raw.emotion_intensity_vector.get_or_insert_with(|| widen(analysis.emotion_intensity_vector));
        raw.aspect_target_identification.get_or_insert_with(|| analysis.aspect_target_identification.into_iter().map(Text::from).collect());
        raw.aspect_based_sentiment.get_or_insert_with(|| widen(analysis.aspect_based_sentiment));
        raw.sarcasm_detection.get_or_insert(analysis.sarcasm_detection);
        raw.subjectivity_score.get_or_insert(f64::from(analysis.subjectivity_score));
        raw.toxicity_score.get_or_insert(f64::from(analysis.toxicity_score));
        raw.entity_recognition.get_or_insert_with(|| {
            analysis.entity_recognition.into_iter().map(|e| RawEntity { text: e.text.into(), entity_type: e.entity_type.into() }).collect()
        });
        raw.user_intent.get_or_insert(Text::from(analysis.user_intent));
        raw.influence_score.get_or_insert(f64::from(analysis.influence_score));
        true
    }
}

fn needs_enrichment(raw: &RawRecord<'_>) -> bool {
    raw.sentiment_score.is_none()
        || raw.sentiment_magnitude.is_none()
        || raw.primary_emotion.is_none()
        || raw.emotion_intensity_vector.is_none()
        || raw.aspect_target_identification.is_none()
        || raw.aspect_based_sentiment.is_none()
        || raw.sarcasm_detection.is_none()
        || raw.subjectivity_score.is_none()
        || raw.toxicity_score.is_none()
        || raw.entity_recognition.is_none()
        || raw.user_intent.is_none()
        || raw.influence_score.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare(text: &str) -> RawRecord<'_> {
        RawRecord {
            message_id: Some("m".into()),
            event_timestamp: Some("2025-03-03T10:00:00Z".into()),
            source_system: Some("news".into()),
            text_content: Some(text.into()),
            ticker: Some("AAPL".into()),
            ..RawRecord::default()
        }
    }

    #[test]
    fn fills_every_missing_field_and_names_the_analyzer() {
        let enricher = Enricher::default();
        let mut raw = bare("Apple beats estimates, stock jumps 5% as guidance is raised");
        raw.processing_version = Some("upstream-2.1".into());
        assert!(enricher.fill_missing(&mut raw));
        assert!(raw.sentiment_score.unwrap() > 0.3, "{:?}", raw.sentiment_score);
        assert!(raw.aspect_target_identification.as_ref().unwrap().contains(&Text::from("earnings")));
        assert_eq!(raw.processing_version.as_deref(), Some(ANALYZER_VERSION));
        assert_eq!(raw.model_name.as_deref(), Some(enricher.model_name()));
        assert!(!needs_enrichment(&raw));
        assert!(!enricher.fill_missing(&mut raw), "a complete record is left as it is");
    }

    #[test]
    fn never_overwrites_the_producers_analysis() {
        let enricher = Enricher::default();
        let mut raw = bare("Shares plunge after the company misses revenue estimates");
        raw.sentiment_score = Some(0.9);
        raw.model_name = Some("upstream".into());
        raw.user_intent = Some("sell".into());
        assert!(enricher.fill_missing(&mut raw));
        assert_eq!(raw.sentiment_score, Some(0.9));
        assert_eq!(raw.model_name.as_deref(), Some("upstream"));
        assert_eq!(raw.user_intent.as_deref(), Some("sell"));
        assert_eq!(raw.processing_version, None, "the score is the producer's, so is the version");
        assert!(raw.toxicity_score.is_some());
    }
}
