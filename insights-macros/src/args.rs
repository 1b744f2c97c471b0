//! Attribute arguments, parsed into typed structs before anything is generated.
//!
//! Every attribute takes named arguments (`key = value`), in any order, each at most once. The
//! helpers here give every attribute the same errors: an unknown key is reported on the key with
//! the list of valid ones, a repeated key on its second use, a value of the wrong kind on the
//! value.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
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

    fn list(&self) -> String {
        self.allowed
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
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
        other => Err(syn::Error::new(
            other.span(),
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
        let key = data_key(&content)?;
        if fields.iter().any(|f| f.key.value() == key.value()) {
            return Err(syn::Error::new(
                key.span(),
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
fn data_key(input: ParseStream) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        let key: LitStr = input.parse()?;
        if key.value().is_empty() {
            return Err(syn::Error::new(key.span(), "a data key must not be empty"));
        }
        return Ok(key);
    }
    let first = input.call(Ident::parse_any).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected a data key: an identifier, `dotted.name` or \"string\"",
        )
    })?;
    let mut name = first.unraw().to_string();
    let mut span: Span = first.span();
    while input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        let part = input.call(Ident::parse_any)?;
        name.push('.');
        name.push_str(&part.unraw().to_string());
        span = span.join(part.span()).unwrap_or(span);
    }
    Ok(LitStr::new(&name, span))
}

/// The allowed word nearest to `word`, if it is near enough to be a likely typo.
pub(crate) fn closest<'a>(word: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
