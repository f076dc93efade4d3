// SPDX-License-Identifier: MPL-2.0

//! One signaling session: a [`Machine`] driven by a WebSocket [`Client`] and a 1 s tick, in one
//! task. Media-side inputs come in through [`Session::input`] (never blocking), and everything
//! the machine asks for except server text goes out on a channel to the element.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::client::{Client, ClientConfig, ClientEvent};
use crate::protocol::machine::{Event, Input, LogLevel, Machine, Output};

/// How often [`Input::Tick`] is fed.
pub const TICK: Duration = Duration::from_secs(1);

/// Handle to a running session; dropping it ends the task and closes the socket.
pub struct Session {
    tx: mpsc::UnboundedSender<Input>,
}

impl Session {
    /// Starts the session on `rt`. Outputs other than [`Output::Send`] go to `outputs`, as do
    /// connection changes, as [`Output::Log`] lines.
    pub fn spawn(
        rt: &tokio::runtime::Handle,
        machine: Machine,
        client: ClientConfig,
        outputs: mpsc::UnboundedSender<Output>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::channel(super::client::EVENT_QUEUE);
        let client = Client::spawn(rt, client, ev_tx);
        rt.spawn(run(machine, client, ev_rx, rx, outputs));
        Self { tx }
    }

    /// Feeds an input to the machine. Never blocks; safe from streaming threads and signal
    /// handlers.
    pub fn input(&self, input: Input) {
        let _ = self.tx.send(input);
    }

    /// A sender for inputs, for callbacks that outlive a borrow of the session.
    pub fn sender(&self) -> mpsc::UnboundedSender<Input> {
        self.tx.clone()
    }

    /// Says goodbye to every peer, then closes the socket.
    pub fn shutdown(self) {
        let _ = self.tx.send(Input::Shutdown);
        // Dropping `tx` ends the task once the shutdown is processed.
    }
}

async fn run(
    mut machine: Machine,
    client: Client,
    mut events: mpsc::Receiver<ClientEvent>,
    mut inputs: mpsc::UnboundedReceiver<Input>,
    outputs: mpsc::UnboundedSender<Output>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let input = tokio::select! {
            ev = events.recv() => match ev {
                Some(ClientEvent::Connected) => {
                    let _ = outputs.send(log(LogLevel::Info, "connected to the handshake server".into()));
                    Input::Connected
                }
                Some(ClientEvent::Disconnected { reason, retry_in, refused }) => {
                    let line = format!(
                        "handshake server: {reason}; retrying in {:.1} s", retry_in.as_secs_f64());
                    // A refusal is the server's word, worth the application's attention; a
                    // dropped network is retried quietly (the debug log has it).
                    let _ = outputs.send(if refused {
                        Output::Event(Event::Warning(line))
                    } else {
                        log(LogLevel::Warning, line)
                    });
                    Input::Disconnected
                }
                Some(ClientEvent::Text(t)) => Input::ServerText(t),
                Some(ClientEvent::Failed(e)) => {
                    let _ = outputs.send(Output::Event(Event::Warning(format!("signaling cannot start: {e}"))));
                    break;
                }
                None => break,
            },
            i = inputs.recv() => match i {
                Some(i) => i,
                None => {
                    // The owner went away: say goodbye to everyone.
                    process(&mut machine, &client, &outputs, Input::Shutdown);
                    break;
                }
            },
            _ = tick.tick() => Input::Tick,
        };
        let shutdown = matches!(input, Input::Shutdown);
        process(&mut machine, &client, &outputs, input);
        if shutdown {
            // Let the byes leave before the socket closes.
            tokio::time::sleep(Duration::from_millis(50)).await;
            break;
        }
    }
    client.close();
}

fn process(
    machine: &mut Machine,
    client: &Client,
    outputs: &mpsc::UnboundedSender<Output>,
    input: Input,
) {
    for out in machine.handle(input, Instant::now()) {
        match out {
            Output::Send(text) => client.send(text),
            other => {
                let _ = outputs.send(other);
            }
        }
    }
}

fn log(level: LogLevel, message: String) -> Output {
    Output::Log { level, message }
}
