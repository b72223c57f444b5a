//! The published API contracts (`shared/contracts/`: Harbor's Swagger 2.0, skaha's OpenAPI 3) as
//! checks: that a request names an operation the contract declares, with declared parameters of
//! the declared types, and that an answer has a declared status and a body of the declared shape.
//!
//! The stand-ins are the only pretend parts of the tests, so what they accept and what they answer
//! is checked against the contracts rather than trusted. Schemas are checked the way Harbor's
//! generated Go models serialise: every field sent must be declared with the right JSON type, and
//! `null` stands for an empty array, map or absent object (Go's nil), which Harbor really sends.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use super::fake_http::{LoggedRequest, parse_query};

/// One contract, parsed.
pub struct Contract {
    name: &'static str,
    doc: Value,
    /// What every path of the contract is under: Swagger's `basePath`, OpenAPI's first server.
    base: String,
}

/// Where the contracts are: `ARCADE_CONTRACTS`, else `shared/contracts` beside the checkout, as
/// the project's workspace and CI lay it out.
fn contracts_dir() -> PathBuf {
    std::env::var_os("ARCADE_CONTRACTS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/contracts"),
        PathBuf::from,
    )
}

fn load(name: &'static str, file: &str) -> Contract {
    let path = contracts_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read the {name} contract {}: {err}; the tests check the stand-ins against \
             the published contracts in shared/contracts beside the checkout (or set \
             ARCADE_CONTRACTS to the folder holding {file})",
            path.display()
        )
    });
    let doc: Value = serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|err| panic!("the {name} contract {} is not YAML: {err}", path.display()));
    let base = doc["basePath"]
        .as_str()
        .or_else(|| doc["servers"][0]["url"].as_str())
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    Contract { name, doc, base }
}

