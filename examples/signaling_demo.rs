// SPDX-License-Identifier: MPL-2.0

//! Signaling demo: two publishers and a room recorder meet in a room on a handshake server and
//! exchange encrypted offers and answers. The media side is a stand-in that answers with
//! placeholder SDP (the GStreamer elements replace it with webrtcbin).
//!
//! `cargo run --example signaling_demo -- ws://127.0.0.1:8443`

use std::time::Duration;

use gstvdoninja::protocol::machine::{Config, Input, Machine, Output, Role, View};
use gstvdoninja::protocol::message::{SdpType, SessionDescription};
use gstvdoninja::signaling::client::ClientConfig;
use gstvdoninja::signaling::session::Session;
use tokio::sync::mpsc;

fn sdp(kind: SdpType) -> SessionDescription {
    SessionDescription {
        kind,
        sdp: "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n".into(),
    }
}

/// Runs one participant: a session plus a stand-in media side that prints what happens.
fn participant(rt: &tokio::runtime::Handle, name: &'static str, cfg: Config, url: &str) -> Session {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let machine = Machine::new(cfg).expect("valid demo configuration");
    let session = Session::spawn(rt, machine, ClientConfig::new(url), tx);
    let inputs = session.sender();
    rt.spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Output::CreatePeer {
                    peer,
                    role,
                    stream_id,
                    ..
                } => {
                    let what = match role {
                        Role::Publisher => "a viewer asked for our stream",
                        Role::Viewer => "an offer arrived",
                    };
                    println!(
                        "{name:>8}: {what}: new {peer} (stream {})",
                        stream_id.unwrap_or_default()
                    );
                }
                Output::CreateOffer { peer, .. } => {
                    println!("{name:>8}: {peer}: sending an encrypted offer");
                    let _ = inputs.send(Input::LocalDescription {
                        peer,
                        sdp: sdp(SdpType::Offer),
                    });
                }
                Output::SetRemoteDescription { peer, sdp: d } => {
                    let _ = inputs.send(Input::RemoteDescriptionApplied { peer });
                    if d.kind == SdpType::Offer {
                        println!("{name:>8}: {peer}: offer decrypted, answering");
                        let _ = inputs.send(Input::LocalDescription {
                            peer,
                            sdp: sdp(SdpType::Answer),
                        });
                    } else {
                        println!("{name:>8}: {peer}: answer received: negotiation complete");
                    }
                }
                Output::Event(e) => println!("{name:>8}: event {e:?}"),
                _ => {}
            }
        }
    });
    session
}

fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8443".into());
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let h = rt.handle().clone();
    let publisher = |stream: &str| Config {
        room: Some("demo".into()),
        publish: Some(stream.into()),
        label: Some(stream.into()),
        ..Default::default()
    };
    println!("signaling demo against {url}: room \"demo\", default password");
    let _a = participant(&h, "alice", publisher("alice"), &url);
    let _b = participant(&h, "bob", publisher("bob"), &url);
    std::thread::sleep(Duration::from_millis(300));
    let _r = participant(
        &h,
        "recorder",
        Config {
            room: Some("demo".into()),
            view: View::Room(None),
            label: Some("recorder".into()),
            ..Default::default()
        },
        &url,
    );
    std::thread::sleep(Duration::from_secs(2));
    println!("done: the recorder negotiated with every publisher in the room");
}
