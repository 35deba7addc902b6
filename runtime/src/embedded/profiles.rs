//! The embedded profile store of `uniflow dev`: redb, one file under
//! `DIR/profiles.redb`.
//!
//! Why redb: an embedded, ACID key-value store in pure Rust (nothing to
//! install, builds in seconds on two cores) with copy-on-write B-trees,
//! checksummed commits that survive a crash at any point, a stable file
//! format, and one writer with concurrent readers — exactly the processor
//! (one writer) and the management API (readers). SQLite was the other
//! candidate; it adds a C build and a SQL layer the processor does not need.
//!
//! A batch of events is applied in one write transaction together with the
//! log offset it reaches, so after a crash the processor resumes exactly
//! where its last commit ended: effects once, without relying on the
//! idempotency keys (which still guard redelivered messages).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, Table, TableDefinition};
use serde_json::value::RawValue;

use crate::backend::BackendError;
use crate::profiles::model::{Account, Cursor, Decision, EventPage, Link, Profile, TimelineEntry};
use crate::profiles::resolve::MAX_HOPS;
use crate::profiles::{
    BatchError, Deleted, Effects, Event, ProfileStore, Report, Resolution, Rules, View, ViewError,
    merge_pages, resolve,
};

const LINKS: TableDefinition<&str, &str> = TableDefinition::new("links");
const BY_PROFILE: TableDefinition<(&str, &str), ()> = TableDefinition::new("links_by_profile");
const PROFILES: TableDefinition<&str, &str> = TableDefinition::new("profiles");
/// A timeline entry's value: `L` and the log offset of the event (events
/// from the log are not copied), or `J` and the event's JSON.
const TIMELINE: TableDefinition<(&str, i64, &str), &[u8]> = TableDefinition::new("timeline");
const DECISIONS: TableDefinition<(&str, i64, &str), &str> = TableDefinition::new("decisions");
const APPLIED: TableDefinition<&str, &str> = TableDefinition::new("applied");
const SUPPRESSED: TableDefinition<&str, i64> = TableDefinition::new("suppressed");
const ACCOUNTS: TableDefinition<&str, &str> = TableDefinition::new("accounts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// The profile store on local disk.
#[derive(Clone)]
pub struct EmbeddedProfiles {
    db: Arc<Database>,
    rules: Arc<Rules>,
    /// When a batch from the log was last committed durably.
    last_durable: Arc<Mutex<Instant>>,
    /// The event log the timeline refers to.
    log: Option<super::Log>,
}

/// How long batches from the log may stay unsynced. Losing them in a crash
/// loses nothing: the log offset rolls back with them and the processor
/// applies those records again.
const SYNC_EVERY: Duration = Duration::from_secs(1);

impl std::fmt::Debug for EmbeddedProfiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedProfiles").finish_non_exhaustive()
    }
}

fn db(e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("profile store: {e}"))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError(format!("profile store: unreadable {what}: {e}"))
}

