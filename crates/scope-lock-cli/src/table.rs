//! `list`'s table, as lslocks(8) draws its own: one row per holder and per waiter, the columns
//! chosen with `-o`, aligned for people or `--raw` for scripts, with or without headings. The
//! same columns on both backends; a cell one backend has no value for shows `-`.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

use scope_lock::etcd::{EtcdListing, EtcdLock};
use scope_lock::{LiveLock, LockListing, LockMode, LockRecord, Waiter};

use crate::output::scope_text;

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Name,
    Loop,
    Host,
    Pid,
    Token,
    Since,
    State,
    Ticket,
    Liveness,
    Scope,
    Command,
    Path,
}

impl Column {
    const ALL: [Column; 12] = [
        Column::Name,
        Column::Loop,
        Column::Host,
        Column::Pid,
        Column::Token,
        Column::Since,
        Column::State,
        Column::Ticket,
        Column::Liveness,
        Column::Scope,
        Column::Command,
        Column::Path,
    ];

    /// The columns `list` shows unless `-o` says otherwise: all but the liveness and the path,
    /// and but the host locally (it is this one) or the command on etcd (not recorded there).
    fn default_set(backend: Kind) -> Vec<Column> {
        let left_out = match backend {
            Kind::Local => Column::Host,
            Kind::Etcd => Column::Command,
        };
        Self::ALL
            .into_iter()
            .filter(|&column| {
                !matches!(column, Column::Liveness | Column::Path) && column != left_out
            })
            .collect()
    }

    fn heading(self) -> &'static str {
        match self {
            Column::Name => "NAME",
            Column::Loop => "LOOP",
            Column::Host => "HOST",
            Column::Pid => "PID",
            Column::Token => "TOKEN",
            Column::Since => "SINCE",
            Column::State => "STATE",
            Column::Ticket => "TICKET",
            Column::Liveness => "LIVENESS",
            Column::Scope => "SCOPE",
            Column::Command => "COMMAND",
            Column::Path => "PATH",
        }
    }

    /// What the column shows, for `list --help`.
    fn meaning(self) -> &'static str {
        match self {
            Column::Name => "the lock's name (`break` takes it); a waiter's, the one it will take",
            Column::Loop => "the loop name, then `(singleton)`, `(shared)` as they apply",
            Column::Host => "on etcd: the holder's or waiter's host; - locally",
            Column::Pid => "the pid in the record",
            Column::Token => {
                "the lock's fencing token; - for a waiter, or a lock the original wrote"
            }
            Column::Since => "when it took the lock, or started waiting",
            Column::State => "held, or waiting",
            Column::Ticket => "a waiter's place in the queue (lowest first); - when held",
            Column::Liveness => {
                "what proves it alive: flock (this tool), pid (little-loops), lease (etcd)"
            }
            Column::Scope => "the paths it holds, or waits for (on etcd: relative to the root)",
            Column::Command => "the holder's or waiter's command line, where it can be read",
            Column::Path => "the lock file, or the waiter's ticket; on etcd, the key",
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.heading())
    }
}

/// Which backend a table is drawn for: the default columns differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Local,
    Etcd,
}

/// The column list of `-o`: names separated by commas, any case; a list starting with `+`
/// adds its columns to the default ones, as lslocks does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Columns {
    /// Whether the columns come after the default ones (`+` or no `-o` at all).
    after_default: bool,
    columns: Vec<Column>,
}

impl Columns {
    /// The columns to draw for `backend`.
    fn resolve(columns: Option<&Columns>, backend: Kind) -> Vec<Column> {
        match columns {
            None => Column::default_set(backend),
            Some(Columns {
                after_default: true,
                columns,
            }) => {
                let mut all = Column::default_set(backend);
                all.extend(columns);
                all
            }
            Some(Columns { columns, .. }) => columns.clone(),
        }
    }
}

