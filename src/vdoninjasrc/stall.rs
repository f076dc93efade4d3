// SPDX-License-Identifier: MPL-2.0

//! Keeps the room stream going when a participant's media stops without it leaving (a muted
//! camera, a frozen tab): mpegtsmux 1.22 waits for data on every stream it has, so a silent
//! guest would stop the whole room. A watchdog (every 200 ms) gives the slot of a track that
//! delivered nothing for [`super::ts::STALL_LIMIT`] back to the placeholder; the track's next
//! key frame takes it again.

use std::time::Duration;

use gst::subclass::prelude::*;

use super::CAT;
use super::imp::VdoNinjaSrc;

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

    /// Media thread: every stalled track gives its slot back to the placeholder (its media
    /// takes it again when it resumes).
    fn take_out_stalled_tracks(&self) {
        let st = self.state();
        if st.eos || st.tsmux.is_none() {
            return;
        }
        for r in st.remotes.values() {
            for t in r.ts_tracks.iter().filter(|t| t.stalled()) {
                t.rest();
                gst::info!(
                    CAT,
                    imp = self,
                    "{}: its {} stopped: the room stream shows the placeholder until it resumes",
                    r.stream_id,
                    t.codec().encoding_name()
                );
            }
        }
    }
}
