//! Report files (`--stats-json`, `--live-json`, the DHCP and pktgen
//! `--json`) replaced atomically and safely.
//!
//! A report is written to a fresh temporary file in the target's
//! directory and renamed over the target, so a reader never sees half a
//! report. The temporary name is `.<file>.<pid>.<16 hex digits>.tmp`, the
//! digits from SipHash under std's per-process random keys (`RandomState`)
//! over a counter, the clock and the pid: nobody can guess it ahead of
//! time. It is created with `O_CREAT | O_EXCL` (`create_new`), which
//! never follows a symlink and fails on anything already there — a name
//! planted in between is simply skipped for another one. The rename
//! replaces the target's directory entry (a symlink at the target is
//! replaced, not followed).

use std::collections::hash_map::RandomState;
use std::ffi::OsString;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

/// Names tried before giving up (each collision is a file someone put
/// exactly there, or a 1-in-2^64 accident).
const ATTEMPTS: usize = 16;

/// An unpredictable 64-bit value (see the module docs).
fn unpredictable() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(N.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

fn tmp_path(path: &Path, salt: u64) -> io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a file name", path.display()),
        )
    })?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{}.{salt:016x}.tmp", std::process::id()));
    Ok(path.with_file_name(tmp))
}

fn write_atomic_with(
    path: &Path,
    data: &[u8],
    mut salt: impl FnMut() -> u64,
) -> io::Result<PathBuf> {
    for _ in 0..ATTEMPTS {
        let tmp = tmp_path(path, salt())?;
        let mut f = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let done = f
            .write_all(data)
            .and_then(|()| {
                drop(f);
                std::fs::rename(&tmp, path)
            })
            .map(|()| tmp.clone());
        if done.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        return done;
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{}: no free temporary name after {ATTEMPTS} tries",
            path.display()
        ),
    ))
}

/// Replaces `path` with `data` through a fresh, exclusively created,
/// unpredictably named temporary file in the same directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic_with(path, data, unpredictable).map(drop)
}

/// [`write_atomic`] of `v` as pretty JSON; errors name the file.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, v: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(v)?;
    write_atomic(path, &body).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d = std::env::temp_dir().join(format!("qs-outfile-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_symlink_at_the_old_temp_name_is_not_followed() {
        let d = Dir::new("old");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        // The writers used to write `<stem>.tmp` and rename it.
        symlink(&victim, d.0.join("stats.tmp")).unwrap();
        let target = d.0.join("stats.json");
        write_json(&target, &serde_json::json!({"rx": 1})).unwrap();
        write_json(&target, &serde_json::json!({"rx": 2})).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        let got: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&target).unwrap()).unwrap();
        assert_eq!(got, serde_json::json!({"rx": 2}));
        assert_eq!(d.names(), ["stats.json", "stats.tmp", "victim"]);
    }

    #[test]
    fn planted_names_are_skipped_never_followed() {
        let d = Dir::new("planted");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let target = d.0.join("r.json");
        // Someone who guessed the first two names: a symlink and a file.
        symlink(&victim, tmp_path(&target, 1).unwrap()).unwrap();
        std::fs::write(tmp_path(&target, 2).unwrap(), "theirs").unwrap();
        let mut salts = [1, 2, 3].into_iter();
        let used = write_atomic_with(&target, b"report", || salts.next().unwrap()).unwrap();
        assert_eq!(used, tmp_path(&target, 3).unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert_eq!(
            std::fs::read_to_string(tmp_path(&target, 2).unwrap()).unwrap(),
            "theirs"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "report");
        // Every name taken: an error, nothing written anywhere.
        let e = write_atomic_with(&target, b"again", || 1).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "report");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let d = Dir::new("target");
        let victim = d.0.join("victim");
        std::fs::write(&victim, "untouched").unwrap();
        let target = d.0.join("out.json");
        symlink(&victim, &target).unwrap();
        write_atomic(&target, b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
        assert!(!std::fs::symlink_metadata(&target)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}");
    }

    #[test]
    fn names_are_hidden_distinct_and_in_the_target_directory() {
        let a = tmp_path(Path::new("/var/run/x/stats.json"), unpredictable()).unwrap();
        let b = tmp_path(Path::new("/var/run/x/stats.json"), unpredictable()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/var/run/x")));
        let n = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(n.starts_with(".stats.json.") && n.ends_with(".tmp"), "{n}");
        // A bare file name stays in the working directory.
        let c = tmp_path(Path::new("r.json"), 7).unwrap();
        assert_eq!(c.parent(), Some(Path::new("")));
        assert!(tmp_path(Path::new("/"), 7).is_err());
    }
}
