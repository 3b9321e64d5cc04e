//! Reading one batch ahead on a second blocking thread, for sources whose decoding
//! costs as much as the server's encoding (csv files): the two then run on two cores.

use std::sync::mpsc;

use crate::BatchIter;

/// `batches`, each next one pulled on tokio's blocking pool while the caller encodes
/// the current one. A pull is one short task that ends on its own: a client that stops
/// reading leaves at most one finished batch waiting, never a thread. Outside a tokio
/// runtime the batches are pulled inline.
pub fn read_ahead(batches: BatchIter) -> BatchIter {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Box::new(Ahead { state: State::Idle(batches), handle }),
        Err(_) => batches,
    }
}

type Pulled = (BatchIter, Option<<BatchIter as Iterator>::Item>);

struct Ahead {
    state: State,
    handle: tokio::runtime::Handle,
}

enum State {
    Idle(BatchIter),
    Pulling(mpsc::Receiver<Pulled>),
    Done,
}

impl Iterator for Ahead {
    type Item = <BatchIter as Iterator>::Item;

    fn next(&mut self) -> Option<Self::Item> {
        let (mut inner, item) = match std::mem::replace(&mut self.state, State::Done) {
            State::Idle(mut inner) => {
                let item = inner.next();
                (inner, item)
            }
            State::Pulling(rx) => match rx.recv() {
                Ok(pulled) => pulled,
                // The pull panicked: the panic is logged by tokio; end as a failure.
                Err(_) => {
                    return Some(Err(crate::SourceError::msg(
                        crate::ErrorKind::Internal,
                        "reading ahead: the task ended without a batch",
                    )));
                }
            },
            State::Done => return None,
        };
        let item = item?;
        if item.is_ok() {
            let (tx, rx) = mpsc::sync_channel(1);
            self.handle.spawn_blocking(move || {
                let next = inner.next();
                // A receiver gone means the response ended: the batch is not needed.
                let _ = tx.send((inner, next));
            });
            self.state = State::Pulling(rx);
        }
        Some(item)
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
