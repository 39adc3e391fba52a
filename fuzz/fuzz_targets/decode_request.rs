//! The scan API's request decoder on arbitrary bytes: it must never panic,
//! every refusal must be a well-formed `bad_request` answer on one line,
//! and every request it accepts must survive re-encoding unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shield_client::wire::{decode_request, ErrorCode, Op, Response};

/// Floats may not survive a text round trip bit for bit (serde_json's
/// default parser is not exact); values holding them are compared loosely.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(o) => o.values().any(has_float),
        _ => false,
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    has_float(a) || a == b
}

fuzz_target!(|data: &[u8]| {
    match decode_request(data) {
        Ok(req) => {
            let line = serde_json::to_vec(&req).expect("a decoded request encodes");
            let again = decode_request(&line).expect("a re-encoded request decodes");
            assert!(same_value(&req.id, &again.id));
            match (&req.op, &again.op) {
                (
                    Op::CheckTool {
                        tool: a,
                        params: pa,
                    },
                    Op::CheckTool {
                        tool: b,
                        params: pb,
                    },
                ) => {
                    assert_eq!(a, b);
                    assert!(same_value(pa, pb));
                }
                (a, b) => assert_eq!(a, b),
            }
        }
        Err(resp) => {
            assert!(!resp.ok);
            assert!(resp.verdict.is_none());
            let err = resp.error.as_ref().expect("a refusal carries its error");
            assert_eq!(err.code, ErrorCode::BadRequest);
            assert!(!err.message.is_empty());
            let out = serde_json::to_vec(&resp).expect("the answer encodes");
            assert!(!out.contains(&b'\n'), "the answer is one line");
            let back: Response = serde_json::from_slice(&out).expect("the answer parses");
            assert_eq!(back.error, resp.error);
            assert!(same_value(&back.id, &resp.id));
        }
    }
});
