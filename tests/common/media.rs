// SPDX-License-Identifier: MPL-2.0

//! Media-side test helpers: GStreamer set-up, a server on the plugin's runtime, a browser-like
//! test viewer (webrtcbin + the protocol core) that counts decoded frames, and bounded waits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstvdoninja::common::driver::{Driver, Job};
use gstvdoninja::common::settings::{CommonSettings, IceConfig};
use gstvdoninja::peer::{Munging, Peer, PeerOptions};
use gstvdoninja::protocol::crypto::Crypto;
use gstvdoninja::protocol::machine::{Config, Event, Input, Machine, Output, PeerId, View};
use gstvdoninja::protocol::routing::RoutingMode;
use gstvdoninja::server::hub::ServerMode;
use gstvdoninja::server::{RunningServer, ServerConfig, serve};

/// Media waits are bounded by this.
pub const MEDIA_WAIT: Duration = Duration::from_secs(20);

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        gst::init().expect("GStreamer initialises");
        gstvdoninja::plugin_register_static().expect("the plugin registers");
        // rtpav1depay and rtpgccbwe, for the tests' own viewers.
        gstvdoninja::common::elements::register_bundled();
        // Every wait in these tests is bounded; a test binary that still runs after this long
        // is stuck (e.g. a deadlock in a state change): fail loudly instead of hanging CI.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(300));
            eprintln!("test binary still running after 300 s: aborting (something hangs)");
            std::process::abort();
        });
    });
}

/// Our server on 127.0.0.1, running on the plugin's runtime.
pub struct Server {
    pub server: Option<RunningServer>,
    pub url: String,
    pub mode: ServerMode,
}

impl Server {
    pub fn start(mode: ServerMode) -> Self {
        let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("address"));
        cfg.mode = mode;
        let server = gstvdoninja::runtime::handle()
            .block_on(serve(cfg))
            .expect("server starts");
        let url = format!("ws://{}", server.local_addr());
        Self {
            server: Some(server),
            url,
            mode,
        }
    }

    /// Stops the server (every connection drops), as an outage would.
    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            gstvdoninja::runtime::handle().block_on(s.stop());
        }
    }

    /// Starts it again on the same address, after [`Server::stop`].
    pub fn restart(&mut self) {
        assert!(self.server.is_none(), "stopped first");
        let addr = self
            .url
            .trim_start_matches("ws://")
            .parse()
            .expect("address");
        let mut cfg = ServerConfig::new(addr);
        cfg.mode = self.mode;
        let server = gstvdoninja::runtime::handle()
            .block_on(serve(cfg))
            .expect("server starts again on its port");
        self.server = Some(server);
    }

    pub fn signaling_mode(&self) -> &'static str {
        match self.mode {
            ServerMode::Official => "official",
            ServerMode::Fanout => "fanout",
        }
    }

    /// Properties every element in a test gets: this server, loopback ICE, no internet.
    pub fn props(&self) -> String {
        format!(
            "server={} signaling-mode={} local-address=127.0.0.1 stun-server=\"\" auto-turn=false",
            self.url,
            self.signaling_mode()
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            gstvdoninja::runtime::handle().block_on(s.stop());
        }
    }
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails the test on an error message of `pipeline`'s bus; returns the warnings seen.
pub fn bus_errors(pipeline: &gst::Pipeline) -> Vec<String> {
    let mut errors = Vec::new();
    if let Some(bus) = pipeline.bus() {
        while let Some(msg) = bus.pop() {
            if let gst::MessageView::Error(e) = msg.view() {
                errors.push(format!("{} ({:?})", e.error(), e.debug()));
            }
        }
    }
    errors
}

/// Elements (recursively) whose factory klass contains every word of `klass`.
pub fn count_elements(bin: &gst::Bin, klass: &[&str]) -> usize {
    bin.iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| {
            e.factory()
                .map(|f| {
                    let k = f.metadata(gst::ELEMENT_METADATA_KLASS).unwrap_or_default();
                    klass.iter().all(|w| k.contains(w))
                })
                .unwrap_or(false)
        })
        .count()
}

