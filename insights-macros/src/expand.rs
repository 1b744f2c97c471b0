//! Code generation: the user's function, unchanged but for its body, which runs under a span.
//!
//! Three shapes, picked from the signature (never from the body's syntax alone):
//! * `async fn`: the body becomes an `async move` block polled under the span;
//! * a non-async fn returning a future (`impl Future`, `Pin<Box<dyn Future>>`, `BoxFuture`):
//!   the returned future is wrapped, so the span covers the awaited work;
//! * any other fn: the body runs in a closure, so that `return` and `?` hand their value to the
//!   status check before it leaves the function.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::visit_mut::VisitMut;
use syn::{
    Block, Expr, ExprAsync, GenericArgument, Ident, PathArguments, ReturnType, Stmt, Type,
    TypeParamBound,
};

use crate::item::MaybeItemFn;

/// What an attribute records, as expressions over the runtime's private module.
pub(crate) trait Instrumentation {
    /// The path of the runtime's private module, `::insights_runtime::__private` by default.
    fn private(&self) -> &TokenStream;
    /// An expression of type `SpanGuard`: the span of a sync call, current from now on.
    fn sync_guard(&self) -> TokenStream;
    /// An expression of type `Option<Recording>`: the span of an async call, not yet current.
    fn recording(&self) -> TokenStream;
    /// An expression of type `SpanStatus` for the output `out: &Output`; it may write more
    /// data through `data: &SpanData`.
    fn status(&self, out: &Ident, data: &Ident) -> TokenStream;
    /// Statements run right after a sync span starts (`guard: SpanGuard`).
    fn after_sync_start(&self, guard: &Ident) -> TokenStream {
        let _ = guard;
        TokenStream::new()
    }
    /// Statements run right after an async span starts (`recording: Option<Recording>`).
    fn after_async_start(&self, recording: &Ident) -> TokenStream {
        let _ = recording;
        TokenStream::new()
    }
}

fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

pub(crate) fn instrument(item: &MaybeItemFn, inst: &dyn Instrumentation) -> TokenStream {
    let body = if item.sig.asyncness.is_some() {
        async_fn_body(item, inst)
    } else if let Some(kind) = FutureReturn::of(&item.sig.output) {
        match syn::parse2::<Block>(item.body.to_token_stream()) {
            Ok(block) => future_fn_body(block, &kind, inst),
            // A body that does not parse yet is left to rustc to report; keep the item usable.
            Err(_) => sync_fn_body(item, inst),
        }
    } else {
        sync_fn_body(item, inst)
    };
    item.with_body(body)
}

// Input:
//     fn f(a: A) -> R { body }
// Output:
//     fn f(a: A) -> R {
//         let __insights_guard = SpanGuard::start_with(..);
//         let __insights_ret: R = call_once(move || { body });
//         __insights_guard.finish_with(|_| status(&__insights_ret));
//         __insights_ret
//     }
fn sync_fn_body(item: &MaybeItemFn, inst: &dyn Instrumentation) -> TokenStream {
    let private = inst.private();
    let guard = local("__insights_guard");
    let ret = local("__insights_ret");
    let start = inst.sync_guard();
    let after = inst.after_sync_start(&guard);
    let body = &item.body;
    let ty = match &item.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)) => {
            // A diverging function has no value to judge; the guard still ends its span
            // (as `internal_error` when it panics).
            return quote! {
                let #guard = #start;
                #after
                #body
            };
        }
        ReturnType::Type(_, ty) => erase_impl_trait(ty).into_token_stream(),
    };
    let data = local("__insights_data");
    let status = inst.status(&ret, &data);
    quote! {
        let #guard = #start;
        #after
        let #ret: #ty = #private::call_once(move || #body);
        #guard.finish_with(|#data| {
            let #ret = &#ret;
            #status
        });
        #ret
    }
}

