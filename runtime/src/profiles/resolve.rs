//! Identity resolution: which profile an event belongs to, which profiles
//! it merges, which links it refuses and why. Pure: it reads through a
//! [`View`] and returns the [`Effects`] for the backend to write, so both
//! backends resolve with this one function.
//!
//! The event's identifiers are offered, strongest first, to one group (the
//! profiles and new identifiers that will become one person):
//!
//! - a new identifier joins when the group holds fewer of its type than the
//!   type's limit;
//! - a profile joins (a merge) when the sums of every type stay within the
//!   limits and the two sides do not each hold a value of the strongest
//!   type (two different `user_id`s never merge, whatever the limits);
//! - anything refused is recorded with the rule and left where it was, so
//!   the weakest links are the ones dropped.
//!
//! The event then belongs to the profile of the strongest identifier that
//! joined with a profile; the other joined profiles merge into it. With no
//! profile in the group, the event creates one. Identifiers of deleted
//! profiles (suppressed) and blocked values link nothing.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::model::{Account, Decision, Link, Outcome, Profile, Stamped, Traits};
use super::rules::{Event, Id, Rules};
use crate::backend::BackendError;

/// A key the resolver reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// Whether an event was applied (`<sourceId>#<messageId>`).
    Applied(String),
    /// Whether an identifier is suppressed.
    Suppressed(String),
    /// Which profile an identifier is linked to.
    Link(String),
    /// A profile.
    Profile(String),
    /// An account.
    Account(String),
}

/// Why the resolver could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The view does not hold these keys yet: fetch them and resolve again.
    #[error("keys not fetched yet")]
    Missing(Vec<Key>),
    /// The store failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What the resolver reads: the store as of now. The embedded store reads
/// straight from its transaction; the DynamoDB one from a prefetched
/// snapshot that answers [`ViewError::Missing`] for what it lacks.
pub trait View {
    /// Declares keys about to be read, so a remote view can fetch them in
    /// one round trip. The default does nothing.
    fn require(&mut self, keys: &[Key]) -> Result<(), ViewError> {
        let _ = keys;
        Ok(())
    }
    /// Whether the event with this key was applied.
    fn applied(&mut self, key: &str) -> Result<bool, ViewError>;
    /// Whether an identifier belonged to a deleted profile.
    fn suppressed(&mut self, identifier: &str) -> Result<bool, ViewError>;
    /// The profile an identifier is linked to.
    fn link(&mut self, identifier: &str) -> Result<Option<String>, ViewError>;
    /// A profile, as stored (possibly merged away).
    fn profile(&mut self, id: &str) -> Result<Option<Profile>, ViewError>;
    /// An account.
    fn account(&mut self, id: &str) -> Result<Option<Account>, ViewError>;
}

/// What applying one event writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Effects {
    /// The idempotency key to record.
    pub applied_key: String,
    /// The profile the event belongs to, updated (`None`: the event carried
    /// no usable identifier and belongs to nobody).
    pub profile: Option<Profile>,
    /// Profiles merged away, with `merged_into` set.
    pub merged: Vec<Profile>,
    /// Version each written profile had when read (`None`: must not exist).
    pub expected: BTreeMap<String, Option<u64>>,
    /// New links.
    pub links: Vec<Link>,
    /// Merges and refusals, recorded under the event's profile.
    pub decisions: Vec<Decision>,
    /// The account a group call updates.
    pub account: Option<(Account, Option<u64>)>,
}

impl Effects {
    /// Where each decision is recorded, as `(profile id, index, decision)`:
    /// under the event's profile, and a refused merge also under the
    /// profile that kept the identifier, so both people's explanations
    /// show it.
    pub fn recorded(&self) -> Vec<(&str, usize, &Decision)> {
        let Some(target) = &self.profile else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(self.decisions.len());
        for (i, d) in self.decisions.iter().enumerate() {
            out.push((target.id.as_str(), i, d));
            if let Outcome::Refused {
                profile: Some(other),
                ..
            } = &d.outcome
                && *other != target.id
            {
                out.push((other.as_str(), i, d));
            }
        }
        out
    }
}

/// The result of resolving one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Applied before: nothing to do.
    AlreadyApplied,
    /// Write these.
    Apply(Box<Effects>),
}

/// How many `merged_into` hops any reader follows before it calls the store
/// corrupt (the resolver, and both stores' reads).
pub const MAX_HOPS: usize = 64;

