//! The operator's tools: migrate, token, agent add.

use crate::options::{
    AgentAddOptions, AgentCommand, AgentDatabase, AgentOptions, MigrateOptions, TokenOptions,
};
use anyhow::{bail, Context};
use argon2::password_hash::{rand_core::OsRng, SaltString};
use argon2::{Argon2, PasswordHasher};
use kefu_protocol::{token, Claims, Role};
use std::io::BufRead;
use std::path::Path;

pub async fn migrate(opts: MigrateOptions) -> anyhow::Result<()> {
    let store = kefu_store::Store::connect(&opts.database_url)
        .await
        .context("connecting")?;
    store.migrate().await.context("migrating")?;
    eprintln!("kefu: schema is up to date");
    Ok(())
}

pub fn token(opts: TokenOptions) -> anyhow::Result<()> {
    let role = Role::parse(&opts.role).with_context(|| {
        format!(
            "--role must be customer, agent or admin, not {:?}",
            opts.role
        )
    })?;
    if opts.user.is_empty() || opts.user.len() > token::MAX_USER_ID {
        bail!("--user must be 1 to {} bytes", token::MAX_USER_ID);
    }
    let secret = match (&opts.secret, &opts.data_dir) {
        (Some(s), _) => crate::options::checked_secret(s, "--secret")?,
        (None, Some(dir)) => crate::secret::read(dir)?,
        (None, None) => crate::secret::read(Path::new("./kefu-data"))?,
    };
    let claims = Claims {
        name: opts.name,
        device: opts.device,
        ..Claims::new(opts.user, role, token::expiry_after(opts.ttl))
    };
    println!("{}", token::sign(&secret, &claims)?);
    Ok(())
}

/// The database URL of a data dir's embedded SQLite.
pub fn sqlite_url(data_dir: &Path) -> anyhow::Result<String> {
    private_dir(data_dir)?;
    let db = data_dir.join("kefu.db");
    // Created empty and private before SQLite opens it: SQLite gives its
    // -wal and -shm files the database file's mode.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&db) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", db.display())),
    }
    Ok(format!("sqlite://{}?mode=rwc", db.display()))
}

/// Creates the data dir readable by its owner only (messages and the
/// signing secret live there); an existing one is left as it is.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

pub async fn agent(opts: AgentOptions) -> anyhow::Result<()> {
    let (account, disabled) = match opts.command {
        AgentCommand::Add(add) => return agent_add(add).await,
        AgentCommand::Disable(account) => (account, Some(true)),
        AgentCommand::Enable(account) => (account, Some(false)),
        AgentCommand::SignOut(account) => (account, None),
    };
    let store = agent_store(&account.database).await?;
    let agent = store
        .user(&account.id)
        .await?
        .filter(|u| u.role == "agent")
        .with_context(|| format!("no agent {:?}", account.id))?;
    store
        .set_agent_disabled(&agent.id, disabled.unwrap_or(agent.disabled))
        .await?;
    let done = match disabled {
        Some(true) => "disabled; their connections close within seconds",
        Some(false) => "enabled; they may log in again",
        None => "signed out everywhere; their connections close within seconds",
    };
    eprintln!("kefu: agent {} {done}", agent.id);
    Ok(())
}

/// The accounts' database, migrated.
async fn agent_store(database: &AgentDatabase) -> anyhow::Result<kefu_store::Store> {
    let url = match (&database.database_url, &database.data_dir) {
        (Some(url), _) => url.clone(),
        (None, Some(dir)) => sqlite_url(dir)?,
        (None, None) => sqlite_url(Path::new("./kefu-data"))?,
    };
    let store = kefu_store::Store::connect(&url)
        .await
        .context("connecting")?;
    store.migrate().await.context("migrating")?;
    Ok(store)
}

async fn agent_add(add: AgentAddOptions) -> anyhow::Result<()> {
    if add.id.is_empty() || add.id.len() > token::MAX_USER_ID {
        bail!("--id must be 1 to {} bytes", token::MAX_USER_ID);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!("the password on stdin is empty");
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string();
    let store = agent_store(&add.database).await?;
    store.create_agent(&add.id, &add.name, &hash).await?;
    eprintln!("kefu: agent {} added", add.id);
    Ok(())
}
