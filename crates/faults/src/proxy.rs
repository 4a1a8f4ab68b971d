//! One proxy: a listener, one upstream connection per accepted client, and a link per
//! direction that runs the proxy's current toxics on the data.
//!
//! The toxics live in a `watch` channel: every link reads the current list whenever it changes
//! (even in the middle of a delay), so adding or removing a toxic acts on open connections as
//! well as new ones. Toxiproxy rebuilds chains of goroutines instead; what a client sees is the
//! same.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::toxic::{Item, Kind, OnLink, Rng, Step, Stream, Toxic};

/// A proxy to create: Toxiproxy's `POST /proxies` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySpec {
    /// Unique name of the proxy.
    pub name: String,
    /// Address to listen on, `host:port`; port 0 picks a free port.
    pub listen: String,
    /// Address of the service behind the proxy, `host:port`.
    pub upstream: String,
    /// Whether the proxy listens once created.
    pub enabled: bool,
}

/// A proxy as Toxiproxy reports it: its fields (the actual listen address once it has
/// listened) and its toxics, upstream ones first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyState {
    /// Unique name of the proxy.
    pub name: String,
    /// The address it listens on (or will, when enabled).
    pub listen: String,
    /// Address of the service behind the proxy.
    pub upstream: String,
    /// Whether it is listening.
    pub enabled: bool,
    /// Its toxics, upstream ones first, each in the order it was added.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub toxics: Vec<Toxic>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Toxic>, D::Error> {
    Ok(Option::<Vec<Toxic>>::deserialize(d)?.unwrap_or_default())
}

/// A toxic on a proxy: what the API shows, what the links run, and identity for the links.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) toxic: Toxic,
    pub(crate) kind: Kind,
    /// Stable for the toxic's life on the proxy.
    id: u64,
    /// Bumped by every update, so links roll its toxicity again.
    version: u64,
}

type Toxics = Arc<Vec<Entry>>;

/// A proxy, enabled (listening) or not.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) name: String,
    pub(crate) listen: String,
    pub(crate) upstream: String,
    toxics: watch::Sender<Toxics>,
    next_id: u64,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its `JoinSet`, which aborts every connection.
        if let Some(running) = self.running.take() {
            running.task.abort();
        }
    }
}

/// Toxiproxy's addresses as a Rust resolver takes them: Go listens on every interface for an
/// empty host (`:8080`, or nothing at all).
pub(crate) fn bindable(listen: &str) -> String {
    if listen.is_empty() {
        "[::]:0".to_owned()
    } else if listen.starts_with(':') {
        format!("[::]{listen}")
    } else {
        listen.to_owned()
    }
}

impl Proxy {
    /// A disabled proxy with no toxics.
    pub(crate) fn new(name: String, listen: String, upstream: String) -> Proxy {
        Proxy {
            name,
            listen,
            upstream,
            toxics: watch::Sender::new(Arc::new(Vec::new())),
            next_id: 0,
            running: None,
        }
    }

    /// Whether it is listening.
    pub(crate) fn enabled(&self) -> bool {
        self.running.is_some()
    }

    /// Listens on `listen` (recording the actual address) and starts accepting. The error
    /// reads as Go's (`listen tcp <addr>: <cause>`).
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        // A proxy enabled again listens on the port it had; while it was disabled that port may
        // have been in use a moment (it lies in the ephemeral range: another connection's source
        // port). Asked again for up to 2 s before the error.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(bindable(&self.listen)).await {
                Ok(listener) => break listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 40 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(format!("listen tcp {}: {e}", self.listen)),
            }
        };
        self.listen =
            listener.local_addr().map_err(|e| format!("listen tcp {}: {e}", self.listen))?.to_string();
        let (stop, stopped) = oneshot::channel();
        let task =
            tokio::spawn(accept_loop(listener, self.upstream.clone(), self.toxics.subscribe(), stopped));
        self.running = Some(Running { stop, task });
        Ok(())
    }

    /// Stops listening and closes every connection; returns once all are closed.
    pub(crate) async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.stop.send(());
            let _ = running.task.await;
        }
    }

    /// The proxy as the API shows it.
    pub(crate) fn state(&self) -> ProxyState {
        ProxyState {
            name: self.name.clone(),
            listen: self.listen.clone(),
            upstream: self.upstream.clone(),
            enabled: self.enabled(),
            toxics: self.toxics(),
        }
    }

    /// Its toxics, upstream ones first (Toxiproxy's order).
    pub(crate) fn toxics(&self) -> Vec<Toxic> {
        let toxics = self.toxics.borrow();
        [Stream::Upstream, Stream::Downstream]
            .iter()
            .flat_map(|s| toxics.iter().filter(move |e| e.toxic.stream == *s).map(|e| e.toxic.clone()))
            .collect()
    }

    /// The toxic named `name`.
    pub(crate) fn toxic(&self, name: &str) -> Option<Entry> {
        self.toxics.borrow().iter().find(|e| e.toxic.name == name).cloned()
    }

    /// Adds a toxic (its name checked free by the caller); open connections take it at once.
    pub(crate) fn add_toxic(&mut self, toxic: Toxic, kind: Kind) {
        let id = self.next_id;
        self.next_id += 1;
        self.toxics.send_modify(|list| Arc::make_mut(list).push(Entry { toxic, kind, id, version: 0 }));
    }

    /// Replaces a toxic's toxicity and attributes; `false` if there is no such toxic.
    pub(crate) fn update_toxic(&mut self, name: &str, toxicity: f32, kind: Kind) -> bool {
        self.toxics.send_if_modified(|list| {
            let Some(entry) = Arc::make_mut(list).iter_mut().find(|e| e.toxic.name == name) else {
                return false;
            };
            entry.kind = kind;
            entry.toxic.toxicity = toxicity;
            entry.toxic.attributes = kind.attributes();
            entry.version += 1;
            true
        })
    }

    /// Removes a toxic; `false` if there is no such toxic.
    pub(crate) fn remove_toxic(&mut self, name: &str) -> bool {
        self.toxics.send_if_modified(|list| {
            let before = list.len();
            Arc::make_mut(list).retain(|e| e.toxic.name != name);
            list.len() != before
        })
    }

    /// Removes every toxic.
    pub(crate) fn clear_toxics(&mut self) {
        self.toxics.send_if_modified(|list| {
            let had = !list.is_empty();
            *list = Arc::new(Vec::new());
            had
        });
    }
}

