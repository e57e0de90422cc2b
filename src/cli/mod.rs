//! Command line: the same binary is the Functions custom handler (`serve`) and a local tool.
//! Every flag has an environment fallback so one configuration works under the host and in a shell.
//!
//! One file per command family, each given the [`setup::Setup`] all commands share: [`serve`], [`query`],
//! [`ingest`] (`ingest`, `generate`) and [`demo`], [`migrate`] (`migrate`, `reconcile`), [`table`]
//! (`commit`, `health`, `maintain`, `rollback`, `tag`, `schema`, `dead-letters`, `create-table`), [`replica`] (`replicate`,
//! `promote`, `restore`, `drill`), [`doctor`] (`doctor`,
//! `sizing`). The flags are in [`opts`], the engine and writer choice in [`backends`]. Uses everything
//! upstream (the app, the lake, migration, maintenance); nothing uses it but `main`.

mod backends;
mod demo;
mod doctor;
mod ingest;
mod migrate;
mod opts;
mod query;
mod replica;
mod serve;
mod setup;
mod table;

pub use self::opts::Opts;
use self::opts::{Command, SchemaAction};
use self::setup::Setup;

pub async fn run(opts: Opts) -> anyhow::Result<()> {
    let under_host = std::env::var_os("FUNCTIONS_CUSTOMHANDLER_PORT").is_some();
    crate::observability::init(opts.log_json || under_host);
    let setup = Setup::new(&opts)?;
    match opts.command {
        Command::Doctor { cache, sizing, limit, create_reflections } => doctor::command(&setup, &cache, &sizing, &limit, create_reflections).await,
        Command::Sizing { sizing, limit } => doctor::sizing(&setup, &sizing, &limit),
        Command::Query { endpoint, params, cache } => query::run(&setup, &endpoint, &params, &cache).await,
        Command::Serve(args) => serve::run(&setup, *args).await,
        Command::Ingest { file, no_commit } => ingest::ingest(&setup, &file, no_commit).await,
        Command::Demo { events, partitions, batch_size } => {
            let lake = setup.open().await?;
            demo::run(&lake, &setup.pipeline()?, events, partitions.max(1), batch_size.max(1)).await
        }
        Command::Generate { events, seed, days, tickers, out } => ingest::generate(events, seed, days, tickers, &out),
        Command::Migrate { paths, mapping, rules, plan, workers, no_commit, no_verify, report, dedup_ids, include_dual_write } => {
            let lake = setup.open().await?;
            let args = migrate::MigrateArgs {
                paths: &paths,
                rules: migrate::load_rules(mapping.as_deref(), rules.as_deref())?,
                plan,
                workers,
                commit: !no_commit,
                verify: !no_verify,
                report: report.as_deref(),
                options: crate::migrate::MigrateOptions { dedup_ids, include_dual_write },
            };
            migrate::run(&lake, &setup.pipeline()?, &setup.config.storage, args).await
        }
        Command::Reconcile { paths, mapping, rules } => {
            let lake = setup.open().await?;
            let rules = migrate::load_rules(mapping.as_deref(), rules.as_deref())?;
            migrate::reconcile(&lake, &setup.config.storage, &paths, &rules).await
        }
        Command::Maintain(args) => table::maintain(&setup, &args).await,
        Command::Schema { action: SchemaAction::AddColumn { name, column_type, doc } } => {
            table::add_column(&setup, &name, column_type, doc.as_deref()).await
        }
        Command::Rollback { release: Some(source), .. } => table::release(&setup, &source).await,
        Command::Rollback { to, release: None } => table::rollback(&setup, to.as_deref()).await,
        Command::CreateTable => table::create(&setup).await,
        Command::Health => table::health(&setup).await,
        Command::Rollup { action } => table::rollup(&setup, &action).await,
        Command::Commit => table::commit(&setup).await,
        Command::Promote => replica::promote(&setup).await,
        Command::Drill { replica, access, scratch, scratch_catalog_uri } => {
            replica::drill(&setup, &replica, &access, scratch.as_deref(), scratch_catalog_uri.as_deref()).await
        }
        Command::Restore { from, replica, snapshot } => replica::restore(&setup, &from, &replica, snapshot.as_deref()).await,
        Command::Tag { action } => table::tag(&setup, &action).await,
        Command::DeadLetters { action } => table::dead_letters(&setup, &action).await,
        Command::Replicate { location, replica, every } => replica::replicate(&setup, &location, &replica, every).await,
    }
}
