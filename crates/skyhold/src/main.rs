fn main() -> std::process::ExitCode {
    skyhold::cli::main()
}
