//! `rnnlab repl`: Rust with rnnlab ready, on the same evcxr engine as the notebooks.
//!
//! Each accepted input (a line, or several while brackets are open) is one notebook cell: it runs in one evcxr
//! context, so variables persist, and its outputs are what Jupyter would store. That is what makes `:save` honest:
//! the saved notebook holds exactly the cells and outputs the session showed, and `rnnlab test` passes on it.

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rnnlab_notebook::{CellResult, Engine, EngineOptions, Notebook, Output};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::history::DefaultHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Editor, Helper};

/// How the REPL starts.
#[derive(Debug, Clone)]
pub struct ReplOptions {
    /// Read plain lines from stdin (scripts, tests) instead of an interactive line editor.
    pub no_readline: bool,
    /// The rnnlab crate to `:dep` (its folder).
    pub rnnlab_path: PathBuf,
    /// The history file; `None` keeps no history.
    pub history: Option<PathBuf>,
    /// Per-input time limit; `None` for none (Ctrl-C interrupts instead).
    pub timeout: Option<Duration>,
    /// Build folder for compiled dependencies (a locked cache slot), or `None` for a temporary one.
    pub build_dir: Option<PathBuf>,
}

/// The rnnlab crate the binary was built from (used when neither `--rnnlab-path` nor `$RNNLAB_CRATE` says
/// otherwise): the REPL `:dep`s the same source.
pub fn default_rnnlab_path() -> PathBuf {
    if let Some(p) = std::env::var_os("RNNLAB_CRATE").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let baked = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rnnlab");
    std::fs::canonicalize(&baked).unwrap_or(baked)
}

/// `$RNNLAB_HISTORY`, else `$XDG_DATA_HOME/rnnlab/history`, else `~/.local/share/rnnlab/history`.
pub fn default_history() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RNNLAB_HISTORY") {
        return (!p.is_empty()).then(|| PathBuf::from(p));
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
        })?;
    Some(data.join("rnnlab").join("history"))
}

const HELP: &str = "\
Type Rust; rnnlab's prelude is imported (LSTM, GRU, SimpleRNN, Dense, Input, Model, Sequential, Tensor, ...).
A line whose brackets are still open continues on the next line. The value of a final expression is printed.

  :help                 this text
  :vars                 variables and their types
  :plot EXPR FILE       save a figure (EXPR is a Figure, e.g. traces[0].plot_states(0)?) as .svg or .png
  :save FILE.ipynb      the session so far as a notebook, with outputs (rnnlab test passes on it)
  :load FILE.ipynb      run a notebook's code cells here, one by one
  :time                 show how long each input took (again: stop)
  :quit                 leave (also Ctrl-D)
evcxr's own commands work too (:dep, :opt, :clear, :help_evcxr is evcxr's :help, ...).
Ctrl-C cancels the line being typed, or stops a running evaluation (variables are then lost).";

/// The commands offered by completion.
const COMMANDS: &[&str] = &[
    ":help", ":vars", ":plot", ":save", ":load", ":time", ":quit", ":dep", ":opt", ":clear",
    ":timing", ":fmt", ":efmt", ":explain",
];

/// One REPL session.
struct Session {
    engine: Rc<RefCell<Engine>>,
    /// Every input that ran without error, with its result: the notebook `:save` writes.
    cells: Vec<(String, CellResult)>,
    rnnlab_path: PathBuf,
    show_time: bool,
    interrupted: Arc<AtomicBool>,
}

