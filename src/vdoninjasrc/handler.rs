// SPDX-License-Identifier: MPL-2.0

//! What the signaling asks of the source, on the media thread, and the media that arrives on a
//! peer's webrtcbin (on its streaming thread).

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::CAT;
use super::imp::VdoNinjaSrc;
use super::receive;
use super::state::Remote;
use crate::common::driver::Job;
use crate::common::log;
use crate::peer::{Munging, Peer, PeerOptions};
use crate::protocol::machine::{CloseReason, Event, Input, Output, PeerId, Role};

impl VdoNinjaSrc {
    pub(super) fn handle_job(&self, job: Job) {
        match job {
            Job::Output(o) => self.handle_output(o),
            Job::Run(f) => f(),
            Job::IceConfig(ice, err) => {
                log::ice_config(*CAT, self.obj().upcast_ref(), &ice, err.as_deref());
                self.state().ice = ice;
            }
        }
    }

    fn handle_output(&self, out: Output) {
        let obj = self.obj();
        match out {
            Output::CreatePeer {
                peer,
                role,
                uuid,
                stream_id,
                ..
            } => {
                if role != Role::Viewer {
                    return;
                }
                let stream_id = stream_id.unwrap_or_else(|| uuid.clone());
                if let Err(e) = self.add_remote(peer, uuid, stream_id) {
                    log::post_warning(
                        *CAT,
                        obj.upcast_ref(),
                        &format!("cannot receive a stream: {e}"),
                    );
                    self.input(Input::PeerError { peer, message: e });
                }
            }
            Output::SetRemoteDescription { peer, .. }
            | Output::AddCandidates { peer, .. }
            | Output::SendData { peer, .. } => {
                if let Some(r) = self.state().remotes.get_mut(&peer) {
                    // An offer says how many tracks to wait for before recording.
                    if let Output::SetRemoteDescription { sdp, .. } = &out
                        && sdp.kind == crate::protocol::message::SdpType::Offer
                    {
                        r.expected = crate::peer::sdp::parse(&sdp.sdp)
                            .map_or(0, |m| crate::peer::sdp::sending_media_count(&m));
                    }
                    r.peer.apply(out);
                }
            }
            Output::ClosePeer { peer, reason } => {
                let remote = self.state().remotes.remove(&peer);
                if let (Some(r), CloseReason::Error(e)) = (&remote, &reason) {
                    let text = format!("stream {} dropped: {e}", r.stream_id);
                    log::post_warning(*CAT, obj.upcast_ref(), &text);
                }
                if let Some(r) = remote {
                    let _teardown = self.teardown_lock();
                    self.remove_remote(r, &log::close_reason_text(&reason));
                }
            }
            Output::Event(Event::PeerInfo { peer, label }) => {
                if let Some(r) = self.state().remotes.get_mut(&peer) {
                    r.label = label.clone();
                    for t in &r.mix_tracks {
                        t.set_label(label.as_deref().unwrap_or_default());
                    }
                }
                gst::info!(CAT, imp = self, "{peer} is {:?}", label.unwrap_or_default());
            }
            Output::Event(e) => {
                let _ = log::common_event(*CAT, obj.upcast_ref(), e);
            }
            Output::Log { level, message } => {
                log::machine_log(*CAT, obj.upcast_ref(), level, &message)
            }
            Output::CreateOffer { .. } | Output::Send(_) => {}
        }
    }

    fn add_remote(&self, peer: PeerId, uuid: String, stream_id: String) -> Result<(), String> {
        let settings = self.settings().clone();
        let (ice, inputs, video_codec) = {
            let st = self.state();
            let inputs = st
                .driver
                .as_ref()
                .and_then(|d| d.sender())
                .ok_or("signaling is not running")?;
            (st.ice.clone(), inputs, st.video_codec)
        };
        let opts = PeerOptions {
            id: peer,
            ice,
            latency_ms: Some(settings.latency),
            munging: Munging {
                h264_baseline: false,
                prefer_video_codec: video_codec.map(|c| c.encoding_name().to_string()),
            },
        };
        let p = Peer::new(opts, inputs).map_err(|e| e.to_string())?;
        let weak = self.obj().downgrade();
        p.webrtc.connect_pad_added(move |_, pad| {
            if pad.direction() == gst::PadDirection::Src
                && let Some(obj) = weak.upgrade()
            {
                obj.imp().on_media_pad(peer, pad);
            }
        });
        let obj = self.obj();
        obj.add(&p.bin).map_err(|e| e.to_string())?;
        let _ = p.bin.sync_state_with_parent();
        gst::info!(
            CAT,
            imp = self,
            "receiving {stream_id} from {uuid} ({peer})"
        );
        self.state().remotes.insert(
            peer,
            Remote {
                peer: p,
                uuid,
                stream_id,
                label: None,
                pads: Vec::new(),
                announced: false,
                tracks: Vec::new(),
                expected: 0,
                recorder: None,
                ts_tracks: Vec::new(),
                mix_tracks: Vec::new(),
                lane_inputs: Vec::new(),
            },
        );
        Ok(())
    }

