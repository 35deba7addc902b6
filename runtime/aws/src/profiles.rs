//! The DynamoDB profile store: the processor's writes and the management
//! API's reads over the identities, profiles and state tables.
//!
//! Keys (ARCHITECTURE.md, "DynamoDB tables and the queries they answer"):
//!
//! - identities: `identifier` (`type:value`) with `profile_id`,
//!   `message_id`, `source_id`, `at_ms`; index `by-profile`
//!   (`profile_id`, `identifier`).
//! - profiles: `pk` = `profile#<id>` with `sk` = `profile` (`doc`, the
//!   profile as JSON, and `version`), `event#<at_ms, 15 digits>#<messageId>`
//!   (a timeline entry) and `merge#<at_ms>#<messageId>#<i>` (a decision);
//!   `pk` = `applied#<sourceId>#<messageId>`, `sk` = `applied` (the
//!   idempotency marker); `pk` = `account#<groupId>`, `sk` = `account`.
//! - state: `pk` = `suppressed#<type:value>`, `sk` = `suppressed`,
//!   `deleted_at` (identifiers of deleted profiles).
//!
//! Each event is resolved against a snapshot (what `BatchGetItem` returned,
//! kept across the batch and updated with what this store wrote), then
//! written in one `TransactWriteItems` whose conditions are what the
//! resolver assumed: the marker is absent, each profile has the version it
//! was read at, each new identifier is neither linked nor suppressed, the
//! account has its version. When the marker's condition fails the event is
//! a duplicate; when another fails a concurrent writer got there first: the
//! snapshot is dropped and the event resolved again. After a merge commits,
//! the loser's identifiers are re-pointed to the winner; readers follow
//! `merged_into` until then, so a crash in between loses nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    TransactWriteItem, WriteRequest,
};
use bytes::Bytes;
use serde_json::value::RawValue;
use uniflow_runtime::backend::BackendError;
use uniflow_runtime::profiles::resolve::MAX_HOPS;
use uniflow_runtime::profiles::{
    Account, BatchError, Cursor, Decision, Deleted, Effects, Event, EventPage, Key, Link, Profile,
    ProfileStore, Report, Resolution, Rules, TimelineEntry, View, ViewError, merge_pages, resolve,
};

/// How many times one event is resolved again after losing a race.
const ATTEMPTS: u32 = 5;
/// `BatchGetItem` takes at most 100 keys.
const MAX_BATCH_GET: usize = 100;
/// `BatchWriteItem` takes at most 25 requests.
const MAX_BATCH_WRITE: usize = 25;
/// Rounds of `UnprocessedKeys` / `UnprocessedItems` before giving up.
const UNPROCESSED_ROUNDS: u32 = 8;
/// Fetch rounds for one resolution (each fetches at least one new key;
/// the resolver follows at most 64 merges).
const MAX_FETCH_ROUNDS: usize = 100;
/// The identities table's index by profile.
const BY_PROFILE: &str = "by-profile";

/// The tables the store uses (the processor's `UNIFLOW_IDENTITIES_TABLE`,
/// `UNIFLOW_PROFILES_TABLE` and `UNIFLOW_STATE_TABLE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTables {
    /// `identifier` to profile, with the `by-profile` index.
    pub identities: String,
    /// Profiles, timelines, decisions, markers and accounts (`pk`, `sk`).
    pub profiles: String,
    /// Suppressed identifiers among the other state (`pk`, `sk`).
    pub state: String,
}

impl ProfileTables {
    /// The tables named by the environment the generated template sets.
    pub fn from_env() -> Result<ProfileTables, BackendError> {
        Ok(ProfileTables {
            identities: crate::env("UNIFLOW_IDENTITIES_TABLE")?,
            profiles: crate::env("UNIFLOW_PROFILES_TABLE")?,
            state: crate::env("UNIFLOW_STATE_TABLE")?,
        })
    }
}

