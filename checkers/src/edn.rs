//! A small EDN reader, enough for Jepsen's own `history.edn` files (list-append
//! and register workloads), so `rollcall check` can check histories recorded by
//! Jepsen too (harness.md §6 uses Jepsen's fields). Hand-written: it must never
//! panic, whatever the bytes, and its errors carry the line.

use serde_json::{Map, Value};

use crate::history::{Event, History, HistoryError, OpType, Process};

/// Nesting deeper than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 200;

/// An EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    /// `nil`
    Nil,
    /// `true` / `false`
    Bool(bool),
    /// An integer that fits i64.
    Int(i64),
    /// A floating point number (also ratios and bigdecimals, approximately).
    Float(f64),
    /// `"..."`
    Str(String),
    /// `:name` (stored without the colon).
    Keyword(String),
    /// A bare symbol.
    Symbol(String),
    /// `\c`
    Char(String),
    /// `[...]`
    Vector(Vec<Edn>),
    /// `(...)`
    List(Vec<Edn>),
    /// `#{...}`
    Set(Vec<Edn>),
    /// `{...}` with the line it starts on.
    Map(Vec<(Edn, Edn)>, usize),
    /// `#tag value`, e.g. `#jepsen.history.Op{...}`.
    Tagged(String, Box<Edn>),
}

/// Why EDN could not be read, with the 1-based line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: EDN: {msg}")]
pub struct EdnError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

impl<'a> Parser<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, EdnError> {
        Err(EdnError {
            line: self.line,
            msg: msg.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    fn skip_ws(&mut self) {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.bump();
                }
            } else {
                break;
            }
        }
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delim(b) {
                break;
            }
            self.bump();
        }
        self.text.get(start..self.pos).unwrap_or("")
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, EdnError> {
        let mut out = Vec::new();
        let open_line = self.line;
        loop {
            self.skip_ws();
            match self.peek() {
                None => {
                    return Err(EdnError {
                        line: open_line,
                        msg: format!("unclosed collection (expected '{}')", close as char),
                    })
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(out);
                }
                Some(b')' | b']' | b'}') => {
                    return self.err(format!(
                        "mismatched closing delimiter (expected '{}')",
                        close as char
                    ))
                }
                Some(_) => {
                    if let Some(v) = self.value(depth + 1)? {
                        out.push(v);
                    }
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, EdnError> {
        let start_line = self.line;
        let mut out = String::new();
        let mut start = self.pos;
        loop {
            match self.peek() {
                None => {
                    return Err(EdnError {
                        line: start_line,
                        msg: "unterminated string".into(),
                    })
                }
                Some(b'"') => {
                    out.push_str(self.text.get(start..self.pos).unwrap_or(""));
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(self.text.get(start..self.pos).unwrap_or(""));
                    self.bump();
                    match self.bump() {
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'u') => {
                            let hex = self.text.get(self.pos..self.pos + 4).unwrap_or("");
                            let c = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                            match c {
                                Some(c) if hex.len() == 4 => {
                                    out.push(c);
                                    self.pos += 4;
                                }
                                _ => return self.err("bad \\u escape in string"),
                            }
                        }
                        _ => return self.err("bad escape in string"),
                    }
                    start = self.pos;
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    fn atom(&self, tok: &str) -> Result<Edn, EdnError> {
        match tok {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            "" => return self.err("unexpected character"),
            _ => {}
        }
        let first = tok.as_bytes().first().copied().unwrap_or(b' ');
        let second = tok.as_bytes().get(1).copied();
        let numeric = first.is_ascii_digit()
            || ((first == b'-' || first == b'+') && second.is_some_and(|b| b.is_ascii_digit()));
        if !numeric {
            return Ok(Edn::Symbol(tok.to_string()));
        }
        let t = tok.strip_suffix('N').unwrap_or(tok);
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Edn::Int(i));
        }
        let t = tok.strip_suffix('M').unwrap_or(tok);
        if let Some((a, b)) = t.split_once('/') {
            if let (Ok(a), Ok(b)) = (a.parse::<f64>(), b.parse::<f64>()) {
                return Ok(Edn::Float(a / b));
            }
        }
        match t.parse::<f64>() {
            Ok(f) if t.contains(['.', 'e', 'E']) => Ok(Edn::Float(f)),
            _ => self.err(format!("invalid number {tok:?}")),
        }
    }

    /// One value; `None` for a discarded `#_` form.
    fn value(&mut self, depth: usize) -> Result<Option<Edn>, EdnError> {
        if depth > MAX_DEPTH {
            return self.err("nesting too deep");
        }
        self.skip_ws();
        let line = self.line;
        let Some(b) = self.peek() else {
            return self.err("unexpected end of input");
        };
        let v = match b {
            b'[' => {
                self.bump();
                Edn::Vector(self.seq(b']', depth)?)
            }
            b'(' => {
                self.bump();
                Edn::List(self.seq(b')', depth)?)
            }
            b'{' => {
                self.bump();
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(EdnError {
                        line,
                        msg: "map with an odd number of forms".into(),
                    });
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Edn::Map(pairs, line)
            }
            b')' | b']' | b'}' => return self.err(format!("unexpected '{}'", b as char)),
            b'"' => {
                self.bump();
                Edn::Str(self.string()?)
            }
            b':' => {
                self.bump();
                let t = self.token();
                if t.is_empty() {
                    return self.err("empty keyword");
                }
                Edn::Keyword(t.to_string())
            }
            b'\\' => {
                self.bump();
                let mut t = self.token().to_string();
                if t.is_empty() {
                    // a delimiter character like \( or \space-less \"
                    match self.bump() {
                        Some(c) => t.push(c as char),
                        None => return self.err("bad character literal"),
                    }
                }
                Edn::Char(match t.as_str() {
                    "newline" => "\n".into(),
                    "space" => " ".into(),
                    "tab" => "\t".into(),
                    _ => t,
                })
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        Edn::Set(self.seq(b'}', depth)?)
                    }
                    Some(b'_') => {
                        self.bump();
                        self.value(depth + 1)?;
                        return Ok(None);
                    }
                    Some(b'"') => {
                        self.bump();
                        Edn::Str(self.string()?)
                    }
                    _ => {
                        let tag = self.token().to_string();
                        if tag.is_empty() {
                            return self.err("bad dispatch '#'");
                        }
                        let inner = loop {
                            match self.value(depth + 1)? {
                                Some(v) => break v,
                                None => continue,
                            }
                        };
                        Edn::Tagged(tag, Box::new(inner))
                    }
                }
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    self.bump();
                    return self.err(format!("unexpected character {:?}", b as char));
                }
                self.atom(t)?
            }
        };
        Ok(Some(v))
    }
}

/// Parse every top-level form, each with the line it starts on.
pub fn parse_all(text: &str) -> Result<Vec<(usize, Edn)>, EdnError> {
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.peek().is_none() {
            return Ok(out);
        }
        let line = p.line;
        if let Some(v) = p.value(0)? {
            out.push((line, v));
        }
    }
}

