//! The hub's state and the Standard Profile's `samp.hub.*` methods: registration, metadata,
//! subscriptions, and messages routed between clients (notify, call, replies, calls waited
//! for), with the hub's own `samp.hub.event.*` notifications.
//!
//! Messages are delivered in tasks of their own, so a sender never waits for a receiver: a
//! call the receiver cannot be reached for comes back to its sender as an error response.
//! Invariant: the state lock is never held across an await.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use super::Notice;
use super::callback::{self, Callback, Delivery};
use super::xmlrpc::{Map, Value, map};

/// The hub's own client id.
pub const HUB_ID: &str = "hub";

/// The longest a `callAndWait` may wait, whatever it asks: half a day, as JSAMP's hub.
const LONGEST_WAIT: Duration = Duration::from_secs(12 * 60 * 60);

/// How long a client that cannot be reached has to unregister before the hub reports it.
const UNREACHABLE_AFTER: Duration = Duration::from_secs(5);

/// A fault's message.
type Fault = String;

/// A registered client.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Client {
    pub id: String,
    key: String,
    /// The address its registration came from.
    pub from: IpAddr,
    pub metadata: Map,
    pub subscriptions: Map,
    pub callback: Option<Callback>,
    /// Why the last delivery to it failed, until one succeeds.
    pub unreachable: Option<String>,
}

impl Client {
    /// `samp.name`, when the client declared one.
    pub fn name(&self) -> Option<&str> {
        self.metadata.get("samp.name").and_then(Value::str)
    }
}

#[derive(Default)]
struct State {
    clients: BTreeMap<String, Client>,
    /// Private key → client id.
    by_key: HashMap<String, String>,
    next_client: u64,
    next_message: u64,
    /// Calls waited for (`callAndWait`), by message id.
    waiters: HashMap<String, oneshot::Sender<Map>>,
}

/// What a hub keeps of itself so that, killed and started again, it carries on where it was:
/// the same URL and secret, the same clients with their keys, so its clients never notice.
/// Private (it holds every client's key), kept outside the folder apps see.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Saved {
    pub url: String,
    pub secret: String,
    next_client: u64,
    clients: Vec<Client>,
}

impl Saved {
    pub fn read(path: &std::path::Path) -> Option<Saved> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// The port of the saved URL.
    pub fn port(&self) -> Option<u16> {
        super::wire::Endpoint::parse(&self.url)
            .ok()
            .map(|endpoint| endpoint.port)
    }

    /// The address of the saved URL.
    pub fn url_address(&self) -> Option<IpAddr> {
        super::wire::Endpoint::parse(&self.url).ok()?.address()
    }
}

/// The hub.
pub struct Hub {
    secret: String,
    state: Mutex<State>,
    notices: mpsc::UnboundedSender<Notice>,
    /// Woken on every change a status file shows.
    pub changed: Notify,
}

impl Hub {
    pub fn new(secret: String, notices: mpsc::UnboundedSender<Notice>) -> Arc<Hub> {
        Arc::new(Hub {
            secret,
            state: Mutex::default(),
            notices,
            changed: Notify::new(),
        })
    }

    /// A hub carrying on from `saved`: its secret and its clients.
    pub fn resume(saved: Saved, notices: mpsc::UnboundedSender<Notice>) -> Arc<Hub> {
        let hub = Hub::new(saved.secret, notices);
        {
            let mut state = hub.state();
            state.next_client = saved.next_client;
            for client in saved.clients {
                state.by_key.insert(client.key.clone(), client.id.clone());
                state.clients.insert(client.id.clone(), client);
            }
        }
        hub
    }

