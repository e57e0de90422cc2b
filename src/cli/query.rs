//! `query`: one endpoint's answer, as the API would give it.

use anyhow::Context;

use super::opts::CacheArgs;
use super::setup::Setup;
use crate::app::query_service;
use crate::query::{Query, QueryKind};

pub async fn run(setup: &Setup, endpoint: &str, params: &str, cache: &CacheArgs) -> anyhow::Result<()> {
    let lake = setup.open().await?;
    let kind = QueryKind::from_name(endpoint).with_context(|| {
        let known: Vec<_> = QueryKind::ALL.iter().map(|k| k.name()).collect();
        format!("no endpoint {endpoint:?}; choose one of {}", known.join(", "))
    })?;
    let (query, as_of) = Query::parse_request(kind, Some(params.trim_start_matches('?')), chrono::Utc::now())?;
    let started = std::time::Instant::now();
    let answer = query_service(&lake, &setup.query_options(cache)?)?.answer_at(&query, as_of).await?;
    println!("{}", String::from_utf8_lossy(&crate::functions::api::envelope(&query, &answer, started.elapsed())));
    Ok(())
}