/// Profiles in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoProfiles {
    client: aws_sdk_dynamodb::Client,
    tables: Arc<ProfileTables>,
    rules: Arc<Rules>,
    conflicts: Arc<AtomicU64>,
}

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_i64(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn sdk<E, R>(what: &str, e: aws_sdk_dynamodb::error::SdkError<E, R>) -> BackendError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    BackendError(format!("DynamoDB {what}: {}", DisplayErrorContext(e)))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("profile store: unreadable {what}: {e}"))
}

fn build<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, BackendError> {
    r.map_err(|e| BackendError(format!("DynamoDB request: {e}")))
}

/// A timestamp as a sort key part: 15 digits, negative clamped to 0.
fn padded(at_ms: i64) -> String {
    format!("{:015}", at_ms.max(0))
}

fn profile_pk(id: &str) -> String {
    format!("profile#{id}")
}

fn event_sk(at_ms: i64, message_id: &str) -> String {
    format!("event#{}#{message_id}", padded(at_ms))
}

fn decision_sk(d: &Decision, i: usize) -> String {
    format!("merge#{}#{}#{i}", padded(d.at_ms), d.message_id)
}

fn key_item(pairs: &[(&str, String)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), s(v.clone())))
        .collect()
}

/// What the resolver has read: every key it asked for, present or absent.
#[derive(Debug, Default)]
struct Snapshot {
    applied: HashMap<String, bool>,
    suppressed: HashMap<String, bool>,
    links: HashMap<String, Option<String>>,
    profiles: HashMap<String, Option<Profile>>,
    accounts: HashMap<String, Option<Account>>,
}

impl Snapshot {
    fn has(&self, key: &Key) -> bool {
        match key {
            Key::Applied(k) => self.applied.contains_key(k),
            Key::Suppressed(k) => self.suppressed.contains_key(k),
            Key::Link(k) => self.links.contains_key(k),
            Key::Profile(k) => self.profiles.contains_key(k),
            Key::Account(k) => self.accounts.contains_key(k),
        }
    }

    /// Records `key` as absent from the store.
    fn absent(&mut self, key: &Key) {
        match key {
            Key::Applied(k) => {
                self.applied.insert(k.clone(), false);
            }
            Key::Suppressed(k) => {
                self.suppressed.insert(k.clone(), false);
            }
            Key::Link(k) => {
                self.links.insert(k.clone(), None);
            }
            Key::Profile(k) => {
                self.profiles.insert(k.clone(), None);
            }
            Key::Account(k) => {
                self.accounts.insert(k.clone(), None);
            }
        }
    }

    /// Keys the snapshot will be asked for next: the profiles its links and
    /// merged profiles point to.
    fn follow_ups(&self) -> Vec<Key> {
        let targets = self.links.values().flatten().chain(
            self.profiles
                .values()
                .flatten()
                .filter_map(|p| p.merged_into.as_ref()),
        );
        let mut out: Vec<Key> = targets
            .filter(|id| !self.profiles.contains_key(*id))
            .map(|id| Key::Profile(id.clone()))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// What the store holds after `effects` committed.
    fn committed(&mut self, effects: &Effects) {
        self.applied.insert(effects.applied_key.clone(), true);
        let Some(profile) = &effects.profile else {
            return;
        };
        for loser in &effects.merged {
            self.profiles.insert(loser.id.clone(), Some(loser.clone()));
        }
        self.profiles
            .insert(profile.id.clone(), Some(profile.clone()));
        for link in &effects.links {
            self.links
                .insert(link.identifier.clone(), Some(link.profile_id.clone()));
        }
        if let Some((account, _)) = &effects.account {
            self.accounts
                .insert(account.id.clone(), Some(account.clone()));
        }
    }

    fn get<'a, T>(map: &'a HashMap<String, T>, k: &str, key: Key) -> Result<&'a T, ViewError> {
        map.get(k).ok_or_else(|| ViewError::Missing(vec![key]))
    }
}

