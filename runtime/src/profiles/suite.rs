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

use super::{Outcome, Profile, ProfileStore, Report};

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

/// A small deterministic generator (xorshift64*), so a failing case is
/// reproduced by its seed alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// Shuffles in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// A random event stream for the property test.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The events, enriched.
    pub events: Vec<Bytes>,
    /// Every identifier the events carry (normalised, none blocked).
    pub identifiers: BTreeSet<String>,
    /// When the stream never asks for a link a rule refuses: the people,
    /// as the identifier sets that must end as one profile each.
    pub people: Option<Vec<BTreeSet<String>>>,
}

/// Generates a stream of identify, track and alias calls by a few people
/// under [`PROJECT`]'s rules. Without `conflicts` each person keeps within
/// every limit and shares nothing, so the expected profiles are known;
/// with `conflicts` people share devices and emails and exceed limits.
pub fn stream(seed: u64, conflicts: bool) -> Stream {
    let mut rng = Rng::new(seed);
    let people = 2 + rng.below(5);
    let mut events = Vec::new();
    let mut identifiers = BTreeSet::new();
    // Union-find over identifiers that co-occur in one event.
    let mut parent: BTreeMap<String, String> = BTreeMap::new();
    fn root(parent: &mut BTreeMap<String, String>, x: &str) -> String {
        let mut r = x.to_owned();
        while let Some(p) = parent.get(&r).filter(|p| **p != r) {
            r = p.clone();
        }
        parent.insert(x.to_owned(), r.clone());
        r
    }
    let n = 8 + rng.below(40);
    for i in 0..n {
        let person = rng.below(people);
        let (devices, emails) = if conflicts { (6, 4) } else { (3, 2) };
        let device = if conflicts && rng.chance(20) {
            format!("shared-{}", rng.below(2))
        } else {
            format!("d{person}-{}", rng.below(devices))
        };
        let mut e = Map::new();
        e.insert("anonymousId".into(), Value::from(device.clone()));
        let mut ids = vec![format!("anonymous_id:{device}")];
        let signed_in = rng.chance(50);
        if signed_in {
            let user = format!("u{person}");
            e.insert("userId".into(), Value::from(user.clone()));
            ids.push(format!("user_id:{user}"));
        }
        let ts = format!(
            "2026-01-01T00:{:02}:{:02}.000Z",
            rng.below(60),
            rng.below(60)
        );
        e.insert("timestamp".into(), Value::from(ts));
        match rng.below(10) {
            0..=3 => {
                e.insert("type".into(), Value::from("identify"));
                let mut traits = Map::new();
                if rng.chance(60) {
                    let email = if conflicts && rng.chance(25) {
                        "family@example.org".to_owned()
                    } else {
                        format!("p{person}-{}@example.org", rng.below(emails))
                    };
                    ids.push(format!("email:{email}"));
                    traits.insert("email".into(), Value::from(email));
                }
                traits.insert("n".into(), Value::from(i));
                e.insert("traits".into(), Value::Object(traits));
            }
            4 if signed_in => {
                e.insert("type".into(), Value::from("alias"));
                e.insert("previousId".into(), Value::from(device.clone()));
                e.remove("anonymousId");
            }
            _ => {
                e.insert("type".into(), Value::from("track"));
                e.insert("event".into(), Value::from(format!("E{}", rng.below(3))));
            }
        }
        let first = root(&mut parent, &ids[0]);
        for id in &ids[1..] {
            let r = root(&mut parent, id);
            parent.insert(r, first.clone());
        }
        identifiers.extend(ids);
        events.push(enrich(&e, &format!("s{seed}-{i}")));
    }
    let people = (!conflicts).then(|| {
        let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for id in &identifiers {
            let r = root(&mut parent, id);
            groups.entry(r).or_default().insert(id.clone());
        }
        groups.into_values().collect()
    });
    Stream {
        events,
        identifiers,
        people,
    }
}

/// The identity partition a store ends with: each live profile's
/// identifiers with its event counts.
pub type Partition = BTreeMap<BTreeSet<String>, BTreeMap<String, u64>>;

