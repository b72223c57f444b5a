//! The skaha API client: the image list (a catalog source), the resource context, and the
//! desktop-app lifecycle on a platform desktop session (launch, status, stop).
//!
//! Authentication is the desktop's callback token in `x-auth-token-skaha`, a bearer token, or a
//! client certificate. Only this module knows skaha's JSON.
//! See: `shared/contracts/skaha-openapi.yaml` and `shared/reference/canfar-platform.md` §2–3.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};

use crate::catalog::{self, Catalog, FileImage};
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

/// A desktop-app as skaha reports it (a subset of the session JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct App {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub appid: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
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
        let (entries, _): (Option<Vec<FileImage>>, _) = self
            .client
            .get_json(&url, self.decorate())
            .await
            .map_err(|err| self.refine(err))?;
        Ok(catalog::from_file_images(
            entries.unwrap_or_default(),
            Some(label),
        ))
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
        let request = decorate(self.client.raw().post(&url).form(&form));
        let unanswered = |err: reqwest::Error| {
            if err.is_timeout() {
                // The request may have arrived: the app may be starting, so say so.
                Error::Unanswered { url: url.clone() }
            } else {
                Error::Http(http::Error::Connect {
                    url: url.clone(),
                    message: http::error_chain(&err),
                })
            }
        };
        let response = request.send().await.map_err(unanswered)?;
        let status = response.status();
        let body = response.text().await.map_err(|err| {
            // The app may be starting, but its id is lost.
            Error::Http(http::Error::Body {
                url: url.clone(),
                message: http::error_chain(&err),
            })
        })?;
        let message = body
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty())
            .map(|line| line.chars().take(200).collect());
        // skaha answers "session <id> not found" (`PostAction.attachDesktopApp`); any other 404
        // is a wrong URL, and the generic message below says which.
        let no_session = format!("session {session_id} not found");
        if status == reqwest::StatusCode::NOT_FOUND
            && body.to_lowercase().contains(&no_session.to_lowercase())
        {
            return Err(Error::NoSuchSession {
                url,
                session_id: session_id.to_owned(),
                message,
            });
        }
        if !status.is_success() {
            return Err(self.refine(http::Error::Status {
                url,
                status,
                message,
                retry_after: None,
            }));
        }
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
