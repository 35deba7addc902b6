//! What the integration tests that drive a real `uniflow dev` share:
//! starting it on a free port, its write keys, and posting to its tracking
//! API over a plain TCP connection.

#![allow(clippy::disallowed_methods, dead_code)] // drives real processes; not every test uses every helper

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running `uniflow dev`, killed when dropped.
pub struct Dev {
    /// The process.
    pub child: Child,
    /// The port of its tracking and management APIs.
    pub port: u16,
    /// The management API's token.
    pub token: String,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `uniflow dev examples/shop --port 0 --data DATA ARGS...` and
/// reads the port and token it prints.
pub fn start_dev(data: &Path, args: &[&str]) -> Dev {
    start_dev_in(Path::new("examples/shop"), data, args)
}

/// Starts `uniflow dev PROJECT --port 0 --data DATA ARGS...` (`PROJECT`
/// relative to the repository's root, or absolute) and reads the port and
/// token it prints.
pub fn start_dev_in(project: &Path, data: &Path, args: &[&str]) -> Dev {
    start_dev_env(project, data, args, &[])
}

/// [`start_dev_in`] with environment variables set.
pub fn start_dev_env(project: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Dev {
    let mut child = Command::new(env!("CARGO_BIN_EXE_uniflow"))
        .envs(env.iter().copied())
        .arg("dev")
        .arg(project)
        .args(["--port", "0"])
        .args(args)
        .arg("--data")
        .arg(data)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("uniflow dev starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut port = None;
    let token = loop {
        let line = lines
            .next()
            .expect("uniflow dev prints its URLs")
            .expect("stdout is UTF-8");
        if let Some(rest) = line.strip_prefix("tracking API  http://127.0.0.1:") {
            port = rest.split('/').next().and_then(|p| p.parse().ok());
        }
        if let Some(rest) = line.strip_prefix("management    http://127.0.0.1:") {
            let (_, token) = rest.split_once("token ").expect("the token is printed");
            break token.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Dev {
        child,
        port: port.expect("the tracking API's port is printed first"),
        token,
    }
}

/// The write key of `examples/shop`'s `order-backend` source.
pub fn write_key(data: &Path) -> String {
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("sources.json")).unwrap()).unwrap();
    doc["sources"]["order-backend"]["write_key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// POSTs a batch to the tracking API; the whole answer (status line,
/// headers, body), or `None` when the connection broke.
pub fn post_batch(port: u16, key: &str, body: &str) -> Option<String> {
    use base64::Engine as _;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let request = format!(
        "POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

/// The status code of an answer from [`post_batch`].
pub fn status(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

/// GETs `/api/v1{path}` of the management API; the status and the JSON.
pub fn api_get(dev: &Dev, path: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", dev.port)).expect("the API listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        dev.token
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = status(&response).expect("an HTTP answer");
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (
        code,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// What a finished `uniflow` run printed, and how it exited.
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// The `uniflow` binary, without colour, without a terminal on standard
/// input, and without the management API variables of the caller's
/// environment; add arguments, a directory and variables, then [`run`].
pub fn uniflow_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_uniflow"));
    command
        .env("NO_COLOR", "1")
        .env_remove("UNIFLOW_API_URL")
        .env_remove("UNIFLOW_API_TOKEN")
        .stdin(Stdio::null());
    command
}

/// Runs `command` to the end.
pub fn run(command: &mut Command) -> Run {
    let out = command.output().expect("run uniflow");
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Points `command` at the AWS emulator at `endpoint`: test credentials,
/// no region (the project's is used), none of the caller's AWS settings.
pub fn with_aws<'a>(command: &'a mut Command, endpoint: &str) -> &'a mut Command {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
}
