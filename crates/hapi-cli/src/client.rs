//! One HAPI server and, when it needs them, the credentials for it.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Answer, Http};
use crate::token::Tokens;

/// A HAPI server (`server` is its base URL, ending in `/hapi`).
#[derive(Debug)]
pub struct Client {
    /// The HAPI base URL without a trailing `/`.
    pub server: String,
    /// The HTTP client.
    pub http: Http,
    /// The token keeper; `None` for an open server.
    pub tokens: Option<Tokens>,
}

impl Client {
    /// The URL of `endpoint` with `query` (values percent-encoded; `None` values left out).
    pub fn url(&self, endpoint: &str, query: &[(&str, Option<&str>)]) -> String {
        let mut u = format!("{}/{endpoint}", self.server);
        let mut sep = '?';
        for (k, v) in query {
            if let Some(v) = v {
                u.push(sep);
                u.push_str(k);
                u.push('=');
                if *k == "parameters" {
                    // Names encoded one by one: the commas between them stay commas.
                    let names: Vec<String> =
                        v.split(',').map(hapi_core::percent::encode_query_value).collect();
                    u.push_str(&names.join(","));
                } else {
                    u.push_str(&hapi_core::percent::encode_query_value(v));
                }
                sep = '&';
            }
        }
        u
    }

    /// One GET with retries, the token, and one renewal when the server says the token
    /// is invalid (expired or revoked before our clock said so).
    pub async fn get(&self, url: &str, accept: &str, what: &str) -> Result<Answer> {
        for renewed in [false, true] {
            let auth = match &self.tokens {
                Some(t) => Some(t.header().await?),
                None => None,
            };
            let a = self
                .http
                .send(what, || {
                    let mut rq = self.http.client().get(url).header("accept", accept);
                    if let Some(h) = &auth {
                        rq = rq.header("authorization", h);
                    }
                    Ok(rq)
                })
                .await?;
            if a.status != 401 {
                return Ok(a);
            }
            let challenge = a.header("www-authenticate").to_owned();
            let (Some(tokens), Some(sent)) = (&self.tokens, auth) else {
                return Err(Error::Token(format!(
                    "{what} needs credentials (HTTP 401): give --client-id and HAPI_CLIENT_SECRET, or run `hapi login`"
                )));
            };
            if renewed || !challenge.contains("invalid_token") {
                return Err(Error::Token(format!(
                    "{what}: the server refused the access token (HTTP 401): {}",
                    if challenge.is_empty() { "no WWW-Authenticate" } else { &challenge }
                )));
            }
            tokens.invalidate(&sent).await;
        }
        unreachable!("the loop returns on its second pass")
    }

    /// A HAPI error for an answer that is not 200, from its JSON status when it has one.
    pub fn status_error(a: &Answer, what: &str) -> Error {
        let doc: Option<Value> = serde_json::from_slice(&a.body).ok();
        let st = doc.as_ref().and_then(|d| d.get("status"));
        if a.status == 403 {
            let why = a.header("www-authenticate");
            let msg = st.and_then(|s| s.get("message")).and_then(Value::as_str).unwrap_or_default();
            return Error::Token(format!(
                "{what}: access refused (HTTP 403): {}",
                if why.is_empty() { msg } else { why }
            ));
        }
        match st.and_then(|s| s.get("code")).and_then(Value::as_i64) {
            Some(code) => Error::Hapi {
                code,
                message: st
                    .and_then(|s| s.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            },
            None => Error::Response(format!("{what}: HTTP {} without a HAPI status in the body", a.status)),
        }
    }

    /// A metadata endpoint: the parsed document and the body as it came.
    pub async fn json(
        &self,
        endpoint: &str,
        query: &[(&str, Option<&str>)],
    ) -> Result<(Value, bytes::Bytes)> {
        let url = self.url(endpoint, query);
        let what = format!("{}/{endpoint}", self.server);
        let a = self.get(&url, "application/json", &what).await?;
        if a.status != 200 {
            return Err(Self::status_error(&a, &what));
        }
        let ctype = a.header("content-type");
        if !ctype.contains("json") {
            return Err(Error::Response(format!(
                "{what}: a {} answer where JSON was expected",
                if ctype.is_empty() { "untyped" } else { ctype }
            )));
        }
        let doc: Value = serde_json::from_slice(&a.body)
            .map_err(|e| Error::Response(format!("{what}: the body is not JSON: {e}")))?;
        match doc.get("status").and_then(|s| s.get("code")).and_then(Value::as_i64) {
            Some(1200) => Ok((doc, a.body)),
            Some(code) => Err(Error::Hapi {
                code,
                message: doc["status"]["message"].as_str().unwrap_or_default().to_owned(),
            }),
            None => Err(Error::Response(format!("{what}: the answer has no HAPI status"))),
        }
    }
}
