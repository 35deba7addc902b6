//! The identity and profile behaviour suite every [`ProfileStore`] must
//! pass: scenarios as data (`runtime/tests/scenarios/*.json`), each a list
//! of steps (batches of events, deletions) and the profiles expected at the
//! end. Test support, compiled into the library so the embedded and the
//! DynamoDB tests run the very same scenarios.
//!
//! A scenario file:
//!
//! ```json
//! { "name": "anonymous browsing then sign-in",
//!   "steps": [ { "events": [ {"type": "page", "anonymousId": "a1", "timestamp": "..."} ] },
//!              { "delete": "user_id:u1" } ],
//!   "expect": { "profiles": [ { "identifiers": ["anonymous_id:a1"], "traits": {...},
//!                               "counts": {...}, "merges": 0, "refusals": 0 } ],
//!               "unlinked": ["email:qa@shop.example"],
//!               "report": {"applied": 1, "duplicates": 0} } }
//! ```
//!
//! Events get `sourceId` `web`, a `messageId` (`<scenario>-<n>`) and a
//! `receivedAt` unless they carry their own.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Outcome, ProfileStore, Report};

/// The project every scenario runs under (compile it, pass its bundle's
/// identity rules to the store).
pub const PROJECT: &str = r#"
project "profiles" { region "eu-west-1" }
source "web" kind="browser" { allow-origin "https://shop.example" }
trait "email" type="string"
trait "plan" type="string"
identity {
    identifier "user_id" priority=1 limit=1
    identifier "email" priority=2 limit=2 normalize="trim lowercase"
    identifier "anonymous_id" priority=3 limit=3
    blocked "qa@shop.example"
}
"#;

/// One scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What it shows.
    pub name: String,
    /// What happens, in order.
    pub steps: Vec<Step>,
    /// The state at the end.
    pub expect: Expect,
}

/// One step.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Step {
    /// One batch, processed in one call.
    Events(Vec<Map<String, Value>>),
    /// The same batch as an earlier step (0-based), delivered again.
    Redeliver(usize),
    /// Delete the profile of this identifier.
    Delete(String),
}

/// What must hold at the end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Every profile the scenario's identifiers belong to.
    pub profiles: Vec<ExpectedProfile>,
    /// Identifiers linked to no profile.
    #[serde(default)]
    pub unlinked: Vec<String>,
    /// Totals over every batch (only the fields given are checked).
    #[serde(default)]
    pub report: Map<String, Value>,
}

/// One expected profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedProfile {
    /// Exactly its identifiers.
    pub identifiers: Vec<String>,
    /// Traits it must have (others may exist).
    #[serde(default)]
    pub traits: Map<String, Value>,
    /// Event counts by type it must have.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// Track counts by name.
    #[serde(default)]
    pub event_counts: BTreeMap<String, u64>,
    /// How many events its timeline holds.
    #[serde(default)]
    pub events: Option<usize>,
    /// Merges recorded in its history.
    #[serde(default)]
    pub merges: Option<usize>,
    /// Refusals recorded in its history.
    #[serde(default)]
    pub refusals: Option<usize>,
    /// First seen, ISO 8601.
    #[serde(default)]
    pub first_seen: Option<String>,
    /// Groups it belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Reads every scenario in a directory, sorted by file name.
pub fn load(dir: &Path) -> Vec<(String, Scenario)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let s: Scenario =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                s,
            )
        })
        .collect()
}

/// Completes an event as ingest would have stored it.
pub fn enrich(event: &Map<String, Value>, id: &str) -> Bytes {
    let mut e = event.clone();
    e.entry("messageId").or_insert_with(|| Value::from(id));
    e.entry("sourceId").or_insert_with(|| Value::from("web"));
    e.entry("type").or_insert_with(|| Value::from("track"));
    let ts = e
        .get("timestamp")
        .cloned()
        .unwrap_or_else(|| Value::from("2026-01-01T00:00:00.000Z"));
    e.entry("timestamp").or_insert_with(|| ts.clone());
    e.entry("receivedAt").or_insert(ts);
    Bytes::from(serde_json::to_vec(&Value::Object(e)).unwrap_or_default())
}

/// Runs one scenario against a fresh store; panics naming what differs.
pub async fn run<S: ProfileStore>(file: &str, scenario: &Scenario, store: &S) {
    let ctx = format!("scenario {file} ({})", scenario.name);
    let mut batches: Vec<Vec<Bytes>> = Vec::new();
    let mut total = Report::default();
    let mut n = 0;
    for (i, step) in scenario.steps.iter().enumerate() {
        let batch = match step {
            Step::Events(events) => events
                .iter()
                .map(|e| {
                    n += 1;
                    enrich(e, &format!("{}-{n}", file.trim_end_matches(".json")))
                })
                .collect(),
            Step::Redeliver(j) => batches.get(*j).cloned().unwrap_or_else(|| {
                panic!("{ctx}: step {i} redelivers step {j}, which has no events")
            }),
            Step::Delete(identifier) => {
                let p = store
                    .lookup(identifier)
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: step {i}: {e}"))
                    .unwrap_or_else(|| panic!("{ctx}: step {i}: no profile holds {identifier}"));
                store
                    .delete(&p.id, 1)
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: step {i}: {e}"))
                    .unwrap_or_else(|| panic!("{ctx}: step {i}: profile {} vanished", p.id));
                batches.push(Vec::new());
                continue;
            }
        };
        let r = store
            .process(batch.clone())
            .await
            .unwrap_or_else(|e| panic!("{ctx}: step {i}: {e}"));
        assert!(
            r.invalid.is_empty(),
            "{ctx}: step {i}: invalid events {:?}",
            r.invalid
        );
        total.applied += r.applied;
        total.duplicates += r.duplicates;
        total.unattributed += r.unattributed;
        total.merges += r.merges;
        total.refusals += r.refusals;
        batches.push(batch);
    }
    check(&ctx, scenario, store, &total).await;
}

