// SPDX-License-Identifier: MPL-2.0

//! Aligned per-guest audio (`record-audio=wav|flac`), for DAWs: one file per stream ID for
//! the whole recording, 48 kHz with the guest's channels, all starting at the same instant
//! (when the element started playing) and holding silence wherever the guest was not there
//! (before it joined, between a leave and a return, while it vanished). A guest who comes back
//! under the same stream ID continues in the same file; at the end every file is padded to the
//! same length, so that the files line up when dropped at zero.
//!
//! * [`timeline`]: sans-IO, where each decoded buffer goes in its file (silence, overlap);
//! * [`writer`]: one file (`appsrc ! wavenc|flacenc ! filesink`);
//! * `input`: one connection's decoded audio into its lane (an `appsink`);
//! * `element`: the element's side (start, end, the manifest);
//! * here: the lanes of a recording, and where each connection's samples go.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use gst::glib;
use gst::prelude::*;

mod element;
mod input;
pub mod timeline;
pub mod writer;

pub use input::LaneInput;

use super::CAT;
use super::recording::location::{Pattern, unique_path, utc_stamp};
use timeline::Timeline;
use writer::{RATE, Writer};

/// `record-audio`: the aligned audio files' format.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstVdoNinjaRecordAudio")]
pub enum AudioFormat {
    #[default]
    #[enum_value(name = "None: no aligned audio files", nick = "none")]
    None,
    #[enum_value(name = "WAV (16-bit PCM)", nick = "wav")]
    Wav,
    #[enum_value(name = "FLAC (lossless, written as it goes)", nick = "flac")]
    Flac,
}

impl AudioFormat {
    fn extension(self) -> &'static str {
        match self {
            Self::Flac => "flac",
            _ => "wav",
        }
    }
}

/// One stream ID's file.
struct Lane {
    timeline: Timeline,
    writer: Writer,
    done: bool,
}

struct Inner {
    format: AudioFormat,
    pattern: Pattern,
    /// `%t` of every file: when the recording started.
    stamp: String,
    parent: glib::WeakRef<gst::Bin>,
    /// Running time of every file's first sample.
    origin: Option<gst::ClockTime>,
    lanes: BTreeMap<String, Lane>,
    /// Connections whose first samples are held back (see [`HOLD`]), by input.
    pending: BTreeMap<u32, Pending>,
    /// Each input's stream ID.
    input_streams: BTreeMap<u32, String>,
    /// Stream IDs whose file could not be made (reported once, then left out).
    failed: std::collections::BTreeSet<String>,
    ended: bool,
}

/// A connection's first samples, held until its time stamps have settled.
#[derive(Default)]
struct Pending {
    /// (position from its time stamp, samples)
    held: Vec<(i64, gst::Buffer)>,
    frames: u64,
    anchored: bool,
}

/// How long a connection's first audio is held back: the receiver's time stamps start up to
/// ~70 ms late (the first packets' arrival, delayed by the connection's set-up, is the jitter
/// buffer's reference) and settle within about a second; the last of it can still move a few
/// milliseconds, so the anchor is taken a second later still.
pub const HOLD: std::time::Duration = std::time::Duration::from_secs(3);
const HOLD_FRAMES: u64 = RATE as u64 * HOLD.as_secs();

/// Samples from the files' start of running time `rt` (negative before it).
fn position(origin: gst::ClockTime, rt: gst::ClockTime) -> i64 {
    let t = Timeline::new(RATE);
    match rt.checked_sub(origin) {
        Some(d) => t.sample_at(d.nseconds()) as i64,
        None => -(t.sample_at((origin - rt).nseconds()) as i64),
    }
}

/// Writes `buf` (whole frames of the lane's format) at sample `at` of the lane's file.
fn place(lane: &mut Lane, at: i64, buf: &gst::Buffer) {
    let frames = (buf.size() / (2 * lane.writer.channels as usize)) as u64;
    let early = if at < 0 {
        at.unsigned_abs().min(frames)
    } else {
        0
    };
    let from = lane.timeline.written();
    let p = lane.timeline.place(at.max(0) as u64, frames - early);
    if p.silence > 0 || p.skip > 0 {
        gst::debug!(
            CAT,
            "at {at} (file end {from}): {} samples of silence, {} skipped",
            p.silence,
            p.skip
        );
    }
    if p.silence > 0 {
        lane.writer.silence(from, p.silence);
    }
    lane.writer.samples(buf, from + p.silence, p.skip + early);
}

