//! Collapsing several triggers of one task into one run: a settle window
//! over [`Verdict`]s or [`TagUpdate`]s keyed by task (multi-arch pushes,
//! several tags of one push, redeliveries). A pure state machine driven by
//! the caller's clock.
//!
//! The handlers do not use [`Debouncer`] today: they get the same effect
//! from the store, where a later update folds into the task's run that is
//! still queued during the settle window (outcome `debounced`, see
//! [`super::handler::process_update`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::trigger::registry::decide::Verdict;
use crate::trigger::registry::event::TagUpdate;

/// How a later item folds into an earlier one for the same key.
pub trait Settle {
    /// Fold `later` into `self` (both for the same key, inside one window).
    fn settle(&mut self, later: Self);
    /// Whether `other` describes the same change as `self` (a redelivery).
    fn same_change(&self, other: &Self) -> bool;
}

impl Settle for Verdict {
    /// A trigger wins over any other verdict. Two triggers of the same image
    /// keep the first old digest and take the newest digest; a trigger of
    /// another image replaces the earlier one (the run records the latest).
    fn settle(&mut self, later: Self) {
        match (&mut *self, later) {
            (
                Verdict::Trigger {
                    image, new_digest, ..
                },
                Verdict::Trigger {
                    image: later_image,
                    new_digest: later_new,
                    old_digest: later_old,
                    task,
                },
            ) => {
                if *image == later_image {
                    *new_digest = later_new;
                } else {
                    *self = Verdict::Trigger {
                        task,
                        image: later_image,
                        old_digest: later_old,
                        new_digest: later_new,
                    };
                }
            }
            (Verdict::Trigger { .. }, _) => {}
            (_, later) => *self = later,
        }
    }

    fn same_change(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Verdict::Trigger {
                    task: a,
                    image: ai,
                    new_digest: an,
                    ..
                },
                Verdict::Trigger {
                    task: b,
                    image: bi,
                    new_digest: bn,
                    ..
                },
            ) => a == b && ai == bi && an == bn,
            _ => self == other,
        }
    }
}

impl Settle for TagUpdate {
    /// The later update replaces the earlier one.
    fn settle(&mut self, later: Self) {
        *self = later;
    }

    fn same_change(&self, other: &Self) -> bool {
        self.image == other.image && self.digest == other.digest
    }
}

/// What [`Debouncer::offer`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Offer {
    /// First item for the key: a window opened.
    New,
    /// Folded into the item already waiting for the key ("debounced").
    Merged,
    /// The same change was released for this key shortly before (a
    /// redelivery): dropped.
    Duplicate,
}

#[derive(Debug, Clone)]
struct Waiting<T> {
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    item: T,
}

/// Settle window: several items for one key (a task) within `window` of each
/// other collapse into one, released by [`Debouncer::due`].
///
/// A pure state machine driven by the caller's clock. The window slides: each
/// item extends the wait until `window` after the latest one, but never past
/// `max_wait` after the first (default 5 × `window`), so a steady stream of
/// pushes cannot postpone a rebuild for ever. After release, the same change
/// offered again within `memory` (default 10 minutes) is a
/// [`Offer::Duplicate`]: registries and EventBridge deliver at least once.
/// The memory lives in this process only; a durable store should also check
/// for an existing run with the same trigger.
#[derive(Debug, Clone)]
pub struct Debouncer<T> {
    window: Duration,
    max_wait: Duration,
    memory: Duration,
    waiting: BTreeMap<String, Waiting<T>>,
    released: BTreeMap<String, (DateTime<Utc>, T)>,
}

