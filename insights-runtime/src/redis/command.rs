//! Reading a Redis command: which cache operation it is, its keys, its TTL and the size of the
//! values it writes, and its description with every value filtered out.
//!
//! Nothing here runs unless a span is recorded.

use std::borrow::Cow;

use ::redis::{Arg, Cmd};

use crate::cache::Kind;

/// What replaces an argument that may be a value, as sentry-python writes it.
pub(super) const FILTERED: &str = "[Filtered]";

/// Arguments shown in a description after the command's name (the first, the key, and then
/// `[Filtered]` for each other), as sentry-python caps them.
const MAX_ARGS: usize = 11;

/// Commands in a pipeline's `first_ten`.
pub(super) const MAX_COMMANDS: usize = 10;

/// The commands that can be cache spans, and every other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    /// `GET key`: `cache.get`.
    Get,
    /// `MGET key [key ...]`: `cache.get`.
    MGet,
    /// `SET key value [EX s | PX ms | ...]`: `cache.put`.
    Set,
    /// `SETEX key seconds value`: `cache.put`.
    SetEx,
    /// `PSETEX key milliseconds value`: `cache.put`.
    PSetEx,
    /// `SETNX key value`: `cache.put`.
    SetNx,
    /// `MSET key value [key value ...]`: `cache.put`.
    MSet,
    /// `MSETNX key value [key value ...]`: `cache.put`.
    MSetNx,
    /// `DEL key [key ...]`: `cache.remove`.
    Del,
    /// `UNLINK key [key ...]`: `cache.remove`.
    Unlink,
    /// Any other command: a `db.redis` span only.
    Other,
}

/// The cache commands by name, upper case.
const CACHE_COMMANDS: [(&str, Command); 10] = [
    ("GET", Command::Get),
    ("MGET", Command::MGet),
    ("SET", Command::Set),
    ("SETEX", Command::SetEx),
    ("PSETEX", Command::PSetEx),
    ("SETNX", Command::SetNx),
    ("MSET", Command::MSet),
    ("MSETNX", Command::MSetNx),
    ("DEL", Command::Del),
    ("UNLINK", Command::Unlink),
];

/// Commands whose first argument is the one key they work on (`db.redis.key`), beside the
/// cache commands. sentry-python's list (`DECR`, `INCR`, `TTL`, ...) and the common commands
/// of each data type.
const SINGLE_KEY: &[&str] = &[
    "APPEND",
    "BITCOUNT",
    "DECR",
    "DECRBY",
    "EXPIRE",
    "EXPIREAT",
    "GETBIT",
    "GETDEL",
    "GETEX",
    "GETRANGE",
    "GETSET",
    "HDEL",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HINCRBY",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HMSET",
    "HSET",
    "HSETNX",
    "HVALS",
    "INCR",
    "INCRBY",
    "INCRBYFLOAT",
    "LINDEX",
    "LLEN",
    "LPOP",
    "LPUSH",
    "LRANGE",
    "LREM",
    "LSET",
    "LTRIM",
    "PERSIST",
    "PEXPIRE",
    "PEXPIREAT",
    "PFADD",
    "PTTL",
    "RPOP",
    "RPUSH",
    "SADD",
    "SCARD",
    "SETBIT",
    "SETRANGE",
    "SISMEMBER",
    "SMEMBERS",
    "SPOP",
    "SREM",
    "STRLEN",
    "TTL",
    "TYPE",
    "XADD",
    "XLEN",
    "XRANGE",
    "ZADD",
    "ZCARD",
    "ZINCRBY",
    "ZRANGE",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREM",
    "ZSCORE",
];

/// Commands taking several keys, beside `MGET`, `DEL` and `UNLINK`: `db.redis.key` only when
/// they are given one (as sentry-python does).
const MULTI_KEY: &[&str] = &["EXISTS", "TOUCH"];

/// Commands whose arguments are all filtered, the first too: credentials (`AUTH`, `HELLO ..
/// AUTH`, `ACL SETUSER`, `CONFIG SET requirepass`, `MIGRATE .. AUTH`) and scripts.
const SENSITIVE: &[&str] = &[
    "ACL", "AUTH", "CONFIG", "EVAL", "EVAL_RO", "HELLO", "MIGRATE",
];

