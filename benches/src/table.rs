//! Formatting for reports: durations, rates, sizes and ratios to three
//! significant digits, and tables printed as aligned text or Markdown.

/// A duration in nanoseconds, to 3 significant digits: `183 ns`, `41.2 µs`.
pub fn format_ns(ns: f64) -> String {
    if !ns.is_finite() {
        return "-".into();
    }
    let (value, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    format!("{} {unit}", sig3(value))
}

/// A rate per second with an SI prefix: `52.3 M/s`.
pub fn format_rate(per_sec: f64) -> String {
    let (value, prefix) = si(per_sec);
    format!("{} {prefix}/s", sig3(value))
}

/// A byte rate in MB/s (10^6 bytes): `1234 MB/s`.
pub fn format_mb_per_sec(bytes_per_sec: f64) -> String {
    let mb = bytes_per_sec / 1e6;
    if mb >= 100.0 {
        format!("{mb:.0} MB/s")
    } else {
        format!("{} MB/s", sig3(mb))
    }
}

/// A size in bytes: `8 B`, `1 KiB`, `64 KiB`.
pub fn format_size(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} B")
    }
}

/// A ratio: `1.32×`, `215×`.
pub fn format_ratio(ratio: f64) -> String {
    if !ratio.is_finite() {
        "-".into()
    } else if ratio >= 100.0 {
        format!("{ratio:.0}×")
    } else if ratio >= 10.0 {
        format!("{ratio:.1}×")
    } else {
        format!("{ratio:.2}×")
    }
}

fn si(value: f64) -> (f64, &'static str) {
    if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    }
}

fn sig3(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A table printed as aligned text or as Markdown. The first column (or the
/// first [`left`](Table::left) columns) is left-aligned, the others
/// right-aligned.
///
/// ```
/// use ipc_benches::table::Table;
/// let mut t = Table::new(&["size", "p50"]);
/// t.row(["8 B".to_string(), "183 ns".to_string()]);
/// assert!(t.markdown().contains("| 8 B  | 183 ns |"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    /// An empty table with these column headings.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: 1,
        }
    }

    /// Left-aligns the first `n` columns (labels); the rest are numbers.
    pub fn left(mut self, n: usize) -> Table {
        self.left = n;
        self
    }

    /// Appends a row (missing cells print empty).
    pub fn row(&mut self, cells: impl IntoIterator<Item = String>) {
        self.rows.push(cells.into_iter().collect());
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i >= widths.len() {
                    widths.push(0);
                }
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        widths
    }

    fn line(&self, cells: &[String], widths: &[usize], sep: &str, edge: bool) -> String {
        let mut out = String::new();
        if edge {
            out.push_str("| ");
        }
        for (i, width) in widths.iter().enumerate() {
            let cell = cells.get(i).map(String::as_str).unwrap_or("");
            let pad = width.saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str(sep);
            }
            if i < self.left {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        if edge {
            out.push_str(" |");
        }
        out.trim_end_matches(' ').to_string()
    }

    /// Aligned plain text with a rule under the heading.
    pub fn text(&self) -> String {
        let widths = self.widths();
        let mut out = self.line(&self.header, &widths, "  ", false);
        out.push('\n');
        let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        out.push_str(&"-".repeat(total));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&self.line(row, &widths, "  ", false));
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table.
    pub fn markdown(&self) -> String {
        let widths: Vec<usize> = self.widths().into_iter().map(|w| w.max(3)).collect();
        let mut out = self.line(&self.header, &widths, " | ", true);
        out.push('\n');
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i < self.left {
                    "-".repeat(*w)
                } else {
                    format!("{}:", "-".repeat(w - 1))
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&self.line(row, &widths, " | ", true));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_ns(183.4), "183 ns");
        assert_eq!(format_ns(41_230.0), "41.2 µs");
        assert_eq!(format_rate(52_300_000.0), "52.3 M/s");
        assert_eq!(format_size(65536), "64 KiB");
        assert_eq!(format_size(8), "8 B");
        assert_eq!(format_ratio(1.3), "1.30×");
    }

    #[test]
    fn tables_render() {
        let mut t = Table::new(&["size", "p50"]);
        t.row(["8 B".to_string(), "183 ns".to_string()]);
        let text = t.text();
        assert!(text.contains("8 B   183 ns"), "{text}");
        let md = t.markdown();
        assert!(
            md.starts_with("| size |    p50 |\n| ---- | -----: |\n"),
            "{md}"
        );
        assert!(md.contains("| 8 B  | 183 ns |"), "{md}");
    }
}
