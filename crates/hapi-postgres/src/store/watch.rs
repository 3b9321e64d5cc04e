//! Extents that follow appends from every replica without polling each dataset: one
//! connection per server `LISTEN`s on the primary (a standby cannot listen, and
//! notifications are not replicated); an append notifies in its transaction, with its
//! last time, and the listener re-reads that dataset's extent from the read pool. When
//! the read pool is a standby that has not replayed the append yet, the dataset stays
//! pending and is read again every 50 ms until it has (a standby that restarted may
//! take seconds to stream again), so `stopDate` never promises records the reads
//! cannot serve, and never stays behind them either.
//!
//! After a lost connection (a database restart) it reconnects with a backoff, listens
//! again and owes every dataset the primary's extent (notifications sent meanwhile are
//! lost), pending until the read pool shows it; while
//! it is not listening, [`Extents::get_or_read`] reads the database on each call. Every
//! 30 s it re-reads all extents anyway, a cheap net under anything missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use hapi_core::Nanos;
use hapi_source::Extent;
use tokio_postgres::{AsyncMessage, NoTls};
use tracing::{debug, info, warn};

use super::{AbortOnDrop, CHANNEL, Shared};
use crate::PgError;

/// Re-read every extent this often even without notifications.
const SAFETY_NET: Duration = Duration::from_secs(30);
/// A standby behind a notified append is asked again after this long, until it has it.
const LAG_RETRY: Duration = Duration::from_millis(50);

/// The extents the listener keeps, by dataset id.
#[derive(Debug, Default)]
pub(crate) struct Extents {
    map: RwLock<HashMap<String, Extent>>,
    /// The listener is connected and listening: cached extents are current.
    live: AtomicBool,
}

impl Extents {
    /// The cached extent while the listener is live; otherwise read (and cached).
    pub(crate) async fn get_or_read(&self, shared: &Shared, id: &str) -> Result<Extent, PgError> {
        if self.live.load(Ordering::SeqCst)
            && let Some(e) = self.map.read().unwrap_or_else(PoisonError::into_inner).get(id)
        {
            return Ok(*e);
        }
        let e = shared.extent(id).await?;
        self.set(id, e);
        Ok(e)
    }

    fn set(&self, id: &str, e: Extent) {
        self.map.write().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), e);
    }

    fn ids(&self) -> Vec<String> {
        self.map.read().unwrap_or_else(PoisonError::into_inner).keys().cloned().collect()
    }

    /// Whether the listener is connected and listening.
    pub(crate) fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// Starts the listener; it ends when the store is dropped, which drops the sender of
/// `stop` (so its connection closes at once, not at the next event).
pub(super) fn start(shared: &Arc<Shared>, mut stop: tokio::sync::watch::Receiver<()>) {
    let weak = Arc::downgrade(shared);
    tokio::spawn(async move {
        let mut backoff = Duration::from_millis(100);
        loop {
            let run = tokio::select! {
                r = listen(&weak) => r,
                _ = stop.changed() => return,
            };
            match run {
                Ok(()) => return,
                Err(e) => {
                    let Some(s) = weak.upgrade() else { return };
                    // A connection that was listening starts the backoff over.
                    if s.extents.live.swap(false, Ordering::SeqCst) {
                        backoff = Duration::from_millis(100);
                    }
                    warn!(error = %e, retry_ms = backoff.as_millis() as u64, "store listener lost the database");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    });
}

/// Listens until the connection fails (`Err`) or the store is dropped (`Ok`).
async fn listen(weak: &Weak<Shared>) -> Result<(), PgError> {
    let config = {
        let Some(s) = weak.upgrade() else { return Ok(()) };
        s.db.listen_config()
    };
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = messages.next().await {
            match m {
                Ok(AsyncMessage::Notification(n)) => {
                    let _ = tx.send(Ok(n.payload().to_owned()));
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
    });
    let _abort = AbortOnDrop::of(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    // Datasets whose notified last record the read pool does not show yet.
    let mut pending: HashMap<String, Nanos> = HashMap::new();
    {
        let Some(s) = weak.upgrade() else { return Ok(()) };
        // Appends while we were away sent notifications nobody heard: what the primary
        // holds now is owed, like a notification, until the read pool shows it (a
        // standby that restarted too may not have replayed it yet).
        for id in s.extents.ids() {
            if let Some((_, last)) = s.primary_extent(&id).await? {
                pending.insert(id, last);
            }
        }
        follow(&s, &mut pending).await?;
        s.extents.live.store(true, Ordering::SeqCst);
        info!("store listener listening");
    }
    let mut net = tokio::time::interval(SAFETY_NET);
    net.tick().await;
    let mut lag = tokio::time::interval(LAG_RETRY);
    lag.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Ok(payload)) => {
                    let Some(s) = weak.upgrade() else { return Ok(()) };
                    if let Some((id, last)) = notified(&s, &payload) {
                        let at = pending.entry(id).or_insert(last);
                        *at = (*at).max(last);
                        follow(&s, &mut pending).await?;
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => return Err(PgError::Connect { target: "the listener".to_owned(), detail: "connection closed".to_owned() }),
            },
            _ = lag.tick(), if !pending.is_empty() => {
                let Some(s) = weak.upgrade() else { return Ok(()) };
                follow(&s, &mut pending).await?;
            }
            _ = net.tick() => {
                let Some(s) = weak.upgrade() else { return Ok(()) };
                if client.is_closed() {
                    return Err(PgError::Connect { target: "the listener".to_owned(), detail: "connection closed".to_owned() });
                }
                for id in s.extents.ids() {
                    s.extents.set(&id, s.extent(&id).await?);
                }
            }
        }
    }
}

/// The dataset and last time a notification names, if this server serves it.
fn notified(s: &Shared, payload: &str) -> Option<(String, Nanos)> {
    let (last, id) = payload.split_once('\t')?;
    let last = last.parse::<Nanos>().ok()?;
    // Datasets this server does not serve are not followed.
    s.extents
        .map
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(id)
        .then(|| (id.to_owned(), last))
}

/// Re-reads the extent of every pending dataset; those whose read shows the notified
/// last record are done.
async fn follow(s: &Shared, pending: &mut HashMap<String, Nanos>) -> Result<(), PgError> {
    let ids: Vec<(String, Nanos)> = pending.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for (id, last) in ids {
        let e = s.extent(&id).await?;
        s.extents.set(&id, e);
        if e.is_some_and(|(_, b)| b >= last) {
            pending.remove(&id);
        } else {
            debug!(dataset = %id, "the read database is still behind the notified append");
        }
    }
    Ok(())
}
