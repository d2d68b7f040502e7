//! `cfsgate key …` (key files) and `cfsgate keyring …` (the kernel keyring of trust anchors).
//!
//! | command | does |
//! |---|---|
//! | `key generate --type ed25519\|p256 --output PREFIX` | writes `PREFIX.key` (PKCS#8 PEM, mode 0600, never overwriting) and `PREFIX.pub` (SPKI PEM); prints the key id |
//! | `key id FILE` | prints the key id (sha256 of the DER SPKI, hex) of a public key, certificate or private key |
//! | `keyring add [--name N] DESCRIPTION FILE` | PEM/DER public key → `user` key; X.509 certificate (PEM/DER) → kernel-verified `asymmetric` key |
//! | `keyring list [--name N] [--json]` | the keys: serial, type, description, key id |
//! | `keyring remove [--name N] DESCRIPTION` | invalidates the keys with that description |
//!
//! The keyring (default `cfsgate`) is created on first `add` in the caller's user keyring with
//! permissions that let any process verify but only the owner change it (see
//! `cfsgate_keyring::kernel`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use cfsgate_keyring::x509::Certificate;
use cfsgate_keyring::{read_trust_file, MAX_TRUST_FILE_BYTES};
use cfsgate_keyring::{
    KernelKeyring, KeyType, Passphrase, PrivateKey, PublicKey, DEFAULT_KEYRING_NAME,
};

/// Mode of a written private key: readable by its owner only.
const PRIVATE_KEY_MODE: u32 = 0o600;
/// Mode of a written public key: public.
const PUBLIC_KEY_MODE: u32 = 0o644;

