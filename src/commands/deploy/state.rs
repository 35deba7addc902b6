//! The deployed state and the deploy lock, kept in the artifacts bucket:
//! `state/<stack>/applied.json` (the last applied `uniflow.kdl`, its digest,
//! bundle version and every generated file) and `state/<stack>/lock.json`
//! (taken with a conditional write, so two applies cannot both hold it).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use crate::commands::plan::model::LockInfo;

/// The version of `applied.json`.
const STATE_FORMAT: u32 = 1;

/// What the last successful apply deployed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Applied {
    /// [`STATE_FORMAT`].
    pub format_version: u32,
    /// The main stack.
    pub stack: String,
    /// The config's digest.
    pub config_digest: String,
    /// The bundle format version.
    pub bundle_version: u32,
    /// The `uniflow` that applied it.
    pub uniflow_version: String,
    /// When (RFC 3339, UTC).
    pub applied_at: String,
    /// A random id of this apply: the state object differs after every
    /// apply, even of the same config.
    pub serial: String,
    /// The applied `uniflow.kdl`, verbatim.
    pub source: String,
    /// Every generated file of that build, by path under `build/`.
    pub files: BTreeMap<String, String>,
    /// The function code keys deployed.
    pub code_keys: BTreeMap<String, String>,
}

/// A data store the stack kept when it was deleted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Retained {
    /// The logical id it had in the stack.
    pub logical_id: String,
    /// Its name or ARN.
    pub physical_id: String,
    /// `AWS::S3::Bucket`, `AWS::DynamoDB::Table`, `AWS::KMS::Key`, ...
    pub resource_type: String,
}

/// The state and lock objects of one stack in the artifacts bucket.
#[derive(Debug, Clone)]
pub struct StateStore {
    s3: Client,
    bucket: String,
    stack: String,
}

