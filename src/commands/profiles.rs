//! `uniflow profiles get|explain|delete`: a client of the management API
//! (`uniflow_runtime::manage`) of a running `uniflow dev` or a deployed stack.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use hyper::Method;
use serde_json::Value;

use super::api::{self, Client, encode};
use crate::ExitStatus;
use crate::cli::{OutputFormat, ProfilesCommand};

/// Runs a `profiles` subcommand.
pub fn run(command: ProfilesCommand) -> anyhow::Result<ExitStatus> {
    api::block_on(async move {
        match command {
            ProfilesCommand::Get {
                profile,
                events,
                format,
                api,
            } => get(&Client::new(&api)?, &profile, events, format).await,
            ProfilesCommand::Explain {
                profile,
                format,
                api,
            } => explain(&Client::new(&api)?, &profile, format).await,
            ProfilesCommand::Delete { profile, yes, api } => {
                if !yes && !std::io::stdin().is_terminal() {
                    let mut stderr = std::io::stderr().lock();
                    writeln!(
                        stderr,
                        "error: refusing to delete without --yes: standard input is not a terminal, so nobody can confirm"
                    )?;
                    return Ok(ExitStatus::Failure);
                }
                delete(&Client::new(&api)?, &profile, yes).await
            }
        }
    })
}

