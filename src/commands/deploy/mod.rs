//! `uniflow apply`, `uniflow destroy` and `uniflow force-unlock`: deploying
//! the planned stack through CloudFormation, with its state and lock in the
//! artifacts bucket.
//!
//! Two stacks per project and stage: `<project>-<stage>-bootstrap` (the
//! artifacts bucket: function code, bundles, templates, and the state and
//! lock objects) and `<project>-<stage>` (the pipeline). The first apply
//! creates the bootstrap stack. Every apply takes the lock, checks the
//! deployed state is the one planned against, builds and uploads the
//! functions' code, makes a change set, executes it, and records what it
//! applied; destroy takes the lock, deletes the pipeline's stack and (only
//! with `--delete-data`) the data the stack retains.

pub mod apply;
pub mod destroy;
pub mod functions;
mod keys;
pub mod stack;
pub mod state;

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_sdk_cloudformation::types::{Parameter, Tag};
use sha2::{Digest, Sha256};
use uniflow_compiler::Config;
use uniflow_compiler::generate::cloudformation::sizing::{Sizing, env_secret_parameter};
use uniflow_compiler::generate::cloudformation::{self, logical};

use self::stack::{Cfn, ChangeSetRequest, Progress, StackState};
use self::state::StateStore;
use crate::ExitStatus;
use crate::commands::plan::model::{Base, ChangeSet, ChangeSetSource, Header, ResourceChange};

/// The bootstrap stack's output naming the artifacts bucket.
const ARTIFACTS_OUTPUT: &str = "ArtifactsBucketName";

/// A compiled project, ready to deploy.
#[derive(Debug)]
pub struct Compiled {
    /// The model.
    pub config: Config,
    /// Every generated file, by path under build/.
    pub files: BTreeMap<String, String>,
    /// The config digest.
    pub digest: String,
    /// The bundle format version.
    pub bundle_version: u32,
    /// The `uniflow.kdl` text.
    pub source: String,
    /// Where it was read from (for messages).
    pub path: String,
}

impl Compiled {
    /// Compiles `source`; config errors are printed and give `Err(status)`.
    pub fn new(
        source: String,
        path: &str,
        command: &str,
    ) -> anyhow::Result<Result<Compiled, ExitStatus>> {
        use uniflow_compiler::diagnostic::{self, HumanOptions};
        let (checked, artifacts) = uniflow_compiler::build(&source);
        let (Some(config), Some(artifacts), false) = (
            checked.config,
            artifacts,
            checked
                .diagnostics
                .iter()
                .any(uniflow_compiler::Diagnostic::is_error),
        ) else {
            let text = diagnostic::render_human(
                path,
                &source,
                &checked.diagnostics,
                HumanOptions::default(),
            );
            let mut stderr = std::io::stderr().lock();
            stderr.write_all(text.as_bytes())?;
            writeln!(stderr, "{command} needs a project without errors")?;
            return Ok(Err(ExitStatus::Failure));
        };
        let bundle = uniflow_schemas::Bundle::from_json(&artifacts.files["bundle.json"])
            .map_err(|e| anyhow!("the compiled bundle does not load: {e}"))?;
        Ok(Ok(Compiled {
            config,
            files: artifacts.files,
            digest: bundle.config_digest,
            bundle_version: bundle.version,
            source,
            path: path.to_owned(),
        }))
    }

    fn template(&self) -> anyhow::Result<&str> {
        self.files
            .get("cloudformation.json")
            .map(String::as_str)
            .ok_or_else(|| {
                anyhow!("the project has no `project` node, so there is nothing to deploy")
            })
    }
}

/// One project's stage on AWS.
#[derive(Debug)]
pub struct Target {
    /// The SDK's configuration.
    pub sdk: aws_config::SdkConfig,
    /// The main stack's name.
    pub stack: String,
    /// The bootstrap stack's name.
    pub bootstrap: String,
    /// The region.
    pub region: String,
    /// Where the stack's resources are.
    pub deployed: cloudformation::Deployed,
    /// CloudFormation.
    pub cfn: Cfn,
    /// The stack's tags (project tags plus uniflow's).
    tags: BTreeMap<String, String>,
}

