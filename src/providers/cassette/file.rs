//! Cassette files: reading them, opening them owner-only for appending, and the shared
//! cassettes `SWITCHBOARD_CASSETTE` names.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use super::entry::Entry;
use super::{Cassette, CassetteMode};
use crate::error::{Error, Result};

/// Opens the cassette `SWITCHBOARD_CASSETTE` names (`record:PATH`, `replay:PATH` or
/// `auto:PATH`), shared per path across the process.
pub(crate) fn from_spec(spec: &str) -> Result<Arc<Cassette>> {
    let bad = || {
        Error::config(
            format!("SWITCHBOARD_CASSETTE is `{spec}`, not MODE:PATH"),
            "set it to record:PATH, replay:PATH or auto:PATH",
        )
    };
    let (mode, path) = spec.split_once(':').ok_or_else(bad)?;
    let mode = match mode.trim() {
        "record" => CassetteMode::Record,
        "replay" => CassetteMode::Replay,
        "auto" => CassetteMode::ReplayOrRecord,
        _ => return Err(bad()),
    };
    let path = PathBuf::from(path.trim());
    if path.as_os_str().is_empty() {
        return Err(bad());
    }
    static SHARED: OnceLock<Mutex<HashMap<PathBuf, Arc<Cassette>>>> = OnceLock::new();
    let mut shared = SHARED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(cassette) = shared.get(&path) {
        if cassette.mode == mode {
            return Ok(Arc::clone(cassette));
        }
        return Err(Error::config(
            format!(
                "cassette {} is already open as `{}`, not `{}`",
                path.display(),
                cassette.mode.as_str(),
                mode.as_str()
            ),
            "use one mode per cassette file in a process",
        ));
    }
    let cassette = Arc::new(Cassette::builder().path(&path).mode(mode).build()?);
    shared.insert(path, Arc::clone(&cassette));
    Ok(cassette)
}

pub(super) fn load(path: &Path, mode: CassetteMode) -> Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && mode.records() => {
            return Ok(Vec::new())
        }
        Err(e) => {
            let shown = path.display();
            return Err(Error::config(
                format!("cannot read cassette {shown}: {e}"),
                format!("record it first: run once with real keys and SWITCHBOARD_CASSETTE=record:{shown}"),
            ));
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str::<Entry>(line).map_err(|e| {
                Error::config(
                    format!(
                        "cassette {} line {} is not a recorded exchange: {e}",
                        path.display(),
                        n + 1
                    ),
                    "fix or delete that line, or re-record the cassette",
                )
            })
        })
        .collect()
}

pub(super) fn open_for_append(path: &Path) -> Result<File> {
    let fail = |what: &str, e: std::io::Error| {
        Error::config(
            format!("cannot {what} cassette {}: {e}", path.display()),
            "check the cassette path and its permissions",
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_private_dir(dir).map_err(|e| fail("create the folder of", e))?;
        }
    }
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| fail("open", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| fail("restrict", e))?;
    }
    Ok(file)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
