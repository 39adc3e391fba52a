//! The normaliser as it was before the speed work (every step a pass over
//! per-character records), kept as a test oracle: the one-pass normaliser must
//! give the same text and offsets for every input.
#![allow(dead_code)]

use unicode_normalization::UnicodeNormalization;

/// Longest input handled; offsets are stored as `u32` to halve the map.
/// Text past this is left unscanned by the normaliser (the scanner caps input
/// far below it).
const MAX_INPUT: usize = (u32::MAX as usize) / 2;

/// One character of a pipeline stage and the original bytes it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ch {
    c: char,
    s: u32,
    e: u32,
}

/// Normalised text plus the map back to the original.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    text: String,
    /// For each byte of `text`: start of the original bytes it came from.
    starts: Vec<u32>,
    /// For each byte of `text`: end of the original bytes it came from.
    ends: Vec<u32>,
}

impl Normalized {
    /// Text and per-byte map, for comparison with the optimised normaliser.
    pub(super) fn parts(&self) -> (String, Vec<u32>, Vec<u32>) {
        (self.text.clone(), self.starts.clone(), self.ends.clone())
    }

    /// The normalised text (lowercase, folded).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Map the normalised byte range `start..end` to a byte range of the
    /// original text. Out-of-range input is clamped; an empty range maps to
    /// an empty range at the original position.
    pub fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        let n = self.starts.len();
        if n == 0 {
            return (0, 0);
        }
        let start = start.min(n - 1);
        let end = end.clamp(start, n);
        let os = self.starts.get(start).copied().unwrap_or(0) as usize;
        if end == start {
            return (os, os);
        }
        let oe = self.ends.get(end - 1).copied().unwrap_or(0) as usize;
        // Reordering folds (tag smuggling, reversed text) can put the end
        // before the start; the span is then the union of both.
        let first = self.starts.get(start..end).and_then(|s| s.iter().min());
        let last = self.ends.get(start..end).and_then(|s| s.iter().max());
        match (first, last) {
            (Some(&a), Some(&b)) if oe < os => (a as usize, b as usize),
            _ => (os, oe.max(os)),
        }
    }

    fn from_chars(chars: &[Ch]) -> Normalized {
        let mut out = Normalized {
            text: String::with_capacity(chars.len()),
            starts: Vec::with_capacity(chars.len()),
            ends: Vec::with_capacity(chars.len()),
        };
        for ch in chars {
            out.text.push(ch.c);
            for _ in 0..ch.c.len_utf8() {
                out.starts.push(ch.s);
                out.ends.push(ch.e);
            }
        }
        out
    }

    fn chars(&self) -> Vec<Ch> {
        self.text
            .char_indices()
            .map(|(i, c)| Ch {
                c,
                s: self.starts.get(i).copied().unwrap_or(0),
                e: self.ends.get(i).copied().unwrap_or(0),
            })
            .collect()
    }

    /// The same text with ROT13 applied (ASCII letters only), same offsets.
    pub fn rot13(&self) -> Normalized {
        let chars: Vec<Ch> = self
            .chars()
            .into_iter()
            .map(|ch| Ch {
                c: rot13(ch.c),
                ..ch
            })
            .collect();
        Normalized::from_chars(&chars)
    }

    /// The text with its characters in reverse order (catches instructions
    /// written backwards), offsets still pointing at the original.
    pub fn reversed(&self) -> Normalized {
        let mut chars = self.chars();
        chars.reverse();
        Normalized::from_chars(&chars)
    }
}

fn rot13(c: char) -> char {
    match c {
        'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
        'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
        _ => c,
    }
}

/// Normalise `input` (see the module docs).
pub fn normalize(input: &str) -> Normalized {
    let input = truncate(input, MAX_INPUT);
    let chars = markup(input);
    let chars = unicode_fold(chars);
    let chars = join_spaced(chars);
    let chars = fold_words(chars);
    let chars = collapse_space(chars);
    Normalized::from_chars(&chars)
}

/// `s` cut to at most `max` bytes on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.get(..cut).unwrap_or("")
}

// ---------------------------------------------------------------- markup

