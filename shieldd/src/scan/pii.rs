//! PII with validation: every candidate found by the regex pass must also pass
//! a structural check (Luhn, SSN area rules, IBAN mod-97, phone metadata,
//! IP parsing, ABA checksum) before it becomes a finding. Bare regexes alone
//! fire on order numbers, versions and arithmetic.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{LazyLock, OnceLock};

use regex::Regex;
use shield_client::wire::{Finding, FindingKind};

/// The candidate patterns, one per family; the order is the index used by
/// [`detect`]. Word boundaries are ASCII (`(?-u:\b)`): the entities are
/// ASCII, and a Unicode boundary forces the slow NFA engine on non-ASCII text.
const PATTERNS: [&str; 8] = [
    // 0 credit card: a plain run, or the 4-4-4-4(-3) / 4-6-5 groupings.
    r"(?-u:\b)(?:\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,3}|\d{4}[ -]\d{4}[ -]\d{4}[ -]\d{1,4}|\d{4}[ -]\d{6}[ -]\d{4,5}|\d{12,19})(?-u:\b)",
    // 1 SSN, formatted.
    r"(?-u:\b)\d{3}[- ]\d{2}[- ]\d{4}(?-u:\b)",
    // 2 nine bare digits: SSN or ABA routing number, both keyword-gated.
    r"(?-u:\b)\d{9}(?-u:\b)",
    // 3 IBAN, compact or in groups of four.
    r"(?-u:\b)[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){10,32}(?-u:\b)",
    // 4 e-mail address.
    r"(?-u:\b)[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?-u:\b)",
    // 5 phone: optional +CC, optional (0), optional (area), digit groups, extension.
    r"(?:\+\d{1,3}[ .-]?)?(?:\(0\)[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{1,12}(?:[ .-]\d{1,6}){0,5}(?:[ ]?(?:x|ext\.?|#)[ ]?\d{1,6})?",
    // 6 IPv4.
    r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)",
    // 7 IPv6 (std parsing decides).
    r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?",
];

/// Each family's regex, compiled on the first text whose shape lets it
/// run: most texts need none, and compiling all eight cost 2.7 MB resident.
static FAMILIES: [OnceLock<Option<Regex>>; PATTERNS.len()] =
    [const { OnceLock::new() }; PATTERNS.len()];

/// The regex of family `i` (an index into [`PATTERNS`]).
fn family(i: usize) -> Option<&'static Regex> {
    let (cell, pattern) = (FAMILIES.get(i)?, PATTERNS.get(i)?);
    cell.get_or_init(|| {
        regex::RegexBuilder::new(pattern)
            .dfa_size_limit(16 << 20)
            .build()
            .ok()
    })
    .as_ref()
}

/// What one byte pass over the text tells about which families can match:
/// each family needs a minimum number of digits in one cluster (digits
/// joined by single separators), or an `@`, or two `:`.
#[derive(Default)]
struct Shape {
    /// Most digits in one cluster of digits joined by one or two of ` -.()+/`.
    max_cluster_digits: usize,
    /// Most dots in one such cluster.
    max_cluster_dots: usize,
    at: bool,
    /// Two colons with at most four hex digits between them, which every
    /// IPv6 candidate starts with (`2001:db8:`, `fe80::`).
    colon_pair: bool,
    digits: usize,
    /// Two letters then two digits somewhere (an IBAN's country and check digits).
    iban_head: bool,
}

/// Byte classes for [`shape`]: most bytes of prose are none of these, and
/// one table lookup decides that.
const C_DIGIT: u8 = 1;
const C_SEP: u8 = 2;
const C_AT: u8 = 4;
const C_COLON: u8 = 8;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = b'0';
    while i <= b'9' {
        t[i as usize] = C_DIGIT;
        i += 1;
    }
    let seps = b" -.()+/";
    let mut j = 0;
    while j < seps.len() {
        t[seps[j] as usize] = C_SEP;
        j += 1;
    }
    t[b'@' as usize] = C_AT;
    t[b':' as usize] = C_COLON;
    t
};

/// Whether `b` can change [`shape`]'s state outside a digit cluster: a
/// digit, `:` (0x3A, just after the digits) or `@`. Branch-free so that a
/// block of bytes is tested in one vectorised pass.
fn opens(b: u8) -> bool {
    b.wrapping_sub(b'0') <= 10 || b == b'@'
}

/// Bytes [`shape`] skips at a time while outside a cluster: prose has long
/// stretches without digits, `@` or `:`.
const SKIP_BLOCK: usize = 32;

