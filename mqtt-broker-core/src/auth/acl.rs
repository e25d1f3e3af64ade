//! Access control lists in mosquitto's `acl_file` format.
//!
//! ```text
//! # Anonymous clients (no user name): the lines before any `user` line.
//! topic read public/#
//!
//! # Rules of one user, up to the next `user` line.
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret/#
//! topic sensors/+/temperature
//!
//! # Patterns apply to every client, wherever they stand in the file:
//! # %c is the client identifier, %u the user name.
//! pattern write devices/%c/state
//! pattern read users/%u/inbox/#
//! ```
//!
//! The access word is `read`, `write`, `readwrite` or `deny`; without one a
//! rule grants `readwrite`. With an ACL, what no rule allows is denied, and
//! a `deny` rule wins over any rule that allows.
//!
//! A pattern with `%u` does not apply to a client without a user name. A
//! client identifier or user name containing `+`, `#` or `/` would widen a
//! pattern, so a pattern that substitutes one grants nothing; a `deny`
//! pattern that substitutes one denies everything (as mosquitto refuses
//! such clients whenever patterns are used).

use super::{
    error::{FileError, read},
    filter::{covers, overlaps},
};
use mqtt_codec::{TopicFilter, topic_matches};
use std::{borrow::Cow, collections::HashMap, path::Path};

/// What a rule gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// Subscribe to and receive matching topics.
    Read,
    /// Publish to matching topics.
    Write,
    /// Both.
    ReadWrite,
    /// Neither, whatever other rules allow.
    Deny,
}

impl Access {
    fn parse(word: &str) -> Option<Access> {
        Some(match word {
            "read" => Access::Read,
            "write" => Access::Write,
            "readwrite" => Access::ReadWrite,
            "deny" => Access::Deny,
            _ => return None,
        })
    }

    fn grants(self, want: Access) -> bool {
        self == want || self == Access::ReadWrite
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    access: Access,
    filter: String,
}

/// An access control list: which topics each client may publish to,
/// subscribe to and receive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

/// Where `parse` puts `topic` lines.
enum Section {
    Anonymous,
    User(String),
}

impl Acl {
    /// Reads an ACL file.
    pub fn load(path: impl AsRef<Path>) -> Result<Acl, FileError> {
        let path = path.as_ref();
        Acl::parse(&read(path)?).map_err(|e| e.in_file(path.to_owned()))
    }

    /// Parses an ACL from text; an error names the line.
    pub fn parse(text: &str) -> Result<Acl, FileError> {
        let mut acl = Acl::default();
        let mut section = Section::Anonymous;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(k, r)| (k, r.trim_start()));
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(FileError::syntax(n, "`user` needs a user name"));
                    }
                    section = Section::User(rest.to_owned());
                    acl.users.entry(rest.to_owned()).or_default();
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(n, keyword, rest)?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else {
                        match &section {
                            Section::Anonymous => acl.anonymous.push(rule),
                            Section::User(u) => acl.users.entry(u.clone()).or_default().push(rule),
                        }
                    }
                }
                other => {
                    return Err(FileError::syntax(
                        n,
                        format!("unknown keyword `{other}` (expected topic, user or pattern)"),
                    ));
                }
            }
        }
        Ok(acl)
    }

    /// Whether the client may publish to `topic`.
    pub fn can_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        self.decide(client_id, username, Access::Write, |f| {
            topic_matches(f, topic)
        })
    }

    /// Whether the client may receive a message published to `topic`.
    pub fn can_read(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        self.decide(client_id, username, Access::Read, |f| {
            topic_matches(f, topic)
        })
    }

    /// Whether the client may subscribe to `filter`: only if one read
    /// rule's filter covers every topic `filter` could match (`a/#` allows
    /// `a/+/b`; `a/+` does not allow `a/#`), and no `deny` rule overlaps
    /// it. A shared subscription (`$share/GROUP/FILTER`) is judged by its
    /// FILTER. A topic name is a filter without wildcards, so this also
    /// answers [`can_read`](Self::can_read) for one.
    pub fn can_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let filter = unshared(filter);
        let mut allowed = false;
        for rule in self.rules(client_id, username) {
            let Some((access, f)) = rule else {
                return false;
            };
            if access == Access::Deny {
                if overlaps(&f, filter) {
                    return false;
                }
            } else if !allowed && access.grants(Access::Read) && covers(&f, filter) {
                allowed = true;
            }
        }
        allowed
    }

    /// `want` for a topic: some rule granting it matches and no `deny`
    /// rule does.
    fn decide(
        &self,
        client_id: &str,
        username: Option<&str>,
        want: Access,
        matches: impl Fn(&str) -> bool,
    ) -> bool {
        let mut allowed = false;
        for rule in self.rules(client_id, username) {
            let Some((access, f)) = rule else {
                return false;
            };
            if access == Access::Deny {
                if matches(&f) {
                    return false;
                }
            } else if !allowed && access.grants(want) && matches(&f) {
                allowed = true;
            }
        }
        allowed
    }

    /// The rules for a client: its section's, then the patterns that apply
    /// (substituted). `None` stands for a deny pattern that cannot be
    /// substituted safely: deny everything.
    fn rules<'a>(
        &'a self,
        client_id: &'a str,
        username: Option<&'a str>,
    ) -> impl Iterator<Item = Option<(Access, Cow<'a, str>)>> + 'a {
        let section = match username {
            None => self.anonymous.as_slice(),
            Some(u) => self.users.get(u).map_or(&[][..], Vec::as_slice),
        };
        let plain = section
            .iter()
            .map(|r| Some((r.access, Cow::Borrowed(r.filter.as_str()))));
        let patterns = self.patterns.iter().filter_map(move |r| {
            match substitute(&r.filter, client_id, username) {
                Substituted::Filter(f) => Some(Some((r.access, f))),
                Substituted::NotApplicable => None,
                Substituted::Unsafe if r.access == Access::Deny => Some(None),
                Substituted::Unsafe => None,
            }
        });
        plain.chain(patterns)
    }
}

