//! A small EDN reader, enough for Jepsen's own `history.edn` files (list-append
//! and register workloads), so `rollcall check` can check histories recorded by
//! Jepsen too (harness.md §6 uses Jepsen's fields). Hand-written: it must never
//! panic, whatever the bytes, and its errors carry the line.

use serde_json::{Map, Value};

use crate::history::{Event, History, HistoryError, OpType, Pairing, Process};

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
        // Clojure prints object hashes in hex (`#object[Foo 0x1f2e "..."]` in `:error`).
        let (sign, digits) = match t.strip_prefix('-') {
            Some(rest) => (-1, rest),
            None => (1, t.strip_prefix('+').unwrap_or(t)),
        };
        if let Some(hex) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            if let Ok(i) = i64::from_str_radix(hex, 16) {
                return Ok(Edn::Int(sign * i));
            }
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
                    Some(b'#') => {
                        // Clojure's symbolic values ##Inf, ##-Inf, ##NaN.
                        self.bump();
                        match self.token() {
                            "Inf" => Edn::Float(f64::INFINITY),
                            "-Inf" => Edn::Float(f64::NEG_INFINITY),
                            "NaN" => Edn::Float(f64::NAN),
                            other => return self.err(format!("unknown symbolic value ##{other}")),
                        }
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

/// How EDN scalars become JSON strings. Client operation values use [`Strings::Exact`],
/// which is one-to-one (issue 15: `:x` and `"x"` must not collide):
///
/// * a keyword `:x` or symbol `x` becomes `"x"`: Jepsen's keys, micro-op names and
///   enum-like values are keywords, so `[:r :x nil]` reads `["r","x",null]`;
/// * a string `"x"` keeps its EDN quotes, `"\"x\""` (escaped as JSON escapes it), so
///   it can never equal a keyword's name (a keyword cannot contain `"`);
/// * a character `\c` becomes `"\\c"`.
///
/// Nemesis values and extra fields use [`Strings::Plain`] (every string-like form
/// becomes its bare text): they are only displayed, and readable beats exact there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strings {
    /// One-to-one: strings keep their quotes, characters their backslash.
    Exact,
    /// Bare text for every string-like form.
    Plain,
}

impl Edn {
    /// The JSON rendering used for op values (see [`Strings`] for how strings,
    /// keywords and characters map): sequences become arrays, map keys strings,
    /// Jepsen's independent tuples `[key value]`.
    pub fn to_json(&self, strings: Strings) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => Value::from(*i),
            Edn::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Str(s) => Value::String(match strings {
                Strings::Exact => Value::from(s.as_str()).to_string(),
                Strings::Plain => s.clone(),
            }),
            Edn::Char(c) => Value::String(match strings {
                Strings::Exact => format!("\\{c}"),
                Strings::Plain => c.clone(),
            }),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Value::Array(v.iter().map(|e| e.to_json(strings)).collect())
            }
            Edn::Map(pairs, _) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    let key = match k.to_json(strings) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    m.insert(key, v.to_json(strings));
                }
                Value::Object(m)
            }
            Edn::Tagged(tag, v) => tuple(tag, v, strings).unwrap_or_else(|| v.to_json(strings)),
        }
    }
}

/// Jepsen's `#jepsen.independent.Tuple{:key k :value v}` as the harness's `[k, v]`.
fn tuple(tag: &str, v: &Edn, strings: Strings) -> Option<Value> {
    let Edn::Map(pairs, _) = v else { return None };
    if !tag.ends_with("Tuple") {
        return None;
    }
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == Edn::Keyword(name.into()))
            .map(|(_, v)| v.to_json(strings))
    };
    Some(Value::Array(vec![get("key")?, get("value")?]))
}

fn name_of(e: &Edn) -> Option<String> {
    match e {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => Some(s.clone()),
        _ => None,
    }
}

fn describe(e: &Edn) -> String {
    let s = e.to_json(Strings::Exact).to_string();
    s.chars().take(40).collect()
}

/// The process given to operations without `:process` (Elle's hand-written
/// histories often omit it): one implicit client, negative so it cannot clash with
/// a real Jepsen process number.
pub const IMPLICIT_PROCESS: i64 = -1;

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