fn named(table: &[&str], name: &[u8]) -> bool {
    table
        .iter()
        .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

impl Command {
    /// The command named `name`, in any case.
    pub(super) fn of(name: &[u8]) -> Command {
        CACHE_COMMANDS
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map_or(Command::Other, |(_, command)| *command)
    }

    /// The cache operation it is, when its keys have a cache prefix.
    pub(super) fn kind(self) -> Option<Kind> {
        match self {
            Command::Get | Command::MGet => Some(Kind::Get),
            Command::Set
            | Command::SetEx
            | Command::PSetEx
            | Command::SetNx
            | Command::MSet
            | Command::MSetNx => Some(Kind::Put),
            Command::Del | Command::Unlink => Some(Kind::Remove),
            Command::Other => None,
        }
    }
}

/// A command's name and arguments.
pub(super) struct Parsed<'a> {
    name: &'a [u8],
    args: Vec<&'a [u8]>,
    command: Command,
}

/// What a cache span records of its command before it is sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CachePlan<'a> {
    pub(super) kind: Kind,
    pub(super) keys: Vec<Cow<'a, str>>,
    /// `cache.ttl`, seconds.
    pub(super) ttl: Option<u64>,
    /// `cache.item_size` of a write: the bytes of the values written.
    pub(super) item_size: Option<usize>,
}

impl<'a> Parsed<'a> {
    /// Reads `cmd` (a cursor argument, which no cache command has, reads as `[Filtered]`, as any
    /// argument of a kind `redis` may add).
    pub(super) fn of(cmd: &'a Cmd) -> Self {
        let mut all = cmd.args_iter().map(|arg| match arg {
            Arg::Simple(bytes) => bytes,
            _ => FILTERED.as_bytes(),
        });
        let name = all.next().unwrap_or_default();
        Parsed {
            name,
            args: all.collect(),
            command: Command::of(name),
        }
    }

    #[cfg(test)]
    pub(super) fn from_parts(name: &'a [u8], args: Vec<&'a [u8]>) -> Self {
        Parsed {
            name,
            args,
            command: Command::of(name),
        }
    }

    pub(super) fn command(&self) -> Command {
        self.command
    }

    /// `db.operation`: the name, upper case.
    pub(super) fn operation(&self) -> String {
        String::from_utf8_lossy(self.name).to_ascii_uppercase()
    }

    /// The `db.redis` description: the name upper case, the first argument (the key, for the
    /// commands that have one) and `[Filtered]` for each other argument, up to
    /// [`MAX_ARGS`]; every argument filtered for the [`SENSITIVE`] commands.
    pub(super) fn description(&self) -> String {
        let mut out = self.operation();
        let sensitive = named(SENSITIVE, self.name);
        for (i, arg) in self.args.iter().take(MAX_ARGS).enumerate() {
            out.push(' ');
            if i == 0 && !sensitive {
                out.push_str(&String::from_utf8_lossy(arg));
            } else {
                out.push_str(FILTERED);
            }
        }
        out
    }

    /// `db.redis.key`: the one key the command works on, when it has one.
    pub(super) fn key(&self) -> Option<Cow<'a, str>> {
        let first = self.args.first()?;
        let single = match self.command {
            Command::Other => {
                named(SINGLE_KEY, self.name)
                    || (named(MULTI_KEY, self.name) && self.args.len() == 1)
            }
            Command::MGet | Command::Del | Command::Unlink => self.args.len() == 1,
            Command::MSet | Command::MSetNx => self.args.len() <= 2,
            Command::Get | Command::Set | Command::SetEx | Command::PSetEx | Command::SetNx => true,
        };
        single.then(|| String::from_utf8_lossy(first))
    }

    /// The keys of a cache command (none for the others).
    fn keys(&self) -> Vec<&'a [u8]> {
        match self.command {
            Command::Get | Command::Set | Command::SetEx | Command::PSetEx | Command::SetNx => {
                self.args.first().copied().into_iter().collect()
            }
            Command::MGet | Command::Del | Command::Unlink => self.args.clone(),
            Command::MSet | Command::MSetNx => self.args.iter().step_by(2).copied().collect(),
            Command::Other => Vec::new(),
        }
    }

    /// The cache span of this command: `None` unless it is a cache command with at least one
    /// key that starts with one of `prefixes`.
    pub(super) fn cache<P: AsRef<[u8]>>(&self, prefixes: &[P]) -> Option<CachePlan<'a>> {
        let kind = self.command.kind()?;
        if prefixes.is_empty() {
            return None;
        }
        let keys = self.keys();
        let cached = keys
            .iter()
            .any(|key| prefixes.iter().any(|p| key.starts_with(p.as_ref())));
        if !cached {
            return None;
        }
        let args = &self.args;
        let (ttl, item_size) = match self.command {
            Command::Set => (
                set_ttl(args.get(2..).unwrap_or_default()),
                size(args.get(1)),
            ),
            Command::SetNx => (None, size(args.get(1))),
            Command::SetEx => (args.get(1).and_then(|s| integer(s)), size(args.get(2))),
            Command::PSetEx => (
                args.get(1).and_then(|ms| integer(ms)).map(|ms| ms / 1000),
                size(args.get(2)),
            ),
            Command::MSet | Command::MSetNx => (
                None,
                Some(args.iter().skip(1).step_by(2).map(|v| v.len()).sum()),
            ),
            _ => (None, None),
        };
        Some(CachePlan {
            kind,
            keys: keys.into_iter().map(String::from_utf8_lossy).collect(),
            ttl,
            item_size,
        })
    }
}

