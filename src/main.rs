//! The `haloflow` command (see [`haloflow::cli`]).

fn main() -> std::process::ExitCode {
    haloflow::cli::main()
}
