//! The websocket-app server binary: see the crate docs and README.

fn main() -> std::process::ExitCode {
    websocket_app::app::main()
}

/// mimalloc as the global allocator: fast, and returns memory to the OS.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