/// The tables of one write transaction.
struct Tables<'t> {
    links: Table<'t, &'static str, &'static str>,
    by_profile: Table<'t, (&'static str, &'static str), ()>,
    profiles: Table<'t, &'static str, &'static str>,
    timeline: Table<'t, (&'static str, i64, &'static str), &'static [u8]>,
    decisions: Table<'t, (&'static str, i64, &'static str), &'static str>,
    applied: Table<'t, &'static str, &'static str>,
    suppressed: Table<'t, &'static str, i64>,
    accounts: Table<'t, &'static str, &'static str>,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t redb::WriteTransaction) -> Result<Tables<'t>, BackendError> {
        Ok(Tables {
            links: txn.open_table(LINKS).map_err(db)?,
            by_profile: txn.open_table(BY_PROFILE).map_err(db)?,
            profiles: txn.open_table(PROFILES).map_err(db)?,
            timeline: txn.open_table(TIMELINE).map_err(db)?,
            decisions: txn.open_table(DECISIONS).map_err(db)?,
            applied: txn.open_table(APPLIED).map_err(db)?,
            suppressed: txn.open_table(SUPPRESSED).map_err(db)?,
            accounts: txn.open_table(ACCOUNTS).map_err(db)?,
        })
    }

    /// Writes one event's effects; returns how many items it wrote.
    fn write(
        &mut self,
        effects: &Effects,
        event: &Event<'_>,
        offset: Option<u64>,
    ) -> Result<usize, BackendError> {
        let owner = effects.profile.as_ref().map_or("", |p| p.id.as_str());
        self.applied
            .insert(effects.applied_key.as_str(), owner)
            .map_err(db)?;
        let Some(profile) = &effects.profile else {
            return Ok(1);
        };
        // The marker, the profile, the timeline entry, two per link, the
        // decisions, the merged-away profiles and the account.
        let mut writes = 3
            + 2 * effects.links.len()
            + effects.recorded().len()
            + effects.merged.len()
            + usize::from(effects.account.is_some());
        for loser in &effects.merged {
            self.profiles
                .insert(loser.id.as_str(), loser.to_json().as_str())
                .map_err(db)?;
            // Re-point the loser's identifiers now (DynamoDB does it after
            // its transaction; readers follow `merged_into` meanwhile).
            let ids: Vec<String> = self
                .by_profile
                .range((loser.id.as_str(), "")..)
                .map_err(db)?
                .map_while(|r| {
                    r.ok().and_then(|(k, _)| {
                        let (p, i) = k.value();
                        (p == loser.id).then(|| i.to_owned())
                    })
                })
                .collect();
            writes += 3 * ids.len();
            for identifier in ids {
                self.by_profile
                    .remove((loser.id.as_str(), identifier.as_str()))
                    .map_err(db)?;
                self.by_profile
                    .insert((profile.id.as_str(), identifier.as_str()), ())
                    .map_err(db)?;
                let link = self
                    .links
                    .get(identifier.as_str())
                    .map_err(db)?
                    .map(|v| serde_json::from_str::<Link>(v.value()));
                if let Some(Ok(mut link)) = link {
                    link.profile_id = profile.id.clone();
                    let json = serde_json::to_string(&link).unwrap_or_default();
                    self.links
                        .insert(identifier.as_str(), json.as_str())
                        .map_err(db)?;
                }
            }
        }
        self.profiles
            .insert(profile.id.as_str(), profile.to_json().as_str())
            .map_err(db)?;
        for link in &effects.links {
            let json = serde_json::to_string(link).unwrap_or_default();
            self.links
                .insert(link.identifier.as_str(), json.as_str())
                .map_err(db)?;
            self.by_profile
                .insert((link.profile_id.as_str(), link.identifier.as_str()), ())
                .map_err(db)?;
        }
        for (owner, i, d) in effects.recorded() {
            let key = format!("{}#{i}", d.message_id);
            let json = serde_json::to_string(d).unwrap_or_default();
            self.decisions
                .insert((owner, d.at_ms, key.as_str()), json.as_str())
                .map_err(db)?;
        }
        let mut entry = Vec::with_capacity(9);
        match offset {
            Some(at) => {
                entry.push(b'L');
                entry.extend_from_slice(&at.to_le_bytes());
            }
            None => {
                entry.push(b'J');
                entry.extend_from_slice(event.raw.get().as_bytes());
            }
        }
        self.timeline
            .insert(
                (profile.id.as_str(), event.at_ms, event.message_id.as_str()),
                entry.as_slice(),
            )
            .map_err(db)?;
        if let Some((account, _)) = &effects.account {
            let json = serde_json::to_string(account).unwrap_or_default();
            self.accounts
                .insert(account.id.as_str(), json.as_str())
                .map_err(db)?;
        }
        Ok(writes)
    }
}

