//! S3: quick-build context tarballs (`contexts/<id>.tar.gz`) and run logs
//! (`logs/<run-id>.log`) and executor results (`logs/<run-id>.result.json`)
//! in one bucket.

use crate::config::Lazy;
use crate::error::{Error, Result};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

/// The object key of an uploaded context.
pub fn context_key(id: &str) -> String {
    format!("contexts/{id}.tar.gz")
}

/// The object key of a run's log.
pub fn log_key(run_id: &str) -> String {
    format!("logs/{run_id}.log")
}

/// The object key of a run's executor result (`crtask exec`'s report,
/// uploaded by the buildspec's `post_build`).
pub fn result_key(run_id: &str) -> String {
    format!("logs/{run_id}.result.json")
}

/// The object key of one build's executor result in a multi-platform
/// run (`part`: [`crtask_core::build::fanout::result_part`]).
pub fn part_result_key(run_id: &str, part: &str) -> String {
    format!("logs/{run_id}.{part}.result.json")
}

/// Contexts and logs in one bucket. Cheap to clone.
#[derive(Clone)]
pub struct S3Contexts {
    client: Lazy<Client>,
    bucket: String,
}

impl S3Contexts {
    /// Build the client with [`crate::config::s3`].
    pub fn new(client: impl Into<Lazy<Client>>, bucket: impl Into<String>) -> Self {
        S3Contexts {
            client: client.into(),
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Stores a context tarball (gzip-compressed tar) under `id`.
    pub async fn put_context(&self, id: &str, tar_gz: Vec<u8>) -> Result<()> {
        self.put(&context_key(id), tar_gz, "application/gzip").await
    }

    /// The context tarball `id`; `None` when there is none.
    pub async fn get_context(&self, id: &str) -> Result<Option<Vec<u8>>> {
        self.get(&context_key(id), None).await
    }

    /// Stores (replaces) a run's log.
    pub async fn put_log(&self, run_id: &str, log: Vec<u8>) -> Result<()> {
        self.put(&log_key(run_id), log, "text/plain; charset=utf-8")
            .await
    }

    /// A run's log from byte `offset` on (for following); `None` when the
    /// run has no log yet. An offset at or past the end gives an empty log.
    pub async fn get_log(&self, run_id: &str, offset: u64) -> Result<Option<Vec<u8>>> {
        self.get(&log_key(run_id), (offset > 0).then_some(offset))
            .await
    }

    /// A run's executor result as stored; `None` when there is none.
    pub async fn get_result(&self, run_id: &str) -> Result<Option<Vec<u8>>> {
        self.get(&result_key(run_id), None).await
    }

    /// One build's executor result of a multi-platform run; `None` when
    /// there is none.
    pub async fn get_part_result(&self, run_id: &str, part: &str) -> Result<Option<Vec<u8>>> {
        self.get(&part_result_key(run_id, part), None).await
    }

    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| Error::s3("PutObject", key, e))?;
        Ok(())
    }

    async fn get(&self, key: &str, offset: Option<u64>) -> Result<Option<Vec<u8>>> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(o) = offset {
            req = req.range(format!("bytes={o}-"));
        }
        let out = match req.send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            // Range past the end of the object: nothing new.
            Err(e)
                if offset.is_some()
                    && e.raw_response().is_some_and(|r| r.status().as_u16() == 416) =>
            {
                return Ok(Some(Vec::new()))
            }
            Err(e) => return Err(Error::s3("GetObject", key, e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::s3("GetObject", key, e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }
}
