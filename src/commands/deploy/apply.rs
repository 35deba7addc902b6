//! `uniflow apply`: plan (or read a saved plan), take the lock, refuse a
//! stale plan, build and upload the code, execute the change set, record
//! what was applied, and say where everything is.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::anyhow;
use uniflow_compiler::generate::cloudformation;

use super::functions::{self, BuildOptions};
use super::stack::{self, ChangeSetRequest, Progress};
use super::state::Applied;
use super::{
    ApplyInputArg, ApplyRequest, Compiled, RequireApproval, Target, approve, current, keys,
    parameters, read_text,
};
use crate::ExitStatus;
use crate::commands::plan::model::{FORMAT_VERSION, Plan, RiskKind, SavedPlan};
use crate::commands::plan::{self, render};

/// Runs `uniflow apply`.
pub async fn run(request: ApplyRequest) -> anyhow::Result<ExitStatus> {
    let (source, path, saved) = match &request.input {
        ApplyInputArg::Project(path) => {
            let file = crate::commands::resolve(path);
            (read_text(&file)?, file.display().to_string(), None)
        }
        ApplyInputArg::Plan(path) => {
            let text = read_text(path)?;
            let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
                anyhow!(
                    "{} is not a saved plan (`uniflow plan --out FILE` writes one): {e}",
                    path.display()
                )
            })?;
            if saved.format_version != FORMAT_VERSION {
                return Err(anyhow!(
                    "{} has plan format {}, this uniflow reads {FORMAT_VERSION}: plan again with this uniflow",
                    path.display(),
                    saved.format_version
                ));
            }
            (
                saved.apply.source.clone(),
                saved.apply.path.clone(),
                Some(saved),
            )
        }
    };
    let compiled = match Compiled::new(source, &path, "apply")? {
        Ok(c) => c,
        Err(status) => return Ok(status),
    };
    if let Some(saved) = &saved
        && saved.header.config_digest != compiled.digest
    {
        return Err(anyhow!(
            "the saved plan's config digest is {} but its source compiles to {} with this uniflow: plan again",
            saved.header.config_digest,
            compiled.digest
        ));
    }
    let target = Target::connect(&compiled.config).await?;
    let store = target.bootstrap(&compiled).await?;
    let lock = store.lock("apply", request.lock_timeout).await?;
    let outcome = locked(&request, &target, &compiled, saved.as_ref()).await;
    lock.release().await?;
    outcome
}

/// Everything apply does while holding the lock.
async fn locked(
    request: &ApplyRequest,
    target: &Target,
    compiled: &Compiled,
    saved: Option<&SavedPlan>,
) -> anyhow::Result<ExitStatus> {
    let mut stderr = std::io::stderr().lock();
    let now = current(target, compiled).await?;
    match saved {
        Some(saved) => {
            if saved.header.stack != target.stack {
                return Err(anyhow!(
                    "the plan is for stack {}, but its config deploys {}",
                    saved.header.stack,
                    target.stack
                ));
            }
            if saved.apply.base != now.base {
                writeln!(
                    stderr,
                    "error: the plan is stale: {} changed since it was made (planned against digest {}, state {}; now digest {}, state {}). Nothing was changed; run `uniflow plan` again.",
                    target.stack,
                    saved.apply.base.digest.as_deref().unwrap_or("none"),
                    saved.apply.base.state_version.as_deref().unwrap_or("none"),
                    now.base.digest.as_deref().unwrap_or("none"),
                    now.base.state_version.as_deref().unwrap_or("none"),
                )?;
                return Ok(ExitStatus::Failure);
            }
        }
        None => {
            let plan = assemble(compiled, now)?;
            let text = render::human(&plan, request.color);
            stderr.write_all(text.as_bytes())?;
            let ask = !request.auto_approve
                && match request.require_approval {
                    RequireApproval::Never => false,
                    RequireApproval::AnyChange => plan.summary.has_changes(),
                    RequireApproval::Broadening => plan.risks.iter().any(|r| {
                        matches!(
                            r.kind,
                            RiskKind::IamWidened
                                | RiskKind::Destroyed
                                | RiskKind::Replaced
                                | RiskKind::Pii
                                | RiskKind::Breaking
                        )
                    }),
                };
            drop(stderr);
            if ask && !approve(&format!("Apply these changes to {}?", target.stack))? {
                writeln!(
                    std::io::stderr().lock(),
                    "Apply cancelled: nothing was changed."
                )?;
                return Ok(ExitStatus::Failure);
            }
            stderr = std::io::stderr().lock();
        }
    }
    drop(stderr);
    deploy(request, target, compiled).await
}

/// The plan shown before asking.
fn assemble(compiled: &Compiled, now: super::Current) -> anyhow::Result<Plan> {
    plan::assemble_from(compiled, now)
}

