//! The `rhscope` command: thin glue over the library.

mod cli;

/// Records are made on a source's reading thread and dropped on the
/// analysing one: glibc's malloc made that cross-thread traffic a quarter
/// of analysing a trace.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
