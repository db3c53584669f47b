use std::fmt;
use std::path::{Path, PathBuf};

/// A config problem: which key, which value, why, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `ports[0].addresses[1]` (empty for file-level errors).
    pub key: String,
    /// The offending value as written (or as understood).
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
}

impl ConfigError {
    pub(crate) fn new(
        key: impl Into<String>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        ConfigError {
            key: key.into(),
            value: value.to_string(),
            reason: reason.into(),
            file: None,
            line: None,
        }
    }

    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        self.file = Some(path.to_path_buf());
        self
    }

    pub(crate) fn syntax(text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let value = line
            .and_then(|l| text.lines().nth(l - 1))
            .unwrap_or("")
            .trim()
            .to_string();
        ConfigError {
            key: String::new(),
            value,
            reason: format!("TOML syntax error: {}", e.message()),
            file: None,
            line,
        }
    }

    pub(crate) fn schema(text: &str, e: &serde_path_to_error::Error<toml::de::Error>) -> Self {
        let key = e.path().to_string();
        let msg = e.inner().message().to_string();
        // serde's messages carry the value ("invalid type: string \"a\"") or
        // the unknown field's name; pull the value out where we can.
        let value = if let Some(rest) = msg.strip_prefix("unknown field `") {
            rest.split('`').next().unwrap_or("").to_string()
        } else {
            extract_value(text, &key).unwrap_or_default()
        };
        let reason = if msg.starts_with("unknown field") {
            format!("unknown key: {msg}")
        } else {
            msg
        };
        let mut err = ConfigError {
            key,
            value,
            reason,
            file: None,
            line: None,
        };
        err.line = find_key_line(text, &err.key);
        err
    }

    /// Best-effort line lookup for validation errors.
    pub(crate) fn locate(mut self, text: &str) -> Self {
        if self.line.is_none() {
            self.line = find_key_line(text, &self.key);
        }
        self
    }
}

fn line_of_offset(text: &str, off: usize) -> usize {
    text[..off.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// The last plain name of a key path: `ports[0].addresses[1]` → `addresses`.
fn leaf(key: &str) -> &str {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.split('[').next().unwrap_or(last)
}

/// The line of `leaf = ...` inside the right table. For `a[i].b` keys the
/// i-th `[[a]]` header is found first.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    let name = leaf(key);
    if name.is_empty() || name == "?" {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    // Start of the table section the key lives in.
    let mut start = 0;
    let head = key.split('.').next().unwrap_or("");
    if head != key {
        if let Some((arr, idx)) = head.split_once('[') {
            let idx: usize = idx.trim_end_matches(']').parse().ok()?;
            let hdr = format!("[[{arr}]]");
            start = lines
                .iter()
                .enumerate()
                .filter(|(_, l)| l.trim() == hdr)
                .nth(idx)
                .map(|(i, _)| i)?;
        } else {
            let hdr = format!("[{head}]");
            start = lines.iter().position(|l| l.trim() == hdr).unwrap_or(0);
        }
    }
    lines
        .iter()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_start();
            t.strip_prefix(name)
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

fn extract_value(text: &str, key: &str) -> Option<String> {
    let line = find_key_line(text, key)?;
    let l = text.lines().nth(line - 1)?;
    Some(l.split_once('=')?.1.trim().to_string())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(l) = self.line {
                write!(f, ":{l}")?;
            }
            write!(f, ": ")?;
        } else if let Some(l) = self.line {
            write!(f, "line {l}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "key `{}` = `{}`: ", self.key, self.value)?;
        } else if !self.value.is_empty() {
            write!(f, "`{}`: ", self.value)?;
        }
        write!(f, "{}", self.reason)
    }
}

impl std::error::Error for ConfigError {}
