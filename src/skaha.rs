//! The skaha API client: the image list (a catalog source), the resource context, and the
//! desktop-app lifecycle on a platform desktop session (launch, status, stop).
//!
//! Authentication is the desktop's callback token in `x-auth-token-skaha`, a bearer token, or a
//! client certificate. Only this module knows skaha's JSON.
//! See: `shared/contracts/skaha-openapi.yaml` and `shared/reference/canfar-platform.md` §2–3.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Catalog, Listing};
use crate::config::SkahaAuth;
use crate::http;

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Http(#[from] http::Error),
    #[error("skaha at {url} refused the request ({status}){hint}")]
    Refused {
        url: String,
        status: reqwest::StatusCode,
        hint: &'static str,
    },
    #[error("skaha at {url} answered with an unusable app id {answer:?}")]
    BadAppId { url: String, answer: String },
    #[error("skaha has no app {app_id} in session {session_id}")]
    NoSuchApp { session_id: String, app_id: String },
    #[error(
        "skaha at {url} knows no desktop session {session_id} of yours (404){}; the session id \
         comes from ARCADE_SESSION_ID, else skaha_sessionid or VNC_PW",
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    NoSuchSession {
        url: String,
        session_id: String,
        message: Option<String>,
    },
    #[error(
        "skaha at {url} did not answer the launch in time (timeout_secs); it may start the app \
         all the same"
    )]
    Unanswered { url: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One choice of resources from `GET /context`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    #[serde(default)]
    pub default: Option<f64>,
    #[serde(default)]
    pub default_request: Option<f64>,
    #[serde(default)]
    pub default_limit: Option<f64>,
    #[serde(default)]
    pub options: Option<Vec<f64>>,
}

/// The resources a user may request, from `GET /context`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    #[serde(default)]
    pub cores: Option<Resource>,
    #[serde(default, rename = "memoryGB")]
    pub memory_gb: Option<Resource>,
    #[serde(default)]
    pub gpus: Option<Resource>,
}

impl Context {
    /// Checks a request against the offered options; `None` means "use skaha's default".
    pub fn check(&self, what: &str, value: Option<f64>) -> Result<(), String> {
        let (Some(value), Some(resource)) = (
            value,
            match what {
                "cores" => self.cores.as_ref(),
                "ram" => self.memory_gb.as_ref(),
                _ => self.gpus.as_ref(),
            },
        ) else {
            return Ok(());
        };
        match &resource.options {
            Some(options) if !options.is_empty() && !options.contains(&value) => {
                let list: Vec<String> = options.iter().map(|o| o.to_string()).collect();
                Err(format!(
                    "{what} {value} is not offered by this platform; choose one of {}",
                    list.join(", ")
                ))
            }
            _ => Ok(()),
        }
    }
}

/// An app's status as skaha reports it, parsed once here. skaha derives it from the Job's
/// status (`SessionBuilder.withStatus`): Pending, Running, Completed, Failed or Terminating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Running,
    /// The app exited on its own (the Job succeeded).
    Completed,
    Failed,
    /// Being deleted.
    Terminating,
    /// A word this client does not know; kept for messages.
    Other(String),
}

impl Status {
    pub fn parse(text: &str) -> Status {
        match text.trim().to_ascii_lowercase().as_str() {
            "pending" => Status::Pending,
            "running" => Status::Running,
            "completed" | "succeeded" => Status::Completed,
            "failed" | "error" => Status::Failed,
            "terminating" => Status::Terminating,
            _ => Status::Other(text.trim().to_owned()),
        }
    }

    /// Whether the app has ended (or is ending) for good.
    pub fn is_over(&self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Failed | Status::Terminating
        )
    }

    /// The word in lowercase, as `arcade ps` shows live states.
    pub fn lowercase(&self) -> String {
        self.to_string().to_ascii_lowercase()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Pending => "Pending",
            Status::Running => "Running",
            Status::Completed => "Completed",
            Status::Failed => "Failed",
            Status::Terminating => "Terminating",
            Status::Other(text) => text,
        })
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Status, D::Error> {
        String::deserialize(deserializer).map(|text| Status::parse(&text))
    }
}

