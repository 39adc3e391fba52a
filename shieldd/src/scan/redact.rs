//! Redaction: replace every found value; overlapping findings are merged into
//! one span that carries the label of the highest-scoring finding in it.
use hmac::{Hmac, Mac};
use sha2::Sha256;
use shield_client::wire::Finding;

/// How a found value is replaced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RedactMode {
    /// `[CREDIT_CARD_REDACTED]`.
    #[default]
    Label,
    /// Keep the last four characters: `[CREDIT_CARD:****1111]`. Values shorter
    /// than eight characters get the label form (four would be half of them).
    Partial,
    /// A keyed hash of the value: `[EMAIL:3fa9c1d2]` (HMAC-SHA256, first 4 bytes).
    Hash {
        /// HMAC key.
        key: Vec<u8>,
    },
}

/// One merged span and the finding type that names it.
struct Span<'a> {
    start: usize,
    end: usize,
    ty: &'a str,
    score: f32,
}

/// `text` with every finding replaced; overlapping findings merged.
///
/// Offsets past the end of `text` are clamped and offsets inside a UTF-8
/// sequence are widened to the enclosing character, so the result is always
/// valid UTF-8 and never keeps part of a found value.
pub fn redact(text: &str, findings: &[Finding], mode: &RedactMode) -> String {
    let spans = merge(text, findings);
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for s in &spans {
        out.push_str(text.get(pos..s.start).unwrap_or(""));
        let value = text.get(s.start..s.end).unwrap_or("");
        out.push_str(&replacement(s.ty, value, mode));
        pos = s.end;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

/// Clamp, widen to character boundaries, sort and merge overlapping spans.
fn merge<'a>(text: &str, findings: &'a [Finding]) -> Vec<Span<'a>> {
    let mut spans: Vec<Span<'a>> = findings
        .iter()
        .filter(|f| f.start < f.end)
        .filter_map(|f| {
            let mut start = f.start.min(text.len());
            let mut end = f.end.min(text.len());
            while start > 0 && !text.is_char_boundary(start) {
                start -= 1;
            }
            while end < text.len() && !text.is_char_boundary(end) {
                end += 1;
            }
            (start < end).then_some(Span {
                start,
                end,
                ty: f.ty.as_str(),
                score: if f.score.is_nan() { 0.0 } else { f.score },
            })
        })
        .collect();
    spans.sort_by_key(|s| (s.start, s.end));
    let mut merged: Vec<Span<'a>> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start < last.end => {
                last.end = last.end.max(s.end);
                if s.score > last.score {
                    last.score = s.score;
                    last.ty = s.ty;
                }
            }
            _ => merged.push(s),
        }
    }
    merged
}

/// `credit_card` -> `CREDIT_CARD`; anything outside `[A-Za-z0-9]` becomes `_`.
fn label(ty: &str) -> String {
    let l: String = ty
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if l.is_empty() {
        "SENSITIVE".to_string()
    } else {
        l
    }
}

fn replacement(ty: &str, value: &str, mode: &RedactMode) -> String {
    let l = label(ty);
    match mode {
        RedactMode::Label => format!("[{l}_REDACTED]"),
        RedactMode::Partial => {
            let n = value.chars().count();
            if n < 8 {
                return format!("[{l}_REDACTED]");
            }
            let tail: String = value.chars().skip(n - 4).collect();
            format!("[{l}:****{tail}]")
        }
        RedactMode::Hash { key } => format!("[{l}:{}]", keyed_hash(key, value)),
    }
}

