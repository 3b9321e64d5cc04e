//! The access token: fetched on first use, kept, fetched again a margin before it expires
//! (client_credentials has no refresh token) or when the server says it is invalid.
//! Never one per request.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use crate::error::{Error, Result};
use crate::http::Http;
use crate::log::Log;

/// Machine-to-machine credentials.
#[derive(Clone)]
pub struct Credentials {
    /// The OAuth2 client id.
    pub client_id: String,
    /// The secret; never printed (see the `Debug` impl).
    pub client_secret: String,
    /// The scope asked for.
    pub scope: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Where the token endpoint comes from.
#[derive(Debug, Clone)]
pub enum Endpoint {
    /// Given (`--token-url`, `HAPI_TOKEN_URL`, the profile).
    Url(String),
    /// `token_endpoint` of this OpenID discovery document (the server's, or `--issuer`'s).
    Discover(String),
}

/// A token and when to fetch the next one.
struct Current {
    token: String,
    renew_at: Option<Instant>,
}

/// The token keeper of one command.
pub struct Tokens {
    creds: Credentials,
    source: Endpoint,
    endpoint: OnceCell<String>,
    http: Http,
    log: Log,
    current: Mutex<Option<Current>>,
    fetches: AtomicU32,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("client_id", &self.creds.client_id).finish_non_exhaustive()
    }
}

/// Most seconds a token is renewed before its `expires_in` ends (a tenth of its life if less).
const MARGIN_SECS: f64 = 30.0;

impl Tokens {
    /// A keeper for `creds`; nothing is fetched yet.
    pub fn new(creds: Credentials, source: Endpoint, http: Http, log: Log) -> Tokens {
        Tokens {
            creds,
            source,
            endpoint: OnceCell::new(),
            http,
            log,
            current: Mutex::new(None),
            fetches: AtomicU32::new(0),
        }
    }

    /// How many tokens were fetched.
    pub fn fetches(&self) -> u32 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The token endpoint, discovered once.
    pub async fn endpoint(&self) -> Result<&str> {
        self.endpoint
            .get_or_try_init(|| async {
                match &self.source {
                    Endpoint::Url(u) => Ok(u.clone()),
                    Endpoint::Discover(doc) => discover(&self.http, doc).await,
                }
            })
            .await
            .map(String::as_str)
    }

    /// `Bearer ...` for the next request, fetching a token when there is none or it is due.
    pub async fn header(&self) -> Result<String> {
        let mut cur = self.current.lock().await;
        if let Some(c) = cur.as_ref()
            && c.renew_at.is_none_or(|t| Instant::now() < t)
        {
            return Ok(format!("Bearer {}", c.token));
        }
        let (doc, sent) = self.request().await?;
        let c = current_of(&doc, sent)?;
        let header = format!("Bearer {}", c.token);
        *cur = Some(c);
        Ok(header)
    }

    /// Forgets the token sent as `sent` (the server refused it), unless a newer one is kept.
    pub async fn invalidate(&self, sent: &str) {
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|c| sent == format!("Bearer {}", c.token)) {
            *cur = None;
        }
    }

    /// One token request: the whole token response and when it was sent.
    pub async fn request(&self) -> Result<(Value, Instant)> {
        let url = self.endpoint().await?.to_owned();
        let form = [
            ("client_id", self.creds.client_id.as_str()),
            ("client_secret", self.creds.client_secret.as_str()),
            ("grant_type", "client_credentials"),
            ("scope", self.creds.scope.as_str()),
        ];
        let sent = Instant::now();
        let what = format!("the token endpoint {url}");
        let a = self
            .http
            .send(&what, || {
                Ok(self.http.client().post(&url).header("accept", "application/json").form(&form))
            })
            .await?;
        let doc: Option<Value> = serde_json::from_slice(&a.body).ok();
        if a.status != 200 {
            let err = doc.as_ref().and_then(|d| d.get("error")).and_then(Value::as_str);
            return Err(Error::Token(match err {
                Some(e) => {
                    let desc = doc.as_ref().and_then(|d| d.get("error_description")).and_then(Value::as_str);
                    format!(
                        "{what} refused (HTTP {}): {e}{}",
                        a.status,
                        desc.map(|d| format!(": {d}")).unwrap_or_default()
                    )
                }
                None => format!("{what} answered HTTP {} without an OAuth2 error", a.status),
            }));
        }
        let Some(doc) =
            doc.filter(|d| d.get("access_token").and_then(Value::as_str).is_some_and(|t| !t.is_empty()))
        else {
            return Err(Error::Token(format!("the answer of {what} is not a token response")));
        };
        let ttype = doc.get("token_type").and_then(Value::as_str).unwrap_or("Bearer");
        if !ttype.eq_ignore_ascii_case("bearer") {
            return Err(Error::Token(format!("{what} gave a {ttype:?} token, not a bearer token")));
        }
        let n = self.fetches.fetch_add(1, Ordering::Relaxed) + 1;
        self.log.say(format_args!(
            "token {n} fetched from {url} (expires in {} s)",
            doc.get("expires_in").map_or("?".to_owned(), Value::to_string)
        ));
        Ok((doc, sent))
    }
}

fn current_of(doc: &Value, sent: Instant) -> Result<Current> {
    let token = doc["access_token"].as_str().unwrap_or_default().to_owned();
    let renew_at = doc.get("expires_in").and_then(Value::as_f64).filter(|l| *l > 0.0).map(|life| {
        let margin = MARGIN_SECS.min(life / 10.0);
        sent + Duration::from_secs_f64(life - margin)
    });
    // No expires_in: kept until the server refuses it.
    Ok(Current { token, renew_at })
}

/// `token_endpoint` of a discovery document.
async fn discover(http: &Http, doc_url: &str) -> Result<String> {
    let what = format!("the discovery document {doc_url}");
    let a = http.send(&what, || Ok(http.client().get(doc_url).header("accept", "application/json"))).await?;
    let endpoint = serde_json::from_slice::<Value>(&a.body)
        .ok()
        .and_then(|d| d.get("token_endpoint").and_then(Value::as_str).map(str::to_owned));
    match endpoint {
        Some(e) if a.status == 200 => Ok(e),
        _ => Err(Error::Token(format!(
            "no token endpoint known: {what} gave none (HTTP {}); give --token-url or --issuer (or set HAPI_TOKEN_URL)",
            a.status
        ))),
    }
}
