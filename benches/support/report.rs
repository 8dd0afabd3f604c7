//! The figures of a run, what is derived from them (ratios to the floor, cost
//! per user, the targets), and how they are printed: markdown tables
//! on stdout, every figure as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::Cmd;
use crate::floor::FloorReport;

/// One run of one process.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub wall_s: f64,
    /// `ru_maxrss` of the process, in KiB.
    pub peak_rss_kib: u64,
    pub exit: i32,
}

/// One command at one size and layout, over its runs.
#[derive(Debug, Serialize)]
pub struct CommandResult {
    pub command: &'static str,
    #[serde(skip)]
    pub cmd: Cmd,
    pub expected_exit: i32,
    /// Whether every run exited as expected.
    pub ok: bool,
    /// The median wall time of the runs.
    pub wall_s: f64,
    /// The largest peak RSS of the runs.
    pub peak_rss_kib: u64,
    /// Wall time per user, in microseconds.
    pub us_per_user: f64,
    /// `us_per_user` ÷ the same at the smallest size of the layout.
    pub per_user_vs_smallest: Option<f64>,
    /// (wall − wall at the next smaller size) ÷ (the difference in users).
    pub marginal_us_per_user: Option<f64>,
    /// For the no-op plan, wall ÷ floor parse + load + compare; for the
    /// first apply, wall ÷ floor parse + insert.
    pub vs_floor: Option<f64>,
    pub runs: Vec<Sample>,
}

impl CommandResult {
    pub fn new(cmd: Cmd, runs: Vec<Sample>) -> CommandResult {
        CommandResult {
            command: cmd.key(),
            cmd,
            expected_exit: cmd.expected_exit(),
            ok: runs.iter().all(|s| s.exit == cmd.expected_exit()),
            wall_s: median(runs.iter().map(|s| s.wall_s)),
            peak_rss_kib: runs.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
            us_per_user: 0.0,
            per_user_vs_smallest: None,
            marginal_us_per_user: None,
            vs_floor: None,
            runs,
        }
    }
}

/// The floor at one size and layout: each phase's median over the runs.
#[derive(Debug, Serialize)]
pub struct FloorResult {
    pub parse_s: f64,
    pub insert_s: f64,
    pub load_s: f64,
    pub compare_s: f64,
    /// What a no-op plan is compared with: parse + load + compare.
    pub noop_plan_floor_s: f64,
    /// What a first apply is compared with: parse + insert.
    pub first_apply_floor_s: f64,
    /// The largest peak RSS of the floor processes.
    pub peak_rss_kib: u64,
    /// Every run succeeded and found what it loaded equal to what it parsed.
    pub equal: bool,
    /// Wall time of the floor processes (start-up included).
    pub processes: Vec<Sample>,
    pub runs: Vec<FloorReport>,
}

impl FloorResult {
    pub fn new(processes: Vec<Sample>, runs: Vec<FloorReport>, expected: usize) -> FloorResult {
        let phase = |f: fn(&FloorReport) -> f64| median(runs.iter().map(f));
        let (parse_s, insert_s, load_s, compare_s) = (
            phase(|r| r.parse_s),
            phase(|r| r.insert_s),
            phase(|r| r.load_s),
            phase(|r| r.compare_s),
        );
        FloorResult {
            parse_s,
            insert_s,
            load_s,
            compare_s,
            noop_plan_floor_s: parse_s + load_s + compare_s,
            first_apply_floor_s: parse_s + insert_s,
            peak_rss_kib: processes.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
            equal: runs.len() == expected
                && processes.iter().all(|s| s.exit == 0)
                && runs.iter().all(|r| r.equal),
            processes,
            runs,
        }
    }

    /// Every phase together.
    pub fn total_s(&self) -> f64 {
        self.parse_s + self.insert_s + self.load_s + self.compare_s
    }
}

/// One size and layout.
#[derive(Debug, Serialize)]
pub struct Case {
    pub users: usize,
    pub layout: &'static str,
    pub files: usize,
    pub bytes: u64,
    pub users_per_file: Option<usize>,
    pub runs: usize,
    pub commands: Vec<CommandResult>,
    pub floor: FloorResult,
}

impl Case {
    fn command(&self, cmd: Cmd) -> &CommandResult {
        self.commands
            .iter()
            .find(|c| c.cmd == cmd)
            .expect("every case runs every command")
    }
}