/// HTML elements whose tags are markup (removed). Anything else in angle
/// brackets (`<|im_start|>`, `<<SYS>>`, `<system>`) is kept as text because a
/// model reads it as text.
const HTML_TAGS: &[&str] = &[
    "a",
    "abbr",
    "article",
    "aside",
    "b",
    "body",
    "blockquote",
    "br",
    "button",
    "caption",
    "center",
    "cite",
    "code",
    "dd",
    "del",
    "details",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "font",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "input",
    "ins",
    "kbd",
    "label",
    "li",
    "link",
    "main",
    "mark",
    "meta",
    "nav",
    "noscript",
    "ol",
    "option",
    "p",
    "pre",
    "q",
    "s",
    "samp",
    "script",
    "section",
    "select",
    "small",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "summary",
    "sup",
    "svg",
    "table",
    "tbody",
    "td",
    "textarea",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "video",
    "audio",
    "source",
    "picture",
    "object",
    "embed",
    "template",
];

/// Inline elements: removing them must not split a word ("ig<b></b>nore").
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "cite", "code", "del", "em", "font", "i", "ins", "kbd", "mark", "q", "s",
    "samp", "small", "span", "strike", "strong", "sub", "sup", "tt", "u", "var",
];

/// Attributes whose values a model reads (alt text, titles, labels).
const TEXT_ATTRS: &[&str] = &[
    "alt",
    "title",
    "aria-label",
    "content",
    "placeholder",
    "value",
    "label",
    "summary",
];

fn push_str(out: &mut Vec<Ch>, s: &str, at: u32, end: u32) {
    for c in s.chars() {
        out.push(Ch { c, s: at, e: end });
    }
}

fn markup(input: &str) -> Vec<Ch> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0usize;
    while i < input.len() {
        let Some(c) = input.get(i..).and_then(|s| s.chars().next()) else {
            break;
        };
        let clen = c.len_utf8();
        let pos = i as u32;
        match c {
            '<' => {
                let rest = input.get(i..).unwrap_or("");
                if rest.starts_with("<!--") {
                    out.push(Ch {
                        c: ' ',
                        s: pos,
                        e: pos + 4,
                    });
                    i += 4;
                    continue;
                }
                if let Some(len) = html_tag(rest, pos, &mut out) {
                    i += len;
                    continue;
                }
                out.push(Ch {
                    c,
                    s: pos,
                    e: pos + 1,
                });
                i += 1;
            }
            '-' if bytes.get(i..i + 3) == Some(b"-->") => {
                out.push(Ch {
                    c: ' ',
                    s: pos,
                    e: pos + 3,
                });
                i += 3;
            }
            '&' => {
                let rest = input.get(i..).unwrap_or("");
                if let Some((decoded, len)) = entity(rest) {
                    out.push(Ch {
                        c: decoded,
                        s: pos,
                        e: pos + len as u32,
                    });
                    i += len;
                } else {
                    out.push(Ch {
                        c,
                        s: pos,
                        e: pos + 1,
                    });
                    i += 1;
                }
            }
            // Markdown emphasis and code markers are not read as words.
            '*' | '`' => i += 1,
            // A Markdown escape (`\[`) reads as the punctuation alone.
            '\\' if bytes.get(i + 1).is_some_and(|b| b.is_ascii_punctuation()) => i += 1,
            _ => {
                out.push(Ch {
                    c,
                    s: pos,
                    e: pos + clen as u32,
                });
                i += clen;
            }
        }
    }
    out
}

