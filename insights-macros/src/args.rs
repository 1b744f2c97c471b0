//! Attribute arguments, parsed into typed structs before anything is generated.
//!
//! Every attribute takes named arguments (`key = value`), in any order, each at most once. The
//! helpers here give every attribute the same errors: an unknown key is reported on the key with
//! the list of valid ones, a repeated key on its second use, a value of the wrong kind on the
//! value.

use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

/// The arguments of `#[traced]`.
#[derive(Default)]
pub(crate) struct TracedArgs {
    pub op: Option<LitStr>,
    pub description: Option<LitStr>,
    pub transaction: Option<LitStr>,
    pub data: Vec<DataField>,
    pub krate: Option<Path>,
}

/// One `key = expr` of `data(..)`.
pub(crate) struct DataField {
    pub key: LitStr,
    pub value: Expr,
}

/// A data key and the tokens it was written with (for errors spanning all of `a.b.c`).
struct DataKey {
    key: LitStr,
    tokens: proc_macro2::TokenStream,
}

const TRACED_KEYS: &[&str] = &["op", "description", "transaction", "data", "crate"];

impl Parse for TracedArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = TracedArgs::default();
        let mut keys = Keys::new("traced", TRACED_KEYS);
        while !input.is_empty() {
            let key = keys.next(input)?;
            match key.to_string().as_str() {
                "op" => args.op = Some(string_value(input, &key)?),
                "description" => args.description = Some(string_value(input, &key)?),
                "transaction" => args.transaction = Some(string_value(input, &key)?),
                "data" => args.data = data_fields(input)?,
                _ => args.krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        Ok(args)
    }
}

/// Reads argument keys and rejects unknown and repeated ones.
pub(crate) struct Keys {
    attribute: &'static str,
    allowed: &'static [&'static str],
    seen: Vec<String>,
}

impl Keys {
    pub fn new(attribute: &'static str, allowed: &'static [&'static str]) -> Self {
        Keys {
            attribute,
            allowed,
            seen: Vec::new(),
        }
    }

    /// Reads the next key: a known one, not seen before.
    pub fn next(&mut self, input: ParseStream) -> syn::Result<Ident> {
        if input.peek(Lit) {
            let lit: Lit = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`#[{}]` takes named arguments only, like `{} = ..`; valid arguments: {}",
                    self.attribute,
                    self.allowed[0],
                    self.list()
                ),
            ));
        }
        // `Ident::parse_any` accepts keywords, so that `crate` can be a key.
        let key = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "expected an argument of `#[{}]`: {}",
                    self.attribute,
                    self.list()
                ),
            )
        })?;
        let name = key.to_string();
        if !self.allowed.contains(&name.as_str()) {
            let hint = closest(&name, self.allowed)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{name}` for `#[{}]`; valid arguments: {}{hint}",
                    self.attribute,
                    self.list()
                ),
            ));
        }
        if self.seen.contains(&name) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` is given more than once; keep one"),
            ));
        }
        self.seen.push(name);
        Ok(key)
    }

    /// Records `key` as given (by position).
    pub fn mark(&mut self, key: &str) {
        self.seen.push(key.to_owned());
    }

    fn list(&self) -> String {
        quoted_list(self.allowed)
    }
}

/// After a value: a comma, or the end.
pub(crate) fn end_of_argument(input: ParseStream) -> syn::Result<()> {
    if input.is_empty() {
        return Ok(());
    }
    input
        .parse::<Token![,]>()
        .map_err(|e| syn::Error::new(e.span(), "expected `,` between arguments"))?;
    Ok(())
}

fn equals(input: ParseStream, key: &Ident) -> syn::Result<()> {
    if input.is_empty() || input.peek(Token![,]) {
        return Err(syn::Error::new(
            key.span(),
            format!("expected `=` after `{key}`"),
        ));
    }
    input
        .parse::<Token![=]>()
        .map_err(|e| syn::Error::new(e.span(), format!("expected `=` after `{key}`")))?;
    Ok(())
}

/// `= "non-empty string"`.
pub(crate) fn string_value(input: ParseStream, key: &Ident) -> syn::Result<LitStr> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => {
            if lit.value().is_empty() {
                Err(syn::Error::new(
                    lit.span(),
                    format!("`{key}` must not be empty"),
                ))
            } else {
                Ok(lit)
            }
        }
        other => Err(syn::Error::new_spanned(
            &other,
            format!("`{key}` takes a string literal, like `{key} = \"...\"`"),
        )),
    }
}