/// Starts the engine, loads rnnlab and runs the read-eval-print loop until `:quit` or end of input. Errors are
/// start-up failures (the loop itself survives every mistake in the input).
pub fn run(options: ReplOptions) -> Result<(), String> {
    if !options.rnnlab_path.join("Cargo.toml").exists() {
        return Err(format!(
            "the rnnlab crate was not found at '{}': pass --rnnlab-path DIR (the folder with rnnlab's Cargo.toml) \
             or set RNNLAB_CRATE",
            options.rnnlab_path.display()
        ));
    }
    let started = Instant::now();
    let progress = !options.no_readline;
    if progress {
        eprint!("rnnlab repl: starting the evcxr engine...");
        let _ = std::io::stderr().flush();
    }
    let engine = Engine::with_options(EngineOptions {
        timeout: options.timeout,
        build_dir: options.build_dir.clone(),
        // A panicking line must not take the session's variables with it (evcxr catches the panic and keeps
        // them); the engine still reports the panic as an error.
        preserve_vars_on_panic: true,
        ..EngineOptions::default()
    })
    .map_err(|e| e.to_string())?;
    if progress {
        // A line of its own: cargo's "Compiling ..." lines follow it on a cold start.
        eprintln!("\rrnnlab repl: compiling rnnlab (the first start takes a minute or two; later starts reuse the build)...");
    }
    let engine = Rc::new(RefCell::new(engine));
    let setup = [
        format!(
            ":dep rnnlab = {{ path = {:?} }}",
            options.rnnlab_path.display().to_string()
        ),
        "use rnnlab::prelude::*;".to_string(),
        // evcxr rebuilds once when the first variable is stored (about 5 s); doing it here keeps the user's
        // first `let` as fast as the rest. Dropping the value removes it from the variables again.
        "let rnnlab_repl_warmup = String::new();".to_string(),
        "drop(rnnlab_repl_warmup);".to_string(),
    ];
    for line in &setup {
        let result = engine.borrow_mut().execute(line);
        if !result.is_ok() {
            print_result(&result);
            return Err(format!("setting up the session failed at `{line}`"));
        }
    }
    if progress {
        eprintln!(
            "rnnlab repl: ready in {:.1} s. Type Rust, :help for commands, Ctrl-D to leave.",
            started.elapsed().as_secs_f64()
        );
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        // Ctrl-C during an evaluation: the terminal sends SIGINT to the whole foreground group, so the evcxr
        // runtime child (and any compiler) stops; the REPL itself must survive it and report.
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let mut session = Session {
        engine,
        cells: Vec::new(),
        rnnlab_path: options.rnnlab_path.clone(),
        show_time: false,
        interrupted,
    };
    if options.no_readline || !std::io::stdin().is_terminal() {
        session.plain_loop();
    } else {
        session.readline_loop(options.history.as_deref())?;
    }
    Ok(())
}

impl Session {
    /// Lines from stdin, gathered while the input is incomplete. A complete input waits for the next line, so
    /// that a method chain continued on lines starting with `.` (or `?`) stays one input, as in a script.
    fn plain_loop(&mut self) {
        let stdin = std::io::stdin();
        let mut pending = String::new();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let continues = matches!(line.trim_start().chars().next(), Some('.') | Some('?'))
                && !line.trim_start().starts_with("..");
            if !pending.is_empty() && !is_incomplete(&pending) && !continues {
                let input = std::mem::take(&mut pending);
                if !self.handle(&input) {
                    return;
                }
            }
            if !pending.is_empty() {
                pending.push('\n');
            }
            pending.push_str(&line);
        }
        if !pending.trim().is_empty() {
            self.handle(&pending);
        }
    }

    fn readline_loop(&mut self, history: Option<&Path>) -> Result<(), String> {
        let config = rustyline::Config::builder()
            .auto_add_history(false)
            .max_history_size(10_000)
            .map_err(|e| e.to_string())?
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor: Editor<ReplHelper, DefaultHistory> =
            Editor::with_config(config).map_err(|e| e.to_string())?;
        editor.set_helper(Some(ReplHelper {
            engine: self.engine.clone(),
            hinter: HistoryHinter::new(),
        }));
        if let Some(path) = history {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            // A missing history file is the first start, not an error.
            let _ = editor.load_history(path);
        }
        loop {
            match editor.readline(">> ") {
                Ok(input) => {
                    if input.trim().is_empty() {
                        continue;
                    }
                    let _ = editor.add_history_entry(input.as_str());
                    if let Some(path) = history {
                        if let Err(e) = editor.save_history(path) {
                            eprintln!("note: cannot write history to {}: {e}", path.display());
                        }
                    }
                    if !self.handle(&input) {
                        break;
                    }
                }
                Err(ReadlineError::Interrupted) => continue, // Ctrl-C at the prompt: drop the line.
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(format!("reading input failed: {e}")),
            }
        }
        Ok(())
    }

    /// Runs one input; returns false when the session should end.
    fn handle(&mut self, input: &str) -> bool {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return true;
        }
        if let Some(command) = trimmed.strip_prefix(':') {
            let (name, rest) = command
                .split_once(char::is_whitespace)
                .map_or((command, ""), |(n, r)| (n, r.trim()));
            match name {
                "quit" | "q" | "exit" => return false,
                "help" => println!("{HELP}"),
                "help_evcxr" => self.execute(":help", false),
                "vars" => self.vars(),
                "time" => {
                    self.show_time = !self.show_time;
                    println!("timing {}", if self.show_time { "on" } else { "off" });
                }
                "plot" => self.plot(rest),
                "save" => self.save(rest),
                "load" => self.load(rest),
                _ => self.execute(trimmed, true), // evcxr's own commands (:dep, :opt, ...).
            }
            return true;
        }
        self.execute(input, true);
        true
    }

    /// Executes code (or an evcxr command), prints what it produced, and keeps it for `:save` when it worked.
    fn execute(&mut self, source: &str, record: bool) {
        self.interrupted.store(false, Ordering::SeqCst);
        let result = self.engine.borrow_mut().execute(source);
        let interrupted = self.interrupted.swap(false, Ordering::SeqCst);
        print_result(&result);
        if interrupted && !result.is_ok() {
            eprintln!("interrupted (Ctrl-C): the evaluation was stopped");
        }
        if self.show_time {
            eprintln!("took {:.3} s", result.duration.as_secs_f64());
        }
        if record && result.is_ok() {
            self.cells.push((source.to_string(), result));
        }
    }

    fn vars(&mut self) {
        let vars = self.engine.borrow_mut().variables();
        if vars.is_empty() {
            println!("no variables yet");
        }
        for (name, ty) in vars {
            println!("{name}: {ty}");
        }
    }

    fn plot(&mut self, args: &str) {
        let Some((expr, file)) = args.rsplit_once(char::is_whitespace) else {
            eprintln!(
                "usage: :plot EXPR FILE  (EXPR evaluates to a Figure; FILE ends in .svg or .png)"
            );
            return;
        };
        let (expr, file) = (expr.trim(), file.trim());
        if expr.is_empty() {
            eprintln!(
                "usage: :plot EXPR FILE  (EXPR evaluates to a Figure; FILE ends in .svg or .png)"
            );
            return;
        }
        let path = absolute(Path::new(file));
        // A block, so the figure is not kept as a variable; errors are printed, not propagated with `?`.
        let code = format!(
            "{{ let __rnnlab_figure: rnnlab::Figure = {{ {expr} }}; match __rnnlab_figure.save({path:?}) {{ \
             Ok(()) => println!(\"saved {}\", {path:?}), Err(e) => eprintln!(\"{{e}}\") }} }};",
            "{}",
            path = path.display().to_string()
        );
        self.execute(&code, false);
    }

    fn save(&mut self, file: &str) {
        if file.is_empty() {
            eprintln!("usage: :save FILE.ipynb");
            return;
        }
        let path = absolute(Path::new(file));
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut nb = Notebook::new_rust();
        nb.push_markdown(
            "Saved from `rnnlab repl`: the inputs that ran without error, with their outputs.",
        );
        let dep = relative_to(&self.rnnlab_path, dir);
        let mut count = 0;
        for source in [
            format!(":dep rnnlab = {{ path = {:?} }}", dep.display().to_string()),
            "use rnnlab::prelude::*;".to_string(),
        ] {
            count += 1;
            nb.push_code(source).execution_count = Some(count);
        }
        for (source, result) in &self.cells {
            count += 1;
            let cell = nb.push_code(source.clone());
            cell.execution_count = Some(count);
            cell.outputs = result
                .outputs
                .iter()
                .cloned()
                .map(|o| match o {
                    Output::ExecuteResult(mut r) => {
                        r.execution_count = Some(count);
                        Output::ExecuteResult(r)
                    }
                    other => other,
                })
                .collect();
        }
        match nb.write(&path) {
            Ok(()) => println!(
                "saved {} ({} cells) to {}",
                self.cells.len(),
                self.cells.len() + 2,
                path.display()
            ),
            Err(e) => eprintln!("error: {e}"),
        }
    }

    fn load(&mut self, file: &str) {
        if file.is_empty() {
            eprintln!("usage: :load FILE.ipynb");
            return;
        }
        let nb = match Notebook::read(file) {
            Ok(nb) => nb,
            Err(e) => {
                eprintln!("error: {e}");
                return;
            }
        };
        for (_, cell) in nb.code_cells() {
            let source = cell.source.trim();
            if source.is_empty() {
                continue;
            }
            if is_rnnlab_dep(source) {
                println!("(skipped `{source}`: rnnlab is already loaded)");
                continue;
            }
            println!(">> {}", source.replace('\n', "\n.. "));
            self.interrupted.store(false, Ordering::SeqCst);
            self.execute(source, true);
        }
    }
}

