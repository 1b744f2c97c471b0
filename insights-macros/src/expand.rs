//! Code generation: the user's function, unchanged but for its body, which runs under a span.
//!
//! Three shapes, picked from the signature (never from the body's syntax alone):
//! * `async fn`: the body becomes an `async move` block polled under the span;
//! * a non-async fn returning a future (`impl Future`, `Pin<Box<dyn Future>>`, `BoxFuture`):
//!   the future its body returns is wrapped, so the span covers the awaited work;
//! * any other fn: the body runs in a closure, so that `return` and `?` hand their value to the
//!   status check before it leaves the function.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{GenericArgument, Ident, PathArguments, ReturnType, Type, TypeParamBound};

use crate::item::MaybeItemFn;
use crate::plan::{local, Plan};

pub(crate) fn instrument(item: &MaybeItemFn, plan: &Plan) -> TokenStream {
    let body = if item.sig.asyncness.is_some() {
        async_fn_body(item, plan)
    } else if let Some(kind) = FutureReturn::of(&item.sig.output) {
        future_fn_body(item, &kind, plan)
    } else {
        sync_fn_body(item, plan)
    };
    item.with_body(body)
}

/// The declared return type with `impl Trait` erased, or `None` for `-> !`.
fn return_type(item: &MaybeItemFn) -> Option<TokenStream> {
    match &item.sig.output {
        ReturnType::Default => Some(quote!(())),
        ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => None,
        ReturnType::Type(_, ty) => Some(erase_impl_trait(ty).into_token_stream()),
    }
}

// Input:
//     fn f(a: A) -> R { body }
// Output:
//     fn f(a: A) -> R {
//         let __insights_meter = Meter::..(..);         // with the `metrics` feature
//         let __insights_guard = SpanGuard::start_with(..);
//         // (with a prelude, these two in a block of their own: see `starts`)
//         let __insights_ret: R = call_once(move || -> R { body });
//         __insights_guard.finish_with(|_| status(&__insights_ret));
//         __insights_meter.finish(verdict(&__insights_ret));
//         __insights_ret
//     }
// The closure is typed with the declared return type (spanned at `fn`), so a body of the wrong
// type is reported on the user's expression, as without the attribute.
fn sync_fn_body(item: &MaybeItemFn, plan: &Plan) -> TokenStream {
    let private = &plan.private;
    let guard = local("__insights_guard");
    let ret = local("__insights_ret");
    let meter = local("__insights_meter");
    let starts = starts(
        plan,
        &guard,
        plan.sync_guard(),
        plan.after_sync_start(&guard),
    );
    let body = &item.body;
    let Some(ty) = return_type(item) else {
        // A diverging function has no value to judge; the guard still ends its span
        // (as `internal_error` when it panics), and the meter records when dropped.
        return quote! {
            #starts
            #body
        };
    };
    let data = local("__insights_data");
    let status = plan.status(&ret, &data);
    let finish_meter = plan.meter.as_ref().map(|_| {
        let out = local("__insights_out");
        let verdict = plan.verdict(&out);
        quote!(#meter.finish({ let #out = &#ret; #verdict });)
    });
    let closure = quote_spanned!(item.sig.fn_token.span=> move || -> #ty #body);
    quote! {
        #starts
        let #ret: #ty = #private::call_once(#closure);
        #guard.finish_with(|#data| {
            let #ret = &#ret;
            #status
        });
        #finish_meter
        #ret
    }
}

