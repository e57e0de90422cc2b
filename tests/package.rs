//! The deployable package: `infra/package.sh` assembles the zip the Functions host runs, and every function
//! in it is one the handler serves, with the bindings the host expects.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use chrono::Utc;
use common::*;
use object_store::ObjectStoreExt;
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn package(out: &Path, floor: &str) -> std::process::Output {
    Command::new("bash")
        .arg(format!("{ROOT}/infra/package.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_sentiment-lake"), "--glibc-floor", floor, "--out"])
        .arg(out)
        .output()
        .unwrap()
}

/// The zip's entries: name -> (unix mode, content), read with Python's zipfile (an independent reader).
fn entries(zip: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    let script = r#"
import base64, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    out = {}
    for info in z.infolist():
        data = z.read(info) if not info.filename.endswith("sentiment-lake") else b""
        out[info.filename] = [info.external_attr >> 16, base64.b64encode(data).decode()]
print(json.dumps(out))
"#;
    let output = Command::new("python3").args(["-c", script]).arg(zip).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed: BTreeMap<String, (u32, String)> = serde_json::from_slice(&output.stdout).unwrap();
    use base64::Engine;
    listed.into_iter().map(|(name, (mode, data))| (name, (mode, base64::engine::general_purpose::STANDARD.decode(data).unwrap()))).collect()
}

/// `%NAME%` settings a binding refers to.
fn settings_in(binding: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for value in binding.as_object().unwrap().values().filter_map(Value::as_str) {
        let mut rest = value;
        while let Some(start) = rest.find('%') {
            let Some(len) = rest[start + 1..].find('%') else { break };
            out.push(rest[start + 1..start + 1 + len].to_string());
            rest = &rest[start + len + 2..];
        }
    }
    out
}

/// Concrete request paths for an HTTP trigger's route template.
fn paths_for(route: &str) -> Vec<String> {
    if let Some(prefix) = route.strip_suffix("{*endpoint}") {
        return vec![format!("{prefix}tickers"), format!("{prefix}timeseries?ticker=AAPL")];
    }
    if let Some(prefix) = route.strip_suffix("{*asset}") {
        return vec![prefix.to_string(), format!("{prefix}app.js"), format!("{prefix}vendor/uplot/uPlot.iife.min.js")];
    }
    if let Some(inner) = route.strip_prefix("{page:regex(^(").and_then(|r| r.strip_suffix(")$)}")) {
        return inner.split('|').map(|alternative| alternative.replace("\\.", ".")).collect();
    }
    vec![route.to_string()]
}

/// A small legacy file: three rows in the old writer's layout.
fn legacy_parquet() -> Vec<u8> {
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("created_at", arrow_schema::DataType::Utf8, false),
        arrow_schema::Field::new("text", arrow_schema::DataType::Utf8, false),
    ]));
    let batch = arrow_array::RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow_array::StringArray::from(vec!["2023-01-02 09:30:00", "2023-01-02 09:31:00", "2023-01-02 09:32:00"])),
            Arc::new(arrow_array::StringArray::from(vec!["beats estimates", "guidance cut", "flat quarter"])),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    out
}

