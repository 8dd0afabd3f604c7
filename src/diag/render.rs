//! Diagnostics rendered: as text with the source line and a caret (in the
//! one palette), as the JSON report, and as GitHub workflow commands.

use super::*;

/// The colours of what supportctl prints for people: diagnostics on stderr
/// and the text plan on stdout. [`Palette::PLAIN`] gives every [`Tone`] the
/// empty string.
#[derive(Clone, Copy, Debug)]
pub struct Palette {
    colour: bool,
}

/// A part of the output that has its own colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Error,
    Warning,
    Note,
    /// The symbol of a change in the text plan, by its action.
    Create,
    Update,
    Delete,
    Replace,
    /// What a line is about: a diagnostic's place and message, a change's
    /// address.
    Bold,
}

impl Tone {
    pub(super) const ALL: [Tone; 8] = [
        Tone::Error,
        Tone::Warning,
        Tone::Note,
        Tone::Create,
        Tone::Update,
        Tone::Delete,
        Tone::Replace,
        Tone::Bold,
    ];

    /// What the tone looks like when colour is on: supportctl's one
    /// definition of its colours.
    const fn style(self) -> Style {
        match self {
            Tone::Error => AnsiColor::Red.on_default().bold(),
            Tone::Warning => AnsiColor::Yellow.on_default().bold(),
            Tone::Note => AnsiColor::Cyan.on_default().bold(),
            Tone::Create => AnsiColor::Green.on_default(),
            Tone::Update => AnsiColor::Yellow.on_default(),
            Tone::Delete => AnsiColor::Red.on_default(),
            Tone::Replace => AnsiColor::Magenta.on_default(),
            Tone::Bold => Style::new().bold(),
        }
    }
}

/// Colour's escapes, made once: each tone's (in the order of
/// [`Tone::ALL`]), and the reset that ends any of them.
struct Escapes {
    tones: [String; Tone::ALL.len()],
    reset: String,
}

static ESCAPES: LazyLock<Escapes> = LazyLock::new(|| Escapes {
    tones: Tone::ALL.map(|tone| one_escape(tone.style())),
    reset: anstyle::Reset.render().to_string(),
});

/// `style` as one escape sequence: anstyle writes one for each attribute
/// (`ESC[1m` then `ESC[31m`); supportctl has always printed their
/// parameters joined in one (`ESC[1;31m`), and keeps its output the same.
fn one_escape(style: Style) -> String {
    let rendered = style.render().to_string();
    let parameters: Vec<&str> = rendered
        .split("\x1b[")
        .filter_map(|escape| escape.strip_suffix('m'))
        .collect();
    if parameters.is_empty() {
        String::new()
    } else {
        format!("\x1b[{}m", parameters.join(";"))
    }
}

impl Palette {
    /// No colour.
    pub const PLAIN: Palette = Palette { colour: false };
    /// Each tone in its colour.
    pub const ANSI: Palette = Palette { colour: true };

    /// The escape that starts `tone`.
    pub fn of(self, tone: Tone) -> &'static str {
        if self.colour {
            &ESCAPES.tones[tone as usize]
        } else {
            ""
        }
    }

    /// The escape that ends any tone.
    pub fn reset(self) -> &'static str {
        if self.colour { &ESCAPES.reset } else { "" }
    }
}

/// Renders diagnostics as text: `FILE:LINE:COL: error[CODE]: message`, the
/// source line with a caret under the offending value, then notes and a hint.
pub fn render_text(diagnostics: &[Diagnostic], sources: &Sources, palette: Palette) -> String {
    let mut out = String::new();
    let mut lines = LineIndex::new(sources);
    for d in diagnostics {
        let (label, colour) = match d.severity() {
            Severity::Error => ("error", palette.of(Tone::Error)),
            Severity::Warning => ("warning", palette.of(Tone::Warning)),
        };
        if let Some(loc) = d.location {
            let _ = write!(
                out,
                "{}{}:{}:{}:{} ",
                palette.of(Tone::Bold),
                escape_control(sources.path(loc.file as usize)),
                loc.line,
                loc.column,
                palette.reset()
            );
        }
        let _ = writeln!(
            out,
            "{colour}{label}[{}]{}: {}{}{}",
            d.rule.code(),
            palette.reset(),
            palette.of(Tone::Bold),
            escape_control(&d.message),
            palette.reset()
        );
        if let Some(loc) = d.location {
            render_snippet(&mut out, &mut lines, loc, colour, palette);
        }
        for related in &d.related {
            let loc = related.location;
            let _ = writeln!(
                out,
                "  {}note{}: {} at {}:{}:{}",
                palette.of(Tone::Note),
                palette.reset(),
                escape_control(&related.label),
                escape_control(sources.path(loc.file as usize)),
                loc.line,
                loc.column
            );
            render_snippet(&mut out, &mut lines, loc, palette.of(Tone::Note), palette);
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(
                out,
                "  {}hint{}: {}",
                palette.of(Tone::Note),
                palette.reset(),
                escape_control(hint)
            );
        }
    }
    out
}