/// Whether a cell only loads rnnlab (`:dep rnnlab = ...`), which the REPL has done already and which a relative
/// path in a notebook from another folder would get wrong.
fn is_rnnlab_dep(source: &str) -> bool {
    source.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || (l.starts_with(":dep") && l[4..].trim_start().starts_with("rnnlab"))
    })
}

/// Prints a cell's outputs as a terminal shows them: streams as printed, a result's `text/plain`, errors on stderr.
fn print_result(result: &CellResult) {
    let mut stdout = std::io::stdout();
    for output in &result.outputs {
        match output {
            Output::Stream(s) if s.name == "stderr" => eprint!("{}", s.text),
            Output::Stream(s) => {
                let _ = write!(stdout, "{}", s.text);
            }
            Output::ExecuteResult(r) => print_data(&r.data),
            Output::DisplayData(d) => print_data(&d.data),
            Output::Error(e) => {
                let _ = stdout.flush();
                if e.traceback.is_empty() {
                    eprintln!("{}: {}", e.ename, e.evalue);
                }
                for line in &e.traceback {
                    eprintln!("{line}");
                }
            }
        }
    }
    // The engine's error output already says when variables were lost.
    let _ = stdout.flush();
}

fn print_data(data: &rnnlab_notebook::nbformat::JsonMap) {
    if let Some(text) = rnnlab_notebook::nbformat::mime_text(data, "text/plain") {
        println!("{}", text.trim_end_matches('\n'));
    } else {
        let kinds: Vec<&str> = data.keys().map(String::as_str).collect();
        println!(
            "[{} output: save a figure with :plot EXPR FILE]",
            kinds.join(", ")
        );
    }
}

