//! Human messages for `rsjsonnet-lang` errors, with the line and column in the user's program
//! (the engine reports spans and kinds but renders nothing itself).

use rsjsonnet_lang::lexer::LexError;
use rsjsonnet_lang::parser::{ActualToken, ExpectedToken, ParseError};
use rsjsonnet_lang::program::{
    AnalyzeError, EvalError, EvalErrorKind as K, EvalErrorValueType, EvalStackTraceItem, LoadError, Program as Vm,
};
use rsjsonnet_lang::span::{SpanContextId, SpanId};
use rsjsonnet_lang::token::STokenKind;

/// The user's program as the engine knows it, to turn spans into lines.
pub(super) struct Source<'a> {
    pub(super) text: &'a str,
    pub(super) ctx: SpanContextId,
}

impl Source<'_> {
    /// `line L, column C` (1-based, columns in characters) if `span` lies in this program.
    fn locate(&self, vm: &Vm<'_>, span: SpanId) -> Option<String> {
        let (ctx, start, _) = vm.span_manager().get_span(span);
        if ctx != self.ctx {
            return None;
        }
        let before = self.text.get(..start)?;
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Some(format!("line {line}, column {column}"))
    }

    fn at(&self, vm: &Vm<'_>, span: Option<SpanId>, message: String) -> String {
        match span.and_then(|s| self.locate(vm, s)) {
            Some(place) => format!("{place}: {message}"),
            None => message,
        }
    }
}

/// The message of a load error, or `None` when it is about an import (refused anyway).
pub(super) fn load_message(vm: &Vm<'_>, src: &Source<'_>, err: &LoadError) -> Option<String> {
    let (span, message) = match err {
        LoadError::Lex(e) => lex(e),
        LoadError::Parse(ParseError::Expected {
            span,
            expected,
            instead,
        }) => {
            let expected: Vec<String> = expected.iter().map(expected_text).collect();
            let message = format!("expected {}, found {}", expected.join(" or "), actual_text(instead));
            (*span, message)
        }
        LoadError::Analyze(e) => analyze(e)?,
    };
    Some(src.at(vm, Some(span), message))
}

fn lex(e: &LexError) -> (SpanId, String) {
    match e {
        LexError::InvalidChar { span, chr } => (*span, format!("invalid character {chr:?}")),
        LexError::InvalidUtf8 { span, .. } => (*span, "invalid UTF-8".to_owned()),
        LexError::UnfinishedMultilineComment { span } => (*span, "unfinished comment".to_owned()),
        LexError::LeadingZeroInNumber { span }
        | LexError::MissingFracDigits { span }
        | LexError::MissingExpDigits { span }
        | LexError::MissingDigitAfterUnderscore { span }
        | LexError::ExpOverflow { span } => (*span, "malformed number".to_owned()),
        LexError::InvalidEscapeInString { span, chr } => (*span, format!("invalid escape \\{chr} in string")),
        LexError::IncompleteUnicodeEscape { span } | LexError::InvalidUtf16EscapeSequence { span, .. } => {
            (*span, "invalid \\u escape in string".to_owned())
        }
        LexError::UnfinishedString { span } => (*span, "unfinished string".to_owned()),
        LexError::MissingLineBreakAfterTextBlockStart { span }
        | LexError::MissingWhitespaceTextBlockStart { span }
        | LexError::InvalidTextBlockTermination { span } => (*span, "malformed text block (|||)".to_owned()),
    }
}

fn analyze(e: &AnalyzeError) -> Option<(SpanId, String)> {
    Some(match e {
        AnalyzeError::UnknownVariable { span, name } => (*span, format!("unknown variable `{name}`")),
        AnalyzeError::SelfOutsideObject { self_span } => (*self_span, "`self` outside an object".to_owned()),
        AnalyzeError::SuperOutsideObject { super_span } => (*super_span, "`super` outside an object".to_owned()),
        AnalyzeError::DollarOutsideObject { dollar_span } => (*dollar_span, "`$` outside an object".to_owned()),
        AnalyzeError::RepeatedLocalName {
            repeated_span, name, ..
        } => (*repeated_span, format!("local `{name}` defined twice")),
        AnalyzeError::RepeatedFieldName {
            repeated_span, name, ..
        } => (*repeated_span, format!("field `{name}` defined twice")),
        AnalyzeError::RepeatedParamName {
            repeated_span, name, ..
        } => (*repeated_span, format!("parameter `{name}` defined twice")),
        AnalyzeError::PositionalArgAfterNamed { arg_span } => {
            (*arg_span, "positional argument after a named one".to_owned())
        }
        AnalyzeError::TextBlockAsImportPath { .. } | AnalyzeError::ComputedImportPath { .. } => {
            return None;
        }
    })
}