/// Decoded-frame and key-frame counters of one test viewer.
#[derive(Default)]
pub struct Counters {
    pub video_frames: AtomicU64,
    pub audio_frames: AtomicU64,
    pub keyframes: AtomicU64,
    /// When the first video frame was decoded.
    pub first_video: Mutex<Option<Instant>>,
}

/// A viewer like a browser's: answers, sends the request object on data-channel open, decodes.
pub struct TestViewer {
    pub pipeline: gst::Pipeline,
    pub counters: Arc<Counters>,
    pub peers: Arc<Mutex<HashMap<PeerId, Peer>>>,
    pub events: Arc<Mutex<Vec<Event>>>,
    driver: Option<Driver>,
    pub started: Instant,
}

pub struct ViewerOptions<'a> {
    pub stream_id: &'a str,
    pub room: Option<&'a str>,
    pub password: Option<&'a str>,
}

impl TestViewer {
    pub fn start(server: &Server, opts: ViewerOptions) -> Self {
        init();
        let pipeline = gst::Pipeline::new();
        pipeline
            .set_state(gst::State::Playing)
            .expect("viewer pipeline plays");
        let mode = match server.mode {
            ServerMode::Official => RoutingMode::Official,
            ServerMode::Fanout => RoutingMode::Fanout,
        };
        let cfg = Config {
            mode,
            crypto: Crypto::new(opts.password, "vdo.ninja"),
            room: opts.room.map(String::from),
            view: View::Stream(opts.stream_id.to_string()),
            label: Some("test-viewer".into()),
            ..Config::default()
        };
        let machine = Machine::new(cfg).expect("viewer config");
        let counters = Arc::new(Counters::default());
        let peers: Arc<Mutex<HashMap<PeerId, Peer>>> = Arc::default();
        let events: Arc<Mutex<Vec<Event>>> = Arc::default();
        let settings = CommonSettings {
            server: server.url.clone(),
            auto_turn: false,
            ..CommonSettings::default()
        };
        let ice = IceConfig {
            local_address: Some("127.0.0.1".into()),
            ..IceConfig::default()
        };
        // The driver's sender is only known once it runs: the handler gets it through this slot.
        let sender: Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Input>>>> = Arc::default();
        let handler = {
            let pipeline = pipeline.clone();
            let counters = counters.clone();
            let peers = peers.clone();
            let events = events.clone();
            let sender = sender.clone();
            let ice = ice.clone();
            move |job: Job| {
                let Job::Output(out) = job else { return };
                handle(&pipeline, &counters, &peers, &events, &sender, &ice, out);
            }
        };
        let driver = Driver::start(
            machine,
            settings.client_config(),
            &settings,
            ice,
            "test-viewer",
            handler,
        )
        .expect("driver starts");
        *sender.lock().expect("lock") = driver.sender();
        Self {
            pipeline,
            counters,
            peers,
            events,
            driver: Some(driver),
            started: Instant::now(),
        }
    }

    pub fn video_frames(&self) -> u64 {
        self.counters.video_frames.load(Ordering::SeqCst)
    }

    pub fn audio_frames(&self) -> u64 {
        self.counters.audio_frames.load(Ordering::SeqCst)
    }

    pub fn keyframes(&self) -> u64 {
        self.counters.keyframes.load(Ordering::SeqCst)
    }

    /// Waits until at least `video` video and `audio` audio frames were decoded.
    pub fn wait_frames(&self, video: u64, audio: u64) -> bool {
        wait_until(MEDIA_WAIT, || {
            self.video_frames() >= video && self.audio_frames() >= audio
        })
    }

    /// Sends a text on every peer's data channel.
    pub fn send_data(&self, text: &str) {
        for p in self.peers.lock().expect("lock").values() {
            p.send_data(text);
        }
    }

