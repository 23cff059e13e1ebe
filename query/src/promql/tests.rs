//! Data-driven tests of the PromQL parser and printer.

use super::*;

#[test]
fn smoke() {
    let e = parse("sum by (job) (rate(http_requests_total{job=\"api\"}[5m])) > 1").unwrap();
    assert_eq!(
        e.to_string(),
        "sum by (job) (rate(http_requests_total{job=\"api\"}[5m])) > 1"
    );
}

/// Every `eval` expression of the vendored conformance scripts parses
/// (a parse error would invalidate the whole file in Prometheus's runner)
/// and survives printing and re-parsing.
#[test]
fn conformance_script_expressions_parse_and_round_trip() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/promql");
    let instant = regex::Regex::new(
        r"^eval(?:_(?:fail|warn|ordered|info))?\s+instant\s+(?:at\s+(?:.+?))?\s+(.+)$",
    )
    .unwrap();
    let range = regex::Regex::new(
        r"^eval(?:_(?:fail|warn|info))?\s+range\s+from\s+(?:.+)\s+to\s+(?:.+)\s+step\s+(?:.+?)\s+(.+)$",
    )
    .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    let mut count = 0;
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if !line.starts_with("eval") {
                continue;
            }
            let Some(c) = instant.captures(line).or_else(|| range.captures(line)) else {
                failures.push(format!(
                    "{}:{}: unrecognised eval line",
                    path.display(),
                    i + 1
                ));
                continue;
            };
            let query = c[1].trim();
            count += 1;
            let where_ = format!("{}:{}: {query}", path.file_name().unwrap().display(), i + 1);
            match parse(query) {
                Err(e) => failures.push(format!("{where_}\n    {e}")),
                Ok(expr) => {
                    let printed = expr.to_string();
                    match parse(&printed) {
                        Ok(again) if same_tree(&expr, &again) => {}
                        Ok(again) => failures.push(format!(
                            "{where_}\n    printed {printed}\n    {expr:?}\n    {again:?}"
                        )),
                        Err(e) => failures.push(format!("{where_}\n    printed {printed}: {e}")),
                    }
                    let pretty = pretty(&expr);
                    match parse(&pretty) {
                        Ok(again) if same_tree(&expr, &again) => {}
                        _ => failures.push(format!("{where_}\n    pretty form differs: {pretty}")),
                    }
                }
            }
        }
    }
    assert!(count > 2000, "only {count} eval lines found");
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Failing inputs of Prometheus's `parse_test.go` (cases ported, not
/// code): the first error, worded and positioned as Prometheus reports it.
const PROMETHEUS_ERRORS: &[(&str, &str)] = &[
    (
        "",
        "unknown position: parse error: no expression found in input",
    ),
    (
        "# just a comment\n\n",
        "1:1: parse error: no expression found in input",
    ),
    ("1+", "1:3: parse error: unexpected end of input"),
    (".", "1:1: parse error: unexpected character: '.'"),
    (
        "2.5.",
        r#"1:1: parse error: bad number or duration syntax: "2.5.""#,
    ),
    (
        "100..4",
        r#"1:1: parse error: bad number or duration syntax: "100..""#,
    ),
    (
        "0deadbeef",
        r#"1:1: parse error: bad number or duration syntax: "0de""#,
    ),
    ("1 /", "1:4: parse error: unexpected end of input"),
    ("*1", "1:1: parse error: unexpected <op:*>"),
    ("(1))", "1:5: parse error: unexpected right parenthesis ')'"),
    ("((1)", "1:5: parse error: unclosed left parenthesis"),
    (
        "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999",
        r#"1:1: parse error: error parsing number: strconv.ParseFloat: parsing "999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999999": value out of range"#,
    ),
    ("(", "1:2: parse error: unclosed left parenthesis"),
    (
        "1 and 1",
        r#"1:1: parse error: set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        "1 == 1",
        "1:3: parse error: comparisons between scalars must use BOOL modifier",
    ),
    (
        "1 or 1",
        r#"1:1: parse error: set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        "1 unless 1",
        r#"1:1: parse error: set operator "unless" not allowed in binary scalar expression"#,
    ),
    (
        "1 !~ 1",
        "1:3: parse error: unexpected character after '!': '~'",
    ),
    (
        "1 =~ 1",
        "1:3: parse error: unexpected character after '=': '~'",
    ),
    (
        r#"-"string""#,
        r#"1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "string""#,
    ),
    (
        "-test[5m]",
        r#"1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got "range vector""#,
    ),
    ("*test", "1:1: parse error: unexpected <op:*>"),
    ("@@", "1:1: parse error: unexpected <op:@>"),
    (
        "1 offset 1d",
        "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    (
        "foo offset 1s offset 2s",
        "1:1: parse error: offset may not be set multiple times",
    ),
    (
        "a - on(b) ignoring(c) d",
        "1:11: parse error: unexpected <ignoring>",
    ),
    (
        "foo and 1",
        r#"1:1: parse error: set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        "1 and foo",
        r#"1:1: parse error: set operator "and" not allowed in binary scalar expression"#,
    ),
    (
        "foo or 1",
        r#"1:1: parse error: set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        "1 or foo",
        r#"1:1: parse error: set operator "or" not allowed in binary scalar expression"#,
    ),
    (
        "foo unless 1",
        r#"1:1: parse error: set operator "unless" not allowed in binary scalar expression"#,
    ),
    (
        "1 unless foo",
        r#"1:1: parse error: set operator "unless" not allowed in binary scalar expression"#,
    ),
    (
        "1 or on(bar) foo",
        "1:1: parse error: vector matching only allowed between instant vectors",
    ),
    (
        "foo == on(bar) 10",
        "1:1: parse error: vector matching only allowed between instant vectors",
    ),
    (
        "foo + group_left(baz) bar",
        "1:7: parse error: unexpected <group_left>",
    ),
    (
        "foo and on(bar) group_left(baz) bar",
        r#"1:1: parse error: no grouping allowed for "and" operation"#,
    ),
    (
        "foo and on(bar) group_right(baz) bar",
        r#"1:1: parse error: no grouping allowed for "and" operation"#,
    ),
    (
        "foo or on(bar) group_left(baz) bar",
        r#"1:1: parse error: no grouping allowed for "or" operation"#,
    ),
    (
        "foo or on(bar) group_right(baz) bar",
        r#"1:1: parse error: no grouping allowed for "or" operation"#,
    ),
    (
        "foo unless on(bar) group_left(baz) bar",
        r#"1:1: parse error: no grouping allowed for "unless" operation"#,
    ),
    (
        "foo unless on(bar) group_right(baz) bar",
        r#"1:1: parse error: no grouping allowed for "unless" operation"#,
    ),
    (
        r#"http_requests{group="production"} + on(instance) group_left(job,instance) cpu_count{type="smp"}"#,
        r#"1:35: parse error: label "instance" must not occur in ON and GROUP clause at once"#,
    ),
    (
        "foo + bool bar",
        "1:5: parse error: bool modifier can only be used on comparison operators",
    ),
    (
        "foo + bool 10",
        "1:5: parse error: bool modifier can only be used on comparison operators",
    ),
    (
        "foo and bool 10",
        "1:5: parse error: bool modifier can only be used on comparison operators",
    ),
    (
        "foo @ +Inf",
        "1:1: parse error: timestamp out of bounds for @ modifier: +Inf",
    ),
    (
        "foo @ -Inf",
        "1:1: parse error: timestamp out of bounds for @ modifier: -Inf",
    ),
    (
        "foo @ NaN",
        "1:1: parse error: timestamp out of bounds for @ modifier: NaN",
    ),
    (
        "{",
        "1:2: parse error: unexpected end of input inside braces",
    ),
    ("}", "1:1: parse error: unexpected character: '}'"),
    (
        "some{",
        "1:6: parse error: unexpected end of input inside braces",
    ),
    ("some}", "1:5: parse error: unexpected character: '}'"),
    (
        "some_metric{a=b}",
        r#"1:15: parse error: unexpected identifier "b" in label matching, expected string"#,
    ),
    (
        r#"some_metric{a:b="b"}"#,
        "1:14: parse error: unexpected character inside braces: ':'",
    ),
    (
        r#"foo{a*"b"}"#,
        "1:6: parse error: unexpected character inside braces: '*'",
    ),
    (
        r#"foo{a>="b"}"#,
        "1:6: parse error: unexpected character inside braces: '>'",
    ),
    (
        "some_metric{a=\"\u{FFFD}\"}",
        "1:15: parse error: invalid UTF-8 rune",
    ),
    (
        "foo{gibberish}",
        r#"1:14: parse error: unexpected "}" in label matching, expected label matching operator"#,
    ),
    (
        "foo{1}",
        "1:5: parse error: unexpected character inside braces: '1'",
    ),
    (
        "{}",
        "1:1: parse error: vector selector must contain at least one non-empty matcher",
    ),
    (
        r#"{x=""}"#,
        "1:1: parse error: vector selector must contain at least one non-empty matcher",
    ),
    (
        r#"{x=~".*"}"#,
        "1:1: parse error: vector selector must contain at least one non-empty matcher",
    ),
    (
        r#"{x!~".+"}"#,
        "1:1: parse error: vector selector must contain at least one non-empty matcher",
    ),
    (
        r#"{x!="a"}"#,
        "1:1: parse error: vector selector must contain at least one non-empty matcher",
    ),
    (
        r#"foo{__name__="bar"}"#,
        r#"1:1: parse error: metric name must not be set twice: "foo" or "bar""#,
    ),
    (
        "foo{__name__= =}",
        r#"1:15: parse error: unexpected "=" in label matching, expected string"#,
    ),
    (
        "foo{,}",
        r#"1:5: parse error: unexpected "," in label matching, expected identifier or "}""#,
    ),
    (
        r#"foo{__name__ == "bar"}"#,
        r#"1:15: parse error: unexpected "=" in label matching, expected string"#,
    ),
    (
        r#"foo{__name__="bar" lol}"#,
        r#"1:20: parse error: unexpected identifier "lol" in label matching, expected "," or "}""#,
    ),
    (
        r#"foo{"a"=}"#,
        r#"1:9: parse error: unexpected "}" in label matching, expected string"#,
    ),
    (
        "foo[5mm]",
        r#"1:5: parse error: bad number or duration syntax: "5mm""#,
    ),
    (
        "foo[5m1]",
        r#"1:5: parse error: bad number or duration syntax: "5m1""#,
    ),
    (
        "foo[5m:1m1]",
        r#"1:8: parse error: bad number or duration syntax: "1m1""#,
    ),
    (
        "foo[5y1hs]",
        r#"1:5: parse error: unknown unit "hs" in duration "5y1hs""#,
    ),
    (
        "foo[5m1h]",
        r#"1:5: parse error: not a valid duration string: "5m1h""#,
    ),
    (
        "foo[5m1m]",
        r#"1:5: parse error: not a valid duration string: "5m1m""#,
    ),
    (
        "foo[0m]",
        "1:5: parse error: duration must be greater than 0",
    ),
    (
        r#"foo["5m"]"#,
        r#"1:5: parse error: unexpected character in duration expression: '"'"#,
    ),
    (
        "foo[]",
        r#"1:5: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()"#,
    ),
    (
        "foo[-1]",
        "1:5: parse error: duration must be greater than 0",
    ),
    (
        "some_metric[5m] OFFSET 1mm",
        r#"1:24: parse error: bad number or duration syntax: "1mm""#,
    ),
    (
        "some_metric[5m] OFFSET",
        "1:23: parse error: unexpected end of input in offset, expected number, duration, step(), or range()",
    ),
    (
        "some_metric OFFSET 1m[5m]",
        "1:22: parse error: no offset modifiers allowed before range",
    ),
    (
        "some_metric[5m] @",
        "1:18: parse error: unexpected end of input in @, expected timestamp",
    ),
    (
        "some_metric @ 1234 [5m]",
        "1:20: parse error: no @ modifiers allowed before range",
    ),
    (
        "some_metric @ start() [5m]",
        "1:23: parse error: no @ modifiers allowed before range",
    ),
    (
        "some_metric @ end()[5m]",
        "1:20: parse error: no @ modifiers allowed before range",
    ),
    (
        "some_metric offset step()[5m]",
        "1:26: parse error: no offset modifiers allowed before range",
    ),
    (
        "(foo + bar)[5m]",
        "1:12: parse error: ranges only allowed for vector selectors",
    ),
    (
        r#"sum by ("foo)(some_metric{})"#,
        "1:9: parse error: unterminated quoted string",
    ),
    (
        "sum without(==)(some_metric)",
        "1:13: parse error: unexpected <op:==> in grouping opts, expected label",
    ),
    (
        "sum without(,)(some_metric)",
        r#"1:13: parse error: unexpected "," in grouping opts, expected label"#,
    ),
    (
        "sum without(foo,,)(some_metric)",
        r#"1:17: parse error: unexpected "," in grouping opts, expected label"#,
    ),
    (
        "sum some_metric by (test)",
        r#"1:5: parse error: unexpected identifier "some_metric""#,
    ),
    (
        "sum (some_metric) by test",
        r#"1:22: parse error: unexpected identifier "test" in grouping opts, expected "(""#,
    ),
    (
        "sum () by (test)",
        "1:1: parse error: no arguments for aggregate expression provided",
    ),
    (
        "MIN keep_common (some_metric)",
        r#"1:5: parse error: unexpected identifier "keep_common""#,
    ),
    (
        "MIN (some_metric) keep_common",
        r#"1:19: parse error: unexpected identifier "keep_common""#,
    ),
    (
        "sum (some_metric) without (test) by (test)",
        "1:34: parse error: unexpected <by>",
    ),
    (
        "sum without (test) (some_metric) by (test)",
        "1:34: parse error: unexpected <by>",
    ),
    (
        "topk(some_metric)",
        "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
    ),
    (
        "topk(some_metric,)",
        "1:17: parse error: trailing commas not allowed in function call args",
    ),
    (
        "topk(some_metric, other_metric)",
        "1:6: parse error: expected type scalar in aggregation parameter, got instant vector",
    ),
    (
        "count_values(5, other_metric)",
        "1:14: parse error: expected type string in aggregation parameter, got scalar",
    ),
    (
        "rate(some_metric[5m]) @ 1234",
        "1:1: parse error: @ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
    ),
    (
        "floor()",
        r#"1:1: parse error: expected 1 argument(s) in call to "floor", got 0"#,
    ),
    (
        "floor(some_metric, other_metric)",
        r#"1:1: parse error: expected 1 argument(s) in call to "floor", got 2"#,
    ),
    (
        "floor(some_metric, 1)",
        r#"1:1: parse error: expected 1 argument(s) in call to "floor", got 2"#,
    ),
    (
        "floor(1)",
        r#"1:7: parse error: expected type instant vector in call to function "floor", got scalar"#,
    ),
    (
        "hour(some_metric, some_metric, some_metric)",
        r#"1:1: parse error: expected at most 1 argument(s) in call to "hour", got 3"#,
    ),
    (
        "time(some_metric)",
        r#"1:1: parse error: expected 0 argument(s) in call to "time", got 1"#,
    ),
    (
        "non_existent_function_far_bar()",
        r#"1:1: parse error: unknown function with name "non_existent_function_far_bar""#,
    ),
    (
        "rate(some_metric)",
        r#"1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
    ),
    (
        "label_replace(a, `b`, `c\u{FFFD}`, `d`, `.*`)",
        "1:23: parse error: invalid UTF-8 rune",
    ),
    ("-=", r#"1:2: parse error: unexpected "=""#),
    ("++-++-+-+-<", "1:11: parse error: unexpected <op:<>"),
    ("e-+=/(0)", r#"1:4: parse error: unexpected "=""#),
    (
        "a>b()",
        r#"1:3: parse error: unknown function with name "b""#,
    ),
    (
        "rate(avg)",
        r#"1:6: parse error: expected type range vector in call to function "rate", got instant vector"#,
    ),
    (r#"`\``"#, "1:4: parse error: unterminated raw string"),
    (r#""\"#, "1:1: parse error: escape sequence not terminated"),
    (
        r#""\c""#,
        "1:1: parse error: unknown escape sequence U+0063 'c'",
    ),
    (
        r#""\x.""#,
        "1:1: parse error: illegal character U+002E '.' in escape sequence",
    ),
    (
        r#"foo{bar="baz"}["#,
        "1:16: parse error: unexpected end of input in duration expression",
    ),
    (
        "test[5d] OFFSET 10s [10m:5s]",
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
    ),
    (
        r#"(foo + bar{nm="val"})[5m:][10m:5s]"#,
        "1:1: parse error: subquery is only allowed on instant vector, got matrix instead",
    ),
    (
        "rate(food[1m])[1h] offset 1h",
        "1:15: parse error: ranges only allowed for vector selectors",
    ),
    (
        "rate(food[1m])[1h] @ 100",
        "1:15: parse error: ranges only allowed for vector selectors",
    ),
    (
        r#"info(rate(http_request_counter_total{}[5m]), target_info{foo="bar"})"#,
        "1:46: parse error: expected label selectors only, got vector selector instead",
    ),
    (
        r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar"} == 1)"#,
        "1:51: parse error: expected label selectors only",
    ),
    (
        "foo[step]",
        r#"1:9: parse error: unexpected "]" in subquery or range selector, expected number, duration, step(), or range()"#,
    ),
    ("foo[step()/0d]", "1:11: parse error: division by zero"),
    ("foo[5s/0d]", "1:7: parse error: division by zero"),
    ("foo offset (4d/0)", "1:15: parse error: division by zero"),
    ("foo[5s%0d]", "1:7: parse error: modulo by zero"),
    (
        "foo offset 9.5e10",
        "1:12: parse error: duration out of range",
    ),
    ("foo[9.5e10]", "1:5: parse error: duration out of range"),
    ("sum(", "1:5: parse error: unclosed left parenthesis"),
    ("sum(rate(", "1:10: parse error: unclosed left parenthesis"),
    (
        "foo[5s x 5s]",
        "1:8: parse error: unexpected character: 'x', expected ':'",
    ),
    (
        "foo[5s s 5s]",
        "1:8: parse error: unexpected character: 's', expected ':'",
    ),
    (
        "1[5m] smoothed",
        "1:2: parse error: ranges only allowed for vector selectors",
    ),
    (
        "1[5m] anchored",
        "1:2: parse error: ranges only allowed for vector selectors",
    ),
];

/// Inputs `parse_test.go` accepts.
const PROMETHEUS_VALID: &[&str] = &[
    "1",
    "+Inf",
    "-Inf",
    ".5",
    "5.",
    "123.4567",
    "5e-3",
    "5e3",
    "0xc",
    "0755",
    "+5.5e-3",
    "-0755",
    "1 + 1",
    "1 - 1",
    "1 * 1",
    "1 % 1",
    "1 / 1",
    "1 == bool 1",
    "1 != bool 1",
    "1 > bool 1",
    "1 >= bool 1",
    "1 < bool 1",
    "1 <= bool 1",
    "-1^2",
    "-1*2",
    "-1+2",
    "-1^-2",
    "+1 + -2 * 1",
    "1 + 2/(3*1)",
    "1 < bool 2 - 1 * 2",
    "-some_metric",
    "+some_metric",
    " +some_metric",
    r#" +{"some_metric"}"#,
    r#"offset{step="1s"}[5m]"#,
    r#"step{offset="1s"}[5m]"#,
    r#"anchored{job="test"}"#,
    r#"smoothed{job="test"}"#,
    "foo * bar",
    "foo * sum",
    "foo == 1",
    "foo == bool 1",
    "2.5 / bar",
    "foo and bar",
    "foo or bar",
    "foo unless bar",
    "foo + bar or bla and blub",
    "foo and bar unless baz or qux",
    "bar + on(foo) bla / on(baz, buz) group_right(test) blub",
    "foo * on(test,blub) bar",
    "foo * on(test,blub) group_left bar",
    "foo and on(test,blub) bar",
    "foo and on() bar",
    "foo and ignoring(test,blub) bar",
    "foo and ignoring() bar",
    "foo unless on(bar) baz",
    "foo / on(test,blub) group_left(bar) bar",
    "foo / ignoring(test,blub) group_left(blub) bar",
    "foo / ignoring(test,blub) group_left(bar) bar",
    "foo - on(test,blub) group_right(bar,foo) bar",
    "foo - ignoring(test,blub) group_right(bar,foo) bar",
    "foo",
    "min",
    "foo offset 5m",
    "foo offset -7m",
    "foo offset +(5)",
    "foo offset -(5)",
    "foo offset (5)",
    "foo[(5s)]",
    "foo OFFSET 1h30m",
    "foo OFFSET 1m30ms",
    "foo @ 1603774568",
    "foo @ -100",
    "foo @ .3",
    "foo @ 3.",
    "foo @ 3.33",
    "foo @ 3.3333",
    "foo @ 3.3335",
    "foo @ 3e2",
    "foo @ 3e-1",
    "foo @ 0xA",
    "foo @ -3.3e1",
    r#"foo:bar{a="bc"}"#,
    r#"{"foo"}"#,
    r#"{'foo\'bar', 'a\\dos\\path'='boo\\urns'}"#,
    r#"{'foo\'bar', `a\dos\path`="boo"}"#,
    r#"{"foo", a="bc"}"#,
    "foo{NaN='bc'}",
    "foo{bar='}'}",
    r#"foo{a="b", foo!="bar", test=~"test", bar!~"baz"}"#,
    r#"{a="b", foo!="bar", "foo", test=~"test", bar!~"baz"}"#,
    r#"foo{a="b", foo!="bar", test=~"test", bar!~"baz",}"#,
    r#"{__name__=~"bar", __name__!~"baz"}"#,
    r#"{__name__="bar", __name__="baz"}"#,
    r#"{"bar", __name__="baz"}"#,
    "test[1000ms]",
    "test[1001ms]",
    "test[1002ms]",
    "test[5s]",
    "test[5m]",
    "foo[5m30s]",
    "test[5h] OFFSET 5m",
    "test[5d] OFFSET 10s",
    "test[5w] offset 2w",
    r#"test{a="b"}[5y] OFFSET 3d"#,
    r#"test{a="b"}[5m] OFFSET 3600"#,
    "foo[3ms] @ 2.345",
    "foo[4s180ms] @ 2.345",
    "foo[4.18] @ 2.345",
    "foo[4s18ms] @ 2.345",
    "foo[4.018] @ 2.345",
    r#"test{a="b"}[5y] @ 1603774699"#,
    "test[5]",
    "some_metric[5m] @ 1m",
    "sum by (foo)(some_metric)",
    "sum by (anchored)(some_metric)",
    "sum by (smoothed)(some_metric)",
    r#"sum by ("foo bar")({"some.metric"})"#,
    r#"sum by ("foo", bar, 'baz')({"some.metric"})"#,
    "avg by (foo)(some_metric)",
    "max by (foo)(some_metric)",
    "sum without (foo) (some_metric)",
    "sum (some_metric) without (foo)",
    "stddev(some_metric)",
    "stdvar by (foo)(some_metric)",
    "sum by ()(some_metric)",
    "sum by (foo,bar,)(some_metric)",
    "sum by (foo,)(some_metric)",
    "topk(5, some_metric)",
    r#"count_values("value", some_metric)"#,
    "sum without(and, by, avg, count, alert, annotations)(some_metric)",
    "time()",
    r#"floor(some_metric{foo!="bar"})"#,
    "rate(some_metric[5m])",
    "round(some_metric)",
    "round(some_metric, 5)",
    "sum(sum)",
    "a + sum",
    r#""double-quoted string \" with escaped quote""#,
    r#"'single-quoted string \' with escaped quote'"#,
    "`backtick-quoted string`",
    r#""\a\b\f\n\r\t\v\\\" - \xFF\377\u1234\U00010111\U0001011111☺""#,
    r#"'\a\b\f\n\r\t\v\\\' - \xFF\377\u1234\U00010111\U0001011111☺'"#,
    r#"`\a\b\f\n\r\t\v\\\"\' - \xFF\377\u1234\U00010111\U0001011111☺`"#,
    r#"foo{bar="baz"}[10m:6s]"#,
    r#"foo{bar="baz"}[10m5s:1h6ms]"#,
    "foo[10m:]",
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:5s])"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:])[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] offset 4m)[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ 1603775091)[4m:3s]"#,
    r#"min_over_time(rate(foo{bar="baz"}[2s])[5m:] @ -160377509)[4m:3s]"#,
    "sum without(and, by, avg, count, alert, annotations)(some_metric) [30m:10s]",
    "some_metric OFFSET 1m [10m:5s]",
    "some_metric @ 123 [10m:5s]",
    "some_metric @ 123 offset 1m [10m:5s]",
    "some_metric offset 1m @ 123 [10m:5s]",
    "some_metric[10m:5s] offset 1m @ 123",
    r#"(foo + bar{nm="val"})[5m:]"#,
    r#"(foo + bar{nm="val"})[5m:] offset 10m"#,
    r#"(foo + bar{nm="val"} @ 1234)[5m:] @ 1603775019"#,
    "foo @ start()",
    "foo @ end()",
    "test[5y] @ start()",
    "test[5y] @ end()",
    "foo[10m:6s] @ start()",
    "foo[10m:6s] @ end()",
    "start()",
    "end()",
    "start",
    "end",
    r#"start{end="foo"}"#,
    r#"end{start="foo"}"#,
    "foo unless on(start) bar",
    "foo unless on(end) bar",
    "info(rate(http_request_counter_total{}[5m]))",
    r#"info(http_request_counter_total{namespace="zzz"}, {foo="bar", bar="baz"})"#,
    "foo[11s+10s-5*2^2]",
    "foo[-(10s-5s)+20s]",
    "foo[-10s+15s]",
    "foo[step()]",
    "foo[  -  step  (  )  ]",
    "foo[   step  (  )  ]",
    "foo[-step()]",
    "foo offset step()",
    "foo offset -step()",
    "foo[max_of(step(),5s)]",
    "foo offset max_of(step(),5s)",
    "foo offset -min_of(5s,step()+8s)",
    "foo[range()]",
    "foo[2m/range()]",
    "foo[-range()]",
    "foo offset range()",
    "foo offset -range()",
    "foo[max_of(range(),5s)]",
    "foo[4s+4s:1s*2] offset (5s-8)",
    "foo offset 5s-8",
    "rate(foo[2m+2m])",
    "foo offset -1^1",
    "foo offset -(1^2)",
    "foo offset (-1^2)",
    "foo[-2^2]",
    "foo[0+-2^2]",
    "(sum(foo))",
    "(sum(foo) )",
    "(sum(foo) by (bar))",
    "(sum by (bar) (foo))",
    "sum by (job)(rate(http_requests_total[30m]))",
];

fn error_of(input: &str) -> String {
    match parse(input) {
        Ok(e) => format!("parsed as {e}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_match_prometheus() {
    let mut bad = Vec::new();
    for (input, want) in PROMETHEUS_ERRORS {
        let got = error_of(input);
        if got != *want {
            bad.push(format!("{input:?}\n   want {want}\n    got {got}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn valid_inputs_parse_and_round_trip() {
    let mut bad = Vec::new();
    for input in PROMETHEUS_VALID {
        match parse(input) {
            Err(e) => bad.push(format!("{input:?}: {e}")),
            Ok(e) => {
                let printed = e.to_string();
                match parse(&printed) {
                    Ok(again) if same_tree(&e, &again) => {}
                    other => bad.push(format!("{input:?} printed {printed:?}: {other:?}")),
                }
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} failures:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// `printer_test.go`'s cases: input and Prometheus's `String()` output.
/// Eight differ on purpose: a number written as a duration inside a
/// duration expression (`(5m)`, `min_of(10s, ..)`) prints in seconds,
/// since the tree keeps no "written as duration" flag (same value).
const PROMETHEUS_PRINTED: &[(&str, &str)] = &[
    (
        r#"sum by() (task:errors:rate10s{job="s"})"#,
        r#"sum(task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"sum by(code) (task:errors:rate10s{job="s"})"#,
        r#"sum by (code) (task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"sum without() (task:errors:rate10s{job="s"})"#,
        r#"sum without () (task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"sum without(instance) (task:errors:rate10s{job="s"})"#,
        r#"sum without (instance) (task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"sum by("foo.bar") (task:errors:rate10s{job="s"})"#,
        r#"sum by ("foo.bar") (task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"sum without("foo.bar") (task:errors:rate10s{job="s"})"#,
        r#"sum without ("foo.bar") (task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"topk(5, task:errors:rate10s{job="s"})"#,
        r#"topk(5, task:errors:rate10s{job="s"})"#,
    ),
    (
        r#"count_values("value", task:errors:rate10s{job="s"})"#,
        r#"count_values("value", task:errors:rate10s{job="s"})"#,
    ),
    ("a - on() c", "a - on () c"),
    ("a - on(b) c", "a - on (b) c"),
    ("a - on(b) group_left(x) c", "a - on (b) group_left (x) c"),
    (
        "a - on(b) group_left(x, y) c",
        "a - on (b) group_left (x, y) c",
    ),
    ("a - on(b) group_left c", "a - on (b) group_left () c"),
    ("a - on(b) group_left() (c)", "a - on (b) group_left () (c)"),
    ("a - ignoring(b) c", "a - ignoring (b) c"),
    ("a - ignoring() c", "a - c"),
    (
        "a - ignoring() group_left c",
        "a - ignoring () group_left () c",
    ),
    ("a + fill(-23) b", "a + fill (-23) b"),
    ("a + fill_left(-23) b", "a + fill_left (-23) b"),
    ("a + fill_right(42) b", "a + fill_right (42) b"),
    (
        "a + fill_left(-23) fill_right(42) b",
        "a + fill_left (-23) fill_right (42) b",
    ),
    ("a + fill_left(5) fill_right(5) b", "a + fill (5) b"),
    (
        "a + on(b) group_left fill(-23) c",
        "a + on (b) group_left () fill (-23) c",
    ),
    ("up > bool 0", "up > bool 0"),
    ("a offset 1m", "a offset 1m"),
    ("a offset -7m", "a offset -7m"),
    (r#"a{c="d"}[5m] offset 1m"#, r#"a{c="d"}[5m] offset 1m"#),
    ("a[5m] offset 1m", "a[5m] offset 1m"),
    ("a[12m] offset -3m", "a[12m] offset -3m"),
    ("a[1h:5m] offset 1m", "a[1h:5m] offset 1m"),
    ("a anchored", "a anchored"),
    ("a[5m] anchored", "a[5m] anchored"),
    (r#"a{b="c"}[5m] anchored"#, r#"a{b="c"}[5m] anchored"#),
    (
        r#"a{b="c"}[5m] anchored offset 1m"#,
        r#"a{b="c"}[5m] anchored offset 1m"#,
    ),
    (
        r#"a{b="c"}[5m] anchored @ start() offset 1m"#,
        r#"a{b="c"}[5m] anchored @ start() offset 1m"#,
    ),
    ("a smoothed", "a smoothed"),
    ("a[5m] smoothed", "a[5m] smoothed"),
    (r#"a{b="c"}[5m] smoothed"#, r#"a{b="c"}[5m] smoothed"#),
    (
        r#"a{b="c"}[5m] smoothed offset 1m"#,
        r#"a{b="c"}[5m] smoothed offset 1m"#,
    ),
    (
        r#"a{b="c"}[5m] smoothed @ start() offset 1m"#,
        r#"a{b="c"}[5m] smoothed @ start() offset 1m"#,
    ),
    (r#"{__name__="a"}"#, r#"{__name__="a"}"#),
    (r#"a{b!="c"}[1m]"#, r#"a{b!="c"}[1m]"#),
    (r#"a{b=~"c"}[1m]"#, r#"a{b=~"c"}[1m]"#),
    (r#"a{b!~"c"}[1m]"#, r#"a{b!~"c"}[1m]"#),
    ("a @ 10", "a @ 10.000"),
    ("a[1m] @ 10", "a[1m] @ 10.000"),
    ("a @ start()", "a @ start()"),
    ("a @ end()", "a @ end()"),
    ("a[1m] @ start()", "a[1m] @ start()"),
    ("a[1m] @ end()", "a[1m] @ end()"),
    (r#"{__name__="",a="x"}"#, r#"{__name__="",a="x"}"#),
    (r#"{"a.b"="c"}"#, r#"{"a.b"="c"}"#),
    (r#"{"0"="1"}"#, r#"{"0"="1"}"#),
    (r#"{"_0"="1"}"#, r#"{_0="1"}"#),
    (r#"{""="0"}"#, r#"{""="0"}"#),
    (r#"{``="0"}"#, r#"{""="0"}"#),
    ("1048576", "1048576"),
    ("foo[step()]", "foo[step()]"),
    ("foo[-step()]", "foo[-step()]"),
    ("foo[(step())]", "foo[(step())]"),
    ("foo[-(step())]", "foo[-(step())]"),
    ("foo offset step()", "foo offset step()"),
    ("foo offset -step()", "foo offset -step()"),
    ("foo offset (step())", "foo offset (step())"),
    ("foo offset -(step())", "foo offset -(step())"),
    ("foo offset +(5)", "foo offset (5)"),
    ("foo offset -(5)", "foo offset -(5)"),
    ("foo offset (5)", "foo offset (5)"),
    ("foo offset (5m)", "foo offset (300)"),
    ("foo[(5s)]", "foo[(5)]"),
    ("foo[(5m):(1m)]", "foo[(300):(60)]"),
    ("foo offset +min_of(10s, 20s)", "foo offset min_of(10, 20)"),
    ("foo offset -min_of(10s, 20s)", "foo offset -min_of(10, 20)"),
    (
        "foo offset -min_of(10s, +max_of(step() ^ 2, 2))",
        "foo offset -min_of(10, max_of(step() ^ 2, 2))",
    ),
    (
        "foo[200-min_of(-step()^+step(),1)]",
        "foo[200 - min_of(-step() ^ step(), 1)]",
    ),
    (
        "foo[200 - min_of(step() + 10s, -max_of(step() ^ 2, 3))]",
        "foo[200 - min_of(step() + 10, -max_of(step() ^ 2, 3))]",
    ),
    ("foo[range()]", "foo[range()]"),
    ("foo[-range()]", "foo[-range()]"),
    ("foo offset range()", "foo offset range()"),
    ("foo offset -range()", "foo offset -range()"),
    ("foo[max_of(range(), 5s)]", "foo[max_of(range(), 5)]"),
    (
        "predict_linear(foo[1h], 3000)",
        "predict_linear(foo[1h], 3000)",
    ),
    (r#"sum by("üüü") (foo)"#, r#"sum by ("üüü") (foo)"#),
    (
        r#"sum without("äää") (foo)"#,
        r#"sum without ("äää") (foo)"#,
    ),
    (
        r#"count by("ööö", job) (foo)"#,
        r#"count by ("ööö", job) (foo)"#,
    ),
];

/// Where Silt's printing departs from Prometheus's: an offset in
/// parentheses that a sign ended keeps the sign before an operator that
/// also joins durations. Prometheus prints `foo offset (1h) + bar`, which
/// neither parser reads back (the `+` continues the offset). Found by
/// fuzzing.
#[test]
fn signed_paren_offsets_keep_their_sign_before_operators() {
    for (input, want) in [
        (
            "foo offset +(step() / 2) + bar offset 1",
            "foo offset +(step() / 2) + bar offset 1s",
        ),
        ("-foo offset +(5) * 2", "-foo offset +(5) * 2"),
        ("a * b offset +(5) ^ c", "a * b offset +(5) ^ c"),
        (
            "sum_over_time(foo[1m:] offset +(5)) - 1",
            "sum_over_time(foo[1m:] offset (5)) - 1",
        ),
        ("foo[1m:] offset +(5)", "foo[1m:] offset (5)"),
        ("foo[1m:] offset +(5) @ 10", "foo[1m:] @ 10.000 offset (5)"),
        ("foo offset +(5) > bar", "foo offset (5) > bar"),
        ("foo offset (5) + 1", "foo offset (5) + 1"),
    ] {
        let e = parse(input).unwrap_or_else(|err| panic!("{input}: {err}"));
        assert_eq!(e.to_string(), want, "{input}");
        let again = parse(want).unwrap_or_else(|err| panic!("{want}: {err}"));
        assert!(same_tree(&e, &again), "{input} -> {want}");
        let formatted = pretty(&e);
        let again = parse(&formatted).unwrap_or_else(|err| panic!("{formatted}: {err}"));
        assert!(same_tree(&e, &again), "{input} -> {formatted}");
    }
}

/// An offset expression that two signs let an operator join prints with
/// a sign that keeps it joined. Found by fuzzing: `offset -----2 % 3`
/// printed as `offset -2 % 3`, which reads as `(x offset -2) % 3`.
#[test]
fn offsets_joined_behind_signs_print_back_the_same() {
    for (input, want) in [
        (
            r#"{"=ab"} offset -----2%222.25"#,
            r#"{__name__="=ab"} offset +-2 % 222.25"#,
        ),
        ("foo offset - -2 * 3", "foo offset + +2 * 3"),
        ("foo offset - -step() * 3", "foo offset +--step() * 3"),
        ("foo offset -(1h) + 2", "foo offset -(3600) + 2"),
    ] {
        let e = parse(input).unwrap_or_else(|err| panic!("{input}: {err}"));
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|err| panic!("{printed}: {err}"));
        assert!(
            same_tree(&e, &again),
            "{input} -> {printed}:\n{e:?}\n{again:?}"
        );
        assert_eq!(printed, want, "{input}");
        let formatted = pretty(&e);
        let again = parse(&formatted).unwrap_or_else(|err| panic!("{formatted}: {err}"));
        assert!(same_tree(&e, &again), "{input} -> {formatted}");
    }
}

#[test]
fn printing_matches_prometheus() {
    let mut bad = Vec::new();
    for (input, want) in PROMETHEUS_PRINTED {
        match parse(input) {
            Ok(e) if e.to_string() == *want => {}
            Ok(e) => bad.push(format!("{input}\n   want {want}\n    got {e}")),
            Err(e) => bad.push(format!("{input}: {e}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// The tree as an S-expression, to check shapes: `(+ a (* b c))`.
fn sexp(e: &ast::Expr) -> String {
    use ast::Expr as E;
    match e {
        E::Number(v) => crate::gofmt::format_float_f(*v),
        E::String(s) => format!("{s:?}"),
        E::Vector(_) | E::Matrix(_) => e.to_string(),
        E::Subquery(s) => format!(
            "(subquery {} {})",
            sexp(&s.expr),
            &e.to_string()[s.expr.to_string().len()..]
        ),
        E::Paren(inner) => format!("(paren {})", sexp(inner)),
        E::Unary(op, inner) => format!(
            "({} {})",
            if *op == ast::UnaryOp::Neg {
                "neg"
            } else {
                "pos"
            },
            sexp(inner)
        ),
        E::Binary(b) => format!("({} {} {})", b.op.as_str(), sexp(&b.lhs), sexp(&b.rhs)),
        E::Aggregate(a) => match &a.param {
            Some(p) => format!("({} {} {})", a.op.as_str(), sexp(p), sexp(&a.expr)),
            None => format!("({} {})", a.op.as_str(), sexp(&a.expr)),
        },
        E::Call(c) => {
            let args: Vec<String> = c.args.iter().map(sexp).collect();
            format!("({} {})", c.func.name, args.join(" "))
        }
    }
}

#[test]
fn precedence_associativity_and_unary_folding() {
    for (input, want) in [
        ("1 + 2 * 3", "(+ 1 (* 2 3))"),
        ("1 * 2 + 3", "(+ (* 1 2) 3)"),
        ("1 - 2 - 3", "(- (- 1 2) 3)"),
        ("2 ^ 3 ^ 2", "(^ 2 (^ 3 2))"),
        ("-1 ^ 2", "(neg (^ 1 2))"),
        ("-1 * 2", "(* -1 2)"),
        ("-1 ^ -2", "(neg (^ 1 -2))"),
        ("+1 + -2 * 1", "(+ 1 (* -2 1))"),
        ("-foo ^ 2", "(neg (^ foo 2))"),
        ("-foo * 2", "(* (neg foo) 2)"),
        ("- - 1", "1"),
        ("-(1)", "(neg (paren 1))"),
        ("a or b and c unless d", "(or a (unless (and b c) d))"),
        ("a == b + c", "(== a (+ b c))"),
        ("a atan2 b * c", "(* (atan2 a b) c)"),
        ("a > bool b < bool c", "(< (> a b) c)"),
        ("h </ 1 + 2", "(</ h (+ 1 2))"),
        ("h >/ -Inf", "(>/ h -Inf)"),
        ("foo offset 5m + 1", "(+ foo offset 5m 1)"),
        ("foo offset -2 ^ 2", "(^ foo offset -2s 2)"),
        ("foo offset step() * 0", "(* foo offset step() 0)"),
        (
            "foo offset -min_of(step(), 1s) + 8000",
            "(+ foo offset -min_of(step(), 1) 8000)",
        ),
        (
            "foo offset -(min_of(step(), 2s) - 5) + 8000",
            "(+ foo offset -(min_of(step(), 2) - 5) 8000)",
        ),
        ("foo offset (1) + 2", "foo offset (1) + 2"),
        ("-foo offset 5m", "(neg foo offset 5m)"),
        ("-foo @ 5", "(neg foo @ 5.000)"),
        (
            "-sum(foo)[5m:1m] + 1",
            "1:1: parse error: unary expression only allowed on expressions of type scalar or instant vector, got \"range vector\"",
        ),
        ("sum(foo) by (a) / 2", "(/ (sum foo) 2)"),
        ("topk(3, foo)", "(topk 3 foo)"),
        ("sum", "sum"),
        ("sum + and", "(+ sum and)"),
        ("offset{a=\"b\"} offset 1m", "offset{a=\"b\"} offset 1m"),
        ("start()", "(start )"),
        ("max_of(1, 2)", "(max_of 1 2)"),
        ("fill + fill(0) other", "(+ fill other)"),
        ("5m", "300"),
        ("0x1F + 1_000 + 010", "(+ (+ 31 1000) 8)"),
        ("Inf - NaN", "(- +Inf NaN)"),
    ] {
        let got = parse(input)
            .map(|e| sexp(&e))
            .unwrap_or_else(|e| e.to_string());
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn duration_expressions_and_modifiers() {
    use ast::{Duration as D, DurationExpr as DE, Expr};
    let range = |q: &str| match parse(q) {
        Ok(Expr::Matrix(m)) => m.range,
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(range("foo[5m]"), D::Literal(300_000));
    assert_eq!(range("foo[1h30m]"), D::Literal(5_400_000));
    assert_eq!(range("foo[90]"), D::Literal(90_000));
    assert_eq!(range("foo[4.018]"), D::Literal(4018));
    assert_eq!(
        range("foo[-(-5m)]"),
        D::Expr(Box::new(DE::Neg(Box::new(DE::Paren(Box::new(
            DE::Number(-300.0)
        ))))))
    );
    assert_eq!(
        range("foo[  -  step  (  )  ]"),
        D::Expr(Box::new(DE::Neg(Box::new(DE::Step))))
    );
    assert_eq!(
        range("foo[5m+1m]"),
        D::Expr(Box::new(DE::Binary(
            ast::BinaryOp::Add,
            Box::new(DE::Number(300.0)),
            Box::new(DE::Number(60.0))
        )))
    );
    let vs = |q: &str| match parse(q) {
        Ok(Expr::Vector(v)) => v,
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(vs("foo offset -7m").offset, Some(D::Literal(-420_000)));
    assert_eq!(vs("foo offset 0s").offset, None, "zero offset is no offset");
    assert_eq!(
        vs("foo offset 0 offset 1m").offset,
        Some(D::Literal(60_000))
    );
    assert_eq!(vs("foo @ 3.3335").at, Some(ast::AtModifier::Time(3334)));
    assert_eq!(vs("foo @ -100").at, Some(ast::AtModifier::Time(-100_000)));
    assert_eq!(vs("foo @ 1m").at, Some(ast::AtModifier::Time(60_000)));
    assert_eq!(vs("foo @ end()").at, Some(ast::AtModifier::End));
    assert_eq!(vs("foo anchored").range_mode, ast::RangeMode::Anchored);
    match parse("foo[5m] smoothed offset 1m @ start()") {
        Ok(Expr::Matrix(m)) => {
            assert_eq!(m.vector.range_mode, ast::RangeMode::Smoothed);
            assert_eq!(m.vector.offset, Some(D::Literal(60_000)));
            assert_eq!(m.vector.at, Some(ast::AtModifier::Start));
        }
        other => panic!("{other:?}"),
    }
    match parse("rate(foo[5m])[30m:] offset 1m") {
        Ok(Expr::Subquery(s)) => {
            assert_eq!((s.range, s.step), (D::Literal(1_800_000), None));
            assert_eq!(s.offset, Some(D::Literal(60_000)));
            assert_eq!(s.position, 0);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn vector_matching_is_normalised() {
    use ast::{Cardinality, Expr};
    let m = |q: &str| match parse(q) {
        Ok(Expr::Binary(b)) => b.matching,
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(m("a + b"), None);
    assert_eq!(m("a + ignoring() b"), None, "the default, written out");
    assert_eq!(m("a and b"), None);
    assert_eq!(m("a + on() 1"), None, "a scalar side: no matching");
    let on = m("a and on() b").unwrap();
    assert!(on.on && on.labels.is_empty() && on.card == Cardinality::ManyToMany);
    let g = m("a / ignoring(x) group_left(y) b").unwrap();
    assert_eq!(
        (g.card, g.labels, g.include),
        (
            Cardinality::ManyToOne,
            vec!["x".to_string()],
            vec!["y".to_string()]
        )
    );
    let f = m("a + fill_right(1) fill_left(-2) b").unwrap();
    assert_eq!((f.fill_left, f.fill_right), (Some(-2.0), Some(1.0)));
    let f = m("a - on(b) group_right fill(5m) c").unwrap();
    assert_eq!(
        (f.card, f.fill_left, f.fill_right),
        (Cardinality::OneToMany, Some(300.0), Some(300.0))
    );
}

#[test]
fn more_errors() {
    for (input, want) in [
        (
            "foo[5m] offset 1m offset 2m",
            "1:1: parse error: offset may not be set multiple times",
        ),
        (
            "foo @ 1 @ 2",
            "1:1: parse error: @ <timestamp> may not be set multiple times",
        ),
        (
            "(foo) offset 1m",
            "1:1: parse error: offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
        ),
        (
            "foo anchored smoothed",
            "1:1: parse error: anchored and smoothed modifiers cannot be used together",
        ),
        (
            "foo[5m:] anchored",
            "1:1: parse error: anchored modifier is not supported for subqueries",
        ),
        (
            "sum(foo) smoothed",
            "1:1: parse error: smoothed modifier not implemented",
        ),
        ("foo[5m:1m:1m]", "1:10: parse error: unexpected colon ':'"),
        (
            "foo[step():1m]",
            "1:12: parse error: unexpected colon before duration in duration expression",
        ),
        ("foo[5m", "1:7: parse error: unclosed left bracket"),
        (
            "foo[5m 1m]",
            "1:8: parse error: unexpected duration \"1m\" in subquery or range, expected \":\" or \"]\"",
        ),
        (
            "foo[5m:1m 1m]",
            "1:11: parse error: unexpected duration \"1m\" in subquery selector, expected \"]\"",
        ),
        (
            "foo[5m:+]",
            "1:9: parse error: unexpected \"]\" in subquery selector, expected number, duration, step(), range(), or \"]\"",
        ),
        (
            "foo[5m][5m]",
            "1:8: parse error: ranges only allowed for vector selectors",
        ),
        (
            "foo[[5m]",
            "1:5: parse error: unexpected character in duration expression: '['",
        ),
        (
            "foo[5m[1m]",
            "1:7: parse error: unexpected left bracket '['",
        ),
        (
            "foo offset bar",
            "1:12: parse error: unexpected identifier \"bar\" in offset, expected number, duration, step(), or range()",
        ),
        (
            "foo @ bar",
            "1:7: parse error: unexpected identifier \"bar\" in @, expected timestamp",
        ),
        (
            "foo @ start",
            "1:12: parse error: unexpected end of input in @, expected timestamp",
        ),
        (
            "sum by (a) foo",
            "1:12: parse error: unexpected identifier \"foo\" in aggregation",
        ),
        (
            "sum(foo bar)",
            "1:9: parse error: unexpected identifier \"bar\" in aggregation",
        ),
        (
            "rate(foo bar)",
            "1:10: parse error: unexpected identifier \"bar\"",
        ),
        (
            "sum by (a b) (x)",
            "1:11: parse error: unexpected identifier \"b\" in grouping opts, expected \",\" or \")\"",
        ),
        (
            "sum by (\"\") (x)",
            "1:9: parse error: invalid label name for grouping: \"\"",
        ),
        (
            "foo + on(a) group_left(a) bar",
            "1:5: parse error: label \"a\" must not occur in ON and GROUP clause at once",
        ),
        (
            "foo and fill(0) bar",
            "1:1: parse error: filling in missing series not allowed for set operators",
        ),
        (
            "foo + fill(0) 1",
            "1:1: parse error: filling in missing series only allowed between instant vectors",
        ),
        (
            "\"a\" + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "foo[5m] + 1",
            "1:1: parse error: binary expression must contain only scalar and instant vector types",
        ),
        (
            "1 < 2",
            "1:3: parse error: comparisons between scalars must use BOOL modifier",
        ),
        (
            "round()",
            "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0",
        ),
        (
            "round(foo, 1, 2)",
            "1:1: parse error: expected at most 2 argument(s) in call to \"round\", got 3",
        ),
        (
            "label_join(foo, \"a\", \"b\", 1)",
            "1:27: parse error: expected type string in call to function \"label_join\", got scalar",
        ),
        (
            "info(foo, 1)",
            "1:1: parse error: expected type instant vector in call to function \"info\", got scalar",
        ),
        (
            "sum(rate(foo))",
            "1:10: parse error: expected type range vector in call to function \"rate\", got instant vector",
        ),
        (
            "quantile(\"x\", foo)",
            "1:10: parse error: expected type scalar in aggregation parameter, got string",
        ),
        (
            "sum(1)",
            "1:5: parse error: expected type instant vector in aggregation expression, got scalar",
        ),
        (
            "limitk(foo)",
            "1:1: parse error: wrong number of arguments for aggregate expression provided, expected 2, got 1",
        ),
        (
            "STEP()",
            "1:1: parse error: unknown function with name \"STEP\"",
        ),
        (
            "foo[0.0001]",
            "1:5: parse error: duration must be greater than 0",
        ),
        (
            "foo @ 1e19",
            "1:1: parse error: timestamp out of bounds for @ modifier: 10000000000000000000.000000",
        ),
        (
            "foo\n  + \n  bar{",
            "3:7: parse error: unexpected end of input inside braces",
        ),
        ("1 +/* 2", "1:4: parse error: unexpected <op:/>"),
    ] {
        assert_eq!(error_of(input), want, "{input:?}");
    }
    // info's second argument may select only by labels, even all-empty ones.
    assert!(parse("info(foo, {a=~\".*\"})").is_ok());
    // ... or none at all, which prints as `{}` (found by fuzzing: it printed
    // as `info(foo, )`, which does not parse).
    let empty = parse("info(foo, {})").unwrap();
    assert_eq!(empty.to_string(), "info(foo, {})");
    assert!(same_tree(&empty, &parse(&empty.to_string()).unwrap()));
}

#[test]
fn pretty_matches_prometheus_layout() {
    assert_eq!(
        format_query("sum  by(job)(rate(x[5m]))").unwrap(),
        "sum by (job) (rate(x[5m]))"
    );
    let long = "sum by (instance) (rate(node_cpu_seconds_total{mode=\"idle\",instance=~\"prod-.*\"}[5m])) / on (instance) group_left () count by (instance) (node_cpu_seconds_total)";
    assert_eq!(
        format_query(long).unwrap(),
        "  sum by (instance) (rate(node_cpu_seconds_total{instance=~\"prod-.*\",mode=\"idle\"}[5m]))\n\
         / on (instance) group_left ()\n\
         \x20 count by (instance) (node_cpu_seconds_total)"
    );
    let call = format!(
        "label_replace(up{{job=\"{}\"}}, \"dst\", \"$1\", \"src\", \"(.*)\")",
        "x".repeat(80)
    );
    assert_eq!(
        format_query(&call).unwrap(),
        format!(
            "label_replace(\n  up{{job=\"{}\"}},\n  \"dst\",\n  \"$1\",\n  \"src\",\n  \"(.*)\"\n)",
            "x".repeat(80)
        )
    );
}

#[test]
fn durations_print_like_model_duration() {
    assert_eq!(format_duration_ms(0), "0s");
    assert_eq!(format_duration_ms(5_400_000), "1h30m");
    assert_eq!(format_duration_ms(90 * 86_400_000), "90d");
    assert_eq!(format_duration_ms(14 * 86_400_000), "2w");
    assert_eq!(format_duration_ms(365 * 86_400_000), "1y");
    assert_eq!(format_duration_ms(4018), "4s18ms");
    assert_eq!(format_duration_ms(-420_000), "-7m");
    assert_eq!(
        parse("a + fill(1000000) b").unwrap().to_string(),
        "a + fill (1e+06) b"
    );
    assert_eq!(
        parse("a + fill(NaN) b").unwrap().to_string(),
        "a + fill_left (NaN) fill_right (NaN) b"
    );
    assert_eq!(
        parse("{\"a.b\"=\"\\xff\"}").unwrap().to_string(),
        "{\"a.b\"=\"\\ufffd\"}"
    );
}

/// Realistic queries (also the fuzz target's seeds) parse and round-trip.
#[test]
fn realistic_queries() {
    for q in [
        r#"sum by (job) (rate(http_requests_total{job="api", code=~"5.."}[5m])) / on (job) group_left () sum by (job) (rate(http_requests_total[5m]))"#,
        "histogram_quantile(0.99, sum without (instance) (rate(request_duration_seconds_bucket[1h30m] offset -5m @ end())))",
        r#"max_over_time(deriv(rate(foo{"a.b"="x"}[5m])[30m:1m] @ 1603775091.5)[4h:]) > bool 0x1F ^ -2 ^ 3"#,
        "count_over_time(foo[min_of(step() + 1, 1h) * 2]) + foo offset -(step() / 2) + bar offset (1h - 30m) - 1",
        "left + on (job) group_left (owner) fill_left (0) fill_right (NaN) right or up unless down",
        r#"rate(foo[5m] anchored offset 1m) + bar smoothed @ start() + info(baz, {k8s_cluster_id=~".+"}) + h </ 1.5 >/ -Inf"#,
        r#"topk(3, sum by ("ünïcode", le) (x)) or limit_ratio(0.5, y) or count_values("v", z) or quantile(.9, w)"#,
        "# comment\n  -sum # inner\n  (offset) + 1_000.5e-3 * Inf - 5m + label_replace(up, \"a\\x41\\u00e9\", `raw`, \"\", \"\")\n",
    ] {
        let e = parse(q).unwrap_or_else(|err| panic!("{q}: {err}"));
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|err| panic!("{printed}: {err}"));
        assert!(same_tree(&e, &again), "{q} -> {printed}");
        assert_eq!(again.to_string(), printed);
        let formatted = format_query(q).unwrap();
        assert!(same_tree(&e, &parse(&formatted).unwrap()), "{formatted}");
    }
}

/// Trees deeper than `MAX_DEPTH` are refused while they are parsed, so no
/// pass over a tree (nor dropping it) can overflow a thread's stack: a sum
/// of 5,000 terms used to take the server down.
#[test]
fn deep_expressions_are_refused_not_overflowed() {
    // The server's threads have `STACK_BYTES`; a debug build's frames are
    // several times a release build's.
    std::thread::Builder::new()
        .stack_size(2 * crate::STACK_BYTES)
        .spawn(deep_expressions)
        .unwrap()
        .join()
        .unwrap();
}

fn deep_expressions() {
    use super::parser::MAX_DEPTH;
    let too_deep = format!("expression nested too deeply: more than {MAX_DEPTH} levels");
    // A chain of n terms is n levels deep.
    let chain = |n: usize| vec!["1"; n].join(" + ");
    assert!(parse(&chain(MAX_DEPTH)).is_ok());
    assert!(error_of(&chain(MAX_DEPTH + 1)).contains(&too_deep));
    assert!(error_of(&chain(100_000)).contains(&too_deep));
    // Right-associative `^` nests by recursion instead.
    let pow = |n: usize| vec!["2"; n].join(" ^ ");
    assert!(parse(&pow(MAX_DEPTH / 2)).is_ok());
    assert!(error_of(&pow(100_000)).contains(&too_deep));
    // At the limit and past it: parentheses (each one a level) ...
    let parens = |n: usize| format!("{}x{}", "(".repeat(n), ")".repeat(n));
    assert!(parse(&parens(MAX_DEPTH - 1)).is_ok());
    assert!(error_of(&parens(MAX_DEPTH)).contains(&too_deep));
    // ... and far past it, through every construct that nests.
    let deep = 100_000;
    for q in [
        parens(deep),
        format!("{}x", "-".repeat(deep)),
        format!("{}x{}", "abs(".repeat(deep), ")".repeat(deep)),
        format!("x{}", "[1m:1m]".repeat(deep)),
        format!("x[1m{}]", " + 1m".repeat(deep)),
        format!("x[{}1m{}]", "(".repeat(deep), ")".repeat(deep)),
        format!("x offset {}1m", "-".repeat(deep)),
    ] {
        assert!(error_of(&q).contains(&too_deep), "{}", &q[..40]);
    }
    // Each duration counts its own nodes: many shallow ones are fine ...
    assert!(parse(&vec!["rate(x[2m*2+1m])"; 129].join(" + ")).is_ok());
    // ... and parentheses and operators together bound one's depth.
    let parens_and_ops = format!(
        "x[{}1m{}{}]",
        "(".repeat(250),
        " + 1m".repeat(10),
        ")".repeat(250)
    );
    assert!(error_of(&parens_and_ops).contains(&too_deep));
}