impl View for Snapshot {
    fn require(&mut self, keys: &[Key]) -> Result<(), ViewError> {
        let missing: Vec<Key> = keys.iter().filter(|k| !self.has(k)).cloned().collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ViewError::Missing(missing))
        }
    }

    fn applied(&mut self, key: &str) -> Result<bool, ViewError> {
        Snapshot::get(&self.applied, key, Key::Applied(key.to_owned())).copied()
    }

    fn suppressed(&mut self, identifier: &str) -> Result<bool, ViewError> {
        Snapshot::get(
            &self.suppressed,
            identifier,
            Key::Suppressed(identifier.to_owned()),
        )
        .copied()
    }

    fn link(&mut self, identifier: &str) -> Result<Option<String>, ViewError> {
        Snapshot::get(&self.links, identifier, Key::Link(identifier.to_owned())).cloned()
    }

    fn profile(&mut self, id: &str) -> Result<Option<Profile>, ViewError> {
        Snapshot::get(&self.profiles, id, Key::Profile(id.to_owned())).cloned()
    }

    fn account(&mut self, id: &str) -> Result<Option<Account>, ViewError> {
        Snapshot::get(&self.accounts, id, Key::Account(id.to_owned())).cloned()
    }
}

/// How one event's transaction ended.
enum Commit {
    /// Written.
    Done,
    /// The marker existed: applied before.
    Duplicate,
    /// Another writer changed what the resolver read (the reasons, for the log).
    Conflict(String),
}