fn shape(text: &str) -> Shape {
    let mut sh = Shape::default();
    let (mut cd, mut cdots, mut seps) = (0usize, 0usize, 0u8);
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if cd == 0 && !opens(b) {
            // Outside a cluster only digits, `@` and `:` matter: skip whole
            // blocks that have none, then single bytes up to the next one.
            i += 1;
            while let Some(block) = bytes.get(i..i + SKIP_BLOCK) {
                if block.iter().fold(false, |a, &x| a | opens(x)) {
                    break;
                }
                i += SKIP_BLOCK;
            }
            continue;
        }
        let class = CLASS[usize::from(b)];
        if class == C_DIGIT {
            if !sh.iban_head && i >= 3 {
                let w = bytes.get(i - 3..i).unwrap_or(&[]);
                sh.iban_head = matches!(w, [a, c, d] if a.is_ascii_alphabetic()
                    && c.is_ascii_alphabetic()
                    && d.is_ascii_digit());
            }
            cd += 1;
            sh.digits += 1;
            seps = 0;
            i += 1;
            continue;
        }
        i += 1;
        if cd == 0 && class & (C_AT | C_COLON) == 0 {
            // Outside a cluster, nothing to close.
            continue;
        }
        // Two in a row: `) ` in `(415) 555-2671`.
        if class == C_SEP && cd > 0 && seps < 2 {
            seps += 1;
            if b == b'.' {
                cdots += 1;
            }
            continue;
        }
        if class == C_AT {
            sh.at = true;
        } else if class == C_COLON {
            // The colon at `i - 1` and the nearest one before it, with at
            // most four hex digits between: two IPv6 groups.
            let back = bytes.get((i - 1).saturating_sub(5)..i - 1).unwrap_or(&[]);
            if let Some(p) = back.iter().rposition(|&c| c == b':') {
                let between = back.get(p + 1..).unwrap_or(&[]);
                sh.colon_pair |= between.iter().all(u8::is_ascii_hexdigit);
            }
        }
        sh.max_cluster_digits = sh.max_cluster_digits.max(cd);
        sh.max_cluster_dots = sh.max_cluster_dots.max(cdots);
        cd = 0;
        cdots = 0;
        seps = 0;
    }
    sh.max_cluster_digits = sh.max_cluster_digits.max(cd);
    sh.max_cluster_dots = sh.max_cluster_dots.max(cdots);
    sh
}

/// Phones written without `+` are tried against these regions, the ones the
/// product's users most often write numbers for. More regions would validate
/// more random digit groups.
const PHONE_REGIONS: [phonenumber::country::Id; 16] = {
    use phonenumber::country::Id::*;
    [
        US, GB, DE, FR, AU, IT, ES, NL, BE, CH, SE, NO, DK, IE, IN, BR,
    ]
};

/// Append every validated PII entity of `text` to `out` (byte offsets into `text`).
///
/// One byte pass ([`shape`]) decides which families can match at all; only
/// those run their candidate regex, and only candidates are validated.
pub fn detect(text: &str, out: &mut Vec<Finding>) {
    let sh = shape(text);
    let mut found: Vec<Finding> = Vec::new();
    let re = family;
    if sh.max_cluster_digits >= 12 {
        if let Some(r) = re(0) {
            cards(text, r, &mut found);
        }
    }
    if sh.max_cluster_digits >= 9 {
        if let Some(r) = re(1) {
            ssn_formatted(text, r, &mut found);
        }
        if let Some(r) = re(2) {
            nine_digits(text, r, &mut found);
        }
    }
    if sh.iban_head {
        if let Some(r) = re(3) {
            ibans(text, r, &mut found);
        }
    }
    if sh.at {
        if let Some(r) = re(4) {
            emails(text, r, &mut found);
        }
    }
    if sh.max_cluster_dots >= 3 && sh.max_cluster_digits >= 4 {
        if let Some(r) = re(6) {
            ipv4s(text, r, &mut found);
        }
    }
    if sh.colon_pair {
        if let Some(r) = re(7) {
            ipv6s(text, r, &mut found);
        }
    }
    // Phones last: a digit group already claimed by a stronger, checksummed
    // type is not also a phone.
    if sh.max_cluster_digits >= 7 {
        if let Some(r) = re(5) {
            let mut phones = Vec::new();
            phones_in(text, r, &mut phones);
            found.sort_by_key(|x| (x.start, x.end));
            phones.retain(|p| !overlaps_any(&found, p));
            found.extend(phones);
        }
    }
    found.sort_by_key(|x| (x.start, x.end));
    out.extend(found);
}

/// Whether `p` overlaps a finding of `sorted` (sorted by start): only the
/// findings starting before `p` ends can, and of those a bounded look back
/// suffices because same-family spans do not nest deeply.
fn overlaps_any(sorted: &[Finding], p: &Finding) -> bool {
    let idx = sorted.partition_point(|q| q.start < p.end);
    sorted
        .get(..idx)
        .unwrap_or(&[])
        .iter()
        .rev()
        .take(16)
        .any(|q| overlaps(p, q))
}

fn overlaps(a: &Finding, b: &Finding) -> bool {
    a.start < b.end && b.start < a.end
}

