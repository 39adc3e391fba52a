//! Builds the eBPF programs of shieldd-ebpf/ (C, CO-RE) with clang-19 and
//! prints the layout of the event structs for the monitor's layout test.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const INSTALL: &str =
    "install clang-19 libbpf-dev bpftool (apt-get install -y clang-19 libbpf-dev bpftool), or run `cargo xtask build` which does";

fn fail(msg: &str) -> ! {
    eprintln!("shieldd build: {msg}");
    exit(1);
}

/// A tool on PATH or in the sbin directories (bpftool lives in /usr/sbin,
/// which is not on every user's PATH).
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(
            ["/usr/sbin", "/sbin", "/usr/local/sbin"]
                .iter()
                .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    match cmd.output() {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => fail(&format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => fail(&format!("{what} could not run ({e}): {INSTALL}")),
    }
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let src = manifest.join("../shieldd-ebpf");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR is not set")));
    for f in ["shield.bpf.c", "events.h", "layout.c"] {
        println!("cargo:rerun-if-changed={}", src.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=SHIELDD_CLANG");
    println!("cargo:rerun-if-env-changed=SHIELDD_VMLINUX_BTF");
    println!("cargo:rerun-if-changed=/sys/kernel/btf/vmlinux");

    let clang = env::var_os("SHIELDD_CLANG")
        .map(PathBuf::from)
        .or_else(|| find_tool("clang-19"))
        .unwrap_or_else(|| fail(&format!("clang-19 not found: {INSTALL}")));
    let bpftool =
        find_tool("bpftool").unwrap_or_else(|| fail(&format!("bpftool not found: {INSTALL}")));
    if !Path::new("/usr/include/bpf/bpf_helpers.h").is_file() {
        fail(&format!("libbpf headers not found: {INSTALL}"));
    }
    let btf = env::var("SHIELDD_VMLINUX_BTF").unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".into());
    if !Path::new(&btf).is_file() {
        fail(&format!(
            "{btf} is missing: the kernel has no BTF (CONFIG_DEBUG_INFO_BTF); set SHIELDD_VMLINUX_BTF to a vmlinux BTF file"
        ));
    }

    let vmlinux = run(
        Command::new(&bpftool).args(["btf", "dump", "file", &btf, "format", "c"]),
        "bpftool btf dump",
    );
    if let Err(e) = std::fs::write(out.join("vmlinux.h"), vmlinux) {
        fail(&format!("cannot write vmlinux.h: {e}"));
    }

    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => fail(&format!("no eBPF target arch for {other}")),
        Err(_) => "x86",
    };
    run(
        Command::new(&clang)
            .args(["-target", "bpf", "-g", "-O2", "-Wall", "-Werror"])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .arg("-I")
            .arg(&out)
            .arg("-I")
            .arg(&src)
            .arg("-c")
            .arg(src.join("shield.bpf.c"))
            .arg("-o")
            .arg(out.join("shield.bpf.o")),
        "clang-19 (eBPF programs)",
    );

    // Layout of events.h as the host C compiler sees it.
    let layout_bin = out.join("layout");
    run(
        Command::new(&clang)
            .arg("-I")
            .arg(&src)
            .arg(src.join("layout.c"))
            .arg("-o")
            .arg(&layout_bin),
        "clang-19 (layout.c)",
    );
    let layout = run(&mut Command::new(&layout_bin), "layout program");
    if let Err(e) = std::fs::write(out.join("layout.rs"), layout) {
        fail(&format!("cannot write layout.rs: {e}"));
    }
}
