//! A real `redis-server` (Debian's package) on a free loopback port, owned by one test and killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts on `port` (used to bring a killed server back on the same address).
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, &[])
    }

    /// Plain on a free port (for the readiness check) and TLS on the returned port, with a certificate for
    /// 127.0.0.1 signed by the private CA `dir/ca.pem` (what clients must trust).
    pub fn start_tls(dir: &std::path::Path) -> (Self, u16) {
        super::tls::make_server_certificate(dir);
        let tls_port = free_port();
        let path = |name: &str| dir.join(name).display().to_string();
        let (cert, key, ca) = (path("cert.pem"), path("key.pem"), path("ca.pem"));
        let tls = [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ];
        (Self::spawn(free_port(), &tls), tls_port)
    }

    fn spawn(port: u16, extra: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs Debian's redis-server)");
        let server = RedisServer { port, child: Some(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers_ping() {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers_ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        stream.write_all(b"PING\r\n").is_ok() && stream.read(&mut buf).map(|n| buf[..n].starts_with(b"+PONG")).unwrap_or(false)
    }

    /// SIGKILL: the server vanishes mid-conversation, as a crashed cache node would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP or SIGCONT: a frozen server keeps its connections open but answers nothing, as an overloaded
    /// or partitioned cache node does; only deadlines get a client past it.
    pub fn freeze(&self, frozen: bool) {
        let child = self.child.as_ref().expect("the server is running");
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill {signal}");
    }

    /// Keys currently stored (a direct look, independent of the service under test).
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("KEYS").arg("*").query(&mut conn).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