fn finding(ty: &str, start: usize, end: usize, score: f32, detail: &str) -> Finding {
    Finding {
        kind: FindingKind::Pii,
        ty: ty.to_string(),
        start,
        end,
        score,
        detail: detail.to_string(),
    }
}

/// The byte just before `start` and just after `end`, if any.
fn neighbours(text: &str, start: usize, end: usize) -> (Option<u8>, Option<u8>) {
    let b = text.as_bytes();
    let before = start.checked_sub(1).and_then(|i| b.get(i).copied());
    (before, b.get(end).copied())
}

/// True when the match is one piece of a longer number such as
/// `1234-5678-9012-3456-7890` or `10.0.0.1.5`: `sep` then a digit continues it.
fn embedded(text: &str, start: usize, end: usize, seps: &[u8]) -> bool {
    let b = text.as_bytes();
    let after = b.get(end).copied();
    let after2 = b.get(end + 1).copied();
    if let (Some(s), Some(d)) = (after, after2) {
        if seps.contains(&s) && d.is_ascii_digit() {
            return true;
        }
    }
    if start >= 2 {
        if let (Some(&s), Some(&d)) = (b.get(start - 1), b.get(start - 2)) {
            if seps.contains(&s) && d.is_ascii_digit() {
                return true;
            }
        }
    }
    false
}

/// Whether one of `keywords` (lower-case ASCII) occurs in the `window` bytes
/// before `start`.
pub(crate) fn keyword_before(text: &str, start: usize, window: usize, keywords: &[&str]) -> bool {
    let b = text.as_bytes();
    let end = start.min(b.len());
    let ctx = b.get(end.saturating_sub(window)..end).unwrap_or(&[]);
    keywords.iter().any(|k| {
        let k = k.as_bytes();
        k.len() <= ctx.len() && ctx.windows(k.len()).any(|w| w.eq_ignore_ascii_case(k))
    })
}

fn digits_of(s: &str) -> Vec<u8> {
    s.bytes()
        .filter(u8::is_ascii_digit)
        .map(|d| d - b'0')
        .collect()
}

/// The Luhn check used by every card scheme.
pub fn luhn(digits: &[u8]) -> bool {
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.checked_rem(10) == Some(0)
}

/// The card scheme whose issuer prefix and length `digits` fit, if any.
pub fn card_scheme(digits: &[u8]) -> Option<&'static str> {
    let n = digits.len();
    let prefix = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d))
    };
    let p2 = prefix(2);
    let p3 = prefix(3);
    let p4 = prefix(4);
    let p6 = prefix(6);
    if digits.first() == Some(&4) && matches!(n, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && n == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && n == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622126..=622925).contains(&p6))
        && (16..=19).contains(&n)
    {
        return Some("discover");
    }
    // JCB's assigned range is 3528-3589, but the rest of IIN 35 has no other
    // issuer, so a Luhn-valid 35 number is still most likely a JCB card.
    if p2 == 35 && (16..=19).contains(&n) {
        return Some("jcb");
    }
    if (p4 == 2131 || p4 == 1800) && n == 15 {
        return Some("jcb");
    }
    if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 || p4 == 3095)
        && (14..=19).contains(&n)
    {
        return Some("diners");
    }
    if p2 == 62 && (16..=19).contains(&n) {
        return Some("unionpay");
    }
    if (p2 == 50 || (56..=69).contains(&p2)) && (12..=19).contains(&n) {
        return Some("maestro");
    }
    if (2200..=2204).contains(&p4) && n == 16 {
        return Some("mir");
    }
    None
}

fn cards(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let s = m.as_str();
        // Continuing with the card's own separator means a longer number;
        // a space after a plain run is just the next word.
        let seps: &[u8] = if s.contains(' ') {
            b" "
        } else if s.contains('-') {
            b"-"
        } else {
            b"-."
        };
        if embedded(text, m.start(), m.end(), seps) {
            continue;
        }
        // Mixed separators (`1234-5678 9012`) are not how cards are written.
        if s.contains(' ') && s.contains('-') {
            continue;
        }
        let d = digits_of(s);
        // A run of one repeated digit passes Luhn for some lengths.
        if d.windows(2).all(|w| w.first() == w.get(1)) {
            continue;
        }
        let Some(scheme) = card_scheme(&d) else {
            continue;
        };
        if !luhn(&d) {
            continue;
        }
        let score = if s.len() == d.len() { 0.9 } else { 0.95 };
        out.push(finding(
            "credit_card",
            m.start(),
            m.end(),
            score,
            &format!("{scheme} card number, Luhn valid"),
        ));
    }
}

const SSN_KEYWORDS: [&str; 5] = ["ssn", "social security", "ss#", "social sec", "tax id"];