impl FromStr for Columns {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (after_default, names) = match text.strip_prefix('+') {
            Some(added) => (true, added),
            None => (false, text),
        };
        let mut columns = Vec::new();
        for name in names.split(',') {
            let column = Column::ALL
                .into_iter()
                .find(|column| column.heading().eq_ignore_ascii_case(name.trim()))
                .ok_or_else(|| {
                    let known: Vec<&str> = Column::ALL.iter().map(|c| c.heading()).collect();
                    format!(
                        "unknown column `{name}`; the columns are {}",
                        known.join(",")
                    )
                })?;
            columns.push(column);
        }
        Ok(Self {
            after_default,
            columns,
        })
    }
}

/// The columns and their meanings, for `list --help`.
pub(crate) fn columns_help() -> String {
    let mut out = String::from("Columns (-o):\n");
    for column in Column::ALL {
        out.push_str(&format!("  {:<9} {}\n", column.heading(), column.meaning()));
    }
    out
}

/// How the rows are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Style {
    pub(crate) headings: bool,
    pub(crate) raw: bool,
}

/// The table of `listing`'s holders, then its waiters, in `columns` (the default ones if
/// `None`).
pub(crate) fn render(listing: &LockListing, columns: Option<&Columns>, style: Style) -> String {
    let columns = Columns::resolve(columns, Kind::Local);
    // Proving who holds what reads each holder's descriptors: only when the column is shown.
    let commands = if columns.contains(&Column::Command) {
        listing.holder_commands()
    } else {
        vec![None; listing.locks().len()]
    };
    let holders = (listing.locks().iter())
        .zip(commands)
        .map(|(lock, command)| row(&columns, |c| held_cell(lock, &command, c)));
    let waiters =
        (listing.waiters().iter()).map(|waiter| row(&columns, |c| waiting_cell(waiter, c)));
    draw(&columns, holders.chain(waiters).collect(), style)
}

/// The table of a project's locks on etcd, then its waiters in line, in `columns` (the
/// default ones if `None`).
pub(crate) fn render_etcd(
    listing: &EtcdListing,
    columns: Option<&Columns>,
    style: Style,
) -> String {
    let columns = Columns::resolve(columns, Kind::Etcd);
    let holders = listing
        .locks()
        .iter()
        .map(|lock| row(&columns, |c| etcd_cell(lock, c, true)));
    let waiters =
        (listing.waiters().iter()).map(|waiter| row(&columns, |c| etcd_cell(waiter, c, false)));
    draw(&columns, holders.chain(waiters).collect(), style)
}

fn row(columns: &[Column], cell: impl Fn(Column) -> String) -> Vec<String> {
    columns.iter().map(|&column| cell(column)).collect()
}

/// The rows under their headings (if `style` has them).
fn draw(columns: &[Column], body: Vec<Vec<String>>, style: Style) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    if style.headings {
        rows.push(columns.iter().map(|c| c.heading().to_owned()).collect());
    }
    rows.extend(body);
    if style.raw {
        rows.iter()
            .map(|row| {
                let cells: Vec<String> = row.iter().map(|cell| raw_cell(cell)).collect();
                cells.join(" ") + "\n"
            })
            .collect()
    } else {
        // A command line may hold a newline or a tab: shown escaped, each row stays one line.
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| escaped(cell, |c| c.is_control()))
                    .collect()
            })
            .collect();
        aligned(&rows)
    }
}

fn held_cell(lock: &LiveLock, command: &Option<Vec<OsString>>, column: Column) -> String {
    match column {
        Column::Name => lock.lock_name().to_owned(),
        Column::State => "held".to_owned(),
        Column::Ticket => "-".to_owned(),
        Column::Liveness => lock.liveness().to_string(),
        Column::Command => command_cell(command.clone()),
        Column::Path => lock.path().display().to_string(),
        _ => record_cell(lock.record(), column),
    }
}

/// A lock (`held`) or a waiter on etcd: the key's create revision is the lock's token and the
/// waiter's place in line.
fn etcd_cell(lock: &EtcdLock, column: Column, held: bool) -> String {
    match column {
        Column::Name if held => lock.lock_name().to_owned(),
        Column::State if held => "held".to_owned(),
        Column::State => "waiting".to_owned(),
        Column::Token if held => lock.token().to_string(),
        Column::Ticket if !held => lock.token().to_string(),
        Column::Host => lock.host().to_owned(),
        Column::Liveness => "lease".to_owned(),
        Column::Path => lock.key().to_owned(),
        Column::Name | Column::Token | Column::Ticket | Column::Command => "-".to_owned(),
        _ => record_cell(lock.record(), column),
    }
}

