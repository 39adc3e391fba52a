//! Secrets: provider token formats (the [`rules`] table: one Aho-Corasick
//! pass over every rule's gate words decides which few rule regexes run),
//! JWTs checked
//! by decoding their header, and keyword-plus-entropy detection of generic
//! `password = ...` / `token: ...` assignments. Values that mark themselves
//! as placeholders (`EXAMPLE`, `xxxx`, `<your-key>`, `${VAR}`, one repeated
//! character, the alphabet typed out) are not reported; hand-typed fillers
//! (`12345678`, `1234-1234-1234`) are dropped only by the keyword detectors,
//! since a provider's own format under its name is evidence enough.
pub mod rules;

use std::collections::BTreeMap;
use std::sync::{LazyLock, OnceLock};

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use base64::Engine as _;
use regex::Regex;
use shield_client::wire::{Finding, FindingKind};

pub use rules::{Check, Rule, RULES};

/// Texts longer than this are scanned in their first `MAX_SCAN` bytes only;
/// the API already caps a request at 1 MiB, this bounds direct callers.
const MAX_SCAN: usize = 4 << 20;

/// Rule indexes as a bitset: bit `i % 64` of word `i / 64` is rule `i`.
type RuleSet = [u64; RULE_WORDS];
const RULE_WORDS: usize = RULES.len().div_ceil(64);

struct Engine {
    /// Per-rule regexes, compiled on the first text whose prefilter lets the rule run.
    each: Vec<OnceLock<Option<Regex>>>,
    /// One case-insensitive automaton over every rule's gate words: its
    /// keywords, else the literals every match of its pattern starts with.
    /// Walked by [`each_gate_word`], not by the crate's search loop.
    gates: DFA,
    /// For each gate word the rules it lets run: each match ORs its set in,
    /// so no per-text table the size of the word list is walked.
    word_rules: Vec<RuleSet>,
    /// For each gate word, whether it is one the generic detectors need
    /// (one of them must occur first; one automaton pass serves both).
    word_generic: Vec<bool>,
    /// Rules gated by [`LATE_GATES`]; they run after the others, in index
    /// order, so that score ties between overlapping findings resolve as
    /// when they ran on every text.
    late: RuleSet,
    /// Rules gated by a run of bytes instead of a word: the index of their
    /// [`RUN_GATES`] entry (`None`: no gate, the rule runs on every text).
    run_gated: Vec<(usize, Option<usize>)>,
    generic: Regex,
    generic_pair: Regex,
    entropy_assign: Regex,
}

static ENGINE: LazyLock<Option<Engine>> = LazyLock::new(build);

/// Gate words for rules whose pattern starts with a class (digits, `[MNO]`)
/// rather than a literal: a literal that every match contains.
const MANUAL_GATES: [(&str, &[&str]); 2] = [
    ("telegram-bot-token", &[":aa"]),
    ("mailchimp-api-key", &["-us"]),
];

/// Gate words for rules whose secret group starts with a class but whose
/// match always contains a literal elsewhere (a host, an infix, a suffix).
/// Without them these rules ran their regex over every text.
const LATE_GATES: [(&str, &[&str]); 6] = [
    ("slack-webhook", &["hooks.slack.com"]),
    ("discord-webhook", &["discord"]),
    ("newrelic-license-key", &["nral"]),
    ("terraform-cloud-token", &[".atlasv1."]),
    ("maxmind-license-key", &["_mmk"]),
    ("twitter-bearer-token", &["aaaaaaaaaaaaaaaaaaaaa"]),
];

/// A rule with no usable literal runs only on texts where some byte of
/// `ends` has at least `min` bytes of `class` right before it, as in every
/// match ([`run_before`]). Those bytes are rare enough in prose that testing
/// each is cheaper than running the rule.
struct RunGate {
    id: &'static str,
    ends: &'static [u8],
    min: usize,
    class: fn(&u8) -> bool,
    /// The rule ran on every text before it had this gate: it still runs
    /// after the word-gated rules (see [`Engine::late`]).
    late: bool,
}

fn token_byte(c: &u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')
}

const RUN_GATES: [RunGate; 2] = [
    // `[MNO][A-Za-z0-9_-]{23,25}\.`
    RunGate {
        id: "discord-bot-token",
        ends: b".",
        min: 24,
        class: token_byte,
        late: true,
    },
    // `\d{15,16}(?:\||%7C)`: a `|` alone (tables, shells) let it run on
    // one text in thirteen.
    RunGate {
        id: "facebook-app-token",
        ends: b"|%",
        min: 15,
        class: u8::is_ascii_digit,
        late: false,
    },
];

/// Whether some byte of `g.ends` (one or two bytes) in `b` has `g.min`
/// bytes of `g.class` right before it.
fn run_before(b: &[u8], g: &RunGate) -> bool {
    let (e0, e1) = match g.ends {
        [x] => (*x, *x),
        [x, y, ..] => (*x, *y),
        [] => return false,
    };
    memchr::memchr2_iter(e0, e1, b).any(|i| {
        i >= g.min
            && b.get(i - g.min..i)
                .is_some_and(|w| w.iter().rev().all(g.class))
    })
}

