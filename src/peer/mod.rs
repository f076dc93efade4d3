// SPDX-License-Identifier: MPL-2.0

//! One remote peer: a child bin around a `webrtcbin`, driving offer/answer, ICE candidates and
//! the data channel. Everything webrtcbin reports goes to the signaling session as an
//! [`Input`] through a channel; nothing here blocks on the network.
//!
//! The media elements (payloaders, depayloaders) are the element's business; this module only
//! owns the bin and the webrtcbin in it.

mod negotiate;
pub mod sdp;
pub mod stats;

use std::sync::{Arc, Mutex};

use gst::glib;
use gst::prelude::*;
use gst_webrtc::{WebRTCDataChannel, WebRTCDataChannelState, WebRTCPeerConnectionState};
use tokio::sync::mpsc::UnboundedSender;

use crate::common::settings::IceConfig;
use crate::protocol::machine::{Input, Output, PeerId, PeerState};
use crate::protocol::message::{IceCandidate, SessionDescription};

pub use negotiate::Munging;

/// How to build one peer.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    pub id: PeerId,
    pub ice: IceConfig,
    /// Jitter-buffer latency in ms (receiving peers).
    pub latency_ms: Option<u32>,
    pub munging: Munging,
}

/// A peer's bin and webrtcbin. Dropping it does not tear anything down: call [`Peer::close`].
pub struct Peer {
    pub id: PeerId,
    pub bin: gst::Bin,
    pub webrtc: gst::Element,
    shared: Arc<Shared>,
}

struct Shared {
    id: PeerId,
    webrtc: glib::WeakRef<gst::Element>,
    inputs: UnboundedSender<Input>,
    channel: Mutex<Option<WebRTCDataChannel>>,
    /// `a=mid` values of our last local description, for the candidates we report.
    mids: Mutex<Vec<Option<String>>>,
    ops: Mutex<negotiate::Ops>,
    munging: Munging,
    /// The last remote description as applied (offer or answer): the offer our answer edits
    /// follow, and the media of each payload type.
    remote: Mutex<Option<gst_sdp::SDPMessage>>,
    /// When we last sent on the data channel (what a close waits for, see `flush`).
    last_sent: Mutex<Option<std::time::Instant>>,
}

impl Shared {
    fn input(&self, input: Input) {
        let _ = self.inputs.send(input);
    }

    fn fail(&self, message: String) {
        self.input(Input::PeerError {
            peer: self.id,
            message,
        });
    }
}

/// Switches libnice's UPnP off (it is on by default where libnice is built with it, as in
/// Debian). Browsers never map ports with UPnP, and every agent would multicast SSDP searches
/// (239.255.255.250:1900) out of every interface and receive every other agent's searches:
/// with 32 agents on one machine (a room of 16 being recorded) that was ~5,000 datagrams a
/// second, all but a few dropped by the kernel, and traffic to addresses the user never gave.
fn disable_upnp(webrtc: &gst::Element) {
    let Some(ice) = webrtc
        .find_property("ice-agent")
        .map(|_| webrtc.property::<glib::Object>("ice-agent"))
    else {
        return;
    };
    if ice.find_property("agent").is_none() {
        return;
    }
    if let Some(agent) = ice.property::<Option<glib::Object>>("agent")
        && agent.find_property("upnp").is_some()
    {
        agent.set_property("upnp", false);
    }
}

/// Runs `f` with GStreamer's own `webrtcbin` and `webrtcnice` debug categories at WARNING at
/// most: in 1.22 both print the TURN URI they are given, credentials and all, at DEBUG
/// (`Adding turn server: turn://user:pass@…`), so `GST_DEBUG=*:5` would show them. Only the
/// lines of this call are lost; a lock keeps concurrent calls from restoring each other's
/// lowered level.
fn without_uri_logging(f: impl FnOnce()) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let cats: Vec<(gst::DebugCategory, gst::DebugLevel)> = ["webrtcbin", "webrtcnice"]
        .into_iter()
        .filter_map(gst::DebugCategory::get)
        .map(|c| (c, c.threshold()))
        .collect();
    for (c, level) in &cats {
        if *level > gst::DebugLevel::Warning {
            c.set_threshold(gst::DebugLevel::Warning);
        }
    }
    f();
    for (c, level) in &cats {
        c.set_threshold(*level);
    }
}

