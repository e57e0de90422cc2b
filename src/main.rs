use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sentiment_lake::cli::run(sentiment_lake::cli::Opts::parse()).await
}
