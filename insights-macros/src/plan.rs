//! What each attribute records: its arguments turned into expressions over the runtime.
//!
//! A [`Plan`] is the op, the description, the data closure (run only when a span is recorded)
//! and how the output is judged; `expand` puts it around the function, whatever its shape.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::LitStr;

use crate::args::{
    CacheArgs, DataField, DbArgs, ProcessArgs, PublishArgs, TracedArgs, DB_OPERATIONS,
};
use crate::expand::Instrumentation;
use crate::item::MaybeItemFn;
use crate::params;

pub(crate) struct Plan {
    private: TokenStream,
    op: TokenStream,
    description: TokenStream,
    transaction: Option<LitStr>,
    /// `|data: &SpanData| { .. }`.
    data: TokenStream,
    /// A cache read: the hit and size come from the output.
    read: bool,
    /// Replaces the usual start expressions (a queue consumer's transaction).
    start: Option<Starts>,
    /// Writes a producer's headers into this parameter after the span starts.
    inject: Option<(TokenStream, params::Param)>,
    /// Statements run before anything starts (a consumer's builder, shared by its span and its
    /// meter).
    prelude: TokenStream,
    /// An expression of type `Meter`, with the `metrics` feature.
    meter: Option<TokenStream>,
}

/// A block that builds a call site's metric keys as statics, at compile time, and hands them to
/// a `Meter` constructor: `{ static L0: [Label; _] = ..; static KEYS: [Key; _] = ..; ctor }`.
/// `keys` are (metric name, labels); `ctor` refers to the keys as `keys`.
fn static_keys(
    private: &TokenStream,
    keys: &[(TokenStream, Vec<(&str, TokenStream)>)],
    ctor: impl FnOnce(&Ident) -> TokenStream,
) -> TokenStream {
    let site = Span::mixed_site();
    let all = Ident::new("__INSIGHTS_METRIC_KEYS", site);
    let mut statics = TokenStream::new();
    let mut built = Vec::new();
    for (i, (metric, labels)) in keys.iter().enumerate() {
        let name = Ident::new(&format!("__INSIGHTS_METRIC_LABELS_{i}"), site);
        let n = labels.len();
        let labels = labels
            .iter()
            .map(|(k, v)| quote!(#private::metrics::Label::from_static_parts(#k, #v)));
        statics.extend(quote! {
            static #name: [#private::metrics::Label; #n] = [#(#labels),*];
        });
        built.push(quote!(#private::metrics::Key::from_static_parts(#metric, &#name)));
    }
    let n = built.len();
    let ctor = ctor(&all);
    quote! {{
        #statics
        static #all: [#private::metrics::Key; #n] = [#(#built),*];
        #ctor
    }}
}

/// `Some(meter)` with the `metrics` feature: the metrics of a call are recorded whether or not
/// its span is.
fn metered(meter: impl FnOnce() -> TokenStream) -> Option<TokenStream> {
    cfg!(feature = "metrics").then(meter)
}

/// A sync and an async start expression.
struct Starts {
    sync: TokenStream,
    recording: TokenStream,
}

fn private_path(krate: Option<&syn::Path>) -> TokenStream {
    match krate {
        Some(path) => quote!(#path::__private),
        None => quote!(::insights_runtime::__private),
    }
}

fn data_ident() -> Ident {
    Ident::new("__insights_data", Span::mixed_site())
}

/// `|data| { statements }`.
fn closure(private: &TokenStream, statements: TokenStream) -> TokenStream {
    let data = data_ident();
    quote!(|#data: &#private::SpanData<'_>| { #statements })
}

impl Plan {
    pub fn traced(args: TracedArgs, function: &MaybeItemFn) -> Self {
        let private = private_path(args.krate.as_ref());
        let op = match &args.op {
            Some(op) => op.to_token_stream(),
            None => quote!("function"),
        };
        let description = match &args.description {
            Some(description) => description.to_token_stream(),
            None => {
                let name = syn::ext::IdentExt::unraw(&function.sig.ident).to_string();
                quote!(#name)
            }
        };
        let data = data_ident();
        let sets = args
            .data
            .iter()
            .map(|DataField { key, value }| quote!(#data.set(#key, #value);));
        let data = closure(&private, quote!(#(#sets)*));
        Plan {
            private,
            op,
            description,
            transaction: args.transaction,
            data,
            read: false,
            start: None,
            inject: None,
            prelude: TokenStream::new(),
            meter: None,
        }
    }

    pub fn db(args: DbArgs, function: &MaybeItemFn) -> syn::Result<Self> {
        let private = private_path(args.krate.as_ref());
        let data = data_ident();
        // The text of a `query_param`, read once for the span and the meter.
        let sql = Ident::new("__insights_sql", Span::mixed_site());
        let mut prelude = TokenStream::new();
        let query = if let Some(sql) = &args.query {
            quote!(#private::db::Query::sql(#sql))
        } else if let Some(literal) = &args.query_param {
            let param = params::find(&function.sig, "query_param", literal)?;
            let ident = &param.ident;
            // Spanned at the literal, so that a parameter that is not text is reported there.
            let text = quote_spanned!(param.span()=> #private::db::query_text(&#ident));
            prelude = quote!(let #sql = #text;);
            quote!(#private::db::Query::sql(#sql))
        } else {
            // Validated when parsed: both are present and the operation is known.
            let (Some(table), Some(operation)) = (&args.table, &args.operation) else {
                return Err(syn::Error::new(
                    Span::call_site(),
                    "a table and an operation are needed",
                ));
            };
            let variant = operation_variant(operation);
            quote!(#private::db::Query::table_operation(#table, #private::db::Operation::#variant))
        };
        let mut builder = query;
        if args.query.is_some() || args.query_param.is_some() {
            if let Some(table) = &args.table {
                builder = quote!(#builder.table(#table));
            }
            if let Some(operation) = &args.operation {
                // Upper-cased here rather than on every call.
                let verb = LitStr::new(&operation.value().to_ascii_uppercase(), operation.span());
                builder = quote!(#builder.operation_name(#verb));
            }
        }
        if let Some(system) = &args.system {
            builder = quote!(#builder.system(#system));
        }
        if let Some(name) = &args.db_name {
            builder = quote!(#builder.db_name(#name));
        }
        let statements = quote!(#builder.write(#data););
        let meter = metered(|| db_meter(&private, &args, &sql));
        Ok(Plan {
            data: closure(&private, statements),
            private,
            op: quote!("db"),
            description: quote!(""),
            transaction: None,
            read: false,
            start: None,
            inject: None,
            prelude,
            meter,
        })
    }

    pub fn cache(args: CacheArgs, function: &MaybeItemFn) -> syn::Result<Self> {
        let private = private_path(args.krate.as_ref());
        let data = data_ident();
        let sig = &function.sig;
        let mut statements = TokenStream::new();
        if let Some(literal) = &args.key_param {
            let param = params::find(sig, "key_param", literal)?;
            let ident = &param.ident;
            let keys = quote_spanned!(param.span()=> #private::cache::probe::key_check(&#ident));
            statements.extend(quote!(#private::cache::describe(#data, #keys);));
        }
        if let Some(ttl) = &args.ttl {
            let seconds: u64 = ttl.base10_parse()?;
            statements.extend(quote!(#data.set("cache.ttl", #seconds);));
        }
        if let Some(literal) = &args.ttl_param {
            let param = params::find(sig, "ttl_param", literal)?;
            let ident = &param.ident;
            let seconds =
                quote_spanned!(param.span()=> #private::cache::probe::ttl_seconds(&#ident));
            statements.extend(quote! {
                if let ::core::option::Option::Some(seconds) = #seconds {
                    #data.set("cache.ttl", seconds);
                }
            });
        }
        if let Some(literal) = &args.value_param {
            let param = params::find(sig, "value_param", literal)?;
            let ident = &param.ident;
            statements.extend(quote! {{
                use #private::cache::probe::{BytesSize as _, NoSize as _};
                if let ::core::option::Option::Some(bytes) =
                    (&#private::cache::probe::Size(&#ident)).__insights_size()
                {
                    #data.set("cache.item_size", bytes);
                }
            }});
        }
        if let Some(tracker) = &args.tracker {
            // Spanned at the expression, so that one of the wrong type is reported there.
            statements.extend(quote_spanned! {tracker.span()=>
                #private::cache::probe::tracker_record(#tracker, #data);
            });
        }
        let op = format!("cache.{}", args.kind);
        let meter = metered(|| {
            let kind = Ident::new(
                match args.kind.to_string().as_str() {
                    "get" => "Get",
                    "put" => "Put",
                    "remove" => "Remove",
                    _ => "Flush",
                },
                args.kind.span(),
            );
            let name = match (&args.cache_name, &args.tracker) {
                (Some(name), _) => name.to_token_stream(),
                (None, Some(tracker)) => {
                    // The tracker's name is known only at run time.
                    let name = quote_spanned! {tracker.span()=>
                        #private::cache::probe::tracker_name(#tracker)
                    };
                    return quote!(#private::Meter::cache(#private::cache::Kind::#kind, #name));
                }
                (None, None) => quote!(#private::metrics::DEFAULT_CACHE_NAME),
            };
            let m = quote!(#private::metrics);
            let metrics: &[TokenStream] = match args.kind.to_string().as_str() {
                "get" => &[quote!(#m::CACHE_HITS_TOTAL), quote!(#m::CACHE_MISSES_TOTAL)],
                "put" => &[quote!(#m::CACHE_SETS_TOTAL)],
                "remove" => &[quote!(#m::CACHE_REMOVES_TOTAL)],
                _ => &[],
            };
            let keys: Vec<_> = metrics
                .iter()
                .map(|metric| (metric.clone(), vec![("cache_name", name.clone())]))
                .collect();
            static_keys(
                &private,
                &keys,
                |keys| quote!(#private::Meter::cache_keys(#private::cache::Kind::#kind, &#keys)),
            )
        });
        Ok(Plan {
            data: closure(&private, statements),
            private,
            op: quote!(#op),
            description: quote!(""),
            transaction: None,
            read: args.kind == "get",
            start: None,
            inject: None,
            prelude: TokenStream::new(),
            meter,
        })
    }

    pub fn publish(PublishArgs(args): PublishArgs, function: &MaybeItemFn) -> syn::Result<Self> {
        let private = private_path(args.krate.as_ref());
        let data = data_ident();
        let sig = &function.sig;
        let (Some(destination), Some(system)) = (&args.destination, &args.system) else {
            return Err(syn::Error::new(
                Span::call_site(),
                "`destination` and `system` are needed",
            ));
        };
        let mut statements = quote! {
            #data.set("messaging.destination.name", #destination);
            #data.set("messaging.system", #system);
        };
        statements.extend(message_and_body(&private, &data, sig, &args)?);
        let inject = match &args.headers_param {
            Some(literal) => Some((
                match &args.transaction {
                    Some(name) => quote! {
                        #private::queue::Publish::new(#destination, #system).transaction_name(#name)
                    },
                    None => quote!(#private::queue::Publish::new(#destination, #system)),
                },
                params::find(sig, "headers_param", literal)?,
            )),
            None => None,
        };
        let meter = metered(|| {
            static_keys(
                &private,
                &[(
                    quote!(#private::metrics::QUEUE_MESSAGES_PUBLISHED_TOTAL),
                    vec![("queue_name", destination.to_token_stream())],
                )],
                |keys| quote!(#private::Meter::publish_keys(&#keys)),
            )
        });
        Ok(Plan {
            data: closure(&private, statements),
            private,
            op: quote!("queue.publish"),
            description: destination.to_token_stream(),
            transaction: None,
            read: false,
            start: None,
            inject,
            prelude: TokenStream::new(),
            meter,
        })
    }

    pub fn process(ProcessArgs(args): ProcessArgs, function: &MaybeItemFn) -> syn::Result<Self> {
        let private = private_path(args.krate.as_ref());
        let sig = &function.sig;
        let (Some(destination), Some(system)) = (&args.destination, &args.system) else {
            return Err(syn::Error::new(
                Span::call_site(),
                "`destination` and `system` are needed",
            ));
        };
        let headers = match &args.headers_param {
            Some(literal) => {
                let param = params::find(sig, "headers_param", literal)?;
                let ident = &param.ident;
                let checked =
                    quote_spanned!(param.span()=> #private::queue::probe::carrier(&#ident));
                quote!(::core::option::Option::Some(#checked))
            }
            None => quote!(::core::option::Option::<&[(&str, &str)]>::None),
        };
        let mut builder = quote!(#private::queue::Process::new(#destination, #system, #headers));
        if let Some(literal) = &args.message_id_param {
            let param = params::find(sig, "message_id_param", literal)?;
            let ident = &param.ident;
            let id = quote_spanned!(param.span()=> &#ident);
            builder = quote!(#builder.message_id_display(#id));
        }
        if let Some(literal) = &args.body_param {
            let param = params::find(sig, "body_param", literal)?;
            let ident = &param.ident;
            let size = quote_spanned!(param.span()=> #private::queue::probe::body_size(&#ident));
            builder = quote!(#builder.body_size(#size));
        }
        if let Some(literal) = &args.retry_count_param {
            let param = params::find(sig, "retry_count_param", literal)?;
            let ident = &param.ident;
            let count = quote_spanned!(param.span()=> #private::queue::probe::retry_count(&#ident));
            builder = quote!(#builder.retry_count(#count));
        }
        if let Some(name) = &args.name {
            builder = quote!(#builder.transaction_name(#name));
        }
        // Built once: the span and the meter both read the headers.
        let process = Ident::new("__insights_process", Span::mixed_site());
        let meter = metered(|| {
            let m = quote!(#private::metrics);
            let queue = || ("queue_name", destination.to_token_stream());
            let mut keys: Vec<_> = ["ok", "error", "cancelled"]
                .iter()
                .map(|status| {
                    (
                        quote!(#m::QUEUE_MESSAGES_PROCESSED_TOTAL),
                        vec![queue(), ("status", quote!(#status))],
                    )
                })
                .collect();
            keys.push((quote!(#m::QUEUE_PROCESS_DURATION_SECONDS), vec![queue()]));
            keys.push((quote!(#m::QUEUE_RECEIVE_LATENCY_SECONDS), vec![queue()]));
            static_keys(&private, &keys, |keys| quote!(#process.meter_keys(&#keys)))
        });
        Ok(Plan {
            data: closure(&private, TokenStream::new()),
            private,
            op: quote!("queue.process"),
            description: destination.to_token_stream(),
            transaction: None,
            read: false,
            start: Some(Starts {
                sync: quote!(#process.start()),
                recording: quote!(#process.recording()),
            }),
            inject: None,
            prelude: quote!(let #process = #builder;),
            meter,
        })
    }
}

/// The meter of a query: its `table` and `operation` labels come from the literals, never from
/// run-time values, so that their number is bounded.
fn db_meter(private: &TokenStream, args: &DbArgs, sql_param: &Ident) -> TokenStream {
    let table = match &args.table {
        Some(table) => table.to_token_stream(),
        None => quote!(#private::metrics::UNKNOWN_TABLE),
    };
    let known = |word: &str| {
        let word = word.to_ascii_lowercase();
        DB_OPERATIONS.iter().find(|o| **o == word).copied()
    };
    let operation = if let Some(operation) = &args.operation {
        known(&operation.value()).unwrap_or("other")
    } else if let Some(sql) = &args.query {
        let text = sql.value();
        let first = text
            .trim_start()
            .split(|c: char| !c.is_ascii_alphabetic())
            .next()
            .unwrap_or("")
            .to_owned();
        known(&first).unwrap_or("other")
    } else if args.query_param.is_some() {
        // Known only at run time, from the statement.
        return quote!(#private::Meter::query_sql(#table, #sql_param));
    } else {
        "other"
    };
    let m = quote!(#private::metrics);
    static_keys(
        private,
        &[
            (
                quote!(#m::DATABASE_QUERIES_TOTAL),
                vec![("table", table.clone()), ("operation", quote!(#operation))],
            ),
            (
                quote!(#m::DATABASE_QUERY_DURATION_SECONDS),
                vec![("table", table)],
            ),
        ],
        |keys| quote!(#private::Meter::query_keys(&#keys)),
    )
}

/// The message id and body size data of a producer.
fn message_and_body(
    private: &TokenStream,
    data: &Ident,
    sig: &syn::Signature,
    args: &crate::args::QueueArgs,
) -> syn::Result<TokenStream> {
    let mut statements = TokenStream::new();
    if let Some(literal) = &args.message_id_param {
        let param = params::find(sig, "message_id_param", literal)?;
        let ident = &param.ident;
        statements.extend(
            quote_spanned!(param.span()=> #private::queue::probe::message_id(#data, &#ident);),
        );
    }
    if let Some(literal) = &args.body_param {
        let param = params::find(sig, "body_param", literal)?;
        let ident = &param.ident;
        let size = quote_spanned!(param.span()=> #private::queue::probe::body_size(&#ident));
        statements.extend(quote!(#data.set("messaging.message.body.size", #size);));
    }
    Ok(statements)
}

impl Plan {
    /// `SpanGuard::start_with(..)` or `Recording::start(..)` (`ty` and `child`), or their
    /// `start_transaction_or_child` when the plan names a transaction.
    fn started(&self, ty: &TokenStream, child: &TokenStream) -> TokenStream {
        let Plan {
            private,
            op,
            description,
            transaction,
            data,
            ..
        } = self;
        match transaction {
            Some(name) => quote! {
                #private::#ty::start_transaction_or_child(#name, #op, #description, #data)
            },
            None => quote!(#private::#ty::#child(#op, #description, #data)),
        }
    }
}

/// `Select` for `"select"` (any case); validated when parsed.
fn operation_variant(operation: &LitStr) -> Ident {
    let name = operation.value().to_ascii_lowercase();
    let known = DB_OPERATIONS
        .iter()
        .find(|o| **o == name)
        .copied()
        .unwrap_or("select");
    let mut variant = String::with_capacity(known.len());
    let mut chars = known.chars();
    if let Some(first) = chars.next() {
        variant.push(first.to_ascii_uppercase());
    }
    variant.extend(chars);
    Ident::new(&variant, operation.span())
}

impl Instrumentation for Plan {
    fn private(&self) -> &TokenStream {
        &self.private
    }

    fn sync_guard(&self) -> TokenStream {
        match &self.start {
            Some(start) => start.sync.clone(),
            None => self.started(&quote!(SpanGuard), &quote!(start_with)),
        }
    }

    fn recording(&self) -> TokenStream {
        match &self.start {
            Some(start) => start.recording.clone(),
            None => self.started(&quote!(Recording), &quote!(start)),
        }
    }

    fn prelude(&self) -> TokenStream {
        self.prelude.clone()
    }

    fn meter(&self) -> Option<TokenStream> {
        self.meter.clone()
    }

    fn verdict(&self, out: &Ident) -> TokenStream {
        let private = &self.private;
        if self.read {
            quote! {{
                use #private::cache::probe::{HitShape as _, NoHitShape as _};
                let hit = (&#private::cache::probe::Read(#out)).__insights_found();
                #private::Verdict { ok: hit.is_some(), hit }
            }}
        } else {
            quote! {{
                use #private::{AnyProbe as _, ResultProbe as _};
                #private::Verdict::of_status((&#private::Probe(#out)).__insights_status())
            }}
        }
    }

    fn after_sync_start(&self, guard: &Ident) -> TokenStream {
        let Some((publish, param)) = &self.inject else {
            return TokenStream::new();
        };
        let private = &self.private;
        let ident = &param.ident;
        quote_spanned! {param.span()=>
            #private::queue::probe::inject_sync(&#publish, &#guard, #ident);
        }
    }

    fn after_async_start(&self, recording: &Ident) -> TokenStream {
        let Some((publish, param)) = &self.inject else {
            return TokenStream::new();
        };
        let private = &self.private;
        let ident = &param.ident;
        quote_spanned! {param.span()=>
            #private::queue::probe::inject_async(&#publish, #recording.as_ref(), #ident);
        }
    }

    fn status(&self, out: &Ident, data: &Ident) -> TokenStream {
        let private = &self.private;
        let read = if self.read {
            quote! {
                use #private::cache::probe::{BytesSize as _, HitShape as _, NoHitShape as _, NoSize as _};
                if let ::core::option::Option::Some(value) =
                    (&#private::cache::probe::Read(#out)).__insights_hit(#data)
                {
                    if let ::core::option::Option::Some(bytes) =
                        (&#private::cache::probe::Size(value)).__insights_size()
                    {
                        #data.set("cache.item_size", bytes);
                    }
                }
            }
        } else {
            quote!(let _ = #data;)
        };
        quote! {{
            use #private::{AnyProbe as _, ResultProbe as _};
            #read
            (&#private::Probe(#out)).__insights_status()
        }}
    }
}