    /// A webrtcbin src pad appeared (streaming thread): build its chain and expose it.
    fn on_media_pad(&self, peer: PeerId, pad: &gst::Pad) {
        let decode = self.settings().decode;
        let (bin, stream_id, label, tsmux, mix) = {
            let st = self.state();
            let Some(r) = st.remotes.get(&peer) else {
                return;
            };
            let mux = st.tsmux.clone().filter(|_| !st.eos);
            let mix = st.mix.clone().filter(|_| !st.eos);
            (
                r.peer.bin.clone(),
                r.stream_id.clone(),
                r.label.clone(),
                mux,
                mix,
            )
        };
        let obj = self.obj();
        let warn = |e: String| {
            log::post_warning(
                *CAT,
                obj.upcast_ref(),
                &format!("{stream_id}: cannot receive a track: {e}"),
            )
        };
        let track = match receive::build(&bin, pad) {
            Ok(t) => t,
            Err(e) => return warn(e),
        };
        if let Some(tx) = self.state().driver.as_ref().and_then(|d| d.sender()) {
            receive::report_media(&track, peer, tx);
        }
        let exposed = match track.branch(decode) {
            Ok(p) => p,
            Err(e) => return warn(e),
        };
        let claimed = match self.claim_pad(peer, &stream_id, track.codec, exposed.upcast_ref()) {
            Ok(c) => c,
            Err(e) => return warn(e),
        };
        let (ghost, name) = (claimed.pad.clone(), claimed.name.clone());

        let ts_track = match &tsmux {
            Some(mux) => match track.branch(false).and_then(|src| {
                let tx = self.state().driver.as_ref().and_then(|d| d.sender());
                let ask = move || {
                    if let Some(tx) = &tx {
                        let _ = tx.send(Input::RequestKeyframe { peer });
                    }
                };
                mux.add_track(obj.upcast_ref(), peer, track.codec, src.upcast_ref(), ask)
            }) {
                Ok((t, transcoded)) => {
                    if transcoded {
                        log::post_warning(
                            *CAT,
                            obj.upcast_ref(),
                            &format!(
                                "{stream_id} sends {} although H.264 was asked for: transcoding it to H.264 for the src pad",
                                track.codec.encoding_name()
                            ),
                        );
                    }
                    Some(t)
                }
                Err(e) => {
                    warn(format!("not in the room stream: {e}"));
                    None
                }
            },
            None => None,
        };

        let mix_track = match mix.filter(|m| m.wants(track.codec.is_video())) {
            Some(mix) => match track.branch(true).and_then(|src| {
                mix.add_track(
                    obj.upcast_ref(),
                    peer,
                    track.codec.is_video(),
                    src.upcast_ref(),
                    label.as_deref(),
                )
            }) {
                Ok(t) => Some(t),
                Err(e) => {
                    warn(format!("not in the room mix: {e}"));
                    None
                }
            },
            None => None,
        };

        let lane_input = self.lane_input(peer, &stream_id, &track);

        let announce = {
            let mut guard = self.state();
            let st = &mut *guard;
            let Some(r) = st.remotes.get_mut(&peer) else {
                return;
            };
            r.pads.push(ghost.clone());
            r.tracks.push(track.clone());
            r.ts_tracks.extend(ts_track);
            r.mix_tracks.extend(mix_track);
            r.lane_inputs.extend(lane_input);
            if let Some(l) = &r.label {
                r.mix_tracks.iter().for_each(|t| t.set_label(l));
            }
            let first = !r.announced;
            r.announced = true;
            if first && let Some(m) = &mut st.manifest {
                let p = m.participant(&r.stream_id, &r.uuid);
                p.label = r.label.clone();
            }
            first.then(|| (r.stream_id.clone(), r.label.clone().unwrap_or_default()))
        };
        if claimed.fresh && obj.add_pad(&ghost).is_err() {
            return;
        }
        gst::info!(CAT, imp = self, "{name}: {}", track.codec.encoding_name());
        if let Some((sid, label)) = announce {
            self.save_manifest();
            obj.emit_by_name::<()>("stream-added", &[&sid, &label]);
            log::post_element_message(
                obj.upcast_ref(),
                gst::Structure::builder("vdoninja/stream-added")
                    .field("stream-id", &sid)
                    .field("label", &label)
                    .build(),
            );
        }
        self.schedule_recording(peer);
        if track.codec.is_video() {
            // Decoders and muxers start on a key frame (§6.5): ask on the data channel, and
            // with an RTCP PLI.
            self.input(Input::RequestKeyframe { peer });
            track.request_keyframe();
        }
    }

    pub(super) fn remove_remote(&self, mut r: Remote, reason: &str) {
        let obj = self.obj();
        self.finish_outputs(&mut r, reason);
        let mix = self.state().mix.clone();
        for t in r.mix_tracks.drain(..) {
            match &mix {
                Some(m) => m.remove(obj.upcast_ref(), t),
                None => {
                    let _ = t.bin().set_state(gst::State::Null);
                    let _ = obj.remove(t.bin());
                }
            }
        }
        for input in r.lane_inputs.drain(..) {
            input.remove(obj.upcast_ref());
        }
        self.release_pads(r.peer.id);
        r.peer.close(obj.upcast_ref());
        gst::info!(
            CAT,
            imp = self,
            "{} ({}) removed: {reason}",
            r.stream_id,
            r.uuid
        );
        if r.announced {
            obj.emit_by_name::<()>("stream-removed", &[&r.stream_id, &reason]);
            log::post_element_message(
                obj.upcast_ref(),
                gst::Structure::builder("vdoninja/stream-removed")
                    .field("stream-id", &r.stream_id)
                    .field("reason", reason)
                    .build(),
            );
        }
    }
}