/// Resolves one event against the store.
pub fn resolve(
    rules: &Rules,
    event: &Event<'_>,
    view: &mut impl View,
) -> Result<Resolution, ViewError> {
    let applied_key = event.applied_key();
    let mut ids = event.identifiers(rules);
    let alias_ranks = match (&event.previous_id, event.kind.as_str()) {
        (Some(_), "alias") => rules.previous_id_ranks(),
        _ => Vec::new(),
    };
    let alias_candidates: Vec<Id> = match &event.previous_id {
        Some(prev) => alias_ranks
            .iter()
            .filter_map(|&r| rules.identifier(r, prev))
            .collect(),
        None => Vec::new(),
    };

    let mut wanted = vec![Key::Applied(applied_key.clone())];
    for id in ids.iter().chain(&alias_candidates) {
        wanted.push(Key::Suppressed(id.key.clone()));
        wanted.push(Key::Link(id.key.clone()));
    }
    if let (Some(g), "group") = (&event.group_id, event.kind.as_str()) {
        wanted.push(Key::Account(g.clone()));
    }
    view.require(&wanted)?;
    if view.applied(&applied_key)? {
        return Ok(Resolution::AlreadyApplied);
    }

    // alias: previousId is the type it is already known as (user id, then
    // anonymous id), else the weakest of the two.
    if !alias_candidates.is_empty() {
        let mut chosen = None;
        for c in &alias_candidates {
            if view.link(&c.key)?.is_some() {
                chosen = Some(c.clone());
                break;
            }
        }
        let chosen = chosen.or_else(|| alias_candidates.last().cloned());
        if let Some(c) = chosen
            && !ids.contains(&c)
        {
            ids.push(c);
        }
        ids.sort_by_key(|i| i.rank);
    }
    let mut usable = Vec::with_capacity(ids.len());
    for id in ids {
        if !view.suppressed(&id.key)? {
            usable.push(id);
        }
    }
    let all: Vec<String> = usable.iter().map(|i| i.key.clone()).collect();

    // Where each identifier is linked now.
    let mut linked: Vec<Option<Profile>> = Vec::with_capacity(usable.len());
    for id in &usable {
        let profile = match view.link(&id.key)? {
            Some(pid) => live_profile(view, &pid)?,
            None => None,
        };
        linked.push(profile);
    }

    let top = rules
        .types
        .first()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let mut group = Group::default();
    let mut decisions = Vec::new();
    let decision = |outcome: Outcome, via: &str, rule: String| Decision {
        outcome,
        message_id: event.message_id.clone(),
        source_id: event.source_id.clone(),
        at_ms: event.at_ms,
        identifiers: all.clone(),
        via: via.to_owned(),
        rule,
    };
    for (id, profile) in usable.iter().zip(linked) {
        let type_name = &rules.types[id.rank].name;
        match profile {
            None => {
                let have = group.count(type_name);
                let limit = rules.types[id.rank].limit;
                if have < limit {
                    group.add_new(id.clone(), type_name);
                } else {
                    decisions.push(decision(
                        Outcome::Refused {
                            identifier: id.key.clone(),
                            profile: None,
                        },
                        &id.key,
                        format!(
                            "limit: a profile holds at most {limit} {type_name} (it already holds {have})"
                        ),
                    ));
                }
            }
            Some(p) if group.holds(&p.id) => {}
            Some(p) => match group.refusal(&p, rules, &top) {
                None => {
                    if !group.profiles.is_empty() {
                        let into = group.profiles[0].id.clone();
                        decisions.push(decision(
                            Outcome::Merged {
                                from: p.id.clone(),
                                into,
                            },
                            &id.key,
                            group.allowed(&p, rules),
                        ));
                    }
                    group.add_profile(p);
                }
                Some(rule) => decisions.push(decision(
                    Outcome::Refused {
                        identifier: id.key.clone(),
                        profile: Some(p.id.clone()),
                    },
                    &id.key,
                    rule,
                )),
            },
        }
    }

    let mut expected = BTreeMap::new();
    let mut merged = Vec::new();
    let mut profiles = group.profiles.into_iter();
    let mut target = match profiles.next() {
        Some(p) => {
            expected.insert(p.id.clone(), Some(p.version));
            Some(p)
        }
        None if !group.new_ids.is_empty() => {
            let id = profile_id(&event.source_id, &event.message_id);
            expected.insert(id.clone(), None);
            Some(Profile::new(id, event.at_ms))
        }
        None => None,
    };
    if let Some(t) = &mut target {
        for mut loser in profiles {
            expected.insert(loser.id.clone(), Some(loser.version));
            t.absorb(&loser);
            loser.merged_into = Some(t.id.clone());
            loser.version += 1;
            merged.push(loser);
        }
    }

    let links: Vec<Link> = match &target {
        Some(t) => group
            .new_ids
            .iter()
            .map(|id| Link {
                identifier: id.key.clone(),
                profile_id: t.id.clone(),
                message_id: event.message_id.clone(),
                source_id: event.source_id.clone(),
                at_ms: event.at_ms,
            })
            .collect(),
        None => Vec::new(),
    };

    let mut account = None;
    if let Some(t) = &mut target {
        for id in &group.new_ids {
            let name = &rules.types[id.rank].name;
            *t.identity_counts.entry(name.clone()).or_default() += 1;
        }
        apply_event(t, event);
        if let (Some(g), "group") = (&event.group_id, event.kind.as_str()) {
            t.groups.insert(g.clone());
        }
        t.version += 1;
    }
    if let (Some(g), "group") = (&event.group_id, event.kind.as_str()) {
        let current = view.account(g)?;
        let version = current.as_ref().map(|a| a.version);
        let mut a = current.unwrap_or_else(|| Account {
            id: g.clone(),
            version: 0,
            first_seen_ms: event.at_ms,
            last_seen_ms: event.at_ms,
            traits: Traits::new(),
        });
        a.first_seen_ms = a.first_seen_ms.min(event.at_ms);
        a.last_seen_ms = a.last_seen_ms.max(event.at_ms);
        super::model::merge_traits(&mut a.traits, stamped_traits(event));
        a.version += 1;
        account = Some((a, version));
    }

    Ok(Resolution::Apply(Box::new(Effects {
        applied_key,
        profile: target,
        merged,
        expected,
        links,
        decisions,
        account,
    })))
}