/// Tells the signaling, at most twice a second, that RTCP arrives from the peer: a viewer's
/// receiver reports are the only thing a publisher hears from it besides its data channel,
/// whose SCTP retransmissions back off for seconds after a short network break (a 2 s break
/// made publishers give up viewers that were back, see `Timing::silence_timeout`).
fn report_rtcp(rtpbin: &gst::Element, peer: PeerId, tx: UnboundedSender<Input>) {
    let start = std::time::Instant::now();
    let last = std::sync::atomic::AtomicU64::new(0);
    rtpbin.connect("on-ssrc-active", false, move |_| {
        let ms = start.elapsed().as_millis() as u64 + 500;
        if ms.saturating_sub(last.load(std::sync::atomic::Ordering::Relaxed)) >= 500 {
            last.store(ms, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send(Input::MediaSeen { peer });
        }
        None
    });
}

/// Calls `f` with each RTP session element (`rtpsession`) that `webrtc`'s rtpbin makes, as it
/// is made (before it sends or receives anything).
pub fn on_rtp_session(webrtc: &gst::Element, f: impl Fn(&gst::Element) + Send + Sync + 'static) {
    let Some(rtpbin) = webrtc
        .downcast_ref::<gst::Bin>()
        .and_then(|b| b.by_name("rtpbin"))
        .and_then(|r| r.downcast::<gst::Bin>().ok())
    else {
        return;
    };
    rtpbin.connect_element_added(move |_, element| {
        if element.find_property("internal-session").is_some() {
            f(element);
        }
    });
}

/// RTCP once a second, as browsers send it, not GStreamer's every 5 s (the first ~2.5 s in).
/// A receiver aligns audio and video by the sender reports: until the first one comes it goes
/// by arrival, and when it comes the audio steps (measured: 205 ms, 2 s into a recording of our
/// publisher). Receiver reports, a viewer's only word on its link besides its data channel,
/// come as often.
fn rtcp_every_second(webrtc: &gst::Element) {
    on_rtp_session(webrtc, |session| {
        session.set_property("rtcp-min-interval", 1_000_000_000u64);
    });
}

/// Asks for lost video packets again (RTCP NACK, answered with RTX), as browsers do. Without
/// this a receiving webrtcbin never asked: a transceiver made for a remote offer has `do-nack`
/// off, and even with it on GStreamer 1.22 gives each jitter buffer the `do-nack` of the
/// transceiver it matches to the bundle's session, often the audio one, or none when the
/// media comes first (every peer made again after a break). Each video packet lost to the
/// network then broke the picture until the next key frame: at 5 % loss, 5 % of the video
/// packets were lost for good and a recording had a 533 ms hole. So every transceiver gets
/// `do-nack` (our answer then accepts the sender's RTX) and [`retransmit_video`] sets each
/// jitter buffer.
fn request_retransmissions(webrtc: &gst::Element) {
    webrtc.connect("on-new-transceiver", false, |args| {
        let trans = args
            .get(1)
            .and_then(|v| v.get::<gst_webrtc::WebRTCRTPTransceiver>().ok())?;
        if trans.find_property("do-nack").is_some() {
            trans.set_property("do-nack", true);
        }
        None
    });
}

/// Each new jitter buffer asks for retransmissions, and stops asking at its first packet if
/// the remote description says that packet's payload type is audio (Opus comes without RTX;
/// asking for it made ~20 unanswered requests a second per stream with no loss at all). The
/// payload type, not the SSRC: offers need not declare their SSRCs (ours do not for video,
/// nor on a renegotiation). A lost packet is asked for at most [`RTX_RETRIES`] times: after
/// a break in the path every packet of the break is asked for at once, and unlimited retries
/// made thousands of requests for one 3 s break.
fn retransmit_video(rtpbin: &gst::Element, shared: &Arc<Shared>) {
    let s = Arc::downgrade(shared);
    rtpbin.connect("new-jitterbuffer", false, move |args| {
        let jb = args.get(1).and_then(|v| v.get::<gst::Element>().ok())?;
        // (A jitter buffer without these is not GStreamer's: leave it alone.)
        jb.find_property("rtx-max-retries")?;
        jb.set_property("do-retransmission", true);
        jb.set_property("rtx-max-retries", RTX_RETRIES);
        let s = s.clone();
        let weak = jb.downgrade();
        jb.static_pad("sink")?
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                let pt = info.buffer().and_then(|b| {
                    let map = b.map_readable().ok()?;
                    // RTP: version 2, the payload type in the second byte's low 7 bits.
                    (map.len() >= 12 && map[0] >> 6 == 2).then(|| map[1] & 0x7f)
                });
                let audio = pt.zip(s.upgrade()).is_some_and(|(pt, s)| {
                    let remote = s.remote.lock().ok();
                    remote
                        .as_ref()
                        .and_then(|r| r.as_ref())
                        .and_then(|r| sdp::media_of_payload_type(r, pt))
                        .is_some_and(|kind| kind == "audio")
                });
                if audio && let Some(jb) = weak.upgrade() {
                    jb.set_property("do-retransmission", false);
                }
                gst::PadProbeReturn::Remove
            });
        None
    });
}