/// If `rest` starts with an HTML tag, push its readable attribute values
/// (or a space for block elements) and return the tag's length in bytes.
fn html_tag(rest: &str, pos: u32, out: &mut Vec<Ch>) -> Option<usize> {
    const MAX_TAG: usize = 2048;
    let b = rest.as_bytes();
    let mut j = 1;
    if b.get(j) == Some(&b'/') {
        j += 1;
    }
    let name_start = j;
    while b.get(j).is_some_and(|c| c.is_ascii_alphanumeric()) {
        j += 1;
    }
    let name = rest.get(name_start..j)?.to_ascii_lowercase();
    if !HTML_TAGS.contains(&name.as_str()) {
        return None;
    }
    match b.get(j) {
        Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r') => {}
        _ => return None,
    }
    // Find the closing '>' outside quotes, bounded so that a stray '<' in
    // prose costs at most MAX_TAG bytes of look-ahead.
    let mut quote: Option<u8> = None;
    let mut end = None;
    for (k, &c) in b.iter().enumerate().skip(j).take(MAX_TAG) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => {
                end = Some(k + 1);
                break;
            }
            (None, b'<') => return None,
            _ => {}
        }
    }
    let end = end?;
    let inline = INLINE_TAGS.contains(&name.as_str());
    let attrs = rest.get(j..end.saturating_sub(1)).unwrap_or("");
    let mut emitted = false;
    for (aname, vstart, value) in attributes(attrs) {
        if TEXT_ATTRS.contains(&aname.as_str()) && !value.is_empty() {
            let at = pos + (j + vstart) as u32;
            out.push(Ch {
                c: ' ',
                s: at,
                e: at,
            });
            for (k, c) in value.char_indices() {
                let s = at + k as u32;
                out.push(Ch {
                    c,
                    s,
                    e: s + c.len_utf8() as u32,
                });
            }
            out.push(Ch {
                c: ' ',
                s: at + value.len() as u32,
                e: at + value.len() as u32,
            });
            emitted = true;
        }
    }
    if !inline && !emitted {
        push_str(out, " ", pos, pos + end as u32);
    }
    Some(end)
}

/// `(name, value_offset, value)` of each `name="value"` in a tag body.
fn attributes(body: &str) -> Vec<(String, usize, &str)> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while b
            .get(i)
            .is_some_and(|c| !c.is_ascii_alphanumeric() && *c != b'-')
        {
            i += 1;
        }
        let ns = i;
        while b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
        {
            i += 1;
        }
        let name = body.get(ns..i).unwrap_or("").to_ascii_lowercase();
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        if b.get(i) != Some(&b'=') {
            if i == ns {
                i += 1;
            }
            continue;
        }
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let (vs, ve) = match b.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let vs = i + 1;
                let mut k = vs;
                while b.get(k).is_some_and(|&c| c != q) {
                    k += 1;
                }
                i = k + 1;
                (vs, k)
            }
            _ => {
                let vs = i;
                while b.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                    i += 1;
                }
                (vs, i)
            }
        };
        if let Some(v) = body.get(vs..ve.min(body.len())) {
            out.push((name, vs, v));
        }
    }
    out
}

/// Decode an HTML entity at the start of `s`: `(char, length)`.
fn entity(s: &str) -> Option<(char, usize)> {
    let end = s.bytes().take(12).position(|b| b == b';')?;
    let body = s.get(1..end)?;
    let c = if let Some(num) = body.strip_prefix("#x").or_else(|| body.strip_prefix("#X")) {
        char::from_u32(u32::from_str_radix(num, 16).ok()?)?
    } else if let Some(num) = body.strip_prefix('#') {
        char::from_u32(num.parse::<u32>().ok()?)?
    } else {
        match body {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            "nbsp" => ' ',
            "shy" | "zwj" | "zwnj" => '\u{200B}',
            _ => return None,
        }
    };
    Some((c, end + 1))
}

// ---------------------------------------------------------------- unicode

/// Characters that render as nothing or only reorder text.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{E0100}'..='\u{E01EF}'
        | '\u{1D173}'..='\u{1D17A}')
}

/// The Unicode folds of one character, for comparison.
pub(super) fn fold_one(c: char) -> String {
    unicode_fold(vec![Ch { c, s: 0, e: 1 }])
        .iter()
        .map(|ch| ch.c)
        .collect()
}