    /// What to save of this hub, serving at `url`.
    pub fn saved(&self, url: &str) -> Saved {
        let state = self.state();
        Saved {
            url: url.to_owned(),
            secret: self.secret.clone(),
            next_client: state.next_client,
            clients: state.clients.values().cloned().collect(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("hub state lock")
    }

    fn notice(&self, notice: Notice) {
        let _ = self.notices.send(notice);
        self.changed.notify_one();
    }

    /// The registered clients, in registration order.
    pub fn clients(&self) -> Vec<Client> {
        let mut clients: Vec<Client> = self.state().clients.values().cloned().collect();
        clients.sort_by_key(|client| client.id[1..].parse::<u64>().unwrap_or(u64::MAX));
        clients
    }

    /// Runs one `samp.hub.*` method for a caller at `from`.
    pub async fn handle(
        self: &Arc<Self>,
        method: &str,
        params: Vec<Value>,
        from: IpAddr,
    ) -> Result<Value, Fault> {
        let Some(name) = method.strip_prefix("samp.hub.") else {
            return Err(format!("no such method {method:?}"));
        };
        match name {
            "ping" => Ok(Value::empty()),
            "register" => self.register(text(&params, 0, "secret")?, from),
            _ => {
                let key = text(&params, 0, "private key")?;
                let caller =
                    self.state().by_key.get(key).cloned().ok_or_else(|| {
                        "the private key belongs to no registered client".to_owned()
                    })?;
                self.dispatch(name, &caller, &params[1..]).await
            }
        }
    }

    /// The methods of a registered caller.
    async fn dispatch(
        self: &Arc<Self>,
        name: &str,
        caller: &str,
        params: &[Value],
    ) -> Result<Value, Fault> {
        match name {
            "unregister" => self.unregister(caller),
            "declareMetadata" => {
                self.declare(caller, Declared::Metadata, map_at(params, 0, "metadata")?)
            }
            "declareSubscriptions" => self.declare(
                caller,
                Declared::Subscriptions,
                map_at(params, 0, "subscriptions")?,
            ),
            "getMetadata" => self
                .metadata_of(text(params, 0, "client id")?)
                .map(Value::Map),
            "getSubscriptions" => self
                .subscriptions_of(text(params, 0, "client id")?)
                .map(Value::Map),
            "getRegisteredClients" => Ok(Value::List(
                self.registered()
                    .into_iter()
                    .filter(|id| id != caller)
                    .map(Value::String)
                    .collect(),
            )),
            "getSubscribedClients" => Ok(Value::Map(
                self.subscribed(caller, text(params, 0, "mtype")?),
            )),
            "setXmlrpcCallback" => self.set_callback(caller, text(params, 0, "URL")?).await,
            "notify" => self.notify(
                caller,
                text(params, 0, "recipient")?,
                message_at(params, 1)?,
            ),
            "notifyAll" => Ok(self.notify_all(caller, message_at(params, 0)?)),
            "call" => self.call(
                caller,
                text(params, 0, "recipient")?,
                text(params, 1, "message tag")?,
                message_at(params, 2)?,
            ),
            "callAll" => self.call_all(
                caller,
                text(params, 0, "message tag")?,
                message_at(params, 1)?,
            ),
            "callAndWait" => {
                let timeout = text(params, 2, "timeout")?
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0);
                self.call_and_wait(
                    caller,
                    text(params, 0, "recipient")?,
                    message_at(params, 1)?,
                    timeout,
                )
                .await
            }
            "reply" => self.reply(
                caller,
                text(params, 0, "message id")?,
                map_at(params, 1, "response")?,
            ),
            _ => Err(format!("no such method \"samp.hub.{name}\"")),
        }
    }

    fn register(self: &Arc<Self>, secret: &str, from: IpAddr) -> Result<Value, Fault> {
        if secret != self.secret {
            return Err("wrong secret: read it from the hub's lockfile".to_owned());
        }
        let key = super::random_hex(16);
        let id = {
            let mut state = self.state();
            state.next_client += 1;
            let id = format!("c{}", state.next_client);
            state.by_key.insert(key.clone(), id.clone());
            state.clients.insert(
                id.clone(),
                Client {
                    id: id.clone(),
                    key: key.clone(),
                    from,
                    metadata: Map::new(),
                    subscriptions: Map::new(),
                    callback: None,
                    unreachable: None,
                },
            );
            id
        };
        tracing::info!(id, %from, "client registered");
        self.notice(Notice::Registered {
            id: id.clone(),
            from,
        });
        self.hub_event("samp.hub.event.register", map([("id", id.clone().into())]));
        Ok(Value::Map(map([
            ("samp.private-key", key.into()),
            ("samp.hub-id", HUB_ID.into()),
            ("samp.self-id", id.into()),
        ])))
    }

    fn unregister(self: &Arc<Self>, caller: &str) -> Result<Value, Fault> {
        {
            let mut state = self.state();
            if let Some(client) = state.clients.remove(caller) {
                state.by_key.remove(&client.key);
            }
        }
        tracing::info!(id = caller, "client unregistered");
        self.notice(Notice::Unregistered {
            id: caller.to_owned(),
        });
        self.hub_event("samp.hub.event.unregister", map([("id", caller.into())]));
        Ok(Value::empty())
    }

    fn declare(self: &Arc<Self>, caller: &str, what: Declared, value: Map) -> Result<Value, Fault> {
        let (mtype, key) = match what {
            Declared::Metadata => ("samp.hub.event.metadata", "metadata"),
            Declared::Subscriptions => ("samp.hub.event.subscriptions", "subscriptions"),
        };
        {
            let mut state = self.state();
            let client = state
                .clients
                .get_mut(caller)
                .ok_or_else(|| format!("client {caller} is no longer registered"))?;
            match what {
                Declared::Metadata => client.metadata = value.clone(),
                Declared::Subscriptions => {
                    if client.callback.is_none() {
                        return Err(
                            "declare a callback (setXmlrpcCallback) before subscribing".into()
                        );
                    }
                    client.subscriptions = value.clone();
                }
            }
        }
        if let (Declared::Metadata, Some(name)) =
            (what, value.get("samp.name").and_then(Value::str))
        {
            tracing::info!(id = caller, name, "client named");
        }
        self.changed.notify_one();
        self.hub_event(
            mtype,
            map([("id", caller.into()), (key, Value::Map(value))]),
        );
        Ok(Value::empty())
    }

    fn metadata_of(&self, id: &str) -> Result<Map, Fault> {
        if id == HUB_ID {
            return Ok(hub_metadata());
        }
        let state = self.state();
        let client = state.clients.get(id).ok_or_else(|| no_client(id))?;
        Ok(client.metadata.clone())
    }

    fn subscriptions_of(&self, id: &str) -> Result<Map, Fault> {
        if id == HUB_ID {
            return Ok(hub_subscriptions());
        }
        let state = self.state();
        let client = state.clients.get(id).ok_or_else(|| no_client(id))?;
        Ok(client.subscriptions.clone())
    }

    /// Every client id, the hub's first.
    fn registered(&self) -> Vec<String> {
        std::iter::once(HUB_ID.to_owned())
            .chain(self.clients().into_iter().map(|client| client.id))
            .collect()
    }

    /// The clients other than `caller` that can receive `mtype`, with their annotations.
    fn subscribed(&self, caller: &str, mtype: &str) -> Map {
        let mut found = Map::new();
        if caller != HUB_ID
            && let Some(note) = subscription(&hub_subscriptions(), mtype)
        {
            found.insert(HUB_ID.to_owned(), note);
        }
        for client in self.state().clients.values() {
            if client.id != caller
                && client.callback.is_some()
                && let Some(note) = subscription(&client.subscriptions, mtype)
            {
                found.insert(client.id.clone(), note);
            }
        }
        found
    }

    async fn set_callback(self: &Arc<Self>, caller: &str, url: &str) -> Result<Value, Fault> {
        let from = {
            let state = self.state();
            state.clients.get(caller).map(|client| client.from)
        }
        .ok_or_else(|| format!("client {caller} is no longer registered"))?;
        let callback = callback::callback(url, from)
            .await
            .map_err(|err| err.to_string())?;
        if callback.translated() {
            tracing::info!(id = caller, advertised = url, used = %callback.endpoint.url(), "callback translated");
        }
        if let Some(client) = self.state().clients.get_mut(caller) {
            client.callback = Some(callback);
        }
        self.changed.notify_one();
        Ok(Value::empty())
    }

    /// Checks that `recipient` may be sent `mtype`.
    fn check_recipient(&self, recipient: &str, mtype: &str) -> Result<(), Fault> {
        if recipient == HUB_ID {
            return match subscription(&hub_subscriptions(), mtype) {
                Some(_) => Ok(()),
                None => Err(format!("the hub is not subscribed to {mtype}")),
            };
        }
        let state = self.state();
        let client = state
            .clients
            .get(recipient)
            .ok_or_else(|| no_client(recipient))?;
        if client.callback.is_none() {
            return Err(format!("client {recipient} is not callable"));
        }
        if subscription(&client.subscriptions, mtype).is_none() {
            return Err(format!("client {recipient} is not subscribed to {mtype}"));
        }
        Ok(())
    }

    fn notify(
        self: &Arc<Self>,
        caller: &str,
        recipient: &str,
        message: Map,
    ) -> Result<Value, Fault> {
        self.check_recipient(recipient, mtype_of(&message))?;
        self.deliver(
            recipient,
            Delivery::Notification {
                sender: caller.to_owned(),
                message,
            },
        );
        Ok(Value::empty())
    }

    fn notify_all(self: &Arc<Self>, caller: &str, message: Map) -> Value {
        let recipients: Vec<String> = self
            .subscribed(caller, mtype_of(&message))
            .into_keys()
            .collect();
        for recipient in &recipients {
            self.deliver(
                recipient,
                Delivery::Notification {
                    sender: caller.to_owned(),
                    message: message.clone(),
                },
            );
        }
        Value::List(recipients.into_iter().map(Value::String).collect())
    }

    fn message_id(&self, caller: &str, waited: bool, tag: &str) -> String {
        let mut state = self.state();
        state.next_message += 1;
        let flag = if waited { "S" } else { "A" };
        format!("{caller}_{flag}_{}_{tag}", state.next_message)
    }

    fn call(
        self: &Arc<Self>,
        caller: &str,
        recipient: &str,
        tag: &str,
        message: Map,
    ) -> Result<Value, Fault> {
        self.check_recipient(recipient, mtype_of(&message))?;
        let msg_id = self.message_id(caller, false, tag);
        self.deliver(
            recipient,
            Delivery::Call {
                sender: caller.to_owned(),
                msg_id: msg_id.clone(),
                message,
            },
        );
        Ok(Value::String(msg_id))
    }

    fn call_all(self: &Arc<Self>, caller: &str, tag: &str, message: Map) -> Result<Value, Fault> {
        let msg_id = self.message_id(caller, false, tag);
        let mut sent = Map::new();
        for recipient in self.subscribed(caller, mtype_of(&message)).into_keys() {
            self.deliver(
                &recipient,
                Delivery::Call {
                    sender: caller.to_owned(),
                    msg_id: msg_id.clone(),
                    message: message.clone(),
                },
            );
            sent.insert(recipient, msg_id.clone().into());
        }
        Ok(Value::Map(sent))
    }

    async fn call_and_wait(
        self: &Arc<Self>,
        caller: &str,
        recipient: &str,
        message: Map,
        timeout_secs: u64,
    ) -> Result<Value, Fault> {
        self.check_recipient(recipient, mtype_of(&message))?;
        let msg_id = self.message_id(caller, true, "wait");
        let (sender, answer) = oneshot::channel();
        self.state().waiters.insert(msg_id.clone(), sender);
        self.deliver(
            recipient,
            Delivery::Call {
                sender: caller.to_owned(),
                msg_id: msg_id.clone(),
                message,
            },
        );
        let wait = match timeout_secs {
            0 => LONGEST_WAIT,
            secs => Duration::from_secs(secs).min(LONGEST_WAIT),
        };
        let answer = tokio::time::timeout(wait, answer).await;
        self.state().waiters.remove(&msg_id);
        match answer {
            Ok(Ok(response)) => Ok(Value::Map(response)),
            Ok(Err(_)) => Err("the call was dropped".to_owned()),
            Err(_) => Err(format!("no response within {timeout_secs} s")),
        }
    }

    fn reply(
        self: &Arc<Self>,
        responder: &str,
        msg_id: &str,
        response: Map,
    ) -> Result<Value, Fault> {
        let mut parts = msg_id.splitn(4, '_');
        let (Some(sender), Some(flag), Some(_), Some(tag)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("{msg_id:?} is no message id of this hub"));
        };
        if flag == "S" {
            let waiter = self.state().waiters.remove(msg_id);
            return match waiter {
                Some(waiter) => {
                    let _ = waiter.send(response);
                    Ok(Value::empty())
                }
                None => Err("nobody waits for this response any more (timed out?)".to_owned()),
            };
        }
        if sender != HUB_ID && !self.state().clients.contains_key(sender) {
            return Err(format!("the sender {sender} is no longer registered"));
        }
        self.deliver(
            sender,
            Delivery::Response {
                responder: responder.to_owned(),
                tag: tag.to_owned(),
                response,
            },
        );
        Ok(Value::empty())
    }

