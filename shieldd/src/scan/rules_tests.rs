//! Per-family, per-language positives and look-alikes for the rule table.

use crate::scan::injection::InjectionRules;
use crate::scan::normalize::normalize;

fn types(text: &str) -> Vec<String> {
    let rules = match InjectionRules::builtin() {
        Ok(r) => r,
        Err(e) => panic!("rules do not compile: {e}"),
    };
    let mut out = Vec::new();
    rules.scan_all(&normalize(text), &mut out);
    let mut t: Vec<String> = out.into_iter().map(|f| f.ty).collect();
    t.sort();
    t.dedup();
    t
}

fn fires(text: &str, ty: &str) {
    let t = types(text);
    assert!(
        t.iter().any(|x| x == ty),
        "{ty} expected for {text:?}, got {t:?}"
    );
}

fn quiet(text: &str) {
    let t = types(text);
    assert!(t.is_empty(), "nothing expected for {text:?}, got {t:?}");
}

#[test]
fn compiles() {
    assert!(InjectionRules::builtin().is_ok());
}
