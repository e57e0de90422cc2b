//! A local managed-identity endpoint speaking the App Service protocol (GET with `X-IDENTITY-HEADER`,
//! `api-version=2019-08-01`, `resource`, optional `client_id`), issuing tokens shaped as Entra ID's
//! (Azurite checks lifetime, issuer and audience, not the signature). It refuses a wrong header as the
//! platform does, and records every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use chrono::Utc;
use serde_json::Value;

/// The object id of the identity every token is issued to.
pub const OBJECT_ID: &str = "11111111-1111-1111-1111-111111111111";

/// One request: its query, the secret header it carried and the token it was given (if any).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub query: HashMap<String, String>,
    pub header: Option<String>,
    pub token: Option<String>,
}

#[derive(Default)]
pub struct TokenRequests {
    pub seen: Vec<TokenRequest>,
}

impl TokenRequests {
    pub fn for_resource(&self, resource: &str) -> usize {
        self.seen.iter().filter(|r| r.query.get("resource").map(String::as_str) == Some(resource)).count()
    }
}

/// Called with the resource and the token before the token is handed out (a test server learns to accept it).
pub type OnIssue = Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Clone)]
struct Shared {
    secret: &'static str,
    lifetime_secs: i64,
    seen: Arc<Mutex<TokenRequests>>,
    on_issue: Option<OnIssue>,
    /// How long each answer takes (a cold platform endpoint is not instant).
    delay: std::time::Duration,
}

async fn issue(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Result<axum::Json<Value>, StatusCode> {
    let Shared { secret, lifetime_secs, seen, on_issue, delay } = shared;
    tokio::time::sleep(delay).await;
    let header = headers.get("x-identity-header").and_then(|v| v.to_str().ok()).map(str::to_string);
    if header.as_deref() != Some(secret) {
        seen.lock().unwrap().seen.push(TokenRequest { query: query.clone(), header: header.clone(), token: None });
        return Err(StatusCode::UNAUTHORIZED);
    }
    let now = Utc::now().timestamp();
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let claims = serde_json::json!({
        "aud": query.get("resource").cloned().unwrap_or_default(),
        "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000001/",
        "iat": now - 60, "nbf": now - 60, "exp": now + lifetime_secs,
        "oid": OBJECT_ID,
        // Distinct tokens even within one second.
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let token = format!("{}.{}.c2lnbmF0dXJl", b64(serde_json::json!({"alg": "RS256", "typ": "JWT"})), b64(claims));
    let resource = query.get("resource").cloned().unwrap_or_default();
    if let Some(on_issue) = &on_issue {
        on_issue(&resource, &token);
    }
    seen.lock().unwrap().seen.push(TokenRequest { query: query.clone(), header, token: Some(token.clone()) });
    Ok(axum::Json(serde_json::json!({
        "access_token": token,
        "expires_on": (now + lifetime_secs).to_string(),
        "resource": query.get("resource"),
        "token_type": "Bearer",
    })))
}

/// Serves on a free loopback port; returns the endpoint URL and what it saw. Tokens live `lifetime_secs`.
pub async fn token_endpoint(secret: &'static str, lifetime_secs: i64) -> (String, Arc<Mutex<TokenRequests>>) {
    token_endpoint_with(secret, lifetime_secs, None, std::time::Duration::ZERO).await
}

/// [`token_endpoint`], calling `on_issue` with each token before handing it out, each answer `delay` late.
pub async fn token_endpoint_with(
    secret: &'static str,
    lifetime_secs: i64,
    on_issue: Option<OnIssue>,
    delay: std::time::Duration,
) -> (String, Arc<Mutex<TokenRequests>>) {
    let seen = Arc::new(Mutex::new(TokenRequests::default()));
    let shared = Shared { secret, lifetime_secs, seen: seen.clone(), on_issue, delay };
    let app = axum::Router::new().route("/msi/token", axum::routing::get(issue)).with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/msi/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}
