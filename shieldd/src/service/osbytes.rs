//! OS strings (arguments, paths, environment entries) on the control
//! socket's JSON: a JSON string when the bytes are UTF-8, else
//! `{"b64": "..."}` with the exact bytes in base64. Unix arguments and
//! environment values are bytes, and an agent started through the daemon
//! must see the same bytes it would see started directly.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Exact bytes of one OS string, as sent between `shieldd run` and the
/// daemon.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsBytes(pub Vec<u8>);

impl OsBytes {
    /// The bytes as an OS string (no conversion: Unix OS strings are bytes).
    pub fn to_os_string(&self) -> OsString {
        OsString::from_vec(self.0.clone())
    }

    /// The bytes as a path.
    pub fn to_path_buf(&self) -> PathBuf {
        PathBuf::from(self.to_os_string())
    }

    /// For messages and records: lossy, never used to act on.
    pub fn display(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl From<&OsStr> for OsBytes {
    fn from(s: &OsStr) -> Self {
        OsBytes(s.as_bytes().to_vec())
    }
}

impl From<OsString> for OsBytes {
    fn from(s: OsString) -> Self {
        OsBytes(s.into_vec())
    }
}

impl From<&str> for OsBytes {
    fn from(s: &str) -> Self {
        OsBytes(s.as_bytes().to_vec())
    }
}

impl From<String> for OsBytes {
    fn from(s: String) -> Self {
        OsBytes(s.into_bytes())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Repr {
    Text(String),
    Bytes { b64: String },
}

impl Serialize for OsBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(t) => s.serialize_str(t),
            Err(_) => Repr::Bytes {
                b64: base64::engine::general_purpose::STANDARD.encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OsBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Text(t) => Ok(OsBytes(t.into_bytes())),
            Repr::Bytes { b64 } => base64::engine::general_purpose::STANDARD
                .decode(b64.as_bytes())
                .map(OsBytes)
                .map_err(|e| serde::de::Error::custom(format!("bad base64 in an OS string: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(b: &[u8]) -> (String, OsBytes) {
        let json = serde_json::to_string(&OsBytes(b.to_vec())).expect("encode");
        let back: OsBytes = serde_json::from_str(&json).expect("decode");
        (json, back)
    }

    #[test]
    fn utf8_stays_a_plain_string_and_other_bytes_survive_exactly() {
        // UTF-8, non-ASCII included, stays readable (and old clients'
        // plain strings still decode).
        let (json, back) = round("héllo wörld".as_bytes());
        assert_eq!(json, "\"héllo wörld\"");
        assert_eq!(back.0, "héllo wörld".as_bytes());
        // Invalid UTF-8 (a lone continuation byte, 0xff, a truncated
        // sequence) would have become U+FFFD in a String: exact here.
        for raw in [&b"\x80"[..], b"a\xffb", b"v\xe9\x80", b"\xc3", b"\x00\xfe"] {
            let (json, back) = round(raw);
            assert!(json.starts_with("{\"b64\":"), "{json}");
            assert_eq!(back.0, raw);
        }
        let e: OsBytes = serde_json::from_str("\"\"").expect("empty");
        assert!(e.0.is_empty());
    }

    #[test]
    fn bad_input_is_an_error_not_a_guess() {
        for bad in [
            "{\"b64\": \"***\"}",
            "{\"b64\": 5}",
            "{\"hex\": \"ff\"}",
            "17",
            "null",
            "[1,2]",
        ] {
            assert!(serde_json::from_str::<OsBytes>(bad).is_err(), "{bad}");
        }
    }
}
