// SPDX-License-Identifier: MPL-2.0

//! Per-participant recording (`record-location`): everything that writes files. This module
//! decides when a participant's recorder starts and how it finishes (leave, EOS, stop), keeps
//! the manifest, and posts the `vdoninja/recording-*` bus messages.
//!
//! * [`record`]: one participant's recorder bin (parsers, the muxer, `filesink`);
//! * [`container`]: Matroska or MP4, by the file's extension, and what each track needs;
//! * [`location`]: the file name pattern (`%s`, `%t`), safe names, never overwriting;
//! * [`manifest`]: `vdoninja-manifest-<time>.json`, the room's participants and files.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use gst::prelude::*;
use gst::subclass::prelude::*;

pub mod container;
pub mod location;
pub mod manifest;
pub mod record;

use super::CAT;
use super::imp::VdoNinjaSrc;
use super::state::Remote;
use crate::common::log;
use crate::protocol::machine::PeerId;
use container::Container;
use location::{unique_path, utc_stamp};
use manifest::FileEntry;
use record::{Recorder, RecorderEnd};

/// How long to wait for a participant's other tracks before recording what has arrived.
const TRACK_WAIT: Duration = Duration::from_secs(2);

impl VdoNinjaSrc {
    pub(super) fn save_manifest(&self) {
        let st = self.state();
        if let Some(m) = &st.manifest
            && let Err(e) = m.save()
        {
            gst::warning!(CAT, imp = self, "cannot write {}: {e}", m.path().display());
        }
    }

    /// A track arrived for `peer`: start its recorder now if every expected track is there,
    /// and in any case once [`TRACK_WAIT`] has passed.
    pub(super) fn schedule_recording(&self, peer: PeerId) {
        let st = self.state();
        if st.pattern.is_none() || st.eos {
            return;
        }
        let Some(d) = &st.driver else { return };
        let weak = self.obj().downgrade();
        d.run(move || {
            if let Some(obj) = weak.upgrade() {
                obj.imp().maybe_start_recording(peer, false);
            }
        });
        crate::common::driver::after(
            &*self.obj(),
            TRACK_WAIT,
            |obj: &super::VdoNinjaSrc| obj.imp().runner(),
            move |obj: &super::VdoNinjaSrc| obj.imp().maybe_start_recording(peer, true),
        );
    }

