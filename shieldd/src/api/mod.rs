//! The scan API (SPEC section 4): newline-delimited JSON over a Unix stream
//! socket, served with tokio.
//!
//! Requests are pipelined: each is decided in its own task and answered by
//! id, in completion order. Limits bound everything a client controls: line
//! length, requests in flight per connection and in total, open streams,
//! idle time. A bad line gets an error response and the connection goes on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use shield_client::wire::{Direction, ErrorCode, Op, Request, Response, StreamAction, Verdict};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Semaphore};

pub mod service;

/// What answers the requests. The daemon implements it with the scanner
/// and the tool-policy checker of the session's policy.
pub trait Service: Send + Sync + 'static {
    /// Whether `peer` may use this server at all (checked once per connection).
    fn admit(&self, _peer: &Peer) -> Result<(), String> {
        Ok(())
    }
    /// Scan one text.
    fn scan(&self, peer: &Peer, text: &str, direction: Direction) -> Verdict;
    /// Check one tool call.
    fn check_tool(&self, peer: &Peer, tool: &str, params: &Value) -> Verdict;
    /// Start a streaming scan.
    fn open_stream(&self, peer: &Peer, direction: Direction) -> Box<dyn StreamScan>;
}

/// One streaming scan in progress.
pub trait StreamScan: Send {
    /// Add a chunk; the verdict covers what is known so far.
    fn push(&mut self, chunk: &str) -> Verdict;
    /// End the stream; the verdict covers all of it.
    fn close(self: Box<Self>) -> Verdict;
}

/// Who is on the other end, from SO_PEERCRED.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// Process id (None if the kernel could not say).
    pub pid: Option<i32>,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

/// Server limits.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest request line in bytes.
    pub max_line: usize,
    /// Requests in flight on one connection.
    pub per_connection: usize,
    /// Requests in flight on the whole server.
    pub global: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Open streams per connection.
    pub max_streams: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_line: shield_client::wire::DEFAULT_MAX_LINE,
            per_connection: 64,
            global: 1024,
            idle_timeout: Duration::from_secs(300),
            max_streams: 64,
        }
    }
}

/// Counters, reported by the `stats` op.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Requests answered (any outcome).
    pub requests: AtomicU64,
    /// Requests refused as malformed or too large.
    pub bad_requests: AtomicU64,
    /// Requests refused for load.
    pub busy: AtomicU64,
    /// Verdicts that blocked.
    pub blocked: AtomicU64,
}

impl Stats {
    fn snapshot(&self) -> Value {
        json!({
            "connections": self.connections.load(Ordering::Relaxed),
            "requests": self.requests.load(Ordering::Relaxed),
            "bad_requests": self.bad_requests.load(Ordering::Relaxed),
            "busy": self.busy.load(Ordering::Relaxed),
            "blocked": self.blocked.load(Ordering::Relaxed),
        })
    }
}

/// A running server's shared state.
pub struct Server {
    svc: Arc<dyn Service>,
    cfg: ServerConfig,
    global: Arc<Semaphore>,
    /// Counters.
    pub stats: Arc<Stats>,
}

impl Server {
    /// A server for `svc` with limits `cfg`.
    pub fn new(svc: Arc<dyn Service>, cfg: ServerConfig) -> Arc<Server> {
        Arc::new(Server {
            svc,
            global: Arc::new(Semaphore::new(cfg.global)),
            cfg,
            stats: Arc::new(Stats::default()),
        })
    }

