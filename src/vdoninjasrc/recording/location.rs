// SPDX-License-Identifier: MPL-2.0

//! Recording file names: the `record-location` pattern, stream IDs made safe for paths, UTC
//! time stamps, and never overwriting a file. No GStreamer here.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Longest stream-ID part of a file name.
pub const MAX_NAME: usize = 64;

/// A stream ID from the network as a file-name part: ASCII letters, digits, `-` and `_` kept,
/// anything else (`/`, `.`, control characters, …) becomes `_`; runs of `_` collapse; no
/// leading or trailing `_`/`-`; at most [`MAX_NAME`] characters; never empty.
pub fn safe_name(raw: &str) -> String {
    let mut out = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    let trimmed: String = out
        .trim_matches(|c| c == '_' || c == '-')
        .chars()
        .take(MAX_NAME)
        .collect();
    if trimmed.is_empty() {
        "stream".into()
    } else {
        trimmed
    }
}

fn timestamp(t: SystemTime) -> jiff::Timestamp {
    jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// `YYYYMMDDTHHMMSSZ` (UTC), safe in file names on every system.
pub fn utc_stamp(t: SystemTime) -> String {
    timestamp(t).strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// ISO 8601 UTC with milliseconds, for the manifest.
pub fn utc_iso(t: SystemTime) -> String {
    timestamp(t).strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A validated `record-location` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    raw: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PatternError {
    #[error("record-location is empty")]
    Empty,
    #[error("record-location {0:?} has no %s: every participant would write the same file")]
    NoStreamId(String),
    #[error("record-location {0:?}: the directory {1:?} does not exist")]
    NoDirectory(String, PathBuf),
}

impl Pattern {
    /// `%s` = stream ID, `%t` = UTC start time, `%%` = `%`; other text is literal. The directory
    /// part must exist and must not depend on the stream ID.
    pub fn parse(raw: &str) -> Result<Self, PatternError> {
        if raw.trim().is_empty() {
            return Err(PatternError::Empty);
        }
        if !raw.contains("%s") {
            return Err(PatternError::NoStreamId(raw.into()));
        }
        let p = Self { raw: raw.into() };
        let dir = p.directory();
        if !dir.is_dir() {
            return Err(PatternError::NoDirectory(raw.into(), dir));
        }
        Ok(p)
    }

    /// The directory files go to.
    pub fn directory(&self) -> PathBuf {
        match Path::new(&self.raw).parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The path for `stream_id` starting at `stamp`, before the no-overwrite check. The stream
    /// ID is made safe, so that the result stays inside [`Self::directory`].
    pub fn expand(&self, stream_id: &str, stamp: &str) -> PathBuf {
        let name = safe_name(stream_id);
        let file = Path::new(&self.raw)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut out = String::new();
        let mut chars = file.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('s') => out.push_str(&name),
                Some('t') => out.push_str(stamp),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        self.directory().join(out)
    }
}

/// `path` if it does not exist, else `name-1.ext`, `name-2.ext`, … (never overwrites).
pub fn unique_path(path: &Path) -> PathBuf {
    if !path.exists() {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    (1..)
        .map(|i| dir.join(format!("{stem}-{i}{ext}")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn names_from_the_network_are_made_safe() {
        assert_eq!(safe_name("cam1"), "cam1");
        assert_eq!(safe_name("../../etc/x"), "etc_x");
        assert_eq!(safe_name("a/b\\c\0d\ne"), "a_b_c_d_e");
        assert_eq!(safe_name(".."), "stream");
        assert_eq!(safe_name(""), "stream");
        assert_eq!(safe_name("Ünïcode"), "n_code");
        assert_eq!(safe_name(&"x".repeat(500)).len(), MAX_NAME);
    }

    #[test]
    fn stamps_are_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_312_345); // 2026-11-22T01:52:25Z
        assert_eq!(utc_stamp(t), "20261122T015225Z");
        assert_eq!(
            utc_iso(t + Duration::from_millis(7)),
            "2026-11-22T01:52:25.007Z"
        );
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(&utc_stamp(leap)[..8], "20000229");
    }

    #[test]
    fn patterns_expand_inside_their_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = format!("{}/%s-%t.mkv", dir.path().display());
        let p = Pattern::parse(&raw).expect("valid");
        let path = p.expand("../../etc/x", "20261122T000000Z");
        assert_eq!(path, dir.path().join("etc_x-20261122T000000Z.mkv"));
        assert_eq!(path.parent(), Some(dir.path()));
        assert_eq!(
            p.expand("a", "T").file_name().map(|f| f.to_owned()),
            Some("a-T.mkv".into())
        );
        let pct = Pattern::parse(&format!("{}/%s_100%%.mkv", dir.path().display())).expect("valid");
        assert!(pct.expand("a", "T").ends_with("a_100%.mkv"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(Pattern::parse(""), Err(PatternError::Empty));
        assert!(matches!(
            Pattern::parse("/tmp/fixed.mkv"),
            Err(PatternError::NoStreamId(_))
        ));
        assert!(matches!(
            Pattern::parse("/definitely/not/here/%s.mkv"),
            Err(PatternError::NoDirectory(..))
        ));
        assert_eq!(
            Pattern::parse("%s.mkv").expect("cwd").directory(),
            PathBuf::from(".")
        );
    }

    #[test]
    fn files_are_never_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("a.mkv");
        assert_eq!(unique_path(&p), p);
        std::fs::write(&p, b"x").expect("write");
        assert_eq!(unique_path(&p), dir.path().join("a-1.mkv"));
        std::fs::write(dir.path().join("a-1.mkv"), b"x").expect("write");
        assert_eq!(unique_path(&p), dir.path().join("a-2.mkv"));
    }
}
