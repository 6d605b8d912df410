//! HTML escaping. Everything that comes from a run's files is escaped before it
//! reaches the page (a history value or a node log may contain anything), so a
//! report can never run script from its inputs (harness.md §8).

use std::fmt::Write;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// Escape `s` onto `out` without an intermediate allocation (the timeline
/// escapes many thousands of small strings).
pub fn escape_into(out: &mut String, s: &str) {
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
}

/// Shorten `s` to at most `max` characters, marking the cut, so one huge value
/// cannot blow up the page.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max).collect();
    let _ = write!(t, "… ({} chars)", s.chars().count());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(truncate("abcdef", 3), "abc… (6 chars)");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