#[derive(clap::Subcommand, Debug)]
pub enum KeyCmd {
    /// Generate a signing key pair: PREFIX.key (private, 0600) and PREFIX.pub.
    Generate(GenerateArgs),
    /// Print the key id (sha256 of the DER SubjectPublicKeyInfo) of a key or certificate.
    Id {
        /// Public key (PEM/DER), X.509 certificate, or private key.
        file: PathBuf,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KeyTypeArg {
    Ed25519,
    P256,
}

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Key type.
    #[arg(long = "type", value_enum, default_value = "ed25519")]
    pub key_type: KeyTypeArg,
    /// Output prefix: writes PREFIX.key and PREFIX.pub (neither may exist).
    #[arg(long, value_name = "PREFIX")]
    pub output: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct KeyringArgs {
    /// Name of the kernel keyring.
    #[arg(long, global = true, default_value = DEFAULT_KEYRING_NAME)]
    pub name: String,
    #[command(subcommand)]
    pub command: KeyringCmd,
}

#[derive(clap::Subcommand, Debug)]
pub enum KeyringCmd {
    /// Add a public key (user key) or an X.509 certificate (kernel-verified asymmetric key).
    Add {
        /// Name of the key in the keyring (replaces a user key of the same name).
        description: String,
        /// PEM/DER public key, or PEM/DER X.509 certificate.
        file: PathBuf,
    },
    /// List the keys of the keyring.
    List {
        /// Print JSON (an array of {serial, type, description, key_id, algorithm}).
        #[arg(long)]
        json: bool,
    },
    /// Remove the keys with this description.
    Remove { description: String },
    /// Verify a signature over a file with a key of the keyring (asymmetric keys: by the kernel).
    Verify {
        /// The key's description (name in the keyring).
        description: String,
        /// The signed file.
        #[arg(long, value_name = "FILE")]
        message: PathBuf,
        /// The signature (raw bytes: DER for ECDSA, as openssl writes it).
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
    },
}

/// Runs `cfsgate key …`.
pub fn run_key(command: KeyCmd) -> Result<()> {
    match command {
        KeyCmd::Generate(args) => generate(&args),
        KeyCmd::Id { file } => {
            let key = any_public_key(&file)?;
            println!("{}", key.key_id());
            Ok(())
        }
    }
}

/// Runs `cfsgate keyring …`.
pub fn run_keyring(args: KeyringArgs) -> Result<()> {
    match args.command {
        KeyringCmd::Verify {
            description,
            message,
            signature,
        } => {
            let read =
                |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
            let (message, signature) = (read(&message)?, read(&signature)?);
            let ring = KernelKeyring::open(&args.name)?;
            let info = ring.verify(
                &cfsgate_keyring::KeySelector::Description(description),
                &message,
                &signature,
            )?;
            println!(
                "valid signature by {} key {:?} (serial {})",
                info.key_type, info.description, info.serial
            );
            Ok(())
        }
        KeyringCmd::Add { description, file } => {
            let bytes = read_trust_file(&file, MAX_TRUST_FILE_BYTES)?;
            let ring = KernelKeyring::create(&args.name)?;
            let info = if Certificate::looks_like_certificate(&bytes) {
                ring.add_x509(&description, &bytes)?
            } else {
                ring.add_public_key(&description, &bytes)?
            };
            println!(
                "added {} key {:?} to keyring {:?} (serial {}, {}, id {})",
                info.key_type,
                info.description,
                ring.name(),
                info.serial,
                info.algorithm.as_deref().unwrap_or("unknown algorithm"),
                info.key_id
                    .map(|id| id.to_string())
                    .unwrap_or_else(|| "unknown".into()),
            );
            Ok(())
        }
        KeyringCmd::List { json } => {
            let keys = KernelKeyring::open(&args.name)?.list()?;
            let mut out = std::io::stdout().lock();
            if json {
                serde_json::to_writer_pretty(&mut out, &keys)?;
                writeln!(out)?;
            } else {
                for key in &keys {
                    let id = key.key_id.map(|id| id.to_string());
                    writeln!(
                        out,
                        "{:>10}  {:<10}  {:<64}  {:<12}  {}{}",
                        key.serial,
                        key.key_type.to_string(),
                        id.as_deref().unwrap_or("-"),
                        key.algorithm.as_deref().unwrap_or("-"),
                        key.description,
                        key.problem
                            .as_deref()
                            .map(|p| format!("  (unusable: {p})"))
                            .unwrap_or_default(),
                    )?;
                }
            }
            Ok(())
        }
        KeyringCmd::Remove { description } => {
            let removed = KernelKeyring::open(&args.name)?.remove(&description)?;
            println!(
                "removed {removed} key(s) {description:?} from keyring {:?}",
                args.name
            );
            Ok(())
        }
    }
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let key_type = match args.key_type {
        KeyTypeArg::Ed25519 => KeyType::Ed25519,
        KeyTypeArg::P256 => KeyType::P256,
    };
    let private_path = with_suffix(&args.output, ".key");
    let public_path = with_suffix(&args.output, ".pub");
    let key = PrivateKey::generate(key_type);
    let public = key.public_key();

    write_new(
        &private_path,
        PRIVATE_KEY_MODE,
        key.to_pkcs8_pem()?.as_bytes(),
    )?;
    if let Err(error) = write_new(&public_path, PUBLIC_KEY_MODE, public.to_pem().as_bytes()) {
        // Leave nothing half-written: a private key without its public half is removed.
        let _ = std::fs::remove_file(&private_path);
        return Err(error);
    }
    println!(
        "{} key {} written to {} and {}",
        public.algorithm(),
        public.key_id(),
        private_path.display(),
        public_path.display()
    );
    Ok(())
}

/// Creates `path` exclusively (never following or replacing an existing file) with `mode`
/// from the start, writes and syncs it; on failure removes what it created.
fn write_new(path: &Path, mode: u32, contents: &[u8]) -> Result<()> {
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist)", path.display()))?;
    let written = file.write_all(contents).and_then(|()| file.sync_all());
    if let Err(error) = written {
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// A public key from a public key file, a certificate, or a private key file.
fn any_public_key(path: &Path) -> Result<PublicKey> {
    let bytes = read_trust_file(path, MAX_TRUST_FILE_BYTES)?;
    let source = path.display().to_string();
    if Certificate::looks_like_certificate(&bytes) {
        return Ok(Certificate::parse(&bytes, &source)?.public_key?);
    }
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("PRIVATE KEY-----") {
        return Ok(PrivateKey::from_pem(&bytes, &source, &Passphrase::EnvOrPrompt)?.public_key());
    }
    Ok(PublicKey::from_bytes(&bytes, &source)?)
}