    /// Accept connections until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: UnixListener) -> std::io::Result<()> {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                // Out of descriptors or similar: back off, keep serving.
                Err(e) if is_transient(&e) => {
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.stats.connections.fetch_add(1, Ordering::Relaxed);
            let me = self.clone();
            tokio::spawn(async move { me.connection(stream).await });
        }
    }

    async fn connection(self: Arc<Self>, stream: UnixStream) {
        let peer = match stream.peer_cred() {
            Ok(c) => Peer {
                pid: c.pid(),
                uid: c.uid(),
                gid: c.gid(),
            },
            Err(_) => return,
        };
        let (mut rd, mut wr) = stream.into_split();
        if let Err(why) = self.svc.admit(&peer) {
            let r = Response::error(Value::Null, ErrorCode::Forbidden, why);
            if let Ok(mut line) = serde_json::to_vec(&r) {
                line.push(b'\n');
                let _ = wr.write_all(&line).await;
            }
            return;
        }
        let peer = Arc::new(peer);
        // Responses go through one writer task so pipelined answers never
        // interleave; the bound makes a client that does not read stall only
        // itself.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(self.cfg.per_connection);
        let writer = tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                if wr.write_all(&line).await.is_err() {
                    return;
                }
            }
        });
        let local = Arc::new(Semaphore::new(self.cfg.per_connection));
        let streams: Arc<std::sync::Mutex<StreamTable>> = Default::default();
        let mut reader = LineReader::new(self.cfg.max_line);
        loop {
            let line = match tokio::time::timeout(self.cfg.idle_timeout, reader.next(&mut rd)).await
            {
                Err(_) | Ok(Ok(Line::Eof)) | Ok(Err(_)) => break,
                Ok(Ok(Line::TooLong(n))) => {
                    self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                    let r = Response::error(
                        Value::Null,
                        ErrorCode::TooLarge,
                        format!(
                            "request line of {n}+ bytes exceeds the limit of {} bytes",
                            self.cfg.max_line
                        ),
                    );
                    if send(&tx, &r).await.is_err() {
                        break;
                    }
                    continue;
                }
                Ok(Ok(Line::Data(bytes))) => bytes,
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(permit) = local.clone().acquire_owned().await else {
                break;
            };
            let Ok(gpermit) = self.global.clone().try_acquire_owned() else {
                self.stats.busy.fetch_add(1, Ordering::Relaxed);
                let id = peek_id(&line);
                let r = Response::error(id, ErrorCode::Busy, "server busy; retry");
                if send(&tx, &r).await.is_err() {
                    break;
                }
                continue;
            };
            let me = self.clone();
            let tx = tx.clone();
            let peer = peer.clone();
            let streams = streams.clone();
            tokio::spawn(async move {
                let big = line.len() > 64 * 1024;
                let me2 = me.clone();
                // Large texts are scanned off the async workers so one client
                // cannot stall the others' small requests.
                let resp = if big {
                    tokio::task::spawn_blocking(move || me2.handle(&peer, &line, &streams))
                        .await
                        .unwrap_or_else(|_| {
                            Response::error(Value::Null, ErrorCode::Internal, "scan failed")
                        })
                } else {
                    me2.handle(&peer, &line, &streams)
                };
                let _ = send(&tx, &resp).await;
                drop(permit);
                drop(gpermit);
            });
        }
        drop(tx);
        let _ = writer.await;
    }

    fn handle(
        &self,
        peer: &Peer,
        line: &[u8],
        streams: &std::sync::Mutex<StreamTable>,
    ) -> Response {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let bad = |id: Value, msg: String| {
            self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
            Response::error(id, ErrorCode::BadRequest, msg)
        };
        let Ok(text) = std::str::from_utf8(line) else {
            return bad(Value::Null, "request is not valid UTF-8".into());
        };
        let req: Request = match serde_json::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let id = peek_id(line);
                return bad(id, format!("bad request: {e}"));
            }
        };
        let id = req.id;
        let resp = match req.op {
            Op::Ping => Response::ok(id),
            Op::Stats => Response {
                stats: Some(self.stats.snapshot()),
                ..Response::ok(id)
            },
            Op::Scan { text, direction } => {
                Response::verdict(id, self.svc.scan(peer, &text, direction))
            }
            Op::CheckTool { tool, params } => {
                Response::verdict(id, self.svc.check_tool(peer, &tool, &params))
            }
            Op::ScanStream {
                action,
                stream,
                text,
                direction,
            } => self.stream_op(peer, id, action, stream, &text, direction, streams),
        };
        if resp.verdict.as_ref().is_some_and(|v| v.blocked) {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        }
        resp
    }

    #[allow(clippy::too_many_arguments)]
    fn stream_op(
        &self,
        peer: &Peer,
        id: Value,
        action: StreamAction,
        handle: Option<u64>,
        text: &str,
        direction: Direction,
        streams: &std::sync::Mutex<StreamTable>,
    ) -> Response {
        let Ok(mut table) = streams.lock() else {
            return Response::error(id, ErrorCode::Internal, "stream table poisoned");
        };
        match action {
            StreamAction::Open => {
                if table.open.len() >= self.cfg.max_streams {
                    return Response::error(
                        id,
                        ErrorCode::Busy,
                        format!(
                            "at most {} open streams per connection",
                            self.cfg.max_streams
                        ),
                    );
                }
                table.next += 1;
                let h = table.next;
                table.open.insert(h, self.svc.open_stream(peer, direction));
                Response {
                    stream: Some(h),
                    ..Response::ok(id)
                }
            }
            StreamAction::Chunk | StreamAction::Close => {
                let Some(h) = handle else {
                    return Response::error(id, ErrorCode::BadRequest, "`stream` is required");
                };
                if action == StreamAction::Chunk {
                    match table.open.get_mut(&h) {
                        Some(s) => Response::verdict(id, s.push(text)),
                        None => {
                            Response::error(id, ErrorCode::NoSuchStream, format!("no stream {h}"))
                        }
                    }
                } else {
                    match table.open.remove(&h) {
                        Some(mut s) => {
                            if !text.is_empty() {
                                s.push(text);
                            }
                            Response::verdict(id, s.close())
                        }
                        None => {
                            Response::error(id, ErrorCode::NoSuchStream, format!("no stream {h}"))
                        }
                    }
                }
            }
        }
    }
}

