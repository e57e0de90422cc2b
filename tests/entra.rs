//! One Entra credential chain (Microsoft's azure_identity) for every dependency, exercised through the real
//! binary as the Functions host starts it (settings only from the environment): the managed identity of the
//! App Service endpoint signing in to Redis and to the catalog database, with tokens renewed before they
//! expire, and a developer's `az login` signing in to storage.
//!
//! The token endpoint and `az` are stand-ins (no Entra ID here); Redis checks the tokens it is given (each
//! issued token is added to the ACL user's passwords as it is issued), PostgreSQL trusts loopback, so the
//! catalog test shows the token fetched, carried and renewed, not a server validating it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::azurite::Azurite;
use common::identity::{token_endpoint, token_endpoint_with, OBJECT_ID};
use common::redis::RedisServer;
use common::*;
use sentiment_lake::lake::{Lake, TableKind};
use serde_json::Value;

/// `sentiment-lake <args>` with Azure and lake settings only from `env` (none inherited).
fn command(env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"));
    for (key, _) in std::env::vars() {
        if key.starts_with("AZURE_") || key.starts_with("SENTIMENT_LAKE_") || key.starts_with("IDENTITY_") {
            command.env_remove(key);
        }
    }
    command.env("RUST_LOG", "warn").envs(env.iter().copied()).args(args);
    command
}