/// US SSN structure: area not 000, 666 or 900-999; group not 00; serial not 0000.
pub fn ssn_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        d.get(r)
            .unwrap_or(&[])
            .iter()
            .fold(0, |a, &x| a * 10 + u32::from(x))
    };
    let (area, group, serial) = (num(0..3), num(3..5), num(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn ssn_formatted(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let s = m.as_bytes_sep();
        if s.0 != s.1 || embedded(text, m.start(), m.end(), b"- ") {
            continue;
        }
        if !ssn_valid(&digits_of(m.as_str())) {
            continue;
        }
        let kw = keyword_before(text, m.start(), 48, &SSN_KEYWORDS);
        let score = match (kw, s.0) {
            (true, _) => 0.95,
            (false, b'-') => 0.85,
            _ => 0.6,
        };
        out.push(finding(
            "ssn",
            m.start(),
            m.end(),
            score,
            "US SSN, area/group/serial valid",
        ));
    }
}

trait Seps {
    fn as_bytes_sep(&self) -> (u8, u8);
}

impl Seps for regex::Match<'_> {
    /// The two separator bytes of a `ddd?dd?dddd` match.
    fn as_bytes_sep(&self) -> (u8, u8) {
        let b = self.as_str().as_bytes();
        (
            b.get(3).copied().unwrap_or(0),
            b.get(6).copied().unwrap_or(0),
        )
    }
}

const ROUTING_KEYWORDS: [&str; 5] = ["routing", "aba", "rtn", "transit", "bank"];

/// ABA routing number: valid Federal Reserve prefix and the 3-7-1 checksum.
pub fn aba_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let p = d.iter().take(2).fold(0u32, |a, &x| a * 10 + u32::from(x));
    if !matches!(p, 0..=12 | 21..=32 | 61..=72 | 80) {
        return false;
    }
    let w = [3u32, 7, 1, 3, 7, 1, 3, 7, 1];
    let sum: u32 = d.iter().zip(w).map(|(&x, w)| u32::from(x) * w).sum();
    sum.checked_rem(10) == Some(0) && d.iter().any(|&x| x != 0)
}

fn nine_digits(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        if embedded(text, m.start(), m.end(), b"-. ,") {
            continue;
        }
        let d = digits_of(m.as_str());
        if keyword_before(text, m.start(), 40, &ROUTING_KEYWORDS) && aba_valid(&d) {
            out.push(finding(
                "us_bank_routing",
                m.start(),
                m.end(),
                0.85,
                "ABA routing number, checksum valid",
            ));
        } else if keyword_before(text, m.start(), 40, &SSN_KEYWORDS) && ssn_valid(&d) {
            out.push(finding(
                "ssn",
                m.start(),
                m.end(),
                0.8,
                "US SSN (unformatted) near an SSN keyword",
            ));
        }
    }
}

/// IBAN length by country, from the ISO 13616 registry.
const IBAN_LENGTHS: [(&str, usize); 88] = [
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
];

/// ISO 7064 mod-97 over the rearranged IBAN (`compact` is upper-case alnum).
pub fn iban_valid(compact: &[u8]) -> bool {
    let Some(country) = compact.get(..2) else {
        return false;
    };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| c.as_bytes() == country) else {
        return false;
    };
    if compact.len() != len {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

fn ibans(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let s = m.as_str();
        let country = s.get(..2).unwrap_or("").to_ascii_uppercase();
        let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
            continue;
        };
        // The greedy group may run into the next word; cut at the country length.
        let mut compact = Vec::with_capacity(len);
        let mut end = m.start();
        for (i, c) in s.char_indices() {
            if compact.len() == len {
                break;
            }
            if c.is_ascii_alphanumeric() {
                compact.push(c.to_ascii_uppercase() as u8);
                end = m.start() + i + 1;
            }
        }
        if compact.len() != len {
            continue;
        }
        // Cut mid-word (`...1234ABC`) means the country length does not fit.
        if text
            .as_bytes()
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric())
        {
            continue;
        }
        // Mixed-case IBANs are words, not account numbers.
        let raw = text.get(m.start()..end).unwrap_or("");
        if raw.bytes().any(|b| b.is_ascii_lowercase())
            && raw.bytes().any(|b| b.is_ascii_uppercase())
        {
            continue;
        }
        if iban_valid(&compact) {
            out.push(finding(
                "iban",
                m.start(),
                end,
                0.95,
                "IBAN, country length and mod-97 valid",
            ));
        }
    }
}

/// Documentation-only domains (RFC 2606 / 6761): addresses there belong to nobody.
fn reserved_domain(domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    // `example.co.uk`, `mail.example.de`: documentation in any country.
    d.split('.').any(|label| label == "example")
        || ["localhost"]
            .iter()
            .any(|r| d == *r || d.ends_with(&format!(".{r}")))
        || [".example", ".test", ".invalid", ".localhost", ".local"]
            .iter()
            .any(|s| d.ends_with(s))
}

