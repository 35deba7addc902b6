//! The management API of `uniflow dev`: its router, and `DATA/dev.json`,
//! where the running server leaves its URL and its token for `uniflow
//! profiles` (and for people with curl).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use serde::{Deserialize, Serialize};
use uniflow_runtime::embedded::profiles::EmbeddedProfiles;
use uniflow_runtime::embedded::queues::EmbeddedQueues;
use uniflow_runtime::manage::{self, Auth};
use uniflow_schemas::Bundle;

/// What `DATA/dev.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevFile {
    /// `http://127.0.0.1:PORT`, without the `/api/v1` prefix.
    pub api: String,
    /// The bearer token of the management API.
    pub token: String,
}

/// `DATA/dev.json`.
pub fn dev_file(data: &Path) -> PathBuf {
    data.join("dev.json")
}

/// The management API over `store` and `queues`, open to requests
/// carrying `token`.
pub fn router(
    store: Arc<EmbeddedProfiles>,
    queues: EmbeddedQueues,
    bundle: Arc<Bundle>,
    token: &str,
) -> Router {
    manage::router(
        store,
        Some(Arc::new(queues)),
        bundle,
        Auth::Bearer(token.to_owned()),
    )
}

/// The data directory's token: the one in `dev.json` when there is one, so
/// it stays the same across restarts, else a new random one (32 hex digits).
pub fn token(data: &Path) -> String {
    std::fs::read(dev_file(data))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<DevFile>(&bytes).ok())
        .map(|f| f.token)
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Writes `dev.json` for the server listening on `addr`, readable by its
/// owner only (it holds the token).
pub fn write(data: &Path, addr: &SocketAddr, token: &str) -> anyhow::Result<()> {
    let doc = DevFile {
        api: format!("http://{addr}"),
        token: token.to_owned(),
    };
    write_private(
        &dev_file(data),
        &(serde_json::to_string_pretty(&doc)? + "\n"),
    )
}

/// Writes `text` to `path` atomically (a synced temporary file, renamed),
/// readable by its owner only.
pub fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    // The mode applies only when the file is created: set it in case an
    // older .tmp was left behind.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", tmp.display()))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_kept_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = token(dir.path());
        assert_eq!(first.len(), 32);
        assert_ne!(token(dir.path()), first, "nothing kept yet");
        let addr: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        write(dir.path(), &addr, &first).unwrap();
        assert_eq!(token(dir.path()), first);
        let doc: DevFile =
            serde_json::from_slice(&std::fs::read(dev_file(dir.path())).unwrap()).unwrap();
        assert_eq!(doc.api, "http://127.0.0.1:8088");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dev_file(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A damaged file gets a new token rather than stopping `uniflow dev`.
        std::fs::write(dev_file(dir.path()), "{").unwrap();
        assert_ne!(token(dir.path()), first);
    }
}
