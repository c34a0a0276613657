//! Maps an [`Action`] and its parameters onto the guest export to call, and
//! the guest's answer onto JSON.

use super::action::Action;
use super::bindings::types as wit;
use super::convert;
use super::error::DriverError;
use super::runtime::{CallRequest, LoadedDriver};
use super::sandbox::CallState;
use crate::model;
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::Instance;

/// A call that did not produce a result, without a wasmtime failure.
pub(crate) enum Refused {
    /// The driver reported an error.
    Driver(DriverError),
    /// The request lacks something the action needs.
    Request(String),
}

type Outcome = wasmtime::Result<Result<Value, Refused>>;

fn unit(r: Result<(), wit::DriverError>) -> Result<Value, Refused> {
    r.map(|()| Value::Null)
        .map_err(|e| Refused::Driver(convert::driver_error(e)))
}

fn value<T>(r: Result<T, wit::DriverError>, f: impl FnOnce(&T) -> Value) -> Result<Value, Refused> {
    r.map(|v| f(&v))
        .map_err(|e| Refused::Driver(convert::driver_error(e)))
}

/// The switch port for a network action: the one in the parameters, or the
/// first node interface cabled to a switch.
fn port_of(req: &CallRequest<'_>) -> Result<model::SwitchPort, Refused> {
    if let Some(p) = &req.params.switch_port {
        return Ok(p.clone());
    }
    req.node
        .and_then(|n| n.interfaces.iter().find_map(|i| i.switch_port.clone()))
        .ok_or_else(|| {
            Refused::Request(
                "no switch port: pass params.switch_port or give a node interface a switch_port"
                    .into(),
            )
        })
}

fn need<'a, T>(v: &'a Option<T>, what: &str) -> Result<&'a T, Refused> {
    v.as_ref()
        .ok_or_else(|| Refused::Request(format!("params.{what} is required")))
}

/// Calls the export for `req.action` on a fresh instance.
pub(crate) async fn dispatch(
    d: &LoadedDriver,
    store: &mut Store<CallState>,
    instance: &Instance,
    req: &CallRequest<'_>,
) -> Outcome {
    use Action::*;
    // Validated by the caller for node-scoped actions.
    let node = req.node.map(convert::node);
    let n = || node.as_ref().expect("node-scoped action has a node");
    let p = req.params;
    macro_rules! guest {
        ($iface:ident) => {
            match &d.$iface {
                Some(idx) => idx.load(&mut *store, instance)?,
                None => return Ok(Err(Refused::Request("interface not exported".into()))),
            }
        };
    }
    macro_rules! try_req {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(r) => return Ok(Err(r)),
            }
        };
    }
    let out = match req.action {
        ValidateOobServices => unit(guest!(oob).call_validate_oob_services(store, n()).await?),
        ConfigNodePxe => unit(guest!(oob).call_config_node_pxe(store, n()).await?),
        SetNodeBoot => {
            let target = convert::boot_target(&p.boot.unwrap_or_default());
            unit(guest!(oob).call_set_node_boot(store, n(), target).await?)
        }
        PowerOffNode => unit(guest!(oob).call_power_off_node(store, n()).await?),
        PowerOnNode => unit(guest!(oob).call_power_on_node(store, n()).await?),
        PowerCycleNode => unit(guest!(oob).call_power_cycle_node(store, n()).await?),
        InterrogateOob => value(
            guest!(oob).call_interrogate_oob(store, n()).await?,
            convert::oob_interrogation,
        ),
        ValidateNodeServices => unit(guest!(node).call_validate_node_services(store).await?),
        CreateNetworkTemplate => {
            let site = convert::site(try_req!(need(&p.site, "site")));
            unit(
                guest!(node)
                    .call_create_network_template(store, &site)
                    .await?,
            )
        }
        CreateStorageTemplate => unit(guest!(node).call_create_storage_template(store).await?),
        CreateBootMedia => unit(guest!(node).call_create_boot_media(store, n()).await?),
        ConfigureUserCredentials => unit(
            guest!(node)
                .call_configure_user_credentials(store, &p.ssh_keys)
                .await?,
        ),
        ConfigureNodeProvisioner => {
            let repos = convert::repositories(&p.repositories);
            unit(
                guest!(node)
                    .call_configure_node_provisioner(store, &repos)
                    .await?,
            )
        }
        PrepareHardwareConfig => unit(
            guest!(node)
                .call_prepare_hardware_config(store, n())
                .await?,
        ),
        IdentifyNode => value(
            guest!(node).call_identify_node(store, n()).await?,
            convert::node_identity,
        ),
        ConfigureHardware => unit(guest!(node).call_configure_hardware(store, n()).await?),
        InterrogateNode => value(
            guest!(node).call_interrogate_node(store, n()).await?,
            convert::node_interrogation,
        ),
        ApplyNodeNetworking => {
            let site = convert::site(try_req!(need(&p.site, "site")));
            unit(
                guest!(node)
                    .call_apply_node_networking(store, n(), &site)
                    .await?,
            )
        }
        ApplyNodeStorage => unit(guest!(node).call_apply_node_storage(store, n()).await?),
        ApplyNodePlatform => unit(guest!(node).call_apply_node_platform(store, n()).await?),
        DeployNode => {
            let options = wit::DeployOptions {
                user_data: p.user_data.clone(),
            };
            unit(guest!(node).call_deploy_node(store, n(), &options).await?)
        }
        DestroyNode => unit(guest!(node).call_destroy_node(store, n()).await?),
        AvailableImages => value(guest!(node).call_available_images(store).await?, |v| {
            Value::from(v.clone())
        }),
        AvailableKernels => {
            let image = try_req!(need(&p.image, "image")).clone();
            value(
                guest!(node).call_available_kernels(store, &image).await?,
                |v| Value::from(v.clone()),
            )
        }
        ValidateNetworkServices => {
            let switch = match (&p.switch, port_of(req)) {
                (Some(s), _) => s.clone(),
                (None, Ok(port)) => port.switch,
                (None, Err(_)) => {
                    return Ok(Err(Refused::Request(
                        "params.switch is required (or a node whose interface has a switch_port)"
                            .into(),
                    )));
                }
            };
            let switch = convert::switch(&switch);
            unit(
                guest!(network)
                    .call_validate_network_services(store, &switch)
                    .await?,
            )
        }
        InterrogatePort => {
            let port = convert::switch_port(&try_req!(port_of(req)));
            value(
                guest!(network)
                    .call_interrogate_port(store, n(), &port)
                    .await?,
                convert::port_interrogation,
            )
        }
        ConfigPortProvisioning => {
            let port = convert::switch_port(&try_req!(port_of(req)));
            let vlans = convert::port_vlans(try_req!(need(&p.vlans, "vlans")));
            unit(
                guest!(network)
                    .call_config_port_provisioning(store, n(), &port, &vlans)
                    .await?,
            )
        }
        ConfigPortProduction => {
            let port = convert::switch_port(&try_req!(port_of(req)));
            let vlans = convert::port_vlans(try_req!(need(&p.vlans, "vlans")));
            unit(
                guest!(network)
                    .call_config_port_production(store, n(), &port, &vlans)
                    .await?,
            )
        }
    };
    Ok(out)
}
