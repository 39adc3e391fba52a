//! Text scanning (issue 4): prompt injection, PII, secrets, exfiltration.
//!
//! Layers: [`normalize`] -> [`decode`] -> [`injection`] rules + [`learned`]
//! model on inbound text; [`pii`], [`secrets`], [`exfil`] on any text;
//! [`redact`] builds the redacted text; [`stream`] scans token streams.

pub mod decode;
pub mod exfil;
pub mod injection;
pub mod learned;
pub mod normalize;
pub mod pii;
pub mod redact;
pub mod secrets;
pub mod stream;
