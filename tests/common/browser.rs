// SPDX-License-Identifier: MPL-2.0

//! A publisher that negotiates like VDO.Ninja's web app (§6.1): its first offer carries only the
//! data channel; once the viewer's request object arrives it adds VP8 + Opus and re-offers over
//! the data channel with the same session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;
use gst_webrtc::{WebRTCRTPTransceiver, WebRTCRTPTransceiverDirection};
use gstvdoninja::common::driver::{Driver, Job};
use gstvdoninja::common::settings::{CommonSettings, IceConfig};
use gstvdoninja::peer::{Munging, Peer, PeerOptions};
use gstvdoninja::protocol::crypto::Crypto;
use gstvdoninja::protocol::machine::{Config, Event, Input, Machine, Output, PeerId, View};
use gstvdoninja::protocol::routing::RoutingMode;
use gstvdoninja::server::hub::ServerMode;

use super::media::{Server, init};

type Sender = Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Input>>>>;

pub struct BrowserPublisher {
    pub pipeline: gst::Pipeline,
    /// Offers made without any media (the first, data-channel-only ones).
    pub bare_offers: Arc<AtomicU32>,
    /// Offers made after media was added (renegotiations).
    pub media_offers: Arc<AtomicU32>,
    driver: Option<Driver>,
}

struct Ctx {
    pipeline: gst::Pipeline,
    peers: Mutex<HashMap<PeerId, (Peer, bool)>>,
    sender: Sender,
    ice: IceConfig,
    announce_ssrc: bool,
    bare_offers: Arc<AtomicU32>,
    media_offers: Arc<AtomicU32>,
}

impl BrowserPublisher {
    pub fn start(server: &Server, stream_id: &str, room: Option<&str>) -> Self {
        Self::start_with(server, stream_id, room, true)
    }

    /// `announce_ssrc: false` re-offers as soon as the media is linked, before webrtcbin knows
    /// the SSRCs, so that the offer has no `a=ssrc` lines.
    pub fn start_with(
        server: &Server,
        stream_id: &str,
        room: Option<&str>,
        announce_ssrc: bool,
    ) -> Self {
        init();
        let pipeline = gst::Pipeline::new();
        pipeline.set_state(gst::State::Playing).expect("plays");
        let mode = match server.mode {
            ServerMode::Official => RoutingMode::Official,
            ServerMode::Fanout => RoutingMode::Fanout,
        };
        let cfg = Config {
            mode,
            crypto: Crypto::new(None, "vdo.ninja"),
            room: room.map(String::from),
            publish: Some(stream_id.to_string()),
            view: View::Nothing,
            label: Some("browser".into()),
            ..Config::default()
        };
        let machine = Machine::new(cfg).expect("config");
        let settings = CommonSettings {
            server: server.url.clone(),
            auto_turn: false,
            ..CommonSettings::default()
        };
        let ice = IceConfig {
            local_address: Some("127.0.0.1".into()),
            ..IceConfig::default()
        };
        let ctx = Arc::new(Ctx {
            pipeline: pipeline.clone(),
            peers: Mutex::new(HashMap::new()),
            sender: Sender::default(),
            ice: ice.clone(),
            announce_ssrc,
            bare_offers: Arc::default(),
            media_offers: Arc::default(),
        });
        let c = ctx.clone();
        let driver = Driver::start(
            machine,
            settings.client_config(),
            &settings,
            ice,
            "browser",
            move |job| {
                if let Job::Output(o) = job {
                    c.handle(o);
                }
            },
        )
        .expect("driver");
        *ctx.sender.lock().expect("lock") = driver.sender();
        Self {
            pipeline,
            bare_offers: ctx.bare_offers.clone(),
            media_offers: ctx.media_offers.clone(),
            driver: Some(driver),
        }
    }

