//! Rules: which mapping applies to which legacy files, so that an estate whose exports differ migrates
//! in one run. A rules file (JSON) lists rules in order; a file takes the first rule whose glob matches
//! it, and a file no rule matches is inferred alone.
//!
//! ```json
//! {"rules": [
//!   {"match": "stocktwits/**/*.parquet", "columns": {"event_timestamp": "created"}, "defaults": {"source_system": "stocktwits"}},
//!   {"match": "news_*.parquet", "columns": {"text_content": "summary", "article_title": "headline"}}
//! ]}
//! ```
//!
//! A glob with a `/` is matched against the file's path under the location the run was given; one
//! without is matched against the file name. `*` and `?` stay within a path segment, `**` crosses them.
//! Unknown keys are errors that name them, and so is a rule no file of the run matches (a typo in a glob
//! would otherwise leave its files to inference unnoticed).
//!
//! Uses [`super::layout`] (the mapping a rule carries).

use glob::{MatchOptions, Pattern};

use super::layout::{MappedColumns, MappedDefaults, Mapping};

const MATCHING: MatchOptions = MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    rules: Vec<RuleFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(rename = "match")]
    pattern: String,
    #[serde(default)]
    columns: MappedColumns,
    #[serde(default)]
    defaults: MappedDefaults,
}

/// One rule: the files it matches and the mapping they take.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    glob: Pattern,
    pub mapping: Mapping,
}

impl Rule {
    fn matches(&self, path: &str) -> bool {
        let subject = if self.pattern.contains('/') { path } else { path.rsplit('/').next().unwrap_or(path) };
        self.glob.matches_with(subject, MATCHING)
    }
}

/// The rules of a run, in order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
    /// The empty mapping of files no rule matches.
    inference_alone: Mapping,
}

/// The mapping a file takes, and the rule it came from.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    pub rule: Option<&'a str>,
    pub mapping: &'a Mapping,
}

impl Rules {
    pub fn parse(json: &str) -> Result<Self, String> {
        let file: RulesFile = serde_json::from_str(json).map_err(|e| format!("rules file: {e}"))?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for (n, rule) in file.rules.into_iter().enumerate() {
            let glob = Pattern::new(&rule.pattern).map_err(|e| format!("rules file: rule {} (`{}`): {e}", n + 1, rule.pattern))?;
            let mapping = Mapping { columns: rule.columns, defaults: rule.defaults };
            mapping.check().map_err(|e| format!("rules file: rule {} (`{}`): {e}", n + 1, rule.pattern))?;
            rules.push(Rule { pattern: rule.pattern, glob, mapping });
        }
        Ok(Self { rules, inference_alone: Mapping::default() })
    }

    /// One mapping for every file (`--mapping`).
    pub fn everywhere(mapping: Mapping) -> Self {
        let glob = Pattern::new("**").expect("`**` is a glob");
        Self { rules: vec![Rule { pattern: "**".into(), glob, mapping }], inference_alone: Mapping::default() }
    }

    /// What applies to the file at `path` (under the run's location).
    pub fn for_file(&self, path: &str) -> Applied<'_> {
        match self.rules.iter().find(|rule| rule.matches(path)) {
            Some(rule) => Applied { rule: Some(&rule.pattern), mapping: &rule.mapping },
            None => Applied { rule: None, mapping: &self.inference_alone },
        }
    }

    /// The rules that match none of `paths`: an error for the run, naming them.
    pub fn unmatched<'a>(&'a self, paths: impl IntoIterator<Item = &'a str> + Clone) -> Vec<&'a str> {
        self.rules.iter().filter(|rule| !paths.clone().into_iter().any(|path| rule.matches(path))).map(|rule| rule.pattern.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_rule_applies_and_globs_respect_segments() {
        let rules = Rules::parse(
            r#"{"rules": [
                {"match": "stocktwits/**/*.parquet", "defaults": {"source_system": "stocktwits"}},
                {"match": "news_*.parquet", "columns": {"text_content": "summary"}},
                {"match": "*.parquet", "defaults": {"source_system": "other"}}
            ]}"#,
        )
        .unwrap();
        let source = |path: &str| rules.for_file(path).mapping.defaults.source_system.clone();
        assert_eq!(source("stocktwits/2019/01/a.parquet").as_deref(), Some("stocktwits"));
        assert_eq!(source("stocktwits/a.parquet").as_deref(), Some("stocktwits"), "`**` matches no folder too");
        assert_eq!(rules.for_file("archive/news_1.parquet").rule, Some("news_*.parquet"), "a glob without `/` matches the file name");
        assert_eq!(source("deep/er/x.parquet").as_deref(), Some("other"));
        assert_eq!(rules.for_file("x.csv").rule, None);
        assert_eq!(rules.unmatched(["stocktwits/a.parquet", "x.parquet"]), ["news_*.parquet"]);
        let single = Rules::parse(r#"{"rules": [{"match": "2019/*.parquet"}]}"#).unwrap();
        assert_eq!(single.for_file("2019/deeper/x.parquet").rule, None, "`*` stays in its segment");
    }

    #[test]
    fn unknown_keys_and_bad_globs_are_named() {
        assert!(Rules::parse(r#"{"rules": [{"match": "*", "colums": {}}]}"#).unwrap_err().contains("unknown field `colums`"));
        assert!(Rules::parse(r#"{"rules": [{"match": "*", "columns": {"tiker": "s"}}]}"#).unwrap_err().contains("unknown field `tiker`"));
        assert!(Rules::parse(r#"{"rules": [{"match": "[", "columns": {}}]}"#).unwrap_err().contains("rule 1 (`[`)"));
        assert!(Rules::parse(r#"{"rule": []}"#).unwrap_err().contains("unknown field `rule`"));
        assert!(Rules::everywhere(Mapping::default()).unmatched(["a/b/c.parquet"]).is_empty());
    }
}