    pub fn input(&self, input: Input) {
        if let Some(d) = &self.driver {
            d.input(input);
        }
    }

    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.peers.lock().expect("lock").keys().copied().collect()
    }

    /// Leaves (bye to the publisher) and stops.
    pub fn stop(mut self) {
        if let Some(d) = self.driver.take() {
            d.stop(Duration::from_secs(3));
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for TestViewer {
    fn drop(&mut self) {
        if let Some(d) = self.driver.take() {
            d.stop(Duration::from_secs(3));
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn handle(
    pipeline: &gst::Pipeline,
    counters: &Arc<Counters>,
    peers: &Arc<Mutex<HashMap<PeerId, Peer>>>,
    events: &Arc<Mutex<Vec<Event>>>,
    sender: &Arc<Mutex<Option<tokio::sync::mpsc::UnboundedSender<Input>>>>,
    ice: &IceConfig,
    out: Output,
) {
    let with = |peer: PeerId, f: &dyn Fn(&Peer)| {
        if let Some(p) = peers.lock().expect("lock").get(&peer) {
            f(p)
        }
    };
    match out {
        Output::CreatePeer { peer, .. } => {
            let Some(tx) = sender.lock().expect("lock").clone() else {
                return;
            };
            let opts = PeerOptions {
                id: peer,
                ice: ice.clone(),
                latency_ms: Some(50),
                munging: Munging::default(),
            };
            let p = Peer::new(opts, tx).expect("peer");
            pipeline.add(&p.bin).expect("add peer");
            let bin = p.bin.clone();
            let c = counters.clone();
            p.webrtc.connect_pad_added(move |_, pad| {
                if pad.direction() == gst::PadDirection::Src {
                    decode_chain(&bin, pad, &c);
                }
            });
            p.bin.sync_state_with_parent().expect("peer plays");
            peers.lock().expect("lock").insert(peer, p);
        }
        Output::SetRemoteDescription { peer, sdp } => {
            with(peer, &|p| p.set_remote_description(sdp.clone()))
        }
        Output::AddCandidates { peer, candidates } => {
            with(peer, &|p| p.add_candidates(&candidates))
        }
        Output::SendData { peer, text } => with(peer, &|p| {
            p.send_data(&text);
        }),
        Output::ClosePeer { peer, .. } => {
            if let Some(p) = peers.lock().expect("lock").remove(&peer) {
                p.close(pipeline.upcast_ref());
            }
        }
        Output::Event(e) => events.lock().expect("lock").push(e),
        _ => {}
    }
}

/// `depay ! parse ! decodebin ! fakesink`, counting key frames before and frames after decoding.
fn decode_chain(bin: &gst::Bin, pad: &gst::Pad, counters: &Arc<Counters>) {
    let caps = pad.current_caps().or_else(|| pad.allowed_caps());
    let Some(s) = caps
        .as_ref()
        .and_then(|c| c.structure(0).map(|s| s.to_owned()))
    else {
        return;
    };
    let enc = s.get::<String>("encoding-name").unwrap_or_default();
    let codec = gstvdoninja::common::codec::Codec::from_encoding_name(&enc);
    let Some(codec) = codec else { return };
    let video = codec.is_video();
    let mut elems = vec![
        gst::ElementFactory::make(codec.depayloader())
            .build()
            .expect("depay"),
    ];
    if let Some(p) = codec.parser() {
        elems.push(gst::ElementFactory::make(p).build().expect("parser"));
    }
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .expect("decodebin");
    bin.add_many(&elems).expect("add");
    bin.add(&decode).expect("add");
    gst::Element::link_many(&elems).expect("link");
    elems
        .last()
        .expect("one")
        .link(&decode)
        .expect("link decodebin");
    if video {
        let c = counters.clone();
        elems
            .last()
            .and_then(|e| e.static_pad("src"))
            .expect("src")
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer()
                    && !b.flags().contains(gst::BufferFlags::DELTA_UNIT)
                {
                    c.keyframes.fetch_add(1, Ordering::SeqCst);
                }
                gst::PadProbeReturn::Ok
            });
    }
    let b = bin.clone();
    let c = counters.clone();
    decode.connect_pad_added(move |_, dpad| {
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .property("async", false)
            .build()
            .expect("fakesink");
        b.add(&sink).expect("add sink");
        sink.sync_state_with_parent().expect("sink plays");
        dpad.link(&sink.static_pad("sink").expect("sink pad"))
            .expect("link sink");
        let c = c.clone();
        dpad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if video {
                c.video_frames.fetch_add(1, Ordering::SeqCst);
                let mut first = c.first_video.lock().expect("lock");
                first.get_or_insert_with(Instant::now);
            } else {
                c.audio_frames.fetch_add(1, Ordering::SeqCst);
            }
            gst::PadProbeReturn::Ok
        });
    });
    for e in elems.iter().chain(std::iter::once(&decode)) {
        e.sync_state_with_parent().expect("plays");
    }
    let sink = elems[0].static_pad("sink").expect("sink");
    pad.link(&sink).expect("link rtp pad");
}

/// A pipeline around `vdoninjasrc` that decodes every pad it gets and counts frames per pad.
pub struct SrcHarness {
    pub pipeline: gst::Pipeline,
    pub src: gst::Element,
    /// Decoded buffers per pad name.
    pub frames: Arc<Mutex<HashMap<String, u64>>>,
    /// When each pad's first decoded buffer arrived.
    pub first: Arc<Mutex<HashMap<String, Instant>>>,
    /// When each pad's first buffer (before any decoding) left the element.
    pub first_out: Arc<Mutex<HashMap<String, Instant>>>,
    pub added: Arc<Mutex<Vec<String>>>,
    pub removed: Arc<Mutex<Vec<String>>>,
    pub started: Instant,
}

impl SrcHarness {
    /// `props`: everything after `vdoninjasrc name=src`.
    pub fn start(props: &str) -> Self {
        init();
        let pipeline = gst::Pipeline::new();
        let src = element(&format!("vdoninjasrc name=src {props}"));
        pipeline.add(&src).expect("add src");
        let frames: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
        let first: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let first_out: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let added: Arc<Mutex<Vec<String>>> = Arc::default();
        let removed: Arc<Mutex<Vec<String>>> = Arc::default();
        {
            let (f, fi, pl) = (frames.clone(), first.clone(), pipeline.clone());
            let fo = first_out.clone();
            src.connect_pad_added(move |_, pad| {
                let name = pad.name().to_string();
                {
                    let (fo, name) = (fo.clone(), name.clone());
                    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                        fo.lock()
                            .expect("lock")
                            .entry(name.clone())
                            .or_insert_with(Instant::now);
                        gst::PadProbeReturn::Remove
                    });
                }
                let caps = pad.query_caps(None);
                let raw = caps
                    .structure(0)
                    .is_some_and(|s| s.name().ends_with("x-raw"));
                let sink = gst::ElementFactory::make("fakesink")
                    .property("sync", false)
                    .property("async", false)
                    .build()
                    .expect("fakesink");
                let queue = gst::ElementFactory::make("queue").build().expect("queue");
                pl.add_many([&queue, &sink]).expect("add");
                let count = {
                    let (f, fi, name) = (f.clone(), fi.clone(), name.clone());
                    move |_: &gst::Pad, _: &mut gst::PadProbeInfo| {
                        *f.lock().expect("lock").entry(name.clone()).or_default() += 1;
                        fi.lock()
                            .expect("lock")
                            .entry(name.clone())
                            .or_insert_with(Instant::now);
                        gst::PadProbeReturn::Ok
                    }
                };
                if raw {
                    queue.link(&sink).expect("link");
                    sink.static_pad("sink")
                        .expect("pad")
                        .add_probe(gst::PadProbeType::BUFFER, count);
                } else {
                    let dec = gst::ElementFactory::make("decodebin")
                        .build()
                        .expect("decodebin");
                    pl.add(&dec).expect("add");
                    queue.link(&dec).expect("link");
                    let sinkpad = sink.static_pad("sink").expect("pad");
                    dec.connect_pad_added(move |_, dpad| {
                        let _ = dpad.link(&sinkpad);
                    });
                    sink.static_pad("sink")
                        .expect("pad")
                        .add_probe(gst::PadProbeType::BUFFER, count);
                    dec.sync_state_with_parent().expect("plays");
                }
                sink.sync_state_with_parent().expect("plays");
                queue.sync_state_with_parent().expect("plays");
                pad.link(&queue.static_pad("sink").expect("pad"))
                    .expect("link pad");
            });
        }
        {
            let a = added.clone();
            src.connect("stream-added", false, move |args| {
                a.lock()
                    .expect("lock")
                    .push(args[1].get::<String>().expect("id"));
                None
            });
            let r = removed.clone();
            src.connect("stream-removed", false, move |args| {
                r.lock()
                    .expect("lock")
                    .push(args[1].get::<String>().expect("id"));
                None
            });
        }
        let started = Instant::now();
        pipeline.set_state(gst::State::Playing).expect("src plays");
        Self {
            pipeline,
            src,
            frames,
            first,
            first_out,
            added,
            removed,
            started,
        }
    }

    pub fn frames(&self, pad: &str) -> u64 {
        self.frames
            .lock()
            .expect("lock")
            .get(pad)
            .copied()
            .unwrap_or(0)
    }

    /// Waits until every named pad has decoded at least `n` buffers.
    pub fn wait_frames(&self, pads: &[&str], n: u64) -> bool {
        wait_until(MEDIA_WAIT, || pads.iter().all(|p| self.frames(p) >= n))
    }

    pub fn has_pad(&self, name: &str) -> bool {
        self.src.static_pad(name).is_some()
    }

    /// Element warnings posted so far (drains the bus).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(bus) = self.pipeline.bus() {
            while let Some(msg) = bus.pop() {
                match msg.view() {
                    gst::MessageView::Warning(w) => out.push(w.error().to_string()),
                    gst::MessageView::Error(e) => out.push(format!("ERROR {}", e.error())),
                    _ => {}
                }
            }
        }
        out
    }

    pub fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// What a media file holds, found by demuxing and decoding all of it.