impl Edn {
    /// The JSON rendering used for op values: keywords and symbols become
    /// strings without the colon, all sequences become arrays, map keys strings.
    pub fn to_json(&self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) | Edn::Char(s) => {
                Value::String(s.clone())
            }
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(Edn::to_json).collect())
            }
            Edn::Map(pairs, _) => {
                // Jepsen's independent tuples as records: {:key k :value v}.
                let mut m = Map::new();
                for (k, v) in pairs {
                    let key = match k {
                        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                        other => other.to_json().to_string(),
                    };
                    m.insert(key, v.to_json());
                }
                Value::Object(m)
            }
            Edn::Tagged(tag, v) => {
                if tag.ends_with("Tuple") {
                    if let Edn::Map(pairs, _) = v.as_ref() {
                        let get = |name: &str| {
                            pairs
                                .iter()
                                .find(|(k, _)| *k == Edn::Keyword(name.into()))
                                .map(|(_, v)| v.to_json())
                        };
                        if let (Some(k), Some(x)) = (get("key"), get("value")) {
                            return Value::Array(vec![k, x]);
                        }
                    }
                }
                v.to_json()
            }
        }
    }
}

fn name_of(e: &Edn) -> Option<String> {
    match e {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => Some(s.clone()),
        _ => None,
    }
}

fn describe(e: &Edn) -> String {
    let s = e.to_json().to_string();
    s.chars().take(40).collect()
}

/// Register values in the harness form `[key, v]` (harness.md §6): Jepsen's
/// independent tuples already are; a single register (`:value 3`, cas
/// `[old new]`) gets key "0".
fn normalise_register(f: &str, v: Value) -> Value {
    let is_pair = |v: &Value| v.as_array().is_some_and(|a| a.len() == 2);
    let independent = match f {
        "cas" => v
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.get(1).is_some_and(is_pair)),
        _ => is_pair(&v),
    };
    if independent {
        v
    } else {
        Value::Array(vec![Value::from("0"), v])
    }
}

