// The probe shared by `guest-http` and `guest-bmc-probe` (included by
// both, which define `PROBE_NAME` and `PROBE_NODE_BMC`).

use drydock_sdk::http::Request;
use drydock_sdk::prelude::*;
use serde_json::json;

/// The probing driver.
struct HttpProbe;

impl Driver for HttpProbe {
    const NAME: &'static str = PROBE_NAME;
    const VERSION: &'static str = "0.1.0";
    const VENDOR: &'static str = "Drydock tests";
    const DESCRIPTION: &'static str = "Requests the URL in its `url` setting";
    const OOB_TYPES: &'static [&'static str] = &[PROBE_NAME];
    const NODE_BMC: bool = PROBE_NODE_BMC;
}

fn url(ctx: &Ctx) -> Result<String> {
    ctx.config("url")
        .ok_or_else(|| DriverError::InvalidInput("driver setting `url` is required".to_string()))
}

impl OobDriver for HttpProbe {
    fn interrogate_oob(ctx: &Ctx, _node: &Node) -> Result<OobInterrogation> {
        let response = Request::get(url(ctx)?).send()?;
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
            raw_json: json!({ "status": response.status, "body": response.text() }).to_string(),
        })
    }

    fn power_on_node(ctx: &Ctx, node: &Node) -> Result<()> {
        let response = Request::post(url(ctx)?)
            .json(&json!({ "node": node.name }))?
            .send()?
            .error_for_status()?;
        if !(200..300).contains(&response.status) {
            // 1xx or 3xx: the client follows no redirects.
            return Err(DriverError::Failed(format!(
                "{} answered HTTP {}",
                response.host(),
                response.status
            )));
        }
        Ok(())
    }

    fn power_off_node(ctx: &Ctx, _node: &Node) -> Result<()> {
        let name = ctx.config("token_secret").unwrap_or_default();
        let token = ctx.secret(&name).ok_or_else(|| {
            DriverError::InvalidInput(format!("secret `{name}` is not granted to this driver"))
        })?;
        Request::post(url(ctx)?)
            .header("authorization", format!("Bearer {token}"))
            .send()?
            .error_for_status()?;
        Ok(())
    }
}

drydock_sdk::export_driver!(HttpProbe: oob);
