//! Maps an [`Action`] and its parameters onto the guest export to call, in
//! the driver's WIT version, and the guest's answer onto JSON.
//!
//! The actions every version has are dispatched by one body of code,
//! [`dispatcher!`], expanded once per version with that version's bindings
//! and conversions; actions a version added come as extra match arms.

use super::action::Action;
use super::bindings::{self, Exports};
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

/// A driver error of any served version in host terms.
trait IntoDriverError {
    fn into_driver_error(self) -> DriverError;
}

impl IntoDriverError for bindings::v0_1::types::DriverError {
    fn into_driver_error(self) -> DriverError {
        convert::v0_1::driver_error(self)
    }
}

impl IntoDriverError for bindings::v0_2::types::DriverError {
    fn into_driver_error(self) -> DriverError {
        convert::v0_2::driver_error(self)
    }
}

fn unit<E: IntoDriverError>(r: Result<(), E>) -> Result<Value, Refused> {
    r.map(|()| Value::Null)
        .map_err(|e| Refused::Driver(e.into_driver_error()))
}

fn value<T, E: IntoDriverError>(
    r: Result<T, E>,
    f: impl FnOnce(&T) -> Value,
) -> Result<Value, Refused> {
    r.map(|v| f(&v))
        .map_err(|e| Refused::Driver(e.into_driver_error()))
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

/// Calls the export for `req.action` on a fresh instance, in the driver's
/// WIT version.
pub(crate) async fn dispatch(
    d: &LoadedDriver,
    store: &mut Store<CallState>,
    instance: &Instance,
    req: &CallRequest<'_>,
) -> Outcome {
    match &d.exports {
        Exports::V0_1(exports) => v0_1(exports, store, instance, req).await,
        Exports::V0_2(exports) => v0_2(exports, store, instance, req).await,
    }
}

/// Defines `$name`, the dispatcher of version `$v` (the name of its
/// `bindings` and `convert` modules). Actions added after 0.1.0 go to
/// `$later`, the version's own function. `$d` is `$`, for the macros inside.
macro_rules! dispatcher {
    ($d:tt, $name:ident, $v:ident, $later:ident) => {
        async fn $name(
            exports: &bindings::$v::Exports,
            store: &mut Store<CallState>,
            instance: &Instance,
            req: &CallRequest<'_>,
        ) -> Outcome {
            use Action::*;
            // Present: validated by the caller for node-scoped actions.
            let node = match req.node.map(convert::$v::node).transpose() {
                Ok(n) => n,
                Err(e) => return Ok(Err(Refused::Request(format!("the node's design: {e}")))),
            };
            let n = || node.as_ref().expect("node-scoped action has a node");
            let p = req.params;
            macro_rules! guest {
                ($d iface:ident) => {
                    match &exports.$d iface {
                        Some(funcs) => funcs,
                        None => return Ok(Err(Refused::Request("interface not exported".into()))),
                    }
                };
            }
            macro_rules! try_req {
                ($d e:expr) => {
                    match $d e {
                        Ok(v) => v,
                        Err(r) => return Ok(Err(r)),
                    }
                };
            }
            let out = match req.action {
                ValidateOobServices => unit(guest!(oob).call_validate_oob_services(store, instance, n()).await?),
                ConfigNodePxe => unit(guest!(oob).call_config_node_pxe(store, instance, n()).await?),
                SetNodeBoot => {
                    let target = convert::$v::boot_target(&p.boot.unwrap_or_default());
                    unit(guest!(oob).call_set_node_boot(store, instance, n(), target).await?)
                }
                PowerOffNode => unit(guest!(oob).call_power_off_node(store, instance, n()).await?),
                PowerOnNode => unit(guest!(oob).call_power_on_node(store, instance, n()).await?),
                PowerCycleNode => unit(guest!(oob).call_power_cycle_node(store, instance, n()).await?),
                InterrogateOob => value(
                    guest!(oob).call_interrogate_oob(store, instance, n()).await?,
                    convert::$v::oob_interrogation,
                ),
                ValidateNodeServices => unit(guest!(node).call_validate_node_services(store, instance).await?),
                CreateNetworkTemplate => {
                    let site = convert::$v::site(try_req!(need(&p.site, "site")));
                    unit(
                        guest!(node)
                            .call_create_network_template(store, instance, &site)
                            .await?,
                    )
                }
                CreateStorageTemplate => unit(guest!(node).call_create_storage_template(store, instance).await?),
                CreateBootMedia => unit(guest!(node).call_create_boot_media(store, instance, n()).await?),
                ConfigureUserCredentials => unit(
                    guest!(node)
                        .call_configure_user_credentials(store, instance, &p.ssh_keys)
                        .await?,
                ),
                ConfigureNodeProvisioner => {
                    let repos = convert::$v::repositories(&p.repositories);
                    unit(
                        guest!(node)
                            .call_configure_node_provisioner(store, instance, &repos)
                            .await?,
                    )
                }
                PrepareHardwareConfig => unit(
                    guest!(node)
                        .call_prepare_hardware_config(store, instance, n())
                        .await?,
                ),
                IdentifyNode => value(
                    guest!(node).call_identify_node(store, instance, n()).await?,
                    convert::$v::node_identity,
                ),
                ConfigureHardware => unit(guest!(node).call_configure_hardware(store, instance, n()).await?),
                InterrogateNode => value(
                    guest!(node).call_interrogate_node(store, instance, n()).await?,
                    convert::$v::node_interrogation,
                ),
                ApplyNodeNetworking => {
                    let site = convert::$v::site(try_req!(need(&p.site, "site")));
                    unit(
                        guest!(node)
                            .call_apply_node_networking(store, instance, n(), &site)
                            .await?,
                    )
                }
                ApplyNodeStorage => unit(guest!(node).call_apply_node_storage(store, instance, n()).await?),
                ApplyNodePlatform => unit(guest!(node).call_apply_node_platform(store, instance, n()).await?),
                DeployNode => {
                    let options = bindings::$v::types::DeployOptions {
                        user_data: p.user_data.clone(),
                    };
                    unit(guest!(node).call_deploy_node(store, instance, n(), &options).await?)
                }
                DestroyNode => unit(guest!(node).call_destroy_node(store, instance, n()).await?),
                AvailableImages => value(guest!(node).call_available_images(store, instance).await?, |v| {
                    Value::from(v.clone())
                }),
                AvailableKernels => {
                    let image = try_req!(need(&p.image, "image")).clone();
                    value(
                        guest!(node).call_available_kernels(store, instance, &image).await?,
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
                    let switch = convert::$v::switch(&switch);
                    unit(
                        guest!(network)
                            .call_validate_network_services(store, instance, &switch)
                            .await?,
                    )
                }
                InterrogatePort => {
                    let port = convert::$v::switch_port(&try_req!(port_of(req)));
                    value(
                        guest!(network)
                            .call_interrogate_port(store, instance, n(), &port)
                            .await?,
                        convert::$v::port_interrogation,
                    )
                }
                ConfigPortProvisioning => {
                    let port = convert::$v::switch_port(&try_req!(port_of(req)));
                    let vlans = convert::$v::port_vlans(try_req!(need(&p.vlans, "vlans")));
                    unit(
                        guest!(network)
                            .call_config_port_provisioning(store, instance, n(), &port, &vlans)
                            .await?,
                    )
                }
                ConfigPortProduction => {
                    let port = convert::$v::switch_port(&try_req!(port_of(req)));
                    let vlans = convert::$v::port_vlans(try_req!(need(&p.vlans, "vlans")));
                    unit(
                        guest!(network)
                            .call_config_port_production(store, instance, n(), &port, &vlans)
                            .await?,
                    )
                }
                RelabelNode => {
                    return $later(exports, store, instance, req, node.as_ref()).await;
                }
            };
            Ok(out)
        }
    };
}

dispatcher!($, v0_1, v0_1, v0_1_later);
dispatcher!($, v0_2, v0_2, v0_2_later);

/// 0.1.0 has no action added later.
async fn v0_1_later(
    _exports: &bindings::v0_1::Exports,
    _store: &mut Store<CallState>,
    _instance: &Instance,
    req: &CallRequest<'_>,
    _node: Option<&bindings::v0_1::types::Node>,
) -> Outcome {
    Ok(Err(Refused::Request(format!(
        "{} needs a driver built against drydock:driver@0.2.0 or later",
        req.action
    ))))
}

/// The actions 0.2.0 added: `relabel_node`.
async fn v0_2_later(
    exports: &bindings::v0_2::Exports,
    store: &mut Store<CallState>,
    instance: &Instance,
    req: &CallRequest<'_>,
    node: Option<&bindings::v0_2::types::Node>,
) -> Outcome {
    let Some(provisioner) = &exports.provisioner else {
        return Ok(Err(Refused::Request("interface not exported".into())));
    };
    let Some(node) = node else {
        return Ok(Err(Refused::Request("this action needs a node".into())));
    };
    let labels: Vec<(String, String)> = req
        .node
        .map(|n| {
            n.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(unit(
        provisioner
            .call_relabel_node(store, instance, node, &labels)
            .await?,
    ))
}