fn map_to_event(line: usize, pairs: &[(Edn, Edn)], next_index: u64) -> Result<Event, HistoryError> {
    let mut fields: Vec<(String, &Edn)> = Vec::new();
    for (k, v) in pairs {
        if let Some(n) = name_of(k) {
            fields.push((n, v));
        }
    }
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let wrong = |field: &'static str, expected: &'static str, e: &Edn| HistoryError::WrongType {
        line,
        field,
        expected,
        found: describe(e),
    };
    let index = match get("index") {
        None => next_index,
        Some(Edn::Int(i)) if *i >= 0 => *i as u64,
        Some(e) => return Err(wrong("index", "a non-negative integer", e)),
    };
    let time = match get("time") {
        None => 0,
        Some(Edn::Int(i)) if *i >= 0 => *i as u64,
        Some(e) => return Err(wrong("time", "a non-negative integer (ns)", e)),
    };
    let process = match get("process") {
        None => {
            return Err(HistoryError::MissingField {
                line,
                field: "process",
            })
        }
        Some(Edn::Int(i)) => Process::Client(*i),
        Some(e) if name_of(e).as_deref() == Some("nemesis") => Process::Nemesis,
        Some(e) => return Err(wrong("process", "an integer or :nemesis", e)),
    };
    let kind = match get("type") {
        None => {
            return Err(HistoryError::MissingField {
                line,
                field: "type",
            })
        }
        Some(e) => match name_of(e).as_deref() {
            Some("invoke") => OpType::Invoke,
            Some("ok") => OpType::Ok,
            Some("fail") => OpType::Fail,
            Some("info") => OpType::Info,
            _ => return Err(wrong("type", ":invoke, :ok, :fail or :info", e)),
        },
    };
    let f = match get("f") {
        None => return Err(HistoryError::MissingField { line, field: "f" }),
        Some(e) => name_of(e).ok_or_else(|| wrong("f", "a keyword", e))?,
    };
    let mut value = get("value").map(Edn::to_json).unwrap_or(Value::Null);
    if process != Process::Nemesis && matches!(f.as_str(), "read" | "write" | "cas") {
        value = normalise_register(&f, value);
    }
    let node = get("node").and_then(|e| match e.to_json() {
        Value::String(s) => Some(s),
        _ => None,
    });
    let mut extra = Map::new();
    for (k, v) in &fields {
        if !matches!(
            k.as_str(),
            "index" | "time" | "process" | "type" | "f" | "value" | "node"
        ) {
            extra.insert(k.clone(), v.to_json());
        }
    }
    Ok(Event {
        index,
        time,
        process,
        kind,
        f,
        value,
        node,
        tx_id: None,
        extra,
    })
}