impl Target {
    /// The stage `config` describes: the region from the environment, else
    /// the project's.
    pub async fn connect(config: &Config) -> anyhow::Result<Target> {
        let project = config.project.as_ref().ok_or_else(|| {
            anyhow!("the project has no `project` node, so there is nothing to deploy")
        })?;
        let deployed = cloudformation::deployed(config).ok_or_else(|| {
            anyhow!("the project has no `project` node, so there is nothing to deploy")
        })?;
        let region = aws_config::meta::region::RegionProviderChain::default_provider()
            .or_else(aws_config::Region::new(project.region.value.clone()));
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        let region = sdk
            .region()
            .map_or_else(|| project.region.value.clone(), ToString::to_string);
        let mut tags = project.tags.clone();
        tags.extend(deployed.raw_bucket_tags.clone());
        let stack = deployed.resource_prefix.clone();
        Ok(Target {
            cfn: Cfn::new(&sdk, Duration::from_millis(500)),
            bootstrap: format!("{stack}-bootstrap"),
            stack,
            region,
            deployed,
            sdk,
            tags,
        })
    }

    /// The account the credentials belong to.
    pub async fn account(&self) -> Option<String> {
        aws_sdk_sts::Client::new(&self.sdk)
            .get_caller_identity()
            .send()
            .await
            .ok()?
            .account()
            .map(str::to_owned)
    }

    /// The artifacts bucket, `None` before the first apply.
    pub async fn artifacts_bucket(&self) -> anyhow::Result<Option<String>> {
        let Some(state) = self.cfn.describe(&self.bootstrap).await? else {
            return Ok(None);
        };
        if let Some(name) = state.outputs.get(ARTIFACTS_OUTPUT) {
            return Ok(Some(name.clone()));
        }
        if state.in_progress() {
            return Ok(None);
        }
        // Where outputs are missing (emulators), the resource's physical id.
        Ok(self
            .cfn
            .resources(&self.bootstrap)
            .await?
            .get(cloudformation::ARTIFACTS_BUCKET)
            .map(|(physical, _)| physical.clone()))
    }

    /// The state store, `None` before the first apply.
    pub async fn state(&self) -> anyhow::Result<Option<StateStore>> {
        Ok(self
            .artifacts_bucket()
            .await?
            .map(|bucket| StateStore::new(&self.sdk, &bucket, &self.stack)))
    }

    /// Creates the bootstrap stack if it does not exist, and returns the
    /// state store in its bucket.
    async fn bootstrap(&self, compiled: &Compiled) -> anyhow::Result<StateStore> {
        if let Some(store) = self.state().await? {
            return Ok(store);
        }
        let template = compiled
            .files
            .get("cloudformation-bootstrap.json")
            .ok_or_else(|| anyhow!("the build has no cloudformation-bootstrap.json"))?;
        let progress = Progress::new(&format!("bootstrap {}", self.bootstrap));
        progress.line(&format!(
            "Creating {} (the artifacts bucket: code, bundles, state)",
            self.bootstrap
        ));
        let state = self
            .cfn
            .create_small(&self.bootstrap, template, &self.cfn_tags(None), &progress)
            .await?;
        progress.finish();
        if state.status != "CREATE_COMPLETE" {
            let failures = self.cfn.failures(&self.bootstrap).await;
            return Err(anyhow!(
                "{}{}",
                stack::failure(&self.bootstrap, &state, &progress),
                stack::describe_failures(&failures)
            ));
        }
        self.state().await?.ok_or_else(|| {
            anyhow!(
                "{} was created but names no artifacts bucket",
                self.bootstrap
            )
        })
    }

    fn cfn_tags(&self, compiled: Option<&Compiled>) -> Vec<Tag> {
        let mut tags = self.tags.clone();
        if let Some(c) = compiled {
            tags.insert("uniflow:config-digest".into(), c.digest.clone());
            tags.insert(
                "uniflow:bundle-version".into(),
                c.bundle_version.to_string(),
            );
        }
        tags.into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect()
    }

    /// Uploads `body` to `key` in the artifacts bucket unless an object is
    /// already there (keys are content addresses).
    async fn upload(
        &self,
        store: &StateStore,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<bool> {
        let s3 = store.s3();
        if s3
            .head_object()
            .bucket(store.bucket())
            .key(key)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        s3.put_object()
            .bucket(store.bucket())
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "uploading s3://{}/{key}: {}",
                    store.bucket(),
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            })?;
        Ok(true)
    }

    /// Uploads the template, content-addressed, and returns its URL.
    async fn upload_template(&self, store: &StateStore, template: &str) -> anyhow::Result<String> {
        let key = format!("templates/{}.json", hex_sha256(template.as_bytes()));
        self.upload(
            store,
            &key,
            template.as_bytes().to_vec(),
            "application/json",
        )
        .await?;
        Ok(format!(
            "https://{}.s3.{}.amazonaws.com/{key}",
            store.bucket(),
            self.region
        ))
    }
}

/// Hex SHA-256.
pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Now, RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    uniflow_runtime::time::format_ms(ms)
}

