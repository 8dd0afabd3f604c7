//! The benchmark of supportctl: how long each command takes, and how much
//! memory, on config sets of N users, against a floor measured in the same
//! run.
//!
//! ```sh
//! cargo bench --bench bench -- [--sizes 1000,10000,100000] [--layouts file,dir] \
//!     [--runs 3] [--warmup 1] [--out target/bench/results.json]
//! cargo test --bench bench      # smoke: N = 200, both layouts, one run, no timing asserted
//! ```
//!
//! For each size N and layout (one file `acme.yaml`, or a directory of
//! `tenancy.yaml` and `users/uNNNN.yaml` files of 100 users each; see
//! `support/generate.rs` for the mix of users and grants), it writes a valid
//! config set into a temporary directory (`$TMPDIR`), then runs the real
//! supportctl binary (`CARGO_BIN_EXE_supportctl`: the release build under
//! `cargo bench`) with `--db` in that directory, `SUPPORTCTL_TODAY=2026-11-24`
//! and `NO_COLOR=1`, stdout to `/dev/null`:
//!
//! | command | how | exits |
//! |---|---|---|
//! | `validate` | `validate PATH` | 0 |
//! | `plan (empty state)` | `plan PATH`, no database | 0 |
//! | `apply (empty state)` | `apply --auto-approve PATH`, a new database every run | 0 |
//! | `plan (no-op, no cache)` | `plan --detailed-exitcode --no-cache PATH` after the apply: every file parsed | 0 |
//! | `plan (no-op)` | `plan --detailed-exitcode PATH`: the parse cache the apply left beside the database | 0 |
//! | `plan (1 user changed)` | the same after one user's name is changed in one file, another user of that file each run, so that every run parses that file again | 2 |
//!
//! Each is run `--runs` times (default 3, and 1 for N ≥ 1,000,000) after
//! `--warmup` runs that are not counted (default 1, and 0 for N ≥
//! 1,000,000): the wall time reported is the median, measured from spawn to
//! reaping; the peak RSS is the largest `ru_maxrss` that `wait4` returns for
//! the child over the counted runs. (A child started by `vfork`+`exec` starts its peak at its parent's,
//! so the harness streams its files and stays a few MiB; its own peak is
//! printed under the tables.)
//!
//! **The floor** (`support/floor.rs`) runs as a separate process, this same
//! executable with the hidden mode `--floor CONFIG DB`, so that its peak RSS
//! is its own: it parses the same files with the same YAML crate into plain
//! serde structs, inserts every row into a fresh SQLite file in one
//! transaction, reads them all back into hash maps and compares them with the
//! parsed data, timing each phase (medians over the runs). It runs first in
//! each case, before the commands, with the same warm-up.
//!
//! The report, a markdown table on stdout and every figure as JSON in
//! `--out`, gives each command's ratio to its floor (no-op plan ÷ floor
//! parse + load + compare; first apply ÷ floor parse + insert), its cost per
//! user relative to the smallest size (and the marginal cost per user between
//! sizes), and the targets of issue 6 as PASS or MISS: at 100k users, no-op
//! plan and first apply within 2× their floor and every peak RSS ≤ 400 MiB;
//! at 10k users, every command under 0.3 s; cost per user within 1.5× from
//! the smallest size to the largest. Targets are reported, never asserted:
//! the program fails only when a command exits other than expected or the
//! floor's comparison finds a difference.
//!
//! For profiling by hand, `bench --generate file|dir USERS DIR` writes a
//! config set as the benchmark does and prints its path, e.g.
//! `cargo bench --bench bench -- --generate dir 100k /tmp/sets` (the
//! `--bench` cargo adds is ignored there).
//!
//! **Smoke mode.** Without `--bench` among its arguments (`cargo test --bench
//! bench`, in the debug profile) it runs everything at N = 200 for both
//! layouts, once, and fails when an exit code is not the expected one or the
//! floor's comparison fails. No time is asserted.

// The modules live in benches/support/: a file directly under benches/ would
// be discovered by cargo as a bench target of its own.
#[path = "support/floor.rs"]
mod floor;
#[path = "support/generate.rs"]
mod generate;
#[path = "support/report.rs"]
mod report;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Instant;

use generate::{ConfigSet, Layout};
use report::{Case, CommandResult, FloorResult, Sample};

/// The day supportctl reads the config as on (expiry dates compare with it).
const TODAY: &str = "2026-11-24";
/// The smoke test's size.
const SMOKE_USERS: usize = 200;

/// The five measured commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Validate,
    PlanEmpty,
    ApplyEmpty,
    PlanNoopCold,
    PlanNoop,
    PlanChanged,
}

