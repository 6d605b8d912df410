//! JUnit XML for CI dashboards (issue 16, nightly use): `rollcall test --junit FILE`
//! writes one `<testsuite>` per run with one `<testcase>` per checker, and
//! `rollcall explore --junit FILE` one `<testsuite>` with one `<testcase>` per case.
//! Invalid is a `<failure>`, unknown an `<error>` (the check could not decide), the
//! way the common JUnit schema (Jenkins' and GitLab's reading of Ant's) expects.
//! Written with `quick-xml`, so escaping is never hand-rolled.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use rollcall_checkers::Validity;
use std::path::Path;

/// One test case: a checker of a run, or a case of an exploration.
#[derive(Clone, Debug)]
pub struct Case {
    /// The case's name (a checker, or "case 3 (seed ...)").
    pub name: String,
    /// Seconds it took.
    pub secs: f64,
    /// Its verdict.
    pub validity: Validity,
    /// What to show for a failure or an error.
    pub message: String,
}

/// One suite: a run, or an exploration.
#[derive(Clone, Debug)]
pub struct Suite {
    /// The suite's name (the run folder, or "explore seed N").
    pub name: String,
    /// Its cases.
    pub cases: Vec<Case>,
}

impl Suite {
    fn count(&self, v: Validity) -> usize {
        self.cases.iter().filter(|c| c.validity == v).count()
    }
}

/// The XML document for `suites`.
pub fn render(suites: &[Suite]) -> Result<String, quick_xml::Error> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let total: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(|s| s.count(Validity::Invalid)).sum();
    let errors: usize = suites.iter().map(|s| s.count(Validity::Unknown)).sum();
    let mut root = BytesStart::new("testsuites");
    root.push_attribute(("name", "rollcall"));
    root.push_attribute(("tests", total.to_string().as_str()));
    root.push_attribute(("failures", failures.to_string().as_str()));
    root.push_attribute(("errors", errors.to_string().as_str()));
    w.write_event(Event::Start(root))?;
    for s in suites {
        suite(&mut w, s)?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    Ok(String::from_utf8_lossy(&w.into_inner()).into_owned())
}

fn suite(w: &mut Writer<Vec<u8>>, s: &Suite) -> Result<(), quick_xml::Error> {
    let secs: f64 = s.cases.iter().map(|c| c.secs).sum();
    let mut el = BytesStart::new("testsuite");
    el.push_attribute(("name", s.name.as_str()));
    el.push_attribute(("tests", s.cases.len().to_string().as_str()));
    el.push_attribute(("failures", s.count(Validity::Invalid).to_string().as_str()));
    el.push_attribute(("errors", s.count(Validity::Unknown).to_string().as_str()));
    el.push_attribute(("skipped", "0"));
    el.push_attribute(("time", format!("{secs:.3}").as_str()));
    w.write_event(Event::Start(el))?;
    for c in &s.cases {
        let mut tc = BytesStart::new("testcase");
        tc.push_attribute(("name", c.name.as_str()));
        tc.push_attribute(("classname", s.name.as_str()));
        tc.push_attribute(("time", format!("{:.3}", c.secs).as_str()));
        let tag = match c.validity {
            Validity::Valid => {
                w.write_event(Event::Empty(tc))?;
                continue;
            }
            Validity::Invalid => "failure",
            Validity::Unknown => "error",
        };
        w.write_event(Event::Start(tc))?;
        let mut f = BytesStart::new(tag);
        f.push_attribute(("message", c.message.as_str()));
        f.push_attribute((
            "type",
            if tag == "failure" {
                "invalid"
            } else {
                "unknown"
            },
        ));
        w.write_event(Event::Start(f))?;
        w.write_event(Event::Text(BytesText::new(&c.message)))?;
        w.write_event(Event::End(BytesEnd::new(tag)))?;
        w.write_event(Event::End(BytesEnd::new("testcase")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    Ok(())
}

/// Writes `suites` to `path`.
pub fn write(path: &Path, suites: &[Suite]) -> Result<(), String> {
    let xml = render(suites).map_err(|e| format!("junit: {e}"))?;
    std::fs::write(path, xml).map_err(|e| format!("{}: {e}", path.display()))
}

/// The suite of one stored run: one case per checker.
pub fn run_suite(name: &str, results: &crate::checks::Results) -> Suite {
    Suite {
        name: name.to_string(),
        cases: results
            .results
            .iter()
            .map(|r| Case {
                name: r.checker.clone(),
                secs: r.elapsed_ms / 1000.0,
                validity: r.validity,
                message: r.summary.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    /// (element name, attributes) of every start/empty element, in order.
    fn elements(xml: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut r = Reader::from_str(xml);
        let mut out = Vec::new();
        loop {
            match r.read_event().expect("well-formed XML") {
                Event::Start(e) | Event::Empty(e) => {
                    let attrs = e
                        .attributes()
                        .map(|a| {
                            let a = a.expect("attribute");
                            let v = a.unescape_value().expect("value").into_owned();
                            (String::from_utf8_lossy(a.key.as_ref()).into_owned(), v)
                        })
                        .collect();
                    out.push((
                        String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                        attrs,
                    ));
                }
                Event::Eof => return out,
                _ => {}
            }
        }
    }

    fn attr<'a>(e: &'a (String, Vec<(String, String)>), k: &str) -> &'a str {
        e.1.iter()
            .find(|(n, _)| n == k)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn counts_and_outcomes_follow_the_schema() {
        let s = Suite {
            name: "store/x/1 <seed 7>".into(),
            cases: vec![
                Case {
                    name: "set".into(),
                    secs: 0.5,
                    validity: Validity::Valid,
                    message: String::new(),
                },
                Case {
                    name: "elle-append".into(),
                    secs: 1.0,
                    validity: Validity::Invalid,
                    message: "G1c: T1 -> T2 & \"x\"".into(),
                },
                Case {
                    name: "liveness".into(),
                    secs: 0.0,
                    validity: Validity::Unknown,
                    message: "no heal".into(),
                },
            ],
        };
        let xml = render(&[s]).unwrap();
        let els = elements(&xml);
        assert_eq!(els[0].0, "testsuites");
        assert_eq!(
            (
                attr(&els[0], "tests"),
                attr(&els[0], "failures"),
                attr(&els[0], "errors")
            ),
            ("3", "1", "1")
        );
        assert_eq!(els[1].0, "testsuite");
        assert_eq!(attr(&els[1], "name"), "store/x/1 <seed 7>");
        assert_eq!(attr(&els[1], "time"), "1.500");
        let names: Vec<&str> = els.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "testsuites",
                "testsuite",
                "testcase",
                "testcase",
                "failure",
                "testcase",
                "error"
            ]
        );
        assert_eq!(attr(&els[4], "message"), "G1c: T1 -> T2 & \"x\"");
        assert_eq!(attr(&els[3], "classname"), "store/x/1 <seed 7>");
    }
}