/// Accepts until stopped, then closes the listener and every connection.
async fn accept_loop(
    listener: TcpListener,
    upstream: String,
    toxics: watch::Receiver<Toxics>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    connections.spawn(connection(client, upstream.clone(), toxics.clone()));
                }
                // Reset before it was accepted, or no descriptor left: back off so the loop
                // cannot spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Close,
    Reset,
}

/// One client: dials the upstream (closing the client if it cannot), then runs both
/// directions until either ends. Like Toxiproxy, an end in one direction (a close, a toxic's
/// close or reset) closes both sockets: there is no half-close.
async fn connection(mut client: TcpStream, upstream: String, toxics: watch::Receiver<Toxics>) {
    let Ok(mut server) = TcpStream::connect(upstream.as_str()).await else { return };
    // Go's sockets have Nagle off; so do ours, or small writes would wait for acks.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        tokio::select! {
            end = pump(client_read, server_write, toxics.clone(), Stream::Upstream) => end,
            end = pump(server_read, client_write, toxics, Stream::Downstream) => end,
        }
    };
    if end == End::Reset {
        // SO_LINGER 0: the close that follows sends RST and drops unsent data.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
}

/// Chunks read but not yet through the toxics; like Toxiproxy's buffered channels, reading
/// goes on while a toxic holds data back (latency is from when data was read).
const BUFFERED_CHUNKS: usize = 1024;

