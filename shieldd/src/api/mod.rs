//! The scan API (SPEC section 4): newline-delimited JSON over a Unix stream
//! socket, served with tokio.
//!
//! Each connection is one task that reads whatever the client has sent,
//! answers every complete line in it, and writes the answers back in one
//! write: a pipelining client costs one read and one write per batch, not
//! per request. Connections are spread over the runtime's worker threads;
//! a large pipelined batch on one connection is split across threads, and
//! a large line is scanned on a blocking thread so it cannot stall the
//! small requests of other connections.
//!
//! Limits bound everything a client controls: line length (an oversized
//! line is answered `too_large` as soon as it crosses the limit and the
//! rest of it is discarded unread into memory), requests answered per
//! batch, blocking scans server-wide, open streams, idle time, and the
//! time a client may leave its answers unread. A bad line gets an error
//! response and the connection goes on.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use shield_client::wire::{
    decode_request_ref, Direction, ErrorCode, OpRef, RequestRef, Response, StreamAction, Verdict,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

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
    /// Requests answered from one connection's input before their answers
    /// are written out: bounds the answers buffered per connection.
    pub per_connection: usize,
    /// Scans running on blocking threads (large lines, split batches) on
    /// the whole server; a connection needing one more waits for it.
    pub global: usize,
    /// A connection with no complete request for this long is closed, and
    /// so is one that leaves its answers unread for this long.
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

/// Lines longer than this are scanned on a blocking thread.
const BIG_LINE: usize = 64 * 1024;
/// A batch of pipelined lines this large or larger is split in two, one
/// half on a blocking thread: worth a thread hand-off (tens of µs).
const SPLIT_BATCH: usize = 32 * 1024;
/// Most bytes a connection's read buffer grows by at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Least room offered to one read.
const MIN_READ: usize = 4 * 1024;
/// Empty read buffers with more capacity than this are released when the
/// client pauses, so thousands of idle connections hold next to nothing.
const KEEP_BUF: usize = 8 * 1024;

/// A running server's shared state.
pub struct Server {
    svc: Arc<dyn Service>,
    cfg: ServerConfig,
    global: Arc<Semaphore>,
    /// Counters.
    pub stats: Arc<Stats>,
}

/// Per-connection state the request handlers share.
struct ConnCtx {
    peer: Peer,
    streams: Mutex<StreamTable>,
}