    /// Notifies the hub's subscribers of a hub event.
    fn hub_event(self: &Arc<Self>, mtype: &str, params: Map) {
        let message = map([
            ("samp.mtype", mtype.into()),
            ("samp.params", Value::Map(params)),
        ]);
        self.notify_all(HUB_ID, message);
    }

    /// Announces the hub's end to its subscribers, waiting (within a bound) for them to hear it.
    pub async fn shut_down(self: &Arc<Self>) {
        let message = map([
            ("samp.mtype", "samp.hub.event.shutdown".into()),
            ("samp.params", Value::Map(Map::new())),
        ]);
        let mut sent = Vec::new();
        for recipient in self
            .subscribed(HUB_ID, "samp.hub.event.shutdown")
            .into_keys()
        {
            let delivery = Delivery::Notification {
                sender: HUB_ID.to_owned(),
                message: message.clone(),
            };
            if let Some((endpoint, key)) = self.endpoint_of(&recipient) {
                sent.push(async move { callback::deliver(&endpoint, &key, delivery).await });
            }
        }
        let all = futures_util::future::join_all(sent);
        let _ = tokio::time::timeout(Duration::from_secs(2), all).await;
    }

    fn endpoint_of(&self, id: &str) -> Option<(crate::samp::wire::Endpoint, String)> {
        let state = self.state();
        let client = state.clients.get(id)?;
        Some((
            client.callback.as_ref()?.endpoint.clone(),
            client.key.clone(),
        ))
    }

