//! Learned injection classifier (filled in by the learned-model work).

/// Probability in [0, 1] that `text` is a prompt injection.
pub fn score(_text: &str) -> f32 {
    0.0
}