/// True while brackets, a string or a block comment are still open, or the input ends in the middle of an
/// expression (a trailing `.`, `=`, `,`, binary operator or `->`): the input continues on the next line.
pub fn is_incomplete(src: &str) -> bool {
    let last_line = without_line_comment(src.trim_end().lines().last().unwrap_or(""));
    let tail = last_line.trim_end();
    if !src.trim_start().starts_with(':') {
        let dangling = [".", "=", ",", "&&", "||", "+", "-", "*", "->", "=>", "|"];
        if dangling.iter().any(|d| tail.ends_with(d)) && !tail.ends_with("..") {
            return true;
        }
    }
    open_delimiters(src)
}

/// A line without its trailing `// comment` (a `//` inside a string literal is kept).
fn without_line_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The bracket, string and block-comment part of [`is_incomplete`].
fn open_delimiters(src: &str) -> bool {
    let chars: Vec<char> = src.chars().collect();
    let mut depth: i64 = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '/' if next == Some('/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '/' if next == Some('*') => {
                let mut nesting = 1;
                i += 2;
                while i < chars.len() && nesting > 0 {
                    if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                        nesting += 1;
                        i += 1;
                    } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                        nesting -= 1;
                        i += 1;
                    }
                    i += 1;
                }
                if nesting > 0 {
                    return true;
                }
                continue;
            }
            'r' if matches!(next, Some('"') | Some('#'))
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                // Raw string r"..." or r#"..."#.
                let mut j = i + 1;
                let mut hashes = 0;
                while chars.get(j) == Some(&'#') {
                    hashes += 1;
                    j += 1;
                }
                if chars.get(j) != Some(&'"') {
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= chars.len() {
                        return true;
                    }
                    if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                        i = j + 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                continue;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return true,
                        Some('\\') => i += 2,
                        Some('"') => break,
                        Some(_) => i += 1,
                    }
                }
            }
            '\'' => {
                // A char literal ('a', '\n', '\''), not a lifetime ('a without a closing quote).
                if next == Some('\\') {
                    let mut j = i + 2;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j;
                } else if chars.get(i + 2) == Some(&'\'') {
                    i += 2;
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    depth > 0
}

/// `path` made absolute against the current directory (without resolving symlinks, so it reads as typed).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    }
}