/// `= path::to::crate`.
pub(crate) fn path_value(input: ParseStream) -> syn::Result<Path> {
    input
        .parse::<Token![=]>()
        .map_err(|e| syn::Error::new(e.span(), "expected `=` after `crate`"))?;
    input.call(Path::parse_mod_style).map_err(|e| {
        syn::Error::new(
            e.span(),
            "`crate` takes a path to the runtime crate, like `crate = my_facade::insights`",
        )
    })
}

/// `(key = expr, "dotted.key" = expr, a.b = expr, ..)`.
fn data_fields(input: ParseStream) -> syn::Result<Vec<DataField>> {
    let content;
    syn::parenthesized!(content in input);
    let mut fields: Vec<DataField> = Vec::new();
    while !content.is_empty() {
        let DataKey { key, tokens } = data_key(&content)?;
        if fields.iter().any(|f| f.key.value() == key.value()) {
            return Err(syn::Error::new_spanned(
                tokens,
                format!("data key `{}` is given more than once", key.value()),
            ));
        }
        content.parse::<Token![=]>().map_err(|e| {
            syn::Error::new(
                e.span(),
                format!("expected `=` after data key `{}`", key.value()),
            )
        })?;
        let value: Expr = content.parse()?;
        fields.push(DataField { key, value });
        end_of_argument(&content)?;
    }
    Ok(fields)
}

/// A data key: a string literal, or identifiers joined by dots (`db.rows`).
fn data_key(input: ParseStream) -> syn::Result<DataKey> {
    if input.peek(LitStr) {
        let key: LitStr = input.parse()?;
        if key.value().is_empty() {
            return Err(syn::Error::new(key.span(), "a data key must not be empty"));
        }
        return Ok(DataKey {
            tokens: key.to_token_stream(),
            key,
        });
    }
    let first = input.call(Ident::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a data key: an identifier, `dotted.name` or \"string\"",
        )
    })?;
    let mut name = first.unraw().to_string();
    let mut tokens = first.to_token_stream();
    while input.peek(Token![.]) {
        let dot = input.parse::<Token![.]>()?;
        let part = input.call(Ident::parse_any)?;
        name.push('.');
        name.push_str(&part.unraw().to_string());
        dot.to_tokens(&mut tokens);
        part.to_tokens(&mut tokens);
    }
    Ok(DataKey {
        key: LitStr::new(&name, first.span()),
        tokens,
    })
}

/// The allowed word nearest to `word`, if it is near enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions, and a swap of two
    // neighbouring letters (`tabel` → `table`) as one edit each.
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The arguments of `#[instrument_db_operation]`.
#[derive(Default)]
pub(crate) struct DbArgs {
    pub table: Option<LitStr>,
    pub operation: Option<LitStr>,
    pub system: Option<LitStr>,
    pub db_name: Option<LitStr>,
    pub query: Option<LitStr>,
    pub query_param: Option<LitStr>,
    pub krate: Option<Path>,
}

const DB_KEYS: &[&str] = &[
    "table",
    "operation",
    "system",
    "db_name",
    "query",
    "query_param",
    "crate",
];

/// The operations a description can be built for (`insights_runtime::db::Operation`).
pub(crate) const DB_OPERATIONS: &[&str] = &["select", "insert", "update", "delete", "upsert"];

impl Parse for DbArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = DbArgs::default();
        let mut keys = Keys::new("instrument_db_operation", DB_KEYS);
        // The reference's form: `("users", "select")`, table then operation.
        for key in ["table", "operation"] {
            if !input.peek(LitStr) {
                break;
            }
            let lit: LitStr = input.parse()?;
            non_empty(&lit, key)?;
            keys.mark(key);
            if key == "table" {
                args.table = Some(lit);
            } else {
                args.operation = Some(lit);
            }
            end_of_argument(input)?;
        }
        while !input.is_empty() {
            let key = keys.next(input)?;
            let value = match key.to_string().as_str() {
                "crate" => {
                    args.krate = Some(path_value(input)?);
                    end_of_argument(input)?;
                    continue;
                }
                _ => string_value(input, &key)?,
            };
            let slot = match key.to_string().as_str() {
                "table" => &mut args.table,
                "operation" => &mut args.operation,
                "system" => &mut args.system,
                "db_name" => &mut args.db_name,
                "query" => &mut args.query,
                _ => &mut args.query_param,
            };
            *slot = Some(value);
            end_of_argument(input)?;
        }
        args.validate()?;
        Ok(args)
    }
}

