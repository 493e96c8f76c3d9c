//! Which pushed messages a connection must push again, and when.
//!
//! The first re-push comes 5 s after the push (`--retransmit-after`), then
//! the wait doubles up to 60 s (or the first wait, if longer), for as long as the connection lives and no device of the user has
//! confirmed the message. Apart from these re-pushes a connection writes a
//! message at most once: a worker pushing it again (a resend's redrive, a
//! retried frame) finds it pending or lately confirmed and is ignored.

use axum::extract::ws::Utf8Bytes;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

pub const FIRST: Duration = Duration::from_secs(5);
pub const MAX: Duration = Duration::from_secs(60);

struct Unconfirmed {
    frame: Utf8Bytes,
    wait: Duration,
    due: Instant,
}

/// Confirmed ids a connection remembers. A worker re-pushes a message only
/// while its receipt is not yet committed, so a short memory covers it.
const RECENTLY_CONFIRMED: usize = 64;

pub struct Retransmits {
    /// The wait before the first re-push, and the longest wait.
    first: Duration,
    max: Duration,
    pending: HashMap<u64, Unconfirmed>,
    /// The last confirmed ids, oldest first; empty (unallocated) until the
    /// first confirmation.
    confirmed: VecDeque<u64>,
}

impl Default for Retransmits {
    fn default() -> Self {
        Retransmits::new(FIRST)
    }
}

impl Retransmits {
    /// Re-pushes `first` after a push, then after doubling waits.
    pub fn new(first: Duration) -> Retransmits {
        Retransmits {
            first,
            max: MAX.max(first),
            pending: HashMap::new(),
            confirmed: VecDeque::new(),
        }
    }

