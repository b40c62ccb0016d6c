//! The few parts of XML-RPC that talking to supervisord needs: a `methodCall` with string,
//! boolean and integer parameters, and a `methodResponse` holding a value or a fault.
//! quick-xml does the tokenising and the escaping; this module only knows the shapes.

use std::collections::VecDeque;
use std::fmt;

use quick_xml::escape::{escape, unescape};
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use thiserror::Error;

/// Values nested deeper than this are refused: no answer of supervisord comes close, and a
/// hostile one cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// A parameter of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    Str(&'a str),
    Bool(bool),
    Int(i32),
}

/// A value of a response, for the types supervisord sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
    Nil,
}

/// What a response says: a value, or a fault with its code and text.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Value(Value),
    Fault { code: i64, message: String },
}

/// A response that is not well-formed XML-RPC.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not an XML-RPC response: {0}")]
pub struct DecodeError(String);

fn bad(why: impl Into<String>) -> DecodeError {
    DecodeError(why.into())
}

/// The body of a `methodCall` of `method` with `params`.
pub fn encode_call(method: &str, params: &[Param<'_>]) -> String {
    let mut body = String::with_capacity(160 + 48 * params.len());
    body.push_str("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    body.push_str(&escape(method));
    body.push_str("</methodName><params>");
    for param in params {
        body.push_str("<param><value>");
        match param {
            Param::Str(s) => {
                body.push_str("<string>");
                body.push_str(&escape(*s));
                body.push_str("</string>");
            }
            Param::Bool(b) => {
                body.push_str(if *b {
                    "<boolean>1</boolean>"
                } else {
                    "<boolean>0</boolean>"
                });
            }
            Param::Int(i) => body.push_str(&format!("<int>{i}</int>")),
        }
        body.push_str("</value></param>");
    }
    body.push_str("</params></methodCall>\n");
    body
}

/// One token of the document: markup names and text, with what XML-RPC ignores left out.
#[derive(Debug, PartialEq)]
enum Token {
    Open(String),
    Close(String),
    Text(String),
    Eof,
}

struct Tokens<'a> {
    reader: Reader<&'a [u8]>,
    /// Tokens read but not yet handed out (an `<x/>` gives two, text and markup may follow).
    queue: VecDeque<Token>,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        reader.config_mut().check_end_names = true;
        Tokens {
            reader,
            queue: VecDeque::new(),
        }
    }

    /// The next token; adjacent text, CDATA and entity references are joined into one text.
    fn next(&mut self) -> Result<Token, DecodeError> {
        if let Some(t) = self.queue.pop_front() {
            return Ok(t);
        }
        let mut text: Option<String> = None;
        loop {
            let event = self.reader.read_event().map_err(|e| bad(e.to_string()))?;
            let piece = match event {
                Event::Text(t) => t.xml10_content().into_owned(),
                Event::CData(t) => t.xml10_content().into_owned(),
                Event::GeneralRef(r) => unescape(&format!("&{};", &*r))
                    .map_err(|e| bad(e.to_string()))?
                    .into_owned(),
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
                Event::Start(s) => {
                    self.queue
                        .push_back(Token::Open(s.name().as_ref().to_string()));
                    break;
                }
                Event::End(e) => {
                    self.queue
                        .push_back(Token::Close(e.name().as_ref().to_string()));
                    break;
                }
                Event::Empty(s) => {
                    let name = s.name().as_ref().to_string();
                    self.queue.push_back(Token::Open(name.clone()));
                    self.queue.push_back(Token::Close(name));
                    break;
                }
                Event::Eof => {
                    self.queue.push_back(Token::Eof);
                    break;
                }
            };
            text.get_or_insert_with(String::new).push_str(&piece);
        }
        if let Some(t) = text {
            self.queue.push_front(Token::Text(t));
        }
        self.queue.pop_front().ok_or_else(|| bad("no token"))
    }

    fn peek(&mut self) -> Result<&Token, DecodeError> {
        if self.queue.is_empty() {
            let t = self.next()?;
            self.queue.push_front(t);
        }
        self.queue.front().ok_or_else(|| bad("no token"))
    }

    /// The next token that is not whitespace-only text.
    fn next_markup(&mut self) -> Result<Token, DecodeError> {
        loop {
            match self.next()? {
                Token::Text(t) if t.trim().is_empty() => continue,
                other => return Ok(other),
            }
        }
    }

    fn expect_open(&mut self, name: &str) -> Result<(), DecodeError> {
        match self.next_markup()? {
            Token::Open(n) if n == name => Ok(()),
            other => Err(bad(format!(
                "expected <{name}>, found {}",
                describe(&other)
            ))),
        }
    }

    fn expect_close(&mut self, name: &str) -> Result<(), DecodeError> {
        match self.next_markup()? {
            Token::Close(n) if n == name => Ok(()),
            other => Err(bad(format!(
                "expected </{name}>, found {}",
                describe(&other)
            ))),
        }
    }

    /// The text up to `</name>` (empty when there is none).
    fn text_until_close(&mut self, name: &str) -> Result<String, DecodeError> {
        match self.next()? {
            Token::Text(t) => {
                self.expect_close(name)?;
                Ok(t)
            }
            Token::Close(n) if n == name => Ok(String::new()),
            other => Err(bad(format!(
                "expected text in <{name}>, found {}",
                describe(&other)
            ))),
        }
    }
}

