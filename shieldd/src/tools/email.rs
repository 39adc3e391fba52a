//! Recipient checks of a tool rule (`allowed_domains`).
//!
//! Address lists are parsed with `mailparse` (RFC 5322: display names,
//! quoted strings, comments, groups); each address is then matched by its
//! domain, exactly and case-insensitively, so `yourcompany.com.evil.net` and
//! `evilyourcompany.com` never match `yourcompany.com`.

use mailparse::{addrparse, MailAddr};

/// Longest recipient list accepted in one parameter value.
const MAX_RECIPIENT_BYTES: usize = 64 * 1024;

/// One compiled `allowed_domains` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DomainPattern {
    /// `example.com` or `@example.com`: exactly that domain.
    Exact(String),
    /// `*.example.com`: any subdomain of it, not the domain itself.
    Subdomains(String),
}

/// Lower-case, without a trailing dot; `None` when it is not a plausible
/// DNS name (empty labels, spaces, brackets, quotes, ...).
fn normalize_domain(d: &str) -> Option<String> {
    let d = d.strip_suffix('.').unwrap_or(d).to_lowercase();
    if d.is_empty() || d.len() > 253 {
        return None;
    }
    let ok = d.split('.').all(|label| {
        !label.is_empty()
            && label
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    });
    ok.then_some(d)
}

/// Whether `local` is a dot-atom (RFC 5322, with RFC 6531's non-ASCII) or a
/// quoted string. mailparse keeps text such as `b@evil.com a` as one local
/// part; a sending tool that splits on spaces would see two recipients, so
/// anything else is refused.
fn valid_local(local: &str) -> bool {
    if local.is_empty() {
        return false;
    }
    if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        return true;
    }
    local
        .chars()
        .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
}

impl DomainPattern {
    /// Compile one policy entry.
    pub(crate) fn new(entry: &str) -> Result<DomainPattern, String> {
        let e = entry.trim();
        let e = e.strip_prefix('@').unwrap_or(e);
        let (wild, rest) = match e.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, e),
        };
        let d = normalize_domain(rest).ok_or_else(|| "not a domain name".to_string())?;
        Ok(if wild {
            DomainPattern::Subdomains(d)
        } else {
            DomainPattern::Exact(d)
        })
    }

    fn matches(&self, domain: &str) -> bool {
        match self {
            DomainPattern::Exact(d) => domain == d,
            DomainPattern::Subdomains(d) => domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// Why one recipient list is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecipientIssue {
    /// The text is not an address list.
    Unparseable(String),
    /// A recipient's domain is outside the allowlist (the domain).
    Outside(String),
}

/// Check every address of an RFC 5322 address list. Returns the number of
/// addresses seen and the issues.
pub(crate) fn check_list(patterns: &[DomainPattern], list: &str) -> (usize, Vec<RecipientIssue>) {
    if list.len() > MAX_RECIPIENT_BYTES {
        return (
            0,
            vec![RecipientIssue::Unparseable(format!(
                "recipient list is longer than {MAX_RECIPIENT_BYTES} bytes"
            ))],
        );
    }
    // CR/LF would let the value inject headers (`\r\nBcc: ...`) in a tool
    // that builds the message by hand.
    if list.chars().any(char::is_control) {
        return (
            0,
            vec![RecipientIssue::Unparseable(
                "recipient list contains control characters".to_string(),
            )],
        );
    }
    if list.trim().is_empty() {
        return (0, Vec::new());
    }
    let parsed = match addrparse(list) {
        Ok(p) => p,
        Err(e) => return (0, vec![RecipientIssue::Unparseable(e.to_string())]),
    };
    let mut addrs: Vec<&str> = Vec::new();
    for a in parsed.iter() {
        match a {
            MailAddr::Single(s) => addrs.push(&s.addr),
            MailAddr::Group(g) => addrs.extend(g.addrs.iter().map(|s| s.addr.as_str())),
        }
    }
    let mut issues = Vec::new();
    for a in &addrs {
        // The domain follows the last `@`: a quoted local part may hold more.
        let domain = match a.rsplit_once('@') {
            Some((local, d)) if valid_local(local) => normalize_domain(d),
            _ => None,
        };
        match domain {
            None => issues.push(RecipientIssue::Unparseable(
                "a recipient has no valid domain".to_string(),
            )),
            Some(d) => {
                if !patterns.iter().any(|p| p.matches(&d)) {
                    issues.push(RecipientIssue::Outside(d));
                }
            }
        }
    }
    (addrs.len(), issues)
}

/// Whether a parameter of this name holds recipients.
pub(crate) fn is_recipient_param(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "to" | "cc" | "bcc" | "recipients" | "recipient"
    )
}