/// A target of issue 6, met or not.
#[derive(Debug, Serialize)]
pub struct Target {
    pub target: String,
    pub users: usize,
    pub layout: &'static str,
    pub measured: String,
    pub limit: String,
    pub pass: bool,
}

/// Where and when the run happened.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
}

impl Machine {
    fn probe() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_kib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0);
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: (memory_kib / 1048576.0 * 10.0).round() / 10.0,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        }
    }
}

/// Everything a run measured and derived.
#[derive(Debug, Serialize)]
pub struct Report {
    pub format_version: u32,
    pub date: String,
    pub mode: &'static str,
    /// The profile the harness (and so supportctl) was built in.
    pub profile: &'static str,
    pub machine: Machine,
    /// The command that reproduces the run.
    pub command: String,
    /// `git describe --always --dirty` of the source measured, when known.
    pub commit: Option<String>,
    /// The harness's own peak RSS: a child started by vfork+exec inherits it
    /// as its starting peak, so no reading below it is possible.
    pub harness_peak_rss_kib: u64,
    pub cases: Vec<Case>,
    pub targets: Vec<Target>,
}

impl Report {
    pub fn new(mut cases: Vec<Case>, bench: bool, harness_peak_rss_kib: u64) -> Report {
        derive(&mut cases);
        let targets = targets(&cases);
        Report {
            format_version: 1,
            date: today_utc(),
            mode: if bench { "bench" } else { "smoke" },
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            machine: Machine::probe(),
            command: reproduce(bench),
            commit: commit(),
            harness_peak_rss_kib,
            cases,
            targets,
        }
    }

    /// Every command exited as expected and every floor found equality.
    pub fn all_ok(&self) -> bool {
        self.cases
            .iter()
            .all(|c| c.floor.equal && c.commands.iter().all(|r| r.ok))
    }

    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let _ = writeln!(
            out,
            "\n## supportctl benchmark, {} ({} build, {} mode, source {})\n\n{}, {} cores, {} GiB, Linux {}; \
             `{}`\n",
            self.date,
            self.profile,
            self.mode,
            self.commit.as_deref().unwrap_or("unknown"),
            m.cpu,
            m.cores,
            m.memory_gib,
            m.kernel,
            self.command
        );

        let smallest = |layout: &str| {
            self.cases
                .iter()
                .filter(|c| c.layout == layout)
                .map(|c| c.users)
                .min()
                .unwrap_or(0)
        };
        let mut rows = Vec::new();
        for case in &self.cases {
            for r in &case.commands {
                let vs_floor = match (r.cmd, r.vs_floor) {
                    (Cmd::PlanNoop | Cmd::PlanNoopCold, Some(x)) => format!("{x:.2}× (p+l+c)"),
                    (Cmd::ApplyEmpty, Some(x)) => format!("{x:.2}× (p+i)"),
                    _ => "".into(),
                };
                let exit = if r.ok {
                    r.expected_exit.to_string()
                } else {
                    let codes: Vec<String> = r.runs.iter().map(|s| s.exit.to_string()).collect();
                    format!("**{}** (expected {})", codes.join(","), r.expected_exit)
                };
                rows.push(vec![
                    case.users.to_string(),
                    case.layout.to_string(),
                    r.cmd.label().to_string(),
                    format!("{:.3}", r.wall_s),
                    mib(r.peak_rss_kib),
                    format!("{:.2}", r.us_per_user),
                    opt(r.per_user_vs_smallest, |x| format!("{x:.2}")),
                    opt(r.marginal_us_per_user, |x| format!("{x:.2}")),
                    vs_floor,
                    exit,
                ]);
            }
            let f = &case.floor;
            rows.push(vec![
                case.users.to_string(),
                case.layout.to_string(),
                "floor (all phases)".into(),
                format!("{:.3}", f.total_s()),
                mib(f.peak_rss_kib),
                format!("{:.2}", f.total_s() * 1e6 / case.users as f64),
                "".into(),
                "".into(),
                "".into(),
                if f.equal { "equal" } else { "**DIFFERENT**" }.into(),
            ]);
        }
        let smallest_note = self
            .cases
            .first()
            .map(|c| smallest(c.layout).to_string())
            .unwrap_or_default();
        out.push_str("### Commands\n\n");
        out.push_str(&table(
            &[
                "users",
                "layout",
                "command",
                "wall (s)",
                "peak RSS (MiB)",
                "µs/user",
                &format!("per-user ÷ {smallest_note}"),
                "marginal µs/user",
                "÷ floor",
                "exit",
            ],
            &rows,
        ));
        out.push_str(
            "\nwall: median of the counted runs, after the uncounted warm-up runs (`--warmup`: by default one below a million users, none at a million and in the smoke test); peak RSS: largest of the counted runs. per-user ÷ N: \
             µs/user ÷ µs/user at the smallest size of the layout. marginal: extra time per extra \
             user since the next smaller size. ÷ floor: no-op plan ÷ floor parse+load+compare, \
             first apply ÷ floor parse+insert.\n\n",
        );

