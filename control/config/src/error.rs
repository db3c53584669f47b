//! [`ConfigError`] and how each kind of failure is located in the text.
//!
//! Syntax errors carry toml's span. Schema errors (unknown key, wrong type,
//! bad address) carry serde's path (via `serde_path_to_error`) and toml's
//! span. Validation errors carry a key path only; it is looked up in the
//! spanned document (`toml::de::DeTable`) to find the line and nothing is
//! guessed from the text.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// A config problem: which key, which value, why, and where.
///
/// Displays as `conf/x.toml:12: key `ports[0].addresses[1]` = `10.0.0.300/24`: invalid IPv4 address …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path, e.g. `eal.worker_lcores[1]` or `ports[0].addresses[1]`
    /// (empty when no key applies, e.g. an unreadable file).
    pub key: String,
    /// The offending value: a string's contents, otherwise the TOML text as
    /// written (for an unknown key, the value given to it).
    pub value: String,
    /// Why it is rejected.
    pub reason: String,
    /// The file, when loaded from one.
    pub file: Option<PathBuf>,
    /// 1-based line, when it could be located.
    pub line: Option<usize>,
}

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Split `ports[0].addresses[1]` into segments.
fn split_key(key: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(r) = rest.strip_prefix('[') {
                let Some((n, tail)) = r.split_once(']') else {
                    break;
                };
                match n.parse() {
                    Ok(n) => out.push(Seg::Index(n)),
                    Err(_) => return out,
                }
                rest = tail;
            }
        } else if !rest.is_empty() {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

/// Render segments back to `a.b[1].c`.
fn join_key(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// What a key path points at in the spanned document.
struct Found<'d, 'i> {
    value: &'d Spanned<DeValue<'i>>,
    /// The span of the key itself when the path ends in a table key.
    key_span: Option<Range<usize>>,
}

fn lookup<'d, 'i>(root: &'d Spanned<DeTable<'i>>, segs: &[Seg]) -> Option<Found<'d, 'i>> {
    let mut table: Option<&DeTable<'i>> = Some(root.get_ref());
    let mut array: Option<&[Spanned<DeValue<'i>>]> = None;
    let mut found: Option<Found<'d, 'i>> = None;
    for seg in segs {
        let (value, key_span) = match seg {
            Seg::Key(k) => {
                let (ks, v) = table?.iter().find(|(ks, _)| ks.get_ref().as_ref() == k)?;
                (v, Some(ks.span()))
            }
            Seg::Index(i) => (array?.get(*i)?, None),
        };
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
        found = Some(Found { value, key_span });
    }
    found
}

/// 1-based line of a byte offset.
fn line_of_offset(text: &str, off: usize) -> usize {
    let off = off.min(text.len());
    text.as_bytes()[..off]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A value as the operator wrote it, kept to one short line.
fn render_value(text: &str, v: &Spanned<DeValue<'_>>) -> String {
    match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Table(_) => "{…}".to_string(),
        _ => {
            let raw = text.get(v.span()).unwrap_or("").trim();
            let first = raw.lines().next().unwrap_or("");
            if first.len() < raw.len() || first.chars().count() > 60 {
                let short: String = first.chars().take(60).collect();
                format!("{short}…")
            } else {
                raw.to_string()
            }
        }
    }
}

/// Best-effort key of a syntax error: `table.key` from the line, if the
/// line reads `key = …`, under the nearest `[table]` / `[[array]]` header.
fn key_on_line(text: &str, line: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let Some(l) = lines.get(line.saturating_sub(1)) else {
        return String::new();
    };
    let Some((k, _)) = l.split_once('=') else {
        return String::new();
    };
    let k = k.trim();
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return String::new();
    }
    let mut prefix = String::new();
    for (i, h) in lines.iter().enumerate().take(line - 1).rev() {
        let h = h.trim();
        if let Some(arr) = h.strip_prefix("[[").and_then(|r| r.strip_suffix("]]")) {
            let arr = arr.trim();
            let idx = lines[..i]
                .iter()
                .filter(|x| {
                    x.trim()
                        .strip_prefix("[[")
                        .and_then(|r| r.strip_suffix("]]"))
                        .is_some_and(|a| a.trim() == arr)
                })
                .count();
            prefix = format!("{arr}[{idx}].");
            break;
        }
        if let Some(t) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            prefix = format!("{}.", t.trim());
            break;
        }
    }
    format!("{prefix}{k}")
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

    /// The document is not valid TOML.
    pub(crate) fn syntax(text: &str, e: &toml::de::Error) -> Self {
        let line = e.span().map(|s| line_of_offset(text, s.start));
        let (key, value) = match line {
            Some(l) => {
                let src = text.lines().nth(l - 1).unwrap_or("").trim();
                let key = key_on_line(text, l);
                let value = if key.is_empty() {
                    src.to_string()
                } else {
                    src.split_once('=')
                        .map_or("", |(_, v)| v)
                        .trim()
                        .to_string()
                };
                (key, value)
            }
            None => (String::new(), String::new()),
        };
        ConfigError {
            key,
            value,
            reason: format!("TOML syntax error: {}", e.message().trim()),
            file: None,
            line,
        }
    }

    /// Valid TOML that does not fit the schema: unknown key, wrong type,
    /// malformed address or enum value.
    pub(crate) fn schema(
        text: &str,
        doc: &Spanned<DeTable<'_>>,
        e: &serde_path_to_error::Error<toml::de::Error>,
    ) -> Self {
        use serde_path_to_error::Segment;
        let mut segs = Vec::new();
        for s in e.path().iter() {
            match s {
                Segment::Seq { index } => segs.push(Seg::Index(*index)),
                Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                Segment::Enum { .. } | Segment::Unknown => {}
            }
        }
        let msg = e.inner().message().trim().to_string();
        let found = lookup(doc, &segs);
        let value = found
            .as_ref()
            .map(|f| render_value(text, f.value))
            .unwrap_or_default();
        let line = e
            .inner()
            .span()
            .or_else(|| {
                found
                    .as_ref()
                    .map(|f| f.key_span.clone().unwrap_or(f.value.span()))
            })
            .map(|s| line_of_offset(text, s.start));
        let reason = if msg.starts_with("unknown field") {
            format!("unknown key: {msg}")
        } else if msg.starts_with("missing field") {
            format!("required key: {msg}")
        } else {
            msg
        };
        ConfigError {
            key: join_key(&segs),
            value,
            reason,
            file: None,
            line,
        }
    }

    /// Find the line of a validation error's key in the document; a key
    /// that is absent (a required key left out) points at the deepest part
    /// of its path that is there (the `[[ports]]` entry).
    pub(crate) fn locate(mut self, text: &str, doc: &Spanned<DeTable<'_>>) -> Self {
        if self.line.is_none() {
            let segs = split_key(&self.key);
            self.line = (1..=segs.len())
                .rev()
                .find_map(|n| lookup(doc, &segs[..n]))
                .map(|f| line_of_offset(text, f.key_span.unwrap_or(f.value.span()).start));
        }
        self
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_round_trip() {
        for k in [
            "eal.worker_lcores[1]",
            "ports[0].addresses[1]",
            "log",
            "a.b.c",
        ] {
            assert_eq!(join_key(&split_key(k)), k);
        }
        assert_eq!(
            split_key("ports[2].name"),
            vec![
                Seg::Key("ports".into()),
                Seg::Index(2),
                Seg::Key("name".into())
            ]
        );
    }

    #[test]
    fn lookup_finds_lines() {
        let text = "[eal]\nworker_lcores = [\n  1,\n  2,\n]\n\n[[ports]]\nname = \"a\"\n\n[[ports]]\nname = \"b\"\naddresses = [\"1.2.3.4/8\"]\n";
        let doc = DeTable::parse(text).unwrap();
        let line = |k: &str| {
            lookup(&doc, &split_key(k))
                .map(|f| line_of_offset(text, f.key_span.unwrap_or(f.value.span()).start))
        };
        assert_eq!(line("eal.worker_lcores"), Some(2));
        assert_eq!(line("eal.worker_lcores[1]"), Some(4));
        assert_eq!(line("ports[1].name"), Some(11));
        assert_eq!(line("ports[1].addresses[0]"), Some(12));
        assert_eq!(line("ports[2].name"), None);
        assert_eq!(line("nope"), None);
    }

    #[test]
    fn syntax_key_guess() {
        let text = "[eal]\nmain_lcore = 0 0\n[[ports]]\n[[ports]]\nmtu = =\n";
        assert_eq!(key_on_line(text, 2), "eal.main_lcore");
        assert_eq!(key_on_line(text, 5), "ports[1].mtu");
        assert_eq!(key_on_line(text, 1), "");
    }
}
