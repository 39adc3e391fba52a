//! Print the normalised text and the verdict for stdin (development aid).
//! `echo 'text' | cargo run --release -p shieldd --example scan_text`
use std::io::Read;

use shield_client::wire::Direction;
use shieldd::policy::ScanPolicy;
use shieldd::scan::normalize::normalize;
use shieldd::scan::Scanner;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    println!("normalised: {:?}", normalize(&text).text());
    let v = Scanner::new(&ScanPolicy::default(), Vec::new())?.scan(&text, Direction::Inbound);
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
