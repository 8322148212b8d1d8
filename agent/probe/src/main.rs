//! `agent-probe [PORT]`: exits 0 when the Secrets Manager Agent on 127.0.0.1:PORT (default 2773)
//! answers `GET /ping` with `200` and `healthy` within 2 s, else 1. The agent's image has no shell
//! and no curl, so an ECS health check needs a binary of its own; /ping needs no SSRF token.
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

fn probe(port: u16) -> Result<bool, std::io::Error> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.starts_with("HTTP/1.1 200") && response.ends_with("healthy"))
}

fn main() -> ExitCode {
    let port = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(2773);
    match probe(port) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("agent-probe: 127.0.0.1:{port}/ping did not answer 200 healthy");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("agent-probe: 127.0.0.1:{port}: {error}");
            ExitCode::FAILURE
        }
    }
}
