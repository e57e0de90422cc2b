//! A real Azurite blob server (npm, installed by scripts/setup-azurite.sh) on a free loopback port, in
//! memory, owned by one test and killed on drop. Optionally HTTPS with OAuth, so bearer tokens from a
//! managed-identity endpoint are checked (lifetime, issuer, audience) as Azure's front end checks them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use sentiment_lake::storage::azure::{EMULATOR_ACCOUNT, EMULATOR_ACCOUNT_KEY};

use super::{free_port, Killed};

pub struct Azurite {
    pub port: u16,
    /// The accounts it serves, with their keys (the development account unless started with others).
    accounts: Vec<(String, String)>,
    /// `http(s)://127.0.0.1:<port>/devstoreaccount1`
    pub endpoint: String,
    /// The CA to trust when started with TLS.
    pub ca_file: Option<PathBuf>,
    _process: Killed,
    _workspace: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/azurite/node_modules/.bin/azurite-blob");
    assert!(path.exists(), "Azurite is not installed at {}: run scripts/setup-azurite.sh (scripts/test.sh does)", path.display());
    path
}

impl Azurite {
    /// Plain HTTP, shared-key (and SAS) authentication.
    pub fn start() -> Self {
        Self::spawn(None, &[])
    }

    /// Plain HTTP serving the accounts `accounts` (name, base64 key) instead of the development account: two
    /// accounts of one server stand for a lake's account and its replica's in another region.
    pub fn start_with_accounts(accounts: &[(&str, &str)]) -> Self {
        Self::spawn(None, accounts)
    }

    /// HTTPS with `--oauth basic`: also accepts bearer tokens. `dir` receives the certificates.
    pub fn start_tls(dir: &Path) -> Self {
        super::tls::make_server_certificate(dir);
        Self::spawn(Some(dir), &[])
    }

    fn spawn(tls: Option<&Path>, accounts: &[(&str, &str)]) -> Self {
        let port = free_port();
        let workspace = tempfile::tempdir().unwrap();
        let mut command = Command::new(binary());
        command
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string(), "--inMemoryPersistence", "--silent"])
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--loose"])
            .current_dir(workspace.path());
        if !accounts.is_empty() {
            command.env("AZURITE_ACCOUNTS", accounts.iter().map(|(name, key)| format!("{name}:{key}")).collect::<Vec<_>>().join(";"));
        }
        if let Some(dir) = tls {
            command.arg("--cert").arg(dir.join("cert.pem")).arg("--key").arg(dir.join("key.pem")).args(["--oauth", "basic"]);
        }
        let process = Killed(command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("azurite-blob starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "Azurite did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        let accounts = if accounts.is_empty() {
            vec![(EMULATOR_ACCOUNT.to_string(), EMULATOR_ACCOUNT_KEY.to_string())]
        } else {
            accounts.iter().map(|(name, key)| (name.to_string(), key.to_string())).collect()
        };
        Self {
            port,
            accounts,
            endpoint: format!("{scheme}://127.0.0.1:{port}/{EMULATOR_ACCOUNT}"),
            ca_file: tls.map(|d| d.join("ca.pem")),
            _process: process,
            _workspace: workspace,
        }
    }

    /// The connection string a user would paste (development account, this server's blob endpoint).
    pub fn connection_string(&self) -> String {
        format!("DefaultEndpointsProtocol=http;AccountName={EMULATOR_ACCOUNT};AccountKey={EMULATOR_ACCOUNT_KEY};BlobEndpoint={};", self.endpoint)
    }

    /// `abfss://<container>@devstoreaccount1.dfs.core.windows.net/<path>`: the URL a deployment uses; the blob
    /// endpoint setting routes it here.
    pub fn url(container: &str, path: &str) -> String {
        format!("abfss://{container}@{EMULATOR_ACCOUNT}.dfs.core.windows.net/{path}")
    }

    /// The connection string of `account`, one of the accounts it serves.
    pub fn account_connection_string(&self, account: &str) -> String {
        let (_, key) = self.accounts.iter().find(|(name, _)| name == account).expect("an account this server serves");
        format!("DefaultEndpointsProtocol=http;AccountName={account};AccountKey={key};BlobEndpoint=http://127.0.0.1:{}/{account};", self.port)
    }

    /// Creates a container in the first account it serves (see [`Azurite::create_container_in`]).
    pub async fn create_container(&self, name: &str) {
        let account = self.accounts[0].0.clone();
        self.create_container_in(&account, name).await
    }

    /// Creates a container with a shared-key signed `Create Container` request (object_store has no
    /// container management; a deployment's containers come from Terraform).
    pub async fn create_container_in(&self, account: &str, name: &str) {
        let (_, key) = self.accounts.iter().find(|(a, _)| a == account).expect("an account this server serves");
        let endpoint = self.endpoint.replace(EMULATOR_ACCOUNT, account);
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        let string_to_sign =
            format!("PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{account}/{account}/{name}\nrestype:container");
        let key = base64::engine::general_purpose::STANDARD.decode(key).unwrap();
        let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), string_to_sign.as_bytes());
        let signature = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &self.ca_file {
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
        }
        let response = client
            .build()
            .unwrap()
            .put(format!("{endpoint}/{name}?restype=container"))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("content-length", "0")
            .header("authorization", format!("SharedKey {account}:{signature}"))
            .send()
            .await
            .expect("Azurite answers");
        assert!(response.status().is_success(), "create container {name}: {} {}", response.status(), response.text().await.unwrap_or_default());
    }
}
