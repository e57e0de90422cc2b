//! Where Dremio is and how the client signs in.

use std::time::Duration;

/// How the client signs in.
#[derive(Clone, PartialEq, Eq)]
pub enum DremioAuth {
    /// No credentials (a server without auth, such as a local stand-in).
    None,
    /// A user and password, sent as `authorization: Basic` on the first call; the `Bearer` token Dremio
    /// answers with is reused until the server refuses it, then the password is sent again.
    Basic { user: String, password: String },
    /// A token sent as `authorization: Bearer` on every call (a personal access token on Dremio Enterprise
    /// or Dremio Cloud); it cannot be renewed by the client, so a refusal is an authentication error.
    Token(String),
}

impl std::fmt::Debug for DremioAuth {
    // Credentials never reach logs, whatever prints the settings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DremioAuth::None => f.write_str("None"),
            DremioAuth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <redacted> }}"),
            DremioAuth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Where Dremio is and how to talk to it.
#[derive(Debug, Clone)]
pub struct DremioConfig {
    /// `grpc://host:32010`, `grpc+tls://host:32010` (also `http://` / `https://`).
    pub url: String,
    pub auth: DremioAuth,
    /// A PEM file of extra trusted roots for TLS (beside the system's).
    pub tls_ca_file: Option<String>,
    /// Default schema path of the session (Dremio's `schema` header), e.g. `nessie.sentiment`.
    pub schema: Option<String>,
    /// Workload management: Dremio's `routing_tag` and `routing_queue` session headers.
    pub routing_tag: Option<String>,
    pub routing_queue: Option<String>,
    pub connect_timeout: Duration,
    /// Longest a statement may take, planning and reading its whole result together.
    pub query_timeout: Duration,
    /// Further attempts after a transient failure (unavailable, timed out), with exponential back-off.
    pub max_retries: u32,
    pub min_backoff: Duration,
    /// Consecutive transient failures that open the circuit, and how long it stays open before one trial.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Largest result read into memory; a larger one fails instead of exhausting the instance.
    pub max_result_bytes: usize,
}

impl DremioConfig {
    pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(120);

    pub fn new(url: impl Into<String>, auth: DremioAuth) -> Self {
        Self {
            url: url.into(),
            auth,
            tls_ca_file: None,
            schema: None,
            routing_tag: None,
            routing_queue: None,
            connect_timeout: Duration::from_secs(10),
            query_timeout: Self::DEFAULT_QUERY_TIMEOUT,
            max_retries: 3,
            min_backoff: Duration::from_millis(200),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            max_result_bytes: 256 * 1024 * 1024,
        }
    }
}
