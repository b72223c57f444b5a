//! XML-RPC as the SAMP Standard Profile uses it: the three SAMP types (string, list, map) as
//! [`Value`], method calls and responses read and written, faults included.
//!
//! Scalars of other XML-RPC types (`int`, `boolean`, `double`…) are read as their text, since
//! SAMP carries everything as strings; a value without a type element is a string, as XML-RPC
//! says. Carriage returns are written as character references, so that no XML parser on the
//! other side folds them into line feeds.
//! See: <https://www.ivoa.net/documents/SAMP/20190517/REC-SAMP-1.3-20190517.html#tth_sEc4.5>

use std::collections::BTreeMap;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// A SAMP value (in JSON, for the hub's saved state: a string, an array or an object).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    String(String),
    List(Vec<Value>),
    Map(Map),
}

/// A SAMP map.
pub type Map = BTreeMap<String, Value>;

impl Value {
    pub fn str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn map(&self) -> Option<&Map> {
        match self {
            Value::Map(map) => Some(map),
            _ => None,
        }
    }

    /// The empty string, what void methods return.
    pub fn empty() -> Value {
        Value::String(String::new())
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::String(text)
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Map(map)
    }
}

/// A map from pairs, for building messages and answers.
pub fn map<const N: usize>(pairs: [(&str, Value); N]) -> Map {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

/// An XML-RPC document that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed XML-RPC: {0}")]
pub struct Malformed(String);

/// A fault answer: the callee refused the call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (fault {code})")]
pub struct Fault {
    pub code: i32,
    pub message: String,
}

/// A parsed `methodCall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub params: Vec<Value>,
}

/// Reads a `methodCall` document.
pub fn parse_call(text: &str) -> Result<Call, Malformed> {
    let mut parser = Parser::new(text);
    parser.open("methodCall")?;
    parser.open("methodName")?;
    let method = parser.text_until_close("methodName")?;
    let mut params = Vec::new();
    match parser.next_tag()? {
        Tag::Open(name) if name == "params" => {
            while let Tag::Open(name) = parser.next_tag()? {
                if name != "param" {
                    return Err(Malformed(format!("<{name}> where <param> belongs")));
                }
                params.push(parser.value_element()?);
                parser.close("param")?;
            }
            parser.close("methodCall")?;
        }
        // `<params/>`, as some writers put it for no parameters.
        Tag::Empty(name) if name == "params" => parser.close("methodCall")?,
        Tag::Close(name) if name == "methodCall" => {}
        other => return Err(Malformed(format!("{other:?} after the method name"))),
    }
    Ok(Call {
        method: method.trim().to_owned(),
        params,
    })
}

/// Reads a `methodResponse` document: the value, or the fault it carries.
pub fn parse_response(text: &str) -> Result<Result<Value, Fault>, Malformed> {
    let mut parser = Parser::new(text);
    parser.open("methodResponse")?;
    match parser.next_tag()? {
        Tag::Open(name) if name == "params" => {
            parser.open("param")?;
            let value = parser.value_element()?;
            parser.close("param")?;
            parser.close("params")?;
            parser.close("methodResponse")?;
            Ok(Ok(value))
        }
        Tag::Open(name) if name == "fault" => {
            let value = parser.value_element()?;
            let fault = value
                .map()
                .ok_or_else(|| Malformed("a fault that is no struct".into()))?;
            let text = |key: &str| fault.get(key).and_then(Value::str).unwrap_or_default();
            Ok(Err(Fault {
                code: text("faultCode").trim().parse().unwrap_or(-1),
                message: text("faultString").to_owned(),
            }))
        }
        other => Err(Malformed(format!("{other:?} in a methodResponse"))),
    }
}

/// Writes a `methodCall`.
pub fn call(method: &str, params: &[Value]) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodCall><methodName>");
    escape_into(&mut out, method);
    out.push_str("</methodName><params>");
    for param in params {
        out.push_str("<param>");
        write_value(&mut out, param);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    out
}

/// Writes a `methodResponse` carrying `value`.
pub fn response(value: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\n<methodResponse><params><param>");
    write_value(&mut out, value);
    out.push_str("</param></params></methodResponse>\n");
    out
}

/// Writes a `methodResponse` carrying a fault.
pub fn fault(code: i32, message: &str) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\"?>\n<methodResponse><fault><value><struct>\
         <member><name>faultCode</name><value><int>",
    );
    out.push_str(&code.to_string());
    out.push_str("</int></value></member><member><name>faultString</name><value><string>");
    escape_into(&mut out, message);
    out.push_str("</string></value></member></struct></value></fault></methodResponse>\n");
    out
}

