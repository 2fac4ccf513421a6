//! The `rhscope` command: thin glue over the library.

mod cli;

/// Records are made on a source's reading thread and dropped on the
/// analysing one, which glibc's malloc serves slowly: with this one
/// cluster.log analysis is 1.3-1.5x faster (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