fn size(value: Option<&&[u8]>) -> Option<usize> {
    value.map(|v| v.len())
}

/// A non-negative decimal integer.
fn integer(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The TTL in `SET`'s options (after the key and value): `EX seconds` or `PX milliseconds`
/// (rounded down to seconds). `EXAT` and `PXAT` (a point in time) and `KEEPTTL` give none.
fn set_ttl(options: &[&[u8]]) -> Option<u64> {
    let mut i = 0;
    while i < options.len() {
        let option = options[i];
        let next = options.get(i + 1);
        if option.eq_ignore_ascii_case(b"EX") {
            return next.and_then(|s| integer(s));
        }
        if option.eq_ignore_ascii_case(b"PX") {
            return next.and_then(|ms| integer(ms)).map(|ms| ms / 1000);
        }
        // Options with an argument, which may itself read `EX`.
        let takes_argument = [&b"EXAT"[..], b"PXAT", b"IFEQ", b"IFNE", b"IFDEQ", b"IFDNE"]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(option));
        i += if takes_argument { 2 } else { 1 };
    }
    None
}

/// The description of a pipeline's commands, for its span's `redis.commands.first_ten`.
pub(super) fn first_ten<'a>(commands: impl Iterator<Item = &'a Cmd>) -> Vec<String> {
    commands
        .take(MAX_COMMANDS)
        .map(|cmd| Parsed::of(cmd).description())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of casing `name` (2^n for n letters).
    fn casings(name: &str) -> Vec<String> {
        let letters = name.len();
        (0..1u32 << letters)
            .map(|mask| {
                name.chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if mask & (1 << i) == 0 {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect()
            })
            .collect()
    }

    struct Case {
        args: &'static [&'static str],
        kind: Option<Kind>,
        keys: &'static [&'static str],
        ttl: Option<u64>,
        item_size: Option<usize>,
        description: &'static str,
        key: Option<&'static str>,
    }

    const fn case(
        args: &'static [&'static str],
        kind: Option<Kind>,
        keys: &'static [&'static str],
        ttl: Option<u64>,
        item_size: Option<usize>,
        description: &'static str,
        key: Option<&'static str>,
    ) -> Case {
        Case {
            args,
            kind,
            keys,
            ttl,
            item_size,
            description,
            key,
        }
    }

    const GET: Option<Kind> = Some(Kind::Get);
    const PUT: Option<Kind> = Some(Kind::Put);
    const REMOVE: Option<Kind> = Some(Kind::Remove);

    #[rustfmt::skip]
    const TABLE: &[Case] = &[
        case(&["get", "c:1"], GET, &["c:1"], None, None, "GET c:1", Some("c:1")),
        case(&["mget", "c:1", "c:2"], GET, &["c:1", "c:2"], None, None, "MGET c:1 [Filtered]", None),
        case(&["mget", "c:1"], GET, &["c:1"], None, None, "MGET c:1", Some("c:1")),
        case(&["set", "c:1", "v"], PUT, &["c:1"], None, Some(1), "SET c:1 [Filtered]", Some("c:1")),
        case(&["set", "c:1", "vvv", "ex", "60"], PUT, &["c:1"], Some(60), Some(3),
            "SET c:1 [Filtered] [Filtered] [Filtered]", Some("c:1")),
        case(&["set", "c:1", "vv", "NX", "px", "1999"], PUT, &["c:1"], Some(1), Some(2),
            "SET c:1 [Filtered] [Filtered] [Filtered] [Filtered]", Some("c:1")),
        case(&["set", "c:1", "v", "GET", "EX", "5"], PUT, &["c:1"], Some(5), Some(1),
            "SET c:1 [Filtered] [Filtered] [Filtered] [Filtered]", Some("c:1")),
        // A point in time, no TTL; an option's argument that reads `EX` is not an option.
        case(&["set", "c:1", "v", "EXAT", "1900000000"], PUT, &["c:1"], None, Some(1),
            "SET c:1 [Filtered] [Filtered] [Filtered]", Some("c:1")),
        case(&["set", "c:1", "v", "IFEQ", "EX", "XX"], PUT, &["c:1"], None, Some(1),
            "SET c:1 [Filtered] [Filtered] [Filtered] [Filtered]", Some("c:1")),
        case(&["set", "c:1", "v", "EX", "soon"], PUT, &["c:1"], None, Some(1),
            "SET c:1 [Filtered] [Filtered] [Filtered]", Some("c:1")),
        case(&["setex", "c:1", "30", "value"], PUT, &["c:1"], Some(30), Some(5),
            "SETEX c:1 [Filtered] [Filtered]", Some("c:1")),
        case(&["psetex", "c:1", "2500", "value"], PUT, &["c:1"], Some(2), Some(5),
            "PSETEX c:1 [Filtered] [Filtered]", Some("c:1")),
        case(&["setnx", "c:1", "ab"], PUT, &["c:1"], None, Some(2), "SETNX c:1 [Filtered]", Some("c:1")),
        case(&["mset", "c:1", "ab", "c:2", "cde"], PUT, &["c:1", "c:2"], None, Some(5),
            "MSET c:1 [Filtered] [Filtered] [Filtered]", None),
        case(&["msetnx", "c:1", "ab"], PUT, &["c:1"], None, Some(2), "MSETNX c:1 [Filtered]", Some("c:1")),
        case(&["del", "c:1", "c:2"], REMOVE, &["c:1", "c:2"], None, None, "DEL c:1 [Filtered]", None),
        case(&["unlink", "c:1"], REMOVE, &["c:1"], None, None, "UNLINK c:1", Some("c:1")),
        // Not cache commands.
        case(&["incr", "c:1"], None, &[], None, None, "INCR c:1", Some("c:1")),
        case(&["hset", "c:1", "f", "v"], None, &[], None, None, "HSET c:1 [Filtered] [Filtered]", Some("c:1")),
        case(&["exists", "c:1", "c:2"], None, &[], None, None, "EXISTS c:1 [Filtered]", None),
        case(&["exists", "c:1"], None, &[], None, None, "EXISTS c:1", Some("c:1")),
        case(&["getdel", "c:1"], None, &[], None, None, "GETDEL c:1", Some("c:1")),
        case(&["ping"], None, &[], None, None, "PING", None),
        case(&["publish", "chan", "message"], None, &[], None, None, "PUBLISH chan [Filtered]", None),
        case(&["auth", "user", "secret"], None, &[], None, None, "AUTH [Filtered] [Filtered]", None),
        case(&["hello", "3", "AUTH", "u", "p"], None, &[], None, None,
            "HELLO [Filtered] [Filtered] [Filtered] [Filtered]", None),
        case(&["config", "set", "requirepass", "p"], None, &[], None, None,
            "CONFIG [Filtered] [Filtered] [Filtered]", None),
        case(&["eval", "return 1", "0"], None, &[], None, None, "EVAL [Filtered] [Filtered]", None),
        case(&["rpush", "c:1", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"], None, &[], None, None,
            "RPUSH c:1 [Filtered] [Filtered] [Filtered] [Filtered] [Filtered] [Filtered] [Filtered] [Filtered] [Filtered] [Filtered]",
            Some("c:1")),
    ];

    #[test]
    fn the_table_in_every_casing() {
        let prefixes = ["c:"];
        for case in TABLE {
            for name in casings(case.args[0]) {
                let parsed = Parsed::from_parts(
                    name.as_bytes(),
                    case.args[1..].iter().map(|a| a.as_bytes()).collect(),
                );
                assert_eq!(parsed.command().kind(), case.kind, "{name}");
                assert_eq!(parsed.description(), case.description, "{name}");
                assert_eq!(parsed.key().as_deref(), case.key, "{name}");
                let plan = parsed.cache(&prefixes);
                match case.kind {
                    Some(kind) => {
                        let expected = CachePlan {
                            kind,
                            keys: case.keys.iter().map(|k| Cow::Borrowed(*k)).collect(),
                            ttl: case.ttl,
                            item_size: case.item_size,
                        };
                        assert_eq!(plan, Some(expected), "{name}");
                    }
                    None => assert_eq!(plan, None, "{name}"),
                }
                // Without prefixes, or with none of the keys', never a cache span.
                assert_eq!(parsed.cache::<&str>(&[]), None, "{name}");
                assert_eq!(parsed.cache(&["other:"]), None, "{name}");
            }
        }
    }

    #[test]
    fn every_cache_command_in_every_casing_and_nothing_else() {
        for (name, command) in CACHE_COMMANDS {
            for casing in casings(name) {
                assert_eq!(Command::of(casing.as_bytes()), command, "{casing}");
            }
        }
        for other in [
            "", "GE", "GETT", "MGETS", "SETEXX", "DELETE", "UNLIN", "GET ", " GET",
        ] {
            assert_eq!(Command::of(other.as_bytes()), Command::Other, "{other:?}");
        }
        // Non-ASCII bytes never match (no Unicode case folding: `ſ` is not `s`).
        assert_eq!(Command::of("ſet".as_bytes()), Command::Other);
        assert_eq!(Command::of(&[0xff, b'E', b'T']), Command::Other);
    }

    #[test]
    fn one_matching_key_of_several_is_enough() {
        let parsed = Parsed::from_parts(b"MGET", vec![b"x:1", b"c:2"]);
        let plan = parsed.cache(&["c:"]).expect("a cache span");
        assert_eq!(plan.keys, ["x:1", "c:2"]);
        // MSET's values are not keys.
        let parsed = Parsed::from_parts(b"MSET", vec![b"x:1", b"c:value"]);
        assert_eq!(parsed.cache(&["c:"]), None);
    }

    #[test]
    fn malformed_commands_never_panic() {
        for name in [
            "GET", "MGET", "SET", "SETEX", "PSETEX", "SETNX", "MSET", "DEL", "HSET",
        ] {
            for args in [vec![], vec![&b"c:1"[..]], vec![b"c:1", b"\xff\xfe"]] {
                let parsed = Parsed::from_parts(name.as_bytes(), args);
                let _ = (parsed.description(), parsed.key(), parsed.cache(&["c:"]));
            }
        }
        let empty = Parsed::from_parts(b"", vec![]);
        assert_eq!(empty.description(), "");
        assert_eq!(empty.key(), None);
        // Keys that are not UTF-8 are shown lossily.
        let parsed = Parsed::from_parts(b"GET", vec![b"c:\xff"]);
        assert_eq!(parsed.description(), "GET c:\u{FFFD}");
        assert_eq!(
            parsed.cache(&["c:"]).map(|p| p.keys),
            Some(vec![Cow::<str>::Owned("c:\u{FFFD}".into())])
        );
    }

    #[test]
    fn a_cmd_is_read_as_redis_builds_it() {
        let mut cmd = ::redis::cmd("SeT");
        cmd.arg("c:1").arg(b"\x00\x01").arg("EX").arg(9);
        let parsed = Parsed::of(&cmd);
        assert_eq!(parsed.command(), Command::Set);
        assert_eq!(parsed.operation(), "SET");
        let plan = parsed.cache(&["c:"]).expect("a cache span");
        assert_eq!((plan.ttl, plan.item_size), (Some(9), Some(2)));
        let mut scan = ::redis::cmd("SCAN");
        scan.cursor_arg(0).arg("MATCH").arg("c:*");
        assert_eq!(
            Parsed::of(&scan).description(),
            "SCAN [Filtered] [Filtered] [Filtered]"
        );
    }
}
