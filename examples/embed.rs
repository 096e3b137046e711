//! A secondary inside another program: start secondary53 from a TOML file
//! on this program's tokio runtime, print every zone update, stop.
//!
//!     cargo run --example embed -- conf/demo.toml [UPDATES]
//!
//! With UPDATES, it stops after that many zone updates; otherwise on Ctrl-C.

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "conf/demo.toml".into());
    let wanted: Option<usize> = args.next().map(|n| n.parse()).transpose()?;
    let server = secondary53::Server::from_toml(&std::fs::read_to_string(&path)?)?;
    // Subscribe before starting, so the first transfer is not missed.
    let mut events = server.subscribe();
    let handle = server.start().await?;
    let mut seen = 0;
    while wanted.is_none_or(|w| seen < w) {
        tokio::select! {
            e = events.recv() => {
                let u = e?;
                println!("update: {} serial {} by {}", u.zone, u.serial, u.kind);
                seen += 1;
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    for (zone, status) in handle.zones() {
        println!(
            "status: {zone} serial {:?} {}",
            status.serial,
            status.state.as_str()
        );
    }
    handle.stop().await?;
    Ok(())
}