/// Reads the partition of `identifiers` and checks the invariants that
/// hold in any order: every profile within every limit (by its links and
/// by its counts), and no event counted twice or lost.
pub async fn partition<S: ProfileStore>(
    ctx: &str,
    store: &S,
    identifiers: &BTreeSet<String>,
    attributed_events: u64,
) -> Partition {
    let limits = [("user_id", 1u32), ("email", 2), ("anonymous_id", 3)];
    let mut profiles: BTreeMap<String, Profile> = BTreeMap::new();
    for id in identifiers {
        if let Some(p) = store
            .lookup(id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"))
        {
            profiles.insert(p.id.clone(), p);
        }
    }
    let mut out = Partition::new();
    let mut total = 0;
    for p in profiles.values() {
        let links = store
            .identities(&p.id)
            .await
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let set: BTreeSet<String> = links.iter().map(|l| l.identifier.clone()).collect();
        for (t, limit) in limits {
            let n = set
                .iter()
                .filter(|i| i.split(':').next() == Some(t))
                .count() as u32;
            assert!(
                n <= limit,
                "{ctx}: profile {} holds {n} {t} (limit {limit}): {set:?}",
                p.id
            );
            assert_eq!(
                p.identity_counts.get(t).copied().unwrap_or(0),
                n,
                "{ctx}: identity count {t} of {}",
                p.id
            );
        }
        total += p.counts.values().sum::<u64>();
        out.insert(set, p.counts.clone());
    }
    assert_eq!(
        total, attributed_events,
        "{ctx}: events counted on profiles"
    );
    out
}

/// The property: a random stream processed in a random order, in random
/// batches, with random redeliveries, ends with the same partition as the
/// same order without redeliveries; conflict-free streams end with exactly
/// one profile per person whatever the order; every store stays within the
/// limits. `fresh` makes an empty store per run.
pub async fn property<S, F, Fut>(cases: u64, first_seed: u64, mut fresh: F)
where
    S: ProfileStore,
    F: FnMut(String) -> Fut,
    Fut: Future<Output = S>,
{
    for seed in first_seed..first_seed + cases {
        for conflicts in [false, true] {
            let s = stream(seed, conflicts);
            let ctx = format!("property seed {seed} conflicts={conflicts}");
            let mut rng = Rng::new(seed ^ 0xA5A5);
            let mut order: Vec<usize> = (0..s.events.len()).collect();
            rng.shuffle(&mut order);
            let shuffled: Vec<Bytes> = order.iter().map(|&i| s.events[i].clone()).collect();

            // Once each, in the shuffled order.
            let once = fresh(format!("p{seed}{conflicts}a")).await;
            let mut applied = 0;
            let mut unattributed = 0;
            for chunk in shuffled.chunks(1 + rng.below(7)) {
                let r = once
                    .process(chunk.to_vec())
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                applied += r.applied as u64;
                unattributed += r.unattributed as u64;
            }
            assert_eq!(applied, s.events.len() as u64, "{ctx}: applied");
            let expected = partition(&ctx, &once, &s.identifiers, applied - unattributed).await;

            // The same order, with batches redelivered at random.
            let again = fresh(format!("p{seed}{conflicts}b")).await;
            let mut delivered: Vec<Vec<Bytes>> = Vec::new();
            for chunk in shuffled.chunks(1 + rng.below(7)) {
                again
                    .process(chunk.to_vec())
                    .await
                    .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                delivered.push(chunk.to_vec());
                if rng.chance(40) {
                    let j = rng.below(delivered.len());
                    let r = again
                        .process(delivered[j].clone())
                        .await
                        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
                    assert_eq!(r.applied, 0, "{ctx}: a redelivered batch applied events");
                }
            }
            let got = partition(&ctx, &again, &s.identifiers, applied - unattributed).await;
            assert_eq!(got, expected, "{ctx}: redeliveries changed the outcome");

            if let Some(people) = &s.people {
                let mut sets: Vec<BTreeSet<String>> = got.keys().cloned().collect();
                sets.sort();
                let mut want = people.clone();
                want.sort();
                assert_eq!(
                    sets, want,
                    "{ctx}: one profile per person, whatever the order"
                );
            }
        }
    }
}