impl StateStore {
    /// The store of `stack` in `bucket`.
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str, stack: &str) -> StateStore {
        StateStore {
            s3: Client::new(sdk),
            bucket: bucket.to_owned(),
            stack: stack.to_owned(),
        }
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client.
    pub fn s3(&self) -> &Client {
        &self.s3
    }

    fn key(&self, name: &str) -> String {
        format!("state/{}/{name}", self.stack)
    }

    /// Reads the JSON object `name` of this stack: `None` when it does not
    /// exist, else its value and version (the object's version id, or its
    /// ETag where versioning is off). `what` names it in errors ("a uniflow
    /// state file").
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        what: &str,
    ) -> anyhow::Result<Option<(T, String)>> {
        let key = self.key(name);
        let answer = match self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("NoSuchKey") => return Ok(None),
            Err(e) => {
                return Err(anyhow!(
                    "reading s3://{}/{key}: {}",
                    self.bucket,
                    DisplayErrorContext(&e)
                ));
            }
        };
        let version = answer
            .version_id()
            .or(answer.e_tag())
            .unwrap_or_default()
            .to_owned();
        let bytes = answer
            .body
            .collect()
            .await
            .map_err(|e| anyhow!("reading s3://{}/{key}: {e}", self.bucket))?
            .into_bytes();
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("s3://{}/{key} is not {what}: {e}", self.bucket))?;
        Ok(Some((value, version)))
    }

    /// Writes `value` as the JSON object `name` of this stack.
    async fn put_json(&self, name: &str, value: &impl Serialize) -> anyhow::Result<()> {
        let key = self.key(name);
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(serde_json::to_vec_pretty(value)?))
            .content_type("application/json")
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "writing s3://{}/{key}: {}",
                    self.bucket,
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }

    /// The applied state and its version; `None` when nothing is applied.
    pub async fn applied(&self) -> anyhow::Result<Option<(Applied, String)>> {
        let Some((applied, version)) = self
            .get_json::<Applied>("applied.json", "a uniflow state file")
            .await?
        else {
            return Ok(None);
        };
        if applied.format_version != STATE_FORMAT {
            return Err(anyhow!(
                "s3://{}/{} has state format {}, this uniflow reads {STATE_FORMAT}: use the uniflow that applied it",
                self.bucket,
                self.key("applied.json"),
                applied.format_version
            ));
        }
        Ok(Some((applied, version)))
    }

    /// Records a successful apply.
    pub async fn record(&self, applied: &Applied) -> anyhow::Result<()> {
        self.put_json("applied.json", applied).await
    }

    /// Forgets the applied state (after destroy); versions stay in the
    /// bucket's history.
    pub async fn forget(&self) -> anyhow::Result<()> {
        let key = self.key("applied.json");
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "deleting s3://{}/{key}: {}",
                    self.bucket,
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }

    /// Records the data stores a destroy left behind (logical id, physical
    /// id, type), so a later `destroy --delete-data` still finds them.
    pub async fn record_retained(&self, retained: &[Retained]) -> anyhow::Result<()> {
        self.put_json("retained.json", &retained).await
    }

    /// The data stores earlier destroys left behind.
    pub async fn retained(&self) -> anyhow::Result<Vec<Retained>> {
        Ok(self
            .get_json("retained.json", "a list of retained resources")
            .await?
            .map(|(retained, _)| retained)
            .unwrap_or_default())
    }

    /// Who holds the lock, if anyone.
    pub async fn holder(&self) -> anyhow::Result<Option<LockInfo>> {
        Ok(self
            .get_json(
                "lock.json",
                "a uniflow lock; remove it with `uniflow force-unlock` after checking nobody is deploying",
            )
            .await?
            .map(|(info, _)| info))
    }

    /// Takes the lock for `operation`, waiting up to `timeout` for its
    /// holder to release it. The write is conditional (`If-None-Match: *`),
    /// so of two concurrent takers exactly one succeeds.
    pub async fn lock(&self, operation: &str, timeout: Duration) -> anyhow::Result<LockGuard> {
        let key = self.key("lock.json");
        let info = LockInfo {
            id: uuid::Uuid::new_v4().to_string(),
            who: who(),
            operation: operation.to_owned(),
            created: super::now_rfc3339(),
        };
        let body = serde_json::to_vec_pretty(&info)?;
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .content_type("application/json")
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(LockGuard {
                        store: self.clone(),
                        info,
                        released: false,
                    });
                }
                Err(e)
                    if matches!(
                        e.code(),
                        Some("PreconditionFailed" | "ConditionalRequestConflict")
                    ) =>
                {
                    if Instant::now() >= deadline {
                        let holder = self.holder().await.ok().flatten();
                        return Err(anyhow!(locked_message(
                            &self.stack,
                            holder.as_ref(),
                            timeout
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(anyhow!(
                        "taking the deploy lock s3://{}/{key}: {}",
                        self.bucket,
                        DisplayErrorContext(&e)
                    ));
                }
            }
        }
    }

    /// Removes the lock if its id is `id`.
    pub async fn unlock(&self, id: &str) -> anyhow::Result<LockInfo> {
        let Some(holder) = self.holder().await? else {
            return Err(anyhow!("{} is not locked", self.stack));
        };
        if holder.id != id {
            return Err(anyhow!(
                "the lock of {} has id {} (held by {} for {} since {}), not {id}: nothing removed",
                self.stack,
                holder.id,
                holder.who,
                holder.operation,
                holder.created
            ));
        }
        self.delete_lock().await?;
        Ok(holder)
    }

    async fn delete_lock(&self) -> anyhow::Result<()> {
        let key = self.key("lock.json");
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "releasing the deploy lock s3://{}/{key}: {}",
                    self.bucket,
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(())
    }
}

/// The message when the lock is held.
fn locked_message(stack: &str, holder: Option<&LockInfo>, waited: Duration) -> String {
    let waited = if waited.is_zero() {
        String::new()
    } else {
        format!(" (waited {}s)", waited.as_secs())
    };
    match holder {
        Some(h) => format!(
            "{stack} is locked{waited}: {} by {} since {} (lock id {}). Wait for it to finish (or pass --lock-timeout 10m to wait), or, if that run is dead, `uniflow force-unlock {}`",
            h.operation, h.who, h.created, h.id, h.id
        ),
        None => format!("{stack} is locked{waited} by another run; try again"),
    }
}

/// `user@host` for the lock.
fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{user}@{host} (pid {})", std::process::id())
}

/// The held lock; [`LockGuard::release`] gives it back.
#[derive(Debug)]
pub struct LockGuard {
    store: StateStore,
    info: LockInfo,
    released: bool,
}

impl LockGuard {
    /// Releases the lock, if it is still ours.
    pub async fn release(mut self) -> anyhow::Result<()> {
        self.released = true;
        match self.store.holder().await? {
            Some(holder) if holder.id == self.info.id => self.store.delete_lock().await,
            _ => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if !self.released {
            let mut err = std::io::stderr().lock();
            let _ = std::io::Write::write_fmt(
                &mut err,
                format_args!(
                    "warning: the deploy lock {} was not released; after checking nothing runs, `uniflow force-unlock {}`\n",
                    self.info.id, self.info.id
                ),
            );
        }
    }
}
