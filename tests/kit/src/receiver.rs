//! A scripted webhook receiver on 127.0.0.1 that records every request.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http_body_util::BodyExt;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::serve::{self, Answering, Handler};

/// One answer the receiver gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `200 OK`, at once.
    pub fn ok() -> Reply {
        Reply::status(200)
    }

    /// `status`, at once, with an empty body.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// The same with a header added.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same with `body`.
    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    /// The same, answered after `delay` (to outlast a client's timeout).
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// One step of a [`Script`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Answer the next `times` requests with `reply`.
    Reply {
        /// The answer.
        reply: Reply,
        /// How many requests get it.
        times: usize,
    },
    /// Stop listening (connections are refused and open ones closed) for
    /// this long, from when the step is reached, then listen again on the
    /// same port.
    Down(Duration),
}

impl Step {
    /// [`Step::Reply`] `times` times.
    pub fn times(times: usize, reply: Reply) -> Step {
        Step::Reply { reply, times }
    }
}

/// What the receiver does: its steps in order, then one reply forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// Played first, in order.
    pub steps: Vec<Step>,
    /// The answer once the steps are played.
    pub then: Reply,
}

impl Script {
    /// `200 OK` to everything.
    pub fn ok() -> Script {
        Script::always(Reply::ok())
    }

    /// `reply` to everything.
    pub fn always(reply: Reply) -> Script {
        Script {
            steps: Vec::new(),
            then: reply,
        }
    }

    /// `steps`, then `then` forever.
    pub fn steps(steps: Vec<Step>, then: Reply) -> Script {
        Script { steps, then }
    }
}

/// A request the receiver got, with what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
    /// The status answered.
    pub status: u16,
    /// When the request arrived.
    pub at: SystemTime,
}

impl Recorded {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `messageId`s in the body: the body's own, or those of the
    /// elements of its `batch`.
    pub fn message_ids(&self) -> Vec<String> {
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&self.body) else {
            return Vec::new();
        };
        let id = |v: &serde_json::Value| v.get("messageId")?.as_str().map(str::to_owned);
        match body.get("batch").and_then(serde_json::Value::as_array) {
            Some(batch) => batch.iter().filter_map(id).collect(),
            None => id(&body).into_iter().collect(),
        }
    }

    /// The payloads in the body: the body itself, or its `batch`.
    pub fn payloads(&self) -> Vec<serde_json::Value> {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(mut o)) if o.contains_key("batch") => {
                match o.remove("batch") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => Vec::new(),
                }
            }
            Ok(v) => vec![v],
            Err(_) => Vec::new(),
        }
    }
}

struct State {
    steps: VecDeque<Step>,
    then: Reply,
    records: Vec<Recorded>,
}

struct Shared {
    state: Mutex<State>,
    /// Woken when the script reaches a [`Step::Down`].
    down: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reply to the next request, advancing the script.
    fn next_reply(&self) -> Reply {
        let mut state = self.lock();
        loop {
            match state.steps.front_mut() {
                Some(Step::Reply { times: 0, .. }) => {
                    state.steps.pop_front();
                }
                Some(Step::Reply { reply, times }) => {
                    *times -= 1;
                    let reply = reply.clone();
                    if *times == 0 {
                        state.steps.pop_front();
                        if matches!(state.steps.front(), Some(Step::Down(_))) {
                            self.down.notify_one();
                        }
                    }
                    return reply;
                }
                // A request on a connection opened just before going down.
                Some(Step::Down(_)) => return Reply::status(503).body("going down"),
                None => return state.then.clone(),
            }
        }
    }

    /// Takes the [`Step::Down`] at the front of the script, if that is what
    /// is there.
    fn take_down(&self) -> Option<Duration> {
        let mut state = self.lock();
        match state.steps.front() {
            Some(Step::Down(d)) => {
                let d = *d;
                state.steps.pop_front();
                Some(d)
            }
            _ => None,
        }
    }
}

/// A scripted webhook receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("requests", &self.lock().records.len())
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Starts a receiver playing `script` on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> io::Result<Receiver> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                steps: script.steps.into(),
                then: script.then,
                records: Vec::new(),
            }),
            down: Notify::new(),
        });
        // Starting down: refuse connections from the moment `start` returns.
        let listener = if matches!(shared.lock().steps.front(), Some(Step::Down(_))) {
            drop(listener);
            None
        } else {
            Some(listener)
        };
        let task = tokio::spawn(supervise(Arc::clone(&shared), addr, listener));
        Ok(Receiver { addr, shared, task })
    }

    /// The URL to POST to.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().records.clone()
    }

    /// Each message id answered with a 2xx, and how many times. A request
    /// the receiver answered after the sender gave up waiting still counts:
    /// the receiver did get it, which is why senders send idempotency keys.
    pub fn delivered(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.requests() {
            if (200..300).contains(&r.status) {
                for id in r.message_ids() {
                    *counts.entry(id).or_insert(0) += 1;
                }
            }
        }
        counts
    }

    /// The `Idempotency-Key`s each message id was sent with.
    pub fn idempotency_keys(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in self.requests() {
            let key = r.header("idempotency-key").unwrap_or_default().to_owned();
            for id in r.message_ids() {
                keys.entry(id).or_default().insert(key.clone());
            }
        }
        keys
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves until the script goes down, stays down, listens again.
async fn supervise(shared: Arc<Shared>, addr: SocketAddr, mut listener: Option<TcpListener>) {
    loop {
        if let Some(down) = shared.take_down() {
            drop(listener.take());
            tokio::time::sleep(down).await;
            continue;
        }
        let current = match listener.take() {
            Some(l) => l,
            None => match serve::bind(addr).await {
                Ok(l) => l,
                // The port was taken meanwhile: nothing more can be served.
                Err(_) => return,
            },
        };
        let handler: Handler = {
            let shared = Arc::clone(&shared);
            Arc::new(move |request| answer(Arc::clone(&shared), request))
        };
        let wait_down = async {
            loop {
                shared.down.notified().await;
                if matches!(shared.lock().steps.front(), Some(Step::Down(_))) {
                    return;
                }
            }
        };
        serve::serve(current, handler, wait_down).await;
    }
}

fn answer(shared: Arc<Shared>, request: http::Request<hyper::body::Incoming>) -> Answering {
    Box::pin(async move {
        let at = SystemTime::now();
        let (parts, incoming) = request.into_parts();
        let body = incoming
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let reply = shared.next_reply();
        shared.lock().records.push(Recorded {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
            headers: parts.headers,
            body,
            status: reply.status,
            at,
        });
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        serve::response(reply.status, &reply.headers, Bytes::from(reply.body))
    })
}

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE: Duration = Duration::from_secs(300);

/// Whether a request is signed with `secret` as the webhook README says:
/// `Uniflow-Signature: v1=<hex HMAC-SHA256(secret, "<Uniflow-Timestamp>.<body>")>`,
/// the timestamp within [`SIGNATURE_TOLERANCE`] of now. Written from the
/// README, not from the connector's code.
pub fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) = (text("uniflow-timestamp"), text("uniflow-signature"))
    else {
        return false;
    };
    let Ok(seconds) = timestamp.parse::<u64>() else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if now.abs_diff(seconds) > SIGNATURE_TOLERANCE.as_secs() {
        return false;
    }
    let Some(expected) = signature.strip_prefix("v1=").and_then(unhex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// Bytes from lowercase or uppercase hex.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
