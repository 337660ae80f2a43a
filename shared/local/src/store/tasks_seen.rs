//! The tasks as the intake writer decides deliveries against them.
//!
//! The writer reads the tasks inside its batch's write transaction, so a
//! delivery is decided against exactly the tasks committed when it is
//! recorded (no task change can slip between the read and the write: the
//! transaction is the database's only writer). Parsing every task for every
//! batch would still cost more than the batch's own writes, so the parsed
//! tasks are kept while `tasks_version` stands still: a counter in `meta`
//! bumped by triggers on every insert, update and delete of `tasks`, by any
//! connection of any process (the triggers live in the database file).

use super::from_json;
use crate::Result;
use crtask_core::domain::model::Task;
use rusqlite::Connection;

/// Creates the counter's triggers (idempotent; part of the store's schema).
/// The counter row itself is created with the other `meta` rows.
pub(super) const SCHEMA: &str = r#"
CREATE TRIGGER IF NOT EXISTS tasks_version_on_insert AFTER INSERT ON tasks BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'tasks_version';
END;
CREATE TRIGGER IF NOT EXISTS tasks_version_on_update AFTER UPDATE ON tasks BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'tasks_version';
END;
CREATE TRIGGER IF NOT EXISTS tasks_version_on_delete AFTER DELETE ON tasks BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'tasks_version';
END;
"#;

/// The parsed tasks and the counter value they were read at.
#[derive(Default)]
pub(super) struct TasksSeen {
    version: Option<String>,
    tasks: Vec<Task>,
    /// Checked against the counter in the current transaction.
    checked: bool,
    /// Times the tasks were read and parsed, for the tests.
    #[cfg(test)]
    pub(super) reads: usize,
}

impl TasksSeen {
    /// A new transaction begins: the counter must be read again.
    pub(super) fn new_transaction(&mut self) {
        self.checked = false;
    }

    /// Every task, as committed when the current transaction began (read at
    /// most once per transaction, parsed only when the counter moved).
    pub(super) fn get(&mut self, c: &Connection) -> Result<&[Task]> {
        if !self.checked {
            let version: String = c
                .prepare_cached("SELECT value FROM meta WHERE key = 'tasks_version'")?
                .query_row([], |r| r.get(0))?;
            if self.version.as_deref() != Some(version.as_str()) {
                let mut st = c.prepare_cached("SELECT body FROM tasks ORDER BY name")?;
                let bodies = st
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                self.tasks = bodies.iter().map(|b| from_json(b)).collect::<Result<_>>()?;
                self.version = Some(version);
                #[cfg(test)]
                {
                    self.reads += 1;
                }
            }
            self.checked = true;
        }
        Ok(&self.tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use crtask_core::ports::Store;

    fn task(name: &str, context: &str) -> Task {
        Task {
            context: context.into(),
            ..crtask_testkit::model::task(name)
        }
    }

    fn names(seen: &mut TasksSeen, c: &Connection) -> Vec<String> {
        seen.new_transaction();
        seen.get(c)
            .unwrap()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    }

    /// Every change to the tasks, through the store or straight SQL on
    /// another connection to the same file (another process), is seen; no
    /// change means no read.
    #[tokio::test]
    async fn tasks_are_read_again_exactly_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crtask.db");
        let store = SqliteStore::open(&path).unwrap();
        let writer = Connection::open(&path).unwrap();
        let mut seen = TasksSeen::default();
        assert!(names(&mut seen, &writer).is_empty());
        assert_eq!(seen.reads, 1);
        assert!(names(&mut seen, &writer).is_empty());
        assert_eq!(seen.reads, 1, "unchanged tasks are not read again");

        store
            .create_task(&task("a", "https://example.com/a.git"))
            .await
            .unwrap();
        assert_eq!(names(&mut seen, &writer), ["a"]);
        assert_eq!(seen.reads, 2);

        let mut changed = task("a", "https://example.com/other.git");
        changed.branch = Some("dev".into());
        store.update_task(&changed).await.unwrap();
        seen.new_transaction();
        assert_eq!(seen.get(&writer).unwrap()[0].branch.as_deref(), Some("dev"));
        assert_eq!(seen.reads, 3);

        // Another process writing the file directly.
        let other = Connection::open(&path).unwrap();
        let body = serde_json::to_string(&task("b", "https://example.com/b.git")).unwrap();
        other
            .execute(
                "INSERT INTO tasks (name, body) VALUES ('b', ?1)",
                rusqlite::params![body],
            )
            .unwrap();
        assert_eq!(names(&mut seen, &writer), ["a", "b"]);
        other
            .execute("DELETE FROM tasks WHERE name = 'a'", [])
            .unwrap();
        assert_eq!(names(&mut seen, &writer), ["b"]);
        assert!(store.delete_task("b").await.unwrap());
        assert!(names(&mut seen, &writer).is_empty());
        assert_eq!(seen.reads, 6);

        // Within one transaction the counter is read once: no re-read even
        // though it moved (the writer's transaction sees no other writer).
        let _ = seen.get(&writer).unwrap();
        store
            .create_task(&task("c", "https://example.com/c.git"))
            .await
            .unwrap();
        assert!(seen.get(&writer).unwrap().is_empty());
        assert_eq!(names(&mut seen, &writer), ["c"]);
    }
}