impl View for Tables<'_> {
    fn applied(&mut self, key: &str) -> Result<bool, ViewError> {
        Ok(self.applied.get(key).map_err(db)?.is_some())
    }

    fn suppressed(&mut self, identifier: &str) -> Result<bool, ViewError> {
        Ok(self.suppressed.get(identifier).map_err(db)?.is_some())
    }

    fn link(&mut self, identifier: &str) -> Result<Option<String>, ViewError> {
        let Some(v) = self.links.get(identifier).map_err(db)? else {
            return Ok(None);
        };
        let link: Link = serde_json::from_str(v.value()).map_err(|e| corrupt("link", e))?;
        Ok(Some(link.profile_id))
    }

    fn profile(&mut self, id: &str) -> Result<Option<Profile>, ViewError> {
        read_json(&self.profiles, id, "profile").map_err(ViewError::from)
    }

    fn account(&mut self, id: &str) -> Result<Option<Account>, ViewError> {
        read_json(&self.accounts, id, "account").map_err(ViewError::from)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
    what: &str,
) -> Result<Option<T>, BackendError> {
    match table.get(key).map_err(db)? {
        Some(v) => serde_json::from_str(v.value())
            .map(Some)
            .map_err(|e| corrupt(what, e)),
        None => Ok(None),
    }
}