async fn check<S: ProfileStore>(ctx: &str, scenario: &Scenario, store: &S, total: &Report) {
    let totals = serde_json::to_value(total).unwrap_or_default();
    for (k, v) in &scenario.expect.report {
        assert_eq!(
            &totals[k.as_str()],
            v,
            "{ctx}: report.{k} (report {totals})"
        );
    }
    let mut seen_ids = BTreeSet::new();
    for (i, want) in scenario.expect.profiles.iter().enumerate() {
        let first = want
            .identifiers
            .first()
            .unwrap_or_else(|| panic!("{ctx}: expected profile {i} lists no identifiers"));
        let p = store
            .lookup(first)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"))
            .unwrap_or_else(|| panic!("{ctx}: no profile holds {first}"));
        assert!(
            seen_ids.insert(p.id.clone()),
            "{ctx}: profile {i} ({first}) is the same profile as an earlier one"
        );
        for id in &want.identifiers {
            let q = store
                .lookup(id)
                .await
                .unwrap_or_else(|e| panic!("{ctx}: {e}"));
            assert_eq!(
                q.map(|q| q.id),
                Some(p.id.clone()),
                "{ctx}: {id} belongs with {first}"
            );
        }
        let links = store
            .identities(&p.id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let got: BTreeSet<&str> = links.iter().map(|l| l.identifier.as_str()).collect();
        let expected: BTreeSet<&str> = want.identifiers.iter().map(String::as_str).collect();
        assert_eq!(
            got, expected,
            "{ctx}: identifiers of the profile of {first}"
        );
        let mut limits: BTreeMap<String, u32> = BTreeMap::new();
        for l in &links {
            let t = l.identifier.split(':').next().unwrap_or_default();
            *limits.entry(t.to_owned()).or_default() += 1;
        }
        assert_eq!(
            limits, p.identity_counts,
            "{ctx}: identity counts of the profile of {first}"
        );
        for (k, v) in &want.traits {
            assert_eq!(
                p.traits.get(k).map(|s| &s.value),
                Some(v),
                "{ctx}: trait {k} of {first}"
            );
        }
        for (k, v) in &want.counts {
            assert_eq!(
                p.counts.get(k),
                Some(v),
                "{ctx}: count {k} of {first} ({:?})",
                p.counts
            );
        }
        for (k, v) in &want.event_counts {
            assert_eq!(
                p.event_counts.get(k),
                Some(v),
                "{ctx}: event count {k} of {first}"
            );
        }
        if let Some(first_seen) = &want.first_seen {
            assert_eq!(
                &crate::time::format_ms(p.first_seen_ms),
                first_seen,
                "{ctx}: first seen of {first}"
            );
        }
        let groups: Vec<&String> = p.groups.iter().collect();
        let want_groups: Vec<&String> = want.groups.iter().collect();
        assert_eq!(groups, want_groups, "{ctx}: groups of {first}");
        if let Some(n) = want.events {
            let mut count = 0;
            let mut before = None;
            loop {
                let page = store
                    .events(&p.id, before, 2)
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                count += page.events.len();
                match page.next {
                    Some(c) => before = Some(c),
                    None => break,
                }
            }
            assert_eq!(count, n, "{ctx}: events on the timeline of {first}");
        }
        let history = store
            .history(&p.id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let merges = history
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Merged { .. }))
            .count();
        let refusals = history.len() - merges;
        if let Some(n) = want.merges {
            assert_eq!(
                merges, n,
                "{ctx}: merges recorded for {first}: {history:#?}"
            );
        }
        if let Some(n) = want.refusals {
            assert_eq!(
                refusals, n,
                "{ctx}: refusals recorded for {first}: {history:#?}"
            );
        }
    }
    for id in &scenario.expect.unlinked {
        let q = store
            .lookup(id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert_eq!(q.map(|p| p.id), None, "{ctx}: {id} must not be linked");
    }
}

/// Runs every scenario in `dir`, each on a store from `fresh`.
pub async fn run_all<S, F, Fut>(dir: &Path, mut fresh: F)
where
    S: ProfileStore,
    F: FnMut(&str) -> Fut,
    Fut: Future<Output = S>,
{
    let scenarios = load(dir);
    assert!(
        scenarios.len() >= 10,
        "found only {} scenarios in {}",
        scenarios.len(),
        dir.display()
    );
    for (file, scenario) in &scenarios {
        let store = fresh(file).await;
        run(file, scenario, &store).await;
    }
}
