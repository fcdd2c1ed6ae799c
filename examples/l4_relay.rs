//! The floor of any userspace proxy, for benchmarks: accept, connect to the next backend
//! (round-robin), copy bytes both ways. Single-threaded, like Switchyard's default runtime.
//!
//! Usage: cargo run --release --example l4_relay -- LISTEN BACKEND [BACKEND...]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, backends) = match args.split_first() {
        Some((l, b)) if !b.is_empty() => (l.clone(), Arc::new(b.to_vec())),
        _ => {
            eprintln!("usage: l4_relay LISTEN BACKEND [BACKEND...]");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        let next = Arc::new(AtomicUsize::new(0));
        loop {
            let (mut client, _) = listener.accept().await?;
            let backend = backends[next.fetch_add(1, Ordering::Relaxed) % backends.len()].clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                if let Ok(mut server) = tokio::net::TcpStream::connect(&backend).await {
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    })
}
