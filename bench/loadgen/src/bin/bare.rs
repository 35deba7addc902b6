//! `bare`: the benchmark's anchor, an axum server that does nothing but
//! read each request body and answer `200 {"success":true}`. It is set up
//! like `uniflow dev` (tokio multi-thread runtime, a tokio `TcpListener`,
//! `axum::serve` with connect info, graceful shutdown on SIGTERM or
//! Ctrl-C), so the gap between the two is what ingest itself costs.
//!
//!   bare --port 0    # prints `bare: listening on http://127.0.0.1:PORT/`

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use clap::Parser;
use http::{HeaderValue, StatusCode, header};

/// The same read limit as `uniflow dev`.
const READ_LIMIT: usize = 4 * 1024 * 1024;

/// A bare axum server: reads each body, answers {"success":true}.
#[derive(Debug, Parser)]
#[command(name = "bare", version)]
struct Args {
    /// Port to listen on (127.0.0.1). 0 picks a free port.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .and_then(|runtime| runtime.block_on(serve(args.port)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr().lock(), "bare: {e}");
            ExitCode::from(2)
        }
    }
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bare: listening on http://{addr}/")?;
        out.flush()?;
    }
    let app = Router::new().fallback(handle);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
}

async fn handle(
    ConnectInfo(_peer): ConnectInfo<SocketAddr>,
    request: http::Request<Body>,
) -> Response {
    let body = request.into_body();
    match axum::body::to_bytes(body, READ_LIMIT).await {
        Ok(bytes) => {
            std::hint::black_box(bytes);
            let mut response = (StatusCode::OK, b"{\"success\":true}".to_vec()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
