//! The `supportctl` binary: parse the command line, run it, map the outcome
//! to an exit code (the README's *Commands* and *JSON formats*). Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use supportctl::cli;

/// mimalloc, not the C library's allocator: a plan allocates and frees a few
/// million small strings (the parse, the check, the state read), and at
/// 100k users it takes about a quarter less time with it (see README
/// "Performance").
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
    // second: a first apply of 100k users frees its parse while it fills the
    // database, and with 1 s it peaked at 400-580 MiB instead of 345. Not at
    // once either: a plan frees and takes back memory within tenths of a
    // second, and giving it back at once made it fault in five times as many
    // pages (100k one-file-edit plan: 29k faults, 0.40 s; with 250 ms: 5.5k
    // faults, 0.29-0.34 s).
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
