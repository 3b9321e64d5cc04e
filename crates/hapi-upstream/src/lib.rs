//! The `hapi` source: the datasets of another HAPI server, re-served under our own
//! access rules, limits and audit.
//!
//! - [`Upstream`] is one upstream server: its base URL, an HTTP client with timeouts
//!   and, when it needs them, machine-to-machine credentials. Their token
//!   (client_credentials) is fetched when first needed, kept, renewed before it runs out
//!   and again after a 401, so a token that expired upstream costs one retry.
//! - [`UpstreamSource`] is one of its datasets. Its extent is the upstream's published
//!   dates, re-read in the background every `refresh`; a scan asks the upstream for the
//!   range in pieces no longer than its `maxRequestDuration`, halving a piece the
//!   upstream answers with 1408, and decodes what it sends (binary when the upstream
//!   offers it, csv otherwise) after checking its header against the info, so an
//!   upstream that sends other parameters fails the request instead of being served.
//! - Failures are [`ErrorKind::Upstream`] (HAPI 1501) except a 14xx the upstream gives
//!   for the first piece, which is passed on with its code as [`ErrorKind::Refused`].

mod source;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hapi_source::{ErrorKind, SourceError};
use serde_json::Value;
use tokio::sync::Mutex;

pub use source::{UpstreamSource, local_info};

/// A token is renewed this long before the upstream said it expires.
const RENEW_MARGIN: Duration = Duration::from_secs(30);

/// Where an upstream server is and how to reach it.
#[derive(Clone)]
pub struct UpstreamConfig {
    /// Its HAPI base URL, ending in `/hapi`.
    pub url: String,
    /// Credentials, when the upstream asks for a token.
    pub credentials: Option<Credentials>,
    /// Longest wait to connect, for an answer's headers, and between two reads.
    pub timeout: Duration,
    /// How often each dataset's metadata is read again.
    pub refresh: Duration,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &self.url)
            .field("client_id", &self.credentials.as_ref().map(|c| &c.client_id))
            .field("timeout", &self.timeout)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// Machine-to-machine credentials for an upstream (OAuth2 client_credentials).
#[derive(Clone)]
pub struct Credentials {
    /// The token endpoint; `None`: the `token_endpoint` of the OpenID discovery document
    /// beside the HAPI base URL.
    pub token_url: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client secret (read from a file, never logged).
    pub client_secret: String,
    /// The scope asked for, if any.
    pub scope: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("scope", &self.scope)
            .finish()
    }
}

/// One upstream HAPI server.
#[derive(Debug)]
pub struct Upstream {
    config: UpstreamConfig,
    http: reqwest::Client,
    /// The token in use and when it must be renewed; one renewal at a time.
    token: Mutex<Option<(String, Instant)>>,
}

/// What the upstream answered a GET.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Status 2xx.
    Ok(reqwest::Response),
    /// A HAPI client error (14xx) or 1201 sent with an error status: code and message.
    Hapi(u16, String),
}

