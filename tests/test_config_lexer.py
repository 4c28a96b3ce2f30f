"""The configuration lexer: HAProxy 2.6's quoting, escaping, comments, times."""

import pytest

from proxy.config import ConfigError
from proxy.config.lexer import evaluate_condition, parse_size, parse_time, split_words, tokenize


def words(text, env=None):
    return split_words(text, "t.cfg", 7, env or {})


def test_words_are_separated_by_any_run_of_blanks():
    assert words("  server\tweb1   127.0.0.1:80  ") == ["server", "web1", "127.0.0.1:80"]


def test_blank_and_comment_only_lines_have_no_words():
    assert words("") == []
    assert words("    ") == []
    assert words("   # a comment") == []


def test_hash_starts_a_comment_even_inside_a_word():
    assert words("bind :80#comment") == ["bind", ":80"]
    assert words("bind :80 # comment") == ["bind", ":80"]


def test_escaped_hash_is_literal():
    assert words(r"x a\#b") == ["x", "a#b"]


def test_hash_inside_quotes_is_literal():
    assert words('x "a#b" \'c#d\'') == ["x", "a#b", "c#d"]


def test_backslash_space_joins_a_word():
    assert words(r"x Host:\ www.example.com") == ["x", "Host: www.example.com"]


def test_control_escapes_outside_quotes():
    assert words(r"x a\r\nb\tc") == ["x", "a\r\nb\tc"]


def test_escapes_are_interpreted_inside_double_quotes():
    assert words(r'x "a\r\n\"b\\"') == ["x", 'a\r\n"b\\']


def test_nothing_is_interpreted_inside_single_quotes():
    assert words(r"x 'a\r\n \x41 $HOME'") == ["x", r"a\r\n \x41 $HOME"]


def test_hex_escape():
    assert words(r"x \x41\x62") == ["x", "Ab"]


def test_incomplete_hex_escape_is_an_error_with_the_line_number():
    with pytest.raises(ConfigError) as exc:
        words(r"x \x4")
    assert exc.value.line == 7 and exc.value.file == "t.cfg"
    assert "hex" in exc.value.message


def test_unknown_escape_keeps_the_backslash():
    assert words(r"x \1\d") == ["x", r"\1\d"]


def test_escaped_quotes_outside_quotes():
    assert words(r"""x \"a\' """) == ["x", "\"a'"]


def test_quoted_parts_concatenate_with_their_neighbours():
    # the manual's example: all these are the same argument
    expected = ["log-format", "%{+Q}o %t %s %{-Q}r"]
    assert words(r"log-format %{+Q}o\ %t\ %s\ %{-Q}r") == expected
    assert words('log-format "%{+Q}o %t %s %{-Q}r"') == expected
    assert words("log-format '%{+Q}o %t %s %{-Q}r'") == expected
    assert words("""log-format "%{+Q}o %t"' %s %{-Q}r'""") == expected
    assert words("""log-format "%{+Q}o %t"' %s'\\ %{-Q}r""") == expected


def test_single_quote_inside_double_quotes_is_literal_and_vice_versa():
    assert words("""x "it's" 'say "hi"'""") == ["x", "it's", 'say "hi"']


def test_unmatched_quote_is_an_error():
    with pytest.raises(ConfigError) as exc:
        words('x "abc')
    assert "unmatched quote" in exc.value.message
    with pytest.raises(ConfigError):
        words("x 'abc")


def test_empty_argument_in_the_middle_is_an_error():
    with pytest.raises(ConfigError) as exc:
        words('server "" 127.0.0.1:80')
    assert "empty" in exc.value.message and exc.value.hint


def test_empty_last_argument_is_dropped():
    assert words('x a ""') == ["x", "a"]


def test_environment_variables_expand_inside_double_quotes_only():
    env = {"PORT": "8080", "HOST": "127.0.0.1"}
    assert words('bind "${HOST}:$PORT"', env) == ["bind", "127.0.0.1:8080"]
    assert words("bind $HOST:$PORT", env) == ["bind", "$HOST:$PORT"]
    assert words("bind '$HOST'", env) == ["bind", "$HOST"]


def test_environment_variable_default_and_escaped_dollar():
    assert words('x "${NOPE-dflt}" "\\$HOME"', {}) == ["x", "dflt", "$HOME"]


def test_environment_variable_word_expansion():
    assert words('x "${LIST[*]}" y', {"LIST": "a  b c"}) == ["x", "a", "b", "c", "y"]


def test_unset_environment_variable_producing_an_empty_middle_word_is_an_error():
    with pytest.raises(ConfigError):
        words('server "$NOPE" 127.0.0.1:80', {})