        let rows: Vec<Vec<String>> = self
            .cases
            .iter()
            .map(|c| {
                let f = &c.floor;
                vec![
                    c.users.to_string(),
                    c.layout.to_string(),
                    c.files.to_string(),
                    format!("{:.1}", c.bytes as f64 / 1048576.0),
                    format!("{:.3}", f.parse_s),
                    format!("{:.3}", f.insert_s),
                    format!("{:.3}", f.load_s),
                    format!("{:.3}", f.compare_s),
                    format!("{:.3}", f.noop_plan_floor_s),
                    format!("{:.3}", f.first_apply_floor_s),
                    mib(f.peak_rss_kib),
                    c.runs.to_string(),
                ]
            })
            .collect();
        out.push_str("### Floor (serde-saphyr into plain structs, SQLite, hash maps)\n\n");
        out.push_str(&table(
            &[
                "users",
                "layout",
                "files",
                "YAML (MiB)",
                "parse (s)",
                "insert (s)",
                "load (s)",
                "compare (s)",
                "p+l+c (s)",
                "p+i (s)",
                "peak RSS (MiB)",
                "runs",
            ],
            &rows,
        ));

        if !self.targets.is_empty() {
            let rows: Vec<Vec<String>> = self
                .targets
                .iter()
                .map(|t| {
                    vec![
                        t.target.clone(),
                        t.users.to_string(),
                        t.layout.to_string(),
                        t.measured.clone(),
                        t.limit.clone(),
                        if t.pass { "PASS" } else { "**MISS**" }.into(),
                    ]
                })
                .collect();
            out.push_str("\n### Targets (issue 6)\n\n");
            out.push_str(&table(
                &["target", "users", "layout", "measured", "limit", "result"],
                &rows,
            ));
        }
        let _ = writeln!(
            out,
            "\nThe harness's own peak RSS, below which no reading can be: {} MiB.",
            mib(self.harness_peak_rss_kib)
        );
        out
    }
}

/// Fills in each command's figures relative to its floor and to the other
/// sizes of its layout. `cases` are in increasing size within a layout.
fn derive(cases: &mut [Case]) {
    for i in 0..cases.len() {
        let (before, rest) = cases.split_at_mut(i);
        let case = &mut rest[0];
        let same_layout: Vec<&Case> = before.iter().filter(|c| c.layout == case.layout).collect();
        let smallest = same_layout.first().copied();
        let previous = same_layout.last().copied();
        let users = case.users as f64;
        for r in &mut case.commands {
            r.us_per_user = r.wall_s * 1e6 / users;
            r.vs_floor = match r.cmd {
                Cmd::PlanNoop | Cmd::PlanNoopCold => Some(r.wall_s / case.floor.noop_plan_floor_s),
                Cmd::ApplyEmpty => Some(r.wall_s / case.floor.first_apply_floor_s),
                _ => None,
            }
            .filter(|x| x.is_finite());
            r.per_user_vs_smallest = smallest.map(|s| r.us_per_user / s.command(r.cmd).us_per_user);
            r.marginal_us_per_user = previous
                .map(|p| (r.wall_s - p.command(r.cmd).wall_s) * 1e6 / (users - p.users as f64));
        }
    }
}