/// The live profile named by an id or a `type:value` identifier.
async fn lookup(client: &Client, target: &str) -> anyhow::Result<Value> {
    if target.contains(':') {
        client
            .call(
                Method::GET,
                &format!("/profiles?identifier={}", encode(target)),
            )
            .await
    } else {
        client
            .call(Method::GET, &format!("/profiles/{}", encode(target)))
            .await
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// `a 2, b 1` from `{"a": 2, "b": 1}`, or `none`.
fn counts(v: &Value) -> String {
    let parts: Vec<String> = v
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The first line of a profile: its id, and how it was found.
fn heading(profile: &Value) -> String {
    let id = str_of(profile, "id");
    if let Some(requested) = profile.get("requestedId").and_then(Value::as_str) {
        format!("profile {id} ({requested} was merged into it)")
    } else if let Some(identifier) = profile.get("identifier").and_then(Value::as_str) {
        format!("profile {id} (holds {identifier})")
    } else {
        format!("profile {id}")
    }
}

/// One line about an event: what it was.
fn describe(event: &Value) -> String {
    let kind = str_of(event, "type");
    let detail = match kind {
        "track" => str_of(event, "event").to_owned(),
        "page" | "screen" => str_of(event, "name").to_owned(),
        "group" => format!("groupId {}", compact(&event["groupId"])),
        "alias" => format!("previousId {}", compact(&event["previousId"])),
        "identify" => {
            let keys: Vec<&str> = event
                .get("traits")
                .and_then(Value::as_object)
                .map(|t| t.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if keys.is_empty() {
                String::new()
            } else {
                format!("traits {}", keys.join(", "))
            }
        }
        _ => String::new(),
    };
    format!("{kind:<8} {detail}").trim_end().to_owned()
}

fn compact(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

async fn get(
    client: &Client,
    target: &str,
    events: u16,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let profile = lookup(client, target).await?;
    let id = encode(str_of(&profile, "id"));
    let identities = client
        .call(Method::GET, &format!("/profiles/{id}/identities"))
        .await?;
    let page = if events > 0 {
        client
            .call(
                Method::GET,
                &format!("/profiles/{id}/events?limit={events}"),
            )
            .await?
    } else {
        serde_json::json!({ "events": [] })
    };
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let doc = serde_json::json!({
            "profile": profile,
            "identities": identities,
            "events": page["events"],
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitStatus::Success);
    }
    let mut text = String::new();
    writeln!(text, "{}", heading(&profile))?;
    writeln!(text, "  first seen   {}", str_of(&profile, "firstSeen"))?;
    writeln!(text, "  last seen    {}", str_of(&profile, "lastSeen"))?;
    writeln!(text, "  calls        {}", counts(&profile["counts"]))?;
    writeln!(text, "  track events {}", counts(&profile["eventCounts"]))?;
    let groups: Vec<&str> = list(&profile["groups"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !groups.is_empty() {
        writeln!(text, "  groups       {}", groups.join(", "))?;
    }
    let merged: Vec<&str> = list(&profile["mergedFrom"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !merged.is_empty() {
        writeln!(text, "  merged from  {}", merged.join(", "))?;
    }
    let traits = profile["traits"].as_object();
    writeln!(text, "\ntraits")?;
    match traits.filter(|t| !t.is_empty()) {
        None => writeln!(text, "  none yet (identify calls set them)")?,
        Some(traits) => {
            let width = traits.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (name, value) in traits {
                let at = profile["traitTimestamps"][name].as_str().unwrap_or("");
                writeln!(text, "  {name:<width$}  {value}  (set {at})")?;
            }
        }
    }
    writeln!(text, "\nidentifiers")?;
    let ids = list(&identities);
    let width = ids
        .iter()
        .map(|i| str_of(i, "identifier").chars().count())
        .max()
        .unwrap_or(0);
    for i in ids {
        writeln!(
            text,
            "  {:<width$}  linked {}",
            str_of(i, "identifier"),
            str_of(i, "linkedAt")
        )?;
    }
    if events > 0 {
        let shown = list(&page["events"]);
        writeln!(text, "\nlatest events, newest first")?;
        if shown.is_empty() {
            writeln!(text, "  none")?;
        }
        for e in shown {
            writeln!(
                text,
                "  {}  {}  ({}, {})",
                str_of(e, "timestamp"),
                describe(&e["event"]),
                str_of(e, "messageId"),
                str_of(&e["event"], "sourceId"),
            )?;
        }
        if page.get("next").is_some_and(Value::is_string) {
            writeln!(
                text,
                "  ... older events: --events {}",
                (u32::from(events) * 5).min(1000)
            )?;
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

async fn explain(
    client: &Client,
    target: &str,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let profile = lookup(client, target).await?;
    let id = encode(str_of(&profile, "id"));
    let identities = client
        .call(Method::GET, &format!("/profiles/{id}/identities"))
        .await?;
    let history = client
        .call(Method::GET, &format!("/profiles/{id}/history"))
        .await?;
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        let doc = serde_json::json!({
            "profile": profile,
            "identities": identities,
            "history": history,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitStatus::Success);
    }
    let decisions = list(&history);
    let merges = decisions
        .iter()
        .filter(|d| str_of(d, "outcome") == "merged")
        .count();
    let refusals = decisions.len() - merges;
    let ids = list(&identities);
    let mut text = String::new();
    writeln!(
        text,
        "{}: {} identifier{}, {merges} merge{}, {refusals} refused link{}",
        heading(&profile),
        ids.len(),
        plural(ids.len()),
        plural(merges),
        plural(refusals),
    )?;
    writeln!(
        text,
        "\nHow each identifier was linked, oldest first (time of the event that brought it):"
    )?;
    let width = ids
        .iter()
        .map(|i| str_of(i, "identifier").chars().count())
        .max()
        .unwrap_or(0);
    for i in ids {
        writeln!(
            text,
            "  {}  {:<width$}  by event {} from source {}",
            str_of(i, "linkedAt"),
            str_of(i, "identifier"),
            str_of(i, "messageId"),
            str_of(i, "sourceId"),
        )?;
    }
    if decisions.is_empty() {
        writeln!(
            text,
            "\nNo merges or refusals: every identifier above was linked by an event of this one profile."
        )?;
    } else {
        writeln!(text, "\nMerges and refused links, oldest first:")?;
    }
    let own: Vec<&str> = std::iter::once(str_of(&profile, "id"))
        .chain(
            list(&profile["mergedFrom"])
                .iter()
                .filter_map(Value::as_str),
        )
        .collect();
    for (n, d) in decisions.iter().enumerate() {
        let what = if str_of(d, "outcome") == "merged" {
            format!(
                "merged profile {} into {}",
                str_of(d, "from"),
                str_of(d, "into")
            )
        } else {
            match d.get("profile").and_then(Value::as_str) {
                // Recorded on this profile because it kept the identifier.
                Some(holder) if own.contains(&holder) => format!(
                    "kept {}: an event of another profile asked to take it and was refused",
                    str_of(d, "identifier")
                ),
                Some(holder) => format!(
                    "refused to link {}: it belongs to profile {holder}, which stays separate",
                    str_of(d, "identifier")
                ),
                None => format!("refused to link {}", str_of(d, "identifier")),
            }
        };
        let carried: Vec<&str> = list(&d["identifiers"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        writeln!(text, "  {}. {}  {what}", n + 1, str_of(d, "timestamp"))?;
        writeln!(
            text,
            "     event {} from source {} carried {}",
            str_of(d, "messageId"),
            str_of(d, "sourceId"),
            carried.join(", ")
        )?;
        writeln!(text, "     through {}", str_of(d, "via"))?;
        writeln!(text, "     rule: {}", str_of(d, "rule"))?;
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn delete(client: &Client, target: &str, yes: bool) -> anyhow::Result<ExitStatus> {
    let profile = lookup(client, target).await?;
    let id = str_of(&profile, "id").to_owned();
    if !yes {
        let merged = list(&profile["mergedFrom"]).len();
        let mut stderr = std::io::stderr().lock();
        write!(
            stderr,
            "Delete {} and {} profile{} merged into it, with their events, and suppress their identifiers so they never link again?\nThis cannot be undone. Type yes to delete: ",
            heading(&profile),
            merged,
            plural(merged)
        )?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim(), "yes" | "y" | "YES" | "Y") {
            writeln!(stderr, "nothing deleted")?;
            return Ok(ExitStatus::Failure);
        }
    }
    let deleted = client
        .call(Method::DELETE, &format!("/profiles/{}", encode(&id)))
        .await?;
    let profiles: Vec<&str> = list(&deleted["deleted"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let suppressed: Vec<&str> = list(&deleted["suppressedIdentifiers"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "deleted {} profile{}: {}",
        profiles.len(),
        plural(profiles.len()),
        profiles.join(", ")
    )?;
    writeln!(
        out,
        "suppressed {} identifier{} (they will never link again): {}",
        suppressed.len(),
        plural(suppressed.len()),
        suppressed.join(", ")
    )?;
    Ok(ExitStatus::Success)
}
