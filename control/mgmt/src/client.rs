//! The client side of the management API, as `qsplice ctl` uses it.

use std::time::Duration;

use serde_json::Value;

/// A management API endpoint.
#[derive(Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
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
    /// `base` like `http://127.0.0.1:9180`.
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
        let r = self.agent.get(&url).call();
        self.finish(&url, r)
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
