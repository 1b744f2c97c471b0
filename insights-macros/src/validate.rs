//! The checks that need the function: each `*_param` must name one of its plain parameters.
//!
//! They run whether or not the `enable` feature is on, so a library built without it still
//! learns of a misspelled parameter. What comes out holds resolved parameters only, so
//! planning never looks a name up again.

use syn::{LitStr, Signature};

use crate::args::{
    CacheArgs, CacheOp, DbArgs, Message, ProcessArgs, PublishArgs, QuerySource, TracedArgs, Ttl,
};
use crate::params::{self, Param};

/// An attribute's arguments, checked against the function they annotate.
pub(crate) enum Spec {
    Traced(TracedArgs),
    Db(DbArgs<Param>),
    Cache(CacheArgs<Param>),
    Publish(PublishArgs<Param>),
    Process(ProcessArgs<Param>),
}

/// Parsed arguments that can be checked against a signature.
pub(crate) trait Validate {
    fn validate(self, sig: &Signature) -> syn::Result<Spec>;
}

fn find(sig: &Signature, argument: &str, literal: &LitStr) -> syn::Result<Param> {
    params::find(sig, argument, literal)
}

fn find_opt(
    sig: &Signature,
    argument: &str,
    literal: Option<LitStr>,
) -> syn::Result<Option<Param>> {
    literal.map(|l| find(sig, argument, &l)).transpose()
}

impl Validate for TracedArgs {
    fn validate(self, _: &Signature) -> syn::Result<Spec> {
        Ok(Spec::Traced(self))
    }
}

impl Validate for DbArgs {
    fn validate(self, sig: &Signature) -> syn::Result<Spec> {
        let query = match self.query {
            QuerySource::Literal(sql) => QuerySource::Literal(sql),
            QuerySource::Param(literal) => QuerySource::Param(find(sig, "query_param", &literal)?),
            QuerySource::Built {
                table,
                operation,
                operation_span,
            } => QuerySource::Built {
                table,
                operation,
                operation_span,
            },
        };
        Ok(Spec::Db(DbArgs {
            query,
            table: self.table,
            operation: self.operation,
            system: self.system,
            db_name: self.db_name,
            server: self.server,
            err: self.err,
            krate: self.krate,
        }))
    }
}

impl Validate for CacheArgs {
    fn validate(self, sig: &Signature) -> syn::Result<Spec> {
        let key = |literal: &LitStr| find(sig, "key_param", literal);
        let op = match self.op {
            CacheOp::Get { key: literal } => CacheOp::Get {
                key: key(&literal)?,
            },
            CacheOp::Put {
                key: literal,
                ttl,
                value,
            } => CacheOp::Put {
                key: key(&literal)?,
                ttl: match ttl {
                    None => None,
                    Some(Ttl::Seconds(seconds)) => Some(Ttl::Seconds(seconds)),
                    Some(Ttl::Param(literal)) => {
                        Some(Ttl::Param(find(sig, "ttl_param", &literal)?))
                    }
                },
                value: find_opt(sig, "value_param", value)?,
            },
            CacheOp::Remove { key: literal } => CacheOp::Remove {
                key: key(&literal)?,
            },
            CacheOp::Flush => CacheOp::Flush,
        };
        Ok(Spec::Cache(CacheArgs {
            op,
            kind: self.kind,
            cache_name: self.cache_name,
            tracker: self.tracker,
            err: self.err,
            krate: self.krate,
        }))
    }
}

fn message(sig: &Signature, message: Message<LitStr>) -> syn::Result<Message<Param>> {
    Ok(Message {
        headers: find_opt(sig, "headers_param", message.headers)?,
        message_id: find_opt(sig, "message_id_param", message.message_id)?,
        body: find_opt(sig, "body_param", message.body)?,
        destination: message.destination,
        system: message.system,
        krate: message.krate,
    })
}

impl Validate for PublishArgs {
    fn validate(self, sig: &Signature) -> syn::Result<Spec> {
        Ok(Spec::Publish(PublishArgs {
            message: message(sig, self.message)?,
            transaction: self.transaction,
            err: self.err,
        }))
    }
}

impl Validate for ProcessArgs {
    fn validate(self, sig: &Signature) -> syn::Result<Spec> {
        let message = message(sig, self.message)?;
        Ok(Spec::Process(ProcessArgs {
            message,
            retry_count: find_opt(sig, "retry_count_param", self.retry_count)?,
            transaction: self.transaction,
            err: self.err,
        }))
    }
}