/// How many times a lost packet is asked for. At 5 % loss both ways 0.5–1 % of the video
/// packets stay lost (5 % without asking), with 3 tries as with unlimited ones.
const RTX_RETRIES: i32 = 3;

fn peer_state(s: WebRTCPeerConnectionState) -> Option<PeerState> {
    match s {
        WebRTCPeerConnectionState::Connected => Some(PeerState::Connected),
        WebRTCPeerConnectionState::Disconnected => Some(PeerState::Disconnected),
        WebRTCPeerConnectionState::Failed => Some(PeerState::Failed),
        WebRTCPeerConnectionState::Closed => Some(PeerState::Closed),
        _ => None,
    }
}

impl Peer {
    /// Creates the bin (not yet added to any parent) with a configured webrtcbin.
    pub fn new(opts: PeerOptions, inputs: UnboundedSender<Input>) -> Result<Self, glib::BoolError> {
        let bin = gst::Bin::with_name(&format!("{}", opts.id));
        let webrtc = gst::ElementFactory::make("webrtcbin")
            .name(format!("webrtc-{}", opts.id))
            .property_from_str("bundle-policy", "max-bundle")
            .build()?;
        // Our sender reports map RTP time to capture time, not send time: receivers align
        // audio and video by them, and the send time carries each encoder's own delay (the
        // video encoder's grows with load), which put audio tens of ms off its picture.
        let rtpbin = webrtc
            .downcast_ref::<gst::Bin>()
            .and_then(|b| b.by_name("rtpbin"));
        if let Some(rtpbin) = &rtpbin {
            rtpbin.set_property("rtcp-sync-send-time", false);
            report_rtcp(rtpbin, opts.id, inputs.clone());
        }
        rtcp_every_second(&webrtc);
        if let Some(stun) = &opts.ice.stun {
            webrtc.set_property("stun-server", stun);
        }
        if !opts.ice.turn.is_empty() {
            without_uri_logging(|| {
                for turn in &opts.ice.turn {
                    let uri = turn.to_webrtcbin_uri();
                    let _ = webrtc.emit_by_name::<bool>("add-turn-server", &[&uri]);
                }
            });
        }
        if opts.ice.relay_only {
            webrtc.set_property_from_str("ice-transport-policy", "relay");
        }
        if let Some(ms) = opts.latency_ms {
            webrtc.set_property("latency", ms);
        }
        disable_upnp(&webrtc);
        request_retransmissions(&webrtc);
        if let Some(addr) = &opts.ice.local_address {
            let agent = webrtc.property::<gst_webrtc::WebRTCICE>("ice-agent");
            use gst_webrtc::prelude::WebRTCICEExt;
            agent.emit_add_local_ip_address(addr);
        }
        bin.add(&webrtc)?;

        let shared = Arc::new(Shared {
            id: opts.id,
            webrtc: webrtc.downgrade(),
            inputs,
            channel: Mutex::new(None),
            mids: Mutex::new(Vec::new()),
            ops: Mutex::new(negotiate::Ops::default()),
            munging: opts.munging,
            remote: Mutex::new(None),
            last_sent: Mutex::new(None),
        });
        Self::connect_signals(&webrtc, &shared);
        if let Some(rtpbin) = &rtpbin {
            retransmit_video(rtpbin, &shared);
        }
        Ok(Self {
            id: opts.id,
            bin,
            webrtc,
            shared,
        })
    }