impl Cmd {
    pub const ALL: [Cmd; 6] = [
        Cmd::Validate,
        Cmd::PlanEmpty,
        Cmd::ApplyEmpty,
        Cmd::PlanNoopCold,
        Cmd::PlanNoop,
        Cmd::PlanChanged,
    ];

    /// The key in the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            Cmd::Validate => "validate",
            Cmd::PlanEmpty => "plan_empty",
            Cmd::ApplyEmpty => "apply_empty",
            Cmd::PlanNoopCold => "plan_noop_no_cache",
            Cmd::PlanNoop => "plan_noop",
            Cmd::PlanChanged => "plan_one_user_changed",
        }
    }

    /// The name in the table.
    pub fn label(self) -> &'static str {
        match self {
            Cmd::Validate => "validate",
            Cmd::PlanEmpty => "plan (empty state)",
            Cmd::ApplyEmpty => "apply (empty state)",
            Cmd::PlanNoopCold => "plan (no-op, no cache)",
            Cmd::PlanNoop => "plan (no-op)",
            Cmd::PlanChanged => "plan (1 user changed)",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Cmd::Validate => &["validate"],
            Cmd::PlanEmpty => &["plan"],
            Cmd::ApplyEmpty => &["apply", "--auto-approve"],
            Cmd::PlanNoopCold => &["plan", "--detailed-exitcode", "--no-cache"],
            Cmd::PlanNoop | Cmd::PlanChanged => &["plan", "--detailed-exitcode"],
        }
    }

    fn expected_exit(self) -> i32 {
        match self {
            Cmd::PlanChanged => 2,
            _ => 0,
        }
    }
}

