//! What each attribute records: its checked arguments turned into expressions over the
//! runtime's private module.
//!
//! A [`Plan`] is how the span starts, the data written when it is recorded, how the output is
//! judged and, with the `metrics` feature, the meter; `expand` puts it around the function,
//! whatever its shape. Everything here trusts `validate`: parameters are resolved, and each
//! argument's combinations are already known to be valid.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, LitStr, Path, ReturnType};

use crate::args::{
    CacheArgs, CacheOp, DataField, DbArgs, ErrStatus, Message, Name, ProcessArgs, PublishArgs,
    QuerySource, Server, TracedArgs, Ttl,
};
use crate::item::MaybeItemFn;
use crate::params::Param;
use crate::validate::Spec;

pub(crate) struct Plan {
    /// The path of the runtime's private module.
    pub private: TokenStream,
    /// Statements run first, before the meter and the span start, in a block of their own
    /// (their bindings and temporaries end once the span has started).
    pub prelude: TokenStream,
    pub start: Start,
    /// `|data: &SpanData| { .. }`: the span's data, written only when it is recorded.
    pub data: TokenStream,
    pub judge: Judge,
    /// `err = ".."`: the status of a returned `Err`, whatever the error.
    pub err: Option<ErrStatus>,
    /// Writes a producer's headers into a parameter once the span has started.
    pub inject: Option<Inject>,
    /// An expression of type `Meter` (`metrics` feature), started before the span.
    pub meter: Option<TokenStream>,
}

/// How the span starts.
pub(crate) enum Start {
    /// A child of the current span; nothing when none is current.
    Child {
        op: TokenStream,
        description: TokenStream,
    },
    /// A child of the current span, or a transaction named `name` when none is current.
    TransactionOrChild {
        name: LitStr,
        op: TokenStream,
        description: TokenStream,
    },
    /// A consumer's transaction and span, from the `Process` builder the prelude binds.
    Consumer { process: Ident },
}

/// How the output becomes the span's status. Either way an `Err` is the attribute's `err`
/// status when given, else the error's `ErrorStatus` when its type has one, else
/// `internal_error`.
pub(crate) enum Judge {
    /// By its type: an `Err` as above, anything else `ok`.
    Outcome,
    /// A cache read: the hit, the size and the status from the value read, checked at `at`
    /// (the function's return type) to be a type that tells a hit from a miss.
    CacheRead { at: Span },
}

/// A producer's headers, written into `param`.
pub(crate) struct Inject {
    /// An expression of type `Publish`.
    pub publish: TokenStream,
    pub param: Param,
}

/// The parts of a plan one attribute decides.
struct Parts {
    start: Start,
    data: TokenStream,
    judge: Judge,
    prelude: TokenStream,
    inject: Option<Inject>,
    meter: Option<TokenStream>,
}

impl Parts {
    fn child(op: TokenStream, description: TokenStream, data: TokenStream) -> Self {
        Parts {
            start: Start::Child { op, description },
            data,
            judge: Judge::Outcome,
            prelude: TokenStream::new(),
            inject: None,
            meter: None,
        }
    }
}

