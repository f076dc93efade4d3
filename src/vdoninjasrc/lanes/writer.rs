// SPDX-License-Identifier: MPL-2.0

//! One aligned audio file: `appsrc ! wavenc|flacenc ! filesink`, fed 48 kHz S16 samples whose
//! time stamps are their position in the file. A bin of its own, outside the element's state
//! changes, so that it can still take the EOS that finalizes the file when the element stops.
//! Killed, it leaves a file that plays: FLAC is written as it goes (its header's length is
//! "unknown" until the end), and wavenc's header says "as long as the file" until EOS.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use gst::prelude::*;

use super::AudioFormat;

/// The samples' format in every aligned file.
pub const RATE: u32 = 48_000;
const BYTES_PER_SAMPLE: usize = 2;
/// Silence is written in pieces of at most this many samples (100 ms).
const SILENCE_PIECE: u64 = RATE as u64 / 10;

pub struct Writer {
    pub bin: gst::Bin,
    pub location: PathBuf,
    pub channels: u32,
    appsrc: gst_app::AppSrc,
    filesink: gst::Element,
}

fn make(factory: &str) -> Result<gst::Element, String> {
    crate::common::elements::make(factory, None)
}

/// The raw format every aligned file takes, with `channels` (any count when `None`).
pub fn raw_caps(channels: Option<u32>) -> gst::Caps {
    let b = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", RATE as i32);
    match channels {
        // Stereo as front left and right (flacenc takes two channels only with the mask).
        Some(2) => b
            .field("channels", 2i32)
            .field("channel-mask", gst::Bitmask::new(0x3))
            .build(),
        Some(c) => b.field("channels", c as i32).build(),
        None => b.field("channels", gst::IntRange::new(1, 2)).build(),
    }
}

impl Writer {
    /// Builds and starts the writer in `parent`.
    pub fn start(
        parent: &gst::Bin,
        format: AudioFormat,
        location: &Path,
        channels: u32,
    ) -> Result<Self, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = gst::Bin::with_name(&format!("lane{}", N.fetch_add(1, Ordering::Relaxed)));
        bin.set_locked_state(true);
        let appsrc = gst_app::AppSrc::builder()
            .caps(&raw_caps(Some(channels)))
            .format(gst::Format::Time)
            .is_live(false)
            .block(false)
            // A late guest's silence (minutes of it) goes in at once; never drop any.
            .max_bytes(0)
            .build();
        let encoder = make(match format {
            AudioFormat::Flac => "flacenc",
            _ => "wavenc",
        })?;
        let filesink = make("filesink")?;
        filesink.set_property("location", location.to_string_lossy().as_ref());
        filesink.set_property("async", false);
        if format == AudioFormat::Flac {
            // FLAC frames reach the disk as they are made: a killed recorder loses almost none.
            filesink.set_property_from_str("buffer-mode", "unbuffered");
        }
        bin.add_many([appsrc.upcast_ref(), &encoder, &filesink])
            .map_err(|e| e.to_string())?;
        gst::Element::link_many([appsrc.upcast_ref(), &encoder, &filesink])
            .map_err(|_| format!("cannot link {}", encoder.name()))?;
        parent.add(&bin).map_err(|e| e.to_string())?;
        if bin.set_state(gst::State::Playing).is_err() {
            let _ = bin.set_state(gst::State::Null);
            let _ = parent.remove(&bin);
            return Err(format!("cannot write {}", location.display()));
        }
        Ok(Self {
            bin,
            location: location.to_path_buf(),
            channels,
            appsrc,
            filesink,
        })
    }

    /// Writes `samples` of silence starting at sample `at`.
    pub fn silence(&self, mut at: u64, samples: u64) {
        let end = at + samples;
        while at < end {
            let n = (end - at).min(SILENCE_PIECE);
            let bytes = n as usize * BYTES_PER_SAMPLE * self.channels as usize;
            let mut buf = gst::Buffer::from_mut_slice(vec![0u8; bytes]);
            stamp(buf.make_mut(), at, n);
            self.push(buf);
            at += n;
        }
    }

    /// Writes `buf` (raw samples in this file's format) at sample `at`, without its first
    /// `skip` samples.
    pub fn samples(&self, buf: &gst::BufferRef, at: u64, skip: u64) {
        let frame = BYTES_PER_SAMPLE * self.channels as usize;
        let total = buf.size() / frame;
        let skip = (skip as usize).min(total);
        if skip == total {
            return;
        }
        let Ok(mut out) =
            buf.copy_region(gst::BufferCopyFlags::MEMORY, skip * frame..total * frame)
        else {
            return;
        };
        stamp(out.make_mut(), at, (total - skip) as u64);
        self.push(out);
    }

    fn push(&self, buf: gst::Buffer) {
        if let Err(e) = self.appsrc.push_buffer(buf) {
            gst::debug!(
                crate::vdoninjasrc::CAT,
                obj = self.appsrc,
                "{}: not written: {e:?}",
                self.location.display()
            );
        }
    }

    /// Ends the file (its encoder then writes the final header).
    pub fn finish(&self) {
        let _ = self.appsrc.end_of_stream();
    }

    /// Whether an EOS message from `obj` says this file is final.
    pub fn is_eos_source(&self, obj: &gst::Object) -> bool {
        obj == self.filesink.upcast_ref::<gst::Object>()
            || obj == self.bin.upcast_ref::<gst::Object>()
    }

    /// Stops and removes the writer.
    pub fn close(&self, parent: &gst::Bin) {
        let _ = self.bin.set_state(gst::State::Null);
        let _ = parent.remove(&self.bin);
    }
}

fn stamp(buf: &mut gst::BufferRef, at: u64, samples: u64) {
    let t = |s: u64| {
        gst::ClockTime::from_nseconds((u128::from(s) * 1_000_000_000 / u128::from(RATE)) as u64)
    };
    buf.set_pts(t(at));
    buf.set_duration(t(at + samples) - t(at));
    buf.set_offset(at);
    buf.set_offset_end(at + samples);
}
