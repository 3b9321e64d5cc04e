//! The live demo: `hapi-server serve` keeps the demo's live datasets (NGRM, SOSMAG)
//! growing in real time. At start-up they are caught up to now, then every second the
//! records that came due are appended, through the same writers' queue as HTTP
//! ingest ([`AppState::write`]), so `stop` near now returns fresh records and
//! `stopDate` moves. The records themselves are `demo.rs`'s deterministic grid.

use std::sync::Arc;
use std::time::Duration;

use hapi_core::Nanos;
use tokio::sync::watch;

use crate::demo;
use crate::state::AppState;

/// What time it is: the system clock in `serve`, a hand-moved one in tests.
pub type Clock = Arc<dyn Fn() -> Nanos + Send + Sync>;

/// How often `serve` appends what came due: SOSMAG's cadence, so its `stopDate` (one
/// cadence after the last record) is at most about a second behind the clock. A pass
/// with nothing due (NGRM between its 90 s records) reads one extent and writes nothing.
pub const EVERY: Duration = Duration::from_secs(1);

/// Appends to every live demo dataset of `state` the records due by `now`. Returns the
/// number appended.
pub async fn catch_up(state: &AppState, now: Nanos) -> anyhow::Result<u64> {
    let mut total = 0;
    for d in &state.datasets {
        let Some(generator) = d.spec.demo.clone().filter(|g| demo::is_live(g)) else { continue };
        let info = d.spec.info.clone();
        total +=
            state.write(&info.id.clone(), move |store| demo::grow(store, &info, &generator, now)).await?;
    }
    Ok(total)
}

/// Runs [`catch_up`] every `every` on the state `states` holds at that moment (a reload
/// sends a new one), until the task is aborted. Failures are logged and retried at the
/// next turn.
pub fn spawn(
    states: watch::Receiver<Arc<AppState>>,
    clock: Clock,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let state = states.borrow().clone();
            if let Err(e) = catch_up(&state, clock()).await {
                tracing::warn!(error = %format!("{e:#}"), "appending live demo records failed");
            }
        }
    })
}