    fn connect_signals(webrtc: &gst::Element, shared: &Arc<Shared>) {
        let s = Arc::downgrade(shared);
        webrtc.connect("on-ice-candidate", false, move |args| {
            let s = s.upgrade()?;
            let mline = args.get(1).and_then(|v| v.get::<u32>().ok())?;
            let candidate = args.get(2).and_then(|v| v.get::<String>().ok())?;
            if candidate.is_empty() {
                return None;
            }
            let mid = s
                .mids
                .lock()
                .ok()
                .and_then(|m| m.get(mline as usize).cloned().flatten());
            s.input(Input::LocalCandidate {
                peer: s.id,
                candidate: IceCandidate {
                    candidate,
                    sdp_mid: mid,
                    sdp_mline_index: Some(mline),
                },
            });
            None
        });
        let s = Arc::downgrade(shared);
        webrtc.connect_notify(Some("connection-state"), move |w, _| {
            let Some(s) = s.upgrade() else { return };
            let state = w.property::<WebRTCPeerConnectionState>("connection-state");
            if let Some(state) = peer_state(state) {
                s.input(Input::PeerState { peer: s.id, state });
            }
        });
        let s = Arc::downgrade(shared);
        webrtc.connect("on-data-channel", false, move |args| {
            let s = s.upgrade()?;
            let dc = args
                .get(1)
                .and_then(|v| v.get::<WebRTCDataChannel>().ok())?;
            attach_channel(&s, dc);
            None
        });
    }

    /// Creates our data channel `sendChannel` (publishers, before the first offer, §6.4).
    pub fn create_channel(&self) -> Result<(), String> {
        let opts = gst::Structure::builder("options")
            .field("ordered", true)
            .build();
        let dc = self
            .webrtc
            .emit_by_name::<Option<WebRTCDataChannel>>(
                "create-data-channel",
                &[&"sendChannel", &opts],
            )
            .ok_or("webrtcbin could not create the data channel")?;
        attach_channel(&self.shared, dc);
        Ok(())
    }

    /// Queues an offer (done in order with other negotiation steps).
    pub fn create_offer(&self, ice_restart: bool) {
        negotiate::push(&self.shared, negotiate::Op::Offer { ice_restart });
    }

    /// Queues a remote description; an offer is answered.
    pub fn set_remote_description(&self, sdp: SessionDescription) {
        negotiate::push(&self.shared, negotiate::Op::Remote(sdp));
    }

    pub fn add_candidates(&self, candidates: &[IceCandidate]) {
        for c in candidates {
            let mline = c.sdp_mline_index.unwrap_or(0);
            self.webrtc
                .emit_by_name::<()>("add-ice-candidate", &[&mline, &c.candidate]);
        }
    }

    /// Sends text on the data channel; dropped if it is not open.
    pub fn send_data(&self, text: &str) -> bool {
        let dc = self.shared.channel.lock().ok().and_then(|c| c.clone());
        match dc {
            Some(dc) if dc.ready_state() == WebRTCDataChannelState::Open => {
                if let Ok(mut t) = self.shared.last_sent.lock() {
                    *t = Some(std::time::Instant::now());
                }
                dc.send_string_full(Some(text)).is_ok()
            }
            _ => false,
        }
    }

    /// Carries out the outputs of the state machine that concern only this peer's webrtcbin
    /// (remote description, candidates, data-channel text); `false` for any other output.
    pub fn apply(&self, out: Output) -> bool {
        match out {
            Output::SetRemoteDescription { sdp, .. } => self.set_remote_description(sdp),
            Output::AddCandidates { candidates, .. } => self.add_candidates(&candidates),
            Output::SendData { text, .. } => {
                self.send_data(&text);
            }
            _ => return false,
        }
        true
    }

    /// Whether `obj` is this peer's bin or inside it.
    pub fn contains(&self, obj: &gst::Object) -> bool {
        obj.has_as_ancestor(&self.bin) || obj == self.bin.upcast_ref::<gst::Object>()
    }

