//! The eval corpus for the scanner benchmarks and measuring examples:
//! every `text` of every JSONL file of `dir`, files in name order.

use std::path::Path;

/// Every text of the corpus.
pub fn corpus(dir: &Path) -> Vec<String> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut texts = Vec::new();
    for f in files {
        let Ok(data) = std::fs::read_to_string(&f) else {
            continue;
        };
        for line in data.lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                if let Some(t) = v.get("text").and_then(|t| t.as_str()) {
                    texts.push(t.to_string());
                }
            }
        }
    }
    texts
}