impl Server {
    /// A server for `svc` with limits `cfg`.
    pub fn new(svc: Arc<dyn Service>, cfg: ServerConfig) -> Arc<Server> {
        Arc::new(Server {
            svc,
            global: Arc::new(Semaphore::new(cfg.global.max(1))),
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

    async fn connection(self: Arc<Self>, mut stream: UnixStream) {
        let peer = match stream.peer_cred() {
            Ok(c) => Peer {
                pid: c.pid(),
                uid: c.uid(),
                gid: c.gid(),
            },
            Err(_) => return,
        };
        if let Err(why) = self.svc.admit(&peer) {
            let mut out = Vec::new();
            put(
                &mut out,
                &Response::error(Value::Null, ErrorCode::Forbidden, why),
            );
            let _ = tokio::time::timeout(self.cfg.idle_timeout, stream.write_all(&out)).await;
            return;
        }
        let ctx = Arc::new(ConnCtx {
            peer,
            streams: Mutex::default(),
        });
        let idle = self.cfg.idle_timeout;
        let mut lines = LineBuf::new(self.cfg.max_line);
        let mut items: Vec<Item> = Vec::new();
        let mut out: Vec<u8> = Vec::new();
        let mut deadline = tokio::time::Instant::now() + idle;
        loop {
            let more = lines.take_batch(&mut items, self.cfg.per_connection.max(1));
            if !items.is_empty() {
                deadline = tokio::time::Instant::now() + idle;
                let gone = self
                    .answer_batch(&ctx, &stream, lines.data(), &items, &mut out)
                    .await;
                if gone {
                    break;
                }
                items.clear();
            }
            lines.consume();
            if !out.is_empty() {
                // A client that does not read its answers stalls only this
                // connection (this task stops reading it), and only for
                // `idle`: the answers it left unread are dropped with it.
                match tokio::time::timeout(idle, stream.write_all(&out)).await {
                    Ok(Ok(())) => {}
                    _ => break,
                }
                out.clear();
                if out.capacity() > KEEP_BUF {
                    out = Vec::new();
                }
            }
            if more {
                continue;
            }
            match tokio::time::timeout_at(deadline, stream.readable()).await {
                Ok(Ok(())) => {}
                Err(_) | Ok(Err(_)) => break,
            }
            match lines.fill(&stream) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => lines.idle(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    /// Answer `items` (ranges of `data`) into `out`, in order. Returns
    /// true when the client hung up meanwhile (the rest is not answered:
    /// a client that pipelines and leaves does not keep the server busy).
    async fn answer_batch(
        self: &Arc<Self>,
        ctx: &Arc<ConnCtx>,
        stream: &UnixStream,
        data: &[u8],
        items: &[Item],
        out: &mut Vec<u8>,
    ) -> bool {
        let span = |it: &[Item]| -> usize {
            it.iter()
                .map(|i| match i {
                    Item::Line(r) => r.len(),
                    Item::TooLong => 0,
                })
                .sum()
        };
        if items.len() >= 2 && span(items) >= SPLIT_BATCH && splittable(data, items) {
            if let Ok(permit) = self.global.clone().try_acquire_owned() {
                let (first, second) = items.split_at(items.len() / 2);
                // The blocking half gets its own copy of its lines: a copy
                // costs far less than scanning them.
                let start = first
                    .iter()
                    .find_map(|i| match i {
                        Item::Line(r) => Some(r.start),
                        Item::TooLong => None,
                    })
                    .unwrap_or(0);
                let end = first
                    .iter()
                    .rev()
                    .find_map(|i| match i {
                        Item::Line(r) => Some(r.end),
                        Item::TooLong => None,
                    })
                    .unwrap_or(start);
                let owned: Vec<u8> = data.get(start..end).unwrap_or_default().to_vec();
                let rebased: Vec<Item> = first
                    .iter()
                    .map(|i| match i {
                        Item::Line(r) => Item::Line(r.start - start..r.end - start),
                        Item::TooLong => Item::TooLong,
                    })
                    .collect();
                let n_first = rebased.len();
                let (me, c) = (self.clone(), ctx.clone());
                let half = tokio::task::spawn_blocking(move || {
                    let mut o = Vec::new();
                    for it in &rebased {
                        me.answer_item(&c, &owned, it, &mut o);
                    }
                    drop(permit);
                    o
                });
                let mut tail = Vec::new();
                for it in second {
                    self.answer_item(ctx, data, it, &mut tail);
                }
                match half.await {
                    Ok(o) => out.extend_from_slice(&o),
                    Err(_) => {
                        for _ in 0..n_first {
                            put(out, &internal());
                        }
                    }
                }
                out.extend_from_slice(&tail);
                return false;
            }
        }
        for (n, it) in items.iter().enumerate() {
            // One poll per few pipelined requests; none for a lone one.
            if items.len() > 1 && n % 8 == 0 && hung_up(stream) {
                return true;
            }
            match it {
                Item::Line(r) if r.len() > BIG_LINE => {
                    let Ok(permit) = self.global.clone().acquire_owned().await else {
                        put(out, &internal());
                        continue;
                    };
                    let line = data.get(r.clone()).unwrap_or_default().to_vec();
                    let (me, c) = (self.clone(), ctx.clone());
                    let r = tokio::task::spawn_blocking(move || {
                        let mut o = Vec::new();
                        me.answer_line(&c, &line, &mut o);
                        drop(permit);
                        o
                    })
                    .await;
                    match r {
                        Ok(o) => out.extend_from_slice(&o),
                        Err(_) => put(out, &internal()),
                    }
                }
                _ => self.answer_item(ctx, data, it, out),
            }
        }
        false
    }

    fn answer_item(&self, ctx: &ConnCtx, data: &[u8], it: &Item, out: &mut Vec<u8>) {
        match it {
            Item::Line(r) => self.answer_line(ctx, data.get(r.clone()).unwrap_or_default(), out),
            Item::TooLong => {
                self.stats.requests.fetch_add(1, Ordering::Relaxed);
                self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                put(
                    out,
                    &Response::error(
                        Value::Null,
                        ErrorCode::TooLarge,
                        format!(
                            "request line exceeds the limit of {} bytes; the rest of it is discarded",
                            self.cfg.max_line
                        ),
                    ),
                );
            }
        }
    }

    /// Decode one line, decide it, append the answer to `out`.
    fn answer_line(&self, ctx: &ConnCtx, line: &[u8], out: &mut Vec<u8>) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match decode_request_ref(line) {
            Ok(req) => self.handle(ctx, req),
            Err(resp) => {
                self.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                resp
            }
        };
        if resp.verdict.as_ref().is_some_and(|v| v.blocked) {
            self.stats.blocked.fetch_add(1, Ordering::Relaxed);
        }
        put(out, &resp);
    }

    fn handle(&self, ctx: &ConnCtx, req: RequestRef<'_>) -> Response {
        let id = req.id;
        let peer = &ctx.peer;
        match req.op {
            OpRef::Ping => Response::ok(id),
            OpRef::Stats => Response {
                stats: Some(self.stats.snapshot()),
                ..Response::ok(id)
            },
            OpRef::Scan { text, direction } => {
                Response::verdict(id, self.svc.scan(peer, &text, direction))
            }
            OpRef::CheckTool { tool, params } => {
                Response::verdict(id, self.svc.check_tool(peer, &tool, &params))
            }
            OpRef::ScanStream {
                action,
                stream,
                text,
                direction,
            } => self.stream_op(peer, id, action, stream, &text, direction, &ctx.streams),
        }
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
        streams: &Mutex<StreamTable>,
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

/// Whether the lines of a batch may be answered out of order across two
/// threads: not when a stream step is among them (its chunks must be
/// pushed in order).
fn splittable(data: &[u8], items: &[Item]) -> bool {
    let finder = memchr::memmem::Finder::new(b"scan_stream");
    items.iter().all(|i| match i {
        Item::Line(r) => finder
            .find(data.get(r.clone()).unwrap_or_default())
            .is_none(),
        Item::TooLong => true,
    })
}

/// Whether the peer has closed its end entirely (POLLHUP; a peer that
/// only shut down its writing still gets its answers).
fn hung_up(stream: &UnixStream) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: stream.as_raw_fd(),
        events: 0,
        revents: 0,
    };
    // SAFETY: poll on one pollfd we own, for a descriptor `stream` keeps
    // open; a zero timeout never blocks.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

fn internal() -> Response {
    Response::error(Value::Null, ErrorCode::Internal, "request failed")
}

/// Append `r` and a newline to `out`.
fn put(out: &mut Vec<u8>, r: &Response) {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, r).is_err() {
        // Cannot happen for these types; never leave half a line.
        out.truncate(mark);
        out.extend_from_slice(
            br#"{"id":null,"ok":false,"error":{"code":"internal","message":"cannot encode the answer"}}"#,
        );
    }
    out.push(b'\n');
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

/// One unit of work found in a connection's input.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A complete line (without its newline): a range of [`LineBuf::data`].
    Line(Range<usize>),
    /// A line crossed the limit; its bytes are being discarded.
    TooLong,
}

/// Splits a connection's input into lines of bounded length. Written here
/// because tokio-util's LinesCodec ends the stream at its first error, and
/// an oversized line must cost the client one error response, not the
/// connection; and because this one hands out ranges of its buffer (no
/// copy per line) and drops the bytes of an oversized line as they come.
struct LineBuf {
    buf: Vec<u8>,
    /// Start of the bytes not yet handed out.
    pos: usize,
    /// `buf[pos..scanned]` holds no newline.
    scanned: usize,
    max: usize,
    /// Skipping the rest of an oversized line (already answered).
    discarding: bool,
    /// The last read filled all the room it was offered.
    full: bool,
}

impl LineBuf {
    fn new(max: usize) -> LineBuf {
        LineBuf {
            buf: Vec::new(),
            pos: 0,
            scanned: 0,
            max,
            discarding: false,
            full: false,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf
    }

    /// Append the complete lines (at most `limit` items) to `items`.
    /// Returns whether the limit stopped it (more may be waiting).
    fn take_batch(&mut self, items: &mut Vec<Item>, limit: usize) -> bool {
        loop {
            if items.len() >= limit {
                return true;
            }
            let tail = self.buf.get(self.scanned..).unwrap_or_default();
            match memchr::memchr(b'\n', tail) {
                Some(i) => {
                    let end = self.scanned + i;
                    let start = self.pos;
                    self.pos = end + 1;
                    self.scanned = self.pos;
                    if self.discarding {
                        self.discarding = false;
                    } else if end - start > self.max {
                        items.push(Item::TooLong);
                    } else {
                        items.push(Item::Line(start..end));
                    }
                }
                None => {
                    self.scanned = self.buf.len();
                    if !self.discarding && self.buf.len() - self.pos > self.max {
                        self.discarding = true;
                        items.push(Item::TooLong);
                    }
                    if self.discarding {
                        // Keep nothing of an oversized line: memory stays
                        // bounded whatever its length.
                        self.buf.truncate(self.pos);
                        self.scanned = self.pos;
                    }
                    return false;
                }
            }
        }
    }

    /// Forget the lines handed out.
    fn consume(&mut self) {
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.scanned = 0;
        } else if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos;
        }
        self.pos = 0;
    }

    /// Read what the socket has (non-blocking). `Ok(0)` is end of input.
    fn fill(&mut self, stream: &UnixStream) -> std::io::Result<usize> {
        // Start small so a quiet connection's buffer stays tiny; double
        // while reads fill all the room offered (a pipelining client), so
        // its batches grow; read into spare capacity (no zeroing).
        if self.buf.capacity() - self.buf.len() < MIN_READ || self.full {
            self.buf
                .reserve(self.buf.capacity().clamp(MIN_READ, READ_CHUNK));
        }
        let room = self.buf.capacity() - self.buf.len();
        let r = stream.try_read_buf(&mut self.buf);
        self.full = matches!(r, Ok(n) if n == room);
        r
    }

    /// The socket has nothing more for now: give back a large empty
    /// buffer, and the spare room behind a partial line left waiting.
    fn idle(&mut self) {
        if self.buf.is_empty() {
            if self.buf.capacity() > KEEP_BUF {
                self.buf = Vec::new();
            }
        } else if self.buf.capacity() > 2 * self.buf.len() + 256 {
            self.buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shield_client::wire::{Action, Finding, FindingKind};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

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

    #[test]
    fn line_buffer_splits_reuses_and_bounds() {
        let mut lb = LineBuf::new(10);
        let mut items = Vec::new();
        let mut got = Vec::new();
        // Lines of shrinking length, across consumes: each is found.
        for chunk in [&b"0123456789\n"[..], b"abc\n", b"x\n", b"ab", b"cd\nef\n"] {
            lb.buf.extend_from_slice(chunk);
            lb.take_batch(&mut items, 64);
            for it in items.drain(..) {
                match it {
                    Item::Line(r) => got.push(String::from_utf8_lossy(&lb.data()[r]).into_owned()),
                    Item::TooLong => got.push("TOO LONG".into()),
                }
            }
            lb.consume();
        }
        assert_eq!(got, ["0123456789", "abc", "x", "abcd", "ef"]);
        // An oversized line: reported once as soon as it crosses the
        // limit, its bytes dropped, the next line intact.
        lb.buf.extend_from_slice(b"0123456789abc");
        lb.take_batch(&mut items, 64);
        assert_eq!(items, [Item::TooLong]);
        assert!(lb.buf.is_empty());
        items.clear();
        lb.buf.extend_from_slice(b"more of it\nok\n");
        lb.take_batch(&mut items, 64);
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], Item::Line(r) if &lb.data()[r.clone()] == b"ok"));
        items.clear();
        lb.consume();
        // A whole oversized line in one read, and the batch limit.
        lb.buf.extend_from_slice(b"0123456789abcdef\na\nb\nc\n");
        assert!(lb.take_batch(&mut items, 2));
        assert_eq!(items[0], Item::TooLong);
        assert_eq!(items.len(), 2);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn large_pipelined_batches_are_split_and_answered_in_order() {
        let (p, srv) = start(ServerConfig::default()).await;
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let filler = "x".repeat(1500);
        let mut batch = Vec::new();
        for i in 0..300 {
            let text = if i % 7 == 0 { "BAD" } else { "fine" };
            batch.extend_from_slice(
                format!("{{\"id\": {i}, \"op\": \"scan\", \"text\": \"{filler} {text}\"}}\n")
                    .as_bytes(),
            );
        }
        let writer = tokio::spawn(async move {
            w.write_all(&batch).await.unwrap();
            w
        });
        let mut r = BufReader::new(rd);
        for i in 0..300u64 {
            let mut s = String::new();
            r.read_line(&mut s).await.unwrap();
            let v: Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["id"], i, "answers keep the order of the requests");
            assert_eq!(v["verdict"]["blocked"], i % 7 == 0, "id {i}");
            assert_eq!(
                v["verdict"]["findings"].as_array().map(Vec::len),
                Some(usize::from(i % 7 == 0))
            );
        }
        let _w = writer.await.unwrap();
        assert_eq!(srv.stats.requests.load(Ordering::Relaxed), 300);
        let _ = std::fs::remove_file(&p);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_pipelines_and_leaves_stops_costing_scans() {
        struct Slow(Arc<AtomicU64>);
        impl Service for Slow {
            fn scan(&self, _: &Peer, _: &str, _: Direction) -> Verdict {
                self.0.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                Verdict::allow()
            }
            fn check_tool(&self, _: &Peer, _: &str, _: &Value) -> Verdict {
                Verdict::allow()
            }
            fn open_stream(&self, _: &Peer, _: Direction) -> Box<dyn StreamScan> {
                Box::new(EchoStream(String::new()))
            }
        }
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "shieldd-api-slow-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_file(&p);
        let count = Arc::new(AtomicU64::new(0));
        let s = Server::new(Arc::new(Slow(count.clone())), ServerConfig::default());
        tokio::spawn(s.clone().serve(UnixListener::bind(&p).unwrap()));
        let mut batch = Vec::new();
        for i in 0..1000 {
            batch.extend_from_slice(
                format!("{{\"id\": {i}, \"op\": \"scan\", \"text\": \"t\"}}\n").as_bytes(),
            );
        }
        {
            let mut c = UnixStream::connect(&p).await.unwrap();
            c.write_all(&batch).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = count.load(Ordering::SeqCst);
        assert!(
            done < 200,
            "{done} of 1000 scans run for a client that left"
        );
        // The server still serves.
        let (rd, mut w) = UnixStream::connect(&p).await.unwrap().into_split();
        let mut r = BufReader::new(rd);
        let v = roundtrip(&mut w, &mut r, b"{\"id\": 1, \"op\": \"ping\"}\n").await;
        assert_eq!(v["ok"], true);
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
