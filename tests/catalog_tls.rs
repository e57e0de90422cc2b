//! TLS to the catalog database, as Azure Database for PostgreSQL requires it: the machine's PostgreSQL with
//! `sslmode=require`, a second server the test starts (TLS-only `pg_hba`, a certificate the test issues)
//! with `verify-full`, and the clear errors a wrong CA, a wrong host name and a plaintext connection get.
//! `doctor` says which mode and which certificate.

mod common;

use std::process::Command;

use common::postgres::TlsPostgres;
use common::*;
use sentiment_lake::lake::{Lake, TableKind};
use sqlx::Connection;

/// How many of the server's connections with this application name are encrypted.
async fn encrypted_connections(server: &str, application: &str) -> i64 {
    let mut connection = sqlx::postgres::PgConnection::connect(server).await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1 AND s.ssl")
        .bind(application)
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

fn doctor(warehouse: &std::path::Path, catalog: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sentiment-lake"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(["--catalog-uri", catalog, "doctor"])
        .env("RUST_LOG", "error")
        .env_remove("SENTIMENT_LAKE_REDIS_URL")
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A lake whose catalog is at `catalog`, with 20 events committed and read back (kept open: its
/// connections stay in the server's view).
async fn commit_through(catalog: &str) -> (tempfile::TempDir, sentiment_lake::lake::LakeConfig, Lake) {
    let dir = warehouse();
    let mut config = config(dir.path());
    config.catalog_uri = Some(catalog.to_string());
    let lake = Lake::open(&config).await.unwrap();
    ingest(&lake, &events(chrono::Utc::now(), 0, 20)).await;
    lake.commit().await.unwrap();
    assert_eq!(scan(&lake, TableKind::Records).await.num_rows(), 20);
    (dir, config, lake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_connects_to_the_machines_postgresql_with_sslmode_require() {
    let application = format!("tls-{}", uuid::Uuid::new_v4().simple());
    let catalog = format!("{}&sslmode=require&application_name={application}", common::postgres::fresh_catalog().await);
    let (dir, _config, _lake) = commit_through(&catalog).await;
    assert!(encrypted_connections(common::postgres::SERVER, &application).await > 0, "the catalog's connections are encrypted");

    // The machine's server has Debian's self-signed "snakeoil" certificate: require encrypts without checking
    // it, and doctor says the certificate would not verify.
    let (ok, stdout) = doctor(dir.path(), &catalog);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("[ok]   catalog TLS: sslmode=require: TLS 1."), "{stdout}");
    assert!(
        stdout.contains("NOT verified: invalid peer certificate: UnknownIssuer (a loopback server)"),
        "require is named for what it is: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_certificate_and_the_host_name() {
    let server = TlsPostgres::start();
    let ca = server.ca.display().to_string();
    let application = format!("tls-{}", uuid::Uuid::new_v4().simple());
    let catalog = server.uri(&format!("sslmode=verify-full&sslrootcert={ca}&application_name={application}"));
    let (dir, mut config, _lake) = commit_through(&catalog).await;
    assert!(encrypted_connections(&server.uri(&format!("sslmode=require&sslrootcert={ca}")), &application).await > 0);

    let (ok, stdout) = doctor(dir.path(), &catalog);
    assert!(ok, "{stdout}");
    assert!(
        stdout.contains("[ok]   catalog TLS: sslmode=verify-full: TLS 1.")
            && stdout.contains(&format!("verified for host 127.0.0.1 against the CA bundle {ca}")),
        "{stdout}"
    );
    assert!(stdout.contains("issued by CN=sentiment-lake test CA"), "the certificate is named: {stdout}");

    // A CA that did not sign the server's certificate: refused for good, and said so.
    let other = tempfile::tempdir().unwrap();
    common::tls::make_server_certificate(other.path());
    let wrong_ca = server.uri(&format!("sslmode=verify-full&sslrootcert={}", other.path().join("ca.pem").display()));
    config.catalog_uri = Some(wrong_ca.clone());
    let error = Lake::open(&config).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(error.to_string().contains("catalog database TLS (sslmode=verify-full)"), "{error}");
    let (ok, stdout) = doctor(dir.path(), &wrong_ca);
    assert!(!ok);
    assert!(stdout.contains("[FAIL] catalog TLS") && stdout.contains("TLS handshake failed"), "{stdout}");

    // The certificate names 127.0.0.1, not localhost: refused. (verify-ca too, unlike libpq: sqlx 0.8 exempts
    // only rustls's old name error from the host check. If this changes, the doctor's report must change.)
    for mode in ["verify-full", "verify-ca"] {
        config.catalog_uri = Some(format!("postgres://postgres@localhost:{}/postgres?sslmode={mode}&sslrootcert={ca}", server.port));
        let error = Lake::open(&config).await.unwrap_err();
        assert!(error.to_string().contains("not valid for name \"localhost\"") && !error.is_retryable(), "{mode}: {error}");
    }

    // Plaintext to a server that demands TLS: a clear, permanent error that says what to change.
    config.catalog_uri = Some(server.uri("sslmode=disable"));
    let error = Lake::open(&config).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let message = error.to_string();
    assert!(message.contains("requires TLS") && message.contains("sslmode=disable") && message.contains("sslmode=verify-full"), "{message}");
}
