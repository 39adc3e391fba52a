//! The learned layer's feature extractor as it was before the speed work
//! (u64 seen-sets, one char at a time), kept as a test oracle: the fast
//! extractor must give bit-identical scores.

use super::{
    bucket_sign, fmix64, mix, Window, WindowSink, NGRAM_MAX, NGRAM_MIN, SEED_BIGRAM, SEED_CHAR,
    SEED_WORD, STRIDE_CHARS,
};

const SEEN_SLOTS: usize = 2048;

#[derive(Clone, Copy, Default)]
struct Slot {
    open: bool,
    /// Window number + 1, tags this window's entries in `seen`.
    generation: u32,
    n_features: u32,
    byte_start: usize,
    byte_end: usize,
}

struct Extractor<'s, S: WindowSink> {
    sink: &'s mut S,
    /// Last normalised characters, newest first.
    ring: [u32; NGRAM_MAX],
    /// Number of normalised characters emitted so far.
    pos: u32,
    word: Option<u64>,
    prev_word: Option<u64>,
    slots: [Slot; 2],
    /// Per slot, an open-addressing set of the buckets already sent for the
    /// current window (entry = generation << 32 | bucket): features are
    /// binary, so repeating a sentence cannot inflate a window's score.
    seen: [[u64; SEEN_SLOTS]; 2],
    /// Origin byte range of the character being emitted.
    cur_start: usize,
    cur_end: usize,
}

impl<S: WindowSink> Extractor<'_, S> {
    fn emit(&mut self, h: u64) {
        let (bucket, neg) = bucket_sign(h);
        let sign = if neg == 0 { 1.0 } else { -1.0 };
        for (i, (slot, seen)) in self.slots.iter_mut().zip(self.seen.iter_mut()).enumerate() {
            if !slot.open {
                continue;
            }
            slot.byte_end = self.cur_end;
            let key = (u64::from(slot.generation) << 32) | u64::from(bucket);
            let mut at = bucket as usize;
            let mut fresh = false;
            for _ in 0..SEEN_SLOTS {
                at %= SEEN_SLOTS;
                let Some(e) = seen.get_mut(at) else { break };
                if *e == key {
                    break;
                }
                if (*e >> 32) != u64::from(slot.generation) {
                    // Empty or left over from an older window: free.
                    *e = key;
                    fresh = true;
                    break;
                }
                at += 1;
            }
            if fresh {
                slot.n_features += 1;
                self.sink.add(i, bucket, sign);
            }
        }
    }

    fn end_word(&mut self) {
        if let Some(w) = self.word.take() {
            let w = fmix64(w);
            self.emit(w);
            if let Some(p) = self.prev_word {
                self.emit(mix(mix(SEED_BIGRAM, p), w));
            }
            self.prev_word = Some(w);
        }
    }

    fn push(&mut self, ch: char) {
        let p = self.pos;
        let phase = p % STRIDE_CHARS;
        if phase == 0 {
            // Window k = p / STRIDE starts here and reuses the slot of window
            // k - 2, which ended at the previous character.
            let k = (p / STRIDE_CHARS) as usize;
            let idx = k % 2;
            if let Some(slot) = self.slots.get_mut(idx) {
                if slot.open {
                    let w = Window {
                        n_features: slot.n_features,
                        byte_start: slot.byte_start,
                        byte_end: slot.byte_end,
                    };
                    self.sink.close(idx, w);
                }
                *slot = Slot {
                    open: true,
                    generation: (k as u32).wrapping_add(1),
                    n_features: 0,
                    byte_start: self.cur_start,
                    byte_end: self.cur_end,
                };
            }
        }
        self.pos = p.saturating_add(1);

        if ch.is_alphanumeric() {
            self.word = Some(mix(self.word.unwrap_or(SEED_WORD), u64::from(ch)));
        } else {
            self.end_word();
        }

        self.ring.rotate_right(1);
        self.ring[0] = u32::from(ch);
        let avail = (self.pos as usize).min(NGRAM_MAX);
        let mut h = SEED_CHAR;
        let ring = self.ring;
        for (n, &c) in ring.iter().take(avail).enumerate() {
            h = mix(h, u64::from(c));
            if n + 1 >= NGRAM_MIN {
                self.emit(h);
            }
        }
    }

    fn finish(&mut self) {
        self.end_word();
        if self.pos == 0 {
            return;
        }
        let last = self.pos - 1;
        let b = (last / STRIDE_CHARS) as usize;
        // Window b lies wholly inside window b - 1 (which runs to the end of
        // the text), so it is dropped rather than counted twice.
        let keep = if b == 0 { 0 } else { (b - 1) % 2 };
        if let Some(slot) = self.slots.get(keep) {
            if slot.open {
                let w = Window {
                    n_features: slot.n_features,
                    byte_start: slot.byte_start,
                    byte_end: slot.byte_end,
                };
                self.sink.close(keep, w);
            }
        }
    }
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Extract the features of `text` window by window into `sink`.
///
/// This is the single definition of the model's features, shared by
/// inference and `cargo xtask train`. It does not apply [`SCAN_CAP_BYTES`];
/// [`Model::score`] does.
pub(super) fn extract_windows<S: WindowSink>(text: &str, sink: &mut S) {
    let mut ex = Extractor {
        sink,
        ring: [0; NGRAM_MAX],
        pos: 0,
        word: None,
        prev_word: None,
        slots: [Slot::default(); 2],
        seen: [[0; SEEN_SLOTS]; 2],
        cur_start: 0,
        cur_end: 0,
    };
    let mut pending_space = false;
    for (i, c) in text.char_indices() {
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            ex.end_word();
            pending_space = ex.pos > 0;
            continue;
        }
        ex.cur_start = i;
        ex.cur_end = i + c.len_utf8();
        if pending_space {
            ex.push(' ');
            pending_space = false;
        }
        for lc in c.to_lowercase() {
            ex.push(lc);
        }
    }
    ex.finish();
}

struct ScoreSink<'m> {
    weights: &'m [u8],
    acc: [f32; 2],
    /// Highest window value so far and that window.
    best: Option<(f32, Window)>,
}

impl WindowSink for ScoreSink<'_> {
    fn add(&mut self, slot: usize, bucket: u32, sign: f32) {
        let w = self.weights.get(bucket as usize).copied().unwrap_or(0) as i8;
        if let Some(a) = self.acc.get_mut(slot) {
            *a += f32::from(w) * sign;
        }
    }

    fn close(&mut self, slot: usize, window: Window) {
        if let Some(a) = self.acc.get_mut(slot) {
            let v = *a / (window.n_features.max(1) as f32).sqrt();
            // Strictly greater: the first of equal windows wins.
            if self.best.is_none_or(|(b, _)| v > b) {
                self.best = Some((v, window));
            }
            *a = 0.0;
        }
    }
}

/// The old scorer: highest window logit of `text` (no cap) and its window.
pub(super) fn best_window(
    weights: &[u8],
    scale: f32,
    bias: f32,
    text: &str,
) -> Option<(f32, Window)> {
    let mut sink = ScoreSink {
        weights,
        acc: [0.0; 2],
        best: None,
    };
    extract_windows(text, &mut sink);
    sink.best.map(|(v, w)| (bias + scale * v, w))
}
