//! Reading batches ahead on a second blocking thread, for sources whose decoding costs
//! as much as the server's encoding (csv files): the two then run on two cores.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::BatchIter;

/// Batches decoded ahead at most. One was too few: the decoding stopped whenever the
/// writing paused (a client's window, a chunk hand-off) and a core sat idle while a
/// year of csv files streamed; the parking of stalled streams bounds what they hold.
const DEPTH: usize = 4;

/// `batches`, pulled on tokio's blocking pool up to [`DEPTH`] ahead of the caller. A
/// pull is a task that ends on its own once that many wait or the caller is gone: a
/// client that stops reading leaves finished batches waiting, never a thread. Outside
/// a tokio runtime the batches are pulled inline.
pub fn read_ahead(batches: BatchIter) -> BatchIter {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Box::new(Ahead {
            shared: Arc::new(Shared {
                state: Mutex::new(State { queue: VecDeque::new(), batches: Some(batches), ended: false }),
                ready: Condvar::new(),
            }),
            handle,
        }),
        Err(_) => batches,
    }
}

type Item = <BatchIter as Iterator>::Item;

struct Ahead {
    shared: Arc<Shared>,
    handle: tokio::runtime::Handle,
}

struct Shared {
    state: Mutex<State>,
    /// A batch was queued or the batches ended.
    ready: Condvar,
}

struct State {
    queue: VecDeque<Item>,
    /// The batches, when no pull holds them.
    batches: Option<BatchIter>,
    /// The last batch or an error is queued: nothing more to pull.
    ended: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Iterator for Ahead {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let mut state = self.shared.lock();
        loop {
            if let Some(item) = state.queue.pop_front() {
                self.pull_more(&mut state);
                return Some(item);
            }
            if state.ended {
                return None;
            }
            // Nothing ahead and no pull running: this thread pulls, without a hand-off.
            if let Some(mut batches) = state.batches.take() {
                drop(state);
                let item = batches.next();
                state = self.shared.lock();
                match item {
                    Some(Ok(b)) => {
                        state.batches = Some(batches);
                        self.pull_more(&mut state);
                        return Some(Ok(b));
                    }
                    end => {
                        state.ended = true;
                        return end;
                    }
                }
            }
            state = self.shared.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Ahead {
    /// Starts a pull when none runs and fewer than [`DEPTH`] batches wait.
    fn pull_more(&self, state: &mut State) {
        if state.ended || state.queue.len() >= DEPTH {
            return;
        }
        let Some(mut batches) = state.batches.take() else { return };
        let pull = Pull { shared: self.shared.clone() };
        self.handle.spawn_blocking(move || {
            let shared = &pull.shared;
            loop {
                let item = batches.next();
                let mut state = shared.lock();
                let end = !matches!(item, Some(Ok(_)));
                state.queue.extend(item);
                shared.ready.notify_one();
                if end {
                    state.ended = true;
                    return;
                }
                // Enough ahead, or the response is gone (its batches are dropped here).
                if state.queue.len() >= DEPTH || Arc::strong_count(shared) == 1 {
                    state.batches = Some(batches);
                    return;
                }
            }
        });
    }
}

/// A pull task's hold on the queue. A pull that panics loses the batches: dropped while
/// unwinding, it ends them with an error, so the caller does not wait for ever.
struct Pull {
    shared: Arc<Shared>,
}

impl Drop for Pull {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if state.batches.is_none() && !state.ended {
            state.queue.push_back(Err(crate::SourceError::msg(
                crate::ErrorKind::Internal,
                "reading ahead: the pull ended without its batches",
            )));
            state.ended = true;
        }
        self.shared.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hapi_core::Batch;

    fn numbers(n: i64) -> BatchIter {
        Box::new((0..n).map(|t| Ok(Batch { times: vec![t], columns: Vec::new(), wire: None })))
    }

    #[test]
    fn outside_a_runtime_the_batches_come_inline() {
        let times: Vec<i64> = read_ahead(numbers(5)).map(|b| b.unwrap().times[0]).collect();
        assert_eq!(times, [0, 1, 2, 3, 4]);
    }

    /// Counts the batches pulled and says when it is dropped.
    struct Counted {
        pulled: Arc<std::sync::atomic::AtomicUsize>,
        dropped: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Iterator for Counted {
        type Item = Result<Batch, crate::SourceError>;
        fn next(&mut self) -> Option<Self::Item> {
            let t = self.pulled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as i64;
            Some(Ok(Batch { times: vec![t], columns: Vec::new(), wire: None }))
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            self.dropped.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_holds_depth_batches_and_no_thread() {
        use std::sync::atomic::Ordering::SeqCst;
        let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let endless = Counted { pulled: pulled.clone(), dropped: dropped.clone() };
        let mut ahead = tokio::task::spawn_blocking(move || {
            let mut ahead = read_ahead(Box::new(endless));
            assert_eq!(ahead.next().unwrap().unwrap().times, [0]);
            ahead
        })
        .await
        .unwrap();
        // The pull stops by itself once DEPTH batches wait.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pulled.load(SeqCst) < 1 + DEPTH && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(pulled.load(SeqCst), 1 + DEPTH, "read ahead by exactly DEPTH, then stopped");
        let next = tokio::task::spawn_blocking(move || {
            let t = ahead.next().unwrap().unwrap().times[0];
            drop(ahead);
            t
        });
        assert_eq!(next.await.unwrap(), 1, "in order");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !dropped.load(SeqCst) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(dropped.load(SeqCst), "the source is released once the reader is gone");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pull_that_panics_ends_the_batches_with_an_error() {
        let mut n = 0;
        let panicking: BatchIter = Box::new(std::iter::from_fn(move || {
            n += 1;
            assert!(n < 3, "a decoder bug");
            Some(Ok(Batch { times: vec![n], columns: Vec::new(), wire: None }))
        }));
        // Read on a thread of its own: a caller left waiting must fail the test, not hang
        // the runtime's shutdown.
        let ahead = read_ahead(panicking);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(ahead.map(|b| b.is_ok()).collect::<Vec<_>>()));
        let got = tokio::task::spawn_blocking(move || rx.recv_timeout(std::time::Duration::from_secs(30)))
            .await
            .unwrap()
            .expect("the caller must not wait for ever on a pull that panicked");
        assert_eq!(got, [true, true, false], "the batches before the panic, then an error, then the end");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ahead_every_batch_comes_once_in_order_and_an_error_ends_them() {
        let times = tokio::task::spawn_blocking(|| {
            read_ahead(numbers(1000)).map(|b| b.unwrap().times[0]).collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert_eq!(times, (0..1000).collect::<Vec<_>>());

        let failing: BatchIter = Box::new(
            numbers(3)
                .chain(std::iter::once(Err(crate::SourceError::msg(crate::ErrorKind::Corrupt, "bad"))))
                .chain(numbers(3)),
        );
        let got = tokio::task::spawn_blocking(|| read_ahead(failing).map(|b| b.is_ok()).collect::<Vec<_>>())
            .await
            .unwrap();
        assert_eq!(got, [true, true, true, false], "nothing after the error");
    }
}
