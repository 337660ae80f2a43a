//! [`MemoryStore`]: the [`Store`] port in memory, with the SQLite store's
//! semantics (`crtask_local::store::SqliteStore`), for handler tests that
//! need neither a database file nor moto.
//!
//! What it keeps from the SQLite store:
//! - records go through their JSON form, as every real store keeps them, so
//!   what comes back is what a real store gives back (times to the
//!   millisecond, skipped fields dropped);
//! - runs are ordered by their run-id counter (`ca9` before `ca10`), ids
//!   that are not of that form after every other run; the run-id and event-id
//!   counters start at 1 (`ca1`, `ev1`) and never go back;
//! - a run blocks another with its dedupe key while it is queued, started,
//!   running or succeeded; batches dedupe against runs earlier in the batch;
//! - events are replaced by id and keep their place; a delivery is found
//!   by its first event;
//! - the dependency index is per (task, image); deleting a task drops its
//!   dependencies and timer state, not its runs.
//!
//! Where the SQLite store fails on a duplicate run id with a database error,
//! this one answers [`Error::Conflict`] as the DynamoDB store does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use crtask_core::domain::model::{
    BaseDependency, EventRecord, EventSource, Run, RunFilter, RunStatus, Task,
};
use crtask_core::domain::{runid, time};
use crtask_core::ports::{DeliveryRecorded, DeliveryWrite, Store, Summarize};
use crtask_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The store in memory. `Default` is an empty store with run prefix `ca`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Tasks by name (listed in name order, as SQLite's `ORDER BY name`).
    tasks: BTreeMap<String, Task>,
    /// Runs by sequence number: the run id's counter, or the next free one.
    runs: BTreeMap<u64, Run>,
    run_counter: u64,
    /// Events by sequence number, in the order first recorded.
    events: BTreeMap<u64, EventRecord>,
    event_counter: u64,
    /// (task, image) -> dependency.
    dependencies: BTreeMap<(String, String), BaseDependency>,
    /// (task, timer) -> last fired, as SQLite keeps it (RFC 3339, ms).
    timers: BTreeMap<(String, String), String>,
    /// Lease name -> (holder, until).
    leases: BTreeMap<String, (String, DateTime<Utc>)>,
}

/// JSON there and back: what a store that keeps records as JSON returns.
fn stored<T: Serialize + DeserializeOwned>(v: &T) -> Result<T> {
    serde_json::to_value(v)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Store(format!("record does not round-trip through JSON: {e}")))
}

/// Queued, started, running and succeeded runs block their dedupe key.
fn blocks(status: RunStatus) -> bool {
    matches!(
        status,
        RunStatus::Queued | RunStatus::Started | RunStatus::Running | RunStatus::Succeeded
    )
}

impl State {
    fn seq_of(&self, run_id: &str) -> u64 {
        runid::parse(run_id)
            .map(|(_, n)| n)
            .unwrap_or_else(|| self.runs.keys().next_back().map_or(1, |k| k + 1))
    }

    fn insert_run(&mut self, run: &Run) -> Result<()> {
        let seq = self.seq_of(&run.run_id);
        if self.runs.contains_key(&seq) || self.run(&run.run_id).is_some() {
            return Err(Error::Conflict {
                kind: "run",
                name: run.run_id.clone(),
            });
        }
        self.runs.insert(seq, stored(run)?);
        Ok(())
    }

    fn run(&self, run_id: &str) -> Option<(&u64, &Run)> {
        self.runs.iter().find(|(_, r)| r.run_id == run_id)
    }

    /// The newest run that blocks `run`'s dedupe key.
    fn blocking(&self, run: &Run) -> Option<Run> {
        let key = run.dedupe_key.as_deref()?;
        self.runs
            .values()
            .rev()
            .find(|r| r.dedupe_key.as_deref() == Some(key) && blocks(r.status))
            .cloned()
    }

    fn insert_deduped(&mut self, run: &Run) -> Result<Option<Run>> {
        if let Some(existing) = self.blocking(run) {
            return Ok(Some(existing));
        }
        self.insert_run(run)?;
        Ok(None)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Store("memory store lock poisoned".into()))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_task(&self, task: &Task) -> Result<()> {
        let mut st = self.lock()?;
        if st.tasks.contains_key(&task.name) {
            return Err(Error::Conflict {
                kind: "task",
                name: task.name.clone(),
            });
        }
        st.tasks.insert(task.name.clone(), stored(task)?);
        Ok(())
    }

    async fn update_task(&self, task: &Task) -> Result<()> {
        let mut st = self.lock()?;
        match st.tasks.get_mut(&task.name) {
            Some(t) => {
                *t = stored(task)?;
                Ok(())
            }
            None => Err(Error::not_found("task", &task.name)),
        }
    }

    async fn get_task(&self, name: &str) -> Result<Option<Task>> {
        Ok(self.lock()?.tasks.get(name).cloned())
    }

    async fn list_tasks(&self) -> Result<Vec<Task>> {
        Ok(self.lock()?.tasks.values().cloned().collect())
    }

