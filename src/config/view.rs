//! What `arcade config` shows, derived from [`Settings`]' `Serialize`: one [`Shown`] per value,
//! named after its config key with the section joined by `_` (`skaha_url` for `skaha.url`), with
//! its origin. Secrets serialize as where they come from; `launch.env` as its names only.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde::ser::Error as _;

use super::layer::{Layer, Origin};
use super::{HarborAuth, Secret, Settings, SkahaAuth};

/// One value of the settings, as `arcade config` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Shown {
    /// `timeout_secs`, `skaha_url`, …
    pub key: String,
    pub value: serde_json::Value,
    pub origin: Origin,
}

impl Settings {
    /// Every value, sorted by key. Fails only for a path that is not UTF-8.
    pub fn view(&self) -> serde_json::Result<Vec<Shown>> {
        let serde_json::Value::Object(top) = serde_json::to_value(self)? else {
            return Err(serde_json::Error::custom("the settings are not a map"));
        };
        let sections = Layer::sections();
        let mut shown = Vec::new();
        for (name, value) in top {
            match value {
                serde_json::Value::Object(section) if sections.contains(&name) => {
                    shown.extend(
                        section
                            .into_iter()
                            .map(|(key, value)| self.shown(&format!("{name}.{key}"), value)),
                    );
                }
                value => shown.push(self.shown(&name, value)),
            }
        }
        shown.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(shown)
    }

    fn shown(&self, key: &str, value: serde_json::Value) -> Shown {
        Shown {
            key: key.replace('.', "_"),
            value,
            origin: self.origins.get(key).cloned().unwrap_or(Origin::Default),
        }
    }
}

/// Durations in whole seconds, as the `*_secs` keys give them.
pub(super) mod secs {
    use super::*;

    pub fn serialize<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_secs())
    }
}

/// Durations in whole minutes, as `daemon.refresh_minutes` gives them.
pub(super) mod minutes {
    use super::*;

    pub fn serialize<S: serde::Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(value.as_secs() / 60)
    }
}

/// A map's names without its values.
pub(super) mod names {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        value: &BTreeMap<String, String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(value.keys())
    }
}

/// Harbor credentials as `harbor.username` and `harbor.secret`, both unset without them.
pub(super) mod harbor {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        value: &Option<HarborAuth>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Harbor<'a> {
            username: Option<&'a str>,
            secret: Option<&'a Secret>,
        }
        Harbor {
            username: value.as_ref().map(|auth| auth.username.as_str()),
            secret: value.as_ref().map(|auth| &auth.secret),
        }
        .serialize(s)
    }
}

/// The kind of skaha credentials and where they come from.
pub(super) mod skaha_auth {
    use super::*;

    pub fn serialize<S: serde::Serializer>(value: &SkahaAuth, s: S) -> Result<S::Ok, S::Error> {
        match value {
            SkahaAuth::SessionToken(secret) => {
                s.collect_str(&format_args!("session token (set, from {})", secret.origin))
            }
            SkahaAuth::Bearer(secret) => {
                s.collect_str(&format_args!("bearer token (set, from {})", secret.origin))
            }
            SkahaAuth::Certificate(path) => {
                s.collect_str(&format_args!("client certificate {}", path.display()))
            }
            SkahaAuth::Anonymous => s.serialize_str("anonymous"),
        }
    }
}