    /// Delivers a message in a task of its own. The hub answers its own calls (`samp.app.ping`);
    /// a call that cannot be delivered is answered to its sender with an error.
    fn deliver(self: &Arc<Self>, recipient: &str, delivery: Delivery) {
        if recipient == HUB_ID {
            if let Delivery::Call {
                msg_id, message, ..
            } = delivery
            {
                let response = match mtype_of(&message) {
                    "samp.app.ping" => ok_response(),
                    other => error_response(&format!("the hub does not answer {other}")),
                };
                let _ = self.reply(HUB_ID, &msg_id, response);
            }
            return;
        }
        let Some((endpoint, key)) = self.endpoint_of(recipient) else {
            self.undelivered(recipient, &delivery, "it has no callback".to_owned());
            return;
        };
        let hub = Arc::clone(self);
        let recipient = recipient.to_owned();
        tokio::spawn(async move {
            match callback::deliver(&endpoint, &key, delivery.clone()).await {
                Ok(()) => hub.reachable(&recipient),
                Err(error) => {
                    tracing::warn!(
                        id = recipient,
                        mtype = delivery.mtype(),
                        "delivery failed: {error}"
                    );
                    hub.unreachable(&recipient, &endpoint.url(), &error);
                    hub.undelivered(&recipient, &delivery, error);
                }
            }
        });
    }