    async fn delete_task(&self, name: &str) -> Result<bool> {
        let mut st = self.lock()?;
        let existed = st.tasks.remove(name).is_some();
        st.dependencies.retain(|(t, _), _| t != name);
        st.timers.retain(|(t, _), _| t != name);
        Ok(existed)
    }

    async fn next_run_id(&self) -> Result<String> {
        let mut st = self.lock()?;
        st.run_counter += 1;
        Ok(runid::format(runid::DEFAULT_PREFIX, st.run_counter))
    }

    async fn next_run_ids(&self, n: usize) -> Result<Vec<String>> {
        let mut st = self.lock()?;
        let first = st.run_counter + 1;
        st.run_counter += n as u64;
        Ok((first..=st.run_counter)
            .map(|i| runid::format(runid::DEFAULT_PREFIX, i))
            .collect())
    }

    async fn insert_run(&self, run: &Run) -> Result<()> {
        self.lock()?.insert_run(run)
    }

    async fn insert_run_deduped(&self, run: &Run) -> Result<Option<Run>> {
        self.lock()?.insert_deduped(run)
    }

    async fn insert_runs_deduped(&self, runs: &[Run]) -> Result<Vec<Option<Run>>> {
        let mut st = self.lock()?;
        // One transaction: nothing is kept when one insert fails.
        let before = st.runs.clone();
        let out: Result<Vec<_>> = runs.iter().map(|r| st.insert_deduped(r)).collect();
        if out.is_err() {
            st.runs = before;
        }
        out
    }

