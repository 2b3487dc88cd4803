//! CSV that a spreadsheet opens without running anything: every export goes through [`Writer`].
//!
//! Excel, LibreOffice and Google Sheets treat a cell that starts with `=`, `+`, `-` or `@` as
//! a formula (`=HYPERLINK(…)`, `=cmd|…`), and some also after a leading tab or carriage return.
//! A registered name is chosen by whoever registers, so such a cell gets a leading `'`, as the
//! OWASP advice on CSV injection says: shown as text, the name stays readable. A cell that is a
//! plain number (`-0.5`) is no formula and is left as it is.

use std::borrow::Cow;

/// The cell as a spreadsheet will show it as text.
pub fn cell(value: &str) -> Cow<'_, str> {
    let starts_formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if starts_formula && !is_plain_number(value) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

/// `-12`, `+0.5`, `-1e3`: what a spreadsheet reads as a number, never as a formula.
fn is_plain_number(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        && value.parse::<f64>().is_ok_and(f64::is_finite)
}

/// A CSV writer whose every cell is made safe by [`cell`].
pub struct Writer<W: std::io::Write>(csv::Writer<W>);

impl<W: std::io::Write> Writer<W> {
    pub fn new(out: W) -> Self {
        Writer(csv::Writer::from_writer(out))
    }

    pub fn row<I, S>(&mut self, cells: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| cell(c.as_ref()).into_owned())
            .collect();
        self.0.write_record(&cells)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote_and_numbers_and_text_do_not() {
        for (given, shown) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("-", "'-"),
            ("-inf", "'-inf"),
            ("Ada", "Ada"),
            ("O'Brien", "O'Brien"),
            ("a=b", "a=b"),
            ("", ""),
            ("-0.5", "-0.5"),
            ("+3", "+3"),
            ("2026-11-24T08:59:01Z", "2026-11-24T08:59:01Z"),
        ] {
            assert_eq!(cell(given), shown, "{given:?}");
        }
    }

    #[test]
    fn the_writer_quotes_every_cell_it_writes() {
        let mut out = Vec::new();
        let mut w = Writer::new(&mut out);
        w.row(["=1", "x,y", "@a"]).unwrap();
        w.flush().unwrap();
        drop(w);
        assert_eq!(String::from_utf8(out).unwrap(), "'=1,\"x,y\",'@a\n");
    }
}
