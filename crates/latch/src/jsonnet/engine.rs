//! One evaluation with `rsjsonnet-lang`: load, bind inputs, evaluate, manifest, check size.

use rsjsonnet_lang::arena::Arena;
use rsjsonnet_lang::interner::InternedStr;
use rsjsonnet_lang::program::{
    Callbacks, EvalErrorKind, EvalStackTraceItem, ImportError, NativeError, Program as Vm, Thunk, Value,
};
use rsjsonnet_lang::span::SpanId;

use super::messages::{Source, eval_message, load_message};
use super::{Inputs, JsonnetError, Limits, Program};

/// Refuses every import and native call; drops `std.trace` output (it may carry claims).
struct Sandbox;

impl<'p> Callbacks<'p> for Sandbox {
    fn import(&mut self, _: &mut Vm<'p>, _: SpanId, _: &str) -> Result<Thunk<'p>, ImportError> {
        Err(ImportError)
    }

    fn import_str(&mut self, _: &mut Vm<'p>, _: SpanId, _: &str) -> Result<String, ImportError> {
        Err(ImportError)
    }

    fn import_bin(&mut self, _: &mut Vm<'p>, _: SpanId, _: &str) -> Result<Vec<u8>, ImportError> {
        Err(ImportError)
    }

    fn trace(&mut self, _: &mut Vm<'p>, _: &str, _: &[EvalStackTraceItem]) {}

    fn native_call(&mut self, _: &mut Vm<'p>, _: InternedStr<'p>, _: &[Value<'p>]) -> Result<Value<'p>, NativeError> {
        Err(NativeError)
    }
}

/// The error for an evaluation that died without an answer (an engine panic, a lost thread).
pub(super) fn crashed(program: &Program) -> JsonnetError {
    JsonnetError::Runtime {
        origin: program.origin.clone(),
        message: "the Jsonnet engine stopped unexpectedly".to_owned(),
    }
}

pub(super) fn run(program: &Program, inputs: &Inputs, limits: &Limits) -> Result<serde_json::Value, JsonnetError> {
    let origin = || program.origin.clone();
    let arena = Arena::new();
    let mut vm = Vm::new(&arena);
    vm.set_max_stack(limits.max_stack);
    let (span_ctx, _) = vm.span_manager_mut().insert_source_context(program.source.len());
    let source = Source {
        text: &program.source,
        ctx: span_ctx,
    };
    let thunk = vm
        .load_source(span_ctx, program.source.as_bytes(), true, &program.origin)
        .map_err(|e| match load_message(&vm, &source, &e) {
            None => JsonnetError::ImportDenied { origin: origin() },
            Some(message) => JsonnetError::Syntax {
                origin: origin(),
                message,
            },
        })?;

    for (name, value) in dedup(&inputs.ext_code) {
        let value = to_jsonnet(&mut vm, value);
        let thunk = vm.value_to_thunk(&value);
        let name = vm.intern_str(name);
        vm.add_ext_var(name, &thunk);
    }

    let eval_err = |vm: &Vm<'_>, e: rsjsonnet_lang::program::EvalError| match &e.kind {
        EvalErrorKind::ImportFailed { .. } => JsonnetError::ImportDenied { origin: origin() },
        // go-jsonnet turns `assert c : msg` into `error msg`; Kratos matches the text
        // `RUNTIME ERROR: cancel` anywhere in the error, so any message starting with `cancel`.
        EvalErrorKind::ExplicitError { message, .. }
        | EvalErrorKind::AssertFailed {
            message: Some(message), ..
        } if message.starts_with("cancel") => JsonnetError::Cancelled { origin: origin() },
        _ => JsonnetError::Runtime {
            origin: origin(),
            message: eval_message(vm, &source, &e),
        },
    };

    let mut value = vm.eval_value(&thunk, &mut Sandbox).map_err(|e| eval_err(&vm, e))?;
    if value.is_function() {
        let function = vm.value_to_thunk(&value);
        let mut args = Vec::new();
        for (name, arg) in dedup(&inputs.tla_code) {
            let arg = to_jsonnet(&mut vm, arg);
            args.push((vm.intern_str(name), vm.value_to_thunk(&arg)));
        }
        value = vm
            .eval_call(&function, &[], &args, &mut Sandbox)
            .map_err(|e| eval_err(&vm, e))?;
    }
    let json = vm.manifest_json(&value, false).map_err(|e| eval_err(&vm, e))?;
    if json.len() > limits.max_output_bytes {
        return Err(JsonnetError::TooLarge { origin: origin() });
    }
    serde_json::from_str(&json).map_err(|e| JsonnetError::Runtime {
        origin: origin(),
        message: format!("the output is not JSON: {e}"),
    })
}

/// Inputs by name, the last value of a repeated name winning (the engine refuses duplicates).
fn dedup(vars: &[(String, serde_json::Value)]) -> Vec<(&str, &serde_json::Value)> {
    let mut out: Vec<(&str, &serde_json::Value)> = Vec::with_capacity(vars.len());
    for (name, value) in vars {
        match out.iter_mut().find(|(n, _)| *n == name.as_str()) {
            Some(slot) => slot.1 = value,
            None => out.push((name, value)),
        }
    }
    out
}

/// Builds the Jsonnet value of a JSON document (what `ExtCode`/`TLACode` of its text would give).
fn to_jsonnet<'p>(vm: &mut Vm<'p>, value: &serde_json::Value) -> Value<'p> {
    match value {
        serde_json::Value::Null => Value::null(),
        serde_json::Value::Bool(b) => Value::bool(*b),
        serde_json::Value::Number(n) => Value::number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(items) => {
            let items: Vec<Value<'p>> = items.iter().map(|item| to_jsonnet(vm, item)).collect();
            vm.make_array(&items)
        }
        serde_json::Value::Object(map) => {
            let fields: Vec<(InternedStr<'p>, Value<'p>)> = map
                .iter()
                .map(|(k, v)| {
                    let v = to_jsonnet(vm, v);
                    (vm.intern_str(k), v)
                })
                .collect();
            vm.make_object(&fields)
        }
    }
}
