//! The `rhscope` command: thin glue over the library.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
