//! `uniflow-receiver [PORT] [HOST]`: a webhook receiver for throughput
//! benchmarks. It answers every POST with 200 at once and counts events
//! (one per body, or the length of a `{"batch":[...]}` body);
//! `GET /count` answers `{"events":N,"requests":M}`. Port 0 (the default)
//! picks a free port; the address is printed on the first line of stdout.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::net::TcpListener;

#[derive(Debug, Default)]
struct Counts {
    events: AtomicU64,
    requests: AtomicU64,
}

/// Only the length of `batch` is read; everything else is skipped.
#[derive(Deserialize)]
struct Body {
    batch: Option<Vec<IgnoredAny>>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = match args.next() {
        None => 0,
        Some(p) => p.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{p}` is not a port; usage: uniflow-receiver [PORT] [HOST]"),
            )
        })?,
    };
    let host = args.next().unwrap_or_else(|| "127.0.0.1".to_owned());
    let addr: SocketAddr = format!("{host}:{port}").parse().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("`{host}` is not an IP address"),
        )
    })?;
    let listener = TcpListener::bind(addr).await?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on {}", listener.local_addr()?)?;
    stdout.flush()?;
    let counts = Arc::new(Counts::default());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&counts), request));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    counts: Arc<Counts>,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, std::convert::Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/count" {
        let body = format!(
            "{{\"events\":{},\"requests\":{}}}",
            counts.events.load(Ordering::Relaxed),
            counts.requests.load(Ordering::Relaxed)
        );
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let events = match serde_json::from_slice::<Body>(&body) {
        Ok(Body { batch: Some(items) }) => items.len() as u64,
        _ => 1,
    };
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts.events.fetch_add(events, Ordering::Relaxed);
    Ok(http::Response::new(Full::new(Bytes::new())))
}
