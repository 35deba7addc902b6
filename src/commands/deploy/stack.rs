//! CloudFormation, as apply, plan and destroy use it: describing stacks,
//! making and reading change sets, and waiting for an operation while
//! showing each resource event.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, anyhow};
use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudformation::primitives::DateTime;
use aws_sdk_cloudformation::types::{
    Capability, ChangeAction, ChangeSetStatus, ChangeSetType, Parameter, Replacement, StackEvent,
    Tag,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::commands::plan::model::{ResourceAction, ResourceChange};

/// A stack as `DescribeStacks` reports it.
#[derive(Debug, Clone)]
pub struct StackState {
    /// `CREATE_COMPLETE`, `UPDATE_ROLLBACK_FAILED`, ...
    pub status: String,
    /// CloudFormation's reason for the status, when it gives one.
    pub reason: Option<String>,
    /// Output values by key.
    pub outputs: BTreeMap<String, String>,
    /// Tags by key.
    pub tags: BTreeMap<String, String>,
    /// Parameter values by key (NoEcho ones come back as `****`).
    pub parameters: BTreeMap<String, String>,
}

impl StackState {
    /// Whether an operation is running on the stack.
    pub fn in_progress(&self) -> bool {
        self.status.ends_with("_IN_PROGRESS")
    }

    /// Whether the stack can be updated (not mid-operation, not failed in a
    /// way that needs a person first).
    pub fn updatable(&self) -> bool {
        !self.in_progress()
            && !matches!(
                self.status.as_str(),
                "ROLLBACK_COMPLETE"
                    | "ROLLBACK_FAILED"
                    | "UPDATE_ROLLBACK_FAILED"
                    | "DELETE_FAILED"
            )
    }
}

/// What to do after a stack lands in a failed state.
pub fn remedy(status: &str, stack: &str) -> Option<String> {
    Some(match status {
        "ROLLBACK_COMPLETE" | "ROLLBACK_FAILED" => format!(
            "the stack's first creation failed and was rolled back; nothing in it works. Fix the cause above, then delete it (`uniflow destroy`, or `aws cloudformation delete-stack --stack-name {stack}`) and apply again"
        ),
        "UPDATE_ROLLBACK_FAILED" => format!(
            "CloudFormation could not roll the update back. Fix the resource named above by hand (or let it be skipped), then run `aws cloudformation continue-update-rollback --stack-name {stack}` (add `--resources-to-skip ID` for a resource that cannot be restored) and apply again"
        ),
        "UPDATE_ROLLBACK_COMPLETE" => {
            "the update failed and was rolled back: the stack runs the previous version. Fix the cause above and apply again".to_owned()
        }
        "DELETE_FAILED" => format!(
            "some resources could not be deleted (often a bucket that is not empty). Empty or remove them, then run `uniflow destroy` again, or `aws cloudformation delete-stack --stack-name {stack} --retain-resources ID`"
        ),
        _ => return None,
    })
}

/// CloudFormation for one region and account.
#[derive(Debug, Clone)]
pub struct Cfn {
    client: Client,
    poll: Duration,
}

impl Cfn {
    /// A client on `sdk`; `poll` is how often operations are polled.
    pub fn new(sdk: &aws_config::SdkConfig, poll: Duration) -> Cfn {
        Cfn {
            client: Client::new(sdk),
            poll,
        }
    }

    /// The stack named `name`, `None` when it does not exist (deleted
    /// stacks do not exist).
    pub async fn describe(&self, name: &str) -> anyhow::Result<Option<StackState>> {
        let answer = match self.client.describe_stacks().stack_name(name).send().await {
            Ok(answer) => answer,
            Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => return Ok(None),
            Err(e) => {
                return Err(anyhow!(
                    "describing stack {name}: {}",
                    DisplayErrorContext(&e)
                ));
            }
        };
        let Some(stack) = answer.stacks().first() else {
            return Ok(None);
        };
        let status = stack
            .stack_status()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default();
        if status == "DELETE_COMPLETE" {
            return Ok(None);
        }
        Ok(Some(StackState {
            status,
            reason: stack.stack_status_reason().map(str::to_owned),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect(),
            tags: stack
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            parameters: stack
                .parameters()
                .iter()
                .filter_map(|p| {
                    Some((
                        p.parameter_key()?.to_owned(),
                        p.parameter_value()?.to_owned(),
                    ))
                })
                .collect(),
        }))
    }

    /// Creates the stack `name` from `template_body` (small templates only)
    /// and waits for it. Another creation of the same stack that is already
    /// running is waited for instead.
    pub async fn create_small(
        &self,
        name: &str,
        template_body: &str,
        tags: &[Tag],
        progress: &Progress,
    ) -> anyhow::Result<StackState> {
        let since = DateTime::from(std::time::SystemTime::now());
        match self
            .client
            .create_stack()
            .stack_name(name)
            .template_body(template_body)
            .set_tags(Some(tags.to_vec()))
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("AlreadyExistsException") => {}
            Err(e) => {
                return Err(anyhow!(
                    "creating stack {name}: {}",
                    DisplayErrorContext(&e)
                ));
            }
        }
        self.wait(name, since, progress).await
    }

    /// Makes a change set that takes `stack` to the template at
    /// `template_url`, waits until CloudFormation has computed it, and
    /// returns its rows; `None` when the template and parameters change
    /// nothing (the empty change set is deleted).
    pub async fn change_set(
        &self,
        request: &ChangeSetRequest<'_>,
    ) -> anyhow::Result<Option<Vec<ResourceChange>>> {
        let kind = if request.create {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        };
        self.client
            .create_change_set()
            .stack_name(request.stack)
            .change_set_name(request.name)
            .change_set_type(kind)
            .template_url(request.template_url)
            .set_parameters(Some(request.parameters.to_vec()))
            .set_tags(Some(request.tags.to_vec()))
            .capabilities(Capability::CapabilityIam)
            .capabilities(Capability::CapabilityNamedIam)
            .description(request.description)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "creating change set {} on {}: {}",
                    request.name,
                    request.stack,
                    DisplayErrorContext(&e)
                )
            })?;
        loop {
            let mut rows = Vec::new();
            let mut token = None;
            let status;
            let reason;
            loop {
                let page = self
                    .client
                    .describe_change_set()
                    .stack_name(request.stack)
                    .change_set_name(request.name)
                    .set_next_token(token)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "reading change set {}: {}",
                            request.name,
                            DisplayErrorContext(&e)
                        )
                    })?;
                rows.extend(page.changes().iter().filter_map(|c| {
                    let rc = c.resource_change()?;
                    Some(row(rc))
                }));
                token = page.next_token().map(str::to_owned);
                if token.is_none() {
                    status = page.status().cloned();
                    reason = page.status_reason().map(str::to_owned);
                    break;
                }
            }
            match status {
                Some(ChangeSetStatus::CreateComplete) => {
                    rows.sort_by(|a, b| (a.action, &a.logical_id).cmp(&(b.action, &b.logical_id)));
                    return Ok(Some(rows));
                }
                Some(ChangeSetStatus::Failed) => {
                    let reason = reason.unwrap_or_default();
                    if reason.contains("didn't contain changes") || reason.contains("No updates") {
                        self.delete_change_set(request.stack, request.name).await;
                        return Ok(None);
                    }
                    self.delete_change_set(request.stack, request.name).await;
                    return Err(anyhow!(
                        "CloudFormation could not make change set {} on {}: {reason}",
                        request.name,
                        request.stack
                    ));
                }
                _ => tokio::time::sleep(self.poll).await,
            }
        }
    }

    /// Deletes a change set; a failure only leaves a harmless change set
    /// behind, so it is not an error.
    pub async fn delete_change_set(&self, stack: &str, name: &str) {
        let _ = self
            .client
            .delete_change_set()
            .stack_name(stack)
            .change_set_name(name)
            .send()
            .await;
    }

    /// Executes a change set and waits for the stack to settle.
    pub async fn execute(
        &self,
        stack: &str,
        change_set: &str,
        progress: &Progress,
    ) -> anyhow::Result<StackState> {
        let since = DateTime::from(std::time::SystemTime::now());
        self.client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(change_set)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "executing change set {change_set} on {stack}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        self.wait(stack, since, progress).await
    }

    /// Deletes the stack and waits until it is gone. Resources with
    /// `DeletionPolicy: Retain` stay.
    pub async fn delete(&self, stack: &str, progress: &Progress) -> anyhow::Result<()> {
        let since = DateTime::from(std::time::SystemTime::now());
        self.client
            .delete_stack()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| anyhow!("deleting stack {stack}: {}", DisplayErrorContext(&e)))?;
        match self.wait(stack, since, progress).await {
            Ok(state) if state.status == "DELETE_FAILED" => Err(failure(stack, &state, progress)),
            Ok(_) => Ok(()),
            Err(e) if e.to_string().contains("does not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The physical ids of the stack's resources by logical id, with types.
    pub async fn resources(
        &self,
        stack: &str,
    ) -> anyhow::Result<BTreeMap<String, (String, String)>> {
        let mut out = BTreeMap::new();
        let mut pages = self
            .client
            .list_stack_resources()
            .stack_name(stack)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| {
                anyhow!(
                    "listing the resources of {stack}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
            if let (Some(logical), Some(physical), Some(kind)) = (
                item.logical_resource_id(),
                item.physical_resource_id(),
                item.resource_type(),
            ) {
                out.insert(logical.to_owned(), (physical.to_owned(), kind.to_owned()));
            }
        }
        Ok(out)
    }

    /// The deployed template's body.
    pub async fn template(&self, stack: &str) -> anyhow::Result<String> {
        let answer = self
            .client
            .get_template()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "reading the template of {stack}: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        Ok(answer.template_body().unwrap_or_default().to_owned())
    }

    /// Polls the stack until no operation runs on it, showing every event
    /// newer than `since`; returns its final state (a deleted stack reports
    /// `DELETE_COMPLETE`).
    async fn wait(
        &self,
        stack: &str,
        since: DateTime,
        progress: &Progress,
    ) -> anyhow::Result<StackState> {
        let mut seen = std::collections::HashSet::new();
        loop {
            for event in self.events_since(stack, since).await? {
                if seen.insert(event.event_id().unwrap_or_default().to_owned()) {
                    progress.event(&event);
                }
            }
            match self.describe(stack).await? {
                None => {
                    return Ok(StackState {
                        status: "DELETE_COMPLETE".into(),
                        reason: None,
                        outputs: BTreeMap::new(),
                        tags: BTreeMap::new(),
                        parameters: BTreeMap::new(),
                    });
                }
                Some(state) if !state.in_progress() => {
                    progress.status(&state.status);
                    return Ok(state);
                }
                Some(state) => progress.status(&state.status),
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The stack's events newer than `since`, oldest first.
    async fn events_since(&self, stack: &str, since: DateTime) -> anyhow::Result<Vec<StackEvent>> {
        let mut events = Vec::new();
        let mut token = None;
        'pages: loop {
            let page = match self
                .client
                .describe_stack_events()
                .stack_name(stack)
                .set_next_token(token)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if e.message().is_some_and(|m| m.contains("does not exist")) => break,
                Err(e) => {
                    return Err(anyhow!(
                        "reading the events of {stack}: {}",
                        DisplayErrorContext(&e)
                    ));
                }
            };
            for event in page.stack_events() {
                // Newest first: stop at the first event before the operation.
                if event.timestamp().is_some_and(|t| t.secs() < since.secs()) {
                    break 'pages;
                }
                events.push(event.clone());
            }
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        events.reverse();
        Ok(events)
    }

    /// The failed resource events of the stack's latest operation, oldest
    /// first: what to show when an operation fails.
    pub async fn failures(&self, stack: &str) -> Vec<StackEvent> {
        let since = DateTime::from_secs(0);
        let events = self.events_since(stack, since).await.unwrap_or_default();
        let last_start = events
            .iter()
            .rposition(|e| {
                e.logical_resource_id() == Some(stack)
                    && e.resource_status()
                        .is_some_and(|s| s.as_str().ends_with("_IN_PROGRESS"))
                    && e.resource_status_reason()
                        .is_some_and(|r| r.contains("User Initiated"))
            })
            .unwrap_or(0);
        events[last_start..]
            .iter()
            .filter(|e| {
                e.resource_status()
                    .is_some_and(|s| s.as_str().ends_with("_FAILED"))
            })
            .cloned()
            .collect()
    }
}

/// What a change set is made from.
#[derive(Debug)]
pub struct ChangeSetRequest<'a> {
    /// The stack.
    pub stack: &'a str,
    /// The change set's name.
    pub name: &'a str,
    /// Whether the stack is new.
    pub create: bool,
    /// Where the template was uploaded (templates over 51,200 bytes must be
    /// uploaded).
    pub template_url: &'a str,
    /// The parameters.
    pub parameters: &'a [Parameter],
    /// The stack tags.
    pub tags: &'a [Tag],
    /// What it is for.
    pub description: &'a str,
}

/// One change set row in plan terms.
fn row(rc: &aws_sdk_cloudformation::types::ResourceChange) -> ResourceChange {
    let action = match rc.action() {
        Some(ChangeAction::Add) => ResourceAction::Add,
        Some(ChangeAction::Remove) => ResourceAction::Remove,
        _ => match rc.replacement() {
            Some(Replacement::True) => ResourceAction::Replace,
            Some(Replacement::Conditional) => ResourceAction::MaybeReplace,
            _ => ResourceAction::Modify,
        },
    };
    let mut details: Vec<String> = rc
        .details()
        .iter()
        .filter_map(|d| {
            let target = d.target()?;
            let what = match (target.attribute(), target.name()) {
                (Some(a), Some(n)) => format!("{}.{n}", a.as_str()),
                (Some(a), None) => a.as_str().to_owned(),
                _ => return None,
            };
            Some(match target.requires_recreation() {
                Some(r) if r.as_str() != "Never" => {
                    format!("{what} (recreation: {})", r.as_str().to_lowercase())
                }
                _ => what,
            })
        })
        .collect();
    if details.is_empty() {
        details = rc.scope().iter().map(|s| s.as_str().to_owned()).collect();
    }
    details.sort();
    details.dedup();
    ResourceChange {
        action,
        logical_id: rc.logical_resource_id().unwrap_or_default().to_owned(),
        resource_type: rc.resource_type().unwrap_or_default().to_owned(),
        details,
    }
}

/// The error an operation that ended in `state` reports: the failing
/// resources and CloudFormation's reasons, then what to do.
pub fn failure(stack: &str, state: &StackState, progress: &Progress) -> anyhow::Error {
    let mut text = format!("stack {stack} ended in {}", state.status);
    if let Some(reason) = &state.reason {
        text.push_str(&format!(": {reason}"));
    }
    if let Some(what) = remedy(&state.status, stack) {
        text.push_str(&format!("\nwhat to do: {what}"));
    }
    progress.finish();
    anyhow!(text)
}

/// Describes failed events for an error message.
pub fn describe_failures(events: &[StackEvent]) -> String {
    let mut text = String::new();
    for e in events {
        text.push_str(&format!(
            "\n  {} ({}) {}: {}",
            e.logical_resource_id().unwrap_or("?"),
            e.resource_type().unwrap_or("?"),
            e.resource_status().map_or("?", |s| s.as_str()),
            e.resource_status_reason().unwrap_or("no reason given"),
        ));
    }
    text
}

/// Progress on the terminal: a spinner with the stack's status, and one
/// line per resource event (printed plainly when stderr is not a terminal).
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    done: std::sync::atomic::AtomicUsize,
}

impl Progress {
    /// A spinner titled `what` (`apply acme-shop-prod`).
    pub fn new(what: &str) -> Progress {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            done: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// A line above the spinner.
    pub fn line(&self, text: &str) {
        if self.bar.is_hidden() {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            self.bar.println(text);
        }
    }

    fn event(&self, event: &StackEvent) {
        let status = event.resource_status().map_or("", |s| s.as_str());
        if status.ends_with("_COMPLETE") {
            self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut text = format!(
            "  {status:<22} {:<40} {}",
            event.logical_resource_id().unwrap_or("?"),
            event.resource_type().unwrap_or("")
        );
        if let Some(reason) = event.resource_status_reason().filter(|r| !r.is_empty()) {
            text.push_str(&format!("  {reason}"));
        }
        self.line(&text);
    }

    fn status(&self, status: &str) {
        let done = self.done.load(std::sync::atomic::Ordering::Relaxed);
        self.bar.set_message(format!("{status} ({done} done)"));
    }

    /// Stops the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Parses a template's JSON (for messages: which file).
pub fn parse_template(text: &str, what: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).with_context(|| format!("{what} is not valid JSON"))
}