def test_unterminated_brace_is_an_error():
    with pytest.raises(ConfigError) as exc:
        words('x "${HOME"', {"HOME": "/"})
    assert "brace" in exc.value.message


def test_too_many_words_is_an_error():
    with pytest.raises(ConfigError):
        words(" ".join(["w"] * 65))


def test_no_line_continuation_a_trailing_backslash_is_literal():
    # HAProxy has no continuation lines: each LF ends a statement
    lines = list(tokenize("global\\\n maxconn 10\n", "t.cfg", env={}))
    assert [(l.number, l.words) for l in lines] == [(1, ("global\\",)), (2, ("maxconn", "10"))]


def test_tokenize_keeps_line_numbers_and_skips_blank_lines():
    text = "# header\n\nglobal\n    maxconn 10   # c\n\r\ndefaults\n"
    lines = list(tokenize(text, "t.cfg", env={}))
    assert [(l.number, l.words) for l in lines] == [
        (3, ("global",)), (4, ("maxconn", "10")), (6, ("defaults",))]


def test_crlf_line_endings_are_accepted():
    lines = list(tokenize("global\r\n maxconn 10\r\n", "t.cfg", env={}))
    assert [l.words for l in lines] == [("global",), ("maxconn", "10")]


def test_missing_final_newline_is_refused_when_reading_a_file():
    with pytest.raises(ConfigError) as exc:
        list(tokenize("global\n maxconn 10", "t.cfg", env={}, require_final_lf=True))
    assert exc.value.line == 2 and "LF" in exc.value.message


def test_conditional_blocks_select_lines():
    text = (".if defined(ON)\na 1\n.elif streq(x,x)\nb 2\n.else\nc 3\n.endif\n"
            ".if version_atleast(2.4)\nd 4\n.endif\n.if 0\ne 5\n.endif\n")
    on = [l.words[0] for l in tokenize(text, "t.cfg", env={"ON": ""})]
    off = [l.words[0] for l in tokenize(text, "t.cfg", env={})]
    assert on == ["a", "d"]
    assert off == ["b", "d"]


def test_nested_conditional_inside_a_dropped_block_is_dropped():
    text = ".if 0\n.if 1\na\n.endif\n.else\nb\n.endif\n"
    assert [l.words[0] for l in tokenize(text, "t.cfg", env={})] == ["b"]


def test_unterminated_if_block_is_an_error():
    with pytest.raises(ConfigError) as exc:
        list(tokenize(".if 1\na\n", "t.cfg", env={}))
    assert "non-terminated" in exc.value.message and exc.value.line == 1


def test_lone_endif_is_an_error():
    with pytest.raises(ConfigError) as exc:
        list(tokenize("a\n.endif\n", "t.cfg", env={}))
    assert exc.value.line == 2


def test_condition_operators():
    env = {"A": "1"}
    assert evaluate_condition(["defined(A)", "&&", "!defined(B)"], "f", 1, env)
    assert evaluate_condition(["defined(B)", "||", "(1", "&&", "1)"], "f", 1, env)
    assert not evaluate_condition(["version_before(2.6)"], "f", 1, env)
    assert evaluate_condition(["strneq(a,b)"], "f", 1, env)


def test_warning_directive_becomes_a_warning_and_alert_an_error():
    seen = []
    list(tokenize('.warning "look here"\n', "t.cfg", env={},
                  warn=lambda line, msg: seen.append((line, msg))))
    assert seen == [(1, "'look here'")]
    with pytest.raises(ConfigError):
        list(tokenize('.alert "stop"\n', "t.cfg", env={}))


def test_unknown_directive_is_an_error():
    with pytest.raises(ConfigError) as exc:
        list(tokenize(".include x\n", "t.cfg", env={}))
    assert "unknown directive" in exc.value.message


@pytest.mark.parametrize("text,seconds", [
    ("2000", 2.0), ("2000ms", 2.0), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0),
    ("1d", 86400.0), ("1500us", 0.0015), ("0", 0.0),
])
def test_time_units_and_bare_numbers_in_milliseconds(text, seconds):
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "2x", "1.5s", "-1", "s", "10 s", "25d", "500us"])
def test_invalid_times_are_refused(text):
    with pytest.raises(ValueError):
        parse_time(text)


def test_sizes():
    assert parse_size("16384") == 16384
    assert parse_size("16k") == 16384
    assert parse_size("1m") == 1 << 20
    with pytest.raises(ValueError):
        parse_size("1t")