    /// Answers an undeliverable call to its sender with an error response.
    fn undelivered(self: &Arc<Self>, recipient: &str, delivery: &Delivery, error: String) {
        if let Delivery::Call { msg_id, .. } = delivery {
            let text = format!("the hub could not reach {recipient}: {error}");
            let _ = self.reply(recipient, msg_id, error_response(&text));
        }
    }

    fn reachable(&self, id: &str) {
        let mut state = self.state();
        if let Some(client) = state.clients.get_mut(id)
            && client.unreachable.take().is_some()
        {
            drop(state);
            self.changed.notify_one();
        }
    }

    /// Records a failed delivery. The first of a run is a notice, once the client has had
    /// time to unregister: a client on its way out stops serving callbacks before it says so.
    fn unreachable(self: &Arc<Self>, id: &str, url: &str, error: &str) {
        {
            let mut state = self.state();
            let Some(client) = state.clients.get_mut(id) else {
                return;
            };
            if client.unreachable.replace(error.to_owned()).is_some() {
                return;
            }
        }
        self.changed.notify_one();
        let (hub, id, url) = (Arc::clone(self), id.to_owned(), url.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(UNREACHABLE_AFTER).await;
            let still = {
                let state = hub.state();
                state.clients.get(&id).and_then(|client| {
                    Some((
                        client.unreachable.clone()?,
                        client.name().map(str::to_owned),
                    ))
                })
            };
            if let Some((error, name)) = still {
                hub.notice(Notice::Unreachable {
                    id,
                    name,
                    url,
                    error,
                });
            }
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum Declared {
    Metadata,
    Subscriptions,
}

fn hub_metadata() -> Map {
    map([
        ("samp.name", "Hub".into()),
        (
            "samp.description.text",
            "arcade's SAMP hub for the apps of this desktop session".into(),
        ),
        ("arcade.version", env!("CARGO_PKG_VERSION").into()),
    ])
}

fn hub_subscriptions() -> Map {
    map([("samp.app.ping", Value::Map(Map::new()))])
}

fn ok_response() -> Map {
    map([
        ("samp.status", "samp.ok".into()),
        ("samp.result", Value::Map(Map::new())),
    ])
}

fn error_response(text: &str) -> Map {
    map([
        ("samp.status", "samp.error".into()),
        (
            "samp.error",
            Value::Map(map([("samp.errortxt", text.into())])),
        ),
    ])
}

/// The annotation under which `subscriptions` cover `mtype`: an exact key, else the most
/// specific wildcard (`samp.app.*`, `samp.*`, `*`).
pub fn subscription(subscriptions: &Map, mtype: &str) -> Option<Value> {
    if let Some(note) = subscriptions.get(mtype) {
        return Some(note.clone());
    }
    subscriptions
        .iter()
        .filter(|(pattern, _)| wildcard_matches(pattern, mtype))
        .max_by_key(|(pattern, _)| pattern.len())
        .map(|(_, note)| note.clone())
}

fn wildcard_matches(pattern: &str, mtype: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => mtype.starts_with(prefix),
        _ => false,
    }
}

fn no_client(id: &str) -> Fault {
    format!("no registered client with id {id:?}")
}

fn text<'a>(params: &'a [Value], at: usize, what: &str) -> Result<&'a str, Fault> {
    params
        .get(at)
        .and_then(Value::str)
        .ok_or_else(|| format!("parameter {} ({what}) must be a string", at + 1))
}