impl<T: Settle + Clone> Debouncer<T> {
    /// A debouncer with settle `window` (negative counts as zero), maximum
    /// wait 5 × `window` and a 10-minute redelivery memory.
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::zero());
        Debouncer {
            window,
            max_wait: window * 5,
            memory: Duration::minutes(10),
            waiting: BTreeMap::new(),
            released: BTreeMap::new(),
        }
    }

    /// Sets the longest wait after a key's first item (at least the window).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait.max(self.window);
        self
    }

    /// Sets how long a released change is remembered for duplicate detection
    /// (zero turns it off).
    pub fn with_memory(mut self, memory: Duration) -> Self {
        self.memory = memory.max(Duration::zero());
        self
    }

    /// Offers an item for `key` at `now`.
    pub fn offer(&mut self, key: &str, now: DateTime<Utc>, item: T) -> Offer {
        if let Some(w) = self.waiting.get_mut(key) {
            w.item.settle(item);
            w.last = w.last.max(now);
            return Offer::Merged;
        }
        if let Some((at, prev)) = self.released.get(key) {
            if now - *at <= self.memory && prev.same_change(&item) {
                return Offer::Duplicate;
            }
        }
        self.waiting.insert(
            key.to_string(),
            Waiting {
                first: now,
                last: now,
                item,
            },
        );
        Offer::New
    }

    fn deadline(&self, w: &Waiting<T>) -> DateTime<Utc> {
        (w.last + self.window).min(w.first + self.max_wait)
    }

    /// Releases every key whose window has passed at `now`, in key order,
    /// and forgets released changes older than the memory.
    pub fn due(&mut self, now: DateTime<Utc>) -> Vec<(String, T)> {
        let ready: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, w)| self.deadline(w) <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for key in ready {
            if let Some(w) = self.waiting.remove(&key) {
                self.released.insert(key.clone(), (now, w.item.clone()));
                out.push((key, w.item));
            }
        }
        let memory = self.memory;
        self.released.retain(|_, (at, _)| now - *at <= memory);
        out
    }

    /// When the next key becomes due, if any is waiting (for the caller's
    /// sleep).
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.waiting.values().map(|w| self.deadline(w)).min()
    }

    /// Number of keys waiting.
    pub fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether `key` has an item waiting.
    pub fn is_waiting(&self, key: &str) -> bool {
        self.waiting.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trigger::registry::test_support::{trig, update, D1, D2, D3};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn debouncer_merges_arch_pushes_and_releases_after_window() {
        let mut d: Debouncer<Verdict> = Debouncer::new(Duration::seconds(5));
        let img = "r.io/base:1";
        // three per-architecture events and the index, 1 s apart
        assert_eq!(
            d.offer("app", at(0), trig("app", img, Some(D1), D2)),
            Offer::New
        );
        assert_eq!(
            d.offer("app", at(1), trig("app", img, Some(D1), D3)),
            Offer::Merged
        );
        assert_eq!(
            d.offer("web", at(1), trig("web", img, Some(D1), D2)),
            Offer::New
        );
        assert_eq!(
            d.offer("app", at(2), trig("app", img, Some(D1), D2)),
            Offer::Merged
        );
        assert_eq!(d.waiting_len(), 2);
        assert!(d.is_waiting("app"));
        assert_eq!(d.next_deadline(), Some(at(6)));
        assert!(d.due(at(5)).is_empty());
        // web's window (1 + 5) and app's (2 + 5) end in order
        assert_eq!(
            d.due(at(6)),
            vec![("web".to_string(), trig("web", img, Some(D1), D2))]
        );
        assert_eq!(
            d.due(at(7)),
            vec![("app".to_string(), trig("app", img, Some(D1), D2))]
        );
        assert_eq!(d.waiting_len(), 0);
        assert_eq!(d.next_deadline(), None);
        // a redelivery of the released change is a duplicate ...
        assert_eq!(
            d.offer("app", at(30), trig("app", img, Some(D1), D2)),
            Offer::Duplicate
        );
        // ... a new digest is not
        assert_eq!(
            d.offer("app", at(31), trig("app", img, Some(D2), D3)),
            Offer::New
        );
        assert_eq!(d.due(at(36)).len(), 1);
        // memory expires
        let mut d: Debouncer<Verdict> =
            Debouncer::new(Duration::seconds(5)).with_memory(Duration::seconds(60));
        d.offer("app", at(0), trig("app", img, Some(D1), D2));
        assert_eq!(d.due(at(5)).len(), 1);
        assert_eq!(
            d.offer("app", at(50), trig("app", img, Some(D1), D2)),
            Offer::Duplicate
        );
        assert_eq!(d.due(at(200)).len(), 0);
        assert_eq!(
            d.offer("app", at(200), trig("app", img, Some(D1), D2)),
            Offer::New
        );
    }

    #[test]
    fn debouncer_max_wait_and_settle_rules() {
        let img = "r.io/base:1";
        let mut d: Debouncer<Verdict> =
            Debouncer::new(Duration::seconds(2)).with_max_wait(Duration::seconds(5));
        d.offer("app", at(0), trig("app", img, Some(D1), D2));
        for s in 1..=6 {
            // a push every second keeps extending the window, up to max wait
            let released = d.due(at(s));
            if s < 5 {
                assert!(released.is_empty(), "at {s}");
                assert_eq!(
                    d.offer("app", at(s), trig("app", img, Some(D1), D2)),
                    Offer::Merged
                );
            } else if s == 5 {
                assert_eq!(released.len(), 1);
            }
        }
        // zero window releases at once
        let mut d: Debouncer<TagUpdate> = Debouncer::new(Duration::zero());
        d.offer("k", at(0), update(img, D1));
        assert_eq!(d.due(at(0)), vec![("k".to_string(), update(img, D1))]);
        // settle: trigger beats others; another image replaces
        let mut v = Verdict::TriggerDisabled { task: "a".into() };
        v.settle(trig("a", img, Some(D1), D2));
        assert_eq!(v, trig("a", img, Some(D1), D2));
        v.settle(Verdict::Unchanged {
            task: "a".into(),
            image: img.into(),
            digest: D2.into(),
        });
        assert_eq!(v, trig("a", img, Some(D1), D2));
        v.settle(trig("a", img, Some(D2), D3));
        assert_eq!(v, trig("a", img, Some(D1), D3));
        v.settle(trig("a", "r.io/golang:1", Some(D2), D1));
        assert_eq!(v, trig("a", "r.io/golang:1", Some(D2), D1));
        let mut u = update(img, D1);
        u.settle(update(img, D2));
        assert_eq!(u, update(img, D2));
        assert!(u.same_change(&update(img, D2)));
        assert!(!u.same_change(&update(img, D1)));
    }
}