/// The filter of a shared subscription, else the filter itself.
fn unshared(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

enum Substituted<'a> {
    Filter(Cow<'a, str>),
    /// `%u` for a client without a user name.
    NotApplicable,
    /// A value with `+`, `#` or `/` would widen the rule.
    Unsafe,
}

fn substitute<'a>(pattern: &'a str, client_id: &str, username: Option<&str>) -> Substituted<'a> {
    let unsafe_value = |v: &str| v.contains(['+', '#', '/']);
    let mut out = Cow::Borrowed(pattern);
    if pattern.contains("%u") {
        let Some(u) = username else {
            return Substituted::NotApplicable;
        };
        if unsafe_value(u) {
            return Substituted::Unsafe;
        }
        out = Cow::Owned(out.replace("%u", u));
    }
    if pattern.contains("%c") {
        if unsafe_value(client_id) {
            return Substituted::Unsafe;
        }
        out = Cow::Owned(out.replace("%c", client_id));
    }
    Substituted::Filter(out)
}

fn parse_rule(n: usize, keyword: &str, rest: &str) -> Result<Rule, FileError> {
    let (first, after) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(a, b)| (a, b.trim()));
    let (access, filter) = match Access::parse(first) {
        Some(access) => {
            if after.is_empty() {
                return Err(FileError::syntax(
                    n,
                    format!("`{keyword} {first}` needs a topic"),
                ));
            }
            (access, after)
        }
        None => (Access::ReadWrite, rest.trim_end()),
    };
    if filter.is_empty() {
        return Err(FileError::syntax(n, format!("`{keyword}` needs a topic")));
    }
    if filter.starts_with("$share/") {
        return Err(FileError::syntax(
            n,
            "write the topic without `$share/GROUP/`: shared subscriptions are judged by their filter",
        ));
    }
    if let Err(e) = TopicFilter::try_from(filter) {
        return Err(FileError::syntax(
            n,
            format!("`{filter}` is not a valid topic filter: {e}"),
        ));
    }
    Ok(Rule {
        access,
        filter: filter.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    const FILE: &str = "
# anonymous
topic read public/#
topic deny public/private/#

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic sensors/+/temperature
  topic write   with spaces/in name  

user bob
topic read alice/shared/+

pattern write devices/%c/state
pattern read users/%u/inbox/#
pattern deny devices/%c/locked
";

    fn acl() -> Acl {
        Acl::parse(FILE).unwrap()
    }

    #[test]
    fn anonymous_section() {
        let a = acl();
        assert!(a.can_read("x", None, "public/news"));
        assert!(a.can_subscribe("x", None, "public/news/#"));
        assert!(!a.can_publish("x", None, "public/news"));
        // The anonymous section is not for users.
        assert!(!a.can_read("x", Some("bob"), "public/news"));
        // Deny wins over the allowing rule.
        assert!(!a.can_read("x", None, "public/private/a"));
        assert!(!a.can_subscribe("x", None, "public/#"));
        // `public/private` matches both `public/+` and the deny rule.
        assert!(!a.can_subscribe("x", None, "public/+"));
        assert!(a.can_subscribe("x", None, "public/news/+"));
    }

    #[test]
    fn user_sections_and_default_access() {
        let a = acl();
        let alice = Some("alice");
        assert!(a.can_publish("c", alice, "alice/x"));
        assert!(a.can_read("c", alice, "alice/x/y"));
        assert!(!a.can_publish("c", alice, "alice/secret/x"));
        assert!(!a.can_read("c", alice, "alice/secret"));
        // No access word: readwrite.
        assert!(a.can_publish("c", alice, "sensors/1/temperature"));
        assert!(a.can_read("c", alice, "sensors/1/temperature"));
        assert!(a.can_publish("c", alice, "with spaces/in name"));
        assert!(!a.can_read("c", alice, "with spaces/in name"));
        // Not in alice's rules: default deny.
        assert!(!a.can_publish("c", alice, "bob/x"));
        // Bob reads alice/shared/+ only.
        assert!(a.can_read("c", Some("bob"), "alice/shared/1"));
        assert!(!a.can_publish("c", Some("bob"), "alice/shared/1"));
        assert!(!a.can_read("c", Some("carol"), "alice/shared/1"));
    }

    #[test]
    fn subscriptions_need_a_covering_read_rule() {
        let a = acl();
        let alice = Some("alice");
        let bob = Some("bob");
        assert!(a.can_subscribe("c", bob, "alice/shared/+"));
        assert!(a.can_subscribe("c", bob, "alice/shared/x"));
        // `alice/shared/+` does not cover `alice/shared/#`.
        assert!(!a.can_subscribe("c", bob, "alice/shared/#"));
        assert!(!a.can_subscribe("c", bob, "alice/#"));
        // A deny rule overlapping the filter refuses it.
        assert!(!a.can_subscribe("c", alice, "alice/#"));
        assert!(!a.can_subscribe("c", alice, "alice/+/x"));
        assert!(a.can_subscribe("c", alice, "alice/open/#"));
        assert!(a.can_subscribe("c", alice, "alice/open/+"));
        let hash = Acl::parse("topic read a/#").unwrap();
        assert!(hash.can_subscribe("c", None, "a/+/b"));
        assert!(hash.can_subscribe("c", None, "a/#"));
        assert!(hash.can_subscribe("c", None, "a"));
        let plus = Acl::parse("topic read a/+").unwrap();
        assert!(plus.can_subscribe("c", None, "a/+"));
        assert!(!plus.can_subscribe("c", None, "a/#"));
        assert!(!plus.can_subscribe("c", None, "a/+/b"));
        // Shared subscriptions are judged by their filter.
        assert!(a.can_subscribe("c", bob, "$share/g/alice/shared/+"));
        assert!(!a.can_subscribe("c", bob, "$share/g/alice/#"));
        // A topic name as the filter: the same as can_read.
        assert!(a.can_subscribe("c", alice, "alice/x"));
        assert!(!a.can_subscribe("c", alice, "alice/secret/x"));
    }

    #[test]
    fn patterns_substitute_client_id_and_user() {
        let a = acl();
        assert!(a.can_publish("dev1", None, "devices/dev1/state"));
        assert!(a.can_publish("dev1", Some("bob"), "devices/dev1/state"));
        // Another client's %c topic.
        assert!(!a.can_publish("dev1", None, "devices/dev2/state"));
        assert!(!a.can_read("dev1", None, "devices/dev1/state"));
        assert!(a.can_read("c", Some("bob"), "users/bob/inbox/1"));
        assert!(a.can_subscribe("c", Some("bob"), "users/bob/inbox/#"));
        assert!(!a.can_read("c", Some("bob"), "users/alice/inbox/1"));
        assert!(!a.can_subscribe("c", Some("bob"), "users/+/inbox/#"));
        // %u never applies without a user name.
        assert!(!a.can_read("c", None, "users//inbox/1"));
        assert!(!a.can_read("c", None, "users/%u/inbox/1"));
    }

    #[test]
    fn wildcards_or_slashes_in_names_do_not_widen_patterns() {
        let a = acl();
        for id in ["+", "#", "a/b", "dev+"] {
            assert!(
                !a.can_publish(id, None, &format!("devices/{id}/state")),
                "{id}"
            );
            assert!(!a.can_publish(id, None, "devices/x/state"), "{id}");
        }
        assert!(!a.can_read("c", Some("+"), "users/x/inbox/1"));
        assert!(!a.can_read("c", Some("a/b"), "users/a/b/inbox/1"));
        // A deny pattern that cannot be substituted denies everything.
        let b = Acl::parse("pattern read public/#\npattern deny private/%c/#").unwrap();
        assert!(b.can_read("ok", None, "public/x"));
        assert!(!b.can_read("a/b", None, "public/x"));
        // `deny` patterns apply after substitution.
        assert!(!a.can_publish("dev1", None, "devices/dev1/locked"));
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, line) in [
            ("topic read a\nbogus line", 2),
            ("\n\nuser", 3),
            ("topic read", 1),
            ("topic", 1),
            ("# c\ntopic read a/#/b", 2),
            ("pattern write a+", 1),
            ("topic $share/g/a", 1),
            ("user a\n\ttopic deny", 2),
        ] {
            match Acl::parse(text) {
                Err(FileError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text:?}: {message}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        let e = Acl::parse("x").unwrap_err().to_string();
        assert!(e.starts_with("line 1: unknown keyword"), "{e}");
    }

    #[test]
    fn an_empty_acl_denies_everything() {
        let a = Acl::parse("# nothing\n").unwrap();
        assert!(!a.can_read("c", None, "a"));
        assert!(!a.can_publish("c", Some("u"), "a"));
        assert!(!a.can_subscribe("c", Some("u"), "#"));
    }

    #[test]
    fn dollar_topics_need_their_own_rules() {
        let a = Acl::parse("topic read #\ntopic read $SYS/broker/#").unwrap();
        assert!(a.can_read("c", None, "a/b"));
        assert!(!a.can_read("c", None, "$SYS/x"));
        assert!(a.can_read("c", None, "$SYS/broker/load"));
        assert!(a.can_subscribe("c", None, "#"));
        assert!(!a.can_subscribe("c", None, "$SYS/#"));
        assert!(a.can_subscribe("c", None, "$SYS/broker/+"));
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("a"),
            Just("b"),
            Just(""),
            Just("+"),
            Just("%c"),
            Just("%u"),
            Just("$s")
        ]
    }

    fn filter() -> impl Strategy<Value = String> {
        (prop::collection::vec(level(), 1..4), any::<bool>()).prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            if f.is_empty() { "a".to_owned() } else { f }
        })
    }

    fn access() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("read"),
            Just("write"),
            Just("readwrite"),
            Just("deny"),
            Just("")
        ]
    }

    /// A random ACL: anonymous rules, rules for user "u", patterns.
    fn acl_text() -> impl Strategy<Value = String> {
        let rules = |n: usize| prop::collection::vec((access(), filter()), 0..n);
        (rules(4), rules(4), rules(3)).prop_map(|(anon, user, patterns)| {
            let mut s = String::new();
            // `%c`/`%u` only mean something in patterns.
            for (a, f) in anon {
                s += &format!("topic {a} {}\n", f.replace('%', "p"));
            }
            s += "user u\n";
            for (a, f) in user {
                s += &format!("topic {a} {}\n", f.replace('%', "p"));
            }
            for (a, f) in patterns {
                s += &format!("pattern {a} {f}\n");
            }
            s
        })
    }

    /// A topic the (substituted) filter `f` matches.
    fn topic_of(f: &str, choices: &[u8]) -> String {
        let names = ["a", "b", "", "c"];
        let mut pick = choices.iter().copied().cycle();
        let mut out: Vec<&str> = Vec::new();
        for l in f.split('/') {
            match l {
                "+" => out.push(names[usize::from(pick.next().unwrap_or(0)) % 4]),
                "#" => {
                    for _ in 0..pick.next().unwrap_or(0) % 3 {
                        out.push(names[usize::from(pick.next().unwrap_or(0)) % 4]);
                    }
                }
                other => out.push(other),
            }
        }
        out.join("/")
    }

    proptest! {
        /// [MQTT-4.7.2-1] and the ACL together: what a subscription allows,
        /// each matching topic allows.
        #[test]
        fn subscribing_implies_reading_every_matching_topic(
            text in acl_text(),
            requested in filter(),
            client in prop_oneof![Just("a"), Just("b"), Just("x/y"), Just("+")],
            user in prop_oneof![Just(None), Just(Some("u")), Just(Some("a")), Just(Some("#"))],
            choices in prop::collection::vec(any::<u8>(), 1..8),
        ) {
            let acl = Acl::parse(&text).unwrap();
            let requested = requested.replace('%', "p");
            let t = topic_of(&requested, &choices);
            prop_assume!(topic_matches(&requested, &t));
            if acl.can_subscribe(client, user, &requested) {
                prop_assert!(acl.can_read(client, user, &t), "{text}\n{requested} allowed but not {t}");
            }
            // On a topic, subscribing and reading agree.
            prop_assert_eq!(acl.can_subscribe(client, user, &t), acl.can_read(client, user, &t));
        }
    }
}