impl DynamoProfiles {
    /// A store over `tables`, applying `rules`.
    pub fn new(config: &aws_config::SdkConfig, tables: ProfileTables, rules: Rules) -> Self {
        DynamoProfiles {
            client: aws_sdk_dynamodb::Client::new(config),
            tables: Arc::new(tables),
            rules: Arc::new(rules),
            conflicts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many transactions lost a race to another writer and were
    /// resolved again, since the store was made.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Where a key lives: table and primary key.
    fn locate(&self, key: &Key) -> (&str, Item) {
        let t = &self.tables;
        match key {
            Key::Applied(k) => (
                &t.profiles,
                key_item(&[("pk", format!("applied#{k}")), ("sk", "applied".into())]),
            ),
            Key::Suppressed(k) => (
                &t.state,
                key_item(&[
                    ("pk", format!("suppressed#{k}")),
                    ("sk", "suppressed".into()),
                ]),
            ),
            Key::Link(k) => (&t.identities, key_item(&[("identifier", k.clone())])),
            Key::Profile(k) => (
                &t.profiles,
                key_item(&[("pk", profile_pk(k)), ("sk", "profile".into())]),
            ),
            Key::Account(k) => (
                &t.profiles,
                key_item(&[("pk", format!("account#{k}")), ("sk", "account".into())]),
            ),
        }
    }

    /// Puts an item `BatchGetItem` returned into the snapshot.
    fn record(&self, snap: &mut Snapshot, table: &str, item: &Item) -> Result<(), BackendError> {
        if table == self.tables.identities {
            if let (Some(identifier), Some(profile)) =
                (get_s(item, "identifier"), get_s(item, "profile_id"))
            {
                snap.links
                    .insert(identifier.to_owned(), Some(profile.to_owned()));
            }
            return Ok(());
        }
        let pk = get_s(item, "pk").unwrap_or_default();
        if table == self.tables.state {
            if let Some(id) = pk.strip_prefix("suppressed#") {
                snap.suppressed.insert(id.to_owned(), true);
            }
        } else if let Some(k) = pk.strip_prefix("applied#") {
            snap.applied.insert(k.to_owned(), true);
        } else if let Some(id) = pk.strip_prefix("profile#") {
            let p: Profile = serde_json::from_str(get_s(item, "doc").unwrap_or_default())
                .map_err(|e| corrupt("profile", e))?;
            snap.profiles.insert(id.to_owned(), Some(p));
        } else if let Some(id) = pk.strip_prefix("account#") {
            let a: Account = serde_json::from_str(get_s(item, "doc").unwrap_or_default())
                .map_err(|e| corrupt("account", e))?;
            snap.accounts.insert(id.to_owned(), Some(a));
        }
        Ok(())
    }

    /// Fetches `keys` (and the profiles they point to) into the snapshot,
    /// consistently, 100 keys per `BatchGetItem`.
    async fn fetch(&self, snap: &mut Snapshot, keys: Vec<Key>) -> Result<(), BackendError> {
        let mut keys = keys;
        loop {
            keys.retain(|k| !snap.has(k));
            keys.sort();
            keys.dedup();
            if keys.is_empty() {
                return Ok(());
            }
            for chunk in keys.chunks(MAX_BATCH_GET) {
                self.batch_get(snap, chunk).await?;
                for k in chunk {
                    if !snap.has(k) {
                        snap.absent(k);
                    }
                }
            }
            keys = snap.follow_ups();
        }
    }

    async fn batch_get(&self, snap: &mut Snapshot, keys: &[Key]) -> Result<(), BackendError> {
        let mut by_table: HashMap<String, Vec<Item>> = HashMap::new();
        for k in keys {
            let (table, key) = self.locate(k);
            by_table.entry(table.to_owned()).or_default().push(key);
        }
        let mut request = HashMap::new();
        for (table, keys) in by_table {
            let ka = build(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build(),
            )?;
            request.insert(table, ka);
        }
        for round in 0..UNPROCESSED_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(request))
                .send()
                .await
                .map_err(|e| sdk("BatchGetItem", e))?;
            for (table, items) in out.responses.unwrap_or_default() {
                for item in &items {
                    self.record(snap, &table, item)?;
                }
            }
            request = out
                .unprocessed_keys
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, ka)| !ka.keys.is_empty())
                .collect();
            if request.is_empty() {
                return Ok(());
            }
        }
        Err(BackendError(format!(
            "DynamoDB BatchGetItem left keys unprocessed after {UNPROCESSED_ROUNDS} rounds"
        )))
    }

    /// Resolves one event, fetching what the resolver asks for.
    async fn resolve(
        &self,
        snap: &mut Snapshot,
        event: &Event<'_>,
    ) -> Result<Resolution, BackendError> {
        for _ in 0..MAX_FETCH_ROUNDS {
            match resolve(&self.rules, event, snap) {
                Ok(r) => return Ok(r),
                Err(ViewError::Missing(keys)) => self.fetch(snap, keys).await?,
                Err(ViewError::Backend(e)) => return Err(e),
            }
        }
        Err(BackendError(format!(
            "event {}: still missing keys after {MAX_FETCH_ROUNDS} fetches",
            event.message_id
        )))
    }

    /// A profile (or account) document put, conditional on the version it
    /// was read at (`None`: must not exist).
    fn versioned_put(
        &self,
        pk: String,
        sk: &str,
        doc: String,
        version: u64,
        expected: Option<u64>,
    ) -> Result<TransactWriteItem, BackendError> {
        let put = Put::builder()
            .table_name(&self.tables.profiles)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("doc", s(doc))
            .item("version", n(version));
        let put = match expected {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(v) => put
                .condition_expression("#v = :v")
                .expression_attribute_names("#v", "version")
                .expression_attribute_values(":v", n(v)),
        };
        Ok(TransactWriteItem::builder()
            .put(build(put.build())?)
            .build())
    }

    /// The items of one event's transaction; the marker comes first. `snap`
    /// is what the effects were resolved from.
    fn transaction(
        &self,
        effects: &Effects,
        event: &Event<'_>,
        snap: &Snapshot,
    ) -> Result<Vec<TransactWriteItem>, BackendError> {
        let t = &self.tables;
        let put = |p: aws_sdk_dynamodb::types::builders::PutBuilder| {
            build(p.build()).map(|p| TransactWriteItem::builder().put(p).build())
        };
        let mut marker = Put::builder()
            .table_name(&t.profiles)
            .item("pk", s(format!("applied#{}", effects.applied_key)))
            .item("sk", s("applied"))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(p) = &effects.profile {
            marker = marker.item("profile_id", s(&p.id));
        }
        let mut items = vec![put(marker)?];
        let Some(profile) = &effects.profile else {
            return Ok(items);
        };
        let expected = |id: &str| effects.expected.get(id).copied().flatten();
        for p in effects.merged.iter().chain([profile]) {
            items.push(self.versioned_put(
                profile_pk(&p.id),
                "profile",
                p.to_json(),
                p.version,
                expected(&p.id),
            )?);
        }
        for link in &effects.links {
            let new = Put::builder()
                .table_name(&t.identities)
                .item("identifier", s(&link.identifier))
                .item("profile_id", s(&link.profile_id))
                .item("message_id", s(&link.message_id))
                .item("source_id", s(&link.source_id))
                .item("at_ms", n(link.at_ms));
            // A link the resolver took for free although it exists points
            // to a profile that is gone (deleted while the link was being
            // written): it is replaced, as long as it still points there.
            let new = match snap.links.get(&link.identifier) {
                Some(Some(gone)) => new
                    .condition_expression("profile_id = :gone")
                    .expression_attribute_values(":gone", s(gone)),
                _ => new.condition_expression("attribute_not_exists(identifier)"),
            };
            items.push(put(new)?);
            let check = ConditionCheck::builder()
                .table_name(&t.state)
                .key("pk", s(format!("suppressed#{}", link.identifier)))
                .key("sk", s("suppressed"))
                .condition_expression("attribute_not_exists(pk)");
            items.push(
                TransactWriteItem::builder()
                    .condition_check(build(check.build())?)
                    .build(),
            );
        }
        for (owner, i, d) in effects.recorded() {
            let doc = serde_json::to_string(d).map_err(|e| BackendError(e.to_string()))?;
            items.push(put(Put::builder()
                .table_name(&t.profiles)
                .item("pk", s(profile_pk(owner)))
                .item("sk", s(decision_sk(d, i)))
                .item("doc", s(doc)))?);
        }
        items.push(put(Put::builder()
            .table_name(&t.profiles)
            .item("pk", s(profile_pk(&profile.id)))
            .item("sk", s(event_sk(event.at_ms, &event.message_id)))
            .item("at_ms", n(event.at_ms))
            .item("message_id", s(&event.message_id))
            .item("event", s(event.raw.get())))?);
        if let Some((account, version)) = &effects.account {
            let doc = serde_json::to_string(account).map_err(|e| BackendError(e.to_string()))?;
            items.push(self.versioned_put(
                format!("account#{}", account.id),
                "account",
                doc,
                account.version,
                *version,
            )?);
        }
        Ok(items)
    }

    /// Writes one event's effects in one transaction.
    async fn commit(
        &self,
        effects: &Effects,
        event: &Event<'_>,
        snap: &Snapshot,
    ) -> Result<Commit, BackendError> {
        let items = self.transaction(effects, event, snap)?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(Commit::Done),
            Err(e) => e,
        };
        match e.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                let reasons = c.cancellation_reasons();
                if reasons.first().and_then(|r| r.code()) == Some("ConditionalCheckFailed") {
                    return Ok(Commit::Duplicate);
                }
                let codes: Vec<&str> = reasons.iter().filter_map(|r| r.code()).collect();
                // An item DynamoDB refuses (too large, say) is refused again.
                if codes.contains(&"ValidationError") {
                    return Err(sdk("TransactWriteItems", e));
                }
                Ok(Commit::Conflict(codes.join(", ")))
            }
            _ => Err(sdk("TransactWriteItems", e)),
        }
    }

    /// Points the merged-away profile's identifiers at the profile that
    /// absorbed it. Best effort: readers follow `merged_into` anyway.
    async fn repoint(&self, loser: &str, winner: &str) -> Result<(), BackendError> {
        for link in self.links_of(loser).await? {
            let result = self
                .client
                .update_item()
                .table_name(&self.tables.identities)
                .key("identifier", s(&link.identifier))
                .update_expression("SET profile_id = :winner")
                .condition_expression("profile_id = :loser")
                .expression_attribute_values(":winner", s(winner))
                .expression_attribute_values(":loser", s(loser))
                .send()
                .await;
            match result {
                Ok(_) => {}
                // Deleted or re-pointed by someone else meanwhile.
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(sdk("UpdateItem", e)),
            }
        }
        Ok(())
    }

    /// The identifiers linked to exactly this profile id (the index).
    async fn links_of(&self, profile_id: &str) -> Result<Vec<Link>, BackendError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.tables.identities)
            .index_name(BY_PROFILE)
            .key_condition_expression("profile_id = :p")
            .expression_attribute_values(":p", s(profile_id))
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| sdk("Query by-profile", e))?;
            out.push(Link {
                identifier: get_s(&item, "identifier").unwrap_or_default().to_owned(),
                profile_id: get_s(&item, "profile_id").unwrap_or_default().to_owned(),
                message_id: get_s(&item, "message_id").unwrap_or_default().to_owned(),
                source_id: get_s(&item, "source_id").unwrap_or_default().to_owned(),
                at_ms: get_i64(&item, "at_ms").unwrap_or_default(),
            });
        }
        Ok(out)
    }

    async fn get(&self, key: &Key) -> Result<Option<Item>, BackendError> {
        let (table, key) = self.locate(key);
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        Ok(out.item)
    }

    /// A profile as stored (possibly merged away).
    async fn stored(&self, id: &str) -> Result<Option<Profile>, BackendError> {
        match self.get(&Key::Profile(id.to_owned())).await? {
            Some(item) => serde_json::from_str(get_s(&item, "doc").unwrap_or_default())
                .map(Some)
                .map_err(|e| corrupt("profile", e)),
            None => Ok(None),
        }
    }

    /// The live profile behind `id`, following merges.
    async fn live(&self, id: &str) -> Result<Option<Profile>, BackendError> {
        let mut id = id.to_owned();
        for _ in 0..MAX_HOPS {
            let Some(p) = self.stored(&id).await? else {
                return Ok(None);
            };
            match p.merged_into {
                Some(next) => id = next,
                None => return Ok(Some(p)),
            }
        }
        Err(BackendError(format!(
            "profile {id}: too many merges to follow"
        )))
    }

    /// The live profile and every profile merged into it, recursively.
    async fn family(&self, root: &Profile) -> Result<Vec<String>, BackendError> {
        let mut out = vec![root.id.clone()];
        let mut todo = root.merged_from.clone();
        while let Some(id) = todo.pop() {
            if out.contains(&id) {
                continue;
            }
            if let Some(p) = self.stored(&id).await? {
                todo.extend(p.merged_from);
            }
            out.push(id);
        }
        Ok(out)
    }

    /// Every item of a profile's partition, as keys.
    async fn partition_keys(&self, profile_id: &str) -> Result<Vec<Item>, BackendError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.tables.profiles)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(profile_pk(profile_id)))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut out = Vec::new();
        while let Some(item) = pages.next().await {
            out.push(item.map_err(|e| sdk("Query", e))?);
        }
        Ok(out)
    }

    /// Writes requests to one table, 25 at a time, retrying unprocessed ones.
    async fn batch_write(
        &self,
        table: &str,
        requests: Vec<WriteRequest>,
    ) -> Result<(), BackendError> {
        for chunk in requests.chunks(MAX_BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for round in 0..=UNPROCESSED_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                if round == UNPROCESSED_ROUNDS {
                    return Err(BackendError(format!(
                        "DynamoDB BatchWriteItem left {} requests unprocessed",
                        pending.len()
                    )));
                }
                if round > 0 {
                    tokio::time::sleep(Duration::from_millis(25 << round)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| sdk("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .unwrap_or_default()
                    .remove(table)
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Processes a batch (what [`ProfileStore::process`] does).
    async fn process_batch(&self, events: Vec<Bytes>) -> Result<Report, BatchError> {
        let mut report = Report::default();
        let mut snap = Snapshot::default();
        for (i, bytes) in events.iter().enumerate() {
            let event = match Event::from_bytes(bytes) {
                Ok(e) => e,
                Err(e) => {
                    report.invalid.push((i, e.to_string()));
                    continue;
                }
            };
            if let Err(error) = self.apply(&mut snap, &event, &mut report).await {
                return Err(BatchError {
                    done: i,
                    report,
                    error,
                });
            }
        }
        Ok(report)
    }

    /// Applies one event, resolving again after each lost race.
    async fn apply(
        &self,
        snap: &mut Snapshot,
        event: &Event<'_>,
        report: &mut Report,
    ) -> Result<(), BackendError> {
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                // Jittered, so two writers racing for one person do not
                // meet again at the same moment.
                let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 16);
                tokio::time::sleep(Duration::from_millis((5 << attempt) + jitter)).await;
            }
            let effects = match self.resolve(snap, event).await? {
                Resolution::AlreadyApplied => {
                    report.duplicates += 1;
                    return Ok(());
                }
                Resolution::Apply(effects) => effects,
            };
            match self.commit(&effects, event, snap).await? {
                Commit::Done => {
                    report.count(&effects);
                    snap.committed(&effects);
                    if let Some(winner) = &effects.profile {
                        for loser in &effects.merged {
                            if let Err(e) = self.repoint(&loser.id, &winner.id).await {
                                tracing::warn!(loser = %loser.id, winner = %winner.id, error = %e,
                                    "could not re-point a merged profile's identifiers; readers follow merged_into");
                            }
                        }
                    }
                    return Ok(());
                }
                Commit::Duplicate => {
                    report.duplicates += 1;
                    snap.applied.insert(effects.applied_key.clone(), true);
                    return Ok(());
                }
                Commit::Conflict(reasons) => {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(message_id = %event.message_id, attempt, %reasons,
                        "another writer changed this event's profiles; resolving again");
                    *snap = Snapshot::default();
                    last = reasons;
                }
            }
        }
        Err(BackendError(format!(
            "event {}: lost {ATTEMPTS} races to other writers (last: {last})",
            event.message_id
        )))
    }
}

impl ProfileStore for DynamoProfiles {
    async fn process(&self, events: Vec<Bytes>) -> Result<Report, BatchError> {
        self.process_batch(events).await
    }

    async fn profile(&self, id: &str) -> Result<Option<Profile>, BackendError> {
        self.live(id).await
    }

    async fn lookup(&self, identifier: &str) -> Result<Option<Profile>, BackendError> {
        let item = self.get(&Key::Link(identifier.to_owned())).await?;
        match item.as_ref().and_then(|i| get_s(i, "profile_id")) {
            Some(id) => self.live(id).await,
            None => Ok(None),
        }
    }

    async fn identities(&self, id: &str) -> Result<Vec<Link>, BackendError> {
        let Some(root) = self.live(id).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for pid in self.family(&root).await? {
            out.extend(self.links_of(&pid).await?);
        }
        out.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        out.dedup_by(|a, b| a.identifier == b.identifier);
        Ok(out)
    }

    async fn events(
        &self,
        id: &str,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<EventPage, BackendError> {
        let Some(root) = self.live(id).await? else {
            return Ok(merge_pages(Vec::new(), limit));
        };
        let want = limit.max(1) + 1;
        // BETWEEN is inclusive: the cursor's own entry is read and dropped.
        let upper = match &before {
            Some(c) => event_sk(c.at_ms, &c.message_id),
            None => "event$".to_owned(),
        };
        let page_size = i32::try_from(want + 1).unwrap_or(i32::MAX);
        let mut entries = Vec::new();
        for pid in self.family(&root).await? {
            let mut found = 0;
            let mut start: Option<Item> = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(&self.tables.profiles)
                    .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":pk", s(profile_pk(&pid)))
                    .expression_attribute_values(":lo", s("event#"))
                    .expression_attribute_values(":hi", s(upper.clone()))
                    .scan_index_forward(false)
                    .consistent_read(true)
                    .limit(page_size)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| sdk("Query", e))?;
                for item in out.items() {
                    let at_ms = get_i64(item, "at_ms")
                        .ok_or_else(|| corrupt("timeline entry", "no at_ms"))?;
                    let message_id = get_s(item, "message_id")
                        .ok_or_else(|| corrupt("timeline entry", "no message_id"))?
                        .to_owned();
                    let newer = |c: &Cursor| (at_ms, &message_id) >= (c.at_ms, &c.message_id);
                    if before.as_ref().is_some_and(newer) {
                        continue;
                    }
                    let event =
                        RawValue::from_string(get_s(item, "event").unwrap_or_default().to_owned())
                            .map_err(|e| corrupt("timeline entry", e))?;
                    entries.push(TimelineEntry {
                        at_ms,
                        message_id,
                        event,
                    });
                    found += 1;
                }
                match out.last_evaluated_key {
                    Some(k) if found < want => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(merge_pages(entries, limit))
    }

    async fn history(&self, id: &str) -> Result<Vec<Decision>, BackendError> {
        let Some(root) = self.live(id).await? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(usize, Decision)> = Vec::new();
        for pid in self.family(&root).await? {
            let mut pages = self
                .client
                .query()
                .table_name(&self.tables.profiles)
                .key_condition_expression("pk = :pk AND begins_with(sk, :merge)")
                .expression_attribute_values(":pk", s(profile_pk(&pid)))
                .expression_attribute_values(":merge", s("merge#"))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| sdk("Query", e))?;
                let d: Decision = serde_json::from_str(get_s(&item, "doc").unwrap_or_default())
                    .map_err(|e| corrupt("decision", e))?;
                // The decision's index within its event, after the last `#`.
                let i = get_s(&item, "sk")
                    .and_then(|sk| sk.rsplit('#').next())
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                out.push((i, d));
            }
        }
        out.sort_by(|(i, a), (j, b)| (a.at_ms, &a.message_id, i).cmp(&(b.at_ms, &b.message_id, j)));
        Ok(out.into_iter().map(|(_, d)| d).collect())
    }

    async fn delete(&self, id: &str, now_ms: i64) -> Result<Option<Deleted>, BackendError> {
        let Some(root) = self.live(id).await? else {
            return Ok(None);
        };
        let family = self.family(&root).await?;
        // Suppress first, then unlink: an identifier is never free meanwhile.
        let mut identifiers: Vec<String> = Vec::new();
        for pid in &family {
            identifiers.extend(self.links_of(pid).await?.into_iter().map(|l| l.identifier));
        }
        identifiers.sort();
        identifiers.dedup();
        let mut suppress = Vec::with_capacity(identifiers.len());
        let mut unlink = Vec::with_capacity(identifiers.len());
        for identifier in &identifiers {
            let put = build(
                PutRequest::builder()
                    .item("pk", s(format!("suppressed#{identifier}")))
                    .item("sk", s("suppressed"))
                    .item("deleted_at", n(now_ms))
                    .build(),
            )?;
            suppress.push(WriteRequest::builder().put_request(put).build());
            let delete = build(
                DeleteRequest::builder()
                    .key("identifier", s(identifier))
                    .build(),
            )?;
            unlink.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(&self.tables.state, suppress).await?;
        self.batch_write(&self.tables.identities, unlink).await?;
        // The live profile's own item goes last, so a delete interrupted
        // half-way can be run again.
        let mut items = Vec::new();
        let mut root_item = None;
        for pid in &family {
            for key in self.partition_keys(pid).await? {
                let is_root = pid == &root.id && get_s(&key, "sk") == Some("profile");
                if is_root {
                    root_item = Some(key);
                    continue;
                }
                let delete = build(DeleteRequest::builder().set_key(Some(key)).build())?;
                items.push(WriteRequest::builder().delete_request(delete).build());
            }
        }
        self.batch_write(&self.tables.profiles, items).await?;
        if let Some(key) = root_item {
            self.client
                .delete_item()
                .table_name(&self.tables.profiles)
                .set_key(Some(key))
                .send()
                .await
                .map_err(|e| sdk("DeleteItem", e))?;
        }
        Ok(Some(Deleted {
            profiles: family,
            identifiers,
        }))
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, BackendError> {
        match self.get(&Key::Account(id.to_owned())).await? {
            Some(item) => serde_json::from_str(get_s(&item, "doc").unwrap_or_default())
                .map(Some)
                .map_err(|e| corrupt("account", e)),
            None => Ok(None),
        }
    }
}
