//! HTTP with retries: connection errors, cut bodies, 429 and 5xx are tried again after a
//! backoff or what `Retry-After` asks; everything else is the caller's to judge.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;

use crate::error::{Error, Result, chain};
use crate::log::Log;

/// A whole answer: the body has been read to its announced end.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The complete body.
    pub body: Bytes,
}

impl Answer {
    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub retries: u32,
    /// The first wait, doubled on each retry.
    pub backoff: Duration,
    /// The longest wait; a `Retry-After` asking for more is an error.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 5, backoff: Duration::from_millis(500), max_wait: Duration::from_secs(120) }
    }
}

/// Statuses that say "try again later".
fn retried(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// The HTTP client of one command.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    policy: RetryPolicy,
    log: Log,
    /// Bodies' buffers given back by [`Http::recycle`]: a download of many pieces
    /// reuses a few buffers instead of faulting fresh pages in for every byte (a
    /// profile of `hapi data` had the page faults at a third of its CPU).
    spare: Arc<Mutex<Vec<BytesMut>>>,
}

/// Spare buffers kept: the pieces in flight and the one being written.
const SPARE_BUFFERS: usize = 8;
/// A buffer larger than this is freed, not kept.
const SPARE_MAX: usize = 64 << 20;

impl Http {
    /// A client that follows no redirects to other hosts' credentials (reqwest drops
    /// `Authorization` across hosts) and asks for no compression.
    pub fn new(policy: RetryPolicy, log: Log) -> Result<Http> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("hapi/", env!("CARGO_PKG_VERSION"), " (hapi-cli)"))
            .connect_timeout(Duration::from_secs(20))
            // Between reads, not for a whole answer: a large piece may take long, a stalled one may not.
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| Error::Usage(format!("cannot set up HTTP: {}", chain(&e))))?;
        Ok(Http { client, policy, log, spare: Arc::default() })
    }

    /// Gives a body back when nothing else holds it, for a later answer to fill.
    pub fn recycle(&self, body: Bytes) {
        let Ok(mut buf) = body.try_into_mut() else { return };
        buf.clear();
        if buf.capacity() <= SPARE_MAX
            && let Ok(mut spare) = self.spare.lock()
            && spare.len() < SPARE_BUFFERS
        {
            spare.push(buf);
        }
    }

    /// The reqwest client, to build requests with.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request `build` makes (once per try) until an answer arrives whole with
    /// a status that is not retried, or retries run out (then the last answer is
    /// returned when there was one). `what` names the request in messages.
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn() -> Result<reqwest::RequestBuilder>,
    ) -> Result<Answer> {
        let mut attempt = 0u32;
        loop {
            let last = attempt >= self.policy.retries;
            match self.once(build()?).await {
                Ok(a) if retried(a.status) && !last => {
                    let wait = self.wait(attempt, Some(&a))?;
                    self.log.say(format_args!(
                        "{what}: HTTP {}, trying again in {:.1} s",
                        a.status,
                        wait.as_secs_f64()
                    ));
                    tokio::time::sleep(wait).await;
                }
                Ok(a) => return Ok(a),
                Err(cause) if !last => {
                    let wait = self.wait(attempt, None)?;
                    self.log
                        .say(format_args!("{what}: {cause}, trying again in {:.1} s", wait.as_secs_f64()));
                    tokio::time::sleep(wait).await;
                }
                Err(cause) => {
                    return Err(Error::Network(format!(
                        "{what}: no complete answer after {} tries: {cause}",
                        attempt + 1
                    )));
                }
            }
            attempt += 1;
        }
    }

    async fn once(&self, rq: reqwest::RequestBuilder) -> std::result::Result<Answer, String> {
        let mut r = rq.send().await.map_err(|e| chain(&e))?;
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let announced = r.content_length();
        let mut body = self.spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
        // Each chunk copied at once and dropped, so hyper reuses its read buffer too.
        // hyper fails the read when a body ends before its Content-Length or its last chunk.
        loop {
            match r.chunk().await {
                Ok(Some(c)) => body.extend_from_slice(&c),
                Ok(None) => break,
                Err(e) => {
                    return Err(match announced {
                        Some(n) => format!("the body ended before its {n} announced bytes ({})", chain(&e)),
                        None => format!("the body was cut ({})", chain(&e)),
                    });
                }
            }
        }
        Ok(Answer { status, headers, body: body.freeze() })
    }

    /// How long to wait before try `attempt + 1`: `Retry-After` when the answer has one,
    /// else the backoff doubled per attempt, with jitter so parallel pieces spread out.
    fn wait(&self, attempt: u32, answer: Option<&Answer>) -> Result<Duration> {
        let base = self.policy.backoff.saturating_mul(1u32 << attempt.min(16)).min(self.policy.max_wait);
        let nanos =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let jittered = base.mul_f64(0.75 + 0.25 * f64::from(nanos % 1000) / 1000.0);
        let Some(after) = answer.map(|a| a.header("retry-after").trim()).filter(|s| !s.is_empty()) else {
            return Ok(jittered);
        };
        let wanted = match after.parse::<u64>() {
            Ok(s) => Duration::from_secs(s),
            Err(_) => match httpdate::parse_http_date(after) {
                Ok(at) => at.duration_since(SystemTime::now()).unwrap_or_default(),
                Err(_) => jittered,
            },
        };
        if wanted > self.policy.max_wait {
            return Err(Error::Network(format!(
                "the server asks to wait {} s (Retry-After), more than the {} s this command waits",
                wanted.as_secs(),
                self.policy.max_wait.as_secs()
            )));
        }
        Ok(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body comes back as an empty buffer of its capacity, and only once nothing
    /// else holds its bytes (a piece still being written keeps them).
    #[test]
    fn recycle_keeps_only_unshared_buffers_and_empties_them() {
        let http = Http::new(RetryPolicy::default(), Log::default()).unwrap();
        let mut buf = BytesMut::with_capacity(4096);
        buf.extend_from_slice(b"old piece");
        let body = buf.freeze();
        let held = body.slice(4..);
        http.recycle(body.clone());
        assert!(http.spare.lock().unwrap().is_empty(), "recycled while a slice was alive");
        drop(held);
        http.recycle(body);
        let spare = http.spare.lock().unwrap();
        assert_eq!(spare.len(), 1);
        assert!(spare[0].is_empty());
        assert!(spare[0].capacity() >= 4096);
    }
}
