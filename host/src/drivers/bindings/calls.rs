//! The driver interfaces' exported functions, looked up and type-checked
//! once per loaded component, and called per call by index without
//! checking any type again.
//!
//! `bindgen!`'s own `GuestIndices::load` type-checks every function of an
//! interface each time it is used on an instance (17 for `node`); a call
//! needs one function. [`exported_interface!`] defines, per interface, the
//! export indices of its functions, built only by type-checking each of
//! them on an instance of the component at load, and one `call_*` method
//! per function: the function by index, typed without a check (the types
//! are the ones checked at load, written once in the macro's table), called.
//!
//! The tables ([`driver_interfaces!`] for the interfaces every version has,
//! `provisioner` in `v0_2`) are expanded inside each version's module, so
//! `types::…` names that version's types.

/// Defines `$Name`: the checked export indices of interface `$iface`'s
/// functions and a `call_*` method per function. Expanded in a version's
/// bindings module (`types`, `CallState`, `Store`, `Instance` and
/// `InstancePre` in scope).
macro_rules! exported_interface {
    (
        $(#[$doc:meta])*
        $Name:ident = $iface:literal {
            $( $call:ident / $index:ident = $fname:literal ( $($arg:ident : $ty:ty),* ) -> $ret:ty; )*
        }
    ) => {
        $(#[$doc])*
        pub(crate) struct $Name {
            $( $index: wasmtime::component::ComponentExportIndex, )*
        }

        impl $Name {
            /// The interface's functions in the component of `pre`, each
            /// type-checked on `instance` (an instance of `pre`). `None` if
            /// the component does not export the interface (or lacks one of
            /// its functions); an error if a function has another type.
            pub(crate) fn load(
                version: &str,
                pre: &InstancePre<CallState>,
                store: &mut Store<CallState>,
                instance: &Instance,
            ) -> Option<wasmtime::Result<Self>> {
                use wasmtime::error::Context as _;
                let component = pre.component();
                let name = format!("drydock:driver/{}@{version}", $iface);
                let iface = component.get_export_index(None, &name)?;
                let this = Self {
                    $( $index: component.get_export_index(Some(&iface), $fname)?, )*
                };
                let check = || -> wasmtime::Result<Self> {
                    $(
                        instance
                            .get_typed_func::<($($ty,)*), ($ret,)>(&mut *store, &this.$index)
                            .with_context(|| format!("type-checking export func `{}`", $fname))?;
                    )*
                    Ok(this)
                };
                Some(check())
            }

            $(
                #[doc = concat!("Calls `", $fname, "` on `instance`.")]
                pub(crate) async fn $call(
                    &self,
                    store: &mut Store<CallState>,
                    instance: &Instance,
                    $($arg: $ty),*
                ) -> wasmtime::Result<$ret> {
                    let func = instance
                        .get_func(&mut *store, &self.$index)
                        .ok_or_else(|| wasmtime::format_err!("no export `{}`", $fname))?;
                    // SAFETY: `load` type-checked this export with exactly
                    // these parameter and result types on an instance of
                    // the component (the `InstancePre`) every instance of
                    // this driver is made from; `self` exists only if it
                    // passed.
                    let typed = unsafe {
                        wasmtime::component::TypedFunc::<($($ty,)*), ($ret,)>::new_unchecked(func)
                    };
                    let (ret,) = typed.call_async(&mut *store, ($($arg,)*)).await?;
                    Ok(ret)
                }
            )*
        }
    };
}

/// The `oob`, `node` and `network` interfaces, the same in every served
/// version (in that version's `types`).
macro_rules! driver_interfaces {
    () => {
        exported_interface! {
            /// `oob`'s functions, checked at load.
            OobFuncs = "oob" {
                call_validate_oob_services / validate_oob_services = "validate-oob-services"(node: &types::Node) -> Result<(), types::DriverError>;
                call_config_node_pxe / config_node_pxe = "config-node-pxe"(node: &types::Node) -> Result<(), types::DriverError>;
                call_set_node_boot / set_node_boot = "set-node-boot"(node: &types::Node, target: types::BootTarget) -> Result<(), types::DriverError>;
                call_power_off_node / power_off_node = "power-off-node"(node: &types::Node) -> Result<(), types::DriverError>;
                call_power_on_node / power_on_node = "power-on-node"(node: &types::Node) -> Result<(), types::DriverError>;
                call_power_cycle_node / power_cycle_node = "power-cycle-node"(node: &types::Node) -> Result<(), types::DriverError>;
                call_interrogate_oob / interrogate_oob = "interrogate-oob"(node: &types::Node) -> Result<types::OobInterrogation, types::DriverError>;
            }
        }

        exported_interface! {
            /// `node`'s functions, checked at load.
            NodeFuncs = "node" {
                call_validate_node_services / validate_node_services = "validate-node-services"() -> Result<(), types::DriverError>;
                call_create_network_template / create_network_template = "create-network-template"(site: &types::SiteNetworks) -> Result<(), types::DriverError>;
                call_create_storage_template / create_storage_template = "create-storage-template"() -> Result<(), types::DriverError>;
                call_create_boot_media / create_boot_media = "create-boot-media"(node: &types::Node) -> Result<(), types::DriverError>;
                call_configure_user_credentials / configure_user_credentials = "configure-user-credentials"(ssh_keys: &[String]) -> Result<(), types::DriverError>;
                call_configure_node_provisioner / configure_node_provisioner = "configure-node-provisioner"(repositories: &[types::PackageRepository]) -> Result<(), types::DriverError>;
                call_prepare_hardware_config / prepare_hardware_config = "prepare-hardware-config"(node: &types::Node) -> Result<(), types::DriverError>;
                call_identify_node / identify_node = "identify-node"(node: &types::Node) -> Result<types::NodeIdentity, types::DriverError>;
                call_configure_hardware / configure_hardware = "configure-hardware"(node: &types::Node) -> Result<(), types::DriverError>;
                call_interrogate_node / interrogate_node = "interrogate-node"(node: &types::Node) -> Result<types::NodeInterrogation, types::DriverError>;
                call_apply_node_networking / apply_node_networking = "apply-node-networking"(node: &types::Node, site: &types::SiteNetworks) -> Result<(), types::DriverError>;
                call_apply_node_storage / apply_node_storage = "apply-node-storage"(node: &types::Node) -> Result<(), types::DriverError>;
                call_apply_node_platform / apply_node_platform = "apply-node-platform"(node: &types::Node) -> Result<(), types::DriverError>;
                call_deploy_node / deploy_node = "deploy-node"(node: &types::Node, options: &types::DeployOptions) -> Result<(), types::DriverError>;
                call_destroy_node / destroy_node = "destroy-node"(node: &types::Node) -> Result<(), types::DriverError>;
                call_available_images / available_images = "available-images"() -> Result<Vec<String>, types::DriverError>;
                call_available_kernels / available_kernels = "available-kernels"(image: &str) -> Result<Vec<String>, types::DriverError>;
            }
        }

        exported_interface! {
            /// `network`'s functions, checked at load.
            NetworkFuncs = "network" {
                call_validate_network_services / validate_network_services = "validate-network-services"(switch: &types::SwitchInfo) -> Result<(), types::DriverError>;
                call_interrogate_port / interrogate_port = "interrogate-port"(node: &types::Node, port: &types::SwitchPort) -> Result<types::PortInterrogation, types::DriverError>;
                call_config_port_provisioning / config_port_provisioning = "config-port-provisioning"(node: &types::Node, port: &types::SwitchPort, target: &types::PortVlans) -> Result<(), types::DriverError>;
                call_config_port_production / config_port_production = "config-port-production"(node: &types::Node, port: &types::SwitchPort, target: &types::PortVlans) -> Result<(), types::DriverError>;
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::drivers::{LoadError, Runtime, RuntimeConfig};

    /// A 0.2.0 "driver" exporting `metadata` and every function of `node`,
    /// all of them `func() -> u32`.
    fn mistyped_node() -> Vec<u8> {
        let names = [
            "validate-node-services",
            "create-network-template",
            "create-storage-template",
            "create-boot-media",
            "configure-user-credentials",
            "configure-node-provisioner",
            "prepare-hardware-config",
            "identify-node",
            "configure-hardware",
            "interrogate-node",
            "apply-node-networking",
            "apply-node-storage",
            "apply-node-platform",
            "deploy-node",
            "destroy-node",
            "available-images",
            "available-kernels",
        ];
        let exports: String = names
            .iter()
            .map(|n| format!(r#"(export "{n}" (func $f)) "#))
            .collect();
        let wat = format!(
            r#"(component
                (core module $m (func (export "f") (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func $f (result u32) (canon lift (core func $i "f")))
                (instance $meta (export "info" (func $f)))
                (instance $node {exports})
                (export "drydock:driver/metadata@0.2.0" (instance $meta))
                (export "drydock:driver/node@0.2.0" (instance $node)))"#
        );
        wat::parse_str(&wat).expect("wat")
    }

    /// Calls skip the type check (`call_*` use `TypedFunc::new_unchecked`):
    /// a component whose export has another type must never load.
    #[tokio::test]
    async fn a_mistyped_export_is_refused_at_load() {
        let runtime = Runtime::new(RuntimeConfig::default(), None).expect("runtime");
        let err = runtime
            .load("mistyped.wasm", &mistyped_node())
            .await
            .expect_err("mistyped node export");
        let LoadError::ExportType {
            interface, reason, ..
        } = &err
        else {
            panic!("expected an export type error, got {err}");
        };
        assert_eq!(interface, "drydock:driver/node@0.2.0");
        assert!(reason.contains("validate-node-services"), "{reason}");
    }
}
