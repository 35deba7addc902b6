//! `uniflow dlq list|show|redrive`: a destination's dead-letter queue,
//! through the management API (`/api/v1/destinations/{name}/...`), or with
//! `--aws` straight from the deployed stack's queues through the same
//! [`Deliveries`] the management Lambda serves.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};

use anyhow::Context;
use hyper::Method;
use serde::Deserialize;
use serde_json::Value;
use uniflow_runtime::delivery::admin::{DeadLetter, Deliveries, Redriven};
use uniflow_runtime::delivery::metrics::DeliveryMetrics;
use uniflow_runtime::time::format_ms;
use uniflow_schemas::condition::Condition;

use super::api::{self, Client, encode};
use super::{aws, compile};
use crate::ExitStatus;
use crate::cli::{ApiArgs, DlqCommand, OutputFormat};

/// The most dead letters the API gives in one page.
const PAGE: u32 = 500;

/// The most characters of a reason in `list`'s table.
const REASON_WIDTH: usize = 60;

/// Runs a `dlq` subcommand.
pub fn run(command: DlqCommand) -> anyhow::Result<ExitStatus> {
    api::block_on(async move {
        match command {
            DlqCommand::List {
                destination,
                limit,
                format,
                aws,
                api,
            } => match Target::new(&destination, &api, aws).await? {
                Ok(target) => list(&target, &destination, limit, format).await,
                Err(status) => Ok(status),
            },
            DlqCommand::Show {
                destination,
                id,
                format,
                aws,
                api,
            } => match Target::new(&destination, &api, aws).await? {
                Ok(target) => show(&target, &destination, &id, format).await,
                Err(status) => Ok(status),
            },
            DlqCommand::Redrive {
                destination,
                max,
                filter,
                yes,
                aws,
                api,
            } => {
                if let Some(text) = &filter
                    && let Err(e) = Condition::parse(text)
                {
                    let mut stderr = std::io::stderr().lock();
                    writeln!(stderr, "error: the filter `{text}`: {e}")?;
                    return Ok(ExitStatus::Failure);
                }
                if !yes && !std::io::stdin().is_terminal() {
                    let mut stderr = std::io::stderr().lock();
                    writeln!(
                        stderr,
                        "error: refusing to redrive without --yes: standard input is not a terminal, so nobody can confirm"
                    )?;
                    return Ok(ExitStatus::Failure);
                }
                let request = Redrive { max, filter, yes };
                match Target::new(&destination, &api, aws).await? {
                    Ok(target) => redrive(&target, &destination, &request).await,
                    Err(status) => Ok(status),
                }
            }
        }
    })
}

/// Where the dead letters are: behind a management API, or in the
/// deployed stack's queues (`--aws`).
#[derive(Debug)]
enum Target {
    Api(Client),
    Aws(aws::Stack),
}

impl Target {
    /// The target of a command: with `--aws`, the project's stack, once
    /// the destination is known to the project and its queues are there;
    /// `Err` after saying why not (exit 1).
    async fn new(
        destination: &str,
        api: &ApiArgs,
        aws: bool,
    ) -> anyhow::Result<Result<Target, ExitStatus>> {
        if !aws {
            return Ok(Ok(Target::Api(Client::new(api)?)));
        }
        let (config, bundle) = match compile(&api.path, "uniflow dlq --aws")? {
            Ok(compiled) => compiled,
            Err(status) => return Ok(Err(status)),
        };
        if !bundle.destinations.contains_key(destination) {
            let known: Vec<&str> = bundle.destinations.keys().map(String::as_str).collect();
            writeln!(
                std::io::stderr(),
                "error: no destination `{destination}` in this project (it has: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )?;
            return Ok(Err(ExitStatus::Failure));
        }
        let stack = aws::Stack::connect(&config).await?;
        if let Some(status) = stack.check(destination).await? {
            return Ok(Err(status));
        }
        Ok(Ok(Target::Aws(stack)))
    }

    async fn page(
        &self,
        destination: &str,
        after: Option<&str>,
        limit: u32,
    ) -> anyhow::Result<Page> {
        match self {
            Target::Api(client) => page(client, destination, after, limit).await,
            Target::Aws(stack) => {
                let items = stack
                    .deliveries
                    .dead_letters(destination, after, limit as usize)
                    .await
                    .map_err(|e| stack.unreachable(e))?;
                let next = (items.len() == limit as usize)
                    .then(|| items.last().map(|l| l.id.clone()))
                    .flatten();
                Ok(Page { items, next })
            }
        }
    }

    async fn metrics(&self, destination: &str) -> anyhow::Result<DeliveryMetrics> {
        match self {
            Target::Api(client) => metrics(client, destination).await,
            Target::Aws(stack) => stack
                .deliveries
                .metrics(destination)
                .await
                .map_err(|e| stack.unreachable(e)),
        }
    }

    async fn redrive(&self, destination: &str, request: &Redrive) -> anyhow::Result<Redriven> {
        match self {
            Target::Api(client) => {
                let mut body = serde_json::Map::new();
                if let Some(max) = request.max {
                    body.insert("max".to_owned(), max.into());
                }
                if let Some(filter) = &request.filter {
                    body.insert("filter".to_owned(), filter.clone().into());
                }
                let answer = client
                    .post(
                        &path(destination, "/dead-letters/redrive"),
                        serde_json::to_vec(&body)?,
                    )
                    .await?;
                serde_json::from_value(answer)
                    .context("the management API's redrive answer is not what this uniflow reads")
            }
            Target::Aws(stack) => {
                let filter = request
                    .filter
                    .as_deref()
                    .map(Condition::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("the filter: {e}"))?;
                stack
                    .deliveries
                    .redrive(destination, request.max, filter.as_ref())
                    .await
                    .map_err(|e| stack.unreachable(e))
            }
        }
    }
}

/// One page of `GET .../dead-letters`.
#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<DeadLetter>,
    #[serde(default)]
    next: Option<String>,
}