#[derive(Debug, Default)]
pub struct FileReport {
    /// Caps name of each demuxed stream, with how many buffers it decoded to.
    pub streams: Vec<(String, u64)>,
    /// Demuxer pad names, in the order of `streams`.
    pub pads: Vec<String>,
    pub duration: Option<gst::ClockTime>,
    pub errors: Vec<String>,
    /// Every picture size decoded video came in (width, height), in order of appearance.
    pub sizes: Vec<(i32, i32)>,
    /// The longest step between the timestamps of two consecutive decoded buffers of each
    /// stream (a hole in the recording), in the order of `streams`.
    pub max_gaps: Vec<gst::ClockTime>,
    /// Where each of those holes begins (the timestamp before it).
    pub max_gap_at: Vec<gst::ClockTime>,
}

impl FileReport {
    pub fn count(&self, prefix: &str) -> usize {
        self.streams
            .iter()
            .filter(|(c, _)| c.starts_with(prefix))
            .count()
    }

    /// Distinct demuxer pads of caps `prefix` that decoded something. A TS demuxer exposes
    /// a stream again (same pad name, i.e. PID) when a new program map adds streams.
    pub fn decoded_tracks(&self, prefix: &str) -> usize {
        let mut names: Vec<&str> = self
            .streams
            .iter()
            .zip(&self.pads)
            .filter(|((c, n), _)| c.starts_with(prefix) && *n > 0)
            // tsdemux names pads <type>_<program version>_<PID>: the PID is the track.
            .map(|(_, p)| p.rsplit('_').next().unwrap_or(p))
            .collect();
        names.sort();
        names.dedup();
        names.len()
    }

