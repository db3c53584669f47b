//! The client side of the management API, as `qsplice ctl` uses it.

use std::time::Duration;

use serde_json::Value;

/// A management API endpoint.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
    timeout: Duration,
}

/// A failed call: no answer, or the server's error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The listener could not be reached or the answer was not readable.
    #[error("{url}: {why}")]
    Transport {
        /// What was called.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's `error` message (or its body).
        message: String,
    },
}

impl Client {
    /// `base` like `http://127.0.0.1:9180`, or `unix:/path` for a listener
    /// on a Unix socket.
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent,
            timeout,
        }
    }

    fn finish(
        &self,
        url: &str,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, CallError> {
        let transport = |why: String| CallError::Transport {
            url: url.to_string(),
            why,
        };
        let mut resp = r.map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| transport(e.to_string()))?;
        if status >= 400 {
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(body);
            return Err(CallError::Server { status, message });
        }
        Ok(body)
    }

    /// GET `path`, the body as text.
    pub fn get_text(&self, path: &str) -> Result<String, CallError> {
        let url = format!("{}{path}", self.base);
        if let Some(sock) = self.unix() {
            return self.unix_call(sock, "GET", path, None);
        }
        let r = self.agent.get(&url).call();
        self.finish(&url, r)
    }

    /// The socket of a `unix:/path` listener.
    fn unix(&self) -> Option<&str> {
        self.base.strip_prefix("unix:")
    }

    /// One HTTP/1.1 exchange over the listener's Unix socket (`[management]
    /// listen = "unix:/path"`), `Connection: close`: the status, and the
    /// body (length-delimited, chunked or to the end).
    fn unix_call(
        &self,
        sock: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String, CallError> {
        use std::io::{Read, Write};
        let url = format!("{}{path}", self.base);
        let transport = |why: String| CallError::Transport {
            url: url.clone(),
            why,
        };
        let mut s = std::os::unix::net::UnixStream::connect(sock)
            .map_err(|e| transport(format!("{sock}: {e}")))?;
        let io = |e: std::io::Error| transport(e.to_string());
        s.set_read_timeout(Some(self.timeout)).map_err(io)?;
        s.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: qsplice\r\nConnection: close\r\n");
        if let Some(t) = &self.token {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        let b = body.unwrap_or("");
        if body.is_some() {
            req.push_str("Content-Type: application/json\r\n");
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        s.write_all(req.as_bytes()).map_err(io)?;
        let mut raw = Vec::new();
        s.take(64 << 20).read_to_end(&mut raw).map_err(io)?;
        let (status, text) = parse_response(&raw).map_err(transport)?;
        if status >= 400 {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or(text);
            return Err(CallError::Server { status, message });
        }
        Ok(text)
    }

    /// GET `path` as JSON.
    pub fn get(&self, path: &str) -> Result<Value, CallError> {
        let body = self.get_text(path)?;
        serde_json::from_str(&body).map_err(|e| CallError::Transport {
            url: format!("{}{path}", self.base),
            why: format!("not JSON: {e}"),
        })
    }

    /// POST `body` (JSON) to `path`.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        if let Some(sock) = self.unix() {
            let text = self.unix_call(sock, "POST", path, Some(&body.to_string()))?;
            return serde_json::from_str(&text).map_err(|e| CallError::Transport {
                url,
                why: format!("not JSON: {e}"),
            });
        }
        let mut req = self.agent.post(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let r = req.send_json(body);
        let text = self.finish(&url, r)?;
        serde_json::from_str(&text).map_err(|e| CallError::Transport {
            url,
            why: format!("not JSON: {e}"),
        })
    }
}

impl Client {
    /// DELETE `path`.
    pub fn delete(&self, path: &str) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        if let Some(sock) = self.unix() {
            let text = self.unix_call(sock, "DELETE", path, None)?;
            return serde_json::from_str(&text).map_err(|e| CallError::Transport {
                url,
                why: format!("not JSON: {e}"),
            });
        }
        let mut req = self.agent.delete(&url);
        if let Some(t) = &self.token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let r = req.call();
        let text = self.finish(&url, r)?;
        serde_json::from_str(&text).map_err(|e| CallError::Transport {
            url,
            why: format!("not JSON: {e}"),
        })
    }
}