fn emails(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let s = m.as_str();
        let Some((local, domain)) = s.rsplit_once('@') else {
            continue;
        };
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            continue;
        }
        if reserved_domain(domain) {
            continue;
        }
        out.push(finding("email", m.start(), m.end(), 0.9, "e-mail address"));
    }
}

fn ipv4s(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        if embedded(text, m.start(), m.end(), b".") {
            continue;
        }
        let (before, after) = neighbours(text, m.start(), m.end());
        // `v1.2.3.4`, `1.2.3.4-beta`, `1.2.3.4.` at a sentence end is fine.
        if matches!(before, Some(b'v' | b'V' | b'-' | b'_' | b'/'))
            || matches!(after, Some(b'-' | b'_'))
        {
            continue;
        }
        if keyword_before(
            text,
            m.start(),
            24,
            &["version", "release", "ver.", "build"],
        ) {
            continue;
        }
        let Ok(ip) = m.as_str().parse::<Ipv4Addr>() else {
            continue;
        };
        if ip.is_unspecified() || ip.is_broadcast() {
            continue;
        }
        let score = if ip.is_private() || ip.is_loopback() || ip.is_link_local() {
            0.5
        } else {
            0.8
        };
        out.push(finding(
            "ip_address",
            m.start(),
            m.end(),
            score,
            "IPv4 address",
        ));
    }
}

fn ipv6s(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let (before, after) = neighbours(text, m.start(), m.end());
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'_')
            || after.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        {
            continue;
        }
        let mut s = m.as_str();
        let mut ip = s.parse::<Ipv6Addr>();
        // A sentence-final `:` is punctuation, not part of the address.
        if ip.is_err() && s.ends_with(':') && !s.ends_with("::") {
            s = s.get(..s.len() - 1).unwrap_or("");
            ip = s.parse::<Ipv6Addr>();
        }
        let Ok(ip) = ip else {
            continue;
        };
        let hex_digits = s.bytes().filter(u8::is_ascii_hexdigit).count();
        if ip.is_unspecified() || ip.is_loopback() || hex_digits < 4 {
            continue;
        }
        out.push(finding(
            "ip_address",
            m.start(),
            m.start() + s.len(),
            0.8,
            "IPv6 address",
        ));
    }
}

const PHONE_KEYWORDS: [&str; 9] = [
    "phone", "tel", "call", "mobile", "cell", "fax", "contact", "whatsapp", "sms",
];

/// Dates and times share the phone shape (`2023-10-15`, `12.05.2024`,
/// `2000-04-16 11` where a time follows).
fn date_like(s: &str) -> bool {
    let parts: Vec<&str> = s.split(['-', '.', '/', ' ']).collect();
    let n: Vec<usize> = parts.iter().take(3).map(|p| p.len()).collect();
    if n.len() < 3 {
        return false;
    }
    let same_sep = {
        let seps: Vec<char> = s
            .chars()
            .filter(|c| matches!(c, '-' | '.' | '/'))
            .take(2)
            .collect();
        seps.len() == 2 && seps.first() == seps.get(1)
    };
    same_sep && matches!(n.as_slice(), [4, 1 | 2, 1 | 2] | [1 | 2, 1 | 2, 2 | 4])
}

/// The phonenumber crate compiles its metadata regexes on use into one
/// shared LRU cache of 100; validating against [`PHONE_REGIONS`] touches about
/// twice that many, so with the default every candidate recompiled them all.
/// Room for every region's patterns keeps them compiled.
///
static PHONE_CACHE: LazyLock<()> = LazyLock::new(|| {
    if let Ok(mut c) = phonenumber::metadata::DATABASE.cache().lock() {
        *c = regex_cache::RegexCache::new(PHONE_CACHE_SIZE);
    }
});

/// Per entry of [`PHONE_REGIONS`], whether [`seed_phone_region`] has run.
static PHONE_SEEDED: [OnceLock<()>; PHONE_REGIONS.len()] =
    [const { OnceLock::new() }; PHONE_REGIONS.len()];

/// The phonenumber cache is keyed by pattern text, so the number-type
/// patterns validation against `PHONE_REGIONS[i]` can reach are put in before
/// its first use, compiled ASCII-only: the crate compiles them with Unicode
/// `\d`, whose UTF-8 automata made the ~200 regexes of all regions (and
/// their search caches) 10 MB resident. The patterns are only run on digit
/// strings (a national number printed from its integer value, or the
/// parser's digit-normalised national part), where ASCII and Unicode `\d`
/// agree. Per region, on first use: most texts' phones validate in the
/// first region tried.
fn seed_phone_region(i: usize) {
    let (Some(cell), Some(region)) = (PHONE_SEEDED.get(i), PHONE_REGIONS.get(i)) else {
        return;
    };
    cell.get_or_init(|| {
        LazyLock::force(&PHONE_CACHE);
        let db = &*phonenumber::metadata::DATABASE;
        let Some(code) = db.by_id(region.as_ref()).map(|m| m.country_code()) else {
            return;
        };
        let cache = db.cache();
        let Ok(mut c) = cache.lock() else {
            return;
        };
        seed_patterns(&mut c, phone_type_patterns(db, code));
    });
}

