use clap::Parser;

fn main() -> anyhow::Result<()> {
    // iceberg-rust captures a backtrace in every error it makes, and its readers make (and drop) one per
    // column of every data file they open: with RUST_BACKTRACE=1 (common in containers and CI) that was a
    // fifth of a commit's instructions. Library backtraces stay off unless asked for by
    // RUST_LIB_BACKTRACE; panics still print theirs under RUST_BACKTRACE. Set before any thread starts.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(sentiment_lake::cli::run(sentiment_lake::cli::Opts::parse()))
}
