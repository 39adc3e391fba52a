//! What the blocking and the async client share: errors, the fail mode, the
//! settings, and the encoding and decoding of lines.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::wire::{ErrorCode, Op, Request, Response, Verdict};

/// Environment variable through which `shieldd run` hands the agent its
/// scan socket.
pub const SOCKET_ENV: &str = "SHIELD_SOCKET";

/// Default time a whole request may take, connecting included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default longest response line the client reads: a bad server cannot make
/// the client buffer more than this.
pub const DEFAULT_MAX_RESPONSE: usize = 16 << 20;

/// What the convenience calls (`scan`, `check_tool`, stream `push`) return
/// when shieldd cannot answer: unreachable, timed out, or answering with an
/// error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailMode {
    /// Block: an agent whose guard is down must not act (the default).
    #[default]
    Closed,
    /// Allow: availability over safety, for development.
    Open,
}

impl FailMode {
    /// The verdict standing in for an answer that could not be had.
    pub fn verdict(self) -> Verdict {
        match self {
            FailMode::Closed => Verdict::block(),
            FailMode::Open => Verdict::allow(),
        }
    }
}

/// Everything a client call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `SHIELD_SOCKET` is not set (not running under `shieldd run`).
    #[error("{SOCKET_ENV} is not set: not running under shieldd")]
    NoSocket,
    /// The socket could not be reached, or the connection broke and a
    /// reconnection failed too.
    #[error("shieldd is unavailable at {}: {source}", path.display())]
    Unavailable {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// No answer within the configured timeout.
    #[error("no answer from shieldd within {0:?}")]
    Timeout(Duration),
    /// shieldd answered with an error.
    #[error("shieldd refused the request ({code:?}): {message}")]
    Server {
        /// Machine-readable code.
        code: ErrorCode,
        /// shieldd's explanation.
        message: String,
    },
    /// The request line would exceed the server's line limit.
    #[error("request of {size} bytes exceeds the limit of {limit} bytes")]
    RequestTooLarge {
        /// Encoded size, newline included.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The server sent something that is not a valid answer (bad JSON, a
    /// line over the response limit, a success without its payload).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A stream's connection was lost (its state lived on the server side of
    /// that connection), or the stream was already closed.
    #[error("the stream is gone: {0}")]
    StreamLost(&'static str),
}

impl Error {
    /// `true` for the errors that mean "shieldd could not be reached".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::NoSocket)
    }

    pub(crate) fn unavailable(path: &Path, e: std::io::Error) -> Error {
        Error::Unavailable {
            path: path.to_path_buf(),
            source: Arc::new(e),
        }
    }
}

/// Client settings shared by [`crate::Client`] and `AsyncClient`.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub path: PathBuf,
    pub timeout: Duration,
    pub fail_mode: FailMode,
    pub max_request: usize,
    pub max_response: usize,
}

impl Settings {
    pub fn new(path: PathBuf) -> Settings {
        Settings {
            path,
            timeout: DEFAULT_TIMEOUT,
            fail_mode: FailMode::Closed,
            max_request: crate::wire::DEFAULT_MAX_LINE,
            max_response: DEFAULT_MAX_RESPONSE,
        }
    }
}

/// The socket path from `SHIELD_SOCKET`.
pub(crate) fn env_socket() -> Result<PathBuf, Error> {
    match std::env::var_os(SOCKET_ENV) {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Error::NoSocket),
    }
}

/// One request line, newline included, checked against the server's limit
/// here because an oversized line's error comes back without an id.
pub(crate) fn encode(id: u64, op: Op, max_request: usize) -> Result<Vec<u8>, Error> {
    let req = Request {
        id: serde_json::Value::from(id),
        op,
    };
    let mut line =
        serde_json::to_vec(&req).map_err(|e| Error::Protocol(format!("cannot encode: {e}")))?;
    line.push(b'\n');
    if line.len() > max_request {
        return Err(Error::RequestTooLarge {
            size: line.len(),
            limit: max_request,
        });
    }
    Ok(line)
}

/// Decode one response line (without its newline).
pub(crate) fn decode(line: &[u8]) -> Result<Response, Error> {
    serde_json::from_slice(line).map_err(|e| Error::Protocol(format!("bad response: {e}")))
}

/// The id of a response as our counter, when it is one of ours.
pub(crate) fn response_id(r: &Response) -> Option<u64> {
    r.id.as_u64()
}

/// A response turned into its verdict.
pub(crate) fn into_verdict(r: Response) -> Result<Verdict, Error> {
    let r = into_ok(r)?;
    r.verdict
        .ok_or_else(|| Error::Protocol("success without a verdict".into()))
}

/// A response turned into an error when `ok` is false.
pub(crate) fn into_ok(r: Response) -> Result<Response, Error> {
    if r.ok {
        return Ok(r);
    }
    Err(match r.error {
        Some(e) => Error::Server {
            code: e.code,
            message: e.message,
        },
        None => Error::Protocol("failure without an error".into()),
    })
}

/// Finds complete lines in a growing buffer without rescanning what was
/// already searched, so a long line costs linear time.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    pub buf: Vec<u8>,
    /// Bytes of `buf` known to hold no newline.
    scanned: usize,
}

impl LineBuf {
    /// Take the next complete line (without its newline), if there is one.
    /// `Err` when more than `max` bytes arrived without a newline.
    pub fn take_line(&mut self, max: usize) -> Result<Option<Vec<u8>>, Error> {
        let tail = self.buf.get(self.scanned..).unwrap_or_default();
        match tail.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let end = self.scanned + i;
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                if line.len() > max {
                    return Err(too_long(max));
                }
                Ok(Some(line))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > max {
                    return Err(too_long(max));
                }
                Ok(None)
            }
        }
    }
}

fn too_long(max: usize) -> Error {
    Error::Protocol(format!("response line longer than {max} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_and_bounded() {
        let mut lb = LineBuf::default();
        lb.buf.extend_from_slice(b"{\"a\"");
        assert_eq!(lb.take_line(100).ok(), Some(None));
        lb.buf.extend_from_slice(b":1}\n{\"b\":2}\nxx");
        assert_eq!(lb.take_line(100).ok(), Some(Some(b"{\"a\":1}".to_vec())));
        assert_eq!(lb.take_line(100).ok(), Some(Some(b"{\"b\":2}".to_vec())));
        assert_eq!(lb.take_line(100).ok(), Some(None));
        lb.buf.extend_from_slice(&[b'x'; 200]);
        assert!(matches!(lb.take_line(100), Err(Error::Protocol(_))));
    }

    #[test]
    fn oversized_requests_are_refused_before_sending() {
        let op = Op::Scan {
            text: "x".repeat(100),
            direction: crate::wire::Direction::Inbound,
        };
        assert!(matches!(
            encode(1, op.clone(), 50),
            Err(Error::RequestTooLarge { limit: 50, .. })
        ));
        let line = encode(7, op, 1000).unwrap_or_default();
        assert!(line.ends_with(b"\n"));
        assert!(line.starts_with(b"{\"id\":7,\"op\":\"scan\""));
    }

    #[test]
    fn server_errors_become_typed_errors() {
        let r = Response::error(serde_json::json!(1), ErrorCode::Busy, "later");
        assert!(matches!(
            into_verdict(r),
            Err(Error::Server {
                code: ErrorCode::Busy,
                ..
            })
        ));
        assert!(matches!(
            into_verdict(Response::ok(serde_json::json!(1))),
            Err(Error::Protocol(_))
        ));
        assert!(FailMode::Closed.verdict().blocked);
        assert!(!FailMode::Open.verdict().blocked);
    }
}