// Input:
//     async fn f(a: A) -> R { body }
// Output:
//     async fn f(a: A) -> R {
//         let __insights_recording = Recording::start(..);
//         let __insights_future = async move {
//             if false { let fake: R = loop {}; return fake; }
//             let __insights_ret: R = { body };
//             __insights_ret
//         };
//         Instrumented::new(__insights_future, __insights_recording, |out, _| status(out)).await
//     }
// With the `metrics` feature a meter starts first, and `Metered::new(Instrumented::new(..),
// meter, |out| verdict(out))` records it when the future completes or is dropped.
// The never-taken `return` gives the block its output type before the body is checked, so that
// `?` infers and an early `return` of the wrong type is reported on the user's expression.
fn async_fn_body(item: &MaybeItemFn, plan: &Plan) -> TokenStream {
    let private = &plan.private;
    let recording = local("__insights_recording");
    let future = local("__insights_future");
    let ret = local("__insights_ret");
    let out = local("__insights_out");
    let data = local("__insights_data");
    let status = plan.status(&out, &data);
    let body = &item.body;
    // The `async` keyword of the generated block carries the span of the user's, so that errors
    // about the block's captures point at the function.
    let async_kw = item.sig.asyncness.map_or_else(Span::call_site, |a| a.span);
    // Hygienic, but located at `async`: rustc's "return type inferred here" points there.
    let fake = Ident::new("__insights_fake", Span::mixed_site().located_at(async_kw));
    let Some(ty) = return_type(item) else {
        // `async fn -> !`: `!` cannot be named in a `let`; the body's value is `()`-typed
        // wherever it diverges.
        let block = quote_spanned! {async_kw=> async move { let () = #body; } };
        let (starts, instrumented) = future_starts(
            plan,
            &recording,
            quote!(#private::Instrumented::new(#block, #recording, |#out: &(), #data| #status)),
        );
        return quote! {
            #starts
            #instrumented.await;
            ::core::unreachable!()
        };
    };
    let block = quote_spanned! {async_kw=>
        async move {
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::empty_loop,
                clippy::diverging_sub_expression,
                clippy::needless_return,
                clippy::let_unit_value,
                clippy::let_with_type_underscore,
                reason = "a never-taken return that gives the block its output type"
            )]
            if false {
                let #fake: #ty = loop {};
                return #fake;
            }
            #[allow(
                unknown_lints,
                clippy::diverging_sub_expression,
                reason = "the user's body may diverge"
            )]
            let #ret: #ty = #body;
            #[allow(unreachable_code, reason = "unreachable when the user's body diverges")]
            #ret
        }
    };
    let (starts, instrumented) = future_starts(
        plan,
        &recording,
        quote!(#private::Instrumented::new(#future, #recording, |#out, #data| #status)),
    );
    quote! {
        #starts
        #[allow(
            unknown_lints,
            clippy::async_yields_async,
            reason = "an `async fn` may return a future"
        )]
        let #future = #block;
        #instrumented.await
    }
}