/// The command line of the harness.
struct Options {
    /// `--bench` was given: the real benchmark, not the smoke test.
    bench: bool,
    sizes: Vec<usize>,
    layouts: Vec<Layout>,
    /// `None`: 3, or 1 for sizes of a million and more.
    runs: Option<usize>,
    /// Runs made and not counted before each command's: `None`: 1, or 0 for
    /// sizes of a million and more.
    warmup: Option<usize>,
    out: Option<PathBuf>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            bench: false,
            sizes: vec![1_000, 10_000, 100_000],
            layouts: vec![Layout::File, Layout::Dir],
            runs: None,
            warmup: None,
            out: None,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--bench" => options.bench = true,
                "--sizes" => {
                    options.sizes = value()?
                        .split(',')
                        .map(parse_size)
                        .collect::<Result<_, _>>()?;
                    options.sizes.sort_unstable();
                    options.sizes.dedup();
                }
                "--layouts" => {
                    options.layouts = value()?
                        .split(',')
                        .map(|l| {
                            Layout::parse(l.trim())
                                .ok_or_else(|| format!("unknown layout `{l}` (file or dir)"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--runs" => {
                    let runs = value()?;
                    options.runs = Some(
                        runs.parse::<usize>()
                            .ok()
                            .filter(|&r| r > 0)
                            .ok_or_else(|| format!("--runs: `{runs}` is not a positive count"))?,
                    );
                }
                "--warmup" => {
                    let warmup = value()?;
                    options.warmup = Some(
                        warmup
                            .parse::<usize>()
                            .map_err(|_| format!("--warmup: `{warmup}` is not a count of runs"))?,
                    );
                }
                "--out" => options.out = Some(PathBuf::from(value()?)),
                other => eprintln!("bench: ignoring unknown argument `{other}`"),
            }
        }
        if options.sizes.is_empty() || options.layouts.is_empty() {
            return Err("nothing to measure: --sizes and --layouts need a value each".into());
        }
        if !options.bench {
            // The smoke test is always the same small run.
            options.sizes = vec![SMOKE_USERS];
            options.layouts = vec![Layout::File, Layout::Dir];
            options.runs = Some(1);
            options.warmup = Some(0);
        } else if options.out.is_none() {
            options.out = Some(PathBuf::from("target/bench/results.json"));
        }
        Ok(options)
    }

    fn runs_for(&self, users: usize) -> usize {
        self.runs.unwrap_or(if users >= 1_000_000 { 1 } else { 3 })
    }

    fn warmup_for(&self, users: usize) -> usize {
        self.warmup
            .unwrap_or(if users >= 1_000_000 { 0 } else { 1 })
    }
}

/// `1000`, `10k`, `1M`, `1_000_000`.
fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim().replace('_', "");
    let (digits, factor) = match t.strip_suffix(['k', 'K']) {
        Some(d) => (d, 1_000),
        None => match t.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (t.as_str(), 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .map(|n| n * factor)
        .filter(|&n| n >= 2)
        .ok_or_else(|| format!("--sizes: `{text}` is not a number of users (at least 2)"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--floor") => return floor_main(&args[1..]),
        Some("--generate") => return generate_main(&args[1..]),
        _ => {}
    }
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("bench: {message}");
            return ExitCode::FAILURE;
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The hidden `--floor CONFIG DB` mode: the floor, in a process of its own.
fn floor_main(args: &[String]) -> ExitCode {
    let [config, db] = args else {
        eprintln!("bench --floor: expected CONFIG DB");
        return ExitCode::FAILURE;
    };
    match floor::run(Path::new(config), Path::new(db)) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("bench --floor: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The `--generate LAYOUT USERS DIR` mode: writes a config set, as the
/// benchmark does, and prints its path; for profiling a command by hand.
fn generate_main(args: &[String]) -> ExitCode {
    // `cargo bench` appends `--bench`, which says nothing here.
    let args: Vec<&String> = args.iter().filter(|a| *a != "--bench").collect();
    let [layout, users, dir] = args[..] else {
        eprintln!("bench --generate: expected LAYOUT USERS DIR");
        return ExitCode::FAILURE;
    };
    let (Some(layout), Ok(users)) = (Layout::parse(layout), parse_size(users)) else {
        eprintln!("bench --generate: expected LAYOUT (file or dir) and a number of users");
        return ExitCode::FAILURE;
    };
    match fs::create_dir_all(dir).and_then(|()| ConfigSet::write(Path::new(dir), layout, users)) {
        Ok(set) => {
            println!("{}", set.path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench --generate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Measures every size and layout, prints the report and writes the JSON.
/// Returns whether every command exited as expected and every floor
/// comparison found equality.
fn run(options: &Options) -> io::Result<bool> {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_supportctl"));
    let me = std::env::current_exe()?;
    let work = tempfile::Builder::new()
        .prefix("supportctl-bench-")
        .tempdir()?;
    eprintln!(
        "bench: {} mode, supportctl at {}, work in {}",
        if options.bench { "benchmark" } else { "smoke" },
        binary.display(),
        work.path().display()
    );
    let mut cases = Vec::new();
    for &users in &options.sizes {
        for &layout in &options.layouts {
            let dir = work.path().join(format!("{users}-{}", layout.name()));
            fs::create_dir_all(&dir)?;
            let runs = Runs {
                counted: options.runs_for(users),
                warmup: options.warmup_for(users),
            };
            let case = measure_case(&binary, &me, &dir, layout, users, runs)?;
            // Keep the disk use to one case at a time.
            fs::remove_dir_all(&dir)?;
            cases.push(case);
        }
    }
    let report = report::Report::new(cases, options.bench, harness_peak_rss_kib());
    print!("{}", report.markdown());
    if let Some(out) = &options.out {
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(out, report.json())?;
        eprintln!("bench: figures written to {}", out.display());
    }
    let ok = report.all_ok();
    if !ok {
        eprintln!("bench: FAILED: a command exited unexpectedly or the floor found a difference");
    }
    Ok(ok)
}

/// How many times each command (and the floor) runs in a case.
#[derive(Clone, Copy)]
struct Runs {
    /// Measured and counted.
    counted: usize,
    /// Run first and not counted.
    warmup: usize,
}

/// One size and layout: generate, run the five commands and the floor.
fn measure_case(
    binary: &Path,
    me: &Path,
    dir: &Path,
    layout: Layout,
    users: usize,
    runs: Runs,
) -> io::Result<Case> {
    let tag = format!("{users} users, {}", layout.name());
    let t = Instant::now();
    let set = ConfigSet::write(dir, layout, users)?;
    eprintln!(
        "[{tag}] generated {} file(s), {:.1} MiB in {:.1} s",
        set.files,
        set.bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let empty_db = dir.join("empty.db");
    let state_db = dir.join("state.db");
    let stderr = dir.join("stderr.txt");
    // The floor first, on the set as generated (the commands change it only
    // in their last step), then the commands, each after a warm-up run that
    // is not counted: on a virtual machine the first run after a different
    // program pays for memory and files that program left (the command run
    // right after the floor took up to 0.1 s longer at 10k and 100k users),
    // which measures the machine rather than the command.
    let floor = measure_floor(me, &set, dir, runs, &tag)?;
    let mut commands = Vec::new();
    for cmd in Cmd::ALL {
        let mut samples = Vec::new();
        for run in 0..runs.warmup + runs.counted {
            if cmd == Cmd::PlanChanged {
                // Every run after a fresh one-file edit: the changed user
                // alternates between two of one file.
                set.change_one_user(users / 2 + run % 2)?;
            }
            let db = if cmd == Cmd::PlanEmpty {
                &empty_db
            } else {
                &state_db
            };
            if cmd == Cmd::ApplyEmpty {
                remove_db(db)?;
            }
            let mut command = Command::new(binary);
            command
                .arg("--db")
                .arg(db)
                .args(cmd.args())
                .arg(&set.path)
                .env("SUPPORTCTL_TODAY", TODAY)
                .env("NO_COLOR", "1")
                .env_remove("SUPPORTCTL_DB")
                .env_remove("RUST_LOG")
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&stderr)?);
            // supportctl reads files of at most 64 MiB unless told otherwise:
            // a 1M-user single file is larger (and a changed user's name
            // makes it a few bytes larger still).
            if set.largest_file > 64 << 20 {
                command
                    .arg("--max-file-size")
                    .arg((set.largest_file + (1 << 20)).to_string());
            }
            let sample = measure(&mut command)?;
            if sample.exit != cmd.expected_exit() {
                let text = fs::read_to_string(&stderr).unwrap_or_default();
                let excerpt: Vec<&str> = text.lines().take(30).collect();
                eprintln!(
                    "[{tag}] {} exited {} (expected {}); its stderr begins:\n{}",
                    cmd.label(),
                    sample.exit,
                    cmd.expected_exit(),
                    excerpt.join("\n")
                );
            }
            if run >= runs.warmup {
                samples.push(sample);
            }
        }
        let result = CommandResult::new(cmd, samples);
        eprintln!(
            "[{tag}] {:<22} {:>8.3} s {:>8.1} MiB",
            cmd.label(),
            result.wall_s,
            result.peak_rss_kib as f64 / 1024.0
        );
        commands.push(result);
    }
    Ok(Case {
        users,
        layout: layout.name(),
        files: set.files,
        bytes: set.bytes,
        users_per_file: (layout == Layout::Dir).then_some(set.per_file),
        runs: runs.counted,
        commands,
        floor,
    })
}

/// Runs the floor on `set` as `runs` says, each run in a process of its own.
fn measure_floor(
    me: &Path,
    set: &ConfigSet,
    dir: &Path,
    runs: Runs,
    tag: &str,
) -> io::Result<FloorResult> {
    let out = dir.join("floor.json");
    let stderr = dir.join("floor.stderr.txt");
    let mut reports = Vec::new();
    let mut samples = Vec::new();
    for run in 0..runs.warmup + runs.counted {
        let mut command = Command::new(me);
        command
            .arg("--floor")
            .arg(&set.path)
            .arg(dir.join("floor.db"))
            .stdin(Stdio::null())
            .stdout(File::create(&out)?)
            .stderr(File::create(&stderr)?);
        let sample = measure(&mut command)?;
        let report = fs::read_to_string(&out)
            .ok()
            .and_then(|text| serde_json::from_str::<floor::FloorReport>(&text).ok());
        if sample.exit != 0 || report.is_none() {
            eprintln!(
                "[{tag}] the floor failed (exit {}): {}",
                sample.exit,
                fs::read_to_string(&stderr).unwrap_or_default().trim()
            );
        }
        if run >= runs.warmup {
            samples.push(sample);
            reports.extend(report);
        }
    }
    let result = FloorResult::new(samples, reports, runs.counted);
    eprintln!(
        "[{tag}] {:<22} {:>8.3} s {:>8.1} MiB  (parse {:.3}, insert {:.3}, load {:.3}, compare {:.3}; equal: {})",
        "floor",
        result.total_s(),
        result.peak_rss_kib as f64 / 1024.0,
        result.parse_s,
        result.insert_s,
        result.load_s,
        result.compare_s,
        result.equal
    );
    Ok(result)
}

/// Removes a database, its WAL companions and its parse cache, so the next
/// apply starts empty and parses every file.
fn remove_db(db: &Path) -> io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal", ".parse-cache"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Runs `command` to its end: the wall time from just before the spawn to
/// the reaping, and what `wait4` says of the child.
fn measure(command: &mut Command) -> io::Result<Sample> {
    let start = Instant::now();
    let child = command.spawn()?;
    let (exit, peak_rss_kib) = wait4(&child)?;
    let wall_s = start.elapsed().as_secs_f64();
    Ok(Sample {
        wall_s,
        peak_rss_kib,
        exit,
    })
}

/// Reaps `child` and returns its exit code (128 + the signal when killed)
/// and its peak resident set size in KiB (`ru_maxrss`, which Linux counts in
/// KiB).
fn wait4(child: &Child) -> io::Result<(i32, u64)> {
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain old data, for which all zeroes is a value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our child, not yet reaped (std reaps only in
        // `wait`/`try_wait`, which are never called on it); both pointers are
        // valid for the duration of the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let exit = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok((exit, u64::try_from(usage.ru_maxrss).unwrap_or(0)))
}

/// The harness's own peak RSS in KiB: the least a child's reading can be.
///
/// Read as `VmHWM` from `/proc/self/status`, the high-water mark of this
/// process's memory; not `getrusage(RUSAGE_SELF)`, whose figure starts at
/// the peak of whatever process exec'd this one (cargo, here).
fn harness_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