/// Read a Jepsen EDN history: a sequence of op maps (`{:type :invoke, :f :txn,
/// :value [[:append 5 1] [:r 5 nil]], :process 0, :time 1, :index 0}`), or
/// `#jepsen.history.Op{...}` records, optionally wrapped in one vector.
/// Missing `:index` counts up; missing `:time` is 0.
pub fn parse_history(text: &str) -> Result<History, HistoryError> {
    let forms = parse_all(text)?;
    let mut maps: Vec<(usize, &Vec<(Edn, Edn)>)> = Vec::new();
    fn collect<'e>(
        line: usize,
        e: &'e Edn,
        out: &mut Vec<(usize, &'e Vec<(Edn, Edn)>)>,
        top: bool,
    ) -> Result<(), HistoryError> {
        match e {
            Edn::Map(p, l) => {
                out.push((*l, p));
                Ok(())
            }
            Edn::Tagged(_, inner) => collect(line, inner, out, top),
            Edn::Vector(items) | Edn::List(items) if top => {
                for i in items {
                    collect(line, i, out, false)?;
                }
                Ok(())
            }
            other => Err(HistoryError::Edn(EdnError {
                line,
                msg: format!("expected an operation map, found {}", describe(other)),
            })),
        }
    }
    for (line, f) in &forms {
        collect(*line, f, &mut maps, true)?;
    }
    let mut events = Vec::with_capacity(maps.len());
    let mut next_index = 0u64;
    for (line, pairs) in maps {
        let e = map_to_event(line, pairs, next_index)?;
        next_index = e.index.saturating_add(1);
        events.push((line, e));
    }
    History::from_lined_events(events)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_jepsen_list_append() {
        let text = r#"{:type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]], :process 0, :time 10, :index 0}
{:type :ok, :f :txn, :value [[:append 5 1] [:r 5 [1]]], :process 0, :time 20, :index 1}
; a comment
#jepsen.history.Op{:index 2, :time 30, :type :info, :process :nemesis, :f :start-partition, :value "majority"}
"#;
        let h = parse_history(text).unwrap();
        assert_eq!(h.ops().len(), 1);
        assert_eq!(
            h.ops()[0].value(),
            &json!([["append", 5, 1], ["r", 5, [1]]])
        );
        assert_eq!(h.nemesis_events().count(), 1);
        // One transaction relates to nothing: Elle says unknown
        // (empty-transaction-graph), never invalid.
        let r = crate::Checker::check(&crate::elle::ElleChecker::default(), &h);
        assert_eq!(r.validity, crate::Validity::Unknown, "{r:#?}");
    }

    #[test]
    fn reads_registers_single_and_independent() {
        let single = "[{:type :invoke :f :write :value 3 :process 0 :time 1}\n {:type :ok :f :write :value 3 :process 0 :time 2}\n {:type :invoke :f :cas :value [3 4] :process 1 :time 3}\n {:type :ok :f :cas :value [3 4] :process 1 :time 4}\n {:type :invoke :f :read :value nil :process 1 :time 5}\n {:type :ok :f :read :value 3 :process 1 :time 6}]";
        let h = parse_history(single).unwrap();
        assert_eq!(h.ops()[0].invoke_value, json!(["0", 3]));
        assert_eq!(h.ops()[1].invoke_value, json!(["0", [3, 4]]));
        assert_eq!(h.ops()[2].value(), &json!(["0", 3]));
        let lin = crate::linearizable::LinearizableChecker::default();
        // read 3 after cas 3->4 completed: not linearizable
        assert_eq!(
            crate::Checker::check(&lin, &h).validity,
            crate::Validity::Invalid
        );

        let indep = "{:type :invoke :f :cas :value [7 [nil 1]] :process 0 :index 0}\n{:type :ok :f :cas :value [7 [nil 1]] :process 0 :index 1}\n{:type :invoke :f :read :value [7 nil] :process 0 :index 2}\n{:type :ok :f :read :value [7 1] :process 0 :index 3}\n";
        let h = parse_history(indep).unwrap();
        assert_eq!(h.ops()[0].invoke_value, json!([7, [null, 1]]));
        assert_eq!(
            crate::Checker::check(&lin, &h).validity,
            crate::Validity::Valid
        );
    }

    #[test]
    fn parses_edn_scalars_and_reports_lines() {
        let forms =
            parse_all("#{1 2} \"a\\nb\" \\c :k/w 1.5 -3 2N 1/2 #_ [ignored] sym #inst \"2020\"")
                .unwrap();
        let vals: Vec<Edn> = forms.into_iter().map(|(_, e)| e).collect();
        assert_eq!(vals[0], Edn::Set(vec![Edn::Int(1), Edn::Int(2)]));
        assert_eq!(vals[1], Edn::Str("a\nb".into()));
        assert_eq!(vals[2], Edn::Char("c".into()));
        assert_eq!(vals[3], Edn::Keyword("k/w".into()));
        assert_eq!(vals[4], Edn::Float(1.5));
        assert_eq!(vals[5], Edn::Int(-3));
        assert_eq!(vals[6], Edn::Int(2));
        assert_eq!(vals[7], Edn::Float(0.5));
        assert_eq!(vals[8], Edn::Symbol("sym".into()));
        assert!(matches!(vals[9], Edn::Tagged(ref t, _) if t == "inst"));

        assert_eq!(parse_all("{:a 1}\n{:b [1 2}").unwrap_err().line, 2);
        assert_eq!(parse_all("\n\n{:a 1").unwrap_err().line, 3);
        assert_eq!(
            parse_all("{:a}").unwrap_err().msg,
            "map with an odd number of forms"
        );
        let deep = "[".repeat(10_000);
        assert!(parse_all(&deep).unwrap_err().msg.contains("too deep"));
        let e = parse_history("{:type :ok :f :txn :value [] :process 0}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: ok on process 0 without a prior invoke"
        );
        let e = parse_history("{:type :invoke :f :txn :value []}\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: missing field `process`");
    }
}