    /// Stops the peer: detaches it from `parent` and sets it to NULL. Call from a thread that
    /// is not one of this peer's streaming threads.
    pub fn close(&self, parent: &gst::Bin) {
        if let Ok(mut c) = self.shared.channel.lock()
            && let Some(dc) = c.take()
        {
            let last_sent = self.shared.last_sent.lock().ok().and_then(|t| *t);
            flush(&dc, last_sent);
            dc.close();
        }
        let _ = self.bin.set_state(gst::State::Null);
        let _ = parent.remove(&self.bin);
    }
}

/// Before a goodbye while the pipeline stops: a paused webrtcbin sends nothing (its network
/// sink waits for PLAYING), so paused peer bins play again to say `bye` on their data channels.
/// Call it without holding locks the peers' callbacks take.
pub fn wake_for_goodbye(bins: &[gst::Bin]) {
    for bin in bins {
        if bin.current_state() == gst::State::Paused {
            let _ = bin.set_state(gst::State::Playing);
        }
    }
}

/// Lets what was just sent on `dc` (a `bye`, above all: it is said on the data channel only)
/// leave before the connection is torn down: waits until the channel has handed everything to
/// SCTP, then until SCTP had [`SETTLE`] since the last send to put it on the wire. A channel
/// that sent nothing lately is not waited for; the wait is bounded (250 ms at most).
fn flush(dc: &WebRTCDataChannel, last_sent: Option<std::time::Instant>) {
    const SETTLE: std::time::Duration = std::time::Duration::from_millis(50);
    let Some(sent) = last_sent else { return };
    if dc.ready_state() != WebRTCDataChannelState::Open {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    while dc.buffered_amount() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    if let Some(rest) = SETTLE.checked_sub(sent.elapsed()) {
        std::thread::sleep(rest);
    }
}

fn attach_channel(shared: &Arc<Shared>, dc: WebRTCDataChannel) {
    let id = shared.id;
    let tx = shared.inputs.clone();
    dc.connect_on_open(move |_| {
        let _ = tx.send(Input::DataChannelOpen { peer: id });
    });
    let tx = shared.inputs.clone();
    dc.connect_on_message_string(move |_, text| {
        if let Some(text) = text {
            let _ = tx.send(Input::DataChannelText {
                peer: id,
                text: text.to_string(),
            });
        }
    });
    let tx = shared.inputs.clone();
    dc.connect_on_close(move |_| {
        let _ = tx.send(Input::DataChannelClosed { peer: id });
    });
    let open = dc.ready_state() == WebRTCDataChannelState::Open;
    if let Ok(mut c) = shared.channel.lock() {
        *c = Some(dc);
    }
    if open {
        shared.input(Input::DataChannelOpen { peer: id });
    }
}

/// An upstream `GstForceKeyUnit` event: asks the encoder upstream for a key frame; on a
/// receiving webrtcbin pad it becomes an RTCP PLI (§6.5).
pub fn force_key_unit() -> gst::Event {
    gst::event::CustomUpstream::new(
        gst::Structure::builder("GstForceKeyUnit")
            .field("running-time", u64::MAX)
            .field("all-headers", true)
            .field("count", 0u32)
            .build(),
    )
}

/// Keeps force-key-unit events away from `parser` (h264parse and the like). GStreamer 1.22's
/// h264parse, when it handles such an event (a request from downstream, or the notice an
/// encoder or depayloader sends along with the key frame), emits the stream's parameter sets
/// as an access unit of their own and the key frame after them without a time stamp; key-frame
/// gates and muxers then miss the key frame. So: requests from downstream are passed to the
/// element before the parser, notices from upstream are dropped.
pub fn shield_parser_from_key_unit_events(parser: &gst::Element) {
    let (Some(src), Some(sink)) = (parser.static_pad("src"), parser.static_pad("sink")) else {
        return;
    };
    fn is_key_unit(info: &gst::PadProbeInfo) -> bool {
        info.event()
            .and_then(|e| e.structure())
            .is_some_and(|s| s.name() == "GstForceKeyUnit")
    }
    let upstream = sink.clone();
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if !is_key_unit(info) {
            return gst::PadProbeReturn::Ok;
        }
        if let (Some(ev), Some(peer)) = (info.event().cloned(), upstream.peer()) {
            peer.send_event(ev);
        }
        gst::PadProbeReturn::Handled
    });
    sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, |_, info| {
        if is_key_unit(info) {
            gst::PadProbeReturn::Handled
        } else {
            gst::PadProbeReturn::Ok
        }
    });
}
