//! A throwaway `redis-server` on a free loopback port, for the Redis store's tests.
//!
//! [`RedisServer::start`] returns `None` (after printing why) when `redis-server` is not
//! installed, so the tests skip on a developer machine without it; with
//! `SWITCHBOARD_REQUIRE_REDIS=1` (set by CI) a missing server fails the test instead.
//! The process runs without persistence and is killed when the handle is dropped.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` that this test started; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it accepts
    /// connections; `None` when it is not installed and not required.
    ///
    /// # Panics
    /// When `redis-server` is missing and `SWITCHBOARD_REQUIRE_REDIS=1`, or when it does not
    /// start listening within ten seconds.
    pub fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            let required = std::env::var("SWITCHBOARD_REQUIRE_REDIS").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "redis-server is not installed and SWITCHBOARD_REQUIRE_REDIS=1; install it (apt-get install redis-server)"
            );
            // Written to the real stderr, past the test harness's capture, so the skip shows.
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: redis-server is not installed (SWITCHBOARD_REQUIRE_REDIS=1 makes this a failure)"
            );
            return None;
        }
        let port = free_port();
        let mut server = RedisServer { child: None, port };
        server.restart();
        Some(server)
    }

    /// Returns the port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Returns `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (its data is lost); [`RedisServer::restart`] brings up an empty one
    /// on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, if it is not running.
    ///
    /// # Panics
    /// When it does not start listening within ten seconds.
    pub fn restart(&mut self) {
        if self.child.is_some() {
            return;
        }
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed but could not be started");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {addr} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
    listener.local_addr().expect("local address").port()
}
