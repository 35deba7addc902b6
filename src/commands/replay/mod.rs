//! `uniflow replay`: archived events sent again to one destination's queue.
//!
//! Three parts, so each can change alone (an archive on S3, a queue on
//! SQS): an [`Archive`] lists the hour partitions of the window and reads
//! their events; [`select`] keeps those the destination receives, in the
//! window; a [`Sink`] puts them on the destination's queue, in chunks
//! within its limits ([`chunks`]).

mod archive;
mod window;

use std::io::{IsTerminal, Write};
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use hyper::Method;
use hyper::body::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use uniflow_runtime::delivery::Message;
use uniflow_runtime::embedded::DataDir;
use uniflow_runtime::time::parse_ms;
use uniflow_schemas::bundle::DestinationInfo;

use self::archive::{Archive, LocalArchive};
use self::window::Window;
use super::api::{self, Client, encode};
use super::{aws, compile};
use crate::ExitStatus;
use crate::cli::ApiArgs;

/// What `uniflow replay` was asked.
#[derive(Debug)]
pub struct Request {
    /// The destination's name.
    pub destination: String,
    /// `--from`, as written.
    pub from: String,
    /// `--to`, as written.
    pub to: String,
    /// Only track events of this name.
    pub event: Option<String>,
    /// Count, send nothing.
    pub dry_run: bool,
    /// On the deployed stack (`--aws`), not through the management API.
    pub aws: Option<OnAws>,
    /// The project, its data directory and the management API.
    pub api: ApiArgs,
}

/// `--aws`: the deployed stack's S3 archive and SQS queue.
#[derive(Debug)]
pub struct OnAws {
    /// `--raw-bucket`: the raw archive's bucket, when not found by its tags.
    pub raw_bucket: Option<String>,
}