/// `serve` on a free port once its lake is open, stopped when the returned guard drops.
async fn serve_process(env: &[(&str, &str)]) -> (Killed, String) {
    let port = free_port();
    let child = command(env, &["serve", "--port", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn().unwrap();
    let guard = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client().get(format!("{base}/api/health")).send().await.map_or(true, |r| r.status() != 200) {
        assert!(Instant::now() < deadline, "serve did not open its lake");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (guard, base)
}

/// The identity's connections to Redis: each one's id and the last command it ran.
fn identity_clients(admin: &::redis::Client) -> Vec<(u64, String)> {
    let mut connection = admin.get_connection().unwrap();
    let list: String = ::redis::cmd("CLIENT").arg("LIST").query(&mut connection).unwrap();
    list.lines()
        .filter(|line| line.split(' ').any(|field| field == format!("user={OBJECT_ID}")))
        .map(|line| {
            let field = |name: &str| line.split(' ').find_map(|f| f.strip_prefix(name)).unwrap_or_default().to_string();
            (field("id=").parse().unwrap(), field("cmd="))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_signs_in_with_entra_tokens_renewed_on_open_connections() {
    let server = RedisServer::start();
    let admin = ::redis::Client::open(format!("redis://default:admin-secret@127.0.0.1:{}", server.port)).unwrap();
    {
        // Nobody gets in without a password; the identity's user learns each token as it is issued.
        let mut connection = ::redis::Client::open(server.url()).unwrap().get_connection().unwrap();
        ::redis::cmd("ACL").arg(&["SETUSER", "default", "on", ">admin-secret"]).query::<()>(&mut connection).unwrap();
    }
    let on_issue_admin = admin.clone();
    let on_issue: common::identity::OnIssue = std::sync::Arc::new(move |resource: &str, token: &str| {
        if resource == "https://redis.azure.com" {
            let mut connection = on_issue_admin.get_connection().unwrap();
            ::redis::cmd("ACL").arg(&["SETUSER", OBJECT_ID, "on", &format!(">{token}"), "~*", "&*", "+@all"]).query::<()>(&mut connection).unwrap();
        }
    });
    // Tokens that expire 302 s after issue: renewed 5 minutes before expiry, so every 2 s. Each answer takes
    // 600 ms, more than a Redis connection's 250 ms deadline: signing in must not wait for the endpoint.
    let (endpoint, seen) = token_endpoint_with("platform-secret", 302, Some(on_issue), Duration::from_millis(600)).await;

    let dir = warehouse();
    let catalog = common::postgres::fresh_catalog().await;
    {
        let mut config = config(dir.path());
        config.catalog_uri = Some(catalog.clone());
        let lake = Lake::open(&config).await.unwrap();
        ingest(&lake, &events(chrono::Utc::now(), 0, 50)).await;
        lake.commit().await.unwrap();
    }
    let redis_url = server.url();
    let warehouse_arg = dir.path().display().to_string();
    let env = [
        ("SENTIMENT_LAKE_WAREHOUSE", warehouse_arg.as_str()),
        ("SENTIMENT_LAKE_CATALOG_URI", catalog.as_str()),
        ("SENTIMENT_LAKE_REDIS_URL", redis_url.as_str()),
        ("SENTIMENT_LAKE_REDIS_AUTH", "entra"),
        ("SENTIMENT_LAKE_WARM_TICKERS", "0"),
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", "platform-secret"),
    ];
    let (_serve, base) = serve_process(&env).await;
    let query = |n: u32| {
        let base = base.clone();
        async move { get_ok(&base, &format!("/api/sentiment/tickers?days=7&limit={n}")).await["meta"]["cache"].as_str().unwrap_or_default().to_string() }
    };
    // The first token may still be on its way (600 ms): until it is, answers bypass the cache.
    let deadline = Instant::now() + Duration::from_secs(10);
    while query(5).await == "bypass" {
        assert!(Instant::now() < deadline, "the cache never signed in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(query(5).await, "hit", "signed in: answers are stored and served");

    // The next token is sent as AUTH on the open connection, before the current one expires.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_renewal = identity_clients(&admin);
    assert_eq!(before_renewal.len(), 1, "one connection signed in as the identity: {before_renewal:?}");
    assert_ne!(before_renewal[0].1, "auth", "its last command was a query: {before_renewal:?}");
    let issued = || {
        seen.lock()
            .unwrap()
            .seen
            .iter()
            .filter(|r| r.token.is_some() && r.query.get("resource").map(String::as_str) == Some("https://redis.azure.com"))
            .count()
    };
    let before = issued();
    let deadline = Instant::now() + Duration::from_secs(15);
    while issued() < before + 1 {
        assert!(Instant::now() < deadline, "no token renewal within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_renewal = identity_clients(&admin);
    assert_eq!(after_renewal, vec![(before_renewal[0].0, "auth".to_string())], "the renewed token was sent as AUTH on the same connection");

    // Only the newest token stays valid and the connection is dropped: the client comes back with a current token.
    let newest = seen.lock().unwrap().seen.iter().rev().find_map(|r| r.token.clone()).unwrap();
    {
        let mut connection = admin.get_connection().unwrap();
        ::redis::cmd("ACL").arg(&["SETUSER", OBJECT_ID, "resetpass", &format!(">{newest}")]).query::<()>(&mut connection).unwrap();
        ::redis::cmd("CLIENT").arg(&["KILL", "USER", OBJECT_ID]).query::<u64>(&mut connection).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut limit = 6;
    loop {
        let cache = query(limit).await;
        if cache == "miss" || cache == "hit" {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never came back after its connection was dropped (last: {cache})");
        limit += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // doctor, run in the app with the app's settings (the Doctor function), names how the cache signs in.
    let response = client().get(format!("{base}/api/doctor")).send().await.unwrap();
    let status = response.status().as_u16();
    let stdout = response.text().await.unwrap();
    assert_eq!(status, 200, "{stdout}");
    assert!(
        stdout.contains(&format!("[ok]   cache: redis at {redis_url}"))
            && stdout.contains("signed in with Entra tokens of managed identity via App Service endpoint"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_catalog_sign_in_is_renewed_before_the_token_expires() {
    // Tokens that expire 302 s after issue: the catalog reconnects 5 minutes before expiry, so after 2 s.
    let (endpoint, seen) = token_endpoint("platform-secret", 302).await;
    let dir = warehouse();
    let catalog = common::postgres::fresh_catalog().await;
    let warehouse_arg = dir.path().display().to_string();
    let env = [
        ("SENTIMENT_LAKE_WAREHOUSE", warehouse_arg.as_str()),
        ("SENTIMENT_LAKE_CATALOG_URI", catalog.as_str()),
        ("SENTIMENT_LAKE_CATALOG_AUTH", "entra"),
        ("IDENTITY_ENDPOINT", endpoint.as_str()),
        ("IDENTITY_HEADER", "platform-secret"),
    ];
    let postgres = "https://ossrdbms-aad.database.windows.net";
    let (serve, base) = serve_process(&env).await;
    assert_eq!(seen.lock().unwrap().for_resource(postgres), 1, "one token at start");
    let batch = |first: u64| {
        host_envelope(
            "0",
            first as i64 + 1,
            &events(chrono::Utc::now(), first, 50).iter().map(Value::to_string).collect::<Vec<_>>(),
            chrono::Utc::now(),
        )
    };
    assert_eq!(post(&base, "IngestEvents", batch(0)).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(post(&base, "IngestEvents", batch(50)).await.0, 200);
    let (status, reply) = post(&base, "CommitStaged", fixture("timer.json")).await;
    assert_eq!(status, 200, "{reply}");
    assert!(seen.lock().unwrap().for_resource(postgres) >= 2, "the sign-in was renewed");
    drop(serve);
    let mut config = config(dir.path());
    config.catalog_uri = Some(catalog.clone());
    let lake = Lake::open(&config).await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 100);

    // A refused platform secret is a clear, permanent error that names the credential and the resource.
    let wrong: Vec<(&str, &str)> = env.iter().map(|&(k, v)| if k == "IDENTITY_HEADER" { (k, "wrong") } else { (k, v) }).collect();
    let output = command(&wrong, &["commit"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("managed identity via App Service endpoint")
            && stderr.contains("no token for https://ossrdbms-aad.database.windows.net/.default"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_developers_az_login_signs_in_to_storage() {
    let certs = tempfile::tempdir().unwrap();
    let azurite = Azurite::start_tls(certs.path());
    azurite.create_container("lake").await;
    // A stand-in `az` that prints what `az account get-access-token -o json` prints, and records its arguments.
    let bin = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp();
    let b64 = |v: Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let claims = serde_json::json!({"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
        "iat": now - 60, "nbf": now - 60, "exp": now + 3600, "oid": OBJECT_ID});
    let token = format!("{}.{}.c2lnbmF0dXJl", b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})), b64(claims));
    let reply = serde_json::json!({"accessToken": token, "expiresOn": "", "expires_on": now + 3600, "subscription": "s", "tenant": "t", "tokenType": "Bearer"});
    let calls = bin.path().join("calls");
    let az = bin.path().join("az");
    std::fs::write(&az, format!("#!/bin/sh\necho \"$@\" >> '{}'\ncat <<'EOF'\n{reply}\nEOF\n", calls.display())).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap_or_default());
    let catalog = common::postgres::fresh_catalog().await;
    let warehouse = Azurite::url("lake", "warehouse");
    let ca = azurite.ca_file.as_ref().unwrap().display().to_string();
    let env = [
        ("PATH", path.as_str()),
        ("SENTIMENT_LAKE_WAREHOUSE", warehouse.as_str()),
        ("SENTIMENT_LAKE_CATALOG_URI", catalog.as_str()),
        ("SENTIMENT_LAKE_AZURE_BLOB_ENDPOINT", azurite.endpoint.as_str()),
        ("SENTIMENT_LAKE_AZURE_CA_FILE", ca.as_str()),
    ];
    let output = command(&env, &["doctor"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("[ok]   warehouse access: write, read, list and delete work"), "{stdout}");
    assert!(stdout.contains("[ok]   Entra identity: Azure CLI sign-in (`az login`) answered"), "{stdout}");
    let recorded = std::fs::read_to_string(&calls).unwrap();
    assert!(recorded.contains("account get-access-token -o json --scope https://storage.azure.com/.default"), "{recorded}");
}
