//! The client against the embedded server: every call, and errors that name the URL and carry
//! Toxiproxy's text.

use faults::{ClientError, ProxySpec, Stream, Toxic, Toxiproxy, is_not_found};

use crate::rig::{Rig, echo_server, round_trip, within};

#[tokio::test]
async fn client_round_trips_every_call() {
    within(async {
        let rig = Rig::echo().await;
        let client = &rig.client;
        assert_eq!(client.version().await.unwrap(), faults::VERSION);
        let proxies = client.proxies().await.unwrap();
        assert_eq!(proxies.keys().collect::<Vec<_>>(), ["echo"]);
        assert_eq!(proxies["echo"], rig.proxy);

        let added =
            client.add_toxic("echo", &Toxic::latency("lag", 10, 2).on(Stream::Upstream)).await.unwrap();
        assert_eq!(added, Toxic::latency("lag", 10, 2).on(Stream::Upstream));
        let shown = client.proxy("echo").await.unwrap();
        assert_eq!(shown.toxics, std::slice::from_ref(&added));
        assert_eq!(client.toxics("echo").await.unwrap(), [added]);
        client.remove_toxic("echo", "lag").await.unwrap();
        assert!(client.proxy("echo").await.unwrap().toxics.is_empty());

        assert!(!client.set_enabled("echo", false).await.unwrap().enabled);
        client.add_toxic("echo", &Toxic::bandwidth("bw", 1)).await.unwrap();
        client.reset().await.unwrap();
        let reset = client.proxy("echo").await.unwrap();
        assert!(reset.enabled && reset.toxics.is_empty());
        let mut stream = rig.connect().await;
        round_trip(&mut stream, b"still there").await;

        client.delete_proxy("echo").await.unwrap();
        assert!(client.proxies().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn client_errors_name_the_url_and_carry_toxiproxys_text() {
    within(async {
        let rig = Rig::echo().await;
        let spec = ProxySpec {
            name: "echo".into(),
            listen: "127.0.0.1:0".into(),
            upstream: echo_server().await.to_string(),
            enabled: true,
        };
        let error = rig.client.create_proxy(&spec).await.unwrap_err();
        match &error {
            ClientError::Api { url, status, message } => {
                assert_eq!(
                    (url.as_str(), *status, message.as_str()),
                    (format!("{}/proxies", rig.server.api_url()).as_str(), 409, "proxy already exists")
                );
            }
            other => panic!("not an API error: {other:?}"),
        }
        assert!(error.to_string().contains(&rig.server.api_url()), "{error}");
        let missing = rig.client.remove_toxic("echo", "nope").await.unwrap_err();
        assert!(is_not_found(&missing), "{missing}");
        assert!(missing.to_string().contains("toxic not found"), "{missing}");

        // Nothing listens where the API was once it is shut down.
        let url = rig.server.api_url();
        rig.server.shutdown().await;
        let error = Toxiproxy::new(url.clone()).proxies().await.unwrap_err();
        assert!(matches!(error, ClientError::Unreachable { .. }), "{error:?}");
        assert!(error.to_string().contains(&url), "{error}");
    })
    .await;
}
