//! A stand-in for the Lambda Runtime API, so a test runs a function's real binary the way Lambda
//! does. [`RuntimeApi::start`] listens on a local port and hands out the given events, one per
//! `GET …/runtime/invocation/next`, each under its own request id; what the function posts back
//! (an answer, an invocation error, an init error) arrives through [`RuntimeApi::outcome`]. When
//! the events run out, `next` is left waiting, as on Lambda between invocations. It speaks as
//! much HTTP/1.1 as the runtime client uses: keep-alive connections, `Content-Length` or chunked
//! bodies.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// What a function posted back to the Runtime API.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The answer to the invocation `request_id`.
    Response { request_id: String, body: Value },
    /// The invocation failed; `body` is `{"errorType", "errorMessage"}`.
    Error { request_id: String, body: Value },
    /// The function could not start.
    InitError { body: Value },
}

/// The stand-in, serving until dropped.
pub struct RuntimeApi {
    url: String,
    outcomes: Receiver<Outcome>,
    stopped: Arc<AtomicBool>,
}

type Events = Arc<Mutex<VecDeque<(String, Value)>>>;

impl RuntimeApi {
    /// Starts serving `events`, `(request id, payload)`, in order.
    pub fn start(events: Vec<(String, Value)>) -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("the Runtime API stand-in cannot listen: {e}"));
        let url = match listener.local_addr() {
            Ok(address) => format!("http://{address}"),
            Err(e) => panic!("the Runtime API stand-in has no address: {e}"),
        };
        let events: Events = Arc::new(Mutex::new(events.into()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (sender, outcomes) = channel();
        let stop = stopped.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (events, sender, stop) = (events.clone(), sender.clone(), stop.clone());
                std::thread::spawn(move || serve(stream, &events, &sender, &stop));
            }
        });
        RuntimeApi {
            url,
            outcomes,
            stopped,
        }
    }

    /// The value for the function's `AWS_LAMBDA_RUNTIME_API`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next thing the function posted, waiting at most `timeout`.
    pub fn outcome(&self, timeout: Duration) -> Option<Outcome> {
        self.outcomes.recv_timeout(timeout).ok()
    }

    /// Runs `function` (a command naming a function binary, with its own environment) as Lambda
    /// would against this stand-in until it posts its first outcome or a minute passes, then
    /// stops it: that outcome and what the function wrote on stdout (its log lines).
    pub fn run_once(&self, mut function: Command, memory_mb: u32) -> (Option<Outcome>, String) {
        let log = tempfile::NamedTempFile::new()
            .unwrap_or_else(|e| panic!("no temporary file for the function's log: {e}"));
        let stdout = log
            .reopen()
            .unwrap_or_else(|e| panic!("cannot reopen the function's log: {e}"));
        // The log level is the test's to set, never inherited from the shell running the tests.
        for level in ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"] {
            if !function.get_envs().any(|(name, _)| name == level) {
                function.env_remove(level);
            }
        }
        let mut child = function
            .env("AWS_LAMBDA_RUNTIME_API", self.url())
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the function: {e}"));
        let outcome = self.outcome(Duration::from_secs(60));
        let _ = child.kill();
        let _ = child.wait();
        let logged = std::fs::read_to_string(log.path()).unwrap_or_default();
        (outcome, logged)
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Answers the requests of one connection until the function closes it.
fn serve(stream: TcpStream, events: &Events, outcomes: &Sender<Outcome>, stopped: &AtomicBool) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Some((method, path, body)) = read_request(&mut reader) {
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let segments: Vec<&str> = path.split('/').collect();
        let answer = match (method.as_str(), segments.as_slice()) {
            ("GET", [.., "runtime", "invocation", "next"]) => {
                let next = events.lock().ok().and_then(|mut events| events.pop_front());
                let Some((request_id, event)) = next else {
                    // Nothing more to hand out: keep the function waiting until the test ends.
                    while !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    return;
                };
                next_event(&request_id, &event)
            }
            ("POST", [.., "runtime", "invocation", request_id, kind]) => {
                let request_id = request_id.to_string();
                let _ = outcomes.send(match *kind {
                    "response" => Outcome::Response { request_id, body },
                    _ => Outcome::Error { request_id, body },
                });
                http_response("202 Accepted", &[], br#"{"status":"OK"}"#)
            }
            ("POST", [.., "runtime", "init", "error"]) => {
                let _ = outcomes.send(Outcome::InitError { body });
                http_response("202 Accepted", &[], br#"{"status":"OK"}"#)
            }
            _ => http_response("404 Not Found", &[], b"{}"),
        };
        if writer.write_all(&answer).is_err() {
            return;
        }
    }
}

/// The answer to `next`: the event, with the headers the runtime client requires.
fn next_event(request_id: &str, event: &Value) -> Vec<u8> {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(300);
    http_response(
        "200 OK",
        &[
            ("lambda-runtime-aws-request-id", request_id.to_string()),
            (
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:test".to_string(),
            ),
        ],
        event.to_string().as_bytes(),
    )
}

fn http_response(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut answer = head.into_bytes();
    answer.extend_from_slice(body);
    answer
}

/// One request: method, path and body; `None` when the connection ends or is not HTTP/1.1.
fn read_request(reader: &mut impl BufRead) -> Option<(String, String, Vec<u8>)> {
    let line = read_line(reader)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut chunked) = (0, false);
    loop {
        let header = read_line(reader)?;
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size =
                usize::from_str_radix(read_line(reader)?.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..]).ok()?;
            read_line(reader)?;
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).ok()?;
    }
    Some((method, path, body))
}

/// A line without its `\r\n`; `None` at the end of the connection.
fn read_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_with_either_kind_of_body_and_one_after_another() {
        let wire = b"POST /2018-06-01/runtime/invocation/a/response HTTP/1.1\r\n\
            Content-Length: 4\r\n\r\n{\"x\"\
            POST /2018-06-01/runtime/invocation/b/error HTTP/1.1\r\n\
            transfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n5;ext=1\r\n\":1}\n\r\n0\r\n\r\n";
        let mut reader = BufReader::new(&wire[..]);
        let (method, path, body) = read_request(&mut reader).unwrap();
        assert_eq!(method, "POST");
        assert_eq!(path, "/2018-06-01/runtime/invocation/a/response");
        assert_eq!(body, b"{\"x\"");
        let (_, path, body) = read_request(&mut reader).unwrap();
        assert!(path.ends_with("/b/error"));
        assert_eq!(body, b"{\"a\":1}\n");
        assert_eq!(read_request(&mut reader), None);
    }
}