/// Bind `path` (replacing a stale socket) with mode 0600.
pub fn bind_socket(path: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let l = std::os::unix::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// `shieldd serve`: the scan API for `policy` on `socket`, until killed.
pub fn serve_standalone(
    policy: &crate::policy::Policy,
    socket: &std::path::Path,
    max_line: usize,
) -> i32 {
    let svc = match service::PolicyService::new(policy, None) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shieldd: {e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shieldd: cannot start the runtime: {e}");
            return 2;
        }
    };
    let std_listener = match bind_socket(socket) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shieldd: cannot listen on {}: {e}", socket.display());
            return 2;
        }
    };
    let cfg = ServerConfig {
        max_line,
        ..Default::default()
    };
    let r = rt.block_on(async move {
        let listener = UnixListener::from_std(std_listener)?;
        eprintln!("shieldd: serving the scan API on {}", socket.display());
        let server = Server::new(Arc::new(svc), cfg);
        tokio::select! {
            r = server.serve(listener) => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    });
    let _ = std::fs::remove_file(socket);
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("shieldd: scan API: {e}");
            1
        }
    }
}

#[derive(Default)]
struct StreamTable {
    next: u64,
    open: HashMap<u64, Box<dyn StreamScan>>,
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE)
            | Some(libc::ENFILE)
            | Some(libc::ENOBUFS)
            | Some(libc::ENOMEM)
            | Some(libc::ECONNABORTED)
            | Some(libc::EINTR)
    )
}

/// The id of a request that failed to parse, when it can still be found.
fn peek_id(line: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Value,
    }
    serde_json::from_slice::<IdOnly>(line)
        .map(|i| i.id)
        .unwrap_or(Value::Null)
}

async fn send(tx: &mpsc::Sender<Vec<u8>>, r: &Response) -> Result<(), ()> {
    let mut line = serde_json::to_vec(r).map_err(|_| ())?;
    line.push(b'\n');
    tx.send(line).await.map_err(|_| ())
}

enum Line {
    Data(Vec<u8>),
    /// A line longer than the limit was skipped; it had at least this many bytes.
    TooLong(usize),
    Eof,
}

/// Splits a byte stream into lines of bounded length. Written here because
/// tokio-util's LinesCodec ends the stream at its first error, and an
/// oversized line must cost the client one error response, not the connection.
struct LineReader {
    buf: Vec<u8>,
    max: usize,
    /// Skipping the rest of an oversized line; counts its bytes.
    discarding: Option<usize>,
}

impl LineReader {
    fn new(max: usize) -> LineReader {
        LineReader {
            buf: Vec::with_capacity(8192),
            max,
            discarding: None,
        }
    }

