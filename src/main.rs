//! The `supportctl` binary: parse the command line, run it, map the outcome
//! to an exit code (docs/reference.md, *Commands* and *JSON formats*). Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use supportctl::cli;

/// mimalloc, not the C library's allocator: a plan allocates and frees a few
/// million small strings (the parse, the check, the state read), and does so
/// markedly faster with it (figures: benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay`, by its place in `mi_option_t` (the
/// bindings do not name it): how long freed memory is kept before it goes
/// back to the system, 1 s by default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The purge delay this program runs with, in milliseconds.
const PURGE_DELAY_MS: std::os::raw::c_long = 250;

fn main() -> ExitCode {
    // Freed memory goes back after a quarter of a second, not mimalloc's
    // second: a first apply frees its parse while it fills the database, and
    // with 1 s its peak memory grew by a third or more. Not at once either: a
    // plan frees and takes back memory within tenths of a second, and giving
    // it back at once made it fault in several times as many pages, and run
    // slower (figures: benches/README.md).
    // SAFETY: sets an option by its index; any thread may, at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            cli::print_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PURGE_DELAY;
    use libmimalloc_sys::mi_option_get;

    #[test]
    fn purge_delay_is_mimallocs_purge_delay() {
        // Untouched in this process, the options hold mimalloc's defaults:
        // the eager commit delay before the purge delay is 1, the purge
        // delay 1000 (ms), the number of NUMA nodes after it 0.
        // SAFETY: reads options by index.
        let [before, delay, after] =
            [PURGE_DELAY - 1, PURGE_DELAY, PURGE_DELAY + 1].map(|o| unsafe { mi_option_get(o) });
        assert_eq!((before, delay, after), (1, 1000, 0));
    }
}
