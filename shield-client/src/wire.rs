//! The wire types of the scan API (SPEC.md sections 4 and 5): the one
//! definition shared by the server (`shieldd`) and every Rust client.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Which way text flows relative to the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Text the agent reads: user messages, web pages, tool outputs.
    #[default]
    Inbound,
    /// Text the agent writes: answers, tool arguments.
    Outbound,
}

/// What the caller should do with the text or tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Use it as it is.
    Allow,
    /// Use `redacted` instead of the original.
    Redact,
    /// A person must approve the tool call first (tool policy only).
    NeedsApproval,
    /// Do not use it.
    Block,
}

/// The family of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Prompt injection or jailbreak.
    Injection,
    /// Personal data.
    Pii,
    /// Credentials and keys.
    Secret,
    /// Data leaving through URLs, images or encoded blobs.
    Exfiltration,
    /// A tool call the tool policy refuses.
    ToolPolicy,
}

/// One thing the scanner found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Family of the finding.
    pub kind: FindingKind,
    /// Specific type, e.g. `direct_injection`, `ssn`, `credit_card`, `aws_key`.
    #[serde(rename = "type")]
    pub ty: String,
    /// Byte offset into the original UTF-8 text (inclusive).
    pub start: usize,
    /// Byte offset into the original UTF-8 text (exclusive).
    pub end: usize,
    /// Confidence in [0, 1].
    pub score: f32,
    /// Human-readable explanation; never contains the found value itself.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The answer to a scan or a tool-call check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// What to do.
    pub action: Action,
    /// `true` when `action` is `block` (kept for clients that test one flag).
    pub blocked: bool,
    /// Everything found, in order of `start`.
    pub findings: Vec<Finding>,
    /// The text with redactions applied, present when `action` is `redact`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
    /// Time spent deciding, in microseconds.
    pub latency_us: u64,
}

impl Verdict {
    /// An `allow` verdict with no findings.
    pub fn allow() -> Self {
        Verdict {
            action: Action::Allow,
            blocked: false,
            findings: Vec::new(),
            redacted: None,
            latency_us: 0,
        }
    }

    /// A `block` verdict with no findings: what a fail-closed client returns
    /// when it could not get an answer.
    pub fn block() -> Self {
        Verdict {
            action: Action::Block,
            blocked: true,
            ..Verdict::allow()
        }
    }
}

/// Default largest request line the server accepts, in bytes.
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// The operation of a request (SPEC section 4), with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Scan one text.
    Scan {
        /// The text.
        text: String,
        /// Which way it flows.
        #[serde(default)]
        direction: Direction,
    },
    /// Check one tool call against the tool policy.
    CheckTool {
        /// Tool name.
        tool: String,
        /// Its parameters.
        #[serde(default)]
        params: serde_json::Value,
    },
    /// Liveness.
    Ping,
    /// A streaming scan: `open`, then `chunk`s, then `close`.
    ScanStream {
        /// open, chunk or close.
        action: StreamAction,
        /// Stream handle returned by `open` (absent on `open`).
        #[serde(default)]
        stream: Option<u64>,
        /// The chunk (for `chunk`).
        #[serde(default)]
        text: String,
        /// Direction (for `open`).
        #[serde(default)]
        direction: Direction,
    },
    /// Server counters.
    Stats,
}

/// Step of a streaming scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamAction {
    /// Start a stream; the response carries its handle.
    Open,
    /// Add text.
    Chunk,
    /// End it; the response carries the final verdict.
    Close,
}

/// One request line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Copied into the response; any JSON value.
    #[serde(default)]
    pub id: serde_json::Value,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, not UTF-8, or not a known request shape.
    BadRequest,
    /// The line exceeded the server's limit.
    TooLarge,
    /// Too many requests in flight.
    Busy,
    /// The peer may not do this.
    Forbidden,
    /// Unknown stream handle.
    NoSuchStream,
    /// A server fault; the request may be retried.
    Internal,
}

/// The error of a failed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// Code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

/// One response line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's id (null when the request could not be read).
    #[serde(default)]
    pub id: serde_json::Value,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The verdict of `scan`, `check_tool` and `scan_stream` chunk/close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// The handle of an opened stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<u64>,
    /// `stats` counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<serde_json::Value>,
    /// Set when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Response {
    /// A success carrying nothing (ping).
    pub fn ok(id: serde_json::Value) -> Response {
        Response {
            id,
            ok: true,
            verdict: None,
            stream: None,
            stats: None,
            error: None,
        }
    }

    /// A success carrying a verdict.
    pub fn verdict(id: serde_json::Value, v: Verdict) -> Response {
        Response {
            verdict: Some(v),
            ..Response::ok(id)
        }
    }

    /// A failure.
    pub fn error(id: serde_json::Value, code: ErrorCode, message: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(WireError {
                code,
                message: message.into(),
            }),
            ..Response::ok(id)
        }
    }
}