    async fn next<R: AsyncRead + Unpin>(&mut self, rd: &mut R) -> std::io::Result<Line> {
        let mut scanned = 0;
        loop {
            if let Some(pos) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                let end = scanned + pos;
                let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
                if let Some(n) = self.discarding.take() {
                    return Ok(Line::TooLong(n + line.len()));
                }
                return Ok(Line::Data(line));
            }
            scanned = self.buf.len();
            if self.buf.len() > self.max {
                // Keep nothing of an oversized line: memory stays bounded.
                let n = self.buf.len();
                *self.discarding.get_or_insert(0) += n;
                self.buf.clear();
                scanned = 0;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Line::Eof);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shield_client::wire::{Action, Finding, FindingKind};
    use tokio::io::{AsyncBufReadExt, BufReader};

    /// Blocks any text containing "BAD"; the server's behaviour under bad
    /// input is what these tests are about, not scanning.
    struct Echo;
    struct EchoStream(String);

    fn verdict(text: &str) -> Verdict {
        let mut v = Verdict::allow();
        if let Some(i) = text.find("BAD") {
            v.action = Action::Block;
            v.blocked = true;
            v.findings.push(Finding {
                kind: FindingKind::Injection,
                ty: "test".into(),
                start: i,
                end: i + 3,
                score: 1.0,
                detail: String::new(),
            });
        }
        v
    }

    impl Service for Echo {
        fn scan(&self, _: &Peer, text: &str, _: Direction) -> Verdict {
            verdict(text)
        }
        fn check_tool(&self, _: &Peer, tool: &str, _: &Value) -> Verdict {
            verdict(tool)
        }
        fn open_stream(&self, _: &Peer, _: Direction) -> Box<dyn StreamScan> {
            Box::new(EchoStream(String::new()))
        }
    }
    impl StreamScan for EchoStream {
        fn push(&mut self, chunk: &str) -> Verdict {
            self.0.push_str(chunk);
            verdict(&self.0)
        }
        fn close(self: Box<Self>) -> Verdict {
            verdict(&self.0)
        }
    }

    async fn start(cfg: ServerConfig) -> (std::path::PathBuf, Arc<Server>) {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "shieldd-api-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&p);
        let l = UnixListener::bind(&p).unwrap();
        let s = Server::new(Arc::new(Echo), cfg);
        tokio::spawn(s.clone().serve(l));
        (p, s)
    }

    async fn roundtrip(
        w: &mut tokio::net::unix::OwnedWriteHalf,
        r: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
        line: &[u8],
    ) -> Value {
        w.write_all(line).await.unwrap();
        let mut s = String::new();
        r.read_line(&mut s).await.unwrap();
        serde_json::from_str(&s).unwrap()
    }

    #[tokio::test]
    async fn bad_lines_get_errors_and_the_connection_lives_on() {
        let (p, srv) = start(ServerConfig {
            max_line: 4096,
            ..Default::default()
        })
        .await;
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let mut r = BufReader::new(rd);
        let v = roundtrip(&mut w, &mut r, b"garbage\n").await;
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "bad_request");
        let v = roundtrip(
            &mut w,
            &mut r,
            b"{\"id\": 7, \"op\": \"scan\", \"text\": \n",
        )
        .await;
        assert_eq!(v["error"]["code"], "bad_request");
        let v = roundtrip(
            &mut w,
            &mut r,
            b"{\"id\": 8, \"op\": \"scan\", \"text\": \"\xff\xfe\"}\n",
        )
        .await;
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(v["error"]["message"].as_str().unwrap().contains("UTF-8"));
        let v = roundtrip(&mut w, &mut r, b"{\"id\": 9, \"op\": \"explode\"}\n").await;
        assert_eq!(
            (v["id"].clone(), v["error"]["code"].clone()),
            (json!(9), json!("bad_request"))
        );
        let mut big = vec![b'x'; 100_000];
        big.push(b'\n');
        let v = roundtrip(&mut w, &mut r, &big).await;
        assert_eq!(v["error"]["code"], "too_large");
        let v = roundtrip(&mut w, &mut r, b"{\"id\": \"p\", \"op\": \"ping\"}\n").await;
        assert_eq!(
            (v["id"].clone(), v["ok"].clone()),
            (json!("p"), json!(true))
        );
        let v = roundtrip(
            &mut w,
            &mut r,
            b"{\"id\": 1, \"op\": \"scan\", \"text\": \"a BAD b\"}\n",
        )
        .await;
        assert_eq!(v["verdict"]["blocked"], true);
        assert_eq!(v["verdict"]["findings"][0]["start"], 2);
        assert!(srv.stats.bad_requests.load(Ordering::Relaxed) >= 5);
        let _ = std::fs::remove_file(&p);
    }