fn write_value(out: &mut String, value: &Value) {
    out.push_str("<value>");
    match value {
        Value::String(text) => {
            out.push_str("<string>");
            escape_into(out, text);
            out.push_str("</string>");
        }
        Value::List(items) => {
            out.push_str("<array><data>");
            for item in items {
                write_value(out, item);
            }
            out.push_str("</data></array>");
        }
        Value::Map(map) => {
            out.push_str("<struct>");
            for (key, item) in map {
                out.push_str("<member><name>");
                escape_into(out, key);
                out.push_str("</name>");
                write_value(out, item);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// An element boundary, as the parser meets it.
#[derive(Debug)]
enum Tag {
    Open(String),
    Empty(String),
    Close(String),
}

/// A pull parser over the few shapes XML-RPC has.
struct Parser<'a> {
    reader: Reader<&'a [u8]>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        Parser {
            reader: Reader::from_str(text),
        }
    }

    /// The next element boundary, skipping whitespace, the declaration and comments; text
    /// that is not whitespace is an error here.
    fn next_tag(&mut self) -> Result<Tag, Malformed> {
        loop {
            match self.event()? {
                Event::Start(start) => return Ok(Tag::Open(name_of(start.name().as_ref()))),
                Event::Empty(start) => return Ok(Tag::Empty(name_of(start.name().as_ref()))),
                Event::End(end) => return Ok(Tag::Close(name_of(end.name().as_ref()))),
                Event::Text(text) if text.xml10_content().trim().is_empty() => {}
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => return Err(Malformed("the document ends early".into())),
                other => return Err(Malformed(format!("unexpected {other:?}"))),
            }
        }
    }

    fn event(&mut self) -> Result<Event<'a>, Malformed> {
        self.reader
            .read_event()
            .map_err(|err| Malformed(err.to_string()))
    }

    fn open(&mut self, wanted: &str) -> Result<(), Malformed> {
        match self.next_tag()? {
            Tag::Open(name) if name == wanted => Ok(()),
            other => Err(Malformed(format!("{other:?} where <{wanted}> belongs"))),
        }
    }

    fn close(&mut self, wanted: &str) -> Result<(), Malformed> {
        match self.next_tag()? {
            Tag::Close(name) if name == wanted => Ok(()),
            other => Err(Malformed(format!("{other:?} where </{wanted}> belongs"))),
        }
    }

    /// The text of an element whose start was just read, up to its end, with entity and
    /// character references resolved.
    fn text_until_close(&mut self, element: &str) -> Result<String, Malformed> {
        let mut text = String::new();
        loop {
            match self.event()? {
                Event::End(end) if name_of(end.name().as_ref()) == element => return Ok(text),
                event => {
                    if !self.append_text(&mut text, &event)? {
                        return Err(Malformed(format!("{event:?} inside <{element}>")));
                    }
                }
            }
        }
    }

    /// Adds a text-like event's characters to `text`; false for any other event.
    fn append_text(&self, text: &mut String, event: &Event<'_>) -> Result<bool, Malformed> {
        match event {
            Event::Text(chunk) => text.push_str(&chunk.xml10_content()),
            Event::CData(chunk) => text.push_str(chunk.xml10_content().as_ref()),
            Event::GeneralRef(reference) => match reference.resolve_char_ref() {
                Ok(Some(c)) => text.push(c),
                Ok(None) => text.push(match &**reference {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => return Err(Malformed(format!("unknown entity &{other};"))),
                }),
                Err(err) => return Err(Malformed(err.to_string())),
            },
            Event::Comment(_) => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A whole `<value>` element (`<value/>` is the empty string).
    fn value_element(&mut self) -> Result<Value, Malformed> {
        match self.next_tag()? {
            Tag::Open(name) if name == "value" => self.value(),
            Tag::Empty(name) if name == "value" => Ok(Value::empty()),
            other => Err(Malformed(format!("{other:?} where <value> belongs"))),
        }
    }

    /// A value whose `<value>` start was just read, through its `</value>`.
    fn value(&mut self) -> Result<Value, Malformed> {
        // Text before any element: an untyped string, unless a typed element follows (then it
        // was only the whitespace around it).
        let mut text = String::new();
        loop {
            let event = self.event()?;
            match event {
                Event::End(end) if name_of(end.name().as_ref()) == "value" => {
                    return Ok(Value::String(text));
                }
                Event::Start(start) => {
                    let name = name_of(start.name().as_ref());
                    let value = self.typed(&name)?;
                    self.close("value")?;
                    return Ok(value);
                }
                Event::Empty(start) => {
                    let name = name_of(start.name().as_ref());
                    let value = match name.as_str() {
                        "array" => Value::List(Vec::new()),
                        "struct" => Value::Map(Map::new()),
                        _ => Value::String(String::new()),
                    };
                    self.close("value")?;
                    return Ok(value);
                }
                event => {
                    if !self.append_text(&mut text, &event)? {
                        return Err(Malformed(format!("{event:?} inside <value>")));
                    }
                }
            }
        }
    }

    /// A typed value whose element start (`name`) was just read, through its end.
    fn typed(&mut self, name: &str) -> Result<Value, Malformed> {
        match name {
            "array" => {
                let mut items = Vec::new();
                match self.next_tag()? {
                    Tag::Open(data) if data == "data" => {
                        loop {
                            match self.next_tag()? {
                                Tag::Open(value) if value == "value" => items.push(self.value()?),
                                Tag::Empty(value) if value == "value" => items.push(Value::empty()),
                                Tag::Close(data) if data == "data" => break,
                                other => {
                                    return Err(Malformed(format!("{other:?} inside <data>")));
                                }
                            }
                        }
                        self.close("array")?;
                    }
                    Tag::Empty(data) if data == "data" => self.close("array")?,
                    // `<array></array>`: lenient, as other readers are.
                    Tag::Close(array) if array == "array" => {}
                    other => return Err(Malformed(format!("{other:?} inside <array>"))),
                }
                Ok(Value::List(items))
            }
            "struct" => {
                let mut map = Map::new();
                while let Tag::Open(member) = self.next_tag()? {
                    if member != "member" {
                        return Err(Malformed(format!("<{member}> inside <struct>")));
                    }
                    self.open("name")?;
                    let key = self.text_until_close("name")?;
                    let value = self.value_element()?;
                    self.close("member")?;
                    map.insert(key, value);
                }
                Ok(Value::Map(map))
            }
            // Every scalar is its text: SAMP encodes numbers and booleans as strings.
            _ => Ok(Value::String(self.text_until_close(name)?)),
        }
    }
}

fn name_of(name: &str) -> String {
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_with_every_samp_character() {
        let mut text: String = (0x20u8..0x7f).map(char::from).collect();
        text.push_str("\t\n\r&<>]]>");
        let params = vec![
            Value::String(text),
            Value::List(vec![
                "a".into(),
                Value::List(vec![]),
                Value::Map(Map::new()),
            ]),
            Value::Map(map([
                ("samp.mtype", "samp.app.ping".into()),
                ("samp.params", Value::Map(map([("x", "".into())]))),
            ])),
        ];
        let written = call("samp.hub.notify", &params);
        let read = parse_call(&written).unwrap();
        assert_eq!(read.method, "samp.hub.notify");
        assert_eq!(read.params, params);
    }

    #[test]
    fn reads_what_other_writers_write() {
        // Untyped strings, ints, whitespace between elements, empty elements.
        let text = r#"<?xml version="1.0" encoding="UTF-8"?>
            <methodCall>
              <methodName>samp.hub.register</methodName>
              <params>
                <param><value>  secret one </value></param>
                <param><value><i4>42</i4></value></param>
                <param><value><string/></value></param>
                <param><value><array><data/></array></value></param>
                <param><value><struct>
                  <member><name>k</name><value>v &amp; w&#x41;</value></member>
                </struct></value></param>
                <param><value/></param>
              </params>
            </methodCall>"#;
        let call = parse_call(text).unwrap();
        assert_eq!(
            call.params,
            vec![
                Value::from("  secret one "),
                Value::from("42"),
                Value::from(""),
                Value::List(vec![]),
                Value::Map(map([("k", "v & wA".into())])),
                Value::from(""),
            ]
        );
        let bare = parse_call("<methodCall><methodName>samp.hub.ping</methodName></methodCall>");
        assert_eq!(bare.unwrap().params, vec![]);
    }

    #[test]
    fn responses_and_faults() {
        let value = Value::Map(map([("samp.self-id", "c1".into())]));
        assert_eq!(parse_response(&response(&value)).unwrap(), Ok(value));
        assert_eq!(
            parse_response(&fault(1, "no such client: c9 <x>")).unwrap(),
            Err(Fault {
                code: 1,
                message: "no such client: c9 <x>".into()
            })
        );
    }

    #[test]
    fn refuses_what_is_not_xml_rpc() {
        for text in [
            "",
            "<methodCall>",
            "<methodCall><methodName>x</methodName><params><param><value><array>\
             <value/></array></value></param></params></methodCall>",
            "<html>no</html>",
            "<methodCall><methodName>x</methodName><params><param><value>&bogus;</value>\
             </param></params></methodCall>",
        ] {
            assert!(parse_call(text).is_err(), "{text}");
        }
    }
}
