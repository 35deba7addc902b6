//! `uniflow plan`: what applying the config would change, break and cost,
//! before anything is touched.
//!
//! [`assemble`] builds the [`model::Plan`] from two compiled configs and a
//! change set, with no I/O; [`render`] prints it. This module does the edges:
//! compiling PATH and `--against OLD`, or reading the deployed stack through
//! `deploy` (its applied config, build files and a CloudFormation change
//! set), then printing, `--out`, and the exit codes. Both paths go through
//! the same [`assemble`].

pub mod assemble;
pub mod files;
pub mod model;
pub mod render;
pub mod template;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use uniflow_compiler::Config;
use uniflow_compiler::diagnostic::{self, HumanOptions};

pub use assemble::{Built, Input, assemble};

use self::model::{Base, ChangeSet, ChangeSetSource, Header, Plan};
use super::{deploy, read, resolve, use_color, use_color_on};
use crate::ExitStatus;
use crate::cli::{PlanArgs, PlanFormat};

/// The change set note of `--against`: what comparing templates cannot see.
pub const TEMPLATE_DIFF_NOTE: &str = "Compared the two templates: only CloudFormation can tell which changes replace a resource. Run `uniflow plan` against the deployed stack to see replacements.";

/// Runs `uniflow plan`. With `--detailed-exitcode`, every error (the
/// user's or uniflow's) is printed here and exits 1, and a plan with
/// changes exits 2.
pub fn run(args: &PlanArgs) -> anyhow::Result<ExitStatus> {
    let result = make_and_print(args);
    if !args.detailed_exitcode {
        return result.map(|outcome| match outcome {
            Ok(_) => ExitStatus::Success,
            Err(status) => status,
        });
    }
    match result {
        Ok(Ok(true)) => Ok(ExitStatus::Changes),
        Ok(Ok(false)) => Ok(ExitStatus::Success),
        Ok(Err(_)) => Ok(ExitStatus::Failure),
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            writeln!(stderr, "error: {err:#}")?;
            Ok(ExitStatus::Failure)
        }
    }
}