/// The message of a runtime error, placed at its own span or at the innermost frame of the
/// stack trace that lies in the user's program (not in the standard library).
pub(super) fn eval_message(vm: &Vm<'_>, src: &Source<'_>, err: &EvalError) -> String {
    let (span, message) = eval_kind(&err.kind);
    let own = span.and_then(|s| src.locate(vm, s));
    let place = own.or_else(|| {
        err.stack_trace
            .iter()
            .filter_map(trace_span)
            .find_map(|s| src.locate(vm, s))
    });
    match place {
        Some(place) => format!("{place}: {message}"),
        None => message,
    }
}

fn trace_span(item: &EvalStackTraceItem) -> Option<SpanId> {
    match item {
        EvalStackTraceItem::Expr { span }
        | EvalStackTraceItem::Variable { span, .. }
        | EvalStackTraceItem::Import { span } => Some(*span),
        EvalStackTraceItem::Call { span, .. }
        | EvalStackTraceItem::ArrayItem { span, .. }
        | EvalStackTraceItem::ObjectField { span, .. } => *span,
        _ => None,
    }
}

fn ty(t: &EvalErrorValueType) -> &'static str {
    match t {
        EvalErrorValueType::Null => "null",
        EvalErrorValueType::Bool => "boolean",
        EvalErrorValueType::Number => "number",
        EvalErrorValueType::String => "string",
        EvalErrorValueType::Array => "array",
        EvalErrorValueType::Object => "object",
        EvalErrorValueType::Function => "function",
    }
}

fn eval_kind(kind: &K) -> (Option<SpanId>, String) {
    match kind {
        K::StackOverflow => (None, "stack overflow (calls nested too deep)".to_owned()),
        K::InfiniteRecursion => (None, "infinite recursion".to_owned()),
        K::InvalidIndexedType { span, got_type } => (Some(*span), format!("cannot index a {}", ty(got_type))),
        K::InvalidSlicedType { span, got_type } => (Some(*span), format!("cannot slice a {}", ty(got_type))),
        K::SliceIndexOrStepIsNotNumber { span, got_type }
        | K::StringIndexIsNotNumber { span, got_type }
        | K::ArrayIndexIsNotNumber { span, got_type } => {
            (Some(*span), format!("index must be a number, got {}", ty(got_type)))
        }
        K::NumericIndexIsNotValid { span, index } => (Some(*span), format!("invalid index {index}")),
        K::NumericIndexOutOfRange { span, index, length } => {
            (Some(*span), format!("index {index} out of range (length {length})"))
        }
        K::ObjectIndexIsNotString { span, got_type } | K::FieldNameIsNotString { span, got_type } => (
            Some(*span),
            format!("field name must be a string, got {}", ty(got_type)),
        ),
        K::RepeatedFieldName { span, name } => (Some(*span), format!("field `{name}` defined twice")),
        K::UnknownObjectField { span, field_name } => (Some(*span), format!("field `{field_name}` does not exist")),
        K::FieldOfNonObject { span } => (Some(*span), "field of a non-object".to_owned()),
        K::SuperWithoutSuperObject { span } => (Some(*span), "`super` without a parent object".to_owned()),
        K::ForSpecValueIsNotArray { span, got_type } => {
            (Some(*span), format!("`for` needs an array, got {}", ty(got_type)))
        }
        K::CondIsNotBool { span, got_type } => (
            Some(*span),
            format!("condition must be a boolean, got {}", ty(got_type)),
        ),
        K::CalleeIsNotFunction { span, got_type } => (*span, format!("cannot call a {}", ty(got_type))),
        K::TooManyCallArgs { span, num_params } => {
            (*span, format!("too many arguments (the function takes {num_params})"))
        }
        K::UnknownCallParam { span, param_name } => (*span, format!("no parameter named `{param_name}`")),
        K::RepeatedCallParam { span, param_name } => (*span, format!("argument `{param_name}` given twice")),
        K::CallParamNotBound { span, param_name } => (*span, format!("missing argument `{param_name}`")),
        K::NativeCallFailed => (None, "native functions are not available".to_owned()),
        K::InvalidUnaryOpType { span, op, rhs_type } => (
            Some(*span),
            format!("operator {op:?} cannot apply to a {}", ty(rhs_type)),
        ),
        K::InvalidBinaryOpTypes {
            span,
            op,
            lhs_type,
            rhs_type,
        } => (
            *span,
            format!("operator {op:?} cannot apply to {} and {}", ty(lhs_type), ty(rhs_type)),
        ),
        K::NumberNotBitwiseSafe { span } => (*span, "number is not bitwise-safe".to_owned()),
        K::NumberOverflow { span } => (*span, "number overflow".to_owned()),
        K::NumberNan { span } => (*span, "not a number (NaN)".to_owned()),
        K::DivByZero { span } => (*span, "division by zero".to_owned()),
        K::ShiftByNegative { span } => (*span, "shift by a negative number".to_owned()),
        K::InvalidStdFuncArgType {
            func_name,
            arg_index,
            expected_types,
            got_type,
        } => {
            let expected: Vec<&str> = expected_types.iter().map(ty).collect();
            (
                None,
                format!(
                    "std.{func_name}: argument {} must be {}, got {}",
                    arg_index + 1,
                    expected.join(" or "),
                    ty(got_type)
                ),
            )
        }
        K::AssertFailed { span, message } => (
            Some(*span),
            match message {
                Some(m) => format!("assertion failed: {m}"),
                None => "assertion failed".to_owned(),
            },
        ),
        K::AssertEqualFailed { lhs, rhs } => (None, format!("assertion failed: {lhs} != {rhs}")),
        K::ExplicitError { span, message } => (Some(*span), format!("error: {message}")),
        K::ImportFailed { span, path } => (Some(*span), format!("import of {path:?} refused")),
        K::UnknownExtVar { name } => (None, format!("undefined external variable `{name}`")),
        K::ManifestFunction => (None, "a function cannot be turned into JSON".to_owned()),
        K::CompareNullInequality
        | K::CompareBooleanInequality
        | K::CompareObjectInequality
        | K::CompareFunctions
        | K::CompareDifferentTypesInequality { .. }
        | K::PrimitiveEqualsNonPrimitive { .. } => (None, "these values cannot be compared".to_owned()),
        K::Other { span, message } => (*span, message.clone()),
    }
}

