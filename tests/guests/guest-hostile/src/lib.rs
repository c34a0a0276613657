//! Test guest `hostile`: an oob driver that floods the host service named by
//! its `attack` setting, `count` times (default 100 000), and answers, as
//! `interrogate_oob`'s raw JSON, how far it got and what the host answered.
//!
//! Attacks:
//! - `kv`: writes `count` distinct keys (`NODE-key-N`) of `size` bytes (default 100);
//! - `kv-rewrite`: writes one key `count` times;
//! - `kv-swap`: `count` times, a compare-and-swap of one key that cannot
//!   match (counted in `mismatched`) and one from its value to a new one;
//! - `messages`: posts `count` status messages of `size` bytes;
//! - `egress`: makes `count` requests to `url` (which the host should deny);
//! - `logs`: writes `count` log lines, each with an embedded newline that
//!   would forge a second log record;
//! - `build-data`: stores `count` build data items of `size` bytes;
//! - `connections`: opens `count` requests to `url` at once and holds every
//!   response it gets until the call ends;
//! - `error`: fails with an error text of `size` bytes;
//! - `memory`: allocates 1 MiB blocks until the host refuses to grow its
//!   memory.
//!
//! The answer: `{"attack": ..., "done": <accepted>, "refused": <refused>,
//! "limit": <first limit named by the host>, "max": <its value>}`.

use drydock_sdk::prelude::*;
use drydock_sdk::wit::drydock::driver::host;
use serde_json::{Value, json};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, OutgoingRequest, Scheme};

/// The flooding driver.
struct Hostile;

impl Driver for Hostile {
    const NAME: &'static str = "hostile";
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "Floods the host service named by its `attack` setting";
    const OOB_TYPES: &'static [&'static str] = &["hostile"];
}

/// What the host answered so far.
#[derive(Default)]
struct Tally {
    done: u64,
    refused: u64,
    limit: Option<(String, u64)>,
}

impl Tally {
    fn note(&mut self, r: std::result::Result<(), LimitExceeded>) {
        match r {
            Ok(()) => self.done += 1,
            Err(e) => {
                self.refused += 1;
                self.limit.get_or_insert((e.limit, e.max));
            }
        }
    }

    fn json(&self, attack: &str) -> Value {
        json!({
            "attack": attack,
            "done": self.done,
            "refused": self.refused,
            "limit": self.limit.as_ref().map(|l| l.0.clone()),
            "max": self.limit.as_ref().map(|l| l.1),
        })
    }
}

/// Starts a GET of `url` (`http://host:port/path`) without waiting.
fn start_get(url: &str) -> Result<outgoing_handler::FutureIncomingResponse> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| DriverError::InvalidInput(format!("`{url}` is not an http:// URL")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let invalid = || DriverError::InvalidInput(format!("invalid URL `{url}`"));
    request
        .set_scheme(Some(&Scheme::Http))
        .map_err(|()| invalid())?;
    request
        .set_authority(Some(authority))
        .map_err(|()| invalid())?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| invalid())?;
    outgoing_handler::handle(request, None)
        .map_err(|e| DriverError::Unreachable(format!("request refused at once: {e:?}")))
}

/// Waits for a started request.
fn wait(
    pending: &outgoing_handler::FutureIncomingResponse,
) -> std::result::Result<wasip2::http::types::IncomingResponse, ErrorCode> {
    loop {
        match pending.get() {
            Some(result) => return result.expect("a response taken once"),
            None => pending.subscribe().block(),
        }
    }
}

fn attack(ctx: &Ctx, node: &str) -> Result<Value> {
    let attack = ctx.config("attack").unwrap_or_default();
    let count: u64 = ctx.config_or("count", 100_000)?;
    let size: usize = ctx.config_or("size", 100)?;
    let filler = "x".repeat(size);
    let mut tally = Tally::default();
    match attack.as_str() {
        "kv" => {
            for i in 0..count {
                tally.note(host::kv_set(&format!("{node}-key-{i:08}"), &filler));
                if tally.refused > 0 {
                    break;
                }
            }
        }
        "kv-rewrite" => {
            for _ in 0..count {
                tally.note(host::kv_set("the-key", &filler));
            }
        }
        "kv-swap" => {
            let mut now: Option<String> = None;
            let mut mismatched = 0u64;
            for i in 0..count {
                if matches!(
                    host::kv_compare_and_swap("the-key", Some("never"), None),
                    Ok(false)
                ) {
                    mismatched += 1;
                }
                let next = format!("v{i}");
                match host::kv_compare_and_swap("the-key", now.as_deref(), Some(&next)) {
                    Ok(true) => {
                        tally.done += 1;
                        now = Some(next);
                    }
                    Ok(false) => {}
                    Err(e) => tally.note(Err(e)),
                }
            }
            let mut answer = tally.json(&attack);
            answer["mismatched"] = json!(mismatched);
            answer["value"] = json!(now);
            return Ok(answer);
        }
        "messages" => {
            for _ in 0..count {
                tally.note(host::status(&filler, false));
            }
        }
        "egress" => {
            let url = ctx.config("url").unwrap_or_default();
            for _ in 0..count {
                match wait(&start_get(&url)?) {
                    Ok(_) => tally.done += 1,
                    Err(_) => tally.refused += 1,
                }
            }
        }
        "logs" => {
            for i in 0..count {
                let line = format!("line {i}\nINFO driver::other: forged record {i}");
                tally.note(host::log(LogLevel::Info, &line));
            }
        }
        "build-data" => {
            for _ in 0..count {
                tally.note(host::build_data("hostile", "text/plain", &filler));
            }
        }
        "connections" => {
            let url = ctx.config("url").unwrap_or_default();
            let pending: Vec<_> = (0..count).map(|_| start_get(&url)).collect::<Result<_>>()?;
            // Responses are kept (their bodies unread) until the call ends.
            let mut held = Vec::new();
            for p in &pending {
                match wait(p) {
                    Ok(response) => {
                        tally.done += 1;
                        held.push(response);
                    }
                    Err(ErrorCode::ConnectionLimitReached) => {
                        tally.refused += 1;
                        tally
                            .limit
                            .get_or_insert(("connection-limit-reached".into(), 0));
                    }
                    Err(e) => return Err(DriverError::Unreachable(format!("{e:?}"))),
                }
            }
        }
        "error" => return Err(DriverError::Failed(filler)),
        "memory" => {
            let mut held: Vec<Vec<u8>> = Vec::new();
            for i in 0..count {
                held.push(vec![(i % 251) as u8; 1 << 20]);
                tally.done += 1;
            }
            tally.refused = held.len() as u64;
        }
        other => {
            return Err(DriverError::InvalidInput(format!(
                "unknown attack `{other}`"
            )));
        }
    }
    Ok(tally.json(&attack))
}

impl OobDriver for Hostile {
    fn interrogate_oob(ctx: &Ctx, node: &Node) -> Result<OobInterrogation> {
        let answer = attack(ctx, &node.name)?;
        Ok(OobInterrogation {
            facts: OobFacts {
                power: PowerState::Unknown,
                boot_override: None,
                manufacturer: None,
                model: None,
                serial: None,
                bios_version: None,
                macs: Vec::new(),
            },
            raw_json: answer.to_string(),
        })
    }
}

drydock_sdk::export_driver!(Hostile: oob);
