//! Reusable evcxr build folders: where compiled `:dep` crates are kept between engines and between runs.
//!
//! Why: evcxr compiles every `:dep` (rnnlab, ndarray, plotters, ...) into a fresh temporary folder per context,
//! which costs one to two minutes per notebook on a small machine. Pointing a context at a folder that an earlier
//! context left behind makes cargo reuse those builds (it rebuilds only what changed, e.g. an edited rnnlab).
//! evcxr's own `:cache` shares one folder between all processes, and concurrent runs broke each other's builds;
//! here every folder ("slot") is held under an exclusive file lock by one engine at a time, so concurrent runs
//! take different slots and never share a folder.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// How many slots a cache root holds. Each is a cargo target folder of a few hundred MB; runs beyond this many at
/// once fall back to a private temporary folder (cold, but correct).
pub const SLOTS: usize = 4;

/// The environment variable that overrides the default cache root; set it to an empty string to turn caching off.
pub const CACHE_ENV: &str = "RNNLAB_BUILD_CACHE";

/// One locked build folder. The lock is released when this is dropped (or when the process ends).
#[derive(Debug)]
pub struct BuildDir {
    path: PathBuf,
    _lock: File,
}

impl BuildDir {
    /// Takes the first free slot under `root` (creating it), or `None` when all [`SLOTS`] are held by other
    /// engines. Errors: the root cannot hold evcxr builds (see [`check_root`]), or I/O errors creating or locking
    /// the slot files.
    pub fn acquire(root: &Path) -> std::io::Result<Option<BuildDir>> {
        std::fs::create_dir_all(root)?;
        check_root(root).map_err(std::io::Error::other)?;
        write_profile(root)?;
        for slot in 0..SLOTS {
            let path = root.join(format!("slot-{slot}"));
            std::fs::create_dir_all(&path)?;
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(root.join(format!("slot-{slot}.lock")))?;
            match lock.try_lock() {
                Ok(()) => return Ok(Some(BuildDir { path, _lock: lock })),
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Takes a slot under the default root ([`default_root`]); `None` when caching is off, every slot is busy, or
    /// the root cannot be used (then the engine simply builds in a temporary folder).
    pub fn acquire_default() -> Option<BuildDir> {
        BuildDir::acquire(&default_root()?).ok().flatten()
    }

    /// The folder evcxr builds in.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The cargo settings written to `<root>/.cargo/config.toml`, which cargo reads for every build in a slot below
/// it (evcxr runs cargo in the slot's folder).
///
/// Why: evcxr builds cells with its `dev` profile, debug assertions and overflow checks on, and the `:dep` crates
/// with them: rnnlab's kernels ran with a check on every index computation, and one LSTM(256) step at batch 1 took
/// 54-74 µs in the REPL against 25 µs in `rnnlab bench`. Dependencies (not the cells, which keep Rust's debug
/// checks) are built optimised without them. Float results do not depend on these settings.
pub const PROFILE: &str = "\
# Written by rnnlab's notebook engine (crates/notebook/src/build_dir.rs): evcxr's `:dep` crates, rnnlab among
# them, built optimised and without debug checks; the cells themselves keep evcxr's settings.
[profile.dev.package.\"*\"]
opt-level = 3
debug-assertions = false
overflow-checks = false
";

/// Writes [`PROFILE`] under `root` unless it is there already.
fn write_profile(root: &Path) -> std::io::Result<()> {
    let dir = root.join(".cargo");
    let path = dir.join("config.toml");
    if std::fs::read_to_string(&path).is_ok_and(|t| t == PROFILE) {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    // Written beside and renamed, so a concurrent engine never reads half a file.
    let tmp = dir.join(format!("config.toml.{}", std::process::id()));
    std::fs::write(&tmp, PROFILE)?;
    std::fs::rename(&tmp, &path)
}

/// `$RNNLAB_BUILD_CACHE` if set (empty: off), else `rnnlab-evcxr-builds-<user>` in the system's temporary
/// folder. Not the user's cache folder: see [`check_root`] for why a folder under the home directory usually
/// cannot work.
pub fn default_root() -> Option<PathBuf> {
    if let Some(value) = std::env::var_os(CACHE_ENV) {
        return (!value.is_empty()).then(|| PathBuf::from(value));
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".into());
    let user: String = user
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    Some(std::env::temp_dir().join(format!("rnnlab-evcxr-builds-{user}")))
}

/// Checks that cells compiled under `root` will find the Rust standard library when evcxr loads them.
///
/// Why: evcxr links each cell against the toolchain's `libstd-*.so` and rustc records where it is as a path
/// relative to the library's folder (`$ORIGIN/../..`), computed for `target/<triple>/debug/deps/`. evcxr loads the
/// copy cargo places one folder higher, so the path climbs one `..` too many. That is harmless only when the
/// build folder and the toolchain share no folder but `/` (climbing above `/` stays at `/`), as with builds in
/// `/tmp` and a toolchain in `~/.rustup`; a build folder under the home directory fails with "dlopen failed".
pub fn check_root(root: &Path) -> Result<(), String> {
    let Some(sysroot) = rust_sysroot() else {
        return Ok(()); // Cannot tell; evcxr reports the failure itself if there is one.
    };
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let first = |p: &Path| {
        p.components()
            .find(|c| matches!(c, std::path::Component::Normal(_)))
            .map(|c| c.as_os_str().to_owned())
    };
    match (first(&root), first(&sysroot)) {
        (Some(a), Some(b)) if a == b => Err(format!(
            "build folder {} shares its top folder with the Rust toolchain at {}: cells compiled there would not \
             find the standard library (a quirk of rustc's relative rpath); choose a folder elsewhere, e.g. in {}",
            root.display(),
            sysroot.display(),
            std::env::temp_dir().display()
        )),
        _ => Ok(()),
    }
}

/// The active toolchain's sysroot (`rustc --print sysroot`), canonicalised.
fn rust_sysroot() -> Option<PathBuf> {
    let out = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let path = PathBuf::from(text.trim());
    std::fs::canonicalize(&path).ok().or(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_and_released_on_drop() {
        let root =
            std::env::temp_dir().join(format!("rnnlab-build-dir-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let held: Vec<BuildDir> = (0..SLOTS)
            .map(|_| BuildDir::acquire(&root).unwrap().expect("a free slot"))
            .collect();
        let mut paths: Vec<&Path> = held.iter().map(|d| d.path()).collect();
        paths.dedup();
        assert_eq!(paths.len(), SLOTS, "each engine gets its own folder");
        assert_eq!(
            std::fs::read_to_string(root.join(".cargo/config.toml")).unwrap(),
            PROFILE,
            "cargo finds the dependencies' profile above every slot"
        );
        assert!(
            BuildDir::acquire(&root).unwrap().is_none(),
            "all slots busy"
        );
        let first = held[0].path().to_path_buf();
        drop(held);
        let again = BuildDir::acquire(&root)
            .unwrap()
            .expect("slots are free again");
        assert_eq!(
            again.path(),
            first,
            "the first slot is reused, so its builds are warm"
        );
        drop(again);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_root_beside_the_toolchain_is_refused() {
        let sysroot = rust_sysroot().expect("rustc on PATH");
        let err = check_root(&sysroot.join("rnnlab-builds")).unwrap_err();
        assert!(err.contains("standard library"), "{err}");
        assert!(
            check_root(&std::env::temp_dir()).is_ok() || sysroot.starts_with(std::env::temp_dir())
        );
    }

    #[test]
    fn an_unusable_root_is_an_error() {
        let file =
            std::env::temp_dir().join(format!("rnnlab-build-dir-file-{}", std::process::id()));
        std::fs::write(&file, b"not a folder").unwrap();
        assert!(BuildDir::acquire(&file).is_err());
        std::fs::remove_file(&file).unwrap();
    }
}