fn expected_text(e: &ExpectedToken) -> String {
    match e {
        ExpectedToken::EndOfFile => "end of file".to_owned(),
        ExpectedToken::Simple(k) => format!("`{}`", token(*k)),
        ExpectedToken::Ident => "an identifier".to_owned(),
        ExpectedToken::Number => "a number".to_owned(),
        ExpectedToken::String => "a string".to_owned(),
        ExpectedToken::TextBlock => "a text block".to_owned(),
        ExpectedToken::Expr => "an expression".to_owned(),
        ExpectedToken::BinaryOp => "an operator".to_owned(),
    }
}

fn actual_text(a: &ActualToken) -> String {
    match a {
        ActualToken::EndOfFile => "end of file".to_owned(),
        ActualToken::Simple(k) => format!("`{}`", token(*k)),
        ActualToken::OtherOp(op) => format!("`{op}`"),
        ActualToken::Ident(name) => format!("`{name}`"),
        ActualToken::Number => "a number".to_owned(),
        ActualToken::String => "a string".to_owned(),
        ActualToken::TextBlock => "a text block".to_owned(),
    }
}

fn token(k: STokenKind) -> &'static str {
    use STokenKind as T;
    match k {
        T::Assert => "assert",
        T::Else => "else",
        T::Error => "error",
        T::False => "false",
        T::For => "for",
        T::Function => "function",
        T::If => "if",
        T::Import => "import",
        T::Importstr => "importstr",
        T::Importbin => "importbin",
        T::In => "in",
        T::Local => "local",
        T::Null => "null",
        T::Tailstrict => "tailstrict",
        T::Then => "then",
        T::Self_ => "self",
        T::Super => "super",
        T::True => "true",
        T::Exclam => "!",
        T::ExclamEq => "!=",
        T::Dollar => "$",
        T::Percent => "%",
        T::Amp => "&",
        T::AmpAmp => "&&",
        T::LeftParen => "(",
        T::RightParen => ")",
        T::Asterisk => "*",
        T::Plus => "+",
        T::PlusColon => "+:",
        T::PlusColonColon => "+::",
        T::PlusColonColonColon => "+:::",
        T::Comma => ",",
        T::Minus => "-",
        T::Dot => ".",
        T::Slash => "/",
        T::Colon => ":",
        T::ColonColon => "::",
        T::ColonColonColon => ":::",
        T::Semicolon => ";",
        T::Lt => "<",
        T::LtLt => "<<",
        T::LtEq => "<=",
        T::Eq => "=",
        T::EqEq => "==",
        T::Gt => ">",
        T::GtEq => ">=",
        T::GtGt => ">>",
        T::LeftBracket => "[",
        T::RightBracket => "]",
        T::Hat => "^",
        T::LeftBrace => "{",
        T::Pipe => "|",
        T::PipePipe => "||",
        T::RightBrace => "}",
        T::Tilde => "~",
    }
}