/// The literals every match of `pattern` starts with (lower-case, at least
/// two bytes each), from the secret group `s` when it has one, else from
/// the whole pattern. `None` when no such finite set exists.
fn prefix_literals(pattern: &str) -> Option<Vec<String>> {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    use regex_syntax::hir::{Hir, HirKind};
    fn find_s(h: &Hir) -> Option<&Hir> {
        match h.kind() {
            HirKind::Capture(c) if c.name.as_deref() == Some("s") => Some(&c.sub),
            HirKind::Capture(c) => find_s(&c.sub),
            HirKind::Repetition(r) => find_s(&r.sub),
            HirKind::Concat(v) | HirKind::Alternation(v) => v.iter().find_map(find_s),
            _ => None,
        }
    }
    let hir = regex_syntax::ParserBuilder::new()
        .build()
        .parse(pattern)
        .ok()?;
    let target = find_s(&hir).unwrap_or(&hir);
    let mut ex = Extractor::new();
    ex.kind(ExtractKind::Prefix).limit_total(300);
    let seq = ex.extract(target);
    let lits = seq.literals()?;
    let mut out: Vec<String> = Vec::new();
    for l in lits {
        let w = String::from_utf8(l.as_bytes().to_ascii_lowercase()).ok()?;
        if w.len() < 2 {
            return None;
        }
        if !out.contains(&w) {
            out.push(w);
        }
    }
    (!out.is_empty()).then_some(out)
}

fn build() -> Option<Engine> {
    let each = RULES.iter().map(|_| OnceLock::new()).collect();
    let mut words: Vec<String> = Vec::new();
    let mut word_rules: Vec<RuleSet> = Vec::new();
    let mut late = [0u64; RULE_WORDS];
    let mut run_gated = Vec::new();
    let mut index_of =
        |k: String, word_rules: &mut Vec<RuleSet>| match words.iter().position(|w| *w == k) {
            Some(i) => i,
            None => {
                words.push(k);
                word_rules.push([0; RULE_WORDS]);
                words.len() - 1
            }
        };
    for (i, r) in RULES.iter().enumerate() {
        let manual = MANUAL_GATES.iter().find(|(id, _)| *id == r.id);
        let later = LATE_GATES.iter().find(|(id, _)| *id == r.id);
        let gate: Vec<String> = if !r.keywords.is_empty() {
            r.keywords.iter().map(|k| k.to_ascii_lowercase()).collect()
        } else if let Some((_, m)) = manual.or(later) {
            m.iter().map(|k| k.to_string()).collect()
        } else {
            prefix_literals(&asciify(r.re)).unwrap_or_default()
        };
        if later.is_some() {
            set_rule(&mut late, i);
        }
        if let Some(k) = RUN_GATES.iter().position(|g| g.id == r.id) {
            run_gated.push((i, Some(k)));
            if RUN_GATES.get(k).is_some_and(|g| g.late) {
                set_rule(&mut late, i);
            }
            continue;
        }
        if gate.is_empty() {
            // No gate at all: runs on every text (the `every_rule_is_gated`
            // test keeps the table free of these).
            run_gated.push((i, None));
            set_rule(&mut late, i);
        }
        for k in gate {
            let w = index_of(k, &mut word_rules);
            if let Some(set) = word_rules.get_mut(w) {
                set_rule(set, i);
            }
        }
    }
    let mut generic_idx = Vec::new();
    for g in GENERIC_WORDS {
        generic_idx.push(index_of(g.to_string(), &mut word_rules));
    }
    let mut word_generic = vec![false; words.len()];
    for w in generic_idx {
        if let Some(x) = word_generic.get_mut(w) {
            *x = true;
        }
    }
    // A full DFA: a few hundred short words, searched on every text. No
    // prefilter: every letter starts some word, so it would only slow the walk.
    let gates = DFA::builder()
        .match_kind(MatchKind::Standard)
        .start_kind(StartKind::Unanchored)
        .ascii_case_insensitive(true)
        .prefilter(false)
        .build(&words)
        .ok()?;
    let generic = compile(&asciify(GENERIC))?;
    let generic_pair = compile(&asciify(GENERIC_PAIR))?;
    let entropy_assign = compile(ENTROPY_ASSIGN)?;
    Some(Engine {
        each,
        gates,
        word_rules,
        word_generic,
        late,
        run_gated,
        generic,
        generic_pair,
        entropy_assign,
    })
}

fn set_rule(set: &mut RuleSet, i: usize) {
    if let Some(w) = set.get_mut(i / 64) {
        *w |= 1 << (i % 64);
    }
}

/// The rules of `set`, in index order.
fn rules_in(set: RuleSet) -> impl Iterator<Item = usize> {
    set.into_iter().enumerate().flat_map(|(k, mut bits)| {
        std::iter::from_fn(move || {
            (bits != 0).then(|| {
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                k * 64 + b
            })
        })
    })
}

/// The counted repetitions (`{0,30}`, `{4,200}`) give the generic patterns
/// lazy DFAs far larger than the default cache: with it, states were rebuilt
/// on every text. A bigger cache keeps them (memory bound: this, per regex
/// and thread).
const DFA_CACHE: usize = 16 << 20;

fn compile(pattern: &str) -> Option<Regex> {
    regex::RegexBuilder::new(pattern)
        .dfa_size_limit(DFA_CACHE)
        .build()
        .ok()
}

/// Every credential word of [`GENERIC`] and [`GENERIC_PAIR`] contains one of these.
const GENERIC_WORDS: [&str; 7] = [
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "auth",
    "credential",
];

/// `key = value` assignments whose key names a credential. Group `k` is the
/// key, `s` the value.
const GENERIC: &str = r#"(?i)(?P<k>[A-Za-z0-9_.-]{0,30}(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key|auth|private[_-]?key|client[_-]?secret|credentials?|signing[_-]?key|encryption[_-]?key|key)[A-Za-z0-9_.-]{0,20})["'\]]?(?P<sep>[ \t]*(?::{1,3}=|\?=|\+=|=>|==?)[ \t]*|[ \t]*:[ \t]*|[ \t]+is[ \t]+)(?P<q>["'`]?)(?:!![a-z]+[ \t]+)?(?P<s>[^\s"'`,;<>(){}\[\]]{4,200})"#;

