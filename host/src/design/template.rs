//! Boot-action templates: Jinja (minijinja) restricted to what cannot
//! amplify, rendered with fuel and an output cap.
//!
//! Fuel bounds the instructions a rendering runs and the output cap what
//! it writes, but one instruction can build a large value (string
//! repetition, concatenation, a joined string joined again), and values can
//! be built on repeatedly (`set`, set blocks), which neither bound sees. So
//! a template is checked, compiled, before it runs: it may print values,
//! read attributes and items, branch, loop (`range` is the one function),
//! compare, do arithmetic other than `*` and add a number constant, and use
//! the filters in [`FILTERS`], `join` (with a constant separator of at most
//! [`MAX_JOIN_SEPARATOR`] characters) at most [`MAX_JOINS`] times. It may
//! not repeat or concatenate strings (`*`, `~`, `+` between values), assign
//! (`set`, `with`, set blocks, filter blocks), define or call macros, or
//! call methods. The source and the context are capped at
//! `design_limits.template_max_bytes` too, so every value a rendering can
//! hold is a small multiple of that.

use minijinja::machinery::{CodeGenerator, Instruction, Token, WhitespaceConfig, parse, tokenize};
use minijinja::value::ValueKind;
use serde_json::Value;

use super::limits::DesignLimits;

/// Filters a template may use besides `join`: none of them makes its
/// output much larger than its input.
pub const FILTERS: &[&str] = &[
    "abs",
    "bool",
    "capitalize",
    "count",
    "d",
    "default",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "max",
    "min",
    "reverse",
    "round",
    "safe",
    "string",
    "title",
    "trim",
    "upper",
];

/// `join`s per template at most.
pub const MAX_JOINS: usize = 2;

/// Longest `join` separator.
pub const MAX_JOIN_SEPARATOR: usize = 4;

/// Checks `source` against the policy above (and its syntax).
pub fn check(source: &str, limits: &DesignLimits) -> Result<(), String> {
    if source.len() > limits.template_max_bytes {
        return Err(format!(
            "the template is larger than {} bytes (design_limits.template_max_bytes)",
            limits.template_max_bytes
        ));
    }
    // Operators first, on tokens: the compiler folds constant expressions
    // (`'x' * 100000000 ~ ...`) while compiling, before any instruction
    // could be looked at.
    let mut plus_at: Option<u16> = None;
    for token in tokenize(
        source,
        false,
        Default::default(),
        WhitespaceConfig::default(),
    ) {
        let (token, span) = token.map_err(|e| e.to_string())?;
        let line = span.start_line;
        if let Some(at) = plus_at.take()
            && !matches!(token, Token::Int(_) | Token::Int128(_) | Token::Float(_))
        {
            return Err(format!(
                "line {at}: `+` other than adding a number constant is not allowed"
            ));
        }
        match token {
            Token::Mul => {
                return Err(format!(
                    "line {line}: `*` is not allowed (it repeats strings and lists)"
                ));
            }
            Token::Tilde => {
                return Err(format!(
                    "line {line}: `~` is not allowed (print the parts one after the other)"
                ));
            }
            Token::Plus => plus_at = Some(line),
            _ => {}
        }
    }
    let ast = parse(
        source,
        "template",
        Default::default(),
        WhitespaceConfig::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut generator = CodeGenerator::new("template", source);
    generator.compile_stmt(&ast);
    let (code, blocks) = generator.finish();
    if !blocks.is_empty() {
        return Err("blocks are not allowed".into());
    }
    let mut joins = 0;
    let mut prev: Option<&Instruction> = None;
    for i in 0..code.len() {
        let Some(ins) = u32::try_from(i).ok().and_then(|i| code.get(i)) else {
            break;
        };
        let line = u32::try_from(i)
            .ok()
            .and_then(|i| code.get_line(i))
            .unwrap_or(0);
        let refuse = |what: &str| Err(format!("line {line}: {what} is not allowed"));
        match ins {
            Instruction::Mul => return refuse("`*` (it repeats strings and lists)"),
            Instruction::StringConcat => {
                return refuse("`~` (print the parts one after the other)");
            }
            Instruction::Add if !is_number_const(prev) => {
                return refuse("`+` other than adding a number constant");
            }
            Instruction::StoreLocal(_)
                if !matches!(
                    prev,
                    Some(
                        Instruction::Iterate(_)
                            | Instruction::UnpackList(_)
                            | Instruction::StoreLocal(_)
                    )
                ) =>
            {
                return refuse("`set` or `with`");
            }
            Instruction::SetAttr(_) => return refuse("assigning an attribute"),
            Instruction::BeginCapture(_) => {
                return refuse("a set block, filter block or call block");
            }
            Instruction::CallFunction(name, _) if *name != "range" => {
                return refuse(&format!("calling `{name}` (only `range` may be called)"));
            }
            Instruction::CallMethod(name, _) => {
                return refuse(&format!("calling the method `{name}`"));
            }
            Instruction::CallObject(_)
            | Instruction::CallBlock(_)
            | Instruction::BuildMacro(..)
            | Instruction::Include(_)
            | Instruction::LoadBlocks
            | Instruction::FastSuper
            | Instruction::FastRecurse => return refuse("this statement"),
            Instruction::ApplyFilter("join", args, _) => {
                joins += 1;
                if joins > MAX_JOINS {
                    return refuse(&format!("more than {MAX_JOINS} `join`s"));
                }
                let constant_separator = match prev {
                    Some(Instruction::LoadConst(v)) => v
                        .as_str()
                        .is_some_and(|s| s.chars().count() <= MAX_JOIN_SEPARATOR),
                    _ => false,
                };
                if args.unwrap_or(1) > 1 && !constant_separator {
                    return refuse(&format!(
                        "a `join` separator other than a string constant of at most {MAX_JOIN_SEPARATOR} characters"
                    ));
                }
            }
            Instruction::ApplyFilter(name, _, _) if !FILTERS.contains(name) => {
                return refuse(&format!(
                    "the filter `{name}` (allowed: join, {})",
                    FILTERS.join(", ")
                ));
            }
            _ => {}
        }
        prev = Some(ins);
    }
    Ok(())
}

fn is_number_const(i: Option<&Instruction>) -> bool {
    matches!(i, Some(Instruction::LoadConst(v)) if v.kind() == ValueKind::Number)
}

/// Checks `text` ([`check`]) and renders it within `limits`: fuel
/// (instructions) and an output cap; `ctx` is capped too. `strict`: an
/// undefined value is an error instead of empty.
pub fn render(
    text: &str,
    ctx: &Value,
    limits: &DesignLimits,
    strict: bool,
) -> Result<String, String> {
    check(text, limits).map_err(|e| format!("template: {e}"))?;
    let context_size = serde_json::to_vec(ctx).map_or(usize::MAX, |v| v.len());
    if context_size > limits.template_max_bytes {
        return Err(format!(
            "template: the context is larger than {} bytes (design_limits.template_max_bytes)",
            limits.template_max_bytes
        ));
    }
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(limits.template_fuel));
    if strict {
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    }
    let template = env
        .template_from_str(text)
        .map_err(|e| format!("template: {e}"))?;
    let mut out = Capped {
        bytes: Vec::new(),
        max: limits.template_max_bytes,
        over: false,
    };
    match template.render_captured_to(ctx, &mut out) {
        Ok(_) => {}
        Err(_) if out.over => {
            return Err(format!(
                "template: the output is larger than {} bytes (design_limits.template_max_bytes)",
                limits.template_max_bytes
            ));
        }
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
            return Err(format!(
                "template: it ran out of fuel ({} instructions, design_limits.template_fuel)",
                limits.template_fuel
            ));
        }
        Err(e) => return Err(format!("template: {e}")),
    }
    String::from_utf8(out.bytes).map_err(|_| "template: the output is not UTF-8".into())
}

