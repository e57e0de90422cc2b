//! The machine's PostgreSQL (127.0.0.1:5432, trust auth, database `test`; started before every session and
//! CI run) as the SQL catalog. Each test gets its own schema, so tests never see each other's tables.

use std::process::Command;

use sqlx::Connection;

pub const SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A catalog URI whose tables live in a new, empty schema.
pub async fn fresh_catalog() -> String {
    let schema = format!("catalog_{}", uuid::Uuid::new_v4().simple());
    let mut connection = sqlx::postgres::PgConnection::connect(SERVER)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {SERVER} (it runs on every machine and in CI): {e}"));
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut connection).await.unwrap();
    format!("{SERVER}?options=-c%20search_path%3D{schema}")
}

/// A second PostgreSQL (Debian's `initdb`/`pg_ctl`) on a free loopback port that accepts TCP connections
/// only over TLS (`hostssl` trust, `hostnossl` reject, as Azure's `require_secure_transport` does), with a
/// certificate for 127.0.0.1 the test issues from its own CA. Stopped on drop.
pub struct TlsPostgres {
    pub port: u16,
    /// The CA that signed the server's certificate (what `sslrootcert` must name).
    pub ca: std::path::PathBuf,
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsPostgres {
    pub fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL server is installed (it runs on every machine)")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|bin| bin.join("initdb").is_file())
            .expect("initdb under /usr/lib/postgresql/*/bin");
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        super::tls::make_server_certificate(&certs);
        let data = dir.path().join("data");
        // initdb refuses to run as root: the server runs as the postgres user, which owns its files.
        let as_root = running_as_root();
        if as_root {
            let owned = Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap();
            assert!(owned.success());
        }
        let run = |program: &std::path::Path, args: &[&str]| {
            let output = as_postgres(program).args(args).output().unwrap();
            assert!(output.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&output.stderr));
        };
        let data_arg = data.display().to_string();
        run(&bin.join("initdb"), &["-D", &data_arg, "-A", "trust", "-U", "postgres", "--no-sync", "--no-instructions"]);
        let key = data.join("server.key");
        for (from, to) in [("cert.pem", "server.crt"), ("key.pem", "server.key")] {
            std::fs::copy(certs.join(from), data.join(to)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        if as_root {
            assert!(Command::new("chown").args(["-R", "postgres"]).arg(dir.path()).status().unwrap().success());
        }
        let port = super::free_port();
        std::fs::write(
            data.join("postgresql.auto.conf"),
            format!(
                "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{data_arg}'\nssl = on\n\
                 ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nfsync = off\nmax_connections = 40\n"
            ),
        )
        .unwrap();
        std::fs::write(data.join("pg_hba.conf"), "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n")
            .unwrap();
        let log = data.join("server.log").display().to_string();
        run(&bin.join("pg_ctl"), &["-D", &data_arg, "-l", &log, "-w", "-t", "60", "start"]);
        Self { port, ca: certs.join("ca.pem"), bin, data, _dir: dir }
    }

    /// A URI for database `postgres` on this server with `params` (e.g. `sslmode=verify-full`).
    pub fn uri(&self, params: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres?{params}", self.port)
    }
}

impl Drop for TlsPostgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = as_postgres(&self.bin.join("pg_ctl")).args(["-D", &data, "-m", "immediate", "stop"]).output();
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// `program` run as the postgres user when the tests run as root (CI), as themselves otherwise.
fn as_postgres(program: &std::path::Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}
