//! Attributes that record functions as Sentry spans.
//!
//! Use them through `insights-runtime`, which re-exports them and holds the runtime they expand
//! into; its documentation has the full guide. This crate only generates code.
//!
//! Every attribute keeps the function as written (signature, attributes, token spans) and
//! replaces only its body. On a mistake in the arguments it reports one error on the offending
//! token and still emits the function unchanged, so one typo does not cascade into errors
//! wherever the function is used.
//!
//! Each attribute runs the same pipeline: `args` parses the arguments into typed structs,
//! `validate` checks them against the function, `plan` turns them into expressions over the
//! runtime's private module, and `expand` puts those around the body for the function's shape.
//! With the `enable` feature off the pipeline stops after `validate`, and the function is
//! emitted unchanged.

mod args;
mod expand;
mod item;
mod params;
mod plan;
mod validate;

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{quote, ToTokens};

use crate::args::{CacheArgs, DbArgs, ProcessArgs, PublishArgs, TracedArgs};
use crate::item::MaybeItemFn;
use crate::plan::Plan;
use crate::validate::Validate;

/// Records each call of the function as a span, a child of the span that is current when it is
/// called.
///
/// ```text
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
    attribute::<TracedArgs>("traced", args, item)
}

/// Records each call of the function as a database span for Sentry's Queries page.
///
/// ```text
/// #[instrument_db_operation("users", "select")]
/// #[instrument_db_operation(table = "users", operation = "select", system = "sqlite", db_name = "app")]
/// #[instrument_db_operation(query = "SELECT * FROM users WHERE id = $1", table = "users")]
/// #[instrument_db_operation(query_param = "sql")]
/// #[instrument_db_operation("users", "select", db_name = self.database,
///     server = (self.host.as_str(), self.port))]    // read when the span is recorded
/// ```
///
/// Use it through `insights_runtime::instrument_db_operation`, whose documentation lists the
/// arguments.
#[proc_macro_attribute]
pub fn instrument_db_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute::<DbArgs>("instrument_db_operation", args, item)
}

/// Records each call of the function as a cache span for Sentry's Caches page.
///
/// ```text
/// #[instrument_cache_operation(get, key_param = "key")]
/// #[instrument_cache_operation(put, key_param = "key", ttl = 3600, value_param = "value")]
/// #[instrument_cache_operation(remove, key_param = "keys")]
/// #[instrument_cache_operation(flush)]
/// ```
///
/// Use it through `insights_runtime::instrument_cache_operation`, whose documentation lists
/// the arguments.
#[proc_macro_attribute]
pub fn instrument_cache_operation(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute::<CacheArgs>("instrument_cache_operation", args, item)
}

/// Records each call of the function as a `queue.publish` span and writes the trace into the
/// message's headers.
///
/// ```text
/// #[instrument_queue_publish(destination = "orders", system = "rabbitmq",
///     headers_param = "headers", message_id_param = "id", body_param = "body")]
/// #[instrument_queue_publish(destination = self.queue, system = "rabbitmq")]   // at run time
/// ```
///
/// Use it through `insights_runtime::instrument_queue_publish`, whose documentation lists the
/// arguments.
#[proc_macro_attribute]
pub fn instrument_queue_publish(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute::<PublishArgs>("instrument_queue_publish", args, item)
}

/// Records each call of the function as a consumer's transaction continuing the producer's
/// trace, with a `queue.process` span inside.
///
/// ```text
/// #[instrument_queue_process(destination = "orders", system = "rabbitmq",
///     headers_param = "headers", message_id_param = "id", body_param = "body",
///     retry_count_param = "attempt")]
/// #[instrument_queue_process(destination = JOBS_QUEUE, system = "rabbitmq")]   // at run time
/// ```
///
/// Use it through `insights_runtime::instrument_queue_process`, whose documentation lists the
/// arguments.
#[proc_macro_attribute]
pub fn instrument_queue_process(args: TokenStream, item: TokenStream) -> TokenStream {
    attribute::<ProcessArgs>("instrument_queue_process", args, item)
}

/// Parses the arguments, then the function, validates one against the other, then plans and
/// generates; any error is reported next to the unchanged item.
fn attribute<A: syn::parse::Parse + Validate>(
    name: &str,
    args: TokenStream,
    item: TokenStream,
) -> TokenStream {
    let item = TokenStream2::from(item);
    let args = match syn::parse::<A>(args) {
        Ok(args) => args,
        Err(error) => return with_error(error, item),
    };
    let function = match function(name, item.clone()) {
        Ok(function) => function,
        Err(error) => return with_error(error, item),
    };
    let spec = match args.validate(&function.sig) {
        Ok(spec) => spec,
        Err(error) => return with_error(error, item),
    };
    if !cfg!(feature = "enable") {
        return item.into();
    }
    expand::instrument(&function, &Plan::new(spec, &function)).into()
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
