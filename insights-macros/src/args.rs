//! Attribute arguments, parsed into typed structs before anything is generated.
//!
//! Every attribute takes named arguments (`key = value`), in any order, each at most once. Each
//! attribute lists its keys once, as a table from name to an enum, so a key is matched
//! exhaustively and a new one cannot fall into another's field. The helpers give every
//! attribute the same errors: an unknown key is reported on the key with the list of valid ones,
//! a repeated key on its second use, a value of the wrong kind on the value.
//!
//! What needs the function (a `*_param` naming one of its parameters) is checked later, by
//! `validate`; the structs are generic over `P`, the string literal here and the resolved
//! parameter there, so that the rest of the macro only ever sees checked parameters.

use proc_macro2::{Span, TokenStream};
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
    pub err: Option<ErrStatus>,
    pub krate: Option<Path>,
}

/// One `key = expr` of `data(..)`.
pub(crate) struct DataField {
    pub key: LitStr,
    pub value: Expr,
}

#[derive(Clone, Copy)]
enum TracedKey {
    Op,
    Description,
    Transaction,
    Data,
    Err,
    Crate,
}

const TRACED_KEYS: &[(&str, TracedKey)] = &[
    ("op", TracedKey::Op),
    ("description", TracedKey::Description),
    ("transaction", TracedKey::Transaction),
    ("data", TracedKey::Data),
    ("err", TracedKey::Err),
    ("crate", TracedKey::Crate),
];

impl Parse for TracedArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = TracedArgs::default();
        let mut keys = Keys::new("traced", TRACED_KEYS);
        while !input.is_empty() {
            let (key, ident) = keys.next(input)?;
            match key {
                TracedKey::Op => args.op = Some(string_value(input, &ident)?),
                TracedKey::Description => args.description = Some(string_value(input, &ident)?),
                TracedKey::Transaction => args.transaction = Some(string_value(input, &ident)?),
                TracedKey::Data => args.data = data_fields(input)?,
                TracedKey::Err => args.err = Some(err_value(input, &ident)?),
                TracedKey::Crate => args.krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        Ok(args)
    }
}

/// Reads argument keys and rejects unknown and repeated ones.
struct Keys<K: 'static> {
    attribute: &'static str,
    allowed: &'static [(&'static str, K)],
    /// Keys of an earlier version, or written by analogy with another attribute, with the name
    /// to use instead.
    renamed: &'static [(&'static str, &'static str)],
    seen: Vec<String>,
}

impl<K: Copy> Keys<K> {
    fn new(attribute: &'static str, allowed: &'static [(&'static str, K)]) -> Self {
        Keys {
            attribute,
            allowed,
            renamed: &[],
            seen: Vec::new(),
        }
    }

    fn renamed(mut self, renamed: &'static [(&'static str, &'static str)]) -> Self {
        self.renamed = renamed;
        self
    }

    /// Reads the next key: a known one, not seen before.
    fn next(&mut self, input: ParseStream) -> syn::Result<(K, Ident)> {
        if input.peek(Lit) {
            let lit: Lit = input.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "`#[{}]` takes named arguments only, like `{} = ..`; valid arguments: {}",
                    self.attribute,
                    self.names().first().copied().unwrap_or_default(),
                    self.list()
                ),
            ));
        }
        // `Ident::parse_any` accepts keywords, so that `crate` can be a key.
        let ident = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                format!(
                    "expected an argument of `#[{}]`: {}",
                    self.attribute,
                    self.list()
                ),
            )
        })?;
        let name = ident.to_string();
        let Some(key) = self
            .allowed
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
        else {
            let hint = match self.renamed.iter().find(|(old, _)| *old == name) {
                Some((_, new)) => Some(*new),
                None => closest(&name, &self.names()),
            }
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
            return Err(syn::Error::new(
                ident.span(),
                format!(
                    "unknown argument `{name}` for `#[{}]`; valid arguments: {}{hint}",
                    self.attribute,
                    self.list()
                ),
            ));
        };
        self.mark(&ident)?;
        Ok((key, ident))
    }

    /// Records `key` as given; an error on it when it was given before.
    fn mark(&mut self, key: &Ident) -> syn::Result<()> {
        let name = key.to_string();
        if self.seen.contains(&name) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` is given more than once; keep one"),
            ));
        }
        self.seen.push(name);
        Ok(())
    }

    fn names(&self) -> Vec<&'static str> {
        self.allowed.iter().map(|(n, _)| *n).collect()
    }

    fn list(&self) -> String {
        quoted_list(&self.names())
    }
}

/// After a value: a comma, or the end.
fn end_of_argument(input: ParseStream) -> syn::Result<()> {
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
fn string_value(input: ParseStream, key: &Ident) -> syn::Result<LitStr> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => non_empty(lit, &key.to_string()),
        other => Err(syn::Error::new_spanned(
            &other,
            format!("`{key}` takes a string literal, like `{key} = \"...\"`"),
        )),
    }
}

