//! The Flight SQL connection: one lazily connected, multiplexed gRPC channel per process (tonic reconnects
//! it after a server restart), Dremio's sign-in, session headers, timeouts, retries and the circuit breaker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::FlightDescriptor;
use arrow_schema::SchemaRef;
use base64::Engine as _;
use futures::TryStreamExt;
use prost::Message;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::breaker::{BreakerState, CircuitBreaker};
use super::config::{DremioAuth, DremioConfig};
use super::error::DremioError;

/// Whether a statement may be sent again after it may have run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// A query: repeating it changes nothing.
    Read,
    /// A statement whose repetition changes nothing more (an insert-only MERGE, OPTIMIZE, VACUUM).
    Idempotent,
    /// A statement that must not run twice (COPY INTO): retried only while it cannot have started, i.e.
    /// before its `DoGet` was sent.
    Once,
}

#[derive(Default)]
struct Session {
    /// The token Dremio answered the password with.
    bearer: Option<String>,
    /// Dremio's `SESSION_ID` cookie, so calls share one server session instead of creating one each.
    cookie: Option<String>,
}

/// A Flight SQL client for Dremio (or any Flight SQL server). Share one per process.
pub struct FlightSqlClient {
    config: DremioConfig,
    channel: Channel,
    session: Mutex<Session>,
    breaker: CircuitBreaker,
}

impl std::fmt::Debug for FlightSqlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightSqlClient").field("url", &self.config.url).field("auth", &self.config.auth).finish_non_exhaustive()
    }
}

/// What a statement returned.
struct Answer {
    schema: Option<SchemaRef>,
    batches: Vec<RecordBatch>,
}

/// Why one attempt failed: what the server (or the transport) said, or a local verdict.
enum Failure {
    Status(Box<Status>),
    Local(DremioError),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Status(Box::new(status))
    }
}

impl From<FlightError> for Failure {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Tonic(status) => Failure::Status(status),
            other => Failure::Local(DremioError::Decode(other.to_string())),
        }
    }
}

/// The gRPC URL tonic understands for a Flight location (`grpc://` and `grpc+tls://` are Flight's names).
fn http_url(url: &str) -> Result<(String, bool), DremioError> {
    let (rest, tls) = if let Some(rest) = url.strip_prefix("grpc+tls://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("grpc+tcp://").or_else(|| url.strip_prefix("grpc://")) {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else {
        return Err(DremioError::Config(format!("Dremio URL {url:?}: expected grpc://host:port or grpc+tls://host:port")));
    };
    if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return Err(DremioError::Config(format!("Dremio URL {url:?}: expected only host:port after the scheme")));
    }
    Ok((format!("{}://{rest}", if tls { "https" } else { "http" }), tls))
}

fn header(value: &str, what: &str) -> Result<AsciiMetadataValue, DremioError> {
    value.parse().map_err(|_| DremioError::Config(format!("{what} cannot be sent as a header (it must be visible ASCII)")))
}

/// What a status means for the caller.
fn classify(status: &Status) -> DremioError {
    let message = status.message().to_string();
    if message.contains("Concurrent operation has updated the table") {
        return DremioError::Conflict(message);
    }
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => DremioError::Unauthenticated(message),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted => {
            DremioError::Unavailable(format!("{:?}: {message}", status.code()))
        }
        // A connection reset mid-stream (a restarting server, a TLS mismatch) surfaces from the h2 layer as
        // Unknown or Internal; it says nothing about the statement.
        Code::Unknown if ["transport", "connection", "h2 protocol", "broken pipe", "stream"].iter().any(|m| message.contains(m)) => {
            DremioError::Unavailable(format!("{:?}: {message}", status.code()))
        }
        Code::Internal if message.starts_with("h2 protocol error") => DremioError::Unavailable(format!("{:?}: {message}", status.code())),
        code => DremioError::Statement(format!("{code:?}: {message}")),
    }
}

