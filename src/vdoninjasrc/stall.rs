// SPDX-License-Identifier: MPL-2.0

//! Keeps the room stream going when a participant's media stops without it leaving (a muted
//! camera, a frozen tab): mpegtsmux 1.22 waits for data on every track it has, so a silent
//! track would stop the whole room. A watchdog (every 200 ms) takes a track that delivered
//! nothing for [`ts::STALL_LIMIT`] out of the stream, and puts it back, under the same PID, at
//! its next buffer.

use std::time::Duration;

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::CAT;
use super::imp::VdoNinjaSrc;
use super::ts;
use crate::common::codec::Codec;
use crate::protocol::machine::{Input, PeerId};

const CHECK_EVERY: Duration = Duration::from_millis(200);

impl VdoNinjaSrc {
    /// Starts the watchdog (while the room stream exists); it ends with the element.
    pub(super) fn watch_room_stream(&self) -> tokio::task::JoinHandle<()> {
        crate::common::driver::every(
            &*self.obj(),
            CHECK_EVERY,
            |obj: &super::VdoNinjaSrc| obj.imp().runner(),
            |obj: &super::VdoNinjaSrc| obj.imp().take_out_stalled_tracks(),
        )
    }

    /// Media thread: ends every stalled TS track and waits for its media to come back.
    fn take_out_stalled_tracks(&self) {
        let stalled: Vec<(PeerId, String, gst::Pad, Codec, u16, ts::TsTrack)> = {
            let mut guard = self.state();
            let st = &mut *guard;
            if st.eos || st.tsmux.is_none() {
                return;
            }
            let mut out = Vec::new();
            for (peer, r) in st.remotes.iter_mut() {
                let (gone, kept) = std::mem::take(&mut r.ts_tracks)
                    .into_iter()
                    .partition(|t| t.stalled());
                r.ts_tracks = kept;
                for t in gone {
                    let (source, codec, pid) = t.source();
                    out.push((*peer, r.stream_id.clone(), source, codec, pid, t));
                }
            }
            out
        };
        for (peer, stream_id, source, codec, pid, track) in stalled {
            // Released from the muxer, not ended: an ended track would stay in the program
            // map with no data (players take that, but decodebin fails on such a stream).
            track.withdraw(self.obj().upcast_ref());
            gst::info!(
                CAT,
                imp = self,
                "{stream_id}: its {} stopped: out of the room stream until it resumes",
                codec.encoding_name()
            );
            let Some(runner) = self.state().driver.as_ref().and_then(|d| d.runner()) else {
                return;
            };
            let weak = self.obj().downgrade();
            let pad = source.clone();
            ts::on_next_buffer(&source, move || {
                runner.run(move || {
                    if let Some(obj) = weak.upgrade() {
                        obj.imp().put_back(peer, &pad, codec, pid);
                    }
                });
            });
        }
    }

    /// Media thread: a stalled track's media resumed: it joins the room stream again.
    fn put_back(&self, peer: PeerId, source: &gst::Pad, codec: Codec, pid: u16) {
        let (mux, tx) = {
            let st = self.state();
            if st.eos || !st.remotes.contains_key(&peer) {
                return;
            }
            let Some(mux) = st.tsmux.clone() else { return };
            (mux, st.driver.as_ref().and_then(|d| d.sender()))
        };
        let ask = move || {
            if let Some(tx) = &tx {
                let _ = tx.send(Input::RequestKeyframe { peer });
            }
        };
        let obj = self.obj();
        match mux.add_track(obj.upcast_ref(), peer, codec, source, Some(pid), ask) {
            Ok((t, _)) => {
                let mut st = self.state();
                match st.remotes.get_mut(&peer) {
                    Some(r) => {
                        gst::info!(CAT, imp = self, "{}: back in the room stream", r.stream_id);
                        r.ts_tracks.push(t);
                    }
                    None => {
                        t.finish();
                        st.ts_finished.push(t);
                    }
                }
            }
            Err(e) => gst::warning!(
                CAT,
                imp = self,
                "a resumed track stays out of the room stream: {e}"
            ),
        }
    }
}
