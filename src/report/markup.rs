//! The report's document model and its two renderings: cells, tables and blocks, written
//! out as self-contained HTML (charts inlined as SVG) and as a Markdown twin (charts
//! referenced as the files beside it). Also the number formats every section shares.

use std::fmt::Write as _;

use super::charts::Chart;
use crate::analysis::CegRow;

// ---------------------------------------------------------------------------------------------
// Formatting

pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// `rope`, `s1` → `src-rope-s1` (letters, digits and `-` only).
pub fn anchor(variant: &str, scale: &str) -> String {
    let slug = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("src-{}--{}", slug(variant), slug(scale))
}

pub(super) fn ceg(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

pub(super) fn interval_text(row: &CegRow) -> Option<String> {
    row.interval
        .map(|i| format!("[{}, {}]", ceg(i.low), ceg(i.high)))
}

pub(super) fn flops(x: f64) -> String {
    format!("{x:.2e}")
}

/// Minimal inline markup → HTML: `**bold**`, `` `code` ``, `[text](href)`; the rest escaped.
pub(super) fn inline_html(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("**")
            && let Some(end) = r.find("**")
        {
            let _ = write!(out, "<strong>{}</strong>", inline_html(&r[..end]));
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('`')
            && let Some(end) = r.find('`')
        {
            let _ = write!(out, "<code>{}</code>", esc(&r[..end]));
            rest = &r[end + 1..];
            continue;
        }
        if let Some(r) = rest.strip_prefix('[')
            && let Some(close) = r.find("](")
            && let Some(end) = r[close + 2..].find(')')
        {
            let label = &r[..close];
            let href = &r[close + 2..close + 2 + end];
            let _ = write!(out, "<a href=\"{}\">{}</a>", esc(href), inline_html(label));
            rest = &r[close + 3 + end..];
            continue;
        }
        let c = rest.chars().next().expect("non-empty");
        out.push_str(&esc(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Document model

#[derive(Default, Clone)]
pub(super) struct Cell {
    pub(super) text: String,
    /// Second line in HTML (an interval); appended after a space in Markdown.
    pub(super) sub: Option<String>,
    pub(super) href: Option<String>,
    /// Tooltip in HTML.
    pub(super) title: Option<String>,
    pub(super) class: Option<&'static str>,
    /// A colour swatch before the text (variant names).
    pub(super) swatch: Option<String>,
}

impl Cell {
    pub(super) fn text(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            ..Cell::default()
        }
    }

    pub(super) fn html(&self, tag: &str) -> String {
        let mut attrs = String::new();
        if let Some(class) = self.class {
            let _ = write!(attrs, " class=\"{class}\"");
        }
        if let Some(title) = &self.title {
            let _ = write!(attrs, " title=\"{}\"", esc(title));
        }
        let mut body = String::new();
        if let Some(colour) = &self.swatch {
            let _ = write!(
                body,
                "<span class=\"swatch\" style=\"background:{colour}\"></span>"
            );
        }
        let text = inline_html(&self.text);
        match &self.href {
            Some(href) => {
                let _ = write!(body, "<a href=\"{}\">{text}</a>", esc(href));
            }
            None => body.push_str(&text),
        }
        if let Some(sub) = &self.sub {
            let _ = write!(body, "<br><span class=\"ci\">{}</span>", esc(sub));
        }
        format!("<{tag}{attrs}>{body}</{tag}>")
    }

    pub(super) fn markdown(&self) -> String {
        let mut text = match &self.href {
            Some(href) => format!("[{}]({href})", self.text),
            None => self.text.clone(),
        };
        if let Some(sub) = &self.sub {
            text.push(' ');
            text.push_str(sub);
        }
        md_cell(&text)
    }
}

pub(super) struct Table {
    /// Column groups above the header (HTML only): (label, span).
    pub(super) groups: Option<Vec<(String, usize)>>,
    /// Header in HTML.
    pub(super) columns: Vec<String>,
    /// Header in Markdown (group label folded in); defaults to `columns`.
    pub(super) md_columns: Option<Vec<String>>,
    pub(super) rows: Vec<Vec<Cell>>,
    pub(super) class: &'static str,
}

impl Table {
    pub(super) fn html(&self) -> String {
        let mut out = format!(
            "<div class=\"scroll\"><table class=\"{}\">\n<thead>\n",
            self.class
        );
        if let Some(groups) = &self.groups {
            out.push_str("<tr>");
            for (label, span) in groups {
                let _ = write!(
                    out,
                    "<th colspan=\"{span}\" class=\"group\">{}</th>",
                    inline_html(label)
                );
            }
            out.push_str("</tr>\n");
        }
        out.push_str("<tr>");
        for c in &self.columns {
            let _ = write!(out, "<th>{}</th>", inline_html(c));
        }
        out.push_str("</tr>\n</thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                out.push_str(&cell.html(if i == 0 { "th" } else { "td" }));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table></div>\n");
        out
    }

    pub(super) fn markdown(&self) -> String {
        let columns = self.md_columns.as_ref().unwrap_or(&self.columns);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {} |",
            columns
                .iter()
                .map(|c| md_cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            out,
            "|{}",
            columns
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} |",
                row.iter()
                    .map(Cell::markdown)
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        out
    }
}

pub(super) enum Block {
    Heading { level: u8, text: String, id: String },
    Para(String),
    List(Vec<(Option<String>, String)>),
    Table(Table),
    Figure(usize),
}

pub(super) fn heading(level: u8, text: &str, id: &str) -> Block {
    Block::Heading {
        level,
        text: text.into(),
        id: id.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Content

pub(super) const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1240px;margin:24px auto;padding:0 16px;color:#1a1a1a;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.3em}h2{margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
code{font-size:.92em;background:#f3f3f3;padding:0 3px;border-radius:3px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:.6em 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d8d8d8;padding:4px 7px;text-align:right;vertical-align:top}
tbody th{text-align:left;white-space:nowrap;font-weight:normal}
thead th{background:#f4f4f4}th.group{text-align:center}
table.dependence td:last-child,table.combined td:last-child{text-align:left;max-width:380px;font-size:12px}
td .ci{color:#555;font-size:11.5px;white-space:nowrap}
td.good{background:#e3f4e1}td.bad{background:#fbe3e1}td.neutral{background:#f0f0f0}td.refused{color:#999}td.indicative{font-style:italic;color:#555}
td.dependent{background:#fff1d6}td.independent{background:#e4eefb}
td a{color:inherit;text-decoration:none;border-bottom:1px dotted #888}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;vertical-align:baseline}
figure{margin:1.2em 0}figure svg{width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#444}
li{margin:.35em 0}li[id]{font-size:13px}
:target{background:#fff7c2}
";

pub(super) fn html(blocks: &[Block], title: &str, charts: &[Chart]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        esc(title)
    );
    for block in blocks {
        match block {
            Block::Heading { level, text, id } => {
                let _ = writeln!(
                    out,
                    "<h{level} id=\"{id}\">{}</h{level}>",
                    inline_html(text)
                );
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", inline_html(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for (id, text) in items {
                    match id {
                        Some(id) => {
                            let _ = writeln!(out, "<li id=\"{id}\">{}</li>", inline_html(text));
                        }
                        None => {
                            let _ = writeln!(out, "<li>{}</li>", inline_html(text));
                        }
                    }
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => out.push_str(&t.html()),
            Block::Figure(i) => {
                if let Some(chart) = charts.get(*i) {
                    let svg = chart
                        .svg
                        .trim_start()
                        .strip_prefix("<?xml")
                        .and_then(|s| s.split_once("?>").map(|(_, rest)| rest))
                        .unwrap_or(&chart.svg)
                        .trim();
                    let _ = write!(
                        out,
                        "<figure id=\"fig-{}\">\n<h3>{}</h3>\n{svg}\n<figcaption>{} (Also {}.png and {}.svg beside this page.)</figcaption>\n</figure>\n",
                        chart.name,
                        esc(&chart.title),
                        esc(&chart.description),
                        chart.name,
                        chart.name
                    );
                }
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

pub(super) fn markdown(blocks: &[Block], charts: &[Chart]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading { level, text, .. } => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(*level as usize));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::List(items) => {
                for (id, text) in items {
                    match id {
                        Some(id) => {
                            let _ = writeln!(out, "- <a id=\"{id}\"></a>{text}");
                        }
                        None => {
                            let _ = writeln!(out, "- {text}");
                        }
                    }
                }
                out.push('\n');
            }
            Block::Table(t) => {
                out.push_str(&t.markdown());
                out.push('\n');
            }
            Block::Figure(i) => {
                if let Some(chart) = charts.get(*i) {
                    let _ = writeln!(
                        out,
                        "### {}\n\n![{}]({}.svg)\n\n{} ([PNG]({}.png))\n",
                        chart.title, chart.title, chart.name, chart.description, chart.name
                    );
                }
            }
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}
