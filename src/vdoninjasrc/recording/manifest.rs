// SPDX-License-Identifier: MPL-2.0

//! The sidecar manifest of a room recording: who was there, which files hold them, their
//! codecs, and join/leave and file start/end times on one room clock (seconds since the
//! recording began), so that an editor can line the files up. Rewritten atomically (temporary
//! file + rename) on every change.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use serde::Serialize;

use super::location::{utc_iso, utc_stamp};

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub location: String,
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    /// Room-clock seconds of the file's first frame.
    pub start: f64,
    /// Room-clock seconds when it was finalized.
    pub end: Option<f64>,
    pub duration: Option<f64>,
    pub bytes: Option<u64>,
    pub finalized: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Participant {
    pub stream_id: String,
    pub label: Option<String>,
    pub uuid: String,
    pub joined: f64,
    pub left: Option<f64>,
    pub leave_reason: Option<String>,
    pub files: Vec<FileEntry>,
}

/// One aligned audio file (`record-audio`): the stream ID's audio from the files' common start.
#[derive(Debug, Clone, Serialize)]
pub struct AudioEntry {
    pub stream_id: String,
    pub location: String,
    /// Seconds of audio in it (every file of the recording ends at the same length).
    pub duration: f64,
    pub finalized: bool,
}

#[derive(Debug, Serialize)]
pub struct Manifest {
    pub version: u32,
    pub room: Option<String>,
    /// UTC time of room-clock zero.
    pub started_utc: String,
    pub participants: Vec<Participant>,
    /// Room-clock seconds of the aligned audio files' first sample.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_start: Option<f64>,
    /// The aligned audio files, one per stream ID.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<AudioEntry>,
    #[serde(skip)]
    origin: Instant,
    #[serde(skip)]
    path: PathBuf,
}

impl Manifest {
    /// A manifest in `dir`, named after the recording's start time.
    pub fn new(dir: &Path, room: Option<String>) -> Self {
        let now = SystemTime::now();
        let path = super::location::unique_path(
            &dir.join(format!("vdoninja-manifest-{}.json", utc_stamp(now))),
        );
        Self {
            version: 1,
            room,
            started_utc: utc_iso(now),
            participants: Vec::new(),
            audio_start: None,
            audio: Vec::new(),
            origin: Instant::now(),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seconds on the room clock.
    pub fn clock(&self, at: Instant) -> f64 {
        let s = at.saturating_duration_since(self.origin).as_secs_f64();
        (s * 1000.0).round() / 1000.0
    }

    pub fn now(&self) -> f64 {
        self.clock(Instant::now())
    }

    /// The participant entry for this peer (by UUID and stream ID), created on first use.
    pub fn participant(&mut self, stream_id: &str, uuid: &str) -> &mut Participant {
        let now = self.now();
        let i = match self
            .participants
            .iter()
            .position(|p| p.uuid == uuid && p.stream_id == stream_id && p.left.is_none())
        {
            Some(i) => i,
            None => {
                self.participants.push(Participant {
                    stream_id: stream_id.into(),
                    label: None,
                    uuid: uuid.into(),
                    joined: now,
                    left: None,
                    leave_reason: None,
                    files: Vec::new(),
                });
                self.participants.len() - 1
            }
        };
        &mut self.participants[i]
    }

    /// Writes the manifest; errors are returned for the caller to report.
    pub fn save(&self) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_manifest_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut m = Manifest::new(dir.path(), Some("room".into()));
        let p = m.participant("cam1", "UUID1");
        p.label = Some("Cam".into());
        p.files.push(FileEntry {
            location: "x.mkv".into(),
            video_codec: Some("H264".into()),
            audio_codec: Some("OPUS".into()),
            start: 0.5,
            end: None,
            duration: None,
            bytes: None,
            finalized: false,
        });
        m.participant("cam1", "UUID1").left = Some(3.0);
        // Rejoin under the same UUID after leaving: a new entry.
        m.participant("cam1", "UUID1");
        m.save().expect("saved");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(m.path()).expect("read")).expect("json");
        assert_eq!(v["room"], "room");
        assert_eq!(v["participants"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["participants"][0]["files"][0]["video_codec"], "H264");
        assert!(m.path().starts_with(dir.path()));
    }
}
