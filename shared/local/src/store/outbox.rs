//! The notification outbox: a run's start and end notifications are
//! written in the same transaction as the status change that causes them
//! ([`enqueue`], called by `update_run`), so a notification is pending
//! exactly when its run is recorded as started or finished, also across a
//! crash. The deliverer ([`crate::notify`]) takes due rows, records each
//! attempt, and schedules the next one.
//!
//! Pruning a run deletes its notifications and their attempts (foreign
//! keys with `ON DELETE CASCADE`).

use crate::Result;
use chrono::{DateTime, TimeZone, Utc};
use crtask_core::domain::model::{Run, RunStatus, Task};
use crtask_core::notify::payload::{phase_of, Phase, RunNotification};
use crtask_core::notify::target::targets;
use crtask_core::notify::{Attempt, DeliveryState, NotificationRecord};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS notifications (
    seq INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    next_ms INTEGER
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (state, next_ms);
CREATE INDEX IF NOT EXISTS notifications_by_run ON notifications (run_id, seq);
CREATE TABLE IF NOT EXISTS notification_attempts (
    notification INTEGER NOT NULL REFERENCES notifications (seq) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    http_status INTEGER,
    error TEXT,
    PRIMARY KEY (notification, number)
);
"#;

/// A notification due for delivery.
#[derive(Debug, Clone)]
pub struct Due {
    /// The delivery id (`n<seq>`).
    pub id: String,
    pub seq: i64,
    pub event: Phase,
    pub url: String,
    /// The signed body, exactly as sent.
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// The delivery id of row `seq`.
pub fn delivery_id(seq: i64) -> String {
    format!("n{seq}")
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// Queues the notifications `run` going from `old` to its status causes,
/// to the server's URLs and its task's, due at `now`; true when any was.
pub(super) fn enqueue(
    tx: &Transaction<'_>,
    old: Option<RunStatus>,
    run: &Run,
    server: &[String],
    now: DateTime<Utc>,
) -> Result<bool> {
    let Some(phase) = phase_of(old, run.status) else {
        return Ok(false);
    };
    let task_urls = match &run.task {
        Some(name) => {
            let body: Option<String> = tx
                .query_row("SELECT body FROM tasks WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            body.and_then(|b| serde_json::from_str::<Task>(&b).ok())
                .map(|t| t.notify)
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let urls = targets(server, &task_urls);
    if urls.is_empty() {
        return Ok(false);
    }
    let body = RunNotification::of(run, phase).to_body();
    let mut st = tx.prepare_cached(
        "INSERT INTO notifications (run_id, event, url, body, state, next_ms)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
    )?;
    for url in urls {
        st.execute(params![run.run_id, phase.as_str(), url, body, ms(now)])?;
    }
    Ok(true)
}

/// Pending notifications due at `now` (oldest first, at most `limit`);
/// each is pushed to `lease_until`, so the next scan does not take it again
/// while it is in flight (and a crash mid-attempt retries it after that).
pub(super) fn take_due(
    c: &mut Connection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Due>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(i64, String, String, String, u32)> = {
        let mut st = tx.prepare_cached(
            "SELECT n.seq, n.event, n.url, n.body,
                    (SELECT COUNT(*) FROM notification_attempts a WHERE a.notification = n.seq)
             FROM notifications n
             WHERE n.state = 'pending' AND n.next_ms <= ?1
             ORDER BY n.next_ms, n.seq LIMIT ?2",
        )?;
        let rows = st
            .query_map(params![ms(now), limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    {
        let mut lease =
            tx.prepare_cached("UPDATE notifications SET next_ms = ?2 WHERE seq = ?1")?;
        for (seq, ..) in &rows {
            lease.execute(params![seq, ms(lease_until)])?;
        }
    }
    tx.commit()?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, event, url, body, attempts)| {
            Some(Due {
                id: delivery_id(seq),
                seq,
                event: Phase::parse(&event)?,
                url,
                body,
                attempts,
            })
        })
        .collect())
}

/// When the next pending notification is due, if any.
pub(super) fn next_due(c: &Connection) -> Result<Option<DateTime<Utc>>> {
    let next: Option<i64> = c.query_row(
        "SELECT MIN(next_ms) FROM notifications WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )?;
    Ok(next.map(at))
}

/// Records attempt `attempt` of notification `seq` and where the delivery
/// stands after it (`next`: when the following attempt is due).
pub(super) fn record_attempt(
    c: &mut Connection,
    seq: i64,
    attempt: &Attempt,
    state: DeliveryState,
    next: Option<DateTime<Utc>>,
) -> Result<()> {
    let tx = c.transaction()?;
    tx.execute(
        "INSERT OR REPLACE INTO notification_attempts (notification, number, at_ms, http_status, error)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            seq,
            attempt.number,
            ms(attempt.time),
            attempt.http_status,
            attempt.error
        ],
    )?;
    tx.execute(
        "UPDATE notifications SET state = ?2, next_ms = ?3 WHERE seq = ?1",
        params![seq, state.as_str(), next.map(ms)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Every notification of `run_id` with its attempts, oldest first.
pub(super) fn of_run(c: &Connection, run_id: &str) -> Result<Vec<NotificationRecord>> {
    let mut st = c.prepare_cached(
        "SELECT seq, event, url, state, next_ms FROM notifications WHERE run_id = ?1 ORDER BY seq",
    )?;
    let rows = st
        .query_map([run_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut attempts = c.prepare_cached(
        "SELECT number, at_ms, http_status, error FROM notification_attempts
         WHERE notification = ?1 ORDER BY number",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (seq, event, url, state, next) in rows {
        let list = attempts
            .query_map([seq], |r| {
                Ok(Attempt {
                    number: r.get(0)?,
                    time: at(r.get(1)?),
                    http_status: r.get(2)?,
                    error: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let (Some(event), Some(state)) = (Phase::parse(&event), DeliveryState::parse(&state))
        else {
            continue;
        };
        out.push(NotificationRecord {
            id: delivery_id(seq),
            run_id: run_id.to_string(),
            event,
            url,
            state,
            next_attempt: next.filter(|_| state == DeliveryState::Pending).map(at),
            attempts: list,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::store::SqliteStore;
    use chrono::{Duration, Utc};
    use crtask_core::domain::model::RunStatus;
    use crtask_core::notify::{Attempt, DeliveryState, Phase};
    use crtask_core::ports::Store;

    fn kinds(list: &[crtask_core::notify::NotificationRecord]) -> Vec<(Phase, String)> {
        list.iter().map(|n| (n.event, n.url.clone())).collect()
    }

    #[tokio::test]
    async fn a_start_and_an_end_are_queued_once_per_url() {
        let store = SqliteStore::in_memory()
            .unwrap()
            .with_notify_urls(vec!["http://a/".into()]);
        let mut task = crtask_testkit::task("app");
        task.notify = vec!["http://b/".into(), "http://a/".into()];
        store.create_task(&task).await.unwrap();
        let mut run = crtask_testkit::run("ca1");
        run.task = Some("app".into());
        store.insert_run(&run).await.unwrap();
        assert!(store.notifications_of_run("ca1").await.unwrap().is_empty());

        for status in [RunStatus::Running, RunStatus::Running] {
            run.status = status;
            store.update_run(&run).await.unwrap();
        }
        for status in [RunStatus::Succeeded, RunStatus::Succeeded] {
            run.status = status;
            store.update_run(&run).await.unwrap();
        }
        let list = store.notifications_of_run("ca1").await.unwrap();
        let a = || "http://a/".to_string();
        let b = || "http://b/".to_string();
        assert_eq!(
            kinds(&list),
            vec![
                (Phase::Started, a()),
                (Phase::Started, b()),
                (Phase::Finished, a()),
                (Phase::Finished, b())
            ]
        );
        assert!(list.iter().all(|n| n.state == DeliveryState::Pending));

        // Taken once, then leased until the lease ends.
        let now = Utc::now() + Duration::seconds(1);
        let lease = now + Duration::seconds(60);
        let due = store.take_due_notifications(now, lease, 10).await.unwrap();
        assert_eq!(due.len(), 4);
        assert_eq!(due[0].attempts, 0);
        assert!(store
            .take_due_notifications(now, lease, 10)
            .await
            .unwrap()
            .is_empty());
        let again = store
            .take_due_notifications(lease, lease + Duration::seconds(60), 10)
            .await
            .unwrap();
        assert_eq!(
            again.len(),
            4,
            "a lease that ran out (a crash) is due again"
        );

        let attempt = Attempt {
            number: 1,
            time: now,
            http_status: Some(503),
            error: None,
        };
        let next = now + Duration::seconds(5);
        store
            .record_notification_attempt(due[0].seq, attempt, DeliveryState::Pending, Some(next))
            .await
            .unwrap();
        let ok = Attempt {
            number: 1,
            time: now,
            http_status: Some(204),
            error: None,
        };
        store
            .record_notification_attempt(due[1].seq, ok, DeliveryState::Delivered, None)
            .await
            .unwrap();
        let list = store.notifications_of_run("ca1").await.unwrap();
        assert_eq!(list[0].attempts[0].http_status, Some(503));
        assert_eq!(list[0].state, DeliveryState::Pending);
        assert_eq!(
            list[0].next_attempt.map(|t| t.timestamp_millis()),
            Some(next.timestamp_millis())
        );
        assert_eq!(list[1].state, DeliveryState::Delivered);
        assert_eq!(list[1].next_attempt, None);
        let due = store.take_due_notifications(next, next, 10).await.unwrap();
        assert_eq!(
            due.iter().find(|d| d.id == list[0].id).map(|d| d.attempts),
            Some(1)
        );
        assert!(
            due.iter().all(|d| d.id != list[1].id),
            "delivered is never taken"
        );
    }

    #[tokio::test]
    async fn nothing_is_queued_without_urls_and_quick_builds_get_the_servers() {
        let store = SqliteStore::in_memory().unwrap();
        let mut run = crtask_testkit::run("ca2");
        run.task = None;
        store.insert_run(&run).await.unwrap();
        run.status = RunStatus::Running;
        store.update_run(&run).await.unwrap();
        assert!(store.notifications_of_run("ca2").await.unwrap().is_empty());

        let store = SqliteStore::in_memory()
            .unwrap()
            .with_notify_urls(vec!["http://a/".into()]);
        store.insert_run(&run).await.unwrap();
        run.status = RunStatus::Canceled;
        store.update_run(&run).await.unwrap();
        let list = store.notifications_of_run("ca2").await.unwrap();
        assert_eq!(
            kinds(&list),
            vec![(Phase::Finished, "http://a/".to_string())]
        );
    }
}