fn unicode_fold(chars: Vec<Ch>) -> Vec<Ch> {
    let mut out = Vec::with_capacity(chars.len());
    for ch in chars {
        let c = ch.c;
        // Unicode tag characters: invisible copies of ASCII used to smuggle
        // instructions; a model tokenises them, so recover the ASCII.
        if ('\u{E0000}'..='\u{E007F}').contains(&c) {
            let a = (c as u32) - 0xE0000;
            if (0x20..0x7F).contains(&a) {
                if let Some(a) = char::from_u32(a) {
                    out.push(Ch {
                        c: a.to_ascii_lowercase(),
                        ..ch
                    });
                }
            }
            continue;
        }
        if invisible(c) {
            continue;
        }
        // Regional-indicator and negative squared/circled letters spell
        // words with emoji ("🇭🇴🇼"); NFKC leaves them alone.
        if let Some(l) = emoji_letter(c) {
            out.push(Ch { c: l, ..ch });
            continue;
        }
        if c.is_ascii() {
            out.push(Ch {
                c: c.to_ascii_lowercase(),
                ..ch
            });
            continue;
        }
        for k in std::iter::once(c).nfkc() {
            if ('\u{0300}'..='\u{036F}').contains(&k) || arabic_mark(k) || invisible(k) {
                continue;
            }
            let latin_ext =
                ('\u{00C0}'..='\u{024F}').contains(&k) || ('\u{1E00}'..='\u{1EFF}').contains(&k);
            if latin_ext {
                for d in std::iter::once(k).nfd() {
                    if !('\u{0300}'..='\u{036F}').contains(&d) {
                        push_lower(&mut out, d, ch);
                    }
                }
            } else {
                push_lower(&mut out, k, ch);
            }
        }
    }
    out
}

/// The Latin letter an emoji letter stands for.
fn emoji_letter(c: char) -> Option<char> {
    let base = match c {
        '\u{1F1E6}'..='\u{1F1FF}' => 0x1F1E6,
        '\u{1F150}'..='\u{1F169}' => 0x1F150,
        '\u{1F170}'..='\u{1F189}' => 0x1F170,
        _ => return None,
    };
    char::from_u32(u32::from(b'a') + (c as u32 - base))
}

/// Arabic short vowels and other optional marks: written or not, the word
/// is the same, so rules are written without them.
fn arabic_mark(c: char) -> bool {
    matches!(c, '\u{0610}'..='\u{061A}' | '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{06D6}'..='\u{06ED}')
}

fn push_lower(out: &mut Vec<Ch>, c: char, src: Ch) {
    for l in c.to_lowercase() {
        out.push(Ch { c: l, ..src });
    }
}

// ---------------------------------------------------------------- words

/// Digits and symbols that stand for letters in leetspeak.
fn leet(c: char) -> Option<char> {
    Some(match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '@' => 'a',
        '$' => 's',
        _ => return None,
    })
}

fn letter_like(c: char) -> bool {
    c.is_alphabetic() || leet(c).is_some()
}

/// Separators used to space out letters ("i g n o r e", "i.g.n.o.r.e").
fn spacer(c: char) -> bool {
    matches!(
        c,
        ' ' | '.' | '-' | '_' | '|' | ',' | '/' | '+' | '~' | '\u{00A0}' | ':' | '\\' | '='
    )
}

/// Join runs of at least three single letters separated by one repeated
/// separator; a longer gap between two such runs becomes a space.
fn join_spaced(chars: Vec<Ch>) -> Vec<Ch> {
    let n = chars.len();
    let ll = |k: usize| chars.get(k).is_some_and(|ch| letter_like(ch.c));
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let Some(&cur) = chars.get(i) else { break };
        let single = ll(i) && (i == 0 || !ll(i - 1)) && !ll(i + 1);
        if single {
            if let Some(sep) = chars.get(i + 1).map(|c| c.c).filter(|&c| spacer(c)) {
                let mut j = i;
                while chars.get(j + 1).is_some_and(|c| c.c == sep) && ll(j + 2) && !ll(j + 3) {
                    j += 2;
                }
                let letters = (j - i) / 2 + 1;
                let alpha = (i..=j)
                    .step_by(2)
                    .filter(|&k| chars.get(k).is_some_and(|c| c.c.is_alphabetic()))
                    .count();
                if letters >= 3 && alpha >= 2 {
                    for k in (i..=j).step_by(2) {
                        if let Some(&c) = chars.get(k) {
                            out.push(c);
                        }
                    }
                    i = j + 1;
                    continue;
                }
            }
        }
        out.push(cur);
        i += 1;
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Confusable,
    Other,
    None,
}

