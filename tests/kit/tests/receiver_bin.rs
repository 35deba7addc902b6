//! The `uniflow-receiver` binary counts events from single and batch
//! bodies and reports them at `GET /count`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

/// The running binary, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status line and body.
fn exchange(addr: &str, method: &str, path: &str, body: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn counts_single_and_batched_events() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_uniflow-receiver"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();

    let (status, _) = exchange(&addr, "POST", "/", r#"{"messageId":"m1"}"#);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let batch = r#"{"batch":[{"messageId":"a"},{"messageId":"b"},{"x":[1,2]}],"sentAt":"2026-01-01T00:00:00.000Z"}"#;
    let (status, _) = exchange(&addr, "POST", "/hook", batch);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, count) = exchange(&addr, "GET", "/count", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let count: serde_json::Value = serde_json::from_str(&count).unwrap();
    assert_eq!(count, serde_json::json!({"events": 4, "requests": 2}));
    drop(running);
}
