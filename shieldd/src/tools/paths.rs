//! Path checks of a tool rule (`allowed_paths`).
//!
//! Paths are normalised lexically (`.`, `..`, repeated slashes) and compared
//! by component, so `/data/reports_evil` is not under `/data/reports`.
//! Symbolic links are not resolved: that is the sandbox's job (Landlock sees
//! the real file), this check only refuses what the policy plainly forbids.

/// Longest path accepted (Linux PATH_MAX).
const MAX_PATH_BYTES: usize = 4096;

/// The compiled `allowed_paths` of a rule: each entry as its components.
#[derive(Debug, Clone)]
pub(crate) struct AllowedPaths(Vec<Vec<String>>);

/// Split an absolute path into normalised components, or say why not.
fn components(path: &str) -> Result<Vec<String>, String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("path is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.contains('\0') {
        return Err("path contains a NUL byte".to_string());
    }
    if !path.starts_with('/') {
        return Err("path is not absolute".to_string());
    }
    let mut out: Vec<String> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                // `..` at the root stays at the root, as the kernel does.
                out.pop();
            }
            other => out.push(other.to_string()),
        }
    }
    Ok(out)
}

impl AllowedPaths {
    /// Compile the entries; an entry that is not an absolute path is an error.
    pub(crate) fn new(entries: &[String]) -> Result<AllowedPaths, (String, String)> {
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            match components(e) {
                Ok(c) => out.push(c),
                Err(why) => return Err((e.clone(), why)),
            }
        }
        Ok(AllowedPaths(out))
    }

    /// `Ok` when `path` lies under an allowed entry, else why not.
    pub(crate) fn check(&self, path: &str) -> Result<(), String> {
        let comps = components(path)?;
        let inside = self.0.iter().any(|allowed| {
            comps.len() >= allowed.len() && comps.iter().zip(allowed).all(|(a, b)| a == b)
        });
        if inside {
            Ok(())
        } else {
            let shown = if comps.is_empty() {
                "/".to_string()
            } else {
                format!("/{}", comps.join("/"))
            };
            Err(format!("`{shown}` is outside allowed_paths"))
        }
    }
}

/// Whether a parameter of this name holds a path (lower-cased name).
pub(crate) fn is_path_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    const EXACT: &[&str] = &[
        "file",
        "files",
        "filename",
        "filenames",
        "dir",
        "directory",
        "folder",
        "src",
        "source",
        "dst",
        "dest",
        "destination",
        "target",
    ];
    EXACT.contains(&n.as_str())
        || n.ends_with("path")
        || n.ends_with("paths")
        || n.ends_with("_file")
        || n.ends_with("_dir")
        || n.ends_with("filename")
}
