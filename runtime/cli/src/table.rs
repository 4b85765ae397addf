//! Aligned text tables for the read commands (comfy-table, without borders:
//! two spaces between columns, as `kubectl` and `nats` print them).
//!
//! A cell is cut at [`MAX_CELL_CHARS`] characters: one dead letter with a
//! 100 KB payload must not make `pigeon dlq ls` unreadable. `--json` prints
//! more (`inspect` cuts values at its `--value-limit` there too).

use comfy_table::{ContentArrangement, Table, presets};

/// Longest cell shown; longer ones end in `…` and say how much is left out.
pub const MAX_CELL_CHARS: usize = 200;

/// Formats `rows` under `headers`, each column as wide as its widest cell.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING).set_content_arrangement(ContentArrangement::Disabled);
    table.set_header(headers.iter().copied());
    for row in rows {
        table.add_row(row.iter().map(|cell| shorten(cell)));
    }
    let last = headers.len().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
    }
    let mut out = String::new();
    for line in table.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `cell` cut to [`MAX_CELL_CHARS`], on one line.
fn shorten(cell: &str) -> String {
    let one_line = cell.replace(['\n', '\r'], " ");
    let total = one_line.chars().count();
    if total <= MAX_CELL_CHARS {
        return one_line;
    }
    let kept: String = one_line.chars().take(MAX_CELL_CHARS).collect();
    format!("{kept}… ({} more characters; --json shows more)", total - MAX_CELL_CHARS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let rows = vec![vec!["counter/a".to_string(), "3".to_string()], vec!["x/b".to_string(), "12".to_string()]];
        assert_eq!(super::render(&["ACTOR", "N"], &rows), "ACTOR      N\ncounter/a  3\nx/b        12\n");
    }

    #[test]
    fn a_huge_cell_is_cut_and_says_so() {
        let huge = "x".repeat(100_000);
        let out = super::render(&["ID", "PAYLOAD", "ERROR"], &[vec!["5".into(), huge, "boom".into()]]);
        let row = out.lines().nth(1).unwrap();
        assert!(row.contains("… (99800 more characters; --json shows more)"), "{row}");
        assert!(row.ends_with("boom"), "later columns still show: {row}");
        assert!(row.chars().count() < 400, "{} characters", row.chars().count());
    }
}