/// A query's text as written: a string literal, or a path to a `const` holding it.
#[derive(Clone)]
pub(crate) enum Sql {
    Literal(LitStr),
    Const(syn::ExprPath),
}

impl ToTokens for Sql {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Sql::Literal(literal) => literal.to_tokens(tokens),
            Sql::Const(path) => path.to_tokens(tokens),
        }
    }
}

/// `= "SELECT .."` or `= SELECT_USER` (a path to a `const`).
fn sql_value(input: ParseStream, key: &Ident) -> syn::Result<Sql> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => non_empty(lit, &key.to_string()).map(Sql::Literal),
        Expr::Path(path) if path.qself.is_none() => Ok(Sql::Const(path)),
        other => Err(syn::Error::new_spanned(
            &other,
            format!(
                "`{key}` takes the statement as a string literal or a path to a `const`, like \
                 `{key} = \"SELECT ..\"` or `{key} = SELECT_USER`"
            ),
        )),
    }
}

/// A name given as a string literal, or as an expression evaluated at run time (a `const`, a
/// field such as `self.queue`, a method call), which must give text (`AsRef<str>`; checked at
/// the expression, where a wrong type is reported).
#[derive(Clone)]
pub(crate) enum Name {
    Literal(LitStr),
    Expr(Expr),
}

/// `= "orders"` (not empty) or `= <expr>`; any other literal is reported on it.
fn name_value(input: ParseStream, key: &Ident, example: &str) -> syn::Result<Name> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => non_empty(lit, &key.to_string()).map(Name::Literal),
        Expr::Lit(other) => Err(syn::Error::new_spanned(
            &other,
            format!(
                "`{key}` takes text: a string literal, like `{key} = \"{example}\"`, or an \
                 expression giving a `&str` or a `String` (anything `AsRef<str>`)"
            ),
        )),
        other => Ok(Name::Expr(other)),
    }
}

/// `server = (address, port)`: two expressions, the address text (`AsRef<str>`) and the port a
/// `u16`, each checked where it is written.
#[derive(Clone)]
pub(crate) struct Server {
    pub address: Expr,
    pub port: Expr,
}

/// `= (address, port)`.
fn server_value(input: ParseStream, key: &Ident) -> syn::Result<Server> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Tuple(tuple) if tuple.elems.len() == 2 => Ok(Server {
            address: tuple.elems[0].clone(),
            port: tuple.elems[1].clone(),
        }),
        other => Err(syn::Error::new_spanned(
            &other,
            format!(
                "`{key}` takes the address and the port as a pair, like \
                 `{key} = (\"db.internal\", 5432)` or `{key} = (self.host.as_str(), self.port)`"
            ),
        )),
    }
}