    /// The longest hole of any stream whose caps start with `prefix`.
    pub fn max_gap(&self, prefix: &str) -> gst::ClockTime {
        self.streams
            .iter()
            .zip(&self.max_gaps)
            .filter(|((c, _), _)| c.starts_with(prefix))
            .map(|(_, g)| *g)
            .max()
            .unwrap_or(gst::ClockTime::ZERO)
    }

    pub fn all_decoded(&self) -> bool {
        self.errors.is_empty()
            && !self.streams.is_empty()
            && self.streams.iter().all(|(_, n)| *n > 0)
    }
}

/// The last decoded timestamp of a stream, the longest step between two so far and where it
/// began.
type Gap = Arc<Mutex<(Option<gst::ClockTime>, gst::ClockTime, gst::ClockTime)>>;

/// (caps name, demuxer pad name, decoded buffers, holes) of one demuxed stream.
type StreamCount = (String, String, Arc<AtomicU64>, Gap);

/// Demuxes (`demuxer`: matroskademux, tsdemux) and decodes `path` to the end.
pub fn inspect_file(path: &std::path::Path, demuxer: &str) -> FileReport {
    init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().as_ref())
        .build()
        .expect("filesrc");
    let demux = gst::ElementFactory::make(demuxer).build().expect("demuxer");
    pipeline.add_many([&src, &demux]).expect("add");
    src.link(&demux).expect("link");
    let streams: Arc<Mutex<Vec<StreamCount>>> = Arc::default();
    let sizes: Arc<Mutex<Vec<(i32, i32)>>> = Arc::default();
    {
        let (pl, streams, sizes) = (pipeline.clone(), streams.clone(), sizes.clone());
        demux.connect_pad_added(move |_, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let name = caps
                .structure(0)
                .map(|s| s.name().to_string())
                .unwrap_or_default();
            let counter = Arc::new(AtomicU64::new(0));
            let gap = Gap::default();
            streams.lock().expect("lock").push((
                name,
                pad.name().to_string(),
                counter.clone(),
                gap.clone(),
            ));
            // Unbounded: a file's tracks need not be finely interleaved.
            let queue = gst::ElementFactory::make("queue")
                .property("max-size-buffers", 0u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .build()
                .expect("queue");
            let dec = gst::ElementFactory::make("decodebin")
                .build()
                .expect("decodebin");
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .build()
                .expect("fakesink");
            pl.add_many([&queue, &dec, &sink]).expect("add");
            queue.link(&dec).expect("link");
            let sinkpad = sink.static_pad("sink").expect("pad");
            sinkpad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                counter.fetch_add(1, Ordering::SeqCst);
                if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                    let mut g = gap.lock().expect("lock");
                    if let Some(last) = g.0
                        && pts.saturating_sub(last) > g.1
                    {
                        g.1 = pts.saturating_sub(last);
                        g.2 = last;
                    }
                    g.0 = Some(pts);
                }
                gst::PadProbeReturn::Ok
            });
            let sizes = sizes.clone();
            sinkpad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view())
                    && let Some(s) = c.caps().structure(0)
                    && let (Ok(w), Ok(h)) = (s.get::<i32>("width"), s.get::<i32>("height"))
                {
                    let mut sizes = sizes.lock().expect("lock");
                    if !sizes.contains(&(w, h)) {
                        sizes.push((w, h));
                    }
                }
                gst::PadProbeReturn::Ok
            });
            dec.connect_pad_added(move |_, p| {
                let _ = p.link(&sinkpad);
            });
            for e in [&queue, &dec, &sink] {
                let _ = e.sync_state_with_parent();
            }
            let _ = pad.link(&queue.static_pad("sink").expect("pad"));
        });
    }
    let mut report = FileReport::default();
    let bus = pipeline.bus().expect("bus");
    let _ = pipeline.set_state(gst::State::Paused);
    let prerolled = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(20),
        &[gst::MessageType::AsyncDone, gst::MessageType::Error],
    );
    if let Some(m) = prerolled
        && let gst::MessageView::Error(e) = m.view()
    {
        report.errors.push(format!(
            "{} from {:?}: {:?}",
            e.error(),
            e.src().map(|s| s.path_string()),
            e.debug()
        ));
    }
    report.duration = pipeline.query_duration::<gst::ClockTime>();
    let _ = pipeline.set_state(gst::State::Playing);
    // Every stream of every program the demuxer exposes must decode to its end: an error
    // anywhere (a track that never gets a key frame, say) fails the file.
    match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(60),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(m) => {
            if let gst::MessageView::Error(e) = m.view() {
                report
                    .errors
                    .push(format!("{} ({:?})", e.error(), e.debug()));
            }
        }
        None => report.errors.push("no EOS within 60 s".into()),
    }
    let _ = pipeline.set_state(gst::State::Null);
    let streams = streams.lock().expect("lock");
    report.streams = streams
        .iter()
        .map(|(n, _, c, _)| (n.clone(), c.load(Ordering::SeqCst)))
        .collect();
    report.pads = streams.iter().map(|(_, p, _, _)| p.clone()).collect();
    report.max_gaps = streams
        .iter()
        .map(|(_, _, _, g)| g.lock().expect("lock").1)
        .collect();
    report.max_gap_at = streams
        .iter()
        .map(|(_, _, _, g)| g.lock().expect("lock").2)
        .collect();
    report.sizes = sizes.lock().expect("lock").clone();
    report
}