/// What planning against the deployed stack found.
#[derive(Debug)]
pub struct Current {
    /// The header (the new config's digest filled in).
    pub header: Header,
    /// The deployed config and its generated files, when one is recorded.
    pub old: Option<(Config, BTreeMap<String, String>)>,
    /// The change set.
    pub change_set: ChangeSet,
    /// The deployed state's fingerprint.
    pub base: Base,
}

/// Reads the deployed state of `target` and what CloudFormation would do to
/// take it to `compiled`. Touches nothing but a change set (made, read and
/// deleted) and the content-addressed template upload it needs.
pub async fn current(target: &Target, compiled: &Compiled) -> anyhow::Result<Current> {
    let stack_state = target.cfn.describe(&target.stack).await?;
    let store = target.state().await?;
    let (applied, base, lock) = match &store {
        Some(store) => {
            let applied = store.applied().await?;
            let base = Base {
                digest: applied.as_ref().map(|(a, _)| a.config_digest.clone()),
                state_version: applied.as_ref().map(|(_, v)| v.clone()),
                stack_status: stack_state.as_ref().map(|s| s.status.clone()),
            };
            (applied.map(|(a, _)| a), base, store.holder().await?)
        }
        None => (
            None,
            Base {
                stack_status: stack_state.as_ref().map(|s| s.status.clone()),
                ..Base::default()
            },
            None,
        ),
    };
    let mut notes = Vec::new();
    let old = match &applied {
        Some(applied) => {
            let (checked, _) = uniflow_compiler::build(&applied.source);
            match checked.config {
                Some(config) if !checked.has_errors() => Some((config, applied.files.clone())),
                _ => {
                    notes.push(format!(
                        "the deployed uniflow.kdl (digest {}) does not check with this uniflow {}: the config changes are listed against nothing",
                        applied.config_digest,
                        env!("CARGO_PKG_VERSION")
                    ));
                    None
                }
            }
        }
        None => None,
    };
    let template = compiled.template()?;
    let change_set = match (&stack_state, &store) {
        (Some(state), _) if !state.updatable() => {
            let what = stack::remedy(&state.status, &target.stack)
                .unwrap_or_else(|| "wait for the running operation to finish".into());
            return Err(anyhow!(
                "{} is in {}: it cannot be changed now; {what}",
                target.stack,
                state.status
            ));
        }
        (Some(state), Some(store)) => {
            let url = target.upload_template(store, template).await?;
            let name = format!(
                "uniflow-plan-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let parameters = parameters(target, compiled, Some(state), None, store.bucket())?;
            let rows = target
                .cfn
                .change_set(&ChangeSetRequest {
                    stack: &target.stack,
                    name: &name,
                    create: false,
                    template_url: &url,
                    parameters: &parameters,
                    tags: &target.cfn_tags(Some(compiled)),
                    description: "uniflow plan: read, then deleted",
                })
                .await?;
            if rows.is_some() {
                target.cfn.delete_change_set(&target.stack, &name).await;
            }
            notes.push(
                "function code is built at apply time: when it differs from the deployed code, the four functions are modified too".into(),
            );
            ChangeSet {
                source: ChangeSetSource::Cloudformation { name },
                changes: rows.unwrap_or_default(),
                notes,
            }
        }
        _ => {
            let new: serde_json::Value = stack::parse_template(template, "cloudformation.json")?;
            if stack_state.is_some() {
                notes.push(
                    "the stack exists but its artifacts bucket is gone: apply recreates the bootstrap stack".into(),
                );
            }
            ChangeSet {
                source: ChangeSetSource::NewStack,
                changes: new_stack_rows(&new),
                notes,
            }
        }
    };
    let header = Header {
        stack: target.stack.clone(),
        account: target.account().await,
        region: target.region.clone(),
        config_digest: compiled.digest.clone(),
        deployed_digest: base.digest.clone().or_else(|| {
            stack_state
                .as_ref()
                .and_then(|s| s.tags.get("uniflow:config-digest").cloned())
        }),
        against: format!("stack {}", target.stack),
        lock,
    };
    Ok(Current {
        header,
        old,
        change_set,
        base,
    })
}

/// Every resource of a new stack, as Add rows.
fn new_stack_rows(template: &serde_json::Value) -> Vec<ResourceChange> {
    let mut rows: Vec<ResourceChange> = template
        .get("Resources")
        .and_then(|r| r.as_object())
        .map(|resources| {
            resources
                .iter()
                .map(|(id, r)| ResourceChange {
                    action: crate::commands::plan::model::ResourceAction::Add,
                    logical_id: id.clone(),
                    resource_type: r
                        .get("Type")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    details: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    rows.sort_by(|a, b| a.logical_id.cmp(&b.logical_id));
    rows
}

/// The main stack's parameters: the artifacts bucket, each function's code
/// key (`None` at plan time: the deployed code), and each `env:` secret's
/// value from the environment (kept from the deployed stack when unset).
fn parameters(
    target: &Target,
    compiled: &Compiled,
    deployed: Option<&StackState>,
    code_keys: Option<&BTreeMap<String, String>>,
    bucket: &str,
) -> anyhow::Result<Vec<Parameter>> {
    let mut out = vec![
        Parameter::builder()
            .parameter_key(cloudformation::ARTIFACTS_BUCKET)
            .parameter_value(bucket)
            .build(),
    ];
    let sizing = Sizing::new(&compiled.config, &target.stack, &compiled.digest);
    let had = |key: &str| deployed.is_some_and(|s| s.parameters.contains_key(key));
    for function in [
        &sizing.ingest,
        &sizing.processor,
        &sizing.connector,
        &sizing.management,
    ] {
        let key = format!("{}CodeKey", logical(function.role));
        match code_keys.and_then(|k| k.get(function.role)) {
            Some(value) => out.push(
                Parameter::builder()
                    .parameter_key(&key)
                    .parameter_value(value)
                    .build(),
            ),
            None if had(&key) => out.push(
                Parameter::builder()
                    .parameter_key(&key)
                    .use_previous_value(true)
                    .build(),
            ),
            None => {}
        }
    }
    for var in &sizing.env_secrets {
        let key = env_secret_parameter(var);
        match std::env::var(var) {
            Ok(value) => out.push(
                Parameter::builder()
                    .parameter_key(&key)
                    .parameter_value(value)
                    .build(),
            ),
            Err(_) if had(&key) => out.push(
                Parameter::builder()
                    .parameter_key(&key)
                    .use_previous_value(true)
                    .build(),
            ),
            Err(_) if code_keys.is_none() => out.push(
                // Planning: the value does not change what is created.
                Parameter::builder()
                    .parameter_key(&key)
                    .parameter_value("")
                    .build(),
            ),
            Err(_) => {
                return Err(anyhow!(
                    "`env:{var}` is not set: a destination reads it as a secret. Export {var} and apply again (it is passed to the stack as a NoEcho parameter and kept there)"
                ));
            }
        }
    }
    Ok(out)
}

/// How `apply` decides whether to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequireApproval {
    /// Never ask.
    Never,
    /// Ask when anything changes.
    AnyChange,
    /// Ask only when the change widens access or risks data: IAM
    /// permissions widened, resources destroyed or replaced, breaking
    /// schema changes, personal data flowing somewhere new.
    Broadening,
}

/// What `uniflow apply` was asked to do.
#[derive(Debug)]
pub struct ApplyRequest {
    /// The project (when no plan file is given) or the saved plan.
    pub input: ApplyInputArg,
    /// Skip the approval prompt.
    pub auto_approve: bool,
    /// When to ask.
    pub require_approval: RequireApproval,
    /// How long to wait for another run's lock.
    pub lock_timeout: Duration,
    /// Prebuilt function binaries instead of building them.
    pub functions_dir: Option<PathBuf>,
    /// Colour in the plan shown.
    pub color: bool,
}

/// A project path or a saved plan.
#[derive(Debug)]
pub enum ApplyInputArg {
    /// `uniflow.kdl` or its directory.
    Project(PathBuf),
    /// A plan saved with `uniflow plan --out`.
    Plan(PathBuf),
}

/// Asks on stderr and reads one line of stdin: only `yes` proceeds.
fn approve(question: &str) -> anyhow::Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(
        stderr,
        "{question}\n  Only 'yes' will be accepted to approve.\n  Enter a value: "
    )?;
    stderr.flush()?;
    drop(stderr);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

/// Reads a file to text, naming it in errors.
fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Runs `uniflow force-unlock ID`.
pub async fn force_unlock(id: String, path: PathBuf) -> anyhow::Result<ExitStatus> {
    let file = crate::commands::resolve(&path);
    let compiled = match Compiled::new(
        read_text(&file)?,
        &file.display().to_string(),
        "force-unlock",
    )? {
        Ok(c) => c,
        Err(status) => return Ok(status),
    };
    let target = Target::connect(&compiled.config).await?;
    let Some(store) = target.state().await? else {
        return Err(anyhow!(
            "{} was never applied: there is no lock",
            target.stack
        ));
    };
    let holder = store.unlock(&id).await?;
    writeln!(
        std::io::stdout().lock(),
        "Removed the lock of {} held by {} for {} since {}.",
        target.stack,
        holder.who,
        holder.operation,
        holder.created
    )?;
    Ok(ExitStatus::Success)
}