fn render_snippet(
    out: &mut String,
    lines: &mut LineIndex,
    loc: Location,
    colour: &str,
    palette: Palette,
) {
    let Some(line) = lines.line(loc.file as usize, loc.line) else {
        return;
    };
    let number = loc.line.to_string();
    let gutter = " ".repeat(number.len());
    // A very long line is shown as a window around the caret, so that one
    // finding in a minified file does not print megabytes.
    const WINDOW: usize = 240;
    let column = loc.column.saturating_sub(1) as usize;
    let (line, column) = lines.window((loc.file as usize, loc.line), line, column, WINDOW);
    let shown = escape_control(line);
    // Columns count characters of the raw line; escaping can only widen what
    // precedes the caret, so measure the prefix through the same escaping.
    let prefix: String = line.chars().take(column).collect();
    let pad = escape_control(&prefix)
        .chars()
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect::<String>();
    let rest = line
        .chars()
        .count()
        .saturating_sub(prefix.chars().count())
        .max(1);
    let width = (loc.len.max(1) as usize).min(rest);
    let _ = writeln!(out, "  {gutter} |");
    let _ = writeln!(out, "  {number} | {shown}");
    let _ = writeln!(
        out,
        "  {gutter} | {pad}{colour}{}{}",
        "^".repeat(width),
        palette.reset()
    );
}

/// The JSON form of one diagnostic (`validate --format json`).
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub code: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub message: &'a str,
    pub hint: Option<&'a str>,
    pub related: Vec<JsonRelated<'a>>,
}

#[derive(Serialize)]
pub struct JsonRelated<'a> {
    pub file: &'a str,
    pub line: u32,
    pub column: u32,
    pub message: &'a str,
}

/// The JSON document `validate --format json` prints.
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub format_version: u32,
    pub valid: bool,
    pub errors: usize,
    pub warnings: usize,
    pub diagnostics: Vec<JsonDiagnostic<'a>>,
}

pub fn render_json(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let report = JsonReport {
        format_version: 1,
        valid: errors == 0,
        errors,
        warnings: diagnostics.len() - errors,
        diagnostics: diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                file: d.location.map(|l| sources.path(l.file as usize)),
                line: d.location.map(|l| l.line),
                column: d.location.map(|l| l.column),
                code: d.rule.code(),
                name: d.rule.name(),
                severity: d.severity(),
                message: &d.message,
                hint: d.hint.as_deref(),
                related: d
                    .related
                    .iter()
                    .map(|r| JsonRelated {
                        file: sources.path(r.location.file as usize),
                        line: r.location.line,
                        column: r.location.column,
                        message: &r.label,
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
    text.push('\n');
    text
}

/// GitHub Actions workflow commands, so a pull request shows each finding on its line.
pub fn render_github(diagnostics: &[Diagnostic], sources: &Sources) -> String {
    // Workflow command values escape `%`, CR and LF; properties also `:` and `,`.
    fn data(text: &str) -> String {
        text.replace('%', "%25")
            .replace('\r', "%0D")
            .replace('\n', "%0A")
    }
    fn property(text: &str) -> String {
        data(text).replace(':', "%3A").replace(',', "%2C")
    }
    let mut out = String::new();
    for d in diagnostics {
        let kind = match d.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = escape_control(&d.message).into_owned();
        if let Some(hint) = &d.hint {
            message.push_str("\nhint: ");
            message.push_str(&escape_control(hint));
        }
        let title = format!("{} {}", d.rule.code(), d.rule.name());
        match d.location {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "::{kind} file={},line={},col={},title={}::{}",
                    property(sources.path(l.file as usize)),
                    l.line,
                    l.column,
                    property(&title),
                    data(&message)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "::{kind} title={}::{}",
                    property(&title),
                    data(&message)
                );
            }
        }
    }
    out
}