/// The live profile behind `id`, following merges.
fn live_profile(view: &mut impl View, id: &str) -> Result<Option<Profile>, ViewError> {
    let mut id = id.to_owned();
    for _ in 0..MAX_HOPS {
        view.require(&[Key::Profile(id.clone())])?;
        let Some(p) = view.profile(&id)? else {
            return Ok(None);
        };
        match &p.merged_into {
            Some(next) => id = next.clone(),
            None => return Ok(Some(p)),
        }
    }
    Err(ViewError::Backend(BackendError(format!(
        "profile {id}: more than {MAX_HOPS} merges to follow"
    ))))
}

/// Counts the event and takes its traits.
fn apply_event(p: &mut Profile, event: &Event<'_>) {
    p.first_seen_ms = p.first_seen_ms.min(event.at_ms);
    p.last_seen_ms = p.last_seen_ms.max(event.at_ms);
    *p.counts.entry(event.kind.clone()).or_default() += 1;
    if let ("track", Some(name)) = (event.kind.as_str(), &event.name) {
        *p.event_counts.entry(name.clone()).or_default() += 1;
    }
    if event.kind == "identify" {
        super::model::merge_traits(&mut p.traits, stamped_traits(event));
    }
}

fn stamped_traits(event: &Event<'_>) -> Traits {
    event
        .traits
        .iter()
        .flatten()
        .map(|(k, v)| {
            let s = Stamped {
                value: v.clone(),
                at_ms: event.at_ms,
                message_id: event.message_id.clone(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// A new profile's id: derived from the event that creates it, so a retry
/// after a crash creates the same profile.
pub fn profile_id(source_id: &str, message_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"profile\0")
        .chain_update(source_id.as_bytes())
        .chain_update(b"\0")
        .chain_update(message_id.as_bytes())
        .finalize();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// What will become one person.
#[derive(Default)]
struct Group {
    /// Existing profiles, the event's own first.
    profiles: Vec<Profile>,
    /// New identifiers to link.
    new_ids: Vec<Id>,
    /// Identifiers per type, over both.
    counts: BTreeMap<String, u32>,
}

impl Group {
    fn count(&self, type_name: &str) -> u32 {
        self.counts.get(type_name).copied().unwrap_or(0)
    }

    fn holds(&self, id: &str) -> bool {
        self.profiles.iter().any(|p| p.id == id)
    }

    fn add_new(&mut self, id: Id, type_name: &str) {
        *self.counts.entry(type_name.to_owned()).or_default() += 1;
        self.new_ids.push(id);
    }

    fn add_profile(&mut self, p: Profile) {
        for (t, n) in &p.identity_counts {
            *self.counts.entry(t.clone()).or_default() += n;
        }
        self.profiles.push(p);
    }

    /// Why `p` may not join, if it may not.
    fn refusal(&self, p: &Profile, rules: &Rules, top: &str) -> Option<String> {
        let theirs = |t: &str| p.identity_counts.get(t).copied().unwrap_or(0);
        if self.count(top) > 0 && theirs(top) > 0 {
            return Some(format!(
                "two profiles that each hold a {top} (the strongest identifier) never merge"
            ));
        }
        for t in &rules.types {
            let sum = self.count(&t.name) + theirs(&t.name);
            if sum > t.limit {
                return Some(format!(
                    "limit: merged, the profile would hold {sum} {} (at most {})",
                    t.name, t.limit
                ));
            }
        }
        None
    }

    /// The rule that let `p` join, in words.
    fn allowed(&self, p: &Profile, rules: &Rules) -> String {
        let parts: Vec<String> = rules
            .types
            .iter()
            .filter_map(|t| {
                let sum =
                    self.count(&t.name) + p.identity_counts.get(&t.name).copied().unwrap_or(0);
                (sum > 0).then(|| format!("{} {sum}/{}", t.name, t.limit))
            })
            .collect();
        format!("within every limit: {}", parts.join(", "))
    }
}