impl FlightSqlClient {
    /// A client for `config.url`; nothing is connected until the first statement.
    pub fn new(config: DremioConfig) -> Result<Self, DremioError> {
        let (url, tls) = http_url(&config.url)?;
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| DremioError::Config(format!("Dremio URL {url}: {e}")))?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if tls {
            let mut tls_config = ClientTlsConfig::new().with_native_roots();
            if let Some(path) = &config.tls_ca_file {
                let pem = std::fs::read(path).map_err(|e| DremioError::Config(format!("reading the CA file {path}: {e}")))?;
                tls_config = tls_config.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls_config).map_err(|e| DremioError::Config(format!("TLS settings: {e}")))?;
        }
        let channel = endpoint.connect_lazy();
        let breaker = CircuitBreaker::new(config.breaker_threshold, config.breaker_cooldown);
        Ok(Self { config, channel, session: Mutex::new(Session::default()), breaker })
    }

    pub fn config(&self) -> &DremioConfig {
        &self.config
    }

    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state()
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the next call sends a token Dremio issued (rather than the password).
    fn holds_bearer(&self) -> bool {
        self.session().bearer.is_some()
    }

    fn decorate(&self, metadata: &mut MetadataMap) -> Result<(), DremioError> {
        let session = self.session();
        let authorization = match (&self.config.auth, &session.bearer) {
            (DremioAuth::None, _) => None,
            (DremioAuth::Token(token), _) => Some(format!("Bearer {token}")),
            (DremioAuth::Basic { .. }, Some(bearer)) => Some(format!("Bearer {bearer}")),
            (DremioAuth::Basic { user, password }, None) => {
                Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
            }
        };
        if let Some(value) = authorization {
            metadata.insert("authorization", header(&value, "the Dremio credentials")?);
        }
        if let Some(cookie) = &session.cookie {
            metadata.insert("cookie", header(cookie, "Dremio's session cookie")?);
        }
        for (name, value) in
            [("schema", &self.config.schema), ("routing_tag", &self.config.routing_tag), ("routing_queue", &self.config.routing_queue)]
        {
            if let Some(value) = value {
                metadata.insert(name, header(value, name)?);
            }
        }
        Ok(())
    }

    /// Keeps the token and session cookie a response carries.
    fn absorb(&self, metadata: &MetadataMap) {
        let mut session = self.session();
        if let Some(token) = metadata.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")) {
            session.bearer = Some(token.to_string());
        }
        if let Some(cookie) = metadata.get("set-cookie").and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next()) {
            if cookie.contains('=') {
                session.cookie = Some(cookie.trim().to_string());
            }
        }
    }

    /// Runs `sql` and returns its whole result. Transient failures are retried with back-off (a `Once`
    /// statement only before it may have started); a refused Dremio token is replaced by signing in again.
    pub async fn execute(&self, sql: &str, kind: StatementKind) -> Result<Vec<RecordBatch>, DremioError> {
        self.run(sql, kind, true).await.map(|answer| answer.batches)
    }

    /// The schema of `sql`'s result, from planning alone: the statement is not executed (Dremio runs a
    /// statement only when its `DoGet` is read).
    pub async fn plan_schema(&self, sql: &str) -> Result<SchemaRef, DremioError> {
        let answer = self.run(sql, StatementKind::Read, false).await?;
        answer.schema.ok_or_else(|| DremioError::Decode("the server sent no schema with its plan".into()))
    }

    async fn run(&self, sql: &str, kind: StatementKind, fetch: bool) -> Result<Answer, DremioError> {
        let started = Instant::now();
        let (mut retries, mut signed_in_again) = (0u32, false);
        let outcome = loop {
            if let Err(rejected) = self.breaker.admit() {
                break Err(DremioError::CircuitOpen { retry_in: rejected.retry_in, failures: rejected.failures });
            }
            let sent_bearer = self.holds_bearer();
            let mut executing = false;
            let attempt = tokio::time::timeout(self.config.query_timeout, self.attempt(sql, fetch, &mut executing)).await;
            let failure = match attempt {
                Ok(Ok(answer)) => {
                    self.breaker.record_success();
                    break Ok(answer);
                }
                Ok(Err(Failure::Status(status))) => classify(&status),
                Ok(Err(Failure::Local(e))) => {
                    self.breaker.record_neutral();
                    break Err(e);
                }
                Err(_) => DremioError::Unavailable(format!("no answer within {:?}", self.config.query_timeout)),
            };
            match failure {
                DremioError::Unauthenticated(detail) if !signed_in_again && self.renewable(sent_bearer, &detail) => {
                    // The token (or the session behind the cookie) expired: sign in with the password again.
                    let mut session = self.session();
                    session.bearer = None;
                    session.cookie = None;
                    drop(session);
                    signed_in_again = true;
                    self.breaker.record_neutral();
                    tracing::info!("Dremio refused the session token; signing in again.");
                }
                DremioError::Unavailable(detail) => {
                    self.breaker.record_failure();
                    let may_repeat = kind != StatementKind::Once || !executing;
                    if retries >= self.config.max_retries || !may_repeat {
                        break Err(DremioError::Unavailable(detail));
                    }
                    retries += 1;
                    let backoff = self.config.min_backoff.saturating_mul(1 << retries.min(8));
                    tracing::info!(retries, ?backoff, error = %detail, "Dremio call failed; trying again.");
                    tokio::time::sleep(backoff).await;
                }
                other => {
                    self.breaker.record_neutral();
                    break Err(other);
                }
            }
        };
        crate::observability::DremioStatement {
            kind: match kind {
                StatementKind::Read => "read",
                StatementKind::Idempotent => "idempotent",
                StatementKind::Once => "once",
            },
            outcome: match &outcome {
                Ok(_) => "ok",
                Err(DremioError::CircuitOpen { .. }) => "circuit_open",
                Err(e) if e.is_retryable() => "unavailable",
                Err(_) => "error",
            },
            retries,
            elapsed: started.elapsed(),
        }
        .emit();
        outcome
    }

    fn renewable(&self, sent_bearer: bool, detail: &str) -> bool {
        let basic = matches!(self.config.auth, DremioAuth::Basic { .. });
        basic && (sent_bearer || detail.contains("UserSession is not available"))
    }

    async fn attempt(&self, sql: &str, fetch: bool, executing: &mut bool) -> Result<Answer, Failure> {
        let limit = self.config.max_result_bytes;
        let mut client = FlightServiceClient::new(self.channel.clone()).max_decoding_message_size(limit.min(i32::MAX as usize));
        let command = CommandStatementQuery { query: sql.to_string(), transaction_id: None };
        let mut request = Request::new(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()));
        self.decorate(request.metadata_mut()).map_err(Failure::Local)?;
        let response = client.get_flight_info(request).await?;
        self.absorb(response.metadata());
        let info = response.into_inner();
        let schema = if info.schema.is_empty() {
            None
        } else {
            Some(Arc::new(info.clone().try_decode_schema().map_err(|e| Failure::Local(DremioError::Decode(format!("the plan's schema: {e}"))))?))
        };
        let (mut batches, mut bytes) = (Vec::new(), 0usize);
        if !fetch {
            return Ok(Answer { schema, batches });
        }
        for endpoint in info.endpoint {
            // Dremio (25+) names no location: the result comes from the same coordinator, over this channel.
            // Older releases advertised 0.0.0.0, which no client can reach; it is never dialled.
            let ticket = endpoint.ticket.ok_or_else(|| Failure::Local(DremioError::Decode("an endpoint without a ticket".into())))?;
            let mut request = Request::new(ticket);
            self.decorate(request.metadata_mut()).map_err(Failure::Local)?;
            *executing = true;
            let response = client.do_get(request).await?;
            self.absorb(response.metadata());
            // Counted as received: decoded arrays are views into these message buffers (so summing each
            // array's memory size would count a message once per column).
            let received = Arc::new(AtomicUsize::new(0));
            let counter = received.clone();
            let messages = response.into_inner().map_err(FlightError::from).inspect_ok(move |data| {
                counter.fetch_add(data.data_body.len() + data.data_header.len(), Ordering::Relaxed);
            });
            let mut stream = FlightRecordBatchStream::new_from_flight_data(messages);
            while let Some(batch) = stream.try_next().await? {
                bytes = bytes.saturating_add(received.swap(0, Ordering::Relaxed));
                if bytes > limit {
                    return Err(Failure::Local(DremioError::ResultTooLarge { limit }));
                }
                batches.push(batch);
            }
        }
        Ok(Answer { schema, batches })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flight_urls_map_to_grpc_endpoints() {
        assert_eq!(http_url("grpc://dremio:32010").unwrap(), ("http://dremio:32010".into(), false));
        assert_eq!(http_url("grpc+tcp://127.0.0.1:1").unwrap(), ("http://127.0.0.1:1".into(), false));
        assert_eq!(http_url("grpc+tls://data.dremio.cloud:443").unwrap(), ("https://data.dremio.cloud:443".into(), true));
        for bad in ["dremio:32010", "grpc://", "grpc://u:p@host:1", "grpc://host:1/path", "ftp://host"] {
            assert!(matches!(http_url(bad), Err(DremioError::Config(_))), "{bad}");
        }
    }

    #[test]
    fn statuses_map_to_retryable_or_final_errors() {
        assert!(classify(&Status::unavailable("connection refused")).is_retryable());
        assert!(classify(&Status::unknown("h2 protocol error: stream reset")).is_retryable());
        assert!(classify(&Status::internal("h2 protocol error: http2 error")).is_retryable());
        assert!(!classify(&Status::internal("Table 'x' is broken")).is_retryable());
        assert!(matches!(classify(&Status::unauthenticated("bad token")), DremioError::Unauthenticated(_)));
        let conflict = classify(&Status::internal("Concurrent operation has updated the table, please retry."));
        assert!(matches!(conflict, DremioError::Conflict(_)) && conflict.is_retryable());
        let statement = classify(&Status::invalid_argument("Table 'x' not found"));
        assert!(matches!(statement, DremioError::Statement(_)) && !statement.is_retryable());
    }

    #[tokio::test]
    async fn credentials_are_never_printed() {
        let config = DremioConfig::new("grpc://h:1", DremioAuth::Basic { user: "svc".into(), password: "hunter2".into() });
        let client = FlightSqlClient::new(config).unwrap();
        let shown = format!("{client:?} {:?}", DremioAuth::Token("pat-secret".into()));
        assert!(!shown.contains("hunter2") && !shown.contains("pat-secret"), "{shown}");
        assert!(shown.contains("svc"));
    }
}