/// Any `name = value` whose value has the entropy of random bytes: secrets
/// under names no keyword list anticipates.
const ENTROPY_ASSIGN: &str = r#"(?P<k>[A-Za-z_][A-Za-z0-9_.-]{0,40})["']?[ \t]*(?:=|:)[ \t]*(?P<q>["']?)(?P<s>[A-Za-z0-9+/=_-]{20,200})"#;

/// `("api_token", "value")` argument pairs: env defaults, map inserts.
const GENERIC_PAIR: &str = r#"(?i)["'](?P<k>[A-Za-z0-9_.-]{0,30}(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|client[_-]?secret)[A-Za-z0-9_.-]{0,20})["'][ \t]*,[ \t]*(?P<q>["'])(?P<s>[^\s"'`,;<>(){}\[\]]{4,200})["']"#;

/// Append every secret of `text` to `out` (byte offsets into `text`).
pub fn detect(text: &str, out: &mut Vec<Finding>) {
    let mut found = Vec::new();
    scan(text, &mut found);
    out.extend(found.into_iter().map(|(_, f)| f));
}

/// Like [`detect`], but also reports placeholder-shaped values (`EXAMPLE`,
/// `xxxx`, `${VAR}`, `token = "12345678"`): for audits of committed files and for
/// measuring how much of a corpus is placeholders.
pub fn detect_including_placeholders(text: &str, out: &mut Vec<Finding>) {
    let mut found = Vec::new();
    scan_with(text, false, &mut found);
    out.extend(found.into_iter().map(|(_, f)| f));
}

/// The rule findings of `text`, each with the index of its rule in [`RULES`]
/// (`usize::MAX` for the generic keyword detector).
pub fn scan(text: &str, out: &mut Vec<(usize, Finding)>) {
    scan_with(text, true, out);
}

fn scan_with(text: &str, skip_placeholders: bool, out: &mut Vec<(usize, Finding)>) {
    let Some(e) = ENGINE.as_ref() else {
        return;
    };
    let text = prefix(text, MAX_SCAN);
    let (runs, generic_words) = gate(e, text);
    let mut cands: Vec<(usize, Finding)> = Vec::new();
    rule_hits(e, text, runs, skip_placeholders, &mut cands);
    generic(e, text, generic_words, skip_placeholders, &mut cands);
    if cands.len() <= 1 {
        out.extend(cands);
        return;
    }
    // One finding per region: the most specific (highest score, then longest) wins.
    cands.sort_by(|a, b| {
        b.1.score
            .total_cmp(&a.1.score)
            .then((b.1.end - b.1.start).cmp(&(a.1.end - a.1.start)))
    });
    // Kept spans are disjoint, so among those starting before a candidate's
    // end only the last one can overlap it: one ordered-map lookup each.
    let mut kept: BTreeMap<usize, (usize, Finding)> = BTreeMap::new();
    for c in cands {
        let clash = kept
            .range(..c.1.end)
            .next_back()
            .is_some_and(|(_, k)| k.1.end > c.1.start);
        if !clash {
            kept.insert(c.1.start, c);
        }
    }
    out.extend(kept.into_values());
}

/// Every accepted match of every rule in `runs`, before overlapping
/// matches are merged: first the word-gated rules, then the [`Engine::late`] ones.
fn rule_hits(
    e: &Engine,
    text: &str,
    runs: RuleSet,
    skip_placeholders: bool,
    cands: &mut Vec<(usize, Finding)>,
) {
    let mut first = runs;
    let mut then = runs;
    for ((f, t), l) in first.iter_mut().zip(then.iter_mut()).zip(e.late) {
        *f &= !l;
        *t &= l;
    }
    for i in rules_in(first).chain(rules_in(then)) {
        let (Some(rule), Some(cell)) = (RULES.get(i), e.each.get(i)) else {
            continue;
        };
        let Some(re) = cell.get_or_init(|| compile(&asciify(rule.re))) else {
            continue;
        };
        for c in re.captures_iter(text) {
            let Some(m) = c.name("s").or_else(|| c.get(0)) else {
                continue;
            };
            let after = c.get(0).and_then(|all| text.get(all.end()..)).unwrap_or("");
            if !accept(rule, m.as_str(), after, skip_placeholders) {
                continue;
            }
            cands.push((
                i,
                Finding {
                    kind: FindingKind::Secret,
                    ty: rule.ty.to_string(),
                    start: m.start(),
                    end: m.end(),
                    score: rule.score,
                    detail: format!("matches rule {}", rule.id),
                },
            ));
        }
    }
}