/// A request whose strings borrow from the line it was decoded from: the
/// server hands the text to the scanner without copying it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRef<'a> {
    /// Copied into the response; any JSON value.
    pub id: serde_json::Value,
    /// What to do.
    pub op: OpRef<'a>,
}

/// [`Op`] with borrowed strings.
#[derive(Debug, Clone, PartialEq)]
pub enum OpRef<'a> {
    /// Scan one text.
    Scan {
        /// The text.
        text: Cow<'a, str>,
        /// Which way it flows.
        direction: Direction,
    },
    /// Check one tool call.
    CheckTool {
        /// Tool name.
        tool: Cow<'a, str>,
        /// Its parameters.
        params: serde_json::Value,
    },
    /// Liveness.
    Ping,
    /// A streaming scan step.
    ScanStream {
        /// open, chunk or close.
        action: StreamAction,
        /// Stream handle (absent on `open`).
        stream: Option<u64>,
        /// The chunk.
        text: Cow<'a, str>,
        /// Direction (for `open`).
        direction: Direction,
    },
    /// Server counters.
    Stats,
}

impl RequestRef<'_> {
    /// The owned [`Request`].
    pub fn into_owned(self) -> Request {
        let op = match self.op {
            OpRef::Scan { text, direction } => Op::Scan {
                text: text.into_owned(),
                direction,
            },
            OpRef::CheckTool { tool, params } => Op::CheckTool {
                tool: tool.into_owned(),
                params,
            },
            OpRef::Ping => Op::Ping,
            OpRef::ScanStream {
                action,
                stream,
                text,
                direction,
            } => Op::ScanStream {
                action,
                stream,
                text: text.into_owned(),
                direction,
            },
            OpRef::Stats => Op::Stats,
        };
        Request { id: self.id, op }
    }
}

/// Every field any request may carry, decoded in one pass. Written instead
/// of deserializing [`Request`] directly because serde's `flatten` of an
/// internally tagged enum buffers the whole object into an intermediate
/// tree and copies every string; this reads the line once and borrows.
#[derive(Deserialize)]
struct Flat<'a> {
    #[serde(default)]
    id: serde_json::Value,
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<CowStr<'a>>,
    #[serde(default)]
    direction: Option<Direction>,
    #[serde(borrow, default)]
    tool: Option<CowStr<'a>>,
    #[serde(default)]
    params: Option<serde_json::Value>,
    #[serde(default)]
    action: Option<StreamAction>,
    #[serde(default)]
    stream: Option<u64>,
}

/// A string borrowed from the line unless it has escapes. The newtype is
/// what lets serde borrow inside an `Option` (it does not for a bare
/// `Option<Cow<str>>`).
#[derive(Deserialize)]
struct CowStr<'a>(#[serde(borrow)] Cow<'a, str>);

/// Decode one request line (without its newline; surrounding JSON
/// whitespace, `\r` included, is allowed). A line that is not UTF-8, not
/// JSON, or not a known request gives the `bad_request` response to send
/// back, carrying the request's id when one can still be read.
///
/// Pure and total: no input panics, and nesting depth is bounded by
/// serde_json's recursion limit (128).
// The error is the answer itself, moved once to the writer: boxing it would
// only add an allocation to every refusal.
#[allow(clippy::result_large_err)]
pub fn decode_request_ref(line: &[u8]) -> Result<RequestRef<'_>, Response> {
    let bad = |id: serde_json::Value, msg: String| Response::error(id, ErrorCode::BadRequest, msg);
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(bad(
            serde_json::Value::Null,
            "request is not valid UTF-8".into(),
        ));
    };
    let flat: Flat<'_> = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return Err(bad(peek_id(text), format!("bad request: {e}"))),
    };
    let id = flat.id;
    let missing = |id: serde_json::Value, field: &str, op: &str| {
        Err(bad(id, format!("bad request: `{op}` needs `{field}`")))
    };
    let op = match &*flat.op {
        "scan" => match flat.text {
            Some(CowStr(text)) => OpRef::Scan {
                text,
                direction: flat.direction.unwrap_or_default(),
            },
            None => return missing(id, "text", "scan"),
        },
        "check_tool" => match flat.tool {
            Some(CowStr(tool)) => OpRef::CheckTool {
                tool,
                params: flat.params.unwrap_or_default(),
            },
            None => return missing(id, "tool", "check_tool"),
        },
        "ping" => OpRef::Ping,
        "stats" => OpRef::Stats,
        "scan_stream" => match flat.action {
            Some(action) => OpRef::ScanStream {
                action,
                stream: flat.stream,
                text: flat.text.map(|t| t.0).unwrap_or_default(),
                direction: flat.direction.unwrap_or_default(),
            },
            None => return missing(id, "action", "scan_stream"),
        },
        other => {
            let mut shown: String = other.chars().take(40).collect();
            if shown.len() < other.len() {
                shown.push('…');
            }
            return Err(bad(
                id,
                format!(
                    "bad request: unknown op `{shown}` (expected scan, check_tool, ping, scan_stream or stats)"
                ),
            ));
        }
    };
    Ok(RequestRef { id, op })
}