fn path(destination: &str, rest: &str) -> String {
    format!("/destinations/{}{rest}", encode(destination))
}

async fn page(
    client: &Client,
    destination: &str,
    after: Option<&str>,
    limit: u32,
) -> anyhow::Result<Page> {
    let mut query = format!("?limit={limit}");
    if let Some(after) = after {
        let _ = write!(query, "&after={}", encode(after));
    }
    let answer = client
        .call(
            Method::GET,
            &path(destination, &format!("/dead-letters{query}")),
        )
        .await?;
    serde_json::from_value(answer)
        .context("the management API's page of dead letters is not what this uniflow reads")
}

async fn metrics(client: &Client, destination: &str) -> anyhow::Result<DeliveryMetrics> {
    let answer = client
        .call(Method::GET, &path(destination, "/metrics"))
        .await?;
    serde_json::from_value(answer)
        .context("the management API's delivery metrics are not what this uniflow reads")
}

/// The event of a dead letter, parsed (`Null` if it is not JSON, which the
/// queues never store).
fn event_of(letter: &DeadLetter) -> Value {
    serde_json::from_slice(&letter.message.event).unwrap_or(Value::Null)
}

/// What the event is: a track event's name, a page or screen's name after
/// its type, else the call type.
fn describe(event: &Value) -> String {
    let field = |k: &str| event.get(k).and_then(Value::as_str);
    match (field("type"), field("event"), field("name")) {
        (Some("track"), Some(name), _) => name.to_owned(),
        (Some(kind @ ("page" | "screen")), _, Some(name)) => format!("{kind} {name}"),
        (Some(kind), _, _) => kind.to_owned(),
        (None, _, _) => "?".to_owned(),
    }
}

fn when(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), format_ms)
}

