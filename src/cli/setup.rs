//! What every command shares: the lake's settings, the chosen backends, and how to build the pipeline,
//! the query options and the opened lake from them.

use anyhow::Context;

use super::backends::Backends;
use super::opts::{CacheArgs, Opts};
use crate::app::QueryOptions;
use crate::enrich::IncompletePolicy;
use crate::ingest::Pipeline;
use crate::lake::{Lake, LakeConfig};

pub struct Setup {
    pub config: LakeConfig,
    pub backends: Backends,
    /// `--commit-pass-mb`, for the sizing arithmetic.
    pub commit_pass_mb: u64,
    incomplete: IncompletePolicy,
    dual_write: Option<String>,
}

impl Setup {
    /// Tokio must be running (for the lazy Flight channel of a Dremio backend).
    pub fn new(opts: &Opts) -> anyhow::Result<Self> {
        let config = opts.lake.config();
        let backends = opts.backends.backends(&config)?;
        Ok(Self { config, backends, commit_pass_mb: opts.lake.commit_pass_mb, incomplete: opts.incomplete, dual_write: opts.dual_write.clone() })
    }

    /// The query options of a command with the cache flags `cache`, on the chosen engine.
    pub fn query_options(&self, cache: &CacheArgs) -> anyhow::Result<QueryOptions> {
        let mut options = cache.options(&self.config.storage.azure)?;
        options.engine = self.backends.query_engine()?;
        Ok(options)
    }

    /// Built only by the commands that ingest: it loads the analyzer's lexicons.
    pub fn pipeline(&self) -> anyhow::Result<Pipeline> {
        let pipeline = Pipeline::new(self.incomplete);
        Ok(match &self.dual_write {
            Some(location) => pipeline.with_dual_write(
                crate::ingest::dual_write::DualWrite::open(location, &self.config.storage)
                    .with_context(|| format!("opening the dual-write location {location}"))?,
            ),
            None => pipeline,
        })
    }

    pub async fn open(&self) -> anyhow::Result<Lake> {
        open(&self.config, &self.backends).await
    }
}

/// The lake as `config` and `backends` describe it (owned arguments: `serve` reopens it until it opens).
pub async fn open_owned(config: LakeConfig, backends: Backends) -> anyhow::Result<Lake> {
    open(&config, &backends).await
}

async fn open(config: &LakeConfig, backends: &Backends) -> anyhow::Result<Lake> {
    let lake = Lake::open(config).await.with_context(|| format!("opening the lake at {} (run `sentiment-lake doctor`)", config.warehouse))?;
    backends.attach_writer(lake)
}