/// The path of the runtime's private module, named after this crate's version (see the
/// runtime's `private.rs`).
fn private_path(krate: Option<&Path>) -> TokenStream {
    let module = Ident::new(
        &format!("__private_{}", env!("CARGO_PKG_VERSION").replace('.', "_")),
        Span::call_site(),
    );
    match krate {
        Some(path) => quote!(#path::#module),
        None => quote!(::insights_runtime::#module),
    }
}

pub(crate) fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

fn data_ident() -> Ident {
    local("__insights_data")
}

/// `|data| { statements }`.
fn closure(private: &TokenStream, statements: TokenStream) -> TokenStream {
    let data = data_ident();
    quote!(|#data: &#private::SpanData<'_>| { #statements })
}

/// `Some(meter)` with the `metrics` feature: the metrics of a call are recorded whether or not
/// its span is.
fn metered(meter: impl FnOnce() -> Option<TokenStream>) -> Option<TokenStream> {
    cfg!(feature = "metrics").then(meter).flatten()
}

/// A parameter's identifier, for an expression spanned at its literal.
fn at(param: &Param) -> (&Ident, Span) {
    (&param.ident, param.span())
}

impl Plan {
    /// The plan of an attribute whose arguments `validate` checked against `function`.
    pub fn new(spec: Spec, function: &MaybeItemFn) -> Self {
        let krate = match &spec {
            Spec::Traced(args) => args.krate.as_ref(),
            Spec::Db(args) => args.krate.as_ref(),
            Spec::Cache(args) => args.krate.as_ref(),
            Spec::Publish(args) => args.message.krate.as_ref(),
            Spec::Process(args) => args.message.krate.as_ref(),
        };
        let private = private_path(krate);
        let err = match &spec {
            Spec::Traced(args) => args.err,
            Spec::Db(args) => args.err,
            Spec::Cache(args) => args.err,
            Spec::Publish(args) => args.err,
            Spec::Process(args) => args.err,
        };
        let parts = match spec {
            Spec::Traced(args) => traced(&private, args, function),
            Spec::Db(args) => db(&private, args, function),
            Spec::Cache(args) => cache(&private, args, function),
            Spec::Publish(args) => publish(&private, args),
            Spec::Process(args) => process(&private, args),
        };
        Plan {
            private,
            prelude: parts.prelude,
            start: parts.start,
            data: parts.data,
            judge: parts.judge,
            err,
            inject: parts.inject,
            meter: parts.meter,
        }
    }
}

fn traced(private: &TokenStream, args: TracedArgs, function: &MaybeItemFn) -> Parts {
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
    let data = closure(private, quote!(#(#sets)*));
    match args.transaction {
        Some(name) => Parts {
            start: Start::TransactionOrChild {
                name,
                op,
                description,
            },
            ..Parts::child(TokenStream::new(), TokenStream::new(), data)
        },
        None => Parts::child(op, description, data),
    }
}

fn db(private: &TokenStream, args: DbArgs<Param>, function: &MaybeItemFn) -> Parts {
    let data = data_ident();
    // The text of a `query_param`, read once for the span and the meter.
    let sql = local("__insights_sql");
    let mut prelude = TokenStream::new();
    let mut builder = match &args.query {
        QuerySource::Literal(literal) => quote!(#private::Query::sql(#literal)),
        QuerySource::Param(param) => {
            let (ident, span) = at(param);
            // Spanned at the literal, so that a parameter that is not text is reported there.
            let text = quote_spanned!(span=> #private::query_text(&#ident));
            prelude = quote!(let #sql = #text;);
            quote!(#private::Query::sql(#sql))
        }
        QuerySource::Built {
            table,
            operation,
            operation_span,
        } => {
            let variant = Ident::new(operation.variant(), *operation_span);
            quote!(#private::Query::table_operation(#table, #private::Operation::#variant))
        }
    };
    if !matches!(args.query, QuerySource::Built { .. }) {
        if let Some(table) = &args.table {
            builder = quote!(#builder.table(#table));
        }
        // Upper-cased here rather than on every call. Without an operation, the runtime reads
        // the statement's first keyword (the one place that parses it).
        if let Some(operation) = &args.operation {
            let verb = LitStr::new(&operation.value().to_ascii_uppercase(), operation.span());
            builder = quote!(#builder.operation_name(#verb));
        }
    }
    if let Some(system) = &args.system {
        builder = quote!(#builder.system(#system));
    }
    // A name or a server given as an expression is read here, in the data closure: only when
    // the span is recorded. Its temporaries live until the end of the statement that writes.
    match &args.db_name {
        Some(Name::Literal(name)) => builder = quote!(#builder.db_name(#name)),
        Some(Name::Expr(name)) => {
            let text = borrowed(name);
            let text = quote!(#private::db_name(#text));
            builder = quote!(#builder.db_name(#text));
        }
        None => {}
    }
    if let Some(server) = &args.server {
        let Server { address, port } = &**server;
        let address = borrowed(address);
        let address = quote!(#private::server_address(#address));
        // The expression itself is the argument: a port of another type is reported on it.
        let port = quote_spanned!(port.span()=> #private::server_port(#port));
        builder = quote!(#builder.server(#address, #port));
    }
    // The query source: a static built at the call site, so that recording it allocates
    // nothing. `line!()` is the attribute's line.
    let location = Ident::new("__INSIGHTS_QUERY_SOURCE", Span::mixed_site());
    let name = syn::ext::IdentExt::unraw(&function.sig.ident).to_string();
    let write = quote! {
        static #location: #private::CodeLocation = #private::CodeLocation::new(
            ::core::file!(),
            ::core::line!(),
            #name,
            ::core::module_path!(),
        );
        #builder.location(&#location).write(#data);
    };
    let meter = metered(|| Some(db_meter(private, &args, &sql)));
    Parts {
        prelude,
        meter,
        ..Parts::child(quote!("db"), quote!(""), closure(private, write))
    }
}

/// The meter of a query: its `table` and `operation` labels come from the literals, never from
/// run-time values, so that their number is bounded.
fn db_meter(private: &TokenStream, args: &DbArgs<Param>, sql: &Ident) -> TokenStream {
    let table = match &args.table {
        Some(table) => table.to_token_stream(),
        None => quote!(#private::UNKNOWN_TABLE),
    };
    let operation = match (&args.operation, &args.query) {
        (Some(operation), _) => quote!(#private::operation_label(#operation)),
        (None, QuerySource::Literal(literal)) => quote!(#private::operation_label(#literal)),
        // Known only at run time, from the statement.
        (None, QuerySource::Param(_)) => return quote!(#private::query_meter(#table, #sql)),
        (None, QuerySource::Built { .. }) => quote!("other"),
    };
    quote!(#private::Meter::query(#private::query_keys!(#table, #operation)))
}

fn cache(private: &TokenStream, args: CacheArgs<Param>, function: &MaybeItemFn) -> Parts {
    let data = data_ident();
    let mut statements = TokenStream::new();
    let (op, key) = match &args.op {
        CacheOp::Get { key } => ("cache.get", Some(key)),
        CacheOp::Put { key, .. } => ("cache.put", Some(key)),
        CacheOp::Remove { key } => ("cache.remove", Some(key)),
        CacheOp::Flush => ("cache.flush", None),
    };
    if let Some(param) = key {
        let (ident, span) = at(param);
        let keys = quote_spanned!(span=> #private::cache_keys(&#ident));
        statements.extend(quote!(#private::describe_cache(#data, #keys);));
    }
    if let CacheOp::Put { ttl, value, .. } = &args.op {
        match ttl {
            Some(Ttl::Seconds(seconds)) => {
                statements.extend(quote!(#data.set("cache.ttl", #seconds);));
            }
            Some(Ttl::Param(param)) => {
                let (ident, span) = at(param);
                let seconds = quote_spanned!(span=> #private::ttl_seconds(&#ident));
                statements.extend(quote! {
                    if let ::core::option::Option::Some(seconds) = #seconds {
                        #data.set("cache.ttl", seconds);
                    }
                });
            }
            None => {}
        }
        if let Some(param) = value {
            let ident = &param.ident;
            statements.extend(quote! {{
                use #private::{BytesSize as _, NoSize as _};
                if let ::core::option::Option::Some(bytes) =
                    (&#private::Size(&#ident)).__insights_size()
                {
                    #data.set("cache.item_size", bytes);
                }
            }});
        }
    }
    if let Some(tracker) = &args.tracker {
        // Spanned at the expression, so that one of the wrong type is reported there.
        statements.extend(quote_spanned! {tracker.span()=>
            #private::tracker_record(#tracker, #data);
        });
    }
    let meter = metered(|| cache_meter(private, &args));
    let judge = match args.op {
        CacheOp::Get { .. } => Judge::CacheRead {
            at: return_type_span(function),
        },
        CacheOp::Put { .. } | CacheOp::Remove { .. } | CacheOp::Flush => Judge::Outcome,
    };
    Parts {
        judge,
        meter,
        ..Parts::child(quote!(#op), quote!(""), closure(private, statements))
    }
}

/// Where the function's return type is written (its name, when it has none).
fn return_type_span(function: &MaybeItemFn) -> Span {
    match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => function.sig.ident.span(),
    }
}

/// The meter of a cache operation, labelled with its `cache_name`: the literal, else the
/// tracker's name (known at run time), else the default. A flush records no metrics.
fn cache_meter(private: &TokenStream, args: &CacheArgs<Param>) -> Option<TokenStream> {
    /// Which keys: for a name known at compile time, the call site's statics.
    enum Name {
        Literal(TokenStream),
        Tracker(TokenStream),
    }
    let name = match (&args.cache_name, &args.tracker) {
        (Some(name), _) => Name::Literal(name.to_token_stream()),
        (None, Some(tracker)) => {
            Name::Tracker(quote_spanned!(tracker.span()=> #private::tracker_name(#tracker)))
        }
        (None, None) => Name::Literal(quote!(#private::DEFAULT_CACHE_NAME)),
    };
    let meter = match (&args.op, name) {
        (CacheOp::Flush, _) => return None,
        (CacheOp::Get { .. }, Name::Literal(name)) => {
            quote!(#private::Meter::cache_read(#private::cache_read_keys!(#name)))
        }
        (CacheOp::Put { .. }, Name::Literal(name)) => {
            quote!(#private::Meter::cache_write(#private::cache_write_keys!(set, #name)))
        }
        (CacheOp::Remove { .. }, Name::Literal(name)) => {
            quote!(#private::Meter::cache_write(#private::cache_write_keys!(remove, #name)))
        }
        (CacheOp::Get { .. }, Name::Tracker(name)) => {
            quote!(#private::cache_meter(#private::CacheKind::Get, #name))
        }
        (CacheOp::Put { .. }, Name::Tracker(name)) => {
            quote!(#private::cache_meter(#private::CacheKind::Put, #name))
        }
        (CacheOp::Remove { .. }, Name::Tracker(name)) => {
            quote!(#private::cache_meter(#private::CacheKind::Remove, #name))
        }
    };
    Some(meter)
}

/// A queue's destination: an expression of type `&str` for the span, and the statements that
/// bind it first when it is evaluated at run time.
struct Destination {
    name: TokenStream,
    prelude: TokenStream,
    /// The literal: the metrics' keys are then the call site's statics.
    literal: Option<LitStr>,
}

/// A literal as it is; an expression evaluated once, before the body, into
/// `__insights_destination: &str` (checked to be text at the expression).
fn destination(private: &TokenStream, destination: &Name) -> Destination {
    match destination {
        Name::Literal(literal) => Destination {
            name: literal.to_token_stream(),
            prelude: TokenStream::new(),
            literal: Some(literal.clone()),
        },
        Name::Expr(expr) => {
            let name = local("__insights_destination");
            let value = local("__insights_destination_value");
            // A `let` of a borrow: a temporary (a `String` a method returns) lives as long as
            // the binding.
            let borrow = borrowed(expr);
            Destination {
                name: name.to_token_stream(),
                prelude: quote! {
                    let #value: &dyn #private::QueueName = #borrow;
                    let #name: &str = #private::queue_name(#value);
                },
                literal: None,
            }
        }
    }
}

/// `&(expr)`, for an expression checked to be text by its coercion to `&dyn Trait`, a trait of
/// the private module implemented for text whose message says what the argument takes.
/// Borrowed, so that a field is not moved out of `self`. The `&` is spanned at the expression's
/// first token and the parentheses at its last, so that an expression of the wrong type is
/// reported under all of it.
fn borrowed(expr: &Expr) -> TokenStream {
    let tokens = expr.to_token_stream();
    let mut spans = tokens.clone().into_iter().map(|t| t.span());
    let first = spans.next().unwrap_or_else(Span::call_site);
    let last = spans.last().unwrap_or(first);
    let mut group = Group::new(Delimiter::Parenthesis, tokens);
    group.set_span(last);
    let borrow = quote_spanned!(first=> &);
    quote!(#borrow #group)
}

fn publish(private: &TokenStream, args: PublishArgs<Param>) -> Parts {
    let data = data_ident();
    let Message {
        destination,
        system,
        ..
    } = &args.message;
    let Destination {
        name: destination,
        prelude,
        literal,
    } = self::destination(private, destination);
    let mut statements = quote! {
        #data.set("messaging.destination.name", #destination);
        #data.set("messaging.system", #system);
    };
    if let Some(param) = &args.message.message_id {
        let (ident, span) = at(param);
        statements.extend(quote_spanned!(span=> #private::message_id(#data, &#ident);));
    }
    if let Some(param) = &args.message.body {
        let (ident, span) = at(param);
        let size = quote_spanned!(span=> #private::body_size(&#ident));
        statements.extend(quote!(#data.set("messaging.message.body.size", #size);));
    }
    let inject = args.message.headers.as_ref().map(|param| Inject {
        publish: match &args.transaction {
            Some(name) => {
                quote!(#private::Publish::new(#destination, #system).transaction_name(#name))
            }
            None => quote!(#private::Publish::new(#destination, #system)),
        },
        param: param.clone(),
    });
    let meter = metered(|| {
        Some(match &literal {
            Some(literal) => quote!(#private::Meter::publish(#private::publish_keys!(#literal))),
            // Keys made at run time, from the name as it is.
            None => quote!(#private::publish_meter(#destination)),
        })
    });
    Parts {
        inject,
        meter,
        prelude,
        ..Parts::child(
            quote!("queue.publish"),
            destination,
            closure(private, statements),
        )
    }
}

fn process(private: &TokenStream, args: ProcessArgs<Param>) -> Parts {
    let Message {
        destination,
        system,
        headers,
        message_id,
        body,
        krate: _,
    } = &args.message;
    let Destination {
        name: destination,
        mut prelude,
        literal,
    } = self::destination(private, destination);
    let headers = match headers {
        Some(param) => {
            let (ident, span) = at(param);
            let checked = quote_spanned!(span=> #private::carrier(&#ident));
            quote!(::core::option::Option::Some(#checked))
        }
        None => quote!(::core::option::Option::<&[(&str, &str)]>::None),
    };
    let mut builder = quote!(#private::Process::new(#destination, #system, #headers));
    if let Some(param) = message_id {
        let (ident, span) = at(param);
        let id = quote_spanned!(span=> &#ident);
        builder = quote!(#builder.message_id_display(#id));
    }
    if let Some(param) = body {
        let (ident, span) = at(param);
        let size = quote_spanned!(span=> #private::body_size(&#ident));
        builder = quote!(#builder.body_size(#size));
    }
    if let Some(param) = &args.retry_count {
        let (ident, span) = at(param);
        let count = quote_spanned!(span=> #private::retry_count(&#ident));
        builder = quote!(#builder.retry_count(#count));
    }
    if let Some(name) = &args.transaction {
        builder = quote!(#builder.transaction_name(#name));
    }
    // Built once: the span and the meter both read the headers.
    let process = local("__insights_process");
    let meter = metered(|| {
        Some(match &literal {
            Some(literal) => {
                quote!(#private::process_meter(#private::process_keys!(#literal), &#process))
            }
            // Keys made at run time, from the name as it is.
            None => quote!(#private::process_meter_named(#destination, &#process)),
        })
    });
    prelude.extend(quote!(let #process = #builder;));
    Parts {
        start: Start::Consumer {
            process: process.clone(),
        },
        data: closure(private, TokenStream::new()),
        judge: Judge::Outcome,
        prelude,
        inject: None,
        meter,
    }
}

impl Plan {
    /// An expression of type `SpanGuard`: the span of a sync call, current from now on.
    pub fn sync_guard(&self) -> TokenStream {
        self.started(quote!(SpanGuard), quote!(start_with), quote!(start))
    }

    /// An expression of type `Option<Recording>`: the span of an async call, not yet current.
    pub fn recording(&self) -> TokenStream {
        self.started(quote!(Recording), quote!(start), quote!(recording))
    }

    /// `Type::child(..)`, `Type::start_transaction_or_child(..)` or the consumer's
    /// `process.consumer()`.
    fn started(&self, ty: TokenStream, child: TokenStream, consumer: TokenStream) -> TokenStream {
        let Plan { private, data, .. } = self;
        match &self.start {
            Start::Child { op, description } => {
                quote!(#private::#ty::#child(#op, #description, #data))
            }
            Start::TransactionOrChild {
                name,
                op,
                description,
            } => quote! {
                #private::#ty::start_transaction_or_child(#name, #op, #description, #data)
            },
            Start::Consumer { process } => quote!(#process.#consumer()),
        }
    }

    /// Statements run right after a sync span starts (`guard: SpanGuard`).
    pub fn after_sync_start(&self, guard: &Ident) -> TokenStream {
        let Some(Inject { publish, param }) = &self.inject else {
            return TokenStream::new();
        };
        let private = &self.private;
        let (ident, span) = at(param);
        quote_spanned! {span=>
            #private::inject_sync(&#publish, &#guard, #ident);
        }
    }

    /// Statements run right after an async span starts (`recording: Option<Recording>`).
    pub fn after_async_start(&self, recording: &Ident) -> TokenStream {
        let Some(Inject { publish, param }) = &self.inject else {
            return TokenStream::new();
        };
        let private = &self.private;
        let (ident, span) = at(param);
        quote_spanned! {span=>
            #private::inject_async(&#publish, #recording.as_ref(), #ident);
        }
    }

    /// An expression of type `SpanStatus` for the output `out: &Output`; it may write more
    /// data through `data: &SpanData`.
    pub fn status(&self, out: &Ident, data: &Ident) -> TokenStream {
        let private = &self.private;
        let error = self.error_status(out);
        let check_err = self.err.map(|err| check_err_output(private, out, err.span));
        match &self.judge {
            Judge::Outcome => quote! {{
                #check_err
                let _ = #data;
                match #error {
                    ::core::option::Option::Some(status) => status,
                    ::core::option::Option::None => #private::SpanStatus::Ok,
                }
            }},
            Judge::CacheRead { at } => {
                let check = check_cache_read(private, out, *at);
                quote! {{
                    use #private::{BytesSize as _, NoReadShape as _, NoSize as _, ReadShape as _};
                    #check
                    #check_err
                    let lookup = (&#private::Read(#out)).__insights_lookup();
                    if let ::core::option::Option::Some(value) = lookup.value() {
                        if let ::core::option::Option::Some(bytes) =
                            (&#private::Size(value)).__insights_size()
                        {
                            #data.set("cache.item_size", bytes);
                        }
                    }
                    let status = lookup.record(#data);
                    // A failed read: the error's status, when the output is an `Err`.
                    match lookup.hit() {
                        ::core::option::Option::None => match #error {
                            ::core::option::Option::Some(status) => status,
                            ::core::option::Option::None => status,
                        },
                        ::core::option::Option::Some(_) => status,
                    }
                }}
            }
        }
    }

    /// An expression of type `Option<SpanStatus>`: the status of the error the output `out`
    /// carries (see [`Judge`]), `None` when it carries none. Resolved at compile time.
    fn error_status(&self, out: &Ident) -> TokenStream {
        let private = &self.private;
        let probe = quote! {{
            use #private::{AnyProbe as _, ErrorStatusProbe as _, ResultProbe as _};
            (&&&#private::Probe(#out)).__insights_error()
        }};
        match self.err {
            None => probe,
            Some(ErrStatus { status, span }) => {
                let variant = Ident::new(status.variant(), span);
                quote! {
                    match #probe {
                        ::core::option::Option::Some(_) => {
                            ::core::option::Option::Some(#private::SpanStatus::#variant)
                        }
                        ::core::option::Option::None => ::core::option::Option::None,
                    }
                }
            }
        }
    }

    /// An expression of type `Verdict` for the output `out: &Output`, for the meter.
    pub fn verdict(&self, out: &Ident) -> TokenStream {
        let private = &self.private;
        match &self.judge {
            Judge::Outcome => {
                let error = self.error_status(out);
                quote! {
                    #private::Verdict::of_status(match #error {
                        ::core::option::Option::Some(status) => status,
                        ::core::option::Option::None => #private::SpanStatus::Ok,
                    })
                }
            }
            Judge::CacheRead { .. } => quote! {{
                use #private::{NoReadShape as _, ReadShape as _};
                #private::Verdict::of_read((&#private::Read(#out)).__insights_lookup().hit())
            }},
        }
    }
}

/// `check_err_output(out);`, spanned at the `err` literal: an output that is not a `Result` is
/// reported there.
fn check_err_output(private: &TokenStream, out: &Ident, at: Span) -> TokenStream {
    let mut out = out.clone();
    out.set_span(out.span().located_at(at));
    quote_spanned!(at=> #private::check_err_output(#out);)
}

/// `check_cache_read(out);`, spanned at the return type: a type that cannot tell a hit from a
/// miss is reported there.
fn check_cache_read(private: &TokenStream, out: &Ident, at: Span) -> TokenStream {
    let mut out = out.clone();
    out.set_span(out.span().located_at(at));
    quote_spanned!(at=> #private::check_cache_read(#out);)
}
