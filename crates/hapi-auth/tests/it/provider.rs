//! A fake OpenID provider on 127.0.0.1:0: discovery, a JWKS whose fetches are counted
//! and whose behaviour can be switched (answer, hang, talk nonsense, fail), and an
//! RFC 7662 introspection endpoint. Raw HTTP/1.1 with `Connection: close`, so stopping
//! it really refuses connections (no pooled keep-alive connection outlives it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::JwkSet;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the JWKS endpoint behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Accepts and never answers.
    Hang,
    /// 200 with an HTML page.
    Nonsense,
    /// 200 with a JWKS without keys.
    Empty,
    /// 500.
    Error,
}

#[derive(Debug)]
struct State {
    issuer: String,
    /// The `issuer` the discovery document claims (normally `issuer`).
    advertised_issuer: Mutex<String>,
    jwks: Mutex<String>,
    mode: Mutex<Mode>,
    jwks_fetches: AtomicU64,
    introspections: AtomicU64,
    /// Opaque token -> introspection answer.
    opaque: Mutex<HashMap<String, Value>>,
}

#[derive(Debug)]
pub struct FakeIdp {
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

/// Basic credentials the introspection endpoint wants.
pub const INTROSPECTION_CLIENT: (&str, &str) = ("hapi-rs", "rs secret/with+specials");

impl FakeIdp {
    pub async fn start(jwks: &JwkSet) -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(State {
            issuer: url.clone(),
            advertised_issuer: Mutex::new(url.clone()),
            jwks: Mutex::new(serde_json::to_string(jwks).expect("jwks")),
            mode: Mutex::new(Mode::Normal),
            jwks_fetches: AtomicU64::new(0),
            introspections: AtomicU64::new(0),
            opaque: Mutex::new(HashMap::new()),
        });
        let st = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, Arc::clone(&st)));
            }
        });
        FakeIdp { url, state, task }
    }

    pub fn set_jwks(&self, jwks: &JwkSet) {
        *self.state.jwks.lock().expect("lock") = serde_json::to_string(jwks).expect("jwks");
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().expect("lock") = mode;
    }

    pub fn advertise_issuer(&self, issuer: &str) {
        issuer.clone_into(&mut self.state.advertised_issuer.lock().expect("lock"));
    }

    pub fn add_opaque(&self, token: &str, answer: Value) {
        self.state.opaque.lock().expect("lock").insert(token.to_owned(), answer);
    }

    pub fn jwks_fetches(&self) -> u64 {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn introspections(&self) -> u64 {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Stops listening: new connections are refused.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn serve(mut conn: TcpStream, st: Arc<State>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 65_536 {
            return;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or_default().to_owned();
    let (status, body) = match path.as_str() {
        "/.well-known/openid-configuration" => (
            200,
            json!({
                "issuer": *st.advertised_issuer.lock().expect("lock"),
                "jwks_uri": format!("{}/jwks", st.issuer),
                "token_endpoint": format!("{}/token", st.issuer),
                "authorization_endpoint": format!("{}/auth", st.issuer),
                "introspection_endpoint": format!("{}/introspect", st.issuer),
            })
            .to_string(),
        ),
        "/jwks" => {
            st.jwks_fetches.fetch_add(1, Ordering::SeqCst);
            let mode = *st.mode.lock().expect("lock");
            match mode {
                Mode::Normal => (200, st.jwks.lock().expect("lock").clone()),
                Mode::Hang => {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return;
                }
                Mode::Nonsense => (200, "<html><body>maintenance</body></html>".to_owned()),
                Mode::Empty => (200, r#"{"keys":[]}"#.to_owned()),
                Mode::Error => (500, r#"{"error":"oops"}"#.to_owned()),
            }
        }
        "/introspect" => introspect(&st, &headers, &body),
        _ => (404, "{}".to_owned()),
    };
    let reason = if status == 200 { "OK" } else { "Error" };
    let resp = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(resp.as_bytes()).await;
    let _ = conn.shutdown().await;
}

fn introspect(st: &State, headers: &HashMap<String, String>, body: &[u8]) -> (u16, String) {
    use base64::Engine;
    st.introspections.fetch_add(1, Ordering::SeqCst);
    // RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic.
    let expected = base64::engine::general_purpose::STANDARD.encode("hapi-rs:rs+secret%2Fwith%2Bspecials");
    if headers.get("authorization") != Some(&format!("Basic {expected}")) {
        return (401, r#"{"error":"invalid_client"}"#.to_owned());
    }
    let body = String::from_utf8_lossy(body);
    let token = body.split('&').find_map(|kv| kv.strip_prefix("token=")).unwrap_or_default();
    let answer =
        st.opaque.lock().expect("lock").get(token).cloned().unwrap_or_else(|| json!({"active": false}));
    (200, answer.to_string())
}