/// `= path::to::crate`.
fn path_value(input: ParseStream) -> syn::Result<Path> {
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

/// `= expr`.
fn expr_value(input: ParseStream, key: &Ident) -> syn::Result<Expr> {
    equals(input, key)?;
    input.parse()
}

/// `= 3600`: a non-negative integer literal.
fn seconds_value(input: ParseStream, key: &Ident) -> syn::Result<u64> {
    equals(input, key)?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<u64>() {
            Ok(seconds) => Ok(seconds),
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

/// `(key = expr, "dotted.key" = expr, a.b = expr, ..)`.
fn data_fields(input: ParseStream) -> syn::Result<Vec<DataField>> {
    let content;
    syn::parenthesized!(content in input);
    let mut fields: Vec<DataField> = Vec::new();
    while !content.is_empty() {
        let (key, tokens) = data_key(&content)?;
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

/// A data key: a string literal, or identifiers joined by dots (`db.rows`), with the tokens it
/// was written with (for errors spanning all of `a.b.c`).
fn data_key(input: ParseStream) -> syn::Result<(LitStr, TokenStream)> {
    if input.peek(LitStr) {
        let key: LitStr = input.parse()?;
        if key.value().is_empty() {
            return Err(syn::Error::new(key.span(), "a data key must not be empty"));
        }
        let tokens = key.to_token_stream();
        return Ok((key, tokens));
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
    Ok((LitStr::new(&name, first.span()), tokens))
}

/// `err = "not_found"`: the status of a span whose function returned an `Err`, checked against
/// Sentry's span statuses.
#[derive(Clone, Copy)]
pub(crate) struct ErrStatus {
    pub status: SpanStatus,
    /// The literal, for the expansion's errors and the variant's span.
    pub span: Span,
}

/// Sentry's span statuses (`sentry::protocol::SpanStatus`), by the names Sentry shows.
#[derive(Clone, Copy)]
pub(crate) enum SpanStatus {
    Ok,
    DeadlineExceeded,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    ResourceExhausted,
    InvalidArgument,
    Unimplemented,
    Unavailable,
    InternalError,
    UnknownError,
    Cancelled,
    AlreadyExists,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    DataLoss,
}

impl SpanStatus {
    const ALL: [(&'static str, SpanStatus); 17] = [
        ("ok", SpanStatus::Ok),
        ("deadline_exceeded", SpanStatus::DeadlineExceeded),
        ("unauthenticated", SpanStatus::Unauthenticated),
        ("permission_denied", SpanStatus::PermissionDenied),
        ("not_found", SpanStatus::NotFound),
        ("resource_exhausted", SpanStatus::ResourceExhausted),
        ("invalid_argument", SpanStatus::InvalidArgument),
        ("unimplemented", SpanStatus::Unimplemented),
        ("unavailable", SpanStatus::Unavailable),
        ("internal_error", SpanStatus::InternalError),
        ("unknown_error", SpanStatus::UnknownError),
        ("cancelled", SpanStatus::Cancelled),
        ("already_exists", SpanStatus::AlreadyExists),
        ("failed_precondition", SpanStatus::FailedPrecondition),
        ("aborted", SpanStatus::Aborted),
        ("out_of_range", SpanStatus::OutOfRange),
        ("data_loss", SpanStatus::DataLoss),
    ];

    /// The variant of `sentry::protocol::SpanStatus`.
    pub fn variant(self) -> &'static str {
        match self {
            SpanStatus::Ok => "Ok",
            SpanStatus::DeadlineExceeded => "DeadlineExceeded",
            SpanStatus::Unauthenticated => "Unauthenticated",
            SpanStatus::PermissionDenied => "PermissionDenied",
            SpanStatus::NotFound => "NotFound",
            SpanStatus::ResourceExhausted => "ResourceExhausted",
            SpanStatus::InvalidArgument => "InvalidArgument",
            SpanStatus::Unimplemented => "Unimplemented",
            SpanStatus::Unavailable => "Unavailable",
            SpanStatus::InternalError => "InternalError",
            SpanStatus::UnknownError => "UnknownError",
            SpanStatus::Cancelled => "Cancelled",
            SpanStatus::AlreadyExists => "AlreadyExists",
            SpanStatus::FailedPrecondition => "FailedPrecondition",
            SpanStatus::Aborted => "Aborted",
            SpanStatus::OutOfRange => "OutOfRange",
            SpanStatus::DataLoss => "DataLoss",
        }
    }
}

/// `= "not_found"`: one of Sentry's span statuses, by name.
fn err_value(input: ParseStream, key: &Ident) -> syn::Result<ErrStatus> {
    equals(input, key)?;
    let names: Vec<&str> = SpanStatus::ALL.iter().map(|(n, _)| *n).collect();
    let value: Expr = input.parse()?;
    let lit = match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit,
        other => {
            return Err(syn::Error::new_spanned(
                &other,
                format!(
                "`{key}` takes a span status as a string literal, like `{key} = \"not_found\"`; \
                     valid statuses: {}",
                quoted_list(&names)
            ),
            ))
        }
    };
    let name = lit.value();
    match SpanStatus::ALL.iter().find(|(n, _)| *n == name) {
        Some((_, status)) => Ok(ErrStatus {
            status: *status,
            span: lit.span(),
        }),
        None => {
            // `NotFound`, `not-found`: the same name written another way.
            let normalized: String = name
                .chars()
                .filter(|c| !matches!(c, '_' | '-' | ' '))
                .flat_map(char::to_lowercase)
                .collect();
            let hint = names
                .iter()
                .find(|n| n.replace('_', "") == normalized)
                .copied()
                .or_else(|| closest(&name, &names))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown span status `{name}` for `{key}`; valid statuses: {}{hint}",
                    quoted_list(&names)
                ),
            ))
        }
    }
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

fn non_empty(lit: LitStr, key: &str) -> syn::Result<LitStr> {
    if lit.value().is_empty() {
        Err(syn::Error::new(
            lit.span(),
            format!("`{key}` must not be empty"),
        ))
    } else {
        Ok(lit)
    }
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// `#[instrument_db_operation]`

/// The operations a description can be built for (`insights_runtime::db::Operation`).
#[derive(Clone, Copy)]
pub(crate) enum DbOperation {
    Select,
    Insert,
    Update,
    Delete,
    Upsert,
}

impl DbOperation {
    const ALL: [(&'static str, DbOperation); 5] = [
        ("select", DbOperation::Select),
        ("insert", DbOperation::Insert),
        ("update", DbOperation::Update),
        ("delete", DbOperation::Delete),
        ("upsert", DbOperation::Upsert),
    ];

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, o)| *o)
    }

    /// The variant of the runtime's `db::Operation`.
    pub fn variant(self) -> &'static str {
        match self {
            DbOperation::Select => "Select",
            DbOperation::Insert => "Insert",
            DbOperation::Update => "Update",
            DbOperation::Delete => "Delete",
            DbOperation::Upsert => "Upsert",
        }
    }
}

/// Where a query's description comes from.
pub(crate) enum QuerySource<P> {
    /// `query = ".."`, verbatim, or `query = SELECT_USER`: a path to a `const` (a `&'static
    /// str`), so that the statement is written once.
    Literal(Sql),
    /// `query_param = ".."`: the text of a parameter.
    Param(P),
    /// Only a table and an operation: a statement built for them.
    Built {
        table: LitStr,
        operation: DbOperation,
        operation_span: Span,
    },
}

/// The arguments of `#[instrument_db_operation]`.
pub(crate) struct DbArgs<P = LitStr> {
    pub query: QuerySource<P>,
    /// `db.sql.table` (also the metrics' `table`).
    pub table: Option<LitStr>,
    /// `db.operation`, as written (any name when the query is given).
    pub operation: Option<LitStr>,
    pub system: Option<LitStr>,
    /// `db.name` and `db.namespace`: a literal, or an expression read when the span is recorded.
    pub db_name: Option<Name>,
    /// `server.address` and `server.port`, read when the span is recorded.
    pub server: Option<Box<Server>>,
    pub err: Option<ErrStatus>,
    pub krate: Option<Path>,
}

#[derive(Clone, Copy)]
enum DbKey {
    Table,
    Operation,
    System,
    DbName,
    Server,
    Query,
    QueryParam,
    Err,
    Crate,
}

const DB_KEYS: &[(&str, DbKey)] = &[
    ("table", DbKey::Table),
    ("operation", DbKey::Operation),
    ("system", DbKey::System),
    ("db_name", DbKey::DbName),
    ("server", DbKey::Server),
    ("query", DbKey::Query),
    ("query_param", DbKey::QueryParam),
    ("err", DbKey::Err),
    ("crate", DbKey::Crate),
];

impl Parse for DbArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // The server is one argument, its address and port together.
        let mut keys = Keys::new("instrument_db_operation", DB_KEYS)
            .renamed(&[("server_address", "server"), ("server_port", "server")]);
        let (mut table, mut operation, mut system, mut db_name) = (None, None, None, None);
        let mut server = None;
        let (mut query, mut query_param, mut err, mut krate) = (None, None, None, None);
        // The positional form: `("users", "select")`, table then operation.
        for (position, name) in [(&mut table, "table"), (&mut operation, "operation")] {
            if !input.peek(LitStr) {
                break;
            }
            let lit = non_empty(input.parse()?, name)?;
            keys.mark(&Ident::new(name, lit.span()))?;
            *position = Some(lit);
            end_of_argument(input)?;
        }
        while !input.is_empty() {
            let (key, ident) = keys.next(input)?;
            match key {
                DbKey::Table => table = Some(string_value(input, &ident)?),
                DbKey::Operation => operation = Some(string_value(input, &ident)?),
                DbKey::System => system = Some(string_value(input, &ident)?),
                DbKey::DbName => db_name = Some(name_value(input, &ident, "app")?),
                DbKey::Server => server = Some(Box::new(server_value(input, &ident)?)),
                DbKey::Query => query = Some(sql_value(input, &ident)?),
                DbKey::QueryParam => query_param = Some(string_value(input, &ident)?),
                DbKey::Err => err = Some(err_value(input, &ident)?),
                DbKey::Crate => krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        let query = match (query, query_param) {
            (Some(_), Some(param)) => {
                return Err(syn::Error::new(
                    param.span(),
                    "give either `query` or `query_param`, not both",
                ))
            }
            (Some(sql), None) => QuerySource::Literal(sql),
            (None, Some(param)) => QuerySource::Param(param),
            (None, None) => built(table.as_ref(), operation.as_ref())?,
        };
        Ok(DbArgs {
            query,
            table,
            operation,
            system,
            db_name,
            server,
            err,
            krate,
        })
    }
}

/// A description built from the table and the operation: both needed, the operation known.
fn built<P>(table: Option<&LitStr>, operation: Option<&LitStr>) -> syn::Result<QuerySource<P>> {
    if let Some(op) = operation {
        if DbOperation::from_name(&op.value()).is_none() {
            let names: Vec<&str> = DbOperation::ALL.iter().map(|(n, _)| *n).collect();
            return Err(syn::Error::new(
                op.span(),
                format!(
                    "unknown operation `{}`; to describe the query from the table and the \
                     operation, use one of {}; for any other operation give the query with \
                     `query = \"...\"` or `query_param`",
                    op.value(),
                    quoted_list(&names)
                ),
            ));
        }
    }
    let known = operation.and_then(|op| Some((DbOperation::from_name(&op.value())?, op.span())));
    match (table, known) {
        (Some(table), Some((operation, operation_span))) => Ok(QuerySource::Built {
            table: table.clone(),
            operation,
            operation_span,
        }),
        _ => Err(syn::Error::new(
            Span::call_site(),
            "`#[instrument_db_operation]` needs a table and an operation, \
             like `(\"users\", \"select\")`, or the query: `query = \"SELECT ..\"` or \
             `query_param = \"sql\"`",
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// `#[instrument_cache_operation]`

/// Where a put's TTL comes from.
pub(crate) enum Ttl<P> {
    /// `ttl = 3600`.
    Seconds(u64),
    Param(P),
}

/// The operation, with what only it takes: a key for all but `flush`, a TTL and a value for
/// `put` only.
pub(crate) enum CacheOp<P> {
    Get {
        key: P,
    },
    Put {
        key: P,
        ttl: Option<Ttl<P>>,
        value: Option<P>,
    },
    Remove {
        key: P,
    },
    Flush,
}

/// The arguments of `#[instrument_cache_operation]`.
pub(crate) struct CacheArgs<P = LitStr> {
    pub op: CacheOp<P>,
    /// The operation as written, for errors.
    pub kind: Ident,
    /// The `cache_name` label of the metrics.
    pub cache_name: Option<LitStr>,
    /// `tracker = expr`: a `&CacheTracker` whose system and server go on the span.
    pub tracker: Option<Expr>,
    pub err: Option<ErrStatus>,
    pub krate: Option<Path>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CacheKind {
    Get,
    Put,
    Remove,
    Flush,
}

const CACHE_KINDS: &[(&str, CacheKind)] = &[
    ("get", CacheKind::Get),
    ("put", CacheKind::Put),
    ("remove", CacheKind::Remove),
    ("flush", CacheKind::Flush),
];

#[derive(Clone, Copy)]
enum CacheKey {
    KeyParam,
    Ttl,
    TtlParam,
    ValueParam,
    CacheName,
    Tracker,
    Err,
    Crate,
}

const CACHE_KEYS: &[(&str, CacheKey)] = &[
    ("key_param", CacheKey::KeyParam),
    ("ttl", CacheKey::Ttl),
    ("ttl_param", CacheKey::TtlParam),
    ("value_param", CacheKey::ValueParam),
    ("cache_name", CacheKey::CacheName),
    ("tracker", CacheKey::Tracker),
    ("err", CacheKey::Err),
    ("crate", CacheKey::Crate),
];

impl Parse for CacheArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (kind, ident) = cache_kind(input)?;
        end_of_argument(input)?;
        let mut keys = Keys::new("instrument_cache_operation", CACHE_KEYS);
        let (mut key, mut ttl, mut ttl_param, mut value) = (None, None, None, None);
        let (mut cache_name, mut tracker, mut err, mut krate) = (None, None, None, None);
        while !input.is_empty() {
            let (arg, name) = keys.next(input)?;
            if matches!(
                arg,
                CacheKey::Ttl | CacheKey::TtlParam | CacheKey::ValueParam
            ) && kind != CacheKind::Put
            {
                return Err(syn::Error::new(
                    name.span(),
                    format!("`{name}` applies to `put` only, not to `{ident}`"),
                ));
            }
            match arg {
                CacheKey::KeyParam => key = Some(string_value(input, &name)?),
                CacheKey::Ttl => ttl = Some(seconds_value(input, &name)?),
                CacheKey::TtlParam => ttl_param = Some(string_value(input, &name)?),
                CacheKey::ValueParam => value = Some(string_value(input, &name)?),
                CacheKey::CacheName => cache_name = Some(string_value(input, &name)?),
                CacheKey::Tracker => tracker = Some(expr_value(input, &name)?),
                CacheKey::Err => err = Some(err_value(input, &name)?),
                CacheKey::Crate => krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        let ttl = match (ttl, ttl_param) {
            (Some(_), Some(param)) => {
                return Err(syn::Error::new(
                    param.span(),
                    "give either `ttl` or `ttl_param`, not both",
                ))
            }
            (Some(seconds), None) => Some(Ttl::Seconds(seconds)),
            (None, Some(param)) => Some(Ttl::Param(param)),
            (None, None) => None,
        };
        let op = match (kind, key) {
            (CacheKind::Flush, Some(param)) => {
                return Err(syn::Error::new(
                    param.span(),
                    "`flush` takes no key; remove `key_param`",
                ))
            }
            (CacheKind::Flush, None) => CacheOp::Flush,
            (_, None) => {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "`{ident}` needs the key: add `key_param = \"<parameter>\"` naming the \
                         parameter that holds it"
                    ),
                ))
            }
            (CacheKind::Get, Some(key)) => CacheOp::Get { key },
            (CacheKind::Put, Some(key)) => CacheOp::Put { key, ttl, value },
            (CacheKind::Remove, Some(key)) => CacheOp::Remove { key },
        };
        Ok(CacheArgs {
            op,
            kind: ident,
            cache_name,
            tracker,
            err,
            krate,
        })
    }
}

/// The operation kind, first: a bare ident (`get`) or a string (`"get"`), optionally with its
/// `cache.` prefix.
fn cache_kind(input: ParseStream) -> syn::Result<(CacheKind, Ident)> {
    let names: Vec<&str> = CACHE_KINDS.iter().map(|(n, _)| *n).collect();
    let (name, span) = if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        (lit.value(), lit.span())
    } else if input.peek(Ident::peek_any) && !input.peek2(Token![=]) {
        let ident = input.call(Ident::parse_any)?;
        (ident.to_string(), ident.span())
    } else {
        return Err(syn::Error::new(
            input.span(),
            format!(
                "expected the cache operation first: {}, like \
                 `#[instrument_cache_operation(get, key_param = \"key\")]`",
                quoted_list(&names)
            ),
        ));
    };
    let bare = name.strip_prefix("cache.").unwrap_or(&name);
    match CACHE_KINDS.iter().find(|(n, _)| *n == bare) {
        Some((n, kind)) => Ok((*kind, Ident::new(n, span))),
        None => Err(syn::Error::new(
            span,
            format!(
                "unknown cache operation `{name}`; expected one of {}",
                quoted_list(&names)
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The queue attributes

/// What a producer and a consumer both say of a message.
pub(crate) struct Message<P> {
    /// The queue or topic: a literal (static metric keys), or an expression evaluated once per
    /// call, before the body.
    pub destination: Name,
    pub system: LitStr,
    pub headers: Option<P>,
    pub message_id: Option<P>,
    pub body: Option<P>,
    pub krate: Option<Path>,
}

/// The arguments of `#[instrument_queue_publish]`.
pub(crate) struct PublishArgs<P = LitStr> {
    pub message: Message<P>,
    /// The producer's transaction name, for the baggage.
    pub transaction: Option<LitStr>,
    pub err: Option<ErrStatus>,
}

/// The arguments of `#[instrument_queue_process]`.
pub(crate) struct ProcessArgs<P = LitStr> {
    pub message: Message<P>,
    pub retry_count: Option<P>,
    /// The consumer's transaction name.
    pub transaction: Option<LitStr>,
    pub err: Option<ErrStatus>,
}

#[derive(Clone, Copy)]
enum QueueKey {
    Destination,
    System,
    HeadersParam,
    MessageIdParam,
    BodyParam,
    RetryCountParam,
    Transaction,
    Err,
    Crate,
}

const PUBLISH_KEYS: &[(&str, QueueKey)] = &[
    ("destination", QueueKey::Destination),
    ("system", QueueKey::System),
    ("headers_param", QueueKey::HeadersParam),
    ("message_id_param", QueueKey::MessageIdParam),
    ("body_param", QueueKey::BodyParam),
    ("transaction", QueueKey::Transaction),
    ("err", QueueKey::Err),
    ("crate", QueueKey::Crate),
];

const PROCESS_KEYS: &[(&str, QueueKey)] = &[
    ("destination", QueueKey::Destination),
    ("system", QueueKey::System),
    ("headers_param", QueueKey::HeadersParam),
    ("message_id_param", QueueKey::MessageIdParam),
    ("body_param", QueueKey::BodyParam),
    ("retry_count_param", QueueKey::RetryCountParam),
    ("transaction", QueueKey::Transaction),
    ("err", QueueKey::Err),
    ("crate", QueueKey::Crate),
];

/// Every queue argument, before the attribute's rules are applied.
#[derive(Default)]
struct QueueFields {
    destination: Option<Name>,
    system: Option<LitStr>,
    headers: Option<LitStr>,
    message_id: Option<LitStr>,
    body: Option<LitStr>,
    retry_count: Option<LitStr>,
    transaction: Option<LitStr>,
    err: Option<ErrStatus>,
    krate: Option<Path>,
}

impl QueueFields {
    fn parse(
        input: ParseStream,
        attribute: &'static str,
        allowed: &'static [(&'static str, QueueKey)],
        renamed: &'static [(&'static str, &'static str)],
    ) -> syn::Result<(Self, Message<LitStr>)> {
        let mut fields = QueueFields::default();
        let mut keys = Keys::new(attribute, allowed).renamed(renamed);
        while !input.is_empty() {
            let (key, ident) = keys.next(input)?;
            match key {
                QueueKey::Destination => {
                    fields.destination = Some(name_value(input, &ident, "orders")?);
                }
                QueueKey::System => fields.system = Some(string_value(input, &ident)?),
                QueueKey::HeadersParam => fields.headers = Some(string_value(input, &ident)?),
                QueueKey::MessageIdParam => {
                    fields.message_id = Some(string_value(input, &ident)?);
                }
                QueueKey::BodyParam => fields.body = Some(string_value(input, &ident)?),
                QueueKey::RetryCountParam => {
                    fields.retry_count = Some(string_value(input, &ident)?);
                }
                QueueKey::Transaction => fields.transaction = Some(string_value(input, &ident)?),
                QueueKey::Err => fields.err = Some(err_value(input, &ident)?),
                QueueKey::Crate => fields.krate = Some(path_value(input)?),
            }
            end_of_argument(input)?;
        }
        let missing = |key: &str| {
            syn::Error::new(
                Span::call_site(),
                format!(
                    "`#[{attribute}]` needs `{key}`, like \
                     `#[{attribute}(destination = \"orders\", system = \"rabbitmq\")]`"
                ),
            )
        };
        let destination = fields
            .destination
            .take()
            .ok_or_else(|| missing("destination"))?;
        let system = fields.system.take().ok_or_else(|| missing("system"))?;
        let message = Message {
            destination,
            system,
            headers: fields.headers.take(),
            message_id: fields.message_id.take(),
            body: fields.body.take(),
            krate: fields.krate.take(),
        };
        Ok((fields, message))
    }
}

impl Parse for PublishArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (fields, message) = QueueFields::parse(
            input,
            "instrument_queue_publish",
            PUBLISH_KEYS,
            &[("destination_param", "destination")],
        )?;
        Ok(PublishArgs {
            message,
            transaction: fields.transaction,
            err: fields.err,
        })
    }
}

impl Parse for ProcessArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let (fields, message) = QueueFields::parse(
            input,
            "instrument_queue_process",
            PROCESS_KEYS,
            &[
                ("name", "transaction"),
                ("destination_param", "destination"),
            ],
        )?;
        Ok(ProcessArgs {
            message,
            retry_count: fields.retry_count,
            transaction: fields.transaction,
            err: fields.err,
        })
    }
}
