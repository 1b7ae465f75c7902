//! Redis test servers (standalone and Cluster) on free ports.
//!
//! Real `redis-server` processes from `PATH` (Debian/Ubuntu: `apt-get
//! install redis-server redis-tools`), each in its own temporary directory,
//! without persistence, killed on drop. Every wait is bounded and fails with
//! the server's log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a Redis server or Cluster may take to come up.
pub const START_WAIT: Duration = Duration::from_secs(20);

/// One `redis-server` process.
pub struct RedisServer {
    /// The process while it runs.
    child: Option<Child>,
    /// Its port (kept across restarts).
    pub port: u16,
    /// Data directory (and Cluster `nodes.conf`), removed on drop.
    dir: TempDir,
    /// Started as a Cluster node.
    cluster: bool,
}

impl RedisServer {
    /// A standalone server on a free port.
    pub fn start() -> Self {
        Self::spawn(free_port(false), false)
    }

    /// A Cluster-enabled node on a free port (and free bus port, +10000).
    pub fn start_cluster_node() -> Self {
        Self::spawn(free_port(true), true)
    }

    fn spawn(port: u16, cluster: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis");
        let mut server = Self {
            child: None,
            port,
            dir,
            cluster,
        };
        server.launch();
        server
    }

    /// Starts the process (again) on its port, with its data directory.
    pub fn launch(&mut self) {
        self.launch_with(&[]);
    }

    /// Like [`launch`](Self::launch), with more `redis-server` arguments.
    pub fn launch_with(&mut self, extra: &[&str]) {
        let binary = which("redis-server");
        let mut cmd = Command::new(binary);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(extra)
            .arg("--dir")
            .arg(self.dir.path());
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ])
            .args(["--cluster-node-timeout", "2000"]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log_file(self.dir.path()))
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("spawn redis-server"));
        let deadline = Instant::now() + START_WAIT;
        // A server started without a usable default user answers NOAUTH.
        let up =
            |reply: Option<String>| reply.is_some_and(|r| r == "PONG" || r.starts_with("NOAUTH"));
        while !up(self.command(&["PING"])) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not start:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn uri(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the process (like a crash or an outage); data is lost.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (and, for a Cluster node, the same `nodes.conf`).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Runs `redis-cli` against this server; stdout, trimmed (`--raw`).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(which("redis-cli"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--raw"])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// One command over a plain socket; the first reply line without its
    /// type byte, or `None` when the server does not answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().get(1..)?.to_owned())
    }

    /// Records every command the server executes (`MONITOR`) until dropped.
    pub fn monitor(&self) -> Monitor {
        let mut child = Command::new(which("redis-cli"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "monitor"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-cli monitor");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("monitor stdout");
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + START_WAIT;
        while lines.lock().unwrap().is_empty() {
            assert!(
                Instant::now() < deadline,
                "redis-cli monitor printed nothing"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Monitor { child, lines }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("redis.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running `MONITOR`; its lines are every command the server ran since.
pub struct Monitor {
    /// The `redis-cli monitor` process.
    child: Child,
    /// Its output lines.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    /// The lines so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Redis Cluster of masters without replicas.
pub struct RedisCluster {
    /// The nodes.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes, creates the Cluster and waits for `cluster_state:ok` everywhere.
    pub fn start(masters: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| RedisServer::start_cluster_node())
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new(which("redis-cli"))
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + START_WAIT;
        for node in &self.nodes {
            while !node.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok") {
                assert!(
                    Instant::now() < deadline,
                    "cluster not ok on {}:\n{}",
                    node.port,
                    node.log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Every node's URI, comma-separated (the `REDIS_URI` seeds).
    pub fn uri(&self) -> String {
        let uris: Vec<String> = self.nodes.iter().map(RedisServer::uri).collect();
        uris.join(",")
    }

    /// Runs `redis-cli -c` (follows `MOVED`) for single-key commands.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["-c"];
        all.extend_from_slice(args);
        self.nodes[0].cli(&all)
    }

    /// Kills every node (data is lost; Cluster state stays in `nodes.conf`).
    pub fn stop_all(&mut self) {
        self.nodes.iter_mut().for_each(RedisServer::stop);
    }

    /// Starts every node again on its port and waits for `cluster_state:ok`.
    pub fn launch_all(&mut self) {
        self.nodes.iter_mut().for_each(RedisServer::launch);
        self.wait_ok();
    }
}

/// A free loopback port below the ephemeral range (so that outgoing
/// connections cannot take it while a test restarts Redis on it); with
/// `bus`, port + 10000 must be free too (and stays below the range as well).
fn free_port(bus: bool) -> u16 {
    for _ in 0..500 {
        let port: u16 = rand::random_range(10_000..22_000);
        let free = |p: u16| TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && (!bus || free(port + 10_000)) {
            return port;
        }
    }
    panic!("no free port (pair) for a redis node");
}

fn log_file(dir: &Path) -> Stdio {
    std::fs::File::create(dir.join("redis.log"))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// Full path of a binary from `PATH`, or a clear failure.
fn which(binary: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{binary}` not found in PATH: install redis (apt-get install redis-server redis-tools)"))
}