fn describe(token: &Token) -> String {
    match token {
        Token::Open(n) => format!("<{n}>"),
        Token::Close(n) => format!("</{n}>"),
        Token::Text(_) => "text".to_string(),
        Token::Eof => "the end".to_string(),
    }
}

/// Parses the inside of `<value>` (the open tag already read) up to its `</value>`.
fn value(tokens: &mut Tokens<'_>, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(bad("values nested too deep"));
    }
    let first = tokens.next()?;
    let first = match first {
        // A `<value>` holding only text is a string; whitespace before a typed value is not.
        Token::Text(t) => match tokens.peek()? {
            Token::Close(n) if n == "value" => {
                tokens.next()?;
                return Ok(Value::Str(t));
            }
            _ if t.trim().is_empty() => tokens.next_markup()?,
            _ => return Err(bad("text beside a typed value")),
        },
        Token::Close(n) if n == "value" => return Ok(Value::Str(String::new())),
        other => other,
    };
    let Token::Open(kind) = first else {
        return Err(bad(format!("expected a type, found {}", describe(&first))));
    };
    let v = match kind.as_str() {
        "array" => array(tokens, depth)?,
        "struct" => members(tokens, depth)?,
        _ => scalar(tokens, &kind)?,
    };
    tokens.expect_close("value")?;
    Ok(v)
}

/// Parses a typed scalar (`<kind>` already read) up to its closing tag.
fn scalar(tokens: &mut Tokens<'_>, kind: &str) -> Result<Value, DecodeError> {
    Ok(match kind {
        "string" | "base64" | "dateTime.iso8601" => Value::Str(tokens.text_until_close(kind)?),
        "boolean" => match tokens.text_until_close(kind)?.trim() {
            "1" => Value::Bool(true),
            "0" => Value::Bool(false),
            other => return Err(bad(format!("'{other}' is not a boolean"))),
        },
        "int" | "i4" | "i8" => {
            let text = tokens.text_until_close(kind)?;
            Value::Int(
                text.trim()
                    .parse()
                    .map_err(|_| bad(format!("'{}' is not an integer", text.trim())))?,
            )
        }
        "double" => {
            let text = tokens.text_until_close(kind)?;
            Value::Double(
                text.trim()
                    .parse()
                    .map_err(|_| bad(format!("'{}' is not a number", text.trim())))?,
            )
        }
        "nil" => {
            tokens.expect_close("nil")?;
            Value::Nil
        }
        other => return Err(bad(format!("unknown type <{other}>"))),
    })
}

/// Parses an `<array>` (its open tag already read) up to its `</array>`.
fn array(tokens: &mut Tokens<'_>, depth: usize) -> Result<Value, DecodeError> {
    tokens.expect_open("data")?;
    let mut items = Vec::new();
    loop {
        match tokens.next_markup()? {
            Token::Open(n) if n == "value" => items.push(value(tokens, depth + 1)?),
            Token::Close(n) if n == "data" => break,
            other => return Err(bad(format!("in <data>: {}", describe(&other)))),
        }
    }
    tokens.expect_close("array")?;
    Ok(Value::Array(items))
}

/// Parses a `<struct>` (its open tag already read) up to its `</struct>`.
fn members(tokens: &mut Tokens<'_>, depth: usize) -> Result<Value, DecodeError> {
    let mut members = Vec::new();
    loop {
        match tokens.next_markup()? {
            Token::Open(n) if n == "member" => {
                tokens.expect_open("name")?;
                let name = tokens.text_until_close("name")?;
                tokens.expect_open("value")?;
                members.push((name, value(tokens, depth + 1)?));
                tokens.expect_close("member")?;
            }
            Token::Close(n) if n == "struct" => break,
            other => return Err(bad(format!("in <struct>: {}", describe(&other)))),
        }
    }
    Ok(Value::Struct(members))
}