impl DbArgs {
    fn validate(&self) -> syn::Result<()> {
        if let (Some(_), Some(param)) = (&self.query, &self.query_param) {
            return Err(syn::Error::new(
                param.span(),
                "give either `query` or `query_param`, not both",
            ));
        }
        let has_query = self.query.is_some() || self.query_param.is_some();
        if let Some(op) = &self.operation {
            let known = DB_OPERATIONS
                .iter()
                .any(|o| o.eq_ignore_ascii_case(&op.value()));
            if !known && !has_query {
                return Err(syn::Error::new(
                    op.span(),
                    format!(
                        "unknown operation `{}`; to describe the query from the table and the \
                         operation, use one of {}; for any other operation give the query with \
                         `query = \"...\"` or `query_param`",
                        op.value(),
                        quoted_list(DB_OPERATIONS)
                    ),
                ));
            }
        }
        if !has_query && (self.table.is_none() || self.operation.is_none()) {
            return Err(syn::Error::new(
                Span::call_site(),
                "`#[instrument_db_operation]` needs a table and an operation, \
                 like `(\"users\", \"select\")`, or the query: `query = \"SELECT ..\"` or \
                 `query_param = \"sql\"`",
            ));
        }
        Ok(())
    }
}

/// The arguments of `#[instrument_cache_operation]`.
pub(crate) struct CacheArgs {
    pub kind: Ident,
    pub key_param: Option<LitStr>,
    pub ttl: Option<syn::LitInt>,
    pub ttl_param: Option<LitStr>,
    pub value_param: Option<LitStr>,
    /// The `cache_name` label of the metrics.
    pub cache_name: Option<LitStr>,
    /// `tracker = expr`: a `&CacheTracker` whose system and server go on the span.
    pub tracker: Option<Expr>,
    pub krate: Option<Path>,
}

pub(crate) const CACHE_KINDS: &[&str] = &["get", "put", "remove", "flush"];

const CACHE_KEYS: &[&str] = &[
    "key_param",
    "ttl",
    "ttl_param",
    "value_param",
    "cache_name",
    "tracker",
    "crate",
];

impl Parse for CacheArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let kind = cache_kind(input)?;
        let mut args = CacheArgs {
            kind,
            key_param: None,
            ttl: None,
            ttl_param: None,
            value_param: None,
            cache_name: None,
            tracker: None,
            krate: None,
        };
        end_of_argument(input)?;
        let mut keys = Keys::new("instrument_cache_operation", CACHE_KEYS);
        while !input.is_empty() {
            let key = keys.next(input)?;
            let name = key.to_string();
            if matches!(name.as_str(), "ttl" | "ttl_param" | "value_param") && args.kind != "put" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("`{name}` applies to `put` only, not to `{}`", args.kind),
                ));
            }
            match name.as_str() {
                "key_param" => args.key_param = Some(string_value(input, &key)?),
                "ttl" => args.ttl = Some(integer_value(input, &key)?),
                "ttl_param" => args.ttl_param = Some(string_value(input, &key)?),
                "value_param" => args.value_param = Some(string_value(input, &key)?),
                "cache_name" => args.cache_name = Some(string_value(input, &key)?),
                "tracker" => {
                    equals(input, &key)?;
                    args.tracker = Some(input.parse()?);
                }
                _ => args.krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        if let (Some(_), Some(param)) = (&args.ttl, &args.ttl_param) {
            return Err(syn::Error::new(
                param.span(),
                "give either `ttl` or `ttl_param`, not both",
            ));
        }
        if args.key_param.is_none() && args.kind != "flush" {
            return Err(syn::Error::new(
                args.kind.span(),
                format!(
                    "`{}` needs the key: add `key_param = \"<parameter>\"` naming the parameter \
                     that holds it",
                    args.kind
                ),
            ));
        }
        if let (Some(param), "flush") = (&args.key_param, args.kind.to_string().as_str()) {
            return Err(syn::Error::new(
                param.span(),
                "`flush` takes no key; remove `key_param`",
            ));
        }
        Ok(args)
    }
}

