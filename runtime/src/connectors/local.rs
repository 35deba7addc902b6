//! The embedded backend's outside world: secrets from the environment and a
//! JSON file, objects in a local directory.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use super::{BoxFuture, ObjectStore, Secrets, ServiceError};

/// Secrets for `uniflow dev`: `env:NAME` from the environment, and `ssm:`
/// and `secretsmanager:` references looked up in a JSON file mapping each
/// reference, as written, to its value:
///
/// ```json
/// { "ssm:/acme/crm-secret": "s3cr3t", "secretsmanager:acme/token": "t0k3n" }
/// ```
///
/// The file is read on every lookup (lookups happen once per destination,
/// when it starts), so editing it needs no restart of anything but the
/// destination.
#[derive(Debug, Clone)]
pub struct LocalSecrets {
    file: PathBuf,
}

impl LocalSecrets {
    /// Secrets kept in `file` (`DATA/secrets.json` under `uniflow dev`); the
    /// file need not exist until a stored reference is looked up.
    pub fn new(file: impl Into<PathBuf>) -> LocalSecrets {
        LocalSecrets { file: file.into() }
    }

    fn lookup(&self, reference: &str) -> Result<String, ServiceError> {
        if let Some(name) = reference.strip_prefix("env:") {
            return std::env::var(name).map_err(|e| {
                permanent(match e {
                    std::env::VarError::NotPresent => {
                        format!("the environment variable `{name}` is not set")
                    }
                    std::env::VarError::NotUnicode(_) => {
                        format!("the environment variable `{name}` is not UTF-8")
                    }
                })
            });
        }
        if !(reference.starts_with("ssm:") || reference.starts_with("secretsmanager:")) {
            return Err(permanent(format!(
                "`{reference}` is not a secret reference: write `env:NAME`, `ssm:/path` or \
                 `secretsmanager:name`"
            )));
        }
        let file = self.file.display();
        let text = fs::read_to_string(&self.file).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                permanent(format!(
                    "{file} does not exist: create it with {{\"{reference}\": \"the value\"}}"
                ))
            } else {
                permanent(format!("cannot read {file}: {e}"))
            }
        })?;
        let values: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| {
                permanent(format!(
                    "{file} is not a JSON object of references to values: {e}"
                ))
            })?;
        match values.get(reference) {
            Some(serde_json::Value::String(value)) => Ok(value.clone()),
            Some(_) => Err(permanent(format!(
                "`{reference}` in {file} is not a string"
            ))),
            None => Err(permanent(format!(
                "`{reference}` is not in {file}: add \"{reference}\": \"the value\""
            ))),
        }
    }
}

impl Secrets for LocalSecrets {
    fn resolve<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<String, ServiceError>> {
        Box::pin(async move { self.lookup(reference) })
    }
}

/// An [`ObjectStore`] on local disk: object `key` of `bucket` is the file
/// `ROOT/<bucket>/<key>`, written atomically (a temporary file in the same
/// directory, fsynced, then renamed over the key, and the directory
/// fsynced), so a reader never sees half an object and a rewrite replaces
/// the whole of it.
#[derive(Debug, Clone)]
pub struct LocalObjects {
    root: PathBuf,
}

impl LocalObjects {
    /// Objects under `root`.
    pub fn new(root: impl Into<PathBuf>) -> LocalObjects {
        LocalObjects { root: root.into() }
    }

    /// The file holding `key` of `bucket`, or why the names cannot be one.
    pub fn path(&self, bucket: &str, key: &str) -> Result<PathBuf, ServiceError> {
        let plain = |name: &str, what: &str| {
            let path = Path::new(name);
            let ok = !name.is_empty()
                && !name.ends_with('/')
                && path.components().all(|c| matches!(c, Component::Normal(_)));
            if ok {
                Ok(())
            } else {
                Err(permanent(format!(
                    "`{name}` cannot be a local {what}: it must be a relative path without \
                     `..`, `.` or a trailing `/`"
                )))
            }
        };
        plain(bucket, "bucket")?;
        if bucket.contains('/') {
            return Err(permanent(format!(
                "`{bucket}` cannot be a bucket: it has a `/`"
            )));
        }
        plain(key, "object key")?;
        Ok(self.root.join(bucket).join(key))
    }
}