/// First four bytes of HMAC-SHA256(key, value), hex: stable per key, so equal
/// values can be correlated without being revealed.
pub fn keyed_hash(key: &[u8], value: &str) -> String {
    // HMAC accepts keys of any length, so this never fails; fall back to the
    // empty string rather than panic if that ever changes.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(value.as_bytes());
    let tag = mac.finalize().into_bytes();
    hex::encode(tag.get(..4).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shield_client::wire::FindingKind;

    fn f(ty: &str, start: usize, end: usize, score: f32) -> Finding {
        Finding {
            kind: FindingKind::Pii,
            ty: ty.to_string(),
            start,
            end,
            score,
            detail: String::new(),
        }
    }

    #[test]
    fn label_mode() {
        let t = "card 4111 1111 1111 1111 ok";
        assert_eq!(
            redact(t, &[f("credit_card", 5, 24, 0.9)], &RedactMode::Label),
            "card [CREDIT_CARD_REDACTED] ok"
        );
    }

    #[test]
    fn partial_mode_keeps_last_four_only_for_long_values() {
        let t = "card 4111111111111234 and pin 1234";
        let out = redact(
            t,
            &[f("credit_card", 5, 21, 0.9), f("pin", 30, 34, 0.5)],
            &RedactMode::Partial,
        );
        assert_eq!(out, "card [CREDIT_CARD:****1234] and pin [PIN_REDACTED]");
    }

    #[test]
    fn hash_mode_is_keyed_and_stable() {
        let t = "mail a@corp.io and a@corp.io";
        let k1 = RedactMode::Hash {
            key: b"k1".to_vec(),
        };
        let k2 = RedactMode::Hash {
            key: b"k2".to_vec(),
        };
        let fs = [f("email", 5, 14, 0.9), f("email", 19, 28, 0.9)];
        let o1 = redact(t, &fs, &k1);
        let h = keyed_hash(b"k1", "a@corp.io");
        assert_eq!(h.len(), 8);
        assert_eq!(o1, format!("mail [EMAIL:{h}] and [EMAIL:{h}]"));
        assert_ne!(o1, redact(t, &fs, &k2));
    }

    #[test]
    fn overlaps_merge_under_the_higher_score() {
        let t = "xx AAAABBBBCCCC yy";
        let out = redact(
            t,
            &[f("phone", 3, 11, 0.6), f("credit_card", 7, 15, 0.95)],
            &RedactMode::Label,
        );
        assert_eq!(out, "xx [CREDIT_CARD_REDACTED] yy");
        // Adjacent (touching) spans stay separate.
        let out = redact(
            t,
            &[f("a", 3, 7, 0.5), f("b", 7, 11, 0.5)],
            &RedactMode::Label,
        );
        assert_eq!(out, "xx [A_REDACTED][B_REDACTED]CCCC yy");
    }

    #[test]
    fn bad_offsets_are_clamped_and_widened() {
        let t = "é secret é";
        // 1 is inside `é` (2 bytes); 100 is past the end.
        let out = redact(t, &[f("secret", 1, 100, 0.9)], &RedactMode::Label);
        assert_eq!(out, "[SECRET_REDACTED]");
        assert_eq!(
            redact(
                t,
                &[f("x", 5, 5, 0.9), f("y", 9, 2, 0.9)],
                &RedactMode::Label
            ),
            t
        );
    }

    const TYPES: [&str; 5] = ["credit_card", "email", "ssn", "github_token", "link_exfil"];

    fn modes() -> impl Strategy<Value = RedactMode> {
        prop_oneof![
            Just(RedactMode::Label),
            Just(RedactMode::Partial),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(|key| RedactMode::Hash { key }),
        ]
    }

    proptest! {
        // Values use only the letters g-z, which no label, hash or surrounding
        // text contains, so any occurrence in the output would be a leak.
        #[test]
        fn never_leaks_a_found_value(
            parts in proptest::collection::vec(("[^g-z]{0,12}", "[g-z]{8,24}", 0usize..5, 0.0f32..1.0), 1..6),
            tail in "[^g-z]{0,12}",
            mode in modes(),
        ) {
            let mut text = String::new();
            let mut findings = Vec::new();
            let mut values = Vec::new();
            for (gap, value, ty, score) in &parts {
                text.push_str(gap);
                let start = text.len();
                text.push_str(value);
                findings.push(f(TYPES[*ty], start, text.len(), *score));
                values.push(value.clone());
                text.push(' ');
            }
            text.push_str(&tail);
            let out = redact(&text, &findings, &mode);
            prop_assert!(std::str::from_utf8(out.as_bytes()).is_ok());
            for v in &values {
                prop_assert!(!out.contains(v.as_str()), "leaked {v} in {out}");
            }
        }

        #[test]
        fn arbitrary_spans_never_panic_and_stay_utf8(
            text in "\\PC{0,60}",
            spans in proptest::collection::vec((0usize..200, 0usize..200, 0.0f32..1.0), 0..8),
            mode in modes(),
        ) {
            let findings: Vec<Finding> = spans.iter().map(|&(a, b, s)| f("x", a, b, s)).collect();
            let out = redact(&text, &findings, &mode);
            prop_assert!(std::str::from_utf8(out.as_bytes()).is_ok());
            if findings.iter().all(|x| x.start >= x.end || x.start >= text.len()) {
                prop_assert_eq!(out, text);
            }
        }

        #[test]
        fn detected_cards_never_survive_redaction(
            prefix in "[a-z ]{0,20}",
            body in proptest::collection::vec(0u8..10, 14),
            suffix in "[a-z ]{0,20}",
            mode in modes(),
        ) {
            // A Luhn-valid Visa number built from random digits.
            let mut d: Vec<u8> = vec![4];
            d.extend(&body);
            let sum: u32 = d.iter().rev().enumerate().map(|(i, &x)| {
                let x = u32::from(x);
                if i % 2 == 0 { let y = x * 2; if y > 9 { y - 9 } else { y } } else { x }
            }).sum();
            d.push(((10 - sum % 10) % 10) as u8);
            let card: String = d.iter().map(|x| char::from(b'0' + x)).collect();
            let text = format!("{prefix} {card} {suffix}");
            let mut found = Vec::new();
            crate::scan::pii::detect(&text, &mut found);
            prop_assert!(found.iter().any(|x| x.ty == "credit_card"), "{text}");
            let out = redact(&text, &found, &mode);
            prop_assert!(!out.contains(&card));
        }
    }
}
