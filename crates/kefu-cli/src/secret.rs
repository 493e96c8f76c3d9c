//! The token secret of `kefu serve`: given, or generated once into the data
//! dir and reused on restart.

use anyhow::Context;
use std::path::Path;

const FILE: &str = "secret";

/// The secret from `given`, else from DATA_DIR/secret, created if missing.
pub fn load_or_create(given: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = given {
        return crate::options::checked_secret(s, "--secret");
    }
    let path = data_dir.join(FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    crate::tools::private_dir(data_dir)?;
    let secret = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    write_private(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// The secret a data dir holds, for `kefu token --data-dir`.
pub fn read(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(FILE);
    let s = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no secret at {} (run `kefu serve` there first, or pass --secret)",
            path.display()
        )
    })?;
    Ok(s.trim().as_bytes().to_vec())
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}