impl Contract {
    pub fn harbor() -> &'static Contract {
        static HARBOR: OnceLock<Contract> = OnceLock::new();
        HARBOR.get_or_init(|| load("Harbor", "harbor-v2.0-swagger.yaml"))
    }

    pub fn skaha() -> &'static Contract {
        static SKAHA: OnceLock<Contract> = OnceLock::new();
        SKAHA.get_or_init(|| load("skaha", "skaha-openapi.yaml"))
    }

    /// Follows a local `$ref` (`#/definitions/Artifact`) to what it names.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference.strip_prefix('#').unwrap_or(reference);
            node = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("the {} contract has no {reference}", self.name));
        }
        node
    }

    /// The operation for `method` on a raw (still percent-encoded) path, with its path template.
    /// A template segment `{name}` matches one raw segment; of several matches, the one with the
    /// most literal segments wins, as in Harbor's router.
    fn operation(&self, method: &str, raw_path: &str) -> Result<(&str, &Value, &Value), String> {
        let rest = raw_path.strip_prefix(&self.base).ok_or_else(|| {
            format!(
                "{raw_path} is outside the contract's base path {}",
                self.base
            )
        })?;
        let segments: Vec<&str> = rest.split('/').collect();
        let paths = self.doc["paths"].as_object().expect("a contract has paths");
        let best = paths
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut literal = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        literal += 1;
                    } else {
                        return None;
                    }
                }
                Some((literal, template.as_str(), item))
            })
            .max_by_key(|(literal, _, _)| *literal)
            .ok_or_else(|| format!("{raw_path} matches no path of the contract"))?;
        let (_, template, item) = best;
        let operation = item
            .get(method.to_ascii_lowercase())
            .ok_or_else(|| format!("{method} {template} is not an operation of the contract"))?;
        Ok((template, item, operation))
    }

    /// The parameters of an operation (its own and its path's), resolved, by name.
    fn parameters<'a>(&'a self, item: &'a Value, operation: &'a Value) -> Vec<&'a Value> {
        item.get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                operation
                    .get("parameters")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .map(|parameter| self.resolve(parameter))
            .collect()
    }

    /// What is wrong with a request a client sent, against the contract; empty when nothing is.
    ///
    /// Query parameters, and the fields of a form-encoded body (skaha, like every CADC service,
    /// reads its declared query parameters from a form body too), must be declared and of their
    /// declared type. Headers are not checked: the token headers are the platform's, not the
    /// contract's.
    pub fn request_problems(&self, request: &LoggedRequest) -> Vec<String> {
        let what = format!("{} {}", request.method, request.uri());
        let (template, item, operation) = match self.operation(&request.method, &request.path) {
            Ok(found) => found,
            Err(problem) => return vec![format!("{what}: {problem}")],
        };
        let parameters = self.parameters(item, operation);
        let mut sent = parse_query(&request.query);
        let form = request
            .content_type
            .as_deref()
            .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
        if form {
            sent.extend(parse_query(&request.body));
        }
        let mut problems = Vec::new();
        for (name, value) in &sent {
            let Some(parameter) = parameters
                .iter()
                .find(|p| p["name"] == name.as_str() && p["in"] == "query")
            else {
                problems.push(format!(
                    "{what}: {template} declares no query parameter {name:?}"
                ));
                continue;
            };
            // Swagger puts the type on the parameter, OpenAPI 3 in its schema.
            let schema = parameter.get("schema").unwrap_or(parameter);
            if let Err(problem) = check_text(value, schema) {
                problems.push(format!("{what}: parameter {name}={value:?} {problem}"));
            }
        }
        for parameter in &parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            if parameter["in"] == "query"
                && parameter["required"] == true
                && !sent.iter().any(|(sent, _)| sent == name)
            {
                problems.push(format!("{what}: the required parameter {name} is missing"));
            }
        }
        problems
    }

    /// Panics naming every request in `log` that the contract does not declare.
    #[track_caller]
    pub fn assert_requests(&self, log: &[LoggedRequest]) {
        assert!(
            !log.is_empty(),
            "no requests to check against {}",
            self.name
        );
        let problems: Vec<String> = log
            .iter()
            .flat_map(|request| self.request_problems(request))
            .collect();
        assert!(
            problems.is_empty(),
            "requests outside the {} contract:\n{}",
            self.name,
            problems.join("\n")
        );
    }

    /// What is wrong with an answer to `method raw_path`, against the contract: an undeclared
    /// status, a declared header missing, or a body not of the declared schema.
    pub fn response_problems(
        &self,
        method: &str,
        raw_path: &str,
        status: u16,
        header: &dyn Fn(&str) -> Option<String>,
        body: &str,
    ) -> Vec<String> {
        let what = format!("{method} {raw_path} → {status}");
        let (_, _, operation) = match self.operation(method, raw_path) {
            Ok(found) => found,
            Err(problem) => return vec![format!("{what}: {problem}")],
        };
        let responses = &operation["responses"];
        let Some(response) = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .map(|response| self.resolve(response))
        else {
            return vec![format!("{what}: the contract declares no such status")];
        };
        let mut problems = Vec::new();
        for name in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|headers| headers.keys())
        {
            // `Link` is sent only when there is another page, as the contract describes it.
            if name != "Link" && header(name).is_none() {
                problems.push(format!("{what}: the declared header {name} is missing"));
            }
        }
        // Swagger's schema is on the response, OpenAPI 3's under its media type.
        let schema = response
            .get("schema")
            .or_else(|| response.pointer("/content/application~1json/schema"));
        if let Some(schema) = schema {
            match serde_json::from_str::<Value>(body) {
                Ok(value) => self.check(&value, schema, "body", &mut problems),
                Err(err) => problems.push(format!("{what}: the body is not JSON ({err})")),
            }
            for problem in &mut problems {
                if !problem.starts_with(&what) {
                    *problem = format!("{what}: {problem}");
                }
            }
        }
        problems
    }

    /// Checks a JSON value against a schema, adding what is wrong to `problems`.
    fn check(&self, value: &Value, schema: &Value, at: &str, problems: &mut Vec<String>) {
        let schema = self.resolve(schema);
        // Neither contract uses these today; a checker that skipped them would pass anything.
        if let Some(keyword) = ["allOf", "oneOf", "anyOf", "not"]
            .into_iter()
            .find(|keyword| schema.get(keyword).is_some())
        {
            problems.push(format!(
                "{at}: the contract check does not support {keyword}"
            ));
            return;
        }
        let kind = schema.get("type").and_then(Value::as_str).or_else(|| {
            schema
                .get("properties")
                .map(|_| "object")
                .or_else(|| schema.get("items").map(|_| "array"))
        });
        // go-swagger makes a bare `type: object` (no properties, no additionalProperties) an
        // `interface{}`: any JSON value, as Harbor's `extra_attrs` values are.
        let free_form = kind == Some("object")
            && schema.get("properties").is_none()
            && schema.get("additionalProperties").is_none();
        match (kind, value) {
            _ if free_form => {}
            // Go's nil slice, map or pointer: what Harbor sends for "none" (a whole answer that
            // is one object is never nil, though).
            (Some("array"), Value::Null) => {}
            (Some("object"), Value::Null) if at != "body" => {}
            (Some("object"), Value::Object(fields)) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (name, field) in fields {
                    let at = format!("{at}.{name}");
                    match (properties.and_then(|p| p.get(name)), additional) {
                        (Some(declared), _) => self.check(field, declared, &at, problems),
                        (None, Some(Value::Bool(true))) => {}
                        (None, Some(extra @ Value::Object(_))) => {
                            self.check(field, extra, &at, problems);
                        }
                        (None, _) => problems.push(format!("{at} is not declared")),
                    }
                }
                for required in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if !fields.contains_key(required) {
                        problems.push(format!("{at}.{required} is required but missing"));
                    }
                }
            }
            (Some("array"), Value::Array(items)) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Null);
                for (n, item) in items.iter().enumerate() {
                    self.check(item, item_schema, &format!("{at}[{n}]"), problems);
                }
            }
            (Some("string"), Value::String(_))
            | (Some("boolean"), Value::Bool(_))
            | (Some("number"), Value::Number(_))
            | (None, _) => {}
            (Some("integer"), Value::Number(number)) if number.is_i64() || number.is_u64() => {}
            (Some(kind), value) => problems.push(format!("{at} should be {kind}, not {value}")),
        }
    }
}

/// Checks a parameter's text against its declared type, range and choices.
fn check_text(text: &str, schema: &Value) -> Result<(), String> {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => {
            let number: i64 = text
                .parse()
                .map_err(|_| "should be an integer".to_owned())?;
            if let Some(maximum) = schema.get("maximum").and_then(Value::as_i64)
                && number > maximum
            {
                return Err(format!("is above the maximum {maximum}"));
            }
            if let Some(minimum) = schema.get("minimum").and_then(Value::as_i64)
                && number < minimum
            {
                return Err(format!("is below the minimum {minimum}"));
            }
        }
        Some("boolean") if !matches!(text, "true" | "false") => {
            return Err("should be true or false".to_owned());
        }
        _ => {}
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.iter().any(|choice| choice.as_str() == Some(text))
    {
        return Err(format!("is not one of {choices:?}"));
    }
    Ok(())
}