/// A transaction value: a sequence of micro-ops `[f k]` or `[f k v]` with a
/// name in front (Elle's histories often leave `:f :txn` out).
fn looks_like_txn(value: Option<&Edn>) -> bool {
    let Some(Edn::Vector(mops) | Edn::List(mops)) = value else {
        return false;
    };
    !mops.is_empty()
        && mops.iter().all(|m| match m {
            Edn::Vector(x) | Edn::List(x) => {
                matches!(x.len(), 2 | 3) && x.first().and_then(name_of).is_some()
            }
            _ => false,
        })
}

/// Elle's two-element reads `[:r k]` as the harness's `["r", k, null]` (harness.md §6).
fn pad_micro_ops(value: &mut Value) {
    for mop in value.as_array_mut().into_iter().flatten() {
        if let Some(m) = mop.as_array_mut() {
            if m.len() == 2 {
                m.push(Value::Null);
            }
        }
    }
}

/// Whether any transaction appends: then the history is Elle's list-append, whose
/// `nil` read means an empty list.
fn is_list_append(events: &[Event]) -> bool {
    events.iter().any(|e| {
        e.f == "txn"
            && match e.value.micro_ops() {
                Some(mut mops) => mops.any(|m| m.f == crate::value::MopF::Append),
                None => e.value.as_array().is_some_and(|m| {
                    m.iter()
                        .any(|x| x.get(0).and_then(Value::as_str) == Some("append"))
                }),
            }
    })
}

/// Jepsen's list-append writes a read of an empty key as `[:r k nil]` in the
/// `:ok` completion; the harness writes `["r", k, []]` (harness.md §6). Made the
/// same so Elle sees the read (a `nil` would say "value unknown").
fn empty_list_reads(e: &mut Event) {
    if e.kind != OpType::Ok || e.f != "txn" {
        return;
    }
    let value = std::sync::Arc::make_mut(&mut e.value);
    if value.nil_reads_as_empty_lists() {
        return;
    }
    for m in value.json_mut().as_array_mut().into_iter().flatten() {
        if let Some([f, _, v]) = m.as_array_mut().map(Vec::as_mut_slice) {
            if f == "r" && v.is_null() {
                *v = Value::Array(Vec::new());
            }
        }
    }
}

/// The fields of one op map by name, absent and `nil` alike treated as missing.
struct Fields<'e> {
    line: usize,
    fields: Vec<(String, &'e Edn)>,
}

impl<'e> Fields<'e> {
    fn get(&self, name: &str) -> Option<&'e Edn> {
        self.fields
            .iter()
            .find(|(k, v)| k == name && **v != Edn::Nil)
            .map(|(_, v)| *v)
    }

    fn wrong(&self, field: &'static str, expected: &'static str, e: &Edn) -> HistoryError {
        HistoryError::WrongType {
            line: self.line,
            field,
            expected,
            found: describe(e),
        }
    }

    /// A non-negative integer; Jepsen's `-1` ("no time recorded") reads as 0.
    fn count(&self, field: &'static str, default: u64) -> Result<u64, HistoryError> {
        match self.get(field) {
            None => Ok(default),
            Some(Edn::Int(i)) if field == "time" => Ok(u64::try_from(*i).unwrap_or(0)),
            Some(Edn::Int(i)) if *i >= 0 => Ok(*i as u64),
            Some(e) => Err(self.wrong(field, "a non-negative integer", e)),
        }
    }

    fn process(&self) -> Result<Process, HistoryError> {
        match self.get("process") {
            None => Ok(Process::Client(IMPLICIT_PROCESS)),
            Some(Edn::Int(i)) => Ok(Process::Client(*i)),
            Some(e) if name_of(e).as_deref() == Some("nemesis") => Ok(Process::Nemesis),
            Some(e) => Err(self.wrong("process", "an integer or :nemesis", e)),
        }
    }

    fn kind(&self) -> Result<OpType, HistoryError> {
        let Some(e) = self.get("type") else {
            return Err(HistoryError::MissingField {
                line: self.line,
                field: "type",
            });
        };
        match name_of(e).as_deref() {
            Some("invoke") => Ok(OpType::Invoke),
            Some("ok") => Ok(OpType::Ok),
            Some("fail") => Ok(OpType::Fail),
            Some("info") => Ok(OpType::Info),
            _ => Err(self.wrong("type", ":invoke, :ok, :fail or :info", e)),
        }
    }

    fn f(&self) -> Result<String, HistoryError> {
        match self.get("f") {
            Some(e) => name_of(e).ok_or_else(|| self.wrong("f", "a keyword", e)),
            None if looks_like_txn(self.get("value")) => Ok("txn".into()),
            None => Err(HistoryError::MissingField {
                line: self.line,
                field: "f",
            }),
        }
    }
}