/// Runs `uniflow replay`.
pub fn run(request: &Request) -> anyhow::Result<ExitStatus> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let window = match Window::parse(&request.from, &request.to, now_ms) {
        Ok(w) => w,
        Err(e) => return refuse(&e),
    };
    let (config, bundle) = match compile(&request.api.path, "uniflow replay")? {
        Ok(compiled) => compiled,
        Err(status) => return Ok(status),
    };
    let name = request.destination.as_str();
    let Some(destination) = bundle.destinations.get(name) else {
        let known: Vec<&str> = bundle.destinations.keys().map(String::as_str).collect();
        return refuse(&format!(
            "no destination `{name}` in this project (it has: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    if let (Some(event), Some(events)) = (&request.event, &destination.events)
        && !events.contains(event)
    {
        return refuse(&format!(
            "destination `{name}` does not receive `{event}` (its events: {})",
            events.join(", ")
        ));
    }
    let plan = Plan {
        destination: name,
        info: destination,
        window,
        event: request.event.as_deref(),
    };
    if let Some(on_aws) = &request.aws {
        return api::block_on(on_aws.replay(&config, &plan, request.dry_run));
    }
    let data = api::data_dir(&request.api.path, request.api.data.as_deref());
    let dir = DataDir::new(&data);
    if !dir.archive().is_dir() {
        return refuse(&format!(
            "no archive in {}: `uniflow dev` writes {} as it runs (is --data the one `uniflow dev` used?)",
            data.display(),
            dir.archive().join("raw").display()
        ));
    }
    let archive = LocalArchive::new(&dir.archive().join("raw"));
    api::block_on(async move {
        let sink = if request.dry_run {
            None
        } else {
            let sink = ApiSink {
                client: Client::new(&request.api)?,
            };
            sink.prepare(name).await?;
            Some(sink)
        };
        let done = replay(&archive, sink.as_ref(), &plan, &progress_bar()).await?;
        writeln!(
            std::io::stdout(),
            "{}",
            summary(&done, &plan, request.dry_run)
        )?;
        Ok(ExitStatus::Success)
    })
}

impl OnAws {
    /// Replays from the stack's S3 archive to the destination's SQS queue
    /// with [`Queues::replay`](uniflow_runtime_aws::queues::Queues::replay),
    /// which reads, selects and sends object by object (the [`Archive`] and
    /// [`Sink`] seams do not fit it: it lists the hour after the window for
    /// Firehose's late files and passes over unreadable lines), with the
    /// same progress bar, counting archive objects.
    async fn replay(
        &self,
        config: &uniflow_compiler::Config,
        plan: &Plan<'_>,
        dry_run: bool,
    ) -> anyhow::Result<ExitStatus> {
        let stack = aws::Stack::connect(config).await?;
        if let Some(status) = stack.check(plan.destination).await? {
            return Ok(status);
        }
        let bucket = match stack.raw_bucket(self.raw_bucket.as_deref()).await? {
            Ok(bucket) => bucket,
            Err(why) => return refuse(&why),
        };
        let bar = progress_bar();
        let replay = uniflow_runtime_aws::queues::Replay {
            bucket: &bucket,
            prefix: stack.deployed.raw_archive_prefix,
            destination: plan.destination,
            info: plan.info,
            from_ms: plan.window.from_ms,
            to_ms: plan.window.to_ms,
            event: plan.event,
            dry_run,
        };
        let done = stack
            .deliveries
            .queues()
            .replay(&replay, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await;
        bar.finish_and_clear();
        let done = done.map_err(|e| stack.unreachable(e))?;
        writeln!(
            std::io::stdout(),
            "{}",
            aws_summary(&done, plan, &bucket, dry_run)
        )?;
        Ok(ExitStatus::Success)
    }
}

/// The last line of a replay on AWS.
fn aws_summary(
    done: &uniflow_runtime_aws::queues::ReplayReport,
    plan: &Plan<'_>,
    bucket: &str,
    dry_run: bool,
) -> String {
    let (name, window) = (plan.destination, plan.window);
    let s = |n: usize| if n == 1 { "" } else { "s" };
    let what = match plan.event {
        Some(event) => format!("`{event}` event"),
        None => "event".to_owned(),
    };
    let mut text = if done.selected == 0 {
        format!("no events to replay: none received in {window} is an {what} `{name}` receives")
    } else if dry_run {
        format!(
            "would replay {} {what}{} received in {window} to `{name}` (dry run: nothing sent)",
            done.selected,
            s(done.selected)
        )
    } else {
        format!(
            "replayed {} {what}{} received in {window} to `{name}`'s queue",
            done.sent,
            s(done.sent)
        )
    };
    text.push_str(&format!(
        " ({} archive object{} read in s3://{bucket}",
        done.objects,
        s(done.objects)
    ));
    if done.unreadable > 0 {
        text.push_str(&format!(
            "; {} unreadable line{} passed over",
            done.unreadable,
            s(done.unreadable)
        ));
    }
    if !done.too_large.is_empty() {
        text.push_str(&format!(
            "; too large for SQS, not sent: {}",
            done.too_large.join(", ")
        ));
    }
    text.push(')');
    text
}

/// The last line of a replay.
fn summary(done: &Done, plan: &Plan<'_>, dry_run: bool) -> String {
    let (name, window) = (plan.destination, plan.window);
    let events = |n: u64| {
        let s = if n == 1 { "" } else { "s" };
        match plan.event {
            Some(event) => format!("{n} `{event}` event{s}"),
            None => format!("{n} event{s}"),
        }
    };
    if done.in_window == 0 {
        format!("no events to replay: the archive has none received in {window}")
    } else if done.selected == 0 {
        let which = match plan.event {
            Some(event) => format!("a `{event}` event"),
            None => "an event".to_owned(),
        };
        let (n, s) = (done.in_window, if done.in_window == 1 { "" } else { "s" });
        format!(
            "no events to replay: of the {n} archived event{s} received in {window}, none is {which} `{name}` receives"
        )
    } else if dry_run {
        format!(
            "would replay {} received in {window} to `{name}` (dry run: nothing sent)",
            events(done.selected)
        )
    } else {
        format!(
            "replayed {} received in {window} to `{name}`'s queue",
            events(done.sent)
        )
    }
}

/// Prints `error: MESSAGE`; exit 1.
fn refuse(message: &str) -> anyhow::Result<ExitStatus> {
    writeln!(std::io::stderr(), "error: {message}")?;
    Ok(ExitStatus::Failure)
}

/// On stderr when it is a terminal, else hidden.
fn progress_bar() -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(None, target);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {wide_bar} {percent:>3}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// What to replay.
#[derive(Debug)]
struct Plan<'a> {
    destination: &'a str,
    info: &'a DestinationInfo,
    window: Window,
    event: Option<&'a str>,
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Done {
    /// Events read from the overlapping partitions.
    read: u64,
    /// Those received in the window.
    in_window: u64,
    /// Those in the window that the destination receives.
    selected: u64,
    /// Those sent (0 in a dry run).
    sent: u64,
}

/// One event chosen for the replay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selected {
    received_ms: i64,
    id: String,
    json: Vec<u8>,
}

/// What becomes of one archived event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    /// Received before or after the window.
    Outside,
    /// In the window, but not named `--event` or not received by the
    /// destination.
    Skipped,
    /// Replayed.
    Chosen(Selected),
}

/// Whether an archived event (one line) is replayed: received in the
/// window, named `event` when given (a track event), and received by the
/// destination. An error names what is wrong with the line.
fn select(line: &[u8], plan: &Plan<'_>) -> Result<Choice, String> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| format!("is not a JSON event ({e})"))?;
    let received = value
        .get("receivedAt")
        .and_then(Value::as_str)
        .ok_or("has no receivedAt")?;
    let received_ms = parse_ms(received)
        .ok_or_else(|| format!("has a receivedAt that is not a time: `{received}`"))?;
    if !plan.window.contains(received_ms) {
        return Ok(Choice::Outside);
    }
    if let Some(name) = plan.event {
        let track = value.get("type").and_then(Value::as_str) == Some("track");
        if !track || value.get("event").and_then(Value::as_str) != Some(name) {
            return Ok(Choice::Skipped);
        }
    }
    if !plan.info.accepts(&value) {
        return Ok(Choice::Skipped);
    }
    let id = value
        .get("messageId")
        .and_then(Value::as_str)
        .ok_or("has no messageId")?;
    Ok(Choice::Chosen(Selected {
        received_ms,
        id: id.to_owned(),
        json: line.to_vec(),
    }))
}

/// How much one [`Sink::send`] may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    /// The most messages.
    messages: usize,
    /// The most bytes of encoded messages, a separator after each counted.
    bytes: usize,
}