// Input:
//     async fn f(a: A) -> R { body }
// Output:
//     async fn f(a: A) -> R {
//         let __insights_recording = Recording::start(..);
//         Instrumented::new(
//             async move { let __insights_ret: R = { body }; __insights_ret },
//             __insights_recording,
//             |__insights_out, _| status(__insights_out),
//         ).await
//     }
fn async_fn_body(item: &MaybeItemFn, inst: &dyn Instrumentation) -> TokenStream {
    let private = inst.private();
    let recording = local("__insights_recording");
    let ret = local("__insights_ret");
    let out = local("__insights_out");
    let start = inst.recording();
    let after = inst.after_async_start(&recording);
    let body = &item.body;
    let ty = match &item.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => erase_impl_trait(ty).into_token_stream(),
    };
    let data = local("__insights_data");
    let status = inst.status(&out, &data);
    // The `async` keyword of the generated block carries the span of the user's, so that errors
    // about the block's captures point at the function.
    let async_kw = item.sig.asyncness.map_or_else(Span::call_site, |a| a.span);
    let block = quote_spanned! {async_kw=>
        async move {
            let #ret: #ty = #body;
            #[allow(unreachable_code)]
            #ret
        }
    };
    quote! {
        let #recording = #start;
        #after
        #private::Instrumented::new(#block, #recording, |#out, #data| #status).await
    }
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
//         stmts;
//         {
//             let __insights_recording = Recording::start(..);
//             Instrumented::new(async move { let r: R = { body }; r }, __insights_recording, status)
//         }
//     }
// A boxed return (`Box::pin(async move { body })`, as `#[async_trait]` writes it) gets the same
// inside its `Box::pin(..)`; any other returned future is wrapped as it is (and boxed again when
// the return type is boxed). Only the final expression changes; every statement stays.
fn future_fn_body(
    mut block: Block,
    kind: &FutureReturn,
    inst: &dyn Instrumentation,
) -> TokenStream {
    let Some(Stmt::Expr(tail, None)) = block.stmts.pop() else {
        // No final expression to wrap (the body ends in `return`): leave it alone.
        return block.stmts.iter().map(ToTokens::to_token_stream).collect();
    };
    let wrapped = match (kind, tail) {
        (FutureReturn::Boxed(_), Expr::Call(mut call))
            if is_box_pin(&call.func) && call.args.len() == 1 =>
        {
            let future = call.args.pop().map(syn::punctuated::Pair::into_value);
            match future {
                Some(future) => {
                    let instrumented = wrap_future(future, kind.output(), inst);
                    call.args.push(syn::parse_quote!(#instrumented));
                    call.into_token_stream()
                }
                None => call.into_token_stream(),
            }
        }
        (FutureReturn::Boxed(_), tail) => {
            let instrumented = wrap_future(tail, kind.output(), inst);
            quote!(::std::boxed::Box::pin(#instrumented))
        }
        (FutureReturn::Opaque(_), tail) => wrap_future(tail, kind.output(), inst),
    };
    let stmts = &block.stmts;
    quote! {
        #(#stmts)*
        #wrapped
    }
}

fn is_box_pin(func: &Expr) -> bool {
    let Expr::Path(p) = func else { return false };
    let segments: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    segments.ends_with(&["Box".to_owned(), "pin".to_owned()])
}

fn wrap_future(future: Expr, output: Option<&Type>, inst: &dyn Instrumentation) -> TokenStream {
    let private = inst.private();
    let recording = local("__insights_recording");
    let out = local("__insights_out");
    let start = inst.recording();
    let after = inst.after_async_start(&recording);
    let data = local("__insights_data");
    let status = inst.status(&out, &data);
    let future = match (future, output) {
        (Expr::Async(async_block), Some(output)) => typed_async_block(async_block, output),
        (future, _) => future.into_token_stream(),
    };
    quote! {{
        let #recording = #start;
        #after
        #private::Instrumented::new(#future, #recording, |#out, #data| #status)
    }}
}

/// `async move { body }` → `async move { let r: Output = { body }; r }`: wrapping the block hides
/// the expected output type that made `?` inside it infer; this restores it.
fn typed_async_block(async_block: ExprAsync, output: &Type) -> TokenStream {
    let ExprAsync {
        attrs,
        async_token,
        capture,
        block,
    } = async_block;
    let ret = local("__insights_ret");
    quote_spanned! {async_token.span=>
        #(#attrs)* #async_token #capture {
            let #ret: #output = #block;
            #[allow(unreachable_code)]
            #ret
        }
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
