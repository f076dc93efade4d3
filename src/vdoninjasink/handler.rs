// SPDX-License-Identifier: MPL-2.0

//! What the signaling asks of the sink, carried out on the media thread: viewers come and go,
//! offers, candidates, data-channel text, bitrate and key-frame requests.

use gst::prelude::*;
use gst::subclass::prelude::*;

use super::imp::{CAT, VdoNinjaSink};
use super::viewer::Viewer;
use crate::common::driver::Job;
use crate::common::log;
use crate::peer::{Munging, Peer, PeerOptions};
use crate::protocol::machine::{CloseReason, Event, Input, Output, PeerId, Role};

impl VdoNinjaSink {
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
                peer, role, uuid, ..
            } => {
                if role != Role::Publisher {
                    gst::warning!(CAT, imp = self, "ignoring a request to view from {uuid}");
                    return;
                }
                if let Err(e) = self.add_viewer(peer, uuid) {
                    log::post_warning(
                        *CAT,
                        obj.upcast_ref(),
                        &format!("cannot serve a viewer: {e}"),
                    );
                    self.input(Input::PeerError { peer, message: e });
                }
            }
            Output::CreateOffer { peer, ice_restart } => self.offer(peer, ice_restart),
            Output::SetRemoteDescription { peer, .. }
            | Output::AddCandidates { peer, .. }
            | Output::SendData { peer, .. } => {
                let cc = self.settings().congestion_control;
                if let Some(v) = self.state().viewers.get_mut(&peer) {
                    // The answer says whether the viewer sends transport-wide feedback.
                    if let Output::SetRemoteDescription { sdp, .. } = &out {
                        v.link.negotiated(&sdp.sdp, cc);
                    }
                    v.peer.apply(out);
                }
            }
            Output::ClosePeer { peer, reason } => {
                let viewer = self.state().viewers.remove(&peer);
                self.state().pending_offers.retain(|(p, _)| *p != peer);
                if let (Some(v), CloseReason::Error(e)) = (&viewer, &reason) {
                    let text = format!("viewer {} dropped: {e}", v.uuid);
                    log::post_warning(*CAT, obj.upcast_ref(), &text);
                }
                if let Some(v) = viewer {
                    let _teardown = self.teardown_lock();
                    self.remove_viewer(v, &log::close_reason_text(&reason));
                    self.update_video_bitrate();
                }
            }
            Output::Event(e) => self.handle_event(e),
            Output::Log { level, message } => {
                log::machine_log(*CAT, obj.upcast_ref(), level, &message)
            }
            Output::Send(_) => {}
        }
    }

    fn handle_event(&self, event: Event) {
        let obj = self.obj();
        let Some(event) = log::common_event(*CAT, obj.upcast_ref(), event) else {
            return;
        };
        match event {
            Event::MediaRequest { peer, audio, video } => {
                if let Some(v) = self.state().viewers.get_mut(&peer) {
                    v.want_audio = audio.unwrap_or(v.want_audio);
                    v.want_video = video.unwrap_or(v.want_video);
                    v.apply_gates();
                }
            }
            Event::VideoBitrateRequest { peer, kbps } => {
                if let Some(v) = self.state().viewers.get_mut(&peer) {
                    v.video_kbps = kbps;
                    v.apply_gates();
                }
                self.update_video_bitrate();
            }
            Event::AudioBitrateRequest { peer, kbps } => {
                if let Some(v) = self.state().viewers.get_mut(&peer) {
                    v.audio_kbps = kbps;
                    v.apply_gates();
                }
            }
            Event::KeyframeRequest { peer } => {
                gst::debug!(CAT, imp = self, "{peer} asks for a key frame");
                let st = self.state();
                // From the rendition the viewer watches.
                let level = st.viewers.get(&peer).map_or(0, |v| v.placement.level);
                for t in &st.tracks {
                    if let Some(c) = &t.chain
                        && c.codec.is_video()
                    {
                        c.request_keyframe_at(level);
                    }
                }
            }
            Event::ViewerRefused { uuid } => {
                gst::info!(
                    CAT,
                    imp = self,
                    "refused viewer {uuid}: max-viewers reached"
                );
            }
            _ => {}
        }
    }

    fn add_viewer(&self, peer: PeerId, uuid: String) -> Result<(), String> {
        let (ice, inputs) = {
            let st = self.state();
            let inputs = st
                .driver
                .as_ref()
                .and_then(|d| d.sender())
                .ok_or("signaling is not running")?;
            (st.ice.clone(), inputs)
        };
        let opts = PeerOptions {
            id: peer,
            ice,
            latency_ms: None,
            munging: Munging {
                h264_baseline: true,
                prefer_video_codec: None,
            },
        };
        let p = Peer::new(opts, inputs).map_err(|e| e.to_string())?;
        let settings = self.settings().clone();
        let link = super::congestion::Link::new(
            settings.bitrate,
            settings.min_bitrate,
            settings.max_bitrate,
        );
        let gcc = settings.congestion_control == super::congestion::CongestionControl::Gcc;
        if gcc {
            super::congestion::gcc::attach(
                &p.webrtc,
                settings.bitrate,
                settings.min_bitrate,
                settings.max_bitrate,
                link.taps(),
                self.tick_soon(),
            );
        }
        if settings.congestion_control != super::congestion::CongestionControl::Disabled {
            // For viewers without transport-wide feedback (decided once they answer).
            super::congestion::gcc::listen_to_reports(&p.webrtc, link.reports.clone());
        }
        let obj = self.obj();
        obj.add(&p.bin).map_err(|e| e.to_string())?;
        let _ = p.bin.sync_state_with_parent();
        p.create_channel()?;
        gst::info!(CAT, imp = self, "viewer {uuid} ({peer}) added");
        self.state()
            .viewers
            .insert(peer, Viewer::new(p, uuid.clone(), link, gcc));
        obj.emit_by_name::<()>("viewer-added", &[&uuid]);
        log::post_element_message(
            obj.upcast_ref(),
            gst::Structure::builder("vdoninja/viewer-added")
                .field("viewer-id", &uuid)
                .build(),
        );
        Ok(())
    }

    /// Offers once every input knows its codec (a viewer may come before the first caps).
    fn offer(&self, peer: PeerId, ice_restart: bool) {
        let failure = {
            let mut guard = self.state();
            let st = &mut *guard;
            if !st.viewers.contains_key(&peer) {
                return;
            }
            if !st.tracks_ready() {
                gst::debug!(CAT, imp = self, "{peer}: offer waits for the inputs' caps");
                st.pending_offers.push((peer, ice_restart));
                return;
            }
            let Some(v) = st.viewers.get_mut(&peer) else {
                return;
            };
            let mut failure = None;
            if v.branches.is_empty() {
                for (i, t) in st.tracks.iter().enumerate() {
                    if let Some(chain) = &t.chain
                        && let Err(e) = v.attach(i, chain)
                    {
                        failure = Some(format!("cannot feed viewer {}: {e}", v.uuid));
                        break;
                    }
                }
            }
            if failure.is_none() {
                v.peer.create_offer(ice_restart);
            }
            failure
        };
        if let Some(msg) = failure {
            log::post_warning(*CAT, self.obj().upcast_ref(), &msg);
            self.input(Input::PeerError { peer, message: msg });
        }
    }

    pub(super) fn flush_pending_offers(&self) {
        let pending = std::mem::take(&mut self.state().pending_offers);
        for (peer, restart) in pending {
            self.offer(peer, restart);
        }
    }

    pub(super) fn remove_viewer(&self, mut v: Viewer, reason: &str) {
        let obj = self.obj();
        v.detach();
        v.peer.close(obj.upcast_ref());
        gst::info!(CAT, imp = self, "viewer {} removed: {reason}", v.uuid);
        obj.emit_by_name::<()>("viewer-removed", &[&v.uuid, &reason]);
        log::post_element_message(
            obj.upcast_ref(),
            gst::Structure::builder("vdoninja/viewer-removed")
                .field("viewer-id", &v.uuid)
                .field("reason", reason)
                .build(),
        );
    }

    /// Moves the shared video encoder after a viewer's request or a viewer left: the lowest
    /// request and the links' latest estimates (see `congestion`).
    pub(super) fn update_video_bitrate(&self) {
        let now = std::time::Instant::now();
        if let Some(ladder) = self.ladder() {
            // Lower renditions: viewers are placed, the lower encoders moved; rendition 0's
            // encoder follows its own viewers only.
            let lowest = self.place_viewers(&ladder, now);
            self.move_encoder(lowest, now);
            return;
        }
        let lowest = {
            let st = self.state();
            st.viewers
                .values()
                .filter(|v| v.want_video && v.video_kbps != Some(0))
                .filter_map(|v| v.link.video.map(|e| (e, v.uuid.clone())))
                .min_by_key(|(e, _)| *e)
        };
        self.move_encoder(lowest, now);
    }

    /// The renditions' ladder, when the video input has lower renditions.
    fn ladder(&self) -> Option<super::renditions::ladder::Ladder> {
        let levels = self.state().video_chain().map(|c| c.levels())?;
        if levels < 2 {
            return None;
        }
        let s = self.settings();
        Some(super::renditions::ladder::Ladder {
            levels,
            top: s.effective_video_kbps(std::iter::empty()),
            floor: s.min_bitrate,
        })
    }
}