fn map_at(params: &[Value], at: usize, what: &str) -> Result<Map, Fault> {
    params
        .get(at)
        .and_then(Value::map)
        .cloned()
        .ok_or_else(|| format!("parameter {} ({what}) must be a map", at + 1))
}

/// A message parameter: a map with a string `samp.mtype` (and `samp.params`, added empty when
/// missing).
fn message_at(params: &[Value], at: usize) -> Result<Map, Fault> {
    let mut message = map_at(params, at, "message")?;
    if message.get("samp.mtype").and_then(Value::str).is_none() {
        return Err("a message needs a string samp.mtype".to_owned());
    }
    message
        .entry("samp.params".to_owned())
        .or_insert_with(|| Value::Map(Map::new()));
    Ok(message)
}

fn mtype_of(message: &Map) -> &str {
    message
        .get("samp.mtype")
        .and_then(Value::str)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_match_exactly_or_by_wildcard() {
        let subs = map([
            ("samp.app.ping", "exact".into()),
            ("samp.*", "samp".into()),
            ("table.load.*", "tables".into()),
        ]);
        assert_eq!(subscription(&subs, "samp.app.ping"), Some("exact".into()));
        assert_eq!(
            subscription(&subs, "samp.hub.event.register"),
            Some("samp".into())
        );
        assert_eq!(
            subscription(&subs, "table.load.votable"),
            Some("tables".into())
        );
        assert_eq!(subscription(&subs, "table.highlight.row"), None);
        assert_eq!(subscription(&subs, "sampx.y"), None);
        let all = map([("*", Value::Map(Map::new()))]);
        assert!(subscription(&all, "anything.at.all").is_some());
    }

    #[tokio::test]
    async fn registration_needs_the_secret_and_gives_fresh_ids() {
        let (notices, _seen) = mpsc::unbounded_channel();
        let hub = Hub::new("s".into(), notices);
        let from: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            hub.handle("samp.hub.register", vec!["x".into()], from)
                .await
                .is_err()
        );
        let first = hub
            .handle("samp.hub.register", vec!["s".into()], from)
            .await
            .unwrap();
        let second = hub
            .handle("samp.hub.register", vec!["s".into()], from)
            .await
            .unwrap();
        let field = |value: &Value, key: &str| value.map().unwrap()[key].str().unwrap().to_owned();
        assert_ne!(
            field(&first, "samp.self-id"),
            field(&second, "samp.self-id")
        );
        assert_ne!(
            field(&first, "samp.private-key"),
            field(&second, "samp.private-key")
        );
        assert_eq!(field(&first, "samp.hub-id"), HUB_ID);

        let key = field(&first, "samp.private-key");
        let others = hub
            .handle(
                "samp.hub.getRegisteredClients",
                vec![key.clone().into()],
                from,
            )
            .await
            .unwrap();
        assert_eq!(
            others,
            Value::List(vec![HUB_ID.into(), field(&second, "samp.self-id").into()])
        );
        // Subscribing needs a callback first; unknown methods and keys are faults.
        let subscribe = hub
            .handle(
                "samp.hub.declareSubscriptions",
                vec![key.clone().into(), Value::Map(Map::new())],
                from,
            )
            .await;
        assert!(subscribe.is_err());
        assert!(
            hub.handle("samp.hub.nothing", vec![key.into()], from)
                .await
                .is_err()
        );
        assert!(
            hub.handle("samp.hub.unregister", vec!["nokey".into()], from)
                .await
                .is_err()
        );
    }
}