/// One element, made from its `gst-launch-1.0` description (properties given as strings).
pub fn element(desc: &str) -> gst::Element {
    init();
    gst::parse::launch(desc).unwrap_or_else(|e| panic!("{desc}: {e}"))
}

/// `gst::parse::launch`, always as a pipeline (a single element gets one around it).
pub fn launch(desc: &str) -> gst::Pipeline {
    init();
    let e = gst::parse::launch(desc).expect("pipeline parses");
    match e.downcast::<gst::Pipeline>() {
        Ok(p) => p,
        Err(e) => {
            let p = gst::Pipeline::new();
            p.add(&e).expect("add");
            p
        }
    }
}

/// Bytes a `vdoninjasrc` received over all its peers, from its `stats`.
pub fn bytes_received(src: &gst::Element) -> u64 {
    let stats = src.property::<gst::Structure>("stats");
    stats
        .iter()
        .filter_map(|(_, v)| v.get::<gst::Structure>().ok())
        .map(|s| s.get::<u64>("bytes-received").unwrap_or(0))
        .sum()
}

/// Samples (at 48 kHz) an audio file decodes to.
pub fn decoded_samples(path: &std::path::Path) -> u64 {
    let Ok(pipeline) = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,rate=48000 ! fakesink name=out sync=false",
        path.display()
    )) else {
        return 0;
    };
    let Ok(pipeline) = pipeline.downcast::<gst::Pipeline>() else {
        return 0;
    };
    let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if let Some(pad) = pipeline.by_name("out").and_then(|s| s.static_pad("sink")) {
        let c = n.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            let channels = pad
                .current_caps()
                .and_then(|caps| caps.structure(0)?.get::<i32>("channels").ok())
                .unwrap_or(1)
                .max(1) as u64;
            if let Some(b) = info.buffer() {
                c.fetch_add(
                    b.size() as u64 / (2 * channels),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            gst::PadProbeReturn::Ok
        });
    }
    let _ = pipeline.set_state(gst::State::Playing);
    let bus = pipeline.bus().expect("bus");
    let _ = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(20),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let _ = pipeline.set_state(gst::State::Null);
    n.load(std::sync::atomic::Ordering::Relaxed)
}

/// What ffprobe says of a file: (codec, frames) per stream, and its duration.
pub fn ffprobe(path: &std::path::Path) -> (Vec<(String, u64)>, f64) {
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs (Debian's ffmpeg; scripts/setup.sh installs it)");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "ffprobe {path:?}: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let streams = v["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["codec_name"].as_str().unwrap_or("?").to_string(),
                s["nb_read_frames"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
            )
        })
        .collect();
    let duration = v["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (streams, duration)
}
