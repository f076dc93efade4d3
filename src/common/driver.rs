// SPDX-License-Identifier: MPL-2.0

//! Runs an element's signaling: the [`Session`] (network, on the shared runtime) and one
//! "media" thread that carries out what the state machine asks of webrtcbin and the bin.
//!
//! GStreamer work (creating peers, linking pads, state changes) may block briefly, so it never
//! runs on the runtime's threads, and never on a streaming thread: the media thread does it.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::common::settings::{CommonSettings, IceConfig};
use crate::protocol::machine::{Input, Machine, Output};
use crate::protocol::turn::select_turn;
use crate::signaling::client::ClientConfig;
use crate::signaling::session::Session;
use crate::signaling::turn_fetch::{
    DEFAULT_TURN_LIST_URL, FETCH_TIMEOUT, local_timezone_minutes_west, turn_list,
};

/// Work for the media thread.
pub enum Job {
    Output(Output),
    /// Anything else the element wants done on the media thread.
    Run(Box<dyn FnOnce() + Send>),
    /// The VDO.Ninja TURN list arrived (or its fallback).
    IceConfig(IceConfig, Option<String>),
}

/// Queues work for an element's media thread.
#[derive(Clone)]
pub struct Runner(std_mpsc::Sender<Job>);

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("Runner")
    }
}

impl Runner {
    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        let _ = self.0.send(Job::Run(Box::new(f)));
    }
}

/// Feeds `driver`'s state machine, if there is one running; whether there was.
pub fn feed(driver: Option<&Driver>, input: Input) -> bool {
    driver.map(|d| d.input(input)).is_some()
}

/// A running signaling session and its media thread.
pub struct Driver {
    session: Option<Session>,
    jobs: Option<std_mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Lets the media thread start on its jobs (see [`Driver::ready`]).
    go: Option<std_mpsc::Sender<()>>,
}

impl Driver {
    /// Starts everything. `handle` runs on the media thread for every job, in order.
    pub fn start(
        machine: Machine,
        client: ClientConfig,
        settings: &CommonSettings,
        base_ice: IceConfig,
        name: &str,
        handle: impl FnMut(Job) + Send + 'static,
    ) -> std::io::Result<Self> {
        let d = Self::start_held(machine, client, settings, base_ice, name, handle)?;
        d.ready();
        Ok(d)
    }

    /// As [`Driver::start`], but `handle` waits for [`Driver::ready`] (or the driver's end):
    /// for an element whose handlers look the driver up in its state, which it can store only
    /// once this returns.
    pub fn start_held(
        machine: Machine,
        client: ClientConfig,
        settings: &CommonSettings,
        base_ice: IceConfig,
        name: &str,
        mut handle: impl FnMut(Job) + Send + 'static,
    ) -> std::io::Result<Self> {
        let rt = crate::runtime::handle();
        let (jobs, rx) = std_mpsc::channel::<Job>();
        // The signaling starts at once, and a viewer's request can come back within
        // milliseconds: the media thread waits until the element holds this driver (its
        // handlers look it up), or until it is dropped.
        let (go, wait) = std_mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-media"))
            .spawn(move || {
                let _ = wait.recv();
                while let Ok(job) = rx.recv() {
                    handle(job);
                }
            })?;

        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Output>();
        let fwd = jobs.clone();
        rt.spawn(async move {
            while let Some(o) = out_rx.recv().await {
                if fwd.send(Job::Output(o)).is_err() {
                    break;
                }
            }
        });

        if settings.wants_auto_turn() {
            let fwd = jobs.clone();
            rt.spawn(async move {
                let (list, _source, err) = turn_list(DEFAULT_TURN_LIST_URL, FETCH_TIMEOUT).await;
                let chosen = select_turn(&list, local_timezone_minutes_west());
                let mut ice = base_ice;
                ice.turn = chosen.into_iter().map(|e| e.server).collect();
                let _ = fwd.send(Job::IceConfig(ice, err));
            });
        }

        let session = Session::spawn(&rt, machine, client, out_tx);
        Ok(Self {
            session: Some(session),
            jobs: Some(jobs),
            thread: Some(thread),
            go: Some(go),
        })
    }

    /// The element holds the driver now: its media thread may run the jobs that came meanwhile
    /// (before, a viewer's request that came first found no driver and was refused).
    pub fn ready(&self) {
        if let Some(go) = &self.go {
            let _ = go.send(());
        }
    }

    /// Feeds the state machine. Never blocks.
    pub fn input(&self, input: Input) {
        if let Some(s) = &self.session {
            s.input(input);
        }
    }

    /// A sender for inputs (webrtcbin callbacks keep one).
    pub fn sender(&self) -> Option<mpsc::UnboundedSender<Input>> {
        self.session.as_ref().map(Session::sender)
    }

    /// Queues work for the media thread.
    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        if let Some(j) = &self.jobs {
            let _ = j.send(Job::Run(Box::new(f)));
        }
    }

    /// A handle that queues work for the media thread from anywhere (streaming threads too).
    pub fn runner(&self) -> Option<Runner> {
        self.jobs.clone().map(Runner)
    }

    /// Says goodbye to every peer and stops; waits at most `timeout` for the media thread.
    pub fn stop(mut self, timeout: Duration) {
        if let Some(s) = self.session.take() {
            s.shutdown();
        }
        self.jobs = None;
        self.go = None;
        if let Some(t) = self.thread.take() {
            let deadline = Instant::now() + timeout;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Runs `f` on `obj`'s media thread every `period`, from the shared runtime, as long as `obj`
/// lives and `runner_of` gives its media thread (its driver runs); the task ends then by itself.
pub fn every<E>(
    obj: &E,
    period: Duration,
    runner_of: impl Fn(&E) -> Option<Runner> + Send + 'static,
    f: impl Fn(&E) + Send + Sync + Clone + 'static,
) -> tokio::task::JoinHandle<()>
where
    E: gst::glib::object::ObjectType + Send + Sync,
{
    use gst::glib::object::ObjectExt;
    let weak = obj.downgrade();
    crate::runtime::handle().spawn(async move {
        let mut every = tokio::time::interval(period);
        loop {
            every.tick().await;
            let Some(obj) = weak.upgrade() else { return };
            let Some(runner) = runner_of(&obj) else {
                return;
            };
            let (w, f) = (obj.downgrade(), f.clone());
            runner.run(move || {
                if let Some(obj) = w.upgrade() {
                    f(&obj);
                }
            });
        }
    })
}

/// Runs `f` once on `obj`'s media thread after `delay`, if `obj` still lives and `runner_of`
/// still gives its media thread then.
pub fn after<E>(
    obj: &E,
    delay: Duration,
    runner_of: impl Fn(&E) -> Option<Runner> + Send + 'static,
    f: impl FnOnce(&E) + Send + 'static,
) where
    E: gst::glib::object::ObjectType + Send + Sync,
{
    use gst::glib::object::ObjectExt;
    let weak = obj.downgrade();
    crate::runtime::handle().spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(obj) = weak.upgrade() else { return };
        let Some(runner) = runner_of(&obj) else {
            return;
        };
        let w = obj.downgrade();
        runner.run(move || {
            if let Some(obj) = w.upgrade() {
                f(&obj);
            }
        });
    });
}
