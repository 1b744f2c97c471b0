//! `*_param = "name"` arguments: finding the named parameter, or saying why it cannot be used.
//!
//! The checks run at compile time and every error points at the string literal the user wrote,
//! naming the parameters there are and, for a typo, the closest one.

use proc_macro2::{Ident, Span};
use syn::{FnArg, LitStr, Pat, Signature};

use crate::args::closest;

/// A parameter a value is read from: its name, spanned at the argument's literal so that type
/// errors about it (a key that is not a key) point there too.
#[derive(Clone)]
pub(crate) struct Param {
    pub ident: Ident,
    pub literal: LitStr,
}

impl Param {
    /// The literal's span.
    pub fn span(&self) -> Span {
        self.literal.span()
    }
}

/// The plain parameter `literal` names in `sig`.
pub(crate) fn find(sig: &Signature, argument: &str, literal: &LitStr) -> syn::Result<Param> {
    let wanted = literal.value();
    let fail = |message: String| Err(syn::Error::new(literal.span(), message));
    let mut plain = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(_) => {
                if wanted == "self" {
                    return fail(format!(
                        "`{argument}` cannot be `self`; name a parameter such as `key: &str`"
                    ));
                }
            }
            FnArg::Typed(typed) => {
                let gated = typed.attrs.iter().any(|a| a.path().is_ident("cfg"));
                match &*typed.pat {
                    Pat::Ident(pat) if pat.subpat.is_none() => {
                        let name = syn::ext::IdentExt::unraw(&pat.ident).to_string();
                        if name == wanted {
                            if gated {
                                return fail(format!(
                                    "`{argument}` names `{wanted}`, which is behind `#[cfg]`: \
                                     it may not exist; name a parameter that always does"
                                ));
                            }
                            // The parameter's own identifier (raw if it was written `r#type`),
                            // located at the literal so that errors about it point there.
                            let mut ident = pat.ident.clone();
                            ident.set_span(literal.span());
                            return Ok(Param {
                                ident,
                                literal: literal.clone(),
                            });
                        }
                        if !gated {
                            plain.push(name);
                        }
                    }
                    pat => {
                        if binds(pat, &wanted) {
                            return fail(format!(
                                "`{wanted}` is bound inside a pattern; `{argument}` must name a \
                                 plain parameter, like `{wanted}: &str`"
                            ));
                        }
                    }
                }
            }
        }
    }
    if wanted == "_" {
        return fail(format!(
            "`{argument}` cannot be `_`; name a parameter such as `key: &str`"
        ));
    }
    let listed = if plain.is_empty() {
        "the function has no plain parameters".to_owned()
    } else {
        format!(
            "its parameters are {}",
            plain
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let names: Vec<&str> = plain.iter().map(String::as_str).collect();
    let hint = closest(&wanted, &names)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default();
    fail(format!(
        "`{argument}` names `{wanted}`, which is not a parameter of `{}`: {listed}{hint}",
        sig.ident
    ))
}

/// Whether `pat` binds `name` somewhere inside.
fn binds(pat: &Pat, name: &str) -> bool {
    match pat {
        Pat::Ident(p) => p.ident == name || p.subpat.as_ref().is_some_and(|(_, s)| binds(s, name)),
        Pat::Reference(p) => binds(&p.pat, name),
        Pat::Tuple(p) => p.elems.iter().any(|e| binds(e, name)),
        Pat::TupleStruct(p) => p.elems.iter().any(|e| binds(e, name)),
        Pat::Struct(p) => p.fields.iter().any(|f| binds(&f.pat, name)),
        Pat::Slice(p) => p.elems.iter().any(|e| binds(e, name)),
        Pat::Type(p) => binds(&p.pat, name),
        Pat::Paren(p) => binds(&p.pat, name),
        Pat::Or(p) => p.cases.iter().any(|c| binds(c, name)),
        _ => false,
    }
}