/// The operation kind, first: a bare ident (`get`) or a string (`"get"`).
fn cache_kind(input: ParseStream) -> syn::Result<Ident> {
    let expected = || {
        format!(
            "expected the cache operation first: {}, like \
             `#[instrument_cache_operation(get, key_param = \"key\")]`",
            quoted_list(CACHE_KINDS)
        )
    };
    let (name, span) = if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        (lit.value(), lit.span())
    } else if input.peek(Ident::peek_any) && !input.peek2(Token![=]) {
        let ident = input.call(Ident::parse_any)?;
        (ident.to_string(), ident.span())
    } else {
        return Err(syn::Error::new(input.span(), expected()));
    };
    let bare = name.strip_prefix("cache.").unwrap_or(&name);
    if !CACHE_KINDS.contains(&bare) {
        return Err(syn::Error::new(
            span,
            format!(
                "unknown cache operation `{name}`; expected one of {}",
                quoted_list(CACHE_KINDS)
            ),
        ));
    }
    Ok(Ident::new(bare, span))
}

/// `= 3600`: a non-negative integer literal.
fn integer_value(input: ParseStream, key: &Ident) -> syn::Result<syn::LitInt> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<u64>() {
            Ok(_) => Ok(lit),
            Err(_) => Err(syn::Error::new(
                lit.span(),
                format!("`{key}` is too large: at most {} seconds", u64::MAX),
            )),
        },
        other => Err(syn::Error::new_spanned(
            &other,
            format!(
                "`{key}` takes whole seconds as an integer literal, like `{key} = 3600`; for a \
                 value known at run time use `{key}_param`"
            ),
        )),
    }
}

fn non_empty(lit: &LitStr, key: &str) -> syn::Result<()> {
    if lit.value().is_empty() {
        Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must not be empty"),
        ))
    } else {
        Ok(())
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The arguments of `#[instrument_queue_publish]` and `#[instrument_queue_process]`.
#[derive(Default)]
pub(crate) struct QueueArgs {
    pub destination: Option<LitStr>,
    pub system: Option<LitStr>,
    pub headers_param: Option<LitStr>,
    pub message_id_param: Option<LitStr>,
    pub body_param: Option<LitStr>,
    pub retry_count_param: Option<LitStr>,
    pub name: Option<LitStr>,
    pub transaction: Option<LitStr>,
    pub krate: Option<Path>,
}

const PUBLISH_KEYS: &[&str] = &[
    "destination",
    "system",
    "headers_param",
    "message_id_param",
    "body_param",
    "transaction",
    "crate",
];

const PROCESS_KEYS: &[&str] = &[
    "destination",
    "system",
    "headers_param",
    "message_id_param",
    "body_param",
    "retry_count_param",
    "name",
    "crate",
];

/// `#[instrument_queue_publish(..)]`.
pub(crate) struct PublishArgs(pub QueueArgs);
/// `#[instrument_queue_process(..)]`.
pub(crate) struct ProcessArgs(pub QueueArgs);

impl Parse for PublishArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        QueueArgs::parse_for(input, "instrument_queue_publish", PUBLISH_KEYS).map(PublishArgs)
    }
}

impl Parse for ProcessArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        QueueArgs::parse_for(input, "instrument_queue_process", PROCESS_KEYS).map(ProcessArgs)
    }
}

impl QueueArgs {
    fn parse_for(
        input: ParseStream,
        attribute: &'static str,
        allowed: &'static [&'static str],
    ) -> syn::Result<Self> {
        let mut args = QueueArgs::default();
        let mut keys = Keys::new(attribute, allowed);
        while !input.is_empty() {
            let key = keys.next(input)?;
            let name = key.to_string();
            if name == "crate" {
                args.krate = Some(path_value(input)?);
            } else {
                let value = Some(string_value(input, &key)?);
                match name.as_str() {
                    "destination" => args.destination = value,
                    "system" => args.system = value,
                    "headers_param" => args.headers_param = value,
                    "message_id_param" => args.message_id_param = value,
                    "body_param" => args.body_param = value,
                    "retry_count_param" => args.retry_count_param = value,
                    "transaction" => args.transaction = value,
                    _ => args.name = value,
                }
            }
            end_of_argument(input)?;
        }
        for (value, key) in [(&args.destination, "destination"), (&args.system, "system")] {
            if value.is_none() {
                return Err(syn::Error::new(
                    Span::call_site(),
                    format!(
                        "`#[{attribute}]` needs `{key}`, like \
                         `#[{attribute}(destination = \"orders\", system = \"rabbitmq\")]`"
                    ),
                ));
            }
        }
        Ok(args)
    }
}
