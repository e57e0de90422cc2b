//! The HTTP client the Azure SDK's credentials send their token requests through: the reqwest (and rustls)
//! the rest of the binary already uses. azure_core's own reqwest support would pull in a second major version
//! of reqwest and a second TLS provider (aws-lc) for a handful of token requests a day.

use std::time::Duration;

use async_trait::async_trait;
use azure_core::error::{Error, ErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Method, Request};

/// A token reply is a few kilobytes; anything much larger is not one and is not read whole.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// `ca_pem`: an extra root to trust (a private endpoint's or a test server's CA).
    pub(crate) fn new(ca_pem: Option<&[u8]>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            // Token endpoints answer directly; a redirect would send the identity secret elsewhere.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("CA file: {e}"))? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self { client: builder.build().map_err(|e| format!("HTTP client: {e}"))? })
    }
}

fn method(method: Method) -> azure_core::Result<reqwest::Method> {
    Ok(match method {
        Method::Delete => reqwest::Method::DELETE,
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Patch => reqwest::Method::PATCH,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        other => return Err(Error::with_message(ErrorKind::Other, format!("HTTP method {other:?} is not supported"))),
    })
}

#[async_trait]
impl HttpClient for ReqwestTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let mut builder = self.client.request(method(request.method())?, request.url().clone());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            // Credentials send forms and JSON; a streamed upload would be another client's business.
            Body::SeekableStream(_) => return Err(Error::with_message(ErrorKind::Other, "streamed request bodies are not supported")),
        };
        let response = builder.send().await.map_err(|e| {
            let kind = if e.is_connect() { ErrorKind::Connection } else { ErrorKind::Io };
            Error::with_error(kind, e, "token request")
        })?;
        let status = response.status().as_u16().into();
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            if let Ok(value) = value.to_str() {
                headers.insert(HeaderName::from(name.as_str().to_owned()), HeaderValue::from(value.to_owned()));
            }
        }
        if response.content_length().is_some_and(|n| n > MAX_REPLY_BYTES as u64) {
            return Err(Error::with_message(ErrorKind::DataConversion, "the token endpoint's reply is too large to be a token"));
        }
        let mut body = Vec::new();
        let mut response = response;
        while let Some(chunk) = response.chunk().await.map_err(|e| Error::with_error(ErrorKind::Io, e, "reading a token reply"))? {
            if body.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(Error::with_message(ErrorKind::DataConversion, "the token endpoint's reply is too large to be a token"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, body))
    }
}