impl EmbeddedProfiles {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path, rules: Rules) -> Result<EmbeddedProfiles, BackendError> {
        let database = Database::create(path).map_err(db)?;
        // Create every table, so readers never meet a missing one.
        let txn = database.begin_write().map_err(db)?;
        Tables::open(&txn)?;
        txn.open_table(META).map_err(db)?;
        txn.commit().map_err(db)?;
        Ok(EmbeddedProfiles {
            db: Arc::new(database),
            rules: Arc::new(rules),
            last_durable: Arc::new(Mutex::new(Instant::now())),
            log: None,
        })
    }

    /// The store of a processor reading `log`: timeline entries of events
    /// from the log refer to it instead of copying the event.
    pub fn with_log(mut self, log: super::Log) -> EmbeddedProfiles {
        self.log = Some(log);
        self
    }

    /// The log offset the last committed batch reached.
    pub fn cursor(&self) -> Result<u64, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        let meta = txn.open_table(META).map_err(db)?;
        Ok(meta.get("cursor").map_err(db)?.map_or(0, |v| v.value()))
    }

    /// Applies a batch in one transaction. With `from_log` (each event's
    /// log offset, and the offset the batch reaches), the timeline refers to
    /// the events in the log and the reached offset is recorded in the same
    /// transaction.
    pub fn apply_batch(
        &self,
        events: &[&[u8]],
        from_log: Option<(&[u64], u64)>,
    ) -> Result<Report, BatchError> {
        let cursor = from_log.map(|(_, reached)| reached);
        let fail = |error: BackendError| BatchError {
            done: 0,
            report: Report::default(),
            error,
        };
        let mut txn = self.db.begin_write().map_err(|e| fail(db(e)))?;
        // Batches from the log are synced once a second: the offset is in
        // the same transaction, so a crash rolls both back together.
        // Anything else (redelivered batches, tests) is synced at once.
        if cursor.is_some() {
            let mut last = self
                .last_durable
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.elapsed() < SYNC_EVERY {
                txn.set_durability(Durability::None);
            } else {
                *last = Instant::now();
            }
        }
        let mut report = Report::default();
        {
            let mut tables = Tables::open(&txn).map_err(fail)?;
            for (i, bytes) in events.iter().enumerate() {
                let event = match Event::from_bytes(bytes) {
                    Ok(e) => e,
                    Err(e) => {
                        report.invalid.push((i, e.to_string()));
                        continue;
                    }
                };
                match resolve(&self.rules, &event, &mut tables) {
                    Ok(Resolution::AlreadyApplied) => report.duplicates += 1,
                    Ok(Resolution::Apply(effects)) => {
                        let offset = from_log.and_then(|(offsets, _)| offsets.get(i).copied());
                        report.writes += tables.write(&effects, &event, offset).map_err(fail)?;
                        report.count(&effects);
                    }
                    Err(ViewError::Backend(e)) => return Err(fail(e)),
                    Err(ViewError::Missing(_)) => {
                        return Err(fail(BackendError(
                            "profile store: a transaction view reported a missing key".into(),
                        )));
                    }
                }
            }
        }
        if let Some(offset) = cursor {
            let mut meta = txn.open_table(META).map_err(|e| fail(db(e)))?;
            meta.insert("cursor", offset).map_err(|e| fail(db(e)))?;
        }
        txn.commit().map_err(|e| fail(db(e)))?;
        Ok(report)
    }

    /// The event a timeline entry holds or refers to.
    fn timeline_event(&self, entry: &[u8]) -> Result<Box<RawValue>, BackendError> {
        let json = match entry.split_first() {
            Some((b'J', json)) => json.to_vec(),
            Some((b'L', at)) => {
                let at = at
                    .try_into()
                    .map(u64::from_le_bytes)
                    .map_err(|_| corrupt("timeline entry", "a short log offset"))?;
                let log = self.log.as_ref().ok_or_else(|| {
                    BackendError(
                        "profile store: the timeline refers to the log, which is not open".into(),
                    )
                })?;
                log.json_at(at)
                    .map_err(|e| BackendError(format!("profile store: {e}")))?
                    .ok_or_else(|| {
                        corrupt("timeline entry", format!("no event at log offset {at}"))
                    })?
            }
            _ => return Err(corrupt("timeline entry", "an unknown tag")),
        };
        let text = String::from_utf8(json).map_err(|e| corrupt("timeline entry", e))?;
        RawValue::from_string(text).map_err(|e| corrupt("timeline entry", e))
    }

    /// Makes every commit so far durable (batches from the log are synced
    /// once a second; a graceful stop syncs the rest).
    pub fn sync(&self) -> Result<(), BackendError> {
        let mut txn = self.db.begin_write().map_err(db)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(db)?;
        if let Ok(mut last) = self.last_durable.lock() {
            *last = Instant::now();
        }
        Ok(())
    }

    /// Reads with a read transaction.
    fn read<T>(
        &self,
        f: impl FnOnce(&redb::ReadTransaction) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        let txn = self.db.begin_read().map_err(db)?;
        f(&txn)
    }

    fn live(&self, txn: &redb::ReadTransaction, id: &str) -> Result<Option<Profile>, BackendError> {
        let profiles = txn.open_table(PROFILES).map_err(db)?;
        let mut id = id.to_owned();
        for _ in 0..MAX_HOPS {
            let Some(p) = read_json::<Profile>(&profiles, &id, "profile")? else {
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
    fn family(
        &self,
        txn: &redb::ReadTransaction,
        root: &Profile,
    ) -> Result<Vec<String>, BackendError> {
        let profiles = txn.open_table(PROFILES).map_err(db)?;
        let mut out = vec![root.id.clone()];
        let mut todo = root.merged_from.clone();
        while let Some(id) = todo.pop() {
            if out.contains(&id) {
                continue;
            }
            if let Some(p) = read_json::<Profile>(&profiles, &id, "profile")? {
                todo.extend(p.merged_from);
            }
            out.push(id);
        }
        Ok(out)
    }

    /// Profiles stored (live and merged away): for tests and `uniflow dev`'s summary.
    pub fn profile_count(&self) -> Result<u64, BackendError> {
        self.read(|txn| txn.open_table(PROFILES).map_err(db)?.len().map_err(db))
    }

    /// How many live profiles there are and how many events they count.
    pub fn totals(&self) -> Result<(u64, u64), BackendError> {
        self.read(|txn| {
            let profiles = txn.open_table(PROFILES).map_err(db)?;
            let (mut live, mut events) = (0, 0);
            for row in profiles.iter().map_err(db)? {
                let (_, v) = row.map_err(db)?;
                let p: Profile =
                    serde_json::from_str(v.value()).map_err(|e| corrupt("profile", e))?;
                if p.merged_into.is_none() {
                    live += 1;
                    events += p.counts.values().sum::<u64>();
                }
            }
            Ok((live, events))
        })
    }

    /// Every identifier and the live profile it belongs to (for the property tests).
    pub fn partition(&self) -> Result<Vec<(String, String)>, BackendError> {
        self.read(|txn| {
            let links = txn.open_table(LINKS).map_err(db)?;
            let mut out = Vec::new();
            for row in links.iter().map_err(db)? {
                let (k, v) = row.map_err(db)?;
                let link: Link = serde_json::from_str(v.value()).map_err(|e| corrupt("link", e))?;
                let live = self
                    .live(txn, &link.profile_id)?
                    .map_or(link.profile_id, |p| p.id);
                out.push((k.value().to_owned(), live));
            }
            Ok(out)
        })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BackendError> + Send + 'static,
) -> Result<T, BackendError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackendError(format!("profile store task: {e}")))?
}

impl ProfileStore for EmbeddedProfiles {
    async fn process(&self, events: Vec<Bytes>) -> Result<Report, BatchError> {
        let store = self.clone();
        let n = events.len();
        tokio::task::spawn_blocking(move || {
            let views: Vec<&[u8]> = events.iter().map(|b| b.as_ref()).collect();
            store.apply_batch(&views, None)
        })
        .await
        .unwrap_or_else(|e| {
            Err(BatchError {
                done: 0,
                report: Report::default(),
                error: BackendError(format!("profile store task: {e} ({n} events)")),
            })
        })
    }

    async fn profile(&self, id: &str) -> Result<Option<Profile>, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || store.read(|txn| store.live(txn, &id))).await
    }

    async fn lookup(&self, identifier: &str) -> Result<Option<Profile>, BackendError> {
        let (store, identifier) = (self.clone(), identifier.to_owned());
        blocking(move || {
            store.read(|txn| {
                let links = txn.open_table(LINKS).map_err(db)?;
                match read_json::<Link>(&links, &identifier, "link")? {
                    Some(link) => store.live(txn, &link.profile_id),
                    None => Ok(None),
                }
            })
        })
        .await
    }

    async fn identities(&self, id: &str) -> Result<Vec<Link>, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || {
            store.read(|txn| {
                let Some(root) = store.live(txn, &id)? else {
                    return Ok(Vec::new());
                };
                let by_profile = txn.open_table(BY_PROFILE).map_err(db)?;
                let links = txn.open_table(LINKS).map_err(db)?;
                let mut out = Vec::new();
                for pid in store.family(txn, &root)? {
                    for row in by_profile.range((pid.as_str(), "")..).map_err(db)? {
                        let (k, _) = row.map_err(db)?;
                        let (p, identifier) = k.value();
                        if p != pid {
                            break;
                        }
                        if let Some(link) = read_json::<Link>(&links, identifier, "link")? {
                            out.push(link);
                        }
                    }
                }
                out.sort_by(|a, b| a.identifier.cmp(&b.identifier));
                out.dedup_by(|a, b| a.identifier == b.identifier);
                Ok(out)
            })
        })
        .await
    }

    async fn events(
        &self,
        id: &str,
        before: Option<Cursor>,
        limit: usize,
    ) -> Result<EventPage, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || {
            store.read(|txn| {
                let Some(root) = store.live(txn, &id)? else {
                    return Ok(merge_pages(Vec::new(), limit));
                };
                let timeline = txn.open_table(TIMELINE).map_err(db)?;
                let mut entries = Vec::new();
                for pid in store.family(txn, &root)? {
                    let start = (pid.as_str(), i64::MIN, "");
                    let rows = match &before {
                        Some(c) => timeline
                            .range(start..(pid.as_str(), c.at_ms, c.message_id.as_str()))
                            .map_err(db)?,
                        None => timeline
                            .range(start..(pid.as_str(), i64::MAX, ""))
                            .map_err(db)?,
                    };
                    for row in rows.rev().take(limit.max(1) + 1) {
                        let (k, v) = row.map_err(db)?;
                        let (_, at_ms, message_id) = k.value();
                        let event = store.timeline_event(v.value())?;
                        entries.push(TimelineEntry {
                            at_ms,
                            message_id: message_id.to_owned(),
                            event,
                        });
                    }
                }
                Ok(merge_pages(entries, limit))
            })
        })
        .await
    }

    async fn history(&self, id: &str) -> Result<Vec<Decision>, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || {
            store.read(|txn| {
                let Some(root) = store.live(txn, &id)? else {
                    return Ok(Vec::new());
                };
                let decisions = txn.open_table(DECISIONS).map_err(db)?;
                let mut out = Vec::new();
                for pid in store.family(txn, &root)? {
                    let rows = decisions
                        .range((pid.as_str(), i64::MIN, "")..(pid.as_str(), i64::MAX, ""))
                        .map_err(db)?;
                    for row in rows {
                        let (_, v) = row.map_err(db)?;
                        out.push(
                            serde_json::from_str::<Decision>(v.value())
                                .map_err(|e| corrupt("decision", e))?,
                        );
                    }
                }
                out.sort_by(|a, b| (a.at_ms, &a.message_id).cmp(&(b.at_ms, &b.message_id)));
                Ok(out)
            })
        })
        .await
    }

    async fn delete(&self, id: &str, now_ms: i64) -> Result<Option<Deleted>, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || {
            let family = {
                let txn = store.db.begin_read().map_err(db)?;
                match store.live(&txn, &id)? {
                    Some(root) => store.family(&txn, &root)?,
                    None => return Ok(None),
                }
            };
            let txn = store.db.begin_write().map_err(db)?;
            let mut identifiers = Vec::new();
            {
                let mut t = Tables::open(&txn)?;
                for pid in &family {
                    let ids: Vec<String> = t
                        .by_profile
                        .range((pid.as_str(), "")..)
                        .map_err(db)?
                        .map_while(|r| {
                            r.ok().and_then(|(k, _)| {
                                let (p, i) = k.value();
                                (p == pid).then(|| i.to_owned())
                            })
                        })
                        .collect();
                    for identifier in ids {
                        t.by_profile
                            .remove((pid.as_str(), identifier.as_str()))
                            .map_err(db)?;
                        t.links.remove(identifier.as_str()).map_err(db)?;
                        t.suppressed
                            .insert(identifier.as_str(), now_ms)
                            .map_err(db)?;
                        identifiers.push(identifier);
                    }
                    t.timeline
                        .retain_in(
                            (pid.as_str(), i64::MIN, "")..(pid.as_str(), i64::MAX, ""),
                            |_, _| false,
                        )
                        .map_err(db)?;
                    t.decisions
                        .retain_in(
                            (pid.as_str(), i64::MIN, "")..(pid.as_str(), i64::MAX, ""),
                            |_, _| false,
                        )
                        .map_err(db)?;
                    t.profiles.remove(pid.as_str()).map_err(db)?;
                }
            }
            txn.commit().map_err(db)?;
            identifiers.sort();
            Ok(Some(Deleted {
                profiles: family,
                identifiers,
            }))
        })
        .await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>, BackendError> {
        let (store, id) = (self.clone(), id.to_owned());
        blocking(move || {
            store.read(|txn| {
                let accounts = txn.open_table(ACCOUNTS).map_err(db)?;
                read_json(&accounts, &id, "account")
            })
        })
        .await
    }
}