    /// Takes a message to push; false if this connection has it already
    /// (pending, or confirmed lately), and then it must not be written.
    pub fn pushed(&mut self, id: u64, frame: Utf8Bytes) -> bool {
        if self.confirmed.contains(&id) {
            return false;
        }
        match self.pending.entry(id) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(Unconfirmed {
                    frame,
                    wait: self.first,
                    due: Instant::now() + self.first,
                });
                true
            }
        }
    }

    pub fn confirmed(&mut self, ids: &[u64]) {
        for &id in ids {
            self.pending.remove(&id);
            if !self.confirmed.contains(&id) {
                if self.confirmed.len() == RECENTLY_CONFIRMED {
                    self.confirmed.pop_front();
                }
                self.confirmed.push_back(id);
            }
        }
    }

    /// When the next re-push is due, if any is pending.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|u| u.due).min()
    }

    /// Frames due now, in id order, each rescheduled with a doubled wait.
    pub fn take_due(&mut self) -> Vec<Utf8Bytes> {
        let now = Instant::now();
        let mut due: Vec<(u64, Utf8Bytes)> = Vec::new();
        for (id, u) in self.pending.iter_mut() {
            if u.due <= now {
                u.wait = (u.wait * 2).min(self.max);
                u.due = now + u.wait;
                due.push((*id, u.frame.clone()));
            }
        }
        due.sort_by_key(|(id, _)| *id);
        due.into_iter().map(|(_, f)| f).collect()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_wait_is_settable_and_the_waits_double_from_it() {
        let mut r = Retransmits::new(Duration::from_millis(500));
        let start = Instant::now();
        assert!(r.pushed(1, "m1".into()));
        assert_eq!(r.next_due(), Some(start + Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(r.take_due().len(), 1);
        assert_eq!(r.next_due(), Some(Instant::now() + Duration::from_secs(1)));
        assert_eq!(
            Retransmits::default().first,
            Duration::from_secs(5),
            "5 s unless told"
        );
    }

    async fn at(secs: u64, start: Instant) {
        tokio::time::sleep_until(start + Duration::from_secs(secs)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_unconfirmed_push_comes_back_with_doubling_back_off_up_to_a_minute() {
        let start = Instant::now();
        let mut r = Retransmits::default();
        r.pushed(7, Utf8Bytes::from_static("m7"));
        let mut repushes = Vec::new();
        for second in 1..=300 {
            at(second, start).await;
            if !r.take_due().is_empty() {
                repushes.push(second);
            }
        }
        assert_eq!(repushes[..6], [5, 15, 35, 75, 135, 195]);
        assert!(repushes.windows(2).all(|w| w[1] - w[0] <= 60));
    }

    #[test]
    fn a_message_is_taken_once_while_pending_and_after_its_confirmation() {
        let mut r = Retransmits::default();
        assert!(r.pushed(7, Utf8Bytes::from_static("m7")));
        assert!(!r.pushed(7, Utf8Bytes::from_static("m7")), "pending");
        r.confirmed(&[7]);
        assert!(!r.pushed(7, Utf8Bytes::from_static("m7")), "confirmed");
        assert!(r.is_empty());
        for id in 100..100 + RECENTLY_CONFIRMED as u64 {
            r.confirmed(&[id]);
        }
        assert!(
            r.pushed(7, Utf8Bytes::from_static("m7")),
            "a long-gone confirmation is forgotten"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_confirmed_message_is_not_pushed_again() {
        let start = Instant::now();
        let mut r = Retransmits::default();
        r.pushed(1, Utf8Bytes::from_static("a"));
        r.pushed(2, Utf8Bytes::from_static("b"));
        r.confirmed(&[1]);
        at(5, start).await;
        assert_eq!(r.take_due(), vec![Utf8Bytes::from_static("b")]);
        r.confirmed(&[2]);
        assert!(r.is_empty());
        assert_eq!(r.next_due(), None);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;
        use std::collections::{BTreeMap, BTreeSet};

        #[derive(Debug, Clone)]
        enum Op {
            Push(u64),
            Confirm(Vec<u64>),
            Wait(u64),
            TakeDue,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (0u64..20).prop_map(Op::Push),
                proptest::collection::vec(0u64..20, 0..4).prop_map(Op::Confirm),
                (0u64..90).prop_map(Op::Wait),
                Just(Op::TakeDue),
            ]
        }

        proptest! {
            /// Against a model of the schedule: a pushed message comes back
            /// FIRST after its push, then after a wait doubling up to MAX,
            /// until confirmed; never twice at once, never after its
            /// confirmation, always in id order.
            #[test]
            fn re_pushes_follow_the_schedule(ops in proptest::collection::vec(op(), 1..80)) {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .start_paused(true)
                    .build()
                    .expect("runtime");
                runtime.block_on(async {
                    let mut r = Retransmits::default();
                    // id -> (due, wait); fewer ids than RECENTLY_CONFIRMED,
                    // so a confirmation is never forgotten here.
                    let mut pending: BTreeMap<u64, (Instant, Duration)> = BTreeMap::new();
                    let mut confirmed: BTreeSet<u64> = BTreeSet::new();
                    for op in ops {
                        match op {
                            Op::Push(id) => {
                                let fresh = !pending.contains_key(&id) && !confirmed.contains(&id);
                                prop_assert_eq!(r.pushed(id, id.to_string().into()), fresh);
                                if fresh {
                                    pending.insert(id, (Instant::now() + FIRST, FIRST));
                                }
                            }
                            Op::Confirm(ids) => {
                                r.confirmed(&ids);
                                for id in ids {
                                    pending.remove(&id);
                                    confirmed.insert(id);
                                }
                            }
                            Op::Wait(secs) => tokio::time::advance(Duration::from_secs(secs)).await,
                            Op::TakeDue => {
                                let now = Instant::now();
                                let got: Vec<String> =
                                    r.take_due().iter().map(|f| f.to_string()).collect();
                                let mut want = Vec::new();
                                for (id, (due, wait)) in pending.iter_mut() {
                                    if *due <= now {
                                        *wait = (*wait * 2).min(MAX);
                                        *due = now + *wait;
                                        want.push(id.to_string());
                                    }
                                }
                                prop_assert_eq!(got, want);
                            }
                        }
                        prop_assert_eq!(r.len(), pending.len());
                        prop_assert_eq!(r.next_due(), pending.values().map(|(due, _)| *due).min());
                    }
                    Ok(())
                })?;
            }
        }
    }
}