/// An HTTP/1.1 response read to the end: the status and the body (by
/// `Content-Length`, chunked, or everything after the headers).
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete HTTP header in the answer")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "header is not text")?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or("no HTTP status line")?;
    let (mut len, mut chunked) = (None, false);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                len = v.parse::<usize>().ok();
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let nl = rest[at..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("chunked body cut short")?;
            let size = std::str::from_utf8(&rest[at..at + nl])
                .ok()
                .and_then(|x| {
                    usize::from_str_radix(x.split(';').next().unwrap_or("").trim(), 16).ok()
                })
                .ok_or("bad chunk size")?;
            at += nl + 2;
            if size == 0 {
                break;
            }
            let chunk = rest.get(at..at + size).ok_or("chunk cut short")?;
            out.extend_from_slice(chunk);
            at += size + 2;
        }
        out
    } else {
        match len {
            Some(n) => rest
                .get(..n)
                .ok_or("body shorter than Content-Length")?
                .to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A path segment with `:`, `/`, `%`, spaces and the like escaped.
pub fn escape(seg: &str) -> String {
    let mut s = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod unix_tests {
    use super::*;

    #[test]
    fn responses_parse_by_length_chunked_and_to_the_end() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloextra";
        assert_eq!(parse_response(r).unwrap(), (200, "hello".into()));
        let r = b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (409, "abcde".into()));
        let r = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert_eq!(parse_response(r).unwrap(), (200, "all of it".into()));
        for bad in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ] {
            assert!(parse_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_unix_socket_listener_is_called_like_a_tcp_one() {
        let path = std::env::temp_dir().join(format!("qsplice-ctl-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = tiny_http::Server::http_unix(&path).unwrap();
        let t = std::thread::spawn(move || {
            for _ in 0..3 {
                let mut rq = server.recv().unwrap();
                let mut body = String::new();
                let _ = rq.as_reader().read_to_string(&mut body);
                let auth = rq
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.to_string())
                    .unwrap_or_default();
                let (code, text) = match (rq.method().as_str(), rq.url()) {
                    ("GET", "/api/v1/status") => (200, r#"{"uptime_s": 1.5}"#.to_string()),
                    ("POST", "/api/v1/shutdown") => {
                        (200, format!(r#"{{"got": {body}, "auth": "{auth}"}}"#))
                    }
                    _ => (404, r#"{"error": "no such route"}"#.to_string()),
                };
                // A reader of unknown length: tiny_http sends it chunked.
                let resp = tiny_http::Response::new(
                    tiny_http::StatusCode(code),
                    vec![],
                    std::io::Cursor::new(text.into_bytes()),
                    None,
                    None,
                );
                let _ = rq.respond(resp);
            }
        });
        let c = Client::new(
            &format!("unix:{}", path.display()),
            Some("tok".into()),
            Duration::from_secs(5),
        );
        assert_eq!(c.get("/api/v1/status").unwrap()["uptime_s"], 1.5);
        let v = c
            .post("/api/v1/shutdown", &serde_json::json!({"x": 1}))
            .unwrap();
        assert_eq!(v["got"]["x"], 1);
        assert_eq!(v["auth"], "Bearer tok");
        match c.get("/nope") {
            Err(CallError::Server {
                status: 404,
                message,
            }) => assert_eq!(message, "no such route"),
            r => panic!("{r:?}"),
        }
        t.join().unwrap();
        let _ = std::fs::remove_file(&path);
        let gone = Client::new(
            &format!("unix:{}", path.display()),
            None,
            Duration::from_secs(1),
        );
        assert!(matches!(gone.get("/x"), Err(CallError::Transport { .. })));
    }
}