/// Makes the plan, prints it and saves it; `Ok(Ok(has_changes))`, or
/// `Ok(Err(status))` after printing a config's errors.
fn make_and_print(args: &PlanArgs) -> anyhow::Result<Result<bool, ExitStatus>> {
    let color = use_color_on(args.color, std::io::stdout().is_terminal());
    let plan = match &args.against {
        Some(old) => match offline(&args.path, old, use_color(args.color))? {
            Ok(plan) => plan,
            Err(status) => return Ok(Err(status)),
        },
        None => match deployed(&args.path)? {
            Ok(plan) => plan,
            Err(status) => return Ok(Err(status)),
        },
    };
    if let Some(out) = &args.out {
        let text = render::json(&plan)?;
        std::fs::write(out, text)
            .with_context(|| format!("cannot write the plan to {}", out.display()))?;
    }
    let text = match args.format {
        PlanFormat::Human => render::human(&plan, color),
        PlanFormat::Markdown => render::markdown(&plan),
        PlanFormat::Json => render::json(&plan)?,
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if let Some(out) = &args.out {
        writeln!(
            std::io::stderr().lock(),
            "saved the plan to {}: `uniflow apply {}` deploys exactly it",
            out.display(),
            out.display()
        )?;
    }
    Ok(Ok(plan.summary.has_changes()))
}

/// The plan of `compiled` against what [`deploy::current`] found deployed:
/// the path `uniflow plan` without `--against` and `uniflow apply` share.
pub fn assemble_from(compiled: &deploy::Compiled, now: deploy::Current) -> anyhow::Result<Plan> {
    let old = now
        .old
        .as_ref()
        .map(|(config, files)| Built { config, files });
    Ok(assemble(Input {
        header: now.header,
        old,
        new: Built {
            config: &compiled.config,
            files: &compiled.files,
        },
        change_set: now.change_set,
        source: compiled.source.clone(),
        path: compiled.path.clone(),
        base: now.base,
    }))
}

/// The plan of `path` against its deployed stack (AWS credentials and
/// region from the environment); touches nothing but a change set, made,
/// read and deleted.
fn deployed(path: &Path) -> anyhow::Result<Result<Plan, ExitStatus>> {
    let file = resolve(path);
    let source = read(&file)?;
    let compiled = match deploy::Compiled::new(source, &file.display().to_string(), "plan")? {
        Ok(compiled) => compiled,
        Err(status) => return Ok(Err(status)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let now = runtime.block_on(async {
        let target = deploy::Target::connect(&compiled.config).await?;
        deploy::current(&target, &compiled).await
    })?;
    assemble_from(&compiled, now).map(Ok)
}

/// A project read and compiled without errors.
struct Project {
    /// The file, as given (a directory resolved to its `uniflow.kdl`).
    file: PathBuf,
    source: String,
    config: Config,
    files: BTreeMap<String, String>,
}

impl Project {
    fn compiled(&self) -> Built<'_> {
        Built {
            config: &self.config,
            files: &self.files,
        }
    }

    /// The config digest `bundle.json` records.
    fn digest(&self) -> anyhow::Result<String> {
        let bundle: serde_json::Value = serde_json::from_str(
            self.files
                .get("bundle.json")
                .context("the compiler produced no bundle.json")?,
        )
        .context("the compiled bundle.json is not JSON")?;
        bundle["config_digest"]
            .as_str()
            .map(str::to_owned)
            .context("the compiled bundle.json has no config_digest")
    }
}

/// Reads and compiles a project; prints its errors (in colour when
/// `color`) and gives `None` when it has some.
fn compile(path: &Path, color: bool) -> anyhow::Result<Option<Project>> {
    let file = resolve(path);
    let source = read(&file)?;
    let (checked, artifacts) = uniflow_compiler::build(&source);
    if checked.has_errors() {
        let text = diagnostic::render_human(
            &file.display().to_string(),
            &source,
            &checked.diagnostics,
            HumanOptions {
                color,
                ..HumanOptions::default()
            },
        );
        std::io::stderr().lock().write_all(text.as_bytes())?;
        return Ok(None);
    }
    let config = checked
        .config
        .context("the compiler produced no model for a config without errors")?;
    let files = artifacts
        .context("the compiler produced no artifacts for a config without errors")?
        .files;
    Ok(Some(Project {
        file,
        source,
        config,
        files,
    }))
}

/// The plan of `path` against the config at `old`, with no AWS;
/// diagnostics in colour when `color`.
fn offline(path: &Path, old: &Path, color: bool) -> anyhow::Result<Result<Plan, ExitStatus>> {
    let before = compile(old, color)?;
    let after = compile(path, color)?;
    let (Some(before), Some(after)) = (before, after) else {
        writeln!(
            std::io::stderr().lock(),
            "plan needs both configs without errors"
        )?;
        return Ok(Err(ExitStatus::Failure));
    };
    let project = after
        .config
        .project
        .as_ref()
        .context("the config has no `project` node")?;
    let old_digest = before.digest()?;
    let header = Header {
        stack: uniflow_compiler::generate::cloudformation::resource_prefix(project),
        account: None,
        region: project.region.value.clone(),
        config_digest: after.digest()?,
        deployed_digest: Some(old_digest.clone()),
        against: format!("file {}", before.file.display()),
        lock: None,
    };
    let old_template = template_of(&before.files)?;
    let new_template = template_of(&after.files)?;
    let change_set = ChangeSet {
        source: ChangeSetSource::TemplateDiff,
        changes: template::resource_changes(
            old_template.as_ref(),
            &new_template.unwrap_or_default(),
        ),
        notes: vec![TEMPLATE_DIFF_NOTE.to_owned()],
    };
    Ok(Ok(assemble(Input {
        header,
        old: Some(before.compiled()),
        new: after.compiled(),
        change_set,
        source: after.source.clone(),
        path: after.file.display().to_string(),
        base: Base {
            digest: Some(old_digest),
            state_version: None,
            stack_status: None,
        },
    })))
}

/// The main template of a build, parsed (`None` without one).
fn template_of(files: &BTreeMap<String, String>) -> anyhow::Result<Option<serde_json::Value>> {
    files
        .get(assemble::TEMPLATE_FILE)
        .map(|text| {
            serde_json::from_str(text)
                .with_context(|| format!("the generated {} is not JSON", assemble::TEMPLATE_FILE))
        })
        .transpose()
}
