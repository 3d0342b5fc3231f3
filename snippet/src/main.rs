//! `snippet`: prints the embed HTML for a démarche, given the server secret file.
//!
//! The server binary has the same feature (`widget-server snippet`), which also checks that the
//! démarche exists in the catalogue; this one is for scripts that only have the secret.

use std::path::PathBuf;

use clap::Parser;
use snippet::{KeySigner, Lang, Snippet, Style};

/// Prints the « Je donne mon avis » button code for a démarche.
#[derive(Parser)]
struct Args {
    /// The server secret (the `data/secret` file of widget-server).
    #[arg(long)]
    secret_file: PathBuf,
    /// Public base URL of the avis server, e.g. https://avis.example.fr
    #[arg(long)]
    public_url: String,
    /// Numeric id of the démarche.
    #[arg(long)]
    demarche: u64,
    /// Button style.
    #[arg(long, default_value = "bleu")]
    style: Style,
    /// `nd_source` label stored with each avis, [a-z0-9-]{1,32}.
    #[arg(long, default_value = snippet::DEFAULT_SOURCE, value_parser = parse_source)]
    source: String,
    /// Language of the form: fr (default), en, es, de, pt, ar, uk.
    #[arg(long, default_value = "fr", value_parser = parse_lang)]
    lang: Lang,
    /// Open the form in a new window (adds target/rel and says so in the title).
    #[arg(long)]
    new_window: bool,
}

fn parse_source(s: &str) -> Result<String, String> {
    if snippet::is_valid_source(s) {
        Ok(s.to_string())
    } else {
        Err("expected 1 to 32 characters among a-z, 0-9 and -".into())
    }
}

fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::from_code(s).ok_or_else(|| "expected one of fr, en, es, de, pt, ar, uk".into())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let secret = match std::fs::read(&args.secret_file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("snippet: cannot read {}: {e}", args.secret_file.display());
            return std::process::ExitCode::from(2);
        }
    };
    let signer = KeySigner::new(&secret);
    let html = Snippet::new(&args.public_url, args.demarche, args.style)
        .source(&args.source)
        .new_window(args.new_window)
        .lang(args.lang)
        .html(&signer);
    println!("{html}");
    std::process::ExitCode::SUCCESS
}