/// Splits messages of these encoded sizes, in order, into runs within
/// `limits`; a message larger than the byte limit goes alone.
fn chunks(sizes: &[usize], limits: Limits) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        let size = size + 1;
        let full = i - start >= limits.messages || bytes + size > limits.bytes;
        if i > start && full {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Where replayed messages go: a destination's queue.
trait Sink {
    /// How much one send may carry.
    fn limits(&self) -> Limits;

    /// Checks that the destination's queue can be reached, before anything
    /// is read.
    async fn prepare(&self, destination: &str) -> anyhow::Result<()>;

    /// Puts messages (each a [`Message`] as JSON) on the destination's
    /// queue; durable when it returns.
    async fn send(&self, destination: &str, messages: &[Vec<u8>]) -> anyhow::Result<()>;
}

/// The management API's `POST /destinations/{name}/messages`.
#[derive(Debug)]
struct ApiSink {
    client: Client,
}

/// `{"messages":[` and `]}`.
const ENVELOPE: usize = 16;

impl Sink for ApiSink {
    fn limits(&self) -> Limits {
        Limits {
            messages: 1000,
            bytes: (1 << 20) - ENVELOPE,
        }
    }

    async fn prepare(&self, destination: &str) -> anyhow::Result<()> {
        self.client
            .call(
                Method::GET,
                &format!("/destinations/{}/metrics", encode(destination)),
            )
            .await
            .map(drop)
    }

    async fn send(&self, destination: &str, messages: &[Vec<u8>]) -> anyhow::Result<()> {
        let mut body =
            Vec::with_capacity(ENVELOPE + messages.iter().map(|m| m.len() + 1).sum::<usize>());
        body.extend_from_slice(br#"{"messages":["#);
        for (i, m) in messages.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(m);
        }
        body.extend_from_slice(b"]}");
        let answer = self
            .client
            .post(
                &format!("/destinations/{}/messages", encode(destination)),
                body,
            )
            .await?;
        let queued = answer.get("queued").and_then(Value::as_u64);
        if queued != Some(messages.len() as u64) {
            bail!(
                "the management API queued {} of {} messages: {answer}",
                queued.map_or_else(|| "an unknown number".to_owned(), |n| n.to_string()),
                messages.len()
            );
        }
        Ok(())
    }
}

/// Reads the window's partitions oldest first, selects each hour's events,
/// orders them by receive time then messageId, and sends them in chunks
/// (to nothing when `sink` is `None`: a dry run counts).
async fn replay<A: Archive, S: Sink>(
    archive: &A,
    sink: Option<&S>,
    plan: &Plan<'_>,
    progress: &ProgressBar,
) -> anyhow::Result<Done> {
    let partitions = archive
        .partitions(&plan.window)
        .await
        .with_context(|| format!("cannot list the archive {}", archive.describe()))?;
    let total: u64 = partitions
        .iter()
        .flat_map(|p| &p.objects)
        .map(|o| o.size)
        .sum();
    progress.set_length(total);
    let mut done = Done::default();
    for partition in &partitions {
        let mut selected = Vec::new();
        for object in &partition.objects {
            let lines = archive.read(object).await?;
            for (n, line) in lines.iter().enumerate() {
                done.read += 1;
                match select(line, plan) {
                    Ok(Choice::Chosen(s)) => {
                        done.in_window += 1;
                        selected.push(s);
                    }
                    Ok(Choice::Skipped) => done.in_window += 1,
                    Ok(Choice::Outside) => {}
                    Err(why) => bail!("{} line {}: the event {why}", object.name, n + 1),
                }
            }
            progress.inc(object.size);
        }
        selected.sort_by(|a, b| (a.received_ms, &a.id).cmp(&(b.received_ms, &b.id)));
        done.selected += selected.len() as u64;
        let Some(sink) = sink else {
            progress.set_message(format!("{} events to replay", done.selected));
            continue;
        };
        let encoded = selected
            .into_iter()
            .map(|s| {
                serde_json::to_vec(&Message {
                    id: s.id,
                    received_ms: s.received_ms,
                    attempts: 0,
                    last_error: None,
                    event: Bytes::from(s.json),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .context("cannot encode a message")?;
        let sizes: Vec<usize> = encoded.iter().map(Vec::len).collect();
        for range in chunks(&sizes, sink.limits()) {
            let count = range.len() as u64;
            sink.send(plan.destination, &encoded[range])
                .await
                .with_context(|| {
                    format!(
                        "replay stopped after sending {} events to `{}`",
                        done.sent, plan.destination
                    )
                })?;
            done.sent += count;
            progress.set_message(format!("{} events sent", done.sent));
        }
    }
    progress.finish_and_clear();
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::Path;

    use serde_json::json;

    use super::archive::tests::write_object;
    use super::*;

    fn destination(events: Option<&[&str]>, filter: Option<&str>) -> DestinationInfo {
        let mut info: DestinationInfo = serde_json::from_value(json!({
            "kind": "webhook",
            "connector": {"kind": "webhook", "url": "http://127.0.0.1:9/", "timeout_secs": 1},
            "retry": {"attempts": 3, "exponential": true, "delay_ms": 1000, "max_age_secs": 3600},
            "batch": {"max_events": 1, "max_bytes": 1048576, "max_wait_secs": 0},
        }))
        .expect("a destination");
        info.events = events.map(|e| e.iter().map(|s| (*s).to_owned()).collect());
        if let Some(f) = filter {
            info.filter = Some(f.to_owned());
            info.condition = Some(uniflow_schemas::condition::Condition::parse(f).unwrap());
        }
        info
    }

    fn event(id: &str, name: &str, at: &str) -> String {
        json!({"type": "track", "event": name, "messageId": id, "receivedAt": at, "properties": {"n": 1}})
            .to_string()
    }

    /// Records what it was sent.
    #[derive(Debug, Default)]
    struct Recorder {
        limits: Option<Limits>,
        sent: RefCell<Vec<Vec<Message>>>,
    }

    impl Sink for Recorder {
        fn limits(&self) -> Limits {
            self.limits.unwrap_or(Limits {
                messages: 1000,
                bytes: 1 << 20,
            })
        }

        async fn prepare(&self, _: &str) -> anyhow::Result<()> {
            Ok(())
        }

        async fn send(&self, destination: &str, messages: &[Vec<u8>]) -> anyhow::Result<()> {
            assert_eq!(destination, "hook");
            let parsed = messages
                .iter()
                .map(|m| serde_json::from_slice(m).unwrap())
                .collect();
            self.sent.borrow_mut().push(parsed);
            Ok(())
        }
    }

    fn run<S: Sink>(raw: &Path, sink: Option<&S>, plan: &Plan<'_>) -> anyhow::Result<Done> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(replay(
                &LocalArchive::new(raw),
                sink,
                plan,
                &ProgressBar::hidden(),
            ))
    }

    /// Three hours of events, files written out of order within an hour.
    fn archive() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        write_object(
            &raw,
            "2026-11-25T09",
            "uniflow-0-1.json.gz",
            &[event(
                "early",
                "Order Completed",
                "2026-11-25T09:59:59.999Z",
            )],
        );
        write_object(
            &raw,
            "2026-11-25T10",
            "uniflow-1-2.json.gz",
            &[
                event("c", "Order Completed", "2026-11-25T10:30:00.000Z"),
                event("b", "Order Completed", "2026-11-25T10:30:00.000Z"),
                json!({"type": "identify", "messageId": "i", "receivedAt": "2026-11-25T10:40:00.000Z", "traits": {}}).to_string(),
            ],
        );
        write_object(
            &raw,
            "2026-11-25T10",
            "uniflow-2-3.json.gz",
            &[
                event("a", "Order Completed", "2026-11-25T10:00:00.000Z"),
                event("s", "Signed Up", "2026-11-25T10:10:00.000Z"),
            ],
        );
        write_object(
            &raw,
            "2026-11-25T11",
            "uniflow-3-4.json.gz",
            &[
                event("edge", "Order Completed", "2026-11-25T11:00:00.000Z"),
                event("late", "Order Completed", "2026-11-25T11:20:00.000Z"),
            ],
        );
        tmp
    }

    fn ids(sent: &[Vec<Message>]) -> Vec<Vec<&str>> {
        sent.iter()
            .map(|chunk| chunk.iter().map(|m| m.id.as_str()).collect())
            .collect()
    }

    #[test]
    fn the_window_the_destination_and_the_name_choose_in_order() {
        let tmp = archive();
        let raw = tmp.path().join("raw");
        let all = destination(None, None);
        let plan = |info, from, to, event| Plan {
            destination: "hook",
            info,
            window: Window::parse(from, to, 0).unwrap(),
            event,
        };

        // [10:00, 11:00): the hour's events by receivedAt then messageId,
        // the edge at 11:00 left out, 09:59:59.999 too.
        let sink = Recorder::default();
        let p = plan(&all, "2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", None);
        let done = run(&raw, Some(&sink), &p).unwrap();
        assert_eq!(
            done,
            Done {
                read: 5,
                in_window: 5,
                selected: 5,
                sent: 5
            }
        );
        assert_eq!(ids(&sink.sent.borrow()), [["a", "s", "b", "c", "i"]]);
        let first = &sink.sent.borrow()[0][0];
        assert_eq!(first.received_ms, parse_ms("2026-11-25T10:00:00Z").unwrap());
        assert_eq!(first.attempts, 0);
        assert_eq!(first.last_error, None);
        let stored: Value = serde_json::from_slice(&first.event).unwrap();
        assert_eq!(stored["messageId"], "a");
        assert_eq!(stored["properties"]["n"], 1);

        // Only track events named so.
        let sink = Recorder::default();
        let p = plan(
            &all,
            "2026-11-25T09:59:59.999Z",
            "2026-11-25T11:00:00.001Z",
            Some("Order Completed"),
        );
        run(&raw, Some(&sink), &p).unwrap();
        assert_eq!(
            ids(&sink.sent.borrow()),
            [vec!["early"], vec!["a", "b", "c"], vec!["edge"]]
        );

        // The destination's events and filter apply.
        let listed = destination(Some(&["Signed Up"]), None);
        let sink = Recorder::default();
        let p = plan(&listed, "2026-11-25", "2026-11-26", None);
        run(&raw, Some(&sink), &p).unwrap();
        assert_eq!(ids(&sink.sent.borrow()), [["s"]]);
        let filtered = destination(None, Some("type = 'identify'"));
        let sink = Recorder::default();
        let p = plan(&filtered, "2026-11-25", "2026-11-26", None);
        run(&raw, Some(&sink), &p).unwrap();
        assert_eq!(ids(&sink.sent.borrow()), [["i"]]);

        // A dry run counts and sends nothing; an empty window says 0.
        let p = plan(&all, "2026-11-25", "2026-11-26", None);
        let done = run::<Recorder>(&raw, None, &p).unwrap();
        assert_eq!(
            done,
            Done {
                read: 8,
                in_window: 8,
                selected: 8,
                sent: 0
            }
        );
        let p = plan(&all, "2026-11-25T12:00:00Z", "2026-11-26", None);
        let done = run::<Recorder>(&raw, None, &p).unwrap();
        assert_eq!(done, Done::default());
    }

    #[test]
    fn sends_are_chunked_by_count_and_bytes() {
        let tmp = archive();
        let raw = tmp.path().join("raw");
        let all = destination(None, None);
        let sink = Recorder {
            limits: Some(Limits {
                messages: 2,
                bytes: 1 << 20,
            }),
            ..Recorder::default()
        };
        let p = Plan {
            destination: "hook",
            info: &all,
            window: Window::parse("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z", 0).unwrap(),
            event: None,
        };
        run(&raw, Some(&sink), &p).unwrap();
        assert_eq!(
            ids(&sink.sent.borrow()),
            [vec!["a", "s"], vec!["b", "c"], vec!["i"]]
        );

        assert_eq!(
            chunks(
                &[10, 10, 10, 10],
                Limits {
                    messages: 10,
                    bytes: 22
                }
            ),
            [0..2, 2..4]
        );
        assert_eq!(
            chunks(
                &[10, 50, 10],
                Limits {
                    messages: 10,
                    bytes: 22
                }
            ),
            [0..1, 1..2, 2..3]
        );
        assert_eq!(
            chunks(
                &[1; 5],
                Limits {
                    messages: 2,
                    bytes: 100
                }
            ),
            [0..2, 2..4, 4..5]
        );
        assert!(
            chunks(
                &[],
                Limits {
                    messages: 2,
                    bytes: 100
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn the_summary_says_what_happened() {
        let all = destination(None, None);
        let window = Window::parse("2026-11-25", "2026-11-26", 0).unwrap();
        let plan = |event| Plan {
            destination: "hook",
            info: &all,
            window,
            event,
        };
        let done = |in_window, selected, sent| Done {
            read: 9,
            in_window,
            selected,
            sent,
        };
        let w = "[2026-11-25T00:00:00.000Z, 2026-11-26T00:00:00.000Z)";
        for (done, event, dry_run, expect) in [
            (
                done(0, 0, 0),
                None,
                false,
                format!("no events to replay: the archive has none received in {w}"),
            ),
            (
                done(1, 0, 0),
                Some("Signed Up"),
                false,
                format!(
                    "no events to replay: of the 1 archived event received in {w}, none is a `Signed Up` event `hook` receives"
                ),
            ),
            (
                done(4, 0, 0),
                None,
                true,
                format!(
                    "no events to replay: of the 4 archived events received in {w}, none is an event `hook` receives"
                ),
            ),
            (
                done(4, 1, 0),
                None,
                true,
                format!("would replay 1 event received in {w} to `hook` (dry run: nothing sent)"),
            ),
            (
                done(4, 3, 3),
                Some("Order Completed"),
                false,
                format!("replayed 3 `Order Completed` events received in {w} to `hook`'s queue"),
            ),
        ] {
            assert_eq!(summary(&done, &plan(event), dry_run), expect);
        }
    }

    #[test]
    fn a_broken_line_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let raw = tmp.path().join("raw");
        write_object(
            &raw,
            "2026-11-25T10",
            "f.json.gz",
            &[
                event("a", "Order Completed", "2026-11-25T10:00:00Z"),
                r#"{"type":"track","messageId":"x"}"#.to_owned(),
            ],
        );
        let all = destination(None, None);
        let p = Plan {
            destination: "hook",
            info: &all,
            window: Window::parse("2026-11-25", "2026-11-26", 0).unwrap(),
            event: None,
        };
        let err = run::<Recorder>(&raw, None, &p).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("f.json.gz line 2: the event has no receivedAt"),
            "{text}"
        );
        for (line, says) in [
            (&b"nope"[..], "is not a JSON event"),
            (
                br#"{"receivedAt":"soon"}"#,
                "has a receivedAt that is not a time: `soon`",
            ),
            (
                br#"{"type":"track","event":"E","receivedAt":"2026-11-25T10:00:00Z"}"#,
                "has no messageId",
            ),
        ] {
            let err = select(line, &p).unwrap_err();
            assert!(err.starts_with(says), "{err}");
        }
    }
}