impl Inner {
    /// `stream_id`'s lane, made (with its file) if it has none; the file, if made.
    fn lane(&mut self, stream_id: &str, channels: u32) -> Result<Option<NewFile>, String> {
        if self.lanes.contains_key(stream_id) || self.failed.contains(stream_id) {
            return Ok(None);
        }
        self.failed.insert(stream_id.to_string());
        let parent = self.parent.upgrade().ok_or("the element is gone")?;
        let location = unique_path(
            &self
                .pattern
                .expand(stream_id, &self.stamp)
                .with_extension(self.format.extension()),
        );
        let writer = Writer::start(&parent, self.format, &location, channels)?;
        self.failed.remove(stream_id);
        self.lanes.insert(
            stream_id.to_string(),
            Lane {
                timeline: Timeline::new(RATE),
                writer,
                done: false,
            },
        );
        Ok(Some(NewFile {
            stream_id: stream_id.to_string(),
            location,
        }))
    }

    /// Places what connection `input` holds as one run, anchored on its newest time stamp.
    fn flush(&mut self, input: u32, stream_id: &str) {
        let Some(p) = self.pending.get_mut(&input) else {
            return;
        };
        p.anchored = true;
        let held = std::mem::take(&mut p.held);
        let Some(lane) = self.lanes.get_mut(stream_id) else {
            return;
        };
        let ch = lane.writer.channels as usize;
        let run: Vec<(i64, u64)> = held
            .iter()
            .map(|(at, b)| (*at, (b.size() / (2 * ch)) as u64))
            .collect();
        let placed = timeline::run_positions(RATE, &run);
        gst::debug!(
            CAT,
            "{stream_id}: {} held buffers placed as one run; stamp - place (samples): {:?}",
            run.len(),
            run.iter()
                .zip(&placed)
                .map(|((at, _), p)| at - p)
                .collect::<Vec<_>>()
        );
        for ((_, buf), at) in held.iter().zip(placed) {
            place(lane, at, buf);
        }
    }
}

/// The aligned audio files of one recording.
#[derive(Clone)]
pub struct Lanes(Arc<Mutex<Inner>>);

/// A file that was just made, for the manifest.
pub struct NewFile {
    pub stream_id: String,
    pub location: PathBuf,
}

impl Lanes {
    pub fn new(parent: &gst::Bin, format: AudioFormat, pattern: Pattern) -> Self {
        Self(Arc::new(Mutex::new(Inner {
            format,
            pattern,
            stamp: utc_stamp(SystemTime::now()),
            parent: parent.downgrade(),
            origin: None,
            lanes: BTreeMap::new(),
            pending: BTreeMap::new(),
            input_streams: BTreeMap::new(),
            failed: Default::default(),
            ended: false,
        })))
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        crate::common::lock(&self.0)
    }

    /// The files start here (the element's running time when it started playing).
    pub fn begin(&self, running_time: gst::ClockTime) {
        let mut i = self.inner();
        if i.origin.is_none() {
            i.origin = Some(running_time);
        }
    }

    /// The channels of `stream_id`'s file, once it has one.
    fn channels(&self, stream_id: &str) -> Option<u32> {
        self.inner().lanes.get(stream_id).map(|l| l.writer.channels)
    }

