//! Runs the local fake of the WeChat and Baidu send APIs behind `kefu fake-platform` (the sender
//! tests' fake) until told to stop, optionally reachable on a chosen port through a local TCP
//! forwarder.
//!
//! Not the fake's routes (`testkit::fake_platform`), and not the command line
//! (`commands::fake_platform`).

use std::net::SocketAddr;

use testkit::fake_platform::FakePlatform;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::Error;

/// Runs the fake until `stop` resolves. With `port`, it is served on `127.0.0.1:port` (forwarded
/// to the fake's own free port); `ready` is called with the base URL once it accepts connections.
pub async fn run(
    port: Option<u16>,
    ready: impl FnOnce(&str),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), Error> {
    let fake = FakePlatform::start().await?;
    let Some(port) = port else {
        ready(&fake.base_url());
        stop.await;
        fake.shutdown();
        return Ok(());
    };
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot bind 127.0.0.1:{port}: {e}"))?;
    ready(&format!("http://{}", listener.local_addr()?));
    let target = fake.addr();
    let mut stop = std::pin::pin!(stop);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut stop => break,
            a = listener.accept() => a,
        };
        if let Ok((stream, _)) = accepted {
            connections.spawn(forward(stream, target));
        }
    }
    connections.abort_all();
    fake.shutdown();
    Ok(())
}

async fn forward(mut client: TcpStream, target: SocketAddr) {
    if let Ok(mut upstream) = TcpStream::connect(target).await {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}