/// The statements that start the span (`started`, from `start`) and, with the `metrics`
/// feature, the meter (`__insights_meter`, first), then run `after`. With a prelude, all of it is
/// a block of its own, `let (meter, started) = { prelude .. (meter, started) };`: the prelude's
/// bindings and temporaries (a `query_param`'s text, a destination read from the arguments) end
/// there, so that they are neither held across an `.await` nor still borrowing the arguments
/// when the body takes them.
fn starts(plan: &Plan, started: &Ident, start: TokenStream, after: TokenStream) -> TokenStream {
    let meter = local("__insights_meter");
    let start_meter = plan.meter.as_ref().map(|m| quote!(let #meter = #m;));
    if plan.prelude.is_empty() {
        return quote! {
            #start_meter
            let #started = #start;
            #after
        };
    }
    let prelude = &plan.prelude;
    let bindings = match start_meter {
        Some(_) => quote!((#meter, #started)),
        None => started.to_token_stream(),
    };
    quote! {
        let #bindings = {
            #prelude
            #start_meter
            let #started = #start;
            #after
            #bindings
        };
    }
}

/// The statements that start a future's span (`recording`) and, with the `metrics` feature,
/// its meter (see [`starts`]), and the adapter around `instrumented`: `Metered::new(
/// instrumented, meter, |out| verdict)`, or `instrumented` alone.
fn future_starts(
    plan: &Plan,
    recording: &Ident,
    instrumented: TokenStream,
) -> (TokenStream, TokenStream) {
    let starts = starts(
        plan,
        recording,
        plan.recording(),
        plan.after_async_start(recording),
    );
    if plan.meter.is_none() {
        return (starts, instrumented);
    }
    let private = &plan.private;
    let meter = local("__insights_meter");
    let out = local("__insights_out");
    let verdict = plan.verdict(&out);
    (
        starts,
        quote!(#private::Metered::new(#instrumented, #meter, |#out| #verdict)),
    )
}

/// How a non-async function returns its future.
enum FutureReturn {
    /// `impl Future<Output = T>`: any future may be returned as it is.
    Opaque(Option<Type>),
    /// `Pin<Box<dyn Future<Output = T>>>` or `BoxFuture<'_, T>`: the future must be boxed.
    Boxed(Option<Type>),
}

impl FutureReturn {
    fn of(output: &ReturnType) -> Option<Self> {
        let ReturnType::Type(_, ty) = output else {
            return None;
        };
        match &**ty {
            Type::ImplTrait(it) => future_bound(&it.bounds).map(FutureReturn::Opaque),
            Type::Path(p) => {
                let last = p.path.segments.last()?;
                match last.ident.to_string().as_str() {
                    "Pin" => {
                        let boxed = single_type_arg(&last.arguments)?;
                        let Type::Path(b) = boxed else { return None };
                        let b_last = b.path.segments.last()?;
                        if b_last.ident != "Box" {
                            return None;
                        }
                        let Type::TraitObject(obj) = single_type_arg(&b_last.arguments)? else {
                            return None;
                        };
                        future_bound(&obj.bounds).map(FutureReturn::Boxed)
                    }
                    "BoxFuture" | "LocalBoxFuture" => {
                        let PathArguments::AngleBracketed(args) = &last.arguments else {
                            return None;
                        };
                        let output = args.args.iter().find_map(|a| match a {
                            GenericArgument::Type(t) => Some(erase_impl_trait(t)),
                            _ => None,
                        });
                        Some(FutureReturn::Boxed(output))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn output(&self) -> Option<&Type> {
        match self {
            FutureReturn::Opaque(t) | FutureReturn::Boxed(t) => t.as_ref(),
        }
    }
}

/// `Some(Output)` when the bounds include `Future`; the output type if it is written.
fn future_bound<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>) -> Option<Option<Type>> {
    bounds.into_iter().find_map(|b| {
        let TypeParamBound::Trait(t) = b else {
            return None;
        };
        let last = t.path.segments.last()?;
        if last.ident != "Future" {
            return None;
        }
        let output = match &last.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(assoc) if assoc.ident == "Output" => {
                    Some(erase_impl_trait(&assoc.ty))
                }
                _ => None,
            }),
            _ => None,
        };
        Some(output)
    })
}

fn single_type_arg(args: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(args) = args else {
        return None;
    };
    args.args.iter().find_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    })
}

// Input:
//     fn f(a: A) -> impl Future<Output = R> { stmts; async move { body } }
// Output:
//     fn f(a: A) -> impl Future<Output = R> {
//         let __insights_recording = Recording::start(..);
//         let __insights_future = expect_output::<R, _>(call_once(move || { stmts; async move { body } }));
//         Instrumented::new(__insights_future, __insights_recording, |out, _| status(out))
//     }
// With the `metrics` feature the wrapped future is also `Metered`, as for `async fn`.
// The user's block stays whole (its `use` items keep their scope, an early `return` stays
// inside it), and the future it returns is wrapped, so the span covers the awaited work, not
// only construction. `expect_output` restores the expected output type the block had from the
// signature (for `?` inside). A boxed return type (`Pin<Box<dyn Future>>`, as `#[async_trait]`
// writes it) boxes the wrapped future again.
fn future_fn_body(item: &MaybeItemFn, kind: &FutureReturn, plan: &Plan) -> TokenStream {
    let private = &plan.private;
    let recording = local("__insights_recording");
    let future = local("__insights_future");
    let out = local("__insights_out");
    let data = local("__insights_data");
    let status = plan.status(&out, &data);
    let body = &item.body;
    let fn_span = item.sig.fn_token.span;
    let made = quote_spanned!(fn_span=> #private::call_once(move || #body));
    let made = match kind.output() {
        Some(output) => quote!(#private::expect_output::<#output, _>(#made)),
        None => made,
    };
    let (starts, instrumented) = future_starts(
        plan,
        &recording,
        quote!(#private::Instrumented::new(#future, #recording, |#out, #data| #status)),
    );
    let returned = match kind {
        FutureReturn::Opaque(_) => instrumented,
        FutureReturn::Boxed(_) => quote!(::std::boxed::Box::pin(#instrumented)),
    };
    quote! {
        #starts
        let #future = #made;
        #returned
    }
}

/// `impl Trait` cannot be written in a `let`; `_` lets rustc infer the same type.
fn erase_impl_trait(ty: &Type) -> Type {
    struct Eraser;
    impl VisitMut for Eraser {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(it) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](syn::spanned::Spanned::span(it)),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut ty = ty.clone();
    Eraser.visit_type_mut(&mut ty);
    ty
}