/// Cyrillic and Greek letters that look like a Latin letter.
fn confusable(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ε' => 'e',
        'һ' => 'h',
        'і' | 'ї' | 'ι' | 'ӏ' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'м' => 'm',
        'п' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' | 'μ' => 'u',
        'ν' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        _ => return None,
    })
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '@' || c == '$'
}

/// Fold look-alikes in words that mix Latin with Cyrillic/Greek (or that are
/// all look-alikes next to a Latin word), and leetspeak in words that have
/// letters.
fn fold_words(mut chars: Vec<Ch>) -> Vec<Ch> {
    // Word boundaries and each word's script.
    let mut words: Vec<(usize, usize, Script)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars.get(i).is_some_and(|c| word_char(c.c)) {
            i += 1;
            continue;
        }
        let s = i;
        while chars.get(i).is_some_and(|c| word_char(c.c)) {
            i += 1;
        }
        let w = chars.get(s..i).unwrap_or(&[]);
        let latin = w.iter().any(|c| c.c.is_ascii_alphabetic());
        let conf = w.iter().filter(|c| confusable(c.c).is_some()).count();
        let other = w
            .iter()
            .any(|c| c.c.is_alphabetic() && !c.c.is_ascii() && confusable(c.c).is_none());
        let script = if latin && conf > 0 && !other {
            Script::Confusable // mixed: fold
        } else if latin {
            Script::Latin
        } else if conf > 0 && !other {
            Script::Confusable
        } else if other {
            Script::Other
        } else {
            Script::None
        };
        words.push((s, i, script));
    }
    for k in 0..words.len() {
        let Some(&(s, e, script)) = words.get(k) else {
            continue;
        };
        let w = chars.get(s..e).unwrap_or(&[]);
        let has_latin = w.iter().any(|c| c.c.is_ascii_alphabetic());
        let fold_conf = script == Script::Confusable
            && (has_latin
                || k.checked_sub(1)
                    .and_then(|p| words.get(p))
                    .is_some_and(|w| w.2 == Script::Latin)
                || words.get(k + 1).is_some_and(|w| w.2 == Script::Latin));
        if fold_conf {
            for ch in chars.get_mut(s..e).unwrap_or(&mut []) {
                if let Some(l) = confusable(ch.c) {
                    ch.c = l;
                }
            }
        }
        let w = chars.get(s..e).unwrap_or(&[]);
        let letters = w.iter().filter(|c| c.c.is_ascii_alphabetic()).count();
        let leets = w.iter().filter(|c| leet(c.c).is_some()).count();
        if letters > 0 && leets > 0 && letters + leets == w.len() {
            let orig: Vec<char> = w.iter().map(|c| c.c).collect();
            for (off, ch) in chars
                .get_mut(s..e)
                .unwrap_or(&mut [])
                .iter_mut()
                .enumerate()
            {
                if ch.c == '1' {
                    // A doubled 1 is "ll" ("a11", "he11o"); a single one "i".
                    let prev = off.checked_sub(1).and_then(|p| orig.get(p)) == Some(&'1');
                    let next = orig.get(off + 1) == Some(&'1');
                    ch.c = if prev || next { 'l' } else { 'i' };
                } else if let Some(l) = leet(ch.c) {
                    ch.c = l;
                }
            }
        }
    }
    chars
}

/// Runs of whitespace become one space, or one newline if they hold one.
fn collapse_space(chars: Vec<Ch>) -> Vec<Ch> {
    let mut out: Vec<Ch> = Vec::with_capacity(chars.len());
    let mut pending: Option<Ch> = None;
    for ch in chars {
        if ch.c.is_whitespace() {
            let nl = ch.c == '\n';
            pending = Some(match pending {
                None => Ch {
                    c: if nl { '\n' } else { ' ' },
                    ..ch
                },
                Some(p) => Ch {
                    c: if nl { '\n' } else { p.c },
                    s: p.s,
                    e: ch.e.max(p.e),
                },
            });
            continue;
        }
        if let Some(p) = pending.take() {
            if !out.is_empty() {
                out.push(p);
            }
        }
        out.push(ch);
    }
    out
}
