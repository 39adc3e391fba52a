//! `cargo xtask install [--prefix /usr/local] [--dest DIR] [--binary PATH]`:
//! the release binary, the systemd unit, the default config (never over an
//! existing one) and the D-Bus policy. `--dest` stages everything under DIR
//! (as DESTDIR does for packagers); `--binary` installs a binary already
//! built instead of building one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where each file goes, relative to the destination root.
pub struct Layout {
    /// The shieldd binary to install.
    pub binary: PathBuf,
    /// Installation prefix of the binary (`/usr/local`).
    pub prefix: PathBuf,
    /// Root of the installation (`/`, or a staging directory).
    pub dest: PathBuf,
    /// The repository (packaging/ is read from it).
    pub repo: PathBuf,
}

/// What one file did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Written (new or replaced).
    Installed(PathBuf),
    /// Left alone: an existing config is the operator's.
    Kept(PathBuf),
}

fn under(dest: &Path, abs: &Path) -> PathBuf {
    dest.join(abs.strip_prefix("/").unwrap_or(abs))
}

fn put(src_bytes: &[u8], to: &Path, mode: u32) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Write beside and rename: a running binary or a unit being read by
    // systemd is never seen half written.
    let tmp = to.with_extension("xtask-new");
    std::fs::write(&tmp, src_bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))?;
    Ok(())
}

/// Copy the files into place; returns what happened to each.
pub fn lay_out(l: &Layout) -> Result<Vec<Outcome>> {
    if !l.prefix.is_absolute() {
        bail!("--prefix must be absolute, not {}", l.prefix.display());
    }
    let mut done = Vec::new();
    let bin_abs = l.prefix.join("bin/shieldd");
    let bin = std::fs::read(&l.binary)
        .with_context(|| format!("reading the binary {}", l.binary.display()))?;
    let to = under(&l.dest, &bin_abs);
    put(&bin, &to, 0o755)?;
    done.push(Outcome::Installed(to));

    let unit = std::fs::read_to_string(l.repo.join("packaging/shieldd.service"))?;
    const EXEC: &str = "ExecStart=/usr/local/bin/shieldd ";
    if !unit.contains(EXEC) {
        bail!("packaging/shieldd.service has no `{EXEC}` line to point at the binary");
    }
    let unit = unit.replace(EXEC, &format!("ExecStart={} ", bin_abs.display()));
    let to = under(&l.dest, Path::new("/etc/systemd/system/shieldd.service"));
    put(unit.as_bytes(), &to, 0o644)?;
    done.push(Outcome::Installed(to));

    let to = under(&l.dest, Path::new("/etc/shieldd/config.yaml"));
    if to.exists() {
        done.push(Outcome::Kept(to));
    } else {
        put(
            &std::fs::read(l.repo.join("packaging/config.yaml"))?,
            &to,
            0o644,
        )?;
        done.push(Outcome::Installed(to));
    }

    let to = under(
        &l.dest,
        Path::new("/usr/share/dbus-1/system.d/org.shieldd.Manager1.conf"),
    );
    put(
        &std::fs::read(l.repo.join("packaging/dbus/org.shieldd.Manager1.conf"))?,
        &to,
        0o644,
    )?;
    done.push(Outcome::Installed(to));
    Ok(done)
}

/// The command.
pub fn run(args: &[String]) -> Result<()> {
    let mut prefix = PathBuf::from("/usr/local");
    let mut dest = PathBuf::from("/");
    let mut binary: Option<PathBuf> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .map(PathBuf::from)
                .with_context(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--prefix" => prefix = val("--prefix")?,
            "--dest" => dest = val("--dest")?,
            "--binary" => binary = Some(val("--binary")?),
            other => bail!(
                "install: unknown argument {other}; usage: cargo xtask install [--prefix /usr/local] [--dest DIR] [--binary PATH]"
            ),
        }
    }
    let binary = match binary {
        Some(b) => b,
        None => {
            crate::ensure_deps(crate::BUILD_DEPS)?;
            crate::sh(crate::cargo().args(["build", "--release", "-p", "shieldd"]))?;
            crate::root().join("target/release/shieldd")
        }
    };
    let done = lay_out(&Layout {
        binary,
        prefix,
        dest: dest.clone(),
        repo: crate::root(),
    })?;
    for d in &done {
        match d {
            Outcome::Installed(p) => println!("installed {}", p.display()),
            Outcome::Kept(p) => println!(
                "kept      {} (exists; the new default is packaging/config.yaml)",
                p.display()
            ),
        }
    }
    if dest == Path::new("/") {
        println!("next: systemctl daemon-reload && systemctl enable --now shieldd; systemctl reload dbus");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_lays_out_the_files_and_keeps_an_existing_config() {
        let tmp = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).expect("tmp");
        let fake = tmp.join("shieldd-built");
        std::fs::write(&fake, b"\x7fELF fake").expect("fake binary");
        let dest = tmp.join("root");
        let l = Layout {
            binary: fake,
            prefix: PathBuf::from("/opt/sd"),
            dest: dest.clone(),
            repo: crate::root(),
        };
        let done = lay_out(&l).expect("install");
        let bin = dest.join("opt/sd/bin/shieldd");
        let unit = dest.join("etc/systemd/system/shieldd.service");
        let conf = dest.join("etc/shieldd/config.yaml");
        let pol = dest.join("usr/share/dbus-1/system.d/org.shieldd.Manager1.conf");
        assert_eq!(
            done,
            [
                Outcome::Installed(bin.clone()),
                Outcome::Installed(unit.clone()),
                Outcome::Installed(conf.clone()),
                Outcome::Installed(pol.clone()),
            ]
        );
        assert_eq!(std::fs::read(&bin).expect("bin"), b"\x7fELF fake");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&bin), 0o755);
        assert_eq!(mode(&unit), 0o644);
        let u = std::fs::read_to_string(&unit).expect("unit");
        assert!(
            u.contains(
                "\nExecStart=/opt/sd/bin/shieldd daemon --config /etc/shieldd/config.yaml\n"
            ),
            "{u}"
        );
        assert!(!u.contains("/usr/local/bin"));
        assert_eq!(
            std::fs::read(&pol).expect("policy"),
            std::fs::read(crate::root().join("packaging/dbus/org.shieldd.Manager1.conf"))
                .expect("src")
        );
        // The operator's config survives a reinstall; everything else is replaced.
        std::fs::write(&conf, "admin_group: ops\n").expect("edit");
        let done = lay_out(&l).expect("reinstall");
        assert!(done.contains(&Outcome::Kept(conf.clone())));
        assert_eq!(
            std::fs::read_to_string(&conf).expect("conf"),
            "admin_group: ops\n"
        );
        // No temporary files left behind.
        let leftovers: Vec<_> = walk(&dest)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "xtask-new"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        let _ = std::fs::remove_dir_all(&tmp);
    }

    #[test]
    fn install_refuses_a_relative_prefix() {
        let l = Layout {
            binary: PathBuf::from("/bin/true"),
            prefix: PathBuf::from("usr/local"),
            dest: std::env::temp_dir(),
            repo: crate::root(),
        };
        assert!(lay_out(&l).is_err());
    }

    fn walk(d: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.extend(walk(&p));
                } else {
                    out.push(p);
                }
            }
        }
        out
    }
}
