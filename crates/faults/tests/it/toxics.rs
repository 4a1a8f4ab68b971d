//! Proxies and toxics as a TCP client sees them, through the embedded server.

use std::io::ErrorKind;
use std::time::Duration;

use faults::{Stream, Toxic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::rig::{Rig, greeting_server, read_to_end, round_trip, within};

#[tokio::test]
async fn proxy_on_port_zero_reports_its_port_and_forwards_both_ways() {
    within(async {
        let rig = Rig::echo().await;
        assert!(rig.proxy.enabled);
        let port = rig.proxy.listen.rsplit(':').next().unwrap();
        assert_ne!(port, "0", "listen reported as {}", rig.proxy.listen);
        let mut a = rig.connect().await;
        let mut b = rig.connect().await;
        round_trip(&mut a, b"hello").await;
        round_trip(&mut b, &vec![7; 100_000]).await;
        round_trip(&mut a, b"again").await;
        rig.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn latency_delays_each_direction_by_at_least_its_latency() {
    within(async {
        let rig = Rig::echo().await;
        let mut stream = rig.connect().await;
        round_trip(&mut stream, b"warm").await;
        // Added while the connection is open: it takes effect on it.
        rig.client.add_toxic("echo", &Toxic::latency("down", 150, 0)).await.unwrap();
        let down = round_trip(&mut stream, b"ping").await;
        assert!(down >= Duration::from_millis(150), "downstream latency took {down:?}");
        rig.client.add_toxic("echo", &Toxic::latency("up", 150, 0).on(Stream::Upstream)).await.unwrap();
        let both = round_trip(&mut stream, b"ping").await;
        assert!(both >= Duration::from_millis(300), "both ways took {both:?}");
        rig.client.remove_toxic("echo", "down").await.unwrap();
        let up = round_trip(&mut stream, b"ping").await;
        assert!(up >= Duration::from_millis(150), "upstream latency took {up:?}");
        rig.server.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn removing_latency_frees_data_held_on_an_open_connection() {
    within(async {
        let rig = Rig::echo().await;
        let mut stream = rig.connect().await;
        rig.client.add_toxic("echo", &Toxic::latency("slow", 60_000, 0)).await.unwrap();
        stream.write_all(b"held").await.unwrap();
        let mut back = [0; 4];
        let held = tokio::time::timeout(Duration::from_millis(200), stream.read_exact(&mut back)).await;
        assert!(held.is_err(), "data came back through a 60 s latency");
        rig.client.remove_toxic("echo", "slow").await.unwrap();
        // A 60 s latency still in force would trip `within`'s bound.
        stream.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"held");
    })
    .await;
}

#[tokio::test]
async fn zero_toxicity_never_applies_a_toxic() {
    within(async {
        let rig = Rig::echo().await;
        rig.client.add_toxic("echo", &Toxic::timeout("never", 0).with_toxicity(0.0)).await.unwrap();
        let mut stream = rig.connect().await;
        round_trip(&mut stream, b"flows").await;
    })
    .await;
}

/// Toxiproxy's `timeout` 0 swallows data until removed; its removal closes the connections it
/// held (its cleanup closes the link: the swallowed bytes are gone for good), and new
/// connections flow again.
#[tokio::test]
async fn timeout_zero_blackholes_until_removed_which_closes_the_held_connection() {
    within(async {
        let rig = Rig::echo().await;
        let mut stream = rig.connect().await;
        round_trip(&mut stream, b"before").await;
        rig.client.add_toxic("echo", &Toxic::timeout("hole", 0)).await.unwrap();
        stream.write_all(b"lost").await.unwrap();
        let mut buffer = [0; 16];
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buffer)).await;
        assert!(read.is_err(), "a read through the blackhole returned {read:?}");
        rig.client.remove_toxic("echo", "hole").await.unwrap();
        let (rest, _) = read_to_end(&mut stream).await;
        assert!(rest.is_empty(), "the swallowed bytes came back: {rest:?}");
        let mut fresh = rig.connect().await;
        round_trip(&mut fresh, b"after").await;
    })
    .await;
}

#[tokio::test]
async fn timeout_closes_the_connection_after_its_timeout() {
    within(async {
        let rig = Rig::echo().await;
        rig.client.add_toxic("echo", &Toxic::timeout("close", 200)).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut stream = rig.connect().await;
        stream.write_all(b"lost").await.unwrap();
        let (data, _) = read_to_end(&mut stream).await;
        assert!(data.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(200), "closed after {:?}", start.elapsed());
    })
    .await;
}

#[tokio::test]
async fn reset_peer_resets_the_client_connection() {
    within(async {
        let rig = Rig::echo().await;
        rig.client.add_toxic("echo", &Toxic::reset_peer("rst", 50)).await.unwrap();
        let mut stream = rig.connect().await;
        stream.write_all(b"x").await.unwrap();
        let (data, end) = read_to_end(&mut stream).await;
        assert!(data.is_empty());
        let error = end.expect_err("the connection closed cleanly instead of being reset");
        assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    })
    .await;
}

#[tokio::test]
async fn disabled_proxy_refuses_and_closes_and_enabled_listens_on_the_same_port() {
    within(async {
        let rig = Rig::echo().await;
        let mut open = rig.connect().await;
        round_trip(&mut open, b"up").await;
        let disabled = rig.client.set_enabled("echo", false).await.unwrap();
        assert!(!disabled.enabled);
        let (data, _) = read_to_end(&mut open).await;
        assert!(data.is_empty());
        let refused = TcpStream::connect(&rig.proxy.listen).await;
        assert_eq!(refused.map(drop).unwrap_err().kind(), ErrorKind::ConnectionRefused);
        let enabled = rig.client.set_enabled("echo", true).await.unwrap();
        assert_eq!(enabled.listen, rig.proxy.listen);
        let mut again = rig.connect().await;
        round_trip(&mut again, b"back").await;
    })
    .await;
}

#[tokio::test]
async fn bandwidth_limits_throughput() {
    within(async {
        let rig = Rig::echo().await;
        // 100 KB/s downstream: 50 KB need at least 0.5 s.
        rig.client.add_toxic("echo", &Toxic::bandwidth("narrow", 100)).await.unwrap();
        let mut stream = rig.connect().await;
        let took = round_trip(&mut stream, &vec![1; 50_000]).await;
        assert!(took >= Duration::from_millis(450), "50 KB at 100 KB/s took {took:?}");
    })
    .await;
}

#[tokio::test]
async fn slicer_delivers_every_byte_in_order() {
    within(async {
        let rig = Rig::echo().await;
        rig.client.add_toxic("echo", &Toxic::slicer("slices", 10, 5, 10)).await.unwrap();
        rig.client
            .add_toxic("echo", &Toxic::slicer("slices_up", 100, 50, 0).on(Stream::Upstream))
            .await
            .unwrap();
        let mut stream = rig.connect().await;
        let message: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        round_trip(&mut stream, &message).await;
    })
    .await;
}

#[tokio::test]
async fn limit_data_closes_after_its_bytes() {
    within(async {
        let rig = Rig::echo().await;
        rig.client.add_toxic("echo", &Toxic::limit_data("cap", 100)).await.unwrap();
        let mut stream = rig.connect().await;
        stream.write_all(&[9; 300]).await.unwrap();
        let (data, _) = read_to_end(&mut stream).await;
        assert_eq!(data, vec![9; 100]);
    })
    .await;
}

#[tokio::test]
async fn slow_close_holds_the_close_back() {
    within(async {
        let rig = Rig::new("greeter", greeting_server(b"bye").await).await;
        rig.client.add_toxic("greeter", &Toxic::slow_close("late", 300)).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut stream = rig.connect().await;
        let (data, _) = read_to_end(&mut stream).await;
        assert_eq!(data, b"bye");
        assert!(start.elapsed() >= Duration::from_millis(300), "closed after {:?}", start.elapsed());
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_proxied_connections_and_listeners() {
    within(async {
        let rig = Rig::echo().await;
        let mut open = rig.connect().await;
        round_trip(&mut open, b"up").await;
        let listen = rig.proxy.listen.clone();
        let api = rig.server.api_addr();
        rig.server.shutdown().await;
        let (data, _) = read_to_end(&mut open).await;
        assert!(data.is_empty());
        assert_eq!(
            TcpStream::connect(&listen).await.map(drop).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        assert_eq!(TcpStream::connect(api).await.map(drop).unwrap_err().kind(), ErrorKind::ConnectionRefused);
    })
    .await;
}