    async fn update_run(&self, run: &Run) -> Result<()> {
        let mut st = self.lock()?;
        let Some((&seq, _)) = st.run(&run.run_id) else {
            return Err(Error::not_found("run", &run.run_id));
        };
        st.runs.insert(seq, stored(run)?);
        Ok(())
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<Run>> {
        Ok(self.lock()?.run(run_id).map(|(_, r)| r.clone()))
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>> {
        let st = self.lock()?;
        Ok(st
            .runs
            .values()
            .rev()
            .filter(|r| filter.task.is_none() || r.task == filter.task)
            .filter(|r| filter.status.is_none_or(|s| r.status == s))
            .take(filter.top.unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn runs_in_status(&self, statuses: &[RunStatus]) -> Result<Vec<Run>> {
        let st = self.lock()?;
        let mut out: Vec<Run> = statuses
            .iter()
            .flat_map(|s| st.runs.values().filter(move |r| r.status == *s))
            .cloned()
            .collect();
        out.sort_by_key(|r| runid::sort_key(&r.run_id));
        Ok(out)
    }

    async fn last_succeeded_runs(&self, tasks: &[String]) -> Result<Vec<Run>> {
        let st = self.lock()?;
        let mut last: BTreeMap<u64, &Run> = BTreeMap::new();
        for task in tasks {
            let newest = st.runs.iter().rev().find(|(_, r)| {
                r.status == RunStatus::Succeeded && r.task.as_deref() == Some(task.as_str())
            });
            if let Some((seq, r)) = newest {
                last.insert(*seq, r);
            }
        }
        Ok(last.into_values().cloned().collect())
    }

    async fn record_event(&self, event: &EventRecord) -> Result<()> {
        let mut st = self.lock()?;
        let event = stored(event)?;
        let seq = st
            .events
            .iter()
            .find(|(_, e)| e.id == event.id)
            .map(|(s, _)| *s)
            .unwrap_or_else(|| st.events.keys().next_back().map_or(1, |k| k + 1));
        st.events.insert(seq, event);
        Ok(())
    }

    async fn find_delivery(
        &self,
        source: EventSource,
        delivery_id: &str,
    ) -> Result<Option<EventRecord>> {
        Ok(self
            .lock()?
            .events
            .values()
            .find(|e| e.source == source && e.delivery_id.as_deref() == Some(delivery_id))
            .cloned())
    }

    async fn record_delivery(
        &self,
        write: DeliveryWrite,
        summarize: Summarize,
    ) -> Result<DeliveryRecorded> {
        // One lock for the whole delivery: the transaction.
        let mut st = self.lock()?;
        if let Some(d) = write.delivery_id.as_deref() {
            let first = st
                .events
                .values()
                .find(|e| e.source == write.source && e.delivery_id.as_deref() == Some(d));
            if let Some(first) = first {
                return Ok(DeliveryRecorded::Seen(first.clone()));
            }
        }
        let before = (st.runs.clone(), st.run_counter);
        let mut runs = write.runs;
        for run in &mut runs {
            st.run_counter += 1;
            run.run_id = runid::format(runid::DEFAULT_PREFIX, st.run_counter);
        }
        let mut blocked = Vec::with_capacity(runs.len());
        for run in &runs {
            match st.insert_deduped(run) {
                Ok(b) => blocked.push(b),
                Err(e) => {
                    (st.runs, st.run_counter) = before;
                    return Err(e);
                }
            }
        }
        let summary = summarize(&runs, &blocked);
        st.event_counter += 1;
        let event = EventRecord {
            id: format!("ev{}", st.event_counter),
            source: write.source,
            delivery_id: write.delivery_id,
            received_at: write.received_at,
            outcome: summary.outcome,
            reason: summary.reason,
            runs: summary.runs,
            detail: write.detail,
        };
        let seq = st.events.keys().next_back().map_or(1, |k| k + 1);
        // Kept in its JSON form; answered as given, as the SQLite store does.
        st.events.insert(seq, stored(&event)?);
        let new_runs = runs
            .into_iter()
            .zip(&blocked)
            .filter(|(_, b)| b.is_none())
            .map(|(r, _)| r)
            .collect();
        Ok(DeliveryRecorded::New { event, new_runs })
    }

    async fn list_events(
        &self,
        source: Option<EventSource>,
        top: usize,
    ) -> Result<Vec<EventRecord>> {
        Ok(self
            .lock()?
            .events
            .values()
            .rev()
            .filter(|e| source.is_none_or(|s| e.source == s))
            .take(top)
            .cloned()
            .collect())
    }

    async fn next_event_id(&self) -> Result<String> {
        let mut st = self.lock()?;
        st.event_counter += 1;
        Ok(format!("ev{}", st.event_counter))
    }

    async fn prune_before(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<crtask_core::run::retention::Pruned> {
        // Compared as SQLite compares them: RFC 3339 text at milliseconds.
        let cutoff = time::rfc3339(cutoff);
        let older = |t: DateTime<Utc>| time::rfc3339(t) < cutoff;
        let mut st = self.lock()?;
        let before = st.events.len();
        st.events.retain(|_, e| !older(e.received_at));
        let events = (before - st.events.len()) as u64;
        let mut latest: BTreeMap<String, u64> = BTreeMap::new();
        for (seq, r) in &st.runs {
            if let Some(t) = &r.task {
                latest.insert(t.clone(), *seq);
            }
        }
        let mut runs = Vec::new();
        st.runs.retain(|seq, r| {
            let is_latest = r.task.as_ref().is_some_and(|t| latest.get(t) == Some(seq));
            let prune = r.status.is_terminal() && r.finish_time.is_some_and(older) && !is_latest;
            if prune {
                runs.push(r.run_id.clone());
            }
            !prune
        });
        Ok(crtask_core::run::retention::Pruned { events, runs })
    }

    async fn set_dependencies(&self, task: &str, deps: &[BaseDependency]) -> Result<()> {
        let mut st = self.lock()?;
        st.dependencies.retain(|(t, _), _| t != task);
        for d in deps {
            st.dependencies
                .insert((task.to_string(), d.image.clone()), d.clone());
        }
        Ok(())
    }

    async fn dependencies_of(&self, task: &str) -> Result<Vec<BaseDependency>> {
        Ok(self
            .lock()?
            .dependencies
            .iter()
            .filter(|((t, _), _)| t == task)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn dependents_of(&self, image: &str) -> Result<Vec<(String, BaseDependency)>> {
        Ok(self
            .lock()?
            .dependencies
            .iter()
            .filter(|((_, i), _)| i == image)
            .map(|((t, _), d)| (t.clone(), d.clone()))
            .collect())
    }

    async fn tracked_images(&self) -> Result<Vec<String>> {
        let st = self.lock()?;
        let mut images: Vec<String> = st.dependencies.keys().map(|(_, i)| i.clone()).collect();
        images.sort();
        images.dedup();
        Ok(images)
    }

    async fn timer_last_fired(&self, task: &str, timer: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self
            .lock()?
            .timers
            .get(&(task.to_string(), timer.to_string()))
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc)))
    }

    async fn set_timer_last_fired(&self, task: &str, timer: &str, t: DateTime<Utc>) -> Result<()> {
        self.lock()?
            .timers
            .insert((task.to_string(), timer.to_string()), time::rfc3339(t));
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(drop)
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let mut st = self.lock()?;
        let free = st
            .leases
            .get(name)
            .is_none_or(|(h, u)| *u <= now || h == holder);
        if free {
            st.leases
                .insert(name.to_string(), (holder.to_string(), until));
        }
        Ok(free)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut st = self.lock()?;
        if st.leases.get(name).is_some_and(|(h, _)| h == holder) {
            st.leases.remove(name);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunBuilder;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn a_run_id_is_inserted_once_and_a_failed_batch_keeps_nothing() {
        block_on(async {
            let s = MemoryStore::new();
            let r = RunBuilder::new("ca1").build();
            s.insert_run(&r).await.unwrap();
            let e = s.insert_run(&r).await.unwrap_err();
            assert!(matches!(e, Error::Conflict { kind: "run", .. }), "{e}");
            // Same counter, other prefix: the same place in the order.
            assert!(s.insert_run(&RunBuilder::new("cb1").build()).await.is_err());
            let batch = [
                RunBuilder::new("ca2").dedupe(Some("a")).build(),
                RunBuilder::new("ca1").dedupe(Some("b")).build(),
            ];
            assert!(s.insert_runs_deduped(&batch).await.is_err());
            assert_eq!(s.get_run("ca2").await.unwrap(), None);
        });
    }
}
