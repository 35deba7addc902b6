//! A fake of the AWS Lambda `Invoke` API running a Rust closure as the
//! function.
//!
//! moto (the usual AWS fake) stores Lambda functions but runs them only in
//! Docker, which CI machines and `cargo test` cannot count on. This fake
//! speaks the one call the lambda connector makes,
//! `POST /2015-03-31/functions/{FunctionName}/invocations`
//! (`RequestResponse`), the way Lambda answers it:
//!
//! - the function returned: `200` with its JSON;
//! - the function threw: `200`, `X-Amz-Function-Error: Unhandled` and
//!   `{"errorMessage","errorType"}`;
//! - the service refused (throttled, not found, bad request): its status,
//!   `X-Amzn-ErrorType` and `{"message"}`.
//!
//! An AWS SDK Lambda client pointed at [`FakeLambda::endpoint`] (with any
//! credentials) talks to it; tests of an `Invoke` implementation can also
//! call [`FakeLambda::invoke`] directly.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::serve::{self, Answering, Handler};

/// What the fake function does with one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The function returns this JSON.
    Return(Value),
    /// The function throws.
    Throw {
        /// Its error type (`Error`, `TypeError`).
        error_type: String,
        /// Its message.
        message: String,
    },
    /// The Lambda service refuses the call (the function does not run).
    Service {
        /// The HTTP status (429 throttled, 404 not found, 500 service).
        status: u16,
        /// The AWS error code (`TooManyRequestsException`).
        error_type: String,
        /// Its message.
        message: String,
    },
}

/// The function: its name (as in the URL, decoded) and its event.
pub type Function = dyn Fn(&str, Value) -> Answer + Send + Sync;

/// One call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The function name from the URL, decoded.
    pub function: String,
    /// The event (JSON).
    pub payload: Value,
    /// When it arrived.
    pub at: SystemTime,
}

/// What an `Invoke` call answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoked {
    /// The HTTP status.
    pub status: u16,
    /// `X-Amz-Function-Error`, when the function threw.
    pub function_error: Option<String>,
    /// `X-Amzn-ErrorType`, when the service refused.
    pub error_type: Option<String>,
    /// The body: the function's answer, or the error.
    pub body: Bytes,
}

/// A fake Lambda service on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct FakeLambda {
    addr: SocketAddr,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    client: Client<HttpConnector, Full<Bytes>>,
}

const PREFIX: &str = "/2015-03-31/functions/";
const SUFFIX: &str = "/invocations";

impl FakeLambda {
    /// Starts the fake, running `function` for every invocation.
    pub async fn start(
        function: impl Fn(&str, Value) -> Answer + Send + Sync + 'static,
    ) -> io::Result<FakeLambda> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let invocations = Arc::new(Mutex::new(Vec::new()));
        let function: Arc<Function> = Arc::new(function);
        let handler: Handler = {
            let invocations = Arc::clone(&invocations);
            Arc::new(move |request| {
                answer(Arc::clone(&function), Arc::clone(&invocations), request)
            })
        };
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve::serve(listener, handler, async {
            let _ = stopped.await;
        }));
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(FakeLambda {
            addr,
            invocations,
            stop: Some(stop),
            task,
            client,
        })
    }

    /// The endpoint URL to give an AWS SDK client (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every invocation so far, in order.
    pub fn invocations(&self) -> Vec<Invocation> {
        self.invocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Calls `Invoke` on the fake over HTTP, as an SDK would.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Invoked, String> {
        let uri = format!("{}{PREFIX}{}{SUFFIX}", self.endpoint(), encode(function));
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header("x-amz-invocation-type", "RequestResponse")
            .body(Full::new(payload))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach the fake Lambda: {e}"))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = response.status().as_u16();
        let function_error = header("x-amz-function-error");
        let error_type = header("x-amzn-errortype");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("the fake Lambda's answer was cut: {e}"))?
            .to_bytes();
        Ok(Invoked {
            status,
            function_error,
            error_type,
            body,
        })
    }
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
    }
}

fn answer(
    function: Arc<Function>,
    invocations: Arc<Mutex<Vec<Invocation>>>,
    request: Request<hyper::body::Incoming>,
) -> Answering {
    Box::pin(async move {
        let at = SystemTime::now();
        let refuse = |status: u16, error_type: &str, message: String| {
            serve::response(
                status,
                &[("x-amzn-errortype".to_owned(), error_type.to_owned())],
                Bytes::from(json!({ "Type": "User", "message": message }).to_string()),
            )
        };
        let path = request.uri().path().to_owned();
        let name = path
            .strip_prefix(PREFIX)
            .and_then(|p| p.strip_suffix(SUFFIX))
            .filter(|n| !n.is_empty() && !n.contains('/'));
        let (Some(name), true) = (name, request.method() == Method::POST) else {
            return refuse(
                404,
                "UnknownOperationException",
                format!("no operation {} {path}", request.method()),
            );
        };
        let name = decode(name);
        let body = match request.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return refuse(400, "InvalidRequestContentException", e.to_string()),
        };
        let payload: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return refuse(
                    400,
                    "InvalidRequestContentException",
                    format!("Could not parse request body into json: {e}"),
                );
            }
        };
        invocations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Invocation {
                function: name.clone(),
                payload: payload.clone(),
                at,
            });
        let version = ("x-amz-executed-version".to_owned(), "$LATEST".to_owned());
        match function(&name, payload) {
            Answer::Return(value) => {
                serve::response(200, &[version], Bytes::from(value.to_string()))
            }
            Answer::Throw {
                error_type,
                message,
            } => serve::response(
                200,
                &[
                    version,
                    ("x-amz-function-error".to_owned(), "Unhandled".to_owned()),
                ],
                Bytes::from(
                    json!({ "errorType": error_type, "errorMessage": message, "trace": [] })
                        .to_string(),
                ),
            ),
            Answer::Service {
                status,
                error_type,
                message,
            } => refuse(status, &error_type, message),
        }
    })
}

/// Percent-encodes a function name for the URL path (ARNs have `:`).
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; anything malformed stays as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_round_trip_through_the_path() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:crm-sync";
        assert_eq!(decode(&encode(arn)), arn);
        assert_eq!(decode("a%2"), "a%2");
    }

    #[tokio::test]
    async fn returns_throws_and_refusals_look_like_lambda() {
        let fake = FakeLambda::start(|name, event| match name {
            "echo" => Answer::Return(event),
            "throws" => Answer::Throw {
                error_type: "TypeError".to_owned(),
                message: "x is undefined".to_owned(),
            },
            _ => Answer::Service {
                status: 429,
                error_type: "TooManyRequestsException".to_owned(),
                message: "Rate exceeded".to_owned(),
            },
        })
        .await
        .unwrap();
        let echoed = fake
            .invoke("echo", Bytes::from_static(b"{\"a\":1}"))
            .await
            .unwrap();
        assert_eq!((echoed.status, &echoed.body[..]), (200, &b"{\"a\":1}"[..]));
        assert_eq!(echoed.function_error, None);
        let thrown = fake
            .invoke("throws", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(thrown.status, 200);
        assert_eq!(thrown.function_error.as_deref(), Some("Unhandled"));
        let refused = fake
            .invoke("busy", Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(refused.status, 429);
        assert_eq!(
            refused.error_type.as_deref(),
            Some("TooManyRequestsException")
        );
        let bad = fake.invoke("echo", Bytes::from_static(b"{")).await.unwrap();
        assert_eq!(bad.status, 400);
        let names: Vec<String> = fake.invocations().into_iter().map(|i| i.function).collect();
        assert_eq!(names, ["echo", "throws", "busy"]);
    }
}