/// One image of `GET /image` (`id`, `types`, `digest`).
#[derive(Debug, Deserialize)]
struct ImageEntry {
    id: String,
    #[serde(default)]
    types: Option<Vec<String>>,
    #[serde(default)]
    digest: Option<String>,
}

/// A desktop-app as skaha reports it (a subset of the session JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub status: Option<Status>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub start_time: Option<String>,
}

/// A client for one skaha service.
#[derive(Debug, Clone)]
pub struct Skaha {
    client: http::Client,
    /// `https://host/skaha/v1`
    base: String,
    auth: SkahaAuth,
}

impl Skaha {
    /// `root` is the service root (`https://host/skaha`); the certificate, if any, is already in
    /// `client`.
    pub fn new(client: http::Client, root: &str, api_version: &str, auth: SkahaAuth) -> Skaha {
        Skaha {
            client,
            base: format!("{}/{api_version}", root.trim_end_matches('/')),
            auth,
        }
    }

    fn decorate(&self) -> impl Fn(RequestBuilder) -> RequestBuilder + use<> {
        let auth = self.auth.clone();
        move |request| match &auth {
            SkahaAuth::SessionToken(token) => request.header("x-auth-token-skaha", token.expose()),
            SkahaAuth::Bearer(token) => request.bearer_auth(token.expose()),
            SkahaAuth::Certificate(_) | SkahaAuth::Anonymous => request,
        }
    }

    fn refine(&self, err: http::Error) -> Error {
        match err.status() {
            Some(status)
                if status == reqwest::StatusCode::UNAUTHORIZED
                    || status == reqwest::StatusCode::FORBIDDEN =>
            {
                let url = match &err {
                    http::Error::Status { url, .. } => url.clone(),
                    _ => self.base.clone(),
                };
                Error::Refused {
                    url,
                    status,
                    hint: match self.auth {
                        SkahaAuth::Anonymous => {
                            ": no credentials were sent; inside a desktop session \
                             DESKTOP_SESSION_APP_TOKEN provides them"
                        }
                        _ => ": check the token or certificate",
                    },
                }
            }
            _ => Error::Http(err),
        }
    }

    /// The versioned API root, `https://host/skaha/v1`, for messages.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /image?type=<label>` as a catalog.
    pub async fn images(&self, label: &str) -> Result<Catalog> {
        let url = format!(
            "{}/image?type={}",
            self.base,
            utf8_percent_encode(label, SEGMENT)
        );
        let (entries, _): (Option<Vec<ImageEntry>>, _) = self
            .client
            .get_json(&url, self.decorate())
            .await
            .map_err(|err| self.refine(err))?;
        let listings = entries
            .unwrap_or_default()
            .into_iter()
            .map(|entry| Listing {
                labels: None,
                reference: entry.id,
                types: entry.types.unwrap_or_default(),
                digest: entry.digest,
            });
        Ok(catalog::from_listings(listings, Some(label)))
    }

    /// `GET /context`: the cores, memory and GPUs on offer.
    pub async fn context(&self) -> Result<Context> {
        let url = format!("{}/context", self.base);
        let (context, _) = self
            .client
            .get_json(&url, self.decorate())
            .await
            .map_err(|err| self.refine(err))?;
        Ok(context)
    }

    fn app_url(&self, session_id: &str, app_id: Option<&str>) -> String {
        let mut url = format!(
            "{}/session/{}/app",
            self.base,
            utf8_percent_encode(session_id, SEGMENT)
        );
        if let Some(app_id) = app_id {
            url.push('/');
            url.push_str(&utf8_percent_encode(app_id, SEGMENT).to_string());
        }
        url
    }