    pub fn stop(mut self) {
        if let Some(d) = self.driver.take() {
            d.stop(Duration::from_secs(3));
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for BrowserPublisher {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            d.stop(Duration::from_secs(3));
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Ctx {
    fn handle(&self, out: Output) {
        match out {
            Output::CreatePeer { peer, .. } => {
                let Some(tx) = self.sender.lock().expect("lock").clone() else {
                    return;
                };
                let opts = PeerOptions {
                    id: peer,
                    ice: self.ice.clone(),
                    latency_ms: None,
                    munging: Munging::default(),
                };
                let p = Peer::new(opts, tx).expect("peer");
                self.pipeline.add(&p.bin).expect("add");
                p.bin.sync_state_with_parent().expect("plays");
                p.create_channel().expect("data channel");
                self.peers.lock().expect("lock").insert(peer, (p, false));
            }
            Output::CreateOffer { peer, ice_restart } => {
                if let Some((p, media)) = self.peers.lock().expect("lock").get(&peer) {
                    let counter = if *media {
                        &self.media_offers
                    } else {
                        &self.bare_offers
                    };
                    counter.fetch_add(1, Ordering::SeqCst);
                    p.create_offer(ice_restart);
                }
            }
            Output::Event(Event::MediaRequest { peer, audio, video }) => {
                let mut peers = self.peers.lock().expect("lock");
                let Some((p, media)) = peers.get_mut(&peer) else {
                    return;
                };
                if *media || audio != Some(true) || video != Some(true) {
                    return;
                }
                *media = true;
                let bins = add_media(p);
                if self.announce_ssrc {
                    for b in &bins {
                        b.sync_state_with_parent().expect("media plays");
                    }
                } else {
                    // Start the media only after the offer is made, so that it has no SSRCs.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(1));
                        for b in bins {
                            let _ = b.sync_state_with_parent();
                        }
                    });
                }
                // Like a browser, announce the tracks' SSRCs in the offer: wait until the
                // payloaders' caps (which carry them) reach webrtcbin.
                let sinks: Vec<gst::Pad> = p.webrtc.sink_pads();
                if self.announce_ssrc {
                    let ready = super::media::wait_until(Duration::from_secs(5), || {
                        sinks.iter().all(|s| s.current_caps().is_some())
                    });
                    assert!(ready, "the media reached webrtcbin");
                }
                self.media_offers.fetch_add(1, Ordering::SeqCst);
                // The renegotiation: the machine sends it over the open data channel.
                p.create_offer(false);
            }
            Output::SetRemoteDescription { peer, sdp } => {
                if let Some((p, _)) = self.peers.lock().expect("lock").get(&peer) {
                    p.set_remote_description(sdp);
                }
            }
            Output::AddCandidates { peer, candidates } => {
                if let Some((p, _)) = self.peers.lock().expect("lock").get(&peer) {
                    p.add_candidates(&candidates);
                }
            }
            Output::SendData { peer, text } => {
                if let Some((p, _)) = self.peers.lock().expect("lock").get(&peer) {
                    p.send_data(&text);
                }
            }
            Output::ClosePeer { peer, .. } => {
                if let Some((p, _)) = self.peers.lock().expect("lock").remove(&peer) {
                    p.close(self.pipeline.upcast_ref());
                }
            }
            _ => {}
        }
    }
}

/// `videotestsrc ! vp8enc ! rtpvp8pay` and `audiotestsrc ! opusenc ! rtpopuspay` into the peer.
fn add_media(p: &Peer) -> Vec<gst::Bin> {
    let mut bins = Vec::new();
    let branches = [
        (
            "videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=30/1 ! \
             vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=96",
            "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000",
        ),
        (
            "audiotestsrc is-live=true freq=660 ! opusenc ! rtpopuspay pt=111",
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2",
        ),
    ];
    for (desc, caps) in branches {
        let bin = gst::parse::bin_from_description(desc, true).expect("media bin");
        p.bin.add(&bin).expect("add media");
        let sink = p.webrtc.request_pad_simple("sink_%u").expect("sink pad");
        let trans = sink.property::<WebRTCRTPTransceiver>("transceiver");
        trans.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
        trans.set_codec_preferences(Some(&caps.parse::<gst::Caps>().expect("caps")));
        bin.static_pad("src")
            .expect("src")
            .link(&sink)
            .expect("link media");
        bins.push(bin);
    }
    bins
}