/// `target` relative to the folder `base` when both are absolute (so a saved notebook keeps working when the
/// whole tree moves), else `target` unchanged.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let target = std::fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    if !target.is_absolute() || !base.is_absolute() {
        return target;
    }
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common <= 1 {
        return target; // Only the root in common: the absolute path is clearer.
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c.as_os_str());
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    rel
}

/// The line editor's helper: completion from the engine, history hints, multi-line input.
struct ReplHelper {
    engine: Rc<RefCell<Engine>>,
    hinter: HistoryHinter,
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        // REPL commands first: the engine does not know `:plot`, `:save`, ...
        if before.starts_with(':') && !before.contains(char::is_whitespace) {
            let candidates = COMMANDS
                .iter()
                .filter(|c| c.starts_with(before))
                .map(|c| Pair {
                    display: c.to_string(),
                    replacement: c.to_string(),
                })
                .collect();
            return Ok((0, candidates));
        }
        let Ok(mut engine) = self.engine.try_borrow_mut() else {
            return Ok((pos, Vec::new()));
        };
        let Some(found) = engine.completions(line, pos, Duration::from_secs(3)) else {
            return Ok((pos, Vec::new()));
        };
        let mut candidates: Vec<Pair> = found
            .candidates
            .into_iter()
            .map(|c| Pair {
                display: c.clone(),
                replacement: c,
            })
            .collect();
        candidates.dedup_by(|a, b| a.replacement == b.replacement);
        Ok((found.start.min(pos), candidates))
    }
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> std::borrow::Cow<'h, str> {
        // Dim, so a hint is not mistaken for typed text.
        std::borrow::Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_brackets_strings_and_comments_continue_the_input() {
        assert!(is_incomplete("let x = foo("));
        assert!(is_incomplete("let m = Model::new(&i, [&a,"));
        assert!(is_incomplete("fn f() {"));
        assert!(is_incomplete("let s = \"abc"));
        assert!(is_incomplete("/* still a comment"));
        assert!(is_incomplete("let s = r#\"raw \" still\n"));
        assert!(!is_incomplete("let x = foo(1);"));
        assert!(!is_incomplete("let s = \"(\";"));
        assert!(!is_incomplete("let c = '(';"));
        assert!(!is_incomplete("let c = '\\'';"));
        assert!(!is_incomplete("fn f<'a>(x: &'a str) -> &'a str { x }"));
        assert!(!is_incomplete("// a comment with ("));
        assert!(!is_incomplete("let s = r\"(\";"));
        assert!(!is_incomplete("x)")); // Too many closers: let the compiler say so.
        assert!(is_incomplete("let y = model."));
        assert!(is_incomplete("let y ="));
        assert!(is_incomplete("let v = vec![1,\n2,"));
        assert!(!is_incomplete("let r = 0..")); // A range, not a method call.
        assert!(!is_incomplete(":dep rnnlab = { path = \"x\" }"));
        assert!(!is_incomplete("x += 1; // a = "));
        assert!(!is_incomplete("// just a comment ending in ="));
        assert!(is_incomplete("let url = \"http://x\" +"));
    }

    #[test]
    fn rnnlab_dep_cells_are_recognised() {
        assert!(is_rnnlab_dep(
            ":dep rnnlab = { path = \"../crates/rnnlab\" }"
        ));
        assert!(!is_rnnlab_dep(":dep ndarray = \"0.17\""));
        assert!(!is_rnnlab_dep("use rnnlab::prelude::*;"));
    }

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        let base = std::env::temp_dir().join(format!("rnnlab-repl-rel-{}", std::process::id()));
        let target = base.join("crates/rnnlab");
        let nb = base.join("notebooks");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(&nb).unwrap();
        assert_eq!(relative_to(&target, &nb), PathBuf::from("../crates/rnnlab"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
