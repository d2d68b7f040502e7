//! `cfsgate key …` (key files) and `cfsgate keyring …` (the kernel keyring of trust anchors).
//!
//! | command | does |
//! |---|---|
//! | `key generate --type ed25519\|p256 --output PREFIX` | writes `PREFIX.key` (PKCS#8 PEM, mode 0600, never overwriting) and `PREFIX.pub` (SPKI PEM; `cfsgate_keyring::keypair`); prints the key id |
//! | `key id FILE` | prints the key id (sha256 of the DER SPKI, hex) of a public key, certificate or private key |
//! | `keyring add [--name N] DESCRIPTION FILE` | PEM/DER public key → `user` key; X.509 certificate (PEM/DER) → kernel-verified `asymmetric` key |
//! | `keyring list [--name N] [--json]` | the keys: serial, type, description, key id |
//! | `keyring remove [--name N] DESCRIPTION` | invalidates the keys with that description |
//!
//! The keyring (default `cfsgate`) is created on first `add` in the caller's user keyring with
//! permissions that let any process verify but only the owner change it (see
//! `cfsgate_keyring::kernel`).

use std::path::PathBuf;

use anyhow::Result;
use cfsgate_keyring::kernel_admin::{
    add_trust_file, added_line, list_json, list_text, removed_line, verified_line, verify_files,
};
use cfsgate_keyring::keypair::{generate_key_pair, public_key_of_file};
use cfsgate_keyring::{KernelKeyring, KeyType, Passphrase, DEFAULT_KEYRING_NAME};
use clap::builder::{PossibleValuesParser, TypedValueParser};

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

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Key type.
    #[arg(long = "type", default_value = "ed25519", value_parser = key_type())]
    pub key_type: KeyType,
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
            let key = public_key_of_file(&file, &Passphrase::EnvOrPrompt)?;
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
            let info = verify_files(&args.name, &description, &message, &signature)?;
            println!("{}", verified_line(&info));
            Ok(())
        }
        KeyringCmd::Add { description, file } => {
            let ring = KernelKeyring::create(&args.name)?;
            let info = add_trust_file(&ring, &description, &file)?;
            println!("{}", added_line(&info, &ring));
            Ok(())
        }
        KeyringCmd::List { json } => {
            let keys = KernelKeyring::open(&args.name)?.list()?;
            print!(
                "{}",
                if json {
                    list_json(&keys)?
                } else {
                    list_text(&keys)
                }
            );
            Ok(())
        }
        KeyringCmd::Remove { description } => {
            let removed = KernelKeyring::open(&args.name)?.remove(&description)?;
            println!("{}", removed_line(removed, &description, &args.name));
            Ok(())
        }
    }
}

/// `--type`: one of [`KeyType::NAMES`] (listed in the help as the possible values).
fn key_type() -> impl TypedValueParser<Value = KeyType> {
    PossibleValuesParser::new(KeyType::NAMES)
        .try_map(|name| KeyType::from_name(&name).ok_or("not a key type"))
}

fn generate(args: &GenerateArgs) -> Result<()> {
    println!(
        "{}",
        generate_key_pair(args.key_type, &args.output)?.summary()
    );
    Ok(())
}