/// A writer refusing more than `max` bytes.
struct Capped {
    bytes: Vec<u8>,
    max: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.max {
            self.over = true;
            return Err(std::io::Error::other("template output cap"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(t: &str) {
        check(t, &DesignLimits::default()).unwrap_or_else(|e| panic!("{t}: {e}"));
    }

    fn refused(t: &str, needle: &str) {
        let e = check(t, &DesignLimits::default()).unwrap_err();
        assert!(e.contains(needle), "{t}: {e}");
    }

    #[test]
    fn drydock_templates_pass() {
        ok("{{ node.hostname }} {{ node.network.default.ip }}/{{ node.network.default.cidr }}");
        ok("{{ node.tags | join(',') }} {{ action.report_url }}{{ action.action_id }}");
        ok("{% for k in node.labels %}{{ k }}={{ node.labels[k] }}\n{% endfor %}");
        ok("{% for k, v in pairs %}{{ k }}={{ v }}{% endfor %}");
        ok("{% for i in node.interfaces %}{{ loop.index + 1 }}: {{ i | upper }}{% endfor %}");
        ok("{% if node.domain is defined %}{{ node.domain | default('local') }}{% endif %}");
        ok("{% for i in range(3) %}{{ i }}{% endfor %}");
        ok("a * b ~ c + d outside of tags is text");
    }

    #[test]
    fn amplifiers_are_refused() {
        refused("{{ 'x' * 100000000 }}", "`*`");
        refused("{{ a ~ a }}", "`~`");
        refused("{{ a + b }}", "`+`");
        refused("{% set a = a %}", "`set`");
        refused("{% with a = b %}{{ a }}{% endwith %}", "`set` or `with`");
        refused("{% set a %}{{ a }}{{ a }}{% endset %}", "set block");
        refused("{% filter upper %}x{% endfilter %}", "filter block");
        refused("{% macro m() %}x{% endmacro %}{{ m() }}", "not allowed");
        refused("{{ namespace(a=1) }}", "calling `namespace`");
        refused("{{ x.items() }}", "method `items`");
        refused("{{ x | indent(100000000) }}", "filter `indent`");
        refused("{{ x | join(sep) }}", "separator");
        refused("{{ x | join('0123456789') }}", "separator");
        refused("{{ x | join(',') | join(',') | join(',') }}", "more than 2");
        let big = "x".repeat(DesignLimits::default().template_max_bytes + 1);
        refused(&big, "template_max_bytes");
    }

    #[test]
    fn rendering_is_checked_and_bounded() {
        let limits = DesignLimits::default();
        let e = render("{{ 'x' * 1000 }}", &json!({}), &limits, false).unwrap_err();
        assert!(e.contains("`*`"), "{e}");
        let out = render("{{ a | join(',') }}", &json!({"a": [1, 2]}), &limits, false).unwrap();
        assert_eq!(out, "1,2");
        let huge = json!({ "a": "x".repeat(limits.template_max_bytes) });
        let e = render("{{ a }}", &huge, &limits, false).unwrap_err();
        assert!(e.contains("context is larger"), "{e}");
    }
}