#[test]
fn the_glibc_floor_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let refused = package(&dir.path().join("app.zip"), "2.0");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refusing to package: the binary needs glibc"), "{refused:?}");
    assert!(!dir.path().join("app.zip").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_package_holds_every_function_the_handler_serves() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("app.zip");
    let built = package(&zip, "99.0");
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(built.status.success(), "{stdout}{}", String::from_utf8_lossy(&built.stderr));
    assert!(stdout.contains("glibc floor: "), "{stdout}");
    let entries = entries(&zip);

    let host: Value = serde_json::from_slice(&entries["host.json"].1).unwrap();
    let handler = &host["customHandler"];
    let executable = handler["description"]["defaultExecutablePath"].as_str().unwrap();
    assert_eq!(handler["description"]["arguments"], serde_json::json!(["serve"]));
    assert_eq!(handler["enableForwardingHttpRequest"], true);
    let (mode, _) = entries.get(executable).unwrap_or_else(|| panic!("{executable} is not in the package"));
    assert_eq!(mode & 0o111, 0o111, "the executable lost its executable bits: {mode:o}");

    let terraform = std::fs::read_to_string(format!("{ROOT}/terraform/main.tf")).unwrap();
    let local_settings: Value = serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/local.settings.json.example")).unwrap()).unwrap();
    // Blob-triggered functions read the file from storage: an Azurite holds it.
    let azurite = common::azurite::Azurite::start();
    azurite.create_container("legacy").await;
    let lake_dir = warehouse();
    let mut lake_config = config(lake_dir.path());
    lake_config.storage.azure.connection_string = Some(azurite.connection_string());
    let lake = sentiment_lake::lake::Lake::open(&lake_config).await.unwrap();
    let server = serve(lake).await;
    let folders: Vec<_> = std::fs::read_dir(format!("{ROOT}/functions")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(!folders.is_empty());
    let mut http_routes = Vec::new();
    for name in &folders {
        let (_, content) = entries.get(&format!("{name}/function.json")).unwrap_or_else(|| panic!("{name}/function.json is not in the package"));
        let function: Value = serde_json::from_slice(content).unwrap_or_else(|e| panic!("{name}/function.json: {e}"));
        let bindings = function["bindings"].as_array().unwrap();
        let trigger = bindings.iter().find(|b| b["type"].as_str().unwrap().ends_with("Trigger")).unwrap_or_else(|| panic!("{name}: no trigger"));
        for setting in settings_in(trigger) {
            assert!(terraform.contains(&setting), "{name}: %{setting}% is not set by terraform/main.tf");
            assert!(local_settings["Values"].get(&setting).is_some(), "{name}: %{setting}% is not in local.settings.json.example");
        }
        match trigger["type"].as_str().unwrap() {
            "httpTrigger" => {
                assert!(bindings.iter().any(|b| b["type"] == "http" && b["direction"] == "out"), "{name}: no http output");
                http_routes.push(trigger["route"].as_str().unwrap().to_string());
                let methods: Vec<&str> = trigger["methods"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
                assert!(methods.contains(&"get"), "{name}: {methods:?}");
                for path in paths_for(trigger["route"].as_str().unwrap()) {
                    // The host forwards the request as it came: /api/<route>.
                    let response = client().get(format!("{}/api/{path}", server.base)).send().await.unwrap();
                    let status = response.status().as_u16();
                    assert!(status != 404 && status != 405, "{name}: GET /api/{path} answered {status}");
                }
            }
            "eventHubTrigger" => {
                assert_eq!(trigger["cardinality"], "many", "{name}");
                assert!(matches!(trigger["dataType"].as_str(), Some("string" | "binary")), "{name}: {}", trigger["dataType"]);
                let connection = trigger["connection"].as_str().unwrap();
                assert!(terraform.contains(&format!("{connection}__fullyQualifiedNamespace")), "{name}: identity connection {connection} not set");
                let body = host_envelope("0", 1, &[events(Utc::now(), 0, 1)[0].to_string()], Utc::now());
                let (status, reply) = post(&server.base, name, body).await;
                assert_eq!(status, 200, "{name}: {reply}");
                assert_eq!(reply["ReturnValue"]["dead_lettered"], 0, "{name}: {reply}");
            }
            "timerTrigger" => {
                let schedule = trigger["schedule"].as_str().unwrap();
                assert!(schedule.starts_with('%') && schedule.ends_with('%'), "{name}: the schedule comes from an app setting, not {schedule}");
                let (status, reply) = post(&server.base, name, fixture("timer.json")).await;
                assert_eq!(status, 200, "{name}: {reply}");
            }
            "eventGridTrigger" => {
                let file = legacy_parquet();
                let uploads = sentiment_lake::storage::OpenedLocation::open(
                    sentiment_lake::storage::Location::parse("abfss://legacy@devstoreaccount1.dfs.core.windows.net").unwrap(),
                    &lake_config.storage,
                )
                .unwrap();
                let put = uploads.store.put(&object_store::path::Path::from("AAPL.parquet"), bytes::Bytes::from(file).into()).await.unwrap();
                let url = format!("{}/legacy/AAPL.parquet", azurite.endpoint);
                let (status, reply) = post(&server.base, name, eventgrid_invocation(&url, put.e_tag.as_deref(), "PutBlob")).await;
                assert_eq!(status, 200, "{name}: {reply}");
                assert_eq!(reply["ReturnValue"]["staged"], 3, "{name}: {reply}");
            }
            other => panic!("{name}: trigger {other} is not one the handler serves"),
        }
    }
    // And the other way round: every function route of the handler has its folder.
    use sentiment_lake::functions::routes::{COMMIT_FUNCTION, INGEST_FUNCTION, MAINTAIN_FUNCTION, MIGRATE_FUNCTION};
    for function in [INGEST_FUNCTION, COMMIT_FUNCTION, MIGRATE_FUNCTION, MAINTAIN_FUNCTION] {
        assert!(folders.iter().any(|f| f == function), "the handler serves {function} but functions/ has no folder for it");
    }
    // What the dashboard calls beside the query API reaches the handler through the host too.
    assert!(http_routes.iter().any(|r| r == "quality"), "the dashboard calls /api/quality but no function routes it: {http_routes:?}");
}
