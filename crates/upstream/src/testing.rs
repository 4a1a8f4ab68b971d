//! A loopback upstream that counts what it sees: a tokio `TcpListener` on 127.0.0.1, port 0,
//! speaking just enough HTTP/1.1 with keep-alive to serve a client, one task per connection.
//!
//! It counts connections accepted, connections open at once (an open connection is one
//! accepted and not yet seen closed, busy or idle), and requests served — the observations
//! [`crate::invariant`] judges.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::invariant::Observed;

/// How the server answers each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer `200` with a small JSON body after holding the request for `delay` (zero: at once).
    Answer { delay: Duration },
    /// Read the request and never answer; the connection stays open until the client gives up.
    Never,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    served: AtomicU64,
}

/// The running server; it stops accepting when dropped.
#[derive(Debug)]
pub struct TestServer {
    url: String,
    counters: Arc<Counters>,
    accept_loop: JoinHandle<()>,
}

impl TestServer {
    /// Starts the server on 127.0.0.1, port 0, on the current tokio runtime.
    pub async fn start(behaviour: Behaviour) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let counters = Arc::new(Counters::default());
        let accept_loop = tokio::spawn(accept(listener, behaviour, Arc::clone(&counters)));
        Ok(Self { url, counters, accept_loop })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn observed(&self) -> Observed {
        Observed {
            connections_opened: self.counters.accepted.load(Ordering::SeqCst),
            peak_open: self.counters.peak_open.load(Ordering::SeqCst),
            requests_served: self.counters.served.load(Ordering::SeqCst),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

async fn accept(listener: TcpListener, behaviour: Behaviour, counters: Arc<Counters>) {
    while let Ok((stream, _)) = listener.accept().await {
        counters.accepted.fetch_add(1, Ordering::SeqCst);
        let open = counters.open.fetch_add(1, Ordering::SeqCst) + 1;
        counters.peak_open.fetch_max(open, Ordering::SeqCst);
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            // Any I/O error ends the connection, as a client hanging up does.
            let _ = serve(stream, behaviour, &counters).await;
            counters.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Serves requests on one connection until the client closes it or asks to.
async fn serve(mut stream: TcpStream, behaviour: Behaviour, counters: &Counters) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let Some(head_end) = read_head(&mut stream, &mut buffer).await? else { return Ok(()) };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        let body_len = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let close = header(&head, "connection").is_some_and(|v| v == "close");
        while buffer.len() < head_end + body_len {
            if stream.read_buf(&mut buffer).await? == 0 {
                return Ok(());
            }
        }
        buffer.drain(..head_end + body_len);
        match behaviour {
            Behaviour::Never => {
                // Hold the connection until the client hangs up.
                while stream.read_buf(&mut buffer).await? != 0 {}
                return Ok(());
            }
            Behaviour::Answer { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let n = counters.served.fetch_add(1, Ordering::SeqCst) + 1;
                let body = format!("{{\"served\":{n}}}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}\r\n{body}",
                    body.len(),
                    if close { "connection: close\r\n" } else { "" },
                );
                stream.write_all(response.as_bytes()).await?;
                if close {
                    return Ok(());
                }
            }
        }
    }
}

/// Reads until `buffer` holds a whole request head; its length including the blank line, or
/// `None` when the client closed the connection between requests.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(at + 4));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}

/// The value of header `name` in a lowercased request head.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim())
    })
}