    /// Writes one decoded sample of connection `input` (of `stream_id`) where it belongs;
    /// returns the file it made, if this was the stream's first. A connection's first
    /// [`HOLD`] is held back, then placed as one run where its newest time stamp says (see
    /// [`timeline::run_positions`]).
    fn write(
        &self,
        input: u32,
        stream_id: &str,
        sample: &gst::Sample,
    ) -> Result<Option<NewFile>, String> {
        let mut guard = self.inner();
        let i = &mut *guard;
        let (Some(origin), false) = (i.origin, i.ended) else {
            return Ok(None);
        };
        let (Some(buf), Some(segment)) = (sample.buffer_owned(), sample.segment()) else {
            return Ok(None);
        };
        let Some(rt) = buf.pts().and_then(|pts| {
            segment
                .downcast_ref::<gst::ClockTime>()?
                .to_running_time(pts)
        }) else {
            return Ok(None);
        };
        let channels = sample
            .caps()
            .and_then(|c| c.structure(0)?.get::<i32>("channels").ok())
            .unwrap_or(1)
            .clamp(1, 2) as u32;
        let made = i.lane(stream_id, channels)?;
        let Some(lane) = i.lanes.get_mut(stream_id) else {
            return Ok(made);
        };
        if lane.writer.channels != channels {
            gst::debug!(
                CAT,
                "{stream_id}: {channels} channels, its file has {}",
                lane.writer.channels
            );
            return Ok(made);
        }
        let at = position(origin, rt);
        let frames = (buf.size() / (2 * channels as usize)) as u64;
        let pending = i.pending.entry(input).or_default();
        if pending.anchored {
            place(lane, at, &buf);
            return Ok(made);
        }
        pending.held.push((at, buf));
        pending.frames += frames;
        if pending.frames >= HOLD_FRAMES {
            i.flush(input, stream_id);
        }
        Ok(made)
    }

    /// Connection `input` ended: what it still holds goes into its file.
    fn input_ended(&self, input: u32) {
        let mut i = self.inner();
        if let Some(id) = i.input_streams.remove(&input)
            && !i.ended
            && i.pending.get(&input).is_some_and(|p| !p.anchored)
        {
            i.flush(input, &id);
        }
        i.pending.remove(&input);
    }

    /// Ends every file at the same length: `now` (running time) or the longest file's end,
    /// whichever is later. Later samples are not written.
    pub fn end(&self, now: Option<gst::ClockTime>) {
        let mut guard = self.inner();
        let i = &mut *guard;
        if i.ended {
            return;
        }
        let held: Vec<u32> = i
            .pending
            .iter()
            .filter(|(_, p)| !p.anchored)
            .map(|(k, _)| *k)
            .collect();
        for input in held {
            if let Some(id) = i.input_streams.get(&input).cloned() {
                i.flush(input, &id);
            }
        }
        i.ended = true;
        let Some(origin) = i.origin else { return };
        let at_now = now
            .and_then(|n| n.checked_sub(origin))
            .map_or(0, |d| Timeline::new(RATE).sample_at(d.nseconds()));
        let end = i
            .lanes
            .values()
            .map(|l| l.timeline.written())
            .fold(at_now, u64::max);
        for lane in i.lanes.values_mut() {
            let from = lane.timeline.written();
            let silence = lane.timeline.pad_to(end);
            lane.writer.silence(from, silence);
            lane.writer.finish();
        }
        gst::info!(
            CAT,
            "aligned audio: {} files, each {:.3} s",
            i.lanes.len(),
            end as f64 / f64::from(RATE)
        );
    }

    /// An EOS message from `src`: whether it finalized one of the files.
    pub fn file_done(&self, src: &gst::Object) -> bool {
        let mut i = self.inner();
        match i.lanes.values_mut().find(|l| l.writer.is_eos_source(src)) {
            Some(l) => {
                l.done = true;
                true
            }
            None => false,
        }
    }

    /// Every file is final (or there is none).
    pub fn all_done(&self) -> bool {
        self.inner().lanes.values().all(|l| l.done)
    }

    /// Each file's stream ID, location, length in seconds and whether it is final.
    pub fn files(&self) -> Vec<(String, PathBuf, f64, bool)> {
        self.inner()
            .lanes
            .iter()
            .map(|(id, l)| {
                (
                    id.clone(),
                    l.writer.location.clone(),
                    l.timeline.written() as f64 / f64::from(RATE),
                    l.done,
                )
            })
            .collect()
    }

    /// Stops and removes every writer.
    pub fn close(&self, parent: &gst::Bin) {
        let lanes = std::mem::take(&mut self.inner().lanes);
        for l in lanes.values() {
            l.writer.close(parent);
        }
    }
}