/// [`decode_request_ref`] with owned strings.
#[allow(clippy::result_large_err)]
pub fn decode_request(line: &[u8]) -> Result<Request, Response> {
    decode_request_ref(line).map(RequestRef::into_owned)
}

/// The id of a request that failed to decode, when it can still be found.
fn peek_id(text: &str) -> serde_json::Value {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: serde_json::Value,
    }
    serde_json::from_str::<IdOnly>(text)
        .map(|i| i.id)
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_requests_parse() {
        let r: Request = serde_json::from_str(
            r#"{"id": 1, "op": "scan", "text": "hi", "direction": "outbound"}"#,
        )
        .unwrap();
        assert_eq!(
            r.op,
            Op::Scan {
                text: "hi".into(),
                direction: Direction::Outbound
            }
        );
        let r: Request = serde_json::from_str(
            r#"{"id": "a", "op": "check_tool", "tool": "read_file", "params": {"path": "/etc/passwd"}}"#,
        )
        .unwrap();
        assert!(matches!(r.op, Op::CheckTool { ref tool, .. } if tool == "read_file"));
        let r: Request = serde_json::from_str(r#"{"id": 3, "op": "ping"}"#).unwrap();
        assert_eq!(r.op, Op::Ping);
        assert!(serde_json::from_str::<Request>(r#"{"id": 3, "op": "nope"}"#).is_err());
        let resp = Response::error(serde_json::json!(1), ErrorCode::BadRequest, "x");
        let s = serde_json::to_string(&resp).unwrap();
        assert_eq!(
            s,
            r#"{"id":1,"ok":false,"error":{"code":"bad_request","message":"x"}}"#
        );
    }

    #[test]
    fn decoding_borrows_plain_strings_and_refuses_with_ids() {
        let line = br#"{"id": 4, "op": "scan", "text": "plain", "direction": "outbound"}"#;
        let r = decode_request_ref(line).unwrap();
        assert!(matches!(
            r.op,
            OpRef::Scan {
                text: Cow::Borrowed("plain"),
                direction: Direction::Outbound
            }
        ));
        let r = decode_request(br#"{"id": 4, "op": "scan", "text": "a\nb\u00e9"}"#).unwrap();
        assert_eq!(
            r.op,
            Op::Scan {
                text: "a\nbé".into(),
                direction: Direction::Inbound
            }
        );
        let r = decode_request(b"{\"op\": \"check_tool\", \"tool\": \"t\"}\r").unwrap();
        assert_eq!(r.id, serde_json::Value::Null);
        assert!(matches!(r.op, Op::CheckTool { ref params, .. } if params.is_null()));
        for (line, id) in [
            (&br#"{"id": 9, "op": "scan"}"#[..], serde_json::json!(9)),
            (br#"{"id": "x", "op": "nope"}"#, serde_json::json!("x")),
            (br#"{"id": 2, "op": "scan_stream"}"#, serde_json::json!(2)),
            (
                br#"{"id": 3, "op": "scan", "text": 5}"#,
                serde_json::json!(3),
            ),
            (
                b"{\"id\": 1, \"op\": \"scan\", \"text\": \"\xff\"}",
                serde_json::Value::Null,
            ),
            (b"nonsense", serde_json::Value::Null),
        ] {
            let e = decode_request(line).unwrap_err();
            assert_eq!(e.id, id, "{}", String::from_utf8_lossy(line));
            assert_eq!(e.error.map(|e| e.code), Some(ErrorCode::BadRequest));
        }
        // Look-alikes of valid requests that must be refused.
        assert!(decode_request(br#"{"id": 1, "op": "Scan", "text": "x"}"#).is_err());
        assert!(
            decode_request(br#"{"id": 1, "op": "scan", "text": "x", "direction": "up"}"#).is_err()
        );
        assert!(decode_request(br#"{"id": 1, "op": "scan", "text": "x", "text": "y"}"#).is_err());
    }
}

/// The request decoder over arbitrary input, in every `cargo test` (the
/// libFuzzer target in `fuzz/` checks the same properties for longer).
#[cfg(test)]
mod decoder_props {
    use super::*;
    use proptest::prelude::*;

    fn has_float(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) => n.is_f64(),
            serde_json::Value::Array(a) => a.iter().any(has_float),
            serde_json::Value::Object(o) => o.values().any(has_float),
            _ => false,
        }
    }

    /// The properties: no panic; a refusal is a one-line `bad_request`
    /// answer that parses back; an accepted request survives re-encoding.
    fn check(data: &[u8]) -> Result<(), TestCaseError> {
        match decode_request(data) {
            Ok(req) => {
                let line =
                    serde_json::to_vec(&req).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let again = decode_request(&line)
                    .map_err(|e| TestCaseError::fail(format!("re-decode: {e:?}")))?;
                if !has_float(&serde_json::to_value(&req).unwrap_or_default()) {
                    prop_assert_eq!(again, req);
                }
            }
            Err(resp) => {
                prop_assert!(!resp.ok);
                prop_assert!(resp.verdict.is_none());
                let err = resp.error.clone();
                prop_assert_eq!(err.as_ref().map(|e| e.code), Some(ErrorCode::BadRequest));
                prop_assert!(err.is_some_and(|e| !e.message.is_empty()));
                let out =
                    serde_json::to_vec(&resp).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(!out.contains(&b'\n'));
                let back: Response =
                    serde_json::from_slice(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back.error, resp.error);
            }
        }
        Ok(())
    }

    /// Pieces of requests, so that random concatenations are often close
    /// to valid and reach past the first syntax error.
    fn fragment() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"{".to_vec()),
            Just(b"}".to_vec()),
            Just(b"[".to_vec()),
            Just(b"]".to_vec()),
            Just(b":".to_vec()),
            Just(b",".to_vec()),
            Just(b"\"id\"".to_vec()),
            Just(b"\"op\"".to_vec()),
            Just(b"\"text\"".to_vec()),
            Just(b"\"tool\"".to_vec()),
            Just(b"\"params\"".to_vec()),
            Just(b"\"direction\"".to_vec()),
            Just(b"\"action\"".to_vec()),
            Just(b"\"stream\"".to_vec()),
            Just(b"\"scan\"".to_vec()),
            Just(b"\"check_tool\"".to_vec()),
            Just(b"\"scan_stream\"".to_vec()),
            Just(b"\"ping\"".to_vec()),
            Just(b"\"open\"".to_vec()),
            Just(b"\"chunk\"".to_vec()),
            Just(b"\"outbound\"".to_vec()),
            Just(b"null".to_vec()),
            Just(b"-12".to_vec()),
            Just(b"2.5e3".to_vec()),
            Just(b"\"\\ud800\"".to_vec()),
            Just(b"\"\\u00e9\\n\"".to_vec()),
            Just(b"\xff".to_vec()),
            Just(b" \r\t".to_vec()),
            "\"[^\"\\\\]{0,12}\"".prop_map(String::into_bytes),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        let id = prop_oneof![
            Just(serde_json::Value::Null),
            any::<u64>().prop_map(serde_json::Value::from),
            ".{0,8}".prop_map(serde_json::Value::from),
        ];
        let dir = prop_oneof![Just(Direction::Inbound), Just(Direction::Outbound)];
        let action = prop_oneof![
            Just(StreamAction::Open),
            Just(StreamAction::Chunk),
            Just(StreamAction::Close)
        ];
        let op = prop_oneof![
            (".*", dir.clone()).prop_map(|(text, direction)| Op::Scan { text, direction }),
            (
                ".{0,16}",
                prop::collection::btree_map("[a-z]{1,6}", ".{0,8}", 0..4)
            )
                .prop_map(|(tool, m)| Op::CheckTool {
                    tool,
                    params: serde_json::to_value(m).unwrap_or_default(),
                }),
            Just(Op::Ping),
            Just(Op::Stats),
            (action, proptest::option::of(any::<u64>()), ".{0,32}", dir).prop_map(
                |(action, stream, text, direction)| Op::ScanStream {
                    action,
                    stream,
                    text,
                    direction
                }
            ),
        ];
        (id, op).prop_map(|(id, op)| Request { id, op })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
            check(&data)?;
        }

        #[test]
        fn near_requests(parts in prop::collection::vec(fragment(), 0..24)) {
            check(&parts.concat())?;
        }

        #[test]
        fn valid_requests_decode_to_themselves(req in request()) {
            let line = serde_json::to_vec(&req).unwrap_or_default();
            let got = decode_request(&line);
            prop_assert_eq!(got.as_ref().ok(), Some(&req), "{:?}", got);
            check(&line)?;
        }
    }
}