/// The targets of issue 6 that the sizes of this run can show.
fn targets(cases: &[Case]) -> Vec<Target> {
    const MIB: u64 = 1024;
    let mut targets = Vec::new();
    for case in cases {
        let mut target = |target: String, measured: String, limit: &str, pass: bool| {
            targets.push(Target {
                target,
                users: case.users,
                layout: case.layout,
                measured,
                limit: limit.into(),
                pass,
            })
        };
        if case.users == 100_000 {
            // The floor parses every file: compare the plan that does too.
            let noop = case.command(Cmd::PlanNoopCold);
            let apply = case.command(Cmd::ApplyEmpty);
            let x = noop.vs_floor.unwrap_or(f64::INFINITY);
            target(
                "no-op plan (no cache) ÷ floor parse+load+compare".into(),
                format!(
                    "{x:.2}× ({:.3} s ÷ {:.3} s)",
                    noop.wall_s, case.floor.noop_plan_floor_s
                ),
                "≤ 2×",
                x <= 2.0,
            );
            let x = apply.vs_floor.unwrap_or(f64::INFINITY);
            target(
                "first apply ÷ floor parse+insert".into(),
                format!(
                    "{x:.2}× ({:.3} s ÷ {:.3} s)",
                    apply.wall_s, case.floor.first_apply_floor_s
                ),
                "≤ 2×",
                x <= 2.0,
            );
            let worst = case
                .commands
                .iter()
                .max_by_key(|r| r.peak_rss_kib)
                .expect("every case runs every command");
            target(
                "peak RSS of every command".into(),
                format!("{} MiB ({})", mib(worst.peak_rss_kib), worst.cmd.label()),
                "≤ 400 MiB",
                worst.peak_rss_kib <= 400 * MIB,
            );
            if case.layout == "dir" {
                let changed = case.command(Cmd::PlanChanged);
                target(
                    "plan after a one-file edit (item 3: parse cache)".into(),
                    format!("{:.3} s", changed.wall_s),
                    "≤ 0.25 s",
                    changed.wall_s <= 0.25,
                );
            }
        }
        if case.users == 10_000 {
            let worst = case
                .commands
                .iter()
                .max_by(|a, b| a.wall_s.total_cmp(&b.wall_s))
                .expect("every case runs every command");
            target(
                "every command's wall time".into(),
                format!("{:.3} s ({})", worst.wall_s, worst.cmd.label()),
                "< 0.3 s",
                worst.wall_s < 0.3,
            );
        }
    }
    // Linearity: per layout, from the smallest size to the largest.
    let mut layouts: Vec<&'static str> = Vec::new();
    for case in cases {
        if !layouts.contains(&case.layout) {
            layouts.push(case.layout);
        }
    }
    for layout in layouts {
        let of_layout: Vec<&Case> = cases.iter().filter(|c| c.layout == layout).collect();
        let (Some(first), Some(last)) = (of_layout.first(), of_layout.last()) else {
            continue;
        };
        if of_layout.len() < 2 {
            continue;
        }
        let worst = of_layout
            .iter()
            .skip(1)
            .flat_map(|c| c.commands.iter().map(move |r| (c, r)))
            .filter_map(|(c, r)| r.per_user_vs_smallest.map(|x| (x, c.users, r.cmd)))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((x, users, cmd)) = worst {
            targets.push(Target {
                target: format!(
                    "cost per user, {} → {} users, ÷ that at {}",
                    first.users, last.users, first.users
                ),
                users: last.users,
                layout,
                measured: format!("{x:.2}× (worst: {} at {users})", cmd.label()),
                limit: "≤ 1.5×".into(),
                pass: x <= 1.5,
            });
        }
    }
    targets
}

/// The commit of the source tree the binary was built from, `-dirty` when
/// it has uncommitted changes.
fn commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

/// The cargo command line that runs the harness with this run's arguments.
fn reproduce(bench: bool) -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match (bench, args.is_empty()) {
        (false, _) => "cargo test --bench bench".into(),
        (true, true) => "cargo bench --bench bench".into(),
        (true, false) => format!("cargo bench --bench bench -- {}", args.join(" ")),
    }
}

/// The median; the mean of the middle two for an even count; 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn opt(value: Option<f64>, f: impl Fn(f64) -> String) -> String {
    value.map(f).unwrap_or_default()
}

/// A markdown table with its columns padded to line up in a terminal.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, &w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(widths.iter().map(|&w| "-".repeat(w)).collect()));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// Today's date in UTC, as YYYY-MM-DD (days to civil date, after Howard
/// Hinnant's algorithm).
fn today_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
