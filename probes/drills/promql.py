"""Just enough PromQL for a drill: the series selectors of a rule expression and its numeric thresholds.

Not a parser of the whole language: a tokenizer that knows which identifiers are functions, aggregation
modifiers and keywords, so what is left are metric names (with their `{...}` matchers and `[range]`).
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field

from probes.drills.prometheus import prom_duration

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<duration>\d+(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h|d|w|y))*(?![a-zA-Z0-9_]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){}\[\],:@])
    """,
    re.VERBOSE,
)
# Followed by a parenthesised label list, not an expression.
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
COMPARISONS = {">", ">=", "<", "<=", "==", "!="}
_RANGE_FUNCTIONS = {
    "rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time", "present_over_time",
    "absent_over_time", "predict_linear", "holt_winters", "double_exponential_smoothing", "mad_over_time",
}
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}


class PromQLError(ValueError):
    """The expression is not something this tokenizer understands."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    depth: int  # parenthesis depth before this token


@dataclass
class Selector:
    name: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)
    range_seconds: float | None = None
    function: str | None = None  # the innermost function it is an argument of

    @property
    def is_range(self) -> bool:
        return self.range_seconds is not None

    @property
    def counter_range(self) -> bool:
        return self.is_range and self.function in COUNTER_FUNCTIONS

    def with_labels(self, labels: dict[str, str]) -> Selector:
        """The same selector narrowed to `labels` (labels it already matches on are left alone)."""
        have = {m[0] for m in self.matchers}
        extra = [(k, "=", v) for k, v in sorted(labels.items()) if k not in have]
        return Selector(self.name, [*self.matchers, *extra], self.range_seconds, self.function)

    def only(self, names: set[str]) -> Selector:
        """The selector keeping just the matchers on these labels (e.g. `job`)."""
        return Selector(self.name, [m for m in self.matchers if m[0] in names], self.range_seconds, self.function)

    def text(self) -> str:
        inner = ",".join(f'{label}{op}"{escape_value(value)}"' for label, op, value in self.matchers)
        return f"{self.name}{{{inner}}}" if inner else self.name


@dataclass
class Comparison:
    """`<left> OP <number>`: the selectors on the left, whether the left is a ratio, and the threshold."""

    op: str
    threshold: float
    selectors: list[Selector]
    ratio: bool
    quantile: float | None  # histogram_quantile(q, ...) on the left


def escape_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    depth = 0
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "space":
            continue
        text = match.group(0)
        if text == ")":
            depth -= 1
        tokens.append(Token(kind, text, depth))
        if text == "(":
            depth += 1
    return tokens


def _closing(tokens: list[Token], start: int, open_: str, close: str) -> int:
    level = 0
    for i in range(start, len(tokens)):
        if tokens[i].text == open_:
            level += 1
        elif tokens[i].text == close:
            level -= 1
            if level == 0:
                return i
    raise PromQLError(f"unbalanced {open_!r}")


def _matchers(tokens: list[Token]) -> list[tuple[str, str, str]]:
    out = []
    i = 0
    while i < len(tokens):
        if tokens[i].text == ",":
            i += 1
            continue
        if i + 2 >= len(tokens) or tokens[i + 2].kind != "string":
            raise PromQLError(f"bad label matcher near {tokens[i].text!r}")
        out.append((tokens[i].text, tokens[i + 1].text, _unquote(tokens[i + 2].text)))
        i += 3
    return out


def _enclosing_function(tokens: list[Token], index: int) -> str | None:
    """The name before the nearest unclosed '(' to the left of `index`."""
    level = 0
    for i in range(index - 1, -1, -1):
        text = tokens[i].text
        if text == ")":
            level += 1
        elif text == "(":
            if level == 0:
                if i > 0 and tokens[i - 1].kind == "ident":
                    word = tokens[i - 1].text.lower()
                    return None if word in _KEYWORDS else word
                # `sum by (job) (...)`: the aggregation's name sits before its label list.
                if i > 0 and tokens[i - 1].text == ")":
                    start = _opening(tokens, i - 1)
                    if start >= 2 and tokens[start - 1].text.lower() in _LABEL_LIST_KEYWORDS:
                        return tokens[start - 2].text.lower()
                return None
            level -= 1
    return None


def _opening(tokens: list[Token], close_index: int) -> int:
    level = 0
    for i in range(close_index, -1, -1):
        if tokens[i].text == ")":
            level += 1
        elif tokens[i].text == "(":
            level -= 1
            if level == 0:
                return i
    raise PromQLError("unbalanced ')'")


def _selectors_in(tokens: list[Token]) -> list[Selector]:
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if token.kind == "ident":
            word = token.text.lower()
            if word in _LABEL_LIST_KEYWORDS:
                i = _closing(tokens, i + 1, "(", ")") + 1 if nxt == "(" else i + 1
                continue
            if word in _KEYWORDS or nxt == "(" or nxt.lower() in ("by", "without"):
                i += 1
                continue
            selector = Selector(token.text)
            i += 1
        elif token.text == "{":
            selector = Selector("")
        elif token.text == "[":  # a subquery's range
            i = _closing(tokens, i, "[", "]") + 1
            continue
        else:
            i += 1
            continue
        start = i - (1 if selector.name else 0)
        if i < len(tokens) and tokens[i].text == "{":
            end = _closing(tokens, i, "{", "}")
            matchers = _matchers(tokens[i + 1 : end])
            names = [v for label, op, v in matchers if label == "__name__" and op == "="]
            selector.matchers = [m for m in matchers if not (m[0] == "__name__" and m[1] == "=")]
            if not selector.name and names:
                selector.name = names[0]
            i = end + 1
        if i < len(tokens) and tokens[i].text == "[":
            end = _closing(tokens, i, "[", "]")
            inside = tokens[i + 1 : end]
            if inside and inside[0].kind == "duration":
                selector.range_seconds = prom_duration(inside[0].text, 0.0)
            i = end + 1
        selector.function = _enclosing_function(tokens, start)
        if selector.function in _RANGE_FUNCTIONS and selector.range_seconds is None:
            selector.range_seconds = _subquery_range(tokens, start)
        found.append(selector)
    return found


def _subquery_range(tokens: list[Token], start: int) -> float | None:
    # `max_over_time((x > 1)[5m:1m])`: the range follows the closing parenthesis.
    for i in range(start, len(tokens) - 1):
        if tokens[i].text == "[" and tokens[i + 1].kind == "duration" and tokens[i].depth < tokens[start].depth:
            return prom_duration(tokens[i + 1].text, 0.0)
    return None


def selectors(expr: str) -> list[Selector]:
    """Every series selector in `expr`, in order (a metric used twice appears twice)."""
    return _selectors_in(tokenize(expr))


def _arith(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _arith(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _arith(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return float(_ARITH[type(node.op)](_arith(node.left), _arith(node.right)))
    raise PromQLError("not a constant")


_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.Pow: operator.pow, ast.Mod: operator.mod}


def _number(tokens: list[Token]) -> float | None:
    """The value of a constant arithmetic expression (`(14.4*0.001)`, `0.05`), else None."""
    allowed = {"(", ")", "+", "-", "*", "/", "^", "%"}
    if not tokens or any(t.kind != "number" and t.text not in allowed for t in tokens):
        return None
    text = " ".join(t.text for t in tokens).replace("^", "**")
    try:
        return _arith(ast.parse(text, mode="eval"))
    except (SyntaxError, ZeroDivisionError, PromQLError, OverflowError):
        return None


def _operand(tokens: list[Token], op_index: int, step: int) -> list[Token]:
    """The tokens of a comparison's operand: up to a set operator, another comparison or an unmatched
    parenthesis."""
    out = []
    level = 0
    i = op_index + step
    opening, closing = ("(", ")") if step > 0 else (")", "(")
    while 0 <= i < len(tokens):
        text = tokens[i].text
        if text == opening:
            level += 1
        elif text == closing:
            if level == 0:
                break
            level -= 1
        elif level == 0 and (text.lower() in ("and", "or", "unless") or text in COMPARISONS):
            break
        out.append(tokens[i])
        i += step
    return out if step > 0 else out[::-1]


def comparisons(expr: str) -> list[Comparison]:
    """Each `<expression> OP <constant>` in `expr` (also `<constant> OP <expression>`, flipped)."""
    tokens = tokenize(expr)
    found = []
    flip = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
    for i, token in enumerate(tokens):
        if token.text not in COMPARISONS:
            continue
        right = _operand(tokens, i, 1)
        if right and right[0].text.lower() == "bool":
            right = right[1:]
        left = _operand(tokens, i, -1)
        op = token.text
        value = _number(right)
        if value is None:
            value = _number(left)
            if value is None:
                continue
            left, op = right, flip[op]
        ratio = any(t.text == "/" for t in left)
        quantile = None
        for j, t in enumerate(left):
            if t.text.lower() == "histogram_quantile" and j + 2 < len(left) and left[j + 2].kind == "number":
                quantile = float(left[j + 2].text)
        found.append(Comparison(op, value, _selectors_in(left), ratio, quantile))
    return found