/// One direction: a reader feeding chunks, and the link running them through the toxics.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    toxics: watch::Receiver<Toxics>,
    stream: Stream,
) -> End {
    let (sender, mut chunks) = mpsc::channel(BUFFERED_CHUNKS);
    let reader = async move {
        let mut buffer = vec![0; 32 * 1024];
        loop {
            match from.read(&mut buffer).await {
                Ok(0) | Err(_) => {
                    let _ = sender.send(Item::End).await;
                    break;
                }
                Ok(n) => {
                    if sender.send(Item::Data(Instant::now(), buffer[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
        std::future::pending::<()>().await;
    };
    let mut link = Link::new(stream, toxics);
    tokio::select! {
        end = link.run(&mut chunks, &mut to) => end,
        () = reader => End::Close,
    }
}

/// The toxics of one direction of one connection, with their per-link state.
struct Link {
    stream: Stream,
    toxics: watch::Receiver<Toxics>,
    /// This direction's toxics, in order: (id, kind).
    chain: Vec<(u64, Kind)>,
    states: HashMap<u64, (u64, OnLink)>,
    rng: Rng,
}

/// What a wait ended on.
enum Woken {
    Elapsed,
    Changed,
    End(End),
}

impl Link {
    fn new(stream: Stream, toxics: watch::Receiver<Toxics>) -> Link {
        let mut link = Link { stream, toxics, chain: Vec::new(), states: HashMap::new(), rng: Rng::new() };
        link.sync();
        link
    }

    /// Takes the current toxic list; `Some(Close)` if a `timeout` toxic of this direction was
    /// removed (Toxiproxy closes the connections it held: the data it dropped is gone).
    fn sync(&mut self) -> Option<End> {
        let toxics = Arc::clone(&self.toxics.borrow_and_update());
        let chain: Vec<(u64, Kind)> =
            toxics.iter().filter(|e| e.toxic.stream == self.stream).map(|e| (e.id, e.kind)).collect();
        let timeout_removed = self.chain.iter().any(|(id, kind)| {
            matches!(kind, Kind::Timeout { .. }) && !chain.iter().any(|(other, _)| other == id)
        });
        for entry in toxics.iter().filter(|e| e.toxic.stream == self.stream) {
            match self.states.get_mut(&entry.id) {
                Some((version, state)) if *version != entry.version => {
                    state.restart(entry.toxic.toxicity, &mut self.rng);
                    *version = entry.version;
                }
                Some(_) => {}
                None => {
                    let state = OnLink::new(entry.toxic.toxicity, &mut self.rng);
                    self.states.insert(entry.id, (entry.version, state));
                }
            }
        }
        self.states.retain(|id, _| chain.iter().any(|(other, _)| other == id));
        self.chain = chain;
        timeout_removed.then_some(End::Close)
    }

    /// The earliest instant a `timeout` toxic closes this link.
    fn deadline(&self) -> Option<Instant> {
        self.chain.iter().filter_map(|(id, kind)| kind.deadline(&self.states.get(id)?.1)).min()
    }

    /// Waits until `until` (or forever), waking early on a toxic change or a timeout.
    async fn wait(&mut self, until: Option<Instant>) -> Woken {
        let deadline = self.deadline();
        tokio::select! {
            () = sleep_until(until) => Woken::Elapsed,
            () = sleep_until(deadline) => Woken::End(End::Close),
            changed = self.toxics.changed() => match changed {
                Ok(()) => match self.sync() {
                    Some(end) => Woken::End(end),
                    None => Woken::Changed,
                },
                // The proxy is gone.
                Err(_) => Woken::End(End::Close),
            },
        }
    }

    async fn run(&mut self, chunks: &mut mpsc::Receiver<Item>, to: &mut WriteHalf<'_>) -> End {
        loop {
            let deadline = self.deadline();
            let item = tokio::select! {
                item = chunks.recv() => item.unwrap_or(Item::End),
                () = sleep_until(deadline) => return End::Close,
                changed = self.toxics.changed() => {
                    if changed.is_err() {
                        return End::Close;
                    }
                    if let Some(end) = self.sync() {
                        return end;
                    }
                    continue;
                }
            };
            if let Some(end) = self.deliver(item, to).await {
                return end;
            }
        }
    }

    /// Runs one item through the chain as it stood when the item arrived. A toxic removed
    /// meanwhile stops holding data back (its waits are skipped), as Toxiproxy flushes an
    /// interrupted toxic's data on.
    async fn deliver(&mut self, item: Item, to: &mut WriteHalf<'_>) -> Option<End> {
        let chain = self.chain.clone();
        let mut frames: Vec<(usize, u64, VecDeque<Step>)> = Vec::new();
        let mut next = Some((0, item));
        loop {
            if let Some((stage, item)) = next.take() {
                let Some(&(id, kind)) = chain.get(stage) else {
                    match item {
                        Item::Data(_, data) => {
                            if to.write_all(&data).await.is_err() {
                                return Some(End::Close);
                            }
                        }
                        Item::End => return Some(End::Close),
                    }
                    continue;
                };
                let steps = match self.states.get_mut(&id) {
                    Some((_, state)) if state.active => kind.apply(state, item, &mut self.rng),
                    _ => vec![Step::Emit(item)],
                };
                frames.push((stage, id, steps.into()));
                continue;
            }
            let (stage, id, steps) = frames.last_mut()?;
            let (stage, id) = (*stage, *id);
            let Some(step) = steps.pop_front() else {
                frames.pop();
                continue;
            };
            let until = match step {
                Step::Emit(item) => {
                    next = Some((stage + 1, item));
                    continue;
                }
                Step::Close => return Some(End::Close),
                Step::Reset => return Some(End::Reset),
                Step::Sleep(duration) => Instant::now() + duration,
                Step::SleepUntil(instant) => instant,
            };
            loop {
                if !self.states.contains_key(&id) {
                    break;
                }
                match self.wait(Some(until)).await {
                    Woken::Elapsed => break,
                    Woken::Changed => {
                        // Toxics removed meanwhile hold nothing back any more.
                        for (_, frame_id, steps) in &mut frames {
                            if !self.states.contains_key(frame_id) {
                                steps.retain(|s| !matches!(s, Step::Sleep(_) | Step::SleepUntil(_)));
                            }
                        }
                    }
                    Woken::End(end) => return Some(end),
                }
            }
        }
    }
}

async fn sleep_until(until: Option<Instant>) {
    match until {
        Some(until) => tokio::time::sleep_until(until).await,
        None => std::future::pending().await,
    }
}