    #[tokio::test]
    async fn pipelined_requests_are_answered_by_id() {
        let (p, _srv) = start(ServerConfig::default()).await;
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let mut batch = Vec::new();
        for i in 0..200 {
            let text = if i % 3 == 0 { "BAD" } else { "fine" };
            batch.extend_from_slice(
                format!("{{\"id\": {i}, \"op\": \"scan\", \"text\": \"{text}\"}}\n").as_bytes(),
            );
        }
        w.write_all(&batch).await.unwrap();
        let mut r = BufReader::new(rd);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..200 {
            let mut s = String::new();
            r.read_line(&mut s).await.unwrap();
            let v: Value = serde_json::from_str(&s).unwrap();
            seen.insert(
                v["id"].as_u64().unwrap(),
                v["verdict"]["blocked"].as_bool().unwrap(),
            );
        }
        assert_eq!(seen.len(), 200);
        for (id, blocked) in seen {
            assert_eq!(blocked, id % 3 == 0, "id {id}");
        }
        let _ = std::fs::remove_file(&p);
    }

    #[tokio::test]
    async fn streams_catch_text_split_across_chunks() {
        let (p, _srv) = start(ServerConfig::default()).await;
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let mut r = BufReader::new(rd);
        let v = roundtrip(
            &mut w,
            &mut r,
            b"{\"id\": 1, \"op\": \"scan_stream\", \"action\": \"open\"}\n",
        )
        .await;
        let h = v["stream"].as_u64().unwrap();
        let v = roundtrip(&mut w, &mut r, format!("{{\"id\": 2, \"op\": \"scan_stream\", \"action\": \"chunk\", \"stream\": {h}, \"text\": \"xx B\"}}\n").as_bytes()).await;
        assert_eq!(v["verdict"]["blocked"], false);
        let v = roundtrip(&mut w, &mut r, format!("{{\"id\": 3, \"op\": \"scan_stream\", \"action\": \"close\", \"stream\": {h}, \"text\": \"AD\"}}\n").as_bytes()).await;
        assert_eq!(v["verdict"]["blocked"], true);
        let v = roundtrip(
            &mut w,
            &mut r,
            format!(
                "{{\"id\": 4, \"op\": \"scan_stream\", \"action\": \"chunk\", \"stream\": {h}}}\n"
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(v["error"]["code"], "no_such_stream");
        let _ = std::fs::remove_file(&p);
    }

    #[tokio::test]
    async fn a_client_that_vanishes_or_idles_does_not_hurt_others() {
        let (p, _srv) = start(ServerConfig {
            idle_timeout: Duration::from_millis(200),
            ..Default::default()
        })
        .await;
        // Disconnect mid-request, and half a line then silence.
        {
            let mut s = UnixStream::connect(&p).await.unwrap();
            s.write_all(b"{\"id\": 1, \"op\": \"scan\", \"text\": \"abc")
                .await
                .unwrap();
        }
        let mut idle = UnixStream::connect(&p).await.unwrap();
        idle.write_all(b"{\"id\": 1, \"op\"").await.unwrap();
        let mut many = Vec::new();
        for _ in 0..200 {
            many.push(UnixStream::connect(&p).await.unwrap());
        }
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let mut r = BufReader::new(rd);
        let v = roundtrip(&mut w, &mut r, b"{\"id\": 5, \"op\": \"ping\"}\n").await;
        assert_eq!(v["ok"], true);
        // The idle connection is closed by the server after the timeout.
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("server closes idle connections")
            .unwrap_or(0);
        assert_eq!(n, 0);
        let _ = std::fs::remove_file(&p);
    }
}