impl ObjectStore for LocalObjects {
    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        _content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            let path = self.path(bucket, key)?;
            tokio::task::spawn_blocking(move || write_atomically(&path, &body))
                .await
                .map_err(|e| ServiceError {
                    message: format!("the write was interrupted: {e}"),
                    retryable: true,
                })?
        })
    }
}

fn write_atomically(path: &Path, body: &[u8]) -> Result<(), ServiceError> {
    let shown = path.display();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let io_error = |e: io::Error| ServiceError {
        retryable: !matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied
                | io::ErrorKind::InvalidInput
                | io::ErrorKind::ReadOnlyFilesystem
                | io::ErrorKind::NotADirectory
                | io::ErrorKind::IsADirectory
        ),
        message: format!("cannot write {shown}: {e}"),
    };
    fs::create_dir_all(dir).map_err(io_error)?;
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written.map_err(io_error)
}

fn permanent(message: String) -> ServiceError {
    ServiceError {
        message,
        retryable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn secrets_come_from_the_file_and_say_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.json");
        let secrets = LocalSecrets::new(&file);
        let err = secrets.resolve("ssm:/acme/x").await.unwrap_err();
        assert!(err.message.contains("does not exist"), "{}", err.message);
        fs::write(&file, r#"{"ssm:/acme/x": "v1", "secretsmanager:y": 3}"#).unwrap();
        assert_eq!(secrets.resolve("ssm:/acme/x").await.unwrap(), "v1");
        let err = secrets.resolve("secretsmanager:y").await.unwrap_err();
        assert!(err.message.contains("not a string"), "{}", err.message);
        let err = secrets.resolve("ssm:/other").await.unwrap_err();
        assert!(err.message.contains("is not in"), "{}", err.message);
        let err = secrets.resolve("vault:x").await.unwrap_err();
        assert!(
            err.message.contains("not a secret reference"),
            "{}",
            err.message
        );
        assert!(!err.retryable);
    }

    #[tokio::test]
    async fn env_secrets_come_from_the_environment() {
        let secrets = LocalSecrets::new("/nonexistent/secrets.json");
        // PATH is set in every environment the tests run in.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(secrets.resolve("env:PATH").await.unwrap(), path);
        let err = secrets
            .resolve("env:UNIFLOW_TEST_SURELY_UNSET_VARIABLE")
            .await
            .unwrap_err();
        assert!(err.message.contains("is not set"), "{}", err.message);
    }

    #[tokio::test]
    async fn objects_are_files_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let objects = LocalObjects::new(dir.path());
        let body = Bytes::from_static(b"first");
        objects.put("b", "p/dt=1/x.gz", body, "a").await.unwrap();
        objects
            .put("b", "p/dt=1/x.gz", Bytes::from_static(b"second"), "a")
            .await
            .unwrap();
        let folder = dir.path().join("b/p/dt=1");
        let names: Vec<_> = fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.gz"], "no temporary file left");
        assert_eq!(fs::read(folder.join("x.gz")).unwrap(), b"second");
    }

    #[tokio::test]
    async fn object_names_cannot_leave_the_root() {
        let objects = LocalObjects::new("/tmp/uniflow-never-written");
        for (bucket, key) in [
            ("b", "../x"),
            ("..", "x"),
            ("b", "/etc/x"),
            ("b", ""),
            ("a/b", "x"),
        ] {
            let err = objects
                .put(bucket, key, Bytes::new(), "a")
                .await
                .unwrap_err();
            assert!(!err.retryable, "{bucket} {key}");
        }
    }
}
