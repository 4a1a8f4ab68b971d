//! What the tests share: an echo server, a started API with one proxy, and time bounds.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use faults::{ProxyServer, ProxySpec, ProxyState, RunningProxyServer, Toxiproxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Runs a test body, failing it if it takes longer than 8 s.
pub async fn within<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(8), body).await.expect("test took longer than 8 s")
}

/// A TCP server on 127.0.0.1 that echoes every byte of every connection back.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// A TCP server on 127.0.0.1 that writes `greeting` to each connection and closes it.
pub async fn greeting_server(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream.write_all(greeting).await;
        }
    });
    addr
}

/// A started API server, its client and a proxy named `name` in front of `upstream`.
pub struct Rig {
    pub server: RunningProxyServer,
    pub client: Toxiproxy,
    pub proxy: ProxyState,
}

impl Rig {
    pub async fn new(name: &str, upstream: SocketAddr) -> Rig {
        let server = ProxyServer::start("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = Toxiproxy::new(server.api_url());
        let spec = ProxySpec {
            name: name.to_owned(),
            listen: "127.0.0.1:0".to_owned(),
            upstream: upstream.to_string(),
            enabled: true,
        };
        let proxy = client.create_proxy(&spec).await.unwrap();
        Rig { server, client, proxy }
    }

    /// An echo server behind a proxy named `echo`.
    pub async fn echo() -> Rig {
        Rig::new("echo", echo_server().await).await
    }

    /// A new connection through the proxy.
    pub async fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.proxy.listen).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }
}

/// Writes `message` and reads as many bytes back; the time it took.
pub async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Duration {
    let start = tokio::time::Instant::now();
    stream.write_all(message).await.unwrap();
    let mut back = vec![0; message.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, message);
    start.elapsed()
}

/// Reads until the peer closes; what was read, and how the read ended.
pub async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, std::io::Result<()>) {
    let mut out = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buffer[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}
