//! The annotated function, read without parsing its body.
//!
//! The body is kept as raw tokens and never parsed: a half-typed body (as rust-analyzer sees
//! while you type) still yields an instrumented function, and every token the user wrote is
//! re-emitted with its own span. The function's shape (async, returning a future, sync) is read
//! from its signature alone.

use proc_macro2::{Delimiter, Group, TokenStream};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, Signature, Visibility};

pub(crate) struct MaybeItemFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    /// `#![..]` attributes at the top of the body; they belong to the function.
    pub inner_attrs: Vec<Attribute>,
    /// The braces of the body, with the body after its inner attributes.
    pub body: Group,
}

impl Parse for MaybeItemFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        let sig: Signature = input.parse()?;
        let group: Group = input.parse()?;
        if group.delimiter() != Delimiter::Brace {
            return Err(syn::Error::new(group.span(), "expected a function body"));
        }
        let (inner_attrs, rest) = split_inner_attrs(group.stream())?;
        let mut body = Group::new(Delimiter::Brace, rest);
        body.set_span(group.span());
        Ok(MaybeItemFn {
            attrs,
            vis,
            sig,
            inner_attrs,
            body,
        })
    }
}

fn split_inner_attrs(stream: TokenStream) -> syn::Result<(Vec<Attribute>, TokenStream)> {
    syn::parse::Parser::parse2(
        |input: ParseStream| {
            let attrs = input.call(Attribute::parse_inner)?;
            let rest: TokenStream = input.parse()?;
            Ok((attrs, rest))
        },
        stream,
    )
}

impl MaybeItemFn {
    /// The function with `body` in place of its own, everything else as written.
    pub fn with_body(&self, body: TokenStream) -> TokenStream {
        let MaybeItemFn {
            attrs,
            vis,
            sig,
            inner_attrs,
            body: original,
        } = self;
        let mut block = Group::new(Delimiter::Brace, quote::quote!(#(#inner_attrs)* #body));
        block.set_span(original.span());
        let mut out = TokenStream::new();
        for attr in attrs {
            attr.to_tokens(&mut out);
        }
        vis.to_tokens(&mut out);
        sig.to_tokens(&mut out);
        block.to_tokens(&mut out);
        out
    }
}
