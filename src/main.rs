//! The websocket-app server binary: see the crate docs and README.

fn main() -> std::process::ExitCode {
    websocket_app::app::main()
}
