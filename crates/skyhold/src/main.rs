// mimalloc instead of the system allocator: listings build and drop many
// small strings and maps per row, and glibc's malloc/free was a quarter of
// a list request's CPU time (measured with perf; docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    skyhold::cli::main()
}
