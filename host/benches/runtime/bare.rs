//! The baseline: the sim driver on bare wasmtime. Same engine (so the same
//! settings and the same pool), host imports stubbed once in a linker
//! (`config-get` answers "unset", other `drydock:driver/host` functions
//! answer their type's empty value, anything else traps), a store holding
//! nothing, and `available-images` called through its typed export, found
//! by index once.

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker, Val, types,
};
use wasmtime::{Engine, Store};

/// `driver-error` of the WIT, for the typed export.
#[derive(ComponentType, Lift, Debug)]
#[component(variant)]
#[allow(dead_code)]
pub enum DriverError {
    #[component(name = "unreachable")]
    Unreachable(String),
    #[component(name = "busy")]
    Busy(String),
    #[component(name = "timeout")]
    Timeout(String),
    #[component(name = "unsupported")]
    Unsupported(String),
    #[component(name = "auth")]
    Auth(String),
    #[component(name = "invalid-input")]
    InvalidInput(String),
    #[component(name = "failed")]
    Failed(String),
}

/// The sim, ready to instantiate on bare wasmtime.
pub struct BareSim {
    engine: Engine,
    pre: InstancePre<()>,
    available_images: ComponentExportIndex,
}

/// The empty value of a result type, if it has one.
fn empty(ty: &types::Type) -> Option<Val> {
    Some(match ty {
        types::Type::Bool => Val::Bool(false),
        types::Type::U32 => Val::U32(0),
        types::Type::U64 => Val::U64(0),
        types::Type::String => Val::String(String::new()),
        types::Type::List(_) => Val::List(Vec::new()),
        types::Type::Option(_) => Val::Option(None),
        types::Type::Result(r) if r.ok().is_none() => Val::Result(Ok(None)),
        _ => return None,
    })
}

impl BareSim {
    /// Links the stubs and finds the export.
    pub fn new(engine: &Engine, component: &Component) -> Self {
        let version = drydock::drivers::WitVersion::CURRENT.as_str();
        let host = format!("drydock:driver/host@{version}");
        let mut linker = Linker::<()>::new(engine);
        {
            let mut inst = linker.instance(&host).expect("host instance");
            inst.func_wrap("config-get", |_, (_key,): (String,)| Ok((None::<String>,)))
                .expect("config-get stub");
        }
        // The other host functions: their empty answer, from their type.
        let ty = component.component_type();
        for (name, item) in ty.imports(engine) {
            let (true, types::ComponentItem::ComponentInstance(i)) = (name == host, item.ty) else {
                continue;
            };
            for (f, item) in i.exports(engine) {
                if f == "config-get" {
                    continue;
                }
                if let types::ComponentItem::ComponentFunc(_) = item.ty {
                    let mut inst = linker.instance(&host).expect("host instance");
                    inst.func_new(f, |_, ty, _params, results| {
                        for (slot, t) in results.iter_mut().zip(ty.results()) {
                            *slot = empty(&t)
                                .ok_or_else(|| wasmtime::Error::msg("stub has no answer"))?;
                        }
                        Ok(())
                    })
                    .expect("stub");
                }
            }
        }
        linker
            .define_unknown_imports_as_traps(component)
            .expect("trap stubs");
        let pre = linker.instantiate_pre(component).expect("instantiate_pre");
        let node = component
            .get_export_index(None, format!("drydock:driver/node@{version}").as_str())
            .expect("node export");
        let available_images = component
            .get_export_index(Some(&node), "available-images")
            .expect("available-images export");
        Self {
            engine: engine.clone(),
            pre,
            available_images,
        }
    }

    /// One call: new store, instantiate, call, drop. Returns the number of
    /// images.
    pub async fn call(&self) -> usize {
        let mut store = Store::new(&self.engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = self
            .pre
            .instantiate_async(&mut store)
            .await
            .expect("instantiate");
        let f = instance
            .get_typed_func::<(), (Result<Vec<String>, DriverError>,)>(
                &mut store,
                &self.available_images,
            )
            .expect("typed available-images");
        let (images,) = f.call_async(&mut store, ()).await.expect("call");
        images.expect("images").len()
    }

    /// Core instances, memories and tables one instance of the sim holds in
    /// the pool (counted while it is the only live instance).
    pub async fn slot_use(&self) -> Option<(u64, usize, usize)> {
        let mut store = Store::new(&self.engine, ());
        let _instance = self.pre.instantiate_async(&mut store).await.ok()?;
        let m = self.engine.pooling_allocator_metrics()?;
        Some((m.core_instances(), m.memories(), m.tables()))
    }
}
