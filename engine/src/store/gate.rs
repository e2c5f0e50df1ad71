//! Who goes first at SQLite's one write connection: the writes a person or a client is waiting
//! for (decisions, case starts, sign-ins) before background work (sending emails, fanning out
//! webhook events, firing timers).
//!
//! Measured in the HTTP bench before this existed: a decision waited for the write connection
//! 28 ms at p99, most of it behind the mailer's and the fan-out's transactions, which had
//! queued for the connection while the decision's batch was being gathered. Now background
//! work takes its turn only when no foreground write is waiting or under way, one background
//! writer at a time, so a decision waits at most for one background transaction. It never
//! waits longer than [`MAX_DEFER`] for a quiet moment, so that a server deciding without pause
//! still sends its emails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, MutexGuard, Notify};

/// The longest background work steps aside for foreground writes before it queues anyway.
pub const MAX_DEFER: Duration = Duration::from_millis(50);

#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Foreground writes waiting for the connection or, for a commit batch, under way.
    busy: AtomicUsize,
    /// Woken when `busy` falls to zero.
    quiet: Notify,
    /// Background writers queue here first, so at most one of them is ahead of a decision.
    lane: Mutex<()>,
}

/// A foreground write in progress; background work waits while any exists.
#[must_use = "the write counts as foreground only while this is held"]
pub struct Foreground<'a>(&'a Gate);

impl Drop for Foreground<'_> {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.quiet.notify_waiters();
        }
    }
}

impl Gate {
    pub(crate) fn foreground(&self) -> Foreground<'_> {
        self.busy.fetch_add(1, Ordering::AcqRel);
        Foreground(self)
    }

    /// Waits for the background lane and then for a moment without foreground writes (or
    /// [`MAX_DEFER`]); the caller takes the connection while holding the returned guard.
    pub(crate) async fn background(&self) -> MutexGuard<'_, ()> {
        let lane = self.lane.lock().await;
        let deadline = tokio::time::Instant::now() + MAX_DEFER;
        loop {
            let quiet = self.quiet.notified();
            tokio::pin!(quiet);
            // Registered before the check, so a wake between the two is not lost.
            quiet.as_mut().enable();
            if self.busy.load(Ordering::Acquire) == 0 {
                return lane;
            }
            if tokio::time::timeout_at(deadline, quiet).await.is_err() {
                return lane;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::time::{Instant, advance};

    /// Lets the spawned tasks run until each waits on something.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_waits_until_the_foreground_work_is_done() {
        let gate = Arc::new(Gate::default());
        let turn = gate.foreground();
        let started = Instant::now();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move {
                let _lane = gate.background().await;
                Instant::now()
            }
        });
        advance(Duration::from_millis(10)).await;
        settle().await;
        assert!(!waiting.is_finished(), "background work went ahead of a foreground write");
        drop(turn);
        let went = waiting.await.unwrap();
        assert!(went - started < MAX_DEFER, "it went at once when the foreground was done, not at the deadline");
    }

    #[tokio::test(start_paused = true)]
    async fn background_work_goes_after_the_longest_deferral_even_when_the_foreground_never_rests() {
        let gate = Gate::default();
        let _turn = gate.foreground();
        let started = Instant::now();
        let _lane = gate.background().await;
        assert_eq!(Instant::now() - started, MAX_DEFER);
    }

    #[tokio::test(start_paused = true)]
    async fn one_background_writer_at_a_time_waits_for_the_connection() {
        let gate = Arc::new(Gate::default());
        let first = gate.background().await;
        let second = tokio::spawn({
            let gate = gate.clone();
            async move {
                let _lane = gate.background().await;
            }
        });
        settle().await;
        assert!(!second.is_finished(), "a second background writer queued beside the first");
        drop(first);
        second.await.unwrap();
    }
}
