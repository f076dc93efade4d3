// SPDX-License-Identifier: MPL-2.0

//! The element's side of the aligned audio files: feeding each audio track in, starting and
//! ending the files with the element, and listing them in the manifest.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{LaneInput, NewFile};
use crate::protocol::machine::PeerId;
use crate::vdoninjasrc::CAT;
use crate::vdoninjasrc::imp::VdoNinjaSrc;

impl VdoNinjaSrc {
    /// Feeds an audio track of `peer` into its stream ID's aligned file, if `record-audio` is on.
    pub(in crate::vdoninjasrc) fn lane_input(
        &self,
        peer: PeerId,
        stream_id: &str,
        track: &crate::vdoninjasrc::receive::Track,
    ) -> Option<LaneInput> {
        let lanes = self
            .state()
            .lanes
            .clone()
            .filter(|_| !track.codec.is_video())?;
        let obj = self.obj();
        let weak = obj.downgrade();
        let added = move |f: Result<NewFile, String>| {
            let Some(obj) = weak.upgrade() else { return };
            match f {
                Ok(f) => obj.imp().lane_file_made(f),
                Err(e) => crate::common::log::post_warning(*CAT, obj.upcast_ref(), &e),
            }
        };
        match track.branch(true).and_then(|src| {
            lanes.add_input(obj.upcast_ref(), peer, stream_id, src.upcast_ref(), added)
        }) {
            Ok(input) => Some(input),
            Err(e) => {
                crate::common::log::post_warning(
                    *CAT,
                    obj.upcast_ref(),
                    &format!("{stream_id}: no aligned audio file: {e}"),
                );
                None
            }
        }
    }

    /// Streaming thread: a lane made its file. The manifest is written on the media thread.
    fn lane_file_made(&self, f: NewFile) {
        gst::info!(
            CAT,
            imp = self,
            "{}: aligned audio in {}",
            f.stream_id,
            f.location.display()
        );
        let st = self.state();
        if let Some(d) = &st.driver {
            let weak = self.obj().downgrade();
            d.run(move || {
                if let Some(obj) = weak.upgrade() {
                    obj.imp().note_audio_files();
                }
            });
        }
    }

    /// Puts the aligned audio files, as they are now, in the manifest.
    pub(in crate::vdoninjasrc) fn note_audio_files(&self) {
        {
            let mut guard = self.state();
            let st = &mut *guard;
            let (Some(lanes), Some(m)) = (&st.lanes, &mut st.manifest) else {
                return;
            };
            m.audio = lanes
                .files()
                .into_iter()
                .map(|(stream_id, location, duration, finalized)| {
                    crate::vdoninjasrc::recording::manifest::AudioEntry {
                        stream_id,
                        location: location.to_string_lossy().into_owned(),
                        duration,
                        finalized,
                    }
                })
                .collect();
        }
        self.save_manifest();
    }

    /// The element started playing: the aligned files start now.
    pub(in crate::vdoninjasrc) fn begin_lanes(&self) {
        let lanes = self.state().lanes.clone();
        if let (Some(lanes), Some(rt)) = (lanes, self.obj().current_running_time()) {
            lanes.begin(rt);
            if let Some(m) = &mut self.state().manifest {
                m.audio_start.get_or_insert(m.now());
            }
        }
    }

    /// Ends the aligned files at one length (EOS or stop).
    pub(in crate::vdoninjasrc) fn end_lanes(&self) {
        let lanes = self.state().lanes.clone();
        if let Some(lanes) = lanes {
            lanes.end(self.obj().current_running_time());
            self.note_audio_files();
        }
    }
}