    /// Media thread.
    fn maybe_start_recording(&self, peer: PeerId, waited: bool) {
        let (tracks, stream_id, location) = {
            let st = self.state();
            let Some(pattern) = &st.pattern else { return };
            let Some(r) = st.remotes.get(&peer) else {
                return;
            };
            if st.eos || r.recorder.is_some() || r.tracks.is_empty() {
                return;
            }
            gst::debug!(
                CAT,
                imp = self,
                "{}: {} of {} tracks{}",
                r.stream_id,
                r.tracks.len(),
                r.expected,
                if waited { " (waited)" } else { "" }
            );
            if r.tracks.len() < r.expected.max(1) && !waited {
                return;
            }
            let location =
                unique_path(&pattern.expand(&r.stream_id, &utc_stamp(SystemTime::now())));
            (r.tracks.clone(), r.stream_id.clone(), location)
        };
        let codecs: Vec<_> = tracks.iter().map(|t| t.codec).collect();
        let location = if Container::of(&location).takes(&codecs) {
            location
        } else {
            let mkv = unique_path(&Container::Matroska.path(&location));
            log::post_warning(
                *CAT,
                self.obj().upcast_ref(),
                &format!(
                    "{stream_id} sends {}, which MP4 files for editors do not take: recorded as Matroska in {}",
                    codecs
                        .iter()
                        .filter(|c| !matches!(
                            c,
                            crate::common::codec::Codec::H264 | crate::common::codec::Codec::Opus
                        ))
                        .map(|c| c.encoding_name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    mkv.display()
                ),
            );
            mkv
        };
        let mut sources = Vec::new();
        for t in &tracks {
            match t.branch(false) {
                Ok(pad) => sources.push((t.codec, pad.upcast::<gst::Pad>())),
                Err(e) => gst::warning!(CAT, imp = self, "{stream_id}: {e}"),
            }
        }
        let obj = self.obj();
        let rec = match Recorder::start(obj.upcast_ref(), &stream_id, location.clone(), &sources) {
            Ok(r) => r,
            Err(e) => {
                log::post_warning(
                    *CAT,
                    obj.upcast_ref(),
                    &format!("{stream_id}: not recorded: {e}"),
                );
                return;
            }
        };
        gst::info!(
            CAT,
            imp = self,
            "recording {stream_id} to {}",
            location.display()
        );
        let mut guard = self.state();
        let st = &mut *guard;
        let Some(r) = st.remotes.get_mut(&peer) else {
            // The participant left meanwhile.
            let mut rec = rec;
            let end = rec.end();
            st.finishing.push(rec);
            drop(guard);
            if let Some(end) = end {
                end.send();
            }
            return;
        };
        if let Some(m) = &mut st.manifest {
            let start = m.now();
            let p = m.participant(&r.stream_id, &r.uuid);
            p.label = r.label.clone().or(p.label.take());
            p.files.push(FileEntry {
                location: location.to_string_lossy().into_owned(),
                video_codec: rec.video_codec.map(|c| c.encoding_name().to_string()),
                audio_codec: rec.audio_codec.map(|c| match rec.container {
                    // Transcoded for editors.
                    Container::Mp4 => "AAC".to_string(),
                    Container::Matroska => c.encoding_name().to_string(),
                }),
                start,
                end: None,
                duration: None,
                bytes: None,
                finalized: false,
            });
        }
        r.recorder = Some(rec);
        // The file starts at a key frame: ask for one now rather than wait for the next.
        for t in r.tracks.iter() {
            t.request_keyframe();
        }
        drop(guard);
        self.input(crate::protocol::machine::Input::RequestKeyframe { peer });
        self.save_manifest();
        log::post_element_message(
            obj.upcast_ref(),
            gst::Structure::builder("vdoninja/recording-started")
                .field("stream-id", &stream_id)
                .field("location", location.to_string_lossy().as_ref())
                .build(),
        );
    }

    /// Ends what a participant feeds (recording, TS tracks) and notes the leave.
    pub(super) fn finish_outputs(&self, r: &mut Remote, reason: &str) {
        let mut guard = self.state();
        let st = &mut *guard;
        let ends = end_feeds(r, &mut st.finishing, &mut st.ts_finished);
        if let Some(m) = &mut st.manifest
            && m.participants
                .iter()
                .any(|p| p.uuid == r.uuid && p.stream_id == r.stream_id && p.left.is_none())
        {
            let now = m.now();
            let p = m.participant(&r.stream_id, &r.uuid);
            p.left = Some(now);
            p.leave_reason = Some(reason.to_string());
        }
        drop(guard);
        ends.send();
        self.save_manifest();
    }

    /// A child posted EOS: if it is a recorder's filesink, that file is final.
    pub(super) fn recording_done(&self, src: &gst::Object) {
        let st = self.state();
        match st.finishing.iter().find(|r| r.is_eos_source(src)) {
            Some(rec) => rec.done.store(true, Ordering::SeqCst),
            None if st.lanes.as_ref().is_some_and(|l| l.file_done(src)) => {}
            None => return,
        }
        if let Some(d) = &st.driver {
            let weak = self.obj().downgrade();
            d.run(move || {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().finalize_done();
                }
            });
        }
    }

    /// Closes the recorders whose files are final; posts our EOS when that was the last one.
    pub(super) fn finalize_done(&self) {
        let done: Vec<Recorder> = {
            let mut st = self.state();
            let (done, pending) = std::mem::take(&mut st.finishing)
                .into_iter()
                .partition(|r| r.done.load(Ordering::SeqCst));
            st.finishing = pending;
            done
        };
        for rec in done {
            self.close_recorder(rec, true);
        }
        self.note_audio_files();
        let post_eos = {
            let st = self.state();
            st.eos
                && st.finishing.is_empty()
                && st.remotes.values().all(|r| r.recorder.is_none())
                && st.lanes.as_ref().is_none_or(|l| l.all_done())
        };
        if post_eos {
            self.post_eos();
        }
    }

    fn close_recorder(&self, rec: Recorder, finalized: bool) {
        let obj = self.obj();
        rec.close(obj.upcast_ref());
        let bytes = std::fs::metadata(&rec.location)
            .map(|m| m.len())
            .unwrap_or(0);
        let duration = rec.duration();
        let location = rec.location.to_string_lossy().into_owned();
        {
            let mut st = self.state();
            if let Some(m) = &mut st.manifest {
                let now = m.now();
                if let Some(f) = m
                    .participants
                    .iter_mut()
                    .flat_map(|p| p.files.iter_mut())
                    .find(|f| f.location == location)
                {
                    f.end = Some(now);
                    f.duration = Some(duration.nseconds() as f64 / 1e9);
                    f.bytes = Some(bytes);
                    f.finalized = finalized;
                }
            }
        }
        self.save_manifest();
        if finalized {
            gst::info!(
                CAT,
                imp = self,
                "{location}: {duration} recorded, {bytes} bytes"
            );
        } else {
            log::post_warning(
                *CAT,
                obj.upcast_ref(),
                &format!("{location} was not finalized in time (it plays, but may lack its index)"),
            );
        }
        log::post_element_message(
            obj.upcast_ref(),
            gst::Structure::builder("vdoninja/recording-finished")
                .field("stream-id", &rec.stream_id)
                .field("location", &location)
                .field("duration", duration)
                .field("bytes", bytes)
                .field("finalized", finalized)
                .build(),
        );
    }