/// Rewrite the Perl classes `\\w \\d \\s \\b` to their ASCII forms. Tokens
/// are ASCII, and the Unicode classes make the compiled set many times larger
/// and slower to build (counted repetitions copy the whole class automaton).
fn asciify(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('d') => out.push_str("[0-9]"),
            Some('s') => out.push_str("[\\t\\n\\x0B\\x0C\\r ]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The rules whose gate occurs in `text` (one Aho-Corasick pass, plus the
/// run gates), and whether a word the generic detectors need occurs with
/// an assignment after it ([`separator_follows`]).
fn gate(e: &Engine, text: &str) -> (RuleSet, bool) {
    let mut runs = [0u64; RULE_WORDS];
    let mut generic = false;
    let b = text.as_bytes();
    each_gate_word(&e.gates, b, |w, end| {
        if let Some(set) = e.word_rules.get(w) {
            for (r, s) in runs.iter_mut().zip(set) {
                *r |= s;
            }
        }
        if !generic && e.word_generic.get(w).copied().unwrap_or(false) {
            generic = separator_follows(b, end);
        }
    });
    for &(i, g) in &e.run_gated {
        if g.and_then(|k| RUN_GATES.get(k))
            .is_none_or(|g| run_before(b, g))
        {
            set_rule(&mut runs, i);
        }
    }
    (runs, generic)
}

/// Whether the credential word ending at `end` can be the key of a
/// [`GENERIC`] or [`GENERIC_PAIR`] match: the rest of the key
/// (`[A-Za-z0-9_.-]`, which the byte after a key never is), an optional
/// closing quote or bracket, blanks, then `:`, `=`, `?=`, `+=`, `,` or ` is `.
/// Most credential words in prose ("the key to", "tokens") fail this, and
/// then neither regex runs.
fn separator_follows(b: &[u8], end: usize) -> bool {
    // Under `(?i)` the key class also holds `ſ` and the Kelvin sign: any
    // non-ASCII byte is let through as key.
    let key = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-') || *c >= 0x80;
    let rest = b.get(end..).unwrap_or(&[]);
    let mut j = rest.iter().take_while(|c| key(c)).count();
    if matches!(rest.get(j), Some(b'"' | b'\'' | b']')) {
        j += 1;
    }
    let blanks = rest
        .get(j..)
        .unwrap_or(&[])
        .iter()
        .take_while(|c| matches!(c, b' ' | b'\t'))
        .count();
    let after = rest.get(j + blanks..).unwrap_or(&[]);
    match after {
        [b':' | b'=' | b'?' | b'+' | b',', ..] => true,
        [b'i' | b'I', b's' | b'S', b' ' | b'\t', ..] => blanks > 0,
        // `iſ`: `(?i)s` also matches U+017F.
        [b'i' | b'I', 0xC5, 0xBF, b' ' | b'\t', ..] => blanks > 0,
        _ => false,
    }
}

/// Whether some `=` or `:` is followed (after blanks and an optional quote)
/// by a 20-byte token run: the shape every [`ENTROPY_ASSIGN`] match has.
fn assigns_token(b: &[u8]) -> bool {
    let token = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_' | b'-');
    memchr::memchr2_iter(b'=', b':', b).any(|i| {
        let rest = b.get(i + 1..).unwrap_or(&[]);
        let blanks = rest
            .iter()
            .take_while(|c| matches!(c, b' ' | b'\t'))
            .count();
        let mut v = rest.get(blanks..).unwrap_or(&[]);
        if let [b'"' | b'\'', tail @ ..] = v {
            v = tail;
        }
        v.iter().take(20).take_while(|c| token(c)).count() >= 20
    })
}

/// Texts at least this long are walked in [`LANES`] interleaved pieces.
const LANE_MIN: usize = 192;
/// A DFA walk is one dependent table load per byte, bound by load latency,
/// not throughput: several independent walks over pieces of the text in
/// one loop overlap their loads.
const LANES: usize = 4;

/// Calls `hit` with the pattern index and end offset of every occurrence
/// of a word of `dfa` in `text` (overlapping ones included; an occurrence
/// near a piece boundary may be reported twice, which callers do not mind).
fn each_gate_word(dfa: &DFA, text: &[u8], mut hit: impl FnMut(usize, usize)) {
    let Ok(start) = dfa.start_state(Anchored::No) else {
        return;
    };
    if text.len() < LANE_MIN {
        walk(dfa, start, text, 0, &mut hit);
        return;
    }
    // Piece `k` covers `[k * piece, (k + 1) * piece)` and starts the longest
    // word's length earlier, so every occurrence ends inside some piece
    // that saw all of it.
    let piece = text.len().div_ceil(LANES);
    let back = dfa.max_pattern_len().saturating_sub(1);
    let from: [usize; LANES] = std::array::from_fn(|k| (k * piece).saturating_sub(back));
    let lanes: [&[u8]; LANES] = std::array::from_fn(|k| {
        let to = ((k + 1) * piece).min(text.len());
        text.get(from[k]..to).unwrap_or(&[])
    });
    let common = lanes.iter().map(|l| l.len()).min().unwrap_or(0);
    let heads: [&[u8]; LANES] = lanes.map(|l| l.get(..common).unwrap_or(&[]));
    let (mut s0, mut s1, mut s2, mut s3) = (start, start, start, start);
    let [h0, h1, h2, h3] = heads;
    for (j, (((&b0, &b1), &b2), &b3)) in h0.iter().zip(h1).zip(h2).zip(h3).enumerate() {
        s0 = dfa.next_state(Anchored::No, s0, b0);
        s1 = dfa.next_state(Anchored::No, s1, b1);
        s2 = dfa.next_state(Anchored::No, s2, b2);
        s3 = dfa.next_state(Anchored::No, s3, b3);
        // One test for all four: special states (matches) have the lowest ids.
        if dfa.is_special(s0.min(s1).min(s2).min(s3)) {
            for (s, f) in [s0, s1, s2, s3].into_iter().zip(from) {
                if dfa.is_special(s) {
                    report(dfa, s, f + j + 1, &mut hit);
                }
            }
        }
    }
    for ((l, s), f) in lanes.iter().zip([s0, s1, s2, s3]).zip(from) {
        walk(dfa, s, l.get(common..).unwrap_or(&[]), f + common, &mut hit);
    }
}

/// One walk of `dfa` from state `sid` over `text`, which starts at offset
/// `base` of the whole text.
fn walk(dfa: &DFA, mut sid: StateID, text: &[u8], base: usize, hit: &mut impl FnMut(usize, usize)) {
    for (j, &b) in text.iter().enumerate() {
        sid = dfa.next_state(Anchored::No, sid, b);
        if dfa.is_special(sid) {
            report(dfa, sid, base + j + 1, hit);
        }
    }
}

/// The words that end at `end` in a special state (off the hot loop).
#[cold]
fn report(dfa: &DFA, sid: StateID, end: usize, hit: &mut impl FnMut(usize, usize)) {
    if dfa.is_match(sid) {
        for i in 0..dfa.match_len(sid) {
            hit(dfa.match_pattern(sid, i).as_usize(), end);
        }
    }
}

/// The indexes of the rules with an accepted match in `text`, before overlap
/// merging (for the rule-sample tests).
#[cfg(test)]
fn raw_rule_ids(text: &str) -> Vec<usize> {
    let Some(e) = ENGINE.as_ref() else {
        return Vec::new();
    };
    let mut c = Vec::new();
    rule_hits(e, text, gate(e, text).0, true, &mut c);
    c.into_iter().map(|(i, _)| i).collect()
}

fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

/// Whether a match of `rule` with secret `value` is reported; `after` is
/// the text that follows the whole match.
fn accept(rule: &Rule, value: &str, after: &str, skip_placeholders: bool) -> bool {
    let placeholder = || skip_placeholders && is_placeholder(value);
    let entropy_ok =
        || rule.min_entropy <= 0.0 || shannon_entropy(value) >= f64::from(rule.min_entropy);
    match rule.check {
        Check::Block => true,
        Check::KeyHeader => !short_block_follows(after),
        Check::Jwt => jwt_valid(value) && !placeholder(),
        Check::UserPass => user_pass_real(value),
        Check::Loose => !placeholder() && entropy_ok(),
        Check::Plain => {
            let v = value.trim_matches(|c| c == '"' || c == '\'');
            !(skip_placeholders && marker(v)) && entropy_ok()
        }
    }
}

/// Whether the key header just matched is closed by an `-----END` line
/// with too little between them to be key material (`anything`, `...`):
/// a block whose end is in view is judged by its body, not its header.
fn short_block_follows(after: &str) -> bool {
    let window = prefix(after, 256);
    let Some(end) = window.find("-----END") else {
        return false;
    };
    let body = window.get(..end).unwrap_or("");
    body.bytes()
        .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        .count()
        < 16
}

/// Shannon entropy of `s` in bits per byte.
pub fn shannon_entropy(s: &str) -> f64 {
    let b = s.as_bytes();
    if b.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &x in b {
        if let Some(c) = counts.get_mut(usize::from(x)) {
            *c += 1;
        }
    }
    let n = b.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Words that mark a documentation value, not a credential.
const PLACEHOLDER_WORDS: [&str; 30] = [
    "example",
    "xxxx",
    "your_",
    "your-",
    "yourkey",
    "yourtoken",
    "yourpass",
    "yoursecret",
    "<your",
    "_here",
    "-here",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "dummy",
    "redacted",
    "insert_",
    "insert-",
    "replace_me",
    "replaceme",
    "fake",
    "sample",
    "****",
    "..",
    "lorem",
    "foobar",
    "notreal",
    "not_real",
    "my_secret",
];

/// Whole values that are names of the thing, not the thing.
const PLACEHOLDER_VALUES: [&str; 18] = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "mypassword",
    "yourpassword",
    "username",
    "user",
    "null",
    "none",
    "undefined",
    "required",
    "test",
    "key",
];

/// True for values that are placeholders: documentation words, template
/// variables, one repeated character, or a hand-typed filler (a sequential
/// or repeated run, [`filler`]).
pub fn is_placeholder(value: &str) -> bool {
    let v = value.trim_matches(|c| c == '"' || c == '\'');
    marker(v) || filler(v)
}

/// A value that says it is not real: documentation words (`EXAMPLE`,
/// `your_key_here`), fill-in markers (`<token>`, `${VAR}`, `%VAR%`), one
/// character making up the value, or a stretch of the alphabet typed out.
/// These hold for every detector, however specific its format.
fn marker(v: &str) -> bool {
    // `<user:password>`, `[PASSWORD]`, `{token}` are fill-in markers.
    let unwrapped = v
        .trim_start_matches(['<', '[', '{', '('])
        .trim_end_matches(['>', ']', '}', ')']);
    if unwrapped.len() != v.len()
        && (v.starts_with(['<', '['])
            || PLACEHOLDER_VALUES.contains(&unwrapped.to_ascii_lowercase().as_str()))
    {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return true;
    }
    if PLACEHOLDER_VALUES.contains(&lower.as_str()) {
        return true;
    }
    if v.starts_with("${")
        || v.starts_with("$(")
        || v.starts_with("{{")
        || v.starts_with("#{")
        || v.starts_with("%(")
        || v.starts_with('<')
        || v.starts_with('%') && v.ends_with('%')
        || (v.starts_with('$')
            && v.as_bytes()
                .get(1)
                .copied()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_'))
    {
        return true;
    }
    repetitive(v) || same_run(v) || letter_run(v) || stuttered_word(v)
}

/// Four letters typed three times back to back (`TESTTESTTEST`,
/// `abcdabcdabcd`): a word repeated to fill a field, which neither a
/// random token nor a numeric id is.
fn stuttered_word(v: &str) -> bool {
    let b = v.as_bytes();
    b.windows(12).any(|w| {
        let (Some(a), Some(x), Some(y)) = (w.get(..4), w.get(4..8), w.get(8..12)) else {
            return false;
        };
        a.iter().all(u8::is_ascii_alphabetic) && a == x && a == y
    })
}

/// A hand-typed filler: counting digits (`12345678`), a chunk typed three
/// times (`1234-1234-1234`), a value that is one ascending or descending
/// run. Weaker than a [`marker`]: counting runs also sit in real numeric
/// ids, so provider formats (where the prefix and shape are the evidence)
/// report them, and only the keyword detectors drop them.
fn filler(v: &str) -> bool {
    sequential(v) || ascending_run(v, 6, |_| true) || repeated_chunk(v)
}

/// Eight equal characters (`########`, `11111111`) in a plain value. Long
/// random binary in base64 has zero-byte runs (`AAAAAAAAAA`); a filler run
/// sits in an otherwise low-entropy value.
fn same_run(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() >= 40 && shannon_entropy(v) >= 4.0 {
        return false;
    }
    let mut same = 1usize;
    for w in b.windows(2) {
        same = if w.first() == w.get(1) { same + 1 } else { 1 };
        if same >= 8 {
            return true;
        }
    }
    false
}

/// Eight letters of the alphabet in order (`abcdefgh`, `KLMNOPQR`): no
/// random token has them, and no numeric id either.
fn letter_run(v: &str) -> bool {
    ascending_run(v, 8, u8::is_ascii_alphabetic)
}

/// Whether `v` has `min` bytes in a row, each one above the last and each
/// passing `class` (and alphanumeric).
fn ascending_run(v: &str, min: usize, class: fn(&u8) -> bool) -> bool {
    let mut up = 1usize;
    for w in v.as_bytes().windows(2) {
        let (Some(&x), Some(&y)) = (w.first(), w.get(1)) else {
            continue;
        };
        let step = y == x.wrapping_add(1)
            && x.is_ascii_alphanumeric()
            && y.is_ascii_alphanumeric()
            && class(&x)
            && class(&y);
        up = if step { up + 1 } else { 1 };
        if up >= min {
            return true;
        }
    }
    false
}

/// A four-character chunk typed three times (`xoxp-1234-1234-1234-...`,
/// `abcdXabcdYabcd`): a hand-made filler. Random tokens of this length
/// repeat a 4-gram three times with negligible probability.
fn repeated_chunk(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() > 100 {
        return false;
    }
    b.windows(4).enumerate().any(|(i, w)| {
        if !w.iter().all(u8::is_ascii_alphanumeric) {
            return false;
        }
        let mut count = 1;
        let mut j = i + 4;
        while let Some(x) = b.get(j..j + 4) {
            if x == w {
                count += 1;
                j += 4;
            } else {
                j += 1;
            }
        }
        count >= 3
    })
}

/// Whether the text between a name and its unquoted value is ` = ` with
/// blanks on both sides: the style of code (`sumOfExposures = x;`), where
/// a literal would be quoted and a bare word is an expression. Config
/// files write `NAME=value` or `name: value`. Used only where the name
/// itself says nothing (no name, or a bare `key`).
fn code_assignment(between: &str) -> bool {
    let b = between.trim_start_matches(['"', '\'', ']']);
    b.starts_with([' ', '\t']) && b.trim() == "="
}

/// Hex digits in both cases (`acdeFf05b1a6...`): machines print hex in one
/// case, so a mix is a hand-edited sample. A random mixed-case token of
/// this length is all hex digits with negligible probability.
fn hand_edited_hex(v: &str) -> bool {
    let v = v.trim_matches(|c| c == '"' || c == '\'');
    v.len() >= 16
        && v.bytes().all(|b| b.is_ascii_hexdigit())
        && v.bytes().any(|b| b.is_ascii_uppercase())
        && v.bytes().any(|b| b.is_ascii_lowercase())
}

/// An identifier spelt out of words (`desktop-rhf_SponsoredProductsClick`):
/// at least half of it is lower-case runs of four or more letters (with
/// an optional capital before). Random tokens switch case every byte or
/// two, so such runs cover a small part of them.
fn worded_identifier(v: &str) -> bool {
    let b = v.as_bytes();
    let mut worded = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        let start = i;
        if b.get(i).is_some_and(u8::is_ascii_uppercase) {
            i += 1;
        }
        let lower = i;
        while b.get(i).is_some_and(u8::is_ascii_lowercase) {
            i += 1;
        }
        if i - lower >= 4 {
            worded += i - start;
        }
        if i == start {
            i += 1;
        } else if i == lower {
            // A capital with no lower-case run after it: go on from the next byte.
            i = start + 1;
        }
    }
    worded * 2 >= b.len()
}

/// One character making up most of the value (`aaaaaaaa`, `0000-0000`).
fn repetitive(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 4 {
        return false;
    }
    let mut counts = [0usize; 256];
    for &x in b {
        if let Some(c) = counts.get_mut(usize::from(x)) {
            *c += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(0);
    max * 10 >= b.len() * 6
}

/// Nearly every neighbour one step up or down (`123456789`, `abcdefgh`).
fn sequential(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 6 {
        return false;
    }
    let steps = b
        .windows(2)
        .filter(|w| match (w.first(), w.get(1)) {
            (Some(&x), Some(&y)) => y.wrapping_sub(x) == 1 || x.wrapping_sub(y) == 1,
            _ => false,
        })
        .count();
    steps * 10 >= (b.len() - 1) * 9
}

/// A JWT (or a base64-wrapped one): the header decodes to a JSON object with `alg`.
pub fn jwt_valid(token: &str) -> bool {
    let owned;
    let token = if token.starts_with("ZXlK") {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(token.as_bytes()) else {
            return false;
        };
        let Ok(s) = String::from_utf8(raw) else {
            return false;
        };
        owned = s;
        owned.as_str()
    } else {
        token
    };
    let Some(header) = token.split('.').next() else {
        return false;
    };
    if header.len() > 4096 {
        return false;
    }
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Ok(raw) = engine.decode(header.trim_end_matches('=').as_bytes()) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(&raw) {
        Ok(serde_json::Value::Object(m)) => m.get("alg").is_some_and(|a| a.is_string()),
        // A header damaged in transit (or by hand) that still names its
        // algorithm is still a token header.
        _ => raw.starts_with(b"{\"") && raw.windows(5).any(|w| w == b"\"alg\""),
    }
}

/// `user:password` where at least one non-empty side is a literal value.
fn user_pass_real(v: &str) -> bool {
    let Some((user, pass)) = v.split_once(':') else {
        return false;
    };
    let user = user.trim_matches(|c| c == '"' || c == '\'');
    let pass = pass.trim_matches(|c| c == '"' || c == '\'');
    let real = |s: &str| {
        let s = s.trim_matches(|c| c == '"' || c == '\'' || c == '{' || c == '}');
        s.len() >= 4 && !is_placeholder(s) && !s.starts_with('$')
    };
    if pass.is_empty() {
        return real(user) && shannon_entropy(user) >= 3.0;
    }
    real(pass)
}

/// Values that are code, not literals: calls, attribute paths, env lookups.
fn code_reference(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    [
        "os.environ", "getenv", "process.env", "env.", "config.", "settings.", "self.",
        "this.", "request.", "params.", "args.", "os.getenv", "secrets.", "vault:", "file:",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
        || matches!(lower.as_str(), "true" | "false" | "nil" | "none" | "null")
        // `token = get_token` / `password=form.password`: identifiers, not values.
        // `X25519.secret_length`, `form.password`: a dotted identifier path.
        || (v.contains('.')
            && v.split('.').all(|p| {
                p.len() < 24
                    && p.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                    && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            }))
}

/// Key names that look like credentials but name something else: ids,
/// locations, sizes, public halves, anti-forgery tokens, authorship.
fn benign_key(key: &str) -> bool {
    const FRAGMENTS: [&str; 31] = [
        // Rails' per-form CSRF token: public by design.
        "authenticity",
        "token_type",
        "tokenizer",
        "max_token",
        "num_token",
        "token_count",
        "secret_name",
        "password_policy",
        "passwordless",
        "min_password",
        "secretref",
        "secret_ref",
        "keyref",
        "password_hash",
        "forgot",
        "reset_password",
        "password_field",
        "public",
        "csrf",
        "xsrf",
        "author",
        "oauth_url",
        "auth_type",
        "auth_method",
        "auth_mode",
        "auth_provider",
        "authentication",
        "authoriz",
        "authority",
        "tokens",
        "secrets",
    ];
    const SUFFIXES: [&str; 19] = [
        "id", "ids", "url", "uri", "path", "file", "name", "type", "length", "len", "count",
        "size", "endpoint", "header", "field", "format", "prefix", "label", "hint",
    ];
    let orig = key.trim_end_matches(['_', '-', '.']);
    let k = orig.to_ascii_lowercase();
    if FRAGMENTS.iter().any(|f| k.contains(f)) || SUFFIXES.contains(&k.as_str()) {
        return true;
    }
    SUFFIXES.iter().any(|suf| {
        // snake, kebab or dotted: `secret_name`, `token-url`, `auth.type`.
        k.strip_suffix(suf).is_some_and(|rest| rest.ends_with(['_', '-', '.']))
            // camelCase: `credentialsId`, `tokenUrl`.
            || orig.len() > suf.len() && {
                let cut = orig.len() - suf.len();
                let tail = orig.get(cut..).unwrap_or("");
                let before = orig.as_bytes().get(cut.wrapping_sub(1)).copied();
                tail.eq_ignore_ascii_case(suf)
                    && tail.starts_with(|c: char| c.is_ascii_uppercase())
                    && before.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            }
    })
}

fn high_entropy_assignments(
    e: &Engine,
    text: &str,
    skip_placeholders: bool,
    out: &mut Vec<(usize, Finding)>,
) {
    for c in e.entropy_assign.captures_iter(text) {
        let (Some(k), Some(v)) = (c.name("k"), c.name("s")) else {
            continue;
        };
        let value = v.as_str();
        // URL query parameters are the exfiltration detector's to judge.
        if k.start() > 0 && matches!(text.as_bytes().get(k.start() - 1), Some(b'?' | b'&')) {
            continue;
        }
        // The value must be the whole token, not the start of a longer word or path.
        if text
            .as_bytes()
            .get(v.end())
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'/' | b':' | b'@'))
        {
            continue;
        }
        let key = k.as_str().to_ascii_lowercase();
        if [
            "hash",
            "sha",
            "md5",
            "digest",
            "checksum",
            "signature",
            "commit",
            "etag",
            "integrity",
            "nonce",
            "uuid",
            "salt",
        ]
        .iter()
        .any(|h| key.contains(h))
            // Initialisation vectors travel next to ciphertext; `_id`/`Id`
            // suffixes are handled by `benign_key`.
            || key == "iv"
            || key.ends_with("_iv")
            || benign_key(k.as_str())
            // `name="authenticity_token" value="..."`: the field's name
            // comes just before its value in HTML forms.
            || super::pii::keyword_before(text, k.start(), 48, &["authenticity", "csrf", "xsrf"])
            // SOPS keeps `data:`, `iv:`, `tag:` ciphertext in `ENC[...]`:
            // encrypted values are what a secret should look like at rest.
            || super::pii::keyword_before(text, k.start(), 24, &["enc["])
            || worded_identifier(value)
            || (skip_placeholders && is_placeholder(value))
        {
            continue;
        }
        let quoted = c.name("q").is_some_and(|q| !q.as_str().is_empty());
        if !quoted && code_assignment(text.get(k.end()..v.start()).unwrap_or("")) {
            continue;
        }
        let upper = value.bytes().any(|b| b.is_ascii_uppercase());
        let lower = value.bytes().any(|b| b.is_ascii_lowercase());
        let digit = value.bytes().any(|b| b.is_ascii_digit());
        let ent = shannon_entropy(value);
        if upper && lower && digit && ent >= 4.3 {
            out.push((
                usize::MAX,
                Finding {
                    kind: FindingKind::Secret,
                    ty: "high_entropy_string".to_string(),
                    start: v.start(),
                    end: v.end(),
                    score: 0.5,
                    detail: format!("assigned value with {ent:.1} bits of entropy per byte"),
                },
            ));
        }
    }
}

fn generic(
    e: &Engine,
    text: &str,
    generic_words: bool,
    skip_placeholders: bool,
    out: &mut Vec<(usize, Finding)>,
) {
    // Every form below assigns with `=`, `:`, `,` or ` is `; without a
    // credential word the keyword forms cannot match.
    let b = text.as_bytes();
    let assign = memchr::memchr2(b'=', b':', b).is_some();
    if !assign && memchr::memchr2(b',', b' ', b).is_none() {
        return;
    }
    // The entropy form needs an `=`/`:` before a 20-character token run.
    if assign && assigns_token(b) {
        high_entropy_assignments(e, text, skip_placeholders, out);
    }
    if !generic_words {
        return;
    }
    let caps = e
        .generic
        .captures_iter(text)
        .chain(e.generic_pair.captures_iter(text));
    for c in caps {
        let (Some(k), Some(v)) = (c.name("k"), c.name("s")) else {
            continue;
        };
        let quoted = c.name("q").is_some_and(|q| !q.as_str().is_empty());
        // `token:value` with no space or quote is a URL, a Maven coordinate
        // or a map literal, not an assignment.
        if let Some(sep) = c.name("sep") {
            if sep.as_str() == ":" && !quoted {
                continue;
            }
        }
        let value = v.as_str();
        let key = k.as_str().to_ascii_lowercase();
        let password_like = ["password", "passwd", "passphrase", "pwd"]
            .iter()
            .any(|p| key.contains(p));
        // People type passwords, and runs (`Summer123456`) are common in
        // real ones: for them only a marker or a value that is one whole
        // run (`12345678`) counts as a placeholder.
        let placeholder = if password_like {
            let v = value.trim_matches(|c| c == '"' || c == '\'');
            marker(v) || sequential(v)
        } else {
            is_placeholder(value) || hand_edited_hex(value)
        };
        if benign_key(k.as_str()) || code_reference(value) || (skip_placeholders && placeholder) {
            continue;
        }
        // Bare `key` is only a credential name at the end (`api.key`,
        // `signingKey`), not inside `keyboard` or `key_bindings`.
        let strong = [
            "pass",
            "pwd",
            "secret",
            "token",
            "api",
            "access",
            "auth",
            "private",
            "credential",
            "signing",
            "encryption",
        ];
        let key_only = !strong.iter().any(|w| key.contains(w));
        if key_only && !key.trim_end_matches(['_', '-', '.']).ends_with("key") {
            continue;
        }
        let ent = shannon_entropy(value);
        let has_digit = value.bytes().any(|b| b.is_ascii_digit());
        let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
        let spaced_code = !quoted && code_assignment(text.get(k.end()..v.start()).unwrap_or(""));
        let ok = if key_only {
            // `bucket_key`, `schemaKey`: most keys are names; only random
            // ones are secrets, and only as literals.
            !spaced_code && value.len() >= 20 && ent >= 4.0 && has_digit && has_alpha
        } else if password_like {
            // Passwords are short and low-entropy; demand a literal that is
            // not a plain word of prose.
            value.len() >= 6
                && ent >= 2.3
                && (quoted
                    || (has_digit && has_alpha)
                    || !value.bytes().all(|b| b.is_ascii_alphabetic()))
        } else {
            value.len() >= 12 && ent >= 3.2 && has_digit
        };
        if !ok {
            continue;
        }
        let score = if password_like { 0.75 } else { 0.7 };
        out.push((
            usize::MAX,
            Finding {
                kind: FindingKind::Secret,
                ty: if password_like {
                    "password"
                } else {
                    "generic_secret"
                }
                .to_string(),
                start: v.start(),
                end: v.end(),
                score,
                detail: format!("credential-named key with a {ent:.1}-bit literal value"),
            },
        ));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod run_tests {
    fn has_token_run(text: &str, min: usize) -> bool {
        crate::scan::has_run(text.as_bytes(), min, |b: &u8| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-')
        })
    }

    #[test]
    fn token_run_probe_is_exact() {
        for n in [0, 1, 19, 20, 21, 45] {
            for pre in [0, 1, 10, 19, 20, 33] {
                let t = format!("{}{}{}", " ".repeat(pre), "a".repeat(n), " x".repeat(15));
                assert_eq!(has_token_run(&t, 20), n >= 20, "{pre} {n}");
            }
        }
        assert!(!has_token_run(
            &format!("{} {}", "a".repeat(15), "b".repeat(15)),
            20
        ));
    }
}
