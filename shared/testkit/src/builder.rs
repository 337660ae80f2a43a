//! [`RecordingBuilder`]: a [`Builder`] that runs nothing and remembers what
//! it was asked to do.

use async_trait::async_trait;
use crtask_core::ports::Builder;
use crtask_core::Result;
use std::sync::Mutex;

/// Records dispatched and canceled run ids; `cancel` answers `false` (the
/// run was not running here).
#[derive(Debug, Default)]
pub struct RecordingBuilder {
    dispatched: Mutex<Vec<String>>,
    canceled: Mutex<Vec<String>>,
}

impl RecordingBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Run ids handed to [`Builder::dispatch`], in order.
    pub fn dispatched(&self) -> Vec<String> {
        lock(&self.dispatched).clone()
    }

    /// Run ids handed to [`Builder::cancel`], in order.
    pub fn canceled(&self) -> Vec<String> {
        lock(&self.canceled).clone()
    }
}

fn lock(m: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl Builder for RecordingBuilder {
    async fn dispatch(&self, run_id: &str) -> Result<()> {
        lock(&self.dispatched).push(run_id.to_string());
        Ok(())
    }

    async fn cancel(&self, run_id: &str) -> Result<bool> {
        lock(&self.canceled).push(run_id.to_string());
        Ok(false)
    }
}