/// Fields with a place in [`Event`]; any other key is kept in `extra`.
const KNOWN: [&str; 7] = ["index", "time", "process", "type", "f", "value", "node"];

fn map_to_event(
    line: usize,
    pairs: &[(Edn, Edn)],
    next_index: u64,
    keys: &mut crate::value::Interner,
) -> Result<Event, HistoryError> {
    let fields = Fields {
        line,
        fields: pairs
            .iter()
            .filter_map(|(k, v)| Some((name_of(k)?, v)))
            .collect(),
    };
    let process = fields.process()?;
    let f = fields.f()?;
    let strings = match process {
        Process::Nemesis => Strings::Plain,
        Process::Client(_) => Strings::Exact,
    };
    let mut value = fields
        .get("value")
        .map_or(Value::Null, |v| v.to_json(strings));
    if process != Process::Nemesis {
        match f.as_str() {
            "read" | "write" | "cas" => value = normalise_register(&f, value),
            "txn" => pad_micro_ops(&mut value),
            _ => {}
        }
    }
    let extra: Map<String, Value> = fields
        .fields
        .iter()
        .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.to_json(Strings::Plain)))
        .collect();
    Ok(Event {
        index: fields.count("index", next_index)?,
        time: fields.count("time", 0)?,
        process,
        kind: fields.kind()?,
        f,
        value: std::sync::Arc::new(keys.value(value)),
        node: fields.get("node").and_then(name_of),
        tx_id: None,
        extra,
    })
}

/// One op map's key/value pairs, with the line it starts on.
type LinedMap<'e> = (usize, &'e Vec<(Edn, Edn)>);

/// The op maps of the top-level forms, each with the line it starts on: maps,
/// `#jepsen.history.Op{...}` records, and one level of vector or list around them.
fn op_maps(forms: &[(usize, Edn)]) -> Result<Vec<LinedMap<'_>>, HistoryError> {
    fn collect<'e>(
        line: usize,
        e: &'e Edn,
        out: &mut Vec<LinedMap<'e>>,
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
    let mut maps = Vec::new();
    for (line, f) in forms {
        collect(*line, f, &mut maps, true)?;
    }
    Ok(maps)
}

/// Read a Jepsen EDN history as Jepsen and Elle write it (issue 15): a sequence
/// of op maps (`{:type :invoke, :f :txn, :value [[:append 5 1] [:r 5 nil]],
/// :process 0, :time 1, :index 0}`) or `#jepsen.history.Op{...}` records, bare or
/// in one vector. Lenient where Jepsen is: a missing `:index` counts up, a
/// missing (or Jepsen's `-1`) `:time` is 0, a missing `:process` is
/// [`IMPLICIT_PROCESS`], a missing `:f` on a transaction is `txn`, `[:r k]`
/// micro-ops gain their `nil`, a list-append `:ok` read of `nil` is the empty
/// list, completions without an invoke stand alone (Elle
/// checks completed ops by themselves), extra keys land in `extra`.
/// Every error carries the line it is on.
pub fn parse_history(text: &str) -> Result<History, HistoryError> {
    let forms = parse_all(text)?;
    let maps = op_maps(&forms)?;
    let mut events = Vec::with_capacity(maps.len());
    let mut lines = Vec::with_capacity(maps.len());
    let mut next_index = 0u64;
    let mut keys = crate::value::Interner::default();
    for (line, pairs) in maps {
        let e = map_to_event(line, pairs, next_index, &mut keys)?;
        next_index = e.index.saturating_add(1);
        events.push(e);
        lines.push(line);
    }
    if is_list_append(&events) {
        events.iter_mut().for_each(empty_list_reads);
    }
    History::from_lined_events(events, &lines, Pairing::Lenient)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = parse_history("{:type :ok :f :txn :value []}\n{:type :ok :value 1}\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: missing field `f`");
        let e = parse_history("{:f :txn :value []}\n").unwrap_err();
        assert_eq!(e.to_string(), "line 1: missing field `type`");
    }
}