fn seed_patterns(c: &mut regex_cache::RegexCache, patterns: Vec<&str>) {
    for src in patterns {
        // Built as the crate builds them (`ignore_whitespace`: the metadata
        // patterns are laid out over several lines), ASCII-only.
        let built = regex::RegexBuilder::new(src)
            .ignore_whitespace(true)
            .unicode(false)
            .build();
        if let Ok(re) = built {
            c.save(re);
        }
    }
}

/// The patterns `phonenumber::is_valid` and the parser's number-type checks
/// run for a number parsed in a region of calling code `code`. The number is
/// attributed to one of the regions sharing the code by their leading-digit
/// patterns, or, for a region without one, by its number types (a `+1`
/// number is tried against the NANPA regions in turn): so the leading-digit
/// patterns of all of them, and the number-type descriptors of
/// [`PHONE_REGIONS`] and of the regions without leading digits. The rest
/// compile in the crate's way, if a number ever lands there.
fn phone_type_patterns(db: &phonenumber::metadata::Database, code: u16) -> Vec<&str> {
    let mut out = Vec::new();
    for meta in db.by_code(&code).unwrap_or_default() {
        out.extend(meta.leading_digits().map(|r| r.as_str()));
        let ours = PHONE_REGIONS.iter().any(|r| r.as_ref() == meta.id());
        if !ours && meta.leading_digits().is_some() {
            continue;
        }
        let d = meta.descriptors();
        let descs = [
            Some(d.general()),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ];
        out.extend(
            descs
                .into_iter()
                .flatten()
                .map(|x| x.national_number().as_str()),
        );
    }
    out
}

/// Comfortably more than the regexes of all [`PHONE_REGIONS`] and the
/// countries `+`-prefixed numbers name.
const PHONE_CACHE_SIZE: usize = 4096;

fn phone_valid(candidate: &str) -> bool {
    LazyLock::force(&PHONE_CACHE);
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return false;
    }
    // `+44 (0)20 ...`: the bracketed trunk zero is dropped when dialling from abroad.
    let cleaned = candidate.replace("(0)", "");
    // The phonenumber parser is third-party code run on untrusted input; a
    // panic inside it must not take the scanner down.
    std::panic::catch_unwind(|| {
        if cleaned.starts_with('+') {
            // An explicit country code is strong evidence: a known code and a
            // plausible national length suffice (ranges change faster than metadata).
            return phonenumber::parse(None, &cleaned).is_ok_and(|n| {
                let national = n.national().value().to_string().len();
                (6..=13).contains(&national)
            });
        }
        PHONE_REGIONS.iter().enumerate().any(|(i, &r)| {
            seed_phone_region(i);
            phonenumber::parse(Some(r), &cleaned)
                .map(|n| phonenumber::is_valid(&n))
                .unwrap_or(false)
        })
    })
    .unwrap_or(false)
}