    /// `POST /session/{id}/app`: attaches a desktop-app and returns its app id.
    ///
    /// Not retried: a POST that reached the server but lost its answer would start a second app.
    pub async fn launch_app(
        &self,
        session_id: &str,
        image: &str,
        cores: Option<u32>,
        ram_gb: Option<u32>,
    ) -> Result<String> {
        let url = self.app_url(session_id, None);
        let mut form: Vec<(&str, String)> = vec![("image", image.to_owned())];
        if let Some(cores) = cores {
            form.push(("cores", cores.to_string()));
        }
        if let Some(ram) = ram_gb {
            form.push(("ram", ram.to_string()));
        }
        let decorate = self.decorate();
        let answer = self
            .client
            .send_unretried(&url, |client| decorate(client.post(&url).form(&form)))
            .await;
        let body = match answer {
            Ok(response) => response.text(),
            // The request may have arrived: the app may be starting, so say so.
            Err(http::Error::Timeout { .. }) => return Err(Error::Unanswered { url }),
            // skaha answers "session <id> not found" (`PostAction.attachDesktopApp`); any other
            // 404 is a wrong URL, and the generic message says which.
            Err(http::Error::Status {
                status: reqwest::StatusCode::NOT_FOUND,
                message,
                body,
                ..
            }) if String::from_utf8_lossy(&body)
                .to_lowercase()
                .contains(&format!("session {} not found", session_id.to_lowercase())) =>
            {
                return Err(Error::NoSuchSession {
                    url,
                    session_id: session_id.to_owned(),
                    message,
                });
            }
            Err(err) => return Err(self.refine(err)),
        };
        let app_id = body.trim();
        if app_id.is_empty()
            || app_id.len() > 64
            || !app_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(Error::BadAppId {
                url,
                answer: body.chars().take(200).collect(),
            });
        }
        Ok(app_id.to_owned())
    }

    /// `GET /session/{id}/app/{appid}`.
    pub async fn app(&self, session_id: &str, app_id: &str) -> Result<App> {
        let url = self.app_url(session_id, Some(app_id));
        match self.client.get_json(&url, self.decorate()).await {
            Ok((app, _)) => Ok(app),
            Err(err) if err.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                Err(Error::NoSuchApp {
                    session_id: session_id.to_owned(),
                    app_id: app_id.to_owned(),
                })
            }
            Err(err) => Err(self.refine(err)),
        }
    }

    /// `GET /session/{id}/app`: every desktop-app of the session.
    pub async fn apps(&self, session_id: &str) -> Result<Vec<App>> {
        let url = self.app_url(session_id, None);
        let (apps, _): (Option<Vec<App>>, _) = self
            .client
            .get_json(&url, self.decorate())
            .await
            .map_err(|err| self.refine(err))?;
        Ok(apps.unwrap_or_default())
    }

    /// `DELETE /session/{id}/app/{appid}`.
    pub async fn delete_app(&self, session_id: &str, app_id: &str) -> Result<()> {
        let url = self.app_url(session_id, Some(app_id));
        let decorate = self.decorate();
        match self
            .client
            .send(&url, |client| decorate(client.delete(&url)))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.status() == Some(reqwest::StatusCode::NOT_FOUND) => {
                Err(Error::NoSuchApp {
                    session_id: session_id.to_owned(),
                    app_id: app_id.to_owned(),
                })
            }
            Err(err) => Err(self.refine(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_read_once() {
        let app: App =
            serde_json::from_str(r#"{"appid":"a1","status":"Completed","image":"x"}"#).unwrap();
        assert_eq!(app.status, Some(Status::Completed));
        assert!(Status::parse("failed").is_over());
        assert!(!Status::parse("Pending").is_over());
        assert_eq!(Status::parse("Running").lowercase(), "running");
        assert_eq!(Status::parse("Queued"), Status::Other("Queued".to_owned()));
    }

    #[test]
    fn reads_the_context() {
        let context: Context = serde_json::from_str(
            r#"{"cores":{"default":2,"defaultRequest":1,"defaultLimit":8,"options":[1,2,4,8]},
                "memoryGB":{"default":8,"options":[1,2,4,8,16]},"gpus":{"options":[0,1]},
                "maxInteractiveSessions":3}"#,
        )
        .unwrap();
        assert_eq!(context.cores.as_ref().unwrap().default, Some(2.0));
        assert!(context.check("cores", Some(4.0)).is_ok());
        assert!(context.check("ram", None).is_ok());
        let err = context.check("ram", Some(3.0)).unwrap_err();
        assert!(err.contains("1, 2, 4, 8, 16"), "{err}");
    }
}
