//! Attributes that record functions as Sentry spans.
//!
//! Use them through `insights-runtime`, which re-exports them and holds the runtime they expand
//! into; its documentation has the full guide. This crate only generates code.
//!
//! Every attribute keeps the function as written (signature, attributes, token spans) and
//! replaces only its body. On a mistake in the arguments it reports one error on the offending
//! token and still emits the function unchanged, so one typo does not cascade into errors
//! wherever the function is used.

mod args;
mod expand;
mod item;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, ToTokens};

use crate::args::TracedArgs;
use crate::expand::Instrumentation;
use crate::item::MaybeItemFn;

/// Records each call of the function as a span, a child of the span that is current when it is
/// called.
///
/// ```ignore
/// #[traced]                                      // op "function", description the fn name
/// #[traced(op = "http.client", description = "fetch profile")]
/// #[traced(transaction = "nightly-import", op = "batch")]
/// #[traced(data(rows.count = rows.len(), "db.system" = "postgresql"))]
/// #[traced(crate = my_facade::insights)]
/// ```
///
/// Use it through `insights_runtime::traced`, whose documentation lists the arguments, the
/// shapes of function it accepts and what it expands to.
#[proc_macro_attribute]
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let args = match syn::parse::<TracedArgs>(args) {
        Ok(args) => args,
        Err(error) => return with_error(error, item),
    };
    if !cfg!(feature = "enable") {
        return item.into();
    }
    let function = match function("traced", item.clone()) {
        Ok(function) => function,
        Err(error) => return with_error(error, item),
    };
    let inst = Traced::new(args, &function);
    expand::instrument(&function, &inst).into()
}

/// The error, and the item exactly as it was.
fn with_error(error: syn::Error, item: TokenStream2) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#error #item).into()
}

/// Reads the annotated item as a function the attribute can instrument, or says why not.
fn function(attribute: &str, item: TokenStream2) -> syn::Result<MaybeItemFn> {
    if let Ok(function) = syn::parse2::<MaybeItemFn>(item.clone()) {
        if let Some(constness) = &function.sig.constness {
            return Err(syn::Error::new(
                constness.span,
                format!(
                    "`#[{attribute}]` cannot instrument a `const fn`: spans are recorded at run \
                     time; remove `const` or the attribute"
                ),
            ));
        }
        return Ok(function);
    }
    // Not a function with a body: say what it is instead.
    if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if declaration.default.is_none() {
            return Err(syn::Error::new_spanned(
                declaration.semi_token,
                format!(
                    "`#[{attribute}]` needs a function body; put it on the implementation of \
                     this method, or give the method a default body"
                ),
            ));
        }
    }
    let message = format!("`#[{attribute}]` can only be applied to functions");
    let error = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(item) => syn::Error::new_spanned(item_keyword(&item), message),
        Err(_) => syn::Error::new_spanned(item, message),
    };
    Err(error)
}

/// The keyword that says what kind of item this is (`struct`, `impl`, ..), for the error caret.
fn item_keyword(item: &syn::Item) -> TokenStream2 {
    match item {
        syn::Item::Const(i) => i.const_token.into_token_stream(),
        syn::Item::Enum(i) => i.enum_token.into_token_stream(),
        syn::Item::Impl(i) => i.impl_token.into_token_stream(),
        syn::Item::Mod(i) => i.mod_token.into_token_stream(),
        syn::Item::Static(i) => i.static_token.into_token_stream(),
        syn::Item::Struct(i) => i.struct_token.into_token_stream(),
        syn::Item::Trait(i) => i.trait_token.into_token_stream(),
        syn::Item::Type(i) => i.type_token.into_token_stream(),
        syn::Item::Union(i) => i.union_token.into_token_stream(),
        syn::Item::Use(i) => i.use_token.into_token_stream(),
        other => other.into_token_stream(),
    }
}

fn private_path(krate: Option<&syn::Path>) -> TokenStream2 {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::insights_runtime::__private),
    }
}

/// `#[traced]`: a span with a chosen op and description and optional data.
struct Traced {
    private: TokenStream2,
    op: TokenStream2,
    description: TokenStream2,
    transaction: Option<syn::LitStr>,
    data: TokenStream2,
}

impl Traced {
    fn new(args: TracedArgs, function: &MaybeItemFn) -> Self {
        let private = private_path(args.krate.as_ref());
        let op = match &args.op {
            Some(op) => op.to_token_stream(),
            None => quote!("function"),
        };
        let description = match &args.description {
            Some(description) => description.to_token_stream(),
            None => {
                let name = function.sig.ident.unraw_string();
                quote!(#name)
            }
        };
        let data = data_closure(&private, &args.data);
        Traced {
            private,
            op,
            description,
            transaction: args.transaction,
            data,
        }
    }
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for syn::Ident {
    fn unraw_string(&self) -> String {
        syn::ext::IdentExt::unraw(self).to_string()
    }
}

/// `|d| { d.set("key", value); .. }`: run only when a span is recorded.
fn data_closure(private: &TokenStream2, fields: &[args::DataField]) -> TokenStream2 {
    let data = proc_macro2::Ident::new("__insights_data", proc_macro2::Span::mixed_site());
    let sets = fields.iter().map(|f| {
        let key = &f.key;
        let value = &f.value;
        quote!(#data.set(#key, #value);)
    });
    quote!(|#data: &#private::SpanData<'_>| { #(#sets)* })
}

impl Instrumentation for Traced {
    fn private(&self) -> &TokenStream2 {
        &self.private
    }

    fn sync_guard(&self) -> TokenStream2 {
        let Traced {
            private,
            op,
            description,
            transaction,
            data,
        } = self;
        match transaction {
            Some(name) => quote! {
                #private::SpanGuard::start_transaction_or_child(#name, #op, #description, #data)
            },
            None => quote!(#private::SpanGuard::start_with(#op, #description, #data)),
        }
    }

    fn recording(&self) -> TokenStream2 {
        let Traced {
            private,
            op,
            description,
            transaction,
            data,
        } = self;
        match transaction {
            Some(name) => quote! {
                #private::Recording::start_transaction_or_child(#name, #op, #description, #data)
            },
            None => quote!(#private::Recording::start(#op, #description, #data)),
        }
    }
}
