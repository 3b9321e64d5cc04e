//! `hapi`: see `hapi --help`.

use clap::Parser;

fn main() {
    let cli = hapi_cli::cli::Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hapi: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(hapi_cli::cli::run(cli)) {
        eprintln!("hapi: {e}");
        std::process::exit(e.exit_code());
    }
}
