//! Relations between topic filters, by the matching rules of
//! `mqtt_codec::topic_matches`: `+` is one level, `#` the rest (the parent
//! level included), and a filter starting with a wildcard matches no topic
//! starting with `$` ([MQTT-4.7.2-1]).

/// Whether every topic `requested` matches, `rule` matches too.
///
/// `a/#` covers `a/+/b`, `a/#` and `a`; `a/+` does not cover `a/#`; `#`
/// does not cover `$SYS/x`. A topic name is a filter without wildcards, so
/// `covers(rule, topic)` is `topic_matches(rule, topic)`.
pub(crate) fn covers(rule: &str, requested: &str) -> bool {
    if starts_wild(rule) && requested.starts_with('$') {
        // A `$` topic the rule cannot match.
        return false;
    }
    let mut r = rule.split('/');
    let mut q = requested.split('/');
    loop {
        match (r.next(), q.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            // `#` asks for any number of levels; only `#` gives that.
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            // `+` asks for any level; a literal gives one.
            (Some(_), Some("+")) => return false,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// Whether some topic matches both filters.
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    if (starts_wild(a) && b.starts_with('$')) || (starts_wild(b) && a.starts_with('$')) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

fn starts_wild(filter: &str) -> bool {
    filter.starts_with(['+', '#'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_codec::topic_matches;
    use proptest::prelude::*;

    #[test]
    fn covering() {
        for (rule, req) in [
            ("a/#", "a/+/b"),
            ("a/#", "a/#"),
            ("a/#", "a"),
            ("a/#", "a/b"),
            ("#", "a/#"),
            ("#", "+/+"),
            ("a/+", "a/+"),
            ("a/+", "a/b"),
            ("+/+", "a/b"),
            ("a/b", "a/b"),
            ("$SYS/#", "$SYS/x"),
            ("+", ""),
        ] {
            assert!(covers(rule, req), "{rule} covers {req}");
        }
        for (rule, req) in [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a/b", "a/+"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/x"),
            ("+/x", "$SYS/x"),
            ("a/+/c", "a/+/+"),
            ("b/#", "a/#"),
        ] {
            assert!(!covers(rule, req), "{rule} does not cover {req}");
        }
    }

    #[test]
    fn overlapping() {
        for (a, b) in [
            ("a/+", "a/#"),
            ("a/b", "+/b"),
            ("a/#", "a"),
            ("#", "x/y/z"),
            ("a/+/c", "+/b/+"),
            ("$SYS/#", "$SYS/+"),
        ] {
            assert!(overlaps(a, b) && overlaps(b, a), "{a} overlaps {b}");
        }
        for (a, b) in [
            ("a/b", "a/c"),
            ("a/+", "a"),
            ("a/+", "a/b/c"),
            ("#", "$SYS/x"),
            ("+/#", "$SYS/#"),
            ("a/b/c", "a/b"),
        ] {
            assert!(
                !overlaps(a, b) && !overlaps(b, a),
                "{a} does not overlap {b}"
            );
        }
    }

    fn level() -> impl Strategy<Value = &'static str> {
        prop_oneof![Just("a"), Just("b"), Just(""), Just("$s"), Just("+")]
    }

    /// Valid filters over a few levels, `#` only last.
    fn filter() -> impl Strategy<Value = String> {
        (prop::collection::vec(level(), 1..4), any::<bool>()).prop_map(|(levels, hash)| {
            let mut f = levels.join("/");
            if hash {
                f.push_str("/#");
            }
            f
        })
    }

    /// A topic `f` matches, wildcards replaced by `choices`.
    fn topic_of(f: &str, choices: &[u8]) -> String {
        let names = ["a", "b", "", "c"];
        let mut out: Vec<&str> = Vec::new();
        let mut pick = choices.iter().copied().cycle();
        for l in f.split('/') {
            match l {
                "+" => out.push(names[usize::from(pick.next().unwrap_or(0)) % 4]),
                "#" => {
                    let n = pick.next().unwrap_or(0) % 3;
                    for _ in 0..n {
                        out.push(names[usize::from(pick.next().unwrap_or(0)) % 4]);
                    }
                }
                other => out.push(other),
            }
        }
        out.join("/")
    }

    proptest! {
        #[test]
        fn covers_means_every_match_matches(rule in filter(), req in filter(), choices in prop::collection::vec(any::<u8>(), 1..8)) {
            let t = topic_of(&req, &choices);
            if topic_matches(&req, &t) && covers(&rule, &req) {
                prop_assert!(topic_matches(&rule, &t), "{rule} covers {req} but misses {t}");
            }
        }

        #[test]
        fn a_shared_match_means_overlap(a in filter(), b in filter(), choices in prop::collection::vec(any::<u8>(), 1..8)) {
            let t = topic_of(&a, &choices);
            if topic_matches(&a, &t) && topic_matches(&b, &t) {
                prop_assert!(overlaps(&a, &b), "{a} and {b} both match {t}");
            }
            prop_assert_eq!(overlaps(&a, &b), overlaps(&b, &a));
        }

        #[test]
        fn on_topics_both_are_matching(rule in filter(), choices in prop::collection::vec(any::<u8>(), 1..8)) {
            let t = topic_of(&rule, &choices);
            prop_assert_eq!(covers(&rule, &t), topic_matches(&rule, &t));
            prop_assert_eq!(overlaps(&rule, &t), topic_matches(&rule, &t));
        }
    }
}