impl Upstream {
    /// A client for the upstream of `config`; nothing is fetched yet.
    pub fn new(config: UpstreamConfig) -> Result<Arc<Upstream>, SourceError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .user_agent(concat!("hapi-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::new(ErrorKind::Internal, "building the upstream HTTP client", e))?;
        Ok(Arc::new(Upstream { config, http, token: Mutex::new(None) }))
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    pub(crate) fn refresh(&self) -> Duration {
        self.config.refresh
    }

    fn failed(&self, what: impl std::fmt::Display) -> SourceError {
        SourceError::msg(ErrorKind::Upstream, format!("upstream {}: {what}", self.config.url))
    }

    /// The dataset ids and titles of `/catalog`.
    pub async fn catalog(&self) -> Result<Vec<(String, Option<String>)>, SourceError> {
        let v = self.json("catalog").await?;
        let entries = v
            .get("catalog")
            .and_then(Value::as_array)
            .ok_or_else(|| self.failed("/catalog has no catalog array"))?;
        entries
            .iter()
            .map(|e| {
                let id = e
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| self.failed("a /catalog entry has no id"))?;
                Ok((id.to_owned(), e.get("title").and_then(Value::as_str).map(str::to_owned)))
            })
            .collect()
    }

    /// `/info` of dataset `id`, as the upstream sends it.
    pub async fn info(&self, id: &str) -> Result<Value, SourceError> {
        self.json(&format!("info?dataset={}", hapi_core::percent::encode_query_value(id))).await
    }

    /// Whether `/capabilities` lists the binary format.
    pub async fn offers_binary(&self) -> Result<bool, SourceError> {
        let v = self.json("capabilities").await?;
        let formats = v.get("outputFormats").and_then(Value::as_array);
        Ok(formats.is_some_and(|f| f.iter().any(|x| x == "binary")))
    }

    async fn json(&self, path: &str) -> Result<Value, SourceError> {
        match self.get(path).await? {
            Answer::Ok(r) => {
                let body = tokio::time::timeout(self.config.timeout * 4, r.bytes())
                    .await
                    .map_err(|_| self.failed(format!("/{path} did not arrive in time")))?
                    .map_err(|e| self.failed(format!("/{path}: {e}")))?;
                serde_json::from_slice(&body).map_err(|e| self.failed(format!("/{path} is not JSON: {e}")))
            }
            Answer::Hapi(code, message) => Err(SourceError::msg(
                ErrorKind::Refused(code),
                format!("upstream {}: /{path} answered {code} {message}", self.config.url),
            )),
        }
    }

    /// `GET {url}/{path}` with the bearer token when there are credentials; a 401 renews
    /// the token and tries once more.
    pub(crate) async fn get(&self, path: &str) -> Result<Answer, SourceError> {
        let url = format!("{}/{path}", self.config.url);
        let mut renewed = false;
        loop {
            let mut request = self.http.get(&url);
            if self.config.credentials.is_some() {
                request = request.bearer_auth(self.token(renewed).await?);
            }
            let response = tokio::time::timeout(self.config.timeout, request.send())
                .await
                .map_err(|_| self.failed(format!("no answer to /{path} within {:?}", self.config.timeout)))?
                .map_err(|e| self.failed(format!("/{path}: {}", error_chain(&e))))?;
            let status = response.status();
            if status.is_success() {
                return Ok(Answer::Ok(response));
            }
            if status == reqwest::StatusCode::UNAUTHORIZED && self.config.credentials.is_some() && !renewed {
                tracing::info!(upstream = %self.config.url, "the upstream refused our token; renewing it");
                renewed = true;
                continue;
            }
            let body =
                tokio::time::timeout(self.config.timeout, response.bytes()).await.ok().and_then(Result::ok);
            let status_json = body.as_deref().and_then(|b| serde_json::from_slice::<Value>(b).ok());
            let hapi = status_json.as_ref().and_then(|v| v.get("status"));
            let code =
                hapi.and_then(|s| s.get("code")).and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
            let message = hapi.and_then(|s| s.get("message")).and_then(Value::as_str).unwrap_or("");
            return match code {
                // 1201 with an error status (some servers send 404): no records, not a failure.
                Some(code) if code == 1201 || (1400..1500).contains(&code) => {
                    Ok(Answer::Hapi(code, message.to_owned()))
                }
                _ => Err(self.failed(format!("/{path} answered HTTP {status} {message}"))),
            };
        }
    }

    /// The bearer token: the kept one unless it is due, or `stale` says the upstream
    /// refused it.
    async fn token(&self, stale: bool) -> Result<String, SourceError> {
        let mut kept = self.token.lock().await;
        if let Some((token, until)) = kept.as_ref()
            && !stale
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.fetch_token().await?;
        let until = Instant::now() + lifetime.saturating_sub(RENEW_MARGIN.min(lifetime / 2));
        *kept = Some((token.clone(), until));
        Ok(token)
    }

    async fn fetch_token(&self) -> Result<(String, Duration), SourceError> {
        let c = self.config.credentials.as_ref().expect("called only with credentials");
        let token_url = match &c.token_url {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.as_str()),
        ];
        if let Some(scope) = &c.scope {
            form.push(("scope", scope));
        }
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", hapi_core::percent::form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = tokio::time::timeout(
            self.config.timeout,
            self.http
                .post(&token_url)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
                .send(),
        )
        .await
        .map_err(|_| self.failed(format!("the token endpoint {token_url} did not answer in time")))?
        .map_err(|e| self.failed(format!("the token endpoint {token_url}: {}", error_chain(&e))))?;
        let status = response.status();
        let v: Value = response.json().await.unwrap_or(Value::Null);
        let Some(token) = v.get("access_token").and_then(Value::as_str).filter(|_| status.is_success())
        else {
            let error = v.get("error").and_then(Value::as_str).unwrap_or("no access_token in the answer");
            return Err(self.failed(format!(
                "the token endpoint {token_url} refused our client (HTTP {status}): {error}"
            )));
        };
        let lifetime = Duration::from_secs(v.get("expires_in").and_then(Value::as_u64).unwrap_or(300));
        tracing::debug!(upstream = %self.config.url, ?lifetime, "got a token for the upstream");
        Ok((token.to_owned(), lifetime))
    }

    /// The token endpoint of the OpenID discovery document beside `/hapi`.
    async fn discover(&self) -> Result<String, SourceError> {
        let base = self.config.url.strip_suffix("/hapi").unwrap_or(&self.config.url);
        let url = format!("{base}/.well-known/openid-configuration");
        let fetch = async {
            let r = self.http.get(&url).send().await?.error_for_status()?;
            r.json::<Value>().await
        };
        let v = tokio::time::timeout(self.config.timeout, fetch)
            .await
            .map_err(|_| self.failed(format!("{url} did not answer in time")))?
            .map_err(|e| {
                self.failed(format!("no discovery document at {url} (give token_url): {}", error_chain(&e)))
            })?;
        v.get("token_endpoint")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| self.failed(format!("{url} names no token_endpoint")))
    }
}

/// An error and its causes on one line: reqwest's own text hides the interesting part.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}
