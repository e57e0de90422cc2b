//! `serve`: the Functions custom handler, on `FUNCTIONS_CUSTOMHANDLER_PORT`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use super::doctor;
use super::opts::{ServeArgs, MIB};
use super::setup::{open_owned, Setup};
use crate::app::{serve, ServeOptions};
use crate::functions::routes::EventHubBinding;
use crate::lake::Lake;

pub async fn run(setup: &Setup, args: ServeArgs) -> anyhow::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    // Configuration that cannot be used must not keep the port closed: the app then answers every
    // function with what is wrong (and doctor says the same) instead of never answering.
    let doctor: crate::functions::routes::Doctor = {
        let (config, cache, backends, sizing) = (setup.config.clone(), args.cache.clone(), setup.backends.clone(), args.sizing.clone());
        let (pass_mb, invocation_mb) = (setup.commit_pass_mb, args.max_invocation_mb);
        std::sync::Arc::new(move || {
            let query = cache.options(&config.storage.azure).and_then(|mut options| {
                options.engine = backends.query_engine()?;
                Ok(options)
            });
            let (config, sizing) = (config.clone(), sizing.clone());
            Box::pin(async move {
                let report = doctor::check(&config, query, sizing.budget(pass_mb, invocation_mb), false).await;
                (report.failures == 0, report.text)
            })
        })
    };
    let options = (|| -> anyhow::Result<ServeOptions> {
        Ok(ServeOptions {
            addr,
            commit_interval: Duration::from_secs(args.commit_interval_secs.max(1)),
            commit_threshold_rows: args.commit_threshold_rows,
            binding: EventHubBinding {
                name: args.eventhub_binding.clone(),
                data_type: args.eventhub_data_type,
                namespace: args.eventhub_namespace.clone(),
                event_hub: args.eventhub_name.clone(),
            },
            pipeline: setup.pipeline()?,
            query: setup.query_options(&args.cache)?,
            api: args.api.config()?,
            max_invocation_bytes: args.max_invocation_mb.max(1) * MIB,
            maintenance: args.maintenance.policy(),
            maintenance_backend: setup.backends.maintenance_backend()?,
            legacy_location: match &args.legacy_location {
                Some(location) => Some(
                    crate::storage::AzureLocation::parse(location)?
                        .with_context(|| format!("--legacy-location {location} is not an abfss:// location"))?,
                ),
                None => None,
            },
            doctor: Some(doctor.clone()),
            replica: args.replica.as_ref().map(|location| crate::app::ReplicaOptions {
                config: super::replica::replica_config(setup, location, &args.replica_access),
                max_lag: Duration::from_secs(args.replica_access.max_lag_secs.max(1)),
                every: args.replica_every_secs.map(|s| Duration::from_secs(s.max(1))),
            }),
        })
    })();
    match options {
        Ok(options) => {
            let (config, backends) = (setup.config.clone(), setup.backends.clone());
            serve(move || open_owned(config.clone(), backends.clone()), options).await
        }
        Err(e) => {
            let reason = format!("the configuration cannot be used: {e:#}");
            tracing::error!(error = %reason, "Serving only what is wrong until the configuration is fixed.");
            let fail = move || {
                let reason = reason.clone();
                async move { Err::<Lake, _>(anyhow::anyhow!(reason)) }
            };
            serve(fail, ServeOptions::waiting(addr, Some(doctor))).await
        }
    }
}
