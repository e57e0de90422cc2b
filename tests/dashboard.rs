//! The dashboard in a real browser: headless Chromium (Debian's) driven by playwright-core (npm) against the
//! real server on a table with known rows. The page loads with no console errors and no request to another
//! origin, the plotted time series equals the API's numbers, and a commit changes what the page shows without
//! a reload. Screenshots are kept in `target/test-artifacts/` (`docs/dashboard.png` is one of them).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_apis_numbers_and_follows_staged_events() {
    let Some(browser) = browser_dir() else { return };
    let dir = warehouse();
    let lake = open(dir.path()).await;
    let now = chrono::Utc::now();
    ingest(&lake, &events(now, 0, 600)).await;
    let server = serve(lake.clone()).await;
    let artifacts = format!("{}/target/test-artifacts", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = format!("{artifacts}/dashboard.png");

    let mut node = Command::new("node")
        .arg(format!("{}/tests/browser/dashboard.mjs", env!("CARGO_MANIFEST_DIR")))
        .arg(&server.base)
        .arg(&screenshot)
        .env("SENTIMENT_LAKE_BROWSER", &browser)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed");
    let mut stdout = BufReader::new(node.stdout.take().unwrap());
    let mut line = String::new();
    let read = tokio::task::spawn_blocking(move || {
        stdout.read_line(&mut line).unwrap();
        (stdout, line)
    });
    let (mut stdout, shown) = read.await.unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{e}: {shown:?}"));
    assert_eq!(shown["phase"], "shown");
    assert!(shown["messages"].as_i64().unwrap() > 0, "AAPL has messages in the window: {shown}");

    // Events staged while the page is open, not committed: the page notices them and redraws.
    let ndjson: Vec<u8> = events(now, 600, 400).iter().flat_map(|e| format!("{e}\n").into_bytes()).collect();
    let batch = sentiment_lake::ingest::file::batch_from_file(&ndjson, "staged-while-open", None).unwrap();
    sentiment_lake::ingest::Pipeline::default().ingest(&lake, &batch).await.unwrap();
    writeln!(node.stdin.as_mut().unwrap(), "committed").unwrap();
    let (status, done) = tokio::task::spawn_blocking(move || {
        let mut done = String::new();
        stdout.read_line(&mut done).unwrap();
        (node.wait().unwrap(), done)
    })
    .await
    .unwrap();
    let done: serde_json::Value = serde_json::from_str(&done).unwrap_or_else(|e| panic!("{e}: {done:?}"));
    assert!(status.success() && done["failures"].as_array().is_some_and(|f| f.is_empty()), "{done}");
    assert_eq!(done["before"]["snapshot"], done["after"]["snapshot"], "nothing was committed");
    assert!(done["after"]["messages"].as_i64() > done["before"]["messages"].as_i64(), "the staged rows are shown: {done}");
    assert_eq!(done["past"], done["before"]["messages"], "the past snapshot shows what the first load showed");
    assert!(std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000), "a screenshot was kept");
}