/// Builds, uploads, changes the stack, records the state, prints where
/// things are.
async fn deploy(
    request: &ApplyRequest,
    target: &Target,
    compiled: &Compiled,
) -> anyhow::Result<ExitStatus> {
    let store = target
        .state()
        .await?
        .ok_or_else(|| anyhow!("the artifacts bucket of {} disappeared", target.stack))?;
    let mut err = std::io::stderr().lock();
    writeln!(
        err,
        "Building the functions' code for provided.al2023 (x86_64)..."
    )?;
    drop(err);
    let zips = functions::build(&BuildOptions::new(request.functions_dir.clone()))?;
    let mut code_keys = BTreeMap::new();
    for zip in zips {
        let uploaded = target
            .upload(&store, &zip.key, zip.bytes, "application/zip")
            .await?;
        writeln!(
            std::io::stderr().lock(),
            "  {:<11} s3://{}/{} ({})",
            zip.role,
            store.bucket(),
            zip.key,
            if uploaded {
                "uploaded"
            } else {
                "already there"
            }
        )?;
        code_keys.insert(zip.role.to_owned(), zip.key);
    }
    let bundle_key = format!("bundles/{}.json", compiled.digest);
    target
        .upload(
            &store,
            &bundle_key,
            compiled.files["bundle.json"].as_bytes().to_vec(),
            "application/json",
        )
        .await?;
    let template_url = target.upload_template(&store, compiled.template()?).await?;

    let sources: Vec<String> = compiled
        .config
        .sources
        .iter()
        .map(|s| s.name.value.clone())
        .collect();
    let (key_locations, removed_keys) =
        keys::ensure(&target.sdk, &target.deployed.write_keys_path, &sources).await?;

    let deployed = target.cfn.describe(&target.stack).await?;
    let parameters = parameters(
        target,
        compiled,
        deployed.as_ref(),
        Some(&code_keys),
        store.bucket(),
    )?;
    let name = format!(
        "uniflow-apply-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let rows = target
        .cfn
        .change_set(&ChangeSetRequest {
            stack: &target.stack,
            name: &name,
            create: deployed.is_none(),
            template_url: &template_url,
            parameters: &parameters,
            tags: &target.cfn_tags(Some(compiled)),
            description: &format!("uniflow apply of config {}", compiled.digest),
        })
        .await?;
    let progress = Progress::new(&format!("apply {}", target.stack));
    let final_state = match rows {
        None => {
            progress.line(&format!("{}: no resource changes.", target.stack));
            deployed.ok_or_else(|| anyhow!("{} does not exist", target.stack))?
        }
        Some(rows) => {
            progress.line(&format!(
                "Executing change set {name}: {} resource change(s)",
                rows.len()
            ));
            let state = target.cfn.execute(&target.stack, &name, &progress).await?;
            if !matches!(state.status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE") {
                let failures = target.cfn.failures(&target.stack).await;
                let detail = stack::describe_failures(&failures);
                let error = stack::failure(&target.stack, &state, &progress);
                writeln!(
                    std::io::stderr().lock(),
                    "error: {error}\nfailing resources:{}",
                    if detail.is_empty() {
                        " none reported".to_owned()
                    } else {
                        detail
                    }
                )?;
                return Ok(ExitStatus::Failure);
            }
            state
        }
    };
    progress.finish();
    store
        .record(&Applied {
            format_version: 1,
            stack: target.stack.clone(),
            config_digest: compiled.digest.clone(),
            bundle_version: compiled.bundle_version,
            uniflow_version: env!("CARGO_PKG_VERSION").to_owned(),
            applied_at: super::now_rfc3339(),
            serial: uuid::Uuid::new_v4().to_string(),
            source: compiled.source.clone(),
            files: compiled.files.clone(),
            code_keys,
        })
        .await?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "Applied {} ({}).", target.stack, final_state.status)?;
    let output = |key: &str| {
        final_state
            .outputs
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("(the stack reports no {key} output)"))
    };
    writeln!(out, "  ingest URL:          {}", output("IngestUrl"))?;
    writeln!(out, "  management API URL:  {}", output("ManagementApiUrl"))?;
    writeln!(
        out,
        "  admin UI URL:        (the admin UI is not part of this version's stack)"
    )?;
    writeln!(
        out,
        "  state:               s3://{}/state/{}/",
        store.bucket(),
        target.stack
    )?;
    writeln!(
        out,
        "Write keys (SSM Parameter Store, SecureString; read one with `aws ssm get-parameter --with-decryption --name NAME`):"
    )?;
    for (source, name) in &key_locations {
        writeln!(out, "  {source:<16} {name}")?;
    }
    for name in removed_keys {
        writeln!(out, "  removed {name} (its source is gone)")?;
    }
    let _ = cloudformation::RAW_BUCKET;
    Ok(ExitStatus::Success)
}