fn waiting_cell(waiter: &Waiter, column: Column) -> String {
    match column {
        Column::Name => waiter.lock_name().unwrap_or("-").to_owned(),
        Column::State => "waiting".to_owned(),
        Column::Ticket => waiter.ticket().to_string(),
        Column::Liveness => "flock".to_owned(),
        Column::Command => command_cell(waiter.command()),
        Column::Path => waiter.path().display().to_string(),
        _ => record_cell(waiter.record(), column),
    }
}

/// The cells that come from the record, the same for a holder and a waiter.
fn record_cell(record: &LockRecord, column: Column) -> String {
    match column {
        Column::Loop => {
            let marks = match (record.singleton(), record.mode()) {
                (false, LockMode::Exclusive) => "",
                (true, LockMode::Exclusive) => " (singleton)",
                (false, LockMode::Shared) => " (shared)",
                (true, LockMode::Shared) => " (singleton, shared)",
            };
            format!("{}{marks}", record.loop_name())
        }
        Column::Pid => record.pid().to_string(),
        Column::Token => record
            .token()
            .map_or_else(|| "-".to_owned(), |token| token.to_string()),
        Column::Since => record.started_at().to_owned(),
        Column::Scope => scope_text(record),
        _ => "-".to_owned(),
    }
}

fn command_cell(command: Option<Vec<std::ffi::OsString>>) -> String {
    match command {
        Some(args) => args
            .iter()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" "),
        None => "-".to_owned(),
    }
}

/// A cell of `--raw` output: one word, as lslocks writes it: each space, control character and
/// backslash as `\xHH`, so that the columns split on single spaces; an empty cell is `-`.
fn raw_cell(cell: &str) -> String {
    if cell.is_empty() {
        return "-".to_owned();
    }
    escaped(cell, |c| c == '\\' || c.is_whitespace() || c.is_control())
}

/// `cell` with each character `escape` picks written as `\xHH`, byte by byte.
fn escaped(cell: &str, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(cell.len());
    for c in cell.chars() {
        if escape(c) {
            let mut bytes = [0; 4];
            for byte in c.encode_utf8(&mut bytes).bytes() {
                out.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Left-aligned columns two spaces apart; the last column is not padded.
pub(crate) fn aligned(rows: &[Vec<String>]) -> String {
    let count = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; count];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|&cell| cell.to_owned()).collect()
    }

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let rows = [row(&["A", "LONG", "Z"]), row(&["xyz", "1", "tail"])];
        assert_eq!(aligned(&rows), "A    LONG  Z\nxyz  1     tail\n");
    }

    #[test]
    fn columns_are_named_in_any_case_and_a_plus_adds_to_the_default() {
        let named = "name,PID, Scope".parse::<Columns>();
        assert_eq!(
            named.map(|columns| Columns::resolve(Some(&columns), Kind::Local)),
            Ok(vec![Column::Name, Column::Pid, Column::Scope])
        );
        for backend in [Kind::Local, Kind::Etcd] {
            let mut more = Column::default_set(backend);
            more.push(Column::Path);
            let added = "+path".parse::<Columns>();
            assert_eq!(
                added.map(|columns| Columns::resolve(Some(&columns), backend)),
                Ok(more)
            );
        }
        let err = "name,size".parse::<Columns>().unwrap_err();
        assert!(err.contains("`size`") && err.contains("NAME,LOOP"), "{err}");
    }

    #[test]
    fn raw_cells_are_one_word_each() {
        assert_eq!(
            raw_cell("/r/a b /r/c\\d\t"),
            "/r/a\\x20b\\x20/r/c\\x5cd\\x09"
        );
        assert_eq!(raw_cell(""), "-");
        assert_eq!(raw_cell("héllo"), "héllo");
    }
}
