//! Clients' callback servers: where the hub delivers messages, with the URL a client advertised
//! translated when the hub cannot use it as it is, and the three client methods posted to it.
//!
//! Clients in containers and pods advertise what they believe their address is: JSAMP says
//! 127.0.0.1 unless told otherwise, DS9 its host name, which only its own `/etc/hosts` knows.
//! Neither reaches the client from the hub's side when the client lives at another address,
//! but the address its registration came from does: that is the address the hub uses, keeping
//! the advertised port and path.

use std::net::IpAddr;
use std::time::Duration;

use super::wire::{self, Endpoint};
use super::xmlrpc::{self, Map, Value};

/// How long a name in a callback URL may take to resolve before it counts as unresolvable.
const RESOLVE_WITHIN: Duration = Duration::from_secs(2);

/// How long one delivery may take: receivers answer at once and work afterwards, but a busy
/// single-threaded one (DS9 loading an image) may keep the hub waiting a while.
pub const DELIVER_WITHIN: Duration = Duration::from_secs(60);

/// A client's callback server, as advertised and as the hub reaches it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Callback {
    pub advertised: String,
    pub endpoint: Endpoint,
}

impl Callback {
    /// Whether the hub uses another address than the one the client advertised.
    pub fn translated(&self) -> bool {
        self.endpoint.url() != self.advertised
    }
}

/// What the hub makes of the host in a callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// An address, or a name resolving to these kinds of address.
    Loopback,
    Other,
    /// A name that does not resolve from the hub's side.
    Unresolvable,
}

/// Whether a callback host must be replaced by the address the registration came from: a name
/// the hub cannot resolve, or a loopback address when the client is not on the hub's loopback.
pub fn needs_translation(host: Host, from: IpAddr) -> bool {
    match host {
        Host::Unresolvable => true,
        Host::Loopback => !from.is_loopback(),
        Host::Other => false,
    }
}

/// The callback for `url`, advertised by a client whose registration came from `from`.
pub async fn callback(url: &str, from: IpAddr) -> Result<Callback, wire::Error> {
    let endpoint = Endpoint::parse(url)?;
    let host = classify(&endpoint).await;
    let endpoint = if needs_translation(host, from) {
        endpoint.with_host(from)
    } else {
        endpoint
    };
    Ok(Callback {
        advertised: url.to_owned(),
        endpoint,
    })
}

async fn classify(endpoint: &Endpoint) -> Host {
    let kind = |address: IpAddr| {
        if address.is_loopback() {
            Host::Loopback
        } else {
            Host::Other
        }
    };
    if let Some(address) = endpoint.address() {
        return kind(address);
    }
    if endpoint.host.eq_ignore_ascii_case("localhost") {
        return Host::Loopback;
    }
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout(RESOLVE_WITHIN, lookup).await {
        Ok(Ok(addresses)) => {
            let addresses: Vec<IpAddr> = addresses.map(|address| address.ip()).collect();
            if addresses.is_empty() {
                Host::Unresolvable
            } else if addresses.iter().all(IpAddr::is_loopback) {
                Host::Loopback
            } else {
                Host::Other
            }
        }
        _ => Host::Unresolvable,
    }
}

/// A message for a client, as one of the three `samp.client.*` methods carries it.
#[derive(Debug, Clone)]
pub enum Delivery {
    Notification {
        sender: String,
        message: Map,
    },
    Call {
        sender: String,
        msg_id: String,
        message: Map,
    },
    Response {
        responder: String,
        tag: String,
        response: Map,
    },
}

impl Delivery {
    /// The message's MType, for logs.
    pub fn mtype(&self) -> &str {
        match self {
            Delivery::Notification { message, .. } | Delivery::Call { message, .. } => message
                .get("samp.mtype")
                .and_then(Value::str)
                .unwrap_or("?"),
            Delivery::Response { .. } => "(response)",
        }
    }
}

/// Posts `delivery` to a client's callback server, with the client's private key as its
/// first parameter, as the Standard Profile has it.
pub async fn deliver(endpoint: &Endpoint, key: &str, delivery: Delivery) -> Result<(), String> {
    let (method, params) = match delivery {
        Delivery::Notification { sender, message } => (
            "samp.client.receiveNotification",
            vec![key.into(), sender.into(), message.into()],
        ),
        Delivery::Call {
            sender,
            msg_id,
            message,
        } => (
            "samp.client.receiveCall",
            vec![key.into(), sender.into(), msg_id.into(), message.into()],
        ),
        Delivery::Response {
            responder,
            tag,
            response,
        } => (
            "samp.client.receiveResponse",
            vec![key.into(), responder.into(), tag.into(), response.into()],
        ),
    };
    let body = wire::post(endpoint, &xmlrpc::call(method, &params), DELIVER_WITHIN)
        .await
        .map_err(|err| err.to_string())?;
    match xmlrpc::parse_response(&body) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(fault)) => Err(format!("{} refused {method}: {fault}", endpoint.url())),
        Err(err) => Err(format!("{} answered {method} with {err}", endpoint.url())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_translated() {
        let pod: IpAddr = "198.18.3.7".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        // A JSAMP client in a pod says 127.0.0.1; on the hub's own loopback, that is right.
        assert!(needs_translation(Host::Loopback, pod));
        assert!(!needs_translation(Host::Loopback, loopback));
        // DS9 says its host name, which only its pod resolves.
        assert!(needs_translation(Host::Unresolvable, pod));
        assert!(needs_translation(Host::Unresolvable, loopback));
        // A client that advertises a reachable address keeps it.
        assert!(!needs_translation(Host::Other, pod));
    }

    #[tokio::test]
    async fn callbacks_keep_port_and_path() {
        let pod: IpAddr = "198.18.3.7".parse().unwrap();
        let jsamp = callback("http://127.0.0.1:40123/xmlrpc", pod)
            .await
            .unwrap();
        assert_eq!(jsamp.endpoint.url(), "http://198.18.3.7:40123/xmlrpc");
        assert!(jsamp.translated());
        let ds9 = callback("http://ds9-8-4.invalid:45678/", pod)
            .await
            .unwrap();
        assert_eq!(ds9.endpoint.url(), "http://198.18.3.7:45678/");
        let direct = callback("http://198.18.3.9:1/x", pod).await.unwrap();
        assert!(!direct.translated());
        assert!(callback("https://x/", pod).await.is_err());
    }
}
