//! The `chronos` binary: the REST service, the scheduler and its workers, the
//! migrations and cron tools. See [`chronos_http::cli`] for the commands and
//! [`chronos_http::config::Config`] for the configuration.

fn main() -> std::process::ExitCode {
    chronos_http::cli::main()
}