/// Parses a `methodResponse`: the single value of its params, or its fault.
pub fn decode_response(text: &str) -> Result<Response, DecodeError> {
    let mut tokens = Tokens::new(text);
    tokens.expect_open("methodResponse")?;
    let response = match tokens.next_markup()? {
        Token::Open(n) if n == "params" => {
            tokens.expect_open("param")?;
            tokens.expect_open("value")?;
            let v = value(&mut tokens, 0)?;
            tokens.expect_close("param")?;
            tokens.expect_close("params")?;
            Response::Value(v)
        }
        Token::Open(n) if n == "fault" => {
            tokens.expect_open("value")?;
            let v = value(&mut tokens, 0)?;
            tokens.expect_close("fault")?;
            let Value::Struct(members) = v else {
                return Err(bad("a fault that is not a struct"));
            };
            let field = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            let code = match field("faultCode") {
                Some(Value::Int(c)) => *c,
                _ => return Err(bad("a fault without an integer faultCode")),
            };
            let message = match field("faultString") {
                Some(Value::Str(s)) => s.clone(),
                _ => return Err(bad("a fault without a faultString")),
            };
            Response::Fault { code, message }
        }
        other => {
            return Err(bad(format!(
                "expected <params> or <fault>, found {}",
                describe(&other)
            )));
        }
    };
    tokens.expect_close("methodResponse")?;
    match tokens.next_markup()? {
        Token::Eof => Ok(response),
        other => Err(bad(format!("{} after </methodResponse>", describe(&other)))),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Double(d) => write!(f, "{d}"),
            Value::Str(s) => f.write_str(s),
            Value::Nil => f.write_str("nil"),
            Value::Array(items) => write!(f, "an array of {}", items.len()),
            Value::Struct(members) => write!(f, "a struct of {} members", members.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_escapes_its_strings() {
        let body = encode_call(
            "supervisor.stopProcess",
            &[Param::Str("app:a<&>\"'"), Param::Bool(true), Param::Int(-3)],
        );
        assert_eq!(
            body,
            "<?xml version=\"1.0\"?>\n<methodCall><methodName>supervisor.stopProcess</methodName><params>\
             <param><value><string>app:a&lt;&amp;&gt;&quot;&apos;</string></value></param>\
             <param><value><boolean>1</boolean></value></param>\
             <param><value><int>-3</int></value></param></params></methodCall>\n"
        );
    }

    #[test]
    fn supervisords_answers_decode() {
        // As supervisord 4 writes them (Python's xmlrpc.client.dumps).
        let ok = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><boolean>1</boolean></value>\n</param>\n</params>\n</methodResponse>\n";
        assert_eq!(
            decode_response(ok).unwrap(),
            Response::Value(Value::Bool(true))
        );
        let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>70</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>NOT_RUNNING: app:a</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
        assert_eq!(
            decode_response(fault).unwrap(),
            Response::Fault {
                code: 70,
                message: "NOT_RUNNING: app:a".into()
            }
        );
    }

    #[test]
    fn every_supported_type_decodes() {
        let text = "<methodResponse><params><param><value><array><data>\
            <value>bare &amp; text</value><value></value><value><i4> 7 </i4></value>\
            <value><double>1.5</double></value><value><nil/></value>\
            <value><string>a&#60;b<![CDATA[<c>]]></string></value>\
            <value><struct><member><name>n</name><value><boolean>0</boolean></value></member></struct></value>\
            <value><string/></value>\
            </data></array></value></param></params></methodResponse>";
        let want = Value::Array(vec![
            Value::Str("bare & text".into()),
            Value::Str(String::new()),
            Value::Int(7),
            Value::Double(1.5),
            Value::Nil,
            Value::Str("a<b<c>".into()),
            Value::Struct(vec![("n".into(), Value::Bool(false))]),
            Value::Str(String::new()),
        ]);
        assert_eq!(decode_response(text).unwrap(), Response::Value(want));
    }

    #[test]
    fn malformed_answers_are_errors() {
        for text in [
            "",
            "<html>401 Unauthorized</html>",
            "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><boolean>2</boolean></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><int>1</value></int></param></params></methodResponse>",
            "<methodResponse><fault><value><int>1</int></value></fault></methodResponse>",
            "<methodResponse><params><param><value><b>1</b></value></param></params></methodResponse>",
            "<methodResponse><params><param><value>1</value></param></params></methodResponse><x/>",
            "<methodResponse><params><param><value>1",
        ] {
            assert!(decode_response(text).is_err(), "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_exhausting_the_stack() {
        let depth = 10_000;
        let text = format!(
            "<methodResponse><params><param><value>{}{}</value></param></params></methodResponse>",
            "<array><data><value>".repeat(depth),
            "</value></data></array>".repeat(depth)
        );
        assert!(decode_response(&text).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn decoding_any_text_never_panics(text in "(?s).{0,300}") {
                let _ = decode_response(&text);
            }

            #[test]
            fn a_string_parameter_survives_the_round_trip(s in "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\r]{0,40}") {
                // A call's params have the shape of a response's: reuse the decoder on them.
                let call = encode_call("m", &[Param::Str(&s)]);
                let inner = call
                    .split("<params>").nth(1).unwrap()
                    .split("</params>").next().unwrap();
                let response = format!("<methodResponse><params>{inner}</params></methodResponse>");
                prop_assert_eq!(decode_response(&response).unwrap(), Response::Value(Value::Str(s)));
            }
        }
    }
}
