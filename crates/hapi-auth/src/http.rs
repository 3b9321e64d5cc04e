//! The few HTTP calls a resource server makes to its provider: discovery, JWKS,
//! introspection. Each is bounded in time and in size, because a hanging or babbling
//! provider must not hang or bloat the server.

use std::time::Duration;

use hapi_core::percent;
use serde_json::Value;

/// Provider documents are a few KiB; anything past this is not a JWKS we want.
const MAX_BODY: usize = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    timeout: Duration,
}

impl Http {
    pub(crate) fn new(timeout: Duration) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            // A redirect from the provider could point us anywhere (SSRF); providers don't need it.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("hapi-auth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Http { client, timeout })
    }

    /// GET a JSON document.
    pub(crate) async fn get_json(&self, url: &str) -> Result<Value, String> {
        self.send(self.client.get(url).header("accept", "application/json")).await
    }

    /// POST a form with HTTP Basic client authentication (RFC 6749 §2.3.1: both parts
    /// form-urlencoded first) and read a JSON answer.
    pub(crate) async fn post_form_json(
        &self,
        url: &str,
        form: &[(&str, &str)],
        client_id: &str,
        client_secret: &str,
    ) -> Result<Value, String> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", percent::form_encode(k), percent::form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = self
            .client
            .post(url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .basic_auth(percent::form_encode(client_id), Some(percent::form_encode(client_secret)))
            .body(body);
        self.send(req).await
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        // The client timeout covers the body too; the outer one is a belt for the braces.
        let work = async {
            let mut resp = req.send().await.map_err(|e| e.without_url().to_string())?;
            let status = resp.status();
            if !status.is_success() {
                return Err(format!("HTTP {}", status.as_u16()));
            }
            if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
                return Err("response too large".to_owned());
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.without_url().to_string())? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err("response too large".to_owned());
                }
                body.extend_from_slice(&chunk);
            }
            serde_json::from_slice::<Value>(&body).map_err(|e| format!("not JSON: {e}"))
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}