    /// Finalizes every recording still finishing, waiting at most `timeout` (no media thread
    /// any more: EOS messages only set flags, this polls them).
    pub(super) fn wait_for_recordings(&self, timeout: Duration) {
        self.end_lanes();
        let deadline = Instant::now() + timeout;
        loop {
            let all = {
                let st = self.state();
                st.finishing.iter().all(|r| r.done.load(Ordering::SeqCst))
                    && st.lanes.as_ref().is_none_or(|l| l.all_done())
            };
            if all || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let rest: Vec<Recorder> = std::mem::take(&mut self.state().finishing);
        for rec in rest {
            let done = rec.done.load(Ordering::SeqCst);
            self.close_recorder(rec, done);
        }
        self.note_audio_files();
        let lanes = self.state().lanes.take();
        if let Some(lanes) = lanes {
            lanes.close(self.obj().upcast_ref());
        }
        let ts: Vec<_> = std::mem::take(&mut self.state().ts_finished);
        for t in ts {
            let _ = t.bin().set_state(gst::State::Null);
            let _ = self.obj().remove(t.bin());
        }
    }

    /// The application asked for EOS: finalize every file, end every pad, then post EOS.
    pub(super) fn end_of_stream(&self) {
        let (pads, ends, recorders_ending): (Vec<gst::GhostPad>, Vec<Ends>, bool) = {
            let mut guard = self.state();
            let st = &mut *guard;
            st.eos = true;
            let ends = st
                .remotes
                .values_mut()
                .map(|r| end_feeds(r, &mut st.finishing, &mut st.ts_finished))
                .collect();
            let recorders_ending = !st.finishing.is_empty();
            (
                st.lasting.iter().map(|l| l.pad.clone()).collect(),
                ends,
                recorders_ending,
            )
        };
        ends.into_iter().for_each(Ends::send);
        for p in pads {
            p.push_event(gst::event::Eos::new());
        }
        let mix = {
            let mut guard = self.state();
            let st = &mut *guard;
            let tracks: Vec<_> = st
                .remotes
                .values_mut()
                .flat_map(|r| r.mix_tracks.drain(..))
                .collect();
            st.mix_finished.extend(tracks);
            st.mix.clone().map(|m| (m, st.mix_finished.clone()))
        };
        if let Some((mix, tracks)) = mix {
            mix.end(&tracks);
        }
        self.end_lanes();
        // With recorders ending, the EOS is posted once the last one is closed (its
        // `recording-finished` posted first: `finalize_done`), not here, where `finishing`
        // may already be empty while that recorder is still being closed.
        let (mux, nothing_pending) = {
            let st = self.state();
            let lanes_done = st.lanes.as_ref().is_none_or(|l| l.all_done());
            (
                st.tsmux.clone(),
                !recorders_ending && st.finishing.is_empty() && lanes_done,
            )
        };
        // The room stream ends once every slot has (the muxer then writes its last packets).
        if let Some(mux) = mux {
            mux.end();
        }
        if nothing_pending {
            self.post_eos();
        }
    }

    fn post_eos(&self) {
        gst::info!(CAT, imp = self, "every recording is final");
        let obj = self.obj();
        let _ = obj.post_message(gst::message::Eos::builder().src(&*obj).build());
    }
}

/// Takes a participant's recorder and TS tracks into `finishing`/`ts_finished`, where they
/// stay until their files are final; the returned [`Ends`] unhooks them and sends them EOS.
#[must_use = "the feeds end only when their ends are sent"]
fn end_feeds(
    r: &mut Remote,
    finishing: &mut Vec<Recorder>,
    ts_finished: &mut Vec<super::ts::TsTrack>,
) -> Ends {
    let mut ends = Ends::default();
    if let Some(mut rec) = r.recorder.take() {
        ends.recorder = rec.end();
        finishing.push(rec);
    }
    for t in r.ts_tracks.drain(..) {
        ends.ts.push(t.clone());
        ts_finished.push(t);
    }
    ends
}

/// A participant's feeds to end, sent once the state lock is released (see [`Recorder::end`]:
/// a message posted from within an EOS reaches our handler, which takes the lock; a guest's
/// EOS once deadlocked the room-stream test so).
#[derive(Default)]
struct Ends {
    recorder: Option<RecorderEnd>,
    ts: Vec<super::ts::TsTrack>,
}

impl Ends {
    fn send(self) {
        if let Some(end) = self.recorder {
            end.send();
        }
        for t in self.ts {
            t.finish();
        }
    }
}
