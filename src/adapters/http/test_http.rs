//! A loopback HTTP server for unit tests of the code that makes requests.
//!
//! Compiled only for unit tests (`#[cfg(test)] mod test_http;` in adapters/http/mod.rs): an
//! `unwrap` here that fails is a test that fails, which is what a test wants.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves every request on 127.0.0.1 with `status` and a body of `size` bytes; returns the port.
pub async fn serve(status: &'static str, size: usize) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let head = format!("HTTP/1.1 {status}\r\ncontent-length: {size}\r\n\r\n");
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&vec![b'x'; size]).await;
            });
        }
    });
    port
}