fn phones_in(text: &str, re: &Regex, out: &mut Vec<Finding>) {
    for m in re.find_iter(text) {
        let (before, after) = neighbours(text, m.start(), m.end());
        if before.is_some_and(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'$' | b'-')
        }) || after.is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'/' | b'%'))
        {
            continue;
        }
        // `1,000,000`: a comma between digits makes it one number.
        if embedded(text, m.start(), m.end(), b",") {
            continue;
        }
        let s = m.as_str();
        if s.len() > 40 {
            continue;
        }
        // `phone_valid` needs 7 digits, of this match or a prefix of it:
        // most matches are short numbers of prose.
        if s.bytes().filter(u8::is_ascii_digit).count() < 7 {
            continue;
        }
        let plus = s.starts_with('+');
        let paren = s.contains('(');
        let seps = s
            .bytes()
            .filter(|b| matches!(b, b' ' | b'-' | b'.'))
            .count();
        let kw = keyword_before(text, m.start(), 32, &PHONE_KEYWORDS);
        // A bare digit run is a phone only next to a phone word.
        if !plus && !paren && seps == 0 && !kw {
            continue;
        }
        // `3.14.15` style dotted decimals need a phone word or a real grouping.
        let dots = s.bytes().filter(|&b| b == b'.').count();
        if dots > 0 && dots < 2 && !kw {
            continue;
        }
        // Without `+`, an area code in brackets or a phone word, two digit
        // groups are as often arithmetic (`2000-1800`), house numbers or
        // postcodes as phones: demand the three-group national layout.
        let groups = s
            .split([' ', '-', '.'])
            .filter(|g| g.bytes().any(|b| b.is_ascii_digit()))
            .count();
        if !plus && !paren && !kw && groups < 3 {
            continue;
        }
        // Prose arithmetic writes numbers with single spaces (`12 150 200`).
        if !plus && !paren && !kw && !s.contains(['-', '.']) && s.contains(' ') {
            let lens: Vec<usize> = s.split(' ').map(str::len).collect();
            if lens.iter().any(|&g| g < 2) {
                continue;
            }
        }
        if date_like(s) {
            continue;
        }
        // Try the whole candidate, then without trailing groups the greedy
        // match may have taken from the following text.
        let mut cand = s;
        for _ in 0..3 {
            if phone_valid(cand) {
                let score = if plus || kw { 0.85 } else { 0.7 };
                out.push(finding(
                    "phone",
                    m.start(),
                    m.start() + cand.len(),
                    score,
                    "phone number, valid for its region",
                ));
                break;
            }
            match cand.rfind([' ', '-', '.']) {
                Some(i) if i > 0 => cand = cand.get(..i).unwrap_or(""),
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        detect(text, &mut out);
        out.into_iter()
            .map(|f| (f.ty, text.get(f.start..f.end).unwrap_or("").to_string()))
            .collect()
    }

    fn has(text: &str, ty: &str, val: &str) -> bool {
        run(text).iter().any(|(t, v)| t == ty && v == val)
    }

    fn none_of(text: &str, ty: &str) -> bool {
        !run(text).iter().any(|(t, _)| t == ty)
    }

    #[test]
    fn patterns_compile() {
        assert!((0..PATTERNS.len()).all(|i| family(i).is_some()));
        assert!(family(PATTERNS.len()).is_none());
    }

    #[test]
    fn shape_counts_clusters() {
        let sh = shape("call 202-555-0143 or 1.2.3.4 x");
        assert_eq!(sh.max_cluster_digits, 10);
        assert_eq!(sh.max_cluster_dots, 3);
        assert!(shape("a@b").at);
        assert!(shape("host 2001:db8::1").colon_pair);
        assert!(shape("fe80::1").colon_pair);
        assert!(!shape("note: see: here").colon_pair);
        assert!(!shape("a:hello:b").colon_pair);
        // Blocks without digits are skipped whole; a digit after them counts.
        let long = format!("{}4111 1111 1111 1111", "word ".repeat(20));
        assert_eq!(shape(&long).max_cluster_digits, 16);
        assert!(shape("IBAN GB82 WEST").iban_head);
        assert!(!shape("G8 2B").iban_head);
        assert_eq!(shape("(415) 555-2671").max_cluster_digits, 10);
        // Three separators in a row end the cluster.
        assert_eq!(shape("1234 -5678").max_cluster_digits, 8);
        assert_eq!(shape("1234 - 5678").max_cluster_digits, 4);
    }

    #[test]
    fn credit_cards_by_scheme() {
        for card in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "3782 822463 10005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
        ] {
            let text = format!("pay with {card} today");
            assert!(has(&text, "credit_card", card), "{card}: {:?}", run(&text));
        }
    }

    #[test]
    fn card_lookalikes_do_not_fire() {
        // Order number with a card prefix but failing Luhn.
        assert!(none_of("order 4111111111111112 shipped", "credit_card"));
        // Luhn-valid but no issuer has this prefix.
        assert!(none_of("ref 0000000000000000", "credit_card"));
        assert!(none_of("tracking 9999999999999995", "credit_card"));
        // Cards listed one after another are each found.
        let two = run("4111111111111111 5555555555554444");
        assert_eq!(
            two.iter().filter(|(t, _)| t == "credit_card").count(),
            2,
            "{two:?}"
        );
        // Part of a longer dashed identifier.
        assert!(none_of("id 4111-1111-1111-1111-2222", "credit_card"));
    }

    #[test]
    fn ssn_rules() {
        assert!(has("SSN 123-45-6789", "ssn", "123-45-6789"));
        assert!(has("my number is 123 45 6789", "ssn", "123 45 6789"));
        assert!(has("social security no. 123456789", "ssn", "123456789"));
        for bad in [
            "000-12-3456",
            "666-12-3456",
            "900-12-3456",
            "123-00-4567",
            "123-45-0000",
        ] {
            assert!(none_of(&format!("SSN {bad}"), "ssn"), "{bad}");
        }
        // Mixed separators and bare digits without a keyword.
        assert!(none_of("code 123-45 6789", "ssn"));
        assert!(none_of("invoice 123456789", "ssn"));
    }

    #[test]
    fn iban_rules() {
        assert!(has(
            "IBAN: GB82 WEST 1234 5698 7654 32 please",
            "iban",
            "GB82 WEST 1234 5698 7654 32"
        ));
        assert!(has(
            "DE89370400440532013000",
            "iban",
            "DE89370400440532013000"
        ));
        assert!(has(
            "to gb82west12345698765432.",
            "iban",
            "gb82west12345698765432"
        ));
        // One digit changed: mod-97 fails.
        assert!(none_of("GB82 WEST 1234 5698 7654 33", "iban"));
        // Wrong length for the country.
        assert!(none_of("DE8937040044053201300", "iban"));
    }

    #[test]
    fn emails() {
        assert!(has(
            "mail jane.doe+x@mail.co.uk now",
            "email",
            "jane.doe+x@mail.co.uk"
        ));
        assert!(none_of("write to user@example.com", "email"));
        assert!(none_of("e.g. test@example.co.uk", "email"));
        assert!(none_of("the @decorator syntax", "email"));
    }

    /// The ASCII-compiled patterns put into the phonenumber cache must judge
    /// as the crate's own would: every example number the metadata gives for
    /// a region's fixed lines and mobiles validates, a NANPA number outside
    /// the US (Ontario) is still found through the other NANPA regions, and
    /// digit runs no plan allows do not.
    #[test]
    fn phone_cache_seeding_keeps_validation() {
        let db = &*phonenumber::metadata::DATABASE;
        // NANPA: 25 regions' leading digits, the US and Canadian number types.
        assert!(phone_type_patterns(db, 1).len() > 30);
        for i in 0..PHONE_REGIONS.len() {
            seed_phone_region(i);
        }
        let mut checked = 0;
        for r in PHONE_REGIONS {
            let Some(meta) = db.by_id(r.as_ref()) else {
                panic!("no metadata for {r:?}");
            };
            let d = meta.descriptors();
            for ex in [d.fixed_line(), d.mobile()]
                .into_iter()
                .flatten()
                .filter_map(|x| x.example())
            {
                let valid =
                    phonenumber::parse(Some(r), ex).is_ok_and(|n| phonenumber::is_valid(&n));
                assert!(valid, "{r:?} example {ex}");
                checked += 1;
            }
        }
        assert!(checked >= 2 * PHONE_REGIONS.len());
        assert!(phone_valid("905-674-3793"));
        assert!(phone_valid("(415) 555-2671"));
        assert!(!phone_valid("000-000-0000"));
    }

    #[test]
    fn phones() {
        assert!(has("call +1-202-555-0143 now", "phone", "+1-202-555-0143"));
        assert!(has("office (415) 555-2671", "phone", "(415) 555-2671"));
        assert!(has("ring +44 20 7946 0958", "phone", "+44 20 7946 0958"));
        assert!(has("phone: 2025550143", "phone", "2025550143"));
        assert!(has(
            "call +1 202 555 0143, thanks",
            "phone",
            "+1 202 555 0143"
        ));
        assert!(none_of("about 1,202,555,0143 units", "phone"));
        assert!(none_of("he had 2025550143 apples", "phone"));
        assert!(none_of("on 2023-10-15 we met", "phone"));
        assert!(none_of("pi is 3.14159", "phone"));
        assert!(has(
            "tel +41 (0)44 668 18 00",
            "phone",
            "+41 (0)44 668 18 00"
        ));
        // Arithmetic, timestamps and house numbers.
        assert!(none_of("so 2000-1800 = 200 calories", "phone"));
        assert!(none_of("at 2000-04-16 11:30 sharp", "phone"));
        assert!(none_of("lives at 17151 2450 Oak Road", "phone"));
    }

    #[test]
    fn ip_addresses() {
        assert!(has("from 203.0.113.7 at noon", "ip_address", "203.0.113.7"));
        assert!(has(
            "host 2001:db8:85a3::8a2e:370:7334 up",
            "ip_address",
            "2001:db8:85a3::8a2e:370:7334"
        ));
        assert!(none_of("version 1.2.3.4 is out", "ip_address"));
        assert!(none_of("v1.2.3.4", "ip_address"));
        assert!(none_of("release 1.2.3", "ip_address"));
        assert!(none_of("999.1.1.1", "ip_address"));
        assert!(none_of("1.2.3.4.5", "ip_address"));
        assert!(none_of("at 12:30:45 today", "ip_address"));
        assert!(none_of("use std::vec::Vec", "ip_address"));
        assert!(none_of("mac 00:1a:2b:3c:4d:5e", "ip_address"));
        assert!(none_of(&"a:".repeat(20), "ip_address"));
    }

    #[test]
    fn routing_numbers() {
        assert!(has(
            "routing number 021000021",
            "us_bank_routing",
            "021000021"
        ));
        // Valid checksum but no keyword: not reported as routing.
        assert!(none_of("item 021000021", "us_bank_routing"));
        // Keyword but checksum fails.
        assert!(none_of("routing 021000022", "us_bank_routing"));
    }

    #[test]
    fn no_panic_on_odd_input() {
        for t in [
            "",
            "+",
            "(",
            "@",
            "é1234-5678-9012-3456é",
            "::::::::",
            "+(0)(1)",
        ] {
            let _ = run(t);
        }
    }
}