/// `text` on one line, cut to `width` characters with an ellipsis.
fn shorten(text: &str, width: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= width {
        return line;
    }
    let cut: String = line.chars().take(width.saturating_sub(3)).collect();
    format!("{}...", cut.trim_end())
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

async fn list(
    client: &Target,
    destination: &str,
    limit: u32,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let mut letters = Vec::new();
    let mut after: Option<String> = None;
    let mut more = false;
    while (letters.len() as u64) < u64::from(limit) {
        let want = (limit - letters.len() as u32).min(PAGE);
        let page = client.page(destination, after.as_deref(), want).await?;
        if page.items.is_empty() {
            more = false;
            break;
        }
        letters.extend(page.items);
        match page.next {
            Some(next) => {
                after = Some(next);
                more = true;
            }
            None => {
                more = false;
                break;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&letters)?)?;
        return Ok(ExitStatus::Success);
    }
    if letters.is_empty() {
        let m = client.metrics(destination).await?;
        writeln!(
            out,
            "no dead letters for `{destination}` ({} delivered, {} waiting for a retry)",
            m.delivered, m.queued
        )?;
        return Ok(ExitStatus::Success);
    }
    let header = [
        "HANDLE",
        "MESSAGE ID",
        "EVENT",
        "ATTEMPTS",
        "FAILED AT",
        "REASON",
    ];
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|l| {
            [
                l.id.clone(),
                l.message.id.clone(),
                describe(&event_of(l)),
                l.message.attempts.to_string(),
                when(l.failed_ms),
                shorten(&l.reason, REASON_WIDTH),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let line = |text: &mut String, cells: &[&str]| {
        let mut row = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                row.push_str(cell);
            } else {
                let _ = write!(row, "{cell:<width$}  ", width = widths[i]);
            }
        }
        let _ = writeln!(text, "{}", row.trim_end());
    };
    line(&mut text, &header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut text, &cells);
    }
    if more {
        // The last page may have been full with nothing after it.
        let depth = client.metrics(destination).await?.dlq_depth;
        if depth > letters.len() as u64 {
            let _ = writeln!(
                text,
                "... {} shown of {depth} dead letters: --limit to see more",
                letters.len(),
            );
        }
    }
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

async fn show(
    client: &Target,
    destination: &str,
    id: &str,
    format: OutputFormat,
) -> anyhow::Result<ExitStatus> {
    let mut after: Option<String> = None;
    let found = loop {
        let page = client.page(destination, after.as_deref(), PAGE).await?;
        if page.items.is_empty() {
            break None;
        }
        if let Some(letter) = page
            .items
            .into_iter()
            .find(|l| l.id == id || l.message.id == id)
        {
            break Some(letter);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break None,
        }
    };
    let Some(letter) = found else {
        let m = client.metrics(destination).await?;
        let mut stderr = std::io::stderr().lock();
        writeln!(
            stderr,
            "error: no dead letter `{id}` for `{destination}`: no handle or messageId is `{id}` among its {} dead letter{} (`uniflow dlq list {destination}` shows them)",
            m.dlq_depth,
            plural(m.dlq_depth)
        )?;
        return Ok(ExitStatus::Failure);
    };
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&letter)?)?;
        return Ok(ExitStatus::Success);
    }
    let event = event_of(&letter);
    let received = format_ms(letter.message.received_ms);
    let mut text = String::new();
    writeln!(text, "dead letter {} of `{destination}`", letter.id)?;
    writeln!(text, "  messageId    {}", letter.message.id)?;
    writeln!(text, "  event        {}", describe(&event))?;
    writeln!(text, "  received at  {received}")?;
    writeln!(text, "  failed at    {}", when(letter.failed_ms))?;
    writeln!(text, "  attempts     {}", letter.message.attempts)?;
    writeln!(text, "  reason       {}", letter.reason)?;
    if let Some(last) = &letter.message.last_error
        && *last != letter.reason
    {
        writeln!(text, "  last error   {last}")?;
    }
    writeln!(text, "\nevent")?;
    writeln!(text, "{}", serde_json::to_string_pretty(&event)?)?;
    writeln!(
        text,
        "\nOnce the cause is fixed: uniflow dlq redrive {destination} (--filter to choose which)"
    )?;
    out.write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

/// What `redrive` was asked.
#[derive(Debug)]
struct Redrive {
    max: Option<u64>,
    filter: Option<String>,
    yes: bool,
}

async fn redrive(
    client: &Target,
    destination: &str,
    request: &Redrive,
) -> anyhow::Result<ExitStatus> {
    let depth = client.metrics(destination).await?.dlq_depth;
    if depth == 0 {
        writeln!(
            std::io::stdout(),
            "no dead letters for `{destination}`: nothing to redrive"
        )?;
        return Ok(ExitStatus::Success);
    }
    if !request.yes {
        let how_many = match request.max {
            Some(max) if max < depth => format!("up to {max} of the {depth}"),
            _ if depth == 1 => "the 1".to_owned(),
            _ => format!("all {depth}"),
        };
        let which = request
            .filter
            .as_ref()
            .map(|f| format!(" whose event matches `{f}`"))
            .unwrap_or_default();
        let mut stderr = std::io::stderr().lock();
        write!(
            stderr,
            "Move {how_many} dead letter{}{which} of `{destination}` back to its queue, attempts reset?\nType yes to redrive: ",
            plural(depth)
        )?;
        stderr.flush()?;
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("cannot read the answer")?;
        if !matches!(answer.trim(), "yes" | "y" | "YES" | "Y") {
            writeln!(stderr, "nothing redriven")?;
            return Ok(ExitStatus::Failure);
        }
    }
    let done = client.redrive(destination, request).await?;
    writeln!(
        std::io::stdout(),
        "moved {} dead letter{} back to `{destination}`'s queue (attempts reset); kept {} in the dead-letter queue",
        done.moved,
        plural(done.moved),
        done.kept
    )?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_described_by_name_or_type() {
        for (event, expect) in [
            (
                json!({"type": "track", "event": "Order Completed"}),
                "Order Completed",
            ),
            (json!({"type": "page", "name": "Home"}), "page Home"),
            (json!({"type": "page"}), "page"),
            (json!({"type": "identify", "traits": {}}), "identify"),
            (json!({"event": "x"}), "?"),
            (Value::Null, "?"),
        ] {
            assert_eq!(describe(&event), expect, "{event}");
        }
    }

    #[test]
    fn reasons_are_shortened_on_one_line() {
        assert_eq!(
            shorten("HTTP 400:\n  bad   field", 60),
            "HTTP 400: bad field"
        );
        let long = "x".repeat(100);
        let short = shorten(&long, 10);
        assert_eq!(short, "xxxxxxx...");
        assert_eq!(short.chars().count(), 10);
        assert_eq!(shorten("é".repeat(20).as_str(), 5).chars().count(), 5);
    }
}
