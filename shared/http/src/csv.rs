//! CSV for statements people open in a spreadsheet.

/// One CSV row (RFC 4180): a cell with a comma, quote or line break is quoted, quotes doubled;
/// a cell that a spreadsheet would run as a formula is prefixed with `'`.
pub fn csv_row(cells: &[&str]) -> String {
    let cell = |text: &str| {
        let text = if text.starts_with(['=', '+', '@'])
            || (text.starts_with('-') && text.parse::<f64>().is_err())
        {
            format!("'{text}")
        } else {
            text.to_owned()
        };
        if text.contains([',', '"', '\r', '\n']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text
        }
    };
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::csv_row as row;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(
            row(&["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(
            row(&["=SUM(A1)", "-2.50", "-cmd"]),
            "'=SUM(A1),-2.50,'-cmd\r\n"
        );
    }
}
